/*
 * fault.h - the fault path: a small fixed set of threads that serve every
 * client's userfaultfd. See fault.c for the path a fault takes.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_FAULT_H
#define UZSWAPD_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "uffdctx.h"

/* Counters of the fault path, summed over threads (each read atomically). */
struct fault_stats {
	uint64_t faults;          /* page-fault messages handled */
	uint64_t zero_fills;      /* UFFDIO_COPY calls filling NEW pages */
	uint64_t zero_pages;      /* pages those calls filled */
	uint64_t wakes;           /* faults already resolved: woken */
	uint64_t wp_faults;       /* write-protect faults un-protected */
	uint64_t poisoned;        /* faults on LOST pages: SIGBUS */
	uint64_t retries;         /* copies retried after EAGAIN */
	uint64_t client_gone;     /* ioctls that found the process gone */
	uint64_t client_dropped;  /* RESIDENT pages the client itself punched */
	uint64_t loads;           /* stored pages brought back on a fault */
	uint64_t read_ahead;      /* stored pages brought back ahead of use */
};

/* The fault threads, owned by the daemon (struct uzswapd). */
struct fault_pool;
struct evictors;

typedef void (*fault_released_cb)(struct uffd_ctx *ctx, void *arg);

/*
 * fault_start() - start @nthreads fault threads, polling @spin_us after
 * each fault (see fault_set_spin()), waking @ev when a fault takes a
 * client over its budget
 * @released: called on @loop's thread, with @arg, for each context given
 *            to fault_detach(), once no fault thread can touch it any more
 * Return: the pool, or NULL with errno set (no thread left running then).
 * Loop thread.
 */
struct fault_pool *fault_start(uv_loop_t *loop, unsigned int nthreads,
			       unsigned int spin_us, struct evictors *ev,
			       fault_released_cb released, void *arg);

/* Stop and join the threads; every context must have been released.
 * Closes the loop handle it owns, whose close callback frees @fp (run the
 * loop once more to finish). */
void fault_stop(struct fault_pool *fp);

unsigned int fault_nr_threads(struct fault_pool *fp);

/* Start serving @ctx's faults on one of the threads (chosen by its
 * process, so that one process's faults stay in order). Return: 0 or
 * -errno. Loop thread. */
int fault_attach(struct fault_pool *fp, struct uffd_ctx *ctx);

/* Stop serving @ctx; the released callback follows. Loop thread. */
void fault_detach(struct fault_pool *fp, struct uffd_ctx *ctx);

/* Poll for faults @us microseconds after each one before sleeping (0:
 * sleep at once). Any thread; the fault threads see it at their next
 * wait. */
void fault_set_spin(struct fault_pool *fp, unsigned int us);

/*
 * Liveness, for the systemd watchdog: fault_heartbeat() asks every fault
 * thread to answer (through its command eventfd, handled between batches
 * of faults); fault_threads_alive() says whether every thread answered the
 * last request. A thread stuck in a fault never answers. Loop thread.
 */
void fault_heartbeat(struct fault_pool *fp);
bool fault_threads_alive(struct fault_pool *fp);

void fault_get_stats(struct fault_pool *fp, struct fault_stats *st);

/*
 * The fault service-time histogram: for each page-fault message, the time
 * from the read() that took it off its uffd to its resolution (the page
 * copied in and the faulting thread woken, or the fault found already
 * resolved); a fault retried later (EAGAIN, a page busy) counts from that
 * first read, and is timed once resolved (once per page left to retry, in
 * the rare fill that leaves several). This is the daemon's part of a fault
 * only: the kernel's delivery and the client's wakeup are not in it.
 * Faults with nothing left to do (their range gone, their process gone)
 * are counted too.
 */
#define FAULT_LATENCY_BUCKETS 14

/*
 * struct fault_latency - the histogram, summed over threads (each field
 * read atomically; the set is not one atomic snapshot, but @count is the
 * sum of @bucket)
 * @le_ns:  upper bound of each bucket in nanoseconds, ascending: 5, 10,
 *          20, 50, 100, 200, 500 µs, 1, 2, 5, 10, 20, 50, 100 ms
 * @bucket: faults in each bucket, not cumulative; bucket[i] counts those
 *          in (le_ns[i - 1], le_ns[i]], the last one those above
 *          le_ns[FAULT_LATENCY_BUCKETS - 1]
 * @count:  faults timed
 * @sum_ns: their total service time
 */
struct fault_latency {
	uint64_t le_ns[FAULT_LATENCY_BUCKETS];
	uint64_t bucket[FAULT_LATENCY_BUCKETS + 1];
	uint64_t count;
	uint64_t sum_ns;
};

/* Read the histogram. O(threads * buckets). Loop thread. */
void fault_get_latency(struct fault_pool *fp, struct fault_latency *l);

#endif /* UZSWAPD_FAULT_H */
