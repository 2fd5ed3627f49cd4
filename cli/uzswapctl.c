/*
 * uzswapctl.c - the command-line interface of uzswapd: its options, its
 * commands and what they print.
 *
 * uzswapctl is only a client (as lldpcli is of lldpd): it links libuzswap
 * and nothing of the daemon, and every command is one or a few library
 * calls on an admin connection (uzswap_admin_connect()). Who may do what
 * is the daemon's decision, from the connecting process's credentials.
 *
 * The command line is read as util-linux's tools read theirs: options
 * anywhere (getopt_long() permutes them before the command and its
 * arguments; "--" ends them), each checked against the command it is
 * given with. Every option is listed once, in CTL_OPTIONS, from which
 * getopt's table, the short options and --help are made.
 *
 * Output: a report or a table (libsmartcols, ctl-cols.c: -o picks its
 * columns, -n drops its header, -r makes it raw, -b prints bytes), one
 * JSON value with --json, for scripts, or the live view of `top`
 * (ctl-top.c). Errors: one line on stderr and a distinct exit status
 * (enum ctl_exit), nothing on stdout.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libsmartcols.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "lib/common/macros.h"
#include "lib/common/size.h"

struct ctl_opts opts = { .delay = 1.0 };
uzswap_t *conn;

/*****************
 * Output helpers
 *****************/

const char *ctl_size(uint64_t v, char *buf, size_t len)
{
	if (!opts.bytes)
		return size_format(v, buf, len);
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

const char *ctl_limit(uint64_t v, char *buf, size_t len)
{
	if (!v) {
		snprintf(buf, len, "none");
		return buf;
	}
	return ctl_size(v, buf, len);
}

const char *ctl_backend_name(uint64_t backend)
{
	switch (backend) {
	case UZSWAP_BACKING_FILE:
		return "file";
	case UZSWAP_BACKING_NBD:
		return "nbd";
	default:
		return "none";
	}
}

void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

const char *ctl_ratio(double r, char *buf, size_t len)
{
	if (r == 0.0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2fx", r);
	return buf;
}

/* A report line of a ratio and what it divides: "@label R: N of @num
 * in D of @den". */
static void print_ratio(const char *label, double r, uint64_t num,
			const char *num_what, uint64_t den,
			const char *den_what)
{
	char a[32], b[32], c[32];

	printf("%-20s %s: %s of %s in %s of %s\n", label,
	       ctl_ratio(r, a, sizeof(a)), ctl_size(num, b, sizeof(b)),
	       num_what, ctl_size(den, c, sizeof(c)), den_what);
}

/* Print @tb to stdout and free it; -errno if it could not be built. */
static int print_table(struct libscols_table *tb)
{
	if (!tb)
		return -errno;
	scols_print_table(tb);
	scols_unref_table(tb);
	return 0;
}

/*****************
 * Errors
 *****************/

/* Report @err from @what and return the exit status it maps to. */
static int report(const char *what, int err)
{
	int code;

	switch (-err) {
	case ENOENT:
	case ECONNREFUSED:
	case ETIMEDOUT:
	case ECONNRESET:
	case EPIPE:
	case ENAMETOOLONG:
		code = EXIT_UNREACHABLE;
		break;
	case EPERM:
		fprintf(stderr, "uzswapctl: %s: permission denied: admin "
			"commands need root, uzswapd's user or its "
			"admin-group\n", what);
		return EXIT_DENIED;
	case EACCES:
		code = EXIT_DENIED;
		break;
	case ESRCH:
		fprintf(stderr, "uzswapctl: %s: no client process has that "
			"pid\n", what);
		return EXIT_NO_CLIENT;
	case ENOSPC:
		fprintf(stderr, "uzswapctl: %s: the compressed pool and the "
			"backing file take no more pages\n", what);
		return EXIT_FAILED;
	default:
		code = EXIT_FAILED;
		break;
	}
	fprintf(stderr, "uzswapctl: %s: %s\n", what, uzswap_strerror(err));
	return code;
}

/* The command whose --help a usage error points to, once known. */
static const char *usage_command;

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uzswapctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see uzswapctl %s%s--help)\n",
		usage_command ? usage_command : "", usage_command ? " " : "");
	return EXIT_USAGE;
}

/*****************
 * Options
 *****************/

/* Which commands an option is for: bits of struct command's @takes. */
enum {
	TAKES_JSON = 1u << 0,	/* -J */
	TAKES_TABLE = 1u << 1,	/* -o, --output-all, -n, -r */
	TAKES_BYTES = 1u << 2,	/* -b */
	TAKES_TOP = 1u << 3,	/* -d, --iterations */
	TAKES_TARGET = 1u << 4,	/* --default, --global */
	TAKES_FORCE = 1u << 5,	/* --force */
	NR_TAKES = 6,
};

/* The values getopt_long() gives the options without a short form. */
enum {
	OPT_OUTPUT_ALL = 256,
	OPT_ITERATIONS,
	OPT_DEFAULT,
	OPT_GLOBAL,
	OPT_FORCE,
};

