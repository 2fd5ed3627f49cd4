/*
 * pool_bench.c - benchmark of the compressed pool's use of memory (issue
 * 13): deduplication of equal pages across clients, what it costs the
 * eviction, what it saves on ordinary data, and compaction of a pool
 * whose frees left holes (not a test: it asserts nothing and its numbers
 * vary with the machine).
 *
 * It drives two daemons at once, alike but for deduplication:
 * --socket/--daemon-pid with dedup on (the subject) and
 * --base-socket/--base-daemon-pid with --dedup off (the baseline of the
 * ratios, measured in the same runs); run-pool-bench starts both. The
 * working set is the pages of a real process (tests/memimage.h: a perl
 * interpreter's heap, built at run time; --image-mib, default 64). Prints
 * one table, medians of --reps runs (default 3); each run measures, in
 * turn:
 * 1. identical clients, on each daemon: --clients N (default 4) forked
 *    processes, each with a connection of its own (uzswap_connect()) and
 *    a managed region (uzswap_alloc(), no budget) holding the image,
 *    evict it whole with uzswap_advise(COLD), one after the other. The
 *    pool's bytes after each (STATUS pool_bytes, over what it held before
 *    the first), the growth each client after the first caused as a
 *    fraction of the first client's bytes, and the pages its COLD stored
 *    by sharing (dedup_merged). Then each client in turn reads its
 *    region back, compares it with the image, frees it, disconnects and
 *    exits (the others still hold theirs: the objects they share stay);
 * 2. the cost of dedup, from those COLDs: the daemon's CPU time (every
 *    thread's, /proc/PID/task/TID/schedstat) across each client's COLD,
 *    divided by the pages it evicted (STATUS evictions), and the COLD's
 *    throughput (MB/s of pages evicted, 1 MB = 10^6 bytes; timed in the
 *    client, the requests' round trips included). The first client's
 *    pages are new to the pool (hash, lookup, compression), the second's
 *    equal to stored ones (hash, lookup, decompression, compare: nothing
 *    compressed). The baseline is the first client on the dedup-off
 *    daemon;
 * 3. saving on ordinary data, on each daemon: this process stores the
 *    image alone (no twin), then the text set (textset.h) of as many
 *    pages, each in a region of its own evicted by one COLD: the pages
 *    stored, the same-filled ones, the pages sharing (dedup_pages_sharing:
 *    each object's pages past its first) and their share of the pages
 *    stored, the bytes saved (dedup_bytes_saved), and the pool bytes with
 *    dedup on against off. Each region is read back and compared;
 * 4. compaction, on the dedup-on daemon: this process stores the image
 *    (COLD), then rewrites two of every three pages (3i + 1 and 3i + 2),
 *    each byte xor'ed with a constant of the page (1 + page % 255: a
 *    repeat stays a repeat at any distance, so the page compresses as
 *    well as it did, and it equals no stored page). A write to a stored
 *    page frees its object at once, leaving holes in the pool's pages;
 *    the pages are written from the last down (a fault that continues no
 *    ascending stream reads nothing ahead, so exactly the rewritten
 *    pages' objects go). uzswap_compact() runs then, while the holes are
 *    there: a COLD first would store the rewritten pages into them (the
 *    pool takes new objects where there is room). Then the region is
 *    evicted again (COLD). Pool bytes over payload bytes (STATUS
 *    pool_bytes / compressed_bytes; the daemon holds nothing else then)
 *    after the first COLD, after the rewrite, after uzswap_compact() and
 *    after the second COLD; the time uzswap_compact() took (a round trip
 *    included), the pool pages it compacted, and what it freed (its freed
 *    bytes, in 4 KiB pool pages per second and in MB/s). Then the region
 *    is read back and compared.
 * After every read-back the data is compared with what was written: a
 * wrong page ends the benchmark with an error (that is a bug, not a
 * number). Clients free their regions and disconnect; children are
 * reaped.
 *
 * Targets (the issue): the second identical client grows the pool by at
 * most 15% of the first's, dedup on; eviction (the first client's COLD)
 * with dedup on at least 90% of the MB/s with it off; pool / payload at
 * most 1.15 after uzswap_compact().
 *
 * Usage: pool_bench --socket PATH --daemon-pid PID --base-socket PATH
 *                   --base-daemon-pid PID [--image-mib N] [--clients N]
 *                   [--reps N] [--json]
 * STATUS and COMPACT are admin requests: run it as root or as the
 * daemons' user (run-pool-bench's daemons are the caller's).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/common/fullio.h"
#include "tests/memimage.h"
#include "connect.h"
#include "reps.h"
#include "textset.h"
#include "uzswap.h"

#define PAGE		4096ul
#define MIB		1048576.0
#define MAX_CLIENTS	16
#define REWRITE_EVERY	3	/* compaction: all but page 3i rewritten */
#define TWIN_GOAL	0.15	/* second twin's growth, at most */
#define EVICT_GOAL	0.90	/* COLD MB/s dedup on / off, at least */
#define COMPACT_GOAL	1.15	/* pool / payload after compaction, at most */

