/*
 * check_ctl.c - integration tests of uzswapctl: the real CLI (cli/
 * uzswapctl, linking libuzswap) against a real uzswapd serving real
 * clients (uzclient pager), in both output modes (tables and --json,
 * whose every document is checked with jq), through every error path.
 *
 * Test cases of ctl_suite():
 *   usage     --help describes every command and option, COMMAND --help;
 *             no or unknown command, bad arguments, an option without its
 *             value or not for the command, an unknown column: exit 1
 *             with one line on stderr, nothing asked of any daemon; no
 *             daemon at the socket: exit 2, but version and --version
 *             print uzswapctl's own
 *   read      status, clients, client PID and version, as reports, as
 *             tables of the columns -o picks (-n, -r, -b) and as JSON,
 *             options before or after the command, agree with what the
 *             clients themselves see; the JSON has every counter of
 *             counters.h; the ratios say what they divide, the compressor
 *             is the one in use; an unknown pid: exit 4; top in batch
 *             mode: two refreshes, the clients by resident size
 *   steer     set-limit of a client, of the default and of all clients
 *             moves the budgets live; reclaim of part of a client, all of
 *             it, and of every client evicts what it says, and every byte
 *             comes back; compact; reload takes a new file, and refuses a
 *             bad one with its FILE:LINE while the old configuration
 *             stays; drain prints what it needs and what it restored
 *   access    another user: exit 3 (the socket's permissions, then the
 *             daemon's admin check), version still open to all; the
 *             admin-group, as primary or supplementary group, and changed
 *             by a reload
 *
 * One test case: CK_RUN_CASE=steer ./check_ctl. Logs kept:
 * UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/common/macros.h"
#include "lib/proto/counters.h"
#include "pager.h"

#define MIB		(1024ull * 1024)
#define PAGE		4096ull
#define RUN_BYTES	(64 * PAGE)	/* the daemon's eviction run */
#define TIMEOUT_CASE	600
#define CTL_MS		60000		/* one uzswapctl command */
#define NOBODY		65534
#define ADMIN_GID	4242		/* a group no name is bound to */
#define OUT_SIZE	65536

static struct dh_daemon dmn;
static char out[OUT_SIZE], err[OUT_SIZE];

/*****************
 * Helpers
 *****************/

/*
 * Run uzswapctl --socket SOCK @args (NULL-terminated, 28 at most) as
 * @cred (NULL: this user); its stdout and stderr land in out and err.
 * Return: its exit status.
 */
static int ctl_argv(const struct dh_cred *cred, const char *sock,
		    const char *const *args)
{
	const char *argv[32] = { UZSWAPCTL_PATH, "--socket", sock };
	int n = 3, status;

	while (n < 31 && *args)
		argv[n++] = *args++;
	argv[n] = NULL;
	status = dh_run(argv, cred, NULL, out, sizeof(out), err, sizeof(err),
			CTL_MS);
	DH_ASSERT(status >= 0 && (status & 0x7f) == 0,
		  "uzswapctl %s: %s", argv[3] ? argv[3] : "",
		  dh_status_str(status));
	return (status >> 8) & 0xff;
}

