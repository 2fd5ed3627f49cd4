/*
 * wb_bench.c - benchmark of the write-back tier (issue 16): how fast the
 * pool writes back to each backend, and what a fault on a written-back
 * page costs, for several daemons alike but for their backend (the
 * local file, an NBD export over a unix socket, one over loopback TCP, a
 * file on tmpfs as the ceiling: run-wb-bench's), measured in the same
 * run (not a test: it asserts nothing and its numbers vary with the
 * machine).
 *
 * The daemons are named on the command line, --daemon NAME=DIR each, the
 * first the baseline of the ratios: the daemon's socket is DIR/s, its
 * configuration file DIR/uzswapd.conf, which this program rewrites
 * (and has the daemon reload) to change the pool limit; it keeps the
 * limit the daemon started with (small: the pool writes back nearly all
 * it takes) but while the drain's pool fills. run-wb-bench starts them.
 * The working set is --region-mib MiB (default 256) of the text set
 * (textset.h: lz4 makes about 2.4x of it; no page same-filled or equal to
 * another), generated once into private memory. Each run (of --reps,
 * default 5) measures every daemon in turn, the order rotated from run to
 * run (so that none always comes first), each thus:
 * 1. write-back while evicting ("stream"): a managed region
 *    (uzswap_alloc()) under a budget of --budget-mib MiB
 *    (uzswap_set_limit(), default 16) is filled with the text set, a
 *    memcpy() a page at a time: past the budget the daemon evicts,
 *    compresses into the pool, and the pool (past its high mark) writes
 *    back, all at once. A thread samples the daemon's STATUS every
 *    POLL_MS on an admin connection of its own until the write-back has
 *    settled (nothing written back, evicted or allocated in the backend
 *    for QUIET_MS after the fill ended). The rate: the bytes written to
 *    the backend (STATUS backing_write_bytes: the objects in 512-byte
 *    units, frames included) over the time from the last sample before
 *    the write-back began to the first that saw it done; beside it the
 *    same pages' 4 KiB size over that time (memory moved out per second),
 *    and the backend's own figures over that window: the mean time of a
 *    write request (backing_write_ns / backing_writes_timed, daemon side)
 *    and the bytes a request wrote;
 * 2. read-back fault latency, on that region: the budget is lifted
 *    (nothing is evicted while pages come back). Then --touches distinct
 *    pages (default 4000), drawn at random from the first half of the
 *    region (written back first: the budget holds the last pages written,
 *    the pool the few MiB evicted last), are read, one first-byte read
 *    each timed client side (CLOCK_MONOTONIC): the fault, the backend's
 *    read, the decompression and the UFFDIO_COPY, end to end. Each page
 *    is compared with the text set after its read (not timed). p50 and
 *    p99 (nearest rank) of the run's touches; the mean time of a backend
 *    read request over the touches (backing_read_ns /
 *    backing_reads_timed, daemon side: the part of a fault spent in the
 *    backend); the share of touches the backend served (the drop of
 *    STATUS written_back_pages over the touches: a page loaded from the
 *    backend leaves it; pages read ahead, if any, counted in, and
 *    reported apart);
 * 3. the whole region is read in order and compared with the text set
 *    (most pages from the backend, with read-ahead), timed: MB/s of 4 KiB
 *    pages. Then the region is freed and the backend's space left to be
 *    given back (STATUS steady);
 * 4. write-back alone ("drain"): the pool limit is raised past the
 *    region's size (a reload), a second region filled the same way under
 *    the budget (the pool takes every page evicted: nothing is written
 *    back), and once that settled the pool limit is set back (a reload):
 *    the writer thread alone writes the pool back down to its low mark,
 *    a batch at a time, with no eviction or compression beside it. Its
 *    rate as in 1. Then that region too is read in order, compared, and
 *    freed.
 * A page that differs from what was written is lost data: the benchmark
 * stops with an error (exit 1). Each figure is the median of its runs;
 * ratios are each daemon's median over the baseline's.
 *
 * Usage: wb_bench --daemon NAME=DIR [--daemon NAME=DIR ...]
 *                 [--region-mib N] [--budget-mib N] [--touches N]
 *                 [--reps N] [--json]
 * STATUS and RELOAD are admin requests: run it as root or as the
 * daemons' user (run-wb-bench's daemons are the caller's). The backend's
 * counters come with protocol 7: older daemons are refused.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connect.h"
#include "pagesum.h"
#include "reps.h"
#include "textset.h"
#include "uzswap.h"

#define PAGE		4096ul
#define MIB		1048576.0
#define MAX_DAEMONS	8
#define POLL_MS		5	/* STATUS sampling period */
#define QUIET_MS	500	/* no change this long: settled */
#define SETTLE_MAX_S	300	/* the longest wait for it */
#define MAX_SAMPLES	(SETTLE_MAX_S * 1000 / POLL_MS + 2)
#define TOUCH_SEED	0x77b0ull

