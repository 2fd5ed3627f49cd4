/*
 * conf.h - uzswapd's configuration: the keys of uzswapd.conf(5), read
 * from the configuration file and its drop-in directory with libinih, then
 * overridden by the command line, and read again on SIGHUP.
 *
 * The effective configuration is built in one order, at startup and at
 * every reload: built-in defaults, then FILE, then FILE.d/ *.conf in name
 * order, then the command-line options (struct conf_source). Every value,
 * from a file or from the command line, goes through the one setter
 * (conf_set()), so both accept the same text and give the same errors.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_CONF_H
#define UZSWAPD_CONF_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "compress.h"

#define CONF_DEFAULT_FILE SYSCONFDIR "/uzswap/uzswapd.conf"
#define UZSWAPD_RUN_DIR "/run/uzswap"
#define UZSWAPD_DEFAULT_SOCKET UZSWAPD_RUN_DIR "/uzswapd.sock"
#define UZSWAPD_DEFAULT_STATE_DIR UZSWAPD_RUN_DIR "/state"
#define UZSWAPD_STATE_DIR LOCALSTATEDIR "/lib/uzswap"
#define UZSWAPD_DEFAULT_BACKING UZSWAPD_STATE_DIR "/backing"
#define CONF_ERR_MAX 512
#define CONF_MAX_OVERRIDES 32
#define CONF_LONG_ONLY 0x100	/* a key's option has no short letter */

/*
 * struct conf - one complete configuration. Strings are owned (conf_free()).
 * The daemon's running configuration is loop thread only; a reload builds
 * a new one and swaps it in.
 */
struct conf {
	/* [daemon] */
	char *socket;			/* bound unless systemd passes one */
	char *state_dir;		/* what a successor takes over */
	char *admin_group;		/* NULL: root and the daemon's user only */
	gid_t admin_gid;		/* of @admin_group */
	unsigned int fault_threads;
	unsigned int evict_threads;
	unsigned int fault_spin;	/* us a fault thread polls after a fault */
	bool lock_memory;
	char *debug;			/* subsystem tokens; NULL: none */
	char *metrics;			/* "HOST:PORT"; NULL: off */
	unsigned int metrics_clients;	/* per-client series, at most */
	/* [budget] */
	uint64_t default_limit;		/* bytes; 0: none */
	uint64_t resident_limit;	/* bytes; 0: none */
	uint64_t registered_limit;	/* bytes all clients may register;
					   0: none */
	uint64_t user_registered_limit;	/* bytes each user's clients may
					   register together; 0: none */
	/* [store] */
	enum compress_algo compressor;
	unsigned int zstd_level;
	uint64_t pool_limit;		/* bytes; 0: none */
	bool dedup;			/* equal pages share a copy */
	unsigned int max_page_sharing;	/* pages per copy, at most */
	unsigned int compact_ratio;	/* %: pool bytes per object bytes
					   past which the pool compacts;
					   0: never */
	char *backing_file;		/* path, NBD URI, or "none" */
	uint64_t backing_limit;		/* bytes */
	unsigned int backing_timeout;	/* seconds */
};

/* A value given on the command line, as "section", "key", "value". */
struct conf_override {
	const char *section;
	const char *key;
	const char *value;
	const char *option;	/* how it was given ("pool-limit" for
				   --pool-limit) */
};

/*
 * struct conf_source - where a configuration comes from; kept for reloads
 * @path:       the file; the default one when not given
 * @path_given: --config named it: it must exist
 * @ov:         the command-line values, applied last
 */
struct conf_source {
	const char *path;
	bool path_given;
	struct conf_override ov[CONF_MAX_OVERRIDES];
	unsigned int nr_ov;
};

/*
 * conf_load() - build the configuration @src describes into @c
 * @err: on failure, one line saying where and what ("FILE:LINE: ...")
 * Return: 0, or -EINVAL (bad value, unknown key, syntax) or -errno (a file
 * cannot be read); @c is then freed.
 */
int conf_load(struct conf *c, const struct conf_source *src,
	      char err[CONF_ERR_MAX]);

/* Check one command-line value on its own (for an early usage error).
 * Return: 0 or -EINVAL with @err set. */
int conf_check_override(const struct conf_override *ov,
			char err[CONF_ERR_MAX]);

/*
 * The command-line options are the keys' (one table, in conf.c):
 * conf_getopt_tables() appends them to getopt_long()'s tables, which
 * hold the caller's own options (@longopts up to its zeroed end, room for
 * @max entries; @shortopts NUL-terminated, room for @len bytes);
 * conf_option_override() turns option @opt with @arg into an override
 * (-ENOENT if @opt sets no key); conf_print_options() prints their --help
 * lines, with their defaults.
 */
void conf_getopt_tables(struct option *longopts, size_t max, char *shortopts,
			size_t len);
int conf_option_override(int opt, const char *arg, struct conf_override *ov);
void conf_print_options(FILE *out);

/* Print @c as a configuration file that would produce it. */
void conf_print(const struct conf *c, FILE *out);

/*
 * conf_keep_restart_keys() - in @next, put back @cur's value of every key
 * that takes effect only at restart, logging each one that differs.
 * Return: how many differed.
 */
unsigned int conf_keep_restart_keys(struct conf *next,
				    const struct conf *cur);

void conf_free(struct conf *c);

#endif /* UZSWAPD_CONF_H */