/*
 * Every option: O(long name, has_arg, value, takes, synopsis, help),
 * @value its short letter if it has one, @takes the TAKES_* bit of the
 * commands it is for (0: any command). -j is an older spelling of -J.
 */
#define CTL_OPTIONS(O)							\
	O("socket", required_argument, 's', 0, "-s, --socket PATH",	\
	  "the daemon's socket (default: $UZSWAP_SOCKET, else "		\
	  UZSWAP_DEFAULT_SOCKET ")")					\
	O("json", no_argument, 'J', TAKES_JSON, "-J, --json",		\
	  "one JSON value instead of text, for scripts (-j too)")	\
	O("output", required_argument, 'o', TAKES_TABLE,		\
	  "-o, --output LIST", "the columns to show, comma-separated; "	\
	  "+LIST: the default ones and LIST")				\
	O("output-all", no_argument, OPT_OUTPUT_ALL, TAKES_TABLE,	\
	  "    --output-all", "every column")				\
	O("noheadings", no_argument, 'n', TAKES_TABLE,			\
	  "-n, --noheadings", "no header line in tables")		\
	O("raw", no_argument, 'r', TAKES_TABLE, "-r, --raw",		\
	  "raw tables: columns one space apart, unsafe characters "	\
	  "escaped")							\
	O("bytes", no_argument, 'b', TAKES_BYTES, "-b, --bytes",	\
	  "sizes in bytes instead of KiB, MiB, GiB")			\
	O("delay", required_argument, 'd', TAKES_TOP,			\
	  "-d, --delay SECONDS", "top: seconds between refreshes "	\
	  "(default 1)")						\
	O("iterations", required_argument, OPT_ITERATIONS, TAKES_TOP,	\
	  "    --iterations N", "top: stop after N refreshes")		\
	O("default", no_argument, OPT_DEFAULT, TAKES_TARGET,		\
	  "    --default", "set-limit: the budget of each client "	\
	  "without its own")						\
	O("global", no_argument, OPT_GLOBAL, TAKES_TARGET,		\
	  "    --global", "set-limit: the budget of all clients "	\
	  "together")							\
	O("force", no_argument, OPT_FORCE, TAKES_FORCE, "    --force",	\
	  "drain: even if the pages need more than MemAvailable")	\
	O("help", no_argument, 'h', 0, "-h, --help",			\
	  "this text; COMMAND --help: the command's, with its columns") \
	O("version", no_argument, 'V', 0, "-V, --version",		\
	  "the version of uzswapctl, and of uzswapd if it answers")

#define OPT_LONG(name, has_arg, val, takes, syn, help)			\
	{ name, has_arg, NULL, val },
#define OPT_DOC(name, has_arg, val, takes, syn, help)			\
	{ name, val, takes, syn, help },

static const struct option longopts[] = {
	CTL_OPTIONS(OPT_LONG)
	{ NULL, 0, NULL, 0 },
};

static const struct opt_doc {
	const char *name;
	int val;
	unsigned int takes;
	const char *synopsis;
	const char *help;
} opt_docs[] = {
	CTL_OPTIONS(OPT_DOC)
};

/* The first option given of each TAKES_* bit, to check it against the
 * command; filled by main() from getopt_long(). */
static const char *given[NR_TAKES];

/* Remember that the option of getopt value @val was given. */
static void note_given(int val)
{
	unsigned int i, bit;

	for (i = 0; i < ARRAY_SIZE(opt_docs); i++) {
		if (opt_docs[i].val != val || !opt_docs[i].takes)
			continue;
		for (bit = 0; bit < NR_TAKES; bit++)
			if ((opt_docs[i].takes & (1u << bit)) && !given[bit])
				given[bit] = opt_docs[i].name;
	}
}

/* getopt's short options from CTL_OPTIONS, into @buf (which has room
 * for three characters per option and -j's). */
static const char *short_options(char *buf)
{
	char *p = buf;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(longopts) - 1; i++) {
		if (longopts[i].val >= 256)
			continue;
		*p++ = (char)longopts[i].val;
		if (longopts[i].has_arg == required_argument)
			*p++ = ':';
	}
	*p++ = 'j';
	*p = '\0';
	return buf;
}

/*****************
 * Arguments
 *****************/

/* A size: bytes with K, M, G or T suffix (powers of 1024), or "none". */
static int parse_size(const char *s, uint64_t *out)
{
	return size_parse(s, SIZE_NONE_OK, out);
}

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v <= 0 || v > 0x7fffffff)
		return -EINVAL;
	*out = (pid_t)v;
	return 0;
}

/* -d: seconds, more than 0 and at most a day. */
static int parse_delay(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !isfinite(v) || v <= 0 ||
	    v > 86400)
		return usage_error("'%s' is not a delay in seconds (like 1 "
				   "or 0.5)", s);
	*out = v;
	return EXIT_OK;
}

/* --iterations: a count of 1 or more. */
static int parse_iterations(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || *s == '-' || !v)
		return usage_error("'%s' is not a number of refreshes (1 or "
				   "more)", s);
	*out = v;
	return EXIT_OK;
}

