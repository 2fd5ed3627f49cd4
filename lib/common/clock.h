/*
 * clock.h - the monotonic clock in nanoseconds, for timing and deadlines
 * on the daemon's threads (one vDSO call, no lock); and the wall clock in
 * seconds since the Unix epoch, for the times /metrics exports.
 */
#ifndef UZSWAP_CLOCK_H
#define UZSWAP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Now, in seconds since the Unix epoch (CLOCK_REALTIME). */
static inline double clock_unix_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif /* UZSWAP_CLOCK_H */
