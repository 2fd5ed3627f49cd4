/*
 * check_evict.c - integration tests of eviction: a real uzswapd (started
 * by daemon_harness.c) keeping real client programs (uzclient pager and
 * rmw, which link libuzswap) within their budgets by compressing their
 * cold pages into its pool, and bringing every byte back.
 *
 * Test cases of evict_suite():
 *   pressure  4 writer threads doing checksummed read-modify-write over
 *             64 MiB under a 4 MiB budget (60 s; 20 s in a sanitizer
 *             build): no lost, stale, torn or zeroed write, the evictor
 *             and the fault path both moved a lot, resident back within
 *             the budget at the end
 *   budget    a client's RssShmem settles within its budget plus one
 *             eviction run; set-limit lowered and raised on a running
 *             client; --default-limit; --resident-limit over two clients
 *   ceiling   back-pressure: a budget holds at every instant, sampled
 *             every 2 ms (the daemon's count never over it, RssShmem
 *             never over it by more than 5%, no page let in over it),
 *             under a fast sequential reader with read-ahead and under
 *             random writers
 *   store     lz4 and zstd (with a level) round trips, payload well under
 *             the pages stored; same-filled pages (zero pages included)
 *             counted and kept without payload; incompressible pages kept
 *             raw; COLD evicts a range at once, WILLNEED brings it back
 *   safety    a client's exit (normal, SIGKILL) gives its pool space back;
 *             freeing one region while another is compressed; a drain
 *             while a client's pages are compressed (idle, and with an
 *             eviction run under way) restores them into the memfds, and
 *             the client, which goes on with plain memory once the daemon
 *             stops, reads every byte back; SIGTERM under write pressure
 *             hands the client over to a successor, round after round,
 *             without one lost write
 *   writeback with --pool-limit: reclaim from the bottom writes the pool's
 *             oldest objects to the backing file, the pool stays at its
 *             limit, every page comes back, the file empties when the
 *             client leaves; rmw integrity with writeback; a backing file
 *             that takes no more (its cap, or ENOSPC from a 256 KiB tmpfs
 *             the test mounts): evictions stop, the budget is exceeded,
 *             no page is lost
 *   wbbudget  four rmw clients under 8 MiB budgets with an 8 MiB pool
 *             writing back: every 20 ms sample of each client's RssShmem
 *             within 1.25x its budget after the first fill, no lost write
 *   retain    clean-page retention: pages read back keep their pool
 *             object, and evicting them again compresses nothing (the
 *             stores counter stands still, every page counted clean);
 *             written ones lose it (the write reads back, never the old
 *             copy); it turns off for a client that writes what it
 *             reads, and on again once its pages are evicted clean; a
 *             pool that needs room gives up the retained objects before
 *             it writes anything back
 *   span      batched eviction: resident pages one in two, the others
 *             stored, go in runs that span the stored ones (one per 64
 *             pages), by COLD advice (written pages and retained ones)
 *             and by the LRU walk under a lowered budget; every page
 *             reads back
 *
 * The tests assert outcomes, never timings: every wait is a bounded poll
 * whose bound is generous (CI runs this under ASan on 2 cores), and a
 * bound that runs out is a failure. Every daemon must exit 0 on SIGTERM
 * (under ASan that includes LeakSanitizer's verdict) and log no error line
 * and no sanitizer report.
 *
 * One test case: CK_RUN_CASE=store ./check_evict. Logs kept:
 * UZSWAP_ITEST_KEEP=1. The pressure duration in seconds:
 * UZSWAP_ITEST_RMW_SECONDS.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "pager.h"
#include "lib/proto/proto.h"
#include "daemon/log.h"

#define MIB		(1024ull * 1024)
#define PAGE		4096ull
/* The daemon's EVICT_RUN_PAGES: it evicts in runs of this many pages, and
 * a budget is kept to within one run. */
#define RUN_BYTES	(64 * PAGE)

/* Generous: CI machines are slow, and run all of this under ASan. */
#define TIMEOUT_CASE	900		/* seconds, per test */

#ifdef UZSWAP_SANITIZED
#define RMW_SECONDS	20
#define SHORT_RMW_SECONDS 5	/* the writeback and ceiling cases' */
#define ROUNDS		2
#else
#define RMW_SECONDS	60
#define SHORT_RMW_SECONDS 10
#define ROUNDS		3
#endif

static struct dh_daemon dmn;

/*****************
 * The daemon
 *****************/

/* The fixture that ends each test. */
static void daemon_down(void)
{
	dh_down(&dmn, NULL);
}

static void status(struct proto_status_reply *st)
{
	int ret = dh_status(&dmn, st);

	DH_ASSERT(ret == 0, "STATUS: %s", strerror(-ret));
}

static void print_status(const char *when, const struct proto_status_reply *s)
{
	fprintf(stderr,
		"STATUS %s: clients %" PRIu64 " resident %" PRIu64
		" stored %" PRIu64 " same %" PRIu64 " raw %" PRIu64
		" payload %" PRIu64 " pool %" PRIu64 " evictions %" PRIu64
		" loads %" PRIu64 " faults %" PRIu64 " failures %" PRIu64 "\n",
		when, s->clients, s->resident_bytes, s->stored_pages,
		s->same_pages, s->raw_pages, s->payload_bytes, s->pool_bytes,
		s->evictions, s->loads, s->faults, s->store_failures);
}

/*
 * Poll until the pager is within @bytes and eviction has come to rest:
 * two snapshots of its counters, with the daemon's STATUS between them,
 * agree (the evictor stops at its low mark, a run under the budget).
 */
static void pager_settle(struct dh_client *c, uint64_t bytes,
			 struct pstats *s, struct proto_status_reply *st)
{
	long long deadline = dh_deadline(SETTLE_MS);
	struct pstats again;

	for (;;) {
		pager_wait_resident(c, bytes, s);
		status(st);
		pager_stats(c, &again);
		/* the daemon's count equal to the client's: no eviction
		 * run is between storing its pages and publishing them */
		if (again.evictions == s->evictions &&
		    again.stored == s->stored &&
		    again.compressed == s->compressed &&
		    st->stored_pages == s->stored)
			return;
		DH_ASSERT(dh_now_ms() < deadline, "eviction did not come to "
			  "rest within %d ms", SETTLE_MS);
		dh_sleep_ms(50);
	}
}

/* Poll until the sum of the processes' RssShmem is at most @bytes;
 * returns it. */
static long long wait_rss(const pid_t *pids, int n, long long bytes)
{
	long long deadline = dh_deadline(SETTLE_MS), sum;
	int i;

	for (;;) {
		sum = 0;
		for (i = 0; i < n; i++) {
			long long r = dh_rss_shmem(pids[i]);

			DH_ASSERT(r >= 0, "RssShmem of %d: %s", (int)pids[i],
				  strerror((int)-r));
			sum += r;
		}
		if (sum <= bytes)
			return sum;
		DH_ASSERT(dh_now_ms() < deadline,
			  "RssShmem %lld bytes, not within %lld after %d ms",
			  sum, bytes, SETTLE_MS);
		dh_sleep_ms(20);
	}
}

/* Poll until STATUS shows the pool as in @want (stored pages, payload
 * and pool bytes). */
static void wait_store(const struct proto_status_reply *want,
		       struct proto_status_reply *now)
{
	long long deadline = dh_deadline(SETTLE_MS);

	for (;;) {
		status(now);
		if (now->stored_pages == want->stored_pages &&
		    now->payload_bytes == want->payload_bytes &&
		    now->pool_bytes == want->pool_bytes &&
		    now->same_pages == want->same_pages &&
		    now->raw_pages == want->raw_pages)
			return;
		if (dh_now_ms() >= deadline) {
			print_status("expected", want);
			print_status("now", now);
		}
		DH_ASSERT(dh_now_ms() < deadline,
			  "the store did not go back: stored %" PRIu64
			  " (want %" PRIu64 "), payload %" PRIu64 " (want %"
			  PRIu64 "), pool %" PRIu64 " (want %" PRIu64 ")",
			  now->stored_pages, want->stored_pages,
			  now->payload_bytes, want->payload_bytes,
			  now->pool_bytes, want->pool_bytes);
		dh_sleep_ms(20);
	}
}

/*****************
 * The rmw client (uzclient rmw: pager.h)
 *****************/

static unsigned int rmw_seconds(void)
{
	const char *s = getenv("UZSWAP_ITEST_RMW_SECONDS");
	unsigned long v = s ? strtoul(s, NULL, 10) : 0;

	return v > 0 && v < 3600 ? (unsigned int)v : RMW_SECONDS;
}

/*****************
 * pressure
 *****************/

