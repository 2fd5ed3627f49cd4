/*
 * check_dedup.c - unit tests of the stable index of stored objects
 * (daemon/dedup.c), alone: objects are plain numbers, pages plain keys.
 * What is checked: insert, lookup and erase through both indexes;
 * refcounts through every way a page lets go (a put, a retained copy's
 * put, a pin released last); chains of dups past max_page_sharing and
 * the first node's place handed to a dup; freezing for write-back and
 * migration; the bytes each node counts, and where; recovery's repeats;
 * the image at rest; growth past the first buckets; no memory.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dedup.h"
#include "lib/common/failpoint.h"

static struct dedup d;
static atomic_uint_fast64_t payload, retained;

static void setup(void)
{
	atomic_store(&payload, 0);
	atomic_store(&retained, 0);
	ck_assert_int_eq(dedup_init(&d, &payload, &retained), 0);
}

static void teardown(void)
{
	dedup_destroy(&d);
}

static struct dedup_stats stats(void)
{
	struct dedup_stats st;

	dedup_get_stats(&d, &st);
	return st;
}

/* Object @data (@size bytes) of page @key, hash @hash, a new chain. */
static void insert(uint64_t hash, uint64_t data, size_t size, uint64_t key)
{
	ck_assert_int_eq(dedup_insert(&d, &hash, data, PAGE_ZSTD, size, key,
				      NULL), 0);
}

/* Page @key finds the chain of @hash full and stores its copy @data as
 * a dup. */
static void add_dup(uint64_t hash, uint64_t data, uint64_t key)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };

	ck_assert(dedup_lookup(&d, hash, &m));
	ck_assert_int_eq(dedup_join(&d, &m, key), -ENOSPC);
	ck_assert_int_eq(dedup_insert(&d, &hash, data, 0, 300, key, &m), 0);
	ck_assert(!dedup_unpin(&d, &m, false));
}

/* Page @key finds the object of @hash and joins it: which one. */
static uint64_t join(uint64_t hash, uint64_t key)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };

	ck_assert(dedup_lookup(&d, hash, &m));
	ck_assert_int_eq(dedup_join(&d, &m, key), 0);
	return m.data;
}

START_TEST(test_insert_lookup_erase)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };
	struct dedup_stats st;

	insert(0xabc, 100, 1000, 1);
	ck_assert_uint_eq(atomic_load(&payload), 1000);
	ck_assert(dedup_lookup(&d, 0xabc, &m));
	ck_assert_uint_eq(m.data, 100);
	ck_assert_uint_eq(m.flags, PAGE_ZSTD);
	ck_assert_uint_eq(m.size, 1000);
	ck_assert_int_eq(dedup_join(&d, &m, 2), 0);
	ck_assert_uint_eq(m.data, 100);
	/* another hash finds nothing */
	m.node = DEDUP_NO_NODE;
	ck_assert(!dedup_lookup(&d, 0xabd, &m));
	st = stats();
	ck_assert_uint_eq(st.nodes, 1);
	ck_assert_uint_eq(st.pages_shared, 1);
	ck_assert_uint_eq(st.pages_sharing, 1);
	ck_assert_uint_eq(st.bytes_saved, 1000);
	ck_assert_uint_eq(st.merged, 1);
	/* the object counts once, whatever names it */
	ck_assert_uint_eq(atomic_load(&payload), 1000);
	/* a page that never named it changes nothing */
	ck_assert_int_eq(dedup_put(&d, 100, 9, false), DEDUP_KEPT);
	ck_assert_int_eq(dedup_put(&d, 100, 1, false), DEDUP_KEPT);
	ck_assert_uint_eq(stats().pages_shared, 0);
	ck_assert_uint_eq(atomic_load(&payload), 1000);
	ck_assert_int_eq(dedup_put(&d, 100, 2, false), DEDUP_LAST);
	ck_assert_uint_eq(atomic_load(&payload), 0);
	ck_assert_uint_eq(stats().nodes, 0);
	m.node = DEDUP_NO_NODE;
	ck_assert(!dedup_lookup(&d, 0xabc, &m));
	/* an object with no node is the caller's alone */
	ck_assert_int_eq(dedup_put(&d, 100, 2, false), DEDUP_NONE);
}
END_TEST

/* Equal hashes of different content: every node of the hash is offered,
 * one after the other. */
START_TEST(test_lookup_walks_a_hash)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };
	uint64_t seen = 0;

	insert(7, 10, 100, 1);
	insert(7, 20, 100, 2);
	insert(7, 30, 100, 3);
	while (dedup_lookup(&d, 7, &m)) {
		seen |= 1ull << (m.data / 10);
		ck_assert(!dedup_unpin(&d, &m, true));
	}
	ck_assert_uint_eq(seen, 0xe);
	ck_assert_uint_eq(stats().collisions, 3);
}
END_TEST

