/*
 * store.h - the compressed store: where an evicted page goes and comes
 * back from. A page whose 64-bit words are all equal is kept as that word
 * (SAME, no payload); any other page is compressed (lz4 or zstd) into the
 * z3fold pool, or kept raw in a headless pool page when it compresses to
 * more than STORE_RAW_THRESHOLD bytes.
 *
 * Private to uzswapd. Every function is thread-safe; compression state is
 * the caller's (one struct compressor per thread).
 */
#ifndef UZSWAPD_STORE_H
#define UZSWAPD_STORE_H

#include <stdatomic.h>
#include <stdint.h>

#include "compress.h"
#include "lib/z3fold/z3fold.h"

#define STORE_RAW_THRESHOLD 3072	/* compressed bytes: ~3 KiB */

/*
 * struct store - the pool and its counters
 * @pool:  the z3fold pool; thread-safe
 * @algo:  enum compress_algo for new pages (atomic: a reload may change
 *         it; stored pages keep the algorithm they were made with)
 * @level: zstd level for new pages (atomic)
 * @st:    counters (atomic)
 */
struct store {
	struct z3fold_pool *pool;
	atomic_int algo;
	atomic_int level;
	struct {
		atomic_uint_fast64_t compressed, same, raw, payload_bytes,
			stores, loads, failures;
	} st;
};

/* Snapshot of the counters. */
struct store_stats {
	uint64_t compressed;    /* pages in the pool, compressed */
	uint64_t same;          /* pages kept as their fill word */
	uint64_t raw;           /* pages in the pool as they are */
	uint64_t payload_bytes; /* bytes of those objects */
	uint64_t pool_bytes;    /* pool pages in use, in bytes */
	uint64_t stores;        /* pages stored so far */
	uint64_t loads;         /* pages brought back so far */
	uint64_t failures;      /* stores refused (pool could not grow) */
};

/* Return: 0 or -errno. */
int store_init(struct store *s, enum compress_algo algo, int level);
/* Every stored page must have been dropped or loaded. */
void store_destroy(struct store *s);

/*
 * store_put() - store one page
 * @c:     the calling thread's compressor (made for the store's algorithm;
 *         see store_compressor_current())
 * @flags: set to the page's new state, PAGE_COMPRESSED or PAGE_SAME, with
 *         PAGE_ZSTD or PAGE_RAW as they apply (see region.h)
 * @data:  set to the handle or the fill word
 * Return: the payload bytes taken in the pool (0 for SAME), or -ENOMEM if
 * the pool could not take it (nothing stored).
 */
int store_put(struct store *s, struct compressor *c, const uint8_t *page,
	      uint32_t *flags, uint64_t *data);

/*
 * store_get() - the page stored as (@info, @data), written to @page; the
 * stored copy stays (drop it with store_drop() once the page is safely
 * back). Return: 0, or -EIO if the stored object is corrupt.
 */
int store_get(struct store *s, struct compressor *c, uint32_t info,
	      uint64_t data, uint8_t *page);

/* Forget the page stored as (@info, @data); returns the payload bytes
 * freed. */
size_t store_drop(struct store *s, uint32_t info, uint64_t data);

/* Does @c still compress the way the store wants (algorithm, level)?
 * If not, the caller makes a new one. */
int store_compressor_current(struct store *s, struct compressor **c);

void store_get_stats(struct store *s, struct store_stats *st);

#endif /* UZSWAPD_STORE_H */
