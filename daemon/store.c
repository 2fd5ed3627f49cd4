/*
 * store.c - the compressed store; see store.h.
 *
 * store_put(): same-filled check (one pass over the page, stops at the
 * first differing word) -> compress into a stack buffer with the raw
 * threshold as capacity (both compressors give up early on incompressible
 * data) -> z3fold_alloc() -> copy in under z3fold_map(). The pool is
 * z3fold's; a pool page holds up to three compressed pages.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "region.h"
#include "store.h"

#define STAT_ADD(s, field, n) \
	atomic_fetch_add_explicit(&(s)->st.field, (uint_fast64_t)(n), \
				  memory_order_relaxed)

int store_init(struct store *s, enum compress_algo algo, int level)
{
	memset(s, 0, sizeof(*s));
	s->pool = z3fold_create_pool("uzswap", NULL);
	if (!s->pool)
		return -errno;
	atomic_init(&s->algo, algo);
	atomic_init(&s->level, level);
	return 0;
}

void store_destroy(struct store *s)
{
	z3fold_destroy_pool(s->pool);
	s->pool = NULL;
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

int store_put(struct store *s, struct compressor *c, const uint8_t *page,
	      uint32_t *flags, uint64_t *data)
{
	uint8_t buf[STORE_RAW_THRESHOLD];
	const uint8_t *src = buf;
	unsigned long handle;
	size_t n;
	int ret;

	if (same_filled(page, data)) {
		*flags = PAGE_SAME;
		STAT_ADD(s, same, 1);
		STAT_ADD(s, stores, 1);
		return 0;
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
	ret = z3fold_alloc(s->pool, n, &handle);
	if (ret) {
		STAT_ADD(s, failures, 1);
		return -ENOMEM;
	}
	memcpy(z3fold_map(s->pool, handle), src, n);
	z3fold_unmap(s->pool, handle);
	*data = handle;
	STAT_ADD(s, stores, 1);
	STAT_ADD(s, payload_bytes, n);
	if (*flags & PAGE_RAW)
		STAT_ADD(s, raw, 1);
	else
		STAT_ADD(s, compressed, 1);
	return (int)n;
}

int store_get(struct store *s, struct compressor *c, uint32_t info,
	      uint64_t data, uint8_t *page)
{
	uint64_t *w = (uint64_t *)page;
	const uint8_t *obj;
	size_t i, n;
	int ret;

	STAT_ADD(s, loads, 1);
	if (page_state(info) == PAGE_SAME) {
		for (i = 0; i < PAGE_SIZE / sizeof(*w); i++)
			w[i] = data;
		return 0;
	}
	n = z3fold_object_size(s->pool, data);
	obj = z3fold_map(s->pool, data);
	if (!obj || n == 0)
		return -EIO;
	if (info & PAGE_RAW) {
		ret = n == PAGE_SIZE ? 0 : -EIO;
		if (ret == 0)
			memcpy(page, obj, PAGE_SIZE);
	} else {
		ret = compressor_decompress(c, info & PAGE_ZSTD ? COMPRESS_ZSTD
								: COMPRESS_LZ4,
					    obj, n, page, PAGE_SIZE);
	}
	z3fold_unmap(s->pool, data);
	return ret;
}

size_t store_drop(struct store *s, uint32_t info, uint64_t data)
{
	size_t n;

	if (page_state(info) == PAGE_SAME) {
		STAT_ADD(s, same, -1);
		return 0;
	}
	n = z3fold_object_size(s->pool, data);
	z3fold_free(s->pool, data);
	STAT_ADD(s, payload_bytes, -(int64_t)n);
	if (info & PAGE_RAW)
		STAT_ADD(s, raw, -1);
	else
		STAT_ADD(s, compressed, -1);
	return n;
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
	st->pool_bytes = z3fold_get_pool_size(s->pool) * Z3FOLD_PAGE_SIZE;
	st->stores = atomic_load(&s->st.stores);
	st->loads = atomic_load(&s->st.loads);
	st->failures = atomic_load(&s->st.failures);
}
