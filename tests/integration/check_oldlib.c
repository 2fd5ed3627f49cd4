/*
 * check_oldlib.c - programs linked against the previous release's
 * libuzswap keep working with this tree's uzswapd (issue 11). 0.2.0's
 * uzclient and uzswapctl, built from this tree's history by
 * integration/oldlib-build (tests/Makefile.am pins the commit), run
 *  - with 0.2.0's libuzswap.so.0, the library they were built with, and
 *  - with this tree's libuzswap.so.0 (LD_LIBRARY_PATH): the ABI. Every
 *    symbol version they need must resolve at startup (LD_BIND_NOW), and
 *    the structs they read (uzswap_stats, uzswap_status, uzswap_client)
 *    must hold what their 0.2.0 header says;
 * each under a budget (pages evicted, faulted back intact), across a
 * SIGKILL of the daemon and its successor's takeover of the client, and
 * across an orderly stop (SIGTERM), which hands the client over too.
 *
 * 0.2.0's library never reconnects: after a takeover its control calls
 * fail for good with the error that broke its stream (-EPIPE or
 * -ECONNRESET, as 0.2.0 documents), but its memory is the successor's to
 * serve: every page reads back intact, a touch that blocked while no
 * daemon ran goes on, its budget holds, and pages pressed out again by
 * the operator's set-limit come back. This tree's library resumes by
 * itself and its calls work again.
 *
 * The old code is built without sanitizers. In the sanitizer builds this
 * tree's library needs its sanitizer's runtime loaded first: the old
 * programs run with it preloaded (the one this test was linked with).
 *
 * Exit 77 (SKIP) where the old sources cannot be had: no git, or the
 * commit not in the history (a dist tarball, a shallow clone).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "daemon_harness.h"
#include "lib/common/macros.h"
#include "lib/proto/proto.h"
#include "pager.h"

#define MIB		(1024 * 1024)
#define BUILD_MS	120000	/* oldlib-build: ten files to compile */
#define CTL_MS		60000	/* one uzswapctl command */
#define MAX_CTL_ARGS	4

#define OLD_UZCLIENT	OLDLIB_DIR "/uzclient"
#define OLD_UZSWAPCTL	OLDLIB_DIR "/uzswapctl"

/* The libuzswap.so.0 the old programs run with: the tests' loop index. */
enum lib { LIB_OLD, LIB_NEW, NR_LIBS };

static const char *const lib_dirs[NR_LIBS] = {
	[LIB_OLD] = OLDLIB_DIR "/lib",
	[LIB_NEW] = NEWLIB_DIR,
};

static const char *const lib_names[NR_LIBS] = {
	[LIB_OLD] = "libuzswap " OLDLIB_RELEASE,
	[LIB_NEW] = "this tree's libuzswap",
};

static struct dh_daemon dmn;

/*****************
 * Which library
 *****************/

/* The sanitizer runtime mapped into this process, if any: its path into
 * @buf. */
static bool sanitizer_runtime(char *buf, size_t size)
{
	char line[PATH_MAX + 128], *path;
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		path = strchr(line, '/');
		if (!path || (!strstr(path, "/libasan.so") &&
			      !strstr(path, "/libtsan.so")))
			continue;
		path[strcspn(path, "\n")] = '\0';
		snprintf(buf, size, "%s", path);
		found = true;
	}
	fclose(f);
	return found;
}

/* Programs started from now on load @lib, every symbol bound at startup:
 * a missing symbol version fails the start, not a later call. This
 * tree's library, in a sanitizer build, with its runtime preloaded. */
static void lib_env_set(enum lib lib)
{
	char rt[PATH_MAX];

	setenv("LD_LIBRARY_PATH", lib_dirs[lib], 1);
	setenv("LD_BIND_NOW", "1", 1);
	if (lib == LIB_NEW && sanitizer_runtime(rt, sizeof(rt)))
		setenv("LD_PRELOAD", rt, 1);
}

/* Programs started from now on (the daemons) load what they were built
 * with. */
