/*
 * store.c - the compressed store; see store.h.
 *
 * store_put(): same-filled check (one pass over the page, stops at the
 * first differing word) -> compress into a stack buffer with the raw
 * threshold as capacity (both compressors give up early on incompressible
 * data) -> z3fold_alloc() -> the object's owner word set to the key
 * (region id, page index), which reclaim needs -> copy in under
 * z3fold_map(); only then is the handle handed to the caller, who
 * publishes it. A store that leaves the pool at its writer's high mark
 * wakes the writer.
 *
 * Reclaim from the bottom, a batch at a time (write_back_batch()):
 * z3fold_reclaim_begin() claims the least recently filled pool pages, up
 * to STORE_WB_PAGES; for each object on them the key comes from its owner
 * word, and the owner takes the page (COMPRESSED -> LOADING, so no fault
 * or restore can use it meanwhile; the word of an object freed meanwhile
 * may name any page: the owner refuses a page whose entry does not name
 * the handle, one another thread holds, or one not yet punched by its
 * evictor); the objects taken are copied into the batch's buffer, back to
 * back in 512-byte units, and written with one backing_write_batch()
 * (one by one if the file has no run that long); then the owner publishes
 * each page WRITTEN_BACK and only then does the store free the pool's
 * copy (written_back()), or the owner gives the page back if its write
 * failed; and z3fold_reclaim_end() releases the pool pages emptied (the
 * others go back on the lists). At every instant the entry names a copy
 * that exists: the handle until the publish, the slot after.
 *
 * Who reclaims: the writer thread, ahead of need, from STORE_WB_HIGH_PCT
 * of the limit down to STORE_WB_LOW_PCT, so that evictions rarely find
 * the pool full; and an evictor that does (store_reclaim(), counted as
 * direct), down to STORE_POOL_LOW_PCT.
 *
 * Deduplication (store_put(), while on): the page's seeded XXH3-64
 * looks up the stable index (dedup.c); each node found is pinned, its
 * object decompressed and compared with the page byte for byte, and an
 * equal one is joined: the page names that object, nothing is
 * compressed or allocated. A page that matches nothing (or a chain whose
 * nodes are all full, then as a dup) gets a new object and a node. Every
 * free of a page's copy (store_drop(), store_drop_retained()) goes
 * through the index, which frees the object only with its last page.
 * Reclaim takes every page naming an object (dedup_freeze() keeps new
 * ones off meanwhile, dedup_refs() proves none was missed), writes the
 * object once, and moves the node to the slot before any page is
 * published there.
 *
 * Compaction (compact_page()): the sparsest pool page is isolated, and
 * each of its objects moved as a write-back would write it: its pages
 * taken, the object copied into a new one in a fuller page
 * (z3fold_alloc_packed(), allocated first: nothing is taken for an
 * object with no room), the pages settled STORE_MOVED, the old object
 * freed; then the page is put back, freed if it is empty.
 *
 * Retained objects (clean-page retention) are given up before any
 * write-back: both reclaimers first ask the owner to drop the oldest
 * queued ones (store_give_up_retained()), and write back only what that
 * could not free. The queue is a ring of keys; a key goes stale when its
 * page is written or evicted, and the owner skips it.
 *
 * Lock order: reclaim_lock (one batch, or one compacted pool page, at a
 * time), then z3fold's locks, which are never held while calling the
 * owner; the writer's wlock, retain_lock and the stable index's lock are
 * taken alone.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/common/clock.h"
#include "lib/common/debug.h"
#include "log.h"
#include "store.h"
#include "thread.h"

#define STAT_ADD(s, field, n) \
	atomic_fetch_add_explicit(&(s)->st.field, (uint_fast64_t)(n), \
				  memory_order_relaxed)

#define WB_OBJECTS	(3 * STORE_WB_PAGES)
/* A pool page's objects, each padded to a unit: at most this much. */
#define WB_PAGE_BYTES	(Z3FOLD_PAGE_SIZE + 3 * BACKING_UNIT)
#define WB_BUF_BYTES	(STORE_WB_PAGES * WB_PAGE_BYTES)
#define WB_RETRY_MS	20	/* after a batch that freed nothing */
#define WB_TICK_MS	100	/* backing slots freed are released */
#define DEDUP_TRIES	4	/* nodes of one hash compared, at most */

/*
 * struct wb_object - an object of a write-back batch
 * @handle:  the object
 * @info:    how it was stored (PAGE_ZSTD, PAGE_RAW)
 * @first:   its pages: @nr entries of the batch's @wb from @first
 * @shared:  it has a node in the stable index (frozen while written)
 */
struct wb_object {
	unsigned long handle;
	uint32_t info;
	unsigned int first, nr;
	bool shared;
};

/*
 * struct store_batch - a write-back batch; the store's reclaim_lock
 * @pages:    the pool pages claimed (z3fold_reclaim_begin())
 * @obj:      the objects whose pages the owner gave up
 * @lens:     their sizes; @slots where they went; @written whether
 * @wb:       the pages taken, each object's together (@nr_wb of
 *            @cap_wb)
 * @keys:     the pages naming an object (dedup_freeze()), @cap_keys
 * @buf:      the objects back to back, each padded to BACKING_UNIT;
 *            4096-aligned for direct I/O
 * @bytes:    bytes of @buf in use
 */
struct store_batch {
	unsigned long pages[STORE_WB_PAGES];
	unsigned int nr_pages, nr;
	struct wb_object obj[WB_OBJECTS];
	size_t lens[WB_OBJECTS];
	uint64_t slots[WB_OBJECTS];
	bool written[WB_OBJECTS];
	struct store_wb *wb;
	size_t nr_wb, cap_wb;
	uint64_t *keys;
	size_t cap_keys;
	uint8_t *buf;
	size_t bytes;
};

/*
 * struct store_writer - the writer thread
 * @thread:  its id; store_writer_start()/stop() only
 * @wlock:   protects @kicked and @stop
 * @cond:    where the writer waits for a kick
 * @kicked:  the pool reached the high mark (or its limit changed)
 * @stop:    store_writer_stop() asked it to end
 * @busy:    it is writing back: no need to kick it (atomic)
 * @compact_idle: the pool's generation (allocations and frees) when a
 *           compaction last gained nothing; the writer's only
 * @compact_allocs: the pool's allocations at the last tick; the
 *           writer's only
 */
struct store_writer {
	pthread_t thread;
	pthread_mutex_t wlock;
	pthread_cond_t cond;
	bool kicked;
	bool stop;
	atomic_bool busy;
	uint64_t compact_idle;
	uint64_t compact_allocs;
};

/* A write-back I/O error was logged (once per process). */
static atomic_bool io_error_logged;

static void writer_kick(struct store *s);

/*****************
 * Owner words: the page an object holds
 *****************/

/* The owner word of an object held for @key: its region id (low 32 bits)
 * over its page index. */
