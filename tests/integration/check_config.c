/*
 * check_config.c - integration tests of uzswapd's configuration: the real
 * daemon reading real files (libinih), through `uzswapd --check-config`,
 * through startup, and through SIGHUP while it serves a real client.
 *
 * Test cases of config_suite():
 *   file      the shipped config/uzswapd.conf (as built from its template)
 *             documents every key with its true default (uncommented, it
 *             changes nothing); drop-ins in
 *             name order, then the command line, win; every error path
 *             (unknown section or key, a key outside a section, a bad
 *             value of every kind, a syntax error, an over-long line, a
 *             missing, unreadable or non-regular file, a bad drop-in)
 *             stops with exit 9 and one "FILE:LINE: ..." line, at
 *             --check-config and at startup alike
 *   reload    SIGHUP changes the budget of a running client live; a bad
 *             file is refused and the old configuration stays; a key that
 *             needs a restart keeps its running value with a warning; the
 *             compressor changes for new pages while old ones still load;
 *             the metrics address is taken, moved and turned off
 *
 * One test case: CK_RUN_CASE=reload ./check_config. Logs kept:
 * UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/common/macros.h"
#include "lib/proto/proto.h"
#include "pager.h"

#define MIB		(1024ull * 1024)
#define PAGE		4096ull
#define RUN_BYTES	(64 * PAGE)	/* the daemon's eviction run */
#define TIMEOUT_CASE	600
#define RUN_MS		60000		/* one --check-config */
#define NOBODY		65534
#define OUT_SIZE	65536
#define EXIT_CONFIG	9

static struct dh_daemon dmn;
static char out[OUT_SIZE], err[OUT_SIZE];

/*****************
 * Helpers
 *****************/

/* A scratch directory of the test's own (a daemon's, never started). */
static void scratch(void)
{
	DH_ASSERT(dh_prepare(&dmn) == 0, "prepare");
}

/*
 * Run `uzswapd --check-config --config @path ARGS...` (NULL-terminated)
 * as @cred; stdout and stderr land in out and err. Returns the exit
 * status.
 */
