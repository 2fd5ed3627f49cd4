/*
 * store_bench.c - benchmark of the store on a realistic working set: the
 * pages of a real process (tests/memimage.h: a perl interpreter's heap,
 * built at run time) evicted by uzswapd and faulted back in (not a test:
 * it asserts nothing and its numbers vary with the machine).
 *
 * The image is built once (--image-mib, default 64: perl's resident size;
 * the image is its private writable memory, a little less). Prints one
 * table, medians of --reps runs (default 3); each run measures, in turn:
 * - raw codec speed, the physical limit of eviction and the baseline of
 *   its ratios: in this process, one thread, every page of the image
 *   compressed one 4 KiB page at a time with LZ4_compress_default() and
 *   with ZSTD_compressCCtx() level 3, then decompressed
 *   (LZ4_decompress_safe(), ZSTD_decompressDCtx()); MB/s of pages in
 *   (compress) or out (decompress), 1 MB = 10^6 bytes. The image and
 *   the output buffer are touched first, untimed;
 * - the bare uffd round trip (uffd_rt.c, shared with fault_bench), the
 *   baseline of the fault figures: one one-page fault per page of the
 *   image, each touch timed alone, served by a handler thread of this
 *   process and by a forked handler process (poll()ing, a one-page
 *   UFFDIO_COPY of a zero page). The handler process is the baseline of
 *   the ratios: the daemon too is another process, so every fault
 *   switches address spaces;
 * then, through the daemon, on a fresh managed region (uzswap_alloc(), no
 * budget) the image is copied into:
 * - eviction by budget: uzswap_set_limit(--budget-mib, default 4) on the
 *   freshly copied region, then uzswap_stats() polled (every 1 ms, then
 *   every 1/50 of the time waited so far) until the region's resident
 *   bytes are within the budget: MB/s of the pages evicted (the daemon's
 *   counter) in that time. This is the evictor thread's work (run the
 *   daemon with --evict-threads 1); it includes the evictor's wakeup and
 *   the polling's granularity (at most 2% of the time);
 * - eviction by advice: after the budget is lifted and the region brought
 *   back (WILLNEED) and written again (the image copied in once more: a
 *   page WILLNEED brings back keeps its pool object until written, and
 *   this row is about pages to compress), uzswap_advise(COLD) over the
 *   whole region (one request per 64 MiB), timed. COLD runs the eviction
 *   protocol on a daemon worker, not on an evictor thread; the time
 *   includes the requests' round trips;
 * - the store after that COLD, from the daemon's STATUS (an admin
 *   request: root or the daemon's user; differences of the counters
 *   around the COLD): ratio = (stored - same-filled) pages * 4 KiB /
 *   payload bytes (zram's orig/compr); ratio incl. same-filled = all
 *   stored pages * 4 KiB / payload; density = payload / pool bytes;
 *   pages/pool = all stored pages * 4 KiB / pool bytes (what the pages
 *   take in memory now against before);
 * - fault-in latency: every page of the evicted region read once in a
 *   random order (a different permutation in each run, the same ones in
 *   every invocation; a random order defeats read-ahead, whose pages
 *   STATUS counts), each read timed alone with clock_gettime(); then the
 *   region evicted again (COLD) and read in order, where read-ahead
 *   brings several pages per fault. µs per read: p50, p99, p99.9 and
 *   mean; faults per read from uzswap_stats().
 * - eviction CPU per page (with --daemon-pid): the daemon's CPU time
 *   (every thread's, from /proc/PID/task/TID/schedstat) across a COLD of
 *   the whole region, divided by the pages it evicted, and the pages per
 *   run of the protocol (STATUS), for six ways the pages were brought
 *   back from the store before: every page (runs of 64), one page in two
 *   with stored pages between (a run spans them: one write-protect and
 *   one punch for 32 pages), or one page in two of a second region whose
 *   pages between were never touched (nothing to span: runs of one), each
 *   by a write (dirty pages: write-protect, pread, compress, punch) or by
 *   a read (clean pages that kept their pool object, clean-page
 *   retention: a punch); ratios against dirty runs of one, the eviction
 *   of scattered pages as it was before spans.
 * After each read-back the region is compared with the image: a wrong
 * page ends the benchmark with an error (that is a bug, not a number).
 *
 * Targets (the issue): eviction by budget >= 50% of raw compress speed
 * of the daemon's codec (the target is stated for lz4); fault-in p50
 * (random order) <= the bare round trip's p50 + 5 µs.
 *
 * Usage: store_bench [--image-mib N] [--budget-mib N] [--reps N]
 *                    [--compressor lz4|zstd] [--socket PATH]
 *                    [--daemon-pid PID] [--json]
 * --daemon-pid names the daemon's process, whose CPU time the eviction
 * CPU rows read (without it they are not measured: zeros).
 * --compressor names the daemon's codec (labels and the ratio baseline).
 * run-store-bench starts a private daemon with lz4, then with zstd, and
 * runs this against each.
 */
