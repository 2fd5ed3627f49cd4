/*
 * failpoint.h - allocation fault injection for tests (SQLite-style).
 *
 * Private to uzswap. Every place that asks the system for memory (malloc,
 * mmap, mprotect of new pool pages) first asks failpoint_hit(); a test arms
 * the counter with failpoint_arm(N) so that the N-th such request fails
 * with ENOMEM, then re-runs the operation with N = 1, 2, ... until it
 * succeeds, checking that every failure left no leak and no corruption.
 * Disarmed (the default) the check is one relaxed atomic load.
 */
#ifndef UZSWAP_FAILPOINT_H
#define UZSWAP_FAILPOINT_H

#include <stdbool.h>

/* Make the @nth allocation request from now on fail (1 = the next one);
 * 0 disarms. */
void failpoint_arm(unsigned long nth);

/* Whether the current allocation request must fail; counts the request. */
bool failpoint_hit(void);

/* How many requests failed since the last failpoint_arm(). */
unsigned long failpoint_failures(void);

#endif /* UZSWAP_FAILPOINT_H */
