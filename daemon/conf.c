/*
 * conf.c - reading uzswapd.conf (see conf.h for the order of sources).
 *
 * One table, conf_keys[], lists every key: its section, its type, where it
 * lives in struct conf, its default (as text, parsed like any other
 * value), and whether a reload may change it while the daemon runs. The
 * file is parsed by libinih through a line reader of ours, so that every
 * error names its file and line; the first error stops the load and the
 * caller keeps the configuration it had.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "backing.h"
#include "conf.h"
#include "lib/common/macros.h"
#include "lib/common/size.h"
#include "log.h"

enum conf_type {
	CONF_PATH,	/* an absolute path, shorter than a unix socket's */
	CONF_BACKING,	/* an absolute path, an NBD URI, or "none" */
	CONF_GROUP,	/* a group name or number; "" for none */
	CONF_TOKENS,	/* debug subsystem tokens */
	CONF_LISTEN,	/* HOST:PORT or "off" */
	CONF_UINT,	/* a number in [min, max] */
	CONF_BOOL,
	CONF_SIZE,	/* bytes with K/M/G, or none */
	CONF_SIZE_PCT,	/* the same, or N% of RAM */
	CONF_SIZE_RAM,	/* the same, N% may pass 100 (a multiple of RAM) */
	CONF_SIZE_SOME,	/* bytes with K/M/G, not none */
	CONF_COMPRESSOR,
};

/*
 * struct conf_key - one key of uzswapd.conf, and the command-line option
 * that overrides it
 * @section, @name: where it is in the file
 * @type, @off:     what it takes, and where it lives in struct conf
 * @min, @max:      the range of a CONF_UINT
 * @live:           a reload may change it
 * @def:            the default, as text (parsed like any other value)
 * @opt:            getopt's code of its option (its short letter, or a
 *                  code above 255 for a long option only)
 * @option:         the option's long name ("--" omitted)
 * @optval:         the value a flag option sets (it takes none); NULL: the
 *                  option takes a value
 * @arg, @help:     what the option takes, and one line of --help
 */