#include "config.h"

#include <errno.h>
#include <lz4.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "tests/memimage.h"
#include "uffd_rt.h"
#include "connect.h"
#include "reps.h"
#include "uzswap.h"

#define PAGE		4096ul
#define ZSTD_LEVEL	3
#define POLL_US		1000	/* budget wait: first uzswap_stats() period */
#define POLL_SHARE	50	/* ... then 1/50 of the time waited so far */
#define BUDGET_WAIT_S	120	/* give up on the evictor after that */
#define FAULT_SLACK_US	5.0	/* the fault target: bare p50 + this */
#define EVICT_SHARE	0.5	/* the eviction target: this * raw speed */

enum tput {
	RAW_LZ4_C, RAW_LZ4_D, RAW_ZSTD_C, RAW_ZSTD_D,
	EVICT_BUDGET, EVICT_COLD, NR_TPUT
};

static const char *const tput_name[NR_TPUT] = {
	"raw lz4 compress",
	"raw lz4 decompress",
	"raw zstd-3 compress",
	"raw zstd-3 decompress",
	"daemon eviction, budget (evictor)",
	"daemon eviction, COLD (worker)",
};

static const char *const tput_key[NR_TPUT] = {
	"raw_lz4_compress", "raw_lz4_decompress", "raw_zstd_compress",
	"raw_zstd_decompress", "evict_budget", "evict_cold",
};

enum lat {
	BARE_THREAD, BARE_PROC, FAULT_RANDOM, FAULT_SEQ, NR_LAT
};

/* Eviction CPU cases: how the pages came back before the COLD. */
enum ecpu {
	DIRTY_RUNS, DIRTY_SPANS, DIRTY_ONES, CLEAN_RUNS, CLEAN_SPANS,
	CLEAN_ONES, NR_ECPU
};

static const struct ecpu_case {
	const char *name, *key;
	bool write;	/* by a write (dirty), else by a read (clean) */
	size_t step;	/* every page, or one in two */
	bool sparse;	/* in the region whose pages between are NEW */
} ecpu_case[NR_ECPU] = {
	{ "dirty (written back in), every page", "dirty_runs", true, 1,
	  false },
	{ "dirty, one in two, stored between", "dirty_spans", true, 2, false },
	{ "dirty, one in two, nothing between", "dirty_single", true, 1,
	  true },
	{ "clean (read back in), every page", "clean_runs", false, 1, false },
	{ "clean, one in two, stored between", "clean_spans", false, 2,
	  false },
	{ "clean, one in two, nothing between", "clean_single", false, 1,
	  true },
};

static const char *const lat_name[NR_LAT] = {
	"bare uffd, handler thread",
	"bare uffd, handler process",
	"daemon, random order",
	"daemon, in order (read-ahead)",
};

static const char *const lat_key[NR_LAT] = {
	"bare_thread", "bare_process", "random", "sequential",
};

struct lat_stats {
	double p50, p99, p999, mean;	/* µs per touch */
	double faults_per_page;		/* faults served per touch */
};

/* One run. Doubles only: medians, minima and maxima are taken field by
 * field. */
struct rep {
	double mb_s[NR_TPUT];
	double budget_pages;		/* pages the evictor evicted */
	double cold_pages;		/* pages COLD evicted */
	struct lat_stats lat[NR_LAT];
	double read_ahead[NR_LAT];	/* pages read ahead (daemon rows) */
	double ecpu_us[NR_ECPU];	/* daemon CPU per evicted page */
	double ecpu_pages[NR_ECPU];	/* pages that COLD evicted */
	double ecpu_runs[NR_ECPU];	/* its runs of the protocol */
	/* the store after COLD (STATUS) */
	double stored, same, raw, payload, pool;
};

_Static_assert(sizeof(struct rep) % sizeof(double) == 0,
	       "struct rep is made of doubles");


/*****************
 * Statistics
 *****************/

/* Latency figures of @n touches in @us (sorted in place). */
static void lat_summarize(double *us, size_t n, double faults,
			  struct lat_stats *l)
{
	double sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		sum += us[i];
	qsort(us, n, sizeof(*us), reps_cmp_double);
	l->p50 = reps_percentile(us, n, 0.50);
	l->p99 = reps_percentile(us, n, 0.99);
	l->p999 = reps_percentile(us, n, 0.999);
	l->mean = sum / (double)n;
	l->faults_per_page = faults / (double)n;
}

/*****************
 * Raw codecs
 *****************/

