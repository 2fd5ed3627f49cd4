/*
 * crash.h - what the crash tests (check_killpoint, check_torture) share:
 * a workload of real clients that keeps a daemon evicting, loading and
 * writing back to its backing file, checks every read, and verifies all
 * its memory at the end; and the daemon it runs against, armed with a kill
 * point (UZSWAPD_KILLPOINT, killpoint.h) or killed at random.
 *
 * The workload: CRASH_RMW uzclient rmw clients (checksummed
 * read-modify-write by two threads each, see cmd_rmw() in uzclient.c),
 * each on a CRASH_RMW_MIB region under a CRASH_LIMIT_MIB budget, and one
 * pager holding a compressible and an incompressible region under the
 * same budget (region 0 "text", region 1 "random"). With CRASH_DAEMON_ARGS
 * the pool is much smaller than what they store, so pages are written
 * back all the time. Every failure dumps the daemon's and the clients'
 * logs and fails the running test.
 */
#ifndef UZSWAP_ITEST_CRASH_H
#define UZSWAP_ITEST_CRASH_H

#include <stdbool.h>

#include "daemon_harness.h"

#define CRASH_RMW		2	/* rmw clients */
#define CRASH_RMW_THREADS	2	/* writer threads of each */
#define CRASH_RMW_MIB		12	/* the region of each */
#define CRASH_LIMIT_MIB		2	/* every client's budget */
#define CRASH_TEXT_MIB		8	/* the pager's region 0 */
#define CRASH_RANDOM_MIB	2	/* the pager's region 1 */

/* Daemon options: a pool far smaller than the store, writing back. */
extern const char *const CRASH_DAEMON_ARGS[];

/*
 * struct crash_load - the clients of the workload
 * @rmw:   the rmw clients
 * @pager: the pager
 * @ready: whether each rmw client said "ready" (its pages are all
 *         written once; it runs until crash_load_finish())
 */
struct crash_load {
	struct dh_client rmw[CRASH_RMW];
	struct dh_client pager;
	bool ready[CRASH_RMW];
};

/* Start the pager (its two regions filled: REGISTER twice), then the rmw
 * clients (REGISTER once each), without waiting for them: a daemon that
 * dies meanwhile leaves them blocked until its successor serves them. */
void crash_load_start(const struct dh_daemon *d, struct crash_load *l);

/* Wait until every rmw client has said "ready". */
void crash_load_ready(struct crash_load *l);

/*
 * crash_load_finish() - stop the workload and check it: the pager reads
 * back both regions, every rmw client stops, checks every page of its
 * region against the last write of its threads, and must report 0 bad
 * reads (no lost, stale, torn or zeroed write) and exit 0; the pager
 * quits and exits 0. No client may hang: every wait is bounded.
 */
void crash_load_finish(struct crash_load *l);

/* Arm the kill point @spec ("NAME[:N]") in every daemon started from now
 * on; NULL disarms. */
void crash_arm(const char *spec);

/* Assert that @d's daemon died at kill point @name: its wait status
 * @status is a SIGKILL, and its log holds the point's last words. */
void crash_assert_killed_at(const struct dh_daemon *d, int status,
			    const char *name);

/* Start @d's daemon again on its state directory (CRASH_DAEMON_ARGS): it
 * must take over and answer. */
void crash_restart(struct dh_daemon *d);

#endif /* UZSWAP_ITEST_CRASH_H */
