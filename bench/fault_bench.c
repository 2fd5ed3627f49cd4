/*
 * fault_bench.c - benchmark of the fault path: what a touch of a managed
 * page costs when uzswapd serves it (not a test: it asserts nothing and its
 * numbers vary with the machine).
 *
 * Prints one table, per page and per fault, medians of --reps runs:
 * - bare uffd round trip (uffd_rt.c, shared with store_bench), the
 *   physical limit and the baseline of every ratio: in this process, a
 *   memfd mapped MAP_SHARED and registered MISSING on its own
 *   userfaultfd; a handler thread that sleeps in poll() and resolves each
 *   fault with a one-page UFFDIO_COPY from a zero page; the main thread
 *   touches pages 16 apart, one fault each;
 * - the same with a busy-polling handler thread (it spins on read()), for
 *   the DESIGN figures (23 µs busy, 35 µs sleeping);
 * - the same with the sleeping handler in a forked child process instead
 *   of a thread (the uffd is inherited, the ioctls reach this process's
 *   memory like the daemon's do): the limit for a daemon, which always
 *   runs in another process (a switch of address space per wakeup);
 * - that child copying the aligned 16-page block of each fault in one
 *   UFFDIO_COPY while every page is touched in order: the limit for the
 *   daemon's first touch;
 * - first touch through the daemon: uzswap_alloc() a region of --pages
 *   pages and touch every page in order; the daemon zero-fills each
 *   aligned block of 16 NEW pages with one UFFDIO_COPY, so a fault brings
 *   16 pages (faults are counted by the daemon: uzswap_stats());
 * - refault through the daemon: on the region just touched, drop every
 *   other page from the shmem with madvise(MADV_REMOVE) (the API forbids
 *   madvise on a region; the benchmark does it on purpose: it is how a
 *   client punches its own pages, and the daemon's memfd punch cannot be
 *   reached from the API), then touch them: the daemon finds RESIDENT
 *   pages missing and answers each fault with a one-page UFFDIO_COPY.
 * Each touch is a one-byte write. Ratio columns: µs/page and µs/fault
 * divided by the bare round trip (sleeping handler thread) of the same
 * run. The cases take turns inside each repetition.
 *
 * Usage: fault_bench [--pages N] [--reps N] [--socket PATH] [--json]
 * (run-fault-bench starts a private daemon and runs this against it)
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "uffd_rt.h"
#include "connect.h"
#include "uzswap.h"

#define PAGE		4096ul
#define REFAULT_STRIDE	2	/* pages between two punched pages */
#define MAX_REPS	101

#define BLOCK		16	/* pages per fault of the daemon's first touch */
_Static_assert(BLOCK <= UFFD_RT_MAX_BLOCK, "BLOCK too big for uffd_rt");

enum {
	BARE, BARE_BUSY, BARE_PROC, BARE_PROC_BLOCK,	/* bare_case[] */
	FIRST_TOUCH, REFAULT, NR_CASES
};

static const char *const case_name[NR_CASES] = {
	"bare uffd, handler thread (poll)",
	"bare uffd, handler thread (busy)",
	"bare uffd, handler process",
	"bare uffd, handler process, 16 pg",
	"daemon first touch",
	"daemon refault (punched page)",
};

static const char *const case_key[NR_CASES] = {
	"bare", "bare_busy", "bare_process", "bare_process_block16",
	"first_touch", "refault",
};

/* How the bare cases serve their faults (uffd_rt.h). */
static const struct uffd_rt_mode bare_case[] = {
	[BARE]			= { false, false, 1 },
	[BARE_BUSY]		= { true, false, 1 },
	[BARE_PROC]		= { false, true, 1 },
	[BARE_PROC_BLOCK]	= { false, true, BLOCK },
};

/* One run of one case. */
struct sample {
	double seconds;
	uint64_t pages;		/* pages touched */
	uint64_t faults;	/* faults served */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void touch(volatile char *p)
{
	*p = 1;
}

/*****************
 * The bare round trip (uffd_rt.c)
 *****************/

static int bare_run(unsigned long pages, const struct uffd_rt_mode *bc,
		    struct sample *s)
{
	struct uffd_rt_sample rs;
	int ret = uffd_rt_run(pages, bc, NULL, &rs);

	s->seconds = rs.seconds;
	s->pages = rs.pages;
	s->faults = rs.faults;
	return ret;
}

/*****************
 * Through the daemon
 *****************/

static int daemon_faults(uzswap_t *c, uint64_t *faults)
{
	struct uzswap_stats st;
	int ret = uzswap_stats(c, &st);

	if (ret == 0)
		*faults = st.faults;
	return ret;
}

/* First touch of a new region of @pages pages, then the refault of every
 * REFAULT_STRIDE-th page of it after punching those pages. */
static int daemon_run(uzswap_t *c, unsigned long pages, struct sample *first,
		      struct sample *refault)
{
	size_t len = pages * PAGE;
	uint64_t f0, f1;
	unsigned long i;
	char *region;
	double t0;
	int ret;

	region = uzswap_alloc(c, len, "fault_bench");
	if (!region)
		return -errno;

	if ((ret = daemon_faults(c, &f0)))
		goto out;
	t0 = now();
	for (i = 0; i < pages; i++)
		touch(region + i * PAGE);
	first->seconds = now() - t0;
	if ((ret = daemon_faults(c, &f1)))
		goto out;
	first->pages = pages;
	first->faults = f1 - f0;