struct codec_bufs {
	uint8_t *out;		/* nr_pages slots of @cap bytes */
	size_t *len;		/* compressed size of each page */
	size_t cap;
	uint8_t page[PAGE];	/* decompression target */
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

static int codec_bufs_init(struct codec_bufs *cb, size_t nr_pages)
{
	size_t lz4 = (size_t)LZ4_compressBound((int)PAGE);
	size_t zstd = ZSTD_compressBound(PAGE);

	memset(cb, 0, sizeof(*cb));
	cb->cap = lz4 > zstd ? lz4 : zstd;
	cb->out = malloc(nr_pages * cb->cap);
	cb->len = calloc(nr_pages, sizeof(*cb->len));
	cb->cctx = ZSTD_createCCtx();
	cb->dctx = ZSTD_createDCtx();
	if (!cb->out || !cb->len || !cb->cctx || !cb->dctx)
		return -ENOMEM;
	return 0;
}

static void codec_bufs_free(struct codec_bufs *cb)
{
	free(cb->out);
	free(cb->len);
	ZSTD_freeCCtx(cb->cctx);
	ZSTD_freeDCtx(cb->dctx);
}

/*
 * Touch every page of the image and of the output before a timed pass.
 * On the reference VM, memory left idle while the daemon ran was slow to
 * touch again (the first lz4 pass after a daemon run went 3-4x slower
 * than the next, untouched pages or not; the host's reclaim, likely):
 * the codec's speed is what is measured, not that.
 */
static void warm_up(const struct memimage *img, struct codec_bufs *cb)
{
	const volatile uint8_t *p = img->pages;
	size_t i;

	for (i = 0; i < img->nr_pages; i++)
		(void)p[i * PAGE];
	/* not zeros: a compiler may turn malloc() + memset(0) into a
	 * calloc(), which touches nothing */
	memset(cb->out, 0xa5, img->nr_pages * cb->cap);
}

/* Compress then decompress every page of @img with @zstd or lz4; MB/s
 * into @compress and @decompress. */
static int raw_codec(const struct memimage *img, struct codec_bufs *cb,
		     bool zstd, double *compress, double *decompress)
{
	size_t i, n = img->nr_pages;
	double t0;

	warm_up(img, cb);
	t0 = reps_now();
	for (i = 0; i < n; i++) {
		const uint8_t *src = memimage_page(img, i);
		uint8_t *dst = cb->out + i * cb->cap;

		if (zstd) {
			cb->len[i] = ZSTD_compressCCtx(cb->cctx, dst, cb->cap,
						       src, PAGE, ZSTD_LEVEL);
			if (ZSTD_isError(cb->len[i]))
				return -EIO;
		} else {
			int r = LZ4_compress_default((const char *)src,
						     (char *)dst, (int)PAGE,
						     (int)cb->cap);
			if (r <= 0)
				return -EIO;
			cb->len[i] = (size_t)r;
		}
	}
	*compress = reps_mb_s((double)n, reps_now() - t0);

	t0 = reps_now();
	for (i = 0; i < n; i++) {
		const uint8_t *src = cb->out + i * cb->cap;

		if (zstd) {
			if (ZSTD_decompressDCtx(cb->dctx, cb->page, PAGE, src,
						cb->len[i]) != PAGE)
				return -EIO;
		} else if (LZ4_decompress_safe((const char *)src,
					       (char *)cb->page,
					       (int)cb->len[i],
					       (int)PAGE) != (int)PAGE) {
			return -EIO;
		}
	}
	*decompress = reps_mb_s((double)n, reps_now() - t0);
	return 0;
}

/*****************
 * The daemon
 *****************/

static int check_image(const char *region, const struct memimage *img)
{
	return memcmp(region, img->pages, img->nr_pages * PAGE) ? -EIO : 0;
}

/* The sparse region: page 2i holds the image's page i. (Page 2i + 1 is
 * not read: a fault on it would fill it, and its neighbours, with
 * zeros.) */
static int check_sparse(const char *sparse, const struct memimage *img)
{
	size_t i;

	for (i = 0; i < img->nr_pages; i++)
		if (memcmp(sparse + 2 * i * PAGE, img->pages + i * PAGE, PAGE))
			return -EIO;
	return 0;
}

/* The sparse region: twice @img's pages, page 2i the image's page i,
 * page 2i + 1 never touched, adopted so that the odd pages are holes the
 * daemon knows as NEW (its zero-fill of a fault's block would make them
 * resident zero pages): nothing an eviction may span. NULL with errno. */
static char *sparse_region(uzswap_t *c, const struct memimage *img)
{
	size_t i, len = 2 * img->nr_pages * PAGE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	for (i = 0; i < img->nr_pages; i++)
		memcpy(p + 2 * i * PAGE, img->pages + i * PAGE, PAGE);
	if (!uzswap_adopt(c, p, len, "store_bench sparse")) {
		int err = errno;

		munmap(p, len);
		errno = err;
		return NULL;
	}
	return p;
}

/*
 * Poll until the evictor has brought the region within @budget. Each poll
 * is a request the daemon's loop thread answers and a wakeup of this
 * process, which on 2 CPUs takes time from the evictor (polling every
 * 0.2 ms slowed it visibly on the reference VM): the period
 * grows with the time waited, so the wait ends at most 2% late.
 */
static int budget_wait(uzswap_t *c, uint64_t budget, double t0,
		       struct uzswap_stats *st)
{
	double waited;
	int ret;