static int check_config_as(const struct dh_cred *cred, const char *path, ...)
{
	const char *argv[32] = { UZSWAPD_PATH, "--check-config", "--config",
				 path };
	int n = 4, status;
	va_list ap;

	va_start(ap, path);
	while (n < 31 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	status = dh_run(argv, cred, NULL, out, sizeof(out), err, sizeof(err),
			RUN_MS);
	DH_ASSERT(status >= 0 && (status & 0x7f) == 0,
		  "uzswapd --check-config: %s", dh_status_str(status));
	return (status >> 8) & 0xff;
}

#define check_config(...) check_config_as(NULL, __VA_ARGS__, NULL)

/* Exit 9, nothing on stdout, one "uzswapd: @where...@what" line. */
static void assert_refused(int rc, const char *where, const char *what)
{
	const char *nl = strchr(err, '\n');

	DH_ASSERT(rc == EXIT_CONFIG, "exit %d, expected %d; stderr: %s", rc,
		  EXIT_CONFIG, err);
	DH_ASSERT(!out[0], "stdout of a refusal: %s", out);
	DH_ASSERT(nl && !nl[1] && !strncmp(err, "uzswapd: ", 9),
		  "not one 'uzswapd: ' line on stderr: '%s'", err);
	DH_ASSERT(strstr(err, where) && strstr(err, what),
		  "stderr '%s' lacks '%s' or '%s'", err, where, what);
}

/* @text as the whole of dmn.conf must be refused at @line with @what. */
static void assert_bad_conf(const char *text, int line, const char *what)
{
	char where[PATH_MAX + 16];

	dh_write_file(&dmn, dmn.conf, "%s", text);
	snprintf(where, sizeof(where), "%s:%d: ", dmn.conf, line);
	assert_refused(check_config(dmn.conf), where, what);
}

/* The value of "@key = " in --check-config output. */
static void conf_value(const char *key, char *buf, size_t size)
{
	char needle[128];
	const char *p;
	size_t n;

	snprintf(needle, sizeof(needle), "\n%s = ", key);
	p = strstr(out, needle);
	DH_ASSERT(p, "no %s in: %s", key, out);
	p += strlen(needle);
	n = strcspn(p, "\n");
	DH_ASSERT(n < size, "%s too long", key);
	memcpy(buf, p, n);
	buf[n] = '\0';
}

#define ASSERT_VALUE(key, want)						\
	do {								\
		char v_[256];						\
		conf_value(key, v_, sizeof(v_));			\
		DH_ASSERT(!strcmp(v_, want), "%s = '%s', expected '%s'", \
			  key, v_, want);				\
	} while (0)

static void status(struct proto_status_reply *st)
{
	int ret = dh_status(&dmn, st);

	DH_ASSERT(ret == 0, "STATUS: %s", strerror(-ret));
}

/*****************
 * file
 *****************/

/*
 * Every "#key = value" line of the shipped file, uncommented, changes
 * nothing; and every key --check-config prints is in the file.
 */
START_TEST(test_shipped_file)
{
	char line[512], key[128], defaults[OUT_SIZE], path[PATH_MAX];
	FILE *in, *uncommented;
	int keys = 0;

	scratch();
	dh_write_file(&dmn, dmn.conf, "%s", "");
	DH_ASSERT_EQ(check_config(dmn.conf), 0);
	memcpy(defaults, out, sizeof(out));

	snprintf(path, sizeof(path), "%s/config/uzswapd.conf", TOP_BUILDDIR);
	DH_ASSERT_EQ(check_config(path), 0);
	DH_ASSERT(!strcmp(out, defaults), "the shipped file changes the "
		  "defaults:\n%s\nvs\n%s", out, defaults);

	in = fopen(path, "re");
	uncommented = fopen(dmn.conf, "w");
	DH_ASSERT(in && uncommented, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), in)) {
		if (sscanf(line, "#%127[a-z-] =", key) == 1 &&
		    strstr(line, " =")) {
			fputs(line + 1, uncommented);
			keys++;
			DH_ASSERT(strstr(defaults, key), "the file documents "
				  "'%s', which is no key", key);
		} else {
			fputs(line, uncommented);
		}
	}
	fclose(in);
	DH_ASSERT(fclose(uncommented) == 0, "write");
	DH_ASSERT_EQ(check_config(dmn.conf), 0);
	DH_ASSERT(!strcmp(out, defaults), "the documented defaults are not "
		  "the defaults:\n%s\nvs\n%s", out, defaults);
	/* one documented line per key printed ("key = value" lines) */
	{
		const char *p;
		int printed = 0;

		for (p = defaults; (p = strstr(p, " = ")); p++)
			printed++;
		DH_ASSERT_EQ(keys, printed);
	}
	dh_remove(&dmn);
}
END_TEST

