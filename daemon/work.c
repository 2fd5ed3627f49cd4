/*
 * work.c - the daemon's workers: WORK_THREADS threads that run, off the
 * loop thread, the work whose cost grows with a client's size: restoring
 * a region into its memfd (UNREGISTER, a live client's connection
 * closing), dropping a dead client's stored pages, ADVISE. The loop
 * thread only queues the work and, once it is done, sends the reply that
 * waited for it (the kernel's mmput_async(): never tear down synchronously
 * from the context that must stay responsive).
 *
 * Each piece of work runs in bounded steps (about WORK_STEP_PAGES pages);
 * a step that did not finish puts its work back at the tail of the queue,
 * so a client with gigabytes to restore holds a worker for one step at a
 * time and another client's ADVISE waits at most a step per worker. A
 * finished piece goes on the finished list and the loop thread, woken
 * through @async, runs its done callback (libuv may merge several wakes,
 * so the callback drains the whole list), then queues the work chained
 * after it (a connection's teardown waits for its last request's work).
 *
 * Why our own threads and not libuv's uv_queue_work(): libuv's threadpool
 * is shared with its own filesystem and DNS requests, runs 4 threads with
 * 8 MiB stacks (all of it locked by mlockall(MCL_FUTURE)), and gives a job
 * no thread of its own to keep state in, so every job would make its own
 * compressor and buffers. Our workers own a compressor, a page buffer and
 * a run buffer for life (the loop thread's d->comp and d->run_buf are its
 * alone), run on small stacks (thread.h) like the fault threads, and
 * requeue long work step by step.
 *
 * Lifetimes: a piece of work holds references on what it touches
 * (regions, the slot), never the connection that asked: the connection
 * may close while the work runs (work.arg is then NULL and work.cancelled
 * set). The daemon shuts down only once work_idle(): in_flight counts
 * every piece from work_queue() until its done callback has returned.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evict.h"
#include "log.h"
#include "store.h"
#include "thread.h"
#include "work.h"

void work_init(struct work *w, work_step_fn step, work_done_fn done,
	       void *arg)
{
	list_init(&w->node);
	w->step = step;
	w->done = done;
	w->arg = arg;
	w->then = NULL;
	atomic_init(&w->cancelled, false);
}

/* Put @w at the tail of the queue and wake a worker. */
static void queue_tail(struct work_pool *p, struct work *w)
{
	pthread_mutex_lock(&p->lock);
	list_add_tail(&w->node, &p->queue);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* The next work to step, or NULL once the pool stops with nothing left. */
static struct work *next_work(struct work_pool *p)
{
	struct work *w = NULL;

	pthread_mutex_lock(&p->lock);
	while (list_empty(&p->queue) && !p->stop)
		pthread_cond_wait(&p->cond, &p->lock);
	if (!list_empty(&p->queue)) {
		w = container_of(p->queue.next, struct work, node);
		list_del(&w->node);
	}
	pthread_mutex_unlock(&p->lock);
	return w;
}

static void *worker_main(void *arg)
{
	struct work_ctx *wc = arg;
	struct work_pool *p = wc->pool;
	struct work *w;
	bool finished;

	while ((w = next_work(p))) {
		finished = w->step(w, wc);
		pthread_mutex_lock(&p->lock);
		list_add_tail(&w->node, finished ? &p->finished : &p->queue);
		pthread_mutex_unlock(&p->lock);
		if (finished)
			uv_async_send(&p->async);
	}
	return NULL;
}

/* Run the done callbacks of the finished work; queue what was chained. */
static void finished_async_cb(uv_async_t *handle)
{
	struct work_pool *p = container_of(handle, struct work_pool, async);
	struct list_node todo, *pos, *tmp;
	struct work *w, *then;

	assert_owner_thread(&p->loop);
	list_init(&todo);
	pthread_mutex_lock(&p->lock);
	list_for_each_safe(pos, tmp, &p->finished) {
		list_del(pos);
		list_add_tail(pos, &todo);
	}
	pthread_mutex_unlock(&p->lock);
	list_for_each_safe(pos, tmp, &todo) {
		w = container_of(pos, struct work, node);
		list_del(pos);
		then = w->then;
		w->done(w);
		if (then)
			queue_tail(p, then);
		if (--p->in_flight == 0 && p->idle)
			p->idle(p->idle_arg);
	}
}

static void ctx_free(struct work_ctx *wc)
{
	compressor_destroy(wc->lc.comp);
	free(wc->lc.buf);
	free(wc->run_buf);
}

static int worker_start(struct work_pool *p, unsigned int i)
{
	struct work_ctx *wc = &p->ctx[i];
	int ret;

	wc->lc.buf = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	wc->run_buf = aligned_alloc(PAGE_SIZE, EVICT_RUN_PAGES * PAGE_SIZE);
	ret = store_compressor_current(wc->store, &wc->lc.comp);
	if (ret == 0 && (!wc->lc.buf || !wc->run_buf))
		ret = -ENOMEM;
	if (ret)
		goto out_free;
	ret = thread_create(&p->threads[i], "uzswapd-work", worker_main, wc);
	if (ret == 0)
		return 0;
out_free:
	ctx_free(wc);
	return ret;
}

static void stop_workers(struct work_pool *p)
{
	unsigned int i;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nr_threads; i++) {
		pthread_join(p->threads[i], NULL);
		ctx_free(&p->ctx[i]);
	}
	p->nr_threads = 0;
}

int work_start(struct work_pool *p, uv_loop_t *loop, struct store *store,
	       struct evictors *evictors,
	       void (*idle)(void *arg), void *arg)
{
	unsigned int i;
	int ret;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	list_init(&p->queue);
	list_init(&p->finished);
	p->idle = idle;
	p->idle_arg = arg;
	owner_thread_set(&p->loop);
	ret = uv_async_init(loop, &p->async, finished_async_cb);
	if (ret)
		goto out_destroy;
	for (i = 0; i < WORK_THREADS; i++) {
		p->ctx[i].store = store;
		p->ctx[i].evictors = evictors;
		p->ctx[i].pool = p;
		ret = worker_start(p, i);
		if (ret)
			break;
		p->nr_threads++;
	}
	if (ret == 0)
		return 0;
	log_err("work", "cannot start the workers: %s", strerror(-ret));
	work_stop(p);
	return ret;

out_destroy:
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	return ret;
}

void work_queue(struct work_pool *p, struct work *w, struct work *after)
{
	assert_owner_thread(&p->loop);
	p->in_flight++;
	if (after) {
		while (after->then)
			after = after->then;
		after->then = w;
		return;
	}
	queue_tail(p, w);
}

bool work_idle(const struct work_pool *p)
{
	assert_owner_thread(&p->loop);
	return p->in_flight == 0;
}

void work_stop(struct work_pool *p)
{
	assert_owner_thread(&p->loop);
	stop_workers(p);
	uv_close((uv_handle_t *)&p->async, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}
