/*
 * region.h - a managed region as uzswapd sees it: a client's memfd mapped
 * at [start, start + npages pages) in the client, registered on one of its
 * userfaultfds, with a per-page state table.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_REGION_H
#define UZSWAPD_REGION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/common/list.h"
#include "lib/proto/proto.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ul << PAGE_SHIFT)

struct mm_slot;
struct store;
struct uffd_ctx;

/*
 * State of one page of a region. Stable states: NEW, RESIDENT, COMPRESSED,
 * SAME. Transient states belong to the thread that entered them, which
 * alone may touch the entry's @data and @evicted_at until it publishes a
 * stable state: EVICTING (an evictor storing the page), LOADING (a fault
 * thread, or a worker restoring a region, bringing it back; a worker
 * dropping a dead client's page).
 * Every transition is a compare-and-swap of @info, so a page is never
 * taken by two threads at once.
 */
enum page_state {
	PAGE_NEW = 0,		/* never touched: a hole in the memfd, zeros */
	PAGE_RESIDENT,		/* in the memfd's page cache */
	PAGE_EVICTING,		/* being stored and dropped */
	PAGE_COMPRESSED,	/* in the pool: @data is the z3fold handle */
	PAGE_SAME,		/* each 64-bit word is @data: no payload */
	PAGE_LOADING,		/* being brought back, or written back */
	PAGE_WRITTEN_BACK,	/* in the backing file: @data is
				   slot << PAGE_WB_LEN_BITS | length */
};

#define PAGE_WB_LEN_BITS	13	/* an object is at most 4096 bytes */

#define PAGE_STATE_MASK		0x0fu
#define PAGE_ACTIVE		0x10u	/* refaulted soon after its eviction */
#define PAGE_ZSTD		0x20u	/* COMPRESSED by zstd, else lz4 */
#define PAGE_RAW		0x40u	/* COMPRESSED object is the page as is */
#define PAGE_UNPUNCHED		0x80u	/* stored, but the evictor has not yet
					   punched it: only a MISSING fault
					   (which proves the punch) may load it */
#define PAGE_STAMP_SHIFT	16	/* fault-in stamp, see lru.h */

/*
 * struct page_entry - the per-page state table entry (16 bytes)
 * @info:       state | flags | stamp << PAGE_STAMP_SHIFT (atomic; changed
 *              by compare-and-swap only)
 * @evicted_at: the slot's eviction count when the page was evicted (for
 *              the refault distance); owner of the state
 * @data:       see enum page_state; owner of the state, immutable while
 *              the state is stable
 */
struct page_entry {
	_Atomic uint32_t info;
	uint32_t evicted_at;
	uint64_t data;
};

static inline unsigned int page_state(uint32_t info)
{
	return info & PAGE_STATE_MASK;
}

static inline uint16_t page_stamp(uint32_t info)
{
	return (uint16_t)(info >> PAGE_STAMP_SHIFT);
}

static inline uint32_t page_info(unsigned int state, uint32_t flags,
				 uint16_t stamp)
{
	return state | flags | ((uint32_t)stamp << PAGE_STAMP_SHIFT);
}

/* Is a page in this state held by the store (COMPRESSED, SAME,
 * WRITTEN_BACK)? */
static inline bool page_is_stored(unsigned int state)
{
	return state == PAGE_COMPRESSED || state == PAGE_SAME ||
	       state == PAGE_WRITTEN_BACK;
}

/* Move a page from *@old to @new; on failure *@old is what it is now. */
static inline bool page_cas(struct page_entry *p, uint32_t *old, uint32_t new)
{
	return atomic_compare_exchange_strong(&p->info, old, new);
}

/*
 * struct region - a registered managed region
 * @node:     entry in the slot's region list (protected by slot->lock);
 *            once taken out of it, of the list of the work tearing it
 *            down (that work's only)
 * @slot:     the owning process; immutable
 * @ctx:      the uffd the range is registered on; immutable, referenced
 * @store:    where its evicted pages are; immutable
 * @id:       daemon-wide region number; immutable
 * @start:    first address in the client; immutable
 * @npages:   length in pages; immutable
 * @memfd:    the daemon's descriptor of the region's memfd; immutable,
 *            closed when the last reference goes
 * @name:     the client's name for it; immutable
 * @refs:     references: the slot's list holds one, each user one (atomic)
 * @acct_lock: makes a change of @resident and of the slot's and the
 *            daemon's totals one step (region_account()), so that
 *            region_detach() takes exactly what the region added
 * @attached: counted in its slot's and the daemon's totals; @acct_lock
 * @detached: set (for good) when it leaves its slot: no eviction may
 *            start on it after that (atomic)
 * @resident: pages RESIDENT or EVICTING; @acct_lock (read atomically)
 * @stored:   pages COMPRESSED, SAME or LOADING (atomic)
 * @compressed_bytes: pool bytes of its COMPRESSED pages (atomic)
 * @pooled:   its COMPRESSED pages, whose objects are in the pool (not
 *            same-filled, not written back): what @compressed_bytes holds
 *            (atomic)
 * @pages:    @npages entries in one allocation; see struct page_entry
 */
