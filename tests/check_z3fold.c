/*
 * check_z3fold.c - unit tests of the z3fold allocator (lib/z3fold).
 *
 * Placement of each buddy and every transition between layouts, handles
 * and owner words across compaction, reclaim with handlers that succeed,
 * fail and race with frees, size limits, invalid handles, pages going
 * back to the OS,
 * allocation-failure injection, a 4-thread stress where every object holds
 * a pattern derived from its handle, and the density reached on lz4-
 * compressed pages of a real process memory image. Every test runs twice:
 * on a pool of anonymous memory and on one whose pages and side table are
 * memfds, which also shows that a second mapping of the memfds (at another
 * address, as a restarted daemon would make) holds the same objects, and
 * that a pool recovered from its memfds keeps its objects and their owner
 * words.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_z3fold
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/common/failpoint.h"
#include "lib/common/macros.h"
#include "lib/z3fold/z3fold.h"
#include "density.h"
#include "memimage.h"

#define PAGE 4096u
#define CHUNK 64u

static struct z3fold_pool *pool;
/* what the pools of this run are made of; set by main() before each run */
static enum pagemem_kind pool_kind;

/* A pool of this run's kind. */
static struct z3fold_pool *make_pool(const char *name,
				     const struct z3fold_ops *ops, void *priv)
{
	const struct z3fold_mem mem = {
		{ pool_kind, -1 }, { pool_kind, -1 }, { pool_kind, -1 },
	};

	return z3fold_create_pool(name, &mem, ops, priv);
}

static uintptr_t page_of(const void *p)
{
	return (uintptr_t)p & ~(uintptr_t)(PAGE - 1);
}

static size_t off_in_page(const void *p)
{
	return (uintptr_t)p & (PAGE - 1);
}

/* A byte pattern derived from a handle, and its check. */
static void fill(unsigned long handle, size_t size)
{
	uint8_t *p = z3fold_map(pool, handle);
	uint64_t x = handle * 0x9e3779b97f4a7c15ull | 1;
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	z3fold_unmap(pool, handle);
}

static bool pattern_ok(const uint8_t *p, unsigned long handle, size_t size)
{
	uint64_t x = handle * 0x9e3779b97f4a7c15ull | 1;
	size_t i;

	for (i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (p[i] != (uint8_t)x)
			return false;
	}
	return true;
}

static void check_pattern(unsigned long handle, size_t size)
{
	uint8_t *p = z3fold_map(pool, handle);

	ck_assert_ptr_nonnull(p);
	ck_assert_msg(pattern_ok(p, handle, size), "object %#lx corrupted",
		      handle);
	z3fold_unmap(pool, handle);
}

static unsigned long alloc_filled(size_t size)
{
	unsigned long h = 0;

	ck_assert_int_eq(z3fold_alloc(pool, size, &h), 0);
	ck_assert_uint_ne(h, 0);
	fill(h, size);
	return h;
}

static void *map_once(unsigned long handle)
{
	void *p = z3fold_map(pool, handle);

	ck_assert_ptr_nonnull(p);
	z3fold_unmap(pool, handle);
	return p;
}

static void check_verify(void)
{
	ck_assert_int_eq(z3fold_verify(pool), 0);
}

static void setup(void)
{
	pool = make_pool("test", NULL, NULL);
	ck_assert_ptr_nonnull(pool);
}

static void teardown(void)
{
	struct z3fold_stats st;

	z3fold_get_stats(pool, &st);
	check_verify();
	ck_assert_uint_eq(st.objects, 0);
	ck_assert_uint_eq(st.pages, 0);
	z3fold_destroy_pool(pool);
	pool = NULL;
}

/*****************
 * Sizes and placement
 *****************/

START_TEST(test_size_limits)
{
	struct z3fold_stats st;
	unsigned long h, big, shared;

	ck_assert_int_eq(z3fold_alloc(pool, 0, &h), -EINVAL);
	ck_assert_int_eq(z3fold_alloc(pool, 10, NULL), -EINVAL);
	ck_assert_int_eq(z3fold_alloc(NULL, 10, &h), -EINVAL);
	ck_assert_int_eq(z3fold_alloc(pool, PAGE + 1, &h), -ENOSPC);
	ck_assert_int_eq(z3fold_alloc(pool, SIZE_MAX, &h), -ENOSPC);

	big = alloc_filled(PAGE);
	ck_assert_uint_eq(off_in_page(map_once(big)), 0);
	h = alloc_filled(Z3FOLD_MAX_SHARED_SIZE + 1);
	shared = alloc_filled(Z3FOLD_MAX_SHARED_SIZE);
	ck_assert_uint_eq(off_in_page(map_once(shared)), CHUNK);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.headless_pages, 2);
	ck_assert_uint_eq(st.pages, 3);
	ck_assert_uint_eq(z3fold_object_size(pool, big), PAGE);
	ck_assert_uint_eq(z3fold_object_size(pool, shared),
			  Z3FOLD_MAX_SHARED_SIZE);
	check_pattern(big, PAGE);
	check_pattern(h, Z3FOLD_MAX_SHARED_SIZE + 1);
	check_pattern(shared, Z3FOLD_MAX_SHARED_SIZE);
	check_verify();
	z3fold_free(pool, big);
	z3fold_free(pool, h);
	z3fold_free(pool, shared);
}
END_TEST

START_TEST(test_three_buddies)
{
	/* 10, 5 and 7 chunks: FIRST, LAST, MIDDLE in one page */
	unsigned long a = alloc_filled(10 * CHUNK - 3);
	unsigned long b = alloc_filled(5 * CHUNK);
	unsigned long c = alloc_filled(7 * CHUNK - 60);
	unsigned long d;
	uint8_t *pa = map_once(a), *pb = map_once(b), *pc = map_once(c);

	ck_assert_uint_eq(page_of(pa), page_of(pb));
	ck_assert_uint_eq(page_of(pa), page_of(pc));
	ck_assert_uint_eq(off_in_page(pa), CHUNK);
	ck_assert_uint_eq(off_in_page(pb), PAGE - 5 * CHUNK);
	ck_assert_uint_eq(off_in_page(pc), CHUNK + 10 * CHUNK);
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 1);
	check_verify();

	/* a fully buddied page takes nothing more, even if space is left */
	d = alloc_filled(CHUNK);
	ck_assert_uint_ne(page_of(map_once(d)), page_of(pa));
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 2);

	check_pattern(a, 10 * CHUNK - 3);
	check_pattern(b, 5 * CHUNK);
	check_pattern(c, 7 * CHUNK - 60);
	check_verify();
	z3fold_free(pool, a);
	z3fold_free(pool, b);
	z3fold_free(pool, c);
	z3fold_free(pool, d);
}
END_TEST

START_TEST(test_best_fit)
{
	/* page 1 keeps 63-50 = 13 free chunks, page 2 keeps 63-20 = 43 */
	unsigned long p1 = alloc_filled(50 * CHUNK);
	unsigned long p2, small, mid;

	ck_assert_int_eq(z3fold_alloc(pool, 40 * CHUNK, &p2), 0);
	ck_assert_uint_ne(page_of(map_once(p2)), page_of(map_once(p1)));
	z3fold_free(pool, p2);
	p2 = alloc_filled(20 * CHUNK);
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 2);

	/* 12 chunks fit both; the tighter page (13 free) wins */
	small = alloc_filled(12 * CHUNK);
	ck_assert_uint_eq(page_of(map_once(small)), page_of(map_once(p1)));
	/* 30 chunks only fit page 2 */
	mid = alloc_filled(30 * CHUNK);
	ck_assert_uint_eq(page_of(map_once(mid)), page_of(map_once(p2)));
	check_verify();
	z3fold_free(pool, p1);
	z3fold_free(pool, p2);
	z3fold_free(pool, small);
	z3fold_free(pool, mid);
}
END_TEST