/* The set-limit target given by --default or --global. */
static int set_target(pid_t target)
{
	if (opts.target && opts.target != target)
		return usage_error("%s", "--default and --global exclude each "
				   "other");
	opts.target = target;
	return EXIT_OK;
}

/*****************
 * Commands
 *****************/

/* A command's arguments, once parsed. */
struct cmd_args {
	pid_t pid;		/* client, reclaim, set-limit */
	uint64_t bytes;		/* reclaim, set-limit */
	const char *target;	/* set-limit: as given */
	bool table;		/* status, client: a table, not a report */
	struct colsel sel;	/* the columns to print */
};

/* The mean of @ns over @n, in microseconds, as text. */
static const char *mean_us(uint64_t ns, uint64_t n, char *buf, size_t len)
{
	if (!n)
		return "-";
	snprintf(buf, len, "%.0f us", (double)ns / (double)n / 1000.0);
	return buf;
}

/* The NBD export the pool writes back to. */
static void print_backing_nbd(const struct uzswap_status *st)
{
	char a[32], b[32], c[32];

	printf("%-20s %s of %s (export %s), %s, %" PRIu64 " writebacks, %"
	       PRIu64 " failed\n", "backing nbd",
	       ctl_size(st->backing_bytes, a, 32),
	       ctl_size(st->backing_limit, b, 32),
	       ctl_size(st->backing_export_bytes, c, 32),
	       st->backing_up ? "connected" : "AWAY", st->writebacks,
	       st->writeback_failures);
	printf("%-20s %" PRIu64 " made, %" PRIu64 " lost; %" PRIu64
	       " reads waited, %" PRIu64 " timed out; %" PRIu64
	       " checksum errors\n", "backing connection",
	       st->backing_connects, st->backing_disconnects,
	       st->backing_read_waits, st->backing_read_timeouts,
	       st->backing_checksum_errors);
}

/* What the write-back tier moved, and how fast it answered. */
static void print_backing_io(const struct uzswap_status *st)
{
	char a[32], b[32], c[32], r[32], w[32];

	printf("%-20s %s read, %s written, %s given back; mean read %s, "
	       "write %s\n", "backing I/O", ctl_size(st->backing_read_bytes,
						      a, 32),
	       ctl_size(st->backing_write_bytes, b, 32),
	       ctl_size(st->backing_released_bytes, c, 32),
	       mean_us(st->backing_read_ns, st->backing_reads_timed, r, 32),
	       mean_us(st->backing_write_ns, st->backing_writes_timed, w, 32));
}

static void print_status_human(const struct uzswap_status *st)
{
	char a[32], b[32], c[32];

	printf("%-20s %" PRIu64 "\n", "clients", st->clients);
	printf("%-20s %s\n", "registered",
	       ctl_size(st->registered_bytes, a, 32));
	printf("%-20s %s (all clients' limit %s, default per client %s)\n",
	       "resident", ctl_size(st->resident_bytes, a, 32),
	       ctl_limit(st->resident_limit, b, 32),
	       ctl_limit(st->default_limit, c, 32));
	printf("%-20s %" PRIu64 " pages (%s): %" PRIu64 " compressed, %"
	       PRIu64 " same-filled, %" PRIu64 " raw; %" PRIu64
	       " written back\n", "stored", st->stored_pages,
	       ctl_size(st->stored_pages * 4096, a, 32), st->compressed_pages,
	       st->same_pages, st->raw_pages, st->written_back_pages);
	print_ratio("compression", status_compression_ratio(st),
		    (st->stored_pages - st->same_pages) * 4096,
		    "compressed and raw pages", st->compressed_bytes,
		    "pool objects");
	printf("%-20s %s of %s%s, full %" PRIu64 " times\n", "pool",
	       ctl_size(st->pool_bytes, a, 32),
	       ctl_limit(st->pool_limit, b, 32),
	       st->pool_full ? ", FULL" : "", st->pool_full_events);
	print_ratio("pool ratio", status_pool_ratio(st),
		    st->stored_pages * 4096, "pages (same-filled too)",
		    st->pool_bytes, "pool");
	if (st->compressor == UZSWAP_COMPRESSOR_ZSTD)
		printf("%-20s zstd level %u\n", "compressor", st->zstd_level);
	else
		printf("%-20s lz4\n", "compressor");
	printf("%-20s %s: %" PRIu64 " objects shared by %" PRIu64
	       " more pages, %s saved (index %s)\n", "dedup",
	       st->dedup ? "on" : "off", st->dedup_pages_shared,
	       st->dedup_pages_sharing, ctl_size(st->dedup_bytes_saved, a, 32),
	       ctl_size(st->dedup_index_bytes, b, 32));
	if (st->backing_backend == UZSWAP_BACKING_NBD)
		print_backing_nbd(st);
	else if (st->backing_limit)
		printf("%-20s %s of %s (%s on disk), %" PRIu64
		       " writebacks, %" PRIu64 " failed\n", "backing file",
		       ctl_size(st->backing_bytes, a, 32),
		       ctl_size(st->backing_limit, b, 32),
		       ctl_size(st->backing_file_bytes, c, 32), st->writebacks,
		       st->writeback_failures);
	else
		printf("%-20s none\n", "backing file");
	if (st->backing_limit) {
		print_backing_io(st);
		printf("%-20s %" PRIu64 " reads, %" PRIu64 " writes\n",
		       "backing I/O errors", st->backing_read_errors,
		       st->backing_write_errors);
	}
	printf("%-20s %" PRIu64 " (%.1f/s over 10 s), %" PRIu64
	       " pages read ahead\n", "faults", st->faults,
	       (double)st->fault_rate_milli / 1000.0, st->read_ahead);
	printf("%-20s %" PRIu64 " zero-filled, %" PRIu64 " loaded, %" PRIu64
	       " woken, %" PRIu64 " write-protect, %" PRIu64 " retried\n",
	       "fault pages", st->fault_zero_pages, st->fault_loads,
	       st->fault_wakes, st->fault_wp, st->fault_retries);
	printf("%-20s %" PRIu64 " pages out, %" PRIu64 " back in, %" PRIu64
	       " refused by the pool\n", "evictions", st->evictions, st->loads,
	       st->store_failures);
	printf("%-20s %" PRIu64 " (%" PRIu64 " cut short by a full store), %"
	       PRIu64 " second chances, %" PRIu64 " pages stored\n",
	       "eviction runs", st->eviction_runs, st->eviction_store_full,
	       st->lru_second_chances, st->stores);
	printf("%-20s %" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64
	       "\n", "uptime", st->uptime_sec / 86400,
	       st->uptime_sec / 3600 % 24, st->uptime_sec / 60 % 60,
	       st->uptime_sec % 60);
}

