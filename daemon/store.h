/*
 * store.h - the compressed store: where an evicted page goes and comes
 * back from. A page whose 64-bit words are all equal is kept as that word
 * (SAME, no payload); any other page is compressed (lz4 or zstd) into the
 * z3fold pool, or kept raw in a headless pool page when it compresses to
 * more than STORE_RAW_THRESHOLD bytes. Reclaim from the bottom moves the
 * pool's least recently filled pages to the backing file (their pages
 * become WRITTEN_BACK), in batches: the objects of up to STORE_WB_PAGES
 * pool pages in one write. The writer thread (store_writer_start()) does
 * it ahead of need: from STORE_WB_HIGH_PCT of the pool's limit down to
 * STORE_WB_LOW_PCT. Should the pool reach its limit all the same, it
 * refuses pages and the evictors reclaim themselves (store_reclaim())
 * until it is under STORE_POOL_LOW_PCT.
 *
 * Compaction by migration (the seed's movable_operations): the sparsest
 * pool page is isolated (z3fold_isolate()), each of its objects moved
 * into a fuller page with every page naming it (taken as for a
 * write-back, so that a fault waits for the move and nothing reads a
 * half-moved object; each entry made to name the new copy before the old
 * one is freed), and the page freed, or put back if an object could not
 * move. The writer thread does it on its ticks while the pool takes more
 * than its compact ratio of its objects' bytes; store_compact() does it
 * now.
 *
 * Clean-page retention: a page loaded back may keep its pool object
 * (store_retain()) while it stays unchanged, so that evicting it again
 * costs no compression and no allocation (store_restore_retained()).
 * Retained objects duplicate resident data: they are counted apart from
 * the stored ones, and they are the first thing reclaim gives up when
 * the pool needs room (store_give_up_retained(), oldest first), before
 * anything is written back.
 *
 * Deduplication (dedup.h): while it is on, a page equal to one stored
 * already (a seeded XXH3-64 finds it, a byte compare proves it) names
 * the same object instead of a new one; objects are refcounted by the
 * pages naming them. Reclaim from the bottom writes a shared object back
 * once, with every page naming it.
 *
 * The store knows pages, not regions: each object is keyed by the page it
 * holds, (region id, page index), kept in the object's z3fold owner word
 * (so in the pool's files, for a successor) and, for a shared object, in
 * its node's reverse map; reclaim from the bottom asks the pages' owner
 * (struct store_owner, given at store_init()) to give an object up, so
 * that nothing in the store points into its users.
 *
 * Private to uzswapd. Every function is thread-safe; compression state is
 * the caller's (one struct compressor per thread).
 */
#ifndef UZSWAPD_STORE_H
#define UZSWAPD_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backing.h"
#include "compress.h"
#include "dedup.h"
#include "lib/z3fold/z3fold.h"
#include "pagestate.h"

#define STORE_RAW_THRESHOLD 3072	/* compressed bytes: ~3 KiB */
#define STORE_POOL_LOW_PCT 90		/* accept again below this % */
#define STORE_WB_HIGH_PCT 85		/* the writer starts at this % */
#define STORE_WB_LOW_PCT 75		/* and stops below this % */
#define STORE_WB_PAGES 32		/* pool pages per batch, at most */
#define STORE_COMPACT_PCT 125		/* the writer compacts a pool that
					   takes more than this % of its
					   objects' bytes... */
#define STORE_COMPACT_SLACK_PCT 10	/* ...down to this much under it */
#define STORE_COMPACT_TICK_PAGES 256	/* pool pages per tick, at most... */
#define STORE_COMPACT_BUSY_PAGES 8	/* ...while pages are being stored */
#define STORE_COMPACT_MISSES 16		/* pages in a row put back: enough */
#define STORE_COMPACT_MIN_BYTES (64u << 12) /* a smaller pool is left be */
/* Retained objects queued for giving up, at most: past it the oldest
 * entry is forgotten, not given up. A tag is the retention's 16-bit LRU
 * stamp, so an entry as old as the ring may name a retention made since
 * with the same stamp (a sequential reader of 65,536 pages made every
 * one): given up at once it would undo retention itself. A copy whose
 * entry was forgotten stays reachable: write-back gives it up when it
 * meets it, and a write, an eviction or the region's end drops it. */
#define STORE_RETAIN_RING (1u << 16)

struct store;

