/*
 * workload.c - the workload of the uzswap-versus-zram benchmark (bench/run):
 * one program, built twice (not a test: it asserts nothing about time and
 * its numbers vary with the machine; only wrong data fails it).
 *
 *   workload_uzswap (-DWORKLOAD_UZSWAP): the working set is a managed
 *       region (uzswap_alloc()) under a budget set with uzswap_set_limit();
 *       uzswapd compresses what does not fit and serves the faults;
 *   workload_mmap: the working set is plain private anonymous memory
 *       (mmap); the runner puts the process into a cgroup-v1 memory cgroup
 *       and gives the kernel a zram swap device, so the kernel compresses
 *       what does not fit.
 *
 * Everything else is the same code, and the same pages: the working set
 * is read from a file the runner writes once per benchmark (--dump), so
 * both sides compress identical bytes.
 *
 * A run (--in FILE):
 * 1. allocate and touch every piece of bookkeeping first (checksums, the
 *    zipf permutation, the latency samples), so that the kernel side's
 *    cgroup charge before the working set (the "base") is known;
 * 2. allocate the working set and fill it from FILE, no budget yet,
 *    recording a 64-bit checksum of every page;
 * 3. apply the budget and time how long the pages over it take to go:
 *    uzswap: uzswap_set_limit(budget), then uzswap_stats() polled until
 *    the resident bytes are within it (the daemon's evictor at work);
 *    mmap: write base + budget into the cgroup's memory.limit_in_bytes
 *    (--cgroup DIR): the kernel reclaims to zram inside that write. Both
 *    are "eviction MB/s": 4 KiB x pages evicted (the daemon's counter;
 *    pswpout of /proc/vmstat) / seconds;
 * 4. one untimed warm-up pass: every page read in order and verified,
 *    so both sides start from the working set pushed out to the budget
 *    with the last pages read resident. Then for each pattern, in the
 *    order below (each starts where the one before left the pages; the
 *    same on both sides), --touches page touches, timed as a whole: µs
 *    per page touched. Each touch reads the page's first byte (timed
 *    alone: a touch whose first byte took longer than --slow-us, default
 *    5 µs, was a fault served from compressed memory; p50/p99 of those
 *    are the client-side fault latency, end to end: kernel delivery, the
 *    handler's work, the wakeup), then checksums the whole page and
 *    compares it with the record; "rmw" then copies 4 words of the page
 *    over 4 others (the page stays what it was like: text stays text) and
 *    records the new checksum. Every 20 ms the bytes of the working set
 *    in memory are sampled (uzswap_stats(); the cgroup's charge beyond
 *    the base), the time that takes left out: mean and maximum show
 *    whether a side held its budget. Patterns:
 *      seq     pages in order, wrapping around;
 *      random  uniformly random pages;
 *      zipf    zipfian ranks (theta 0.99, YCSB's generator) mapped
 *              through a random permutation, so the hot set is spread
 *              over the range;
 *      rmw     uniformly random pages, read, verified, modified;
 * 5. the store right after the last pattern, while its pages are out:
 *    uzswap: uzswap_stats() and the daemon's status (an admin request:
 *    root or the daemon's user); mmap: the zram device's mm_stat (--zram
 *    NAME);
 * 6. a final untimed pass verifies every page.
 * Random numbers come from a seeded generator (--seed): both builds touch
 * the same pages in the same order.
 *
 * Output: one line per step, "TAG key=value ...", for bench/run to parse
 * (and readable as is). A page whose checksum differs ends the run at
 * once with exit code 3 and a line on stderr; a setup failure is exit 1;
 * a usage error 2.
 *
 * Usage:
 *   workload_* --dump image|text --size MIB --out FILE
 *       write a working set of MIB MiB: "image" is the private memory of
 *       a real perl process (tests/memimage.h) grown to a little more than
 *       MIB (repeated if it comes out short); "text" is phrases of words of
 *       a fixed dictionary drawn by a seeded generator (compresses like
 *       text; textset.c);
 *   workload_* --in FILE --budget MIB [--patterns seq,random,zipf,rmw]
 *       [--touches N] [--seed N] [--slow-us X]
 *       workload_uzswap: [--socket PATH] (else $UZSWAP_SOCKET)
 *       workload_mmap:   [--cgroup DIR] [--zram NAME]
 *       --touches defaults to twice the pages of the working set.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/common/fullio.h"
#include "tests/memimage.h"
#include "pagesum.h"
#include "textset.h"
#ifdef WORKLOAD_UZSWAP
#include "connect.h"
#include "uzswap.h"
#define SIDE "uzswap"
#else
#define SIDE "mmap"
#endif

#define PAGE		4096ul
#define WORDS		(PAGE / sizeof(uint64_t))
#define ZIPF_THETA	0.99
#define RMW_WORDS	4		/* words copied per rmw touch */
#define SLOW_US		5.0		/* a slower first byte was a fault */
#define IMAGE_EXTRA_MIB	16		/* perl grows past the target by this */
#define CHUNK		(1ul << 20)	/* file I/O unit */
#define BUDGET_WAIT_S	300		/* give up on the evictor after that */
#define LIMIT_RETRIES	20		/* EBUSY from memory.limit_in_bytes */
#define SAMPLE_S	0.020		/* resident bytes sampled this often */

