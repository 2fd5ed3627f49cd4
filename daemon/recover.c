/*
 * recover.c - a successor's recovery of one region (see recover.h).
 *
 * The order of every protocol (pagestate.h) makes the entry and the memfd
 * enough: a page whose memfd holds data is RESIDENT whatever its entry
 * says (the same content a crash between publish and punch left, or newer:
 * the client's own write(2) into a hole), and any copy its entry names is
 * left for the store to free; otherwise a stable stored entry is kept, a
 * LOADING one goes back to the state it was taken from (a slot in its
 * data means a write-back had written the object: WRITTEN_BACK), NEW and
 * RESIDENT are NEW (nothing was ever there, or the client punched it;
 * a copy a RESIDENT page retained is named by no one and freed),
 * and an EVICTING entry over a hole breaks the evict order: its content
 * is lost, and the client will get SIGBUS there rather than zeros.
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "evict.h"
#include "recover.h"
#include "region.h"
#include "registry.h"
#include "store.h"

/* Rewrite @e as @state with @flags kept and no stamp. */
static void entry_set(struct page_entry *e, unsigned int state,
		      uint32_t flags, uint64_t data)
{
	e->data = data;
	atomic_store(&e->info, page_info(state, flags, 0));
}

enum recover_verdict recover_entry(struct page_entry *e, bool has_data)
{
	uint32_t info = atomic_load(&e->info);
	uint32_t flags = info & (PAGE_ACTIVE | PAGE_ZSTD | PAGE_RAW);
	unsigned int state = page_state(info);

	if (has_data) {
		entry_set(e, PAGE_RESIDENT, info & PAGE_ACTIVE, 0);
		return RECOVER_RESIDENT;
	}
	if (state == PAGE_LOADING) {
		/* only a stored page is ever taken into LOADING */
		state = page_state(page_loaded_from(info));
		if (!page_is_stored(state))
			state = PAGE_LOST;
		else if (state == PAGE_COMPRESSED &&
			 (e->data & PAGE_DATA_SLOT))
			state = PAGE_WRITTEN_BACK;
	}
	switch (state) {
	case PAGE_NEW:
	case PAGE_RESIDENT:
		entry_set(e, PAGE_NEW, 0, 0);
		return RECOVER_NEW;
	case PAGE_COMPRESSED:
	case PAGE_SAME:
	case PAGE_WRITTEN_BACK:
		entry_set(e, state, flags, e->data);
		return RECOVER_STORED;
	default:
		/* EVICTING over a hole, LOST, or no state at all */
		entry_set(e, PAGE_LOST, 0, 0);
		return RECOVER_LOST;
	}
}

/*
 * struct data_cursor - which pages of a memfd hold data, asked in rising
 * page order: the extent [@start, @end) (in pages) last found
 */
struct data_cursor {
	int fd;
	size_t npages;
	size_t start, end;
};

/* Find the data extent at or after page @i. 0 or -errno. */
static int cursor_seek(struct data_cursor *c, size_t i)
{
	off_t data, hole;

	data = lseek(c->fd, (off_t)(i << PAGE_SHIFT), SEEK_DATA);
	if (data < 0) {
		if (errno != ENXIO)
			return -errno;
		c->start = c->end = c->npages;
		return 0;
	}
	hole = lseek(c->fd, data, SEEK_HOLE);
	if (hole < 0)
		return -errno;
	c->start = (size_t)data >> PAGE_SHIFT;
	c->end = ((size_t)hole + PAGE_SIZE - 1) >> PAGE_SHIFT;
	if (c->end > c->npages)
		c->end = c->npages;
	return 0;
}

/* Whether page @i holds data (@i never below the last page asked). */
static int cursor_has_data(struct data_cursor *c, size_t i, bool *has)
{
	int ret;

	if (i >= c->end && c->end < c->npages) {
		ret = cursor_seek(c, i);
		if (ret)
			return ret;
	}
	*has = i >= c->start && i < c->end;
	return 0;
}