static int cmd_status(const struct cmd_args *a)
{
	struct uzswap_status st;
	int ret;

	ret = uzswap_status(conn, &st);
	if (ret)
		return ret;
	if (opts.json) {
		cols_json(&a->sel, &st);
		putchar('\n');
	} else if (a->table) {
		return print_table(cols_table(&a->sel, &st, 1, sizeof(st)));
	} else {
		print_status_human(&st);
	}
	return EXIT_OK;
}

/* The daemon's clients as rows of the client columns; free() them. */
static int fetch_rows(struct client_row **rows, size_t *n)
{
	struct uzswap_client *list;
	size_t i;
	int ret;

	ret = uzswap_clients(conn, &list, n);
	if (ret)
		return ret;
	*rows = calloc(*n ? *n : 1, sizeof(**rows));
	if (!*rows) {
		free(list);
		return -ENOMEM;
	}
	for (i = 0; i < *n; i++)
		(*rows)[i].cl = list[i];
	free(list);
	return 0;
}

static int cmd_clients(const struct cmd_args *a)
{
	struct client_row *rows;
	size_t n, i;
	int ret;

	ret = fetch_rows(&rows, &n);
	if (ret)
		return ret;
	if (opts.json) {
		putchar('[');
		for (i = 0; i < n; i++) {
			if (i)
				putchar(',');
			cols_json(&a->sel, &rows[i]);
		}
		printf("]\n");
	} else {
		ret = print_table(cols_table(&a->sel, rows, n, sizeof(*rows)));
	}
	free(rows);
	return ret;
}

static void print_client_human(const struct uzswap_client *cl)
{
	char h1[32], h2[32];

	printf("%-20s %d\n", "pid", (int)cl->pid);
	printf("%-20s %s\n", "command", cl->comm);
	printf("%-20s %u\n", "uid", cl->uid);
	printf("%-20s %u (%s)\n", "regions", cl->regions,
	       ctl_size(cl->registered_bytes, h1, 32));
	printf("%-20s %s\n", "resident", ctl_size(cl->resident_bytes, h1, 32));
	printf("%-20s %s (%s)\n", "limit", ctl_limit(cl->limit_bytes, h1, 32),
	       cl->own_limit_bytes ? "its own" : "the daemon's default");
	printf("%-20s %" PRIu64 " pages (%s), %" PRIu64 " compressed in %s\n",
	       "stored", cl->stored_pages,
	       ctl_size(cl->stored_pages * 4096, h1, 32), cl->pool_pages,
	       ctl_size(cl->compressed_bytes, h2, 32));
	print_ratio("compression", client_ratio(cl), cl->pool_pages * 4096,
		    "pages compressed", cl->compressed_bytes, "pool objects");
	printf("%-20s %" PRIu64 "\n", "faults", cl->faults);
	printf("%-20s %" PRIu64 " (%" PRIu64 " by its own faults)\n",
	       "evictions", cl->evictions, cl->direct_evictions);
	printf("%-20s %" PRIu64 " faults put off, %" PRIu64
	       " pages let in past it\n", "at its budget", cl->budget_waits,
	       cl->over_budget_pages);
}