static void lib_env_clear(void)
{
	unsetenv("LD_LIBRARY_PATH");
	unsetenv("LD_BIND_NOW");
	unsetenv("LD_PRELOAD");
}

/* Fails the test unless process @pid mapped its libuzswap from @lib's
 * directory. */
static void assert_lib_loaded(pid_t pid, enum lib lib)
{
	char maps[64], line[PATH_MAX + 128], dir[PATH_MAX], *path;
	const char *found = "none";
	size_t len;
	FILE *f;

	DH_ASSERT(realpath(lib_dirs[lib], dir), "%s: %s", lib_dirs[lib],
		  strerror(errno));
	len = strlen(dir);
	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
	f = fopen(maps, "re");
	DH_ASSERT(f, "%s: %s", maps, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		path = strchr(line, '/');
		if (path && strstr(path, "/libuzswap.so")) {
			path[strcspn(path, "\n")] = '\0';
			found = path;
			break;
		}
	}
	fclose(f);
	DH_ASSERT(!strncmp(found, dir, len) && found[len] == '/',
		  "the client runs with libuzswap %s, not %s's", found, dir);
}

/*****************
 * The old programs
 *****************/

/* 0.2.0's uzclient pager with @lib. */
static void old_pager_start(enum lib lib, struct dh_client *c)
{
	lib_env_set(lib);
	pager_start_prog(&dmn, c, OLD_UZCLIENT);
	lib_env_clear();
	assert_lib_loaded(c->pid, lib);
}

/*
 * old_uzswapctl() - run 0.2.0's uzswapctl with @lib: "--socket SOCK
 * --json" and the NULL-terminated arguments after @out_size (at most
 * MAX_CTL_ARGS); its output into @out. Fails the test unless it exits 0.
 */
static void old_uzswapctl(enum lib lib, char *out, size_t out_size, ...)
{
	const char *argv[5 + MAX_CTL_ARGS] = {
		OLD_UZSWAPCTL, "--socket", dmn.sock, "--json",
	};
	size_t n = 4;
	char err[1024];
	int status;
	va_list ap;

	va_start(ap, out_size);
	while (n < ARRAY_SIZE(argv) - 1 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	lib_env_set(lib);
	status = dh_run(argv, NULL, NULL, out, out_size, err, sizeof(err),
			dh_scaled_ms(CTL_MS));
	lib_env_clear();
	DH_ASSERT(dh_exited_ok(status), "uzswapctl %s with %s: %s: %s",
		  argv[4], lib_names[lib], dh_status_str(status), err);
}

/*
 * fill_under_budget() - 0.2.0's uzclient pager with @lib, under a 4 MiB
 * budget: compressible, incompressible and same-filled regions, 12 MiB
 * in all, evicted until their resident part is within the budget; their
 * stats into @ps.
 */
static void fill_under_budget(enum lib lib, struct dh_client *c,
			      struct pstats *ps)
{
	old_pager_start(lib, c);
	pager_ok(c, "limit 4");
	pager_alloc(c, "text", 8);
	pager_alloc(c, "random", 2);
	pager_alloc(c, "same", 2);
	pager_wait_resident(c, 5 * MIB, ps);
	DH_ASSERT(ps->evictions > 0 && ps->stored > 0 && ps->regions == 3,
		  "%" PRIu64 " evictions, %" PRIu64 " pages stored, %" PRIu64
		  " regions", ps->evictions, ps->stored, ps->regions);
}

/*****************
 * The daemon
 *****************/

static void status(struct proto_status_reply *s)
{
	DH_ASSERT_EQ(dh_status(&dmn, s), 0);
}

/* Poll until the daemon's clients have at most @bytes resident; its
 * totals then into @s. */
static void wait_daemon_resident(uint64_t bytes, struct proto_status_reply *s)
{
	long long deadline = dh_deadline(SETTLE_MS);

	for (status(s); s->resident_bytes > bytes; status(s)) {
		DH_ASSERT(dh_now_ms() < deadline, "resident %" PRIu64
			  " bytes, not within %" PRIu64, s->resident_bytes,
			  bytes);
		dh_sleep_ms(20);
	}
}

/* Poll until the daemon has let go of every client. */
static void wait_no_clients(void)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);
	struct proto_status_reply s;

	for (status(&s); s.clients; status(&s)) {
		DH_ASSERT(dh_now_ms() < deadline, "%" PRIu64 " clients left "
			  "after their exit", s.clients);
		dh_sleep_ms(20);
	}
}