/* Name the stored copy of page @i to the store; LOST if it is gone. */
static void name_stored(struct region *r, size_t i, struct recover_stats *st)
{
	struct page_entry *e = &r->pages[i];
	struct store_key key = { r->id, (uint32_t)i };
	uint32_t info = atomic_load(&e->info);
	long n = store_recover_ref(r->store, info, e->data, &key);

	if (n < 0) {
		entry_set(e, PAGE_LOST, 0, 0);
		st->lost++;
		return;
	}
	atomic_fetch_add(&r->stored, 1);
	if (page_state(info) == PAGE_COMPRESSED) {
		atomic_fetch_add(&r->pooled, 1);
		atomic_fetch_add(&r->compressed_bytes, (size_t)n);
	}
	st->stored++;
}

/* Every entry that may have been written: decided. */
static int decide_entries(struct region *r, struct recover_stats *st)
{
	struct data_cursor c = { r->memfd, r->npages, 0, 0 };
	size_t i, span = 0;
	bool has;
	int ret;

	for (i = 0; (i = region_next_entry(r, i, r->npages, &span)) <
		    r->npages; i++) {
		if (page_state(atomic_load(&r->pages[i].info)) == PAGE_NEW)
			continue;	/* the data walk makes it RESIDENT */
		ret = cursor_has_data(&c, i, &has);
		if (ret)
			return ret;
		switch (recover_entry(&r->pages[i], has)) {
		case RECOVER_STORED:
			name_stored(r, i, st);
			break;
		case RECOVER_LOST:
			st->lost++;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Pages [@first, @first + @n) are resident: stamped on the slot's LRU. */
static void lru_run(struct region *r, size_t first, size_t n)
{
	int stamp = lru_add(&r->slot->lru, r->id, (uint32_t)first,
			    (uint16_t)n);
	size_t i;

	for (i = first; i < first + n; i++) {
		struct page_entry *e = &r->pages[i];
		uint32_t info = atomic_load(&e->info);
		uint64_t data = e->data;

		atomic_store(&e->info, page_info(PAGE_RESIDENT,
						 info & PAGE_ACTIVE,
						 stamp < 0 ? 0 :
						 (uint16_t)stamp));
		/* over data, a copy the entry still named goes, once the
		 * entry no longer names it; so does a copy a page at rest
		 * retained: a successor keeps none, for its store has not
		 * queued them for giving up */
		if (page_is_stored(page_state(info)))
			region_drop_copy(r, i, info, data);
		else if (info & PAGE_RETAINED)
			region_drop_retained(r, i, data);
	}
}

/* Every page the memfd holds: RESIDENT, counted and on the LRU. */
static int mark_data_resident(struct region *r, struct recover_stats *st)
{
	struct data_cursor c = { r->memfd, r->npages, 0, 0 };
	size_t i, run;
	int ret;

	for (i = 0; i < r->npages; i = c.end) {
		ret = cursor_seek(&c, i);
		if (ret)
			return ret;
		for (i = c.start; i < c.end; i += run) {
			run = c.end - i < EVICT_RUN_PAGES ? c.end - i :
							    EVICT_RUN_PAGES;
			lru_run(r, i, run);
		}
		region_account(r, (long)(c.end - c.start));
		st->resident += c.end - c.start;
	}
	return 0;
}

int recover_region_at_rest(struct region *r, struct recover_stats *st)
{
	int ret;

	st->resident = st->lost = 0;
	ret = mark_data_resident(r, st);
	st->stored = atomic_load(&r->stored);
	return ret;
}

int recover_region(struct region *r, struct recover_stats *st)
{
	int ret;

	st->resident = st->stored = st->lost = 0;
	ret = decide_entries(r, st);
	if (ret == 0)
		ret = mark_data_resident(r, st);
	return ret;
}
