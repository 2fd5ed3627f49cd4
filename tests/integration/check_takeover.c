/*
 * check_takeover.c - a uzswapd killed at any moment (SIGKILL) and started
 * again on the same state directory takes its clients over: every page
 * of every client reads what it held (compressed, same-filled, raw,
 * written back to the backing file, resident), a thread blocked on a page
 * of the dead daemon goes on, and the client library resumes its
 * connection by itself. A planned stop (SIGTERM) is a handover: the
 * daemon exits with nothing restored, the client's memory no bigger, and
 * the next one carries on with every page.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "daemon_harness.h"
#include "lib/proto/proto.h"
#include "pager.h"

#define MIB (1024 * 1024)

static struct dh_daemon dmn;

/* STATUS of the daemon. */
static void status(struct proto_status_reply *s)
{
	DH_ASSERT_EQ(dh_status(&dmn, s), 0);
}

static uint64_t held(const struct proto_status_reply *s)
{
	return s->stored_pages + s->written_back_pages;
}

/* STATUS once the evictors are at rest (they go on past the budget to
 * its low mark): the pages held stay the same over a while. */
static void status_at_rest(struct proto_status_reply *s)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);
	struct proto_status_reply again;

	status(s);
	for (;;) {
		dh_sleep_ms(200);
		status(&again);
		if (held(&again) == held(s))
			return;
		DH_ASSERT(dh_now_ms() < deadline, "evictions went on: %"
			  PRIu64 " -> %" PRIu64 " pages held", held(s),
			  held(&again));
		*s = again;
	}
}

/* Every kind of stored page: compressible text, incompressible (raw)
 * random and same-filled zero regions of one client, pressed under a
 * 4 MiB budget with a pool small enough to write back; the daemon
 * SIGKILLed, started again: every page reads back, and the client's own
 * connection carries on. */
START_TEST(test_kill_and_take_over)
{
	static const char *const args[] = {
		"--pool-limit", "6M", "--backing-limit", "256M", NULL,
	};
	struct proto_status_reply s0, s1;
	struct pstats ps;
	struct dh_client c;
	char line[512];
	int ret;

	dh_up(&dmn, args);
	pager_start_every_kind(&dmn, &c, &ps);
	status_at_rest(&s0);
	DH_ASSERT(s0.stored_pages > 0 && s0.raw_pages > 0 &&
		  s0.same_pages > 0 && s0.written_back_pages > 0,
		  "not every kind stored: %" PRIu64 " stored, %" PRIu64
		  " raw, %" PRIu64 " same, %" PRIu64 " written back",
		  s0.stored_pages, s0.raw_pages, s0.same_pages,
		  s0.written_back_pages);

	dh_kill(&dmn);
	ret = dh_restart(&dmn, args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 1 clients, 3 regions", line,
			      sizeof(line)), "no takeover in the log");
	/* a crash leaves no image at rest */
	DH_ASSERT(strstr(line, "recovered page by page"),
		  "a crash was not recovered page by page: %s", line);
	status(&s1);
	DH_ASSERT_EQ(s1.clients, 1);
	DH_ASSERT_EQ(s1.stored_pages + s1.written_back_pages,
		     s0.stored_pages + s0.written_back_pages);
	pager_ok(&c, "verify all");
	/* the library resumed its connection with the new daemon, which
	 * kept the client's budget */
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.regions, 3);
	DH_ASSERT_EQ(ps.limit, 4 * MIB);
	pager_ok(&c, "rewrite 1");
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

/* A thread that touched an evicted page while no daemon ran waits, and
 * goes on once the successor took over, without anything done by its
 * process. */
START_TEST(test_blocked_thread_goes_on)
{
	struct pstats ps;
	struct dh_client c;
	int ret;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 24);
	pager_wait_resident(&c, 5 * MIB, &ps);
	dh_kill(&dmn);
	pager_verify_blocked(&c);
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	pager_verify_goes_on(&c);
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

/* SIGTERM hands over: the daemon exits cleanly without bringing a page
 * back (the client's resident memory stays within its budget, every
 * stored page is still stored when the successor counts), a thread
 * blocked meanwhile goes on, every page reads back, the connection
 * resumes; and a second handover in a row carries on the same way. */
START_TEST(test_handover)
{
	static const char *const args[] = {
		"--pool-limit", "6M", "--backing-limit", "256M", NULL,
	};
	struct proto_status_reply s0;
	long long rss0, rss1;
	struct pstats ps;
	struct dh_client c;
	char line[512], needle[128];
	const char *p;
	uint64_t found;
	int ret, round;

	dh_up(&dmn, args);
	pager_start_every_kind(&dmn, &c, &ps);
	for (round = 0; round < 2; round++) {
		status_at_rest(&s0);
		DH_ASSERT(s0.stored_pages > 0 && s0.written_back_pages > 0,
			  "nothing stored or written back: %" PRIu64 ", %"
			  PRIu64, s0.stored_pages, s0.written_back_pages);
		rss0 = dh_rss_shmem(c.pid);
		dh_stop_ok(&dmn, SIGTERM, NULL);
		DH_ASSERT(dh_log_find(&dmn, "handing over 1 clients", NULL,
				      0), "no handover in the log");
		rss1 = dh_rss_shmem(c.pid);
		DH_ASSERT(rss1 <= rss0, "the stop brought pages back: "
			  "RssShmem %lld -> %lld", rss0, rss1);

		/* a touch of a stored page waits for the successor */
		pager_verify_blocked(&c);
		ret = dh_restart(&dmn, args);
		DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
		/* what it found stored (the blocked reader is loading now) */
		snprintf(needle, sizeof(needle), "took over 1 clients, 3 "
			 "regions from uzswapd " PACKAGE_VERSION " (epoch %d)",
			 round + 1);
		DH_ASSERT(dh_log_find(&dmn, needle, line, sizeof(line)) &&
			  (p = strstr(line, "resident, ")) &&
			  sscanf(p, "resident, %" SCNu64 " stored", &found) == 1,
			  "no takeover in the log");
		/* a handover leaves its image at rest: no page-by-page walk */
		DH_ASSERT(strstr(line, "as its image at rest said"),
			  "the handover was recovered page by page: %s", line);
		DH_ASSERT_EQ(found, held(&s0));
		pager_verify_goes_on(&c);
		pager_stats(&c, &ps);
		DH_ASSERT_EQ(ps.regions, 3);
		DH_ASSERT_EQ(ps.limit, 4 * MIB);
		pager_ok(&c, "rewrite 1");
		pager_wait_resident(&c, 5 * MIB, &ps);
	}
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

static Suite *takeover_suite(void)
{
	Suite *s = suite_create("takeover");
	TCase *tc = tcase_create("crash");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_kill_and_take_over);
	tcase_add_test(tc, test_blocked_thread_goes_on);
	suite_add_tcase(s, tc);
	tc = tcase_create("handover");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_handover);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("takeover", takeover_suite());
}