/* The page a pool object holds: page @idx of region @region_id. The
 * object's owner word keeps the low 32 bits of @region_id: a region whose
 * id is wider has its objects refused by the owner's check at write-back
 * (they stay in the pool). */
struct store_key {
	uint64_t region_id;
	uint32_t idx;
};

/* A retained copy queued for giving up: page @key's, retained when its
 * owner tagged it @tag (so that the owner tells it from a later retention
 * of the same page, which may even keep the same object). */
struct store_retained {
	struct store_key key;
	uint32_t tag;
};

/*
 * struct store_wb - one page of a write-back batch
 * @key:    the page, from its object's owner word or reverse map (may be
 *          stale)
 * @handle: the object
 * @info:   the owner's: the page's state when it took it
 * @ref:    the owner's: what it holds while the page is taken
 * @data:   the slot the object was written to (PAGE_DATA_SLOT tagged)
 * @len:    the object's bytes
 * @move:   the page is taken for its object's move (compaction), not its
 *          write-back: a retained copy is refused, never given up
 */
struct store_wb {
	struct store_key key;
	unsigned long handle;
	uint32_t info;
	void *ref;
	uint64_t data;
	size_t len;
	bool move;
};

/* What became of a page the owner gave up (struct store_owner.settle). */
enum store_settle {
	STORE_KEEP,	/* nothing: the page is as it was taken */
	STORE_WRITTEN,	/* its object is in the backing file at @data */
	STORE_MOVED,	/* its object moved to the pool object @data */
};

/*
 * struct store_owner - who holds the stored pages' states
 * @take:   reclaim from the bottom wants the object of @wb->handle, held
 *          for page @wb->key, out of the pool: the owner takes the page
 *          (COMPRESSED -> LOADING: no fault or restore uses it meanwhile)
 *          and returns 0, or refuses with -errno: gone, held by another
 *          thread, not yet punched, or not the page of the handle (@key
 *          comes from the object's owner word, which may be stale and
 *          name any page, or none); or, if the object is the retained
 *          copy of a resident page, gives it up as @give_up does and
 *          returns -EALREADY (-EBUSY, keeping it, if @wb->move: a
 *          compaction does not undo a retention)
 * @settle: for each page taken, once the store is done with its object:
 *          STORE_WRITTEN: the object is in the backing file at
 *          @wb->data: the owner makes the entry name it and publishes
 *          WRITTEN_BACK; STORE_MOVED: it is the pool object @wb->data
 *          (compaction): the entry names it, and the page is given back
 *          COMPRESSED; STORE_KEEP: the page is given back as it was. The
 *          store frees the old copy once every page naming it is
 *          settled
 * @give_up: the pool needs room: if page @key still keeps the retained
 *          copy it was queued for with @tag (store_queue_retained()), the
 *          owner takes the flag away, then frees the copy with
 *          store_drop_retained(); returns the pool bytes freed, 0 if the
 *          page keeps none, or one retained since (the entry is stale)
 * @ctx:    passed to all three
 * @take and @settle are called on the thread that reclaims or compacts
 * (the writer, an evictor, a worker), with the store's reclaim lock held
 * and no pool lock;
 * @give_up by the writer, an evictor, or a thread whose store_retain()
 * found the queue full, with no store lock held.
 */
struct store_owner {
	int (*take)(void *ctx, struct store_wb *wb);
	void (*settle)(void *ctx, struct store *s, struct store_wb *wb,
		       enum store_settle how);
	size_t (*give_up)(void *ctx, struct store *s,
			  const struct store_key *key, uint32_t tag);
	void *ctx;
};

struct store_batch;
struct store_writer;

