/*
 * debug.c - the run-time checks of debug builds (see debug.h); empty in a
 * production build.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "debug.h"

#ifdef UZSWAP_DEBUG
void debug_fail(const char *what, const char *file, int line,
		const char *func)
{
	fprintf(stderr, "uzswap: check failed: %s, in %s() at %s:%d\n", what,
		func, file, line);
	abort();
}

pid_t debug_tid(void)
{
	static __thread pid_t tid;

	if (!tid)
		tid = gettid();
	return tid;
}

/* glibc records the owner of every kind of mutex it locks. */
bool debug_mutex_held(const pthread_mutex_t *m)
{
	return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) ==
	       debug_tid();
}
#endif /* UZSWAP_DEBUG */
