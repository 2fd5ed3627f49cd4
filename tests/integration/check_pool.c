/*
 * check_pool.c - integration tests of the pool across clients: a real
 * uzswapd (started by daemon_harness.c) and real client programs
 * (uzclient pager, which links libuzswap) whose stored pages the daemon
 * deduplicates.
 *
 * Test cases of pool_suite():
 *   dedup   two clients holding the same 32 MiB heap (twins: same kind,
 *           size and seed) store the second copy for almost nothing (the
 *           pool grows by under 2%, every page of the second counted as
 *           sharing), each reads back its own data, also after one of
 *           them rewrote its pages (then nothing is shared any more, and
 *           the pool holds both); the same with dedup off grows the pool
 *           by the whole second copy; when both leave the pool is empty
 *   shared  shared objects written back (pool limited to 8 MiB, a third
 *           client pushing it over), read back by both; the sharing
 *           survives a
 *           handover (SIGTERM and a successor: the image at rest) and a
 *           crash (SIGKILL and a successor: the recovery rebuilds the
 *           sharing from the page tables), every page read back by both
 *   compact a pool fragmented on purpose (three regions evicted page by
 *           page in turn, two of them freed: each pool page keeps one
 *           object of three) compacts, once compact-ratio is reloaded in,
 *           while the client faults its region in and out under a 1 MiB
 *           budget: to under half its pages, every page of the client
 *           checked (patterns of its pid and seed, never zero) round
 *           after round; `uzswapctl compact` on demand; and a daemon
 *           killed in the middle of a move (kill point migrate.moved):
 *           its successor recovers every page, from the old copy or
 *           the new one
 *
 * One test case: CK_RUN_CASE=dedup ./check_pool. Logs kept:
 * UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "daemon_harness.h"
#include "pager.h"

#define MIB		((uint64_t)1024 * 1024)
#define PAGE		((uint64_t)4096)
#define TIMEOUT_CASE	900		/* seconds, per test */
#define TWIN_SEED	"4242"
#define STORE_COMPACT_RATIO 125	/* compact-ratio's default */

static struct dh_daemon dmn;

static const char *const metrics_args[] = { "--metrics", "127.0.0.1:0",
					    NULL };

static void daemon_down(void)
{
	dh_down(&dmn, NULL);
}

static uint64_t metric(const char *series)
{
	return dh_metric(&dmn, series);
}

/* A pager holding a text region of @mib MiB with the twins' seed: its
 * number. */
static unsigned int twin(struct dh_client *c, unsigned int mib)
{
	return (unsigned int)strtoul(pager_ok(c, "alloc text %u " TWIN_SEED,
					      mib), NULL, 10);
}

static void print_pool(const char *when)
{
	printf("%s: pool %" PRIu64 " payload %" PRIu64 " sharing %" PRIu64
	       " shared %" PRIu64 " saved %" PRIu64 "\n", when,
	       metric("uzswap_pool_bytes"),
	       metric("uzswap_pool_payload_bytes"),
	       metric("uzswap_dedup_sharing_pages"),
	       metric("uzswap_dedup_shared_objects"),
	       metric("uzswap_dedup_saved_bytes"));
}

/* The end of a test: the pager @c reads its region 0 back and quits, its
 * pages leave the pool, the daemon stops cleanly. */
static void finish(struct dh_client *c)
{
	pager_ok(c, "verify 0");
	pager_quit(c);
	dh_wait_pool_empty(&dmn);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}

/* The same for twins @a and @b, each its own region 0. */
static void finish_twins(struct dh_client *a, struct dh_client *b)
{
	pager_ok(a, "verify 0");
	pager_ok(b, "verify 0");
	pager_quit(a);
	finish(b);
}

/*****************
 * dedup
 *****************/

/*
 * Issue 13: a second client holding the same pages as a first grows the
 * pool by almost nothing; each reads back its own data, also once the
 * first rewrote its pages.
 */