/*
 * struct store - the pool, the backing file and their counters
 * @pool:       the z3fold pool; thread-safe
 * @owner:      who holds the pages' states; immutable
 * @backing:    the backing file, NULL for none; set before any thread
 *              runs, thread-safe
 * @algo:       enum compress_algo for new pages (atomic: a reload may
 *              change it; stored pages keep the algorithm they were made
 *              with)
 * @level:      zstd level for new pages (atomic)
 * @pool_limit: bytes the pool may take, 0 for no limit (atomic)
 * @full:       the pool reached its limit: no page is accepted until
 *              reclaim brings it under STORE_POOL_LOW_PCT (atomic)
 * @reclaim_lock: serializes reclaim from the bottom, a batch at a time
 *              (the writer's or an evictor's), and compaction, a pool
 *              page at a time: two reclaimers at once would claim each
 *              other's pages and each conclude that the pool cannot
 *              shrink
 * @batch:      the batch being written, or the pages of the object being
 *              moved; @reclaim_lock
 * @compact_pct: the writer compacts the pool while it takes more than
 *              this % of its objects' bytes; 0: never (atomic)
 * @writer:     the writer thread, NULL when not started; set and cleared
 *              by store_writer_start()/store_writer_stop() while no other
 *              thread uses the store
 * @frees_lock: protects @frees and @nr_frees
 * @frees:      backing slots to release (a hole punch is too slow for
 *              the fault path): released by store_flush_frees()
 * @retain_lock: protects @retained, @retain_head and @nr_retained
 * @retained:   ring of STORE_RETAIN_RING pages that kept their object,
 *              oldest at @retain_head (an entry may be stale: the page
 *              was written or evicted since)
 * @dedup:      the stable index of stored objects; thread-safe
 * @dedup_on:   new pages are matched against it (atomic: a reload may
 *              change it; what is shared stays shared)
 * @seed:       the hash's seed, random per store (so that no client can
 *              aim a page at another's hash) unless an image at rest
 *              brought its predecessor's; set before any thread runs
 * @hash:       the page hash, XXH3-64 with @seed; a test may put one that
 *              collides in its place, before any page is stored
 * @st:         counters (atomic)
 */
struct store {
	struct z3fold_pool *pool;
	struct store_owner owner;
	struct backing *backing;
	atomic_int algo;
	atomic_int level;
	atomic_uint_fast64_t pool_limit;
	atomic_bool full;
	pthread_mutex_t reclaim_lock;
	struct store_batch *batch;
	atomic_uint compact_pct;
	struct store_writer *writer;
	pthread_mutex_t frees_lock;
	uint64_t *frees;
	size_t nr_frees;
	size_t cap_frees;
	pthread_mutex_t retain_lock;
	struct store_retained *retained;
	size_t retain_head, nr_retained;
	struct dedup dedup;
	atomic_bool dedup_on;
	uint64_t seed;
	uint64_t (*hash)(const void *page, size_t len, uint64_t seed);
	struct {
		atomic_uint_fast64_t compressed, same, raw, payload_bytes,
			stores, loads, failures, written_back, writebacks,
			writeback_failures, full_events, wb_batches,
			wb_bytes, wb_direct_batches, wb_busy, wb_wakeups,
			retained, retained_bytes, retain_given_up,
			migrated, compact_runs;
	} st;
};

/* Snapshot of the counters. */
struct store_stats {
	uint64_t compressed;    /* pages in the pool, compressed */
	uint64_t same;          /* pages kept as their fill word */
	uint64_t raw;           /* pages in the pool as they are */
	uint64_t payload_bytes; /* bytes of the pool's objects */
	uint64_t pool_bytes;    /* pool pages in use, in bytes */
	uint64_t pool_limit;    /* bytes; 0: none */
	uint64_t stores;        /* pages stored so far */
	uint64_t loads;         /* pages brought back so far */
	uint64_t failures;      /* stores refused (pool full) */
	uint64_t written_back;  /* pages in the backing file */
	uint64_t writebacks;    /* pages written back so far */
	uint64_t writeback_failures; /* objects the handler could not write */
	uint64_t full_events;   /* times the pool reached its limit */
	uint64_t wb_batches;    /* write-back batches written */
	uint64_t wb_bytes;      /* bytes they wrote (objects and padding) */
	uint64_t wb_direct_batches; /* of which by an evictor, pool full */
	uint64_t wb_busy;       /* objects the owner could not give up */
	uint64_t wb_wakeups;    /* times the writer started on a high pool */
	uint64_t retained;      /* objects kept for resident pages */
	uint64_t retained_bytes; /* their bytes (not in @payload_bytes) */
	uint64_t retain_given_up; /* of those, given up for room so far */
	uint64_t migrated;      /* objects moved by compaction so far */
	uint64_t compacted_pages; /* pool pages it freed so far */
	uint64_t compact_runs;  /* times the writer started compacting */
	bool full;              /* the pool refuses pages now */
	bool dedup_on;          /* new pages are deduplicated */
	struct dedup_stats dedup; /* pages shared, sharing, bytes saved... */
};

/* @pool_limit: bytes, 0 for none; @backing: NULL for none (taken over:
 * closed by store_destroy()); @owner: copied; @mem: what the pool is made
 * of (z3fold.h), NULL for anonymous memory. Return: 0 or -errno. */