enum side { ON, OFF, NR_SIDES };

static const char *const side_name[NR_SIDES] = { "on", "off" };

enum set { SET_IMAGE, SET_TEXT, NR_SETS };

static const char *const set_name[NR_SETS] = { "image alone", "text set" };
static const char *const set_key[NR_SETS] = { "image", "text" };

/* The eviction rows: which daemon, which client (0: the first). */
enum erow { ON_FIRST, ON_SECOND, OFF_FIRST, OFF_SECOND, NR_EROWS };

static const struct erow_def {
	const char *name, *key;
	enum side side;
	unsigned int client;
} erow_def[NR_EROWS] = {
	{ "dedup on, 1st client (new pages)", "on_first", ON, 0 },
	{ "dedup on, 2nd client (equal pages)", "on_second", ON, 1 },
	{ "dedup off, 1st client (baseline)", "off_first", OFF, 0 },
	{ "dedup off, 2nd client", "off_second", OFF, 1 },
};

struct daemon {
	const char *sock;
	pid_t pid;
	uzswap_t *c;		/* this process's connection */
};

/* One run's figures, struct rep and its parts. Doubles only: medians,
 * minima and maxima are taken field by field (reps.h). */
struct twins_rep {
	double pool[MAX_CLIENTS];	/* pool bytes after client k's COLD,
					 * over the bytes before the first */
	double growth[MAX_CLIENTS];	/* what client k added / pool[0] */
	double merged[MAX_CLIENTS];	/* pages its COLD stored by sharing */
	double evicted[MAX_CLIENTS];	/* pages its COLD evicted */
	double mb_s[MAX_CLIENTS];	/* its COLD's throughput */
	double cpu_us[MAX_CLIENTS];	/* daemon CPU per page evicted */
};

struct set_rep {
	double stored, same, sharing, saved, payload, pool;
};

/* The compaction's moments: pool and payload bytes at each. */
enum stage { FRESH, HOLES, COMPACTED, REFILLED, NR_STAGES };

static const char *const stage_name[NR_STAGES] = {
	"image stored (COLD)",
	"2 in 3 rewritten: holes",
	"after uzswap_compact()",
	"rewritten pages stored (COLD)",
};

static const char *const stage_key[NR_STAGES] = {
	"stored", "holes", "compacted", "refilled",
};

struct compact_rep {
	double pool[NR_STAGES], payload[NR_STAGES], ratio[NR_STAGES];
	double still_stored;		/* the region's pages stored at HOLES */
	double read_ahead;		/* pages the rewrite's faults read */
	double seconds;			/* uzswap_compact()'s */
	double pages;			/* pool pages it compacted */
	double freed;			/* pool bytes it freed */
};

struct rep {
	struct twins_rep twins[NR_SIDES];
	struct set_rep set[NR_SIDES][NR_SETS];
	struct compact_rep compact;
};

_Static_assert(sizeof(struct rep) % sizeof(double) == 0,
	       "struct rep is made of doubles");


static double ratio(double x, double base)
{
	return base > 0 ? x / base : 0;
}

static int check_data(const char *region, const uint8_t *want, size_t len)
{
	return memcmp(region, want, len) ? -EIO : 0;
}

/*****************
 * 1, 2: identical clients, each a child process
 *****************/

/* Commands to a twin; each gets one struct twin_answer. */
#define TWIN_COLD	'c'	/* evict the region */
#define TWIN_CHECK	'v'	/* compare, free, disconnect, exit */

/* A forked client and the pipes to it. */
struct twin {
	pid_t pid;		/* 0: not running (never started, reaped) */
	int cmd;		/* commands to it (write end) */
	int ans;		/* its answers (read end) */
};

struct twin_answer {
	int ret;		/* 0 or -errno; -EIO: the data differ */
	double seconds;		/* the COLD's, in the client */
};

/*
 * The twin's side: connect to @sock, fill a region with @img, answer
 * (ready); then COLD the region at each TWIN_COLD and answer. At
 * TWIN_CHECK, compare the region with the image, free it, disconnect,
 * answer and exit; if the parent's end closes, the same without the
 * compare (the parent gave up: the daemon may be stopping, and a read
 * of a stored page would wait for its successor). Says what failed on
 * stderr itself. Never returns.
 */
