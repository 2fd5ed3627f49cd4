/*
 * check_lru.c - unit tests of a client's page LRU (daemon/lru.c), the ring
 * of fault-in records, with no daemon, no region and no event loop:
 * records come out oldest first, stamps tell records apart, a consumer
 * that lost a race consumes nothing, growth keeps the order, and a failed
 * growth loses nothing.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_lru
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "daemon/lru.h"
#include "lib/common/failpoint.h"
#include "lib/common/macros.h"

static struct lru l;

static void setup(void)
{
	lru_init(&l);
}

static void teardown(void)
{
	failpoint_arm(0);
	lru_destroy(&l);
}

/* Records in the ring, stale ones included (peek takes nothing). */
static size_t lru_length(struct lru *ring)
{
	static struct lru_rec recs[8192];

	return lru_peek(ring, recs, ARRAY_SIZE(recs));
}

START_TEST(test_oldest_first)
{
	struct lru_rec recs[4];
	int s0, s1, s2;

	s0 = lru_add(&l, 7, 100, 16);
	s1 = lru_add(&l, 8, 0, 1);
	s2 = lru_add(&l, 7, 116, 4);
	ck_assert_int_ge(s0, 0);
	ck_assert_int_eq(s1, s0 + 1);
	ck_assert_int_eq(s2, s0 + 2);
	ck_assert_uint_eq(lru_length(&l), 3);
	ck_assert_uint_eq(lru_peek(&l, recs, 4), 3);
	ck_assert_uint_eq(recs[0].region_id, 7);
	ck_assert_uint_eq(recs[0].first, 100);
	ck_assert_uint_eq(recs[0].npages, 16);
	ck_assert_uint_eq(recs[0].stamp, (uint16_t)s0);
	ck_assert_uint_eq(recs[1].region_id, 8);
	ck_assert_uint_eq(recs[2].first, 116);
	/* peek takes nothing */
	ck_assert_uint_eq(lru_length(&l), 3);
}
END_TEST

START_TEST(test_consume_partly_then_whole)
{
	struct lru_rec rec, now;

	lru_add(&l, 3, 10, 8);
	lru_add(&l, 4, 0, 2);
	ck_assert_uint_eq(lru_peek(&l, &rec, 1), 1);
	lru_consume(&l, &rec, 3);
	ck_assert_uint_eq(lru_peek(&l, &now, 1), 1);
	ck_assert_uint_eq(now.region_id, 3);
	ck_assert_uint_eq(now.first, 13);
	ck_assert_uint_eq(now.npages, 5);
	lru_consume(&l, &now, 5);
	ck_assert_uint_eq(lru_length(&l), 1);
	ck_assert_uint_eq(lru_peek(&l, &now, 1), 1);
	ck_assert_uint_eq(now.region_id, 4);
}
END_TEST

START_TEST(test_stale_consumer_takes_nothing)
{
	struct lru_rec old, now;

	lru_add(&l, 5, 0, 4);
	ck_assert_uint_eq(lru_peek(&l, &old, 1), 1);
	/* another evictor consumed it and the same range came back */
	lru_consume(&l, &old, 4);
	lru_add(&l, 5, 0, 4);
	lru_consume(&l, &old, 4);
	ck_assert_uint_eq(lru_length(&l), 1);
	ck_assert_uint_eq(lru_peek(&l, &now, 1), 1);
	ck_assert_uint_ne(now.stamp, old.stamp);
	/* and on an empty ring, nothing happens */
	lru_consume(&l, &now, 4);
	lru_consume(&l, &now, 4);
	ck_assert_uint_eq(lru_length(&l), 0);
}
END_TEST

START_TEST(test_growth_keeps_order)
{
	enum { N = 5000 };
	struct lru_rec rec;
	uint32_t i;

	/* wrap the ring before it grows: consume some first */
	for (i = 0; i < 200; i++)
		lru_add(&l, 1, i, 1);
	for (i = 0; i < 150; i++) {
		ck_assert_uint_eq(lru_peek(&l, &rec, 1), 1);
		lru_consume(&l, &rec, 1);
	}
	for (i = 200; i < N; i++)
		ck_assert_int_ge(lru_add(&l, 1, i, 1), 0);
	ck_assert_uint_eq(lru_length(&l), N - 150);
	for (i = 150; i < N; i++) {
		ck_assert_uint_eq(lru_peek(&l, &rec, 1), 1);
		ck_assert_uint_eq(rec.first, i);
		lru_consume(&l, &rec, 1);
	}
	ck_assert_uint_eq(lru_length(&l), 0);
}
END_TEST

START_TEST(test_failed_growth_loses_nothing)
{
	struct lru_rec recs[2];
	unsigned long n;
	uint32_t i;
	int ret;

	/* the first record allocates the ring: make that fail */
	failpoint_arm(1);
	ck_assert_int_eq(lru_add(&l, 9, 0, 1), -ENOMEM);
	ck_assert_uint_eq(lru_length(&l), 0);
	failpoint_arm(0);
	ck_assert_int_ge(lru_add(&l, 9, 0, 1), 0);
	/* fill the ring, then fail its doubling */
	for (n = 1; ; n++) {
		failpoint_arm(1);
		ret = lru_add(&l, 9, (uint32_t)n, 1);
		failpoint_arm(0);
		if (ret < 0)
			break;
	}
	ck_assert_int_eq(ret, -ENOMEM);
	ck_assert_uint_eq(lru_length(&l), n);
	ck_assert_uint_eq(lru_peek(&l, recs, 2), 2);
	ck_assert_uint_eq(recs[0].first, 0);
	ck_assert_uint_eq(recs[1].first, 1);
	/* memory back: it grows and goes on in order */
	ck_assert_int_ge(lru_add(&l, 9, (uint32_t)n, 1), 0);
	for (i = 0; i <= n; i++) {
		ck_assert_uint_eq(lru_peek(&l, recs, 1), 1);
		ck_assert_uint_eq(recs[0].first, i);
		lru_consume(&l, recs, 1);
	}
}
END_TEST

static Suite *lru_suite(void)
{
	Suite *s = suite_create("lru");
	TCase *tc = tcase_create("lru");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_oldest_first);
	tcase_add_test(tc, test_consume_partly_then_whole);
	tcase_add_test(tc, test_stale_consumer_takes_nothing);
	tcase_add_test(tc, test_growth_keeps_order);
	tcase_add_test(tc, test_failed_growth_loses_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lru_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
