/*
 * z3fold.c - z3fold, a special purpose allocator for storing compressed pages
 *
 * This is a user-space port of the kernel's mm/z3fold.c for uzswap.
 *
 * z3fold stores up to three compressed objects per 4 KiB page: zbud's two
 * (FIRST, left-justified after the page header, and LAST, right-justified)
 * plus a MIDDLE one between them, placed right after FIRST. An object too
 * big to share a page gets a HEADLESS page of its own: the whole page is
 * payload. Objects are sized in 64-byte chunks; the page header takes one
 * chunk, so 63 chunks are usable.
 *
 * Pages that still have a free buddy slot sit on the unbuddied lists,
 * indexed by their largest free region in chunks; allocation searches them
 * upward from the size it needs (best fit), and takes a new page when none
 * fits. Every page sits on the pool LRU, the most recently allocated-into
 * page at the head. z3fold_reclaim_page() evicts from the tail: it claims the
 * page and calls the user's evict handler for each buddy; the handler stores
 * the object elsewhere and frees the handle. A free during reclaim only
 * marks the buddy free; the reclaimer releases the page once all buddies are
 * gone, or puts it back on the lists if one could not be evicted.
 * z3fold_reclaim_begin() and z3fold_reclaim_end() are its two halves, for
 * a caller that moves the objects of many claimed pages at once.
 * z3fold_isolate() and z3fold_putback() claim the same way the sparsest
 * page instead, for a caller that migrates its objects into fuller pages
 * (z3fold_alloc_packed()) to pack the pool (the kernel's
 * movable_operations, in the user's hands: it alone knows who names an
 * object).
 *
 * When a neighbour is freed, the middle buddy is moved: to the start of the
 * page if it is alone (then it becomes FIRST; handles stay valid because a
 * handle stores its buddy rotated by the header's first_num, which the move
 * increments), or next to the remaining neighbour when that gains at least
 * BIG_CHUNK_GAP chunks. A middle buddy that is mapped at that moment is not
 * moved; its page goes on the compact list for z3fold_compact().
 *
 * Port notes:
 * - No struct page: a side table of struct z3fold_frame (16 bytes per pool
 *   page) holds what the kernel keeps there: the LRU links, the page lock,
 *   the HEADLESS/CLAIMED flags. The in-page header holds the rest.
 * - Owner words: a third table holds one 64-bit word per object for the
 *   pool's user (z3fold_set_owner()), as the old kernel zswap kept the
 *   swp entry in a header at the start of each object: the evict handler
 *   learns from it whom an object belongs to, and in a file it outlives
 *   the process. OWNER_WORDS per frame, the one of an object picked by
 *   its handle's rotated buddy bits, never by its header: a handle keeps
 *   those bits when the middle buddy becomes FIRST, and they can be read
 *   without the frame lock or the page (which may be decommitted).
 * - Pages come from one address range reserved at pool creation (as large
 *   as the machine's RAM) from the page provider (lib/common/pagemem.h),
 *   as do the side table and the owner words: anonymous memory, or a
 *   memfd or file each (z3fold_memory()). Segments of SEG_PAGES pages are
 *   committed as the pool grows and decommitted (handed back to the OS: a
 *   memfd's part is punched) when a second segment becomes empty; the
 *   side table and the owner words stay. Every link and handle
 *   holds frame numbers (page offsets in that range), never pointers, so
 *   that a memfd-backed range can be handed to a restarted daemon. The
 *   list heads, the segment tables and the counters are in struct
 *   z3fold_pool, on the heap: a successor rebuilds them from the frames.
 * - Locks: pool->lock is an adaptive pthread mutex instead of the pool
 *   spinlock: it spins briefly, then sleeps, so that a holder preempted by
 *   one of the daemon's other threads (there are more threads than cores)
 *   does not leave the others spinning. A byte spinlock per frame stands
 *   for the page lock. No workqueues: the
 *   free path compacts inline under the frame lock, deferred compaction is
 *   z3fold_compact(), and empty segments are returned inline.
 * - Handles also carry a 16-bit generation of their frame, so that a freed
 *   or reused handle is detected (counted and reported) instead of touching
 *   another object.
 * - A pool on a memfd or a file may outlive its owner: a successor makes a
 *   pool on the same files and recovers it from the handles its records
 *   name (z3fold_recover_*()), freeing what they do not name and clearing
 *   what only the dead process meant (frame locks, claims, map counts).
 *   That is sound because an object's header fields change only while no
 *   record names it, which is why such a pool never moves an object (the
 *   middle buddy's move and the first_num rotation rewrite named objects).
 *
 * Lock order: a frame lock may be held while taking pool->lock. While
 * holding pool->lock, the locks of in-use frames are only trylocked; the
 * lock of a free frame may be taken outright, because its only other holder
 * (handle validation) takes no further lock. pool->grow_lock is taken with
 * no other lock held and may take pool->lock.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/failpoint.h"
#include "../common/pagemem.h"
#include "z3fold.h"

/*****************
 * Structures
 *****************/

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1u << PAGE_SHIFT)
#define CHUNK_SHIFT	6
#define CHUNK_SIZE	(1u << CHUNK_SHIFT)
#define TOTAL_CHUNKS	(PAGE_SIZE >> CHUNK_SHIFT)	/* 64 */
#define ZHDR_CHUNKS	1
#define ZHDR_SIZE	(ZHDR_CHUNKS * CHUNK_SIZE)
#define NCHUNKS		(TOTAL_CHUNKS - ZHDR_CHUNKS)	/* 63 usable */
#define BIG_CHUNK_GAP	3

#define SEG_SHIFT	8
#define SEG_PAGES	(1u << SEG_SHIFT)	/* pages taken from the OS at once */
#define SPARE_SEGS	1			/* empty segments kept mapped */

/* Owner words: one per rotated buddy value, so 4 per frame, 32 bytes;
 * committed per segment with the side table, never decommitted. */
#define OWNER_WORDS	(BUDDY_MASK + 1)
#define OWNER_SEG_BYTES	((size_t)SEG_PAGES * OWNER_WORDS * sizeof(uint64_t))

#define NO_FRAME	UINT32_MAX
#define NOT_LISTED	0xff

/* Handle layout: | frame (46 bits) | generation (16) | rotated buddy (2) | */
#define BUDDY_MASK	0x3ul
#define GEN_SHIFT	2
#define GEN_MASK	0xfffful
#define FRAME_SHIFT	18

_Static_assert(Z3FOLD_PAGE_SIZE == PAGE_SIZE, "page size");
_Static_assert(OWNER_SEG_BYTES == 2 * PAGE_SIZE,
	       "32 bytes of owner words per frame, whole pages per segment");
_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t),
	       "an owner word is a plain 64-bit word in the table");
_Static_assert(Z3FOLD_MAX_SHARED_SIZE == PAGE_SIZE - ZHDR_SIZE - CHUNK_SIZE,
	       "shared size limit");

enum buddy {
	HEADLESS = 0,
	FIRST,
	MIDDLE,
	LAST,
	BUDDIES_MAX,
	NO_BUDDY = BUDDIES_MAX,
};

/* Links of a list threaded through frame numbers. */
struct flinks {
	uint32_t prev;
	uint32_t next;
};

struct flist {
	uint32_t head;
	uint32_t tail;
};

/* struct z3fold_frame flags; frame lock */
#define FRAME_INUSE	0x01	/* holds objects (or is being filled) */
#define FRAME_HEADLESS	0x02	/* one object, no header */
#define FRAME_CLAIMED	0x04	/* under reclaim */
#define FRAME_EVICTED	0x08	/* HEADLESS object freed while claimed */

/*
 * struct z3fold_frame - what the kernel keeps in struct page
 * @lru:   pool LRU links while in use, free-frame list links while free;
 *         protected by pool->lock
 * @gen:   generation of the last object allocated in this frame; survives
 *         reuse of the frame; frame lock
 * @hsize: size of the HEADLESS object; frame lock
 * @lock:  the frame (page) lock, a byte spinlock
 * @flags: FRAME_*; frame lock
 */
struct z3fold_frame {
	struct flinks lru;
	uint16_t gen;
	uint16_t hsize;
	atomic_uchar lock;
	uint8_t flags;
	uint16_t pad;
};
_Static_assert(sizeof(struct z3fold_frame) == 16, "frame size");
_Static_assert(SEG_PAGES * sizeof(struct z3fold_frame) == PAGE_SIZE,
	       "one side-table page per segment");

/*
 * struct z3fold_header - in-page header of a buddied page (one chunk)
 * @buddy:         unbuddied list links; pool->lock
 * @compact:       compact list links; pool->lock
 * @gen:           generation of each buddy's object, 0 if the slot is free;
 *                 frame lock
 * @size:          size in bytes of each buddy's object; frame lock
 * @first_chunks:  size of the first buddy in chunks, 0 if free; frame lock
 * @middle_chunks: size of the middle buddy in chunks, 0 if free; frame lock
 * @last_chunks:   size of the last buddy in chunks, 0 if free; frame lock
 * @start_middle:  index of the first chunk of the middle buddy; frame lock
 * @first_num:     the starting number (for the first handle); frame lock
 * @unbuddied:     index of the unbuddied list the page is on; pool->lock
 * @on_compact:    whether the page is on the compact list; pool->lock
 * @middle_mapped: map count of the middle buddy; frame lock
 */
