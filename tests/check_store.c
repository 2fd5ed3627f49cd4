/*
 * check_store.c - unit tests of uzswapd's compressed store and of the
 * page-state layer under it, with no daemon, no region, no event loop:
 * pages go in and out by key (region id, page index), the objects' owner
 * words hand the owner exactly the key each pool object was stored for
 * (and a successor's recovery writes them again, healing a wrong one),
 * and reclaim from the bottom moves objects to a real backing file only
 * when the owner takes the page; retained objects (clean-page retention)
 * are counted apart, and given up, oldest first, before anything is
 * written back.
 *
 * The test plays the owner: a plain page-state table per "region", driven
 * with the same compare-and-swap transitions the daemon uses.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_store
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/pagestate.h"
#include "daemon/store.h"
#include "lib/common/macros.h"

#define NREGIONS 3
#define NPAGES 256

/*
 * The owner's side: a state table per region id (1..NREGIONS), what each
 * take call was asked, and whether it refuses.
 */
static struct {
	struct page_entry pages[NREGIONS + 1][NPAGES];
	unsigned int asked[NREGIONS + 1][NPAGES];
	atomic_ulong calls;
	atomic_ulong written;	/* pages published written back */
	atomic_ulong moved;	/* pages whose object compaction moved */
	bool concurrent;	/* a writer thread takes pages meanwhile */
	int refuse;		/* -errno to refuse every call with, or 0 */
	struct store_key order[NPAGES];	/* the retained copies given up */
	unsigned int given_up;
	uint16_t stamp;			/* the last retention's LRU stamp */
	uint8_t seen[2 * PAGE_SIZE];	/* both copies of a write-back */
} own;

static struct store st;
static struct compressor *comp;
static char dir[] = "/tmp/check_store.XXXXXX";
static char backing_path[64];

static int test_take(void *ctx, struct store_wb *wb)
{
	struct page_entry *p;
	uint32_t info;

	ck_assert_ptr_eq(ctx, &own);
	ck_assert_uint_ge(wb->key.region_id, 1);
	ck_assert_uint_le(wb->key.region_id, NREGIONS);
	ck_assert_uint_lt(wb->key.idx, NPAGES);
	own.calls++;
	own.asked[wb->key.region_id][wb->key.idx]++;
	p = &own.pages[wb->key.region_id][wb->key.idx];
	info = atomic_load(&p->info);
	/* with a writer thread, a page may not be published yet */
	if (own.concurrent && (page_state(info) != PAGE_COMPRESSED ||
			       p->data != wb->handle))
		return -EBUSY;
	/* the key names the page that holds this very object */
	ck_assert_uint_eq(page_state(info), PAGE_COMPRESSED);
	ck_assert_uint_eq(p->data, wb->handle);
	if (own.refuse)
		return own.refuse;
	if (!page_cas(p, &info, page_loading(info))) {
		/* only the dropper thread changes a page meanwhile; busy,
		 * as a real owner says of a page it cannot claim */
		ck_assert(own.concurrent);
		return -EBUSY;
	}
	wb->info = info;
	wb->ref = p;
	return 0;
}

static void test_settle(void *ctx, struct store *s, struct store_wb *wb,
			enum store_settle how)
{
	struct page_entry *p = wb->ref;
	size_t n;

	ck_assert_ptr_eq(ctx, &own);
	ck_assert_ptr_eq(s, &st);
	ck_assert_uint_eq(page_state(atomic_load(&p->info)), PAGE_LOADING);
	if (how == STORE_KEEP) {
		atomic_store(&p->info, wb->info);
		return;
	}
	if (how == STORE_MOVED) {
		/* the new object holds what the old one did, which is still
		 * there until every page names the new one */
		ck_assert(!(wb->data & PAGE_DATA_SLOT));
		ck_assert_uint_ne(wb->data, wb->handle);
		ck_assert_int_eq(store_get(s, comp, wb->info, wb->handle,
					   own.seen), 0);
		ck_assert_int_eq(store_get(s, comp, wb->info, wb->data,
					   own.seen + PAGE_SIZE), 0);
		ck_assert_mem_eq(own.seen, own.seen + PAGE_SIZE, PAGE_SIZE);
		p->data = wb->data;
		atomic_store(&p->info, wb->info);
		own.moved++;
		return;
	}
	/* the object is written; until the entry names the slot, the pool's
	 * copy is what a successor would find: it must still be there */
	ck_assert(wb->data & PAGE_DATA_SLOT);
	ck_assert_int_eq(store_get(s, comp, wb->info, wb->handle, own.seen),
			 0);
	ck_assert_int_eq(store_get(s, comp, (wb->info & ~PAGE_STATE_MASK) |
				   PAGE_WRITTEN_BACK, wb->data,
				   own.seen + PAGE_SIZE), 0);
	ck_assert_mem_eq(own.seen, own.seen + PAGE_SIZE, PAGE_SIZE);
	n = z3fold_object_size(s->pool, wb->handle);
	ck_assert_uint_eq(wb->len, n);
	p->data = wb->data;
	atomic_store(&p->info, (wb->info & ~PAGE_STATE_MASK) |
			       PAGE_WRITTEN_BACK);
	own.written++;
}

/* The owner's give_up: a page still RESIDENT with its retained copy
 * loses the flag, then the copy; any other key is stale (none at all,
 * or a page written since). */
static size_t test_give_up(void *ctx, struct store *s,
			   const struct store_key *key, uint32_t tag)
{
	struct page_entry *p;
	uint32_t info;

	ck_assert_ptr_eq(ctx, &own);
	if (key->region_id < 1 || key->region_id > NREGIONS ||
	    key->idx >= NPAGES)
		return 0;
	p = &own.pages[key->region_id][key->idx];
	info = atomic_load(&p->info);
	if (page_state(info) != PAGE_RESIDENT || !(info & PAGE_RETAINED) ||
	    page_stamp(info) != tag ||
	    !page_cas(p, &info, info & ~PAGE_RETAIN_MASK))
		return 0;
	if (own.given_up < NPAGES)
		own.order[own.given_up] = *key;
	own.given_up++;
	return store_drop_retained(s, key, p->data);
}

