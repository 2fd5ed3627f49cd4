/*
 * check_torture.c - uzswapd SIGKILLed at random instants, again and
 * again, and started again each time on the same state directory, while
 * its clients work (the crash workload, crash.h: checksummed
 * read-modify-write under small budgets, a pool that writes back): at the
 * end every client verifies all its memory. 0 lost writes, 0 pages read
 * as zeros, no client hangs, and every successor took over.
 *
 * TORTURE_KILLS kills (default 10; `make soak` runs 300), each after a
 * random pause of 0 to TORTURE_PAUSE_MS milliseconds from the previous
 * successor's start, so that kills land in every phase: takeover
 * wake-ups, evictions, loads, write-backs; one successor in
 * TORTURE_TAKEOVER_KILL is itself killed in the middle of its takeover (a
 * kill point) and a third daemon takes over from it. Between kills the
 * pager reads or rewrites its regions, a command that may span the kill.
 * The seed is printed (TORTURE_SEED replays the pauses and the choices,
 * not the daemon's timing).
 *
 * Valgrind: CK_FORK=no valgrind integration/check_torture
 */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "daemon_harness.h"
#include "lib/common/macros.h"
#include "pager.h"

#define TORTURE_KILLS		10
#define TORTURE_KILLS_MAX	100000
#define TORTURE_PAUSE_MS	300
#define TORTURE_TAKEOVER_KILL	8	/* one successor in this many */
#define TORTURE_BASE_S		120	/* tcase time limit: this, plus */
#define TORTURE_KILL_S		3	/* this per kill (both scaled) */

static struct dh_daemon dmn;

/* A positive number from the environment variable @var, else @def. */
static unsigned long env_ul(const char *var, unsigned long def,
			    unsigned long max)
{
	const char *s = getenv(var);
	unsigned long v = s ? strtoul(s, NULL, 10) : 0;

	return v > 0 && v <= max ? v : def;
}

static unsigned long torture_kills(void)
{
	return env_ul("TORTURE_KILLS", TORTURE_KILLS, TORTURE_KILLS_MAX);
}

/* TORTURE_SEED, else one of the clock and the pid. */
static unsigned int torture_seed(void)
{
	unsigned long now = (unsigned long)time(NULL) ^ (unsigned long)getpid();

	return (unsigned int)env_ul("TORTURE_SEED", (now & UINT_MAX) | 1,
				    UINT_MAX);
}

/* Kill points of a takeover, for the successors killed in theirs. */
static const char *const takeover_points[] = {
	"takeover.adopted", "takeover.served",
};

/* Start a successor; with @point, armed: it must die there, and another
 * one takes over from it. Returns whether one was armed. */
static bool restart(const char *point)
{
	int ret;

	if (point) {
		crash_arm(point);
		ret = dh_restart(&dmn, CRASH_DAEMON_ARGS);
		crash_arm(NULL);
		DH_ASSERT(ret != 0, "the successor armed at %s runs", point);
		crash_assert_killed_at(&dmn, dmn.status, point);
	}
	crash_restart(&dmn);
	return point != NULL;
}

/* The pager's command of round @k: a read of everything, or a rewrite. */
static const char *pager_command(unsigned long k)
{
	switch (k % 3) {
	case 0:
		return "verify all";
	case 1:
		return "rewrite 0";
	default:
		return "rewrite 1";
	}
}

START_TEST(test_torture)
{
	unsigned long kills = torture_kills();
	unsigned int seed = torture_seed();
	struct crash_load l;
	char line[256];
	unsigned long k, armed = 0;
	int ret;

	fprintf(stderr, "torture: %lu kills, TORTURE_SEED=%u\n", kills, seed);
	dh_up(&dmn, CRASH_DAEMON_ARGS);
	crash_load_start(&dmn, &l);
	crash_load_ready(&l);
	for (k = 0; k < kills; k++) {
		const char *cmd = pager_command(k);

		DH_ASSERT(dh_client_say(&l.pager, cmd) == 0, "pager: stdin");
		dh_sleep_ms(rand_r(&seed) % (TORTURE_PAUSE_MS + 1));
		dh_kill(&dmn);
		armed += restart(rand_r(&seed) % TORTURE_TAKEOVER_KILL ? NULL :
			takeover_points[rand_r(&seed) %
					ARRAY_SIZE(takeover_points)]);
		ret = dh_client_read_line(&l.pager, line, sizeof(line),
					  PAGER_MS);
		DH_ASSERT(ret == 0 && !strcmp(line, "ok"),
			  "kill %lu: the pager's '%s' across it: %s", k + 1,
			  cmd, ret ? strerror(-ret) : line);
	}
	crash_load_finish(&l);
	DH_ASSERT_EQ(dh_log_count(&dmn, "took over 3 clients"), kills);
	DH_ASSERT_EQ(dh_log_count(&dmn, "killpoint takeover."), armed);
	dh_down(&dmn, NULL);
}
END_TEST

static Suite *torture_suite(void)
{
	Suite *s = suite_create("torture");
	TCase *tc = tcase_create("kills");

	/* a bound for hangs only; scaled by CK_TIMEOUT_MULTIPLIER */
	tcase_set_timeout(tc, (double)(TORTURE_BASE_S +
				       TORTURE_KILL_S * torture_kills()));
	tcase_add_test(tc, test_torture);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("torture", torture_suite());
}