START_TEST(test_middle_alone_becomes_first)
{
	unsigned long a = alloc_filled(8 * CHUNK);
	unsigned long b = alloc_filled(8 * CHUNK);
	unsigned long c = alloc_filled(6 * CHUNK);
	struct z3fold_stats st;
	uint8_t *pc = map_once(c);

	ck_assert_uint_eq(off_in_page(pc), CHUNK + 8 * CHUNK);
	z3fold_free(pool, a);
	check_pattern(c, 6 * CHUNK);
	z3fold_free(pool, b);
	/* middle alone: moved to the start, now FIRST, same handle */
	ck_assert_uint_eq(off_in_page(map_once(c)), CHUNK);
	check_pattern(c, 6 * CHUNK);
	ck_assert_uint_eq(z3fold_object_size(pool, c), 6 * CHUNK);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_ge(st.compactions, 1);
	check_verify();

	/* the page takes new buddies around it */
	a = alloc_filled(30 * CHUNK);
	ck_assert_uint_eq(page_of(map_once(a)), page_of(pc));
	ck_assert_uint_eq(off_in_page(map_once(a)), PAGE - 30 * CHUNK);
	check_pattern(c, 6 * CHUNK);
	check_verify();
	z3fold_free(pool, c);
	check_pattern(a, 30 * CHUNK);
	z3fold_free(pool, a);
}
END_TEST

START_TEST(test_middle_moves_next_to_last)
{
	unsigned long a = alloc_filled(20 * CHUNK);
	unsigned long b = alloc_filled(10 * CHUNK);
	unsigned long c = alloc_filled(5 * CHUNK);

	ck_assert_uint_eq(off_in_page(map_once(c)), CHUNK + 20 * CHUNK);
	z3fold_free(pool, a);
	/* gap after the middle >= 3 chunks: it moves up against LAST */
	ck_assert_uint_eq(off_in_page(map_once(c)), PAGE - 15 * CHUNK);
	check_pattern(c, 5 * CHUNK);
	check_pattern(b, 10 * CHUNK);
	check_verify();
	/* the freed start takes a FIRST of up to 63-15 = 48 chunks */
	a = alloc_filled(48 * CHUNK);
	ck_assert_uint_eq(page_of(map_once(a)), page_of(map_once(c)));
	check_verify();
	z3fold_free(pool, a);
	z3fold_free(pool, b);
	z3fold_free(pool, c);
}
END_TEST

START_TEST(test_mapped_middle_deferred)
{
	unsigned long a = alloc_filled(8 * CHUNK);
	unsigned long b = alloc_filled(8 * CHUNK);
	unsigned long c = alloc_filled(6 * CHUNK);
	uint8_t *pc = z3fold_map(pool, c);

	ck_assert_ptr_nonnull(pc);
	z3fold_free(pool, a);
	z3fold_free(pool, b);
	/* mapped: it must not move under the mapper */
	ck_assert_ptr_eq(map_once(c), pc);
	ck_assert(pattern_ok(pc, c, 6 * CHUNK));
	ck_assert_uint_eq(z3fold_compact(pool, 10), 0);
	check_verify();
	z3fold_unmap(pool, c);
	ck_assert_uint_eq(z3fold_compact(pool, 10), 1);
	ck_assert_uint_eq(off_in_page(map_once(c)), CHUNK);
	check_pattern(c, 6 * CHUNK);
	ck_assert_uint_eq(z3fold_compact(pool, 10), 0);
	check_verify();
	z3fold_free(pool, c);
}
END_TEST

/* In a pool whose pages may outlive the process, the middle buddy stays
 * where it is when its neighbours go: a move would rewrite an object a
 * successor may read. */
START_TEST(test_objects_never_move)
{
	unsigned long a = alloc_filled(8 * CHUNK);
	unsigned long b = alloc_filled(8 * CHUNK);
	unsigned long c = alloc_filled(6 * CHUNK);
	struct z3fold_stats st;
	uint8_t *pc = map_once(c);

	z3fold_free(pool, a);
	z3fold_free(pool, b);
	ck_assert_ptr_eq(map_once(c), pc);
	ck_assert_uint_eq(z3fold_compact(pool, 10), 0);
	ck_assert_ptr_eq(map_once(c), pc);
	check_pattern(c, 6 * CHUNK);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.compactions, 0);
	check_verify();
	z3fold_free(pool, c);
}
END_TEST

/*****************
 * Owner words
 *****************/

/* An owner word that tells objects (and their neighbours) apart. */
static uint64_t word_of(unsigned long handle, unsigned int version)
{
	return (uint64_t)handle * 0x9e3779b97f4a7c15ull ^ version;
}

static void set_word(unsigned long handle, unsigned int version)
{
	z3fold_set_owner(pool, handle, word_of(handle, version));
}

static void check_word(unsigned long handle, unsigned int version)
{
	ck_assert_msg(z3fold_owner(pool, handle) == word_of(handle, version),
		      "owner word of %#lx is %#llx", handle,
		      (unsigned long long)z3fold_owner(pool, handle));
}

/* FIRST, LAST, MIDDLE in one page and a HEADLESS page: each object has a
 * word of its own, which reads back what was set, whatever its
 * neighbours' words do. */
START_TEST(test_owner_words_every_placement)
{
	unsigned long a = alloc_filled(10 * CHUNK);
	unsigned long b = alloc_filled(5 * CHUNK);
	unsigned long c = alloc_filled(7 * CHUNK);
	unsigned long h = alloc_filled(PAGE);
	unsigned long all[] = { a, b, c, h };
	unsigned int i, j;

	ck_assert_uint_eq(off_in_page(map_once(a)), CHUNK);
	ck_assert_uint_eq(off_in_page(map_once(b)), PAGE - 5 * CHUNK);
	ck_assert_uint_eq(off_in_page(map_once(c)), CHUNK + 10 * CHUNK);
	ck_assert_uint_eq(page_of(map_once(a)), page_of(map_once(c)));
	ck_assert_uint_eq(off_in_page(map_once(h)), 0);
	for (i = 0; i < ARRAY_SIZE(all); i++)
		set_word(all[i], 1);
	for (i = 0; i < ARRAY_SIZE(all); i++)
		check_word(all[i], 1);
	/* rewriting one word leaves the others as they are */
	for (i = 0; i < ARRAY_SIZE(all); i++) {
		set_word(all[i], 2);
		for (j = 0; j < ARRAY_SIZE(all); j++)
			check_word(all[j], j <= i ? 2 : 1);
	}
	z3fold_set_owner(pool, a, ~0ull);
	ck_assert_uint_eq(z3fold_owner(pool, a), ~0ull);
	check_word(c, 2);
	for (i = 0; i < ARRAY_SIZE(all); i++)
		z3fold_free(pool, all[i]);
}
END_TEST

/* A handle outside the pool reads 0 and is refused as invalid. */
START_TEST(test_owner_words_outside_the_pool)
{
	unsigned long a = alloc_filled(CHUNK);
	struct z3fold_stats st;

	set_word(a, 1);
	ck_assert_uint_eq(z3fold_owner(pool, ~0ul), 0);
	ck_assert_uint_eq(z3fold_owner(pool, a + (1ul << 40)), 0);
	z3fold_set_owner(pool, a + (1ul << 40), 1);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.invalid_ops, 1);
	check_word(a, 1);
	z3fold_free(pool, a);
}
END_TEST

/*
 * Every move of a middle buddy keeps its owner word: alone, it becomes
 * FIRST (its handle now decodes as another buddy); it moves next to LAST;
 * a deferred move (z3fold_compact()). New neighbours of a moved object
 * get words of their own.
 */