	for (i = 0; i < pages; i += REFAULT_STRIDE)
		if (madvise(region + i * PAGE, PAGE, MADV_REMOVE) < 0) {
			ret = -errno;
			goto out;
		}
	if ((ret = daemon_faults(c, &f0)))
		goto out;
	t0 = now();
	for (i = 0; i < pages; i += REFAULT_STRIDE)
		touch(region + i * PAGE);
	refault->seconds = now() - t0;
	if ((ret = daemon_faults(c, &f1)))
		goto out;
	refault->pages = (pages + REFAULT_STRIDE - 1) / REFAULT_STRIDE;
	refault->faults = f1 - f0;
out:
	uzswap_free(c, region);
	return ret;
}

/*****************
 * Report
 *****************/

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct result {
	double us_page, us_fault;	/* medians */
	double us_page_min, us_page_max;
	double faults_per_page;		/* median */
	uint64_t pages;			/* per run */
};

static void summarize(const struct sample *s, unsigned int reps,
		      struct result *r)
{
	double page[MAX_REPS], fault[MAX_REPS], fpp[MAX_REPS];
	unsigned int i;

	for (i = 0; i < reps; i++) {
		page[i] = s[i].seconds * 1e6 / (double)s[i].pages;
		fault[i] = s[i].faults ? s[i].seconds * 1e6 /
					 (double)s[i].faults : 0;
		fpp[i] = (double)s[i].faults / (double)s[i].pages;
	}
	r->pages = s[0].pages;
	r->us_page = median(page, reps);	/* sorts page[] */
	r->us_page_min = page[0];
	r->us_page_max = page[reps - 1];
	r->us_fault = median(fault, reps);
	r->faults_per_page = median(fpp, reps);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--pages N] [--reps N] [--socket PATH] "
		"[--json]\n", prog);
}

int main(int argc, char **argv)
{
	static struct sample s[NR_CASES][MAX_REPS];
	unsigned long pages = 16384, reps = 5;
	struct result r[NR_CASES];
	const char *socket_path = NULL;
	bool json = false;
	uzswap_t *c;
	unsigned int i, k;
	double rt;
	int ret;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--pages") && i + 1 < (unsigned int)argc)
			pages = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--reps") &&
			 i + 1 < (unsigned int)argc)
			reps = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--socket") &&
			 i + 1 < (unsigned int)argc)
			socket_path = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else {
			usage(argv[0]);
			return 2;
		}
	}
	if (pages < 2 * REFAULT_STRIDE || pages > (1ul << 24) || reps < 1 ||
	    reps > MAX_REPS) {
		fprintf(stderr, "fault_bench: --pages takes %d to %lu, --reps "
			"1 to %d\n", 2 * REFAULT_STRIDE, 1ul << 24, MAX_REPS);
		return 2;
	}

	c = bench_connect(socket_path);
	if (!c) {
		fprintf(stderr, "fault_bench: cannot connect to uzswapd: %s\n",
			uzswap_strerror(errno));
		return 1;
	}
	/* The cases take turns inside each repetition, so that a slow
	 * moment of the machine spreads over all of them. */
	for (k = 0; k < reps; k++) {
		for (i = 0, ret = 0; i <= BARE_PROC_BLOCK && !ret; i++)
			ret = bare_run(pages, &bare_case[i], &s[i][k]);
		if (ret) {
			fprintf(stderr, "fault_bench: bare uffd run: %s\n",
				strerror(-ret));
			uzswap_disconnect(c);
			return 1;
		}
		ret = daemon_run(c, pages, &s[FIRST_TOUCH][k], &s[REFAULT][k]);
		if (ret) {
			fprintf(stderr, "fault_bench: run through the daemon: "
				"%s\n", uzswap_strerror(ret));
			uzswap_disconnect(c);
			return 1;
		}
	}
	uzswap_disconnect(c);

	for (i = 0; i < NR_CASES; i++)
		summarize(s[i], (unsigned int)reps, &r[i]);
	rt = r[BARE].us_fault;

	if (json) {
		printf("{\"pages\":%lu,\"reps\":%lu", pages, reps);
		for (i = 0; i < NR_CASES; i++)
			printf(",\"%s\":{\"pages\":%llu,\"faults_per_page\":"
			       "%.4f,\"us_per_page\":%.3f,\"us_per_fault\":"
			       "%.3f,\"us_per_page_min\":%.3f,"
			       "\"us_per_page_max\":%.3f,\"ratio_page\":%.3f,"
			       "\"ratio_fault\":%.3f}", case_key[i],
			       (unsigned long long)r[i].pages,
			       r[i].faults_per_page, r[i].us_page,
			       r[i].us_fault, r[i].us_page_min,
			       r[i].us_page_max, r[i].us_page / rt,
			       r[i].us_fault / rt);
		printf("}\n");
		return 0;
	}

	printf("fault cost (%lu pages per run, median of %lu runs; ratios "
	       "against the bare\nuffd round trip with a sleeping handler "
	       "thread, measured in the same run)\n\n", pages, reps);
	printf("%-34s %7s %9s %9s %9s %8s %8s\n", "case", "pages",
	       "faults/pg", "us/page", "us/fault", "x rt/pg", "x rt/flt");
	for (i = 0; i < NR_CASES; i++)
		printf("%-34s %7llu %9.4f %9.2f %9.2f %8.2f %8.2f\n",
		       case_name[i], (unsigned long long)r[i].pages,
		       r[i].faults_per_page, r[i].us_page, r[i].us_fault,
		       r[i].us_page / rt, r[i].us_fault / rt);
	printf("\nus/page over the runs (min..max):");
	for (i = 0; i < NR_CASES; i++)
		printf("%s %s %.2f..%.2f", i ? "," : "", case_key[i],
		       r[i].us_page_min, r[i].us_page_max);
	printf("\n");
	return 0;
}