enum pattern { P_SEQ, P_RANDOM, P_ZIPF, P_RMW, NR_PATTERNS };

static const char *const pattern_name[NR_PATTERNS] = {
	"seq", "random", "zipf", "rmw",
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*****************
 * Zipf (YCSB's ZipfianGenerator, Gray et al., "Quickly generating
 * billion-record synthetic databases"): rank 0 is the hottest
 *****************/

struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half_pow_theta;
};

static void zipf_init(struct zipf *z, uint64_t n, double theta)
{
	double zeta2 = 1 + pow(0.5, theta);
	uint64_t i;

	z->n = n;
	z->theta = theta;
	z->zetan = 0;
	for (i = 1; i <= n; i++)
		z->zetan += 1 / pow((double)i, theta);
	z->alpha = 1 / (1 - theta);
	z->eta = (1 - pow(2.0 / (double)n, 1 - theta)) /
		 (1 - zeta2 / z->zetan);
	z->half_pow_theta = pow(0.5, theta);
}

static uint64_t zipf_next(const struct zipf *z, uint64_t *s)
{
	double u = rnd_unit(s), uz = u * z->zetan;
	uint64_t r;

	if (uz < 1)
		return 0;
	if (uz < 1 + z->half_pow_theta)
		return 1;
	r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1,
					  z->alpha));
	return r < z->n ? r : z->n - 1;
}

/*****************
 * Working sets (--dump)
 *****************/

/* Write the working set @set of @mib MiB to @out. */
static int dump(const char *set, unsigned long mib, const char *out)
{
	size_t pages = (size_t)mib * (1 << 20) / PAGE, i, same = 0, src = 0;
	struct memimage img = { 0 };
	uint8_t *buf;
	int fd, ret;

	buf = malloc(pages * PAGE);
	if (!buf)
		return -ENOMEM;
	if (!strcmp(set, "image")) {
		ret = memimage_build((unsigned int)(mib + IMAGE_EXTRA_MIB),
				     &img);
		if (ret) {
			free(buf);
			return ret;
		}
		src = img.nr_pages;
		for (i = 0; i < pages; i++)
			memcpy(buf + i * PAGE,
			       memimage_page(&img, i % img.nr_pages), PAGE);
		memimage_free(&img);
	} else {
		textset_fill(buf, pages);
		src = pages;
	}
	for (i = 0; i < pages; i++)
		same += memimage_page_same_filled(buf + i * PAGE);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		free(buf);
		return ret;
	}
	ret = fullio_write(fd, buf, pages * PAGE);
	if (close(fd) && !ret)
		ret = -errno;
	free(buf);
	if (!ret)
		printf("set name=%s pages=%zu same_pages=%zu source_pages=%zu\n",
		       set, pages, same, src);
	return ret;
}

/*****************
 * Small helpers
 *****************/

#ifndef WORKLOAD_UZSWAP
/* A number from a one-line file (cgroup and sysfs files). */
static int read_u64_file(const char *path, uint64_t *v)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	buf[n] = '\0';
	*v = strtoull(buf, NULL, 10);
	return 0;
}