/* The store of a test, its pool made of @mem (NULL: anonymous). */
static void setup_on(const struct z3fold_mem *mem)
{
	struct store_owner owner = { .take = test_take, .settle = test_settle,
				     .give_up = test_give_up, .ctx = &own };
	struct backing *b;

	memset(&own, 0, sizeof(own));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(backing_path, sizeof(backing_path), "%s/backing", dir);
	b = backing_open(backing_path, 64u << 20, false);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(store_init(&st, COMPRESS_LZ4, 0, 0, b, &owner, mem), 0);
	comp = compressor_create(COMPRESS_LZ4, 0);
	ck_assert_ptr_nonnull(comp);
}

static void setup(void)
{
	setup_on(NULL);
}

/* A store whose pool is on memfds, as a successor can take it over. */
static void setup_memfds(void)
{
	const struct z3fold_mem mem = {
		{ PAGEMEM_MEMFD, -1 }, { PAGEMEM_MEMFD, -1 },
		{ PAGEMEM_MEMFD, -1 },
	};

	setup_on(&mem);
}

static void teardown(void)
{
	compressor_destroy(comp);
	store_destroy(&st);
	/* a backing file taken over is emptied, not removed, at close */
	unlink(backing_path);
	rmdir(dir);
	strcpy(dir, "/tmp/check_store.XXXXXX");
}

/* What fills a page: text-like (very compressible; a true @noise is
 * NOISE), noise (incompressible), or MIXED: its first NOISE_PART bytes
 * noise, the rest text, about 1.25 KiB compressed (three objects fill a
 * pool page), the same for the same index in every region. */
#define NOISE 1
#define MIXED 2
#define NOISE_PART 1000

/* Page @idx of region @rid, filled as @noise says. */
static void fill(uint8_t *page, uint64_t rid, size_t idx, int noise)
{
	uint64_t x = (noise == MIXED ? 0 : rid * 1000003u) + idx + 1;
	size_t i;

	for (i = 0; i < PAGE_SIZE; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		page[i] = noise == NOISE || (noise == MIXED && i < NOISE_PART) ?
				  (uint8_t)x :
				  (uint8_t)('a' + (i / 64 + idx) % 26);
	}
}

/* Store page (@rid, @idx) as the evictor would; returns the put's value. */
static int put(uint64_t rid, size_t idx, int noise)
{
	struct page_entry *p = &own.pages[rid][idx];
	struct store_key key = { rid, (uint32_t)idx };
	uint8_t page[PAGE_SIZE];
	uint32_t flags;
	uint64_t data;
	int ret;

	fill(page, rid, idx, noise);
	ret = store_put(&st, comp, page, &key, &flags, &data);
	if (ret >= 0) {
		p->data = data;
		atomic_store(&p->info, flags);
	}
	return ret;
}

/* The page stored for (@rid, @idx) reads back as it was filled. */
static void check_page(uint64_t rid, size_t idx, int noise)
{
	struct page_entry *p = &own.pages[rid][idx];
	uint8_t want[PAGE_SIZE], got[PAGE_SIZE];

	fill(want, rid, idx, noise);
	ck_assert_int_eq(store_get(&st, comp, atomic_load(&p->info), p->data,
				   got), 0);
	ck_assert_mem_eq(got, want, PAGE_SIZE);
}

static void drop(uint64_t rid, size_t idx)
{
	struct page_entry *p = &own.pages[rid][idx];
	struct store_key key = { rid, (uint32_t)idx };

	store_drop(&st, &key, atomic_load(&p->info), p->data);
	atomic_store(&p->info, page_info(PAGE_NEW, 0, 0));
}

/* Page (@rid, @idx), stored, is loaded back keeping its copy, as
 * load.c's loaded() does: counted, published with a new LRU stamp,
 * queued with it. */
static void retain(uint64_t rid, size_t idx)
{
	struct page_entry *p = &own.pages[rid][idx];
	struct store_key key = { rid, (uint32_t)idx };
	uint32_t info = atomic_load(&p->info);
	uint16_t stamp = ++own.stamp;

	ck_assert_uint_eq(page_state(info), PAGE_COMPRESSED);
	store_retain(&st, info, p->data);
	atomic_store(&p->info, page_retain(info, 0, stamp));
	store_queue_retained(&st, &key, stamp);
}

/* Every page dropped: the store holds none, in the pool or written back
 * (the slots queued for release released). */
static void check_store_empty(void)
{
	struct store_stats ss;

	store_flush_frees(&st);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.written_back + ss.compressed + ss.raw, 0);
}

START_TEST(test_page_cas)
{
	struct page_entry p = { 0 };
	uint32_t old = page_info(PAGE_RESIDENT, 0, 0);

	ck_assert_uint_eq(sizeof(p), 16);
	/* a CAS from a state the page is not in fails and says what it is */
	ck_assert(!page_cas(&p, &old, page_info(PAGE_EVICTING, 0, 0)));
	ck_assert_uint_eq(page_state(old), PAGE_NEW);
	ck_assert(page_cas(&p, &old,
			   page_info(PAGE_RESIDENT, PAGE_ACTIVE, 0xbeef)));
	old = atomic_load(&p.info);
	ck_assert_uint_eq(page_state(old), PAGE_RESIDENT);
	ck_assert_uint_eq(page_stamp(old), 0xbeef);
	ck_assert_uint_eq(old & PAGE_ACTIVE, PAGE_ACTIVE);
	ck_assert(!page_is_stored(PAGE_NEW));
	ck_assert(!page_is_stored(PAGE_RESIDENT));
	ck_assert(!page_is_stored(PAGE_EVICTING));
	ck_assert(!page_is_stored(PAGE_LOADING));
	ck_assert(page_is_stored(PAGE_COMPRESSED));
	ck_assert(page_is_stored(PAGE_SAME));
	ck_assert(page_is_stored(PAGE_WRITTEN_BACK));
}
END_TEST