int store_init(struct store *s, enum compress_algo algo, int level,
	       uint64_t pool_limit, struct backing *backing,
	       const struct store_owner *owner, const struct z3fold_mem *mem);
/* Every stored page must have been dropped or loaded, unless
 * store_hand_over() was called. */
void store_destroy(struct store *s);

/* What @s stores outlives this daemon, for a successor on the same state
 * directory: store_destroy() leaves the pool's files and the backing file
 * as they are. The pool must be persistent (store_init()'s @mem). Its
 * pages are unmapped now, while the daemon still serves
 * (z3fold_release_mappings()): O(pages mapped), and the exit then does
 * not pay it in the handover's gap. */
void store_hand_over(struct store *s);

/*
 * store_put() - store one page, held for page @key
 * @c:     the calling thread's compressor (see store_compressor_current());
 *         also decompresses an object the page may be equal to
 * @flags: set to the page's new state, PAGE_COMPRESSED or PAGE_SAME, with
 *         PAGE_ZSTD or PAGE_RAW as they apply (see pagestate.h)
 * @data:  set to the handle or the fill word
 * Return: the bytes of the object that holds it (0 for SAME; one it
 * shares with other pages counts whole, as the page's), or -ENOMEM if
 * the pool does not take it (at its limit, or no memory).
 */
int store_put(struct store *s, struct compressor *c, const uint8_t *page,
	      const struct store_key *key, uint32_t *flags, uint64_t *data);

/*
 * store_get() - the page stored as (@info, @data), written to @page; the
 * stored copy stays (drop it with store_drop() once the page is safely
 * back). Return: 0; -EAGAIN if it is written back to an export that is
 * away for now (try again later); or another -errno if the object is
 * corrupt or cannot be read back (-EIO, -EBADMSG: the export returned
 * something else, -ETIMEDOUT: the export stayed away for the timeout).
 */
int store_get(struct store *s, struct compressor *c, uint32_t info,
	      uint64_t data, uint8_t *page);

/* Page @key no longer names its copy, stored as (@info, @data): the
 * copy is freed unless other pages share it. Returns the object's bytes
 * (as store_put() counted them). */
size_t store_drop(struct store *s, const struct store_key *key,
		  uint32_t info, uint64_t data);

/*
 * store_share() - page @to holds what page @from holds, stored as
 * (@info, @data) or kept as a retained copy (@retained: @info is then
 * the copy's stored info, page_retained_copy()): a fork's copy, which
 * names the same object (counted as one more page naming it), or the
 * same fill word. Return: the pool bytes of the object (as store_put()
 * counts them; 0: same-filled or written back); -EBUSY if the object is
 * being written back or moved (try again); -ENOSPC if too many pages
 * name it; -ENOMEM.
 */
long store_share(struct store *s, const struct store_key *from,
		 uint32_t info, uint64_t data, bool retained,
		 const struct store_key *to);

/*
 * Clean-page retention. store_retain(): the COMPRESSED copy (@info, @data)
 * of page @key, just loaded, is kept; store_queue_retained(), once the
 * page says so, queues it for giving up, with the owner's @tag for this
 * retention (a full queue forgets its oldest entry).
 * store_restore_retained(): the kept copy is
 * the page's stored copy again (it was evicted unchanged).
 * store_drop_retained(): page @key's entry no longer names its kept
 * copy: freed unless other pages share it.
 * Each returns the object's pool bytes. Any thread.
 */
size_t store_retain(struct store *s, uint32_t info, uint64_t data);
void store_queue_retained(struct store *s, const struct store_key *key,
			  uint32_t tag);
size_t store_restore_retained(struct store *s, uint32_t info, uint64_t data);
size_t store_drop_retained(struct store *s, const struct store_key *key,
			   uint64_t data);

/*
 * store_give_up_retained() - ask the owner to give up queued retained
 * copies, oldest first, until the pool is under @mark bytes or none is
 * queued (0: the pool has no limit; nothing is given up). Return: the
 * retained copies freed.
 */
size_t store_give_up_retained(struct store *s, uint64_t mark);

/*
 * Recovery (a successor's; see z3fold.h): store_recover_begin(), then
 * store_recover_ref() for each stored page its records name, then
 * store_recover_end(), before any other call. Objects no page names are
 * freed; the counters and the backing file's slot map are rebuilt from
 * the names, and each pooled object's owner word is written again.
 */
int store_recover_begin(struct store *s);