START_TEST(test_owner_word_follows_a_moved_middle)
{
	unsigned long a = alloc_filled(8 * CHUNK);
	unsigned long b = alloc_filled(8 * CHUNK);
	unsigned long c = alloc_filled(6 * CHUNK);
	unsigned long x, y, d, e, f;

	set_word(a, 1);
	set_word(b, 1);
	set_word(c, 1);
	z3fold_free(pool, a);
	z3fold_free(pool, b);
	ck_assert_uint_eq(off_in_page(map_once(c)), CHUNK);
	check_word(c, 1);
	/* the page takes a LAST and a MIDDLE around the new FIRST */
	x = alloc_filled(30 * CHUNK);
	y = alloc_filled(10 * CHUNK);
	ck_assert_uint_eq(page_of(map_once(x)), page_of(map_once(c)));
	ck_assert_uint_eq(page_of(map_once(y)), page_of(map_once(c)));
	ck_assert_uint_eq(off_in_page(map_once(y)), CHUNK + 6 * CHUNK);
	set_word(x, 2);
	set_word(y, 2);
	check_word(c, 1);
	check_word(x, 2);
	check_word(y, 2);
	/* with c gone, y moves up against x */
	z3fold_free(pool, c);
	ck_assert_uint_eq(off_in_page(map_once(y)), PAGE - 40 * CHUNK);
	check_word(y, 2);
	check_word(x, 2);
	z3fold_free(pool, x);
	z3fold_free(pool, y);

	/* a mapped middle moves later, in z3fold_compact() */
	d = alloc_filled(8 * CHUNK);
	e = alloc_filled(8 * CHUNK);
	f = alloc_filled(6 * CHUNK);
	set_word(d, 3);
	set_word(e, 3);
	set_word(f, 3);
	ck_assert_ptr_nonnull(z3fold_map(pool, f));
	z3fold_free(pool, d);
	z3fold_free(pool, e);
	z3fold_unmap(pool, f);
	ck_assert_uint_eq(z3fold_compact(pool, 10), 1);
	ck_assert_uint_eq(off_in_page(map_once(f)), CHUNK);
	check_word(f, 3);
	check_pattern(f, 6 * CHUNK);
	z3fold_free(pool, f);
}
END_TEST

/*****************
 * Invalid handles
 *****************/

START_TEST(test_invalid_handles)
{
	unsigned long a = alloc_filled(100);
	unsigned long b = alloc_filled(200);
	uint8_t *pa = map_once(a);
	unsigned long c;
	struct z3fold_stats st;

	z3fold_free(pool, a);
	z3fold_free(pool, a);                    /* double free */
	ck_assert_ptr_null(z3fold_map(pool, a)); /* map of a freed handle */
	z3fold_unmap(pool, a);
	ck_assert_ptr_null(z3fold_map(pool, 0));
	ck_assert_ptr_null(z3fold_map(pool, ~0ul));
	ck_assert_ptr_null(z3fold_map(pool, (1ul << 40) | 5));
	z3fold_free(pool, ~0ul);
	ck_assert_uint_eq(z3fold_object_size(pool, a), 0);

	/* the slot is reused: the old handle must not reach the new object */
	c = alloc_filled(100);
	ck_assert_ptr_eq(map_once(c), pa);
	ck_assert_uint_ne(c, a);
	ck_assert_ptr_null(z3fold_map(pool, a));
	z3fold_free(pool, a);

	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.invalid_ops, 9);
	ck_assert_uint_eq(st.objects, 2);
	check_pattern(b, 200);
	check_pattern(c, 100);
	check_verify();
	z3fold_free(pool, b);
	z3fold_free(pool, c);
}
END_TEST

/*****************
 * Reclaim from the bottom
 *****************/

#define MAX_EVICT 64

/* What the test evict handler does and saw. */
static struct {
	unsigned long seen[MAX_EVICT];
	int nr_seen;
	int fail_at;                /* fail the n-th call (1-based), 0 never */
	bool fail_all;              /* fail every call */
	unsigned long also_free;    /* a handle to free first, as a racing
				       fault thread would */
	bool skip_free;             /* return 0 without freeing (bad user) */
} ev;

static int test_evict(struct z3fold_pool *p, unsigned long handle,
		      void *priv)
{
	int n;

	ck_assert_ptr_eq(p, pool);
	ck_assert_ptr_eq(priv, &ev);
	ck_assert_int_lt(ev.nr_seen, MAX_EVICT);
	ev.seen[ev.nr_seen++] = handle;
	n = ev.nr_seen;
	if (ev.also_free) {
		z3fold_free(pool, ev.also_free);
		ev.also_free = 0;
	}
	if (ev.fail_at == n || ev.fail_all)
		return -EBUSY;
	/* the object is readable while its page is claimed */
	ck_assert_uint_ne(z3fold_object_size(pool, handle), 0);
	check_pattern(handle, z3fold_object_size(pool, handle));
	if (!ev.skip_free)
		z3fold_free(pool, handle);
	return 0;
}

static const struct z3fold_ops evict_ops = { .evict = test_evict };

static void setup_evict(void)
{
	memset(&ev, 0, sizeof(ev));
	pool = make_pool("reclaim", &evict_ops, &ev);
	ck_assert_ptr_nonnull(pool);
}

static bool seen(unsigned long h)
{
	int i;

	for (i = 0; i < ev.nr_seen; i++)
		if (ev.seen[i] == h)
			return true;
	return false;
}

START_TEST(test_reclaim_no_handler)
{
	unsigned long h = alloc_filled(100);

	ck_assert_int_eq(z3fold_reclaim_page(pool, 4), -EINVAL);
	z3fold_free(pool, h);
}
END_TEST

START_TEST(test_reclaim_empty)
{
	ck_assert_int_eq(z3fold_reclaim_page(pool, 4), -EINVAL);
	ck_assert_int_eq(z3fold_reclaim_page(pool, 0), -EINVAL);
}
END_TEST

START_TEST(test_reclaim_lru_tail)
{
	/* page 1 (oldest): a, b, c; page 2: d, e, f; page 3: headless g */
	unsigned long a = alloc_filled(900), b = alloc_filled(1100),
		      c = alloc_filled(700);
	unsigned long d = alloc_filled(1000), e = alloc_filled(1000),
		      f = alloc_filled(1000);
	unsigned long g = alloc_filled(PAGE);
	struct z3fold_stats st;

	ck_assert_uint_eq(z3fold_get_pool_size(pool), 3);
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), 0);
	/* middle, first, last of the least recently allocated page */
	ck_assert_int_eq(ev.nr_seen, 3);
	ck_assert_uint_eq(ev.seen[0], c);
	ck_assert_uint_eq(ev.seen[1], a);
	ck_assert_uint_eq(ev.seen[2], b);
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 2);
	check_verify();

	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), 0);
	ck_assert(seen(d) && seen(e) && seen(f));
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), 0);
	ck_assert(seen(g));
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), -EINVAL);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.reclaimed_pages, 3);
	ck_assert_uint_eq(st.invalid_ops, 0);
}
END_TEST

START_TEST(test_reclaim_alloc_refreshes_lru)
{
	unsigned long a = alloc_filled(1000);	/* page 1 */
	unsigned long b = alloc_filled(3500);	/* page 2 */
	unsigned long c = alloc_filled(1000);	/* page 1 again: now newest */

	ck_assert_uint_eq(page_of(map_once(a)), page_of(map_once(c)));
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), 0);
	ck_assert_int_eq(ev.nr_seen, 1);
	ck_assert_uint_eq(ev.seen[0], b);
	check_verify();
	z3fold_free(pool, a);
	z3fold_free(pool, c);
}
END_TEST