/* SIGKILL the daemon, start its successor on the same state directory:
 * it must take the client and its three regions over. */
static void kill_and_restart(void)
{
	int ret;

	dh_kill(&dmn);
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 1 clients, 3 regions", NULL,
			      0), "no takeover in the log");
}

/* The pager's stats once a successor took it over: 0.2.0's library gave
 * its connection up for good (the error that broke its stream); this
 * tree's resumed it. */
static void assert_stats_after_takeover(enum lib lib, struct dh_client *c)
{
	char reply[256];
	int err = 0;

	pager_do(c, reply, sizeof(reply), "stats");
	if (lib == LIB_OLD)
		DH_ASSERT(sscanf(reply, "fail %d", &err) == 1 &&
			  (err == -EPIPE || err == -ECONNRESET),
			  "0.2.0's stats after a takeover: %s", reply);
	else
		DH_ASSERT(!strncmp(reply, "ok", 2) &&
			  strstr(reply, " regions 3"),
			  "stats after a takeover: %s", reply);
}

/*****************
 * Tests
 *****************/

/* Evicted pages fault back intact; 0.2.0's uzswapctl reads the daemon's
 * clients, totals and version (LIBUZSWAP_0.2 calls, public structs). */
START_TEST(test_budget_and_faults)
{
	enum lib lib = (enum lib)_i;
	struct pstats ps, after;
	char out[4096], want[128];
	struct dh_client c;

	dh_up(&dmn, NULL);
	fill_under_budget(lib, &c, &ps);
	pager_ok(&c, "verify all");
	pager_stats(&c, &after);
	DH_ASSERT(after.faults > ps.faults, "verify all faulted nothing in");

	old_uzswapctl(lib, out, sizeof(out), "clients", NULL);
	snprintf(want, sizeof(want), "[{\"pid\":%d,", (int)c.pid);
	DH_ASSERT(!strncmp(out, want, strlen(want)) &&
		  strstr(out, "\"regions\":3,"), "clients: %s", out);
	old_uzswapctl(lib, out, sizeof(out), "status", NULL);
	snprintf(want, sizeof(want), "{\"clients\":1,\"registered_bytes\":%d,",
		 12 * MIB);
	DH_ASSERT(!strncmp(out, want, strlen(want)), "status: %s", out);
	old_uzswapctl(lib, out, sizeof(out), "version", NULL);
	snprintf(want, sizeof(want), "{\"uzswapctl\":\"%s\",\"uzswapd\":\"%s\","
		 "\"protocol\":%d}\n", OLDLIB_RELEASE, PACKAGE_VERSION,
		 PROTO_VERSION);
	DH_ASSERT(!strcmp(out, want), "version: %s", out);

	pager_quit(&c);
	wait_no_clients();
	dh_down(&dmn, NULL);
}
END_TEST

/* Across a SIGKILL and the successor's takeover: every page reads back,
 * the successor evicts and faults the client's pages again, writes stay.
 * 0.2.0's library gives up its connection for good; this tree's resumes
 * it. */