/*
 * Issue test 1: 4 writer threads, checksummed read-modify-write over
 * 64 MiB under a 4 MiB budget, with two evictor threads: not one write
 * lost, and the evictor and the fault path both did a lot of work.
 */
START_TEST(test_rmw_integrity)
{
	static const char *const args[] = { "--evict-threads", "2", NULL };
	unsigned int secs = rmw_seconds();
	struct proto_status_reply s;
	struct rmw_result res;
	struct dh_client c;

	dh_up(&dmn, args);
	rmw_start(&dmn, &c, 4, 64, 4, secs);
	rmw_finish(&c, secs, &res);
	status(&s);
	print_status("after rmw", &s);
	DH_ASSERT(res.have_stats, "rmw: no stats");
	DH_ASSERT(res.ops > 1000, "only %" PRIu64 " read-modify-writes",
		  res.ops);
	DH_ASSERT_EQ(res.limit, 4 * MIB);
	DH_ASSERT(res.evictions > 10000, "evictions %" PRIu64,
		  res.evictions);
	DH_ASSERT(res.faults > 10000, "faults %" PRIu64, res.faults);
	DH_ASSERT(res.resident <= res.limit,
		  "resident %" PRIu64 " over the budget %" PRIu64 " at the end",
		  res.resident, res.limit);
	DH_ASSERT(s.loads > 10000, "loads %" PRIu64, s.loads);
	DH_ASSERT(s.evictions >= res.evictions, "STATUS evictions %" PRIu64
		  " < the client's %" PRIu64, s.evictions, res.evictions);
	DH_ASSERT_EQ(s.store_failures, 0);
	/* the client is gone: nothing of it stays in the store */
	{
		struct proto_status_reply zero = { 0 }, now;

		wait_store(&zero, &now);
	}
}
END_TEST

/*
 * A handover under pressure: SIGTERM while 4 writer threads work on a
 * region whose pages are being evicted and loaded all the time, then a
 * successor on the same state directory, several rounds on one client.
 * The daemon exits 0 in the thick of it; the writers, blocked on stored
 * pages meanwhile, go on with the successor and check every page at the
 * end: not one lost, stale, torn or zeroed write, and their connection
 * resumed (their last stats come from the last daemon).
 */
START_TEST(test_handover_under_pressure)
{
	struct rmw_result res;
	struct dh_client c;
	int round, ret;

	dh_up(&dmn, NULL);
	rmw_start(&dmn, &c, 4, 32, 4, 4 + 3 * ROUNDS);
	for (round = 0; round < ROUNDS; round++) {
		/* let it run into the thick of it; not a timing check */
		dh_sleep_ms(1500 + 500 * round);
		dh_stop_ok(&dmn, SIGTERM, NULL);
		ret = dh_restart(&dmn, NULL);
		DH_ASSERT(ret == 0, "restart %d: %s", round, strerror(-ret));
	}
	rmw_finish(&c, 4 + 3 * ROUNDS, &res);
	DH_ASSERT(res.have_stats, "no stats from the last daemon");
	DH_ASSERT_EQ(res.limit, 4 * MIB);
}
END_TEST

/*****************
 * budget
 *****************/

/* Issue test 2: 128 MiB written under a 16 MiB budget: RssShmem settles
 * within the budget plus one run, and every page reads back. */
START_TEST(test_budget_rss)
{
	const uint64_t budget = 16 * MIB;
	struct dh_client c;
	struct pstats ps;
	uint64_t evictions;
	long long rss;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 16");
	pager_alloc(&c, "text", 128);
	rss = wait_rss(&c.pid, 1, (long long)(budget + RUN_BYTES));
	/* RssShmem may be down to the budget plus one run while the
	 * evictor is still on its way to the low mark (a slow build sees
	 * that): the eviction count below wants it at the budget */
	pager_wait_resident(&c, budget, &ps);
	fprintf(stderr, "budget: RssShmem %lld, resident %" PRIu64
		", evictions %" PRIu64 "\n", rss, ps.resident, ps.evictions);
	DH_ASSERT_EQ(ps.limit, budget);
	DH_ASSERT(ps.evictions >= (128 * MIB - budget) / PAGE,
		  "evictions %" PRIu64, ps.evictions);
	DH_ASSERT(ps.resident <= budget + RUN_BYTES, "resident %" PRIu64,
		  ps.resident);
	evictions = ps.evictions;
	pager_ok(&c, "verify 0");
	/* reading it all back went through the budget too: what came back
	 * was evicted again */
	wait_rss(&c.pid, 1, (long long)(budget + RUN_BYTES));
	pager_stats(&c, &ps);
	DH_ASSERT(ps.evictions - evictions >= (128 * MIB - 2 * budget) / PAGE,
		  "evictions %" PRIu64 " -> %" PRIu64 " while reading 128 MiB "
		  "back", evictions, ps.evictions);
	DH_ASSERT(ps.resident <= budget + RUN_BYTES, "resident %" PRIu64,
		  ps.resident);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/* Issue test 7: lowering a running client's budget makes it shrink to the
 * new one; raising it above what the client uses stops eviction. */
START_TEST(test_set_limit_live)
{
	struct dh_client c;
	struct pstats ps;
	uint64_t evictions;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 32");
	pager_alloc(&c, "text", 48);
	pager_wait_resident(&c, 32 * MIB, &ps);
	DH_ASSERT(ps.resident >= 16 * MIB, "resident %" PRIu64
		  " under a 32 MiB budget (48 MiB written)", ps.resident);

	pager_ok(&c, "limit 8");
	pager_wait_resident(&c, 8 * MIB, &ps);
	DH_ASSERT_EQ(ps.limit, 8 * MIB);
	wait_rss(&c.pid, 1, (long long)(8 * MIB + RUN_BYTES));
	pager_ok(&c, "verify 0");
	pager_wait_resident(&c, 8 * MIB, &ps);

	/* raised above the region: every page comes back, none leaves */
	pager_ok(&c, "limit 64");
	pager_stats(&c, &ps);
	evictions = ps.evictions;
	pager_ok(&c, "verify 0");
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.resident, 48 * MIB);
	DH_ASSERT_EQ(ps.stored, 0);
	DH_ASSERT(ps.evictions == evictions, "evictions went on under a "
		  "budget over the region: %" PRIu64 " -> %" PRIu64,
		  evictions, ps.evictions);
	/* the evictor's tick comes and goes: still nothing evicted */
	dh_sleep_ms(500);
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.evictions, evictions);
	DH_ASSERT_EQ(ps.resident, 48 * MIB);

	/* and back to the daemon's default (none): nothing changes */
	pager_ok(&c, "limit 0");
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.limit, 0);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/* --default-limit is the budget of a client that set none: it holds the
 * client, a limit of its own replaces it, and 0 brings it back. */
START_TEST(test_default_limit)
{
	static const char *const args[] = { "--default-limit", "8M", NULL };
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;

	dh_up(&dmn, args);
	status(&s);
	DH_ASSERT_EQ(s.default_limit, 8 * MIB);
	DH_ASSERT_EQ(s.resident_limit, 0);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 24);
	pager_wait_resident(&c, 8 * MIB, &ps);
	DH_ASSERT_EQ(ps.limit, 8 * MIB);
	wait_rss(&c.pid, 1, (long long)(8 * MIB + RUN_BYTES));
	pager_ok(&c, "limit 16");
	pager_ok(&c, "verify 0");
	pager_wait_resident(&c, 16 * MIB, &ps);
	DH_ASSERT_EQ(ps.limit, 16 * MIB);
	DH_ASSERT(ps.resident > 8 * MIB, "resident %" PRIu64 " under a "
		  "16 MiB budget after reading 24 MiB", ps.resident);
	pager_ok(&c, "limit 0");
	pager_wait_resident(&c, 8 * MIB, &ps);
	DH_ASSERT_EQ(ps.limit, 8 * MIB);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/* Issue test 9: --resident-limit over two clients without budgets of
 * their own: their RssShmem together settles within it plus a run. */