START_TEST(test_reclaim_handler_fails)
{
	unsigned long a = alloc_filled(900), b = alloc_filled(1100),
		      c = alloc_filled(700);
	struct z3fold_stats st;

	/* the second handler call (first buddy) fails: the middle is gone,
	 * first and last stay, the page goes back on the lists */
	ev.fail_at = 2;
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), -EAGAIN);
	ck_assert_int_eq(ev.nr_seen, 2);
	ck_assert_uint_eq(ev.seen[0], c);
	ck_assert_uint_eq(z3fold_object_size(pool, c), 0);
	check_pattern(a, 900);
	check_pattern(b, 1100);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.evict_failures, 1);
	ck_assert_uint_eq(st.pages, 1);
	check_verify();

	/* it can take a new middle buddy again */
	c = alloc_filled(700);
	ck_assert_uint_eq(page_of(map_once(c)), page_of(map_once(a)));

	/* every call fails: retries run out, nothing is lost */
	ev.nr_seen = 0;
	ev.fail_all = true;
	ck_assert_int_eq(z3fold_reclaim_page(pool, 3), -EAGAIN);
	ck_assert_int_eq(ev.nr_seen, 3);
	check_pattern(a, 900);
	check_pattern(b, 1100);
	check_pattern(c, 700);
	check_verify();
	z3fold_free(pool, a);
	z3fold_free(pool, b);
	z3fold_free(pool, c);
}
END_TEST

START_TEST(test_reclaim_retries_next_page)
{
	unsigned long a = alloc_filled(3000);	/* page 1, oldest */
	unsigned long b = alloc_filled(3000);	/* page 2 */

	ev.fail_at = 1;
	ck_assert_int_eq(z3fold_reclaim_page(pool, 2), 0);
	ck_assert_int_eq(ev.nr_seen, 2);
	ck_assert_uint_eq(ev.seen[0], a);
	ck_assert_uint_eq(ev.seen[1], b);
	check_pattern(a, 3000);
	ck_assert_uint_eq(z3fold_object_size(pool, b), 0);
	check_verify();
	z3fold_free(pool, a);
}
END_TEST

START_TEST(test_reclaim_concurrent_free)
{
	unsigned long a = alloc_filled(900), b = alloc_filled(1100),
		      c = alloc_filled(700);
	unsigned long h = alloc_filled(PAGE);
	struct z3fold_stats st;

	/*
	 * While the middle buddy is evicted, a fault thread frees LAST: the
	 * free only marks the buddy free. The handler is still called for
	 * LAST, with the handle collected when the page was claimed, and
	 * fails as a store that no longer knows the object would: the page
	 * is released all the same, since no buddy is left.
	 */
	ev.also_free = b;
	ev.fail_at = 3;
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), 0);
	ck_assert_int_eq(ev.nr_seen, 3);
	ck_assert_uint_eq(ev.seen[2], b);
	ck_assert_uint_eq(z3fold_object_size(pool, a), 0);
	ck_assert_uint_eq(z3fold_object_size(pool, c), 0);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.reclaimed_pages, 1);
	ck_assert_uint_eq(st.pages, 1);
	check_verify();

	/* a headless page freed by someone else during its reclaim */
	ev.nr_seen = 0;
	ev.fail_at = 1;
	ev.also_free = h;
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), 0);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.pages, 0);
	ck_assert_uint_eq(st.invalid_ops, 0);
}
END_TEST

START_TEST(test_reclaim_handler_must_free)
{
	unsigned long a = alloc_filled(2000);

	/* a handler that says 0 without freeing does not lose the object */
	ev.skip_free = true;
	ck_assert_int_eq(z3fold_reclaim_page(pool, 1), -EAGAIN);
	check_pattern(a, 2000);
	check_verify();
	z3fold_free(pool, a);
}
END_TEST

/*****************
 * Pages from and back to the OS, allocation failures
 *****************/

/* Pages of memory the pool's page memfd holds; -1 for anonymous memory. */
static long arena_file_pages(void)
{
	const struct pagemem *pages, *frames, *owners;
	struct stat st;

	z3fold_memory(pool, &pages, &frames, &owners);
	if (pagemem_fd(pages) < 0)
		return -1;
	ck_assert_int_eq(fstat(pagemem_fd(pages), &st), 0);
	return (long)(st.st_blocks * 512 / PAGE);
}

START_TEST(test_pages_return_to_os)
{
	enum { N = 3 * 256 * 3 };
	static unsigned long h[N];
	struct z3fold_stats st;
	long before;
	int i;

	for (i = 0; i < N; i++)
		h[i] = alloc_filled(1200);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.pages, N / 3);
	ck_assert_uint_ge(st.reserved_pages, N / 3);
	check_verify();
	before = arena_file_pages();
	for (i = 0; i < N; i++) {
		check_pattern(h[i], 1200);
		z3fold_free(pool, h[i]);
	}
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.pages, 0);
	/* all but one spare batch went back */
	ck_assert_uint_le(st.reserved_pages, 256);
	check_verify();
	/* a memfd's segments were punched: its memory went back too */
	if (before >= 0) {
		ck_assert_int_ge(before, N / 3);
		ck_assert_int_le(arena_file_pages(), 256);
	}
}
END_TEST

/*
 * The pool's memfds mapped a second time, at another address (what a
 * restarted daemon does with the fds it is handed): every object is there
 * at the offset it has in the first mapping, and a write through either
 * mapping shows in the other.
 */
START_TEST(test_arena_mapped_again)
{
	enum { N = 600 };
	static unsigned long h[N];
	static size_t size[N];
	const struct pagemem *pages, *frames, *owners;
	struct pagemem again, again_frames;
	uint8_t *obj;
	size_t off;
	struct stat st;
	int i;

	for (i = 0; i < N; i++) {
		size[i] = i % 7 ? 64u * (unsigned int)(1 + i % 40) : PAGE;
		h[i] = alloc_filled(size[i]);
	}
	z3fold_memory(pool, &pages, &frames, &owners);
	ck_assert_int_ge(pagemem_fd(pages), 0);
	ck_assert_int_eq(fstat(pagemem_fd(pages), &st), 0);
	ck_assert_int_eq(pagemem_alloc(&again, &(struct pagemem_src){
		PAGEMEM_FILE, pagemem_fd(pages) }, (size_t)st.st_size,
		"again"), 0);
	ck_assert_ptr_ne(again.base, pages->base);
	for (i = 0; i < N; i++) {
		off = (size_t)((uint8_t *)map_once(h[i]) -
			       (uint8_t *)pages->base);
		ck_assert_uint_lt(off + size[i], again.len + 1);
		ck_assert_msg(pattern_ok((uint8_t *)again.base + off, h[i],
					 size[i]), "object %d differs", i);
	}
	/* a write through the second mapping is the pool's object */
	obj = map_once(h[0]);
	off = (size_t)(obj - (uint8_t *)pages->base);
	((uint8_t *)again.base)[off] ^= 0xff;
	ck_assert(!pattern_ok(obj, h[0], size[0]));
	((uint8_t *)again.base)[off] ^= 0xff;
	check_pattern(h[0], size[0]);
	/* the side table (links, flags, generations) is the same bytes */
	ck_assert_int_eq(fstat(pagemem_fd(frames), &st), 0);
	ck_assert_int_eq(pagemem_alloc(&again_frames, &(struct pagemem_src){
		PAGEMEM_FILE, pagemem_fd(frames) }, (size_t)st.st_size,
		"again frames"), 0);
	ck_assert_int_eq(memcmp(again_frames.base, frames->base,
				(size_t)st.st_size), 0);
	pagemem_free(&again_frames);
	pagemem_free(&again);
	/* the pool's own descriptors were not the ones closed */
	check_verify();
	for (i = 0; i < N; i++) {
		check_pattern(h[i], size[i]);
		z3fold_free(pool, h[i]);
	}
	ck_assert_int_ge(pagemem_fd(pages), 0);
	ck_assert_int_eq(fstat(pagemem_fd(pages), &st), 0);
}
END_TEST