/* A pin holds an object no page names any more; its release frees it. */
START_TEST(test_pin_outlives_pages)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };

	insert(5, 50, 500, 1);
	ck_assert(dedup_lookup(&d, 5, &m));
	ck_assert_int_eq(dedup_put(&d, 50, 1, false), DEDUP_KEPT);
	ck_assert_uint_eq(atomic_load(&payload), 500);
	ck_assert(dedup_unpin(&d, &m, false));
	ck_assert_uint_eq(atomic_load(&payload), 0);
	ck_assert_uint_eq(stats().nodes, 0);
	/* or a page joins it again before the pin goes */
	insert(5, 51, 500, 1);
	m.node = DEDUP_NO_NODE;
	ck_assert(dedup_lookup(&d, 5, &m));
	ck_assert_int_eq(dedup_put(&d, 51, 1, false), DEDUP_KEPT);
	ck_assert_int_eq(dedup_join(&d, &m, 2), 0);
	ck_assert_int_eq(dedup_put(&d, 51, 2, false), DEDUP_LAST);
}
END_TEST

/*
 * Past max_page_sharing a node takes no more: the next page makes a dup
 * in the chain, and later pages join whichever node has room. When the
 * first node goes, its first dup takes its place in the index.
 */
START_TEST(test_chain_of_dups)
{
	struct dedup_stats st;
	uint64_t key;

	dedup_set_max_sharing(&d, 2);
	insert(9, 90, 300, 1);
	ck_assert_uint_eq(join(9, 2), 90);
	/* full: a dup */
	add_dup(9, 91, 3);
	st = stats();
	ck_assert_uint_eq(st.chains, 1);
	ck_assert_uint_eq(st.dups, 1);
	ck_assert_uint_eq(join(9, 4), 91);
	/* both full: a second dup */
	add_dup(9, 92, 5);
	st = stats();
	ck_assert_uint_eq(st.dups, 2);
	ck_assert_uint_eq(st.pages_shared, 2);
	ck_assert_uint_eq(st.pages_sharing, 2);
	/* no reverse map is longer than the limit */
	ck_assert_uint_le(dedup_refs(&d, 90), 2);
	ck_assert_uint_le(dedup_refs(&d, 91), 2);
	/* the first node goes: a dup is first, the chain still serves */
	ck_assert_int_eq(dedup_put(&d, 90, 1, false), DEDUP_KEPT);
	ck_assert_int_eq(dedup_put(&d, 90, 2, false), DEDUP_LAST);
	st = stats();
	ck_assert_uint_eq(st.chains, 1);
	ck_assert_uint_eq(st.dups, 1);
	ck_assert_uint_eq(join(9, 6), 92);
	/* a dup goes from the middle */
	ck_assert_int_eq(dedup_put(&d, 92, 5, false), DEDUP_KEPT);
	ck_assert_int_eq(dedup_put(&d, 92, 6, false), DEDUP_LAST);
	st = stats();
	ck_assert_uint_eq(st.chains, 0);
	ck_assert_uint_eq(st.dups, 0);
	for (key = 3; key <= 4; key++)
		ck_assert_int_ne(dedup_put(&d, 91, key, false), DEDUP_NONE);
	ck_assert_uint_eq(stats().nodes, 0);
	ck_assert_uint_eq(atomic_load(&payload), 0);
}
END_TEST

/* A frozen node takes no page and cannot be found; a pinned one cannot be
 * frozen; written back, it names its slot and is never matched again. */
START_TEST(test_freeze_and_move)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };
	uint64_t *keys = NULL, slot = PAGE_DATA_SLOT | 77;
	size_t cap = 0;

	insert(3, 30, 600, 1);
	ck_assert_uint_eq(join(3, 2), 30);
	ck_assert(dedup_lookup(&d, 3, &m));
	ck_assert_int_eq(dedup_freeze(&d, 30, &keys, &cap), -EBUSY);
	ck_assert(!dedup_unpin(&d, &m, false));
	ck_assert_int_eq(dedup_freeze(&d, 30, &keys, &cap), 2);
	ck_assert(keys[0] + keys[1] == 3 && keys[0] * keys[1] == 2);
	ck_assert_int_eq(dedup_freeze(&d, 30, &keys, &cap), -EBUSY);
	m.node = DEDUP_NO_NODE;
	ck_assert(!dedup_lookup(&d, 3, &m));
	/* no node: nothing to freeze */
	ck_assert_int_eq(dedup_freeze(&d, 31, &keys, &cap), 0);
	/* thawed, it is found again */
	dedup_thaw(&d, 30);
	ck_assert(dedup_lookup(&d, 3, &m));
	ck_assert(!dedup_unpin(&d, &m, false));
	/* moved to another object (migration): found by that */
	ck_assert_int_eq(dedup_freeze(&d, 30, &keys, &cap), 2);
	dedup_move(&d, 30, 32, false);
	ck_assert_uint_eq(dedup_refs(&d, 30), 0);
	ck_assert_uint_eq(dedup_refs(&d, 32), 2);
	ck_assert_uint_eq(atomic_load(&payload), 600);
	/* written back: out of the pool's bytes and out of the hash index */
	ck_assert_int_eq(dedup_freeze(&d, 32, &keys, &cap), 2);
	dedup_move(&d, 32, slot, true);
	ck_assert_uint_eq(atomic_load(&payload), 0);
	ck_assert_uint_eq(stats().bytes_saved, 0);
	ck_assert_uint_eq(stats().pages_sharing, 1);
	m.node = DEDUP_NO_NODE;
	ck_assert(!dedup_lookup(&d, 3, &m));
	ck_assert_int_eq(dedup_put(&d, slot, 1, false), DEDUP_KEPT);
	ck_assert_int_eq(dedup_put(&d, slot, 2, false), DEDUP_LAST);
	free(keys);
}
END_TEST

