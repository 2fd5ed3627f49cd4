/*
 * check_killpoint.c - uzswapd SIGKILLed at each step of each protocol
 * (a kill point, killpoint.h) loses nothing: a successor on the same state
 * directory takes every client over, no write is lost, no page reads as
 * zeros, no client hangs.
 *
 * Each test arms one kill point (UZSWAPD_KILLPOINT=NAME:N) in the daemon
 * of the crash workload (crash.h: rmw clients and a pager under small
 * budgets, a pool that writes back), provokes the step when the workload
 * alone does not, asserts that the daemon died of SIGKILL at that point
 * (a point never reached fails the test), starts a successor, lets the
 * clients go on, and has every client verify all its memory. Under TSan
 * only a short run of them, unless KILLPOINTS=all (short_run_only()).
 *
 * Valgrind: CK_FORK=no valgrind integration/check_killpoint
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "crash.h"
#include "daemon_harness.h"
#include "lib/common/macros.h"
#include "lib/proto/proto.h"
#include "pager.h"

#define MIB (1024 * 1024)

static struct dh_daemon dmn;

/* What brings the daemon to a point. */
enum trigger {
	BY_LOAD,	/* the workload's evictions, loads and write-backs */
	BY_ALLOC,	/* the pager's next alloc (a REGISTER) */
	BY_FREE,	/* the pager's free of its stored region 0, whose
			 * memory it keeps to check that all was restored */
	BY_TAKEOVER,	/* a successor of a daemon killed at random */
	BY_RESTED,	/* a successor of a daemon that handed over: it
			 * takes over from the image left at rest */
	BY_DRAIN,	/* uzswapctl drain */
	BY_STOP,	/* SIGTERM: the handover */
};

/*
 * The kill points, in the order of their protocols, with the hit that
 * kills: late enough that the store holds pages of every kind and pages
 * are being written back. BY_ALLOC counts the workload's own REGISTERs
 * (the pager's two, one per rmw client) before the pager's third.
 */
static const struct point {
	const char *name;
	unsigned int nth;
	enum trigger by;
	bool short_run;		/* in the short run (short_run_only()) */
} points[] = {
	{ "evict.protected", 400, BY_LOAD, false },
	{ "evict.published", 400, BY_LOAD, true },
	{ "evict.punched", 400, BY_LOAD, false },
	{ "load.copied", 3000, BY_LOAD, false },
	{ "load.published", 3000, BY_LOAD, false },
	{ "load.loaded", 3000, BY_LOAD, false },
	{ "writeback.written", 200, BY_LOAD, false },
	{ "writeback.slotted", 200, BY_LOAD, false },
	{ "writeback.published", 200, BY_LOAD, false },
	{ "register.registered", 3 + CRASH_RMW, BY_ALLOC, false },
	{ "register.saved", 3 + CRASH_RMW, BY_ALLOC, false },
	{ "unregister.restoring", 1, BY_FREE, true },
	{ "unregister.unregistered", 1, BY_FREE, false },
	{ "drain.released", 1, BY_DRAIN, false },
	{ "stop.saved", 1, BY_STOP, true },
	{ "takeover.adopted", 1, BY_TAKEOVER, false },
	{ "takeover.served", 1, BY_TAKEOVER, true },
	{ "takeover.adopted", 1, BY_RESTED, true },
	{ "takeover.served", 1, BY_RESTED, false },
};

/*
 * Whether only the short run's points are tested: under ThreadSanitizer
 * (ten times slower: the whole matrix took 11 minutes) `make check` runs
 * one point of each place where threads meet (an eviction, a worker's
 * restore, a stop, a takeover); every point runs in the plain and ASan
 * builds, and in any build under `make soak` (KILLPOINTS=all).
 */
static bool short_run_only(void)
{
#ifdef __SANITIZE_THREAD__
	const char *all = getenv("KILLPOINTS");

	return !all || strcmp(all, "all");
#else
	return false;
#endif
}

/* Until the store holds pages written back, at most SETTLE_MS. */
static void wait_written_back(void)
{
	long long deadline = dh_deadline(SETTLE_MS);
	struct proto_status_reply s;

	for (;;) {
		DH_ASSERT_EQ(dh_status(&dmn, &s), 0);
		if (s.written_back_pages > 0 && s.stored_pages > 0)
			return;
		DH_ASSERT(dh_now_ms() < deadline, "nothing written back: %"
			  PRIu64 " pages stored", s.stored_pages);
		dh_sleep_ms(20);
	}
}