/* A counter of /proc/vmstat (pswpout, pswpin); 0 if missing. */
static uint64_t vmstat(const char *key)
{
	char line[128];
	size_t klen = strlen(key);
	uint64_t v = 0;
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ' ') {
			v = strtoull(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}
#endif

#ifndef WORKLOAD_UZSWAP
static char cg_dir[512];
static uint64_t cg_base;

/* The cgroup's charge beyond its base: the working set in memory (and
 * whatever else the process charged since). 0 without --cgroup. */
static uint64_t cgroup_resident(void)
{
	char path[600];
	uint64_t usage = 0;

	if (!cg_dir[0])
		return 0;
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg_dir);
	read_u64_file(path, &usage);
	return usage > cg_base ? usage - cg_base : 0;
}
#endif

static uint64_t major_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_majflt;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* The @p quantile of sorted @v (nearest rank); 0 when empty. */
static double percentile(const float *v, size_t n, double p)
{
	double x = p * (double)n;
	size_t rank = (size_t)x;

	if (!n)
		return 0;
	if ((double)rank < x)
		rank++;
	if (rank > n)
		rank = n;
	return v[rank ? rank - 1 : 0];
}

/*****************
 * The run
 *****************/

struct run {
	uint8_t *ws;		/* the working set */
	size_t pages;
	uint64_t *sum;		/* checksum of every page */
	uint32_t *perm;		/* zipf rank -> page */
	float *slow;		/* first-byte µs of the slow touches */
	uint64_t touches;
	double slow_us;
	uint64_t seed;
	struct zipf zipf;
#ifdef WORKLOAD_UZSWAP
	uzswap_t *c;
#endif
};

static void mismatch(const char *when, size_t page)
{
	fprintf(stderr, "workload_%s: MISMATCH: page %zu differs from its "
		"checksum (%s): the data is wrong\n", SIDE, page, when);
	exit(3);
}

/* Read every page in order and verify it (untimed). Return: seconds. */
static double verify_all(struct run *r, const char *when)
{
	double t0 = now();
	size_t i;

	for (i = 0; i < r->pages; i++)
		if (page_sum(r->ws + i * PAGE) != r->sum[i])
			mismatch(when, i);
	return now() - t0;
}

/* Counters around a pattern. */
struct counters {
	uint64_t faults, evictions, read_ahead, majflt, pswpin, pswpout;
	uint64_t resident;	/* bytes of the working set in memory */
};

static void counters_get(struct run *r, struct counters *k)
{
	memset(k, 0, sizeof(*k));
	k->majflt = major_faults();
#ifdef WORKLOAD_UZSWAP
	struct uzswap_stats st;
	struct uzswap_status ds;

	if (!uzswap_stats(r->c, &st)) {
		k->faults = st.faults;
		k->evictions = st.evictions;
		k->resident = st.resident_bytes;
	}
	if (!uzswap_status(r->c, &ds))
		k->read_ahead = ds.read_ahead;
#else
	(void)r;
	k->pswpin = vmstat("pswpin");
	k->pswpout = vmstat("pswpout");
	k->faults = k->pswpin;
	k->evictions = k->pswpout;
	k->resident = cgroup_resident();
#endif
}

/* Bytes of the working set in memory now: the daemon's count of this
 * process, or the cgroup's charge beyond its base. */
static uint64_t resident_now(struct run *r)
{
#ifdef WORKLOAD_UZSWAP
	struct uzswap_stats st;

	return uzswap_stats(r->c, &st) ? 0 : st.resident_bytes;
#else
	(void)r;
	return cgroup_resident();
#endif
}