static int cmd_client(const struct cmd_args *a)
{
	struct client_row row = { .rated = false };
	int ret;

	ret = uzswap_client(conn, a->pid, &row.cl);
	if (ret)
		return ret;
	if (opts.json) {
		cols_json(&a->sel, &row);
		putchar('\n');
	} else if (a->table) {
		return print_table(cols_table(&a->sel, &row, 1, sizeof(row)));
	} else {
		print_client_human(&row.cl);
	}
	return EXIT_OK;
}

static int cmd_top(const struct cmd_args *a)
{
	return top_run(&a->sel);
}

static int parse_client(int argc, char **argv, struct cmd_args *a)
{
	if (parse_pid(argv[1], &a->pid))
		return usage_error("'%s' is not a pid", argv[1]);
	return EXIT_OK;
}

/* PID SIZE, or SIZE after --default or --global. */
static int parse_set_limit(int argc, char **argv, struct cmd_args *a)
{
	const char *size;

	if (argc != (opts.target ? 2 : 3))
		return usage_error("set-limit takes PID SIZE, --default SIZE "
				   "or --global SIZE");
	if (opts.target) {
		a->pid = opts.target;
		a->target = opts.target == UZSWAP_LIMIT_DEFAULT ? "--default"
								: "--global";
		size = argv[1];
	} else {
		a->target = argv[1];
		if (parse_pid(a->target, &a->pid))
			return usage_error("'%s' is not a pid, and neither "
					   "--default nor --global was given",
					   a->target);
		size = argv[2];
	}
	if (parse_size(size, &a->bytes) ||
	    (a->bytes && a->bytes < (1u << 20)))
		return usage_error("'%s' is not a budget (1M or more, like "
				   "512M or 4G, or none)", size);
	return EXIT_OK;
}

/* One argument: a plain number is a PID, anything else a SIZE. */
static int parse_reclaim(int argc, char **argv, struct cmd_args *a)
{
	if (argc == 3 && parse_pid(argv[1], &a->pid))
		return usage_error("'%s' is not a pid", argv[1]);
	if (argc == 2 && parse_pid(argv[1], &a->pid) &&
	    parse_size(argv[1], &a->bytes))
		return usage_error("'%s' is not a pid or a size (like 512M)",
				   argv[1]);
	if (argc == 3 && parse_size(argv[2], &a->bytes))
		return usage_error("'%s' is not a size (like 512M)", argv[2]);
	return EXIT_OK;
}

static int cmd_set_limit(const struct cmd_args *a)
{
	int ret = uzswap_admin_set_limit(conn, a->pid, a->bytes);

	if (ret)
		return ret;
	if (opts.json) {
		printf("{\"target\":");
		json_string(a->target);
		printf(",\"limit_bytes\":%" PRIu64 "}\n", a->bytes);
	}
	return EXIT_OK;
}

static int cmd_reclaim(const struct cmd_args *a)
{
	uint64_t evicted;
	char h[32];
	int ret;

	ret = uzswap_reclaim(conn, a->pid, a->bytes, &evicted);
	if (ret)
		return ret;
	if (opts.json)
		printf("{\"evicted_bytes\":%" PRIu64 "}\n", evicted);
	else
		printf("evicted %s\n", ctl_size(evicted, h, 32));
	return EXIT_OK;
}

static int cmd_compact(const struct cmd_args *a)
{
	uint64_t pages, freed;
	char h[32];
	int ret;

	ret = uzswap_compact(conn, &pages, &freed);
	if (ret)
		return ret;
	if (opts.json)
		printf("{\"pages_compacted\":%" PRIu64 ",\"freed_bytes\":%"
		       PRIu64 "}\n", pages, freed);
	else
		printf("compacted: freed %" PRIu64 " pool pages, %s\n", pages,
		       ctl_size(freed, h, 32));
	return EXIT_OK;
}

/* What a drain will put back: the stored bytes of every client, and how
 * many clients have some. */
static int drain_need(uint64_t *bytes, uint64_t *clients)
{
	struct uzswap_client *list;
	size_t n, i;
	int ret;

	ret = uzswap_clients(conn, &list, &n);
	if (ret)
		return ret;
	*bytes = 0;
	*clients = 0;
	for (i = 0; i < n; i++) {
		*bytes += list[i].stored_pages * 4096;
		*clients += list[i].stored_pages != 0;
	}
	free(list);
	return 0;
}

static void print_drain_json(uint64_t need, const struct uzswap_drain *r)
{
	printf("{\"needed_bytes\":%" PRIu64 ",\"restored_bytes\":%" PRIu64
	       ",\"restored_pages\":%" PRIu64 ",\"regions_released\":%"
	       PRIu64 ",\"clients\":%" PRIu64 ",\"regions_kept\":%" PRIu64
	       ",\"pages_kept\":%" PRIu64 ",\"regions_left\":%" PRIu64
	       "}\n", need, r->bytes, r->pages, r->regions, r->clients,
	       r->regions_kept, r->pages_kept, r->regions_left);
}

static void print_drain_human(const struct uzswap_drain *r)
{
	char h[32];

	printf("restored %s (%" PRIu64 " pages); %" PRIu64 " regions of %"
	       PRIu64 " clients released\n", ctl_size(r->bytes, h, 32),
	       r->pages, r->regions, r->clients);
	if (r->regions_left)
		printf("%" PRIu64 " regions were unregistered by their "
		       "clients meanwhile\n", r->regions_left);
}

