/*
 * work.h - the daemon's workers: a few threads that run what costs in
 * proportion to a client's size (restoring or dropping its regions,
 * ADVISE), so that the loop thread stays responsive. See work.c.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_WORK_H
#define UZSWAPD_WORK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/common/debug.h"
#include "lib/common/list.h"
#include "load.h"

struct evictors;

#define WORK_THREADS	2
#define WORK_STEP_PAGES	1024	/* pages per step: ~5 ms of restoring */

struct store;
struct work;
struct work_pool;

/* What a worker owns for life, and lends to each step it runs. */
struct work_ctx {
	struct load_ctx lc;	/* its compressor and page buffer */
	uint8_t *run_buf;	/* EVICT_RUN_PAGES pages (COLD advice) */
	struct store *store;	/* the daemon's store; immutable */
	struct evictors *evictors; /* runs the protocol for COLD; immutable */
	struct work_pool *pool;	/* the pool it belongs to; immutable */
};

/*
 * Run one bounded step of @w (at most about WORK_STEP_PAGES pages) on a
 * worker. Return: true when @w is finished, false to run again later,
 * behind the work queued meanwhile.
 */
typedef bool (*work_step_fn)(struct work *w, struct work_ctx *wc);

/* @w is finished: on the loop thread; it may free @w. */
typedef void (*work_done_fn)(struct work *w);

/*
 * struct work - one piece of work, embedded in its owner's struct
 * @node:      entry of the pool's queue or finished list; the pool's lock
 * @step:      see work_step_fn; immutable
 * @done:      see work_done_fn; immutable
 * @arg:       the requester (a connection), NULL once it left; loop
 *             thread only
 * @then:      work to queue once this one is done; loop thread only
 * @cancelled: the requester left: a step may stop early (atomic)
 */
struct work {
	struct list_node node;
	work_step_fn step;
	work_done_fn done;
	void *arg;
	struct work *then;
	atomic_bool cancelled;
};

/*
 * struct work_pool - the workers
 * @lock:      protects @queue, @finished and @stop
 * @cond:      signalled when @queue grows or @stop is set
 * @queue:     work waiting for a worker, in order
 * @finished:  work whose last step ran, waiting for the loop's @async
 * @stop:      the workers exit once @queue is empty
 * @threads:   the workers; written by work_start()/work_stop() only
 * @ctx:       each worker's own tools (@ctx[i] is @threads[i]'s)
 * @nr_threads: workers running
 * @async:     wakes the loop thread to run the finished work's @done
 * @in_flight: work queued or chained and not done yet; loop thread only
 * @idle, @idle_arg: called on the loop thread when @in_flight drops to 0
 * @loop:      the loop thread (recorded by work_start())
 */
struct work_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list_node queue;
	struct list_node finished;
	bool stop;
	pthread_t threads[WORK_THREADS];
	struct work_ctx ctx[WORK_THREADS];
	unsigned int nr_threads;
	uv_async_t async;
	unsigned int in_flight;
	void (*idle)(void *arg);
	void *idle_arg;
	struct owner_thread loop;
};

/* The end of a step over pages [@next, @npages): at most WORK_STEP_PAGES
 * pages further. */
static inline size_t work_step_end(size_t next, size_t npages)
{
	return npages - next < WORK_STEP_PAGES ? npages
					       : next + WORK_STEP_PAGES;
}

/* Set up @w, to run with @step and end with @done. */
void work_init(struct work *w, work_step_fn step, work_done_fn done,
	       void *arg);

/*
 * work_start() - start the workers, each with its own compressor (the
 * store's; a step that compresses remakes it when the store's changes)
 * and buffers
 * Return: 0 or -errno (nothing left running then). Loop thread.
 */
int work_start(struct work_pool *p, uv_loop_t *loop, struct store *store,
	       struct evictors *evictors,
	       void (*idle)(void *arg), void *arg);

/* Queue @w for the workers; with @after (in flight, not done yet) it is
 * queued only once @after is done. Loop thread. */
void work_queue(struct work_pool *p, struct work *w, struct work *after);

/* Whether no work is queued, running or waiting for its @done. */
bool work_idle(const struct work_pool *p);

/* Stop and join the workers; nothing may be in flight (work_idle()).
 * Closes the loop handle the pool owns. Loop thread. */
void work_stop(struct work_pool *p);

#endif /* UZSWAPD_WORK_H */