/* A daemon under test: NAME=DIR from the command line. */
struct daemon {
	const char *name;
	char sock[PATH_MAX];
	char conf[PATH_MAX];	/* its configuration file, ours to rewrite */
	uzswap_t *c;		/* the regions' connection */
	uzswap_t *admin;	/* STATUS and RELOAD, from the main thread */
	uint64_t pool_limit;	/* as it started */
};

/* A write-back, from STATUS samples (watch_writeback()). */
struct wb {
	double bytes;		/* written to the backend */
	double pages;		/* pages it wrote back */
	double seconds;		/* its window (see the header) */
	double mb_s;		/* bytes / seconds */
	double page_mb_s;	/* pages of 4 KiB / seconds */
	double write_us;	/* a backend write request, mean */
	double write_kib;	/* KiB a request wrote, mean */
	double failures;	/* objects the backend did not take */
};

/* One run's figures for one daemon. Doubles only: medians, minima and
 * maxima are taken field by field (reps.h). */
struct rep {
	struct wb stream, drain;
	double p50_us, p99_us, max_us;
	double read_us;		/* a backend read request, mean */
	double from_backend;	/* share of touches served by the backend */
	double read_ahead;	/* pages read ahead during the touches */
	double seq_mb_s;	/* the stream's region read back in order */
};

_Static_assert(sizeof(struct rep) % sizeof(double) == 0,
	       "struct rep is made of doubles");

/* What a run works with: the text set and the options. */
struct bench {
	const uint8_t *text;	/* the text set, @pages pages */
	size_t pages;
	size_t budget;		/* bytes */
	size_t touches;
	uint32_t *order;	/* candidate pages, shuffled per run */
	size_t candidates;
	double *lat;		/* @touches latencies, µs */
	struct sample *buf;	/* MAX_SAMPLES, for the watches */
};

static double ratio(double x, double base)
{
	return base > 0 ? x / base : 0;
}

/*****************
 * Settling: STATUS sampled until nothing moves
 *****************/

struct sample {
	double t;
	uint64_t writebacks, evictions, backing_bytes, failures;
	uint64_t write_bytes, write_ns, writes;	/* the backend's */
};

/*
 * struct watch - STATUS samples of one daemon, taken by watch_run() in a
 * thread of its own (during a fill) or in the caller's
 * @admin:   the connection; the sampling thread's
 * @s, @n:   the samples, the first (the base) taken by watch_begin();
 *           then the sampling thread's until it is joined
 * @fill_done: set by the filler when its last page is written; atomic
 * @ret:     0, or -errno of the STATUS that failed; -ETIMEDOUT if nothing
 *           settled in SETTLE_MAX_S
 */
struct watch {
	uzswap_t *admin;
	struct sample *s;
	size_t n;
	atomic_bool fill_done;
	int ret;
};

static bool sample_moved(const struct sample *a, const struct sample *b)
{
	return a->writebacks != b->writebacks ||
	       a->evictions != b->evictions ||
	       a->backing_bytes != b->backing_bytes ||
	       a->write_bytes != b->write_bytes;
}