/* Print the need, drain, print what was done. A region kept (a page that
 * could not be restored) makes it a failure. */
static int cmd_drain(const struct cmd_args *a)
{
	struct uzswap_drain r;
	uint64_t need, clients;
	char h[32];
	int ret;

	ret = drain_need(&need, &clients);
	if (ret)
		return ret;
	if (!opts.json) {
		printf("draining %s back into %" PRIu64 " clients\n",
		       ctl_size(need, h, 32), clients);
		fflush(stdout);
	}
	ret = uzswap_admin_drain(conn, opts.force ? UZSWAP_DRAIN_FORCE : 0,
				 &r);
	if (ret && ret != -EPERM && r.why[0]) {
		fprintf(stderr, "uzswapctl: drain refused: %s\n", r.why);
		return EXIT_FAILED;
	}
	if (ret)
		return ret;
	if (opts.json)
		print_drain_json(need, &r);
	else
		print_drain_human(&r);
	if (!r.regions_kept)
		return EXIT_OK;
	fprintf(stderr, "uzswapctl: drain: %" PRIu64 " regions stay managed "
		"with %" PRIu64 " pages that could not be restored (see "
		"uzswapd's log)\n", r.regions_kept, r.pages_kept);
	return EXIT_FAILED;
}

static int cmd_reload(const struct cmd_args *a)
{
	char why[512];
	int ret;

	ret = uzswap_reload(conn, why, sizeof(why));
	if (ret && ret != -EPERM && why[0]) {
		fprintf(stderr, "uzswapctl: reload refused, the running "
			"configuration stays: %s\n", why);
		return EXIT_FAILED;
	}
	if (ret)
		return ret;
	if (opts.json)
		printf("{\"reloaded\":true}\n");
	return EXIT_OK;
}

/*
 * print_versions() - uzswapctl's release, then the daemon's and its
 * protocol if it answers (JSON: null if not)
 * @quiet: a daemon that does not answer is a line of the output ("uzswapd
 *         not reachable: why"), not an error (--version)
 * Return: 0, or -errno from the daemon (not reported) unless @quiet.
 */
static int print_versions(bool quiet)
{
	char release[64];
	unsigned int protocol = 0;
	int ret;

	conn = uzswap_admin_connect(opts.socket);
	ret = conn ? uzswap_daemon_version(conn, release, sizeof(release),
					   &protocol)
		   : -errno;
	if (opts.json) {
		printf("{\"uzswapctl\":\"%s\",\"uzswapd\":", PACKAGE_VERSION);
		if (ret) {
			printf("null,\"protocol\":null}\n");
		} else {
			json_string(release);
			printf(",\"protocol\":%u}\n", protocol);
		}
	} else {
		printf("uzswapctl %s\n", PACKAGE_VERSION);
		if (!ret)
			printf("uzswapd %s (protocol %u)\n", release, protocol);
		else if (quiet)
			printf("uzswapd not reachable: %s\n",
			       uzswap_strerror(ret));
	}
	fflush(stdout);
	return quiet ? 0 : ret;
}

static int cmd_version(const struct cmd_args *a)
{
	int ret = print_versions(false);

	if (ret && !conn)
		return report("cannot reach uzswapd", ret);
	return ret;
}

/*****************
 * Dispatch
 *****************/

/*
 * Each command: its arguments (how many, and their synopsis), the
 * options it takes (TAKES_*), its columns, and what it does. parse()
 * checks the arguments (their count checked already) before anything is
 * asked of the daemon; run() is called connected (unless it connects
 * itself), and returns 0, an exit status it reported, or -errno for
 * run_command() to report.
 */