static void run_pattern(struct run *r, enum pattern p)
{
	uint64_t s = r->seed * 0x100000001b3ull + (uint64_t)p + 1;
	uint64_t t, nslow = 0, acc = 0, nres = 0, res_max = 0;
	double t0, secs, last, sampling = 0, res_sum = 0;
	struct counters k0, k1;
	size_t page = 0;

	counters_get(r, &k0);
	t0 = last = now();
	for (t = 0; t < r->touches; t++) {
		const volatile uint8_t *first;
		uint8_t *pg;
		double a, us;

		if (t0 + sampling + (double)nres * SAMPLE_S <= last) {
			/* the resident bytes, every SAMPLE_S; the time it
			 * takes is not counted */
			double b = now();
			uint64_t res = resident_now(r);

			res_sum += (double)res;
			res_max = res > res_max ? res : res_max;
			nres++;
			sampling += now() - b;
		}

		switch (p) {
		case P_SEQ:
			page = (size_t)(t % r->pages);
			break;
		case P_RANDOM:
		case P_RMW:
			page = (size_t)rnd_below(&s, r->pages);
			break;
		case P_ZIPF:
			page = r->perm[zipf_next(&r->zipf, &s)];
			break;
		default:
			break;
		}
		pg = r->ws + page * PAGE;
		first = pg;
		a = now();
		acc += *first;
		last = now();
		us = (last - a) * 1e6;
		if (us > r->slow_us)
			r->slow[nslow++] = (float)us;
		if (page_sum(pg) != r->sum[page])
			mismatch(pattern_name[p], page);
		if (p == P_RMW) {
			uint64_t *w = (uint64_t *)pg;
			unsigned int i;

			for (i = 0; i < RMW_WORDS; i++) {
				uint64_t v = rnd(&s);

				w[(v >> 9) % WORDS] = w[v % WORDS];
			}
			r->sum[page] = page_sum(pg);
		}
	}
	secs = now() - t0 - sampling;
	counters_get(r, &k1);
	qsort(r->slow, nslow, sizeof(*r->slow), cmp_float);
	printf("pattern name=%s touches=%" PRIu64 " seconds=%.6f "
	       "us_per_page=%.4f slow_touches=%" PRIu64 " slow_p50_us=%.2f "
	       "slow_p99_us=%.2f faults=%" PRIu64 " majflt=%" PRIu64
	       " evictions=%" PRIu64 " read_ahead=%" PRIu64
	       " resident_bytes=%" PRIu64 " resident_mean=%.0f"
	       " resident_max=%" PRIu64 " resident_samples=%" PRIu64
	       " sampling_seconds=%.4f sink=%" PRIu64 "\n",
	       pattern_name[p], r->touches, secs, secs * 1e6 /
	       (double)r->touches, nslow, percentile(r->slow, nslow, 0.50),
	       percentile(r->slow, nslow, 0.99), k1.faults - k0.faults,
	       k1.majflt - k0.majflt, k1.evictions - k0.evictions,
	       k1.read_ahead - k0.read_ahead, k1.resident,
	       nres ? res_sum / (double)nres : 0, res_max, nres, sampling,
	       acc & 1);
	fflush(stdout);
}

/* Fill the working set from @path and record the checksums. */
static int fill(struct run *r, const char *path)
{
	size_t off, len = r->pages * PAGE, i;
	uint8_t *buf;
	int fd, ret = 0;

	buf = malloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	for (off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;

		ret = fullio_pread(fd, buf, n, (off_t)off);
		if (ret)
			goto out_close;
		/* copied from a bounce buffer: a read() straight into a
		 * managed region would be a kernel-mode access to it */
		memcpy(r->ws + off, buf, n);
	}
	for (i = 0; i < r->pages; i++)
		r->sum[i] = page_sum(r->ws + i * PAGE);
out_close:
	close(fd);
out_free:
	free(buf);
	return ret;
}

#ifdef WORKLOAD_UZSWAP

static int side_alloc(struct run *r, const char *sock, const char *cg)
{
	(void)cg;
	r->c = bench_connect(sock);
	if (!r->c) {
		fprintf(stderr, "workload_uzswap: cannot connect to uzswapd "
			"at %s: %s\n", sock ? sock : "(default)",
			uzswap_strerror(errno));
		return -1;
	}
	r->ws = uzswap_alloc(r->c, r->pages * PAGE, "workload");
	if (!r->ws) {
		fprintf(stderr, "workload_uzswap: uzswap_alloc: %s\n",
			uzswap_strerror(errno));
		return -1;
	}
	printf("base cgroup_bytes=0\n");
	return 0;
}