/* A node's bytes are retained while every page naming it kept it as a
 * retained copy, payload otherwise. */
START_TEST(test_bytes_follow_retention)
{
	insert(4, 40, 800, 1);
	ck_assert(dedup_retain(&d, 40, 1));
	ck_assert_uint_eq(atomic_load(&payload), 0);
	ck_assert_uint_eq(atomic_load(&retained), 800);
	/* a stored page joins: payload again */
	ck_assert_uint_eq(join(4, 2), 40);
	ck_assert_uint_eq(atomic_load(&payload), 800);
	ck_assert_uint_eq(atomic_load(&retained), 0);
	/* the stored page lets go: the retained copy is all that is left */
	ck_assert_int_eq(dedup_put(&d, 40, 2, false), DEDUP_KEPT);
	ck_assert_uint_eq(atomic_load(&retained), 800);
	/* evicted unchanged: stored again */
	ck_assert(dedup_retain(&d, 40, -1));
	ck_assert_uint_eq(atomic_load(&payload), 800);
	ck_assert(dedup_retain(&d, 40, 1));
	ck_assert_int_eq(dedup_put(&d, 40, 1, true), DEDUP_LAST);
	ck_assert_uint_eq(atomic_load(&payload) + atomic_load(&retained), 0);
	/* an object with no node: the store's to count */
	ck_assert(!dedup_retain(&d, 41, 1));
}
END_TEST

/* Recovery: the first page of an object makes a node (no hash), the
 * others join it; nodes one page names are dropped at the end, their
 * bytes left where they are. */
START_TEST(test_recovery_repeats)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };
	size_t size = 0;

	ck_assert_int_eq(dedup_recover_repeat(&d, 60, 1, &size), 0);
	ck_assert_int_eq(dedup_insert(&d, NULL, 60, 0, 700, 1, NULL), 0);
	ck_assert_int_eq(dedup_recover_repeat(&d, 60, 2, &size), 1);
	ck_assert_uint_eq(size, 700);
	ck_assert_int_eq(dedup_recover_repeat(&d, 61, 3, &size), 0);
	ck_assert_int_eq(dedup_insert(&d, NULL, 61, 0, 100, 3, NULL), 0);
	dedup_recover_end(&d);
	ck_assert_uint_eq(stats().nodes, 1);
	/* what was dropped is gone from the image too */
	ck_assert_uint_eq(dedup_image_size(&d), 32 + 24 + 2 * 8);
	ck_assert_uint_eq(stats().pages_sharing, 1);
	ck_assert_uint_eq(atomic_load(&payload), 800);
	/* no hash: never matched */
	ck_assert(!dedup_lookup(&d, 0, &m));
	ck_assert_int_eq(dedup_put(&d, 61, 3, false), DEDUP_NONE);
	ck_assert_int_eq(dedup_put(&d, 60, 2, false), DEDUP_KEPT);
	ck_assert_int_eq(dedup_put(&d, 60, 1, false), DEDUP_LAST);
}
END_TEST

/* The image at rest gives a successor the same index: the same counts,
 * the same chains, every page's reference. */
