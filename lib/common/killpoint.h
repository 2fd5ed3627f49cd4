/*
 * killpoint.h - crash injection for tests: SIGKILL at a named step.
 *
 * Private to uzswap. Every step of a protocol whose interruption a
 * successor must recover from (an eviction, a load, a write-back, a
 * registration, a takeover) is marked with killpoint("area.step"). A test
 * arms one name, from the daemon's environment (UZSWAPD_KILLPOINT=NAME[:N],
 * read once at startup by killpoint_arm_from_env()), and the N-th time
 * (default 1) any thread passes that point the process writes
 * "killpoint NAME: hit N, SIGKILL" to stderr and raises SIGKILL: a crash
 * at exactly that instant, with nothing flushed, unwound or unlocked.
 * Disarmed (the default, also in production builds, like the kernel's
 * fault injection) a point costs one relaxed atomic load.
 */
#ifndef UZSWAP_KILLPOINT_H
#define UZSWAP_KILLPOINT_H

#include <stdatomic.h>
#include <stdbool.h>

/* Whether a point is armed; written once, before any thread starts. */
extern atomic_bool killpoint_armed;

/*
 * killpoint_arm() - arm @spec, "NAME" or "NAME:N" (N >= 1); NULL or ""
 * disarms.
 * Return: 0, or -EINVAL for a malformed @spec (nothing armed).
 */
int killpoint_arm(const char *spec);

/*
 * killpoint_arm_from_env() - killpoint_arm() the value of environment
 * variable @var, if set; a malformed value is reported on stderr.
 * Return: 0 or -EINVAL.
 */
int killpoint_arm_from_env(const char *var);

/* The armed point's slow path: counts a hit of @name, kills on the N-th. */
void killpoint_hit(const char *name);

/* A step named @name ("area.step", a string literal) is reached. */
static inline void killpoint(const char *name)
{
	if (__builtin_expect(atomic_load_explicit(&killpoint_armed,
						  memory_order_relaxed), 0))
		killpoint_hit(name);
}

#endif /* UZSWAP_KILLPOINT_H */