/* LOADING says what it was taken from, flags and stamp included, so that a
 * successor knows what the entry's data names. */
START_TEST(test_loading_keeps_its_origin)
{
	static const unsigned int stable[] = {
		PAGE_COMPRESSED, PAGE_SAME, PAGE_WRITTEN_BACK,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(stable); i++) {
		uint32_t info = page_info(stable[i], PAGE_ZSTD | PAGE_ACTIVE,
					  0x1234);
		uint32_t l = page_loading(info | PAGE_UNPUNCHED);

		ck_assert_uint_eq(page_state(l), PAGE_LOADING);
		ck_assert_uint_eq(page_stamp(l), 0x1234);
		ck_assert_uint_eq(page_loaded_from(l), info);
	}
}
END_TEST

START_TEST(test_put_get_drop)
{
	struct store_key key = { 1, 0 };
	uint8_t page[PAGE_SIZE];
	struct store_stats ss;
	uint32_t flags;
	uint64_t data;

	memset(page, 0x5a, sizeof(page));
	ck_assert_int_eq(store_put(&st, comp, page, &key, &flags, &data), 0);
	ck_assert_uint_eq(flags, PAGE_SAME);
	ck_assert_uint_eq(data, 0x5a5a5a5a5a5a5a5aull);
	ck_assert_int_gt(put(1, 1, false), 0);
	ck_assert_uint_eq(page_state(own.pages[1][1].info), PAGE_COMPRESSED);
	ck_assert_int_eq(put(2, 7, true), PAGE_SIZE);
	ck_assert_uint_eq(own.pages[2][7].info, PAGE_COMPRESSED | PAGE_RAW);
	check_page(1, 1, false);
	check_page(2, 7, true);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.same, 1);
	ck_assert_uint_eq(ss.compressed, 1);
	ck_assert_uint_eq(ss.raw, 1);
	drop(1, 1);
	drop(2, 7);
	store_drop(&st, &(struct store_key){ 9, 9 }, PAGE_SAME, data);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.compressed + ss.raw + ss.same, 0);
	ck_assert_uint_eq(ss.payload_bytes, 0);
	ck_assert_uint_eq(ss.pool_bytes, 0);
}
END_TEST

/* A page that keeps its copy is RESIDENT, keeps its LRU stamp and flags,
 * and says what its copy is; taking the retention away leaves the page
 * as it would be without it. */
START_TEST(test_retained_names_its_copy)
{
	uint32_t stored = page_info(PAGE_COMPRESSED, PAGE_ZSTD, 0);
	uint32_t info = page_retain(stored, PAGE_ACTIVE, 0x4242);

	ck_assert_uint_eq(page_state(info), PAGE_RESIDENT);
	ck_assert_uint_eq(page_stamp(info), 0x4242);
	ck_assert(info & PAGE_RETAINED);
	ck_assert_uint_eq(page_retained_copy(info), stored);
	ck_assert_uint_eq(page_retained_copy(info | PAGE_RAW),
			  stored | PAGE_RAW);
	ck_assert_uint_eq(info & ~PAGE_RETAIN_MASK,
			  page_info(PAGE_RESIDENT, PAGE_ACTIVE, 0x4242));
	ck_assert(!page_is_stored(page_state(info)));
}
END_TEST

/* A retained object leaves the stored counters for the retained ones and
 * stays readable; stored again, it moves back; given up, it is freed. */
START_TEST(test_retain_moves_counters)
{
	struct page_entry *p = &own.pages[1][1];
	uint8_t want[PAGE_SIZE], got[PAGE_SIZE];
	struct store_stats ss;
	uint32_t info;
	int n = put(1, 1, false);

	ck_assert_int_gt(n, 0);
	retain(1, 1);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.compressed, 0);
	ck_assert_uint_eq(ss.payload_bytes, 0);
	ck_assert_uint_eq(ss.retained, 1);
	ck_assert_uint_eq(ss.retained_bytes, (uint64_t)n);
	ck_assert_uint_gt(ss.pool_bytes, 0);
	info = atomic_load(&p->info);
	fill(want, 1, 1, false);
	ck_assert_int_eq(store_get(&st, comp, page_retained_copy(info),
				   p->data, got), 0);
	ck_assert_mem_eq(got, want, PAGE_SIZE);

	/* evicted unchanged: the copy is the stored page again */
	ck_assert_uint_eq(store_restore_retained(&st, page_retained_copy(info),
						 p->data), (size_t)n);
	atomic_store(&p->info, page_retained_copy(info));
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.compressed, 1);
	ck_assert_uint_eq(ss.payload_bytes, (uint64_t)n);
	ck_assert_uint_eq(ss.retained + ss.retained_bytes, 0);
	check_page(1, 1, false);

	/* kept again, then given up for room */
	retain(1, 1);
	ck_assert_uint_eq(store_give_up_retained(&st, 1), 1);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.retained + ss.retained_bytes, 0);
	ck_assert_uint_eq(ss.retain_given_up, 1);
	ck_assert_uint_eq(ss.pool_bytes, 0);
	ck_assert_uint_eq(atomic_load(&p->info),
			  page_info(PAGE_RESIDENT, 0, own.stamp));
}
END_TEST

/* Retained copies are given up oldest first; a stale entry (the page was
 * written since, or evicted and retained anew) is skipped; a pool already
 * under the mark gives up nothing. */
