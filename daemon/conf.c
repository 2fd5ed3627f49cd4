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

#include <arpa/inet.h>
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

#include "conf.h"
#include "lib/common/size.h"
#include "log.h"

enum conf_type {
	CONF_PATH,	/* an absolute path (of a unix socket) */
	CONF_BACKING,	/* an absolute path, or "none" */
	CONF_GROUP,	/* a group name or number; "" for none */
	CONF_TOKENS,	/* debug subsystem tokens */
	CONF_LISTEN,	/* HOST:PORT or "off" */
	CONF_UINT,	/* a number in [min, max] */
	CONF_BOOL,
	CONF_SIZE,	/* bytes with K/M/G, or none */
	CONF_SIZE_PCT,	/* the same, or N% of RAM */
	CONF_SIZE_SOME,	/* bytes with K/M/G, not none */
	CONF_COMPRESSOR,
};

static const struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t off;
	unsigned int min, max;	/* CONF_UINT */
	bool live;		/* a reload may change it */
	const char *def;
} conf_keys[] = {
#define K(sec, key, type, field, min, max, live, def) \
	{ sec, key, type, offsetof(struct conf, field), min, max, live, def }
	K("daemon", "socket", CONF_PATH, socket, 0, 0, false,
	  UZSWAPD_DEFAULT_SOCKET),
	K("daemon", "admin-group", CONF_GROUP, admin_group, 0, 0, true, ""),
	K("daemon", "fault-threads", CONF_UINT, fault_threads, 1, 16, false,
	  "2"),
	K("daemon", "evict-threads", CONF_UINT, evict_threads, 1, 8, false,
	  "2"),
	K("daemon", "fault-spin", CONF_UINT, fault_spin, 0, 10000, true, "50"),
	K("daemon", "lock-memory", CONF_BOOL, lock_memory, 0, 0, false, "yes"),
	K("daemon", "debug", CONF_TOKENS, debug, 0, 0, false, ""),
	K("daemon", "metrics", CONF_LISTEN, metrics, 0, 0, true,
	  "127.0.0.1:9577"),
	K("daemon", "metrics-clients", CONF_UINT, metrics_clients, 0, 10000,
	  true, "64"),
	K("budget", "default-limit", CONF_SIZE, default_limit, 0, 0, true,
	  "none"),
	K("budget", "resident-limit", CONF_SIZE_PCT, resident_limit, 0, 0,
	  true, "none"),
	K("store", "compressor", CONF_COMPRESSOR, compressor, 0, 0, true,
	  "lz4"),
	K("store", "zstd-level", CONF_UINT, zstd_level, 1, 19, true, "3"),
	K("store", "pool-limit", CONF_SIZE_PCT, pool_limit, 0, 0, true, "20%"),
	K("store", "backing-file", CONF_BACKING, backing_file, 0, 0, false,
	  UZSWAPD_DEFAULT_BACKING),
	K("store", "backing-limit", CONF_SIZE_SOME, backing_limit, 0, 0, false,
	  "1G"),
#undef K
};

#define NR_KEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* The debug tokens: the subsystems whose log_debug() calls print
 * something (tests/check_debug_tokens checks the two agree). */
static const char *const debug_tokens[] = {
	"all", "ctl", "fault", "client", "main", "evict", "metrics",
};

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

/* HOST:PORT with an IPv4 literal, "localhost" or a [IPv6] literal. */
static int check_listen(const char *s)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	unsigned char addr[16];
	unsigned long port;
	size_t hlen;
	char *end;

	if (!colon || colon == s || !colon[1])
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535 || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (!strcmp(host, "localhost") || inet_pton(AF_INET, host, addr) == 1)
		return 0;
	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, addr) == 1)
			return 0;
	}
	return -EINVAL;
}

static int check_tokens(const char *s, const char **bad)
{
	char buf[256], *tok, *save;
	unsigned int i;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	for (tok = strtok_r(buf, " ,", &save); tok;
	     tok = strtok_r(NULL, " ,", &save)) {
		for (i = 0; i < sizeof(debug_tokens) / sizeof(*debug_tokens);
		     i++)
			if (!strcmp(tok, debug_tokens[i]))
				break;
		if (i == sizeof(debug_tokens) / sizeof(*debug_tokens)) {
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
		return "an absolute path";
	case CONF_BACKING:
		return "an absolute path, or none";
	case CONF_LISTEN:
		return "HOST:PORT ([IPv6]:PORT), or off";
	case CONF_BOOL:
		return "yes or no";
	case CONF_SIZE:
		return "a size like 512M, or none";
	case CONF_SIZE_PCT:
		return "a size like 4G, N% of RAM, or none";
	case CONF_SIZE_SOME:
		return "a size like 4G";
	case CONF_COMPRESSOR:
		return "lz4 or zstd";
	default:
		return "valid here";
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
	unsigned long n;
	char *end;

	switch (k->type) {
	case CONF_PATH:
		if (*value != '/' || strlen(value) >= 108)
			break;
		return set_string(FIELD(c, k, char *), value);
	case CONF_BACKING:
		if (strcmp(value, "none") && (*value != '/' || strlen(value) >= 4096))
			break;
		return set_string(FIELD(c, k, char *), value);
	case CONF_GROUP:
		return set_group(c, value, why, len);
	case CONF_TOKENS:
		if (check_tokens(value, &bad)) {
			snprintf(why, len, "unknown debug token in '%s'; known: "
				 "all ctl fault client main evict metrics", bad);
			return -EINVAL;
		}
		return set_string(FIELD(c, k, char *), value);
	case CONF_LISTEN:
		if (!strcmp(value, "off"))
			value = "";
		else if (check_listen(value))
			break;
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
	case CONF_SIZE_SOME:
		if (size_parse(value,
			       (k->type == CONF_SIZE_PCT ? SIZE_PCT_OK : 0) |
			       (k->type != CONF_SIZE_SOME ? SIZE_NONE_OK : 0),
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
		set_err(err, "%s: %s", ov->option, why);
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
 * when @pct_ok and it is that share of RAM. */
static void format_size(char *buf, size_t len, uint64_t v, bool none_ok,
			bool pct_ok)
{
	static const char units[] = "KMGT";
	unsigned int pct;
	int i;

	if (v == 0 && none_ok) {
		snprintf(buf, len, "none");
		return;
	}
	for (pct = 1; pct_ok && pct <= 100; pct++) {
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
	case CONF_SIZE_SOME:
		format_size(buf, len, *FIELD(c, k, const uint64_t),
			    k->type != CONF_SIZE_SOME,
			    k->type == CONF_SIZE_PCT);
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