struct z3fold_header {
	struct flinks buddy;
	struct flinks compact;
	uint16_t gen[BUDDIES_MAX];
	uint16_t size[BUDDIES_MAX];
	uint8_t first_chunks;
	uint8_t middle_chunks;
	uint8_t last_chunks;
	uint8_t start_middle;
	uint8_t first_num;
	uint8_t unbuddied;
	uint8_t on_compact;
	uint8_t middle_mapped;
};
_Static_assert(sizeof(struct z3fold_header) <= ZHDR_SIZE, "header size");

enum seg_state {
	SEG_UNMAPPED = 0,
	SEG_MAPPING,
	SEG_MAPPED,
	SEG_UNMAPPING,
};

/*
 * struct z3fold_pool - stores metadata for each z3fold pool
 * @name:            pool name; immutable
 * @ops:             user callbacks; immutable
 * @priv:            the callbacks' context; immutable
 * @lock:            protects the lists, the free frames and the segments
 * @grow_lock:       serializes taking new segments from the OS
 * @unbuddied:       pages with a free buddy slot, by free chunks; lock
 * @unbuddied_mask:  bit i set when unbuddied[i] is not empty; lock
 * @lru:             in-use pages, most recently allocated at head; lock
 * @compact:         pages whose middle buddy awaits a move; lock
 * @free_frames:     frames of mapped segments not in use; lock
 * @pages:           the reserved page range; immutable
 * @side:            the side table, struct z3fold_frame per frame;
 *                   immutable, entries of segments below @hwm_segs are
 *                   committed
 * @owners:          the owner words, OWNER_WORDS per frame; immutable,
 *                   committed as @side is; each word is its object's
 *                   user's, read and written atomically (relaxed)
 * @nr_segs:         segments in the reserved range; immutable
 * @seg_used:        in-use frames per segment; lock
 * @seg_state:       enum seg_state per segment; lock
 * @empty_segs:      mapped segments without in-use frames; lock
 * @hwm_segs:        segments whose side table and owner words are mapped
 *                   (all below it have been mapped once); written under
 *                   @grow_lock
 * @persistent:      its pages may outlive the process: no object moves;
 *                   immutable
 * @rec:             while recovering: per frame, the buddies a record
 *                   named (bit per enum buddy); NULL otherwise
 * @rec_frames:      frames @rec covers
 * @st:              counters; atomic
 */
struct z3fold_pool {
	char name[32];
	struct z3fold_ops ops;
	void *priv;
	pthread_mutex_t lock;
	pthread_mutex_t grow_lock;
	struct flist unbuddied[NCHUNKS];
	uint64_t unbuddied_mask;
	struct flist lru;
	struct flist compact;
	struct flist free_frames;
	struct pagemem pages;
	struct pagemem side;
	struct pagemem owners;
	uint32_t nr_segs;
	uint16_t *seg_used;
	uint8_t *seg_state;
	uint32_t empty_segs;
	atomic_uint hwm_segs;
	bool persistent;
	uint8_t *rec;
	uint32_t rec_frames;
	struct {
		atomic_uint_fast64_t pages, headless_pages, objects,
			payload_bytes, reserved_pages, allocs, frees,
			compactions, reclaimed_pages, migrated_pages,
			evict_failures,
			invalid_ops;
	} st;
};

/*****************
 * Helpers
 *****************/

static inline void stat_add(atomic_uint_fast64_t *c, int64_t v)
{
	atomic_fetch_add_explicit(c, (uint_fast64_t)v, memory_order_relaxed);
}

static inline unsigned int size_to_chunks(size_t size)
{
	return (unsigned int)((size + CHUNK_SIZE - 1) >> CHUNK_SHIFT);
}

static inline struct z3fold_frame *frame_of(struct z3fold_pool *pool,
					    uint32_t f)
{
	return (struct z3fold_frame *)pool->side.base + f;
}

static inline uint8_t *frame_addr(struct z3fold_pool *pool, uint32_t f)
{
	return (uint8_t *)pool->pages.base + ((size_t)f << PAGE_SHIFT);
}