static void __attribute__((noreturn))
twin_main(const char *sock, const struct memimage *img, int cmd, int ans)
{
	size_t len = img->nr_pages * PAGE;
	struct twin_answer a = { 0 };
	char *region = NULL, op = 0;
	uzswap_t *c;
	double t0;

	bench_step = "uzswap_connect";
	c = bench_connect(sock);
	if (c) {
		bench_step = "uzswap_alloc";
		region = uzswap_alloc(c, len, "pool_bench twin");
	}
	if (!region) {
		a.ret = -errno;
		goto out;
	}
	memcpy(region, img->pages, len);
	while (!fullio_write(ans, &a, sizeof(a)) &&
	       !fullio_read(cmd, &op, 1) && op == TWIN_COLD) {
		bench_step = "COLD";
		t0 = reps_now();
		a.ret = bench_advise(c, region, len, UZSWAP_ADVISE_COLD);
		a.seconds = reps_now() - t0;
		if (a.ret)
			goto out;
	}
	if (op == TWIN_CHECK) {
		bench_step = "data after the identical clients";
		a.ret = check_data(region, img->pages, len);
	}
out:
	if (region)
		uzswap_free(c, region);
	uzswap_disconnect(c);
	if (a.ret)
		fprintf(stderr, "pool_bench: client %d: %s: %s\n",
			(int)getpid(), bench_step, bench_step_error(a.ret));
	fullio_write(ans, &a, sizeof(a));
	_exit(a.ret ? 1 : 0);
}

static void twin_close(struct twin *t)
{
	close(t->cmd);
	close(t->ans);
}

/* Fork twin @k of @t (twins 0..k-1 running) on daemon @sock. Return: 0
 * or -errno. */
static int twin_start(const char *sock, const struct memimage *img,
		      struct twin *t, unsigned int k)
{
	pid_t parent = getpid();
	int cmd[2], ans[2], ret;
	unsigned int j;

	if (pipe(cmd))
		return -errno;
	if (pipe(ans)) {
		ret = -errno;
		goto out_close_cmd;
	}
	fflush(NULL);
	t[k].pid = fork();
	if (t[k].pid < 0) {
		ret = -errno;
		t[k].pid = 0;
		goto out_close_ans;
	}
	if (t[k].pid == 0) {
		/* killed with this process, whatever ends it */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		for (j = 0; j < k; j++)
			twin_close(&t[j]);
		close(cmd[1]);
		close(ans[0]);
		twin_main(sock, img, cmd[0], ans[1]);
	}
	close(cmd[0]);
	close(ans[1]);
	t[k].cmd = cmd[1];
	t[k].ans = ans[0];
	return 0;

out_close_ans:
	close(ans[0]);
	close(ans[1]);
out_close_cmd:
	close(cmd[0]);
	close(cmd[1]);
	return ret;
}

/* Send @op to @t (none if 0) and wait for its answer. Return: 0, the
 * twin's -errno, or the pipe's (-EIO: the twin is gone). */
static int twin_ask(struct twin *t, char op, struct twin_answer *a)
{
	int ret;

	if (op && (ret = fullio_write(t->cmd, &op, 1)))
		return ret;
	if ((ret = fullio_read(t->ans, a, sizeof(*a))))
		return ret;
	return a->ret;
}

/* Close the pipes to @t and wait for it to exit. Return: 0 if it exited
 * with status 0, else -ECHILD. */