static int sample_take(uzswap_t *admin, struct sample *s)
{
	struct uzswap_status st;
	int ret = uzswap_status(admin, &st);

	if (ret)
		return ret;
	s->t = reps_now();
	s->writebacks = st.writebacks;
	s->evictions = st.evictions;
	s->backing_bytes = st.backing_bytes;
	s->failures = st.writeback_failures;
	s->write_bytes = st.backing_write_bytes;
	s->write_ns = st.backing_write_ns;
	s->writes = st.backing_writes_timed;
	return 0;
}

/* Start watching @admin into @buf: the base sample. */
static int watch_begin(struct watch *w, uzswap_t *admin, struct sample *buf,
		       bool fill_done)
{
	w->admin = admin;
	w->s = buf;
	w->n = 1;
	w->ret = 0;
	atomic_store(&w->fill_done, fill_done);
	return sample_take(w->admin, &w->s[0]);
}

/* After the base, sample every POLL_MS until the fill is done and nothing
 * moved for QUIET_MS. */
static void *watch_run(void *arg)
{
	struct watch *w = arg;
	size_t last_move = 0;

	for (;;) {
		struct sample *s = &w->s[w->n];

		if (w->n == MAX_SAMPLES) {
			w->ret = -ETIMEDOUT;
			break;
		}
		usleep(POLL_MS * 1000);
		if ((w->ret = sample_take(w->admin, s)))
			break;
		if (sample_moved(&w->s[w->n - 1], s))
			last_move = w->n;
		w->n++;
		if (atomic_load(&w->fill_done) &&
		    s->t - w->s[last_move].t >= QUIET_MS / 1e3)
			break;
	}
	return NULL;
}

/* The write-back in @w's samples: from the last sample before it began to
 * the first that saw its final count. */
static void watch_writeback(const struct watch *w, struct wb *r)
{
	const struct sample *s = w->s, *end = &s[w->n - 1];
	size_t a = 0, b = w->n - 1;

	while (a + 1 < w->n && s[a + 1].writebacks == s[0].writebacks)
		a++;
	while (b > a && s[b - 1].writebacks == end->writebacks)
		b--;
	double writes = (double)(s[b].writes - s[a].writes);

	r->bytes = (double)(s[b].write_bytes - s[a].write_bytes);
	r->pages = (double)(s[b].writebacks - s[a].writebacks);
	r->seconds = s[b].t - s[a].t;
	r->mb_s = ratio(r->bytes / 1e6, r->seconds);
	r->page_mb_s = reps_mb_s(r->pages, r->seconds);
	r->write_us = ratio((double)(s[b].write_ns - s[a].write_ns) / 1e3,
			    writes);
	r->write_kib = ratio(r->bytes / 1024, writes);
	r->failures = (double)(end->failures - s[0].failures);
}

/* Wait, in this thread, until nothing moves on @d for QUIET_MS. */
static int settle(struct bench *b, struct daemon *d)
{
	struct watch w;
	int ret;

	if ((ret = watch_begin(&w, d->admin, b->buf, true)))
		return ret;
	watch_run(&w);
	return w.ret;
}

/*****************
 * The daemon's pool limit
 *****************/

/* Rewrite @d's configuration file with pool limit @bytes and have the
 * daemon reload it. Return: 0 or -errno (what the daemon said about a
 * refused file on stderr). */
static int pool_limit_set(struct daemon *d, uint64_t bytes)
{
	char why[256] = "";
	FILE *f = fopen(d->conf, "we");
	int ret;

	if (!f)
		return -errno;
	fprintf(f, "# wb_bench's: the pool limit it sets\n[store]\n"
		"pool-limit = %llu\n", (unsigned long long)bytes);
	if (fclose(f))
		return -errno;
	ret = uzswap_reload(d->admin, why, sizeof(why));
	if (ret && why[0])
		fprintf(stderr, "wb_bench: %s refused %s: %s\n", d->name,
			d->conf, why);
	return ret;
}

