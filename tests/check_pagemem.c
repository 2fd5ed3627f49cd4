/*
 * check_pagemem.c - unit tests of the page provider (lib/common/pagemem),
 * on anonymous memory and on memfds alike (loop tests over the kinds):
 * tables are zero-filled and page-aligned, cost memory only where
 * written, are given back whole, and refuse what they cannot be; a
 * reservation costs nothing, its committed parts read zero, and a
 * decommitted part's memory is freed (a file's blocks are punched).
 * Reading an anonymous table allocates nothing; reading a hole of a file
 * does, so walkers go by pagemem_next_data(), and a walk of a huge
 * untouched file-backed table leaves it without data. A file mapped again
 * (what a restarted daemon does) holds what was written, at a new address.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_pagemem
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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


/* The kinds every loop test runs on: _i indexes it. */
static const enum pagemem_kind kinds[] = { PAGEMEM_ANON, PAGEMEM_MEMFD };

static const struct pagemem_src *src_of(enum pagemem_kind kind)
{
	static struct pagemem_src src;

	src = (struct pagemem_src){ kind, -1 };
	return &src;
}

/* Bytes of memory @m's file holds (its allocated blocks). */
static size_t file_bytes(const struct pagemem *m)
{
	struct stat st;

	ck_assert_int_eq(fstat(pagemem_fd(m), &st), 0);
	return (size_t)st.st_blocks * 512;
}

static size_t file_size(const struct pagemem *m)
{
	struct stat st;

	ck_assert_int_eq(fstat(pagemem_fd(m), &st), 0);
	return (size_t)st.st_size;
}

/* Whether @m's file holds no data at all (SEEK_DATA finds none). */
static bool file_has_no_data(const struct pagemem *m)
{
	return lseek(pagemem_fd(m), 0, SEEK_DATA) < 0 && errno == ENXIO;
}

/* Descriptors this process has open. */
static int open_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

