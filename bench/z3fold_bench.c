/*
 * z3fold_bench.c - benchmark of the z3fold pool (not a test: it asserts
 * nothing and its numbers vary with the machine).
 *
 * Prints one table:
 * - alloc+free throughput, one thread and one thread per core, on a steady
 *   working set of live objects with compressed-page sizes, beside glibc
 *   malloc/free doing the same in the same run (the baseline: ratio =
 *   z3fold / malloc);
 * - density (payload bytes / pool bytes) and compression ratio after
 *   loading a real process memory image compressed with lz4 and zstd.
 * Targets (DESIGN/issue): density >= 0.85 with lz4; >= 5 M ops/s on one
 * core, where an alloc and a free each count as one op.
 *
 * Usage: z3fold_bench [--ops N] [--image-mib N] [--json]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/z3fold/z3fold.h"
#include "tests/density.h"
#include "tests/memimage.h"

#define LIVE 65536u	/* live objects per thread */

struct bench_args {
	struct z3fold_pool *pool;	/* NULL: malloc baseline */
	unsigned long ops;
	unsigned int seed;
	double seconds;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sizes of lz4-compressed memory pages: mostly 300..2500 bytes. */
static size_t next_size(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return 300 + (size_t)(*x % 2200);
}

static void *churn(void *arg)
{
	struct bench_args *a = arg;
	unsigned long *live = calloc(LIVE, sizeof(*live));
	uint64_t x = 0x9e3779b97f4a7c15ull * (a->seed + 1);
	unsigned long i, pairs = a->ops / 2;
	double t0;

	if (!live)
		return NULL;
	for (i = 0; i < LIVE; i++) {
		if (a->pool)
			z3fold_alloc(a->pool, next_size(&x), &live[i]);
		else
			live[i] = (unsigned long)malloc(next_size(&x));
	}
	t0 = now();
	for (i = 0; i < pairs; i++) {
		unsigned long *slot = &live[i % LIVE];

		if (a->pool) {
			z3fold_free(a->pool, *slot);
			z3fold_alloc(a->pool, next_size(&x), slot);
		} else {
			free((void *)*slot);
			*slot = (unsigned long)malloc(next_size(&x));
		}
	}
	a->seconds = now() - t0;
	for (i = 0; i < LIVE; i++) {
		if (a->pool)
			z3fold_free(a->pool, live[i]);
		else
			free((void *)live[i]);
	}
	free(live);
	return NULL;
}

/* Ops per second of @threads threads churning one pool (or malloc). */
static double throughput(bool use_pool, unsigned int threads,
			 unsigned long ops)
{
	struct z3fold_pool *pool = NULL;
	struct bench_args a[16];
	pthread_t t[16];
	double slowest = 0;
	unsigned int i;

	if (use_pool &&
	    !(pool = z3fold_create_pool("bench", NULL, NULL, NULL)))
		return 0;
	for (i = 0; i < threads; i++) {
		a[i] = (struct bench_args){ .pool = pool, .ops = ops, .seed = i };
		pthread_create(&t[i], NULL, churn, &a[i]);
	}
	for (i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (a[i].seconds > slowest)
			slowest = a[i].seconds;
	}
	z3fold_destroy_pool(pool);
	return slowest > 0 ? (double)ops * threads / slowest : 0;
}

static int density(enum density_codec codec, const struct memimage *img,
		   struct density_result *res)
{
	struct z3fold_pool *pool =
		z3fold_create_pool("density", NULL, NULL, NULL);
	int ret;

	if (!pool)
		return -errno;
	ret = density_load(pool, img, codec, res);
	if (ret == 0)
		density_unload(pool, res);
	z3fold_destroy_pool(pool);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned long ops = 20000000;
	unsigned int mib = 64, cores, i;
	struct density_result lz4, zstd;
	double z1, m1, zn, mn;
	struct memimage img;
	bool json = false;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--ops") && i + 1 < (unsigned int)argc)
			ops = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--image-mib") &&
			 i + 1 < (unsigned int)argc)
			mib = (unsigned int)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else {
			fprintf(stderr, "usage: %s [--ops N] [--image-mib N] "
				"[--json]\n", argv[0]);
			return 2;
		}
	}
	cores = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 1 || cores > 16)
		cores = cores < 1 ? 1 : 16;

	z1 = throughput(true, 1, ops);
	m1 = throughput(false, 1, ops);
	zn = throughput(true, cores, ops);
	mn = throughput(false, cores, ops);
	if (memimage_build(mib, &img) ||
	    density(DENSITY_LZ4, &img, &lz4) ||
	    density(DENSITY_ZSTD, &img, &zstd)) {
		fprintf(stderr, "z3fold_bench: density run failed\n");
		return 1;
	}

	if (json) {
		printf("{\"ops_per_s_1\":%.0f,\"malloc_ops_per_s_1\":%.0f,"
		       "\"ops_per_s_%u\":%.0f,\"malloc_ops_per_s_%u\":%.0f,"
		       "\"image_pages\":%zu,\"same_filled\":%zu,"
		       "\"lz4\":{\"ratio\":%.3f,\"density\":%.3f,\"raw\":%zu},"
		       "\"zstd\":{\"ratio\":%.3f,\"density\":%.3f,\"raw\":%zu}}\n",
		       z1, m1, cores, zn, cores, mn, img.nr_pages,
		       lz4.same_filled, lz4.ratio, lz4.density, lz4.raw,
		       zstd.ratio, zstd.density, zstd.raw);
	} else {
		printf("z3fold pool benchmark (%lu ops per thread; an alloc or "
		       "a free is one op)\n\n", ops);
		printf("%-34s %12s %12s %8s\n", "throughput", "z3fold",
		       "malloc", "ratio");
		printf("%-34s %10.2f M %10.2f M %8.2f\n", "ops/s, 1 thread",
		       z1 / 1e6, m1 / 1e6, z1 / m1);
		printf("%-28s%2u %-3s %10.2f M %10.2f M %8.2f\n",
		       "ops/s,", cores, "thr", zn / 1e6, mn / 1e6, zn / mn);
		printf("\nreal memory image: %zu pages of a perl process, %zu "
		       "same-filled (no payload)\n", img.nr_pages,
		       lz4.same_filled);
		printf("%-10s %10s %10s %10s %12s\n", "codec", "stored",
		       "raw", "ratio", "density");
		printf("%-10s %10zu %10zu %10.2f %12.3f\n", "lz4", lz4.stored,
		       lz4.raw, lz4.ratio, lz4.density);
		printf("%-10s %10zu %10zu %10.2f %12.3f\n", "zstd-3",
		       zstd.stored, zstd.raw, zstd.ratio, zstd.density);
		printf("\ntargets: density >= 0.85 (lz4): %s; >= 5 M ops/s "
		       "on one core: %s\n", lz4.density >= 0.85 ? "met" :
		       "MISSED", z1 >= 5e6 ? "met" : "MISSED");
	}
	memimage_free(&img);
	return 0;
}
