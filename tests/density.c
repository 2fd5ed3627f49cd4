/*
 * density.c - load a memory image into a z3fold pool as the store will;
 * see density.h.
 */
#include "config.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "density.h"

#define ZSTD_LEVEL 3

static size_t compress_page(enum density_codec codec, const uint8_t *page,
			    char *dst, size_t cap)
{
	size_t n;

	if (codec == DENSITY_LZ4) {
		int c = LZ4_compress_default((const char *)page, dst,
					     MEMIMAGE_PAGE_SIZE, (int)cap);
		return c > 0 ? (size_t)c : 0;
	}
	n = ZSTD_compress(dst, cap, page, MEMIMAGE_PAGE_SIZE, ZSTD_LEVEL);
	return ZSTD_isError(n) ? 0 : n;
}

/* Store one page; returns 0 or -errno. */
static int store_page(struct z3fold_pool *pool, enum density_codec codec,
		      const uint8_t *page, char *cbuf, size_t cap,
		      struct density_result *res)
{
	size_t c = compress_page(codec, page, cbuf, cap);
	const void *src = cbuf;
	unsigned long h;
	void *dst;
	int ret;

	if (c == 0)
		return -EIO;
	if (c > DENSITY_RAW_THRESHOLD) {
		c = MEMIMAGE_PAGE_SIZE;
		src = page;
		res->raw++;
	}
	ret = z3fold_alloc(pool, c, &h);
	if (ret)
		return ret;
	dst = z3fold_map(pool, h);
	memcpy(dst, src, c);
	z3fold_unmap(pool, h);
	res->handles[res->stored++] = h;
	return 0;
}

int density_load(struct z3fold_pool *pool, const struct memimage *img,
		 enum density_codec codec, struct density_result *res)
{
	size_t cap = LZ4_COMPRESSBOUND(MEMIMAGE_PAGE_SIZE) +
		     ZSTD_compressBound(MEMIMAGE_PAGE_SIZE);
	struct z3fold_stats before, after;
	char *cbuf;
	size_t i;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	res->pages = img->nr_pages;
	res->handles = calloc(img->nr_pages ? img->nr_pages : 1,
			      sizeof(*res->handles));
	cbuf = malloc(cap);
	if (!res->handles || !cbuf) {
		ret = -ENOMEM;
		goto out;
	}
	z3fold_get_stats(pool, &before);
	for (i = 0; i < img->nr_pages && ret == 0; i++) {
		const uint8_t *page = memimage_page(img, i);

		if (memimage_page_same_filled(page))
			res->same_filled++;
		else
			ret = store_page(pool, codec, page, cbuf, cap, res);
	}
	z3fold_get_stats(pool, &after);
	if (ret == 0 && after.pages > before.pages) {
		double payload = (double)(after.payload_bytes -
					  before.payload_bytes);

		res->ratio = (double)res->stored * MEMIMAGE_PAGE_SIZE / payload;
		res->density = payload / ((double)(after.pages - before.pages) *
					  MEMIMAGE_PAGE_SIZE);
	}
out:
	free(cbuf);
	if (ret)
		density_unload(pool, res);
	return ret;
}

void density_unload(struct z3fold_pool *pool, struct density_result *res)
{
	size_t i;

	if (!res->handles)
		return;
	for (i = 0; i < res->stored; i++)
		z3fold_free(pool, res->handles[i]);
	free(res->handles);
	res->handles = NULL;
}
