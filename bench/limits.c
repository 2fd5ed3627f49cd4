/*
 * limits.c - the physical limits beside the uzswap-versus-zram benchmark
 * (bench/run): what a fault and an eviction cannot cost less than, on this
 * machine, now (not a test: it asserts nothing).
 *
 * - raw codecs: pages of each working-set file (the files workload --dump
 *   wrote; every k-th page, --codec-pages of them, so a whole image is
 *   sampled), one 4 KiB page at a time, in this process, one thread:
 *   LZ4_compress_default() (what zram's lz4 and uzswapd's lz4 run) and
 *   ZSTD_compressCCtx() level 3 (uzswapd's default zstd level), then
 *   LZ4_decompress_safe() / ZSTD_decompressDCtx(); µs per page and MB/s
 *   of pages (1 MB = 10^6 bytes); the ratio is orig/compressed over the
 *   pages that are not same-filled (those both stores keep without
 *   payload), as zram's orig_data_size/compr_data_size;
 * - the bare userfaultfd round trip (uffd_rt.c, shared with fault_bench
 *   and store_bench): --uffd-pages one-page faults, each touch timed
 *   alone, resolved by a handler thread of this process and by a forked
 *   handler process (the daemon is another process: every fault switches
 *   address spaces) with a one-page UFFDIO_COPY of a zero page; p50 and
 *   mean µs; and the handler process copying a 16-page block per fault
 *   while every page is touched in order: µs per page, the floor of
 *   read-ahead.
 *
 * Output: lines "TAG key=value ..." for bench/run.
 *
 * Usage: limits [--set NAME=FILE]... [--codec-pages N] [--uffd-pages N]
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "tests/memimage.h"
#include "uffd_rt.h"

#define PAGE		4096ul
#define ZSTD_LEVEL	3
#define MAX_SETS	8

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Every k-th page of @path, @n of them (fewer if the file is small). */
static int load_sample(const char *path, size_t *n, uint8_t **pages)
{
	struct stat st;
	size_t total, step, i;
	uint8_t *buf;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	total = (size_t)st.st_size / PAGE;
	if (!total) {
		ret = -ENODATA;
		goto out;
	}
	if (*n > total)
		*n = total;
	step = total / *n;
	buf = malloc(*n * PAGE);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < *n; i++)
		if (pread(fd, buf + i * PAGE, PAGE, (off_t)(i * step * PAGE)) !=
		    (ssize_t)PAGE) {
			free(buf);
			ret = -EIO;
			goto out;
		}
	*pages = buf;
out:
	close(fd);
	return ret;
}

/* Compress and decompress the @n pages of @in with lz4 or zstd. */
static int codec(const char *set, const uint8_t *in, size_t n, bool zstd)
{
	size_t cap = zstd ? ZSTD_compressBound(PAGE) :
			    (size_t)LZ4_compressBound((int)PAGE);
	uint8_t *out = malloc(n * cap), page[PAGE];
	size_t *len = calloc(n, sizeof(*len)), i, payload = 0, counted = 0;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	double tc, td;
	int ret = -ENOMEM;

	if (!out || !len || !cctx || !dctx)
		goto out;
	memset(out, 0xa5, n * cap);	/* touched before the timing */
	ret = -EIO;
	tc = now();
	for (i = 0; i < n; i++) {
		const uint8_t *src = in + i * PAGE;
		uint8_t *dst = out + i * cap;

		if (zstd) {
			len[i] = ZSTD_compressCCtx(cctx, dst, cap, src, PAGE,
						   ZSTD_LEVEL);
			if (ZSTD_isError(len[i]))
				goto out;
		} else {
			int r = LZ4_compress_default((const char *)src,
						     (char *)dst, (int)PAGE,
						     (int)cap);
			if (r <= 0)
				goto out;
			len[i] = (size_t)r;
		}
	}
	tc = now() - tc;
	td = now();
	for (i = 0; i < n; i++) {
		const uint8_t *src = out + i * cap;

		if (zstd) {
			if (ZSTD_decompressDCtx(dctx, page, PAGE, src, len[i]) !=
			    PAGE)
				goto out;
		} else if (LZ4_decompress_safe((const char *)src, (char *)page,
					       (int)len[i], (int)PAGE) !=
			   (int)PAGE) {
			goto out;
		}
	}
	td = now() - td;
	for (i = 0; i < n; i++) {
		if (memimage_page_same_filled(in + i * PAGE))
			continue;
		/* stored raw when it does not shrink */
		payload += len[i] < PAGE ? len[i] : PAGE;
		counted++;
	}
	printf("codec set=%s name=%s pages=%zu compress_us=%.3f "
	       "decompress_us=%.3f compress_mb_s=%.1f decompress_mb_s=%.1f "
	       "ratio=%.3f\n", set, zstd ? "zstd" : "lz4", n,
	       tc * 1e6 / (double)n, td * 1e6 / (double)n,
	       (double)n * PAGE / tc / 1e6, (double)n * PAGE / td / 1e6,
	       payload ? (double)counted * PAGE / (double)payload : 0);
	ret = 0;
out:
	ZSTD_freeCCtx(cctx);
	ZSTD_freeDCtx(dctx);
	free(out);
	free(len);
	return ret;
}