static inline struct z3fold_header *frame_hdr(struct z3fold_pool *pool,
					      uint32_t f)
{
	return (struct z3fold_header *)frame_addr(pool, f);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static bool frame_trylock(struct z3fold_frame *fr)
{
	return !atomic_exchange_explicit(&fr->lock, 1, memory_order_acquire);
}

static void frame_lock(struct z3fold_frame *fr)
{
	unsigned int spins = 0;

	while (!frame_trylock(fr)) {
		while (atomic_load_explicit(&fr->lock, memory_order_relaxed)) {
			if (++spins < 128)
				cpu_relax();
			else
				sched_yield();
		}
	}
}

static void frame_unlock(struct z3fold_frame *fr)
{
	atomic_store_explicit(&fr->lock, 0, memory_order_release);
}

static void pool_lock(struct z3fold_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
}

static void pool_unlock(struct z3fold_pool *pool)
{
	pthread_mutex_unlock(&pool->lock);
}

/* Lists threaded through frame numbers; the links live in the side table
 * (LRU and free frames) or in the page header (unbuddied and compact). */
typedef struct flinks *(*links_fn)(struct z3fold_pool *pool, uint32_t f);

static struct flinks *lru_links(struct z3fold_pool *pool, uint32_t f)
{
	return &frame_of(pool, f)->lru;
}

static struct flinks *buddy_links(struct z3fold_pool *pool, uint32_t f)
{
	return &frame_hdr(pool, f)->buddy;
}

static struct flinks *compact_links(struct z3fold_pool *pool, uint32_t f)
{
	return &frame_hdr(pool, f)->compact;
}

static void flist_add_head(struct z3fold_pool *pool, struct flist *l,
			   uint32_t f, links_fn links)
{
	struct flinks *lk = links(pool, f);

	lk->prev = NO_FRAME;
	lk->next = l->head;
	if (l->head != NO_FRAME)
		links(pool, l->head)->prev = f;
	else
		l->tail = f;
	l->head = f;
}

static void flist_del(struct z3fold_pool *pool, struct flist *l, uint32_t f,
		      links_fn links)
{
	struct flinks *lk = links(pool, f);

	if (lk->prev != NO_FRAME)
		links(pool, lk->prev)->next = lk->next;
	else
		l->head = lk->next;
	if (lk->next != NO_FRAME)
		links(pool, lk->next)->prev = lk->prev;
	else
		l->tail = lk->prev;
	lk->prev = lk->next = NO_FRAME;
}

static void flist_init(struct flist *l)
{
	l->head = l->tail = NO_FRAME;
}

static inline unsigned long encode_handle(struct z3fold_header *zhdr,
					  uint32_t f, enum buddy bud,
					  uint16_t gen)
{
	unsigned long rot = zhdr ? (bud + zhdr->first_num) & BUDDY_MASK : 0;

	return ((unsigned long)f << FRAME_SHIFT) |
	       ((unsigned long)gen << GEN_SHIFT) | rot;
}

static inline uint32_t handle_frame(unsigned long handle)
{
	return (uint32_t)(handle >> FRAME_SHIFT);
}

static inline uint16_t handle_gen(unsigned long handle)
{
	return (uint16_t)((handle >> GEN_SHIFT) & GEN_MASK);
}

static inline enum buddy handle_to_buddy(struct z3fold_header *zhdr,
					 unsigned long handle)
{
	return (enum buddy)((handle - zhdr->first_num) & BUDDY_MASK);
}

/* The owner word of @handle in frame @f: the handle's rotated buddy bits
 * pick it, so that it is the same word for as long as the handle lives. */
static inline _Atomic uint64_t *owner_word(struct z3fold_pool *pool,
					   uint32_t f, unsigned long handle)
{
	return (_Atomic uint64_t *)pool->owners.base +
	       (size_t)f * OWNER_WORDS + (handle & BUDDY_MASK);
}

static uint16_t frame_next_gen(struct z3fold_frame *fr)
{
	if (++fr->gen == 0)
		fr->gen = 1;
	return fr->gen;
}

static uint8_t *buddy_chunks(struct z3fold_header *zhdr, enum buddy bud)
{
	switch (bud) {
	case FIRST:
		return &zhdr->first_chunks;
	case MIDDLE:
		return &zhdr->middle_chunks;
	default:
		return &zhdr->last_chunks;
	}
}

/* Offset of a buddy's object in its page; frame lock held. */
static size_t buddy_offset(struct z3fold_header *zhdr, enum buddy bud)
{
	switch (bud) {
	case FIRST:
		return ZHDR_SIZE;
	case MIDDLE:
		return (size_t)zhdr->start_middle << CHUNK_SHIFT;
	default:
		return PAGE_SIZE - ((size_t)zhdr->last_chunks << CHUNK_SHIFT);
	}
}

/* Largest free region of a buddied page in chunks, as the kernel's
 * num_free_chunks(): with a middle object, the bigger space before or
 * after it whose slot is free. */
static unsigned int num_free_chunks(struct z3fold_header *zhdr)
{
	unsigned int before, after;

	if (zhdr->middle_chunks == 0)
		return NCHUNKS - zhdr->first_chunks - zhdr->last_chunks;
	before = zhdr->first_chunks ? 0 : zhdr->start_middle - ZHDR_CHUNKS;
	after = zhdr->last_chunks ? 0 :
		TOTAL_CHUNKS - (zhdr->start_middle + zhdr->middle_chunks);
	return before > after ? before : after;
}

static bool page_has_free_slot(struct z3fold_header *zhdr)
{
	return !zhdr->first_chunks || !zhdr->middle_chunks ||
	       !zhdr->last_chunks;
}

static bool page_is_empty(struct z3fold_header *zhdr)
{
	return !zhdr->first_chunks && !zhdr->middle_chunks &&
	       !zhdr->last_chunks;
}

/* Which buddy of a page can take @chunks; frame lock held. */
static enum buddy pick_buddy(struct z3fold_header *zhdr, unsigned int chunks)
{
	if (zhdr->middle_chunks) {
		if (!zhdr->first_chunks &&
		    chunks <= (unsigned int)zhdr->start_middle - ZHDR_CHUNKS)
			return FIRST;
		if (!zhdr->last_chunks &&
		    chunks <= TOTAL_CHUNKS - zhdr->start_middle -
				      zhdr->middle_chunks)
			return LAST;
		return NO_BUDDY;
	}
	if (chunks > num_free_chunks(zhdr))
		return NO_BUDDY;
	if (!zhdr->first_chunks)
		return FIRST;
	if (!zhdr->last_chunks)
		return LAST;
	return MIDDLE;
}

static void report_invalid(struct z3fold_pool *pool, const char *op,
			   unsigned long handle)
{
	stat_add(&pool->st.invalid_ops, 1);
	fprintf(stderr, "z3fold %s: %s of invalid handle %#lx ignored\n",
		pool->name, op, handle);
}

/*
 * The frame of @handle if its side entry and owner words are mapped (they
 * stay mapped below hwm_segs), else NO_FRAME. Takes no lock.
 */
static uint32_t handle_frame_mapped(struct z3fold_pool *pool,
				    unsigned long handle)
{
	uint32_t f = handle_frame(handle);
	unsigned int hwm;

	if ((handle >> FRAME_SHIFT) > UINT32_MAX)
		return NO_FRAME;
	hwm = atomic_load_explicit(&pool->hwm_segs, memory_order_acquire);
	if (f >= ((uint64_t)hwm << SEG_SHIFT))
		return NO_FRAME;
	return f;
}

/*
 * Lock the frame of @handle if it is a page in use; returns the frame
 * number, or NO_FRAME (nothing locked) for a handle that cannot be valid.
 * Only reads the side table.
 */
static uint32_t frame_lock_handle(struct z3fold_pool *pool,
				  unsigned long handle)
{
	uint32_t f = handle_frame_mapped(pool, handle);
	struct z3fold_frame *fr;

	if (f == NO_FRAME)
		return NO_FRAME;
	fr = frame_of(pool, f);
	frame_lock(fr);
	if (fr->flags & FRAME_INUSE)
		return f;
	frame_unlock(fr);
	return NO_FRAME;
}

/*
 * Resolve @handle to its buddy in a locked in-use frame: NO_BUDDY if the
 * handle does not name a live object of that frame.
 */
static enum buddy handle_buddy_locked(struct z3fold_pool *pool, uint32_t f,
				      unsigned long handle)
{
	struct z3fold_frame *fr = frame_of(pool, f);
	struct z3fold_header *zhdr;
	enum buddy bud;

	if (fr->flags & FRAME_HEADLESS) {
		if ((handle & BUDDY_MASK) != HEADLESS ||
		    handle_gen(handle) != fr->gen ||
		    (fr->flags & FRAME_EVICTED))
			return NO_BUDDY;
		return HEADLESS;
	}
	zhdr = frame_hdr(pool, f);
	bud = handle_to_buddy(zhdr, handle);
	if (bud == HEADLESS || zhdr->gen[bud] != handle_gen(handle) ||
	    *buddy_chunks(zhdr, bud) == 0)
		return NO_BUDDY;
	return bud;
}

/*****************
 * Segments: pages from and back to the OS
 *****************/

/* Commit the side entries and owner words of the @n segments from @s
 * (what was committed already keeps what it holds). Return: 0 or
 * pagemem_commit()'s -errno. */
static int segs_commit_tables(struct z3fold_pool *pool, uint32_t s,
			      uint32_t n)
{
	int ret;

	ret = pagemem_commit(&pool->side, (size_t)s << PAGE_SHIFT,
			     (size_t)n << PAGE_SHIFT);
	if (ret)
		return ret;
	return pagemem_commit(&pool->owners, (size_t)s * OWNER_SEG_BYTES,
			      (size_t)n * OWNER_SEG_BYTES);
}

/* Commit the pages of the @n segments from @s. 0 or -ENOMEM. */
static int map_segments(struct z3fold_pool *pool, uint32_t s, uint32_t n)
{
	return pagemem_commit(&pool->pages,
			      (size_t)s << (SEG_SHIFT + PAGE_SHIFT),
			      (size_t)n << (SEG_SHIFT + PAGE_SHIFT)) ?
		       -ENOMEM : 0;
}

/* Take a segment from the OS and put its frames on the free list.
 * Called with no lock held. */
static int pool_grow(struct z3fold_pool *pool)
{
	uint32_t s, hwm, i;
	int ret = 0;

	pthread_mutex_lock(&pool->grow_lock);
	pool_lock(pool);
	if (pool->free_frames.head != NO_FRAME)
		goto out_unlock;
	for (s = 0; s < pool->nr_segs; s++)
		if (pool->seg_state[s] == SEG_UNMAPPED)
			break;
	if (s == pool->nr_segs) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	pool->seg_state[s] = SEG_MAPPING;
	pool_unlock(pool);

	hwm = atomic_load(&pool->hwm_segs);
	if ((s >= hwm && segs_commit_tables(pool, s, 1)) ||
	    map_segments(pool, s, 1)) {
		pool_lock(pool);
		pool->seg_state[s] = SEG_UNMAPPED;
		ret = -ENOMEM;
		goto out_unlock;
	}
	if (s >= hwm)
		atomic_store_explicit(&pool->hwm_segs, s + 1,
				      memory_order_release);

	pool_lock(pool);
	for (i = SEG_PAGES; i-- > 0;)
		flist_add_head(pool, &pool->free_frames, (s << SEG_SHIFT) + i,
			       lru_links);
	pool->seg_used[s] = 0;
	pool->seg_state[s] = SEG_MAPPED;
	pool->empty_segs++;
	stat_add(&pool->st.reserved_pages, SEG_PAGES);
out_unlock:
	pool_unlock(pool);
	pthread_mutex_unlock(&pool->grow_lock);
	return ret;
}

/* Hand empty segments beyond SPARE_SEGS back to the OS, highest first.
 * Called with no lock held; scans the segment table only when there is a
 * segment to return (once per SEG_PAGES freed pages at most). */
static void pool_trim(struct z3fold_pool *pool)
{
	uint32_t s, i;
	int ret;

	pool_lock(pool);
	while (pool->empty_segs > SPARE_SEGS) {
		for (s = pool->nr_segs; s-- > 0;)
			if (pool->seg_state[s] == SEG_MAPPED &&
			    pool->seg_used[s] == 0)
				break;
		if (s == UINT32_MAX)
			break;
		for (i = 0; i < SEG_PAGES; i++)
			flist_del(pool, &pool->free_frames,
				  (s << SEG_SHIFT) + i, lru_links);
		pool->seg_state[s] = SEG_UNMAPPING;
		pool->empty_segs--;
		pool_unlock(pool);

		ret = pagemem_decommit(&pool->pages,
				       (size_t)s << (SEG_SHIFT + PAGE_SHIFT),
				       (size_t)SEG_PAGES << PAGE_SHIFT);

		pool_lock(pool);
		if (ret) {
			/* Keep the segment; it stays usable. */
			for (i = SEG_PAGES; i-- > 0;)
				flist_add_head(pool, &pool->free_frames,
					       (s << SEG_SHIFT) + i, lru_links);
			pool->seg_state[s] = SEG_MAPPED;
			pool->empty_segs++;
			break;
		}
		pool->seg_state[s] = SEG_UNMAPPED;
		stat_add(&pool->st.reserved_pages, -(int64_t)SEG_PAGES);
	}
	pool_unlock(pool);
}

/* Take a free frame and lock it; pool->lock held. NO_FRAME if none. */
static uint32_t frame_take_free_locked(struct z3fold_pool *pool)
{
	uint32_t f = pool->free_frames.head;
	uint32_t s;

	if (f == NO_FRAME)
		return NO_FRAME;
	flist_del(pool, &pool->free_frames, f, lru_links);
	s = f >> SEG_SHIFT;
	if (pool->seg_used[s]++ == 0)
		pool->empty_segs--;
	frame_lock(frame_of(pool, f));
	return f;
}

/* Return an in-use frame, locked and off every list, to the free list;
 * pool->lock held. Returns whether a segment became empty. */
static bool frame_put_free_locked(struct z3fold_pool *pool, uint32_t f)
{
	struct z3fold_frame *fr = frame_of(pool, f);
	uint32_t s = f >> SEG_SHIFT;

	if (fr->flags & FRAME_HEADLESS)
		stat_add(&pool->st.headless_pages, -1);
	fr->flags = 0;
	flist_add_head(pool, &pool->free_frames, f, lru_links);
	stat_add(&pool->st.pages, -1);
	if (--pool->seg_used[s] == 0) {
		pool->empty_segs++;
		return pool->empty_segs > SPARE_SEGS;
	}
	return false;
}

/*****************
 * List placement of buddied pages
 *****************/

static void unbuddied_del_locked(struct z3fold_pool *pool, uint32_t f)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);
	unsigned int i = zhdr->unbuddied;

	if (i == NOT_LISTED)
		return;
	flist_del(pool, &pool->unbuddied[i], f, buddy_links);
	if (pool->unbuddied[i].head == NO_FRAME)
		pool->unbuddied_mask &= ~(1ull << i);
	zhdr->unbuddied = NOT_LISTED;
}

