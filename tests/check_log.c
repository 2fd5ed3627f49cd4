/*
 * check_log.c - unit tests of uzswapd's log rate limit (daemon/log.c).
 *
 * The limiter runs on an injected clock (log_set_clock()): no test
 * sleeps. The daemon's stderr is a memfd read back after each step. A
 * site prints its burst and drops the rest; the next window starts with
 * a summary of what was dropped; sites are independent; log_flush()
 * summarizes at once; debug lines are never limited; four threads
 * logging from one site at once lose no count.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/log.h"

static uint64_t fake_ms;
static int out_fd = -1;
static char out[1 << 20];

static uint64_t fake_now(void)
{
	return fake_ms;
}

/* Each test runs in its own process (CK_FORK): stderr becomes a memfd. */
static void setup(void)
{
	out_fd = memfd_create("check_log", MFD_CLOEXEC);
	ck_assert_int_ge(out_fd, 0);
	ck_assert_int_eq(dup2(out_fd, STDERR_FILENO), STDERR_FILENO);
	fake_ms = 1000000;
	log_set_clock(fake_now);
}

/* What was logged so far, NUL-terminated, in @out. */
static const char *logged(void)
{
	ssize_t n = pread(out_fd, out, sizeof(out) - 1, 0);

	ck_assert_int_ge(n, 0);
	out[n] = 0;
	return out;
}

static int count(const char *needle)
{
	const char *p = logged();
	int n = 0;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* One call site, @n times. */
static void flood(int n)
{
	int i;

	for (i = 0; i < n; i++)
		log_warn("evict", "flood %d", i);
}

START_TEST(test_burst_then_summary)
{
	flood(100);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST);
	ck_assert_int_eq(count("<4>evict: flood 9\n"), 1);
	ck_assert_int_eq(count("flood 10\n"), 0);

	/* still in the window: dropped, no summary yet */
	fake_ms += LOG_RL_INTERVAL_MS - 1;
	log_warn("evict", "flood %d", 100);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST);

	fake_ms += 1;
	log_warn("evict", "flood %d", 101);
	ck_assert_int_eq(count("<4>evict: flood 100 ... repeated 91 times\n"),
			 1);
	ck_assert_int_eq(count("<4>evict: flood 101\n"), 1);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST + 2);
}
END_TEST

START_TEST(test_sites_independent)
{
	flood(50);
	log_err("store", "another site");
	log_info("ctl", "a third one");
	ck_assert_int_eq(count("<3>store: another site\n"), 1);
	ck_assert_int_eq(count("<6>ctl: a third one\n"), 1);
	ck_assert_int_eq(count("repeated"), 0);
}
END_TEST

/* A summary is due when the window ends, whichever site logs next. */
START_TEST(test_summary_from_other_site)
{
	flood(LOG_RL_BURST + 1);
	fake_ms += LOG_RL_INTERVAL_MS;
	log_info("main", "something else");
	ck_assert_int_eq(count("<4>evict: flood 10 ... repeated 1 time\n"), 1);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST + 2);
}
END_TEST

START_TEST(test_flush)
{
	flood(LOG_RL_BURST + 5);
	log_flush();
	ck_assert_int_eq(count("<4>evict: flood 14 ... repeated 5 times\n"), 1);
	log_flush();
	ck_assert_int_eq(count("repeated"), 1);
}
END_TEST

START_TEST(test_debug_not_limited)
{
	int i;

	log_enable_debug("fault");
	for (i = 0; i < 50; i++)
		log_debug("fault", "debug %d", i);
	log_debug("evict", "not enabled");
	ck_assert_int_eq(count("<7>fault: debug"), 50);
	ck_assert_int_eq(count("\n"), 50);
}
END_TEST

#define THREADS 4
#define PER_THREAD 1000

static void *flood_thread(void *arg)
{
	(void)arg;
	flood(PER_THREAD);
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t t[THREADS];
	char want[64];
	int i;

	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, flood_thread,
						NULL), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	log_flush();
	snprintf(want, sizeof(want), " ... repeated %d times\n",
		 THREADS * PER_THREAD - LOG_RL_BURST);
	ck_assert_int_eq(count(want), 1);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST + 1);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("ratelimit");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_burst_then_summary);
	tcase_add_test(tc, test_sites_independent);
	tcase_add_test(tc, test_summary_from_other_site);
	tcase_add_test(tc, test_flush);
	tcase_add_test(tc, test_debug_not_limited);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