START_TEST(test_global_budget)
{
	static const char *const args[] = { "--resident-limit", "16M", NULL };
	const uint64_t budget = 16 * MIB;
	struct proto_status_reply s;
	struct dh_client c[2];
	struct pstats ps;
	pid_t pids[2];
	long long rss;
	int i;

	dh_up(&dmn, args);
	for (i = 0; i < 2; i++) {
		pager_start(&dmn, &c[i]);
		pids[i] = c[i].pid;
	}
	/* one after the other, then together */
	pager_alloc(&c[0], "text", 32);
	pager_alloc(&c[1], "text", 32);
	pager_ok(&c[0], "verify 0");
	pager_ok(&c[1], "verify 0");
	rss = wait_rss(pids, 2, (long long)(budget + RUN_BYTES));
	status(&s);
	print_status("global budget", &s);
	fprintf(stderr, "global budget: RssShmem %lld + %lld\n",
		dh_rss_shmem(pids[0]), dh_rss_shmem(pids[1]));
	DH_ASSERT(rss <= (long long)(budget + RUN_BYTES), "RssShmem %lld",
		  rss);
	DH_ASSERT_EQ(s.resident_limit, budget);
	DH_ASSERT_EQ(s.clients, 2);
	DH_ASSERT(s.resident_bytes <= budget + RUN_BYTES,
		  "STATUS resident %" PRIu64, s.resident_bytes);
	DH_ASSERT(s.evictions >= (64 * MIB - budget) / PAGE,
		  "evictions %" PRIu64, s.evictions);
	for (i = 0; i < 2; i++) {
		pager_stats(&c[i], &ps);
		DH_ASSERT_EQ(ps.limit, 0);
		DH_ASSERT(ps.evictions > 0, "client %d was never evicted", i);
	}
	pager_ok(&c[0], "verify 0");
	pager_ok(&c[1], "verify 0");
	for (i = 0; i < 2; i++)
		pager_quit(&c[i]);
}
END_TEST

/*****************
 * ceiling
 *****************/

/*
 * struct sampler - a thread that samples one client's resident memory
 * every SAMPLE_MS while it works: the daemon's count (its CLIENT row) and
 * the kernel's (the process's RssShmem). Written by the thread, read by
 * the test after sampler_stop() joined it.
 */
struct sampler {
	pthread_t tid;
	pid_t pid;
	atomic_bool stop;
	uint64_t samples, max_daemon, max_rss, failures;
};

#define SAMPLE_MS	2

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	struct proto_client_row row;
	long long rss;

	while (!atomic_load(&s->stop)) {
		rss = dh_rss_shmem(s->pid);
		if (rss < 0 || dh_client_row(&dmn, s->pid, &row)) {
			s->failures++;
		} else {
			s->samples++;
			if ((uint64_t)rss > s->max_rss)
				s->max_rss = (uint64_t)rss;
			if (row.resident_bytes > s->max_daemon)
				s->max_daemon = row.resident_bytes;
		}
		dh_sleep_ms(SAMPLE_MS);
	}
	return NULL;
}

static void sampler_start(struct sampler *s, pid_t pid)
{
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	DH_ASSERT(pthread_create(&s->tid, NULL, sampler_main, s) == 0,
		  "sampler thread");
}

/*
 * Stop sampling and assert the ceiling of a @budget: not one sample over
 * it in the daemon's count, nor over it plus 5% in the kernel's (which
 * sees a page copied in a moment before the daemon counts it); and
 * enough samples that a run over the ceiling had to be seen.
 */
static void sampler_assert(struct sampler *s, const char *what,
			   uint64_t budget)
{
	struct proto_client_row row;

	atomic_store(&s->stop, true);
	pthread_join(s->tid, NULL);
	DH_ASSERT_EQ(dh_client_row(&dmn, s->pid, &row), 0);
	fprintf(stderr, "%s: %" PRIu64 " samples (%" PRIu64 " failed), "
		"resident max %" PRIu64 " (daemon) %" PRIu64 " (RssShmem) of "
		"budget %" PRIu64 "; faults %" PRIu64 " evictions %" PRIu64
		" direct %" PRIu64 " waits %" PRIu64 " over budget %" PRIu64
		"\n", what, s->samples, s->failures, s->max_daemon, s->max_rss,
		budget, row.faults, row.evictions, row.direct_evictions,
		row.budget_waits, row.over_budget);
	DH_ASSERT(s->samples >= 100, "%s: only %" PRIu64 " samples", what,
		  s->samples);
	DH_ASSERT(s->max_daemon <= budget, "%s: the daemon counted %" PRIu64
		  " bytes resident, over the budget of %" PRIu64, what,
		  s->max_daemon, budget);
	DH_ASSERT(s->max_rss <= budget + budget / 20, "%s: RssShmem reached "
		  "%" PRIu64 " bytes, over the budget of %" PRIu64 " + 5%%",
		  what, s->max_rss, budget);
	DH_ASSERT_EQ(row.over_budget, 0);
}

/*
 * Back-pressure, a fast sequential reader: 128 MiB of text under a
 * 16 MiB budget, written, then read back twice in order (read-ahead at
 * its widest): the budget is a ceiling at every sample, not where
 * eviction settles.
 */
START_TEST(test_ceiling_sequential)
{
	struct sampler smp;
	struct dh_client c;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 16");
	sampler_start(&smp, c.pid);
	pager_alloc(&c, "text", 128);
	pager_ok(&c, "verify 0");
	pager_ok(&c, "verify 0");
	sampler_assert(&smp, "sequential", 16 * MIB);
	pager_quit(&c);
}
END_TEST

/*
 * Back-pressure, random writers: 4 threads of checksummed
 * read-modify-write over 64 MiB under an 8 MiB budget (every fault's
 * victim a scattered page): the ceiling holds, and no write is lost.
 */
START_TEST(test_ceiling_random)
{
	const unsigned int secs = SHORT_RMW_SECONDS;
	struct rmw_result res;
	struct sampler smp;
	struct dh_client c;

	dh_up(&dmn, NULL);
	rmw_start(&dmn, &c, 4, 64, 8, secs);
	sampler_start(&smp, c.pid);
	dh_sleep_ms((int)secs * 1000);
	sampler_assert(&smp, "random writers", 8 * MIB);
	rmw_finish(&c, secs, &res);
}
END_TEST

/*****************
 * store
 *****************/

/* Issue test 3: each compressor round trips compressible pages, and the
 * pool holds them in well under their size. */
START_TEST(test_compressor)
{
	static const char *const lz4[] = { "--compressor", "lz4", NULL };
	static const char *const zstd[] = { "--compressor", "zstd",
					     "--zstd-level", "9", NULL };
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;

	dh_up(&dmn, _i == 0 ? lz4 : zstd);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 32);
	pager_settle(&c, 4 * MIB, &ps, &s);
	print_status(_i == 0 ? "lz4" : "zstd", &s);
	DH_ASSERT(s.stored_pages >= (32 - 4) * MIB / PAGE,
		  "stored %" PRIu64 " pages", s.stored_pages);
	DH_ASSERT_EQ(s.stored_pages, ps.stored);
	DH_ASSERT_EQ(s.same_pages, 0);
	DH_ASSERT_EQ(s.raw_pages, 0);
	DH_ASSERT_EQ(s.payload_bytes, ps.compressed);
	/* text pages compress about 8:1: well under a quarter */
	DH_ASSERT(s.payload_bytes < s.stored_pages * PAGE / 4,
		  "payload %" PRIu64 " bytes for %" PRIu64 " pages",
		  s.payload_bytes, s.stored_pages);
	DH_ASSERT(s.pool_bytes >= s.payload_bytes &&
			  s.pool_bytes < s.stored_pages * PAGE / 2,
		  "pool %" PRIu64 " bytes for a payload of %" PRIu64
		  " in %" PRIu64 " pages", s.pool_bytes, s.payload_bytes,
		  s.stored_pages);
	pager_ok(&c, "verify 0");
	pager_ok(&c, "rewrite 0");
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/* A daemon, and a pager with one 16 MiB region of @kind evicted at once
 * with COLD; the daemon's STATUS before and after the COLD. */
static void cold_region(struct dh_client *c, const char *kind,
			struct proto_status_reply *before,
			struct proto_status_reply *after)
{
	char what[64];

	dh_up(&dmn, NULL);
	pager_start(&dmn, c);
	pager_alloc(c, kind, 16);
	status(before);
	pager_ok(c, "cold 0");
	status(after);
	snprintf(what, sizeof(what), "after COLD of a %s region", kind);
	print_status(what, after);
}

/* Issue test 4: same-filled pages, zero pages that were written among
 * them, are counted and kept without payload, and read back. */