/* Put a buddied page on the unbuddied list its free space selects, if it
 * can take another object; frame lock and pool->lock held. */
static void unbuddied_add_locked(struct z3fold_pool *pool, uint32_t f)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);
	unsigned int nfree = num_free_chunks(zhdr);

	if (!page_has_free_slot(zhdr) || nfree == 0)
		return;
	flist_add_head(pool, &pool->unbuddied[nfree], f, buddy_links);
	pool->unbuddied_mask |= 1ull << nfree;
	zhdr->unbuddied = (uint8_t)nfree;
}

/* Take a page with at least @chunks free from the unbuddied lists, best fit
 * first, and lock it; pool->lock held. NO_FRAME if none can be locked. */
static uint32_t unbuddied_take_locked(struct z3fold_pool *pool,
				      unsigned int chunks)
{
	uint64_t mask = pool->unbuddied_mask & ~((1ull << chunks) - 1);
	uint32_t f;

	while (mask) {
		unsigned int i = (unsigned int)__builtin_ctzll(mask);

		mask &= mask - 1;
		for (f = pool->unbuddied[i].head; f != NO_FRAME;
		     f = buddy_links(pool, f)->next) {
			if (frame_trylock(frame_of(pool, f))) {
				unbuddied_del_locked(pool, f);
				return f;
			}
		}
	}
	return NO_FRAME;
}

static void compact_del_locked(struct z3fold_pool *pool, uint32_t f)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);

	if (!zhdr->on_compact)
		return;
	flist_del(pool, &pool->compact, f, compact_links);
	zhdr->on_compact = 0;
}

static void move_middle(struct z3fold_pool *pool, uint32_t f,
			unsigned int new_start)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);
	uint8_t *page = frame_addr(pool, f);

	memmove(page + ((size_t)new_start << CHUNK_SHIFT),
		page + ((size_t)zhdr->start_middle << CHUNK_SHIFT),
		(size_t)zhdr->middle_chunks << CHUNK_SHIFT);
	zhdr->start_middle = (uint8_t)new_start;
}

/* Which start the middle buddy should move to, or 0 if it stays (always,
 * in a pool whose pages may outlive the process). */
static unsigned int middle_target(struct z3fold_pool *pool,
				  struct z3fold_header *zhdr)
{
	unsigned int end;

	if (!zhdr->middle_chunks || pool->persistent)
		return 0;
	if (!zhdr->first_chunks && !zhdr->last_chunks)
		return ZHDR_CHUNKS;
	end = zhdr->start_middle + zhdr->middle_chunks;
	if (zhdr->first_chunks && !zhdr->last_chunks &&
	    zhdr->start_middle - (zhdr->first_chunks + ZHDR_CHUNKS) >=
		    BIG_CHUNK_GAP)
		return ZHDR_CHUNKS + zhdr->first_chunks;
	if (zhdr->last_chunks && !zhdr->first_chunks &&
	    TOTAL_CHUNKS - (zhdr->last_chunks + end) >= BIG_CHUNK_GAP)
		return TOTAL_CHUNKS - zhdr->last_chunks - zhdr->middle_chunks;
	return 0;
}

/*
 * z3fold_compact_page() - move the middle buddy where it frees most space
 * Frame lock held, page not claimed, middle not mapped. A middle buddy left
 * alone becomes FIRST: first_num is incremented so that its handle, which
 * says MIDDLE, now decodes as FIRST. Its owner word stays where it is: the
 * handle, whose rotated buddy bits pick the word, does not change.
 * Return: whether the page changed.
 */
static bool z3fold_compact_page(struct z3fold_pool *pool, uint32_t f)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);
	unsigned int target = middle_target(pool, zhdr);

	if (!target)
		return false;
	move_middle(pool, f, target);
	if (!zhdr->first_chunks && !zhdr->last_chunks) {
		zhdr->first_chunks = zhdr->middle_chunks;
		zhdr->gen[FIRST] = zhdr->gen[MIDDLE];
		zhdr->size[FIRST] = zhdr->size[MIDDLE];
		zhdr->middle_chunks = 0;
		zhdr->gen[MIDDLE] = 0;
		zhdr->size[MIDDLE] = 0;
		zhdr->start_middle = 0;
		zhdr->first_num++;
	}
	stat_add(&pool->st.compactions, 1);
	return true;
}

/*
 * Settle a buddied page that keeps objects after a free, a failed reclaim
 * or a deferred compaction: compact it if its middle buddy is not mapped
 * (else queue it for z3fold_compact()), then put it on the unbuddied list
 * its free space selects (and on the LRU head when @to_lru). Frame lock
 * held, page not claimed; takes pool->lock once. An allocator cannot use
 * the page meanwhile: it would have to trylock the frame.
 * Return: whether the middle buddy moved.
 */
static bool page_settle(struct z3fold_pool *pool, uint32_t f, bool to_lru)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);
	bool moved = false, deferred = false;

	if (zhdr->middle_mapped)
		deferred = middle_target(pool, zhdr) != 0;
	else
		moved = z3fold_compact_page(pool, f);

	pool_lock(pool);
	unbuddied_del_locked(pool, f);
	unbuddied_add_locked(pool, f);
	if (deferred && !zhdr->on_compact) {
		flist_add_head(pool, &pool->compact, f, compact_links);
		zhdr->on_compact = 1;
	} else if (!deferred) {
		compact_del_locked(pool, f);
	}
	if (to_lru)
		flist_add_head(pool, &pool->lru, f, lru_links);
	pool_unlock(pool);
	return moved;
}

/* Release a locked in-use frame that holds nothing any more: off the lists,
 * back to the free list, unlocked; empty segments go back to the OS. */
static void page_release(struct z3fold_pool *pool, uint32_t f, bool on_lru)
{
	struct z3fold_frame *fr = frame_of(pool, f);
	bool trim;

	pool_lock(pool);
	if (!(fr->flags & FRAME_HEADLESS)) {
		unbuddied_del_locked(pool, f);
		compact_del_locked(pool, f);
	}
	if (on_lru)
		flist_del(pool, &pool->lru, f, lru_links);
	trim = frame_put_free_locked(pool, f);
	pool_unlock(pool);
	frame_unlock(fr);
	if (trim)
		pool_trim(pool);
}

/*****************
 * API Functions
 *****************/

struct z3fold_pool *z3fold_create_pool(const char *name,
				       const struct z3fold_mem *mem,
				       const struct z3fold_ops *ops, void *priv)
{
	const struct z3fold_mem anon = {
		{ PAGEMEM_ANON, -1 }, { PAGEMEM_ANON, -1 }, { PAGEMEM_ANON, -1 },
	};
	long phys = sysconf(_SC_PHYS_PAGES);
	pthread_mutexattr_t attr;
	struct z3fold_pool *pool;
	size_t nr_segs;
	unsigned int i;
	int ret = -ENOMEM;

	if (phys <= 0) {
		errno = EINVAL;
		return NULL;
	}
	nr_segs = ((size_t)phys + SEG_PAGES - 1) >> SEG_SHIFT;
	if (nr_segs > (UINT32_MAX >> SEG_SHIFT))
		nr_segs = UINT32_MAX >> SEG_SHIFT;

	if (failpoint_hit() || !(pool = calloc(1, sizeof(*pool)))) {
		errno = ENOMEM;
		return NULL;
	}
	if (!mem)
		mem = &anon;
	pool->persistent = mem->pages.kind != PAGEMEM_ANON;
	snprintf(pool->name, sizeof(pool->name), "%s", name ? name : "z3fold");
	if (ops)
		pool->ops = *ops;
	pool->priv = priv;
	pool->nr_segs = (uint32_t)nr_segs;
	if (failpoint_hit() ||
	    !(pool->seg_used = calloc(nr_segs, sizeof(*pool->seg_used))))
		goto out_free_pool;
	if (failpoint_hit() ||
	    !(pool->seg_state = calloc(nr_segs, sizeof(*pool->seg_state))))
		goto out_free_seg_used;
	ret = pagemem_reserve(&pool->side, &mem->frames, nr_segs * PAGE_SIZE,
			      "z3fold frames");
	if (ret)
		goto out_free_seg_state;
	ret = pagemem_reserve(&pool->owners, &mem->owners,
			      nr_segs * OWNER_SEG_BYTES, "z3fold owners");
	if (ret)
		goto out_free_side;
	ret = pagemem_reserve(&pool->pages, &mem->pages,
			      nr_segs << (SEG_SHIFT + PAGE_SHIFT),
			      "z3fold pages");
	if (ret)
		goto out_free_owners;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&pool->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&pool->grow_lock, NULL);
	for (i = 0; i < NCHUNKS; i++)
		flist_init(&pool->unbuddied[i]);
	flist_init(&pool->lru);
	flist_init(&pool->compact);
	flist_init(&pool->free_frames);
	return pool;

out_free_owners:
	pagemem_free(&pool->owners);
out_free_side:
	pagemem_free(&pool->side);
out_free_seg_state:
	free(pool->seg_state);
