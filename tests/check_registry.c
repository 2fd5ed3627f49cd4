/*
 * check_registry.c - unit tests of uzswapd's client registry: the mm_slot
 * hash keyed by pid, the scan list and its round-robin cursor, each
 * slot's ordered, non-overlapping region list, and the region index by id
 * (and the store owner's lookup through it, which refuses stale keys).
 * The tests that make regions run again on page-state tables that are
 * memfds, where a walk over a huge untouched region must leave its table
 * without data (reading a hole of a shared file mapping allocates it).
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_registry
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/evict.h"
#include "daemon/load.h"
#include "daemon/registry.h"
#include "daemon/store.h"

static struct registry reg;
static struct region_index ix;

static void setup(void)
{
	registry_init(&reg);
	region_index_init(&ix);
}

static void setup_memfd_tables(void)
{
	setup();
	ix.tables = PAGEMEM_MEMFD;
}

static void teardown(void)
{
	unsigned int i;

	ck_assert_uint_eq(reg.nr_slots, 0);
	registry_destroy(&reg);
	for (i = 0; i < 1u << REGION_INDEX_BITS; i++)
		ck_assert_ptr_null(ix.buckets[i]);
	ck_assert_uint_eq(region_index_resident(&ix), 0);
	region_index_destroy(&ix);
}

static struct mm_slot *add(pid_t pid)
{
	struct mm_slot *s = mm_slot_alloc(pid, 1000);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(registry_insert(&reg, s), 0);
	return s;
}

static void drop(struct mm_slot *s)
{
	registry_remove(&reg, s);
	mm_slot_put(s);
}

START_TEST(test_hash_find)
{
	enum { N = 5000 };
	static struct mm_slot *slots[N];
	static pid_t pids[N];
	struct mm_slot *s, *dup;
	int i;

	/* pids that collide in a 1024-bucket table, and plain ones */
	for (i = 0; i < N; i++) {
		pids[i] = i < N / 2 ? 1024 * (i + 1) : 10000000 + i;
		slots[i] = add(pids[i]);
	}
	ck_assert_uint_eq(reg.nr_slots, N);
	for (i = 0; i < N; i++) {
		s = registry_find(&reg, slots[i]->pid);
		ck_assert_ptr_eq(s, slots[i]);
		mm_slot_put(s);
	}
	ck_assert_ptr_null(registry_find(&reg, 3));
	dup = mm_slot_alloc(slots[7]->pid, 0);
	ck_assert_int_eq(registry_insert(&reg, dup), -EEXIST);
	mm_slot_put(dup);

	for (i = 0; i < N; i += 2)
		drop(slots[i]);
	for (i = 0; i < N; i++) {
		s = registry_find(&reg, pids[i]);
		ck_assert(i % 2 ? s == slots[i] : s == NULL);
		if (s)
			mm_slot_put(s);
	}
	for (i = 1; i < N; i += 2)
		drop(slots[i]);
}
END_TEST

START_TEST(test_scan_round_robin)
{
	struct mm_slot *a = add(11), *b = add(22), *c = add(33), *s;
	pid_t order[6];
	int i;

	for (i = 0; i < 6; i++) {
		s = registry_scan_next(&reg);
		order[i] = s->pid;
		ck_assert_ptr_eq(reg.scan.mm_slot, s);
		ck_assert_uint_eq(reg.scan.address, 0);
		mm_slot_put(s);
	}
	ck_assert_int_eq(order[0], 11);
	ck_assert_int_eq(order[1], 22);
	ck_assert_int_eq(order[2], 33);
	ck_assert_int_eq(order[3], 11);
	ck_assert_int_eq(order[5], 33);

	/* removing the slot under the cursor moves it to the next one */
	s = registry_scan_next(&reg);		/* 11 */
	mm_slot_put(s);
	reg.scan.address = 0x7000;
	drop(a);
	ck_assert_ptr_eq(reg.scan.mm_slot, b);
	ck_assert_uint_eq(reg.scan.address, 0);
	s = registry_scan_next(&reg);
	ck_assert_ptr_eq(s, c);
	mm_slot_put(s);
	/* removing the last slot under the cursor wraps to the start */
	drop(c);
	ck_assert_ptr_null(reg.scan.mm_slot);
	s = registry_scan_next(&reg);
	ck_assert_ptr_eq(s, b);
	mm_slot_put(s);
	drop(b);
	ck_assert_ptr_null(registry_scan_next(&reg));
}
END_TEST