/*
 * Set the budget; poll until the evictor has brought the region within
 * it. Polling is a request the daemon answers and a wakeup of this
 * process, which on 2 CPUs takes time from the evictor: the period grows
 * with the time waited (1 ms, then 1/50 of it), so the wait ends at most
 * 2% late.
 */
static int side_budget(struct run *r, uint64_t budget)
{
	struct uzswap_stats s0, s1;
	double t0, waited;
	int ret;

	if ((ret = uzswap_stats(r->c, &s0)))
		goto err;
	t0 = now();
	if ((ret = uzswap_set_limit(r->c, budget)))
		goto err;
	for (;;) {
		if ((ret = uzswap_stats(r->c, &s1)))
			goto err;
		if (s1.resident_bytes <= budget)
			break;
		waited = now() - t0;
		if (waited > BUDGET_WAIT_S) {
			ret = -ETIMEDOUT;
			goto err;
		}
		usleep(waited * 1e6 / 50 > 1000 ?
		       (useconds_t)(waited * 1e6 / 50) : 1000);
	}
	waited = now() - t0;
	printf("evict seconds=%.6f pages=%" PRIu64 " mb_s=%.1f "
	       "resident_bytes=%" PRIu64 "\n", waited,
	       s1.evictions - s0.evictions,
	       (double)(s1.evictions - s0.evictions) * PAGE / waited / 1e6,
	       s1.resident_bytes);
	return 0;
err:
	fprintf(stderr, "workload_uzswap: applying the budget: %s\n",
		uzswap_strerror(ret));
	return -1;
}

/* The store while the pages are still out. */
static void side_store(struct run *r, const char *zram)
{
	struct uzswap_stats st;
	struct uzswap_status ds;
	int ret;

	(void)zram;
	if ((ret = uzswap_stats(r->c, &st)) || (ret = uzswap_status(r->c, &ds))) {
		fprintf(stderr, "workload_uzswap: status (needs root or the "
			"daemon's user): %s\n", uzswap_strerror(ret));
		return;
	}
	printf("store resident_bytes=%" PRIu64 " stored_pages=%" PRIu64
	       " same_pages=%" PRIu64 " raw_pages=%" PRIu64
	       " written_back_pages=%" PRIu64 " compressed_bytes=%" PRIu64
	       " pool_bytes=%" PRIu64 " faults=%" PRIu64 " evictions=%" PRIu64
	       " loads=%" PRIu64 " read_ahead=%" PRIu64
	       " store_failures=%" PRIu64 "\n",
	       st.resident_bytes, ds.stored_pages, ds.same_pages, ds.raw_pages,
	       ds.written_back_pages, ds.compressed_bytes, ds.pool_bytes,
	       ds.faults, ds.evictions, ds.loads, ds.read_ahead,
	       ds.store_failures);
}

static void side_free(struct run *r)
{
	uzswap_disconnect(r->c);
}

#else /* !WORKLOAD_UZSWAP */

static int side_alloc(struct run *r, const char *sock, const char *cg)
{
	char path[600];
	int ret;

	(void)sock;
	if (cg) {
		snprintf(cg_dir, sizeof(cg_dir), "%s", cg);
		snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg);
		if ((ret = read_u64_file(path, &cg_base))) {
			fprintf(stderr, "workload_mmap: %s: %s\n", path,
				strerror(-ret));
			return -1;
		}
	}
	r->ws = mmap(NULL, r->pages * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->ws == MAP_FAILED) {
		perror("workload_mmap: mmap");
		return -1;
	}
	/* 4 KiB pages, as the managed region has */
	madvise(r->ws, r->pages * PAGE, MADV_NOHUGEPAGE);
	printf("base cgroup_bytes=%" PRIu64 "\n", cg_base);
	return 0;
}

/*
 * Lower the cgroup's limit to base + budget: the kernel reclaims (swaps
 * out to zram) inside the write, and answers EBUSY if it could not get
 * under the limit after its retries; then write again.
 */
