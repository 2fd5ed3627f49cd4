/*
 * density.h - load a memory image into a z3fold pool the way the store
 * will: same-filled pages kept without payload, the rest compressed (lz4 or
 * zstd), pages that compress to more than DENSITY_RAW_THRESHOLD stored raw
 * in a headless page. Shared by check_z3fold and bench/z3fold_bench.
 *
 * Private to uzswap's tests and benchmarks.
 */
#ifndef UZSWAP_TESTS_DENSITY_H
#define UZSWAP_TESTS_DENSITY_H

#include <stddef.h>

#include "lib/z3fold/z3fold.h"
#include "memimage.h"

/* The store's raw threshold: ~3 KiB compressed. */
#define DENSITY_RAW_THRESHOLD 3072

enum density_codec {
	DENSITY_LZ4,
	DENSITY_ZSTD,	/* level 3 */
};

struct density_result {
	size_t pages;       /* pages in the image */
	size_t same_filled; /* kept without payload */
	size_t stored;      /* objects in the pool */
	size_t raw;         /* of which stored raw */
	double ratio;       /* original bytes / payload bytes, stored pages */
	double density;     /* payload bytes / pool bytes */
	unsigned long *handles; /* @stored handles, for density_unload() */
};

/* Return: 0, or -errno if compression or allocation failed (nothing stays
 * allocated then). */
int density_load(struct z3fold_pool *pool, const struct memimage *img,
		 enum density_codec codec, struct density_result *res);

/* Free every object density_load() stored; the counts stay. */
void density_unload(struct z3fold_pool *pool, struct density_result *res);

#endif /* UZSWAP_TESTS_DENSITY_H */
