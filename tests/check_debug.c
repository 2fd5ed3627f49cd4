/*
 * check_debug.c - the run-time checks of debug builds (lib/common/debug.h)
 * catch what they promise: a mutex not held, or held by another thread,
 * where the code documents "@lock held"; a "loop thread only" call made
 * from another thread, down to the daemon's own objects (the work pool).
 * Each broken precondition must abort; each kept one must not.
 *
 * A production build (no --enable-debug) checks nothing: then this test
 * is skipped (exit 77).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "daemon/store.h"
#include "daemon/work.h"
#include "lib/common/debug.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Run @fn(@arg) on a thread of its own and wait for it. */
static void on_other_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

START_TEST(test_held_by_caller_passes)
{
	pthread_mutex_lock(&lock);
	assert_held(&lock);
	pthread_mutex_unlock(&lock);
	assert_not_held(&lock);
}
END_TEST

START_TEST(test_not_held_aborts)
{
	assert_held(&lock);
}
END_TEST

START_TEST(test_held_when_it_must_not_be_aborts)
{
	pthread_mutex_lock(&lock);
	assert_not_held(&lock);
}
END_TEST

static void *hold_forever(void *arg)
{
	pthread_mutex_lock(&lock);
	return NULL;
}

START_TEST(test_held_by_another_thread_aborts)
{
	on_other_thread(hold_forever, NULL);
	assert_held(&lock);
}
END_TEST

static void *check_owner(void *arg)
{
	assert_owner_thread((struct owner_thread *)arg);
	return NULL;
}

START_TEST(test_owner_thread_passes)
{
	struct owner_thread o;

	owner_thread_set(&o);
	check_owner(&o);
}
END_TEST

START_TEST(test_other_thread_aborts)
{
	struct owner_thread o;

	owner_thread_set(&o);
	on_other_thread(check_owner, &o);
}
END_TEST

/* The daemon's work pool, started on this thread: its loop-thread-only
 * calls work here and abort elsewhere. */
static struct store st;
static struct work_pool pool;
static uv_loop_t loop;

static int refuse_write_back(void *ctx, struct store_wb *wb)
{
	return -ENOENT;
}

static void settle_nothing(void *ctx, struct store *s, struct store_wb *wb,
			   enum store_settle how)
{
}

static void pool_start(void)
{
	struct store_owner owner = { .take = refuse_write_back,
				     .settle = settle_nothing };

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(store_init(&st, COMPRESS_LZ4, 0, 0, NULL, &owner, NULL), 0);
	ck_assert_int_eq(work_start(&pool, &loop, &st, NULL, NULL, NULL), 0);
}

static void *ask_idle(void *arg)
{
	work_idle(&pool);
	return NULL;
}

START_TEST(test_work_pool_on_loop_thread_passes)
{
	pool_start();
	ck_assert(work_idle(&pool));
	work_stop(&pool);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	store_destroy(&st);
}
END_TEST

START_TEST(test_work_pool_off_loop_thread_aborts)
{
	pool_start();
	on_other_thread(ask_idle, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("debug");
	TCase *tc = tcase_create("preconditions");
	SRunner *sr;
	int failed;

	if (!DEBUG_CHECKS) {
		fprintf(stderr, "a production build (no --enable-debug) "
			"checks nothing: skipped\n");
		return 77;
	}
	tcase_add_test(tc, test_held_by_caller_passes);
	tcase_add_test_raise_signal(tc, test_not_held_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, test_held_when_it_must_not_be_aborts,
				    SIGABRT);
	tcase_add_test_raise_signal(tc, test_held_by_another_thread_aborts,
				    SIGABRT);
	tcase_add_test(tc, test_owner_thread_passes);
	tcase_add_test_raise_signal(tc, test_other_thread_aborts, SIGABRT);
	tcase_add_test(tc, test_work_pool_on_loop_thread_passes);
	tcase_add_test_raise_signal(tc, test_work_pool_off_loop_thread_aborts,
				    SIGABRT);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