START_TEST(test_alloc_failure_injection)
{
	struct z3fold_pool *p = NULL;
	unsigned long n, h[4];
	int ret = -ENOMEM, i;

	/* creation: fail the n-th request until it succeeds */
	for (n = 1; !p; n++) {
		failpoint_arm(n);
		p = make_pool("inject", NULL, NULL);
		ck_assert(p || failpoint_failures() == 1);
	}
	failpoint_arm(0);
	ck_assert_uint_gt(n, 2);
	z3fold_destroy_pool(p);

	/* growth: the first alloc needs a batch from the OS */
	for (n = 1; ret != 0; n++) {
		failpoint_arm(n);
		ret = z3fold_alloc(pool, 500, &h[0]);
		ck_assert(ret == 0 || ret == -ENOMEM);
		check_verify();
	}
	failpoint_arm(0);
	fill(h[0], 500);
	for (i = 1; i < 4; i++)
		h[i] = alloc_filled(500);
	for (i = 0; i < 4; i++) {
		check_pattern(h[i], 500);
		z3fold_free(pool, h[i]);
	}
}
END_TEST

/*****************
 * Four threads at once
 *****************/

#define ST_THREADS 4
#define ST_ENTRIES 4096
#define ST_OPS 60000

/* One object slot of the stress test; @lock guards the rest. */
struct st_entry {
	pthread_mutex_t lock;
	unsigned long handle;   /* 0: none */
	size_t size;
	uint8_t *copy;          /* evicted copy, pattern of @copy_handle */
	unsigned long copy_handle;
	struct st_entry *hnext; /* rmap chain; rmap_lock */
};

static struct st_entry st_entries[ST_ENTRIES];
static struct st_entry *rmap[8192];
static pthread_mutex_t rmap_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned long st_evicted, st_mismatch;

static unsigned int rmap_slot(unsigned long h)
{
	return (unsigned int)((h * 0x9e3779b97f4a7c15ull) >> 51);
}

static void rmap_add(struct st_entry *e)
{
	unsigned int s = rmap_slot(e->handle);

	pthread_mutex_lock(&rmap_lock);
	e->hnext = rmap[s];
	rmap[s] = e;
	pthread_mutex_unlock(&rmap_lock);
}

static void rmap_del(struct st_entry *e)
{
	struct st_entry **pp;

	pthread_mutex_lock(&rmap_lock);
	for (pp = &rmap[rmap_slot(e->handle)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	pthread_mutex_unlock(&rmap_lock);
}

static struct st_entry *rmap_find(unsigned long h)
{
	struct st_entry *e;

	pthread_mutex_lock(&rmap_lock);
	for (e = rmap[rmap_slot(h)]; e && e->handle != h; e = e->hnext)
		;
	pthread_mutex_unlock(&rmap_lock);
	return e;
}

static bool object_ok(unsigned long h, size_t size)
{
	uint8_t *p = z3fold_map(pool, h);
	bool ok = p && pattern_ok(p, h, size);

	if (p)
		z3fold_unmap(pool, h);
	return ok;
}

/* Evict: copy the object out, then free it, as the store's writeback
 * does. An object its owner freed meanwhile is simply gone. */
static int stress_evict(struct z3fold_pool *p, unsigned long handle,
			void *priv)
{
	struct st_entry *e = rmap_find(handle);
	uint8_t *src;
	int ret = 0;

	if (!e)
		return 0;
	pthread_mutex_lock(&e->lock);
	if (e->handle != handle)
		goto out_unlock;
	if ((handle >> 3) % 7 == 0) {
		ret = -EBUSY;
		goto out_unlock;
	}
	src = z3fold_map(p, handle);
	if (!src || !pattern_ok(src, handle, e->size))
		st_mismatch++;
	e->copy = malloc(e->size);
	if (src) {
		memcpy(e->copy, src, e->size);
		z3fold_unmap(p, handle);
	}
	e->copy_handle = handle;
	rmap_del(e);
	e->handle = 0;
	z3fold_free(p, handle);
	st_evicted++;
out_unlock:
	pthread_mutex_unlock(&e->lock);
	return ret;
}

static const struct z3fold_ops stress_ops = { .evict = stress_evict };

static uint64_t xorshift(uint64_t *rng)
{
	uint64_t x = *rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	return x;
}

static size_t stress_size(uint64_t *rng)
{
	uint64_t x = xorshift(rng);

	if (x % 16 == 0)
		return PAGE - (x >> 8) % 200;	/* raw, headless */
	return 16 + (x >> 8) % 2800;
}

static void stress_touch(struct st_entry *e, uint64_t *rng)
{
	if (e->copy) {
		/* fault back the evicted copy */
		if (!pattern_ok(e->copy, e->copy_handle, e->size))
			st_mismatch++;
		free(e->copy);
		e->copy = NULL;
	}
	if (e->handle) {
		if (!object_ok(e->handle, e->size))
			st_mismatch++;
		if (*rng & 1) {
			rmap_del(e);
			z3fold_free(pool, e->handle);
			e->handle = 0;
		}
		return;
	}
	e->size = stress_size(rng);
	if (z3fold_alloc(pool, e->size, &e->handle) != 0) {
		st_mismatch++;
		e->handle = 0;
		return;
	}
	fill(e->handle, e->size);
	rmap_add(e);
}

static void *stress_thread(void *arg)
{
	uint64_t rng = 0x1234567ull * ((uintptr_t)arg + 1);
	unsigned int i;

	for (i = 0; i < ST_OPS; i++) {
		struct st_entry *e =
			&st_entries[(xorshift(&rng) >> 11) % ST_ENTRIES];

		pthread_mutex_lock(&e->lock);
		stress_touch(e, &rng);
		pthread_mutex_unlock(&e->lock);
		if (i % 64 == 0)
			z3fold_reclaim_page(pool, 4);
		if (i % 128 == 0)
			z3fold_compact(pool, 16);
	}
	return NULL;
}

START_TEST(test_stress_threads)
{
	pthread_t t[ST_THREADS];
	struct z3fold_stats st;
	uintptr_t i;

	z3fold_destroy_pool(pool);
	pool = make_pool("stress", &stress_ops, NULL);
	ck_assert_ptr_nonnull(pool);
	for (i = 0; i < ST_ENTRIES; i++)
		pthread_mutex_init(&st_entries[i].lock, NULL);
	for (i = 0; i < ST_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, stress_thread,
						(void *)i), 0);
	for (i = 0; i < ST_THREADS; i++)
		pthread_join(t[i], NULL);

	check_verify();
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st_mismatch, 0);
	ck_assert_uint_eq(st.invalid_ops, 0);
	ck_assert_uint_gt(st_evicted, 100);
	ck_assert_uint_gt(st.reclaimed_pages, 10);
	/* a pool that may outlive the process never moves an object */
	if (pool_kind == PAGEMEM_ANON)
		ck_assert_uint_gt(st.compactions, 100);
	else
		ck_assert_uint_eq(st.compactions, 0);
	ck_assert_uint_gt(st.evict_failures, 0);
	for (i = 0; i < ST_ENTRIES; i++) {
		struct st_entry *e = &st_entries[i];

		if (e->handle) {
			ck_assert(object_ok(e->handle, e->size));
			z3fold_free(pool, e->handle);
		}
		if (e->copy)
			ck_assert(pattern_ok(e->copy, e->copy_handle,
					     e->size));
		free(e->copy);
		pthread_mutex_destroy(&e->lock);
	}
}
END_TEST

/*****************
 * Density on a real memory image
 *****************/