START_TEST(test_zeroed_and_aligned)
{
	struct pagemem m;

	ck_assert_int_eq(pagemem_alloc(&m, src_of(kinds[_i]), MIB + 1,
				       "uzswap test"), 0);
	ck_assert_ptr_nonnull(m.base);
	ck_assert_uint_eq((uintptr_t)m.base % PAGE, 0);
	ck_assert_uint_eq(m.len, MIB + PAGE);
	ck_assert_uint_eq(first_nonzero(m.base, m.len), m.len);
	memset(m.base, 0xa5, m.len);
	if (kinds[_i] == PAGEMEM_ANON) {
		ck_assert_int_eq(pagemem_fd(&m), -1);
	} else {
		ck_assert_int_ge(pagemem_fd(&m), 0);
		ck_assert_uint_eq(file_size(&m), m.len);
	}
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

	ck_assert_int_eq(pagemem_alloc(&m, NULL, size, "uzswap test"), 0);
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

/* Read every byte of @m that pagemem_next_data() names, as a table
 * walker does; returns how many parts it read and their sum. */
static size_t walk(const struct pagemem *m, unsigned long *sum)
{
	volatile const uint8_t *p = m->base;
	size_t off, end, parts = 0;

	*sum = 0;
	for (off = 0; (off = pagemem_next_data(m, off, &end)) < m->len;
	     off = end) {
		parts++;
		for (; off < end; off++)
			*sum += p[off];
	}
	return parts;
}

START_TEST(test_file_walk_stays_sparse)
{
	const size_t size = 1024 * MIB;
	unsigned long sum;
	struct pagemem m;
	uint8_t *w;
	size_t i;

	ck_assert_int_eq(pagemem_alloc(&m, src_of(PAGEMEM_MEMFD), size,
				       "uzswap test"), 0);
	ck_assert_uint_eq(file_size(&m), size);
	/* a walk of the untouched table reads nothing and allocates nothing */
	ck_assert_uint_eq(walk(&m, &sum), 0);
	ck_assert(file_has_no_data(&m));
	ck_assert_uint_eq(file_bytes(&m), 0);
	ck_assert_int_lt(rss_kib_at(m.base), 64);
	/* 64 written pages, apart: the walk reads exactly those */
	for (w = m.base, i = 0; i < size; i += 16 * MIB)
		w[i + 8] = 1;
	ck_assert_uint_eq(walk(&m, &sum), 64);
	ck_assert_uint_eq(sum, 64);
	ck_assert_uint_eq(file_bytes(&m), 64 * PAGE);
	ck_assert_int_lt(rss_kib_at(m.base), 64 * PAGE / 1024 + 64);
	/* why: reading a hole of a shared file mapping allocates a page */
	ck_assert_uint_eq(((volatile uint8_t *)m.base)[PAGE], 0);
	ck_assert_uint_eq(file_bytes(&m), 65 * PAGE);
	pagemem_free(&m);
}
END_TEST

START_TEST(test_next_data_anonymous)
{
	struct pagemem m;
	size_t end;

	ck_assert_int_eq(pagemem_alloc(&m, NULL, 4 * PAGE, "uzswap test"), 0);
	/* all of it may be read, from anywhere */
	ck_assert_uint_eq(pagemem_next_data(&m, 0, &end), 0);
	ck_assert_uint_eq(end, m.len);
	ck_assert_uint_eq(pagemem_next_data(&m, PAGE + 16, &end), PAGE + 16);
	ck_assert_uint_eq(end, m.len);
	ck_assert_uint_eq(pagemem_next_data(&m, m.len, &end), m.len);
	pagemem_free(&m);
}
END_TEST

START_TEST(test_freed)
{
	struct pagemem m;
	unsigned char vec;
	void *base;
	int fds = open_fds();

	ck_assert_int_eq(pagemem_alloc(&m, src_of(kinds[_i]), 3 * PAGE,
				       "uzswap test"), 0);
	memset(m.base, 1, m.len);
	base = m.base;
	pagemem_free(&m);
	ck_assert_ptr_null(m.base);
	ck_assert_uint_eq(m.len, 0);
	ck_assert_int_eq(pagemem_fd(&m), -1);
	/* the range is unmapped: mincore() says so; the memfd is closed */
	ck_assert_int_eq(mincore(base, PAGE, &vec), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(open_fds(), fds);
	/* freeing an empty one does nothing */
	pagemem_free(&m);
}
END_TEST

START_TEST(test_reserve_commit_decommit)
{
	const size_t size = 64 * MIB, part = MIB;
	bool file = kinds[_i] != PAGEMEM_ANON;
	struct pagemem m;
	uint8_t *p;

	ck_assert_int_eq(pagemem_reserve(&m, src_of(kinds[_i]), size,
					 "uzswap test"), 0);
	ck_assert_uint_eq(m.len, size);
	ck_assert_int_eq(rss_kib_at(m.base), 0);
	if (file)	/* the file grows only as parts are committed */
		ck_assert_uint_eq(file_size(&m), 0);
	ck_assert_int_eq(pagemem_commit(&m, 8 * part, part), 0);
	p = (uint8_t *)m.base + 8 * part;
	if (file)
		ck_assert_uint_eq(file_size(&m), 9 * part);
	ck_assert_uint_eq(first_nonzero(p, part), part);
	memset(p, 0x5a, part);
	ck_assert_int_ge(rss_kib_at(p), part / 1024);
	if (file)
		ck_assert_uint_ge(file_bytes(&m), part);
	/* a lower part committed later does not shorten the file */
	ck_assert_int_eq(pagemem_commit(&m, 2 * part, part), 0);
	if (file)
		ck_assert_uint_eq(file_size(&m), 9 * part);
	ck_assert_int_eq(pagemem_decommit(&m, 8 * part, part), 0);
	ck_assert_int_eq(rss_kib_at(p), 0);
	if (file) {	/* punched: the file gave its memory back */
		ck_assert_uint_lt(file_bytes(&m), part);
		ck_assert_uint_eq(file_size(&m), 9 * part);
	}
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

/*
 * A file mapped again, as a restarted daemon maps its tables: at another
 * address, with exactly what was written, both as a whole table and as a
 * reservation whose committed parts hold the file's data.
 */
START_TEST(test_file_mapped_again)
{
	const size_t size = 4 * MIB;
	struct pagemem m, again, res;
	struct pagemem_src src;
	uint32_t *w;
	size_t i;

	ck_assert_int_eq(pagemem_alloc(&m, src_of(PAGEMEM_MEMFD), size,
				       "uzswap test"), 0);
	for (w = m.base, i = 0; i < size / 4; i += 1000)
		w[i] = (uint32_t)i * 2654435761u | 1;
	src = (struct pagemem_src){ PAGEMEM_FILE, pagemem_fd(&m) };
	ck_assert_int_eq(pagemem_alloc(&again, &src, size, "again"), 0);
	ck_assert_ptr_ne(again.base, m.base);
	ck_assert_int_ne(pagemem_fd(&again), pagemem_fd(&m));
	ck_assert_int_eq(memcmp(again.base, m.base, size), 0);
	ck_assert_int_eq(pagemem_reserve(&res, &src, 4 * size, "again"), 0);
	ck_assert_int_eq(pagemem_commit(&res, MIB, MIB), 0);
	ck_assert_int_eq(memcmp((uint8_t *)res.base + MIB,
				(uint8_t *)m.base + MIB, MIB), 0);
	/* the original gone, the file stays with its other holders */
	pagemem_free(&m);
	for (w = again.base, i = 0; i < size / 4; i += 1000)
		ck_assert_uint_eq(w[i], (uint32_t)i * 2654435761u | 1);
	/* and a write through one mapping is seen through the other */
	w[1] = 7;
	ck_assert_uint_eq(((uint32_t *)res.base)[MIB / 4 + 1], 0);
	ck_assert_uint_eq(((volatile uint32_t *)again.base)[1], 7);
	((uint32_t *)res.base)[MIB / 4 + 1] = 9;
	ck_assert_uint_eq(w[MIB / 4 + 1], 9);
	pagemem_free(&res);
	pagemem_free(&again);
}
END_TEST

START_TEST(test_refused)
{
	struct pagemem m;
	struct pagemem_src bad = { PAGEMEM_FILE, -1 };

	ck_assert_int_eq(pagemem_alloc(&m, src_of(kinds[_i]), 0,
				       "uzswap test"), -EINVAL);
	ck_assert_ptr_null(m.base);
	ck_assert_int_eq(pagemem_alloc(&m, src_of(kinds[_i]), SIZE_MAX,
				       "uzswap test"), -ENOMEM);
	ck_assert_ptr_null(m.base);
	ck_assert_int_eq(pagemem_alloc(&m, &bad, PAGE, "uzswap test"),
			 -EINVAL);
	ck_assert_ptr_null(m.base);
	ck_assert_int_eq(pagemem_fd(&m), -1);
}
END_TEST

/* Fail the n-th request for memory or space until the call succeeds:
 * each failure leaves nothing held (no mapping, no descriptor). */
START_TEST(test_failpoints)
{
	struct pagemem m;
	int fds = open_fds(), ret = -ENOMEM;
	unsigned long n;

	for (n = 1; ret; n++) {
		failpoint_arm(n);
		ret = pagemem_alloc(&m, src_of(kinds[_i]), PAGE, "uzswap test");
		ck_assert(ret == 0 || ret == -ENOMEM);
		if (ret) {
			ck_assert_ptr_null(m.base);
			ck_assert_int_eq(open_fds(), fds);
		}
	}
	failpoint_arm(0);
	/* anonymous: the mapping; memfd: its creation, growth, mapping */
	ck_assert_uint_eq(n - 1, kinds[_i] == PAGEMEM_ANON ? 2 : 4);
	pagemem_free(&m);

	ck_assert_int_eq(pagemem_reserve(&m, src_of(kinds[_i]), MIB,
					 "uzswap test"), 0);
	for (ret = -ENOMEM, n = 1; ret; n++) {
		failpoint_arm(n);
		ret = pagemem_commit(&m, PAGE, PAGE);
		ck_assert(ret == 0 || ret == -ENOMEM);
	}
	failpoint_arm(0);
	/* memfd: the growth, then the protection change */
	ck_assert_uint_eq(n - 1, kinds[_i] == PAGEMEM_ANON ? 2 : 3);
	memset((uint8_t *)m.base + PAGE, 1, PAGE);
	pagemem_free(&m);
	ck_assert_int_eq(open_fds(), fds);
}
END_TEST

static Suite *pagemem_suite(void)
{
	Suite *s = suite_create("pagemem");
	TCase *tc = tcase_create("tables");
	int n = (int)(sizeof(kinds) / sizeof(kinds[0]));

	tcase_add_loop_test(tc, test_zeroed_and_aligned, 0, n);
	tcase_add_test(tc, test_sparse);
	tcase_add_test(tc, test_next_data_anonymous);
	tcase_add_loop_test(tc, test_freed, 0, n);
	tcase_add_loop_test(tc, test_reserve_commit_decommit, 0, n);
	tcase_add_loop_test(tc, test_refused, 0, n);
	tcase_add_loop_test(tc, test_failpoints, 0, n);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_test(tc, test_file_walk_stays_sparse);
	tcase_add_test(tc, test_file_mapped_again);
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