static int bare(unsigned long n, bool process, unsigned long block,
		double *us)
{
	const struct uffd_rt_mode mode = { .process = process,
					   .block = block };
	struct uffd_rt_sample s;
	double sum = 0;
	unsigned long i;
	int ret;

	ret = uffd_rt_run(n, &mode, us, &s);
	if (ret)
		return ret;
	for (i = 0; i < n; i++)
		sum += us[i];
	qsort(us, n, sizeof(*us), cmp_double);
	printf("uffd handler=%s block=%lu pages=%lu faults=%" PRIu64
	       " p50_us=%.2f p99_us=%.2f mean_us=%.3f\n",
	       process ? "process" : "thread", block, n, s.faults,
	       us[n / 2], us[n * 99 / 100], sum / (double)n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *name[MAX_SETS], *path[MAX_SETS];
	unsigned long codec_pages = 16384, uffd_pages = 16384;
	unsigned int nsets = 0, k;
	double *us;
	int ret;

	for (k = 1; k < (unsigned int)argc; k++) {
		bool more = k + 1 < (unsigned int)argc;

		if (!strcmp(argv[k], "--set") && more && nsets < MAX_SETS) {
			char *eq = strchr(argv[++k], '=');

			if (!eq)
				goto usage;
			*eq = '\0';
			name[nsets] = argv[k];
			path[nsets++] = eq + 1;
		} else if (!strcmp(argv[k], "--codec-pages") && more) {
			codec_pages = strtoul(argv[++k], NULL, 0);
		} else if (!strcmp(argv[k], "--uffd-pages") && more) {
			uffd_pages = strtoul(argv[++k], NULL, 0);
		} else {
			goto usage;
		}
	}
	if (!codec_pages || uffd_pages < 16)
		goto usage;

	for (k = 0; k < nsets; k++) {
		size_t n = codec_pages;
		uint8_t *pages = NULL;

		ret = load_sample(path[k], &n, &pages);
		if (ret) {
			fprintf(stderr, "limits: %s: %s\n", path[k],
				strerror(-ret));
			return 1;
		}
		if ((ret = codec(name[k], pages, n, false)) ||
		    (ret = codec(name[k], pages, n, true))) {
			fprintf(stderr, "limits: codec on %s failed\n",
				name[k]);
			free(pages);
			return 1;
		}
		free(pages);
	}

	us = calloc(uffd_pages, sizeof(*us));
	if (!us)
		return 1;
	if ((ret = bare(uffd_pages, false, 1, us)) ||
	    (ret = bare(uffd_pages, true, 1, us)) ||
	    (ret = bare(uffd_pages, true, 16, us))) {
		fprintf(stderr, "limits: bare uffd round trip: %s\n",
			strerror(-ret));
		free(us);
		return 1;
	}
	free(us);
	fflush(stdout);
	return 0;
usage:
	fprintf(stderr, "usage: limits [--set NAME=FILE]... [--codec-pages N] "
		"[--uffd-pages N]\n");
	return 2;
}