out_free_seg_used:
	free(pool->seg_used);
out_free_pool:
	free(pool);
	errno = -ret;
	return NULL;
}

void z3fold_memory(struct z3fold_pool *pool, const struct pagemem **pages,
		   const struct pagemem **frames,
		   const struct pagemem **owners)
{
	*pages = &pool->pages;
	*frames = &pool->side;
	*owners = &pool->owners;
}

void z3fold_release_mappings(struct z3fold_pool *pool)
{
	if (!pool->persistent)
		return;
	pagemem_unmap_pages(&pool->pages);
	pagemem_unmap_pages(&pool->side);
	pagemem_unmap_pages(&pool->owners);
}

/*
 * z3fold_destroy_pool() - destroys an existing z3fold pool
 * The pool should be emptied before; objects still allocated are lost (and
 * reported). Teardown order: the page range first (it holds the headers
 * the lists point into), then the side table and the owner words, then
 * the segment tables.
 */
void z3fold_destroy_pool(struct z3fold_pool *pool)
{
	uint64_t left;

	if (!pool)
		return;
	left = atomic_load(&pool->st.objects);
	if (left && !pool->persistent)
		fprintf(stderr, "z3fold %s: destroyed with %llu objects\n",
			pool->name, (unsigned long long)left);
	pagemem_free(&pool->pages);
	pagemem_free(&pool->side);
	pagemem_free(&pool->owners);
	free(pool->rec);
	free(pool->seg_state);
	free(pool->seg_used);
	pthread_mutex_destroy(&pool->grow_lock);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

/* Place an object of @chunks in a locked page; returns its handle. */
static unsigned long place_buddied(struct z3fold_pool *pool, uint32_t f,
				   enum buddy bud, unsigned int chunks,
				   size_t size)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);
	uint16_t gen = frame_next_gen(frame_of(pool, f));

	if (bud == MIDDLE)
		zhdr->start_middle =
			(uint8_t)(zhdr->first_chunks + ZHDR_CHUNKS);
	*buddy_chunks(zhdr, bud) = (uint8_t)chunks;
	zhdr->gen[bud] = gen;
	zhdr->size[bud] = (uint16_t)size;
	return encode_handle(zhdr, f, bud, gen);
}

static void init_buddied_page(struct z3fold_pool *pool, uint32_t f)
{
	struct z3fold_header *zhdr = frame_hdr(pool, f);
	struct z3fold_frame *fr = frame_of(pool, f);

	memset(zhdr, 0, sizeof(*zhdr));
	zhdr->unbuddied = NOT_LISTED;
	zhdr->buddy.prev = zhdr->buddy.next = NO_FRAME;
	zhdr->compact.prev = zhdr->compact.next = NO_FRAME;
	fr->flags = FRAME_INUSE;
}

/*
 * Find a page for an object and lock it, with pool->lock held on return:
 * a buddied page from the unbuddied lists when @chunks is non-zero, else
 * (or if none fits) a free frame, growing the pool if need be; if
 * @packed, a buddied page only (-ENOSPC: none has room). *@fresh tells
 * whether the frame was free.
 */
static int page_find(struct z3fold_pool *pool, unsigned int chunks,
		     bool packed, uint32_t *fp, bool *fresh)
{
	int ret;

	for (;;) {
		pool_lock(pool);
		if (chunks) {
			*fp = unbuddied_take_locked(pool, chunks);
			if (*fp != NO_FRAME) {
				*fresh = false;
				return 0;
			}
		}
		if (packed) {
			pool_unlock(pool);
			return -ENOSPC;
		}
		*fp = frame_take_free_locked(pool);
		if (*fp != NO_FRAME) {
			*fresh = true;
			stat_add(&pool->st.pages, 1);
			return 0;
		}
		pool_unlock(pool);
		ret = pool_grow(pool);
		if (ret)
			return ret;
	}
}

/* z3fold_alloc(), or z3fold_alloc_packed() if @packed. */
static int alloc_object(struct z3fold_pool *pool, size_t size, bool packed,
			unsigned long *handle)
{
	unsigned int chunks = size_to_chunks(size);
	bool headless = size > Z3FOLD_MAX_SHARED_SIZE;
	struct z3fold_frame *fr;
	enum buddy bud;
	bool fresh;
	uint32_t f;
	int ret;

	if (!pool || !handle || size == 0)
		return -EINVAL;
	if (size > PAGE_SIZE || (packed && headless))
		return -ENOSPC;

	ret = page_find(pool, headless ? 0 : chunks, packed, &f, &fresh);
	if (ret)
		return ret;
	fr = frame_of(pool, f);
	if (headless) {
		fr->flags = FRAME_INUSE | FRAME_HEADLESS;
		fr->hsize = (uint16_t)size;
		*handle = encode_handle(NULL, f, HEADLESS, frame_next_gen(fr));
		stat_add(&pool->st.headless_pages, 1);
	} else {
		if (fresh)
			init_buddied_page(pool, f);
		else
			flist_del(pool, &pool->lru, f, lru_links);
		bud = pick_buddy(frame_hdr(pool, f), chunks);
		*handle = place_buddied(pool, f, bud, chunks, size);
		unbuddied_add_locked(pool, f);
	}
	/* Add/move the page to the beginning of the LRU */
	flist_add_head(pool, &pool->lru, f, lru_links);
	pool_unlock(pool);
	frame_unlock(fr);

	stat_add(&pool->st.objects, 1);
	stat_add(&pool->st.payload_bytes, (int64_t)size);
	stat_add(&pool->st.allocs, 1);
	return 0;
}

int z3fold_alloc(struct z3fold_pool *pool, size_t size, unsigned long *handle)
{
	return alloc_object(pool, size, false, handle);
}

int z3fold_alloc_packed(struct z3fold_pool *pool, size_t size,
			unsigned long *handle)
{
	return alloc_object(pool, size, true, handle);
}

void z3fold_free(struct z3fold_pool *pool, unsigned long handle)
{
	struct z3fold_header *zhdr;
	struct z3fold_frame *fr;
	enum buddy bud;
	size_t size;
	uint32_t f;

	f = frame_lock_handle(pool, handle);
	if (f == NO_FRAME)
		goto invalid;
	fr = frame_of(pool, f);
	bud = handle_buddy_locked(pool, f, handle);
	if (bud == NO_BUDDY) {
		frame_unlock(fr);
		goto invalid;
	}
	stat_add(&pool->st.objects, -1);
	stat_add(&pool->st.frees, 1);

	if (bud == HEADLESS) {
		stat_add(&pool->st.payload_bytes, -(int64_t)fr->hsize);
		if (fr->flags & FRAME_CLAIMED) {
			fr->flags |= FRAME_EVICTED;
			frame_unlock(fr);
			return;
		}
		page_release(pool, f, true);
		return;
	}

	zhdr = frame_hdr(pool, f);
	size = zhdr->size[bud];
	stat_add(&pool->st.payload_bytes, -(int64_t)size);
	*buddy_chunks(zhdr, bud) = 0;
	zhdr->gen[bud] = 0;
	zhdr->size[bud] = 0;
	if (bud == MIDDLE) {
		zhdr->start_middle = 0;
		zhdr->middle_mapped = 0;
	}
	if (fr->flags & FRAME_CLAIMED) {
		/* the reclaimer releases or relists the page */
		frame_unlock(fr);
		return;
	}
	if (page_is_empty(zhdr)) {
		page_release(pool, f, true);
		return;
	}
	page_settle(pool, f, false);
	frame_unlock(fr);
	return;

invalid:
	report_invalid(pool, "free", handle);
}

void *z3fold_map(struct z3fold_pool *pool, unsigned long handle)
{
	struct z3fold_header *zhdr;
	struct z3fold_frame *fr;
	enum buddy bud;
	uint8_t *addr;
	uint32_t f;

	f = frame_lock_handle(pool, handle);
	if (f == NO_FRAME)
		goto invalid;
	fr = frame_of(pool, f);
	bud = handle_buddy_locked(pool, f, handle);
	if (bud == NO_BUDDY) {
		frame_unlock(fr);
		goto invalid;
	}
	addr = frame_addr(pool, f);
	if (bud != HEADLESS) {
		zhdr = frame_hdr(pool, f);
		addr += buddy_offset(zhdr, bud);
		if (bud == MIDDLE)
			zhdr->middle_mapped++;
	}
	frame_unlock(fr);
	return addr;

invalid:
	report_invalid(pool, "map", handle);
	return NULL;
}

void z3fold_unmap(struct z3fold_pool *pool, unsigned long handle)
{
	struct z3fold_header *zhdr;
	enum buddy bud;
	uint32_t f;

	f = frame_lock_handle(pool, handle);
	if (f == NO_FRAME)
		goto invalid;
	bud = handle_buddy_locked(pool, f, handle);
	if (bud == NO_BUDDY) {
		frame_unlock(frame_of(pool, f));
		goto invalid;
	}
	zhdr = frame_hdr(pool, f);
	if (bud == MIDDLE && zhdr->middle_mapped)
		zhdr->middle_mapped--;
	frame_unlock(frame_of(pool, f));
	return;

invalid:
	report_invalid(pool, "unmap", handle);
}