/* uzswapctl drain, cut by the kill: it must fail (no daemon to answer). */
static void drain(void)
{
	const char *argv[] = { UZSWAPCTL_PATH, "--socket", dmn.sock, "drain",
			       "--force", NULL };
	char out[512], err[512];
	int status;

	status = dh_run(argv, NULL, NULL, out, sizeof(out), err, sizeof(err),
			SETTLE_MS);
	DH_ASSERT(!dh_exited_ok(status), "a drain cut by a kill succeeded: "
		  "%s", out);
}

/* Provoke point @p (armed in the running daemon, except BY_TAKEOVER:
 * then the daemon is killed here, and its successor armed). Returns the
 * wait status of the daemon that died. */
static int provoke(const struct point *p, struct crash_load *l,
		   const char *spec)
{
	struct pstats ps;
	int ret;

	switch (p->by) {
	case BY_LOAD:
		break;
	case BY_ALLOC:
		crash_load_ready(l);
		DH_ASSERT(dh_client_say(&l->pager, "alloc text 1") == 0,
			  "pager: stdin");
		break;
	case BY_FREE:
		crash_load_ready(l);
		/* region 0 is stored nearly whole: its restore takes steps */
		pager_wait_resident(&l->pager, (CRASH_LIMIT_MIB + 1) * MIB,
				    &ps);
		DH_ASSERT(dh_client_say(&l->pager, "free-keep 0") == 0,
			  "pager: stdin");
		break;
	case BY_DRAIN:
		crash_load_ready(l);
		wait_written_back();
		drain();
		break;
	case BY_STOP:
		crash_load_ready(l);
		wait_written_back();
		DH_ASSERT(kill(dmn.pid, SIGTERM) == 0, "SIGTERM");
		break;
	case BY_TAKEOVER:
	case BY_RESTED:
		crash_load_ready(l);
		wait_written_back();
		if (p->by == BY_TAKEOVER)
			dh_kill(&dmn);
		else
			dh_stop_ok(&dmn, SIGTERM, NULL);
		crash_arm(spec);
		ret = dh_restart(&dmn, CRASH_DAEMON_ARGS);
		crash_arm(NULL);
		DH_ASSERT(ret != 0, "the armed successor took over and runs");
		return dmn.status;
	}
	return dh_stop_with(&dmn, 0);
}

/* What the pager says to the command that met the kill, once the
 * successor serves. */
static void provoked_reply(const struct point *p, struct crash_load *l)
{
	char line[256];
	int ret;

	if (p->by != BY_ALLOC && p->by != BY_FREE)
		return;
	ret = dh_client_read_line(&l->pager, line, sizeof(line), PAGER_MS);
	DH_ASSERT(ret == 0, "pager: no reply across the restart: %s",
		  strerror(-ret));
	fprintf(stderr, "%s: the pager's command answered '%s'\n", p->name,
		line);
	if (p->by == BY_ALLOC) {
		/* cut off (ECONNRESET: its outcome unknown) or done */
		if (strcmp(line, "ok 2"))
			pager_ok(&l->pager, "alloc text 1");
		pager_ok(&l->pager, "verify 2");
	} else {
		/* "ok RET": every page restored, whatever uzswap_free() said
		 * (-ECONNRESET: the daemon died under the request) */
		DH_ASSERT(!strncmp(line, "ok", 2), "free of a region being "
			  "restored: %s", line);
	}
}

START_TEST(test_killpoint)
{
	const struct point *p = &points[_i];
	struct crash_load l;
	char spec[96];
	int status;

	snprintf(spec, sizeof(spec), "%s:%u", p->name, p->nth);
	fprintf(stderr, "--- kill point %s\n", spec);
	crash_arm(p->by == BY_TAKEOVER || p->by == BY_RESTED ? NULL : spec);
	dh_up(&dmn, CRASH_DAEMON_ARGS);
	crash_arm(NULL);
	crash_load_start(&dmn, &l);
	status = provoke(p, &l, spec);
	crash_assert_killed_at(&dmn, status, p->name);
	crash_restart(&dmn);
	if (p->by == BY_RESTED)
		/* the image was taken by the daemon that died: recovered */
		DH_ASSERT(dh_log_find(&dmn, "recovered page by page", NULL, 0),
			  "the third daemon did not recover page by page");
	provoked_reply(p, &l);
	crash_load_finish(&l);
	dh_down(&dmn, NULL);
}
END_TEST

static Suite *killpoint_suite(void)
{
	Suite *s = suite_create("killpoint");
	TCase *tc = tcase_create("points");
	size_t i;

	tcase_set_timeout(tc, 300);
	for (i = 0; i < ARRAY_SIZE(points); i++)
		if (points[i].short_run || !short_run_only())
			tcase_add_loop_test(tc, test_killpoint, (int)i,
					    (int)i + 1);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("killpoint", killpoint_suite());
}