START_TEST(test_takeover)
{
	enum lib lib = (enum lib)_i;
	struct proto_status_reply s;
	char out[4096], pid[16];
	struct dh_client c;
	struct pstats ps;

	dh_up(&dmn, NULL);
	fill_under_budget(lib, &c, &ps);
	kill_and_restart();
	pager_ok(&c, "verify all");

	assert_stats_after_takeover(lib, &c);

	/* the operator's budget presses the pages out of the successor's
	 * client, and they come back through its faults */
	snprintf(pid, sizeof(pid), "%d", (int)c.pid);
	old_uzswapctl(lib, out, sizeof(out), "set-limit", pid, "4M", NULL);
	wait_daemon_resident(5 * MIB, &s);
	DH_ASSERT(s.stored_pages > 0, "the successor stored nothing");
	pager_ok(&c, "verify all");
	pager_ok(&c, "rewrite 0");
	pager_ok(&c, "verify all");

	pager_quit(&c);
	wait_no_clients();
	dh_down(&dmn, NULL);
}
END_TEST

/* A touch of an evicted page while no daemon runs waits, and goes on
 * once the successor took over, with nothing done by the client. */
START_TEST(test_blocked_touch_goes_on)
{
	enum lib lib = (enum lib)_i;
	struct dh_client c;
	struct pstats ps;
	int ret;

	dh_up(&dmn, NULL);
	fill_under_budget(lib, &c, &ps);
	dh_kill(&dmn);
	pager_verify_blocked(&c);
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	pager_verify_goes_on(&c);
	pager_quit(&c);
	wait_no_clients();
	dh_down(&dmn, NULL);
}
END_TEST

/* A daemon stopped in order (SIGTERM) hands the program over: a touch of
 * an evicted page waits, and goes on once the successor took over; every
 * page reads back, and the budget the program set holds with the
 * successor (what it writes again is pressed out again). Its calls fail
 * with 0.2.0's library (the error that broke its stream); this tree's
 * resumes. */
START_TEST(test_handover)
{
	enum lib lib = (enum lib)_i;
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;
	int ret;

	dh_up(&dmn, NULL);
	fill_under_budget(lib, &c, &ps);
	dh_stop_ok(&dmn, SIGTERM, NULL);
	pager_verify_blocked(&c);
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 1 clients, 3 regions", NULL,
			      0), "no takeover in the log");
	pager_verify_goes_on(&c);

	assert_stats_after_takeover(lib, &c);
	pager_ok(&c, "rewrite 0");
	wait_daemon_resident(5 * MIB, &s);
	DH_ASSERT(s.stored_pages > 0, "the successor stored nothing");
	pager_ok(&c, "verify all");
	pager_quit(&c);
	wait_no_clients();
	dh_down(&dmn, NULL);
}
END_TEST

static Suite *oldlib_suite(void)
{
	Suite *s = suite_create("oldlib");
	TCase *tc = tcase_create("oldlib");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_budget_and_faults, LIB_OLD, NR_LIBS);
	tcase_add_loop_test(tc, test_takeover, LIB_OLD, NR_LIBS);
	tcase_add_loop_test(tc, test_blocked_touch_goes_on, LIB_OLD, NR_LIBS);
	tcase_add_loop_test(tc, test_handover, LIB_OLD, NR_LIBS);
	suite_add_tcase(s, tc);
	return s;
}

/*
 * oldlib_build() - build the old programs, or find them built.
 * Return: 0; main()'s exit status otherwise: 77 (SKIP) when the old
 * sources cannot be had, 99 (a hard error) when the build failed.
 */
static int oldlib_build(void)
{
	static const char *const argv[] = {
		"/bin/sh", OLDLIB_BUILD, TOP_SRCDIR, OLDLIB_COMMIT, OLDLIB_DIR,
		OLDLIB_CC, NULL,
	};
	char out[8192], err[8192];
	int status;

	status = dh_run(argv, NULL, NULL, out, sizeof(out), err, sizeof(err),
			BUILD_MS);
	fputs(out, stderr);
	fputs(err, stderr);
	if (dh_exited_ok(status))
		return 0;
	if (status >= 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == CKPART_SKIP)
		return CKPART_SKIP;
	fprintf(stderr, "check_oldlib: oldlib-build: %s\n",
		dh_status_str(status));
	return 99;
}

int main(void)
{
	int ret = oldlib_build();

	return ret ? ret : dh_main("oldlib", oldlib_suite());
}