static const struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t off;
	unsigned int min, max;
	bool live;
	const char *def;
	int opt;
	const char *option;
	const char *optval;
	const char *arg;
	const char *help;
} conf_keys[] = {
#define K(sec, key, type_, field, live_, def_, ...)                       \
	{ .section = sec, .name = key, .type = type_,                     \
	  .off = offsetof(struct conf, field), .live = live_, .def = def_, \
	  __VA_ARGS__ }
	K("daemon", "socket", CONF_PATH, socket, false,
	  UZSWAPD_DEFAULT_SOCKET, .opt = 's', .option = "socket",
	  .arg = "PATH", .help = "control socket, unless systemd passes one"),
	K("daemon", "state-dir", CONF_PATH, state_dir, false,
	  UZSWAPD_DEFAULT_STATE_DIR, .opt = 'T' | CONF_LONG_ONLY,
	  .option = "state-dir", .arg = "DIR",
	  .help = "state a restarted uzswapd takes over (one uzswapd per "
		  "directory)"),
	K("daemon", "admin-group", CONF_GROUP, admin_group, true, "",
	  .opt = 'g', .option = "admin-group", .arg = "GROUP",
	  .help = "may use admin commands (besides root and the daemon's "
		  "user)"),
	K("daemon", "fault-threads", CONF_UINT, fault_threads, false, "2",
	  .min = 1, .max = 16, .opt = 't', .option = "fault-threads",
	  .arg = "N", .help = "fault threads"),
	K("daemon", "evict-threads", CONF_UINT, evict_threads, false, "2",
	  .min = 1, .max = 8, .opt = 'e', .option = "evict-threads",
	  .arg = "N", .help = "evictor threads"),
	K("daemon", "fault-spin", CONF_UINT, fault_spin, true, "50",
	  .min = 0, .max = 10000, .opt = 'S' | CONF_LONG_ONLY,
	  .option = "fault-spin", .arg = "US",
	  .help = "poll for faults this long after each one before sleeping"),
	K("daemon", "lock-memory", CONF_BOOL, lock_memory, false, "yes",
	  .opt = 'M' | CONF_LONG_ONLY, .option = "no-mlock", .optval = "no",
	  .help = "do not lock the daemon's memory"),
	K("daemon", "debug", CONF_TOKENS, debug, false, "", .opt = 'D',
	  .option = "debug", .arg = "TOKEN",
	  .help = "debug lines of a subsystem (repeatable): " LOG_TOKEN_NAMES),
	K("daemon", "metrics", CONF_LISTEN, metrics, true, "127.0.0.1:9577",
	  .opt = 'm', .option = "metrics", .arg = "HOST:PORT|off",
	  .help = "Prometheus endpoint"),
	K("daemon", "metrics-clients", CONF_UINT, metrics_clients, true, "64",
	  .min = 0, .max = 10000, .opt = 'N' | CONF_LONG_ONLY,
	  .option = "metrics-clients", .arg = "N",
	  .help = "per-client series, at most"),
	K("budget", "default-limit", CONF_SIZE, default_limit, true, "none",
	  .opt = 'l', .option = "default-limit", .arg = "SIZE",
	  .help = "resident budget of a client that set none (K, M, G)"),
	K("budget", "resident-limit", CONF_SIZE_PCT, resident_limit, true,
	  "none", .opt = 'L', .option = "resident-limit", .arg = "SIZE|N%",
	  .help = "budget of all clients together (bytes or % of RAM)"),
	K("budget", "registered-limit", CONF_SIZE_RAM, registered_limit, true,
	  "800%", .opt = 'R' | CONF_LONG_ONLY, .option = "registered-limit",
	  .arg = "SIZE|N%",
	  .help = "memory all clients together may register (N% of RAM may "
		  "pass 100)"),
	K("budget", "user-registered-limit", CONF_SIZE_RAM,
	  user_registered_limit, true, "400%",
	  .opt = 'U' | CONF_LONG_ONLY, .option = "user-registered-limit",
	  .arg = "SIZE|N%",
	  .help = "memory the clients of one user may register together"),
	K("store", "compressor", CONF_COMPRESSOR, compressor, true, "lz4",
	  .opt = 'c', .option = "compressor", .arg = "lz4|zstd",
	  .help = "for new pages"),
	K("store", "zstd-level", CONF_UINT, zstd_level, true, "3", .min = 1,
	  .max = 19, .opt = 'Z' | CONF_LONG_ONLY, .option = "zstd-level",
	  .arg = "N", .help = "zstd level, 1 to 19"),
	K("store", "pool-limit", CONF_SIZE_PCT, pool_limit, true, "20%",
	  .opt = 'p', .option = "pool-limit", .arg = "SIZE|N%",
	  .help = "compressed pool limit"),
	K("store", "dedup", CONF_BOOL, dedup, true, "yes",
	  .opt = 'd' | CONF_LONG_ONLY, .option = "dedup", .arg = "on|off",
	  .help = "share one stored copy among equal pages"),
	K("store", "max-page-sharing", CONF_UINT, max_page_sharing, true,
	  "256", .min = 2, .max = 65535, .opt = 'P' | CONF_LONG_ONLY,
	  .option = "max-page-sharing", .arg = "N",
	  .help = "pages one stored copy serves, at most"),
	K("store", "compact-ratio", CONF_UINT, compact_ratio, true, "125",
	  .min = 0, .max = 1000, .opt = 'C' | CONF_LONG_ONLY,
	  .option = "compact-ratio", .arg = "PCT",
	  .help = "compact the pool while it takes more than PCT% of its "
		  "objects' bytes (0: never)"),
	K("store", "backing-file", CONF_BACKING, backing_file, false,
	  UZSWAPD_DEFAULT_BACKING, .opt = 'b', .option = "backing-file",
	  .arg = "PATH|URI|none",
	  .help = "where the pool writes back when full: a file, an NBD "
		  "export (nbd://HOST[:PORT]/EXPORT, "
		  "nbd+unix:///EXPORT?socket=PATH), or none"),
	K("store", "backing-limit", CONF_SIZE_SOME, backing_limit, false, "1G",
	  .opt = 'B' | CONF_LONG_ONLY, .option = "backing-limit", .arg = "SIZE",
	  .help = "cap of the backing file (or of what the export takes)"),
	K("store", "backing-timeout", CONF_UINT, backing_timeout, true, "60",
	  .min = 1, .max = 86400, .opt = 'W' | CONF_LONG_ONLY,
	  .option = "backing-timeout", .arg = "SECONDS",
	  .help = "how long faults wait for an NBD export that went away "
		  "before they get SIGBUS"),
#undef K
};

