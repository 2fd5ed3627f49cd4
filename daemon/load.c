/*
 * load.c - bring stored pages back; see load.h.
 *
 * A stored page (COMPRESSED, SAME or WRITTEN_BACK) is taken by a
 * compare-and-swap into LOADING, read back from the backing file if it was
 * written back, decompressed into the caller's buffer, put in place
 * (UFFDIO_COPY into the client, or pwrite() into the memfd), published
 * RESIDENT with a fresh LRU stamp, and only then dropped from the store:
 * until the page is safely back, the stored copy stays. If putting it in
 * place fails, the page returns to its stored state untouched.
 *
 * Clean-page retention: a pool object loaded for a caller that asks for
 * it is kept instead (PAGE_RETAINED, pagestate.h): the copy maps the page
 * write-protected (UFFDIO_COPY_MODE_WP) and the entry goes on naming the
 * object, queued with the store for giving up when the pool needs room.
 * Its first write is a WP fault (fault.c's unprotect()), which drops the
 * object; an eviction before that reuses it. Only a copy that went in
 * (not EEXIST, where the client's own write(2) refilled the hole with
 * something newer) is retained, and only while retention pays for the
 * client (mm_slot_retains(): its pages are evicted clean more often than
 * they are written after a retained load).
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "evict.h"
#include "lib/common/killpoint.h"
#include "lib/uffd/uffd.h"
#include "load.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "uffdctx.h"

/* The flags a page brought back gets: PAGE_ACTIVE if it was evicted less
 * than a budget's worth of evictions ago (the kernel's workingset test). */
static uint32_t refault_flags(struct region *r, const struct page_entry *p)
{
	struct mm_slot *slot = r->slot;
	uint64_t limit = mm_slot_limit(slot) >> PAGE_SHIFT;
	uint32_t distance = (uint32_t)atomic_load(&slot->evictions) -
			    p->evicted_at;

	return limit && distance < limit ? PAGE_ACTIVE : 0;
}

/* Publish a loaded page RESIDENT and drop its stored copy, or keep it
 * if @retain (a pool object only). @data is read before: once RESIDENT,
 * an evictor may take the page and store it anew. */
static void loaded(struct region *r, size_t idx, uint32_t stored_info,
		   bool retain)
{
	struct page_entry *p = &r->pages[idx];
	uint32_t flags = refault_flags(r, p);
	int ret = lru_add(&r->slot->lru, r->id, (uint32_t)idx, 1);
	uint16_t stamp = ret < 0 ? 0 : (uint16_t)ret;
	struct store_key key = { r->id, (uint32_t)idx };
	uint64_t data = p->data;

	if (retain) {
		/* counted before the publish: an evictor may reuse it at
		 * once */
		region_unpool(r, store_retain(r->store, stored_info, data));
		atomic_fetch_sub(&r->stored, 1);
		atomic_fetch_add(&r->retained, 1);
		atomic_store(&p->info, page_retain(stored_info, flags, stamp));
		killpoint("load.published");
		store_queue_retained(r->store, &key, stamp);
	} else {
		atomic_store(&p->info, page_info(PAGE_RESIDENT, flags, stamp));
		killpoint("load.published");
		region_drop_copy(r, idx, stored_info, data);
	}
	region_account(r, 1);
}

/* Take a stored page into LOADING; returns its stored info, or 0 with
 * *@res set if it cannot be taken. */
static uint32_t take_stored(struct region *r, size_t idx,
			    enum load_result *res)
{
	struct page_entry *p = &r->pages[idx];
	uint32_t info = atomic_load(&p->info);

	for (;;) {
		switch (page_state(info)) {
		case PAGE_COMPRESSED:
		case PAGE_SAME:
		case PAGE_WRITTEN_BACK:
			if (info & PAGE_UNPUNCHED) {
				/* its evictor clears it in a moment */
				*res = LOAD_BUSY;
				return 0;
			}
			if (page_cas(p, &info, page_loading(info)))
				return info;
			continue;
		case PAGE_RESIDENT:
			*res = LOAD_DONE;
			return 0;
		case PAGE_NEW:
			*res = LOAD_NOT_STORED;
			return 0;
		case PAGE_LOST:
			*res = LOAD_LOST;
			return 0;
		default:
			*res = LOAD_BUSY;
			return 0;
		}
	}
}

enum load_result load_page(struct region *r, size_t idx, struct load_ctx *lc,
			   bool retain)
{
	struct page_entry *p = &r->pages[idx];
	unsigned long addr = r->start + (idx << PAGE_SHIFT);
	enum load_result res;
	uint32_t info;
	int ret;

	info = take_stored(r, idx, &res);
	if (!info)
		return res;
	retain = retain && page_state(info) == PAGE_COMPRESSED &&
		 mm_slot_retains(r->slot);
	ret = store_get(r->store, lc->comp, info, p->data, lc->buf);
	if (ret) {
		atomic_store(&p->info, info);
		if (ret == -EAGAIN)
			return LOAD_AGAIN;
		log_err_about("load", LOG_REGION(r, .err = -ret),
			      "pid %d: page %#lx of region %llu cannot be read "
			      "back from the store (%s); its copy is kept",
			      (int)r->slot->pid, addr,
			      (unsigned long long)r->id, strerror(-ret));
		return LOAD_CORRUPT;
	}
	ret = uffd_copy(r->ctx->fd, addr, lc->buf, PAGE_SIZE,
			UFFD_COPY_DONTWAKE | (retain ? UFFD_COPY_WP : 0));
	killpoint("load.copied");
	if (ret == 0 || ret == -EEXIST) {
		/* EEXIST: the client's own write(2) to its memfd refilled the
		 * hole; what is there is newer than our copy */
		loaded(r, idx, info, retain && ret == 0);
		killpoint("load.loaded");
		return LOAD_DONE;
	}
	atomic_store(&p->info, info);
	if (ret == -EAGAIN)
		return LOAD_AGAIN;
	if (ret != -ENOENT && ret != -ESRCH && ret != -ENOMEM)
		log_err_about("load", LOG_REGION(r, .err = -ret),
			      "pid %d: UFFDIO_COPY at %#lx: %s",
			      (int)r->slot->pid, addr, strerror(-ret));
	return LOAD_GONE;
}

int load_region_restore(struct region *r, size_t first, size_t end,
			struct load_ctx *lc)
{
	struct page_entry *p;
	enum load_result res;
	uint32_t info;
	size_t i, span = 0;
	int ret = 0;

	/* every page: one an evictor holds is not counted in @stored yet */
	for (i = first; (i = region_next_entry(r, i, end, &span)) < end;
	     i++) {
		p = &r->pages[i];
		info = take_stored(r, i, &res);
		if (!info) {
			if (res == LOAD_BUSY) {
				/* an evictor or fault thread is on it */
				sched_yield();
				i--;
			} else if (res == LOAD_LOST) {
				ret = -EIO;
			}
			continue;
		}
		if (store_get(r->store, lc->comp, info, p->data, lc->buf) ||
		    pwrite(r->memfd, lc->buf, PAGE_SIZE,
			   (off_t)(i << PAGE_SHIFT)) != PAGE_SIZE) {
			atomic_store(&p->info, info);
			log_err_about("load", LOG_REGION(r),
				      "pid %d: cannot restore page %zu of "
				      "region %llu", (int)r->slot->pid, i,
				      (unsigned long long)r->id);
			ret = -EIO;
			continue;
		}
		loaded(r, i, info, false);
	}
	return ret;
}
