/*
 * uzswapctl.c - the command-line interface of uzswapd.
 *
 * uzswapctl is only a client (as lldpcli is of lldpd): it links libuzswap
 * and nothing of the daemon, and every command is one or a few library
 * calls on an admin connection (uzswap_admin_connect()). Who may do what
 * is the daemon's decision, from the connecting process's credentials.
 *
 * Output: a human table by default (sizes in KiB/MiB/GiB), one JSON value
 * with --json (an object, or an array for `clients`), for scripts. Errors:
 * one line on stderr and a distinct exit status (enum ctl_exit), nothing on
 * stdout.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "lib/common/macros.h"
#include "lib/common/size.h"
#include "lib/proto/counters.h"
#include "uzswap.h"

/* Exit statuses (listed in uzswapctl(8)). */
enum ctl_exit {
	EXIT_OK = 0,
	EXIT_USAGE = 1,		/* bad command line */
	EXIT_UNREACHABLE = 2,	/* the daemon is not running or not answering */
	EXIT_DENIED = 3,	/* not allowed */
	EXIT_NO_CLIENT = 4,	/* no client with that pid */
	EXIT_FAILED = 5,	/* the daemon refused or failed */
};

static bool json;
static const char *socket_path;	/* NULL: $UZSWAP_SOCKET or the default */
static uzswap_t *conn;		/* opened by the command, once its
				 * arguments are known to be good */

/*****************
 * Output helpers
 *****************/

/* @v bytes as "0 B", "12.0 KiB", "1.5 GiB", into @buf. */
static const char *human(uint64_t v, char *buf, size_t len)
{
	return size_format(v, buf, len);
}

/* A limit: "none" for 0. */
static const char *human_limit(uint64_t v, char *buf, size_t len)
{
	if (!v) {
		snprintf(buf, len, "none");
		return buf;
	}
	return human(v, buf, len);
}

/* Print @s as a JSON string. */
static void json_string(const char *s)
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

/* Original bytes per stored byte; 0 when nothing is stored. */
static double ratio(uint64_t pages, uint64_t bytes)
{
	return bytes ? (double)pages * 4096.0 / (double)bytes : 0.0;
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

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uzswapctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see uzswapctl --help)\n");
	return EXIT_USAGE;
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

/*****************
 * Commands
 *****************/

/* A command's arguments, once parsed. */
struct cmd_args {
	pid_t pid;		/* client, reclaim, set-limit */
	uint64_t bytes;		/* reclaim, set-limit */
	const char *target;	/* set-limit: as given */
	unsigned int flags;	/* drain: UZSWAP_DRAIN_* */
};

static const char *compressor_name(uint64_t compressor)
{
	return compressor == UZSWAP_COMPRESSOR_ZSTD ? "zstd" : "lz4";
}

/* A member of a JSON object after the first: ,"@key":@v as @show says. */
static void json_counter(const char *key, enum counter_show show,
			 uint64_t v)
{
	printf(",\"%s\":", key);
	switch (show) {
	case COUNTER_BOOL:
		printf("%s", v ? "true" : "false");
		break;
	case COUNTER_MILLI:
		printf("%.3f", (double)v / 1000.0);
		break;
	case COUNTER_COMPRESSOR:
		json_string(compressor_name(v));
		break;
	case COUNTER_NUMBER:
		printf("%" PRIu64, v);
		break;
	}
}

#define CTL_STATUS_JSON(x, name, since, pub, json, show, ...)		\
	json_counter(json, show, st->pub);
#define CTL_CLIENT_JSON(x, type, name, since, pub, json, ...)		\
	json_counter(json, COUNTER_NUMBER, cl->pub);

/* Every counter of the list, and the ratio derived from them. */
static void print_status_json(const struct uzswap_status *st)
{
	printf("{\"compression_ratio\":%.3f",
	       ratio(st->stored_pages - st->same_pages, st->compressed_bytes));
	COUNTERS_STATUS(CTL_STATUS_JSON, _)
	printf("}\n");
}