START_TEST(test_order)
{
	char dropins[PATH_MAX], path[2 * PATH_MAX];

	scratch();
	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 4M\n"
		   "[store]\ncompressor = zstd ; inline comment\n"
		   "pool-limit = 10%%\n");
	DH_ASSERT(strlen(dmn.conf) + 3 < sizeof(dropins), "path");
	strcat(strcpy(dropins, dmn.conf), ".d");
	DH_ASSERT(mkdir(dropins, 0700) == 0, "mkdir: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/20-b.conf", dropins);
	dh_write_file(&dmn, path, "[budget]\ndefault-limit = 16M\n");
	snprintf(path, sizeof(path), "%s/10-a.conf", dropins);
	dh_write_file(&dmn, path, "# a comment\n; another\n[budget]\n"
		   "default-limit = 8M\nresident-limit = 1G\n");
	snprintf(path, sizeof(path), "%s/30-c.conf.bak", dropins);
	dh_write_file(&dmn, path, "this is not read\n");
	snprintf(path, sizeof(path), "%s/.hidden.conf", dropins);
	dh_write_file(&dmn, path, "nor is this\n");

	DH_ASSERT_EQ(check_config(dmn.conf), 0);
	DH_ASSERT(!err[0], "stderr: %s", err);
	ASSERT_VALUE("default-limit", "16M");
	ASSERT_VALUE("resident-limit", "1G");
	ASSERT_VALUE("compressor", "zstd");
	ASSERT_VALUE("pool-limit", "10%");
	ASSERT_VALUE("metrics", "127.0.0.1:9577");

	/* the command line wins over every file */
	DH_ASSERT_EQ(check_config(dmn.conf, "--default-limit", "32M",
				  "--compressor", "lz4", "--metrics", "off",
				  "--no-mlock", "-D", "ctl", "-D", "fault"), 0);
	ASSERT_VALUE("default-limit", "32M");
	ASSERT_VALUE("compressor", "lz4");
	ASSERT_VALUE("metrics", "off");
	ASSERT_VALUE("lock-memory", "no");
	ASSERT_VALUE("debug", "ctl,fault");
	ASSERT_VALUE("resident-limit", "1G");

	/* a bad drop-in names itself */
	snprintf(path, sizeof(path), "%s/25-bad.conf", dropins);
	dh_write_file(&dmn, path, "[store]\n\nzstd-level = 20\n");
	assert_refused(check_config(dmn.conf), "25-bad.conf:3: ",
		       "zstd-level: '20' is not a number from 1 to 19");
	dh_remove(&dmn);
}
END_TEST

