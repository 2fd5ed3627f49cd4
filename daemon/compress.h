/*
 * compress.h - the page compressors of uzswapd behind one interface: lz4
 * (the default: fastest to decompress, which is what a fault waits for)
 * and zstd (denser, level configurable).
 *
 * Private to uzswapd. A struct compressor holds per-thread scratch state
 * (lz4's hash table, zstd's contexts): each evictor and fault thread owns
 * one; it is not to be shared between threads.
 */
#ifndef UZSWAPD_COMPRESS_H
#define UZSWAPD_COMPRESS_H

#include <stddef.h>

enum compress_algo {
	COMPRESS_LZ4 = 0,
	COMPRESS_ZSTD = 1,
};

#define COMPRESS_ZSTD_DEFAULT_LEVEL 3

struct compressor;

/* A compressor for @algo (@level is used by zstd only, 1..19);
 * NULL with errno set. */
struct compressor *compressor_create(enum compress_algo algo, int level);
void compressor_destroy(struct compressor *c);

enum compress_algo compressor_algo(const struct compressor *c);
int compressor_level(const struct compressor *c);

/*
 * compressor_compress() - compress one page of @len bytes into @dst
 * Return: the compressed size, or 0 if it needs more than @cap bytes (the
 * page is poorly compressible: store it raw).
 */
size_t compressor_compress(struct compressor *c, const void *src, size_t len,
			   void *dst, size_t cap);

/*
 * compressor_decompress() - decompress @len bytes made by an @algo
 * compressor into exactly @out_len bytes at @dst. Any compressor
 * decompresses any algorithm (a reload may change the algorithm while
 * pages compressed the old way are still stored).
 * Return: 0, or -EIO if the data is corrupt or does not expand to @out_len.
 */
int compressor_decompress(struct compressor *c, enum compress_algo algo,
			  const void *src, size_t len, void *dst,
			  size_t out_len);

const char *compress_algo_name(enum compress_algo algo);
/* "lz4" or "zstd"; -EINVAL for anything else. */
int compress_algo_parse(const char *name, enum compress_algo *algo);

#endif /* UZSWAPD_COMPRESS_H */