static const struct command {
	const char *name;
	int (*parse)(int argc, char **argv, struct cmd_args *a);
	int (*run)(const struct cmd_args *a);
	int min_args, max_args;
	unsigned int takes;
	int colset;		/* enum colset_id, or -1: none */
	bool always_table;	/* its text is a table, not a report */
	bool connects;		/* run() connects itself */
	const char *args;
	const char *summary;	/* one line for --help */
	const char *help;	/* COMMAND --help */
} commands[] = {
	{ "status", NULL, cmd_status, 0, 0,
	  TAKES_JSON | TAKES_TABLE | TAKES_BYTES, COLSET_STATUS, false,
	  false, "",
	  "the daemon's totals: memory, pool, compression, faults",
	  "The daemon's totals, one line each: clients, registered,\n"
	  "resident and stored memory, the compression and the pool with\n"
	  "what each ratio divides, the compressor in use, deduplication,\n"
	  "the backing file, faults, evictions, uptime. With -o, -n or -r:\n"
	  "a table of one row instead, of the columns below." },
	{ "clients", NULL, cmd_clients, 0, 0,
	  TAKES_JSON | TAKES_TABLE | TAKES_BYTES, COLSET_CLIENT, true, false,
	  "", "one row per client process",
	  "One row per client process, in pid order." },
	{ "client", parse_client, cmd_client, 1, 1,
	  TAKES_JSON | TAKES_TABLE | TAKES_BYTES, COLSET_CLIENT, false,
	  false, "PID", "one client process in detail",
	  "Everything the daemon knows of one client process. With -o, -n\n"
	  "or -r: a table of one row instead, of the columns below." },
	{ "top", NULL, cmd_top, 0, 0,
	  TAKES_TABLE | TAKES_BYTES | TAKES_TOP, COLSET_CLIENT, true, false,
	  "", "a live view of the pool and the clients",
	  "A live view, refreshed every second (-d): the pool, what it\n"
	  "stores and its ratios, the rates of faults, evictions, loads and\n"
	  "writebacks, deduplication, then the clients with the most\n"
	  "resident memory first. On a terminal it redraws the screen; q or\n"
	  "Ctrl-C ends it. Elsewhere it prints each refresh after the last,\n"
	  "a blank line between them, until --iterations or a signal." },
	{ "set-limit", parse_set_limit, cmd_set_limit, 1, 2,
	  TAKES_JSON | TAKES_TARGET, -1, false, false,
	  "PID|--default|--global SIZE", "set a resident budget",
	  "Set a resident budget until the next reload: of one client\n"
	  "(PID), of clients without their own (--default), or of all\n"
	  "clients together (--global). SIZE like 512M or 4G; none (or 0)\n"
	  "removes it." },
	{ "reclaim", parse_reclaim, cmd_reclaim, 0, 2,
	  TAKES_JSON | TAKES_BYTES, -1, false, false, "[PID] [SIZE]",
	  "evict memory now",
	  "Evict now, whatever the budgets: SIZE bytes (default: every\n"
	  "resident page) from PID (default: from every client). Alone, a\n"
	  "plain number is a PID and a number with K, M, G or T a SIZE.\n"
	  "Prints what was evicted." },
	{ "compact", NULL, cmd_compact, 0, 0, TAKES_JSON | TAKES_BYTES, -1,
	  false, false, "", "compact the compressed pool",
	  "Compact the compressed pool; prints the pool memory freed." },
	{ "drain", NULL, cmd_drain, 0, 0,
	  TAKES_JSON | TAKES_BYTES | TAKES_FORCE, -1, false, false,
	  "[--force]", "give every stored page back, as swapoff does",
	  "Empty uzswap, as swapoff empties a swap device: every stored page\n"
	  "goes back into its client's memory and every region stops being\n"
	  "managed (the clients go on with plain memory; they may register\n"
	  "new regions). Prints what it needs first, then waits and prints\n"
	  "what was restored. Refused if the pages need more than\n"
	  "MemAvailable, unless --force. Exit status 5 if a region keeps a\n"
	  "page that could not be restored (it stays managed)." },
	{ "reload", NULL, cmd_reload, 0, 0, TAKES_JSON, -1, false, false, "",
	  "make uzswapd read its configuration again",
	  "Make uzswapd read its configuration again (as SIGHUP does). A\n"
	  "bad file is refused with its FILE:LINE, and the running\n"
	  "configuration stays." },
	{ "version", NULL, cmd_version, 0, 0, TAKES_JSON, -1, false, true,
	  "", "the versions of uzswapctl and uzswapd",
	  "The release of uzswapctl, then the daemon's and its protocol.\n"
	  "uzswapctl's line is printed even when the daemon does not\n"
	  "answer; the exit status says whether it did (2: not reached)." },
};

#define NR_COMMANDS (ARRAY_SIZE(commands))

/* The options of @takes (any command's with ~0u), one item each. */
static void options_help(unsigned int takes)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(opt_docs); i++)
		if (!opt_docs[i].takes || (opt_docs[i].takes & takes))
			help_item(opt_docs[i].synopsis, opt_docs[i].help);
}

/* "NAME ARGS" of @cmd into @buf. */
static const char *synopsis(const struct command *cmd, char *buf,
			    size_t len)
{
	snprintf(buf, len, "%s%s%s", cmd->name, cmd->args[0] ? " " : "",
		 cmd->args);
	return buf;
}

static void usage(void)
{
	char syn[64];
	unsigned int i;

	printf("Usage: uzswapctl [OPTIONS] COMMAND [ARGS]\n"
	       "Steer and watch uzswapd, the user-space compressed swap "
	       "daemon.\n\nCommands:\n");
	for (i = 0; i < NR_COMMANDS; i++)
		help_item(synopsis(&commands[i], syn, sizeof(syn)),
			  commands[i].summary);
	printf("\nOptions (anywhere on the line):\n");
	options_help(~0u);
	printf("\nuzswapctl COMMAND --help: the command's details and "
	       "columns.\n"
	       "Exit status: 0 done, 1 usage, 2 daemon unreachable, 3 "
	       "permission\ndenied, 4 no such client, 5 the daemon refused "
	       "or failed.\n");
}