START_TEST(test_image_round_trip)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };
	struct dedup_stats before, after;
	uint64_t seed = 0, key;
	const char *why;
	size_t len;
	void *buf;

	dedup_set_max_sharing(&d, 3);
	insert(1, 10, 100, 1);
	for (key = 2; key <= 3; key++)
		join(1, key);
	add_dup(1, 11, 4);
	insert(2, 20, 200, 5);
	ck_assert(dedup_retain(&d, 20, 1));
	ck_assert_int_eq(dedup_insert(&d, NULL, PAGE_DATA_SLOT | 5, 0, 300, 6,
				      NULL), 0);
	before = stats();
	len = dedup_image_size(&d);
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	dedup_save_image(&d, 0x5eed, buf);
	dedup_destroy(&d);
	setup();
	dedup_set_max_sharing(&d, 3);
	/* a torn image is refused and leaves the index empty */
	ck_assert_int_eq(dedup_load_image(&d, buf, len - 8, &seed, &why),
			 -EINVAL);
	ck_assert_ptr_nonnull(why);
	ck_assert_uint_eq(stats().nodes, 0);
	ck_assert_int_eq(dedup_load_image(&d, buf, len, &seed, &why), 0);
	free(buf);
	ck_assert_uint_eq(seed, 0x5eed);
	after = stats();
	ck_assert_uint_eq(after.nodes, before.nodes);
	ck_assert_uint_eq(after.pages_shared, before.pages_shared);
	ck_assert_uint_eq(after.pages_sharing, before.pages_sharing);
	ck_assert_uint_eq(after.bytes_saved, before.bytes_saved);
	ck_assert_uint_eq(after.chains, 1);
	ck_assert_uint_eq(after.dups, 1);
	/* the chain still serves, full as it was */
	m.node = DEDUP_NO_NODE;
	ck_assert(dedup_lookup(&d, 1, &m));
	ck_assert_uint_eq(m.data, 10);
	ck_assert_int_eq(dedup_join(&d, &m, 7), 0);
	ck_assert_uint_eq(m.data, 11);
	/* every page lets go of what it named */
	for (key = 1; key <= 3; key++)
		ck_assert_int_ne(dedup_put(&d, 10, key, false), DEDUP_NONE);
	ck_assert_int_eq(dedup_put(&d, 11, 4, false), DEDUP_KEPT);
	ck_assert_int_eq(dedup_put(&d, 11, 7, false), DEDUP_LAST);
	ck_assert_int_eq(dedup_put(&d, 20, 5, true), DEDUP_LAST);
	ck_assert_int_eq(dedup_put(&d, PAGE_DATA_SLOT | 5, 6, false),
			 DEDUP_LAST);
	ck_assert_uint_eq(stats().nodes, 0);
}
END_TEST

/* Many more nodes than the first buckets: all found, all erased. */
START_TEST(test_growth)
{
	const uint64_t n = 20000;
	uint64_t i;

	for (i = 0; i < n; i++)
		insert(i * 0x9e3779b97f4a7c15ull, 1000 + i, 64, i);
	for (i = 0; i < n; i += 2)
		ck_assert_uint_eq(join(i * 0x9e3779b97f4a7c15ull, n + i),
				  1000 + i);
	ck_assert_uint_eq(stats().pages_shared, n / 2);
	ck_assert_uint_gt(stats().meta_bytes, n * 48);
	for (i = 0; i < n; i++) {
		if (i % 2 == 0)
			ck_assert_int_eq(dedup_put(&d, 1000 + i, n + i,
						   false), DEDUP_KEPT);
		ck_assert_int_eq(dedup_put(&d, 1000 + i, i, false),
				 DEDUP_LAST);
	}
	ck_assert_uint_eq(stats().nodes, 0);
	ck_assert_uint_eq(atomic_load(&payload), 0);
}
END_TEST

/* No memory for a node or a reverse-map record: the insert or the join
 * fails, and nothing changed. */
START_TEST(test_no_memory)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };
	uint64_t hash = 8;

	failpoint_arm(1);
	ck_assert_int_eq(dedup_insert(&d, &hash, 80, 0, 100, 1, NULL),
			 -ENOMEM);
	failpoint_arm(0);
	ck_assert_uint_eq(stats().nodes, 0);
	ck_assert_uint_eq(atomic_load(&payload), 0);
	insert(8, 80, 100, 1);
	ck_assert(dedup_lookup(&d, 8, &m));
	failpoint_arm(1);
	ck_assert_int_eq(dedup_join(&d, &m, 2), -EBUSY);
	failpoint_arm(0);
	ck_assert_uint_eq(dedup_refs(&d, 80), 1);
	ck_assert_int_eq(dedup_put(&d, 80, 1, false), DEDUP_LAST);
}
END_TEST

static Suite *dedup_suite(void)
{
	Suite *s = suite_create("dedup");
	TCase *tc = tcase_create("index");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_insert_lookup_erase);
	tcase_add_test(tc, test_lookup_walks_a_hash);
	tcase_add_test(tc, test_pin_outlives_pages);
	tcase_add_test(tc, test_chain_of_dups);
	tcase_add_test(tc, test_freeze_and_move);
	tcase_add_test(tc, test_bytes_follow_retention);
	tcase_add_test(tc, test_recovery_repeats);
	tcase_add_test(tc, test_image_round_trip);
	tcase_add_test(tc, test_growth);
	tcase_add_test(tc, test_no_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(dedup_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