/*****************
 * One daemon's turn
 *****************/

/* The text set into @region, a page at a time. */
static void fill(const struct bench *b, char *region)
{
	size_t i;

	for (i = 0; i < b->pages; i++)
		memcpy(region + i * PAGE, b->text + i * PAGE, PAGE);
}

/* Phase 1: fill @region under the budget while a thread watches. */
static int stream_run(struct bench *b, struct daemon *d, char *region,
		      struct rep *r)
{
	struct watch w;
	uzswap_t *admin;
	pthread_t th;
	int ret;

	admin = uzswap_admin_connect(d->sock);
	if (!admin)
		return -errno;
	if ((ret = watch_begin(&w, admin, b->buf, false)) ||
	    (ret = -pthread_create(&th, NULL, watch_run, &w)))
		goto out;
	fill(b, region);
	atomic_store(&w.fill_done, true);
	pthread_join(th, NULL);
	if (!(ret = w.ret))
		watch_writeback(&w, &r->stream);
out:
	uzswap_disconnect(admin);
	return ret;
}

static int check_page(const char *region, const uint8_t *text, size_t i)
{
	return memcmp(region + i * PAGE, text + i * PAGE, PAGE) ? -EIO : 0;
}

/* Shuffle the first @b->touches of @b->order (a partial Fisher-Yates). */
static void draw_pages(struct bench *b, uint64_t seed)
{
	size_t i, j;
	uint32_t x;

	for (i = 0; i < b->candidates; i++)
		b->order[i] = (uint32_t)i;
	for (i = 0; i < b->touches; i++) {
		j = i + (size_t)rnd_below(&seed, b->candidates - i);
		x = b->order[i];
		b->order[i] = b->order[j];
		b->order[j] = x;
	}
}

/* Phase 2: the timed touches of pages drawn from the first half. */
static int touch_run(struct bench *b, struct daemon *d, char *region,
		     struct rep *r)
{
	struct uzswap_status a, z;
	size_t k, i;
	int ret;

	if ((ret = uzswap_status(d->admin, &a)))
		return ret;
	for (k = 0; k < b->touches; k++) {
		const volatile char *first;
		double t0, t1;

		i = b->order[k];
		first = region + i * PAGE;
		t0 = reps_now();
		(void)*first;
		t1 = reps_now();
		b->lat[k] = (t1 - t0) * 1e6;
		if ((ret = check_page(region, b->text, i)))
			return ret;
	}
	if ((ret = uzswap_status(d->admin, &z)))
		return ret;
	qsort(b->lat, b->touches, sizeof(*b->lat), reps_cmp_double);
	r->p50_us = reps_percentile(b->lat, b->touches, 0.50);
	r->p99_us = reps_percentile(b->lat, b->touches, 0.99);
	r->max_us = b->lat[b->touches - 1];
	r->read_ahead = (double)(z.read_ahead - a.read_ahead);
	r->read_us = ratio((double)(z.backing_read_ns - a.backing_read_ns) /
			   1e3, (double)(z.backing_reads_timed -
					 a.backing_reads_timed));
	r->from_backend = ((double)a.written_back_pages -
			   (double)z.written_back_pages) / (double)b->touches;
	return 0;
}

/* Phase 3 (and the drain's end): every page read in order and compared;
 * the MB/s into *@mb_s. */
static int verify_run(struct bench *b, char *region, double *mb_s)
{
	double t0 = reps_now();
	size_t i;
	int ret;

	for (i = 0; i < b->pages; i++)
		if ((ret = check_page(region, b->text, i)))
			return ret;
	*mb_s = reps_mb_s((double)b->pages, reps_now() - t0);
	return 0;
}

/* Phase 4's write-back: with the pool's pages in place, set its limit
 * back and watch the writer drain it. */