START_TEST(test_dedup_twins)
{
	const uint64_t pages = 32 * MIB / PAGE;
	uint64_t one, two, rewritten;
	struct dh_client a, b;

	dh_up(&dmn, metrics_args);
	DH_ASSERT_EQ(metric("uzswap_dedup_enabled"), 1);
	pager_start(&dmn, &a);
	twin(&a, 32);
	pager_ok(&a, "cold 0");
	one = metric("uzswap_pool_bytes");
	print_pool("one client");
	pager_start(&dmn, &b);
	twin(&b, 32);
	pager_ok(&b, "cold 0");
	two = metric("uzswap_pool_bytes");
	print_pool("its twin");
	DH_ASSERT(two <= one + one / 50, "the twin grew the pool from %" PRIu64
		  " to %" PRIu64 " bytes", one, two);
	DH_ASSERT(metric("uzswap_dedup_sharing_pages") >= pages,
		  "%" PRIu64 " pages sharing",
		  metric("uzswap_dedup_sharing_pages"));
	DH_ASSERT(metric("uzswap_dedup_merged_pages_total") >= pages,
		  "merged %" PRIu64, metric("uzswap_dedup_merged_pages_total"));
	pager_ok(&a, "verify 0");
	pager_ok(&b, "verify 0");
	/* a rewrites: its new pages share nothing, b keeps the old ones */
	pager_ok(&a, "rewrite 0");
	pager_ok(&a, "cold 0");
	rewritten = metric("uzswap_pool_bytes");
	print_pool("one rewritten");
	DH_ASSERT(metric("uzswap_dedup_sharing_pages") < pages / 100,
		  "%" PRIu64 " pages still sharing",
		  metric("uzswap_dedup_sharing_pages"));
	DH_ASSERT(rewritten > one + one / 2, "pool %" PRIu64 " after the "
		  "rewrite, %" PRIu64 " for one client", rewritten, one);
	pager_ok(&b, "verify 0");
	pager_ok(&a, "verify 0");
	pager_quit(&b);
	pager_ok(&a, "verify 0");
	pager_quit(&a);
	dh_wait_pool_empty(&dmn);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* The same twins with dedup off: the second copy takes its room. */
START_TEST(test_dedup_off)
{
	static const char *const args[] = { "--metrics", "127.0.0.1:0",
					    "--dedup", "off", NULL };
	struct dh_client a, b;
	uint64_t one, two;

	dh_up(&dmn, args);
	DH_ASSERT_EQ(metric("uzswap_dedup_enabled"), 0);
	pager_start(&dmn, &a);
	twin(&a, 32);
	pager_ok(&a, "cold 0");
	one = metric("uzswap_pool_bytes");
	pager_start(&dmn, &b);
	twin(&b, 32);
	pager_ok(&b, "cold 0");
	two = metric("uzswap_pool_bytes");
	print_pool("twins, dedup off");
	DH_ASSERT(two >= one + one / 10 * 9, "pool %" PRIu64 " for two, %"
		  PRIu64 " for one", two, one);
	DH_ASSERT_EQ(metric("uzswap_dedup_sharing_pages"), 0);
	finish_twins(&a, &b);
}
END_TEST

/*****************
 * shared
 *****************/

/* Twins a and b of 16 MiB each, all stored: every page of b shares
 * a's object. */
static void twins_stored(struct dh_client *a, struct dh_client *b)
{
	pager_start(&dmn, a);
	pager_start(&dmn, b);
	twin(a, 16);
	twin(b, 16);
	pager_ok(a, "cold 0");
	pager_ok(b, "cold 0");
	DH_ASSERT(metric("uzswap_dedup_sharing_pages") >= 16 * MIB / PAGE,
		  "%" PRIu64 " pages sharing",
		  metric("uzswap_dedup_sharing_pages"));
}

/* Shared objects go to the backing file once and come back to both:
 * a third client pushes the pool over its limit, and the oldest objects,
 * the twins', are written back first. */
START_TEST(test_shared_written_back)
{
	static const char *const args[] = { "--metrics", "127.0.0.1:0",
					    "--pool-limit", "8M", NULL };
	const uint64_t twin_pages = 2 * 16 * MIB / PAGE;
	struct dh_client a, b, c;
	long long deadline;
	struct pstats ps;

	dh_up(&dmn, args);
	twins_stored(&a, &b);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 48);
	pager_wait_resident(&c, 4 * MIB, &ps);
	deadline = dh_deadline(SETTLE_MS);
	while (metric("uzswap_stored_pages{kind=\"written_back\"}") <
		       twin_pages && dh_now_ms() < deadline)
		dh_sleep_ms(20);
	print_pool("twins written back");
	DH_ASSERT(metric("uzswap_stored_pages{kind=\"written_back\"}") >=
		  twin_pages, "written back %" PRIu64 " pages",
		  metric("uzswap_stored_pages{kind=\"written_back\"}"));
	/* written back, they still share their slots */
	DH_ASSERT(metric("uzswap_dedup_sharing_pages") >= twin_pages / 2,
		  "%" PRIu64 " pages sharing",
		  metric("uzswap_dedup_sharing_pages"));
	pager_ok(&a, "verify 0");
	pager_ok(&b, "verify 0");
	pager_ok(&a, "rewrite 0");
	pager_ok(&b, "verify 0");
	pager_ok(&a, "verify 0");
	pager_quit(&a);
	pager_quit(&b);
	pager_quit(&c);
	dh_wait_pool_empty(&dmn);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* A successor takes the sharing over: from the image at rest after a
 * SIGTERM, rebuilt by the recovery after a SIGKILL. */
START_TEST(test_shared_across_restarts)
{
	struct dh_client a, b;
	uint64_t sharing, now;
	int ret;

	dh_up(&dmn, metrics_args);
	twins_stored(&a, &b);
	sharing = metric("uzswap_dedup_sharing_pages");
	print_pool("twins");
	DH_ASSERT(sharing > 0, "nothing shared");
	dh_stop_ok(&dmn, SIGTERM, NULL);
	ret = dh_restart(&dmn, metrics_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	now = metric("uzswap_dedup_sharing_pages");
	print_pool("after a handover");
	DH_ASSERT_EQ(now, sharing);
	pager_ok(&a, "verify 0");
	pager_ok(&b, "verify 0");
	pager_ok(&a, "cold 0");
	pager_ok(&b, "cold 0");
	sharing = metric("uzswap_dedup_sharing_pages");
	dh_kill(&dmn);
	ret = dh_restart(&dmn, metrics_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	now = metric("uzswap_dedup_sharing_pages");
	print_pool("after a crash");
	DH_ASSERT_EQ(now, sharing);
	finish_twins(&a, &b);
}
END_TEST

/*****************
 * compact
 *****************/

/* uzswapctl compact: its wait status, its output in @out. */
static int compact_now(char *out, size_t size)
{
	const char *argv[] = { UZSWAPCTL_PATH, "--socket", dmn.sock,
			       "compact", NULL };
	char err[512];
	int status;

	status = dh_run(argv, NULL, NULL, out, size, err, sizeof(err),
			SETTLE_MS);
	if (!dh_exited_ok(status))
		fprintf(stderr, "uzswapctl compact: %s: %s%s\n",
			dh_status_str(status), out, err);
	return status;
}

/* Set compact-ratio by a reload. */
static void reload_compact_ratio(unsigned int pct, int nth)
{
	dh_write_file(&dmn, dmn.conf, "[store]\ncompact-ratio = %u\n", pct);
	dh_hup_and_wait(&dmn, "configuration reloaded", nth);
}

/*
 * Issue 13: a fragmented pool compacts to near its packing while faults
 * run against it. The objects (text pages, about 400 bytes) pack three to
 * a pool page: from one per page, the pool must come under half its
 * pages; the client reads and checks its pages throughout, each fault on
 * an object being moved waiting for the move.
 */
START_TEST(test_compact_under_faults)
{
	uint64_t before, after, moved;
	struct dh_client c;
	long long deadline;
	int rounds = 0;

	dh_up(&dmn, metrics_args);
	reload_compact_ratio(0, 1);
	pager_start(&dmn, &c);
	DH_ASSERT_EQ(pager_fragment(&c, 8), 0);
	before = metric("uzswap_pool_bytes");
	print_pool("fragmented");
	DH_ASSERT(before > 2 * metric("uzswap_pool_payload_bytes"),
		  "pool %" PRIu64 " for %" PRIu64 " of objects", before,
		  metric("uzswap_pool_payload_bytes"));
	pager_ok(&c, "limit 1");
	reload_compact_ratio(STORE_COMPACT_RATIO, 2);
	deadline = dh_deadline(SETTLE_MS);
	do {
		pager_ok(&c, "verify 0");
		rounds++;
		after = metric("uzswap_pool_bytes");
	} while (after * 2 > before && dh_now_ms() < deadline);
	moved = metric("uzswap_pool_migrated_objects_total");
	print_pool("compacted");
	printf("compaction under faults: %d rounds of faults, %" PRIu64
	       " objects moved, %" PRIu64 " pool pages freed\n", rounds,
	       moved, metric("uzswap_pool_compacted_pages_total"));
	DH_ASSERT(after * 2 <= before, "pool %" PRIu64 " bytes, from %"
		  PRIu64 ", after %d rounds: %" PRIu64 " compactions, %"
		  PRIu64 " pages retained, %" PRIu64 " resident", after, before,
		  rounds, metric("uzswap_pool_compact_runs_total"),
		  metric("uzswap_retained_pages"),
		  metric("uzswap_resident_bytes") / PAGE);
	DH_ASSERT(moved > 0, "no object moved");
	DH_ASSERT(metric("uzswap_pool_compact_runs_total") > 0,
		  "the writer never compacted");
	finish(&c);
}
END_TEST

/* uzswapctl compact packs a fragmented pool on demand and says what it
 * freed. */
START_TEST(test_compact_on_demand)
{
	uint64_t before, freed;
	struct dh_client c;
	char out[512];

	dh_up(&dmn, metrics_args);
	reload_compact_ratio(0, 1);
	pager_start(&dmn, &c);
	DH_ASSERT_EQ(pager_fragment(&c, 4), 0);
	before = metric("uzswap_pool_bytes");
	DH_ASSERT(dh_exited_ok(compact_now(out, sizeof(out))),
		  "uzswapctl compact failed");
	printf("uzswapctl compact: %s", out);
	DH_ASSERT(sscanf(out, "compacted: freed %" SCNu64, &freed) == 1 &&
		  freed == metric("uzswap_pool_compacted_pages_total"),
		  "compact said: %s", out);
	DH_ASSERT_EQ(before - metric("uzswap_pool_bytes"), freed * PAGE);
	DH_ASSERT(freed * PAGE * 2 >= before, "freed %" PRIu64 " of %" PRIu64
		  " bytes", freed * PAGE, before);
	finish(&c);
}
END_TEST

/* A daemon killed between a moved page's new handle and its publish
 * (the fifth move of its background compaction, turned on by a reload
 * once the pool is fragmented: no request is in flight): the successor's
 * recovery finds, for every page, the copy its entry names, whole; the
 * client reads back every page. */
START_TEST(test_compact_killed_mid_move)
{
	struct dh_client c;
	int ret;

	crash_arm("migrate.moved:5");
	dh_up(&dmn, metrics_args);
	crash_arm(NULL);
	reload_compact_ratio(0, 1);
	pager_start(&dmn, &c);
	DH_ASSERT_EQ(pager_fragment(&c, 4), 0);
	reload_compact_ratio(STORE_COMPACT_RATIO, 2);
	crash_assert_killed_at(&dmn, dh_stop_with(&dmn, 0), "migrate.moved");
	ret = dh_restart(&dmn, metrics_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	finish(&c);
}
END_TEST

static Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc;

	tc = tcase_create("dedup");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_dedup_twins);
	tcase_add_test(tc, test_dedup_off);
	suite_add_tcase(s, tc);

	tc = tcase_create("shared");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_shared_written_back);
	tcase_add_test(tc, test_shared_across_restarts);
	suite_add_tcase(s, tc);

	tc = tcase_create("compact");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_compact_under_faults);
	tcase_add_test(tc, test_compact_on_demand);
	tcase_add_test(tc, test_compact_killed_mid_move);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("check_pool", pool_suite());
}
