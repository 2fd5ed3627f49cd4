/*
 * uffd_rt.h - the bare userfaultfd round trip, the baseline of the fault
 * benchmarks (fault_bench, store_bench): what a touch of a missing page
 * costs when the handler does nothing but resolve it, in this process,
 * without uzswapd.
 *
 * A memfd mapped MAP_SHARED and registered MISSING on its own
 * userfaultfd; a handler (a thread, or a forked child process that
 * inherits the uffd, as the daemon is always another process) that sleeps
 * in poll() or spins on read() and resolves each fault with a UFFDIO_COPY
 * from a zero page; the calling thread touches the pages (a one-byte
 * write). With @block 1 the touches are UFFD_RT_STRIDE pages apart, one
 * fault and a one-page copy each; with a larger @block every page is
 * touched in order and each fault copies its whole aligned block of
 * @block pages (what the daemon does on a first touch).
 *
 * Private to uzswap's benchmarks.
 */
#ifndef UZSWAP_BENCH_UFFD_RT_H
#define UZSWAP_BENCH_UFFD_RT_H

#include <stdbool.h>
#include <stdint.h>

#define UFFD_RT_STRIDE		16	/* pages between two one-page touches */
#define UFFD_RT_MAX_BLOCK	16	/* largest @block, a power of two */

/* How the faults are served. */
struct uffd_rt_mode {
	bool busy;		/* spin on read() instead of poll() */
	bool process;		/* a child process instead of a thread */
	unsigned long block;	/* pages per copy: 1 to UFFD_RT_MAX_BLOCK */
};

/* One run. */
struct uffd_rt_sample {
	double seconds;		/* the touch loop, wall clock */
	uint64_t pages;		/* pages touched */
	uint64_t faults;	/* faults the handler served */
};

/*
 * uffd_rt_run() - touch @pages pages served as @mode says
 * @lat_us: NULL, or @pages doubles: each touch is then timed alone
 *          (clock_gettime(CLOCK_MONOTONIC) around it), in µs, in touch
 *          order; @s->seconds still covers the whole loop
 *
 * Return: 0, or -errno (-EOPNOTSUPP: no UFFDIO_COPY on shmem; -EINVAL: a
 * bad @block); an unexpected error of the handler is returned too, after
 * every touch was resolved.
 */
int uffd_rt_run(unsigned long pages, const struct uffd_rt_mode *mode,
		double *lat_us, struct uffd_rt_sample *s);

#endif /* UZSWAP_BENCH_UFFD_RT_H */
