/*
 * reclaim.h - an operator's RECLAIM request (uzswapctl reclaim): evict a
 * client's pages, or every client's, now, whatever their budgets. It runs
 * on the loop thread in steps of RECLAIM_STEP_PAGES between the loop's
 * other events, so control requests and the clients' own requests are
 * served while a large reclaim goes on; the requester's reply waits until
 * the job ends.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_RECLAIM_H
#define UZSWAPD_RECLAIM_H

#include <stdint.h>
#include <sys/types.h>

struct uzswapd;
struct reclaim_job;

#define RECLAIM_STEP_PAGES 512	/* pages per step, ~2-3 ms of the loop */

/* The job is over: @status 0 (@bytes evicted), -ESRCH (the client left
 * before anything was evicted), -ENOSPC (the store takes no more and
 * nothing was evicted) or -ENOMEM (no compressor). Called on the loop thread; the job is gone after
 * it returns. */
typedef void (*reclaim_done_cb)(void *arg, int status, uint64_t bytes);

/*
 * reclaim_start() - start evicting @bytes (0: every resident page) from
 * @pid (0: from every client, round-robin in pid order)
 * Return: the job, or NULL with errno set (ENOMEM, or the libuv error).
 * Loop thread.
 */
struct reclaim_job *reclaim_start(struct uzswapd *d, pid_t pid,
				  uint64_t bytes, reclaim_done_cb done,
				  void *arg);

/* Stop @job early (its requester left): no callback follows. */
void reclaim_cancel(struct reclaim_job *job);

#endif /* UZSWAPD_RECLAIM_H */
