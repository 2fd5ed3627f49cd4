/*
 * reclaim.c - an operator's RECLAIM request, in steps (see reclaim.h).
 *
 * Each step takes one client (the one asked for, or the next one in pid
 * order after the last one visited) and evicts up to RECLAIM_STEP_PAGES of
 * its pages with evict_slot_now(), coldest first, using the loop thread's
 * compressor and run buffer. The job ends when it evicted what was asked,
 * when a whole round over the clients evicted nothing (nothing resident
 * is left), when the client asked for is gone, or when the store is full.
 * A step is a uv_idle_t callback: the loop polls without blocking while a
 * job runs, so other events are handled between steps.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "evict.h"
#include "reclaim.h"
#include "registry.h"
#include "uzswapd.h"

/*
 * struct reclaim_job - one RECLAIM request; loop thread only. Its memory
 * holds @idle, so it is freed in the idle handle's close callback.
 * @d:        the daemon
 * @idle:     runs one step per loop iteration
 * @pid:      the client asked for, 0 for every client
 * @left:     pages still to evict; SIZE_MAX for every resident page
 * @done:     pages evicted so far
 * @cursor:   every-client jobs: the pid visited last
 * @round_done: pages evicted since the cursor last wrapped around
 * @cb, @arg: the requester's callback, NULL once cancelled
 */
struct reclaim_job {
	struct uzswapd *d;
	uv_idle_t idle;
	pid_t pid;
	size_t left;
	uint64_t done;
	pid_t cursor;
	uint64_t round_done;
	reclaim_done_cb cb;
	void *arg;
};

static void job_closed(uv_handle_t *h)
{
	free(container_of((uv_idle_t *)h, struct reclaim_job, idle));
}

static void job_finish(struct reclaim_job *job, int status)
{
	if (job->cb)
		job->cb(job->arg, status, job->done << PAGE_SHIFT);
	job->cb = NULL;
	uv_close((uv_handle_t *)&job->idle, job_closed);
}

/* The next client to take pages from, with a reference; NULL: the job
 * is over (its client is gone, or a round found nothing). */
static struct mm_slot *next_slot(struct reclaim_job *job)
{
	struct registry *reg = &job->d->registry;
	struct mm_slot *slot;

	if (job->pid)
		return registry_find(reg, job->pid);
	slot = registry_next_after(reg, job->cursor);
	if (slot)
		return slot;
	if (job->round_done == 0)
		return NULL;	/* a whole round evicted nothing */
	job->round_done = 0;
	job->cursor = 0;
	return registry_next_after(reg, 0);
}

static void job_step(uv_idle_t *h)
{
	struct reclaim_job *job = container_of(h, struct reclaim_job, idle);
	struct uzswapd *d = job->d;
	size_t max = job->left < RECLAIM_STEP_PAGES ? job->left
						    : RECLAIM_STEP_PAGES;
	struct mm_slot *slot;
	long got;

	if (store_compressor_current(&d->store, &d->comp)) {
		job_finish(job, job->done ? 0 : -ENOMEM);
		return;
	}
	slot = next_slot(job);
	if (!slot) {
		job_finish(job, job->done || !job->pid ? 0 : -ESRCH);
		return;
	}
	job->cursor = slot->pid;
	got = evict_slot_now(d->evictors, slot, max, d->comp, d->run_buf);
	mm_slot_put(slot);
	if (got == -ENOMEM) {
		job_finish(job, job->done ? 0 : -ENOSPC);
		return;
	}
	job->done += (uint64_t)got;
	job->round_done += (uint64_t)got;
	/* a run may take a few pages more than asked */
	job->left -= (size_t)got < job->left ? (size_t)got : job->left;
	if (job->left == 0 || (job->pid && (size_t)got < max))
		job_finish(job, 0);
}

struct reclaim_job *reclaim_start(struct uzswapd *d, pid_t pid,
				  uint64_t bytes, reclaim_done_cb done,
				  void *arg)
{
	struct reclaim_job *job = calloc(1, sizeof(*job));
	int ret;

	assert_owner_thread(&d->thread);
	if (!job)
		return NULL;
	job->d = d;
	job->pid = pid;
	job->left = bytes ? (size_t)((bytes + PAGE_SIZE - 1) >> PAGE_SHIFT)
			  : SIZE_MAX;
	job->cb = done;
	job->arg = arg;
	ret = uv_idle_init(&d->loop, &job->idle);
	if (ret) {
		free(job);
		errno = -ret;
		return NULL;
	}
	uv_idle_start(&job->idle, job_step);	/* fails only without a cb */
	return job;
}

void reclaim_cancel(struct reclaim_job *job)
{
	job->cb = NULL;
	uv_close((uv_handle_t *)&job->idle, job_closed);
}