START_TEST(test_give_up_oldest_first)
{
	static const uint32_t order[] = { 0, 1, 2, 4, 6, 7, 8, 9, 5 };
	struct page_entry *p = &own.pages[1][3];
	struct store_stats ss;
	uint32_t info;
	size_t i;

	for (i = 0; i < 10; i++) {
		ck_assert_int_gt(put(1, i, false), 0);
		retain(1, i);
	}
	/* page 3 is written: the WP fault takes the flag, then the copy */
	info = atomic_load(&p->info);
	atomic_store(&p->info, info & ~PAGE_RETAIN_MASK);
	store_drop_retained(&st, &(struct store_key){ 1, 3 }, p->data);
	/* page 5 is evicted unchanged (its object stored again), then
	 * retained anew, the same object with another stamp: its first
	 * entry is stale, its second is the one */
	p = &own.pages[1][5];
	info = atomic_load(&p->info);
	store_restore_retained(&st, page_retained_copy(info), p->data);
	atomic_store(&p->info, page_retained_copy(info));
	retain(1, 5);

	store_get_stats(&st, &ss);
	ck_assert_uint_eq(store_give_up_retained(&st, ss.pool_bytes + 1), 0);
	ck_assert_uint_eq(own.given_up, 0);
	ck_assert_uint_eq(store_give_up_retained(&st, 1), 9);
	ck_assert_uint_eq(own.given_up, 9);
	for (i = 0; i < 9; i++)
		ck_assert_uint_eq(own.order[i].idx, order[i]);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.retained, 0);
	ck_assert_uint_eq(ss.pool_bytes, 0);
	/* nothing left queued */
	ck_assert_uint_eq(store_give_up_retained(&st, 1), 0);
}
END_TEST

/* The queue holds STORE_RETAIN_RING keys: one more forgets the oldest
 * without giving it up (an entry that old may name, by its 16-bit stamp,
 * a retention made since); the copy stays retained (write-back gives up
 * such a copy when it meets it: check_registry). */
START_TEST(test_full_queue_forgets_oldest)
{
	struct store_key stale = { NREGIONS, NPAGES + 1 };
	struct store_stats ss;
	size_t i;

	ck_assert_int_gt(put(1, 0, false), 0);
	retain(1, 0);
	for (i = 0; i < STORE_RETAIN_RING; i++)
		store_queue_retained(&st, &stale, 0);
	ck_assert_uint_eq(own.given_up, 0);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.retained, 1);
	ck_assert_uint_eq(ss.retain_given_up, 0);
	ck_assert(atomic_load(&own.pages[1][0].info) & PAGE_RETAINED);
	/* what the ring names now is stale: nothing to give up */
	ck_assert_uint_eq(store_give_up_retained(&st, 1), 0);
	ck_assert_uint_eq(own.given_up, 0);
	ck_assert(atomic_load(&own.pages[1][0].info) & PAGE_RETAINED);
}
END_TEST

/* A full pool whose objects are retained copies: reclaim gives them up
 * and writes nothing back (the owner is never asked to take a page). */
START_TEST(test_reclaim_gives_up_retained_first)
{
	struct store_stats ss;
	size_t i, n = 0;

	store_set_pool_limit(&st, 64 * PAGE_SIZE);
	for (i = 0; i < NPAGES && put(1, i, true) >= 0; i++)
		n++;
	store_get_stats(&st, &ss);
	ck_assert(ss.full);
	for (i = 0; i < n; i++)
		retain(1, i);
	ck_assert(store_reclaim(&st));
	store_get_stats(&st, &ss);
	ck_assert(!ss.full);
	ck_assert_uint_gt(ss.retain_given_up, 0);
	ck_assert_uint_eq(ss.writebacks, 0);
	ck_assert_uint_eq(own.calls, 0);
	ck_assert_uint_lt(ss.pool_bytes, 64 * PAGE_SIZE / 100 *
					 STORE_POOL_LOW_PCT);
	/* the pages given up are resident and keep no copy; the rest do */
	for (i = 0; i < n; i++) {
		uint32_t info = atomic_load(&own.pages[1][i].info);

		ck_assert_uint_eq(page_state(info), PAGE_RESIDENT);
		if (info & PAGE_RETAINED)
			store_drop_retained(&st, &(struct store_key){ 1, i },
					    own.pages[1][i].data);
	}
}
END_TEST

/* Fill the pool past a small limit with pages of every region. */
static void fill_pool_over_limit(void)
{
	uint64_t rid;
	size_t i;

	store_set_pool_limit(&st, 64 * PAGE_SIZE);
	for (i = 0; i < NPAGES; i++)
		for (rid = 1; rid <= NREGIONS; rid++)
			if (put(rid, i, i % 5 == 0) < 0)
				return;
}

START_TEST(test_reclaim_asks_the_owner_by_key)
{
	struct store_stats ss;
	unsigned long wb = 0;
	uint64_t rid;
	size_t i;

	fill_pool_over_limit();
	store_get_stats(&st, &ss);
	ck_assert(ss.full);
	ck_assert(store_reclaim(&st));
	store_get_stats(&st, &ss);
	ck_assert(!ss.full);
	ck_assert_uint_lt(ss.pool_bytes, 64 * PAGE_SIZE);
	ck_assert_uint_gt(own.calls, 0);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++) {
			/* each object asked for once, for its own page */
			ck_assert_uint_le(own.asked[rid][i], 1);
			if (page_state(own.pages[rid][i].info) ==
			    PAGE_WRITTEN_BACK)
				wb++;
		}
	ck_assert_uint_eq(wb, own.calls);
	ck_assert_uint_eq(ss.written_back, wb);
	ck_assert_uint_eq(own.written, wb);
	/* in batches of many objects, one write each, by this "evictor" */
	ck_assert_uint_gt(ss.wb_batches, 0);
	ck_assert_uint_ge(ss.writebacks, 8 * ss.wb_batches);
	ck_assert_uint_eq(ss.wb_direct_batches, ss.wb_batches);
	ck_assert_uint_gt(ss.wb_bytes, 0);
	/* every page, in the pool or written back, reads back intact */
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			if (page_is_stored(page_state(own.pages[rid][i].info))) {
				check_page(rid, i, i % 5 == 0);
				drop(rid, i);
			}
	check_store_empty();
}
END_TEST