	for (;;) {
		if ((ret = uzswap_stats(c, st)))
			return ret;
		if (st->resident_bytes <= budget)
			return 0;
		waited = reps_now() - t0;
		if (waited > BUDGET_WAIT_S)
			return -ETIMEDOUT;
		if (waited * 1e6 / POLL_SHARE > POLL_US)
			usleep((useconds_t)(waited * 1e6 / POLL_SHARE));
		else
			usleep(POLL_US);
	}
}

/* Read every page of @region once in the order of @order, each read
 * timed alone. */
static unsigned int read_pages(const char *region, const size_t *order,
			       size_t n, double *us)
{
	unsigned int sum = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const volatile char *p = region + order[i] * PAGE;
		double t = reps_now();

		sum += (unsigned char)*p;
		us[i] = (reps_now() - t) * 1e6;
	}
	return sum;
}

static void shuffle(size_t *v, size_t n, uint64_t seed)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
	size_t i, j, t;

	for (i = 0; i < n; i++)
		v[i] = i;
	for (i = n - 1; i > 0; i--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (size_t)(x % (i + 1));
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

static volatile unsigned int sink;

/* Bring every @step-th image page of @region (all stored, image page i
 * at page i * @stride) back: by a write of the byte the image has there
 * (a write fault: the page comes back without its pool object) or by a
 * read (it keeps it). */
static void bring_back(char *region, size_t stride,
		       const struct memimage *img, size_t step, bool write)
{
	size_t i;

	for (i = 0; i < img->nr_pages; i += step) {
		volatile char *p = region + i * stride * PAGE;

		if (write)
			*p = (char)img->pages[i * PAGE];
		else
			sink += (unsigned char)*p;
	}
}

/* Case @e of the eviction CPU: @region (image page i at page i *
 * @stride), all stored, brought back as @e says, then evicted by one
 * COLD, the daemon's CPU and its runs of the protocol measured across
 * it. */
static int evict_cpu(uzswap_t *c, const char *sock, pid_t pid, char *region,
		     size_t stride, const struct memimage *img, enum ecpu e,
		     struct rep *r)
{
	const struct ecpu_case *ec = &ecpu_case[e];
	size_t len = img->nr_pages * stride * PAGE;
	struct uzswap_stats s0, s1;
	struct uzswap_status a, b;
	double ns0, ns1;
	int ret;

	STEP("COLD", bench_advise(c, region, len, UZSWAP_ADVISE_COLD));
	bring_back(region, stride, img, ec->step, ec->write);
	STEP("uzswap_stats", uzswap_stats(c, &s0));
	STEP("STATUS", bench_daemon_status(sock, &a));
	STEP("daemon CPU time", bench_daemon_cpu_ns(pid, &ns0));
	STEP("COLD", bench_advise(c, region, len, UZSWAP_ADVISE_COLD));
	STEP("daemon CPU time", bench_daemon_cpu_ns(pid, &ns1));
	STEP("uzswap_stats", uzswap_stats(c, &s1));
	STEP("STATUS", bench_daemon_status(sock, &b));
	r->ecpu_pages[e] = (double)(s1.evictions - s0.evictions);
	r->ecpu_runs[e] = (double)(b.eviction_runs - a.eviction_runs);
	r->ecpu_us[e] = r->ecpu_pages[e] ?
			(ns1 - ns0) / 1e3 / r->ecpu_pages[e] : 0;
out:
	return ret;
}

/* The eviction CPU cases, each from its region all stored: @region, and
 * @sparse (twice as long, the image on its even pages). */
static int evict_cpu_cases(uzswap_t *c, const char *sock, pid_t pid,
			   char *region, char *sparse,
			   const struct memimage *img, struct rep *r)
{
	enum ecpu e;
	int ret = 0;

	for (e = 0; e < NR_ECPU; e++) {
		bool sp = ecpu_case[e].sparse;

		ret = evict_cpu(c, sock, pid, sp ? sparse : region,
				sp ? 2 : 1, img, e, r);
		if (ret)
			return ret;
		STEP("data after the eviction CPU case",
		     sp ? check_sparse(sparse, img) : check_image(region, img));
	}
out:
	return ret;
}

/* One run through the daemon: the rows the daemon makes in @r. @order
 * and @us hold nr_pages entries each. */
static int daemon_rep(uzswap_t *c, const char *sock, pid_t pid,
		      const struct memimage *img, uint64_t budget,
		      unsigned int k, size_t *order, double *us, struct rep *r)
{
	size_t i, n = img->nr_pages, len = n * PAGE;
	struct uzswap_status a, b;
	struct uzswap_stats s0, s1;
	char *region, *sparse;
	double t0, t;
	int ret;

	bench_step = "uzswap_alloc";
	region = uzswap_alloc(c, len, "store_bench");
	if (!region)
		return -errno;
	memcpy(region, img->pages, len);

	/* eviction by budget, the evictor's work */
	STEP("uzswap_stats", uzswap_stats(c, &s0));
	t0 = reps_now();
	STEP("uzswap_set_limit", uzswap_set_limit(c, budget));
	STEP("waiting for the evictor", budget_wait(c, budget, t0, &s1));
	t = reps_now() - t0;
	r->budget_pages = (double)(s1.evictions - s0.evictions);
	r->mb_s[EVICT_BUDGET] = reps_mb_s(r->budget_pages, t);
	STEP("uzswap_set_limit 0", uzswap_set_limit(c, 0));

	/* every page back, then eviction by advice */
	STEP("WILLNEED", bench_advise(c, region, len, UZSWAP_ADVISE_WILLNEED));
	STEP("data after the budget eviction", check_image(region, img));
	memcpy(region, img->pages, len);
	STEP("STATUS (needs root or the daemon's user)",
	     bench_daemon_status(sock, &a));
	STEP("uzswap_stats", uzswap_stats(c, &s0));
	t0 = reps_now();
	STEP("COLD", bench_advise(c, region, len, UZSWAP_ADVISE_COLD));
	t = reps_now() - t0;
	STEP("uzswap_stats", uzswap_stats(c, &s1));
	STEP("STATUS", bench_daemon_status(sock, &b));
	r->cold_pages = (double)(s1.evictions - s0.evictions);
	r->mb_s[EVICT_COLD] = reps_mb_s(r->cold_pages, t);
	r->stored = (double)(b.stored_pages - a.stored_pages);
	r->same = (double)(b.same_pages - a.same_pages);
	r->raw = (double)(b.raw_pages - a.raw_pages);
	r->payload = (double)b.compressed_bytes - (double)a.compressed_bytes;
	r->pool = (double)b.pool_bytes - (double)a.pool_bytes;

	/* fault-in, random order */
	shuffle(order, n, k);
	a = b;
	s0 = s1;
	sink += read_pages(region, order, n, us);
	STEP("uzswap_stats", uzswap_stats(c, &s1));
	STEP("STATUS", bench_daemon_status(sock, &b));
	lat_summarize(us, n, (double)(s1.faults - s0.faults),
		      &r->lat[FAULT_RANDOM]);
	r->read_ahead[FAULT_RANDOM] = (double)(b.read_ahead - a.read_ahead);
	STEP("data after the random read", check_image(region, img));

	/* fault-in, in order */
	STEP("COLD", bench_advise(c, region, len, UZSWAP_ADVISE_COLD));
	for (i = 0; i < n; i++)
		order[i] = i;
	STEP("uzswap_stats", uzswap_stats(c, &s0));
	STEP("STATUS", bench_daemon_status(sock, &a));
	sink += read_pages(region, order, n, us);
	STEP("uzswap_stats", uzswap_stats(c, &s1));
	STEP("STATUS", bench_daemon_status(sock, &b));
	lat_summarize(us, n, (double)(s1.faults - s0.faults),
		      &r->lat[FAULT_SEQ]);
	r->read_ahead[FAULT_SEQ] = (double)(b.read_ahead - a.read_ahead);
	STEP("data after the read in order", check_image(region, img));

	/* eviction CPU per page, from a region all stored each time */
	if (pid) {
		bench_step = "uzswap_adopt";
		sparse = sparse_region(c, img);
		if (!sparse) {
			ret = -errno;
			goto out;
		}
		ret = evict_cpu_cases(c, sock, pid, region, sparse, img, r);
		uzswap_free(c, sparse);
	}
out:
	uzswap_free(c, region);
	return ret;
}

/* The bare round trip, @n one-page faults served by @process or a
 * thread. */
static int bare_rep(size_t n, bool process, double *us, struct lat_stats *l)
{
	const struct uffd_rt_mode mode = { .process = process, .block = 1 };
	struct uffd_rt_sample s;
	int ret = uffd_rt_run(n, &mode, us, &s);

	if (ret == 0)
		lat_summarize(us, n, (double)s.faults, l);
	return ret;
}

/*****************
 * Report
 *****************/

struct report {
	const struct memimage *img;
	size_t same_filled;		/* pages of the image */
	const char *codec;		/* the daemon's */
	unsigned long reps, budget_mib;
	struct rep med, lo, hi;
	double evict_base;		/* raw compress of the daemon's codec */
	double fault_base;		/* bare process p50 */
};

static void print_json(const struct report *p)
{
	const struct rep *m = &p->med;
	unsigned int i;

	printf("{\"compressor\":\"%s\",\"image_pages\":%zu,"
	       "\"same_filled_pages\":%zu,\"reps\":%lu,\"budget_mib\":%lu",
	       p->codec, p->img->nr_pages, p->same_filled, p->reps,
	       p->budget_mib);
	printf(",\"throughput_mb_s\":{");
	for (i = 0; i < NR_TPUT; i++)
		printf("%s\"%s\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f,"
		       "\"ratio_raw_compress\":%.3f}", i ? "," : "",
		       tput_key[i], m->mb_s[i], p->lo.mb_s[i], p->hi.mb_s[i],
		       m->mb_s[i] / p->evict_base);
	printf("},\"evicted_pages\":{\"budget\":%.0f,\"cold\":%.0f}",
	       m->budget_pages, m->cold_pages);
	printf(",\"store\":{\"stored_pages\":%.0f,\"same_pages\":%.0f,"
	       "\"raw_pages\":%.0f,\"payload_bytes\":%.0f,\"pool_bytes\":%.0f,"
	       "\"ratio\":%.3f,\"ratio_incl_same\":%.3f,\"density\":%.3f,"
	       "\"pages_per_pool\":%.3f}",
	       m->stored, m->same, m->raw, m->payload, m->pool,
	       (m->stored - m->same) * PAGE / m->payload,
	       m->stored * PAGE / m->payload, m->payload / m->pool,
	       m->stored * PAGE / m->pool);
	printf(",\"fault_us\":{");
	for (i = 0; i < NR_LAT; i++)
		printf("%s\"%s\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,"
		       "\"mean\":%.2f,\"p50_min\":%.2f,\"p50_max\":%.2f,"
		       "\"faults_per_page\":%.4f,\"read_ahead_pages\":%.0f,"
		       "\"ratio_p50\":%.3f,\"ratio_mean\":%.3f}",
		       i ? "," : "", lat_key[i],
		       m->lat[i].p50, m->lat[i].p99, m->lat[i].p999,
		       m->lat[i].mean, p->lo.lat[i].p50, p->hi.lat[i].p50,
		       m->lat[i].faults_per_page, m->read_ahead[i],
		       m->lat[i].p50 / p->fault_base,
		       m->lat[i].mean / m->lat[BARE_PROC].mean);
	printf("},\"evict_cpu_us_per_page\":{");
	for (i = 0; i < NR_ECPU; i++)
		printf("%s\"%s\":{\"median\":%.2f,\"min\":%.2f,\"max\":%.2f,"
		       "\"pages\":%.0f,\"runs\":%.0f,"
		       "\"ratio_dirty_single\":%.3f}",
		       i ? "," : "", ecpu_case[i].key, m->ecpu_us[i],
		       p->lo.ecpu_us[i], p->hi.ecpu_us[i], m->ecpu_pages[i],
		       m->ecpu_runs[i], m->ecpu_us[i] / m->ecpu_us[DIRTY_ONES]);
	printf("},\"targets\":{\"evict\":{\"mb_s\":%.1f,\"base_mb_s\":%.1f,"
	       "\"need_mb_s\":%.1f,\"met\":%s},\"fault_p50\":{\"us\":%.2f,"
	       "\"base_us\":%.2f,\"need_us\":%.2f,\"met\":%s,"
	       "\"thread_base_us\":%.2f,\"met_vs_thread\":%s}}}\n",
	       m->mb_s[EVICT_BUDGET], p->evict_base,
	       EVICT_SHARE * p->evict_base,
	       m->mb_s[EVICT_BUDGET] >= EVICT_SHARE * p->evict_base ?
	       "true" : "false", m->lat[FAULT_RANDOM].p50, p->fault_base,
	       p->fault_base + FAULT_SLACK_US,
	       m->lat[FAULT_RANDOM].p50 <= p->fault_base + FAULT_SLACK_US ?
	       "true" : "false", m->lat[BARE_THREAD].p50,
	       m->lat[FAULT_RANDOM].p50 <= m->lat[BARE_THREAD].p50 +
	       FAULT_SLACK_US ? "true" : "false");
}

static void print_table(const struct report *p)
{
	const struct rep *m = &p->med;
	bool zstd = !strcmp(p->codec, "zstd");
	double evict_need = EVICT_SHARE * p->evict_base;
	double fault_need = p->fault_base + FAULT_SLACK_US;
	double thread_need = m->lat[BARE_THREAD].p50 + FAULT_SLACK_US;
	unsigned int i;

	printf("store on a real memory image: %zu pages (%.1f MiB) of a perl "
	       "process, %zu same-filled;\ndaemon compressor %s; median of "
	       "%lu runs; ratios against baselines measured in the same run\n",
	       p->img->nr_pages, (double)p->img->nr_pages * PAGE / 1048576.0,
	       p->same_filled, p->codec, p->reps);

	printf("\n%-36s %10s %10s %10s\n", "throughput, one thread",
	       "MB/s", "pages", zstd ? "x zstd c" : "x lz4 c");
	for (i = 0; i < NR_TPUT; i++) {
		double pages = i == EVICT_BUDGET ? m->budget_pages :
			       i == EVICT_COLD ? m->cold_pages :
			       (double)p->img->nr_pages;

		printf("%-36s %10.1f %10.0f %10.2f\n", tput_name[i],
		       m->mb_s[i], pages, m->mb_s[i] / p->evict_base);
	}

	printf("\n%-10s %7s %6s %5s %11s %8s %6s %9s %7s %7s\n", "store",
	       "stored", "same", "raw", "payload MiB", "pool MiB", "ratio",
	       "incl same", "density", "pg/pool");
	printf("%-10s %7.0f %6.0f %5.0f %11.2f %8.2f %6.2f %9.2f %7.3f "
	       "%7.2f\n", "after COLD", m->stored, m->same, m->raw,
	       m->payload / 1048576.0, m->pool / 1048576.0,
	       (m->stored - m->same) * PAGE / m->payload,
	       m->stored * PAGE / m->payload, m->payload / m->pool,
	       m->stored * PAGE / m->pool);

	printf("\n%-30s %7s %7s %7s %7s %9s %6s %6s %6s\n",
	       "fault-in, us per page", "p50", "p99", "p99.9", "mean",
	       "faults/pg", "ra pg", "x p50", "x mean");
	for (i = 0; i < NR_LAT; i++)
		printf("%-30s %7.2f %7.2f %7.2f %7.2f %9.4f %6.0f %6.2f "
		       "%6.2f\n", lat_name[i], m->lat[i].p50, m->lat[i].p99,
		       m->lat[i].p999, m->lat[i].mean,
		       m->lat[i].faults_per_page, m->read_ahead[i],
		       m->lat[i].p50 / p->fault_base,
		       m->lat[i].mean / m->lat[BARE_PROC].mean);
	printf("(x: against the bare handler process; ra pg: pages the daemon "
	       "read ahead)\n");

	printf("\n%-40s %8s %9s %9s %9s\n",
	       "eviction CPU (daemon, all threads)", "pages", "pages/run",
	       "us/page", "x dirty 1");
	for (i = 0; i < NR_ECPU; i++)
		printf("%-40s %8.0f %9.1f %9.2f %9.2f\n", ecpu_case[i].name,
		       m->ecpu_pages[i],
		       m->ecpu_runs[i] ? m->ecpu_pages[i] / m->ecpu_runs[i] : 0,
		       m->ecpu_us[i], m->ecpu_us[i] / m->ecpu_us[DIRTY_ONES]);
	printf("(x dirty 1: against dirty, one in two, nothing between; "
	       "min..max us/page over the runs:");
	for (i = 0; i < NR_ECPU; i++)
		printf(" %s %.2f..%.2f", ecpu_case[i].key, p->lo.ecpu_us[i],
		       p->hi.ecpu_us[i]);
	printf(")\n");

	printf("\nover the runs (min..max): evict budget %.1f..%.1f MB/s, "
	       "COLD %.1f..%.1f MB/s,\n  random p50 %.2f..%.2f us, bare "
	       "process p50 %.2f..%.2f us, bare thread p50 %.2f..%.2f us\n",
	       p->lo.mb_s[EVICT_BUDGET], p->hi.mb_s[EVICT_BUDGET],
	       p->lo.mb_s[EVICT_COLD], p->hi.mb_s[EVICT_COLD],
	       p->lo.lat[FAULT_RANDOM].p50, p->hi.lat[FAULT_RANDOM].p50,
	       p->lo.lat[BARE_PROC].p50, p->hi.lat[BARE_PROC].p50,
	       p->lo.lat[BARE_THREAD].p50, p->hi.lat[BARE_THREAD].p50);

	printf("\ntargets: eviction (budget, one evictor thread) >= %.0f%% of "
	       "raw %s compress:\n  %.1f MB/s = %.0f%% of %.1f: %s (COLD on "
	       "a worker: %.0f%%)%s\n",
	       EVICT_SHARE * 100, zstd ? "zstd-3" : "lz4",
	       m->mb_s[EVICT_BUDGET], 100 * m->mb_s[EVICT_BUDGET] /
	       p->evict_base, p->evict_base,
	       m->mb_s[EVICT_BUDGET] >= evict_need ? "met" : "MISSED",
	       100 * m->mb_s[EVICT_COLD] / p->evict_base,
	       zstd ? "; the target is stated for lz4" : "");
	printf("  fault p50 (random) <= bare round trip p50 + %.0f us: %.2f "
	       "vs %.2f + %.0f (handler process): %s;\n  against the handler "
	       "thread of this process, %.2f + %.0f: %s\n",
	       FAULT_SLACK_US, m->lat[FAULT_RANDOM].p50, p->fault_base,
	       FAULT_SLACK_US,
	       m->lat[FAULT_RANDOM].p50 <= fault_need ? "met" : "MISSED",
	       m->lat[BARE_THREAD].p50, FAULT_SLACK_US,
	       m->lat[FAULT_RANDOM].p50 <= thread_need ? "met" : "MISSED");
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--image-mib N] [--budget-mib N] "
		"[--reps N] [--compressor lz4|zstd] [--socket PATH] "
		"[--daemon-pid PID] [--json]\n", prog);
}

