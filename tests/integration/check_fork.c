/*
 * check_fork.c - integration tests of fork() and discard: a real uzswapd
 * (daemon_harness.c) and a real client program (uzclient fork, which
 * links libuzswap) whose region is inherited by its children
 * (UZSWAP_ALLOC_INHERIT): each child checks that its private copy is the
 * parent's region as it was at the fork, whatever the parent writes
 * meanwhile, then rewrites its own; the parent checks that it sees none
 * of it; a discarded range reads zeros; a child that exec()s leaves
 * nothing managed. After all of them the pool is empty: every object a
 * fork shared went with its last page.
 *
 * Test cases of fork_suite():
 *   fork       a 32 MiB region under an 8 MiB budget (its stored pages
 *              shared with the children, its resident ones stored for
 *              them), with deduplication on, then off (a fork shares
 *              objects that have no node of the index)
 *   written    the same with a 2 MiB pool: most pages are in the backing
 *              file when the children are made, and share their slots
 *   restart    a child's copy is an ordinary region of its own: a daemon
 *              stopped (SIGTERM: a handover) or killed (SIGKILL: a
 *              recovery) and started again while parent and child hold
 *              theirs carries on with both (uzclient fork-hold), every
 *              page of each its own
 *
 * One test case: CK_RUN_CASE=fork ./check_fork. Logs kept:
 * UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "daemon_harness.h"

#define TIMEOUT_CASE	600		/* seconds, per test */

static struct dh_daemon dmn;

static void daemon_down(void)
{
	dh_down(&dmn, NULL);
}

/* uzclient fork MIB LIMIT_MIB [over] (@over: budgets may be exceeded)
 * must pass, and leave the pool empty. */
static void fork_passes(const char *mib, const char *limit_mib, bool over)
{
	const char *const argv[] = { "fork", mib, limit_mib,
				     over ? "over" : NULL, NULL };
	int status = dh_run_uzclient(&dmn, argv);

	DH_ASSERT(dh_exited_ok(status), "uzclient fork: %s",
		  dh_status_str(status));
	dh_wait_pool_empty(&dmn);
}

/* A daemon with @args, uzclient fork MIB LIMIT_MIB [over] against it, a
 * clean stop. */
static void fork_case(const char *const *args, const char *mib,
		      const char *limit_mib, bool over)
{
	dh_up(&dmn, args);
	fork_passes(mib, limit_mib, over);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}

START_TEST(test_fork_dedup_on)
{
	const char *const args[] = { "--metrics", "127.0.0.1:0", NULL };

	fork_case(args, "32", "8", false);
}
END_TEST

START_TEST(test_fork_dedup_off)
{
	const char *const args[] = { "--metrics", "127.0.0.1:0",
				     "--dedup", "off", NULL };

	fork_case(args, "32", "8", false);
}
END_TEST

START_TEST(test_fork_written_back)
{
	const char *const args[] = { "--metrics", "127.0.0.1:0",
				     "--pool-limit", "2M", NULL };

	dh_up(&dmn, args);
	fork_passes("32", "4", false);
	DH_ASSERT(dh_metric(&dmn, "uzswap_writeback_pages_total") > 0,
		  "nothing was written back: the test shares no slot");
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* A pool that takes no page (no backing file to write back to): the
 * child's copy of the dirty pages stays resident in it, and the fork
 * succeeds (it used to fail with ENOSPC, and the child ran on an empty
 * memfd: its copy read zeros). */
START_TEST(test_fork_pool_full)
{
	const char *const args[] = { "--metrics", "127.0.0.1:0",
				     "--pool-limit", "1M",
				     "--backing-file", "none", NULL };

	fork_case(args, "32", "4", true);
	DH_ASSERT(dh_log_find(&dmn, "stay resident in its child", NULL, 0),
		  "no copy kept a page resident: the pool was not full");
}
END_TEST

/* Parent and child hold their copies while the daemon is stopped with
 * @sig and started again; then each checks and rewrites its own. */
static void fork_survives_restart(int sig)
{
	const char *const args[] = { "--metrics", "127.0.0.1:0", NULL };
	const char *const argv[] = { "fork-hold", "32", "8", NULL };
	struct dh_client c;
	char line[256];
	int ret;

	dh_up(&dmn, args);
	ret = dh_uzclient_start(&dmn, &c, argv, true);
	DH_ASSERT(ret == 0, "start uzclient: %s", strerror(-ret));
	ret = dh_client_read_line(&c, line, sizeof(line), DH_CLIENT_MS);
	DH_ASSERT(ret == 0 && !strcmp(line, "ready"), "uzclient: %s", line);
	DH_ASSERT_EQ(dh_metric(&dmn, "uzswap_clients"), 2);
	if (sig == SIGKILL)
		dh_kill(&dmn);
	else
		dh_stop_ok(&dmn, sig, NULL);
	ret = dh_restart(&dmn, args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 2 clients", line,
			      sizeof(line)), "no takeover of both in the log");
	DH_ASSERT_EQ(dh_client_say(&c, "alive"), 0);
	ret = dh_client_read_line(&c, line, sizeof(line), DH_CLIENT_MS);
	DH_ASSERT(ret == 0 && !strcmp(line, "done"), "uzclient: %s", line);
	ret = dh_client_wait(&c, DH_CLIENT_MS);
	DH_ASSERT(dh_exited_ok(ret), "uzclient: %s", dh_status_str(ret));
	dh_wait_pool_empty(&dmn);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}

START_TEST(test_fork_handover)
{
	fork_survives_restart(SIGTERM);
}
END_TEST

START_TEST(test_fork_crash)
{
	fork_survives_restart(SIGKILL);
}
END_TEST

static Suite *fork_suite(void)
{
	Suite *s = suite_create("fork");
	TCase *tc;

	tc = tcase_create("fork");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_fork_dedup_on);
	tcase_add_test(tc, test_fork_dedup_off);
	suite_add_tcase(s, tc);

	tc = tcase_create("written");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_fork_written_back);
	tcase_add_test(tc, test_fork_pool_full);
	suite_add_tcase(s, tc);

	tc = tcase_create("restart");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_fork_handover);
	tcase_add_test(tc, test_fork_crash);
	suite_add_tcase(s, tc);
	return s;
}

/* Why this build cannot run the suite, or NULL. */
static const char *cannot_fork(void)
{
#ifdef __SANITIZE_THREAD__
	/* ThreadSanitizer runs pthread_atfork() handlers while its runtime
	 * is locked for the fork; libuzswap's child handler maps the copies,
	 * connects and registers there, and every child died of SIGSEGV
	 * before its first line, without a report. The plain and ASan
	 * builds run these tests; check_daemon's FORK test (raw frames, no
	 * fork) runs here too. */
	return "ThreadSanitizer does not run libuzswap's fork handler in the "
	       "child";
#else
	return NULL;
#endif
}

int main(void)
{
	const char *why = cannot_fork();

	if (why) {
		fprintf(stderr, "check_fork: SKIP: %s\n", why);
		return 77;
	}
	return dh_main("check_fork", fork_suite());
}