/* A region over a throwaway memfd; @start and @npages in pages. */
static struct region *mkregion(struct mm_slot *s, unsigned long start,
			       size_t npages)
{
	int fd = memfd_create("r", MFD_CLOEXEC);
	struct region *r;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(npages << PAGE_SHIFT)), 0);
	r = region_create(&ix, s, NULL, NULL, start << PAGE_SHIFT, npages, fd,
			  "t");
	ck_assert_ptr_nonnull(r);
	return r;
}

START_TEST(test_regions)
{
	struct mm_slot *s = add(77);
	struct region *a = mkregion(s, 100, 10), *b = mkregion(s, 10, 5);
	struct region *overlap = mkregion(s, 105, 20), *r;

	ck_assert_int_eq(mm_slot_add_region(s, a), 0);
	ck_assert_int_eq(mm_slot_add_region(s, b), 0);
	ck_assert_int_eq(mm_slot_add_region(s, overlap), -EEXIST);
	region_put(overlap);
	ck_assert_uint_eq(s->nr_regions, 2);
	ck_assert_uint_eq(s->registered, 15 << PAGE_SHIFT);
	/* ordered by address */
	ck_assert_ptr_eq(container_of(s->regions.next, struct region, node),
			 b);

	r = mm_slot_find_region(s, (109ul << PAGE_SHIFT) + 5);
	ck_assert_ptr_eq(r, a);
	region_put(r);
	ck_assert_ptr_null(mm_slot_find_region(s, 110ul << PAGE_SHIFT));
	ck_assert_ptr_null(mm_slot_find_region(s, 9ul << PAGE_SHIFT));

	ck_assert_ptr_null(mm_slot_take_region(s, 101ul << PAGE_SHIFT, NULL));
	r = mm_slot_take_region(s, 100ul << PAGE_SHIFT, NULL);
	ck_assert_ptr_eq(r, a);
	region_put(r);
	r = mm_slot_take_region(s, REGION_ANY_START, NULL);
	ck_assert_ptr_eq(r, b);
	region_put(r);
	ck_assert_uint_eq(s->nr_regions, 0);
	ck_assert_uint_eq(s->registered, 0);
	drop(s);
}
END_TEST

static unsigned int state_of(struct region *r, size_t i)
{
	return page_state(atomic_load(&r->pages[i].info));
}

START_TEST(test_region_resident_pages)
{
	struct mm_slot *s = add(88);
	int fd = memfd_create("r", MFD_CLOEXEC);
	char byte = 1;
	struct region *r;

	/* data in pages 2 and 5..6; the rest are holes */
	ck_assert_int_eq(ftruncate(fd, 8 << PAGE_SHIFT), 0);
	ck_assert_int_eq(pwrite(fd, &byte, 1, 2 << PAGE_SHIFT), 1);
	ck_assert_int_eq(pwrite(fd, &byte, 1, (5 << PAGE_SHIFT) + 9), 1);
	ck_assert_int_eq(pwrite(fd, &byte, 1, (6 << PAGE_SHIFT) + 4095), 1);
	r = region_create(&ix, s, NULL, NULL, 1ul << 30, 8, fd, "adopted");
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(atomic_load(&r->resident), 3);
	ck_assert_uint_eq(state_of(r, 0), PAGE_NEW);
	ck_assert_uint_eq(state_of(r, 2), PAGE_RESIDENT);
	ck_assert_uint_eq(state_of(r, 3), PAGE_NEW);
	ck_assert_uint_eq(state_of(r, 5), PAGE_RESIDENT);
	ck_assert_uint_eq(state_of(r, 6), PAGE_RESIDENT);
	ck_assert_uint_eq(state_of(r, 7), PAGE_NEW);
	region_put(r);
	drop(s);
}
END_TEST

/* Bytes of memory the file behind @r's table holds. */
static size_t table_bytes(struct region *r)
{
	struct stat st;

	ck_assert_int_eq(fstat(pagemem_fd(&r->table), &st), 0);
	return (size_t)st.st_blocks * 512;
}