START_TEST(test_reclaim_refused_keeps_objects)
{
	struct store_stats before, after;
	uint64_t rid;
	size_t i;

	fill_pool_over_limit();
	own.refuse = -EBUSY;
	store_get_stats(&st, &before);
	ck_assert(!store_reclaim(&st));
	store_get_stats(&st, &after);
	ck_assert_uint_gt(own.calls, 0);
	ck_assert(after.full);
	ck_assert_uint_eq(after.written_back, 0);
	ck_assert_uint_eq(after.payload_bytes, before.payload_bytes);
	ck_assert_uint_eq(after.compressed + after.raw,
			  before.compressed + before.raw);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			if (page_is_stored(page_state(own.pages[rid][i].info))) {
				ck_assert_uint_eq(
					page_state(own.pages[rid][i].info),
					PAGE_COMPRESSED);
				check_page(rid, i, i % 5 == 0);
				drop(rid, i);
			}
}
END_TEST

START_TEST(test_dropped_objects_leave_the_rmap)
{
	struct store_stats ss;
	uint64_t rid;
	size_t i;

	fill_pool_over_limit();
	/* drop every page of region 2: reclaim must never ask for one */
	for (i = 0; i < NPAGES; i++)
		if (page_is_stored(page_state(own.pages[2][i].info)))
			drop(2, i);
	store_set_pool_limit(&st, 8 * PAGE_SIZE);
	ck_assert(store_reclaim(&st));
	for (i = 0; i < NPAGES; i++)
		ck_assert_uint_eq(own.asked[2][i], 0);
	ck_assert_uint_gt(own.calls, 0);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			if (page_is_stored(page_state(own.pages[rid][i].info)))
				drop(rid, i);
	store_flush_frees(&st);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.payload_bytes, 0);
}
END_TEST

/*
 * The writer thread runs ahead of the evictors: pages are stored into a
 * pool limited to 64 pages, and each time the pool reaches the writer's
 * high mark the "evictor" only waits (bounded) for the writer to bring it
 * under its low mark. The pool never fills: no page is refused, no
 * evictor reclaims, and every page reads back.
 */
START_TEST(test_writer_runs_ahead)
{
	const uint64_t limit = 64 * PAGE_SIZE;
	struct store_stats ss;
	long long waited;
	uint64_t rid;
	size_t i;

	own.concurrent = true;
	store_set_pool_limit(&st, limit);
	ck_assert_int_eq(store_writer_start(&st), 0);
	for (i = 0; i < NPAGES; i++)
		for (rid = 1; rid <= NREGIONS; rid++) {
			ck_assert_int_ge(put(rid, i, i % 5 == 0), 0);
			store_get_stats(&st, &ss);
			for (waited = 0; ss.pool_bytes >= limit / 100 *
			     STORE_WB_HIGH_PCT && waited < 10000; waited++) {
				usleep(1000);
				store_get_stats(&st, &ss);
			}
			ck_assert_uint_lt(ss.pool_bytes,
					  limit / 100 * STORE_WB_HIGH_PCT);
		}
	store_writer_stop(&st);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.failures, 0);
	ck_assert_uint_eq(ss.full_events, 0);
	ck_assert_uint_eq(ss.wb_direct_batches, 0);
	ck_assert_uint_gt(ss.wb_wakeups, 0);
	ck_assert_uint_gt(ss.wb_batches, 0);
	ck_assert_uint_eq(ss.written_back, own.written);
	ck_assert_uint_gt(ss.written_back, NREGIONS * NPAGES / 2);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++) {
			check_page(rid, i, i % 5 == 0);
			drop(rid, i);
		}
	check_store_empty();
}
END_TEST

/*
 * The store of a daemon that died, taken over by its successor as uzswapd
 * does: a store made on its pool's files and its backing file, each
 * stored page named to it. The old store's memory is dropped, its files
 * kept.
 */
static void store_reborn(void)
{
	const struct pagemem *pages, *frames, *owners;
	struct store_owner owner = { .take = test_take, .settle = test_settle,
				     .give_up = test_give_up, .ctx = &own };
	struct z3fold_mem mem;
	struct backing *b;
	uint64_t rid;
	size_t i;
	int fd[3];

	z3fold_memory(st.pool, &pages, &frames, &owners);
	fd[0] = dup(pagemem_fd(pages));
	fd[1] = dup(pagemem_fd(frames));
	fd[2] = dup(pagemem_fd(owners));
	ck_assert(fd[0] >= 0 && fd[1] >= 0 && fd[2] >= 0);
	store_hand_over(&st);
	store_destroy(&st);
	b = backing_open(backing_path, 64u << 20, true);
	ck_assert_ptr_nonnull(b);
	mem = (struct z3fold_mem){ { PAGEMEM_FILE, fd[0] },
				   { PAGEMEM_FILE, fd[1] },
				   { PAGEMEM_FILE, fd[2] } };
	ck_assert_int_eq(store_init(&st, COMPRESS_LZ4, 0, 0, b, &owner, &mem),
			 0);
	for (i = 0; i < ARRAY_SIZE(fd); i++)
		close(fd[i]);
	ck_assert_int_eq(store_recover_begin(&st), 0);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++) {
			struct page_entry *p = &own.pages[rid][i];
			struct store_key key = { rid, (uint32_t)i };

			if (page_is_stored(page_state(p->info)))
				ck_assert_int_ge(store_recover_ref(&st,
					atomic_load(&p->info), p->data, &key),
					0);
		}
	store_recover_end(&st);
}