START_TEST(test_density_real_memory)
{
	struct density_result res;
	struct memimage img;

	ck_assert_int_eq(memimage_build(48, &img), 0);
	ck_assert_int_eq(density_load(pool, &img, DENSITY_LZ4, &res), 0);
	printf("density: %zu pages (%zu same-filled), %zu stored (%zu raw), "
	       "lz4 ratio %.2f, payload / pool bytes %.3f\n",
	       res.pages, res.same_filled, res.stored, res.raw, res.ratio,
	       res.density);
	ck_assert_uint_gt(res.stored, 1000);
	check_verify();
	ck_assert_msg(res.density >= 0.85, "density %.3f below 0.85",
		      res.density);
	density_unload(pool, &res);
	memimage_free(&img);
}
END_TEST

/*****************
 * Recovery of a pool whose owner died
 *****************/

/* The pool made again on the files of the pool in use, as a successor
 * makes it, and the pool in use dropped as its owner died or stopped;
 * its owner words from file @owners_fd, or from the dead pool's file if
 * -1. Not recovered yet. */
static void pool_made_again_with(int owners_fd)
{
	const struct pagemem *pages, *frames, *owners;
	struct z3fold_pool *dead = pool;
	struct z3fold_mem mem;

	z3fold_memory(dead, &pages, &frames, &owners);
	mem.pages = (struct pagemem_src){ PAGEMEM_FILE, pagemem_fd(pages) };
	mem.frames = (struct pagemem_src){ PAGEMEM_FILE, pagemem_fd(frames) };
	mem.owners = (struct pagemem_src){
		PAGEMEM_FILE, owners_fd < 0 ? pagemem_fd(owners) : owners_fd };
	pool = z3fold_create_pool("reborn", &mem, NULL, NULL);
	ck_assert_ptr_nonnull(pool);
	z3fold_destroy_pool(dead);
}

static void pool_made_again(void)
{
	pool_made_again_with(-1);
}

/* The same, then recovering. */
static void pool_reborn_with(int owners_fd)
{
	pool_made_again_with(owners_fd);
	ck_assert_int_eq(z3fold_recover_begin(pool), 0);
}

static void pool_reborn(void)
{
	pool_reborn_with(-1);
}

/* What a successor's records name survives, byte for byte and at the same
 * handle; everything else (freed before, or never named: a half-done
 * allocation) is freed; the pool is whole and usable after. */
START_TEST(test_recover_keeps_what_is_named)
{
	enum { N = 900 };
	static unsigned long h[N];
	static size_t size[N];
	static bool named[N];
	uint64_t objects = 0, payload = 0;
	struct z3fold_stats st;
	unsigned long x;
	int i;

	for (i = 0; i < N; i++) {
		size[i] = i % 9 ? 64u * (unsigned int)(1 + i % 40) : PAGE;
		h[i] = alloc_filled(size[i]);
	}
	for (i = 0; i < N; i += 5)
		z3fold_free(pool, h[i]);
	pool_reborn();
	for (i = 0; i < N; i++) {
		if (i % 5 == 0) {
			ck_assert_int_eq(z3fold_recover_ref(pool, h[i]),
					 -ESTALE);
			continue;
		}
		if (i % 3 == 0)
			continue;
		ck_assert_int_eq(z3fold_recover_ref(pool, h[i]),
				 (long)size[i]);
		named[i] = true;
		objects++;
		payload += size[i];
	}
	z3fold_recover_end(pool);
	check_verify();
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.objects, objects);
	ck_assert_uint_eq(st.payload_bytes, payload);
	for (i = 0; i < N; i++) {
		if (named[i])
			check_pattern(h[i], size[i]);
		else
			ck_assert_uint_eq(z3fold_object_size(pool, h[i]), 0);
	}
	for (i = 0; i < 300; i++) {
		x = alloc_filled(64u * (unsigned int)(1 + i % 63));
		check_pattern(x, 64u * (unsigned int)(1 + i % 63));
		z3fold_free(pool, x);
	}
	for (i = 0; i < N; i++)
		if (named[i])
			z3fold_free(pool, h[i]);
	check_verify();
}
END_TEST

/* A handle whose generation, buddy or frame the files do not hold is
 * refused, and nothing is kept for it. */
START_TEST(test_recover_refuses_stale_handles)
{
	unsigned long a = alloc_filled(10 * CHUNK);
	unsigned long b = alloc_filled(PAGE);
	struct z3fold_stats st;

	pool_reborn();
	ck_assert_int_eq(z3fold_recover_ref(pool, a + 4), -ESTALE);
	ck_assert_int_eq(z3fold_recover_ref(pool, b | 1), -ESTALE);
	ck_assert_int_eq(z3fold_recover_ref(pool, a + (1ul << 40)), -ESTALE);
	ck_assert_int_eq(z3fold_recover_ref(pool, ~0ul), -ESTALE);
	ck_assert_int_eq(z3fold_recover_ref(pool, a), 10 * CHUNK);
	z3fold_recover_end(pool);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.objects, 1);
	ck_assert_uint_eq(z3fold_object_size(pool, b), 0);
	check_pattern(a, 10 * CHUNK);
	z3fold_free(pool, a);
}
END_TEST

/* The owner words of the objects a successor's records name are in the
 * files: readable during the recovery and after it, and settable. */
START_TEST(test_recover_keeps_owner_words)
{
	enum { N = 900 };
	static unsigned long h[N];
	static size_t size[N];
	int i;

	for (i = 0; i < N; i++) {
		size[i] = i % 9 ? 64u * (unsigned int)(1 + i % 40) : PAGE;
		h[i] = alloc_filled(size[i]);
		set_word(h[i], 1);
	}
	for (i = 0; i < N; i += 5)
		z3fold_free(pool, h[i]);
	pool_reborn();
	for (i = 0; i < N; i++) {
		if (i % 5 == 0)
			continue;
		ck_assert_int_eq(z3fold_recover_ref(pool, h[i]),
				 (long)size[i]);
		check_word(h[i], 1);
	}
	z3fold_recover_end(pool);
	check_verify();
	for (i = 0; i < N; i++) {
		if (i % 5 == 0)
			continue;
		check_word(h[i], 1);
		check_pattern(h[i], size[i]);
		set_word(h[i], 2);
	}
	for (i = 0; i < N; i++) {
		if (i % 5 == 0)
			continue;
		check_word(h[i], 2);
		z3fold_free(pool, h[i]);
	}
}
END_TEST

/* A pool written before owner words existed: its owners file is new and
 * empty. The recovered objects' words read 0, and can be set. */
START_TEST(test_recover_with_a_new_owners_file)
{
	enum { N = 600 };
	static unsigned long h[N];
	int fd = memfd_create("check_z3fold owners", MFD_CLOEXEC);
	int i;

	ck_assert_int_ge(fd, 0);
	for (i = 0; i < N; i++) {
		h[i] = alloc_filled(i % 7 ? 64u * (unsigned int)(1 + i % 50)
					  : PAGE);
		set_word(h[i], 1);
	}
	pool_reborn_with(fd);
	close(fd);
	for (i = 0; i < N; i++) {
		ck_assert_int_gt(z3fold_recover_ref(pool, h[i]), 0);
		ck_assert_uint_eq(z3fold_owner(pool, h[i]), 0);
		set_word(h[i], 2);
	}
	z3fold_recover_end(pool);
	check_verify();
	for (i = 0; i < N; i++) {
		check_word(h[i], 2);
		z3fold_free(pool, h[i]);
	}
}
END_TEST

/*****************
 * The image of a pool at rest
 *****************/

/* A pool of every placement and size, with holes: what is live is @h[i]
 * of @size[i] where @live[i]. */
static void fill_with_holes(unsigned long *h, size_t *size, bool *live,
			    int n)
{
	int i;

	for (i = 0; i < n; i++) {
		size[i] = i % 7 ? 64u * (unsigned int)(1 + i % 50) : PAGE;
		h[i] = alloc_filled(size[i]);
		live[i] = true;
	}
	for (i = 0; i < n; i += 3) {
		z3fold_free(pool, h[i]);
		live[i] = false;
	}
}

