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
 * each page WRITTEN_BACK and only then frees the pool's copy
 * (store_written_back()), or gives the page back if its write failed; and
 * z3fold_reclaim_end() releases the pool pages emptied (the others go
 * back on the lists). At every instant the entry names a copy that
 * exists: the handle until the publish, the slot after.
 *
 * Who reclaims: the writer thread, ahead of need, from STORE_WB_HIGH_PCT
 * of the limit down to STORE_WB_LOW_PCT, so that evictions rarely find
 * the pool full; and an evictor that does (store_reclaim(), counted as
 * direct), down to STORE_POOL_LOW_PCT.
 *
 * Retained objects (clean-page retention) are given up before any
 * write-back: both reclaimers first ask the owner to drop the oldest
 * queued ones (store_give_up_retained()), and write back only what that
 * could not free. The queue is a ring of keys; a key goes stale when its
 * page is written or evicted, and the owner skips it.
 *
 * Lock order: reclaim_lock (one batch at a time), then z3fold's locks,
 * which are never held while calling the owner; the writer's wlock and
 * retain_lock are taken alone.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * struct store_batch - a write-back batch; the store's reclaim_lock
 * @pages:    the pool pages claimed (z3fold_reclaim_begin())
 * @wb:       the objects whose pages the owner gave up
 * @lens:     their sizes; @slots where they went; @written whether
 * @buf:      the objects back to back, each padded to BACKING_UNIT;
 *            4096-aligned for direct I/O
 * @bytes:    bytes of @buf in use
 */