static void command_help(const struct command *cmd)
{
	char syn[64];

	printf("Usage: uzswapctl [OPTIONS] %s\n\n%s\n\nOptions:\n",
	       synopsis(cmd, syn, sizeof(syn)), cmd->help);
	options_help(cmd->takes);
	if (cmd->colset >= 0)
		cols_help((enum colset_id)cmd->colset, cmd->takes & TAKES_TOP);
}

/* The options given that @cmd does not take: EXIT_USAGE, reported. */
static int check_options(const struct command *cmd)
{
	unsigned int bit;

	for (bit = 0; bit < NR_TAKES; bit++)
		if (given[bit] && !(cmd->takes & (1u << bit)))
			return usage_error("option --%s is not for %s",
					   given[bit], cmd->name);
	return EXIT_OK;
}

/* The columns @cmd prints (its table, or all of them in JSON). */
static int select_columns(const struct command *cmd, struct cmd_args *a)
{
	enum colset_id set = (enum colset_id)cmd->colset;

	a->table = cmd->always_table || opts.output || opts.output_all ||
		   opts.noheadings || opts.raw;
	if (opts.json && !opts.output && !opts.output_all)
		return cols_select_all(set, &a->sel);
	return cols_select(set, opts.output, opts.output_all,
			   cmd->takes & TAKES_TOP, &a->sel);
}

static const struct command *command_named(const char *name)
{
	unsigned int i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

/* Check @cmd's options and arguments, connect, run it. */
static int run_checked(const struct command *cmd, int argc, char **argv,
		       struct cmd_args *args)
{
	int ret;

	ret = check_options(cmd);
	if (ret)
		return ret;
	if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args)
		return usage_error("%s takes %s", cmd->name,
				   cmd->max_args ? cmd->args : "no argument");
	ret = cmd->parse ? cmd->parse(argc, argv, args) : EXIT_OK;
	if (ret == EXIT_OK && cmd->colset >= 0)
		ret = select_columns(cmd, args);
	if (ret)
		return ret < 0 ? report(cmd->name, ret) : ret;
	if (!cmd->connects) {
		conn = uzswap_admin_connect(opts.socket);
		if (!conn)
			return report("cannot reach uzswapd", -errno);
	}
	ret = cmd->run(args);
	return ret < 0 ? report(cmd->name, ret) : ret;
}

static int run_command(int argc, char **argv, bool help)
{
	struct cmd_args args = { .pid = 0 };
	const struct command *cmd = command_named(argv[0]);
	int ret;

	if (!cmd)
		return usage_error("unknown command '%s'", argv[0]);
	usage_command = cmd->name;
	if (help) {
		command_help(cmd);
		return EXIT_OK;
	}
	ret = run_checked(cmd, argc, argv, &args);
	cols_free(&args.sel);
	if (conn)
		uzswap_disconnect(conn);
	return ret;
}

/* Take the option getopt_long() returned as @opt. Return: EXIT_OK, or
 * an exit status (reported). */
static int take_option(int opt, bool *help, bool *version)
{
	if (opt == 'j')
		opt = 'J';	/* its older spelling */
	note_given(opt);
	switch (opt) {
	case 's':
		opts.socket = optarg;
		return EXIT_OK;
	case 'J':
		opts.json = true;
		return EXIT_OK;
	case 'o':
		opts.output = optarg;
		return EXIT_OK;
	case OPT_OUTPUT_ALL:
		opts.output_all = true;
		return EXIT_OK;
	case 'n':
		opts.noheadings = true;
		return EXIT_OK;
	case 'r':
		opts.raw = true;
		return EXIT_OK;
	case 'b':
		opts.bytes = true;
		return EXIT_OK;
	case 'd':
		return parse_delay(optarg, &opts.delay);
	case OPT_ITERATIONS:
		return parse_iterations(optarg, &opts.iterations);
	case OPT_DEFAULT:
		return set_target(UZSWAP_LIMIT_DEFAULT);
	case OPT_GLOBAL:
		return set_target(UZSWAP_LIMIT_GLOBAL);
	case OPT_FORCE:
		opts.force = true;
		return EXIT_OK;
	case 'h':
		*help = true;
		return EXIT_OK;
	case 'V':
		*version = true;
		return EXIT_OK;
	default:	/* getopt said what was wrong */
		return EXIT_USAGE;
	}
}

int main(int argc, char **argv)
{
	char shorts[3 * ARRAY_SIZE(longopts) + 2];
	bool help = false, version = false;
	int opt, ret;

	/* getopt's messages start with argv[0]: "uzswapctl: option '-s'
	 * requires an argument", whatever path ran it */
	argv[0] = (char *)"uzswapctl";
	short_options(shorts);
	while ((opt = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		ret = take_option(opt, &help, &version);
		if (ret)
			return ret;
	}
	if (cols_init())
		return report("starting", -ENOMEM);
	if (version) {
		ret = print_versions(true);
		if (conn)
			uzswap_disconnect(conn);
		return ret;
	}
	if (optind >= argc && help) {
		usage();
		return EXIT_OK;
	}
	if (optind >= argc)
		return usage_error("%s", "no command given");
	return run_command(argc - optind, argv + optind, help);
}