size_t z3fold_object_size(struct z3fold_pool *pool, unsigned long handle)
{
	enum buddy bud;
	size_t size;
	uint32_t f;

	f = frame_lock_handle(pool, handle);
	if (f == NO_FRAME)
		return 0;
	bud = handle_buddy_locked(pool, f, handle);
	if (bud == NO_BUDDY)
		size = 0;
	else if (bud == HEADLESS)
		size = frame_of(pool, f)->hsize;
	else
		size = frame_hdr(pool, f)->size[bud];
	frame_unlock(frame_of(pool, f));
	return size;
}

void z3fold_set_owner(struct z3fold_pool *pool, unsigned long handle,
		      uint64_t owner)
{
	uint32_t f = handle_frame_mapped(pool, handle);

	if (f == NO_FRAME) {
		report_invalid(pool, "set_owner", handle);
		return;
	}
	atomic_store_explicit(owner_word(pool, f, handle), owner,
			      memory_order_relaxed);
}

uint64_t z3fold_owner(struct z3fold_pool *pool, unsigned long handle)
{
	uint32_t f = handle_frame_mapped(pool, handle);

	if (f == NO_FRAME)
		return 0;
	return atomic_load_explicit(owner_word(pool, f, handle),
				    memory_order_relaxed);
}

/*
 * Claim page @f, whose frame lock the caller took: off every list,
 * FRAME_CLAIMED set, its handles collected in evict order (middle, first,
 * last), the frame unlocked. pool->lock held.
 */
static void claim_locked(struct z3fold_pool *pool, uint32_t f,
			 unsigned long handles[3], int *nr)
{
	static const enum buddy order[] = { MIDDLE, FIRST, LAST };
	struct z3fold_frame *fr = frame_of(pool, f);
	struct z3fold_header *zhdr;
	unsigned int i;

	*nr = 0;
	flist_del(pool, &pool->lru, f, lru_links);
	fr->flags |= FRAME_CLAIMED;
	if (fr->flags & FRAME_HEADLESS) {
		handles[(*nr)++] = encode_handle(NULL, f, HEADLESS, fr->gen);
	} else {
		zhdr = frame_hdr(pool, f);
		unbuddied_del_locked(pool, f);
		compact_del_locked(pool, f);
		for (i = 0; i < 3; i++)
			if (*buddy_chunks(zhdr, order[i]))
				handles[(*nr)++] = encode_handle(
					zhdr, f, order[i],
					zhdr->gen[order[i]]);
	}
	frame_unlock(fr);
}

/*
 * Claim the LRU tail page (the first lockable one from the tail) for
 * reclaim. pool->lock held; returns NO_FRAME when every page on the LRU
 * is busy, and sets *@empty when there is none.
 */
static uint32_t reclaim_claim_locked(struct z3fold_pool *pool,
				     unsigned long handles[3], int *nr,
				     bool *empty)
{
	uint32_t f;

	*empty = pool->lru.tail == NO_FRAME;
	for (f = pool->lru.tail; f != NO_FRAME; f = lru_links(pool, f)->prev)
		if (frame_trylock(frame_of(pool, f)))
			break;
	if (f == NO_FRAME)
		return NO_FRAME;
	claim_locked(pool, f, handles, nr);
	return f;
}

/*
 * Claim the sparsest buddied page (the first lockable one from the tail
 * of the unbuddied list of most free chunks: a page put back goes to the
 * head, so the others of its list go first) for isolation. pool->lock
 * held; returns NO_FRAME when every such page is busy, and sets *@empty
 * when there is none.
 */
static uint32_t isolate_claim_locked(struct z3fold_pool *pool,
				     unsigned long handles[3], int *nr,
				     bool *empty)
{
	uint64_t mask = pool->unbuddied_mask;
	unsigned int i;
	uint32_t f;

	*empty = mask == 0;
	while (mask) {
		i = 63 - (unsigned int)__builtin_clzll(mask);
		mask &= ~(1ull << i);
		for (f = pool->unbuddied[i].tail; f != NO_FRAME;
		     f = buddy_links(pool, f)->prev) {
			if (frame_trylock(frame_of(pool, f))) {
				claim_locked(pool, f, handles, nr);
				return f;
			}
		}
	}
	return NO_FRAME;
}

/* After the evict handlers (or the migration) ran: free the page if they
 * emptied it, counted in @freed, else put it back on the lists. Returns
 * whether the page was freed. */
static bool claim_finish(struct z3fold_pool *pool, uint32_t f,
			 atomic_uint_fast64_t *freed)
{
	struct z3fold_frame *fr = frame_of(pool, f);
	bool empty;

	frame_lock(fr);
	fr->flags &= ~FRAME_CLAIMED;
	if (fr->flags & FRAME_HEADLESS)
		empty = fr->flags & FRAME_EVICTED;
	else
		empty = page_is_empty(frame_hdr(pool, f));
	if (empty) {
		page_release(pool, f, false);
		stat_add(freed, 1);
		return true;
	}
	if (fr->flags & FRAME_HEADLESS) {
		pool_lock(pool);
		flist_add_head(pool, &pool->lru, f, lru_links);
		pool_unlock(pool);
	} else {
		page_settle(pool, f, true);
	}
	frame_unlock(fr);
	return false;
}

/* z3fold_reclaim_begin() or z3fold_isolate(), as @claim chooses. */
static int claim_page(struct z3fold_pool *pool, unsigned long handles[3],
		      unsigned long *page,
		      uint32_t (*claim)(struct z3fold_pool *, unsigned long *,
					int *, bool *))
{
	bool empty;
	int nr = 0;
	uint32_t f;

	pool_lock(pool);
	f = claim(pool, handles, &nr, &empty);
	pool_unlock(pool);
	if (empty)
		return -EINVAL;
	if (f == NO_FRAME)
		return -EAGAIN;
	*page = f;
	return nr;
}

int z3fold_reclaim_begin(struct z3fold_pool *pool, unsigned long handles[3],
			 unsigned long *page)
{
	return claim_page(pool, handles, page, reclaim_claim_locked);
}

bool z3fold_reclaim_end(struct z3fold_pool *pool, unsigned long page)
{
	return claim_finish(pool, (uint32_t)page, &pool->st.reclaimed_pages);
}

int z3fold_isolate(struct z3fold_pool *pool, unsigned long handles[3],
		   unsigned long *page)
{
	return claim_page(pool, handles, page, isolate_claim_locked);
}

bool z3fold_putback(struct z3fold_pool *pool, unsigned long page)
{
	return claim_finish(pool, (uint32_t)page, &pool->st.migrated_pages);
}

int z3fold_reclaim_page(struct z3fold_pool *pool, unsigned int retries)
{
	unsigned long handles[3], page;
	unsigned int tries;
	int i, nr, ret;

	if (!pool || !pool->ops.evict || retries == 0)
		return -EINVAL;

	for (tries = 0; tries < retries; tries++) {
		nr = z3fold_reclaim_begin(pool, handles, &page);
		if (nr == -EINVAL)
			return nr;
		if (nr < 0) {
			/* every page is busy this instant */
			sched_yield();
			continue;
		}
		/* Issue the eviction callback(s) */
		for (i = 0, ret = 0; i < nr && ret == 0; i++) {
			ret = pool->ops.evict(pool, handles[i], pool->priv);
			if (ret)
				stat_add(&pool->st.evict_failures, 1);
		}
		if (z3fold_reclaim_end(pool, page))
			return 0;
	}
	return -EAGAIN;
}

unsigned int z3fold_compact(struct z3fold_pool *pool, unsigned int max_pages)
{
	unsigned int done = 0, seen;
	uint32_t f;

	for (seen = 0; seen < max_pages; seen++) {
		pool_lock(pool);
		for (f = pool->compact.tail; f != NO_FRAME;
		     f = compact_links(pool, f)->prev)
			if (frame_trylock(frame_of(pool, f)))
				break;
		if (f != NO_FRAME)
			compact_del_locked(pool, f);
		pool_unlock(pool);
		if (f == NO_FRAME)
			break;
		if (page_settle(pool, f, false))
			done++;
		frame_unlock(frame_of(pool, f));
	}
	return done;
}

uint64_t z3fold_get_pool_size(struct z3fold_pool *pool)
{
	return atomic_load(&pool->st.pages);
}

void z3fold_get_stats(struct z3fold_pool *pool, struct z3fold_stats *st)
{
	st->pages = atomic_load(&pool->st.pages);
	st->headless_pages = atomic_load(&pool->st.headless_pages);
	st->objects = atomic_load(&pool->st.objects);
	st->payload_bytes = atomic_load(&pool->st.payload_bytes);
	st->reserved_pages = atomic_load(&pool->st.reserved_pages);
	st->allocs = atomic_load(&pool->st.allocs);
	st->frees = atomic_load(&pool->st.frees);
	st->compactions = atomic_load(&pool->st.compactions);
	st->reclaimed_pages = atomic_load(&pool->st.reclaimed_pages);
	st->migrated_pages = atomic_load(&pool->st.migrated_pages);
	st->evict_failures = atomic_load(&pool->st.evict_failures);
	st->invalid_ops = atomic_load(&pool->st.invalid_ops);
}

/*****************
 * Verification
 *****************/

static int verify_fail(struct z3fold_pool *pool, uint32_t f, const char *what)
{
	fprintf(stderr, "z3fold %s: verify: frame %u: %s\n", pool->name, f,
		what);
	return -EUCLEAN;
}

