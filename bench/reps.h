/*
 * reps.h - the medians of a benchmark's repetitions. Each run's figures
 * sit in a struct made of doubles only (a _Static_assert in the
 * benchmark says so), summarized field by field: the median, the
 * minimum and the maximum over the runs; the quantiles of a run's
 * samples; and the clock and the rate the runs are timed with.
 *
 * Private to bench/.
 */
#ifndef UZSWAP_BENCH_REPS_H
#define UZSWAP_BENCH_REPS_H

#include <stddef.h>

#define REPS_MAX	101	/* runs reps_summarize() takes at most */

/* qsort() comparison of two doubles, ascending. */
int reps_cmp_double(const void *a, const void *b);

/* The median of @v[0..@n) (@n >= 1), which it sorts. */
double reps_median(double *v, unsigned int n);

/* The @p quantile (0 < @p <= 1) of @v[0..@n) (@n >= 1), sorted
 * ascending: the nearest rank, the ceil(@p * @n)-th. */
double reps_percentile(const double *v, size_t n, double p);

/*
 * reps_summarize() - field-wise median, minimum and maximum of @n runs
 * (1..REPS_MAX) of @size bytes each at @runs, a struct of doubles, into
 * *@med, *@lo and *@hi (@size bytes each).
 */
void reps_summarize(const void *runs, size_t size, unsigned int n,
		    void *med, void *lo, void *hi);

/* CLOCK_MONOTONIC, in seconds. */
double reps_now(void);

/* MB/s (1 MB = 10^6 bytes) of @pages 4 KiB pages in @seconds; 0 for no
 * time. */
double reps_mb_s(double pages, double seconds);

#endif /* UZSWAP_BENCH_REPS_H */
