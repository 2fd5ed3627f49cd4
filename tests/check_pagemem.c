/*
 * check_pagemem.c - unit tests of the page provider (lib/common/pagemem):
 * tables are zero-filled and page-aligned, cost memory only where
 * written (reading them allocates nothing), are given back whole, and
 * refuse what they cannot be; a reservation costs nothing, its committed
 * parts read zero, and a decommitted part's memory is freed.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_pagemem
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/common/failpoint.h"
#include "lib/common/pagemem.h"

#define PAGE	4096ul
#define MIB	(1024ul * 1024)

/* Resident KiB of the mapping of this process that holds @addr, from
 * /proc/self/smaps; -1 if there is none. */
static long rss_kib_at(const void *addr)
{
	unsigned long start, end, a = (unsigned long)addr;
	char line[512];
	bool in = false;
	long kib = -1;
	FILE *f = fopen("/proc/self/smaps", "re");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in = start <= a && a < end;
			continue;
		}
		if (in && sscanf(line, "Rss: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* Index of the first non-zero byte of [@p, @p + @n), or @n. */
static size_t first_nonzero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && !p[i]; i++)
		;
	return i;
}

START_TEST(test_zeroed_and_aligned)
{
	struct pagemem m;

	ck_assert_int_eq(pagemem_alloc(&m, MIB + 1, "uzswap test"), 0);
	ck_assert_ptr_nonnull(m.base);
	ck_assert_uint_eq((uintptr_t)m.base % PAGE, 0);
	ck_assert_uint_eq(m.len, MIB + PAGE);
	ck_assert_uint_eq(first_nonzero(m.base, m.len), m.len);
	memset(m.base, 0xa5, m.len);
	pagemem_free(&m);
}
END_TEST

START_TEST(test_sparse)
{
	const size_t size = 256 * MIB;
	volatile const uint8_t *r;
	struct pagemem m;
	unsigned int sum = 0;
	uint8_t *w;
	size_t i;

	ck_assert_int_eq(pagemem_alloc(&m, size, "uzswap test"), 0);
	ck_assert_int_lt(rss_kib_at(m.base), 64);
	/* reading every page maps the zero page: nothing allocated */
	for (r = m.base, i = 0; i < size; i += PAGE)
		sum += r[i];
	ck_assert_uint_eq(sum, 0);
	ck_assert_int_lt(rss_kib_at(m.base), 64);
	/* only what is written costs memory: 64 pages */
	for (w = m.base, i = 0; i < size; i += 4 * MIB)
		w[i] = 1;
	ck_assert_int_ge(rss_kib_at(m.base), 64 * PAGE / 1024);
	ck_assert_int_lt(rss_kib_at(m.base), 64 * PAGE / 1024 + 64);
	pagemem_free(&m);
}
END_TEST

START_TEST(test_freed)
{
	struct pagemem m;
	unsigned char vec;
	void *base;

	ck_assert_int_eq(pagemem_alloc(&m, 3 * PAGE, "uzswap test"), 0);
	memset(m.base, 1, m.len);
	base = m.base;
	pagemem_free(&m);
	ck_assert_ptr_null(m.base);
	ck_assert_uint_eq(m.len, 0);
	/* the range is unmapped: mincore() says so */
	ck_assert_int_eq(mincore(base, PAGE, &vec), -1);
	ck_assert_int_eq(errno, ENOMEM);
	/* freeing an empty one does nothing */
	pagemem_free(&m);
}
END_TEST

START_TEST(test_reserve_commit_decommit)
{
	const size_t size = 64 * MIB, part = MIB;
	struct pagemem m;
	uint8_t *p;

	ck_assert_int_eq(pagemem_reserve(&m, size, "uzswap test"), 0);
	ck_assert_uint_eq(m.len, size);
	ck_assert_int_eq(rss_kib_at(m.base), 0);
	ck_assert_int_eq(pagemem_commit(&m, 8 * part, part), 0);
	p = (uint8_t *)m.base + 8 * part;
	ck_assert_uint_eq(first_nonzero(p, part), part);
	memset(p, 0x5a, part);
	ck_assert_int_ge(rss_kib_at(p), part / 1024);
	ck_assert_int_eq(pagemem_decommit(&m, 8 * part, part), 0);
	ck_assert_int_eq(rss_kib_at(p), 0);
	/* committed again: zeros, not what was written */
	ck_assert_int_eq(pagemem_commit(&m, 8 * part, part), 0);
	ck_assert_uint_eq(first_nonzero(p, part), part);
	failpoint_arm(1);
	ck_assert_int_eq(pagemem_commit(&m, 0, part), -ENOMEM);
	failpoint_arm(0);
	pagemem_free(&m);
	ck_assert_ptr_null(m.base);
}
END_TEST

START_TEST(test_refused)
{
	struct pagemem m;

	ck_assert_int_eq(pagemem_alloc(&m, 0, "uzswap test"), -EINVAL);
	ck_assert_ptr_null(m.base);
	ck_assert_int_eq(pagemem_alloc(&m, SIZE_MAX, "uzswap test"), -ENOMEM);
	ck_assert_ptr_null(m.base);
	failpoint_arm(1);
	ck_assert_int_eq(pagemem_alloc(&m, PAGE, "uzswap test"), -ENOMEM);
	failpoint_arm(0);
	ck_assert_ptr_null(m.base);
	ck_assert_uint_eq(m.len, 0);
}
END_TEST

static Suite *pagemem_suite(void)
{
	Suite *s = suite_create("pagemem");
	TCase *tc = tcase_create("tables");

	tcase_add_test(tc, test_zeroed_and_aligned);
	tcase_add_test(tc, test_sparse);
	tcase_add_test(tc, test_freed);
	tcase_add_test(tc, test_reserve_commit_decommit);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pagemem_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