START_TEST(test_errors)
{
	static const struct {
		const char *text;
		int line;
		const char *what;
	} bad[] = {
		{ "[store]\nfoo = 1\n", 2, "unknown key 'foo' in [store]" },
		{ "[nope]\nx = 1\n", 2, "unknown section [nope]" },
		{ "pool-limit = 1G\n", 1, "'pool-limit' outside a section" },
		{ "[store]\npool-limit = lots\n", 2, "pool-limit: 'lots' is "
		  "not a size like 4G, N% of RAM, or none" },
		{ "[budget]\nresident-limit = 120%\n", 2, "resident-limit" },
		{ "[budget]\ndefault-limit = 5%\n", 2, "not a size like 512M, "
		  "or none" },
		{ "[budget]\ndefault-limit = 99999999999G\n", 2,
		  "default-limit" },
		{ "[daemon]\nfault-threads = 0\n", 2, "from 1 to 16" },
		{ "[daemon]\nevict-threads = 9\n", 2, "from 1 to 8" },
		{ "[daemon]\nfault-threads = -1\n", 2, "fault-threads" },
		{ "[daemon]\nlock-memory = maybe\n", 2, "yes or no" },
		{ "[store]\ncompressor = lzma\n", 2, "lz4 or zstd" },
		{ "[daemon]\nmetrics = 1.2.3:99\n", 2, "HOST:PORT" },
		{ "[daemon]\nmetrics = 127.0.0.1:70000\n", 2, "HOST:PORT" },
		{ "[daemon]\nmetrics = 127.0.0.1\n", 2, "HOST:PORT" },
		{ "[daemon]\nmetrics-clients = 10001\n", 2, "0 to 10000" },
		{ "[daemon]\nsocket = relative.sock\n", 2, "absolute path" },
		{ "[store]\nbacking-file = backing\n", 2, "absolute path" },
		{ "[store]\nbacking-limit = none\n", 2, "a size like 4G" },
		{ "[daemon]\nadmin-group = no-such-group-xyz\n", 2,
		  "no group named 'no-such-group-xyz'" },
		{ "[daemon]\ndebug = ctl bogus\n", 2, "unknown debug token" },
		{ "[store\n", 1, "syntax error" },
		{ "[store]\ncompressor lz4\n", 2, "syntax error" },
		{ "[budget]\ndefault-limit = 8M\n\n[store]\n\ncompressor = "
		  "zstd\nzstd-level = 0\n", 7, "zstd-level" },
	};
	char longline[400], where[PATH_MAX + 16];
	struct dh_cred nobody = { NOBODY, NOBODY, NULL, 0 };
	unsigned int i;
	int rc;

	scratch();
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		assert_bad_conf(bad[i].text, bad[i].line, bad[i].what);

	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	dh_write_file(&dmn, dmn.conf, "[daemon]\nsocket = /%s\n", longline);
	snprintf(where, sizeof(where), "%s:2: ", dmn.conf);
	assert_refused(check_config(dmn.conf), where, "line longer than");

	/* a file that is missing, unreadable, or not a file */
	snprintf(where, sizeof(where), "%s/none.conf", dmn.dir);
	assert_refused(check_config(where), where, "cannot read: No such file");
	dh_write_file(&dmn, dmn.conf, "[budget]\n");
	DH_ASSERT(chmod(dh_root(), 0711) == 0 && chmod(dmn.dir, 0711) == 0 &&
		  chmod(dmn.conf, 0600) == 0, "chmod: %s", strerror(errno));
	assert_refused(check_config_as(&nobody, dmn.conf, NULL), dmn.conf,
		       "cannot read: Permission denied");
	assert_refused(check_config(dmn.dir), dmn.dir, "cannot read");

	/* startup refuses the same way, before it touches anything */
	dh_write_file(&dmn, dmn.conf, "[store]\ncompressor = lzma\n");
	{
		const char *argv[] = { UZSWAPD_PATH, "--config", dmn.conf,
				       "--socket", dmn.sock, "--no-mlock",
				       NULL };

		rc = dh_run(argv, NULL, NULL, out, sizeof(out), err,
			    sizeof(err), RUN_MS);
		DH_ASSERT(rc >= 0 && (rc & 0x7f) == 0, "uzswapd: %s",
			  dh_status_str(rc));
		snprintf(where, sizeof(where), "%s:2: ", dmn.conf);
		assert_refused((rc >> 8) & 0xff, where, "lz4 or zstd");
		DH_ASSERT(access(dmn.sock, F_OK) < 0, "the socket was made");
	}
	/* a bad option value is a usage error (1), not a file's (9) */
	rc = check_config(dmn.dir, "--pool-limit", "lots");
	DH_ASSERT(rc == 1 && strstr(err, "--pool-limit: 'lots' is not"),
		  "--pool-limit lots: exit %d: %s", rc, err);
	dh_remove(&dmn);
}
END_TEST

/*****************
 * reload
 *****************/

START_TEST(test_hup_budget)
{
	struct proto_status_reply st;
	struct dh_client c;
	struct pstats ps;

	dh_up(&dmn, NULL);
	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 16M\n");
	dh_hup_and_wait(&dmn, "configuration reloaded", 1);
	status(&st);
	DH_ASSERT_EQ(st.default_limit, 16 * MIB);

	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 24);
	pager_wait_resident(&c, 16 * MIB + RUN_BYTES, &ps);
	DH_ASSERT_EQ(ps.limit, 16 * MIB);

	/* lowered live: the client is brought down to it */
	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 4M\n");
	dh_hup_and_wait(&dmn, "configuration reloaded", 2);
	pager_wait_resident(&c, 4 * MIB + RUN_BYTES, &ps);
	DH_ASSERT_EQ(ps.limit, 4 * MIB);

	/* a bad file: refused, the 4M budget stays */
	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 4 megs\n");
	dh_hup_and_wait(&dmn, "reload failed", 1);
	status(&st);
	DH_ASSERT_EQ(st.default_limit, 4 * MIB);
	DH_ASSERT(dh_log_count(&dmn, "uzswapd.conf:2: default-limit") == 1,
		  "the log does not say where the error is");

	/* a key that needs a restart keeps its running value */
	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 4M\n[daemon]\n"
		   "fault-threads = 3\n");
	dh_hup_and_wait(&dmn, "configuration reloaded", 3);
	DH_ASSERT(dh_log_count(&dmn, "fault-threads = 3 takes effect only "
			       "at restart; keeping 2") == 1,
		  "no warning about fault-threads");

	/* the compressor of new pages; old pages still come back */
	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 4M\n[store]\n"
		   "compressor = zstd\nzstd-level = 5\n");
	dh_hup_and_wait(&dmn, "configuration reloaded", 4);
	pager_ok(&c, "verify 0");
	pager_wait_resident(&c, 4 * MIB + RUN_BYTES, &ps);
	status(&st);
	DH_ASSERT(st.compressor == 1 && st.zstd_level == 5,
		  "compressor %" PRIu64 " level %" PRIu64, st.compressor,
		  st.zstd_level);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
	dh_down(&dmn, "reload failed");
}
END_TEST