static int side_budget(struct run *r, uint64_t budget)
{
	char path[600], val[32];
	uint64_t out0, usage = 0;
	double t0, secs;
	int fd, i, len, err;

	(void)r;
	if (!cg_dir[0]) {
		printf("evict seconds=0 pages=0 mb_s=0 resident_bytes=0\n");
		return 0;
	}
	snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", cg_dir);
	len = snprintf(val, sizeof(val), "%" PRIu64, cg_base + budget);
	out0 = vmstat("pswpout");
	t0 = now();
	for (i = 0;; i++) {
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			err = errno;
			break;
		}
		err = write(fd, val, (size_t)len) == len ? 0 : errno;
		close(fd);
		if (err != EBUSY || i == LIMIT_RETRIES)
			break;
	}
	secs = now() - t0;
	if (err) {
		fprintf(stderr, "workload_mmap: %s: %s\n", path,
			strerror(err));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg_dir);
	read_u64_file(path, &usage);
	printf("evict seconds=%.6f pages=%" PRIu64 " mb_s=%.1f "
	       "resident_bytes=%" PRIu64 " limit_tries=%d\n", secs,
	       vmstat("pswpout") - out0,
	       (double)(vmstat("pswpout") - out0) * PAGE / secs / 1e6,
	       usage, i + 1);
	return 0;
}

/* The store while the pages are still out: the zram device's mm_stat
 * (orig_data_size compr_data_size mem_used_total mem_limit mem_used_max
 * same_pages pages_compacted huge_pages ...). */
static void side_store(struct run *r, const char *zram)
{
	unsigned long long f[8] = { 0 };
	char path[300], usage_path[600];
	uint64_t usage = 0;
	FILE *fp;

	(void)r;
	if (cg_dir[0]) {
		snprintf(usage_path, sizeof(usage_path),
			 "%s/memory.usage_in_bytes", cg_dir);
		read_u64_file(usage_path, &usage);
	}
	if (!zram) {
		printf("store cgroup_bytes=%" PRIu64 "\n", usage);
		return;
	}
	snprintf(path, sizeof(path), "/sys/block/%s/mm_stat", zram);
	fp = fopen(path, "re");
	if (!fp || fscanf(fp, "%llu %llu %llu %llu %llu %llu %llu %llu",
			  &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6],
			  &f[7]) < 6) {
		fprintf(stderr, "workload_mmap: cannot read %s\n", path);
		if (fp)
			fclose(fp);
		return;
	}
	fclose(fp);
	printf("store cgroup_bytes=%" PRIu64 " orig_data_size=%llu "
	       "compr_data_size=%llu mem_used_total=%llu mem_used_max=%llu "
	       "same_pages=%llu huge_pages=%llu swap_in=%" PRIu64
	       " swap_out=%" PRIu64 "\n", usage, f[0], f[1], f[2], f[4], f[5],
	       f[7], vmstat("pswpin"), vmstat("pswpout"));
}

static void side_free(struct run *r)
{
	munmap(r->ws, r->pages * PAGE);
}

#endif /* WORKLOAD_UZSWAP */

static int parse_patterns(const char *list, bool *on)
{
	char *copy = strdup(list), *tok, *save = NULL;
	int n = 0, i;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NR_PATTERNS; i++)
			if (!strcmp(tok, pattern_name[i]))
				break;
		if (i == NR_PATTERNS) {
			fprintf(stderr, "workload_%s: unknown pattern %s\n",
				SIDE, tok);
			free(copy);
			return -1;
		}
		on[i] = true;
		n++;
	}
	free(copy);
	return n ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: workload_%s --dump image|text --size MIB --out FILE\n"
		"       workload_%s --in FILE --budget MIB [--patterns LIST] "
		"[--touches N]\n"
		"                [--seed N] [--slow-us X] [--socket PATH] "
		"[--cgroup DIR] [--zram NAME]\n", SIDE, SIDE);
}