/* What is wrong with the objects of a buddied page, or NULL. */
static const char *verify_objects(struct z3fold_header *zhdr)
{
	unsigned int first_end = ZHDR_CHUNKS + zhdr->first_chunks;
	unsigned int last_start = TOTAL_CHUNKS - zhdr->last_chunks;
	unsigned int bud;

	if (first_end > last_start)
		return "first and last buddies overlap";
	if (zhdr->middle_chunks &&
	    (zhdr->start_middle < first_end ||
	     zhdr->start_middle + zhdr->middle_chunks > last_start))
		return "middle buddy overlaps a neighbour";
	for (bud = FIRST; bud <= LAST; bud++) {
		unsigned int chunks = *buddy_chunks(zhdr, (enum buddy)bud);

		if ((chunks != 0) != (zhdr->gen[bud] != 0) ||
		    size_to_chunks(zhdr->size[bud]) != chunks)
			return "buddy size, chunks and generation disagree";
	}
	if (page_is_empty(zhdr))
		return "in-use page holds no object";
	return NULL;
}

/* What is wrong with the layout of a buddied page, or NULL. */
static const char *verify_layout(struct z3fold_header *zhdr)
{
	unsigned int nfree = num_free_chunks(zhdr);
	const char *bad = verify_objects(zhdr);
	unsigned int want;

	if (bad)
		return bad;
	want = page_has_free_slot(zhdr) && nfree ? nfree : NOT_LISTED;
	if (zhdr->unbuddied != want)
		return "page is on the wrong unbuddied list";
	return NULL;
}

/* Objects and payload bytes of an in-use page. */
static void verify_count(struct z3fold_pool *pool, uint32_t f,
			 uint64_t *objects, uint64_t *payload)
{
	struct z3fold_frame *fr = frame_of(pool, f);
	struct z3fold_header *zhdr;
	unsigned int bud;

	if (fr->flags & FRAME_HEADLESS) {
		(*objects)++;
		*payload += fr->hsize;
		return;
	}
	zhdr = frame_hdr(pool, f);
	for (bud = FIRST; bud <= LAST; bud++) {
		if (zhdr->gen[bud]) {
			(*objects)++;
			*payload += zhdr->size[bud];
		}
	}
}

static int verify_unbuddied(struct z3fold_pool *pool, uint64_t listed)
{
	uint64_t seen = 0;
	unsigned int i;
	uint32_t f;

	for (i = 0; i < NCHUNKS; i++) {
		if (((pool->unbuddied_mask >> i) & 1) !=
		    (pool->unbuddied[i].head != NO_FRAME))
			return verify_fail(pool, i, "unbuddied mask is stale");
		for (f = pool->unbuddied[i].head; f != NO_FRAME;
		     f = buddy_links(pool, f)->next) {
			if (frame_hdr(pool, f)->unbuddied != i)
				return verify_fail(pool, f,
						   "on an unbuddied list it "
						   "does not record");
			if (++seen > listed)
				return verify_fail(pool, f,
						   "unbuddied lists hold "
						   "pages not on the LRU");
		}
	}
	if (seen != listed)
		return verify_fail(pool, NO_FRAME,
				   "LRU pages missing from unbuddied lists");
	return 0;
}

int z3fold_verify(struct z3fold_pool *pool)
{
	uint64_t pages = 0, headless = 0, objects = 0, payload = 0,
		 listed = 0, free_frames = 0;
	uint64_t limit = (uint64_t)pool->nr_segs << SEG_SHIFT;
	const char *bad;
	uint32_t f;
	int ret = 0;

	pool_lock(pool);
	for (f = pool->lru.head; f != NO_FRAME && !ret;
	     f = lru_links(pool, f)->next) {
		struct z3fold_frame *fr = frame_of(pool, f);

		if (++pages > limit)
			ret = verify_fail(pool, f, "LRU has a cycle");
		else if ((fr->flags & (FRAME_INUSE | FRAME_CLAIMED)) !=
			 FRAME_INUSE)
			ret = verify_fail(pool, f, "LRU page not in use");
		else if (fr->flags & FRAME_HEADLESS)
			headless++;
		else if ((bad = verify_layout(frame_hdr(pool, f))))
			ret = verify_fail(pool, f, bad);
		else if (frame_hdr(pool, f)->unbuddied != NOT_LISTED)
			listed++;
		if (!ret)
			verify_count(pool, f, &objects, &payload);
	}
	for (f = pool->free_frames.head; f != NO_FRAME && !ret;
	     f = lru_links(pool, f)->next)
		if (++free_frames > limit || frame_of(pool, f)->flags)
			ret = verify_fail(pool, f, "bad free frame");
	if (!ret)
		ret = verify_unbuddied(pool, listed);
	if (!ret && (pages != atomic_load(&pool->st.pages) ||
		     headless != atomic_load(&pool->st.headless_pages) ||
		     objects != atomic_load(&pool->st.objects) ||
		     payload != atomic_load(&pool->st.payload_bytes) ||
		     pages + free_frames !=
			     atomic_load(&pool->st.reserved_pages)))
		ret = verify_fail(pool, NO_FRAME,
				  "counters disagree with the pages");
	pool_unlock(pool);
	return ret;
}

/*****************
 * Recovery
 *****************/

/* The side table and the owner words of the first @segs segments of the
 * pool's files, mapped (the high-water mark). 0 or -ENOMEM. */
static int map_side(struct z3fold_pool *pool, uint32_t segs)
{
	if (segs && segs_commit_tables(pool, 0, segs))
		return -ENOMEM;
	atomic_store(&pool->hwm_segs, segs);
	return 0;
}

/* Segments whose side table the pool's files hold. */
static int file_segs(struct z3fold_pool *pool, uint32_t *segs)
{
	struct stat sb;

	if (pagemem_fd(&pool->side) < 0 || pagemem_fd(&pool->pages) < 0 ||
	    fstat(pagemem_fd(&pool->side), &sb) < 0)
		return -EINVAL;
	*segs = (uint32_t)((uint64_t)sb.st_size >> PAGE_SHIFT);
	if (*segs > pool->nr_segs)
		*segs = pool->nr_segs;
	return 0;
}

/* Whether the pages of segment @s hold data in the pool's file (reading a
 * hole of a shared file mapping would allocate it). One SEEK_DATA: the
 * end of the data part is not asked, which on a dense file would walk the
 * rest of it for every segment. */
static bool seg_has_data(struct z3fold_pool *pool, uint32_t s)
{
	size_t start = (size_t)s << (SEG_SHIFT + PAGE_SHIFT);

	return pagemem_next_data(&pool->pages, start, NULL) <
	       start + ((size_t)SEG_PAGES << PAGE_SHIFT);
}

int z3fold_recover_begin(struct z3fold_pool *pool)
{
	uint32_t segs, s;

	/* one side-table page per segment */
	if (file_segs(pool, &segs))
		return -EINVAL;
	if (failpoint_hit() ||
	    !(pool->rec = calloc((size_t)segs << SEG_SHIFT, 1)))
		return -ENOMEM;
	pool->rec_frames = segs << SEG_SHIFT;
	if (map_side(pool, segs))
		goto out_free;
	for (s = 0; s < segs; s++) {
		if (!seg_has_data(pool, s))
			continue;
		if (map_segments(pool, s, 1))
			goto out_free;
		pool->seg_state[s] = SEG_MAPPED;
	}
	return 0;

out_free:
	free(pool->rec);
	pool->rec = NULL;
	pool->rec_frames = 0;
	return -ENOMEM;
}

/* Whether buddy @bud of a buddied page is a whole object inside the page,
 * its size, chunks and generation agreeing. */
static bool buddy_sound(struct z3fold_header *zhdr, enum buddy bud)
{
	unsigned int chunks = *buddy_chunks(zhdr, bud);

	if (!chunks || !zhdr->gen[bud] || chunks > NCHUNKS ||
	    size_to_chunks(zhdr->size[bud]) != chunks)
		return false;
	return bud != MIDDLE ||
	       (zhdr->start_middle >= ZHDR_CHUNKS &&
		zhdr->start_middle + chunks <= TOTAL_CHUNKS);
}

long z3fold_recover_ref(struct z3fold_pool *pool, unsigned long handle)
{
	uint32_t f = handle_frame(handle);
	struct z3fold_header *zhdr;
	struct z3fold_frame *fr;
	enum buddy bud;

	if ((handle >> FRAME_SHIFT) > UINT32_MAX || f >= pool->rec_frames ||
	    pool->seg_state[f >> SEG_SHIFT] != SEG_MAPPED)
		return -ESTALE;
	fr = frame_of(pool, f);
	if (!(fr->flags & FRAME_INUSE))
		return -ESTALE;
	if (fr->flags & FRAME_HEADLESS) {
		if ((handle & BUDDY_MASK) != HEADLESS ||
		    handle_gen(handle) != fr->gen || !fr->hsize ||
		    fr->hsize > PAGE_SIZE)
			return -ESTALE;
		pool->rec[f] |= 1u << HEADLESS;
		return fr->hsize;
	}
	zhdr = frame_hdr(pool, f);
	bud = handle_to_buddy(zhdr, handle);
	if (bud == HEADLESS || zhdr->gen[bud] != handle_gen(handle) ||
	    !buddy_sound(zhdr, bud))
		return -ESTALE;
	pool->rec[f] |= 1u << bud;
	return zhdr->size[bud];
}

/* Forget the buddies of a buddied page no record named; what a crash
 * left of a half-done allocation or free goes with them. */