static uint64_t key_to_owner(const struct store_key *key)
{
	return (uint64_t)key->region_id << 32 | key->idx;
}

static void owner_to_key(uint64_t owner, struct store_key *key)
{
	key->region_id = owner >> 32;
	key->idx = (uint32_t)owner;
}

/*****************
 * Store and load
 *****************/

/* The store's write-back batch: 0 or -ENOMEM. */
static int batch_new(struct store *s)
{
	s->batch = calloc(1, sizeof(*s->batch));
	if (!s->batch)
		return -ENOMEM;
	s->batch->buf = aligned_alloc(Z3FOLD_PAGE_SIZE, WB_BUF_BYTES);
	if (!s->batch->buf) {
		free(s->batch);
		s->batch = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void batch_free(struct store_batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->wb);
	free(b->keys);
	free(b);
}

static uint64_t page_hash(const void *page, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(page, len, seed);
}

int store_init(struct store *s, enum compress_algo algo, int level,
	       uint64_t pool_limit, struct backing *backing,
	       const struct store_owner *owner, const struct z3fold_mem *mem)
{
	memset(s, 0, sizeof(*s));
	s->pool = z3fold_create_pool("uzswap", mem, NULL, s);
	if (!s->pool)
		return -errno;
	s->retained = calloc(STORE_RETAIN_RING, sizeof(*s->retained));
	if (!s->retained || batch_new(s))
		goto out_free;
	if (dedup_init(&s->dedup, &s->st.payload_bytes,
		       &s->st.retained_bytes))
		goto out_free;
	if (getrandom(&s->seed, sizeof(s->seed), 0) != sizeof(s->seed))
		s->seed = (uint64_t)clock_now_ns() ^ (uint64_t)getpid() << 32;
	s->hash = page_hash;
	s->owner = *owner;
	s->backing = backing;
	atomic_init(&s->algo, algo);
	atomic_init(&s->level, level);
	atomic_init(&s->pool_limit, pool_limit);
	pthread_mutex_init(&s->reclaim_lock, NULL);
	pthread_mutex_init(&s->frees_lock, NULL);
	pthread_mutex_init(&s->retain_lock, NULL);
	return 0;

out_free:
	batch_free(s->batch);
	s->batch = NULL;
	free(s->retained);
	z3fold_destroy_pool(s->pool);
	return -ENOMEM;
}

void store_hand_over(struct store *s)
{
	z3fold_release_mappings(s->pool);
	if (s->backing)
		backing_hand_over(s->backing);
}

void store_destroy(struct store *s)
{
	store_writer_stop(s);
	store_flush_frees(s);
	z3fold_destroy_pool(s->pool);
	s->pool = NULL;
	if (s->backing)
		backing_close(s->backing);
	batch_free(s->batch);
	free(s->frees);
	free(s->retained);
	dedup_destroy(&s->dedup);
	pthread_mutex_destroy(&s->reclaim_lock);
	pthread_mutex_destroy(&s->frees_lock);
	pthread_mutex_destroy(&s->retain_lock);
}

/* Whether @page repeats one 64-bit word; *@word is that word. */
static bool same_filled(const uint8_t *page, uint64_t *word)
{
	const uint64_t *w = (const uint64_t *)page;
	size_t i;

	for (i = 1; i < PAGE_SIZE / sizeof(*w); i++)
		if (w[i] != w[0])
			return false;
	*word = w[0];
	return true;
}

static uint64_t pool_bytes(struct store *s)
{
	return z3fold_get_pool_size(s->pool) * Z3FOLD_PAGE_SIZE;
}

/* The pool reached its limit: refuse pages until reclaim. At its
 * writer's high mark, wake the writer. */
static void check_limit(struct store *s)
{
	uint64_t limit = atomic_load(&s->pool_limit), bytes = pool_bytes(s);
	bool was = false;

	if (!limit)
		return;
	if (bytes >= limit / 100 * STORE_WB_HIGH_PCT)
		writer_kick(s);
	if (bytes >= limit &&
	    atomic_compare_exchange_strong(&s->full, &was, true))
		STAT_ADD(s, full_events, 1);
}

static int decompress(struct compressor *c, uint32_t info, const void *obj,
		      size_t n, uint8_t *page)
{
	if (info & PAGE_RAW) {
		if (n != PAGE_SIZE)
			return -EIO;
		memcpy(page, obj, PAGE_SIZE);
		return 0;
	}
	return compressor_decompress(c, info & PAGE_ZSTD ? COMPRESS_ZSTD
							 : COMPRESS_LZ4,
				     obj, n, page, PAGE_SIZE);
}

/* A page counted in (+1) or out (-1) of the stored ones, as @info says. */
static void count_page(struct store *s, uint32_t info, int sign)
{
	if (info & PAGE_RAW)
		STAT_ADD(s, raw, sign);
	else
		STAT_ADD(s, compressed, sign);
}

/*****************
 * Deduplication
 *****************/

/* Whether the object of pinned @m holds exactly @page. */
static bool same_content(struct store *s, struct compressor *c,
			 const struct dedup_match *m, const uint8_t *page)
{
	uint8_t copy[PAGE_SIZE];
	const uint8_t *obj = z3fold_map(s->pool, m->data);
	bool same;

	if (!obj)
		return false;
	if (m->flags & PAGE_RAW)
		same = m->size == PAGE_SIZE && !memcmp(obj, page, PAGE_SIZE);
	else
		same = !decompress(c, m->flags, obj, m->size, copy) &&
		       !memcmp(copy, page, PAGE_SIZE);
	z3fold_unmap(s->pool, m->data);
	return same;
}

/* Release the pin of @m; the object goes if that was its last hold. */
static void unpin(struct store *s, const struct dedup_match *m,
		  bool differed)
{
	if (dedup_unpin(&s->dedup, m, differed))
		z3fold_free(s->pool, m->data);
}

/*
 * share() - make page @key name an object equal to @page (hash @hash),
 * if there is one with room: *@flags and *@data say which.
 * Return: its bytes; 0 if none was joined. *@m is left pinned on the
 * first node of a chain of equal objects that are all full (@m->node
 * DEDUP_NO_NODE otherwise): the new object is to be its dup.
 */
static int share(struct store *s, struct compressor *c, const uint8_t *page,
		 uint64_t hash, const struct store_key *key, uint32_t *flags,
		 uint64_t *data, struct dedup_match *m)
{
	unsigned int tries;
	int ret;

	m->node = DEDUP_NO_NODE;
	for (tries = 0; tries < DEDUP_TRIES; tries++) {
		if (!dedup_lookup(&s->dedup, hash, m))
			break;
		if (!same_content(s, c, m, page)) {
			unpin(s, m, true);
			continue;
		}
		ret = dedup_join(&s->dedup, m, key_to_owner(key));
		if (ret == -ENOSPC)
			return 0;
		if (ret)
			break;
		*flags = PAGE_COMPRESSED | m->flags;
		*data = m->data;
		m->node = DEDUP_NO_NODE;
		return (int)m->size;
	}
	m->node = DEDUP_NO_NODE;
	return 0;
}

/* The object @handle (@flags, @n bytes) just made for page @key: into
 * the stable index (a dup of pinned @m, if it names a node), which
 * counts its bytes, or counted by the store. */
static void index_new(struct store *s, uint64_t hash, unsigned long handle,
		      uint32_t flags, size_t n, const struct store_key *key,
		      struct dedup_match *m)
{
	bool dup = m->node != DEDUP_NO_NODE;

	if (dedup_insert(&s->dedup, &hash, handle, flags, n,
			 key_to_owner(key), dup ? m : NULL))
		STAT_ADD(s, payload_bytes, n);
	if (dup)
		unpin(s, m, false);
}

/*****************
 * Store and load
 *****************/

int store_put(struct store *s, struct compressor *c, const uint8_t *page,
	      const struct store_key *key, uint32_t *flags, uint64_t *data)
{
	struct dedup_match m = { .node = DEDUP_NO_NODE };
	bool dedup = atomic_load_explicit(&s->dedup_on, memory_order_relaxed);
	uint8_t buf[STORE_RAW_THRESHOLD];
	const uint8_t *src = buf;
	unsigned long handle;
	uint64_t hash = 0;
	size_t n;
	int shared;

	if (same_filled(page, data)) {
		*flags = PAGE_SAME;
		STAT_ADD(s, same, 1);
		STAT_ADD(s, stores, 1);
		return 0;
	}
	if (atomic_load(&s->full))
		goto out_refused;
	if (dedup) {
		hash = s->hash(page, PAGE_SIZE, s->seed);
		shared = share(s, c, page, hash, key, flags, data, &m);
		if (shared) {
			STAT_ADD(s, stores, 1);
			count_page(s, *flags, 1);
			return shared;
		}
	}
	n = compressor_compress(c, page, PAGE_SIZE, buf, sizeof(buf));
	*flags = PAGE_COMPRESSED;
	if (n == 0) {
		n = PAGE_SIZE;
		src = page;
		*flags |= PAGE_RAW;
	} else if (compressor_algo(c) == COMPRESS_ZSTD) {
		*flags |= PAGE_ZSTD;
	}
	if (z3fold_alloc(s->pool, n, &handle)) {
		if (m.node != DEDUP_NO_NODE)
			unpin(s, &m, false);
		goto out_refused;
	}
	z3fold_set_owner(s->pool, handle, key_to_owner(key));
	memcpy(z3fold_map(s->pool, handle), src, n);
	z3fold_unmap(s->pool, handle);
	if (dedup)
		index_new(s, hash, handle, *flags, n, key, &m);
	else
		STAT_ADD(s, payload_bytes, n);
	*data = handle;
	STAT_ADD(s, stores, 1);
	count_page(s, *flags, 1);
	check_limit(s);
	return (int)n;

out_refused:
	STAT_ADD(s, failures, 1);
	return -ENOMEM;
}

static uint64_t wb_slot(uint64_t data)
{
	return (data & ~PAGE_DATA_SLOT) >> PAGE_WB_LEN_BITS;
}

static size_t wb_len(uint64_t data)
{
	return (size_t)(data & ((1u << PAGE_WB_LEN_BITS) - 1));
}

int store_get(struct store *s, struct compressor *c, uint32_t info,
	      uint64_t data, uint8_t *page)
{
	uint8_t obj[BACKING_MAX_OBJECT];
	uint64_t *w = (uint64_t *)page;
	const uint8_t *mapped;
	size_t i, n;
	int ret;

	STAT_ADD(s, loads, 1);
	switch (page_state(info)) {
	case PAGE_SAME:
		for (i = 0; i < PAGE_SIZE / sizeof(*w); i++)
			w[i] = data;
		return 0;
	case PAGE_WRITTEN_BACK:
		n = wb_len(data);
		if (!s->backing)
			return -EIO;
		ret = backing_read(s->backing, wb_slot(data), obj, n);
		return ret ? ret : decompress(c, info, obj, n, page);
	default:
		n = z3fold_object_size(s->pool, data);
		mapped = z3fold_map(s->pool, data);
		if (!mapped || n == 0)
			return -EIO;
		ret = decompress(c, info, mapped, n, page);
		z3fold_unmap(s->pool, data);
		return ret;
	}
}

/* Queue a backing slot for release by store_flush_frees(). */
static void defer_free(struct store *s, uint64_t data)
{
	uint64_t *grown;

	pthread_mutex_lock(&s->frees_lock);
	if (s->nr_frees == s->cap_frees) {
		size_t cap = s->cap_frees ? 2 * s->cap_frees : 256;

		grown = realloc(s->frees, cap * sizeof(*grown));
		if (!grown) {
			/* release it here, slowly, rather than leak it */
			pthread_mutex_unlock(&s->frees_lock);
			backing_free(s->backing, wb_slot(data), wb_len(data));
			return;
		}
		s->frees = grown;
		s->cap_frees = cap;
	}
	s->frees[s->nr_frees++] = data;
	pthread_mutex_unlock(&s->frees_lock);
}

void store_flush_frees(struct store *s)
{
	uint64_t *todo;
	size_t n, i;

	pthread_mutex_lock(&s->frees_lock);
	todo = s->frees;
	n = s->nr_frees;
	s->frees = NULL;
	s->nr_frees = s->cap_frees = 0;
	pthread_mutex_unlock(&s->frees_lock);
	for (i = 0; i < n; i++)
		backing_free(s->backing, wb_slot(todo[i]), wb_len(todo[i]));
	free(todo);
}

/* Page @key lets go of object @data (a handle, or a slot if @slot),
 * which it kept as a retained copy if @retained: whether the object
 * goes, and if so whether the store counts its bytes (it has no node). */
static bool let_go(struct store *s, const struct store_key *key,
		   uint64_t data, bool retained, bool *counted)
{
	enum dedup_put put = dedup_put(&s->dedup, data, key_to_owner(key),
				       retained);

	*counted = put == DEDUP_NONE;
	return put != DEDUP_KEPT;
}

size_t store_drop(struct store *s, const struct store_key *key,
		  uint32_t info, uint64_t data)
{
	bool counted;
	size_t n;

	switch (page_state(info)) {
	case PAGE_SAME:
		STAT_ADD(s, same, -1);
		return 0;
	case PAGE_WRITTEN_BACK:
		if (let_go(s, key, data, false, &counted))
			defer_free(s, data);
		STAT_ADD(s, written_back, -1);
		return 0;
	default:
		n = z3fold_object_size(s->pool, data);
		if (let_go(s, key, data, false, &counted))
			z3fold_free(s->pool, data);
		if (counted)
			STAT_ADD(s, payload_bytes, -(int64_t)n);
		count_page(s, info, -1);
		return n;
	}
}

long store_share(struct store *s, const struct store_key *from,
		 uint32_t info, uint64_t data, bool retained,
		 const struct store_key *to)
{
	size_t n = 0;
	int ret;

	switch (page_state(info)) {
	case PAGE_SAME:
		STAT_ADD(s, same, 1);
		return 0;
	case PAGE_WRITTEN_BACK:
		break;
	default:
		n = z3fold_object_size(s->pool, data);
		break;
	}
	ret = dedup_share(&s->dedup, data, info & PAGE_OBJECT_FLAGS, n,
			  key_to_owner(from), retained, key_to_owner(to));
	if (ret)
		return ret;
	if (page_state(info) == PAGE_WRITTEN_BACK)
		STAT_ADD(s, written_back, 1);
	else
		count_page(s, info, 1);
	return (long)n;
}

/*****************
 * Clean-page retention
 *****************/

/* A page whose object is @n bytes (as @info says) leaves (@sign -1) or
 * joins (+1) the stored pages, and joins or leaves the retained ones.
 * The object's bytes move with it unless its node keeps them. */
static void move_retained(struct store *s, uint32_t info, uint64_t data,
			  size_t n, int sign)
{
	count_page(s, info, sign);
	STAT_ADD(s, retained, -sign);
	if (dedup_retain(&s->dedup, data, -sign))
		return;
	STAT_ADD(s, payload_bytes, sign * (int64_t)n);
	STAT_ADD(s, retained_bytes, -sign * (int64_t)n);
}

size_t store_retain(struct store *s, uint32_t info, uint64_t data)
{
	size_t n = z3fold_object_size(s->pool, data);

	move_retained(s, info, data, n, -1);
	return n;
}

size_t store_restore_retained(struct store *s, uint32_t info, uint64_t data)
{
	size_t n = z3fold_object_size(s->pool, data);

	move_retained(s, info, data, n, 1);
	return n;
}

size_t store_drop_retained(struct store *s, const struct store_key *key,
			   uint64_t data)
{
	size_t n = z3fold_object_size(s->pool, data);
	bool counted;

	if (let_go(s, key, data, true, &counted))
		z3fold_free(s->pool, data);
	STAT_ADD(s, retained, -1);
	if (counted)
		STAT_ADD(s, retained_bytes, -(int64_t)n);
	return n;
}

/* Take the oldest queued entry into *@e; false if none is queued. */
static bool pop_retained(struct store *s, struct store_retained *e)
{
	bool got;

	pthread_mutex_lock(&s->retain_lock);
	got = s->nr_retained > 0;
	if (got) {
		*e = s->retained[s->retain_head];
		s->retain_head = (s->retain_head + 1) % STORE_RETAIN_RING;
		s->nr_retained--;
	}
	pthread_mutex_unlock(&s->retain_lock);
	return got;
}

/* Ask the owner to give up the copy @e names; whether it freed one. */
static bool give_up_one(struct store *s, const struct store_retained *e)
{
	if (!s->owner.give_up(s->owner.ctx, s, &e->key, e->tag))
		return false;
	STAT_ADD(s, retain_given_up, 1);
	return true;
}

void store_queue_retained(struct store *s, const struct store_key *key,
			  uint32_t tag)
{
	pthread_mutex_lock(&s->retain_lock);
	if (s->nr_retained == STORE_RETAIN_RING) {
		/* forgotten, not given up: see STORE_RETAIN_RING */
		s->retain_head = (s->retain_head + 1) % STORE_RETAIN_RING;
		s->nr_retained--;
	}
	s->retained[(s->retain_head + s->nr_retained) % STORE_RETAIN_RING] =
		(struct store_retained){ *key, tag };
	s->nr_retained++;
	pthread_mutex_unlock(&s->retain_lock);
}

size_t store_give_up_retained(struct store *s, uint64_t mark)
{
	struct store_retained e;
	size_t freed = 0;

	while (mark && pool_bytes(s) >= mark && pop_retained(s, &e))
		freed += give_up_one(s, &e);
	return freed;
}

/*****************
 * Recovery
 *****************/

int store_recover_begin(struct store *s)
{
	return z3fold_recover_begin(s->pool);
}

/* The first page naming object @data (@n bytes, or a slot), just
 * checked: a node, so that any later page naming it shares it. */
static long recover_first(struct store *s, uint32_t info, uint64_t data,
			  long n, const struct store_key *key)
{
	if (dedup_insert(&s->dedup, NULL, data, info, (size_t)n,
			 key_to_owner(key), NULL))
		return -ENOMEM;
	return n;
}

long store_recover_ref(struct store *s, uint32_t info, uint64_t data,
		       const struct store_key *key)
{
	size_t size;
	long n;
	int repeat;

	if (page_state(info) == PAGE_SAME) {
		STAT_ADD(s, same, 1);
		return 0;
	}
	if (page_state(info) != PAGE_COMPRESSED &&
	    page_state(info) != PAGE_WRITTEN_BACK)
		return -ESTALE;
	repeat = dedup_recover_repeat(&s->dedup, data, key_to_owner(key),
				      &size);
	if (repeat < 0)
		return repeat;
	if (page_state(info) == PAGE_WRITTEN_BACK) {
		if (!repeat &&
		    (!s->backing || !(data & PAGE_DATA_SLOT) ||
		     backing_recover_ref(s->backing, wb_slot(data),
					 wb_len(data))))
			return -ESTALE;
		n = repeat ? 0 : recover_first(s, info, data, 0, key);
		if (n == 0)
			STAT_ADD(s, written_back, 1);
		return n;
	}
	if (repeat) {
		n = (long)size;
	} else {
		n = z3fold_recover_ref(s->pool, data);
		if (n < 0)
			return n;
		z3fold_set_owner(s->pool, data, key_to_owner(key));
		n = recover_first(s, info, data, n, key);
		if (n < 0)
			return n;
	}
	count_page(s, info, 1);
	return n;
}

void store_recover_end(struct store *s)
{
	z3fold_recover_end(s->pool);
	dedup_recover_end(&s->dedup);
}

/*****************
 * The image at rest
 *****************/

#define STORE_IMAGE_MAGIC	0x757a73746f72656bull	/* "uzstorek" */

/*
 * struct store_image - the counters of what the store holds (retained
 * objects apart: pagestate.h's PAGE_RETAINED), then the pool's image
 * (@pool_len bytes), the backing file's slot map's (@backing_len bytes,
 * 0: no backing file) and the stable index's (@dedup_len bytes), each
 * starting 8-byte aligned (zeros between)
 */
struct store_image {
	uint64_t magic;
	uint64_t compressed, same, raw, payload_bytes, written_back;
	uint64_t retained, retained_bytes;
	uint64_t pool_len, backing_len, dedup_len;
};

/* @len bytes, 8-byte aligned. */
static size_t aligned8(uint64_t len)
{
	return (size_t)(len + 7) & ~(size_t)7;
}

/* Bytes of the pool's, the slot map's and the stable index's images. */
static void image_parts(struct store *s, size_t *pool, size_t *backing,
			size_t *dedup)
{
	*pool = z3fold_image_size(s->pool);
	*backing = s->backing ? backing_image_size(s->backing) : 0;
	*dedup = dedup_image_size(&s->dedup);
}

size_t store_image_size(struct store *s)
{
	size_t pool, backing, dedup;

	store_flush_frees(s);
	image_parts(s, &pool, &backing, &dedup);
	return sizeof(struct store_image) + aligned8(pool) +
	       aligned8(backing) + dedup;
}

void store_save_image(struct store *s, void *buf)
{
	struct store_image *im = buf;
	char *part = (char *)(im + 1);
	size_t pool, backing, dedup;

	image_parts(s, &pool, &backing, &dedup);
	*im = (struct store_image){
		.magic = STORE_IMAGE_MAGIC,
		.compressed = atomic_load(&s->st.compressed),
		.same = atomic_load(&s->st.same),
		.raw = atomic_load(&s->st.raw),
		.payload_bytes = atomic_load(&s->st.payload_bytes),
		.written_back = atomic_load(&s->st.written_back),
		.retained = atomic_load(&s->st.retained),
		.retained_bytes = atomic_load(&s->st.retained_bytes),
		.pool_len = pool,
		.backing_len = backing,
		.dedup_len = dedup,
	};
	memset(part, 0, aligned8(pool) + aligned8(backing));
	z3fold_save_image(s->pool, part);
	part += aligned8(pool);
	if (s->backing)
		backing_save_image(s->backing, part);
	part += aligned8(backing);
	dedup_save_image(&s->dedup, s->seed, part);
}

int store_load_image(struct store *s, const void *buf, size_t len,
		     const char **why)
{
	const struct store_image *im = buf;
	const char *pool = (const char *)(im + 1), *map, *dedup;
	int ret;

	*why = "not a store image";
	if (len < sizeof(*im) || im->magic != STORE_IMAGE_MAGIC ||
	    im->pool_len > len || im->backing_len > len ||
	    im->dedup_len > len ||
	    sizeof(*im) + aligned8(im->pool_len) + aligned8(im->backing_len) +
			    im->dedup_len != len)
		return -EINVAL;
	map = pool + aligned8(im->pool_len);
	dedup = map + aligned8(im->backing_len);
	*why = "a backing file's slot map that does not fit this one";
	if (im->backing_len &&
	    (!s->backing ||
	     !backing_image_fits(s->backing, map, im->backing_len)))
		return -EINVAL;
	ret = dedup_load_image(&s->dedup, dedup, im->dedup_len, &s->seed, why);
	if (ret)
		return ret;
	ret = z3fold_load_image(s->pool, pool, im->pool_len, why);
	if (ret) {
		/* nothing changed: the index goes back to empty */
		dedup_clear(&s->dedup);
		return ret;
	}
	if (im->backing_len)
		backing_load_image(s->backing, map, im->backing_len);
	atomic_store(&s->st.compressed, im->compressed);
	atomic_store(&s->st.same, im->same);
	atomic_store(&s->st.raw, im->raw);
	atomic_store(&s->st.payload_bytes, im->payload_bytes);
	atomic_store(&s->st.written_back, im->written_back);
	atomic_store(&s->st.retained, im->retained);
	atomic_store(&s->st.retained_bytes, im->retained_bytes);
	*why = NULL;
	return 0;
}

/*****************
 * Reclaim from the bottom
 *****************/

/* A write to the backing file failed with @ret: full (ENOSPC) is the
 * evictor's to report, an export that went away (EAGAIN) its backend's;
 * an I/O error is worth an error line, once. */
static void note_failure(int ret)
{
	if (ret != -ENOSPC && ret != -EAGAIN &&
	    !atomic_exchange(&io_error_logged, true))
		log_err("store", "writing back to the backing file: %s; "
			"pages stay in the pool (logged once)",
			strerror(-ret));
}

/* Room for @n more pages in @b. 0 or -ENOMEM. */
static int batch_reserve(struct store_batch *b, size_t n)
{
	struct store_wb *grown;
	size_t cap;

	if (b->nr_wb + n <= b->cap_wb)
		return 0;
	cap = b->nr_wb + n > 2 * b->cap_wb ? b->nr_wb + n : 2 * b->cap_wb;
	grown = realloc(b->wb, cap * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	b->wb = grown;
	b->cap_wb = cap;
	return 0;
}

/* Give every page of the object being taken (from @first) back. */
static void batch_untake(struct store *s, struct store_batch *b,
			 size_t first)
{
	for (; b->nr_wb > first; b->nr_wb--)
		s->owner.settle(s->owner.ctx, s, &b->wb[b->nr_wb - 1],
				STORE_KEEP);
}

/* Ask the owner for the @nr pages @keys name, holding @handle, for its
 * write-back, or its move if @move; they are appended to @b's pages.
 * Return: false if one refused (busy). */
static bool batch_take_pages(struct store *s, struct store_batch *b,
			     unsigned long handle, const uint64_t *keys,
			     int nr, bool move)
{
	bool busy = false;
	int i, ret;

	for (i = 0; i < nr; i++) {
		struct store_wb *wb = &b->wb[b->nr_wb];

		memset(wb, 0, sizeof(*wb));
		wb->handle = handle;
		wb->move = move;
		owner_to_key(keys[i], &wb->key);
		ret = s->owner.take(s->owner.ctx, wb);
		if (ret == 0)
			b->nr_wb++;
		else if (ret == -EALREADY)
			STAT_ADD(s, retain_given_up, 1);
		else
			busy = true;
	}
	return !busy;
}

/*
 * batch_take() - take every page naming the object of @handle (one,
 * from its owner word, or those of its node, frozen meanwhile) into the
 * batch's pages, for its write-back or, if @move, its move; all or none.
 * Return: the pages taken; 0 if each was a retained copy, given up (the
 * object is gone, or about to be); -EBUSY if a page was busy (none
 * taken).
 */
static int batch_take(struct store *s, struct store_batch *b,
		      unsigned long handle, bool move, bool *shared)
{
	uint64_t owner = z3fold_owner(s->pool, handle);
	size_t first = b->nr_wb;
	const uint64_t *keys = &owner;
	bool all;
	int nr;

	nr = dedup_freeze(&s->dedup, handle, &b->keys, &b->cap_keys);
	*shared = nr > 0;
	if (nr < 0 || batch_reserve(b, nr > 0 ? (size_t)nr : 1)) {
		if (nr > 0)
			dedup_thaw(&s->dedup, handle);
		return -EBUSY;
	}
	if (*shared)
		keys = b->keys;
	all = batch_take_pages(s, b, handle, keys, *shared ? nr : 1, move);
	/* a page that let go since the freeze is not there to take */
	if (*shared && all &&
	    dedup_refs(&s->dedup, handle) != b->nr_wb - first)
		all = false;
	if (!all)
		batch_untake(s, b, first);
	if (*shared && b->nr_wb == first)
		dedup_thaw(&s->dedup, handle);
	return all ? (int)(b->nr_wb - first) : -EBUSY;
}

/* The object of @handle, whose pages from @first the owner gave up,
 * appended to @b's buffer; or its pages given back if it cannot be
 * read. */
static void batch_add(struct store *s, struct store_batch *b,
		      unsigned long handle, size_t first, bool shared)
{
	size_t n = z3fold_object_size(s->pool, handle);
	size_t padded = (n + BACKING_UNIT - 1) & ~(size_t)(BACKING_UNIT - 1);
	const void *obj = z3fold_map(s->pool, handle);
	struct wb_object *o = &b->obj[b->nr];
	size_t i;

	if (!obj || n == 0) {
		if (obj)
			z3fold_unmap(s->pool, handle);
		batch_untake(s, b, first);
		if (shared)
			dedup_thaw(&s->dedup, handle);
		return;
	}
	memcpy(b->buf + b->bytes, obj, n);
	z3fold_unmap(s->pool, handle);
	memset(b->buf + b->bytes + n, 0, padded - n);
	*o = (struct wb_object){ handle, b->wb[first].info & PAGE_OBJECT_FLAGS,
				 (unsigned int)first,
				 (unsigned int)(b->nr_wb - first), shared };
	for (i = first; i < b->nr_wb; i++)
		b->wb[i].len = n;
	b->lens[b->nr++] = n;
	b->bytes += padded;
}

/* Claim up to STORE_WB_PAGES pool pages from the bottom, and put in the
 * batch every object of theirs whose pages the owner gives up. */
static void batch_fill(struct store *s, struct store_batch *b)
{
	unsigned long handles[3];
	size_t first;
	bool shared;
	int i, nr, ret;

	b->nr = b->nr_pages = 0;
	b->nr_wb = 0;
	b->bytes = 0;
	while (b->nr_pages < STORE_WB_PAGES) {
		nr = z3fold_reclaim_begin(s->pool, handles,
					  &b->pages[b->nr_pages]);
		if (nr < 0)
			break;
		b->nr_pages++;
		for (i = 0; i < nr; i++) {
			first = b->nr_wb;
			ret = batch_take(s, b, handles[i], false, &shared);
			if (ret > 0)
				batch_add(s, b, handles[i], first, shared);
			else if (ret < 0)
				STAT_ADD(s, wb_busy, 1);
		}
	}
}

/* The batch's objects are not in one run: write them one by one. Returns
 * how many were written; b->written[i] says which. */
static unsigned int batch_write_each(struct store *s, struct store_batch *b)
{
	unsigned int i, done = 0;
	size_t off = 0;
	int ret;

	for (i = 0; i < b->nr; i++) {
		ret = backing_write(s->backing, b->buf + off, b->lens[i],
				    &b->slots[i]);
		b->written[i] = ret == 0;
		done += ret == 0;
		if (ret) {
			STAT_ADD(s, writeback_failures, 1);
			note_failure(ret);
		}
		off += (b->lens[i] + BACKING_UNIT - 1) &
		       ~(size_t)(BACKING_UNIT - 1);
	}
	return done;
}

/* Write the batch to the backing file, for an evictor if @direct;
 * returns the objects written. */
static unsigned int batch_write(struct store *s, struct store_batch *b,
				bool direct)
{
	unsigned int i;
	int ret;

	if (b->nr == 0)
		return 0;
	ret = backing_write_batch(s->backing, b->buf, b->lens, b->nr,
				  b->slots);
	if (ret == -ENOSPC)
		return batch_write_each(s, b);
	for (i = 0; i < b->nr; i++)
		b->written[i] = ret == 0;
	if (ret) {
		STAT_ADD(s, writeback_failures, b->nr);
		note_failure(ret);
		return 0;
	}
	STAT_ADD(s, wb_batches, 1);
	if (direct)
		STAT_ADD(s, wb_direct_batches, 1);
	STAT_ADD(s, wb_bytes, b->bytes);
	return b->nr;
}

/* Object @o of the batch is in the backing file at @data and its @nr
 * pages name it there: free the pool's copy. */
static void written_back(struct store *s, const struct wb_object *o,
			 size_t n)
{
	z3fold_free(s->pool, o->handle);
	if (!o->shared)
		STAT_ADD(s, payload_bytes, -(int64_t)n);
	count_page(s, o->info, -(int)o->nr);
	STAT_ADD(s, written_back, o->nr);
	STAT_ADD(s, writebacks, o->nr);
}

/* Object @i of the batch was written (or not): its node goes to the slot
 * first, so that a page published there finds it; then each page is
 * settled; then the pool's copy goes. */
static void batch_settle(struct store *s, struct store_batch *b,
			 unsigned int i)
{
	const struct wb_object *o = &b->obj[i];
	uint64_t data = PAGE_DATA_SLOT | b->slots[i] << PAGE_WB_LEN_BITS |
			b->lens[i];
	unsigned int k;

	if (o->shared && b->written[i])
		dedup_move(&s->dedup, o->handle, data, true);
	else if (o->shared)
		dedup_thaw(&s->dedup, o->handle);
	for (k = o->first; k < o->first + o->nr; k++) {
		b->wb[k].data = data;
		s->owner.settle(s->owner.ctx, s, &b->wb[k],
				b->written[i] ? STORE_WRITTEN : STORE_KEEP);
	}
	if (b->written[i])
		written_back(s, o, b->lens[i]);
}

/*
 * write_back_batch() - one batch of reclaim from the bottom: claim pool
 * pages, take their objects' pages from the owner, one write to the
 * backing file, have the owner publish each page written back, free
 * the objects written, release the pool pages emptied. reclaim_lock
 * held; @direct: for an evictor that found the pool full.
 * Return: pool pages freed; -ENOENT if there is nothing to claim (or no
 * backing file, or it is an export that is away).
 */
static long write_back_batch(struct store *s, bool direct)
{
	struct store_batch *b = s->batch;
	unsigned int i;
	long freed = 0;

	assert_held(&s->reclaim_lock);
	/* an export that is away would fail the write: take no page */
	if (!s->backing || !b || !backing_ready(s->backing))
		return -ENOENT;
	batch_fill(s, b);
	if (b->nr_pages == 0)
		return -ENOENT;
	batch_write(s, b, direct);
	for (i = 0; i < b->nr; i++)
		batch_settle(s, b, i);
	for (i = 0; i < b->nr_pages; i++)
		freed += z3fold_reclaim_end(s->pool, b->pages[i]);
	return freed;
}

/* The pool's bytes at @pct percent of its limit; 0: no limit. */
static uint64_t pool_mark(struct store *s, unsigned int pct)
{
	return atomic_load(&s->pool_limit) / 100 * pct;
}

/* A batch under way may have brought the pool under its low mark. */
static void update_full(struct store *s)
{
	if (pool_bytes(s) < pool_mark(s, STORE_POOL_LOW_PCT))
		atomic_store(&s->full, false);
}

bool store_reclaim(struct store *s)
{
	bool ok;

	if (!atomic_load(&s->full))
		return true;
	store_give_up_retained(s, pool_mark(s, STORE_POOL_LOW_PCT));
	pthread_mutex_lock(&s->reclaim_lock);
	update_full(s);
	while (atomic_load(&s->full) && pool_mark(s, 100) &&
	       pool_bytes(s) >= pool_mark(s, STORE_POOL_LOW_PCT)) {
		if (write_back_batch(s, true) <= 0)
			break;
	}
	if (!pool_mark(s, 100))
		atomic_store(&s->full, false);
	else
		update_full(s);
	ok = !atomic_load(&s->full);
	pthread_mutex_unlock(&s->reclaim_lock);
	return ok;
}

bool store_pool_low(struct store *s)
{
	return !pool_mark(s, 100) ||
	       pool_bytes(s) < pool_mark(s, STORE_POOL_LOW_PCT);
}

/*****************
 * Compaction by migration
 *****************/

/*
 * migrate_object() - move the object of @handle, on an isolated pool
 * page, into a fuller page, with every page naming it: taken (as for a
 * write-back), the object copied to a new one, its node moved, each page
 * made to name the new one and given back, the old one freed. At every
 * instant each entry names a whole copy. reclaim_lock held.
 * Return: 0 (moved, or gone); -EBUSY (a page was busy, or keeps it as a
 * retained copy: it stays); -ENOSPC (no page has room: it stays).
 */
static int migrate_object(struct store *s, struct store_batch *b,
			  unsigned long handle)
{
	size_t n = z3fold_object_size(s->pool, handle), k;
	unsigned long to;
	bool shared;
	int ret;

	/* the room first: no page is taken for an object that cannot move */
	if (!n || z3fold_alloc_packed(s->pool, n, &to))
		return -ENOSPC;
	b->nr_wb = 0;
	ret = batch_take(s, b, handle, true, &shared);
	if (ret <= 0) {
		z3fold_free(s->pool, to);
		return ret;
	}
	memcpy(z3fold_map(s->pool, to), z3fold_map(s->pool, handle), n);
	z3fold_unmap(s->pool, handle);
	z3fold_unmap(s->pool, to);
	z3fold_set_owner(s->pool, to, z3fold_owner(s->pool, handle));
	if (shared)
		dedup_move(&s->dedup, handle, to, false);
	for (k = 0; k < b->nr_wb; k++) {
		b->wb[k].data = to;
		s->owner.settle(s->owner.ctx, s, &b->wb[k], STORE_MOVED);
	}
	z3fold_free(s->pool, handle);
	STAT_ADD(s, migrated, 1);
	return 0;
}

/*
 * compact_page() - isolate the pool's sparsest page and move its objects
 * out (the kernel's isolate / migrate / putback). Takes reclaim_lock.
 * Return: 1 if the page was freed; 0 if it was put back (an object busy,
 * or with no room elsewhere: the next page of its kind is tried first
 * next time); -ENOENT if no page can be isolated.
 */
static int compact_page(struct store *s)
{
	unsigned long handles[3], page;
	bool freed;
	int i, nr;

	pthread_mutex_lock(&s->reclaim_lock);
	nr = z3fold_isolate(s->pool, handles, &page);
	if (nr < 0) {
		pthread_mutex_unlock(&s->reclaim_lock);
		return -ENOENT;
	}
	for (i = 0; i < nr; i++)
		migrate_object(s, s->batch, handles[i]);
	freed = z3fold_putback(s->pool, page);
	pthread_mutex_unlock(&s->reclaim_lock);
	return freed;
}

/* The bytes of the objects in the pool: stored and retained. */
static uint64_t object_bytes(struct store *s)
{
	return atomic_load(&s->st.payload_bytes) +
	       atomic_load(&s->st.retained_bytes);
}

/* Whether the pool takes more than @pct percent of its objects' bytes. */
static bool pool_looser_than(struct store *s, unsigned int pct)
{
	return pool_bytes(s) > object_bytes(s) / 100 * pct;
}

bool store_compact(struct store *s, unsigned int max_pages,
		   unsigned int *freed)
{
	unsigned int tried, now = 0;
	int ret = 0;

	/* middle buddies that could not move when a neighbour went */
	z3fold_compact(s->pool, UINT_MAX);
	for (tried = 0; tried < max_pages; tried++) {
		ret = compact_page(s);
		if (ret < 0)
			break;
		now += (unsigned int)ret;
	}
	*freed += now;
	return ret < 0 || now == 0;
}

/* A number that changes whenever an object comes or goes; *@allocs:
 * the objects made so far. */
static uint64_t pool_generation(struct store *s, uint64_t *allocs)
{
	struct z3fold_stats zs;

	z3fold_get_stats(s->pool, &zs);
	*allocs = zs.allocs;
	return zs.allocs + zs.frees;
}

/* The writer's tick: compact while the pool is looser than its ratio
 * (down to STORE_COMPACT_SLACK_PCT under it), STORE_COMPACT_TICK_PAGES
 * pool pages at most, or STORE_COMPACT_BUSY_PAGES while pages are being
 * stored (the holes fill up by themselves then, and a page being moved
 * makes its fault wait), stopping after STORE_COMPACT_MISSES pages in a
 * row that stayed. A run that found nothing to do (no page to isolate,
 * or that many pages in a row that stayed, and none freed) is not tried
 * again until an object came or went (a pool of objects too small to
 * pack any tighter stays loose). */
static void compact_background(struct store *s, struct store_writer *w)
{
	unsigned int pct = atomic_load(&s->compact_pct), low, tried, max;
	unsigned int freed = 0, misses = 0;
	uint64_t allocs, gen = pool_generation(s, &allocs);
	int ret = 0;

	max = allocs != w->compact_allocs ? STORE_COMPACT_BUSY_PAGES
					  : STORE_COMPACT_TICK_PAGES;
	w->compact_allocs = allocs;
	if (!pct || pool_bytes(s) < STORE_COMPACT_MIN_BYTES ||
	    gen == w->compact_idle || !pool_looser_than(s, pct))
		return;
	STAT_ADD(s, compact_runs, 1);
	low = pct > STORE_COMPACT_SLACK_PCT ? pct - STORE_COMPACT_SLACK_PCT
					    : pct;
	for (tried = 0; tried < max && misses < STORE_COMPACT_MISSES &&
	     pool_looser_than(s, low); tried++) {
		ret = compact_page(s);
		if (ret < 0)
			break;
		freed += (unsigned int)ret;
		misses = ret ? 0 : misses + 1;
	}
	/* nothing to isolate, or a whole row of pages stayed */
	if (!freed && (ret < 0 || misses >= STORE_COMPACT_MISSES))
		w->compact_idle = pool_generation(s, &allocs);
}

void store_set_compact_ratio(struct store *s, unsigned int pct)
{
	atomic_store(&s->compact_pct, pct);
}

/*****************
 * The writer
 *****************/

static void writer_kick(struct store *s)
{
	struct store_writer *w = s->writer;

	/* with no backing file there is nothing to write back */
	if (!w || !s->backing ||
	    atomic_load_explicit(&w->busy, memory_order_relaxed))
		return;
	pthread_mutex_lock(&w->wlock);
	w->kicked = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->wlock);
}

/* Wait for a kick, at most WB_TICK_MS; or, if @ms, for @ms whatever the
 * kicks (a batch freed nothing: the pages are busy or the file takes no
 * more). *@kicked says whether it came. Returns false once the writer is
 * to stop. */
static bool writer_wait(struct store_writer *w, long ms, bool *kicked)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (ms ? ms : WB_TICK_MS) * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&w->wlock);
	if (ms)
		w->kicked = false;
	while (!w->kicked && !w->stop &&
	       pthread_cond_timedwait(&w->cond, &w->wlock, &ts) != ETIMEDOUT)
		;
	*kicked = w->kicked;
	w->kicked = false;
	stop = w->stop;
	pthread_mutex_unlock(&w->wlock);
	return !stop;
}

