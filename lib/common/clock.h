/*
 * clock.h - the monotonic clock in nanoseconds, for timing and deadlines
 * on the daemon's threads (one vDSO call, no lock).
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

#endif /* UZSWAP_CLOCK_H */