START_TEST(test_same_filled)
{
	struct proto_status_reply s0, s1, s2;
	struct dh_client c;
	struct pstats ps;

	cold_region(&c, "same", &s0, &s1);
	DH_ASSERT_EQ(s1.stored_pages - s0.stored_pages, 16 * MIB / PAGE);
	DH_ASSERT_EQ(s1.same_pages - s0.same_pages, 16 * MIB / PAGE);
	DH_ASSERT_EQ(s1.raw_pages, s0.raw_pages);
	DH_ASSERT_EQ(s1.payload_bytes, s0.payload_bytes);
	DH_ASSERT_EQ(s1.pool_bytes, s0.pool_bytes);
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.stored, 16 * MIB / PAGE);
	DH_ASSERT_EQ(ps.compressed, 0);
	DH_ASSERT_EQ(ps.resident, 0);
	pager_ok(&c, "verify 0");
	status(&s2);
	DH_ASSERT_EQ(s2.same_pages, s0.same_pages);
	DH_ASSERT_EQ(s2.stored_pages, s0.stored_pages);

	/* through the budget as well, with a sparse region beside it */
	pager_alloc(&c, "sparse", 8);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "same", 32);
	pager_settle(&c, 4 * MIB, &ps, &s1);
	print_status("same-filled under a budget", &s1);
	DH_ASSERT(s1.same_pages > (16 + 32 - 4) * MIB / PAGE,
		  "same-filled pages %" PRIu64, s1.same_pages);
	DH_ASSERT_EQ(s1.raw_pages, 0);
	DH_ASSERT_EQ(s1.stored_pages, ps.stored);
	/* only the sparse region's written pages (one in 4) have payload */
	DH_ASSERT(s1.stored_pages - s1.same_pages <= 8 * MIB / PAGE / 4,
		  "%" PRIu64 " stored pages not same-filled",
		  s1.stored_pages - s1.same_pages);
	DH_ASSERT_EQ(s1.payload_bytes, ps.compressed);
	pager_ok(&c, "verify all");
	pager_quit(&c);
}
END_TEST

/* Issue test 5: random pages do not compress: stored raw, read back. */
START_TEST(test_incompressible)
{
	struct proto_status_reply s0, s1, s2;
	struct dh_client c;
	struct pstats ps;

	cold_region(&c, "random", &s0, &s1);
	DH_ASSERT_EQ(s1.stored_pages - s0.stored_pages, 16 * MIB / PAGE);
	DH_ASSERT_EQ(s1.raw_pages - s0.raw_pages, 16 * MIB / PAGE);
	DH_ASSERT_EQ(s1.same_pages, s0.same_pages);
	DH_ASSERT_EQ(s1.payload_bytes - s0.payload_bytes, 16 * MIB);
	DH_ASSERT(s1.pool_bytes >= s1.payload_bytes, "pool %" PRIu64
		  " < payload %" PRIu64, s1.pool_bytes, s1.payload_bytes);
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.compressed, 16 * MIB);
	pager_ok(&c, "verify 0");
	status(&s2);
	DH_ASSERT_EQ(s2.raw_pages, s0.raw_pages);
	DH_ASSERT_EQ(s2.payload_bytes, s0.payload_bytes);

	/* through the budget */
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "random", 24);
	pager_settle(&c, 4 * MIB, &ps, &s1);
	DH_ASSERT(s1.raw_pages >= (16 + 24 - 4) * MIB / PAGE,
		  "raw pages %" PRIu64, s1.raw_pages);
	DH_ASSERT_EQ(s1.raw_pages, s1.stored_pages);
	DH_ASSERT_EQ(s1.payload_bytes, s1.raw_pages * PAGE);
	pager_ok(&c, "verify all");
	pager_quit(&c);
}
END_TEST

/* Issue test 8: COLD evicts a range at once; WILLNEED brings it back
 * (touching it then faults no more); the data is intact both ways. */
START_TEST(test_advise)
{
	const uint64_t first = 1024, n = 2048;
	struct proto_status_reply s;
	struct pstats p0, p1;
	struct dh_client c;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 16);
	pager_stats(&c, &p0);
	DH_ASSERT_EQ(p0.resident, 16 * MIB);
	DH_ASSERT_EQ(p0.stored, 0);

	pager_ok(&c, "cold 0 %" PRIu64 " %" PRIu64, first, n);
	pager_stats(&c, &p1);
	DH_ASSERT_EQ(p1.evictions - p0.evictions, n);
	DH_ASSERT_EQ(p1.stored, n);
	DH_ASSERT_EQ(p1.resident, 16 * MIB - n * PAGE);
	DH_ASSERT(p1.compressed > 0 && p1.compressed < n * PAGE / 4,
		  "compressed %" PRIu64 " bytes", p1.compressed);
	status(&s);
	DH_ASSERT_EQ(s.stored_pages, n);
	DH_ASSERT_EQ(s.payload_bytes, p1.compressed);
	/* COLD again: nothing resident there, nothing more to do */
	pager_ok(&c, "cold 0 %" PRIu64 " %" PRIu64, first, n);
	pager_stats(&c, &p0);
	DH_ASSERT_EQ(p0.evictions, p1.evictions);

	pager_ok(&c, "willneed 0 %" PRIu64 " %" PRIu64, first, n);
	pager_stats(&c, &p0);
	DH_ASSERT_EQ(p0.stored, 0);
	DH_ASSERT_EQ(p0.compressed, 0);
	DH_ASSERT_EQ(p0.resident, 16 * MIB);
	pager_ok(&c, "verify 0");
	pager_stats(&c, &p1);
	DH_ASSERT(p1.faults == p0.faults, "reading the pages brought back "
		  "by WILLNEED faulted: %" PRIu64 " -> %" PRIu64, p0.faults,
		  p1.faults);
	status(&s);
	DH_ASSERT_EQ(s.stored_pages, 0);
	DH_ASSERT_EQ(s.payload_bytes, 0);

	/* COLD over everything, back through faults this time */
	pager_ok(&c, "cold 0");
	pager_stats(&c, &p0);
	DH_ASSERT_EQ(p0.resident, 0);
	DH_ASSERT_EQ(p0.stored, 16 * MIB / PAGE);
	pager_ok(&c, "verify 0");
	pager_stats(&c, &p1);
	DH_ASSERT(p1.faults - p0.faults >= 1, "no fault brought pages back");
	DH_ASSERT_EQ(p1.stored, 0);
	/* a partial WILLNEED of a cold region; the rest faults in */
	pager_ok(&c, "cold 0");
	pager_ok(&c, "willneed 0 0 100");
	pager_stats(&c, &p0);
	DH_ASSERT_EQ(p0.resident, 100 * PAGE);
	pager_ok(&c, "rewrite 0");
	pager_ok(&c, "cold 0");
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/*****************
 * retain
 *****************/

static const char *const metrics_args[] = { "--metrics", "127.0.0.1:0",
					    NULL };

/* The value of @series on the daemon's /metrics now. */
static uint64_t metric(const char *series)
{
	return dh_metric(&dmn, series);
}

/* The value of @series once it reached at least @want (a fault thread
 * counts a write-protect fault, and drops the retained copy, after the
 * un-protect woke the writer), or as it is after SETTLE_MS. */
static uint64_t metric_at_least(const char *series, uint64_t want)
{
	long long deadline = dh_deadline(SETTLE_MS);
	uint64_t v;

	while ((v = metric(series)) < want && dh_now_ms() < deadline)
		dh_sleep_ms(10);
	return v;
}

/* The same for a value that falls to @want. */
static uint64_t metric_at_most(const char *series, uint64_t want)
{
	long long deadline = dh_deadline(SETTLE_MS);
	uint64_t v;

	while ((v = metric(series)) > want && dh_now_ms() < deadline)
		dh_sleep_ms(10);
	return v;
}

/* A daemon started with @args, and a pager whose one text region of @mib
 * MiB is all stored (COLD). */
static void stored_text(const char *const *args, struct dh_client *c,
			unsigned int mib)
{
	dh_up(&dmn, args);
	pager_start(&dmn, c);
	pager_alloc(c, "text", mib);
	pager_ok(c, "cold 0");
}

/*
 * Issue 12, retention: a page read back keeps its object, so evicting it
 * again is a punch: no new store, every page counted clean, the pool as
 * before. A write drops the object first: evicted after it, the page is
 * stored anew and reads back as written.
 */