static int twin_reap(struct twin *t)
{
	int st;

	twin_close(t);
	if (waitpid(t->pid, &st, 0) < 0)
		st = -1;
	t->pid = 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

/* After a failure: kill the @n twins still running and reap them. */
static void twins_kill(struct twin *t, unsigned int n)
{
	unsigned int k;

	for (k = 0; k < n; k++) {
		if (!t[k].pid)
			continue;
		kill(t[k].pid, SIGKILL);
		twin_reap(&t[k]);
	}
}

/* Twin @k's COLD on daemon @d, its figures into @r: pool bytes over
 * @pool0, the daemon's CPU and the pages around it. */
static int twin_cold(const struct daemon *d, struct twin *t, unsigned int k,
		     double pool0, struct twins_rep *r)
{
	struct uzswap_status a, b;
	struct twin_answer ans;
	double ns0, ns1, pages;
	int ret;

	STEP("STATUS", bench_daemon_status(d->sock, &a));
	STEP("daemon CPU time", bench_daemon_cpu_ns(d->pid, &ns0));
	STEP("a client's COLD (its message above)",
	     twin_ask(&t[k], TWIN_COLD, &ans));
	STEP("daemon CPU time", bench_daemon_cpu_ns(d->pid, &ns1));
	STEP("STATUS", bench_daemon_status(d->sock, &b));
	pages = (double)(b.evictions - a.evictions);
	r->evicted[k] = pages;
	r->mb_s[k] = reps_mb_s(pages, ans.seconds);
	r->cpu_us[k] = pages ? (ns1 - ns0) / 1e3 / pages : 0;
	r->merged[k] = (double)(b.dedup_merged - a.dedup_merged);
	r->pool[k] = (double)b.pool_bytes - pool0;
out:
	return ret;
}

/* Parts 1 and 2 on daemon @d: @n twins holding @img, evicted one after
 * the other, then each checked and ended in turn. */
static int twins_run(const struct daemon *d, const struct memimage *img,
		     unsigned int n, struct twins_rep *r)
{
	struct twin t[MAX_CLIENTS] = { { 0 } };
	struct uzswap_status base;
	struct twin_answer ans;
	unsigned int k;
	int ret;

	STEP("STATUS", bench_daemon_status(d->sock, &base));
	for (k = 0; k < n; k++)
		STEP("fork", twin_start(d->sock, img, t, k));
	for (k = 0; k < n; k++)
		STEP("a client's setup", twin_ask(&t[k], 0, &ans));
	for (k = 0; k < n; k++)
		if ((ret = twin_cold(d, t, k, (double)base.pool_bytes, r)))
			goto out;
	for (k = 1; k < n; k++)
		r->growth[k] = ratio(r->pool[k] - r->pool[k - 1], r->pool[0]);
	for (k = 0; k < n; k++) {
		STEP("a client's read-back (its message above)",
		     twin_ask(&t[k], TWIN_CHECK, &ans));
		STEP("a client's exit", twin_reap(&t[k]));
	}
out:
	twins_kill(t, n);
	return ret;
}

/*****************
 * 3, 4: one client, this process
 *****************/

/* Part 3 on daemon @d: @len bytes of @set in a region, evicted by one
 * COLD, read back. */
static int set_run(const struct daemon *d, const uint8_t *set, size_t len,
		   struct set_rep *r)
{
	struct uzswap_status a, b;
	char *region;
	int ret;

	bench_step = "uzswap_alloc";
	region = uzswap_alloc(d->c, len, "pool_bench set");
	if (!region)
		return -errno;
	memcpy(region, set, len);
	STEP("STATUS", bench_daemon_status(d->sock, &a));
	STEP("COLD", bench_advise(d->c, region, len, UZSWAP_ADVISE_COLD));
	STEP("STATUS", bench_daemon_status(d->sock, &b));
	r->stored = (double)(b.stored_pages - a.stored_pages);
	r->same = (double)(b.same_pages - a.same_pages);
	r->sharing = (double)b.dedup_pages_sharing -
		     (double)a.dedup_pages_sharing;
	r->saved = (double)b.dedup_bytes_saved - (double)a.dedup_bytes_saved;
	r->payload = (double)b.compressed_bytes - (double)a.compressed_bytes;
	r->pool = (double)b.pool_bytes - (double)a.pool_bytes;
	STEP("data after the ordinary sets", check_data(region, set, len));
out:
	uzswap_free(d->c, region);
	return ret;
}

/* The compaction's rewrite of @img into @want: pages 3i + 1 and 3i + 2
 * with each byte xor'ed with 1 + page % 255, pages 3i as they are. */
static void rewrite_image(const struct memimage *img, uint8_t *want)
{
	size_t i, j;

	memcpy(want, img->pages, img->nr_pages * PAGE);
	for (i = 0; i < img->nr_pages; i++) {
		uint64_t *w = (uint64_t *)(want + i * PAGE);
		uint64_t x = 0x0101010101010101ull * (1 + i % 255);

		if (i % REWRITE_EVERY == 0)
			continue;
		for (j = 0; j < PAGE / sizeof(*w); j++)
			w[j] ^= x;
	}
}

/* The daemon's pool and payload bytes at @stage of the compaction. */
static int stage_status(const struct daemon *d, enum stage stage,
			struct compact_rep *r, struct uzswap_status *st)
{
	int ret = bench_daemon_status(d->sock, st);

	if (ret)
		return ret;
	r->pool[stage] = (double)st->pool_bytes;
	r->payload[stage] = (double)st->compressed_bytes;
	r->ratio[stage] = ratio(r->pool[stage], r->payload[stage]);
	return 0;
}

/* Write @want's pages 3i + 1 and 3i + 2 into @region, from the last
 * down: no fault continues an ascending stream, none reads ahead. */
static void rewrite_region(char *region, const uint8_t *want,
			   size_t nr_pages)
{
	size_t i;

	for (i = nr_pages; i-- > 0;)
		if (i % REWRITE_EVERY)
			memcpy(region + i * PAGE, want + i * PAGE, PAGE);
}

/* Part 4 on daemon @d: @img stored, rewritten as @want says (pages 3i
 * untouched), uzswap_compact() timed, evicted again, read back. */
static int compact_run(const struct daemon *d, const struct memimage *img,
		       const uint8_t *want, struct compact_rep *r)
{
	size_t len = img->nr_pages * PAGE;
	struct uzswap_status a, b;
	struct uzswap_stats own;
	uint64_t pages, freed;
	char *region;
	double t0;
	int ret;

	bench_step = "uzswap_alloc";
	region = uzswap_alloc(d->c, len, "pool_bench compact");
	if (!region)
		return -errno;
	memcpy(region, img->pages, len);
	STEP("COLD", bench_advise(d->c, region, len, UZSWAP_ADVISE_COLD));
	STEP("STATUS", stage_status(d, FRESH, r, &a));
	rewrite_region(region, want, img->nr_pages);
	STEP("STATUS", stage_status(d, HOLES, r, &b));
	STEP("uzswap_stats", uzswap_stats(d->c, &own));
	r->read_ahead = (double)(b.read_ahead - a.read_ahead);
	r->still_stored = (double)own.stored_pages;
	t0 = reps_now();
	STEP("uzswap_compact", uzswap_compact(d->c, &pages, &freed));
	r->seconds = reps_now() - t0;
	r->pages = (double)pages;
	r->freed = (double)freed;
	STEP("STATUS", stage_status(d, COMPACTED, r, &a));
	STEP("COLD", bench_advise(d->c, region, len, UZSWAP_ADVISE_COLD));
	STEP("STATUS", stage_status(d, REFILLED, r, &a));
	STEP("data after the compaction", check_data(region, want, len));
out:
	uzswap_free(d->c, region);
	return ret;
}

/* One run: every part, on both daemons where it has a baseline. */
static int rep_run(struct daemon *dm, const struct memimage *img,
		   unsigned int clients, const uint8_t *text,
		   const uint8_t *want, struct rep *r)
{
	size_t len = img->nr_pages * PAGE;
	enum side s;
	int ret;

	for (s = 0; s < NR_SIDES; s++) {
		if ((ret = twins_run(&dm[s], img, clients, &r->twins[s])) ||
		    (ret = set_run(&dm[s], img->pages, len,
				   &r->set[s][SET_IMAGE])) ||
		    (ret = set_run(&dm[s], text, len, &r->set[s][SET_TEXT])))
			return ret;
	}
	return compact_run(&dm[ON], img, want, &r->compact);
}

/*****************
 * Report
 *****************/

struct report {
	const struct memimage *img;
	size_t same_filled;		/* pages of the image */
	unsigned int clients;
	unsigned long reps;
	struct rep med, lo, hi;
};

static const struct twins_rep *erow_twins(const struct rep *m,
					  enum erow e)
{
	return &m->twins[erow_def[e].side];
}

static double erow_mb_s(const struct rep *m, enum erow e)
{
	return erow_twins(m, e)->mb_s[erow_def[e].client];
}

static double erow_cpu(const struct rep *m, enum erow e)
{
	return erow_twins(m, e)->cpu_us[erow_def[e].client];
}

static double freed_pages_s(const struct compact_rep *c)
{
	return ratio(c->freed / (double)PAGE, c->seconds);
}

static double freed_mb_s(const struct compact_rep *c)
{
	return ratio(c->freed / 1e6, c->seconds);
}

static const char *met(bool ok)
{
	return ok ? "met" : "MISSED";
}

/* "@key":[@v[0],...] with @digits decimals. */
static void print_json_list(const char *key, const double *v,
			    unsigned int n, int digits)
{
	unsigned int k;

	printf("\"%s\":[", key);
	for (k = 0; k < n; k++)
		printf("%s%.*f", k ? "," : "", digits, v[k]);
	printf("]");
}

static void print_json(const struct report *p)
{
	const struct rep *m = &p->med;
	const struct compact_rep *c = &m->compact;
	unsigned int i;

	printf("{\"image_pages\":%zu,\"same_filled_pages\":%zu,"
	       "\"clients\":%u,\"reps\":%lu,\"identical_clients\":{",
	       p->img->nr_pages, p->same_filled, p->clients, p->reps);
	for (i = 0; i < NR_SIDES; i++) {
		const struct twins_rep *t = &m->twins[i];

		printf("%s\"dedup_%s\":{", i ? "," : "", side_name[i]);
		print_json_list("pool_bytes", t->pool, p->clients, 0);
		printf(",");
		print_json_list("growth", t->growth, p->clients, 4);
		printf(",");
		print_json_list("merged_pages", t->merged, p->clients, 0);
		printf("}");
	}
	printf("},\"evict\":{");
	for (i = 0; i < NR_EROWS; i++) {
		const struct twins_rep *t = erow_twins(m, i);
		unsigned int k = erow_def[i].client;

		printf("%s\"%s\":{\"pages\":%.0f,\"mb_s\":%.1f,"
		       "\"cpu_us_per_page\":%.3f,\"cpu_min\":%.3f,"
		       "\"cpu_max\":%.3f,\"ratio_mb_s\":%.3f,"
		       "\"ratio_cpu\":%.3f}", i ? "," : "", erow_def[i].key,
		       t->evicted[k], t->mb_s[k], t->cpu_us[k],
		       erow_twins(&p->lo, i)->cpu_us[k],
		       erow_twins(&p->hi, i)->cpu_us[k],
		       ratio(t->mb_s[k], erow_mb_s(m, OFF_FIRST)),
		       ratio(t->cpu_us[k], erow_cpu(m, OFF_FIRST)));
	}
	printf("},\"ordinary\":{");
	for (i = 0; i < NR_SETS; i++) {
		const struct set_rep *on = &m->set[ON][i];
		const struct set_rep *off = &m->set[OFF][i];

		printf("%s\"%s\":{\"stored_pages\":%.0f,\"same_pages\":%.0f,"
		       "\"sharing_pages\":%.0f,\"share\":%.4f,"
		       "\"bytes_saved\":%.0f,\"payload_bytes_on\":%.0f,"
		       "\"payload_bytes_off\":%.0f,\"pool_bytes_on\":%.0f,"
		       "\"pool_bytes_off\":%.0f,\"ratio_pool\":%.4f}",
		       i ? "," : "", set_key[i], on->stored, on->same,
		       on->sharing, ratio(on->sharing, on->stored), on->saved,
		       on->payload, off->payload, on->pool, off->pool,
		       ratio(on->pool, off->pool));
	}
	printf("},\"compact\":{");
	for (i = 0; i < NR_STAGES; i++)
		printf("\"%s\":{\"pool_bytes\":%.0f,\"payload_bytes\":%.0f,"
		       "\"ratio\":%.4f,\"ratio_min\":%.4f,"
		       "\"ratio_max\":%.4f},", stage_key[i], c->pool[i],
		       c->payload[i], c->ratio[i], p->lo.compact.ratio[i],
		       p->hi.compact.ratio[i]);
	printf("\"pages_still_stored\":%.0f,\"read_ahead_pages\":%.0f,"
	       "\"seconds\":%.6f,\"pages_compacted\":%.0f,"
	       "\"bytes_freed\":%.0f,\"pages_freed_per_s\":%.0f,"
	       "\"mb_s_freed\":%.1f}", c->still_stored, c->read_ahead,
	       c->seconds, c->pages, c->freed, freed_pages_s(c),
	       freed_mb_s(c));
	printf(",\"targets\":{\"twin_growth\":{\"on\":%.4f,\"off\":%.4f,"
	       "\"need\":%.2f,\"met\":%s},\"evict\":{\"ratio\":%.3f,"
	       "\"need\":%.2f,\"met\":%s},\"compact\":{\"ratio\":%.4f,"
	       "\"need\":%.2f,\"met\":%s}}}\n",
	       m->twins[ON].growth[1], m->twins[OFF].growth[1], TWIN_GOAL,
	       m->twins[ON].growth[1] <= TWIN_GOAL ? "true" : "false",
	       ratio(erow_mb_s(m, ON_FIRST), erow_mb_s(m, OFF_FIRST)),
	       EVICT_GOAL,
	       ratio(erow_mb_s(m, ON_FIRST), erow_mb_s(m, OFF_FIRST)) >=
	       EVICT_GOAL ? "true" : "false", c->ratio[COMPACTED],
	       COMPACT_GOAL,
	       c->ratio[COMPACTED] <= COMPACT_GOAL ? "true" : "false");
}

/* Client @k's growth, "-" for the first (the reference). */
static void print_growth(const double *growth, unsigned int k)
{
	if (k)
		printf("%8.3f", growth[k]);
	else
		printf("%8s", "-");
}

static void print_twins(const struct report *p)
{
	const struct twins_rep *on = &p->med.twins[ON];
	const struct twins_rep *off = &p->med.twins[OFF];
	unsigned int k;

	printf("\n%-22s %28s   %19s\n", "identical clients,",
	       "-------- dedup on --------", "--- dedup off -----");
	printf("%-22s %10s %8s %8s   %10s %8s\n", "COLD one after another",
	       "pool MiB", "growth", "merged", "pool MiB", "growth");
	for (k = 0; k < p->clients; k++) {
		printf("%-22u %10.2f ", k + 1, on->pool[k] / MIB);
		print_growth(on->growth, k);
		printf(" %8.0f   %10.2f ", on->merged[k], off->pool[k] / MIB);
		print_growth(off->growth, k);
		printf("\n");
	}
	printf("(pool: over the pool before the first client; growth: what "
	       "the client added\n over what the first added; merged: pages "
	       "its COLD stored by sharing)\n");
}

static void print_evict(const struct report *p)
{
	const struct rep *m = &p->med;
	unsigned int i;

	printf("\n%-40s %7s %8s %8s %7s %7s\n",
	       "eviction by COLD (daemon, all threads)", "pages", "MB/s",
	       "us/page", "x MB/s", "x CPU");
	for (i = 0; i < NR_EROWS; i++)
		printf("%-40s %7.0f %8.1f %8.3f %7.3f %7.3f\n",
		       erow_def[i].name,
		       erow_twins(m, i)->evicted[erow_def[i].client],
		       erow_mb_s(m, i), erow_cpu(m, i),
		       ratio(erow_mb_s(m, i), erow_mb_s(m, OFF_FIRST)),
		       ratio(erow_cpu(m, i), erow_cpu(m, OFF_FIRST)));
	printf("(x: against dedup off, 1st client; min..max us/page over the "
	       "runs:");
	for (i = 0; i < NR_EROWS; i++)
		printf(" %s %.3f..%.3f", erow_def[i].key,
		       erow_cpu(&p->lo, i), erow_cpu(&p->hi, i));
	printf(")\n");
}

static void print_sets(const struct report *p)
{
	unsigned int i;

	printf("\n%-14s %7s %6s %7s %6s %9s %8s %8s %6s\n",
	       "ordinary data", "stored", "same", "sharing", "share",
	       "saved MiB", "pool on", "pool off", "on/off");
	for (i = 0; i < NR_SETS; i++) {
		const struct set_rep *on = &p->med.set[ON][i];
		const struct set_rep *off = &p->med.set[OFF][i];

		printf("%-14s %7.0f %6.0f %7.0f %6.4f %9.2f %8.2f %8.2f "
		       "%6.3f\n", set_name[i], on->stored, on->same,
		       on->sharing, ratio(on->sharing, on->stored),
		       on->saved / MIB, on->pool / MIB, off->pool / MIB,
		       ratio(on->pool, off->pool));
	}
	printf("(one client, dedup on; sharing: pages stored by naming an "
	       "object another page\n named first; pool on, off: MiB the "
	       "pool grew by, dedup on and off)\n");
}

static void print_compact(const struct report *p)
{
	const struct compact_rep *c = &p->med.compact;
	unsigned int i;

	printf("\n%-32s %9s %12s %13s\n", "compaction (dedup on)",
	       "pool MiB", "payload MiB", "pool/payload");
	for (i = 0; i < NR_STAGES; i++)
		printf("%-32s %9.2f %12.2f %13.3f\n", stage_name[i],
		       c->pool[i] / MIB, c->payload[i] / MIB, c->ratio[i]);
	printf("(the whole pool; at the holes, %.0f of the region's %zu "
	       "pages stored, %.0f read ahead)\n", c->still_stored,
	       p->img->nr_pages, c->read_ahead);
	printf("uzswap_compact(): %.3f ms, %.0f pool pages compacted, %.2f "
	       "MiB freed\n  (%.0f pool pages): %.0f pages/s, %.1f MB/s\n",
	       c->seconds * 1e3, c->pages, c->freed / MIB,
	       c->freed / (double)PAGE, freed_pages_s(c), freed_mb_s(c));
}

static void print_table(const struct report *p)
{
	const struct rep *m = &p->med, *lo = &p->lo, *hi = &p->hi;
	double evict = ratio(erow_mb_s(m, ON_FIRST), erow_mb_s(m, OFF_FIRST));

	printf("pool and deduplication on a real memory image: %zu pages "
	       "(%.1f MiB) of a perl\nprocess, %zu same-filled; %u identical "
	       "clients; median of %lu runs; baseline:\na daemon with dedup "
	       "off, measured in the same runs\n", p->img->nr_pages,
	       (double)p->img->nr_pages * PAGE / MIB, p->same_filled,
	       p->clients, p->reps);
	print_twins(p);
	print_evict(p);
	print_sets(p);
	print_compact(p);

	printf("\nover the runs (min..max): 2nd client's growth %.3f..%.3f "
	       "(off %.3f..%.3f),\n  1st client's COLD on %.1f..%.1f MB/s, "
	       "off %.1f..%.1f MB/s,\n  pool/payload after uzswap_compact() "
	       "%.3f..%.3f\n",
	       lo->twins[ON].growth[1], hi->twins[ON].growth[1],
	       lo->twins[OFF].growth[1], hi->twins[OFF].growth[1],
	       erow_mb_s(lo, ON_FIRST), erow_mb_s(hi, ON_FIRST),
	       erow_mb_s(lo, OFF_FIRST), erow_mb_s(hi, OFF_FIRST),
	       lo->compact.ratio[COMPACTED], hi->compact.ratio[COMPACTED]);

	printf("\ntargets: the 2nd identical client grows the pool <= %.0f%% "
	       "of the 1st's (dedup on):\n  %.1f%%: %s (dedup off: %.1f%%)\n",
	       TWIN_GOAL * 100, m->twins[ON].growth[1] * 100,
	       met(m->twins[ON].growth[1] <= TWIN_GOAL),
	       m->twins[OFF].growth[1] * 100);
	printf("  eviction (1st client's COLD) with dedup on >= %.0f%% of "
	       "off:\n  %.1f vs %.1f MB/s = %.3f: %s\n", EVICT_GOAL * 100,
	       erow_mb_s(m, ON_FIRST), erow_mb_s(m, OFF_FIRST), evict,
	       met(evict >= EVICT_GOAL));
	printf("  pool / payload after uzswap_compact() <= %.2f: %.3f "
	       "(%.3f before): %s\n", COMPACT_GOAL,
	       m->compact.ratio[COMPACTED], m->compact.ratio[HOLES],
	       met(m->compact.ratio[COMPACTED] <= COMPACT_GOAL));
}

/*****************
 * Main
 *****************/

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s --socket PATH --daemon-pid PID "
		"--base-socket PATH --base-daemon-pid PID\n"
		"       [--image-mib N] [--clients N] [--reps N] [--json]\n",
		prog);
}

