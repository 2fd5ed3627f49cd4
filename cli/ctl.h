/*
 * ctl.h - what the files of uzswapctl share: the options of its command
 * line, its exit statuses and error reports, the admin connection, how
 * sizes print, and the columns of its tables (ctl-cols.c) and its live
 * view (ctl-top.c).
 *
 * Private to uzswapctl (cli/). uzswapctl has one thread: main() sets
 * @opts while it parses the command line, then only reads it; the
 * command opens @conn once its arguments are known to be good.
 */
#ifndef UZSWAPCTL_CTL_H
#define UZSWAPCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "uzswap.h"

struct libscols_table;

/* Exit statuses (listed in uzswapctl(8)). */
enum ctl_exit {
	EXIT_OK = 0,
	EXIT_USAGE = 1,		/* bad command line */
	EXIT_UNREACHABLE = 2,	/* the daemon is not running or not answering */
	EXIT_DENIED = 3,	/* not allowed */
	EXIT_NO_CLIENT = 4,	/* no client with that pid */
	EXIT_FAILED = 5,	/* the daemon refused or failed */
};

/* The options of the command line, wherever they stood on it. */
struct ctl_opts {
	const char *socket;	/* NULL: $UZSWAP_SOCKET or the default */
	const char *output;	/* -o LIST as given; NULL: the default */
	bool output_all;	/* --output-all */
	bool json;		/* -J: JSON instead of text */
	bool noheadings;	/* -n */
	bool raw;		/* -r */
	bool bytes;		/* -b: byte counts instead of human sizes */
	bool force;		/* drain --force */
	pid_t target;		/* set-limit --default or --global:
				 * UZSWAP_LIMIT_*; else 0 */
	double delay;		/* top: seconds between two refreshes */
	unsigned long iterations; /* top: refreshes before it ends; 0: until
				   * stopped */
};

extern struct ctl_opts opts;
extern uzswap_t *conn;

/* @v bytes as "1.5 GiB", or its digits with -b, into @buf (32 bytes are
 * enough); returns @buf. */
const char *ctl_size(uint64_t v, char *buf, size_t len);

/* A budget: "none" for 0, else as ctl_size() prints it. */
const char *ctl_limit(uint64_t v, char *buf, size_t len);

/* Where the pool writes back (UZSWAP_BACKING_*): "none", "file", "nbd". */
const char *ctl_backend_name(uint64_t backend);

/* A ratio as "11.38x", or "-" when it divided by 0; returns @buf. */
const char *ctl_ratio(double r, char *buf, size_t len);

/* Print "uzswapctl: " and the message on stderr, with a pointer to
 * --help; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A line of --help: "  @term", then @text from column 25 on, wrapped
 * at 79 (on the next line if @term reaches column 24). */
void help_item(const char *term, const char *text);

/* Print @s as a JSON string. */
void json_string(const char *s);

/*****************
 * Columns (ctl-cols.c)
 *****************/

/* One client process as the tables show it: what the daemon said, and
 * the rates `top` computes from two of its samples. */
struct client_row {
	struct uzswap_client cl;	/* first: the columns' offsets are
					 * its fields' */
	bool rated;			/* the rates below are known */
	double fault_rate;		/* faults per second */
	double eviction_rate;		/* pages evicted per second */
};

/* The two sets of columns: the daemon's totals (one row) and its
 * clients (a row each). */
enum colset_id {
	COLSET_STATUS,
	COLSET_CLIENT,
};

/* Columns picked for output, in their order. */
struct colsel {
	const struct column **cols;
	size_t n;
};

/* Build both sets of columns from the counter lists; once, before any
 * other call of these. Return: 0 or -ENOMEM. */
int cols_init(void);

/*
 * cols_select() - the columns of @set that -o (@list, NULL for the
 * default ones, "+A,B" for the default ones and A and B) or --output-all
 * (@all) picks; @live: the columns of `top` allowed too
 * Return: EXIT_OK, or EXIT_USAGE (reported) for a name that is not a
 * column of @set, or -ENOMEM.
 */
int cols_select(enum colset_id set, const char *list, bool all, bool live,
		struct colsel *sel);

/* Every column of @set except those of `top`: the full JSON document. */
int cols_select_all(enum colset_id set, struct colsel *sel);

void cols_free(struct colsel *sel);

/* A table of @sel (with -n and -r applied) with one line per object of
 * @rows (@n of them, @stride bytes apart). Return: the table, or NULL
 * with errno set. */
struct libscols_table *cols_table(const struct colsel *sel, const void *rows,
				  size_t n, size_t stride);

/* Print {"key":value,...} of @sel's columns for @obj (no newline). */
void cols_json(const struct colsel *sel, const void *obj);

/* The columns of @set for `COMMAND --help`, its default ones first;
 * @live: with those only `top` has. */
void cols_help(enum colset_id set, bool live);

/* @st's ratios: pages compressed or kept raw per byte of the pool's
 * objects, and every page held in memory per byte of the pool. */
double status_compression_ratio(const struct uzswap_status *st);
double status_pool_ratio(const struct uzswap_status *st);
/* @cl's pages in the pool per byte they take there. */
double client_ratio(const struct uzswap_client *cl);

/*****************
 * The live view (ctl-top.c)
 *****************/

/*
 * top_run() - refresh a view of @conn's daemon and clients every
 * opts.delay seconds until opts.iterations refreshes, q, or a signal
 * @sel: the client columns
 * Return: EXIT_OK, or -errno from the daemon.
 */
int top_run(const struct colsel *sel);

#endif /* UZSWAPCTL_CTL_H */