/* Write batches back until the pool is under the writer's low mark.
 * Returns false if a batch freed nothing (busy pages, a full file, no
 * file). */
static bool writer_run(struct store *s)
{
	long freed = 1;

	STAT_ADD(s, wb_wakeups, 1);
	store_give_up_retained(s, pool_mark(s, STORE_WB_LOW_PCT));
	while (pool_mark(s, 100) &&
	       pool_bytes(s) >= pool_mark(s, STORE_WB_LOW_PCT)) {
		pthread_mutex_lock(&s->reclaim_lock);
		freed = write_back_batch(s, false);
		update_full(s);
		pthread_mutex_unlock(&s->reclaim_lock);
		if (freed <= 0)
			break;
	}
	store_flush_frees(s);
	return freed > 0;
}

static void *writer_main(void *arg)
{
	struct store *s = arg;
	struct store_writer *w = s->writer;
	long wait_ms = 0;
	bool kicked;

	while (writer_wait(w, wait_ms, &kicked)) {
		if (!kicked) {
			store_flush_frees(s);
			compact_background(s, w);
			wait_ms = 0;
			continue;
		}
		atomic_store(&w->busy, true);
		wait_ms = writer_run(s) ? 0 : WB_RETRY_MS;
		atomic_store(&w->busy, false);
		/* a kick missed while busy: look at the pool again */
		if (pool_mark(s, 100) &&
		    pool_bytes(s) >= pool_mark(s, STORE_WB_HIGH_PCT) &&
		    !wait_ms)
			writer_kick(s);
	}
	return NULL;
}