START_TEST(test_retain_clean_eviction)
{
	const uint64_t pages = 16 * MIB / PAGE;
	struct proto_status_reply s0, s1;
	uint64_t clean0, stores0, wp0;
	struct dh_client c;

	stored_text(metrics_args, &c, 16);
	status(&s0);
	clean0 = metric("uzswap_evicted_clean_pages_total");
	stores0 = metric("uzswap_store_accepted_pages_total");
	DH_ASSERT_EQ(stores0, pages);
	DH_ASSERT_EQ(metric("uzswap_retained_pages"), 0);

	/* read back: every page keeps its object, out of the payload */
	pager_ok(&c, "verify 0");
	status(&s1);
	print_status("read back, retained", &s1);
	DH_ASSERT_EQ(metric("uzswap_retained_pages"), pages);
	DH_ASSERT_EQ(metric("uzswap_retained_bytes"), s0.payload_bytes);
	DH_ASSERT_EQ(s1.payload_bytes, 0);
	DH_ASSERT_EQ(s1.stored_pages, 0);
	DH_ASSERT_EQ(s1.pool_bytes, s0.pool_bytes);

	/* evicted unchanged: nothing compressed, nothing allocated */
	pager_ok(&c, "cold 0");
	status(&s1);
	print_status("evicted clean", &s1);
	DH_ASSERT_EQ(metric("uzswap_evicted_clean_pages_total") - clean0,
		     pages);
	DH_ASSERT_EQ(metric("uzswap_store_accepted_pages_total"), stores0);
	DH_ASSERT_EQ(s1.payload_bytes, s0.payload_bytes);
	DH_ASSERT_EQ(s1.pool_bytes, s0.pool_bytes);
	DH_ASSERT_EQ(metric("uzswap_retained_pages"), 0);
	pager_ok(&c, "verify 0");

	/* written after a retained load: the object goes at the first
	 * write, the write is what comes back */
	DH_ASSERT_EQ(metric("uzswap_retained_pages"), pages);
	wp0 = metric("uzswap_fault_wp_total");
	pager_ok(&c, "rewrite 0");
	wp0 = metric_at_least("uzswap_fault_wp_total", wp0 + pages) - wp0;
	DH_ASSERT(wp0 >= pages, "%" PRIu64 " write-protect faults for %"
		  PRIu64 " retained pages written", wp0, pages);
	DH_ASSERT_EQ(metric_at_most("uzswap_retained_pages", 0), 0);
	DH_ASSERT_EQ(metric("uzswap_retained_bytes"), 0);
	clean0 = metric("uzswap_evicted_clean_pages_total");
	pager_ok(&c, "cold 0");
	DH_ASSERT_EQ(metric("uzswap_evicted_clean_pages_total"), clean0);
	DH_ASSERT_EQ(metric("uzswap_store_accepted_pages_total") - stores0,
		     pages);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * Issue 12, retention: it follows the client's workload. Pages written
 * after every read (read-modify-write) turn it off for the client, but
 * for a probe load in 32 (each retained write costs a write-protect fault
 * and saves nothing); pages read and evicted clean turn it back on.
 */
START_TEST(test_retain_follows_the_workload)
{
	const uint64_t pages = 16 * MIB / PAGE;
	struct dh_client c;
	uint64_t kept;

	stored_text(metrics_args, &c, 16);
	/* read, then write: every retained copy wasted */
	pager_ok(&c, "verify 0");
	DH_ASSERT_EQ(metric("uzswap_retained_pages"), pages);
	pager_ok(&c, "rewrite 0");
	metric_at_most("uzswap_retained_pages", 0);
	pager_ok(&c, "cold 0");
	pager_ok(&c, "verify 0");
	kept = metric("uzswap_retained_pages");
	DH_ASSERT(kept > 0 && kept <= pages / 16, "%" PRIu64 " of %" PRIu64
		  " pages retained after a read-modify-write round", kept,
		  pages);
	pager_ok(&c, "rewrite 0");
	metric_at_most("uzswap_retained_pages", 0);
	/* read only: the probes are evicted clean, retention comes back */
	pager_ok(&c, "cold 0");
	pager_ok(&c, "verify 0");
	pager_ok(&c, "cold 0");
	pager_ok(&c, "verify 0");
	DH_ASSERT_EQ(metric("uzswap_retained_pages"), pages);
	pager_quit(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * Issue 12, retention: a pool that needs room gives up retained objects
 * (they duplicate resident pages) before it writes anything back. The
 * pool limit is 2.5 times what a 16 MiB text region takes compressed
 * (measured in a first daemon): region A's objects retained, region B's
 * 24 MiB then take the pool past the writer's high mark (85%), and
 * giving A's objects up brings it under its low mark (75%) with nothing
 * written back.
 */
START_TEST(test_retain_given_up_first)
{
	struct proto_status_reply s;
	char limit[32];
	const char *args[] = { "--pool-limit", limit, "--metrics",
			       "127.0.0.1:0", NULL };
	struct dh_client c;
	uint64_t one;

	stored_text(NULL, &c, 16);
	status(&s);
	one = s.pool_bytes;
	pager_quit(&c);
	dh_down(&dmn, NULL);

	snprintf(limit, sizeof(limit), "%" PRIu64 "K", one * 5 / 2 / 1024);
	stored_text(args, &c, 16);
	pager_ok(&c, "verify 0");
	DH_ASSERT_EQ(metric("uzswap_retained_pages"), 16 * MIB / PAGE);
	pager_alloc(&c, "text", 24);
	pager_ok(&c, "cold 1");
	status(&s);
	print_status("second region evicted", &s);
	DH_ASSERT(metric_at_least("uzswap_retained_given_up_objects_total",
				  1) > 0,
		  "no retained object given up, pool %" PRIu64 " of %s",
		  s.pool_bytes, limit);
	DH_ASSERT_EQ(s.writebacks, 0);
	DH_ASSERT_EQ(s.written_back_pages, 0);
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*****************
 * spans (issue 12, batched eviction)
 *****************/

#define SPAN_PAGES	64	/* EVICT_RUN_PAGES: pages one run covers */

/* The pager's region 0: COLD advice on every other page, one by one (odd
 * pages when @from is 1). */
static void cold_every_other(struct dh_client *c, uint64_t pages,
			     uint64_t from, const char *what)
{
	uint64_t i;

	for (i = from; i < pages; i += 2)
		pager_ok(c, "%s 0 %" PRIu64 " 1", what, i);
}

/* COLD advice over region 0, whose odd pages are stored and even ones
 * resident: they go in spans over the stored ones, one run per
 * SPAN_PAGES of the region, not one per page; @clean of them kept their
 * copy. */
static void cold_spans(struct dh_client *c, uint64_t pages, uint64_t clean)
{
	uint64_t runs0 = metric("uzswap_eviction_runs_total");
	uint64_t evicted0 = metric("uzswap_evicted_pages_total");
	uint64_t clean0 = metric("uzswap_evicted_clean_pages_total");
	uint64_t runs;

	pager_ok(c, "cold 0");
	runs = metric("uzswap_eviction_runs_total") - runs0;
	DH_ASSERT_EQ(metric("uzswap_evicted_pages_total") - evicted0,
		     pages / 2);
	DH_ASSERT_EQ(metric("uzswap_evicted_clean_pages_total") - clean0,
		     clean);
	printf("spans: %" PRIu64 " pages in %" PRIu64 " runs\n", pages / 2,
	       runs);
	DH_ASSERT(runs <= pages / SPAN_PAGES, "%" PRIu64 " runs for %" PRIu64
		  " pages one in two", runs, pages / 2);
}

/*
 * Issue 12, batched eviction: resident pages one in two, the others
 * stored, are evicted by COLD advice in spans over the stored ones (one
 * write-protect, one punch per span), written pages and pages that kept
 * their copy alike, and every page reads back as written.
 */
START_TEST(test_span_advice)
{
	const uint64_t pages = 4 * MIB / PAGE;
	struct dh_client c;

	dh_up(&dmn, metrics_args);
	pager_start(&dmn, &c);
	/* written: all resident; the odd ones stored, one run each */
	pager_alloc(&c, "text", 4);
	cold_every_other(&c, pages, 1, "cold");
	cold_spans(&c, pages, 0);
	pager_ok(&c, "verify 0");
	/* read back, keeping their copies: the odd ones stored again (a
	 * punch each), then the even ones */
	cold_every_other(&c, pages, 1, "cold");
	cold_spans(&c, pages, pages / 2);
	pager_ok(&c, "verify 0");
	pager_ok(&c, "rewrite 0");
	pager_ok(&c, "verify 0");
	pager_quit(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * Issue 12, batched eviction on the LRU walk: pages brought back one in
 * two, in address order, are each a record at the LRU's tail; a budget
 * lowered under them is met by runs that take the tail page and the cold
 * pages after it over the stored pages between them. Of the 512 pages
 * brought back, the evictor takes about 384 (down to its low mark, 128
 * pages under the 1 MiB budget); the cold records are the oldest quarter
 * of the LRU, at least 32 of them while it does, so a run takes at least
 * 16 pages (the pages of a window of 64 are one in two).
 */
START_TEST(test_span_lru)
{
	const uint64_t pages = 4 * MIB / PAGE;
	uint64_t runs0, evicted0, runs, evicted;
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;

	stored_text(metrics_args, &c, 4);
	cold_every_other(&c, pages, 0, "willneed");
	runs0 = metric("uzswap_eviction_runs_total");
	evicted0 = metric("uzswap_evicted_pages_total");
	pager_ok(&c, "limit 1");
	pager_wait_resident(&c, 1 * MIB, &ps);
	runs = metric("uzswap_eviction_runs_total") - runs0;
	evicted = metric("uzswap_evicted_pages_total") - evicted0;
	status(&s);
	print_status("budget lowered under pages one in two", &s);
	printf("spans: %" PRIu64 " pages in %" PRIu64 " runs\n", evicted,
	       runs);
	DH_ASSERT(evicted >= pages / 2 - MIB / PAGE, "evicted %" PRIu64,
		  evicted);
	DH_ASSERT(evicted >= 16 * runs, "%" PRIu64 " pages in %" PRIu64
		  " runs", evicted, runs);
	pager_ok(&c, "limit 0");
	pager_ok(&c, "verify 0");
	pager_quit(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*****************
 * safety
 *****************/

/* Issue test 6: a client's exit, normal or SIGKILL, while its pages are
 * compressed, gives back everything it had in the store; another client's
 * pages stay. */
START_TEST(test_exit_releases_store)
{
	struct proto_status_reply base, mine, now;
	struct dh_client keep, c;
	struct pstats ps;
	int round;

	dh_up(&dmn, NULL);
	status(&base);
	DH_ASSERT_EQ(base.stored_pages, 0);
	/* a client whose compressed pages must stay as they are */
	pager_start(&dmn, &keep);
	pager_alloc(&keep, "text", 8);
	pager_alloc(&keep, "same", 1);
	pager_alloc(&keep, "random", 1);
	pager_ok(&keep, "cold 0");
	pager_ok(&keep, "cold 1");
	pager_ok(&keep, "cold 2");
	status(&mine);
	DH_ASSERT_EQ(mine.stored_pages, 10 * MIB / PAGE);

	for (round = 0; round < 2; round++) {
		pager_start(&dmn, &c);
		pager_ok(&c, "limit 4");
		pager_alloc(&c, "text", 24);
		pager_alloc(&c, "random", 4);
		pager_alloc(&c, "same", 4);
		pager_wait_resident(&c, 4 * MIB, &ps);
		status(&now);
		DH_ASSERT(now.stored_pages > mine.stored_pages +
						     (32 - 4) * MIB / PAGE - 64,
			  "stored %" PRIu64 " pages", now.stored_pages);
		if (round == 0) {
			pager_quit(&c);
		} else {
			dh_client_kill(&c);
		}
		wait_store(&mine, &now);
	}
	pager_ok(&keep, "verify all");
	pager_quit(&keep);
	wait_store(&base, &now);
}
END_TEST

/* Issue test 10: uzswap_free of one region while it and another are
 * compressed: the other stays intact. */
START_TEST(test_free_while_compressed)
{
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 16);
	pager_alloc(&c, "random", 8);
	pager_alloc(&c, "text", 16);
	pager_ok(&c, "cold 0");
	pager_ok(&c, "cold 1");
	pager_ok(&c, "cold 2 0 2048");
	pager_ok(&c, "free 0");
	pager_stats(&c, &ps);
	DH_ASSERT_EQ(ps.regions, 2);
	DH_ASSERT_EQ(ps.stored, (8 * MIB + 8 * MIB) / PAGE);
	status(&s);
	DH_ASSERT_EQ(s.stored_pages, ps.stored);
	DH_ASSERT_EQ(s.payload_bytes, ps.compressed);
	pager_ok(&c, "verify 1");
	pager_ok(&c, "verify 2");
	pager_ok(&c, "cold 2");
	pager_ok(&c, "free 1");
	pager_ok(&c, "verify 2");
	/* under a budget, while the evictor works on the others */
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 16);
	pager_alloc(&c, "same", 8);
	pager_ok(&c, "free 2");
	pager_ok(&c, "verify all");
	pager_quit(&c);
	{
		struct proto_status_reply zero = { 0 }, now;

		wait_store(&zero, &now);
	}
}
END_TEST

/* uzswapctl drain: it must exit 0 (every region released). */
static void drain_ok(void)
{
	const char *argv[] = { UZSWAPCTL_PATH, "--socket", dmn.sock, "drain",
			       NULL };
	char out[512], err[512];
	int status;

	status = dh_run(argv, NULL, NULL, out, sizeof(out), err, sizeof(err),
			SETTLE_MS);
	DH_ASSERT(dh_exited_ok(status), "uzswapctl drain: %s: %s%s",
		  dh_status_str(status), out, err);
}

/*
 * The drain, the one that matters most: while a client's pages are
 * compressed, same-filled and raw. The daemon writes them back into the
 * memfds and unregisters the regions; the daemon then stops, and the
 * client, running with plain memory now, reads every byte back, the
 * pages never touched as zeros, and goes on writing.
 */
START_TEST(test_drain_restores)
{
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;
	char reply[256];

	dh_up(&dmn, NULL);
	/* it asks for stats with the daemon stopped for good */
	dh_brief_timeout(true);
	pager_start(&dmn, &c);
	dh_brief_timeout(false);
	pager_alloc(&c, "text", 8);
	pager_alloc(&c, "random", 4);
	pager_alloc(&c, "same", 4);
	pager_alloc(&c, "sparse", 4);
	pager_ok(&c, "cold 0");
	pager_ok(&c, "cold 1");
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 16);
	pager_settle(&c, 4 * MIB, &ps, &s);
	print_status("before the drain", &s);
	DH_ASSERT(s.stored_pages > 6000 && s.same_pages > 0 &&
			  s.raw_pages > 0,
		  "stored %" PRIu64 " same %" PRIu64 " raw %" PRIu64,
		  s.stored_pages, s.same_pages, s.raw_pages);

	drain_ok();
	dh_stop_ok(&dmn, SIGTERM, NULL);

	pager_ok(&c, "verify all");
	pager_do(&c, reply, sizeof(reply), "stats");
	DH_ASSERT(!strncmp(reply, "fail", 4),
		  "stats with the daemon stopped: %s", reply);
	pager_ok(&c, "rewrite 0");
	pager_ok(&c, "rewrite 4");
	pager_ok(&c, "verify all");
	pager_quit(&c);
}
END_TEST

/*
 * The drain with the evictor in the middle of a run: a drain while the
 * evictor, slow on purpose (zstd at level 19), is still bringing a client
 * that has just written 32 MiB down to its 4 MiB budget. It works up the
 * fault-in LRU, that is in address order: the pages below its current run
 * are stored, the run is under way, the pages above are resident. The
 * drain must wait for that run and restore it too before it unregisters
 * the region: if it unregisters first, the run's punch leaves holes in the
 * memfd and the client reads zeros.
 */
START_TEST(test_drain_mid_run)
{
	static const char *const args[] = { "--compressor", "zstd",
					     "--zstd-level", "19", NULL };
	struct proto_status_reply s;
	struct dh_client c;
	int round;

	for (round = 0; round < ROUNDS; round++) {
		dh_up(&dmn, args);
		/* it asks for stats with the daemon stopped for good */
		dh_brief_timeout(true);
		pager_start(&dmn, &c);
		dh_brief_timeout(false);
		pager_ok(&c, "limit 4");
		pager_alloc(&c, "text", 32);
		if (round > 0)
			dh_sleep_ms(300 * round);
		status(&s);
		print_status("at the drain", &s);
		drain_ok();
		dh_stop_ok(&dmn, SIGTERM, NULL);
		pager_ok(&c, "verify 0");
		pager_ok(&c, "rewrite 0");
		pager_ok(&c, "verify 0");
		pager_quit(&c);
		if (!getenv("UZSWAP_ITEST_KEEP"))
			dh_remove(&dmn);
	}
}
END_TEST

/*****************
 * writeback
 *****************/

/* One z3fold pool segment: the pool may pass its limit by up to one
 * before the store refuses pages. */
#define POOL_SEGMENT	MIB
/* The evictor's warning when the pool is at its limit and the backing file
 * takes no more (once per episode). */
#define WB_STUCK	"backing file takes no more"
/* The store's one error when the backing file refuses a write. */

static void print_wb(const char *when, const struct proto_status_reply *s)
{
	fprintf(stderr,
		"WRITEBACK %s: pool %" PRIu64 "/%" PRIu64 " full %" PRIu64
		" written back %" PRIu64 " writebacks %" PRIu64 " failures %"
		PRIu64 " backing %" PRIu64 "/%" PRIu64 " read-ahead %" PRIu64
		" loads %" PRIu64 " evictions %" PRIu64 "\n", when,
		s->pool_bytes, s->pool_limit, s->pool_full,
		s->written_back_pages, s->writebacks, s->writeback_failures,
		s->backing_bytes, s->backing_limit, s->read_ahead, s->loads,
		s->evictions);
}

/*
 * pager_settle() with pages in the backing file: STATUS's stored_pages
 * counts the pool's pages only, the client's stored count those written
 * back too.
 */
static void wb_settle(struct dh_client *c, uint64_t bytes, struct pstats *s,
		      struct proto_status_reply *st)
{
	long long deadline = dh_deadline(SETTLE_MS);
	struct pstats again;

	for (;;) {
		pager_wait_resident(c, bytes, s);
		status(st);
		pager_stats(c, &again);
		if (again.evictions == s->evictions &&
		    again.stored == s->stored &&
		    again.compressed == s->compressed &&
		    st->stored_pages + st->written_back_pages == s->stored)
			return;
		if (dh_now_ms() >= deadline)
			print_wb("not at rest", st);
		DH_ASSERT(dh_now_ms() < deadline, "eviction did not come to "
			  "rest within %d ms: client stored %" PRIu64
			  " -> %" PRIu64 ", evictions %" PRIu64 " -> %" PRIu64,
			  SETTLE_MS, s->stored, again.stored, s->evictions,
			  again.evictions);
		dh_sleep_ms(50);
	}
}

/* Teardown of the cases whose backing file fills up. */
static void daemon_down_wb(void)
{
	if (dmn.pid) {
		int status = dh_stop(&dmn);

		DH_ASSERT(dh_exited_ok(status), "uzswapd on SIGTERM: %s",
			  dh_status_str(status));
	}
	if (dmn.dir[0])
		dh_assert_log_clean(&dmn, NULL);
	if (!getenv("UZSWAP_ITEST_KEEP"))
		dh_remove(&dmn);
}

/*
 * Writeback test 1: with the pool limited to 4 MiB, a client with a
 * 4 MiB budget writes 48 MiB of text (about 6 MiB compressed): the pool
 * fills, reclaim from the bottom writes its oldest objects to the backing
 * file, and the pool stays at its limit (plus one segment). Every page
 * comes back, from the pool or from the file; once the client is gone,
 * nothing of it is left in the file.
 */
START_TEST(test_wb_pool_limit)
{
	static const char *const args[] = { "--pool-limit", "4M", NULL };
	const uint64_t limit = 4 * MIB;
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;
	long long deadline;

	dh_up(&dmn, args);
	status(&s);
	DH_ASSERT_EQ(s.pool_limit, limit);
	DH_ASSERT(s.backing_limit > 0, "no backing file");
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 48);
	pager_wait_resident(&c, 4 * MIB, &ps);
	deadline = dh_deadline(SETTLE_MS);
	for (;;) {
		status(&s);
		DH_ASSERT(s.pool_bytes <= limit + POOL_SEGMENT,
			  "pool %" PRIu64 " bytes over its limit %" PRIu64,
			  s.pool_bytes, limit);
		if (s.writebacks > 0 && s.written_back_pages > 0 &&
		    s.backing_bytes > 0)
			break;
		if (dh_now_ms() >= deadline)
			print_wb("no writeback", &s);
		DH_ASSERT(dh_now_ms() < deadline, "no writeback within %d ms",
			  SETTLE_MS);
		dh_sleep_ms(20);
	}
	wb_settle(&c, 4 * MIB, &ps, &s);
	print_wb("at the pool limit", &s);
	DH_ASSERT(s.pool_bytes <= limit + POOL_SEGMENT, "pool %" PRIu64,
		  s.pool_bytes);
	DH_ASSERT(s.written_back_pages > 0 && s.backing_bytes > 0,
		  "written back %" PRIu64 " backing %" PRIu64,
		  s.written_back_pages, s.backing_bytes);
	DH_ASSERT(s.writebacks >= s.written_back_pages, "writebacks %" PRIu64
		  " < written back %" PRIu64, s.writebacks,
		  s.written_back_pages);
	DH_ASSERT_EQ(s.writeback_failures, 0);
	pager_ok(&c, "verify all");
	status(&s);
	print_wb("after verify", &s);
	DH_ASSERT(s.pool_bytes <= limit + POOL_SEGMENT, "pool %" PRIu64,
		  s.pool_bytes);
	pager_quit(&c);
	dh_wait_backing_empty(&dmn, &s);
	DH_ASSERT(!dh_log_find(&dmn, WB_STUCK, NULL, 0),
		  "the backing file was reported full");
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * Writeback test 2: checksummed read-modify-write (4 threads, 64 MiB,
 * 4 MiB budget) with the pool limited to 4 MiB: pages go to the pool, to
 * the backing file, and back, and not one write is lost; the final check
 * reads the region in address order, so read-ahead brings pages back
 * from the pool and the backing file too.
 */
START_TEST(test_wb_rmw)
{
	static const char *const args[] = { "--pool-limit", "4M", NULL };
	const unsigned int secs = SHORT_RMW_SECONDS;
	struct proto_status_reply s;
	struct rmw_result res;
	struct dh_client c;

	dh_up(&dmn, args);
	rmw_start(&dmn, &c, 4, 64, 4, secs);
	rmw_finish(&c, secs, &res);
	status(&s);
	print_status("after rmw with writeback", &s);
	print_wb("after rmw", &s);
	DH_ASSERT(res.have_stats, "rmw: no stats");
	DH_ASSERT(res.ops > 1000, "only %" PRIu64 " read-modify-writes",
		  res.ops);
	DH_ASSERT(s.evictions > 0, "evictions %" PRIu64, s.evictions);
	DH_ASSERT(s.loads > 0, "loads %" PRIu64, s.loads);
	DH_ASSERT(s.read_ahead > 0, "read-ahead %" PRIu64, s.read_ahead);
	DH_ASSERT(s.writebacks > 0, "writebacks %" PRIu64, s.writebacks);
	DH_ASSERT_EQ(s.writeback_failures, 0);
	/* (store_failures count the pages the pool refused at its limit:
	 * expected here, they stay resident) */
	{
		struct proto_status_reply zero = { 0 }, now;

		wait_store(&zero, &now);
		dh_wait_backing_empty(&dmn, &now);
	}
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * Tests 3 and 4: a client with a 2 MiB budget writes 64 MiB of text with
 * the pool limited to 2 MiB and a backing file that takes much less than
 * the rest. Once pool and file are full, evictions stop: the pool says
 * full, the file refused writes, the evictor said so once, and the client
 * is over its budget; no page is lost. While the client reads its pages
 * back the pool flaps between full and not, and the evictors' lines about
 * it stay within the log's rate limit (before it: 140 lines in seconds).
 */
static void wb_full_scenario(const char *const *args)
{
	const uint64_t limit = 2 * MIB;
	struct proto_status_reply s;
	struct dh_client c;
	struct pstats ps;
	long long deadline, start = dh_now_ms(), windows;
	int lines;

	dh_up(&dmn, args);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 2");
	pager_alloc(&c, "text", 64);
	deadline = dh_deadline(SETTLE_MS);
	for (;;) {
		status(&s);
		if (s.pool_full == 1 && s.writeback_failures > 0 &&
		    dh_log_count(&dmn, WB_STUCK) >= 1)
			break;
		if (dh_now_ms() >= deadline)
			print_wb("not stuck", &s);
		DH_ASSERT(dh_now_ms() < deadline, "pool and backing file not "
			  "full within %d ms", SETTLE_MS);
		dh_sleep_ms(20);
	}
	pager_stats(&c, &ps);
	status(&s);
	print_status("pool and backing file full", &s);
	print_wb("pool and backing file full", &s);
	fprintf(stderr, "client: resident %" PRIu64 " limit %" PRIu64
		" stored %" PRIu64 "\n", ps.resident, ps.limit, ps.stored);
	DH_ASSERT_EQ(s.pool_full, 1);
	DH_ASSERT(s.writeback_failures > 0, "no writeback failed");
	DH_ASSERT(s.writebacks > 0, "nothing written back");
	DH_ASSERT(s.written_back_pages > 0, "no page in the backing file");
	DH_ASSERT_EQ(dh_log_count(&dmn, WB_STUCK), 1);
	DH_ASSERT(s.pool_bytes <= limit + POOL_SEGMENT, "pool %" PRIu64,
		  s.pool_bytes);
	DH_ASSERT_EQ(ps.limit, limit);
	DH_ASSERT(ps.resident > limit + RUN_BYTES,
		  "resident %" PRIu64 " within the budget", ps.resident);
	DH_ASSERT(ps.stored > 0 && ps.stored < 64 * MIB / PAGE,
		  "stored %" PRIu64, ps.stored);
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_wait_backing_empty(&dmn, &s);
	/* two sites ("at its limit", "takes pages again"), each a burst and
	 * a summary per window */
	windows = (dh_now_ms() - start) / LOG_RL_INTERVAL_MS + 1;
	lines = dh_log_count(&dmn, "evict: the pool");
	fprintf(stderr, "pool lines: %d in %lld windows of %d ms\n", lines,
		windows, LOG_RL_INTERVAL_MS);
	DH_ASSERT(lines <= 2 * (LOG_RL_BURST + 1) * windows,
		  "%d pool lines in %lld windows", lines, windows);
}

/* Writeback test 3: the backing file's cap (--backing-limit 1M). */
START_TEST(test_wb_backing_full)
{
	static const char *const args[] = { "--pool-limit", "2M",
					     "--backing-limit", "1M", NULL };

	wb_full_scenario(args);
	{
		struct proto_status_reply s;

		status(&s);
		DH_ASSERT_EQ(s.backing_limit, MIB);
	}
}
END_TEST

/*
 * Writeback test 4: the backing file on a 256 KiB tmpfs (mounted by the
 * unchecked fixture below, in the parent, so that it is unmounted even
 * after a failure): ENOSPC from the filesystem works like the cap.
 */
static char small_dir[PATH_MAX];
static int small_mounted;	/* 1 mounted, -errno if mount failed */

static void small_mount(void)
{
	small_mounted = dh_mkdtemp(small_dir, sizeof(small_dir), "small");
	if (small_mounted) {
		small_dir[0] = 0;
		return;
	}
	if (mount("tmpfs", small_dir, "tmpfs", 0, "size=256k,mode=0700") < 0)
		small_mounted = -errno;
	else
		small_mounted = 1;
}

static void small_umount(void)
{
	int i;

	if (small_mounted == 1) {
		/* the daemon of a failed test may take a moment to die */
		for (i = 0; i < 200 && umount(small_dir) < 0 && errno == EBUSY;
		     i++)
			dh_sleep_ms(50);
		if (i == 200)
			umount2(small_dir, MNT_DETACH);
		small_mounted = 0;
	}
	if (small_dir[0])
		rmdir(small_dir);
	small_dir[0] = 0;
}

START_TEST(test_wb_enospc)
{
	char path[PATH_MAX + 16];
	const char *args[] = { "--pool-limit", "2M", "--backing-file", path,
			       NULL };

	DH_CHECK(small_mounted == 1, "cannot mount a tmpfs on %s: %s",
		 small_dir, strerror(-small_mounted));
	snprintf(path, sizeof(path), "%s/backing", small_dir);
	wb_full_scenario(args);
	{
		struct proto_status_reply s;

		status(&s);
		/* the default cap: the filesystem is what ran out */
		DH_ASSERT(s.backing_limit > 256 * 1024, "backing limit %"
			  PRIu64, s.backing_limit);
	}
}
END_TEST

/*
 * Write-back that keeps up (issue 12): four clients doing checksummed
 * read-modify-write (4 threads over 64 MiB each) under 8 MiB budgets,
 * the pool limited to 8 MiB and a backing file with room. Once every
 * client has written all its pages and come within the bound once, each
 * client's RssShmem is sampled every WB_SAMPLE_MS for a while (the
 * clients run until told to stop) and no sample may pass WB_BOUND_PCT %
 * of the budget; then not one
 * write lost, and the pool's objects went to the backing file in batches.
 */
#define WB_CLIENTS	4
#define WB_BUDGET_MIB	8
#define WB_BOUND_PCT	125
#define WB_SAMPLE_MS	20

/* One sample of every client; returns how many are over @bound and
 * raises @max (each client's largest). */
static int wb_sample(const struct dh_client *c, long long bound,
		     long long *max)
{
	int i, over = 0;

	for (i = 0; i < WB_CLIENTS; i++) {
		long long r = dh_rss_shmem(c[i].pid);

		DH_ASSERT(r >= 0, "RssShmem of %d: %s", (int)c[i].pid,
			  strerror((int)-r));
		if (r > max[i])
			max[i] = r;
		over += r > bound;
	}
	return over;
}

START_TEST(test_wb_budget_holds)
{
	static const char *const args[] = { "--pool-limit", "8M", NULL };
	const long long bound = WB_BUDGET_MIB * MIB * WB_BOUND_PCT / 100;
#ifdef UZSWAP_SANITIZED
	const unsigned int secs = 28;
#else
	const unsigned int secs = 18;
#endif
	long long max[WB_CLIENTS] = { 0 }, end, deadline;
	unsigned long samples = 0, over = 0;
	struct dh_client c[WB_CLIENTS];
	struct rmw_result res;
	struct proto_status_reply s;
	int i;

	dh_up(&dmn, args);
	/* each runs until told to stop, however long the first fill takes */
	for (i = 0; i < WB_CLIENTS; i++)
		rmw_start(&dmn, &c[i], 4, 64, WB_BUDGET_MIB, 0);
	/* the first fill is done: each client within the bound once */
	deadline = dh_deadline(SETTLE_MS);
	while (wb_sample(c, bound, max)) {
		DH_ASSERT(dh_now_ms() < deadline, "the clients did not come "
			  "within %lld bytes after their first fill", bound);
		dh_sleep_ms(WB_SAMPLE_MS);
	}
	memset(max, 0, sizeof(max));
	end = dh_now_ms() + (long long)secs * 1000;
	while (dh_now_ms() < end) {
		over += (unsigned long)wb_sample(c, bound, max);
		samples++;
		dh_sleep_ms(WB_SAMPLE_MS);
	}
	status(&s);
	print_status("budgets under write-back", &s);
	print_wb("budgets under write-back", &s);
	for (i = 0; i < WB_CLIENTS; i++)
		fprintf(stderr, "client %d: largest RssShmem %lld (%.2fx the "
			"budget)\n", i, max[i],
			(double)max[i] / (WB_BUDGET_MIB * MIB));
	fprintf(stderr, "%lu samples of %d clients, %lu over %lld bytes\n",
		samples, WB_CLIENTS, over, bound);
	for (i = 0; i < WB_CLIENTS; i++) {
		DH_ASSERT(dh_client_say(&c[i], "stop") == 0,
			  "cannot tell rmw client %d to stop", i);
		rmw_finish(&c[i], 0, &res);
	}
	DH_ASSERT(samples > 10, "only %lu samples", samples);
	DH_ASSERT(s.writebacks > 0, "writebacks %" PRIu64, s.writebacks);
	DH_ASSERT_EQ(s.writeback_failures, 0);
	DH_ASSERT(over == 0, "%lu of %lu samples over %d%% of the budget "
		  "(largest %lld %lld %lld %lld)", over, samples * WB_CLIENTS,
		  WB_BOUND_PCT, max[0], max[1], max[2], max[3]);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*****************
 * Suites
 *****************/

static Suite *evict_suite(void)
{
	Suite *s = suite_create("evict");
	TCase *tc;

	tc = tcase_create("pressure");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_rmw_integrity);
	tcase_add_test(tc, test_handover_under_pressure);
	suite_add_tcase(s, tc);

	tc = tcase_create("budget");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_budget_rss);
	tcase_add_test(tc, test_set_limit_live);
	tcase_add_test(tc, test_default_limit);
	tcase_add_test(tc, test_global_budget);
	suite_add_tcase(s, tc);

	tc = tcase_create("ceiling");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_ceiling_sequential);
	tcase_add_test(tc, test_ceiling_random);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_loop_test(tc, test_compressor, 0, 2);
	tcase_add_test(tc, test_same_filled);
	tcase_add_test(tc, test_incompressible);
	tcase_add_test(tc, test_advise);
	suite_add_tcase(s, tc);

	tc = tcase_create("safety");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_exit_releases_store);
	tcase_add_test(tc, test_free_while_compressed);
	tcase_add_test(tc, test_drain_restores);
	tcase_add_test(tc, test_drain_mid_run);
	suite_add_tcase(s, tc);

	tc = tcase_create("writeback");
	tcase_add_checked_fixture(tc, NULL, daemon_down_wb);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_wb_pool_limit);
	tcase_add_test(tc, test_wb_rmw);
	tcase_add_test(tc, test_wb_backing_full);
	suite_add_tcase(s, tc);

	tc = tcase_create("wbbudget");
	tcase_add_checked_fixture(tc, NULL, daemon_down_wb);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_wb_budget_holds);
	suite_add_tcase(s, tc);

	tc = tcase_create("retain");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_retain_clean_eviction);
	tcase_add_test(tc, test_retain_follows_the_workload);
	tcase_add_test(tc, test_retain_given_up_first);
	suite_add_tcase(s, tc);

	tc = tcase_create("span");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_span_advice);
	tcase_add_test(tc, test_span_lru);
	suite_add_tcase(s, tc);

	/* a part of its own (check_evict_enospc): it needs a mount */
	tc = ckpart_tcase(s, "enospc");
	tcase_add_unchecked_fixture(tc, small_mount, small_umount);
	tcase_add_checked_fixture(tc, NULL, daemon_down_wb);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_wb_enospc);
	return s;
}

static const char *cannot_run(const char *part)
{
	return ckpart_cannot_mount();
}

int main(void)
{
	return dh_main_part("check_evict", evict_suite(), CKPART, cannot_run);
}
