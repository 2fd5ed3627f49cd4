/*
 * debug.h - run-time checks of the preconditions the code documents:
 * "@lock held", "loop thread only". A debug build (./configure
 * --enable-debug; scripts/test builds its sanitizer builds that way)
 * checks each one where it is documented and aborts with the place that
 * broke it; a production build compiles them to nothing, though it still
 * type-checks their arguments.
 *
 * Private to uzswap.
 *
 * "Held" means held by the calling thread: glibc records a mutex's owner
 * (configure refuses --enable-debug with a C library that does not). A
 * byte spinlock records no owner: check it with DEBUG_CHECK(). Threads:
 * every call is thread-safe; nothing here keeps shared state.
 */
#ifndef UZSWAP_DEBUG_H
#define UZSWAP_DEBUG_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef UZSWAP_DEBUG
#define DEBUG_CHECKS 1
#else
#define DEBUG_CHECKS 0
#endif

/* Defined in debug builds only; a production build only type-checks
 * their calls (in sizeof). */

/* Say on stderr which check failed, where, and abort. */
__attribute__((noreturn))
void debug_fail(const char *what, const char *file, int line,
		const char *func);

/* Whether @m is held by the calling thread. */
bool debug_mutex_held(const pthread_mutex_t *m);

/* The calling thread's id, without a system call after the first. */
pid_t debug_tid(void);

#ifdef UZSWAP_DEBUG
#define DEBUG_CHECK(cond, what)						\
	do {								\
		if (!(cond))						\
			debug_fail(what, __FILE__, __LINE__, __func__);	\
	} while (0)
#else
#define DEBUG_CHECK(cond, what)	((void)sizeof(!(cond)))
#endif

/* The caller holds the mutex @m; the caller does not hold it. */
#define assert_held(m)	DEBUG_CHECK(debug_mutex_held(m), #m " held")
#define assert_not_held(m)						\
	DEBUG_CHECK(!debug_mutex_held(m), #m " not held")

/*
 * struct owner_thread - the thread that alone may call an object's
 * functions documented "<that> thread only": recorded by
 * owner_thread_set() (in debug builds; 0 otherwise), checked by
 * assert_owner_thread(). Written once, before other threads see the
 * object.
 */
struct owner_thread {
	pid_t tid;
};

#ifdef UZSWAP_DEBUG
#define owner_thread_set(o)	((o)->tid = debug_tid())
#else
#define owner_thread_set(o)	((o)->tid = 0)
#endif
#define assert_owner_thread(o)						\
	DEBUG_CHECK((o)->tid == debug_tid(), "called on its owner thread")

#endif /* UZSWAP_DEBUG_H */