/* Connect to both daemons and check that each is as named: dedup on,
 * then off. */
static int daemons_connect(struct daemon *dm)
{
	struct uzswap_status st;
	enum side s;
	int ret;

	for (s = 0; s < NR_SIDES; s++) {
		dm[s].c = bench_connect(dm[s].sock);
		if (!dm[s].c) {
			fprintf(stderr, "pool_bench: cannot connect to uzswapd "
				"at %s: %s\n", dm[s].sock,
				uzswap_strerror(errno));
			return -1;
		}
		if ((ret = bench_daemon_status(dm[s].sock, &st))) {
			fprintf(stderr, "pool_bench: STATUS of %s (needs root "
				"or the daemon's user): %s\n", dm[s].sock,
				strerror(-ret));
			return -1;
		}
		if (st.dedup != (s == ON)) {
			fprintf(stderr, "pool_bench: the daemon at %s has "
				"dedup %s; it should be %s\n", dm[s].sock,
				st.dedup ? "on" : "off", side_name[s]);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct rep runs[REPS_MAX];
	unsigned long mib = 64, clients = 4, reps = 3;
	struct daemon dm[NR_SIDES] = { { 0 } };
	struct report p = { 0 };
	struct memimage img = { 0 };
	uint8_t *text = NULL, *want = NULL;
	bool json = false;
	unsigned int k;
	size_t i;
	int ret, status = 1;

	for (k = 1; k < (unsigned int)argc; k++) {
		bool more = k + 1 < (unsigned int)argc;

		if (!strcmp(argv[k], "--socket") && more)
			dm[ON].sock = argv[++k];
		else if (!strcmp(argv[k], "--daemon-pid") && more)
			dm[ON].pid = (pid_t)strtol(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--base-socket") && more)
			dm[OFF].sock = argv[++k];
		else if (!strcmp(argv[k], "--base-daemon-pid") && more)
			dm[OFF].pid = (pid_t)strtol(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--image-mib") && more)
			mib = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--clients") && more)
			clients = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--reps") && more)
			reps = strtoul(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--json"))
			json = true;
		else {
			usage(argv[0]);
			return 2;
		}
	}
	if (!dm[ON].sock || !dm[OFF].sock || dm[ON].pid <= 0 ||
	    dm[OFF].pid <= 0) {
		usage(argv[0]);
		return 2;
	}
	if (mib < 8 || mib > 4096 || clients < 2 || clients > MAX_CLIENTS ||
	    reps < 1 || reps > REPS_MAX) {
		fprintf(stderr, "pool_bench: --image-mib takes 8 to 4096, "
			"--clients 2 to %d, --reps 1 to %d\n", MAX_CLIENTS,
			REPS_MAX);
		return 2;
	}
	/* a twin that died makes a write to its pipe fail, not kill us */
	signal(SIGPIPE, SIG_IGN);

	if (daemons_connect(dm))
		goto out;
	if (memimage_build((unsigned int)mib, &img)) {
		fprintf(stderr, "pool_bench: no memory image\n");
		goto out;
	}
	for (i = 0; i < img.nr_pages; i++)
		p.same_filled += memimage_page_same_filled(memimage_page(&img,
									 i));
	text = malloc(img.nr_pages * PAGE);
	want = malloc(img.nr_pages * PAGE);
	if (!text || !want) {
		fprintf(stderr, "pool_bench: out of memory\n");
		goto out;
	}
	textset_fill(text, img.nr_pages);
	rewrite_image(&img, want);

	for (k = 0; k < reps; k++) {
		ret = rep_run(dm, &img, (unsigned int)clients, text, want,
			      &runs[k]);
		if (ret) {
			fprintf(stderr, "pool_bench: run %u, %s: %s\n", k + 1,
				bench_step, bench_step_error(ret));
			goto out;
		}
	}

	p.img = &img;
	p.clients = (unsigned int)clients;
	p.reps = reps;
	reps_summarize(runs, sizeof(*runs), (unsigned int)reps, &p.med,
		       &p.lo, &p.hi);
	if (json)
		print_json(&p);
	else
		print_table(&p);
	status = 0;
out:
	uzswap_disconnect(dm[ON].c);
	uzswap_disconnect(dm[OFF].c);
	free(text);
	free(want);
	memimage_free(&img);
	return status;
}