struct store_batch {
	unsigned long pages[STORE_WB_PAGES];
	unsigned int nr_pages, nr;
	struct store_wb wb[WB_OBJECTS];
	size_t lens[WB_OBJECTS];
	uint64_t slots[WB_OBJECTS];
	bool written[WB_OBJECTS];
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
 */
struct store_writer {
	pthread_t thread;
	pthread_mutex_t wlock;
	pthread_cond_t cond;
	bool kicked;
	bool stop;
	atomic_bool busy;
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

int store_init(struct store *s, enum compress_algo algo, int level,
	       uint64_t pool_limit, struct backing *backing,
	       const struct store_owner *owner, const struct z3fold_mem *mem)
{
	memset(s, 0, sizeof(*s));
	s->pool = z3fold_create_pool("uzswap", mem, NULL, s);
	if (!s->pool)
		return -errno;
	s->retained = calloc(STORE_RETAIN_RING, sizeof(*s->retained));
	if (!s->retained || (backing && batch_new(s))) {
		free(s->retained);
		z3fold_destroy_pool(s->pool);
		return -ENOMEM;
	}
	s->owner = *owner;
	s->backing = backing;
	atomic_init(&s->algo, algo);
	atomic_init(&s->level, level);
	atomic_init(&s->pool_limit, pool_limit);
	pthread_mutex_init(&s->reclaim_lock, NULL);
	pthread_mutex_init(&s->frees_lock, NULL);
	pthread_mutex_init(&s->retain_lock, NULL);
	return 0;
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
	if (s->batch)
		free(s->batch->buf);
	free(s->batch);
	free(s->frees);
	free(s->retained);
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

int store_put(struct store *s, struct compressor *c, const uint8_t *page,
	      const struct store_key *key, uint32_t *flags, uint64_t *data)
{
	uint8_t buf[STORE_RAW_THRESHOLD];
	const uint8_t *src = buf;
	unsigned long handle;
	size_t n;

	if (same_filled(page, data)) {
		*flags = PAGE_SAME;
		STAT_ADD(s, same, 1);
		STAT_ADD(s, stores, 1);
		return 0;
	}
	if (atomic_load(&s->full))
		goto out_refused;
	n = compressor_compress(c, page, PAGE_SIZE, buf, sizeof(buf));
	*flags = PAGE_COMPRESSED;
	if (n == 0) {
		n = PAGE_SIZE;
		src = page;
		*flags |= PAGE_RAW;
	} else if (compressor_algo(c) == COMPRESS_ZSTD) {
		*flags |= PAGE_ZSTD;
	}
	if (z3fold_alloc(s->pool, n, &handle))
		goto out_refused;
	z3fold_set_owner(s->pool, handle, key_to_owner(key));
	memcpy(z3fold_map(s->pool, handle), src, n);
	z3fold_unmap(s->pool, handle);
	*data = handle;
	STAT_ADD(s, stores, 1);
	STAT_ADD(s, payload_bytes, n);
	if (*flags & PAGE_RAW)
		STAT_ADD(s, raw, 1);
	else
		STAT_ADD(s, compressed, 1);
	check_limit(s);
	return (int)n;

out_refused:
	STAT_ADD(s, failures, 1);
	return -ENOMEM;
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
		if (!s->backing ||
		    backing_read(s->backing, wb_slot(data), obj, n))
			return -EIO;
		return decompress(c, info, obj, n, page);
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

size_t store_drop(struct store *s, uint32_t info, uint64_t data)
{
	size_t n;

	switch (page_state(info)) {
	case PAGE_SAME:
		STAT_ADD(s, same, -1);
		return 0;
	case PAGE_WRITTEN_BACK:
		defer_free(s, data);
		STAT_ADD(s, written_back, -1);
		return 0;
	default:
		n = z3fold_object_size(s->pool, data);
		z3fold_free(s->pool, data);
		STAT_ADD(s, payload_bytes, -(int64_t)n);
		if (info & PAGE_RAW)
			STAT_ADD(s, raw, -1);
		else
			STAT_ADD(s, compressed, -1);
		return n;
	}
}

/*****************
 * Clean-page retention
 *****************/

/* A pool object's counters: @n bytes of a COMPRESSED page as @info says
 * leave (@sign -1) or join (+1) the stored ones, and join or leave the
 * retained ones. */
static void move_retained(struct store *s, uint32_t info, size_t n, int sign)
{
	STAT_ADD(s, payload_bytes, sign * (int64_t)n);
	if (info & PAGE_RAW)
		STAT_ADD(s, raw, sign);
	else
		STAT_ADD(s, compressed, sign);
	STAT_ADD(s, retained, -sign);
	STAT_ADD(s, retained_bytes, -sign * (int64_t)n);
}

size_t store_retain(struct store *s, uint32_t info, uint64_t data)
{
	size_t n = z3fold_object_size(s->pool, data);

	move_retained(s, info, n, -1);
	return n;
}

size_t store_restore_retained(struct store *s, uint32_t info, uint64_t data)
{
	size_t n = z3fold_object_size(s->pool, data);

	move_retained(s, info, n, 1);
	return n;
}

size_t store_drop_retained(struct store *s, uint64_t data)
{
	size_t n = z3fold_object_size(s->pool, data);

	z3fold_free(s->pool, data);
	STAT_ADD(s, retained, -1);
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

long store_recover_ref(struct store *s, uint32_t info, uint64_t data,
		       const struct store_key *key)
{
	long n;

	switch (page_state(info)) {
	case PAGE_SAME:
		STAT_ADD(s, same, 1);
		return 0;
	case PAGE_WRITTEN_BACK:
		if (!s->backing || !(data & PAGE_DATA_SLOT) ||
		    backing_recover_ref(s->backing, wb_slot(data),
					wb_len(data)))
			return -ESTALE;
		STAT_ADD(s, written_back, 1);
		return 0;
	case PAGE_COMPRESSED:
		n = z3fold_recover_ref(s->pool, data);
		if (n < 0)
			return n;
		z3fold_set_owner(s->pool, data, key_to_owner(key));
		STAT_ADD(s, payload_bytes, n);
		if (info & PAGE_RAW)
			STAT_ADD(s, raw, 1);
		else
			STAT_ADD(s, compressed, 1);
		return n;
	default:
		return -ESTALE;
	}
}

void store_recover_end(struct store *s)
{
	z3fold_recover_end(s->pool);
}

/*****************
 * The image at rest
 *****************/

#define STORE_IMAGE_MAGIC	0x757a73746f72656aull	/* "uzstorej" */

/*
 * struct store_image - the counters of what the store holds (retained
 * objects apart: pagestate.h's PAGE_RETAINED), then the
 * pool's image (@pool_len bytes, zeros after it up to 8-byte alignment)
 * and the backing file's slot map's (@backing_len bytes, 0: no backing
 * file)
 */
struct store_image {
	uint64_t magic;
	uint64_t compressed, same, raw, payload_bytes, written_back;
	uint64_t retained, retained_bytes;
	uint64_t pool_len, backing_len;
};

/* Where the slot map's image starts after a pool image of @pool_len
 * bytes: 8-byte aligned, as are the words in it. */
static size_t map_offset(uint64_t pool_len)
{
	return (size_t)(pool_len + 7) & ~(size_t)7;
}

/* Bytes of the pool's and the slot map's images. */
static void image_parts(struct store *s, size_t *pool, size_t *backing)
{
	*pool = z3fold_image_size(s->pool);
	*backing = s->backing ? backing_image_size(s->backing) : 0;
}

size_t store_image_size(struct store *s)
{
	size_t pool, backing;

	store_flush_frees(s);
	image_parts(s, &pool, &backing);
	return sizeof(struct store_image) + map_offset(pool) + backing;
}

void store_save_image(struct store *s, void *buf)
{
	struct store_image *im = buf;
	size_t pool, backing;

	image_parts(s, &pool, &backing);
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
	};
	z3fold_save_image(s->pool, im + 1);
	memset((char *)(im + 1) + pool, 0, map_offset(pool) - pool);
	if (s->backing)
		backing_save_image(s->backing,
				   (char *)(im + 1) + map_offset(pool));
}

int store_load_image(struct store *s, const void *buf, size_t len,
		     const char **why)
{
	const struct store_image *im = buf;
	const char *pool = (const char *)(im + 1), *map;
	int ret;

	*why = "not a store image";
	if (len < sizeof(*im) || im->magic != STORE_IMAGE_MAGIC ||
	    im->pool_len > len - sizeof(*im) ||
	    map_offset(im->pool_len) > len - sizeof(*im) ||
	    im->backing_len != len - sizeof(*im) - map_offset(im->pool_len))
		return -EINVAL;
	map = pool + map_offset(im->pool_len);
	*why = "a backing file's slot map that does not fit this one";
	if (im->backing_len &&
	    (!s->backing ||
	     !backing_image_fits(s->backing, map, im->backing_len)))
		return -EINVAL;
	ret = z3fold_load_image(s->pool, pool, im->pool_len, why);
	if (ret)
		return ret;
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
 * evictor's to report; an I/O error is worth an error line, once. */
static void note_failure(int ret)
{
	if (ret != -ENOSPC && !atomic_exchange(&io_error_logged, true))
		log_err("store", "writing back to the backing file: %s; "
			"pages stay in the pool (logged once)",
			strerror(-ret));
}

/* The object of @wb, which the owner took, appended to @b's buffer. */
static void batch_add(struct store *s, struct store_batch *b,
		      struct store_wb *wb)
{
	size_t n = z3fold_object_size(s->pool, wb->handle);
	size_t padded = (n + BACKING_UNIT - 1) & ~(size_t)(BACKING_UNIT - 1);
	const void *obj = z3fold_map(s->pool, wb->handle);

	if (!obj || n == 0) {
		if (obj)
			z3fold_unmap(s->pool, wb->handle);
		s->owner.settle(s->owner.ctx, s, wb, false);
		return;
	}
	memcpy(b->buf + b->bytes, obj, n);
	z3fold_unmap(s->pool, wb->handle);
	memset(b->buf + b->bytes + n, 0, padded - n);
	b->wb[b->nr] = *wb;
	b->lens[b->nr++] = n;
	b->bytes += padded;
}

/* Claim up to STORE_WB_PAGES pool pages from the bottom, and put in the
 * batch every object of theirs the owner gives up. */
static void batch_fill(struct store *s, struct store_batch *b)
{
	unsigned long handles[3];
	struct store_wb wb;
	int i, nr, ret;

	b->nr = b->nr_pages = 0;
	b->bytes = 0;
	while (b->nr_pages < STORE_WB_PAGES) {
		nr = z3fold_reclaim_begin(s->pool, handles,
					  &b->pages[b->nr_pages]);
		if (nr < 0)
			break;
		b->nr_pages++;
		for (i = 0; i < nr; i++) {
			memset(&wb, 0, sizeof(wb));
			wb.handle = handles[i];
			owner_to_key(z3fold_owner(s->pool, wb.handle), &wb.key);
			ret = s->owner.take(s->owner.ctx, &wb);
			if (ret == 0)
				batch_add(s, b, &wb);
			else if (ret == -EALREADY)
				STAT_ADD(s, retain_given_up, 1);
			else
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

/*
 * write_back_batch() - one batch of reclaim from the bottom: claim pool
 * pages, take their pages from the owner, one write to the backing file,
 * have the owner publish each page written back (and free its object),
 * release the pool pages emptied. reclaim_lock held; @direct: for an
 * evictor that found the pool full.
 * Return: pool pages freed; -ENOENT if there is nothing to claim (or no
 * backing file).
 */
static long write_back_batch(struct store *s, bool direct)
{
	struct store_batch *b = s->batch;
	unsigned int i;
	long freed = 0;

	assert_held(&s->reclaim_lock);
	if (!s->backing || !b)
		return -ENOENT;
	batch_fill(s, b);
	if (b->nr_pages == 0)
		return -ENOENT;
	batch_write(s, b, direct);
	for (i = 0; i < b->nr; i++) {
		if (b->written[i])
			b->wb[i].data = PAGE_DATA_SLOT |
					b->slots[i] << PAGE_WB_LEN_BITS |
					b->lens[i];
		s->owner.settle(s->owner.ctx, s, &b->wb[i], b->written[i]);
	}
	for (i = 0; i < b->nr_pages; i++)
		freed += z3fold_reclaim_end(s->pool, b->pages[i]);
	return freed;
}

size_t store_written_back(struct store *s, unsigned long handle,
			  uint32_t info)
{
	size_t n = z3fold_object_size(s->pool, handle);

	z3fold_free(s->pool, handle);
	STAT_ADD(s, payload_bytes, -(int64_t)n);
	if (info & PAGE_RAW)
		STAT_ADD(s, raw, -1);
	else
		STAT_ADD(s, compressed, -1);
	STAT_ADD(s, written_back, 1);
	STAT_ADD(s, writebacks, 1);
	return n;
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
 * The writer
 *****************/

static void writer_kick(struct store *s)
{
	struct store_writer *w = s->writer;

	if (!w || atomic_load_explicit(&w->busy, memory_order_relaxed))
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
 * Returns false if a batch freed nothing (busy pages, a full file). */
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

	if (!s->backing)
		return 0;
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

unsigned int store_compact(struct store *s)
{
	return z3fold_compact(s->pool, UINT_MAX);
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
	st->full = atomic_load(&s->full);
}