/* Page @key is stored as @info with @data: keep what it names (a pooled
 * object's owner word is set to @key: a pool written before owner words
 * existed has none, a crash may have torn one); a copy named by several
 * pages is shared by them again. Return: the pool bytes its object
 * takes (0: same-filled or written back); -ESTALE if the store holds no
 * such copy (the page is lost); -ENOMEM if no memory to count the copy
 * (the page is lost too: a touch gets SIGBUS, never another page's data
 * or zeros). */
long store_recover_ref(struct store *s, uint32_t info, uint64_t data,
		       const struct store_key *key);

void store_recover_end(struct store *s);

/*
 * The image at rest (z3fold.h): what the store holds that is not in its
 * files, so that a successor on the same files (store_hand_over()) takes
 * it over in O(1) instead of recovering it page by page.
 * store_image_size() first releases the slots queued for release, then
 * gives the image's size; store_save_image() writes it into @buf. Both
 * with no other call in flight and none to come (the daemon at rest).
 * store_load_image(), instead of the recovery, on a store just made on
 * the files of one at rest: 0; -EINVAL (*@why says why; nothing changed:
 * recover instead); -ENOMEM.
 */
size_t store_image_size(struct store *s);
void store_save_image(struct store *s, void *buf);
int store_load_image(struct store *s, const void *buf, size_t len,
		     const char **why);

/*
 * store_reclaim() - if the pool is at its limit, reclaim from the bottom
 * (write batches back) until it is under STORE_POOL_LOW_PCT of it, a
 * batch at a time between the writer's. Return: true if the pool accepts
 * pages again. Evictor threads.
 */
bool store_reclaim(struct store *s);

/* Whether the pool is under its low mark (STORE_POOL_LOW_PCT of its
 * limit), or has no limit. */
bool store_pool_low(struct store *s);

/*
 * The writer thread: started with the evictors, stopped before
 * store_hand_over() or store_destroy(). It sleeps until a store
 * (store_put()) or a new limit (store_set_pool_limit()) finds the pool at
 * STORE_WB_HIGH_PCT of its limit, then writes batches back until it is
 * under STORE_WB_LOW_PCT, or a batch frees nothing (it then waits a
 * little before it tries again); otherwise, every WB_TICK_MS, it releases
 * the backing slots freed (store_flush_frees()) and compacts the pool if
 * it is loose (store_set_compact_ratio()). A recovery neither stores nor
 * sets a limit, and frees no slot: the writer never runs into one.
 * Without a backing file it only compacts.
 * store_writer_start(): 0 or -errno (no writer: reclaim stays the
 * evictors').
 */
int store_writer_start(struct store *s);
void store_writer_stop(struct store *s);

/* Release the backing slots freed since the last call (their holes are
 * punched). Evictor threads, and the writer between its runs (every
 * 100 ms while the pool needs no write-back). */
void store_flush_frees(struct store *s);

/* Change the pool limit (bytes, 0 for none). */
void store_set_pool_limit(struct store *s, uint64_t bytes);

/*
 * store_compact() - compact the pool now: move the objects of up to
 * @max_pages of its sparsest pages into fuller ones (and first compact
 * every page whose middle object could not move while mapped). *@freed
 * is increased by the pool pages freed. Return: true when nothing more
 * is to be gained now (no page to isolate, or none of the @max_pages
 * freed: their objects were busy or found no room); false to call
 * again. Any thread but the loop's (each pool page
 * takes the reclaim lock, which a write-back holds across its I/O).
 */
bool store_compact(struct store *s, unsigned int max_pages,
		   unsigned int *freed);

/* The writer compacts while the pool takes more than @pct % of its
 * objects' bytes (0: never). */
void store_set_compact_ratio(struct store *s, unsigned int pct);

/* Deduplicate new pages if @on, no node shared by more than
 * @max_sharing pages; what is shared stays shared either way. */
void store_set_dedup(struct store *s, bool on, unsigned int max_sharing);

/* Compress new pages with @algo (zstd at @level) from now on; pages
 * stored before keep theirs. */
void store_set_compressor(struct store *s, enum compress_algo algo, int level);

/* Does @c still compress the way the store wants (algorithm, level)?
 * If not, the caller makes a new one. Return: 0 or -errno. */
int store_compressor_current(struct store *s, struct compressor **c);

void store_get_stats(struct store *s, struct store_stats *st);

#endif /* UZSWAPD_STORE_H */