static int drain_run(struct bench *b, struct daemon *d, struct rep *r)
{
	struct watch w;
	int ret;

	if ((ret = watch_begin(&w, d->admin, b->buf, true)) ||
	    (ret = pool_limit_set(d, d->pool_limit)))
		return ret;
	watch_run(&w);
	if (!w.ret)
		watch_writeback(&w, &r->drain);
	return w.ret;
}

/* A new region of the text set's size, @name, under the budget; NULL
 * with errno and bench_step set if it cannot be had. */
static char *region_open(const struct bench *b, struct daemon *d,
			 const char *name)
{
	char *region;
	int ret;

	bench_step = "uzswap_alloc";
	region = uzswap_alloc(d->c, b->pages * PAGE, name);
	if (!region)
		return NULL;
	bench_step = "uzswap_set_limit";
	if ((ret = uzswap_set_limit(d->c, b->budget))) {
		uzswap_free(d->c, region);
		errno = -ret;
		return NULL;
	}
	return region;
}

/* Phases 1 to 3 on a new region. */
static int stream_turn(struct bench *b, struct daemon *d, struct rep *r)
{
	char *region = region_open(b, d, "wb_bench stream");
	int ret;

	if (!region)
		return -errno;
	STEP("STATUS (stream)", stream_run(b, d, region, r));
	STEP("uzswap_set_limit", uzswap_set_limit(d->c, 0));
	STEP("data of a page touched", touch_run(b, d, region, r));
	STEP("data of the stream's region",
	     verify_run(b, region, &r->seq_mb_s));
out:
	uzswap_free(d->c, region);
	return ret;
}

/* Phase 4 on a new region. */
static int drain_turn(struct bench *b, struct daemon *d, struct rep *r)
{
	char *region;
	double mb_s;
	int ret;

	bench_step = "RELOAD (pool limit raised)";
	if ((ret = pool_limit_set(d, b->pages * PAGE + (64u << 20))))
		return ret;
	region = region_open(b, d, "wb_bench drain");
	if (!region)
		return -errno;
	fill(b, region);
	STEP("STATUS (pool filled)", settle(b, d));
	STEP("STATUS or RELOAD (drain)", drain_run(b, d, r));
	STEP("uzswap_set_limit", uzswap_set_limit(d->c, 0));
	STEP("data of the drain's region", verify_run(b, region, &mb_s));
out:
	uzswap_free(d->c, region);
	return ret;
}

/* One daemon's turn of one run; the backend left to give its space back
 * after each region. */
static int daemon_run(struct bench *b, struct daemon *d, struct rep *r)
{
	int ret;

	if ((ret = stream_turn(b, d, r)))
		return ret;
	STEP("STATUS (after a free)", settle(b, d));
	if ((ret = drain_turn(b, d, r)))
		return ret;
	STEP("STATUS (after a free)", settle(b, d));
out:
	return ret;
}

/*****************
 * Report
 *****************/

struct report {
	struct daemon *dm;
	unsigned int nr;
	unsigned long region_mib, budget_mib, reps;
	size_t touches;
	struct rep med[MAX_DAEMONS], lo[MAX_DAEMONS], hi[MAX_DAEMONS];
};

static void print_json_wb(const char *key, const struct wb *m,
			  const struct wb *lo, const struct wb *hi,
			  const struct wb *base)
{
	printf("\"%s\":{\"bytes\":%.0f,\"pages\":%.0f,\"seconds\":%.3f,"
	       "\"mb_s\":%.1f,\"mb_s_min\":%.1f,\"mb_s_max\":%.1f,"
	       "\"page_mb_s\":%.1f,\"write_us\":%.1f,\"write_kib\":%.1f,"
	       "\"failures\":%.0f,\"ratio_mb_s\":%.3f}",
	       key, m->bytes, m->pages, m->seconds, m->mb_s, lo->mb_s,
	       hi->mb_s, m->page_mb_s, m->write_us, m->write_kib,
	       m->failures, ratio(m->mb_s, base->mb_s));
}