#define HUGE_PAGES	(4ul << 20)	/* a 16 GiB region */
#define HUGE_LAST	(HUGE_PAGES - 1)

/*
 * A 16 GiB region of @s in @st never touched but for its last page, which
 * was evicted as a same-filled page: a table with one page of entries.
 */
static struct region *huge_region(struct mm_slot *s, struct store *st)
{
	static const uint8_t zeros[PAGE_SIZE];
	struct store_owner owner = { .ctx = NULL };
	int fd = memfd_create("huge", MFD_CLOEXEC);
	struct store_key key;
	struct region *r;
	uint64_t data;
	uint32_t flags;
	size_t span;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(HUGE_PAGES << PAGE_SHIFT)), 0);
	ck_assert_int_eq(store_init(st, COMPRESS_LZ4, 0, 0, NULL, &owner, NULL), 0);
	r = region_create(&ix, s, NULL, st, 1ul << 40, HUGE_PAGES, fd, "huge");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_ge(pagemem_fd(&r->table), 0);
	ck_assert_uint_eq(table_bytes(r), 0);
	/* nothing written: no entry to read anywhere */
	ck_assert_uint_eq(region_seek_entry(r, 0, HUGE_PAGES, &span),
			  HUGE_PAGES);

	key = (struct store_key){ r->id, (uint32_t)HUGE_LAST };
	ck_assert_int_eq(store_put(st, NULL, zeros, &key, &flags, &data), 0);
	r->pages[HUGE_LAST].data = data;
	atomic_store(&r->pages[HUGE_LAST].info, page_info(flags, 0, 0));
	atomic_store(&r->stored, 1);
	ck_assert_uint_eq(table_bytes(r), PAGE_SIZE);
	ck_assert_uint_eq(region_seek_entry(r, 0, HUGE_PAGES, &span),
			  HUGE_LAST & ~(PAGE_SIZE / sizeof(*r->pages) - 1));
	ck_assert_uint_eq(span, HUGE_PAGES);
	return r;
}

/* After a walk over all of @r: its last page went to @state, nothing is
 * stored, and its table still holds only the one page of entries; then
 * @r, @st and @s go. */
static void huge_region_walked(struct mm_slot *s, struct store *st,
			       struct region *r, unsigned int state)
{
	ck_assert_uint_eq(state_of(r, HUGE_LAST), state);
	ck_assert_uint_eq(atomic_load(&r->stored), 0);
	ck_assert_msg(table_bytes(r) == PAGE_SIZE, "walk made %zu table bytes",
		      table_bytes(r));
	region_put(r);
	store_destroy(st);
	drop(s);
}

/* Dropping the stored pages of a huge region walks all of it, and reads
 * only the one page of its memfd table that holds an entry. */
START_TEST(test_drop_keeps_table_sparse)
{
	struct mm_slot *s = add(66);
	struct store st;
	struct region *r = huge_region(s, &st);

	region_drop_stored(r, 0, HUGE_PAGES);
	huge_region_walked(s, &st, r, PAGE_NEW);
}
END_TEST

/* So does restoring them into the region's memfd. */
START_TEST(test_restore_keeps_table_sparse)
{
	static uint8_t buf[PAGE_SIZE];
	struct mm_slot *s = add(67);
	struct store st;
	struct region *r = huge_region(s, &st);
	struct load_ctx lc = { NULL, buf };

	ck_assert_int_eq(load_region_restore(r, 0, HUGE_PAGES, &lc), 0);
	huge_region_walked(s, &st, r, PAGE_RESIDENT);
}
END_TEST

