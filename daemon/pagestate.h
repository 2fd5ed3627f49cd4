/*
 * pagestate.h - the bottom layer of uzswapd's data path: the state of one
 * page of a managed region, its 16-byte table entry, and the one way to
 * change it (compare-and-swap). Everything above — regions, the store,
 * the fault and evictor threads — speaks these states; this header needs
 * nothing but libc, and an entry holds no pointer (states, flags, handles
 * and slots only), so that a table can live outside the daemon's heap.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_PAGESTATE_H
#define UZSWAPD_PAGESTATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ul << PAGE_SHIFT)

/*
 * State of one page of a region. Stable states: NEW, RESIDENT, COMPRESSED,
 * SAME, WRITTEN_BACK, LOST. Transient states belong to the thread that entered
 * them, which alone may touch the entry's @data and @evicted_at until it
 * publishes a stable state: EVICTING (an evictor storing the page),
 * LOADING (a thread bringing it back — a fault, advice, a restore — or
 * reclaim from the bottom writing its object to the backing file).
 * Every transition is a compare-and-swap of @info, so a page is never
 * taken by two threads at once.
 *
 * Every instant is recoverable from the entry and the memfd alone
 * (docs/architecture.md, "Restart without loss"): @data is written before
 * the @info that publishes it; LOADING keeps the state and flags it was
 * entered from (page_loading()), so that what @data names is known; the
 * one change of @data under LOADING, a write-back's slot replacing the
 * handle, is tagged (PAGE_DATA_SLOT) so that it is never taken for a
 * handle; and a stored copy is freed only after the entry stopped naming
 * it.
 *
 * Clean-page retention: a page loaded for a read keeps its pool object
 * (RESIDENT | PAGE_RETAINED, @data the handle) and is mapped
 * write-protected, so that while the flag holds the memfd holds exactly
 * what the object does; evicting it is then a punch. Whoever lifts the
 * protection or learns the page changed (a WP fault, a hole found where
 * it was) first takes the flag away, then frees the object.
 */
enum page_state {
	PAGE_NEW = 0,		/* never touched: a hole in the memfd, zeros */
	PAGE_RESIDENT,		/* in the memfd's page cache */
	PAGE_EVICTING,		/* being stored and dropped */
	PAGE_COMPRESSED,	/* in the pool: @data is the z3fold handle */
	PAGE_SAME,		/* each 64-bit word is @data: no payload */
	PAGE_LOADING,		/* being brought back, or written back */
	PAGE_WRITTEN_BACK,	/* in the backing file: @data is
				   PAGE_DATA_SLOT | slot << PAGE_WB_LEN_BITS |
				   length */
	PAGE_LOST,		/* its content cannot be had again (a
				   successor found its copy gone): a touch
				   gets SIGBUS, never zeros */
};

#define PAGE_WB_LEN_BITS	13	/* an object is at most 4096 bytes */
#define PAGE_DATA_SLOT		(1ull << 63)	/* @data is a backing-file
						   slot; a handle never has
						   this bit */

#define PAGE_STATE_MASK		0x0fu
#define PAGE_ACTIVE		0x10u	/* refaulted soon after its eviction */
#define PAGE_ZSTD		0x20u	/* COMPRESSED by zstd, else lz4 */
#define PAGE_RAW		0x40u	/* COMPRESSED object is the page as is */
#define PAGE_UNPUNCHED		0x80u	/* stored, but the evictor has not yet
					   punched it: nothing may load it
					   (see load_page()) */
#define PAGE_FROM_SHIFT		8	/* LOADING: the state it was
					   entered from; RESIDENT with
					   PAGE_RETAINED: the state of the
					   copy kept */
#define PAGE_FROM_MASK		(PAGE_STATE_MASK << PAGE_FROM_SHIFT)
#define PAGE_RETAINED		0x1000u	/* RESIDENT, and unchanged since it
					   was loaded: @data still names its
					   stored copy (a pool object, as
					   PAGE_ZSTD and PAGE_RAW say), and
					   the client maps it write-protected:
					   its first write is a WP fault,
					   which drops the copy first */
#define PAGE_STAMP_SHIFT	16	/* fault-in stamp, see lru.h */

/* Flags that describe a pool object (COMPRESSED, or a retained copy). */
#define PAGE_OBJECT_FLAGS	(PAGE_ZSTD | PAGE_RAW)
/* Everything PAGE_RETAINED brings to a RESIDENT page's info. */
#define PAGE_RETAIN_MASK	(PAGE_RETAINED | PAGE_FROM_MASK | \
				 PAGE_OBJECT_FLAGS)

/*
 * struct page_entry - the per-page state table entry (16 bytes)
 * @info:       state | flags | from << PAGE_FROM_SHIFT (LOADING only) |
 *              stamp << PAGE_STAMP_SHIFT (atomic; changed
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

_Static_assert(sizeof(struct page_entry) == 16,
	       "DESIGN.md: page metadata is at most 16 bytes per page");

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

/* The LOADING info of a page taken from the stable @info: its flags and
 * stamp kept, the state it leaves recorded, PAGE_UNPUNCHED dropped. */
static inline uint32_t page_loading(uint32_t info)
{
	return (info & ~(PAGE_STATE_MASK | PAGE_FROM_MASK | PAGE_UNPUNCHED)) |
	       PAGE_LOADING | page_state(info) << PAGE_FROM_SHIFT;
}

/* The stable info a LOADING @info was taken from (as page_loading() left
 * it: without PAGE_UNPUNCHED). */
static inline uint32_t page_loaded_from(uint32_t info)
{
	return (info & ~(PAGE_STATE_MASK | PAGE_FROM_MASK)) |
	       (info & PAGE_FROM_MASK) >> PAGE_FROM_SHIFT;
}

/* The RESIDENT info of a page loaded from the COMPRESSED @stored whose
 * copy is kept: @flags (PAGE_ACTIVE) and @stamp as for any page loaded. */
static inline uint32_t page_retain(uint32_t stored, uint32_t flags,
				   uint16_t stamp)
{
	return page_info(PAGE_RESIDENT, flags | PAGE_RETAINED |
			 (stored & PAGE_OBJECT_FLAGS) |
			 PAGE_COMPRESSED << PAGE_FROM_SHIFT, stamp);
}

/* The stored info of the copy a RESIDENT page with PAGE_RETAINED (or an
 * EVICTING one taken from it) keeps. */
static inline uint32_t page_retained_copy(uint32_t info)
{
	return ((info & PAGE_FROM_MASK) >> PAGE_FROM_SHIFT) |
	       (info & PAGE_OBJECT_FLAGS);
}

/* Move a page from *@old to @new; on failure *@old is what it is now. */
static inline bool page_cas(struct page_entry *p, uint32_t *old, uint32_t new)
{
	return atomic_compare_exchange_strong(&p->info, old, new);
}

#endif /* UZSWAPD_PAGESTATE_H */