static void print_status_human(const struct uzswap_status *st)
{
	char a[32], b[32], c[32];

	printf("%-20s %" PRIu64 "\n", "clients", st->clients);
	printf("%-20s %s\n", "registered", human(st->registered_bytes, a, 32));
	printf("%-20s %s (all clients' limit %s, default per client %s)\n",
	       "resident", human(st->resident_bytes, a, 32),
	       human_limit(st->resident_limit, b, 32),
	       human_limit(st->default_limit, c, 32));
	printf("%-20s %" PRIu64 " pages (%s): %" PRIu64 " compressed, %"
	       PRIu64 " same-filled, %" PRIu64 " raw; %" PRIu64
	       " written back\n", "stored", st->stored_pages,
	       human(st->stored_pages * 4096, a, 32), st->compressed_pages,
	       st->same_pages, st->raw_pages, st->written_back_pages);
	printf("%-20s %s of %s%s (compressed data %s), full %" PRIu64
	       " times\n", "pool",
	       human(st->pool_bytes, a, 32), human_limit(st->pool_limit, b, 32),
	       st->pool_full ? ", FULL" : "",
	       human(st->compressed_bytes, c, 32), st->pool_full_events);
	printf("%-20s %s: %" PRIu64 " objects shared by %" PRIu64
	       " more pages, %s saved (index %s)\n", "dedup",
	       st->dedup ? "on" : "off", st->dedup_pages_shared,
	       st->dedup_pages_sharing, human(st->dedup_bytes_saved, a, 32),
	       human(st->dedup_index_bytes, b, 32));
	printf("%-20s %.2f (%s, zstd level %u)\n", "compression ratio",
	       ratio(st->stored_pages - st->same_pages, st->compressed_bytes),
	       compressor_name(st->compressor), st->zstd_level);
	if (st->backing_limit) {
		printf("%-20s %s of %s (%s on disk), %" PRIu64
		       " writebacks, %" PRIu64 " failed\n", "backing file",
		       human(st->backing_bytes, a, 32),
		       human(st->backing_limit, b, 32),
		       human(st->backing_file_bytes, c, 32), st->writebacks,
		       st->writeback_failures);
		printf("%-20s %" PRIu64 " reads, %" PRIu64 " writes\n",
		       "backing I/O errors", st->backing_read_errors,
		       st->backing_write_errors);
	} else {
		printf("%-20s none\n", "backing file");
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

static int parse_client(int argc, char **argv, struct cmd_args *a)
{
	if (parse_pid(argv[1], &a->pid))
		return usage_error("'%s' is not a pid", argv[1]);
	return EXIT_OK;
}

static int parse_set_limit(int argc, char **argv, struct cmd_args *a)
{
	a->target = argv[1];
	if (!strcmp(a->target, "--default"))
		a->pid = UZSWAP_LIMIT_DEFAULT;
	else if (!strcmp(a->target, "--global"))
		a->pid = UZSWAP_LIMIT_GLOBAL;
	else if (parse_pid(a->target, &a->pid))
		return usage_error("'%s' is not a pid, --default or --global",
				   a->target);
	if (parse_size(argv[2], &a->bytes) ||
	    (a->bytes && a->bytes < (1u << 20)))
		return usage_error("'%s' is not a budget (1M or more, like "
				   "512M or 4G, or none)", argv[2]);
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

static int parse_drain(int argc, char **argv, struct cmd_args *a)
{
	if (argc == 2 && strcmp(argv[1], "--force"))
		return usage_error("'%s' is not --force", argv[1]);
	a->flags = argc == 2 ? UZSWAP_DRAIN_FORCE : 0;
	return EXIT_OK;
}

static int cmd_status(const struct cmd_args *a)
{
	struct uzswap_status st;
	int ret;

	ret = uzswap_status(conn, &st);
	if (ret)
		return ret;
	if (json)
		print_status_json(&st);
	else
		print_status_human(&st);
	return EXIT_OK;
}

/* Who the client is, every counter of the list, and the ratio. */
static void print_client_json(const struct uzswap_client *cl)
{
	printf("{\"pid\":%d,\"uid\":%u,\"command\":", (int)cl->pid, cl->uid);
	json_string(cl->comm);
	COUNTERS_CLIENT(CTL_CLIENT_JSON, _)
	printf(",\"compression_ratio\":%.3f}",
	       ratio(cl->pool_pages, cl->compressed_bytes));
}

#define CLIENT_HEADER "%7s  %-16s %7s %11s %11s %11s %11s %6s %10s\n"

static void print_client_row(const struct uzswap_client *cl)
{
	char reg[32], res[32], lim[32], sto[32], rat[16];

	if (cl->compressed_bytes)
		snprintf(rat, sizeof(rat), "%.2f",
			 ratio(cl->pool_pages, cl->compressed_bytes));
	else
		snprintf(rat, sizeof(rat), "-");
	printf("%7d  %-16s %7u %11s %11s %11s %11s %6s %10" PRIu64 "\n",
	       (int)cl->pid, cl->comm, cl->regions,
	       human(cl->registered_bytes, reg, 32),
	       human(cl->resident_bytes, res, 32),
	       human_limit(cl->limit_bytes, lim, 32),
	       human(cl->stored_pages * 4096, sto, 32), rat, cl->faults);
}

static int cmd_clients(const struct cmd_args *a)
{
	struct uzswap_client *list;
	size_t n, i;
	int ret;

	ret = uzswap_clients(conn, &list, &n);
	if (ret)
		return ret;
	if (json) {
		putchar('[');
		for (i = 0; i < n; i++) {
			if (i)
				putchar(',');
			print_client_json(&list[i]);
		}
		printf("]\n");
	} else {
		printf(CLIENT_HEADER, "PID", "COMMAND", "REGIONS",
		       "REGISTERED", "RESIDENT", "LIMIT", "STORED", "RATIO",
		       "FAULTS");
		for (i = 0; i < n; i++)
			print_client_row(&list[i]);
	}
	free(list);
	return EXIT_OK;
}

static int cmd_client(const struct cmd_args *a)
{
	struct uzswap_client cl;
	char h1[32], h2[32];
	int ret;

	ret = uzswap_client(conn, a->pid, &cl);
	if (ret)
		return ret;
	if (json) {
		print_client_json(&cl);
		putchar('\n');
		return EXIT_OK;
	}
	printf("%-20s %d\n", "pid", (int)cl.pid);
	printf("%-20s %s\n", "command", cl.comm);
	printf("%-20s %u\n", "uid", cl.uid);
	printf("%-20s %u (%s)\n", "regions", cl.regions,
	       human(cl.registered_bytes, h1, 32));
	printf("%-20s %s\n", "resident", human(cl.resident_bytes, h1, 32));
	printf("%-20s %s (%s)\n", "limit", human_limit(cl.limit_bytes, h1, 32),
	       cl.own_limit_bytes ? "its own" : "the daemon's default");
	printf("%-20s %" PRIu64 " pages (%s), %" PRIu64 " compressed in %s\n",
	       "stored", cl.stored_pages, human(cl.stored_pages * 4096, h1, 32),
	       cl.pool_pages, human(cl.compressed_bytes, h2, 32));
	if (cl.compressed_bytes)
		printf("%-20s %.2f\n", "compression ratio",
		       ratio(cl.pool_pages, cl.compressed_bytes));
	printf("%-20s %" PRIu64 "\n", "faults", cl.faults);
	printf("%-20s %" PRIu64 "\n", "evictions", cl.evictions);
	return EXIT_OK;
}

static int cmd_set_limit(const struct cmd_args *a)
{
	int ret = uzswap_admin_set_limit(conn, a->pid, a->bytes);

	if (ret)
		return ret;
	if (json)
		printf("{\"target\":\"%s\",\"limit_bytes\":%" PRIu64 "}\n",
		       a->target, a->bytes);
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
	if (json)
		printf("{\"evicted_bytes\":%" PRIu64 "}\n", evicted);
	else
		printf("evicted %s\n", human(evicted, h, 32));
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
	if (json)
		printf("{\"pages_compacted\":%" PRIu64 ",\"freed_bytes\":%"
		       PRIu64 "}\n", pages, freed);
	else
		printf("compacted: freed %" PRIu64 " pool pages, %s\n", pages,
		       human(freed, h, 32));
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
	       PRIu64 " clients released\n", human(r->bytes, h, 32), r->pages,
	       r->regions, r->clients);
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
	if (!json) {
		printf("draining %s back into %" PRIu64 " clients\n",
		       human(need, h, 32), clients);
		fflush(stdout);
	}
	ret = uzswap_admin_drain(conn, a->flags, &r);
	if (ret && ret != -EPERM && r.why[0]) {
		fprintf(stderr, "uzswapctl: drain refused: %s\n", r.why);
		return EXIT_FAILED;
	}
	if (ret)
		return ret;
	if (json)
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
	if (json)
		printf("{\"reloaded\":true}\n");
	return EXIT_OK;
}

static int cmd_version(const struct cmd_args *a)
{
	char release[64];
	unsigned int protocol;
	int ret;

	ret = uzswap_daemon_version(conn, release, sizeof(release), &protocol);
	if (ret)
		return ret;
	if (json) {
		printf("{\"uzswapctl\":\"%s\",\"uzswapd\":", PACKAGE_VERSION);
		json_string(release);
		printf(",\"protocol\":%u}\n", protocol);
	} else {
		printf("uzswapctl %s\nuzswapd %s (protocol %u)\n",
		       PACKAGE_VERSION, release, protocol);
	}
	return EXIT_OK;
}

/*****************
 * Dispatch
 *****************/

/*
 * Each command: its arguments (how many, and their synopsis) and what it
 * does. parse() checks the arguments (their count checked already) before
 * anything is asked of the daemon; run() is called connected, and returns
 * 0, an exit status it reported, or -errno for run_command() to report.
 */
static const struct command {
	const char *name;
	int (*parse)(int argc, char **argv, struct cmd_args *a);
	int (*run)(const struct cmd_args *a);
	int min_args, max_args;
	const char *args;
	const char *help;
} commands[] = {
	{ "status", NULL, cmd_status, 0, 0, "",
	  "The daemon's totals: clients, registered, resident and stored\n"
	  "memory, the pool and its limit, the compression ratio, the\n"
	  "backing file, the fault rate." },
	{ "clients", NULL, cmd_clients, 0, 0, "",
	  "One row per client process: pid, command, regions, registered,\n"
	  "resident, limit, stored, compression ratio, faults." },
	{ "client", parse_client, cmd_client, 1, 1, "PID",
	  "Everything the daemon knows of one client process." },
	{ "set-limit", parse_set_limit, cmd_set_limit, 2, 2, "PID|--default|--global SIZE",
	  "Set a resident budget until the next reload: of one client\n"
	  "(PID), of clients without their own (--default), or of all\n"
	  "clients together (--global). SIZE like 512M or 4G; none (or 0)\n"
	  "removes it." },
	{ "reclaim", parse_reclaim, cmd_reclaim, 0, 2, "[PID] [SIZE]",
	  "Evict now, whatever the budgets: SIZE bytes (default: every\n"
	  "resident page) from PID (default: from every client). Alone, a\n"
	  "plain number is a PID and a number with K, M, G or T a SIZE.\n"
	  "Prints what was evicted." },
	{ "compact", NULL, cmd_compact, 0, 0, "",
	  "Compact the compressed pool; prints the pool memory freed." },
	{ "drain", parse_drain, cmd_drain, 0, 1, "[--force]",
	  "Empty uzswap, as swapoff empties a swap device: every stored page\n"
	  "goes back into its client's memory and every region stops being\n"
	  "managed (the clients go on with plain memory; they may register\n"
	  "new regions). Prints what it needs first, then waits and prints\n"
	  "what was restored. Refused if the pages need more than\n"
	  "MemAvailable, unless --force. Exit status 5 if a region keeps a\n"
	  "page that could not be restored (it stays managed)." },
	{ "reload", NULL, cmd_reload, 0, 0, "",
	  "Make uzswapd read its configuration again (as SIGHUP does). A\n"
	  "bad file is refused with its FILE:LINE, and the running\n"
	  "configuration stays." },
	{ "version", NULL, cmd_version, 0, 0, "",
	  "The release of uzswapctl and of the daemon, and the protocol." },
};

#define NR_COMMANDS (ARRAY_SIZE(commands))

static void usage(FILE *out)
{
	unsigned int i;

	fprintf(out, "Usage: uzswapctl [--socket PATH] [--json] COMMAND "
		"[ARGS]\nSteer and watch uzswapd, the user-space compressed "
		"swap daemon.\n\nCommands:\n");
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
			commands[i].args);
	fprintf(out,
		"\nOptions:\n"
		"  -s, --socket PATH  the daemon's socket (default: "
		"$UZSWAP_SOCKET,\n"
		"                     else " UZSWAP_DEFAULT_SOCKET ")\n"
		"  -j, --json         print JSON instead of tables\n"
		"  -h, --help         this text; COMMAND --help for a "
		"command's\n"
		"  -V, --version      uzswapctl's version\n\n"
		"Exit status: 0 done, 1 usage, 2 daemon unreachable, 3 "
		"permission\ndenied, 4 no such client, 5 the daemon refused "
		"or failed.\n");
}

static void command_help(const struct command *cmd)
{
	printf("Usage: uzswapctl [--socket PATH] [--json] %s %s\n\n%s\n",
	       cmd->name, cmd->args, cmd->help);
}

static int run_command(int argc, char **argv)
{
	struct cmd_args args = { .pid = 0 };
	const struct command *cmd = NULL;
	unsigned int i;
	int ret;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(argv[0], commands[i].name))
			cmd = &commands[i];
	if (!cmd)
		return usage_error("unknown command '%s'", argv[0]);
	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			command_help(cmd);
			return EXIT_OK;
		}
	}
	if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args)
		return usage_error("%s takes %s%s", cmd->name,
				   cmd->max_args ? "" : "no argument",
				   cmd->args);
	ret = cmd->parse ? cmd->parse(argc, argv, &args) : EXIT_OK;
	if (ret)
		return ret;
	conn = uzswap_admin_connect(socket_path);
	if (!conn)
		return report("cannot reach uzswapd", -errno);
	ret = cmd->run(&args);
	uzswap_disconnect(conn);
	return ret < 0 ? report(cmd->name, ret) : ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	opterr = 0;	/* one line of ours instead of getopt's */
	/* "+": options end at the command, whose own arguments follow */
	while ((opt = getopt_long(argc, argv, "+s:jhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("uzswapctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("%s", "no command given");
	return run_command(argc - optind, argv + optind);
}
