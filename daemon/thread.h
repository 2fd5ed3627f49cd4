/*
 * thread.h - how uzswapd starts its threads (fault threads, evictors,
 * workers): named, on a small stack that mlockall() can afford.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_THREAD_H
#define UZSWAPD_THREAD_H

#include <pthread.h>

/*
 * A thread's stack. The daemon mlockall()s, so glibc's default (8 MiB,
 * from RLIMIT_STACK) would be locked whole for each thread. Measured
 * (pages resident at thread exit, with --no-mlock, over the check_evict
 * and check_daemon suites: zstd and lz4, writeback, full backing file):
 * at most 24 KiB, glibc's thread descriptor and TLS included. Buffers are
 * on the heap; the deepest frames are the store's and the backing file's
 * 4 KiB object buffers. 256 KiB is a 10x margin (sanitizer builds' larger
 * frames included). check_daemon's test_thread_stacks holds every thread
 * to it.
 */
#define THREAD_STACK_SIZE	(256 * 1024)

/* Start @fn(@arg) as thread @name (at most 15 characters) on a
 * THREAD_STACK_SIZE stack. Return: 0 or -errno. */
int thread_create(pthread_t *tid, const char *name, void *(*fn)(void *),
		  void *arg);

#endif /* UZSWAPD_THREAD_H */