#define NR_KEYS ARRAY_SIZE(conf_keys)

/* The longest line of a file read_line() accepts: libinih's buffer less
 * the newline, a possible carriage return and the NUL. */
#define CONF_LINE_MAX (INI_MAX_LINE - 3)

/*****************
 * Values
 *****************/

#define FIELD(c, k, type) ((type *)((char *)(c) + (k)->off))

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	unsigned int i;

	for (i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*out = !strcasecmp(s, yes[i]);
			return 0;
		}
	}
	return -EINVAL;
}

static int check_tokens(const char *s, const char **bad)
{
	char buf[256], *tok, *save;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	for (tok = strtok_r(buf, " ,", &save); tok;
	     tok = strtok_r(NULL, " ,", &save)) {
		if (!log_debug_token_known(tok)) {
			*bad = s + (tok - buf);
			return -EINVAL;
		}
	}
	return 0;
}

static int set_string(char **field, const char *value)
{
	char *dup = NULL;

	if (*value) {
		dup = strdup(value);
		if (!dup)
			return -ENOMEM;
	}
	free(*field);
	*field = dup;
	return 0;
}

static int set_group(struct conf *c, const char *value, char *why,
		     size_t len)
{
	struct group *g;
	char *end;

	if (!*value)
		return set_string(&c->admin_group, value);
	g = getgrnam(value);
	if (!g) {
		unsigned long gid = strtoul(value, &end, 10);

		if (*end || end == value) {
			snprintf(why, len, "no group named '%s'", value);
			return -EINVAL;
		}
		c->admin_gid = (gid_t)gid;
	} else {
		c->admin_gid = g->gr_gid;
	}
	return set_string(&c->admin_group, value);
}

/* What a key of type @t takes, for error messages. */
static const char *key_takes(enum conf_type t)
{
	switch (t) {
	case CONF_PATH:
		return "an absolute path of at most 107 characters";
	case CONF_BACKING:
		return "an absolute path, an NBD URI (nbd://, nbds://, "
		       "nbd+unix://, nbds+unix://, nbd+vsock://), or none";
	case CONF_LISTEN:
		return "HOST:PORT ([IPv6]:PORT), or off";
	case CONF_BOOL:
		return "yes or no";
	case CONF_SIZE:
		return "a size like 512M, or none";
	case CONF_SIZE_PCT:
		return "a size like 4G, N% of RAM, or none";
	case CONF_SIZE_RAM:
		return "a size like 64G, N% of RAM (400% is four times RAM), "
		       "or none";
	case CONF_SIZE_SOME:
		return "a size like 4G";
	case CONF_COMPRESSOR:
		return "lz4 or zstd";
	default:
		return "valid here";
	}
}

/* The longest value of key @k: "key = value" must fit a line of a file,
 * so that a value from the command line could be written in the file too,
 * and what conf_print() writes loads again. */
static size_t value_max(const struct conf_key *k)
{
	return CONF_LINE_MAX - strlen(k->name) - strlen(" = ");
}

/* What size_parse() accepts for a key of size type @t. */
static unsigned int size_flags(enum conf_type t)
{
	switch (t) {
	case CONF_SIZE:
		return SIZE_NONE_OK;
	case CONF_SIZE_PCT:
		return SIZE_NONE_OK | SIZE_PCT_OK;
	case CONF_SIZE_RAM:
		return SIZE_NONE_OK | SIZE_PCT_OK | SIZE_PCT_OVER;
	default:
		return 0;
	}
}