START_TEST(test_region_index)
{
	enum { N = 3 * (1 << REGION_INDEX_BITS) };	/* chains of 3 */
	static struct region *rs[N];
	static uint64_t ids[N];
	struct mm_slot *s = add(99);
	struct region *r;
	int i;

	for (i = 0; i < N; i++) {
		rs[i] = mkregion(s, 16ul * (unsigned long)i, 1);
		ids[i] = rs[i]->id;
		ck_assert_uint_eq(ids[i], i ? ids[i - 1] + 1 : ids[0]);
	}
	for (i = 0; i < N; i++) {
		r = region_index_get(&ix, rs[i]->id);
		ck_assert_ptr_eq(r, rs[i]);
		ck_assert_uint_eq(atomic_load(&r->refs), 2);
		region_put(r);
	}
	ck_assert_ptr_null(region_index_get(&ix, rs[N - 1]->id + 1));
	/* a region whose last reference is going is not handed out */
	atomic_store(&rs[1]->refs, 0);
	ck_assert_ptr_null(region_index_get(&ix, rs[1]->id));
	atomic_store(&rs[1]->refs, 1);
	/* freed regions leave the index; the others stay found */
	for (i = 0; i < N; i += 2)
		region_put(rs[i]);
	for (i = 0; i < N; i++) {
		r = region_index_get(&ix, ids[i]);
		ck_assert_ptr_eq(r, i % 2 ? rs[i] : NULL);
		if (r)
			region_put(r);
	}
	for (i = 1; i < N; i += 2)
		region_put(rs[i]);
	drop(s);
}
END_TEST

START_TEST(test_verify_mapping)
{
	size_t len = 4 << PAGE_SHIFT;
	int fd = memfd_create("v", MFD_CLOEXEC), other;
	void *p, *anon;

	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	ck_assert_int_eq(region_verify_mapping(getpid(), (unsigned long)p,
					       len, fd), 0);
	/* a shorter range of the same mapping is fine, a longer one not */
	ck_assert_int_eq(region_verify_mapping(getpid(), (unsigned long)p,
					       len / 2, fd), 0);
	ck_assert_int_eq(region_verify_mapping(getpid(), (unsigned long)p,
					       len * 2, fd), -EPERM);
	/* another memfd is not what is mapped there */
	other = memfd_create("o", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(other, (off_t)len), 0);
	ck_assert_int_eq(region_verify_mapping(getpid(), (unsigned long)p,
					       len, other), -EPERM);
	/* private anonymous memory is not a managed region */
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_int_eq(region_verify_mapping(getpid(), (unsigned long)anon,
					       len, fd), -EPERM);
	munmap(anon, len);
	munmap(p, len);
	close(other);
	close(fd);
}
END_TEST

/* The store's owner takes a page by the key of an object's owner word,
 * which may be stale: a region that is gone, an index past the region's
 * end (refused before any entry is read) and a page that does not hold
 * the handle are all refused. */
START_TEST(test_write_back_refuses_a_stale_key)
{
	struct mm_slot *s = add(55);
	struct region *r = mkregion(s, 0, 8);
	struct store_wb wb = { .key = { r->id, 8 }, .handle = 0x40001 };

	ck_assert_int_eq(evict_wb_take(&ix, &wb), -ENOENT);
	wb.key.idx = UINT32_MAX;
	ck_assert_int_eq(evict_wb_take(&ix, &wb), -ENOENT);
	wb.key.idx = 7;
	ck_assert_int_eq(evict_wb_take(&ix, &wb), -EBUSY);
	wb.key.region_id = r->id + 1000;
	ck_assert_int_eq(evict_wb_take(&ix, &wb), -ENOENT);
	region_put(r);
	drop(s);
}
END_TEST

/* Page @idx of @r stored from a text page, then loaded back keeping its
 * copy, as load.c's loaded() does. */
static void stored_then_retained(struct region *r, struct compressor *c,
				 size_t idx)
{
	struct store_key key = { r->id, (uint32_t)idx };
	struct page_entry *p = &r->pages[idx];
	uint8_t page[PAGE_SIZE];
	uint32_t flags;
	uint64_t data;

	memset(page, 'a' + (int)idx, sizeof(page));
	page[7] = 'z';
	ck_assert_int_gt(store_put(r->store, c, page, &key, &flags, &data), 0);
	p->data = data;
	store_retain(r->store, flags, data);
	atomic_fetch_add(&r->retained, 1);
	atomic_store(&p->info, page_retain(flags, 0, 0));
	store_queue_retained(r->store, &key, 0);
}

/* A retained copy is never written back: the owner gives it up instead
 * (-EALREADY) and the page stays RESIDENT without it; the queue gives up
 * the others; the region's last reference frees what is left. */