/* The port of the last "serving http://HOST:PORT/metrics" log line. */
static int metrics_port(int nth)
{
	long long deadline = dh_deadline(SETTLE_MS);
	char line[1024];
	const char *p;
	int port = 0;

	while (dh_log_count(&dmn, "serving http://") < nth) {
		DH_ASSERT(dh_now_ms() < deadline, "metrics never served");
		dh_sleep_ms(20);
	}
	DH_ASSERT(dh_log_find(&dmn, "serving http://", line, sizeof(line)),
		  "no metrics line");
	p = strstr(line, "127.0.0.1:");
	DH_ASSERT(p && sscanf(p + 10, "%d", &port) == 1 && port > 0,
		  "bad metrics line: %s", line);
	return port;
}

/* curl http://127.0.0.1:@port/metrics; returns curl's exit status. */
static int curl_metrics(int port)
{
	char url[64];
	const char *argv[] = { "/usr/bin/curl", "-sS", "--max-time", "20",
			       url, NULL };
	int rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	rc = dh_run(argv, NULL, NULL, out, sizeof(out), err, sizeof(err),
		    RUN_MS);
	DH_ASSERT(rc >= 0 && (rc & 0x7f) == 0, "curl: %s", dh_status_str(rc));
	return (rc >> 8) & 0xff;
}

START_TEST(test_hup_metrics)
{
	const char *argv[] = { UZSWAPD_PATH, "--config", dmn.conf, "--socket",
			       dmn.sock, "--no-mlock", "--backing-file",
			       "none", "-D", "all", NULL };
	int port;

	DH_ASSERT(dh_prepare(&dmn) == 0, "prepare");
	dh_write_file(&dmn, dmn.conf, "[daemon]\nmetrics = off\n");
	DH_ASSERT(dh_launch(&dmn, argv, NULL) == 0, "uzswapd did not start");
	DH_ASSERT_EQ(dh_log_count(&dmn, "serving http://"), 0);

	dh_write_file(&dmn, dmn.conf, "[daemon]\nmetrics = 127.0.0.1:0\n");
	dh_hup_and_wait(&dmn, "configuration reloaded", 1);
	port = metrics_port(1);
	DH_ASSERT_EQ(curl_metrics(port), 0);
	DH_ASSERT(strstr(out, "uzswap_build_info{"), "metrics: %.300s", out);

	dh_write_file(&dmn, dmn.conf, "[daemon]\nmetrics = off\n");
	dh_hup_and_wait(&dmn, "configuration reloaded", 2);
	DH_ASSERT(curl_metrics(port) != 0, "metrics still served after off");
	dh_down(&dmn, NULL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("file");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_shipped_file);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_hup_budget);
	tcase_add_test(tc, test_hup_metrics);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("config", config_suite());
}