int store_writer_start(struct store *s)
{
	struct store_writer *w;
	pthread_condattr_t attr;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->wlock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	s->writer = w;
	ret = thread_create(&w->thread, "uzswapd-wb", writer_main, s);
	if (ret) {
		s->writer = NULL;
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->wlock);
		free(w);
	}
	return ret;
}

void store_writer_stop(struct store *s)
{
	struct store_writer *w = s->writer;

	if (!w)
		return;
	pthread_mutex_lock(&w->wlock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->wlock);
	pthread_join(w->thread, NULL);
	s->writer = NULL;
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->wlock);
	free(w);
}

void store_set_pool_limit(struct store *s, uint64_t bytes)
{
	atomic_store(&s->pool_limit, bytes);
	if (!bytes || pool_bytes(s) < bytes / 100 * STORE_POOL_LOW_PCT)
		atomic_store(&s->full, false);
	check_limit(s);
}

void store_set_dedup(struct store *s, bool on, unsigned int max_sharing)
{
	dedup_set_max_sharing(&s->dedup, max_sharing);
	atomic_store(&s->dedup_on, on);
}

void store_set_compressor(struct store *s, enum compress_algo algo, int level)
{
	atomic_store(&s->level, level);
	atomic_store(&s->algo, algo);
}

int store_compressor_current(struct store *s, struct compressor **c)
{
	enum compress_algo algo = atomic_load(&s->algo);
	int level = atomic_load(&s->level);
	struct compressor *n;

	if (*c && compressor_algo(*c) == algo &&
	    (algo == COMPRESS_LZ4 || compressor_level(*c) == level))
		return 0;
	n = compressor_create(algo, level);
	if (!n)
		return -errno;
	compressor_destroy(*c);
	*c = n;
	return 0;
}