/*
 * Set key @k of @c from @value. Return: 0, or -EINVAL with @why saying
 * what the key takes, or -ENOMEM.
 */
static int set_value(struct conf *c, const struct conf_key *k,
		     const char *value, char *why, size_t len)
{
	const char *bad = value;
	struct sockaddr_storage sa;
	socklen_t sa_len;
	unsigned long n;
	char *end;

	if (strlen(value) > value_max(k)) {
		snprintf(why, len, "value longer than %zu characters",
			 value_max(k));
		return -EINVAL;
	}
	switch (k->type) {
	case CONF_PATH:
		if (*value != '/' || strlen(value) >= 108)
			break;
		return set_string(FIELD(c, k, char *), value);
	case CONF_BACKING:
		if (strcmp(value, "none") && *value != '/' &&
		    !backing_target_is_nbd(value))
			break;
		return set_string(FIELD(c, k, char *), value);
	case CONF_GROUP:
		return set_group(c, value, why, len);
	case CONF_TOKENS:
		if (check_tokens(value, &bad)) {
			snprintf(why, len, "unknown debug token in '%s'; known: "
				 LOG_TOKEN_NAMES, bad);
			return -EINVAL;
		}
		return set_string(FIELD(c, k, char *), value);
	case CONF_LISTEN:
		if (addr_parse(value, &sa, &sa_len, NULL))
			break;
		if (sa.ss_family == AF_UNSPEC)
			value = "";	/* off */
		return set_string(FIELD(c, k, char *), value);
	case CONF_UINT:
		errno = 0;
		n = strtoul(value, &end, 10);
		if (errno || *end || end == value || *value == '-' ||
		    n < k->min || n > k->max)
			break;
		*FIELD(c, k, unsigned int) = (unsigned int)n;
		return 0;
	case CONF_BOOL:
		if (parse_bool(value, FIELD(c, k, bool)))
			break;
		return 0;
	case CONF_SIZE:
	case CONF_SIZE_PCT:
	case CONF_SIZE_RAM:
	case CONF_SIZE_SOME:
		if (size_parse(value, size_flags(k->type),
			       FIELD(c, k, uint64_t)))
			break;
		return 0;
	case CONF_COMPRESSOR:
		if (compress_algo_parse(value, FIELD(c, k, enum compress_algo)))
			break;
		return 0;
	}
	if (k->type == CONF_UINT)
		snprintf(why, len, "'%s' is not a number from %u to %u", value,
			 k->min, k->max);
	else
		snprintf(why, len, "'%s' is not %s", value, key_takes(k->type));
	return -EINVAL;
}

static const struct conf_key *find_key(const char *section, const char *name,
				       bool *section_known)
{
	unsigned int i;

	*section_known = false;
	for (i = 0; i < NR_KEYS; i++) {
		if (strcmp(conf_keys[i].section, section))
			continue;
		*section_known = true;
		if (!strcmp(conf_keys[i].name, name))
			return &conf_keys[i];
	}
	return NULL;
}

/* Set [@section] @name = @value; on error @why says what is wrong. */
static int conf_set(struct conf *c, const char *section, const char *name,
		    const char *value, char *why, size_t len)
{
	const struct conf_key *k;
	bool known;

	k = find_key(section, name, &known);
	if (!k) {
		if (!*section)
			snprintf(why, len, "'%s' outside a section ([daemon], "
				 "[budget] or [store])", name);
		else if (!known)
			snprintf(why, len, "unknown section [%s]", section);
		else
			snprintf(why, len, "unknown key '%s' in [%s]", name,
				 section);
		return -EINVAL;
	}
	return set_value(c, k, value, why, len);
}

/*****************
 * Files
 *****************/