int main(int argc, char **argv)
{
	const char *dump_set = NULL, *out = NULL, *in = NULL, *sock = NULL;
	const char *cg = NULL, *zram = NULL, *patterns = "seq,random,zipf,rmw";
	unsigned long size_mib = 256, budget_mib = 64;
	bool on[NR_PATTERNS] = { false };
	struct run r = { .slow_us = SLOW_US };
	struct stat stb;
	uint64_t s;
	size_t i;
	int k, ret;

	for (k = 1; k < argc; k++) {
		bool more = k + 1 < argc;

		if (!strcmp(argv[k], "--dump") && more)
			dump_set = argv[++k];
		else if (!strcmp(argv[k], "--size") && more)
			size_mib = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--out") && more)
			out = argv[++k];
		else if (!strcmp(argv[k], "--in") && more)
			in = argv[++k];
		else if (!strcmp(argv[k], "--budget") && more)
			budget_mib = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--patterns") && more)
			patterns = argv[++k];
		else if (!strcmp(argv[k], "--touches") && more)
			r.touches = strtoull(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--seed") && more)
			r.seed = strtoull(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--slow-us") && more)
			r.slow_us = strtod(argv[++k], NULL);
		else if (!strcmp(argv[k], "--socket") && more)
			sock = argv[++k];
		else if (!strcmp(argv[k], "--cgroup") && more)
			cg = argv[++k];
		else if (!strcmp(argv[k], "--zram") && more)
			zram = argv[++k];
		else {
			usage();
			return 2;
		}
	}

	if (dump_set) {
		if (!out || size_mib < 1 || size_mib > (1ul << 20) ||
		    (strcmp(dump_set, "image") && strcmp(dump_set, "text"))) {
			usage();
			return 2;
		}
		ret = dump(dump_set, size_mib, out);
		if (ret) {
			fprintf(stderr, "workload_%s: --dump %s: %s\n", SIDE,
				dump_set, strerror(-ret));
			return 1;
		}
		return 0;
	}

	if (!in || budget_mib < 1 || parse_patterns(patterns, on)) {
		usage();
		return 2;
	}
	if (stat(in, &stb) || stb.st_size < (off_t)PAGE) {
		fprintf(stderr, "workload_%s: %s: no working set there\n",
			SIDE, in);
		return 1;
	}
	r.pages = (size_t)stb.st_size / PAGE;
	if (!r.touches)
		r.touches = 2 * (uint64_t)r.pages;

	/* 1. bookkeeping, touched now (it counts in the cgroup's base) */
	r.sum = malloc(r.pages * sizeof(*r.sum));
	r.perm = malloc(r.pages * sizeof(*r.perm));
	r.slow = malloc(r.touches * sizeof(*r.slow));
	if (!r.sum || !r.perm || !r.slow) {
		fprintf(stderr, "workload_%s: out of memory\n", SIDE);
		return 1;
	}
	memset(r.sum, 0x5a, r.pages * sizeof(*r.sum));
	memset(r.slow, 0x5a, r.touches * sizeof(*r.slow));
	s = 0x2f1bull;		/* the same hot set in every run */
	for (i = 0; i < r.pages; i++)
		r.perm[i] = (uint32_t)i;
	for (i = r.pages - 1; i > 0; i--) {
		size_t j = (size_t)rnd_below(&s, i + 1);
		uint32_t t = r.perm[i];

		r.perm[i] = r.perm[j];
		r.perm[j] = t;
	}
	zipf_init(&r.zipf, r.pages, ZIPF_THETA);

	/* 2. the working set */
	if (side_alloc(&r, sock, cg))
		return 1;
	{
		double t0 = now();

		if ((ret = fill(&r, in))) {
			fprintf(stderr, "workload_%s: %s: %s\n", SIDE, in,
				strerror(-ret));
			return 1;
		}
		printf("fill pages=%zu seconds=%.3f\n", r.pages, now() - t0);
		fflush(stdout);
	}

	/* 3. the budget */
	if (side_budget(&r, (uint64_t)budget_mib << 20))
		return 1;
	fflush(stdout);

	/* 4. the warm-up, then the patterns */
	{
		double w = verify_all(&r, "warm-up");

		printf("warmup seconds=%.3f resident_bytes=%" PRIu64 "\n", w,
		       resident_now(&r));
	}
	fflush(stdout);

	for (k = 0; k < NR_PATTERNS; k++)
		if (on[k])
			run_pattern(&r, (enum pattern)k);

	/* 5, 6: the store first, while the last pattern's pages are out
	 * (the final pass reads in order and would bring many back) */
	side_store(&r, zram);
	printf("verify seconds=%.3f\n", verify_all(&r, "final pass"));
	fflush(stdout);
	side_free(&r);
	free(r.sum);
	free(r.perm);
	free(r.slow);
	return 0;
}