/*
 * A successor's recovery writes each pooled object's owner word again: the
 * words of the dead store's objects were made wrong (another page's key,
 * or garbage), and yet reclaim from the bottom asks the owner for each
 * object with the key of its own page (test_take() checks it).
 */
START_TEST(test_recovery_heals_owner_words)
{
	struct store_stats ss;
	uint64_t rid, wrong;
	size_t i;

	for (i = 0; i < NPAGES; i++)
		for (rid = 1; rid <= NREGIONS; rid++)
			ck_assert_int_gt(put(rid, i, i % 5 == 0), 0);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++) {
			/* the page of the same index in the next region */
			wrong = (rid % NREGIONS + 1) << 32 | i;
			z3fold_set_owner(st.pool, own.pages[rid][i].data,
					 i % 2 ? wrong : ~0ull);
		}
	store_reborn();
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.compressed + ss.raw, NREGIONS * NPAGES);
	store_set_pool_limit(&st, 64 * PAGE_SIZE);
	ck_assert(store_reclaim(&st));
	ck_assert_uint_gt(own.calls, 0);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.written_back, own.calls);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++) {
			ck_assert_uint_le(own.asked[rid][i], 1);
			check_page(rid, i, i % 5 == 0);
			drop(rid, i);
		}
	check_store_empty();
}
END_TEST

/*****************
 * Deduplication
 *****************/

/* Text pages (noise off) depend on their index only, and repeat every
 * 26: these many distinct ones among NPAGES. */
#define TEXT_KINDS 26

static void dedup_on(void)
{
	store_set_dedup(&st, true, DEDUP_MAX_SHARING_DEFAULT);
}

/* Regions 1 and 2 hold the same text pages, region 3 noise. */
static void put_twins(void)
{
	uint64_t rid;
	size_t i;

	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			ck_assert_int_gt(put(rid, i, rid == 3), 0);
}

static void drop_all_and_check(void)
{
	struct store_stats ss;
	uint64_t rid;
	size_t i;

	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			if (page_is_stored(page_state(own.pages[rid][i].info))) {
				check_page(rid, i, rid == 3);
				drop(rid, i);
			}
	check_store_empty();
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.payload_bytes, 0);
	ck_assert_uint_eq(ss.pool_bytes, 0);
	ck_assert_uint_eq(ss.dedup.nodes, 0);
	ck_assert_uint_eq(ss.dedup.pages_sharing, 0);
}

/*
 * Equal pages, in one region or across regions, name one object: the
 * pool holds each content once, counted once; each page reads back its
 * own; a page letting go leaves the others theirs.
 */
START_TEST(test_dedup_shares_equal_pages)
{
	struct store_stats ss;
	size_t i, distinct = 0;

	dedup_on();
	put_twins();
	for (i = 0; i < NPAGES; i++) {
		ck_assert_uint_eq(own.pages[2][i].data, own.pages[1][i].data);
		ck_assert_uint_eq(own.pages[1][i].data,
				  own.pages[1][i % TEXT_KINDS].data);
	}
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.compressed + ss.raw, NREGIONS * NPAGES);
	ck_assert_uint_eq(ss.dedup.pages_shared, TEXT_KINDS);
	ck_assert_uint_eq(ss.dedup.pages_sharing, 2 * NPAGES - TEXT_KINDS);
	ck_assert_uint_eq(ss.dedup.merged, 2 * NPAGES - TEXT_KINDS);
	ck_assert_uint_eq(ss.dedup.nodes, TEXT_KINDS + NPAGES);
	/* the pool's bytes: each distinct object once */
	for (i = 0; i < NPAGES; i++)
		distinct += z3fold_object_size(st.pool, own.pages[3][i].data) +
			    (i < TEXT_KINDS ?
			     z3fold_object_size(st.pool, own.pages[1][i].data) :
			     0);
	ck_assert_uint_eq(ss.payload_bytes, distinct);
	ck_assert_uint_gt(ss.dedup.bytes_saved, 0);
	/* region 1 goes: region 2 keeps every page */
	for (i = 0; i < NPAGES; i++)
		drop(1, i);
	for (i = 0; i < NPAGES; i++)
		check_page(2, i, false);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.dedup.pages_sharing, NPAGES - TEXT_KINDS);
	drop_all_and_check();
}
END_TEST

static uint64_t same_hash(const void *page, size_t len, uint64_t seed)
{
	(void)page;
	(void)len;
	(void)seed;
	return 42;
}

/* Every page hashes alike (a forged collision): pages of other content
 * are never shared, whatever their hash says. */
START_TEST(test_dedup_collision_never_shares)
{
	struct store_stats ss;
	size_t i, j;

	dedup_on();
	st.hash = same_hash;
	put_twins();
	for (i = 0; i < NPAGES; i++)
		for (j = 0; j < i; j++)
			ck_assert_uint_ne(own.pages[3][i].data,
					  own.pages[3][j].data);
	store_get_stats(&st, &ss);
	ck_assert_uint_gt(ss.dedup.collisions, 0);
	drop_all_and_check();
}
END_TEST

/*
 * Reclaim writes a shared object back once, with every page naming it:
 * all of them name the same slot, each asked for once, and read back.
 */
START_TEST(test_dedup_write_back_once)
{
	struct store_stats ss;
	struct backing_stats bs;
	uint64_t rid;
	size_t i, wb = 0;

	dedup_on();
	put_twins();
	store_set_pool_limit(&st, 16 * PAGE_SIZE);
	ck_assert(store_reclaim(&st));
	store_get_stats(&st, &ss);
	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++) {
			const struct page_entry *p = &own.pages[rid][i];

			ck_assert_uint_le(own.asked[rid][i], 1);
			if (page_state(p->info) != PAGE_WRITTEN_BACK)
				continue;
			wb++;
			if (rid == 2)
				ck_assert_uint_eq(p->data,
						  own.pages[1][i].data);
		}
	ck_assert_uint_gt(wb, 2 * TEXT_KINDS);
	ck_assert_uint_eq(ss.written_back, wb);
	backing_get_stats(st.backing, &bs);
	ck_assert_uint_lt(bs.objects, wb);
	drop_all_and_check();
}
END_TEST