static void forget_unnamed(struct z3fold_header *zhdr, uint8_t named)
{
	unsigned int bud;

	for (bud = FIRST; bud <= LAST; bud++) {
		if (named & (1u << bud))
			continue;
		*buddy_chunks(zhdr, (enum buddy)bud) = 0;
		zhdr->gen[bud] = 0;
		zhdr->size[bud] = 0;
		if (bud == MIDDLE)
			zhdr->start_middle = 0;
	}
	zhdr->middle_mapped = 0;
	zhdr->on_compact = 0;
	zhdr->unbuddied = NOT_LISTED;
	zhdr->buddy.prev = zhdr->buddy.next = NO_FRAME;
	zhdr->compact.prev = zhdr->compact.next = NO_FRAME;
}

/* The side entries of a segment without pages: no lock held, nothing in
 * use (generations kept, so that handles of its past never match again). */
static void forget_segment(struct z3fold_pool *pool, uint32_t s)
{
	uint32_t i;

	for (i = 0; i < SEG_PAGES; i++) {
		struct z3fold_frame *fr = frame_of(pool, (s << SEG_SHIFT) + i);

		atomic_store(&fr->lock, 0);
		fr->flags = 0;
	}
}

/* Put frame @f of a recovered segment back: in use with what was named,
 * or free. Its lock and the marks of the dead owner's operations go. */
static void recover_frame(struct z3fold_pool *pool, uint32_t f)
{
	struct z3fold_frame *fr = frame_of(pool, f);
	uint8_t named = pool->rec[f];
	uint64_t objects = 0, payload = 0;
	const char *bad;

	atomic_store(&fr->lock, 0);
	if (!named) {
		fr->flags = 0;
		flist_add_head(pool, &pool->free_frames, f, lru_links);
		return;
	}
	pool->seg_used[f >> SEG_SHIFT]++;
	stat_add(&pool->st.pages, 1);
	if (fr->flags & FRAME_HEADLESS) {
		fr->flags = FRAME_INUSE | FRAME_HEADLESS;
		stat_add(&pool->st.headless_pages, 1);
	} else {
		fr->flags = FRAME_INUSE;
		forget_unnamed(frame_hdr(pool, f), named);
		bad = verify_objects(frame_hdr(pool, f));
		if (bad)
			fprintf(stderr, "z3fold %s: recovery: frame %u: %s\n",
				pool->name, f, bad);
		unbuddied_add_locked(pool, f);
	}
	flist_add_head(pool, &pool->lru, f, lru_links);
	verify_count(pool, f, &objects, &payload);
	stat_add(&pool->st.objects, (int64_t)objects);
	stat_add(&pool->st.payload_bytes, (int64_t)payload);
}

void z3fold_recover_end(struct z3fold_pool *pool)
{
	uint32_t s, i, segs = pool->rec_frames >> SEG_SHIFT;

	pool_lock(pool);
	for (s = 0; s < segs; s++) {
		if (pool->seg_state[s] != SEG_MAPPED) {
			forget_segment(pool, s);
			continue;
		}
		pool->seg_used[s] = 0;
		for (i = SEG_PAGES; i-- > 0;)
			recover_frame(pool, (s << SEG_SHIFT) + i);
		if (pool->seg_used[s] == 0)
			pool->empty_segs++;
		stat_add(&pool->st.reserved_pages, SEG_PAGES);
	}
	pool_unlock(pool);
	free(pool->rec);
	pool->rec = NULL;
	pool->rec_frames = 0;
	pool_trim(pool);
}

/*****************
 * The image of a pool at rest
 *****************/

#define IMAGE_MAGIC	0x7a33666f6c64696dull	/* "z3foldim" */

/*
 * struct pool_image - what of a pool is not in its files: the list heads,
 * the segments' state and the counters of what the pool holds; then one
 * struct seg_image per segment below @hwm_segs
 */
struct pool_image {
	uint64_t magic;
	uint32_t nr_segs, hwm_segs, empty_segs, reserved;
	uint64_t unbuddied_mask;
	struct flist unbuddied[NCHUNKS], lru, compact, free_frames;
	uint64_t pages, headless_pages, objects, payload_bytes, reserved_pages;
};

struct seg_image {
	uint16_t used;
	uint8_t state;
	uint8_t reserved;
};

size_t z3fold_image_size(struct z3fold_pool *pool)
{
	return sizeof(struct pool_image) +
	       atomic_load(&pool->hwm_segs) * sizeof(struct seg_image);
}

void z3fold_save_image(struct z3fold_pool *pool, void *buf)
{
	struct pool_image *im = buf;
	struct seg_image *seg = (struct seg_image *)(im + 1);
	uint32_t s;

	memset(im, 0, sizeof(*im));
	pool_lock(pool);
	im->magic = IMAGE_MAGIC;
	im->nr_segs = pool->nr_segs;
	im->hwm_segs = atomic_load(&pool->hwm_segs);
	im->empty_segs = pool->empty_segs;
	im->unbuddied_mask = pool->unbuddied_mask;
	memcpy(im->unbuddied, pool->unbuddied, sizeof(im->unbuddied));
	im->lru = pool->lru;
	im->compact = pool->compact;
	im->free_frames = pool->free_frames;
	im->pages = atomic_load(&pool->st.pages);
	im->headless_pages = atomic_load(&pool->st.headless_pages);
	im->objects = atomic_load(&pool->st.objects);
	im->payload_bytes = atomic_load(&pool->st.payload_bytes);
	im->reserved_pages = atomic_load(&pool->st.reserved_pages);
	for (s = 0; s < im->hwm_segs; s++)
		seg[s] = (struct seg_image){ pool->seg_used[s],
					     pool->seg_state[s], 0 };
	pool_unlock(pool);
}

/* Whether list @l of an image names frames of its segments only. */
static bool image_list_sound(const struct flist *l, uint32_t frames)
{
	return (l->head == NO_FRAME) == (l->tail == NO_FRAME) &&
	       (l->head == NO_FRAME || (l->head < frames && l->tail < frames));
}

/* Why image @im (@len bytes) cannot be @pool's at rest; NULL if it can. */
static const char *image_refused(struct z3fold_pool *pool,
				 const struct pool_image *im, size_t len,
				 uint32_t file_segs)
{
	const struct seg_image *seg = (const struct seg_image *)(im + 1);
	uint32_t frames, s, empty = 0;
	unsigned int i;

	if (len < sizeof(*im) || im->magic != IMAGE_MAGIC)
		return "not a pool image";
	if (im->nr_segs != pool->nr_segs || im->hwm_segs > file_segs ||
	    len != sizeof(*im) + (size_t)im->hwm_segs * sizeof(*seg))
		return "of another pool size or other files";
	frames = im->hwm_segs << SEG_SHIFT;
	if (im->compact.head != NO_FRAME)
		return "a persistent pool compacts nothing";
	if (!image_list_sound(&im->lru, frames) ||
	    !image_list_sound(&im->free_frames, frames))
		return "a list outside its segments";
	for (i = 0; i < NCHUNKS; i++)
		if (!image_list_sound(&im->unbuddied[i], frames) ||
		    ((im->unbuddied_mask >> i) & 1) !=
			    (im->unbuddied[i].head != NO_FRAME))
			return "an unbuddied list outside its segments";
	for (s = 0; s < im->hwm_segs; s++) {
		if (seg[s].state != SEG_MAPPED && seg[s].state != SEG_UNMAPPED)
			return "a segment caught changing";
		if (seg[s].used > SEG_PAGES ||
		    (seg[s].state == SEG_UNMAPPED && seg[s].used))
			return "a segment's count";
		if (seg[s].state == SEG_MAPPED && !seg[s].used)
			empty++;
	}
	if (empty != im->empty_segs)
		return "the empty segments' count";
	return NULL;
}

int z3fold_load_image(struct z3fold_pool *pool, const void *buf, size_t len,
		      const char **why)
{
	const struct pool_image *im = buf;
	const struct seg_image *seg = (const struct seg_image *)(im + 1);
	uint32_t segs, s, n;

	if (file_segs(pool, &segs)) {
		*why = "not a pool on files";
		return -EINVAL;
	}
	*why = image_refused(pool, im, len, segs);
	if (*why)
		return -EINVAL;
	if (map_side(pool, im->hwm_segs))
		return -ENOMEM;
	for (s = 0; s < im->hwm_segs; s += n) {
		/* a run of mapped segments at once: one mprotect() */
		for (n = 0; s + n < im->hwm_segs &&
			    seg[s + n].state == SEG_MAPPED; n++)
			;
		if (n && map_segments(pool, s, n))
			return -ENOMEM;
		n = n ?: 1;
	}
	pool_lock(pool);
	for (s = 0; s < im->hwm_segs; s++) {
		pool->seg_used[s] = seg[s].used;
		pool->seg_state[s] = seg[s].state;
	}
	pool->empty_segs = im->empty_segs;
	pool->unbuddied_mask = im->unbuddied_mask;
	memcpy(pool->unbuddied, im->unbuddied, sizeof(im->unbuddied));
	pool->lru = im->lru;
	pool->free_frames = im->free_frames;
	atomic_store(&pool->st.pages, im->pages);
	atomic_store(&pool->st.headless_pages, im->headless_pages);
	atomic_store(&pool->st.objects, im->objects);
	atomic_store(&pool->st.payload_bytes, im->payload_bytes);
	atomic_store(&pool->st.reserved_pages, im->reserved_pages);
	pool_unlock(pool);
	return 0;
}