struct region {
	struct list_node node;
	struct mm_slot *slot;
	struct uffd_ctx *ctx;
	struct store *store;
	uint64_t id;
	unsigned long start;
	size_t npages;
	int memfd;
	char name[PROTO_NAME_MAX];
	atomic_uint refs;
	pthread_mutex_t acct_lock;
	bool attached;
	atomic_bool detached;
	atomic_size_t resident;
	atomic_size_t stored;
	atomic_size_t compressed_bytes;
	atomic_size_t pooled;
	struct page_entry *pages;
};

/*
 * region_create() - a region over @memfd (taken over: closed on failure and
 * at the end) mapped at @start for @npages pages. Pages that hold data in
 * the memfd start RESIDENT, holes NEW. Takes a reference on @ctx.
 * Return: the region with one reference, or NULL with errno set.
 */
struct region *region_create(struct mm_slot *slot, struct uffd_ctx *ctx,
			     struct store *store, unsigned long start,
			     size_t npages, int memfd, const char *name);

void region_get(struct region *r);
/* Drop a reference; the last one drops the pages still stored (the client
 * is gone or unregistered them after restoring) and frees the region. Any
 * thread; it costs a look at every page when some are still stored, so
 * the loop thread never drops the last reference of a stored region. */
void region_put(struct region *r);

/*
 * region_drop_stored() - forget the stored pages of @r in [@first, @end)
 * (its process is gone): each goes NEW. Pages another thread holds
 * (LOADING, or stored but not yet punched by their evictor) are left to
 * the last region_put(). Cost: a look at each page, a store_drop() per
 * stored one. Any thread.
 */
void region_drop_stored(struct region *r, size_t first, size_t end);

/* Pages RESIDENT or EVICTING over every attached region of every client. */
size_t region_resident_total(void);

/* @pages (negative: fewer) more pages of @r are RESIDENT or EVICTING:
 * counted in @r, and in its slot's and the daemon's totals while @r is
 * attached (from mm_slot_add_region() to region_detach()). Any thread. */
void region_account(struct region *r, long pages);

/* Take @r's resident pages out of its slot's and the daemon's totals, for
 * good: it is leaving its slot. */
void region_detach(struct region *r);

/* Count @r's resident pages in its slot's and the daemon's totals. */
void region_attach(struct region *r);

/* A page of @r whose object took @bytes of the pool left it (0: it had
 * none there: same-filled or written back). */
static inline void region_unpool(struct region *r, size_t bytes)
{
	if (!bytes)
		return;
	atomic_fetch_sub(&r->compressed_bytes, bytes);
	atomic_fetch_sub(&r->pooled, 1);
}

static inline unsigned long region_end(const struct region *r)
{
	return r->start + (r->npages << PAGE_SHIFT);
}

static inline bool region_contains(const struct region *r, unsigned long a)
{
	return a >= r->start && a < region_end(r);
}

/*
 * region_verify_mapping() - does process @pid map @memfd, shared and
 * writable, at exactly [@start, @start + @len) from offset 0? Read from
 * /proc/PID/maps; this is how the daemon knows a client registers only
 * its own memory. Return: 0, -EPERM if not, -errno if maps is unreadable.
 */
int region_verify_mapping(pid_t pid, unsigned long start, size_t len,
			  int memfd);

/*
 * region_verify_registered() - after UFFDIO_REGISTER through a uffd a
 * client sent: is [@start, @start + @len) of process @pid now registered
 * for MISSING and WP faults ("um" and "uw" in /proc/PID/smaps)? If not,
 * the uffd belongs to another process (one that handed it over), whose
 * memory was registered instead. Return: 0, -EPERM, or -errno.
 */
int region_verify_registered(pid_t pid, unsigned long start, size_t len);

#endif /* UZSWAPD_REGION_H */