/* The image saved at rest, in a new buffer of *@len bytes. */
static void *image_of(struct z3fold_pool *p, size_t *len)
{
	void *buf;

	*len = z3fold_image_size(p);
	buf = malloc(*len);
	ck_assert_ptr_nonnull(buf);
	z3fold_save_image(p, buf);
	return buf;
}

/* A successor that loads the image of a pool at rest has that pool: the
 * same objects at the same handles, byte for byte, the same counters,
 * lists that verify; the freed ones stay freed; it allocates and frees as
 * before. */
START_TEST(test_image_takes_the_pool_over)
{
	enum { N = 1200 };
	static unsigned long h[N];
	static size_t size[N];
	static bool live[N];
	struct z3fold_stats before, after;
	const char *why = "unset";
	size_t len;
	void *im;
	int i;

	fill_with_holes(h, size, live, N);
	z3fold_get_stats(pool, &before);
	im = image_of(pool, &len);
	pool_made_again();
	ck_assert_int_eq(z3fold_load_image(pool, im, len, &why), 0);
	free(im);
	check_verify();
	z3fold_get_stats(pool, &after);
	ck_assert_uint_eq(after.objects, before.objects);
	ck_assert_uint_eq(after.payload_bytes, before.payload_bytes);
	ck_assert_uint_eq(after.pages, before.pages);
	ck_assert_uint_eq(after.headless_pages, before.headless_pages);
	for (i = 0; i < N; i++) {
		if (live[i])
			check_pattern(h[i], size[i]);
		else
			ck_assert_uint_eq(z3fold_object_size(pool, h[i]), 0);
	}
	for (i = 0; i < N; i += 3) {
		h[i] = alloc_filled(size[i]);
		live[i] = true;
	}
	check_verify();
	for (i = 0; i < N; i++) {
		check_pattern(h[i], size[i]);
		z3fold_free(pool, h[i]);
	}
	check_verify();
	z3fold_get_stats(pool, &after);
	ck_assert_uint_eq(after.objects, 0);
}
END_TEST

/* An image that cannot be this pool's is refused with a reason, and the
 * pool is left as made: recovery then keeps what is named. */
START_TEST(test_image_refused)
{
	enum { N = 300 };
	static unsigned long h[N];
	static size_t size[N];
	static bool live[N];
	/* byte offsets in the image (struct pool_image): the magic, the
	 * pool's segments, the first unbuddied list's head */
	static const size_t spoil[] = { 0, 8, 32 };
	const char *why;
	uint8_t *im, *bad;
	size_t len, i;
	int j;

	fill_with_holes(h, size, live, N);
	im = image_of(pool, &len);
	pool_made_again();
	bad = malloc(len);
	ck_assert_ptr_nonnull(bad);
	for (i = 0; i < ARRAY_SIZE(spoil); i++) {
		memcpy(bad, im, len);
		bad[spoil[i] + 3] ^= 0x5a;
		why = NULL;
		ck_assert_int_eq(z3fold_load_image(pool, bad, len, &why),
				 -EINVAL);
		ck_assert_ptr_nonnull(why);
	}
	ck_assert_int_eq(z3fold_load_image(pool, im, len - 1, &why), -EINVAL);
	ck_assert_int_eq(z3fold_load_image(pool, im, 16, &why), -EINVAL);
	free(bad);
	free(im);
	ck_assert_int_eq(z3fold_recover_begin(pool), 0);
	for (j = 0; j < N; j++)
		if (live[j])
			ck_assert_int_eq(z3fold_recover_ref(pool, h[j]),
					 (long)size[j]);
	z3fold_recover_end(pool);
	check_verify();
	for (j = 0; j < N; j++)
		if (live[j]) {
			check_pattern(h[j], size[j]);
			z3fold_free(pool, h[j]);
		}
}
END_TEST

/*
 * The side table's entry of a frame as z3fold.c lays it out (struct
 * z3fold_frame, asserted 16 bytes there): LRU links, generation, headless
 * size, lock byte, flags.
 */
struct frame_bytes {
	uint32_t prev, next;
	uint16_t gen, hsize;
	uint8_t lock, flags;
	uint16_t pad;
};

/* The owner died holding frame locks and in the middle of a reclaim: a
 * successor clears both, or its first allocation would wait forever. */
START_TEST(test_recover_after_a_crash_mid_operation)
{
	const struct pagemem *pages, *frames, *owners;
	struct frame_bytes *fb;
	unsigned long a = alloc_filled(20 * CHUNK), x;
	size_t i, n;
	struct stat sb;

	z3fold_memory(pool, &pages, &frames, &owners);
	ck_assert_int_eq(fstat(pagemem_fd(frames), &sb), 0);
	fb = frames->base;
	n = (size_t)sb.st_size / sizeof(*fb);
	for (i = 0; i < n; i++) {
		fb[i].lock = 1;
		fb[i].flags |= 0x04;	/* FRAME_CLAIMED */
	}
	pool_reborn();
	ck_assert_int_eq(z3fold_recover_ref(pool, a), 20 * CHUNK);
	z3fold_recover_end(pool);
	check_verify();
	for (i = 0; i < 100; i++) {
		x = alloc_filled(CHUNK * (1 + i % 60));
		z3fold_free(pool, x);
	}
	check_pattern(a, 20 * CHUNK);
	z3fold_free(pool, a);
}
END_TEST

/*****************
 * Migration
 *****************/

/* Move the object @h of @size bytes out of an isolated page, as a user
 * does: a new object in a packed page, the bytes and the owner word
 * copied, the old one freed. Returns the new handle, 0 if no page has
 * room. */
static unsigned long migrate(unsigned long h, size_t size)
{
	unsigned long to = 0;
	int ret = z3fold_alloc_packed(pool, size, &to);

	if (ret == -ENOSPC)
		return 0;
	ck_assert_int_eq(ret, 0);
	memcpy(z3fold_map(pool, to), map_once(h), size);
	z3fold_unmap(pool, to);
	z3fold_set_owner(pool, to, z3fold_owner(pool, h));
	z3fold_free(pool, h);
	return to;
}

/* Whether the object @moved holds what @h (of @size bytes) was filled
 * with. */
static void check_moved(unsigned long moved, unsigned long h, size_t size)
{
	const uint8_t *p = z3fold_map(pool, moved);

	ck_assert_ptr_nonnull(p);
	ck_assert_msg(pattern_ok(p, h, size), "object %#lx moved wrong", h);
	z3fold_unmap(pool, moved);
}

/*
 * Isolation takes the sparsest page (never a full one, never a HEADLESS
 * one); its object goes to the fullest page with room; the emptied page
 * is freed by the put-back.
 */
START_TEST(test_isolate_sparsest)
{
	/* page 1: a and b (25 chunks free once t goes); page 2: c alone
	 * (47 free); page 3: headless */
	unsigned long a = alloc_filled(1200), b = alloc_filled(1200);
	unsigned long t = alloc_filled(700);
	unsigned long c = alloc_filled(1000);
	unsigned long g = alloc_filled(PAGE);
	unsigned long handles[3], page, moved;
	struct z3fold_stats st;

	ck_assert_uint_ne(page_of(map_once(c)), page_of(map_once(a)));
	z3fold_free(pool, t);
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 3);
	z3fold_set_owner(pool, c, 0xc0ffee);
	ck_assert_int_eq(z3fold_isolate(pool, handles, &page), 1);
	ck_assert_uint_eq(handles[0], c);
	/* the fullest page with room takes it, never the isolated one */
	moved = migrate(c, 1000);
	ck_assert_uint_ne(moved, 0);
	ck_assert_uint_eq(page_of(map_once(moved)), page_of(map_once(a)));
	ck_assert_uint_eq(z3fold_owner(pool, moved), 0xc0ffee);
	check_moved(moved, c, 1000);
	ck_assert(z3fold_putback(pool, page));
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 2);
	z3fold_get_stats(pool, &st);
	ck_assert_uint_eq(st.migrated_pages, 1);
	check_verify();
	/* page 1 is full now, page 3 headless: nothing to isolate */
	ck_assert_int_eq(z3fold_isolate(pool, handles, &page), -EINVAL);
	check_pattern(a, 1200);
	check_pattern(b, 1200);
	z3fold_free(pool, a);
	z3fold_free(pool, b);
	z3fold_free(pool, moved);
	z3fold_free(pool, g);
}
END_TEST

