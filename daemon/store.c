/*
 * store.c - the compressed store; see store.h.
 *
 * store_put(): same-filled check (one pass over the page, stops at the
 * first differing word) -> compress into a stack buffer with the raw
 * threshold as capacity (both compressors give up early on incompressible
 * data) -> z3fold_alloc() -> the object's owner word set to the key
 * (region id, page index), which the evict handler needs -> copy in under
 * z3fold_map(); only then is the handle handed to the caller, who
 * publishes it.
 *
 * Reclaim from the bottom, exactly the z3fold flow: store_reclaim() calls
 * z3fold_reclaim_page(), which claims the least recently filled pool page
 * and calls store_evict() for each object on it. store_evict() reads the
 * page's key from the object's owner word and asks the owner to write it
 * back (the word of an object freed meanwhile may name any page: the
 * owner refuses a page whose entry does not name the handle):
 * the owner takes the page (COMPRESSED -> LOADING, so no fault or restore
 * can use it meanwhile), calls store_write_back() (object to the backing
 * file), publishes WRITTEN_BACK and only then frees the pool's copy with
 * store_written_back(). The owner refuses a page
 * another thread holds or one not yet punched by its evictor, and a write
 * the backing file refuses fails it: the object then stays in the pool.
 *
 * Lock order: reclaim_lock (one reclaimer at a time), then z3fold's
 * locks, which are never held while calling store_evict().
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/common/debug.h"
#include "log.h"
#include "store.h"

#define STAT_ADD(s, field, n) \
	atomic_fetch_add_explicit(&(s)->st.field, (uint_fast64_t)(n), \
				  memory_order_relaxed)

#define RECLAIM_RETRIES	8

/* A write-back I/O error was logged (once per process). */
static atomic_bool io_error_logged;

static int store_evict(struct z3fold_pool *pool, unsigned long handle,
		       void *priv);

static const struct z3fold_ops store_ops = { .evict = store_evict };

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

int store_init(struct store *s, enum compress_algo algo, int level,
	       uint64_t pool_limit, struct backing *backing,
	       const struct store_owner *owner, const struct z3fold_mem *mem)
{
	memset(s, 0, sizeof(*s));
	s->pool = z3fold_create_pool("uzswap", mem, &store_ops, s);
	if (!s->pool)
		return -errno;
	s->owner = *owner;
	s->backing = backing;
	atomic_init(&s->algo, algo);
	atomic_init(&s->level, level);
	atomic_init(&s->pool_limit, pool_limit);
	pthread_mutex_init(&s->reclaim_lock, NULL);
	pthread_mutex_init(&s->frees_lock, NULL);
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
	store_flush_frees(s);
	z3fold_destroy_pool(s->pool);
	s->pool = NULL;
	if (s->backing)
		backing_close(s->backing);
	free(s->frees);
	pthread_mutex_destroy(&s->reclaim_lock);
	pthread_mutex_destroy(&s->frees_lock);
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

/* The pool reached its limit: refuse pages until reclaim. */
static void check_limit(struct store *s)
{
	uint64_t limit = atomic_load(&s->pool_limit);
	bool was = false;

	if (limit && pool_bytes(s) >= limit &&
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

#define STORE_IMAGE_MAGIC	0x757a73746f726569ull	/* "uzstorei" */

/*
 * struct store_image - the counters of what the store holds, then the
 * pool's image (@pool_len bytes, zeros after it up to 8-byte alignment)
 * and the backing file's slot map's (@backing_len bytes, 0: no backing
 * file)
 */
struct store_image {
	uint64_t magic;
	uint64_t compressed, same, raw, payload_bytes, written_back;
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
	*why = NULL;
	return 0;
}

/*****************
 * Reclaim from the bottom
 *****************/

int store_write_back(struct store *s, unsigned long handle, uint64_t *data)
{
	size_t n = z3fold_object_size(s->pool, handle);
	const void *obj;
	uint64_t slot;
	int ret = -EIO;

	obj = z3fold_map(s->pool, handle);
	if (obj) {
		ret = backing_write(s->backing, obj, n, &slot);
		z3fold_unmap(s->pool, handle);
	}
	if (ret) {
		/* full (ENOSPC) is the evictor's to report; an I/O error is
		 * worth an error line, once */
		STAT_ADD(s, writeback_failures, 1);
		if (ret != -ENOSPC && !atomic_exchange(&io_error_logged, true))
			log_err("store", "writing back to the backing file: %s; "
				"pages stay in the pool (logged once)",
				strerror(-ret));
		return ret;
	}
	*data = PAGE_DATA_SLOT | slot << PAGE_WB_LEN_BITS | n;
	return (int)n;
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

/* z3fold's evict handler: 0 once the owner wrote @handle back and freed
 * it. The key comes from @handle's owner word, which the owner checks. */
static int store_evict(struct z3fold_pool *pool, unsigned long handle,
		       void *priv)
{
	struct store *s = priv;
	struct store_key key;

	assert_held(&s->reclaim_lock);
	if (!s->backing)
		return -ENOENT;
	owner_to_key(z3fold_owner(pool, handle), &key);
	return s->owner.write_back(s->owner.ctx, s, &key, handle);
}

bool store_reclaim(struct store *s)
{
	uint64_t limit = atomic_load(&s->pool_limit);
	uint64_t low = limit / 100 * STORE_POOL_LOW_PCT;
	bool ok = true;

	if (!atomic_load(&s->full))
		return true;
	pthread_mutex_lock(&s->reclaim_lock);
	while (limit && pool_bytes(s) >= low && s->backing &&
	       atomic_load(&s->full))
		if (z3fold_reclaim_page(s->pool, RECLAIM_RETRIES))
			break;
	if (!limit || pool_bytes(s) < low)
		atomic_store(&s->full, false);
	else
		ok = !atomic_load(&s->full);
	pthread_mutex_unlock(&s->reclaim_lock);
	return ok;
}

bool store_pool_low(struct store *s)
{
	uint64_t limit = atomic_load(&s->pool_limit);

	return !limit || pool_bytes(s) < limit / 100 * STORE_POOL_LOW_PCT;
}

void store_set_pool_limit(struct store *s, uint64_t bytes)
{
	atomic_store(&s->pool_limit, bytes);
	if (!bytes || pool_bytes(s) < bytes / 100 * STORE_POOL_LOW_PCT)
		atomic_store(&s->full, false);
	else
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
	st->full = atomic_load(&s->full);
}