/* ctl_argv() of the arguments after @sock, up to a NULL. */
static int ctl_as(const struct dh_cred *cred, const char *sock, ...)
{
	const char *args[29];
	int n = 0;
	va_list ap;

	va_start(ap, sock);
	while (n < 28 && (args[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	args[n] = NULL;
	return ctl_argv(cred, sock, args);
}

#define ctl(...) ctl_as(NULL, dmn.sock, __VA_ARGS__, NULL)

/* uzswapctl that must succeed. */
#define ctl_ok(...)							\
	do {								\
		int rc_ = ctl(__VA_ARGS__);				\
		DH_ASSERT(rc_ == 0, "uzswapctl exit %d, stderr: %s",	\
			  rc_, err);					\
		DH_ASSERT(!err[0], "uzswapctl wrote to stderr: %s",	\
			  err);						\
	} while (0)

/* A failure: exit @code, nothing on stdout, one line on stderr holding
 * @needle. */
static void assert_failed(int rc, int code, const char *needle)
{
	const char *nl = strchr(err, '\n');

	DH_ASSERT(rc == code, "exit %d, expected %d; stderr: %s", rc, code,
		  err);
	DH_ASSERT(!out[0], "stdout of a failure: %s", out);
	DH_ASSERT(nl && !nl[1] && !strncmp(err, "uzswapctl: ", 11),
		  "not one 'uzswapctl: ' line on stderr: '%s'", err);
	DH_ASSERT(strstr(err, needle), "stderr '%s' lacks '%s'", err, needle);
}

/* @json (as uzswapctl printed it) must satisfy the jq @filter. */
static void __attribute__((format(printf, 2, 3)))
assert_jq(const char *json, const char *fmt, ...)
{
	char path[PATH_MAX], filter[1024], jout[256], jerr[1024];
	const char *argv[] = { "/usr/bin/jq", "-e", filter, path, NULL };
	va_list ap;
	int fd, status;

	va_start(ap, fmt);
	vsnprintf(filter, sizeof(filter), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/out.json", dmn.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	DH_ASSERT(fd >= 0 && write(fd, json, strlen(json)) ==
				     (ssize_t)strlen(json), "%s: %s", path,
		  strerror(errno));
	close(fd);
	status = dh_run(argv, NULL, NULL, jout, sizeof(jout), jerr,
			sizeof(jerr), CTL_MS);
	DH_ASSERT(dh_exited_ok(status), "jq -e '%s' on %s: %s %s %s", filter,
		  json, dh_status_str(status), jout, jerr);
}

/* The one-line number after "@key" in @text. */
static uint64_t field(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	unsigned long long v;

	DH_ASSERT(p && sscanf(p + strlen(key), " %llu", &v) == 1,
		  "no '%s' in: %s", key, text);
	return v;
}

/* @text has a line that is exactly @line. */
static bool has_line(const char *text, const char *line)
{
	size_t len = strlen(line);
	const char *p;

	for (p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, line, len) && (p[len] == '\n' || !p[len]))
			return true;
	return false;
}

static void pid_text(pid_t pid, char *buf, size_t size)
{
	snprintf(buf, size, "%d", (int)pid);
}

static void write_conf(const char *text)
{
	FILE *f = fopen(dmn.conf, "w");

	DH_ASSERT(f && fputs(text, f) >= 0 && fclose(f) == 0, "%s: %s",
		  dmn.conf, strerror(errno));
}

/* A pager client holding @mib MiB of text pages, all resident. */
static void pager_with(struct dh_client *c, unsigned int mib)
{
	pager_start(&dmn, c);
	pager_alloc(c, "text", mib);
}

/*****************
 * usage
 *****************/

/* Every command of uzswapctl: --help must describe each. */
static const char *const commands[] = {
	"status", "clients", "client", "top", "set-limit", "reclaim",
	"compact", "drain", "reload", "version",
};

/* Every long option: --help must list each. */
static const char *const options[] = {
	"--socket", "--json", "--output", "--output-all", "--noheadings",
	"--raw", "--bytes", "--delay", "--iterations", "--default",
	"--global", "--force", "--help", "--version",
};

#define HELP_TEXT_COL	25	/* where --help starts an item's text */

/* The --help item at @line ("  NAME ...") has its text at HELP_TEXT_COL,
 * on its line or, after a long synopsis, on the next. */
static bool described(const char *line)
{
	const char *nl = strchr(line, '\n');
	size_t i;

	if (nl && nl - line > HELP_TEXT_COL &&
	    line[HELP_TEXT_COL - 1] == ' ' && line[HELP_TEXT_COL] != ' ')
		return true;
	if (!nl)
		return false;
	for (i = 1; i <= HELP_TEXT_COL; i++)
		if (nl[i] != ' ')
			return false;
	return nl[HELP_TEXT_COL + 1] > ' ';
}

/* --help's Commands section: an item for each command, described; and
 * each option. */
static void assert_help_complete(const char *help)
{
	const char *sect = strstr(help, "\nCommands:\n"), *p, *end;
	char item[64];
	size_t i, items = 0;

	DH_ASSERT(sect, "--help has no Commands section: %s", help);
	end = strstr(sect + 1, "\n\n");
	DH_ASSERT(end, "--help: no end of Commands: %s", help);
	for (p = strchr(sect + 1, '\n') + 1; p < end; p = strchr(p, '\n') + 1)
		items += p[0] == ' ' && p[1] == ' ' && p[2] != ' ';
	DH_ASSERT_EQ(items, ARRAY_SIZE(commands));
	for (i = 0; i < ARRAY_SIZE(commands); i++) {
		snprintf(item, sizeof(item), "\n  %s", commands[i]);
		for (p = sect; (p = strstr(p + 1, item)) && p < end;)
			if (p[strlen(item)] == ' ' || p[strlen(item)] == '\n')
				break;
		DH_ASSERT(p && p < end, "--help lacks %s", commands[i]);
		DH_ASSERT(described(p + 1), "--help: %s has no description",
			  commands[i]);
	}
	for (i = 0; i < ARRAY_SIZE(options); i++) {
		snprintf(item, sizeof(item), "%s ", options[i]);
		DH_ASSERT(strstr(help, item), "--help lacks %s", options[i]);
	}
}

/* uzswapctl(8) has an item for column @name: ".BR NAME (key)", or
 * ".B NAME" for top's only, with groff's \- for each -. */
static bool documented(const char *man, const char *name)
{
	char esc[64], want[80];
	size_t i, n = 0;

	for (i = 0; name[i] && n < sizeof(esc) - 2; i++) {
		if (name[i] == '-')
			esc[n++] = '\\';
		esc[n++] = name[i];
	}
	esc[n] = '\0';
	snprintf(want, sizeof(want), "\n.BR %s \"", esc);
	if (strstr(man, want))
		return true;
	snprintf(want, sizeof(want), "\n.B %s\n", esc);
	return strstr(man, want);
}

/* Every column `uzswapctl @cmd --help` lists is in uzswapctl(8). */
static void assert_columns_documented(const char *cmd, const char *man)
{
	const char *p, *end;
	char name[64];
	int rc, n = 0;

	rc = ctl_as(NULL, "/nonexistent/uzswapd.sock", cmd, "--help", NULL);
	p = strstr(out, "\nColumns");
	DH_ASSERT(rc == 0 && p, "%s --help: %d %s", cmd, rc, out);
	for (p = strchr(p + 1, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
		if (strncmp(p, "\n  ", 3) || p[3] == ' ')
			continue;
		end = p + 3 + strcspn(p + 3, " \n");
		snprintf(name, sizeof(name), "%.*s", (int)(end - p - 3), p + 3);
		DH_ASSERT(documented(man, name), "uzswapctl(8) lacks the "
			  "column %s of %s", name, cmd);
		n++;
	}
	DH_ASSERT(n > 10, "%s --help: %d columns: %s", cmd, n, out);
}

/* uzswapctl(8), as the tree holds it; free() it. */
static char *man_page(void)
{
	const char *path = TOP_SRCDIR "/docs/uzswapctl.8";
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 1 << 17);
	size_t n;

	DH_ASSERT(f && text, "%s: %s", path, strerror(errno));
	n = fread(text, 1, (1 << 17) - 1, f);
	fclose(f);
	DH_ASSERT(n > 0 && n < (1 << 17) - 1, "%s: %zu bytes", path, n);
	return text;
}

/* Bad command lines: uzswapctl's arguments (after --socket), and what
 * its one line on stderr must say. */
static const struct bad_line {
	const char *args[6];
	const char *needle;
} bad_lines[] = {
	{ { NULL }, "no command given" },
	{ { "frobnicate" }, "unknown command 'frobnicate'" },
	{ { "client" }, "client takes PID" },
	{ { "client", "x1" }, "'x1' is not a pid" },
	{ { "set-limit", "12", "8Q" }, "'8Q' is not a budget" },
	{ { "set-limit", "12", "100K" }, "'100K' is not a budget" },
	{ { "set-limit", "--all", "8M" }, "unrecognized option '--all'" },
	{ { "set-limit", "8M" },
	  "set-limit takes PID SIZE, --default SIZE or --global" },
	{ { "set-limit", "x8", "8M" },
	  "'x8' is not a pid, and neither --default nor --global" },
	{ { "set-limit", "--default", "12", "8M" }, "set-limit takes PID SIZE" },
	{ { "set-limit", "--default", "--global", "8M" },
	  "--default and --global" },
	{ { "reclaim", "1", "2", "3" }, "[PID] [SIZE]" },
	{ { "reclaim", "lots" }, "'lots' is not a pid or a size" },
	{ { "status", "now" }, "status takes no argument" },
	{ { "drain", "now" }, "drain takes no argument" },
	{ { "--bogus", "status" }, "unrecognized option '--bogus'" },
	/* options after the command: getopt's own words */
	{ { "status", "--socket" },
	  "uzswapctl: option '--socket' requires an argument" },
	{ { "clients", "-o" }, "uzswapctl: option requires an argument -- 'o'" },
	{ { "status", "--force" }, "option --force is not for status" },
	{ { "reload", "-o", "PID" }, "option --output is not for reload" },
	{ { "top", "--json" }, "option --json is not for top" },
	{ { "top", "-j" }, "option --json is not for top" },
	{ { "top", "-d", "0" }, "'0' is not a delay" },
	{ { "top", "--iterations", "x" }, "'x' is not a number of refreshes" },
	/* columns are checked before any daemon is asked */
	{ { "clients", "-o", "PID,NOPE" }, "unknown column 'NOPE'" },
	{ { "status", "-o", "PID" }, "unknown column 'PID' for the status" },
	{ { "clients", "-o", "PID," }, "an empty column name" },
	{ { "clients", "-o", "FAULTS/S" }, "column 'FAULTS/S' is top's only" },
};

START_TEST(test_usage)
{
	size_t i;
	char *man;
	static const char *const none = "/nonexistent/uzswapd.sock";
	int rc;

	rc = ctl_as(NULL, none, "--help", NULL);
	DH_ASSERT(rc == 0 && strstr(out, "Usage: uzswapctl") && !err[0],
		  "--help: %d %s", rc, out);
	assert_help_complete(out);
	rc = ctl_as(NULL, none, "reclaim", "--help", NULL);
	DH_ASSERT(rc == 0 && strstr(out, "reclaim [PID] [SIZE]") &&
		  strstr(out, "Evict now"), "reclaim --help: %d %s", rc, out);
	rc = ctl_as(NULL, none, "--help", "clients", NULL);
	DH_ASSERT(rc == 0 && strstr(out, "Columns") &&
		  strstr(out, "\n  RESIDENT ") && !strstr(out, "FAULTS/S"),
		  "--help clients: %d %s", rc, out);
	rc = ctl_as(NULL, none, "top", "-h", NULL);
	DH_ASSERT(rc == 0 && strstr(out, "FAULTS/S") &&
		  strstr(out, "--iterations"), "top -h: %d %s", rc, out);
	for (i = 0; i < ARRAY_SIZE(bad_lines); i++)
		assert_failed(ctl_argv(NULL, none, bad_lines[i].args), 1,
			      bad_lines[i].needle);
	/* the man page has every column */
	man = man_page();
	assert_columns_documented("status", man);
	assert_columns_documented("top", man);
	free(man);
}
END_TEST

START_TEST(test_unreachable)
{
	static const char *const none = "/nonexistent/uzswapd.sock";
	int rc;

	assert_failed(ctl_as(NULL, none, "status", NULL), 2,
		      "cannot reach uzswapd: uzswapd is not running");
	assert_failed(ctl_as(NULL, none, "--json", "clients", NULL), 2,
		      "cannot reach uzswapd");
	/* version: its own, then the failure */
	rc = ctl_as(NULL, none, "version", NULL);
	DH_ASSERT(rc == 2 && !strcmp(out, "uzswapctl " PACKAGE_VERSION "\n") &&
		  strstr(err, "uzswapctl: cannot reach uzswapd"),
		  "version without a daemon: %d '%s' '%s'", rc, out, err);
	rc = ctl_as(NULL, none, "version", "--json", NULL);
	DH_ASSERT_EQ(rc, 2);
	assert_jq(out, ".uzswapctl == \"%s\" and .uzswapd == null and "
		  ".protocol == null", PACKAGE_VERSION);
	/* --version: the failure is a line of its output */
	rc = ctl_as(NULL, none, "--version", NULL);
	DH_ASSERT(rc == 0 && !err[0] &&
		  !strncmp(out, "uzswapctl " PACKAGE_VERSION "\nuzswapd not "
			   "reachable: uzswapd is not running", 58),
		  "--version without a daemon: %d '%s' '%s'", rc, out, err);
	/* a daemon that stopped: the socket file may remain */
	dh_up(&dmn, NULL);
	dh_down(&dmn, NULL);
	rc = ctl_as(NULL, dmn.sock, "version", NULL);
	DH_ASSERT(rc == 2 && strstr(err, "cannot reach uzswapd"),
		  "version of a stopped daemon: %d %s", rc, err);
}
END_TEST

/*****************
 * read
 *****************/

/* The JSON keys of the lists of counters.h. */
#define JSON_KEY_STATUS(x, name, since, pub, json, ...)	json,
#define JSON_KEY_CLIENT(x, type, name, since, pub, json, ...)	json,
static const char *const status_keys[] = {
	COUNTERS_STATUS(JSON_KEY_STATUS, _)
};
static const char *const client_keys[] = {
	COUNTERS_CLIENT(JSON_KEY_CLIENT, _)
};

/* Every key of @keys is a member of the JSON text @json: uzswapctl
 * prints every listed counter. */
static void assert_keys(const char *json, const char *const *keys,
			size_t n)
{
	char member[64];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(member, sizeof(member), "\"%s\":", keys[i]);
		DH_ASSERT(strstr(json, member), "no %s in --json", keys[i]);
	}
}

/* The status report's ratios say what they divide; the compressor line
 * names the one in use, and zstd's level only for zstd. */
static void assert_status_report(const char *compressor)
{
	char line[64];

	DH_ASSERT(strstr(out, "\ncompression          ") &&
		  strstr(out, " of compressed and raw pages in ") &&
		  strstr(out, " of pool objects\n") &&
		  strstr(out, "\npool ratio           ") &&
		  strstr(out, " of pages (same-filled too) in "),
		  "status: ratios without what they divide: %s", out);
	snprintf(line, sizeof(line), "compressor           %s", compressor);
	DH_ASSERT(has_line(out, line), "status: no '%s' in %s", line, out);
	DH_ASSERT(strstr(compressor, "zstd") || !strstr(out, "zstd"),
		  "status names zstd while %s is in use: %s", compressor,
		  out);
}

START_TEST(test_status)
{
	static const char *const args[] = { "--default-limit", "8M",
					    "--resident-limit", "1G", NULL };
	unsigned long long clients, registered;
	struct dh_client c;
	struct pstats ps;
	char pid[16], comp[16];
	int end;

	dh_up(&dmn, args);
	ctl_ok("status");
	DH_ASSERT_EQ(field(out, "clients"), 0);
	DH_ASSERT(strstr(out, "default per client 8.0 MiB") &&
		  strstr(out, "all clients' limit 1.0 GiB"), "status: %s", out);
	assert_status_report("lz4");

	pager_with(&c, 24);
	pager_wait_resident(&c, 8 * MIB, &ps);
	pid_text(c.pid, pid, sizeof(pid));
	ctl_ok("status");
	DH_ASSERT_EQ(field(out, "clients"), 1);
	assert_status_report("lz4");
	/* --json after the command as before it */
	ctl_ok("status", "--json");
	assert_jq(out, ".clients == 1 and .default_limit_bytes == %llu and "
		  ".resident_limit_bytes == %llu and .registered_bytes == %llu "
		  "and .stored_pages > 0 and .evictions > 0 and "
		  ".compression_ratio > 1.5 and .compressor == \"lz4\" and "
		  ".pool_full == false and .uptime_seconds >= 0 and "
		  ".stored_bytes == .stored_pages * 4096 and .pool_ratio > 0",
		  8 * MIB, 1024 * MIB, 24 * MIB);
	assert_jq(out, ".resident_bytes <= %llu", 8 * MIB + RUN_BYTES);
	assert_keys(out, status_keys, ARRAY_SIZE(status_keys));
	/* a table of one row, of the columns picked */
	ctl_ok("-o", "clients,Compressor,registered", "status", "-n", "-b");
	DH_ASSERT(sscanf(out, "%llu %15s %llu%n", &clients, comp, &registered,
			 &end) == 3 && clients == 1 && !strcmp(comp, "lz4") &&
		  registered == 24 * MIB && !strcmp(out + end, "\n"),
		  "status -o -n -b: '%s'", out);
	ctl_ok("status", "-r", "--output", "CLIENTS,DEFAULT-LIMIT,POOL-FULL");
	DH_ASSERT(!strcmp(out, "CLIENTS DEFAULT-LIMIT POOL-FULL\n1 8.0MiB no\n"),
		  "status -r -o: '%s'", out);
	ctl_ok("status", "-J", "-o", "POOL,RATIO");
	assert_jq(out, "keys == [\"compression_ratio\", \"pool_bytes\"]");
	ctl_ok("status", "-n", "-o", "+ZSTD-LEVEL");
	DH_ASSERT(strstr(out, " lz4 ") && !strchr(out, '\n')[1],
		  "status -n -o +ZSTD-LEVEL: '%s'", out);

	ctl_ok("version");
	DH_ASSERT(strstr(out, "uzswapctl " PACKAGE_VERSION "\n") &&
		  strstr(out, "uzswapd " PACKAGE_VERSION " (protocol 7)"),
		  "version: %s", out);
	ctl_ok("--json", "version");
	assert_jq(out, ".uzswapctl == \"%s\" and .uzswapd == \"%s\" and "
		  ".protocol == 7", PACKAGE_VERSION, PACKAGE_VERSION);
	ctl_ok("--version");
	DH_ASSERT(strstr(out, "uzswapd " PACKAGE_VERSION " (protocol 7)"),
		  "--version: %s", out);

	/* zstd, once it is the compressor in use */
	write_conf("[store]\ncompressor = zstd\nzstd-level = 5\n");
	ctl_ok("reload");
	ctl_ok("status");
	assert_status_report("zstd level 5");
	pager_ok(&c, "verify 0");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

START_TEST(test_clients)
{
	static const char *const args[] = { "--default-limit", "4M", NULL };
	struct dh_client c[2];
	struct pstats ps[2];
	char pid[2][16], row[128];
	unsigned long long resident;
	const char *l;
	int i, lpid, rows = 0;

	dh_up(&dmn, args);
	/* no client: no row (and, as lsblk's, no header) */
	ctl_ok("clients");
	DH_ASSERT(!out[0], "clients with none: '%s'", out);
	ctl_ok("--json", "clients");
	assert_jq(out, ". == []");

	for (i = 0; i < 2; i++) {
		pager_with(&c[i], 8 + 8 * (unsigned int)i);
		pager_wait_resident(&c[i], 4 * MIB, &ps[i]);
		pid_text(c[i].pid, pid[i], sizeof(pid[i]));
	}
	ctl_ok("clients");
	DH_ASSERT(!strncmp(out, "  PID COMMAND ", 14) &&
		  strstr(out, " REGIONS REGISTERED RESIDENT"),
		  "clients' header: %s", out);
	for (i = 0; i < 2; i++) {
		snprintf(row, sizeof(row), "%s uzclient ", pid[i]);
		DH_ASSERT(strstr(out, row), "no row '%s' in:\n%s", row, out);
	}
	/* -o, -n, -r, -b, wherever they stand */
	ctl_ok("clients", "-o", "PID,command", "-n", "-r");
	for (i = 0; i < 2; i++) {
		snprintf(row, sizeof(row), "%s uzclient", pid[i]);
		DH_ASSERT(has_line(out, row), "no line '%s' in:\n%s", row, out);
	}
	ctl_ok("-b", "clients", "--noheadings", "--output", "PID,RESIDENT");
	for (l = out; *l; l = strchr(l, '\n') + 1, rows++)
		DH_ASSERT(sscanf(l, "%d %llu", &lpid, &resident) == 2 &&
			  resident <= 4 * MIB + RUN_BYTES && strchr(l, '\n'),
			  "clients -b -n -o PID,RESIDENT: %s", out);
	DH_ASSERT_EQ(rows, 2);
	ctl_ok("clients", "--json", "-o", "PID,COMMAND,RATIO");
	assert_jq(out, "length == 2 and all(keys == [\"command\", "
		  "\"compression_ratio\", \"pid\"])");
	ctl_ok("--json", "clients");
	assert_jq(out, "length == 2 and (map(.pid) | sort) == ([%s, %s] | "
		  "sort) and all(.command == \"uzclient\" and .regions == 1 "
		  "and .limit_bytes == %llu and .own_limit_bytes == 0 and "
		  ".stored_bytes == .stored_pages * 4096)",
		  pid[0], pid[1], 4 * MIB);
	assert_jq(out, "map(select(.pid == %s))[0].registered_bytes == %llu",
		  pid[1], 16 * MIB);
	assert_keys(out, client_keys, ARRAY_SIZE(client_keys));

	ctl_ok("client", pid[1]);
	DH_ASSERT_EQ(field(out, "pid"), (uint64_t)c[1].pid);
	DH_ASSERT(strstr(out, "uzclient") && strstr(out, "16.0 MiB") &&
		  strstr(out, "the daemon's default") &&
		  strstr(out, "x: ") &&
		  strstr(out, " of pages compressed in ") &&
		  strstr(out, " of pool objects\n"), "client: %s", out);
	ctl_ok("client", "-n", "-r", pid[1], "-o", "PID,COMMAND,REGIONS");
	snprintf(row, sizeof(row), "%s uzclient 1\n", pid[1]);
	DH_ASSERT(!strcmp(out, row), "client -n -r -o: '%s'", out);
	ctl_ok("client", pid[1], "--json");
	pager_stats(&c[1], &ps[1]);
	assert_jq(out, ".pid == %s and .command == \"uzclient\" and .uid == "
		  "%u and .registered_bytes == %llu and .evictions >= %" PRIu64
		  " and .faults > 0 and .stored_pages > 0 and "
		  ".compression_ratio > 1.5", pid[1], (unsigned int)getuid(),
		  16 * MIB, ps[1].evictions);

	/* the pid of no client */
	assert_failed(ctl("client", "999999"), 4, "no client process has "
		      "that pid");
	assert_failed(ctl("--json", "client", "999999"), 4, "no client");
	for (i = 0; i < 2; i++) {
		pager_ok(&c[i], "verify 0");
		pager_quit(&c[i]);
	}
	dh_down(&dmn, NULL);
}
END_TEST

/* The rows of the last frame of top's output @text: the pids in their
 * order, into @pids (room for @max). Return: how many. */
static size_t last_frame_pids(const char *text, int *pids, size_t max)
{
	const char *frame = text, *p, *l;
	size_t n = 0;

	while ((p = strstr(frame, "\n\nuzswapd ")))
		frame = p + 2;
	l = strstr(frame, "\n  PID COMMAND ");
	DH_ASSERT(l, "top: no client table in the frame: %s", frame);
	for (l = strchr(l + 1, '\n'); l && l[1] && n < max;
	     l = strchr(l + 1, '\n'))
		DH_ASSERT(sscanf(l + 1, "%d", &pids[n++]) == 1,
			  "top: a row without a pid: %s", l + 1);
	return n;
}

/* top in batch mode (its stdout is not a terminal): two refreshes, one
 * after the other, the rates known in the second; the clients by their
 * resident size. */
START_TEST(test_top)
{
	struct dh_client c[2];
	int pids[4];
	const char *second, *rates;
	size_t n;
	int i;

	dh_up(&dmn, NULL);
	/* the second client holds more resident memory than the first */
	for (i = 0; i < 2; i++)
		pager_with(&c[i], 4 + 8 * (unsigned int)i);
	ctl_ok("top", "--iterations", "2", "-d", "0.2");
	DH_ASSERT(!strncmp(out, "uzswapd " PACKAGE_VERSION ", up ", 16) &&
		  strstr(out, ", 2 clients, lz4, every 0.2 s\n"),
		  "top's first line: %s", out);
	second = strstr(out, "\n\nuzswapd ");
	DH_ASSERT(second && !strstr(second + 1, "\n\nuzswapd "),
		  "top --iterations 2: not two frames: %s", out);
	rates = strstr(second, "\nper second   faults ");
	DH_ASSERT(strstr(out, "\nper second   faults -, evictions -,") &&
		  rates && isdigit((unsigned char)rates[21]),
		  "top: the rates of the frames: %s", out);
	DH_ASSERT(strstr(second, "\ncompression  ") &&
		  strstr(second, " of pages in ") &&
		  strstr(second, "\npool ratio   ") &&
		  strstr(second, "\npool         ") &&
		  strstr(second, "\ndedup        "), "top's summary: %s",
		  second);
	n = last_frame_pids(out, pids, ARRAY_SIZE(pids));
	DH_ASSERT(n == 2 && pids[0] == c[1].pid && pids[1] == c[0].pid,
		  "top: not by resident size (%d, %d first): %s",
		  (int)c[1].pid, (int)c[0].pid, second);
	for (i = 0; i < 2; i++) {
		pager_ok(&c[i], "verify 0");
		pager_quit(&c[i]);
	}
	dh_down(&dmn, NULL);
}
END_TEST

/*****************
 * steer
 *****************/

START_TEST(test_set_limit)
{
	struct dh_client c;
	struct pstats ps;
	char pid[16];

	dh_up(&dmn, NULL);
	pager_with(&c, 16);
	pid_text(c.pid, pid, sizeof(pid));
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.resident, 16 * MIB);

	/* one client */
	ctl_ok("set-limit", pid, "4M");
	DH_ASSERT(!out[0], "set-limit printed: %s", out);
	pager_wait_resident(&c, 4 * MIB + RUN_BYTES, &ps);
	DH_ASSERT_EQ(ps.limit, 4 * MIB);
	ctl_ok("--json", "client", pid);
	assert_jq(out, ".limit_bytes == %llu and .own_limit_bytes == %llu",
		  4 * MIB, 4 * MIB);
	ctl_ok("--json", "set-limit", pid, "none");
	assert_jq(out, ".target == \"%s\" and .limit_bytes == 0", pid);

	/* the default, which the client now follows */
	ctl_ok("set-limit", "--default", "2M");
	ctl_ok("--json", "status");
	assert_jq(out, ".default_limit_bytes == %llu", 2 * MIB);
	pager_ok(&c, "verify 0");
	pager_wait_resident(&c, 2 * MIB + RUN_BYTES, &ps);
	DH_ASSERT_EQ(ps.limit, 2 * MIB);
	ctl_ok("set-limit", "--default", "0");

	/* all clients together */
	ctl_ok("set-limit", "--global", "3M");
	ctl_ok("--json", "status");
	assert_jq(out, ".resident_limit_bytes == %llu and .default_limit_bytes "
		  "== 0", 3 * MIB);
	pager_ok(&c, "verify 0");
	pager_wait_resident(&c, 3 * MIB + RUN_BYTES, &ps);
	ctl_ok("set-limit", "--global", "none");
	ctl_ok("--json", "status");
	assert_jq(out, ".resident_limit_bytes == 0");

	assert_failed(ctl("set-limit", "999999", "8M"), 4, "no client");
	pager_ok(&c, "verify 0");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

/* drain: what it needs and what it restored, as JSON and as text; the
 * clients go on with every byte. */
START_TEST(test_drain)
{
	struct dh_client c[2];
	struct pstats ps;
	int i;

	dh_up(&dmn, NULL);
	for (i = 0; i < 2; i++)
		pager_with(&c[i], 16);
	ctl_ok("reclaim");
	ctl_ok("--json", "drain");
	assert_jq(out, ".needed_bytes == %llu and .restored_bytes == "
		  ".needed_bytes and .restored_pages == %llu and "
		  ".regions_released == 2 and .clients == 2 and "
		  ".regions_kept == 0 and .pages_kept == 0 and "
		  ".regions_left == 0", 32 * MIB, 32 * MIB / PAGE);
	for (i = 0; i < 2; i++) {
		pager_stats(&c[i], &ps);
		DH_ASSERT(ps.regions == 0 && ps.stored == 0, "client %d: %"
			  PRIu64 " regions, %" PRIu64 " stored", i,
			  ps.regions, ps.stored);
		pager_ok(&c[i], "verify 0");
	}
	ctl_ok("drain");
	DH_ASSERT(!strcmp(out, "draining 0 B back into 0 clients\nrestored "
			  "0 B (0 pages); 0 regions of 0 clients released\n"),
		  "drain of nothing: %s", out);
	ctl_ok("drain", "--help");
	DH_ASSERT(strstr(out, "drain [--force]") && strstr(out, "swapoff"),
		  "drain --help: %s", out);
	for (i = 0; i < 2; i++)
		pager_quit(&c[i]);
	dh_down(&dmn, NULL);
}
END_TEST

START_TEST(test_reclaim)
{
	struct dh_client c[2];
	struct pstats ps;
	uint64_t evicted;
	char pid[16];
	int i;

	dh_up(&dmn, NULL);
	for (i = 0; i < 2; i++)
		pager_with(&c[i], 16);
	pid_text(c[0].pid, pid, sizeof(pid));

	/* part of one client */
	ctl_ok("--json", "reclaim", pid, "4M");
	assert_jq(out, ".evicted_bytes >= %llu and .evicted_bytes <= %llu",
		  4 * MIB, 4 * MIB + RUN_BYTES);
	pager_stats(&c[0], &ps);
	DH_ASSERT(ps.resident <= 12 * MIB && ps.evictions >= 1024,
		  "after reclaiming 4 MiB: resident %" PRIu64 ", evictions %"
		  PRIu64, ps.resident, ps.evictions);
	pager_stats(&c[1], &ps);
	DH_ASSERT_EQ(ps.resident, 16 * MIB);

	/* the rest of it */
	ctl_ok("reclaim", pid);
	DH_ASSERT(!strncmp(out, "evicted ", 8), "reclaim: %s", out);
	pager_stats(&c[0], &ps);
	DH_ASSERT_EQ(ps.resident, 0);
	pager_ok(&c[0], "verify 0");

	/* every client */
	ctl_ok("--json", "reclaim");
	assert_jq(out, ".evicted_bytes >= %llu", 16 * MIB);
	for (i = 0; i < 2; i++) {
		pager_stats(&c[i], &ps);
		DH_ASSERT_EQ(ps.resident, 0);
	}
	/* a size alone, from every client */
	for (i = 0; i < 2; i++)
		pager_ok(&c[i], "verify 0");
	ctl_ok("--json", "reclaim", "8M");
	assert_jq(out, ".evicted_bytes >= %llu", 8 * MIB);
	evicted = 0;
	for (i = 0; i < 2; i++) {
		pager_stats(&c[i], &ps);
		evicted += 16 * MIB - ps.resident;
	}
	DH_ASSERT(evicted >= 8 * MIB, "reclaim 8M took %" PRIu64 " bytes",
		  evicted);

	ctl_ok("compact");
	DH_ASSERT(!strncmp(out, "compacted: freed ", 17),
		  "compact: %s", out);
	ctl_ok("--json", "compact");
	assert_jq(out, "(.pages_compacted | type) == \"number\" and "
		  "(.freed_bytes | type) == \"number\" and length == 2");

	assert_failed(ctl("reclaim", "999999"), 4, "no client");
	for (i = 0; i < 2; i++) {
		pager_ok(&c[i], "verify 0");
		pager_quit(&c[i]);
	}
	dh_down(&dmn, NULL);
}
END_TEST

START_TEST(test_reload)
{
	dh_up(&dmn, NULL);
	write_conf("# budgets\n[budget]\ndefault-limit = 8M\n");
	ctl_ok("reload");
	DH_ASSERT(!out[0], "reload printed: %s", out);
	ctl_ok("--json", "status");
	assert_jq(out, ".default_limit_bytes == %llu", 8 * MIB);

	write_conf("[budget]\ndefault-limit = 16M\n[store]\nzstd-level = 99\n");
	assert_failed(ctl("reload"), 5, "uzswapd.conf:4: ");
	DH_ASSERT(strstr(err, "reload refused") && strstr(err, "zstd-level") &&
		  strstr(err, "1 to 19"), "reload: %s", err);
	ctl_ok("--json", "status");
	assert_jq(out, ".default_limit_bytes == %llu", 8 * MIB);

	write_conf("[budget]\ndefault-limit = 16M\n");
	ctl_ok("--json", "reload");
	assert_jq(out, ".reloaded == true");
	ctl_ok("--json", "status");
	assert_jq(out, ".default_limit_bytes == %llu", 16 * MIB);
	dh_down(&dmn, "reload failed");
}
END_TEST

/*****************
 * access
 *****************/

START_TEST(test_other_user)
{
	struct dh_cred nobody = { NOBODY, NOBODY, NULL, 0 };

	dh_up(&dmn, NULL);
	/* the socket's mode keeps other users out */
	dh_open_socket(&dmn, 0660);
	assert_failed(ctl_as(&nobody, dmn.sock, "status", NULL), 3,
		      "permission denied");
	/* past the socket, the daemon's admin check */
	dh_open_socket(&dmn, 0666);
	assert_failed(ctl_as(&nobody, dmn.sock, "status", NULL), 3,
		      "permission denied: admin commands need root");
	assert_failed(ctl_as(&nobody, dmn.sock, "--json", "clients", NULL),
		      3, "permission denied");
	assert_failed(ctl_as(&nobody, dmn.sock, "reload", NULL), 3,
		      "permission denied");
	assert_failed(ctl_as(&nobody, dmn.sock, "reclaim", NULL), 3,
		      "permission denied");
	assert_failed(ctl_as(&nobody, dmn.sock, "set-limit", "--global",
			     "8M", NULL), 3, "permission denied");
	DH_ASSERT_EQ(ctl_as(&nobody, dmn.sock, "version", NULL), 0);
	DH_ASSERT(strstr(out, "uzswapd " PACKAGE_VERSION), "version: %s", out);
	dh_down(&dmn, NULL);
}
END_TEST

START_TEST(test_admin_group)
{
	static const char *const args[] = { "--admin-group", "4242", NULL };
	static const gid_t admin[] = { ADMIN_GID };
	struct dh_cred primary = { NOBODY, ADMIN_GID, NULL, 0 };
	struct dh_cred supplementary = { NOBODY, NOBODY, admin, 1 };
	struct dh_cred other = { NOBODY, NOBODY, NULL, 0 };

	dh_up(&dmn, args);
	dh_open_socket(&dmn, 0666);
	DH_ASSERT_EQ(ctl_as(&primary, dmn.sock, "status", NULL), 0);
	DH_ASSERT_EQ(field(out, "clients"), 0);
	DH_ASSERT_EQ(ctl_as(&supplementary, dmn.sock, "--json", "status",
			    NULL), 0);
	assert_jq(out, ".clients == 0");
	assert_failed(ctl_as(&other, dmn.sock, "status", NULL), 3,
		      "permission denied");
	dh_down(&dmn, NULL);

	/* from the file, changed by a reload */
	dh_up(&dmn, NULL);
	dh_open_socket(&dmn, 0666);
	write_conf("[daemon]\nadmin-group = 4242\n");
	ctl_ok("reload");
	DH_ASSERT_EQ(ctl_as(&primary, dmn.sock, "status", NULL), 0);
	write_conf("[daemon]\nadmin-group = 4343\n");
	ctl_ok("reload");
	assert_failed(ctl_as(&primary, dmn.sock, "status", NULL), 3,
		      "permission denied");
	write_conf("[daemon]\nadmin-group = no-such-group-here\n");
	assert_failed(ctl("reload"), 5, "no group named 'no-such-group-here'");
	dh_down(&dmn, "reload failed");
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc;

	tc = tcase_create("usage");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_unreachable);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_clients);
	tcase_add_test(tc, test_top);
	suite_add_tcase(s, tc);

	tc = tcase_create("steer");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_set_limit);
	tcase_add_test(tc, test_reclaim);
	tcase_add_test(tc, test_drain);
	tcase_add_test(tc, test_reload);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_other_user);
	tcase_add_test(tc, test_admin_group);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("ctl", ctl_suite());
}