static void print_json(const struct report *p)
{
	const struct rep *base = &p->med[0];
	unsigned int i;

	printf("{\"region_mib\":%lu,\"budget_mib\":%lu,\"touches\":%zu,"
	       "\"reps\":%lu,\"baseline\":\"%s\",\"backends\":{",
	       p->region_mib, p->budget_mib, p->touches, p->reps,
	       p->dm[0].name);
	for (i = 0; i < p->nr; i++) {
		const struct rep *m = &p->med[i], *lo = &p->lo[i];
		const struct rep *hi = &p->hi[i];

		printf("%s\"%s\":{\"pool_limit\":%llu,", i ? "," : "",
		       p->dm[i].name,
		       (unsigned long long)p->dm[i].pool_limit);
		print_json_wb("stream", &m->stream, &lo->stream, &hi->stream,
			      &base->stream);
		printf(",");
		print_json_wb("drain", &m->drain, &lo->drain, &hi->drain,
			      &base->drain);
		printf(",\"read\":{\"p50_us\":%.1f,\"p50_us_min\":%.1f,"
		       "\"p50_us_max\":%.1f,\"p99_us\":%.1f,"
		       "\"p99_us_min\":%.1f,\"p99_us_max\":%.1f,"
		       "\"max_us\":%.1f,\"backend_read_us\":%.1f,"
		       "\"from_backend\":%.4f,\"read_ahead\":%.0f,"
		       "\"seq_mb_s\":%.1f,\"ratio_p50\":%.3f,"
		       "\"ratio_p99\":%.3f,\"ratio_seq\":%.3f}}", m->p50_us,
		       lo->p50_us, hi->p50_us, m->p99_us, lo->p99_us,
		       hi->p99_us, m->max_us, m->read_us, m->from_backend,
		       m->read_ahead, m->seq_mb_s,
		       ratio(m->p50_us, base->p50_us),
		       ratio(m->p99_us, base->p99_us),
		       ratio(m->seq_mb_s, base->seq_mb_s));
	}
	printf("}}\n");
}

static void print_table(const struct report *p)
{
	const struct rep *base = &p->med[0];
	unsigned int i;

	printf("write-back tier: a %lu MiB region of text pages under a "
	       "%lu MiB budget, pool limit\n%.1f MiB; median of %lu runs, the "
	       "backends taking turns in each; x: against\n%s, same runs\n\n",
	       p->region_mib, p->budget_mib, (double)p->dm[0].pool_limit / MIB,
	       p->reps, p->dm[0].name);
	printf("%-10s %5s | %6s %5s %6s %5s | %6s %5s %6s %5s %5s | %4s\n",
	       "write-back", "MiB", "stream", "x", "pg", "wr us", "drain",
	       "x", "pg", "wr us", "KiB", "fail");
	for (i = 0; i < p->nr; i++) {
		const struct wb *s = &p->med[i].stream, *d = &p->med[i].drain;

		printf("%-10s %5.1f | %6.1f %5.2f %6.0f %5.0f | %6.1f %5.2f "
		       "%6.0f %5.0f %5.0f | %4.0f\n", p->dm[i].name,
		       s->bytes / MIB, s->mb_s,
		       ratio(s->mb_s, base->stream.mb_s), s->page_mb_s,
		       s->write_us, d->mb_s, ratio(d->mb_s, base->drain.mb_s),
		       d->page_mb_s, d->write_us, d->write_kib,
		       s->failures + d->failures);
	}
	printf("(MiB: what the stream's write-back wrote to the backend, "
	       "objects in 512-byte\n units, frames included; stream, drain: "
	       "MB/s of those bytes, stream: while\n evicting under the "
	       "budget, drain: the writer alone, the pool shrunk by a\n "
	       "reload; pg: MB/s of the same pages' 4 KiB; wr us: a backend "
	       "write request,\n mean, daemon side; KiB: what a drain's "
	       "request wrote, mean)\n\n");

	printf("%-10s %6s %6s %5s %5s %6s | %5s %6s | %8s %5s\n",
	       "read-back", "p50 us", "p99 us", "x p50", "x p99", "max us",
	       "rd us", "served", "seq MB/s", "x");
	for (i = 0; i < p->nr; i++) {
		const struct rep *m = &p->med[i];

		printf("%-10s %6.1f %6.1f %5.2f %5.2f %6.0f | %5.1f %6.3f | "
		       "%8.1f %5.2f\n", p->dm[i].name, m->p50_us, m->p99_us,
		       ratio(m->p50_us, base->p50_us),
		       ratio(m->p99_us, base->p99_us), m->max_us, m->read_us,
		       m->from_backend, m->seq_mb_s,
		       ratio(m->seq_mb_s, base->seq_mb_s));
	}
	printf("(%zu random touches of written-back pages, one first-byte "
	       "read each, timed\n client side; max: the median of the runs' "
	       "largest; rd us: a backend read\n request, mean, daemon side; "
	       "served: the share of touches the backend served;\n seq: the "
	       "whole region read back in order, verified, 4 KiB pages)\n",
	       p->touches);

	printf("\nover the runs (min..max):\n");
	for (i = 0; i < p->nr; i++)
		printf("  %-10s stream %.1f..%.1f MB/s, drain %.1f..%.1f MB/s, "
		       "p50 %.1f..%.1f us,\n  %-10s p99 %.1f..%.1f us\n",
		       p->dm[i].name, p->lo[i].stream.mb_s,
		       p->hi[i].stream.mb_s, p->lo[i].drain.mb_s,
		       p->hi[i].drain.mb_s, p->lo[i].p50_us, p->hi[i].p50_us,
		       "", p->lo[i].p99_us, p->hi[i].p99_us);
}