void store_get_stats(struct store *s, struct store_stats *st)
{
	struct z3fold_stats zs;

	z3fold_get_stats(s->pool, &zs);
	st->compressed = atomic_load(&s->st.compressed);
	st->same = atomic_load(&s->st.same);
	st->raw = atomic_load(&s->st.raw);
	st->payload_bytes = atomic_load(&s->st.payload_bytes);
	st->pool_bytes = pool_bytes(s);
	st->pool_limit = atomic_load(&s->pool_limit);
	st->stores = atomic_load(&s->st.stores);
	st->loads = atomic_load(&s->st.loads);
	st->failures = atomic_load(&s->st.failures);
	st->written_back = atomic_load(&s->st.written_back);
	st->writebacks = atomic_load(&s->st.writebacks);
	st->writeback_failures = atomic_load(&s->st.writeback_failures);
	st->full_events = atomic_load(&s->st.full_events);
	st->wb_batches = atomic_load(&s->st.wb_batches);
	st->wb_bytes = atomic_load(&s->st.wb_bytes);
	st->wb_direct_batches = atomic_load(&s->st.wb_direct_batches);
	st->wb_busy = atomic_load(&s->st.wb_busy);
	st->wb_wakeups = atomic_load(&s->st.wb_wakeups);
	st->retained = atomic_load(&s->st.retained);
	st->retained_bytes = atomic_load(&s->st.retained_bytes);
	st->retain_given_up = atomic_load(&s->st.retain_given_up);
	st->migrated = atomic_load(&s->st.migrated);
	st->compact_runs = atomic_load(&s->st.compact_runs);
	st->compacted_pages = zs.migrated_pages;
	st->full = atomic_load(&s->full);
	st->dedup_on = atomic_load(&s->dedup_on);
	dedup_get_stats(&s->dedup, &st->dedup);
}
