/*
 * reps.c - medians, minima and maxima of a benchmark's runs, quantiles
 * of a run's samples, and their clock (see reps.h). The fields are copied with memcpy(): the runs are
 * structs of doubles, read as an array of them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reps.h"

int reps_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double reps_median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), reps_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double reps_percentile(const double *v, size_t n, double p)
{
	double x = p * (double)n;
	size_t rank = (size_t)x;

	if ((double)rank < x)
		rank++;
	if (rank > n)
		rank = n;
	return v[rank ? rank - 1 : 0];
}

void reps_summarize(const void *runs, size_t size, unsigned int n,
		    void *med, void *lo, void *hi)
{
	double v[REPS_MAX], x;
	unsigned int i;
	size_t off;

	for (off = 0; off + sizeof(x) <= size; off += sizeof(x)) {
		for (i = 0; i < n; i++)
			memcpy(&v[i], (const char *)runs + i * size + off,
			       sizeof(x));
		x = reps_median(v, n);	/* sorts v */
		memcpy((char *)med + off, &x, sizeof(x));
		memcpy((char *)lo + off, &v[0], sizeof(x));
		memcpy((char *)hi + off, &v[n - 1], sizeof(x));
	}
}

double reps_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double reps_mb_s(double pages, double seconds)
{
	return seconds > 0 ? pages * 4096.0 / seconds / 1e6 : 0;
}