/* A shared object one of whose pages is busy stays in the pool, every
 * page of it as it was. */
START_TEST(test_dedup_busy_page_keeps_object)
{
	struct page_entry *busy = &own.pages[2][5];
	uint64_t rid;
	uint32_t info;
	size_t i;

	dedup_on();
	put_twins();
	info = atomic_load(&busy->info);
	own.concurrent = true;
	atomic_store(&busy->info, page_loading(info));
	store_set_pool_limit(&st, 16 * PAGE_SIZE);
	store_reclaim(&st);
	for (rid = 1; rid <= 2; rid++)
		for (i = 5; i < NPAGES; i += TEXT_KINDS)
			ck_assert_uint_ne(page_state(own.pages[rid][i].info),
					  PAGE_WRITTEN_BACK);
	atomic_store(&busy->info, info);
	drop_all_and_check();
}
END_TEST

/* A page loaded back keeping a shared object: the object stays counted
 * as stored while a stored page names it, retained once only retained
 * copies do, and goes with the last. */
START_TEST(test_dedup_retained_shared)
{
	struct store_stats ss, shared;
	size_t n;

	dedup_on();
	ck_assert_int_gt(put(1, 0, false), 0);
	n = (size_t)put(2, 0, false);
	store_get_stats(&st, &shared);
	retain(1, 0);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.retained, 1);
	ck_assert_uint_eq(ss.compressed, 1);
	ck_assert_uint_eq(ss.payload_bytes, shared.payload_bytes);
	ck_assert_uint_eq(ss.retained_bytes, 0);
	drop(2, 0);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.payload_bytes, 0);
	ck_assert_uint_eq(ss.retained_bytes, n);
	store_drop_retained(&st, &(struct store_key){ 1, 0 },
			    own.pages[1][0].data);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.retained + ss.retained_bytes, 0);
	ck_assert_uint_eq(ss.pool_bytes, 0);
}
END_TEST

/* A successor's recovery makes the sharing again from the pages'
 * records: each object counted once, freed with its last page. */
START_TEST(test_dedup_recovered)
{
	struct store_stats before, after;

	dedup_on();
	put_twins();
	store_get_stats(&st, &before);
	store_reborn();
	store_get_stats(&st, &after);
	ck_assert_uint_eq(after.compressed + after.raw, NREGIONS * NPAGES);
	ck_assert_uint_eq(after.payload_bytes, before.payload_bytes);
	ck_assert_uint_eq(after.dedup.pages_sharing,
			  before.dedup.pages_sharing);
	ck_assert_uint_eq(after.dedup.nodes, TEXT_KINDS);
	drop_all_and_check();
}
END_TEST

/*****************
 * Compaction
 *****************/

/* Every region's pages MIXED, then two of every three dropped from
 * regions @from..NREGIONS: the pool keeps its pages, a third full. */
static void fragment(uint64_t from)
{
	uint64_t rid;
	size_t i;

	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			ck_assert_int_gt(put(rid, i, MIXED), 0);
	for (rid = from; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			if (i % 3)
				drop(rid, i);
}

/* store_compact() until it says there is nothing more to gain: the pool
 * pages it freed. */
static unsigned int compact_all(void)
{
	unsigned int freed = 0, calls;

	for (calls = 0; !store_compact(&st, 16, &freed); calls++)
		ck_assert_uint_lt(calls, NREGIONS * NPAGES / 16);
	return freed;
}

/* Every page still stored reads back, then goes: the store is empty. */
static void check_and_drop_all(void)
{
	uint64_t rid;
	size_t i;

	for (rid = 1; rid <= NREGIONS; rid++)
		for (i = 0; i < NPAGES; i++)
			if (page_is_stored(page_state(own.pages[rid][i].info))) {
				check_page(rid, i, MIXED);
				drop(rid, i);
			}
	check_store_empty();
}

/*
 * A pool two thirds of whose objects were freed compacts: the objects of
 * its sparsest pages move into fuller ones, the pages emptied are freed
 * (as many as it says), the pool ends within 1.15 times its objects'
 * bytes, every page reads back, and each object's owner word still
 * names its page (reclaim asks for every moved object by its key).
 */
START_TEST(test_compact_packs_the_pool)
{
	struct store_stats before, after;
	unsigned int freed;

	fragment(1);
	store_get_stats(&st, &before);
	ck_assert_uint_gt(before.pool_bytes, 2 * before.payload_bytes);
	freed = compact_all();
	store_get_stats(&st, &after);
	printf("compaction: pool %" PRIu64 " -> %" PRIu64 " bytes for %"
	       PRIu64 " of objects, %u pages freed, %" PRIu64 " moved\n",
	       before.pool_bytes, after.pool_bytes, after.payload_bytes,
	       freed, after.migrated);
	ck_assert_uint_gt(freed, 0);
	ck_assert_uint_eq(before.pool_bytes - after.pool_bytes,
			  (uint64_t)freed * PAGE_SIZE);
	ck_assert_uint_eq(after.compacted_pages, freed);
	ck_assert_uint_le(after.pool_bytes * 100, after.payload_bytes * 115);
	ck_assert_uint_eq(after.migrated, own.moved);
	ck_assert_uint_eq(after.payload_bytes, before.payload_bytes);
	/* the owner words moved with the objects */
	store_set_pool_limit(&st, after.pool_bytes / 2);
	ck_assert(store_reclaim(&st));
	ck_assert_uint_gt(own.calls, 0);
	check_and_drop_all();
}
END_TEST

/* A shared object moves with every page naming it: both name the new
 * copy, which is still shared, and freed with the last of them. */
START_TEST(test_compact_shared_objects)
{
	struct store_stats ss;
	size_t i;

	dedup_on();
	fragment(1);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.dedup.pages_shared, (NPAGES + 2) / 3);
	ck_assert_uint_gt(compact_all(), 0);
	ck_assert_uint_gt(own.moved, 0);
	for (i = 0; i < NPAGES; i += 3) {
		ck_assert_uint_eq(own.pages[2][i].data, own.pages[1][i].data);
		ck_assert_uint_eq(own.pages[3][i].data, own.pages[1][i].data);
	}
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.dedup.pages_shared, (NPAGES + 2) / 3);
	ck_assert_uint_eq(ss.dedup.pages_sharing, 2 * ((NPAGES + 2) / 3));
	check_and_drop_all();
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.dedup.nodes, 0);
}
END_TEST