/*****************
 * Main
 *****************/

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s --daemon NAME=DIR [--daemon NAME=DIR "
		"...]\n       [--region-mib N] [--budget-mib N] [--touches N] "
		"[--reps N] [--json]\n", prog);
}

/* NAME=DIR into @d. Return: 0, or -EINVAL if it is not that. */
static int parse_daemon(char *arg, struct daemon *d)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg || !eq[1])
		return -EINVAL;
	*eq = '\0';
	d->name = arg;
	if ((size_t)snprintf(d->sock, sizeof(d->sock), "%s/s", eq + 1) >=
	    sizeof(d->sock) ||
	    (size_t)snprintf(d->conf, sizeof(d->conf), "%s/uzswapd.conf",
			     eq + 1) >= sizeof(d->conf))
		return -EINVAL;
	return 0;
}

/* Connect to each daemon (a client and an admin connection) and check
 * that it has a backend and a pool limit. */
static int daemons_connect(struct daemon *dm, unsigned int nr)
{
	struct uzswap_status st;
	unsigned int i;
	int ret;

	for (i = 0; i < nr; i++) {
		dm[i].c = bench_connect(dm[i].sock);
		if (dm[i].c)
			dm[i].admin = uzswap_admin_connect(dm[i].sock);
		if (!dm[i].c || !dm[i].admin) {
			fprintf(stderr, "wb_bench: cannot connect to uzswapd "
				"%s at %s: %s\n", dm[i].name, dm[i].sock,
				uzswap_strerror(errno));
			return -1;
		}
		if ((ret = uzswap_status(dm[i].admin, &st))) {
			fprintf(stderr, "wb_bench: STATUS of %s (needs root "
				"or the daemon's user): %s\n", dm[i].name,
				uzswap_strerror(ret));
			return -1;
		}
		if (st.backing_backend == UZSWAP_BACKING_NONE ||
		    !st.pool_limit) {
			fprintf(stderr, "wb_bench: uzswapd %s has no %s; "
				"start it with --backing-file and a pool-limit "
				"in %s (a daemon of protocol 7 or later)\n",
				dm[i].name, st.pool_limit ? "backing tier" :
				"pool limit", dm[i].conf);
			return -1;
		}
		dm[i].pool_limit = st.pool_limit;
	}
	return 0;
}

