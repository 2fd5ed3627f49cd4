/*
 * compress.c - lz4 and zstd behind one interface; see compress.h.
 *
 * lz4 compresses with LZ4_compress_fast_extState() into a caller-owned
 * state, so no allocation happens per page; zstd keeps one CCtx and one
 * DCtx per compressor. The capacity given to compress is the store's
 * raw threshold: both libraries stop as soon as the output cannot fit,
 * which makes an incompressible page cheap to detect.
 */
#include "config.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../lib/common/failpoint.h"
#include "compress.h"

/*
 * struct compressor - per-thread compression state; owned by one thread
 * @algo:   what compressor_compress() produces
 * @level:  zstd level
 * @lz4:    lz4 state for compression (LZ4_sizeofState() bytes)
 * @cctx:   zstd compression context, NULL for lz4
 * @dctx:   zstd decompression context (any compressor may have to
 *          decompress zstd pages; made up front so that a fault never
 *          allocates)
 */
struct compressor {
	enum compress_algo algo;
	int level;
	void *lz4;
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

struct compressor *compressor_create(enum compress_algo algo, int level)
{
	struct compressor *c;

	if (algo != COMPRESS_LZ4 && algo != COMPRESS_ZSTD) {
		errno = EINVAL;
		return NULL;
	}
	if (failpoint_hit() || !(c = calloc(1, sizeof(*c))))
		goto out_nomem;
	c->algo = algo;
	c->level = level;
	if (failpoint_hit() || !(c->lz4 = malloc((size_t)LZ4_sizeofState())))
		goto out_free;
	if (failpoint_hit() || !(c->dctx = ZSTD_createDCtx()))
		goto out_free;
	if (algo == COMPRESS_ZSTD &&
	    (failpoint_hit() || !(c->cctx = ZSTD_createCCtx()) ||
	     ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx,
						 ZSTD_c_compressionLevel,
						 level))))
		goto out_free;
	return c;

out_free:
	compressor_destroy(c);
out_nomem:
	errno = ENOMEM;
	return NULL;
}

void compressor_destroy(struct compressor *c)
{
	if (!c)
		return;
	ZSTD_freeDCtx(c->dctx);
	ZSTD_freeCCtx(c->cctx);
	free(c->lz4);
	free(c);
}

enum compress_algo compressor_algo(const struct compressor *c)
{
	return c->algo;
}

int compressor_level(const struct compressor *c)
{
	return c->level;
}

size_t compressor_compress(struct compressor *c, const void *src, size_t len,
			   void *dst, size_t cap)
{
	size_t n;
	int r;

	if (c->algo == COMPRESS_LZ4) {
		r = LZ4_compress_fast_extState(c->lz4, src, dst, (int)len,
					       (int)cap, 1);
		return r > 0 ? (size_t)r : 0;
	}
	n = ZSTD_compress2(c->cctx, dst, cap, src, len);
	return ZSTD_isError(n) ? 0 : n;
}

int compressor_decompress(struct compressor *c, enum compress_algo algo,
			  const void *src, size_t len, void *dst,
			  size_t out_len)
{
	size_t n;
	int r;

	if (algo == COMPRESS_LZ4) {
		r = LZ4_decompress_safe(src, dst, (int)len, (int)out_len);
		return r == (int)out_len ? 0 : -EIO;
	}
	n = ZSTD_decompressDCtx(c->dctx, dst, out_len, src, len);
	return !ZSTD_isError(n) && n == out_len ? 0 : -EIO;
}

const char *compress_algo_name(enum compress_algo algo)
{
	return algo == COMPRESS_ZSTD ? "zstd" : "lz4";
}

int compress_algo_parse(const char *name, enum compress_algo *algo)
{
	if (!strcmp(name, "lz4"))
		*algo = COMPRESS_LZ4;
	else if (!strcmp(name, "zstd"))
		*algo = COMPRESS_ZSTD;
	else
		return -EINVAL;
	return 0;
}