/* Say what went wrong in @err (cut to CONF_ERR_MAX). */
static void set_err(char err[CONF_ERR_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(char err[CONF_ERR_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, CONF_ERR_MAX, fmt, ap);
	va_end(ap);
}

/* What the reader and handler share while one file is parsed. */
struct parse_ctx {
	struct conf *c;
	FILE *f;
	const char *path;
	int line;		/* of the line being parsed */
	int err_line;		/* of the first error, 0 if none */
	int err;
	char why[CONF_ERR_MAX - 64];
};

/* libinih's line reader: counts lines, and refuses lines longer than its
 * buffer (inih would cut them and read the rest as another line). */
static char *read_line(char *buf, int size, void *stream)
{
	struct parse_ctx *p = stream;
	size_t n;

	if (p->err_line || !fgets(buf, size, p->f))
		return NULL;
	p->line++;
	n = strlen(buf);
	if (n == (size_t)size - 1 && buf[n - 1] != '\n' && !feof(p->f)) {
		p->err_line = p->line;
		p->err = -EINVAL;
		snprintf(p->why, sizeof(p->why), "line longer than %d "
			 "characters", size - 3);
		return NULL;
	}
	return buf;
}

static int on_value(void *user, const char *section, const char *name,
		    const char *value)
{
	struct parse_ctx *p = user;
	bool known;
	char why[sizeof(p->why) - 64];
	int ret;

	if (p->err_line)
		return 0;
	ret = conf_set(p->c, section, name, value, why, sizeof(why));
	if (ret) {
		if (find_key(section, name, &known))
			snprintf(p->why, sizeof(p->why), "%s: %s", name, why);
		else
			snprintf(p->why, sizeof(p->why), "%s", why);
		p->err_line = p->line;
		p->err = ret;
		return 0;
	}
	return 1;
}

/* Parse one file into @c. @must_exist: ENOENT is an error. */
static int parse_file(struct conf *c, const char *path, bool must_exist,
		      char err[CONF_ERR_MAX])
{
	struct parse_ctx p = { .c = c, .path = path };
	int ret;

	p.f = fopen(path, "re");
	if (!p.f) {
		ret = -errno;
		if (ret == -ENOENT && !must_exist)
			return 0;
		set_err(err, "%s: cannot read: %s", path,
			 strerror(-ret));
		return ret;
	}
	ret = ini_parse_stream(read_line, &p, on_value, &p);
	if (ferror(p.f) && !p.err_line) {
		set_err(err, "%s: cannot read: %s", path, strerror(errno));
		fclose(p.f);
		return -EIO;
	}
	fclose(p.f);
	if (ret < 0) {
		set_err(err, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (ret > 0 && (!p.err_line || ret < p.err_line)) {
		set_err(err, "%s:%d: syntax error (expected "
			 "[section], key = value, or a # comment)", path, ret);
		return -EINVAL;
	}
	if (p.err_line) {
		set_err(err, "%s:%d: %s", path, p.err_line,
			 p.why);
		return p.err;
	}
	return 0;
}

static int conf_file_filter(const struct dirent *e)
{
	return e->d_name[0] != '.' && !fnmatch("*.conf", e->d_name, 0);
}

/* The drop-in files of @path: @path.d/ *.conf in name order. */
static int parse_dropins(struct conf *c, const char *path,
			 char err[CONF_ERR_MAX])
{
	char dir[4096], file[4096 + 256];
	struct dirent **names;
	int n, i, ret = 0;

	snprintf(dir, sizeof(dir), "%s.d", path);
	n = scandir(dir, &names, conf_file_filter, alphasort);
	if (n < 0) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		set_err(err, "%s: cannot read: %s", dir,
			 strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		snprintf(file, sizeof(file), "%s/%s", dir, names[i]->d_name);
		if (ret == 0)
			ret = parse_file(c, file, true, err);
		free(names[i]);
	}
	free(names);
	return ret;
}

/*****************
 * API
 *****************/

static int conf_defaults(struct conf *c)
{
	char why[CONF_ERR_MAX];
	unsigned int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NR_KEYS; i++)
		if (set_value(c, &conf_keys[i], conf_keys[i].def, why,
			      sizeof(why)))
			return -ENOMEM;	/* the defaults are valid */
	return 0;
}

static int apply_override(struct conf *c, const struct conf_override *ov,
			  char err[CONF_ERR_MAX])
{
	char why[CONF_ERR_MAX - 64];
	int ret;

	ret = conf_set(c, ov->section, ov->key, ov->value, why, sizeof(why));
	if (ret)
		set_err(err, "--%s: %s", ov->option, why);
	return ret;
}

int conf_load(struct conf *c, const struct conf_source *src,
	      char err[CONF_ERR_MAX])
{
	const char *path = src->path ? src->path : CONF_DEFAULT_FILE;
	unsigned int i;
	int ret;

	ret = conf_defaults(c);
	if (ret) {
		set_err(err, "out of memory");
		goto out_free;
	}
	ret = parse_file(c, path, src->path_given, err);
	if (ret == 0)
		ret = parse_dropins(c, path, err);
	for (i = 0; ret == 0 && i < src->nr_ov; i++)
		ret = apply_override(c, &src->ov[i], err);
	if (ret == 0)
		return 0;
out_free:
	conf_free(c);
	return ret;
}

int conf_check_override(const struct conf_override *ov,
			char err[CONF_ERR_MAX])
{
	struct conf c;
	int ret = conf_defaults(&c);

	if (ret == 0)
		ret = apply_override(&c, ov, err);
	conf_free(&c);
	return ret;
}

/* @v as the shortest exact size text: "512M", "4G", "1234", or "20%"
 * when size_parse() would take that share of RAM with @flags. */
static void format_size(char *buf, size_t len, uint64_t v, unsigned int flags)
{
	static const char units[] = "KMGT";
	unsigned int pct, max_pct = 0;
	int i;

	if (v == 0 && (flags & SIZE_NONE_OK)) {
		snprintf(buf, len, "none");
		return;
	}
	if (flags & SIZE_PCT_OK)
		max_pct = flags & SIZE_PCT_OVER ? SIZE_PCT_MAX : 100;
	for (pct = 1; pct <= max_pct; pct++) {
		if (v == size_ram_bytes() / 100 * pct) {
			snprintf(buf, len, "%u%%", pct);
			return;
		}
	}
	for (i = 3; i >= 0; i--) {
		unsigned int shift = 10 * (unsigned int)(i + 1);

		if (v && !(v & ((1ull << shift) - 1))) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(v >> shift), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Key @k of @c as the text that would set it. */
static void format_value(const struct conf *c, const struct conf_key *k,
			 char *buf, size_t len)
{
	const char *s;

	switch (k->type) {
	case CONF_PATH:
	case CONF_BACKING:
	case CONF_GROUP:
	case CONF_TOKENS:
	case CONF_LISTEN:
		s = *FIELD(c, k, char *const);
		snprintf(buf, len, "%s",
			 s ? s : k->type == CONF_LISTEN ? "off" : "");
		break;
	case CONF_UINT:
		snprintf(buf, len, "%u", *FIELD(c, k, const unsigned int));
		break;
	case CONF_BOOL:
		snprintf(buf, len, "%s", *FIELD(c, k, const bool) ? "yes" : "no");
		break;
	case CONF_SIZE:
	case CONF_SIZE_PCT:
	case CONF_SIZE_RAM:
	case CONF_SIZE_SOME:
		format_size(buf, len, *FIELD(c, k, const uint64_t),
			    size_flags(k->type));
		break;
	case CONF_COMPRESSOR:
		snprintf(buf, len, "%s",
			 compress_algo_name(*FIELD(c, k,
						   const enum compress_algo)));
		break;
	}
}

void conf_print(const struct conf *c, FILE *out)
{
	const char *section = NULL;
	char value[4096];
	unsigned int i;

	for (i = 0; i < NR_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (!section || strcmp(section, k->section))
			fprintf(out, "%s[%s]\n", section ? "\n" : "",
				k->section);
		section = k->section;
		format_value(c, k, value, sizeof(value));
		fprintf(out, "%s = %s\n", k->name, value);
	}
}

/*****************
 * Command-line options
 *****************/

void conf_getopt_tables(struct option *longopts, size_t max, char *shortopts,
			size_t len)
{
	size_t n = 0, m = strlen(shortopts), i;

	while (n < max && longopts[n].name)
		n++;
	for (i = 0; i < NR_KEYS && n + 1 < max; i++, n++) {
		const struct conf_key *k = &conf_keys[i];

		longopts[n] = (struct option){
			k->option, k->optval ? no_argument : required_argument,
			NULL, k->opt };
		if (k->opt & CONF_LONG_ONLY || m + 3 > len)
			continue;
		shortopts[m++] = (char)k->opt;
		if (!k->optval)
			shortopts[m++] = ':';
	}
	longopts[n] = (struct option){ 0 };
	shortopts[m] = '\0';
}

int conf_option_override(int opt, const char *arg, struct conf_override *ov)
{
	unsigned int i;

	for (i = 0; i < NR_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (k->opt != opt)
			continue;
		*ov = (struct conf_override){ k->section, k->name,
					      k->optval ? k->optval : arg,
					      k->option };
		return 0;
	}
	return -ENOENT;
}

/* Print @text from column @col on, folded at 78 columns (lines after the
 * first are indented to @col). */
static void print_folded(FILE *out, const char *text, int col)
{
	int at = col, n;

	while (*text) {
		n = (int)strcspn(text, " ");
		if (at > col && at + 1 + n > 78) {
			fprintf(out, "\n%*s", col, "");
			at = col;
		} else if (at > col) {
			fputc(' ', out);
			at++;
		}
		fprintf(out, "%.*s", n, text);
		at += n;
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', out);
}

void conf_print_options(FILE *out)
{
	char flag[64], help[512];
	unsigned int i;

	for (i = 0; i < NR_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		snprintf(flag, sizeof(flag), "%c%c%c --%s%s%s",
			 k->opt & CONF_LONG_ONLY ? ' ' : '-',
			 k->opt & CONF_LONG_ONLY ? ' ' : k->opt,
			 k->opt & CONF_LONG_ONLY ? ' ' : ',', k->option,
			 k->arg ? " " : "", k->arg ? k->arg : "");
		snprintf(help, sizeof(help), "%s%s%s%s", k->help,
			 k->optval ? "" : " (default ",
			 k->optval ? "" : *k->def ? k->def : "none",
			 k->optval ? "" : ")");
		fprintf(out, "  %-26s", flag);
		if (strlen(flag) > 26)
			fprintf(out, "\n%29s", "");
		else
			fputc(' ', out);
		print_folded(out, help, 29);
	}
}

/* Copy key @k's value from @from to @to (strings duplicated). */
static int copy_value(struct conf *to, const struct conf *from,
		      const struct conf_key *k)
{
	char value[4096], why[CONF_ERR_MAX];

	format_value(from, k, value, sizeof(value));
	return set_value(to, k, value, why, sizeof(why));
}

unsigned int conf_keep_restart_keys(struct conf *next, const struct conf *cur)
{
	char a[4096], b[4096];
	unsigned int i, n = 0;

	for (i = 0; i < NR_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (k->live)
			continue;
		format_value(cur, k, a, sizeof(a));
		format_value(next, k, b, sizeof(b));
		if (!strcmp(a, b))
			continue;
		log_warn("config", "[%s] %s = %s takes effect only at restart; "
			 "keeping %s", k->section, k->name, b, a);
		if (copy_value(next, cur, k))
			log_err("config", "no memory to keep [%s] %s",
				k->section, k->name);
		n++;
	}
	return n;
}

void conf_free(struct conf *c)
{
	unsigned int i;

	for (i = 0; i < NR_KEYS; i++) {
		enum conf_type t = conf_keys[i].type;

		if (t == CONF_PATH || t == CONF_BACKING || t == CONF_GROUP ||
		    t == CONF_TOKENS || t == CONF_LISTEN) {
			free(*FIELD(c, &conf_keys[i], char *));
			*FIELD(c, &conf_keys[i], char *) = NULL;
		}
	}
}