START_TEST(test_retained_copies_given_up)
{
	struct store_owner owner = { .take = evict_wb_take,
				     .settle = evict_wb_settle,
				     .give_up = evict_give_up, .ctx = &ix };
	struct compressor *c = compressor_create(COMPRESS_LZ4, 0);
	struct mm_slot *s = add(68);
	struct store_stats ss;
	struct store_wb wb;
	struct store st;
	struct region *r;
	int fd = memfd_create("r", MFD_CLOEXEC);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 8 << PAGE_SHIFT), 0);
	ck_assert_int_eq(store_init(&st, COMPRESS_LZ4, 0, 0, NULL, &owner,
				    NULL), 0);
	r = region_create(&ix, s, NULL, &st, 1ul << 30, 8, fd, "t");
	ck_assert_ptr_nonnull(r);
	stored_then_retained(r, c, 2);
	stored_then_retained(r, c, 5);
	stored_then_retained(r, c, 6);

	wb = (struct store_wb){ .key = { r->id, 2 }, .handle = r->pages[2].data };
	ck_assert_int_eq(evict_wb_take(&ix, &wb), -EALREADY);
	ck_assert_uint_eq(atomic_load(&r->pages[2].info),
			  page_info(PAGE_RESIDENT, 0, 0));
	ck_assert_uint_eq(atomic_load(&r->retained), 2);
	/* page 2's key is stale now: only page 5 and 6 give theirs up */
	ck_assert_uint_eq(store_give_up_retained(&st, 1), 2);
	ck_assert_uint_eq(atomic_load(&r->retained), 0);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.retained, 0);
	ck_assert_uint_eq(ss.pool_bytes, 0);

	/* the last reference of a region frees the copies still kept */
	stored_then_retained(r, c, 3);
	region_put(r);
	store_get_stats(&st, &ss);
	ck_assert_uint_eq(ss.retained, 0);
	ck_assert_uint_eq(ss.pool_bytes, 0);
	store_destroy(&st);
	compressor_destroy(c);
	drop(s);
}
END_TEST

/* Retention follows the client: kept while its credit is not negative,
 * then one load in MM_SLOT_RETAIN_PROBE; the credit stays within its
 * bounds, so that a change of workload turns it around in bounded time. */
START_TEST(test_retain_credit)
{
	struct mm_slot *s = add(69);
	unsigned int i, kept = 0;

	ck_assert(mm_slot_retains(s));
	mm_slot_retain_credit(s, -1);
	for (i = 0; i < 2 * MM_SLOT_RETAIN_PROBE; i++)
		kept += mm_slot_retains(s);
	ck_assert_uint_eq(kept, 2);
	mm_slot_retain_credit(s, -1000);
	ck_assert_int_eq(atomic_load(&s->retain_credit),
			 -MM_SLOT_RETAIN_CREDIT);
	mm_slot_retain_credit(s, MM_SLOT_RETAIN_CREDIT);
	ck_assert(mm_slot_retains(s));
	mm_slot_retain_credit(s, 1000);
	ck_assert_int_eq(atomic_load(&s->retain_credit),
			 MM_SLOT_RETAIN_CREDIT);
	mm_slot_retain_credit(s, -MM_SLOT_RETAIN_CREDIT - 1);
	ck_assert_int_eq(atomic_load(&s->retain_credit), -1);
	drop(s);
}
END_TEST

static Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("registry");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hash_find);
	tcase_add_test(tc, test_scan_round_robin);
	tcase_add_test(tc, test_regions);
	tcase_add_test(tc, test_region_resident_pages);
	tcase_add_test(tc, test_region_index);
	tcase_add_test(tc, test_write_back_refuses_a_stale_key);
	tcase_add_test(tc, test_verify_mapping);
	suite_add_tcase(s, tc);

	tc = tcase_create("memfd tables");
	tcase_add_checked_fixture(tc, setup_memfd_tables, teardown);
	tcase_add_test(tc, test_regions);
	tcase_add_test(tc, test_region_resident_pages);
	tcase_add_test(tc, test_drop_keeps_table_sparse);
	tcase_add_test(tc, test_restore_keeps_table_sparse);
	tcase_add_test(tc, test_retained_copies_given_up);
	tcase_add_test(tc, test_retain_credit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(registry_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