/* A page busy (a fault has it) keeps its object where it is; its pool
 * page is put back, and the rest compacts. */
START_TEST(test_compact_busy_page_stays)
{
	struct page_entry *busy = &own.pages[1][3];
	uint64_t data;
	uint32_t info;

	fragment(1);
	own.concurrent = true;
	info = atomic_load(&busy->info);
	data = busy->data;
	atomic_store(&busy->info, page_loading(info));
	ck_assert_uint_gt(compact_all(), 0);
	ck_assert_uint_eq(busy->data, data);
	atomic_store(&busy->info, info);
	check_and_drop_all();
}
END_TEST

/* struct dropper - a thread that lets pages go while the pool compacts,
 * as faults would: each taken (COMPRESSED -> LOADING), dropped, NEW */
struct dropper {
	pthread_t tid;
	atomic_bool stop;
	unsigned long dropped;
};

static void *dropper_main(void *arg)
{
	struct dropper *d = arg;
	uint64_t x = 88172645463325252ull;

	while (!atomic_load(&d->stop)) {
		uint64_t rid = 1 + (x % NREGIONS);
		size_t idx = (size_t)(x >> 8) % NPAGES;
		struct page_entry *p = &own.pages[rid][idx];
		struct store_key key = { rid, (uint32_t)idx };
		uint32_t info = atomic_load(&p->info);

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (page_state(info) != PAGE_COMPRESSED || idx % 6 ||
		    !page_cas(p, &info, page_loading(info)))
			continue;
		store_drop(&st, &key, info, p->data);
		atomic_store(&p->info, page_info(PAGE_NEW, 0, 0));
		d->dropped++;
	}
	return NULL;
}

/* Frees during migration: pages let go while their objects, or their
 * neighbours, are moved; what stays reads back. */
START_TEST(test_compact_concurrent_frees)
{
	struct dropper d = { .stop = false };
	struct store_stats ss;

	fragment(1);
	own.concurrent = true;
	ck_assert_int_eq(pthread_create(&d.tid, NULL, dropper_main, &d), 0);
	compact_all();
	atomic_store(&d.stop, true);
	pthread_join(d.tid, NULL);
	store_get_stats(&st, &ss);
	printf("concurrent frees: %lu pages dropped, %" PRIu64
	       " objects moved\n", d.dropped, ss.migrated);
	ck_assert_uint_gt(ss.migrated, 0);
	check_and_drop_all();
}
END_TEST

/* The writer compacts a loose pool by itself, down under its ratio. */
START_TEST(test_compact_in_background)
{
	struct store_stats ss;
	int waited;

	store_set_compact_ratio(&st, STORE_COMPACT_PCT);
	ck_assert_int_eq(store_writer_start(&st), 0);
	fragment(1);
	for (waited = 0; waited < 3000; waited++) {
		store_get_stats(&st, &ss);
		if (ss.compact_runs &&
		    ss.pool_bytes * 100 <= ss.payload_bytes * STORE_COMPACT_PCT)
			break;
		usleep(1000);
	}
	store_writer_stop(&st);
	ck_assert_uint_gt(ss.compact_runs, 0);
	ck_assert_uint_le(ss.pool_bytes * 100,
			  ss.payload_bytes * STORE_COMPACT_PCT);
	check_and_drop_all();
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *ps = tcase_create("pagestate");
	TCase *tc = tcase_create("store");

	tcase_add_test(ps, test_page_cas);
	tcase_add_test(ps, test_loading_keeps_its_origin);
	tcase_add_test(ps, test_retained_names_its_copy);
	suite_add_tcase(s, ps);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_put_get_drop);
	tcase_add_test(tc, test_reclaim_asks_the_owner_by_key);
	tcase_add_test(tc, test_reclaim_refused_keeps_objects);
	tcase_add_test(tc, test_dropped_objects_leave_the_rmap);
	tcase_add_test(tc, test_writer_runs_ahead);
	tcase_add_test(tc, test_retain_moves_counters);
	tcase_add_test(tc, test_give_up_oldest_first);
	tcase_add_test(tc, test_full_queue_forgets_oldest);
	tcase_add_test(tc, test_reclaim_gives_up_retained_first);
	tcase_add_test(tc, test_dedup_shares_equal_pages);
	tcase_add_test(tc, test_dedup_collision_never_shares);
	tcase_add_test(tc, test_dedup_write_back_once);
	tcase_add_test(tc, test_dedup_busy_page_keeps_object);
	tcase_add_test(tc, test_dedup_retained_shared);
	tcase_add_test(tc, test_compact_packs_the_pool);
	tcase_add_test(tc, test_compact_shared_objects);
	tcase_add_test(tc, test_compact_busy_page_stays);
	tcase_add_test(tc, test_compact_concurrent_frees);
	tcase_add_test(tc, test_compact_in_background);
	suite_add_tcase(s, tc);
	tc = tcase_create("recovery");
	tcase_add_checked_fixture(tc, setup_memfds, teardown);
	tcase_add_test(tc, test_recovery_heals_owner_words);
	tcase_add_test(tc, test_dedup_recovered);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