static void daemons_disconnect(struct daemon *dm, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		uzswap_disconnect(dm[i].c);
		uzswap_disconnect(dm[i].admin);
	}
}

int main(int argc, char **argv)
{
	static struct rep runs[MAX_DAEMONS][REPS_MAX];
	unsigned long region_mib = 256, budget_mib = 16, touches = 4000;
	unsigned long reps = 5;
	struct daemon dm[MAX_DAEMONS] = { { 0 } };
	struct report p = { 0 };
	struct bench b = { 0 };
	uint8_t *text = NULL;
	unsigned int nr = 0, i, k, j;
	bool json = false;
	int ret, status = 1;

	for (k = 1; k < (unsigned int)argc; k++) {
		bool more = k + 1 < (unsigned int)argc;

		if (!strcmp(argv[k], "--daemon") && more) {
			if (nr == MAX_DAEMONS ||
			    parse_daemon(argv[++k], &dm[nr++])) {
				fprintf(stderr, "wb_bench: --daemon takes "
					"NAME=DIR, up to %d times\n",
					MAX_DAEMONS);
				return 2;
			}
		} else if (!strcmp(argv[k], "--region-mib") && more)
			region_mib = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--budget-mib") && more)
			budget_mib = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--touches") && more)
			touches = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--reps") && more)
			reps = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--json"))
			json = true;
		else {
			usage(argv[0]);
			return 2;
		}
	}
	if (!nr) {
		usage(argv[0]);
		return 2;
	}
	if (budget_mib < 1 || region_mib < 8 * budget_mib ||
	    region_mib > 16384 || touches < 100 || reps < 1 ||
	    reps > REPS_MAX) {
		fprintf(stderr, "wb_bench: --budget-mib takes 1 or more, "
			"--region-mib 8 times the budget to 16384,\n"
			"--touches 100 or more, --reps 1 to %d\n", REPS_MAX);
		return 2;
	}
	b.pages = region_mib * (size_t)MIB / PAGE;
	b.budget = budget_mib * (size_t)MIB;
	b.touches = touches;
	b.candidates = b.pages / 2;
	if (b.touches > b.candidates) {
		fprintf(stderr, "wb_bench: --touches takes at most %zu (half "
			"the region's pages)\n", b.candidates);
		return 2;
	}

	if (daemons_connect(dm, nr))
		goto out;
	text = malloc(b.pages * PAGE);
	b.order = calloc(b.candidates, sizeof(*b.order));
	b.lat = calloc(b.touches, sizeof(*b.lat));
	b.buf = calloc(MAX_SAMPLES, sizeof(*b.buf));
	if (!text || !b.order || !b.lat || !b.buf) {
		fprintf(stderr, "wb_bench: out of memory\n");
		goto out;
	}
	textset_fill(text, b.pages);
	b.text = text;

	for (k = 0; k < reps; k++) {
		draw_pages(&b, TOUCH_SEED + k);
		for (j = 0; j < nr; j++) {
			i = (k + j) % nr;	/* rotated: none always first */
			ret = daemon_run(&b, &dm[i], &runs[i][k]);
			if (ret) {
				fprintf(stderr, "wb_bench: run %u, %s, %s: "
					"%s\n", k + 1, dm[i].name, bench_step,
					ret == -EIO ? "a page differs from "
					"what was written (lost data)" :
					uzswap_strerror(ret));
				goto out;
			}
		}
	}

	p.dm = dm;
	p.nr = nr;
	p.region_mib = region_mib;
	p.budget_mib = budget_mib;
	p.reps = reps;
	p.touches = touches;
	for (i = 0; i < nr; i++)
		reps_summarize(runs[i], sizeof(struct rep),
			       (unsigned int)reps, &p.med[i], &p.lo[i],
			       &p.hi[i]);
	if (json)
		print_json(&p);
	else
		print_table(&p);
	status = 0;
out:
	daemons_disconnect(dm, nr);
	free(b.buf);
	free(b.lat);
	free(b.order);
	free(text);
	return status;
}