/*
 * Every placement an isolated page can hold: of three objects, each one
 * freed in turn leaves the two others in their places; both are moved
 * out, into pages with room, and read back intact.
 */
START_TEST(test_migrate_every_placement)
{
	static const size_t sizes[3] = { 600, 500, 700 };
	unsigned long obj[3], handles[3], page, moved, room[2];
	int gone, i, nr, k;

	for (gone = 0; gone < 3; gone++) {
		for (i = 0; i < 3; i++)
			obj[i] = alloc_filled(sizes[i]);
		ck_assert_uint_eq(z3fold_get_pool_size(pool), 1);
		z3fold_free(pool, obj[gone]);
		nr = z3fold_isolate(pool, handles, &page);
		ck_assert_int_eq(nr, 2);
		/* two pages with room, made while the page is isolated:
		 * neither lands there */
		room[0] = alloc_filled(2500);
		room[1] = alloc_filled(2500);
		ck_assert_uint_eq(z3fold_get_pool_size(pool), 3);
		for (k = 0; k < nr; k++) {
			for (i = 0; i < 3 && obj[i] != handles[k]; i++)
				;
			ck_assert_int_lt(i, 3);
			ck_assert_int_ne(i, gone);
			moved = migrate(handles[k], sizes[i]);
			ck_assert_uint_ne(moved, 0);
			check_moved(moved, obj[i], sizes[i]);
			obj[i] = moved;
		}
		ck_assert(z3fold_putback(pool, page));
		ck_assert_uint_eq(z3fold_get_pool_size(pool), 2);
		check_verify();
		for (i = 0; i < 3; i++)
			if (i != gone)
				z3fold_free(pool, obj[i]);
		z3fold_free(pool, room[0]);
		z3fold_free(pool, room[1]);
		ck_assert_uint_eq(z3fold_get_pool_size(pool), 0);
	}
}
END_TEST

/* No other page has room: the object stays, the page goes back on the
 * lists and takes objects again. */
START_TEST(test_putback_when_no_room)
{
	unsigned long a = alloc_filled(3000), b = alloc_filled(3000);
	unsigned long handles[3], page, c;

	ck_assert_int_eq(z3fold_isolate(pool, handles, &page), 1);
	ck_assert_uint_eq(migrate(handles[0], 3000), 0);
	ck_assert(!z3fold_putback(pool, page));
	check_pattern(a, 3000);
	check_pattern(b, 3000);
	check_verify();
	c = alloc_filled(600);
	check_pattern(c, 600);
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 2);
	ck_assert_int_eq(z3fold_alloc_packed(pool, PAGE, &handles[0]),
			 -ENOSPC);
	z3fold_free(pool, a);
	z3fold_free(pool, b);
	z3fold_free(pool, c);
}
END_TEST

/* An object of an isolated page freed meanwhile (its owner let go): the
 * put-back frees the page once the others moved. */
START_TEST(test_free_during_isolation)
{
	unsigned long a = alloc_filled(800), b = alloc_filled(900);
	unsigned long room = alloc_filled(2500);
	unsigned long room2 = alloc_filled(2500);
	unsigned long handles[3], page, moved = 0;
	int nr, k;

	nr = z3fold_isolate(pool, handles, &page);
	ck_assert_int_eq(nr, 2);
	z3fold_free(pool, a);
	for (k = 0; k < nr; k++) {
		if (handles[k] != b)
			continue;
		moved = migrate(b, 900);
		ck_assert_uint_ne(moved, 0);
		check_moved(moved, b, 900);
	}
	ck_assert(z3fold_putback(pool, page));
	ck_assert_uint_eq(z3fold_get_pool_size(pool), 2);
	check_verify();
	z3fold_free(pool, moved);
	z3fold_free(pool, room);
	z3fold_free(pool, room2);
}
END_TEST

/* The suite on pools of @kind, named @name. */
static Suite *z3fold_suite(const char *name, enum pagemem_kind kind)
{
	Suite *s = suite_create(name);
	TCase *tc;

	tc = tcase_create("placement");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_size_limits);
	tcase_add_test(tc, test_three_buddies);
	tcase_add_test(tc, test_best_fit);
	if (kind == PAGEMEM_ANON) {
		tcase_add_test(tc, test_middle_alone_becomes_first);
		tcase_add_test(tc, test_middle_moves_next_to_last);
		tcase_add_test(tc, test_mapped_middle_deferred);
	} else {
		tcase_add_test(tc, test_objects_never_move);
	}
	tcase_add_test(tc, test_invalid_handles);
	tcase_add_test(tc, test_owner_words_every_placement);
	tcase_add_test(tc, test_owner_words_outside_the_pool);
	if (kind == PAGEMEM_ANON)
		tcase_add_test(tc, test_owner_word_follows_a_moved_middle);
	suite_add_tcase(s, tc);

	tc = tcase_create("reclaim");
	tcase_add_checked_fixture(tc, setup_evict, teardown);
	tcase_add_test(tc, test_reclaim_empty);
	tcase_add_test(tc, test_reclaim_lru_tail);
	tcase_add_test(tc, test_reclaim_alloc_refreshes_lru);
	tcase_add_test(tc, test_reclaim_handler_fails);
	tcase_add_test(tc, test_reclaim_retries_next_page);
	tcase_add_test(tc, test_reclaim_concurrent_free);
	tcase_add_test(tc, test_reclaim_handler_must_free);
	suite_add_tcase(s, tc);

	tc = tcase_create("migration");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_isolate_sparsest);
	tcase_add_test(tc, test_migrate_every_placement);
	tcase_add_test(tc, test_putback_when_no_room);
	tcase_add_test(tc, test_free_during_isolation);
	suite_add_tcase(s, tc);

	tc = tcase_create("os");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reclaim_no_handler);
	tcase_add_test(tc, test_pages_return_to_os);
	tcase_add_test(tc, test_alloc_failure_injection);
	suite_add_tcase(s, tc);

	if (kind != PAGEMEM_ANON) {
		tc = tcase_create("file");
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, test_arena_mapped_again);
		suite_add_tcase(s, tc);

		tc = tcase_create("recovery");
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, test_recover_keeps_what_is_named);
		tcase_add_test(tc, test_recover_refuses_stale_handles);
		tcase_add_test(tc, test_recover_after_a_crash_mid_operation);
		tcase_add_test(tc, test_recover_keeps_owner_words);
		tcase_add_test(tc, test_recover_with_a_new_owners_file);
		tcase_add_test(tc, test_image_takes_the_pool_over);
		tcase_add_test(tc, test_image_refused);
		suite_add_tcase(s, tc);
	}

	tc = tcase_create("stress");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_stress_threads);
	tcase_add_test(tc, test_density_real_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	static const struct {
		const char *name;
		enum pagemem_kind kind;
	} runs[] = {
		{ "z3fold", PAGEMEM_ANON },
		{ "z3fold on memfds", PAGEMEM_MEMFD },
	};
	int failed = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(runs); i++) {
		SRunner *sr;

		pool_kind = runs[i].kind;
		sr = srunner_create(z3fold_suite(runs[i].name, runs[i].kind));
		srunner_run_all(sr, CK_ENV);
		failed += srunner_ntests_failed(sr);
		srunner_free(sr);
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