int main(int argc, char **argv)
{
	static struct rep runs[REPS_MAX];
	unsigned long mib = 64, budget_mib = 4, reps = 3;
	const char *socket_path = NULL, *codec = "lz4", *sock;
	pid_t daemon_pid = 0;
	struct codec_bufs cb;
	struct report p = { 0 };
	struct memimage img;
	bool json = false;
	double *us = NULL;
	size_t *order = NULL, i;
	unsigned int k;
	uzswap_t *c;
	int ret, status = 1;

	for (k = 1; k < (unsigned int)argc; k++) {
		bool more = k + 1 < (unsigned int)argc;

		if (!strcmp(argv[k], "--image-mib") && more)
			mib = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--budget-mib") && more)
			budget_mib = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--reps") && more)
			reps = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--compressor") && more)
			codec = argv[++k];
		else if (!strcmp(argv[k], "--socket") && more)
			socket_path = argv[++k];
		else if (!strcmp(argv[k], "--daemon-pid") && more)
			daemon_pid = (pid_t)strtol(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--json"))
			json = true;
		else {
			usage(argv[0]);
			return 2;
		}
	}
	if (mib < 8 || mib > 4096 || budget_mib < 1 || budget_mib * 2 > mib ||
	    reps < 1 || reps > REPS_MAX ||
	    (strcmp(codec, "lz4") && strcmp(codec, "zstd"))) {
		fprintf(stderr, "store_bench: --image-mib takes 8 to 4096, "
			"--budget-mib 1 to half the image, --reps 1 to %d, "
			"--compressor lz4 or zstd\n", REPS_MAX);
		return 2;
	}
	sock = socket_path ? socket_path : getenv("UZSWAP_SOCKET");
	if (!sock || !*sock)
		sock = UZSWAP_DEFAULT_SOCKET;

	c = bench_connect(sock);
	if (!c) {
		fprintf(stderr, "store_bench: cannot connect to uzswapd at %s: "
			"%s\n", sock, uzswap_strerror(errno));
		return 1;
	}
	if (memimage_build((unsigned int)mib, &img)) {
		fprintf(stderr, "store_bench: no memory image\n");
		uzswap_disconnect(c);
		return 1;
	}
	for (i = 0; i < img.nr_pages; i++)
		p.same_filled += memimage_page_same_filled(memimage_page(&img,
									 i));
	if (codec_bufs_init(&cb, img.nr_pages) ||
	    !(us = calloc(img.nr_pages, sizeof(*us))) ||
	    !(order = calloc(img.nr_pages, sizeof(*order)))) {
		fprintf(stderr, "store_bench: out of memory\n");
		goto out;
	}

	/* The parts take turns inside each repetition, so that a slow
	 * moment of the machine spreads over all of them. */
	for (k = 0; k < reps; k++) {
		struct rep *r = &runs[k];

		if ((ret = raw_codec(&img, &cb, false, &r->mb_s[RAW_LZ4_C],
				     &r->mb_s[RAW_LZ4_D])) ||
		    (ret = raw_codec(&img, &cb, true, &r->mb_s[RAW_ZSTD_C],
				     &r->mb_s[RAW_ZSTD_D]))) {
			fprintf(stderr, "store_bench: raw codec run: %s\n",
				strerror(-ret));
			goto out;
		}
		if ((ret = bare_rep(img.nr_pages, false, us,
				    &r->lat[BARE_THREAD])) ||
		    (ret = bare_rep(img.nr_pages, true, us,
				    &r->lat[BARE_PROC]))) {
			fprintf(stderr, "store_bench: bare uffd run: %s\n",
				strerror(-ret));
			goto out;
		}
		ret = daemon_rep(c, sock, daemon_pid, &img, budget_mib << 20,
				 k, order, us, r);
		if (ret) {
			fprintf(stderr, "store_bench: run through the daemon, "
				"%s: %s\n", bench_step, bench_step_error(ret));
			goto out;
		}
	}

	p.img = &img;
	p.codec = codec;
	p.reps = reps;
	p.budget_mib = budget_mib;
	reps_summarize(runs, sizeof(*runs), (unsigned int)reps, &p.med,
		       &p.lo, &p.hi);
	p.evict_base = strcmp(codec, "zstd") ? p.med.mb_s[RAW_LZ4_C]
					     : p.med.mb_s[RAW_ZSTD_C];
	p.fault_base = p.med.lat[BARE_PROC].p50;
	if (json)
		print_json(&p);
	else
		print_table(&p);
	status = 0;
out:
	uzswap_disconnect(c);
	codec_bufs_free(&cb);
	free(us);
	free(order);
	memimage_free(&img);
	return status;
}
