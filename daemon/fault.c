/*
 * fault.c - the fault path of uzswapd.
 *
 * A small fixed set of fault threads (not the libuv loop) serves every
 * client's userfaultfd. Each uffd belongs to one thread, chosen by pid, so
 * the faults of a process are handled in order and a region's page states
 * have a single writer. A fault travels:
 *
 *   client touches a page of a managed region that is not in its memfd
 *     -> the kernel queues a uffd_msg and puts the client thread to sleep
 *   fault thread: epoll_wait() on all its uffds
 *     -> read() of up to FAULT_MSG_BATCH messages at once
 *     -> region lookup in the client's mm_slot (slot lock, reference)
 *     -> back-pressure, for a fault that brings pages in: room under the
 *        client's budget (fault_room()), made if need be by evicting from
 *        its LRU tail right here (direct reclaim)
 *     -> by page state:
 *          NEW:      UFFDIO_COPY (DONTWAKE) from a zero buffer of every NEW
 *                    page of the aligned FAULT_BLOCK_PAGES block around
 *                    the fault (one ioctl), states -> RESIDENT, then
 *                    UFFDIO_WAKE: the states are published before the
 *                    client runs again
 *          RESIDENT: the page is there (a duplicate fault of threads that
 *                    touched it together): UFFDIO_COPY fails EEXIST ->
 *                    UFFDIO_WAKE
 *          COMPRESSED, SAME, WRITTEN_BACK: load_page(): decompress (read
 *                    from the backing file first), UFFDIO_COPY, drop
 *                    the stored copy (an exclusive load), RESIDENT; when
 *                    the faults run sequentially, the next stored pages
 *                    too (read-ahead, DONTWAKE copies), then one wake. A
 *                    read fault keeps the pool object of what it loads
 *                    (clean-page retention, load.c): the copy maps the
 *                    page write-protected, and its first write comes
 *                    back as a WP fault
 *                    A copy that cannot be read back (corrupt, an
 *                    export's that does not verify or stayed away past
 *                    backing-timeout) is never served: the page is
 *                    poisoned (SIGBUS on touch) and its copy kept; one
 *                    on an export that is away for now is retried
 *          EVICTING, LOADING: another thread's for a moment: retried
 *     -> evict_check(): wake the evictors if the client is over budget
 *     -> a write-protect fault on a page nobody is evicting is un-protected
 *        at once (wakes the writer); a page that kept its copy loses it
 *   EEXIST means already resolved: wake. EAGAIN: retried after
 *   FAULT_RETRY_MS.
 *
 * Back-pressure: a client's budget is a ceiling, as a memory cgroup's
 * limit is. The evictors keep each client a little under it (evict.c's
 * marks); when a fault finds its client at the budget all the same (the
 * evictors lagged: a fast sequential reader, random faults whose victims
 * are one page each), the fault thread evicts the client's coldest pages
 * itself before it serves, as the kernel's direct reclaim does in the
 * allocating task, until what the fault would bring in fits (its
 * zero-fill block, or the page and its read-ahead window); a fault brings
 * in no more pages than fit. When no room can be made at once (another evictor
 * holds the LRU tail, the pool waits for reclaim from the bottom), the
 * fault waits, retried every FAULT_RETRY_MS, for at most
 * FAULT_ROOM_WAIT_MS; past that, or when nothing can make room (the pool
 * and the backing file take no more), it is served over the budget and
 * counted (mm_slot.over_budget): a client is never left blocked for want
 * of room. ESRCH/ENOMEM: the client is gone; its uffd is skipped
 *   until the loop thread, told by the process's pidfd, detaches it.
 *
 * Each fault is timed from the read() that brought it (one clock read per
 * batch) to its resolution (one clock read per fault), across retries, into
 * a per-thread histogram of relaxed atomics (fault_get_latency()).
 *
 * Busy polling: a sleeping fault thread costs every fault a wake-up (the
 * round trip is ~37 us sleeping against ~28 us polling on the reference
 * machine). So after serving a fault a thread keeps polling its uffds
 * (epoll_wait with no timeout) for up to the fault-spin time before it
 * sleeps again: while faults come faster than that, it never sleeps; when
 * they stop, each fault costs at most that much CPU (fault_set_spin()).
 *
 * Detaching: the loop thread removes the uffd from the thread's epoll set
 * and queues a release command; the thread handles commands only after
 * every event of its current batch, so once it passes the context back
 * (release queue + uv_async_send) no fault thread holds it.
 */
#include "config.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "evict.h"
#include "fault.h"
#include "lib/common/clock.h"
#include "lib/common/debug.h"
#include "lib/uffd/uffd.h"
#include "load.h"
#include "log.h"
#include "registry.h"
#include "thread.h"

#define FAULT_MSG_BATCH		64	/* messages per read() */
#define FAULT_EVENTS		32	/* epoll events per wait */
#define FAULT_BLOCK_PAGES	16	/* NEW pages filled per fault, aligned */
#define FAULT_RA_MAX		32	/* read-ahead window, pages */
#define FAULT_RETRY_MS		1
#define FAULT_ROOM_WAIT_MS	1000	/* longest wait for room */
#define FAULT_MAX_THREADS	16

/* A fault to try again later (EAGAIN), read at @t0 (ns, monotonic), with
 * its message's @flags (UFFD_PAGEFAULT_FLAG_*). */
struct fault_retry {
	struct uffd_ctx *ctx;
	unsigned long addr;
	uint64_t flags;
	uint64_t t0;
};

/* Bucket bounds of the fault-latency histogram (fault.h), nanoseconds. */
static const uint64_t latency_le_ns[FAULT_LATENCY_BUCKETS] = {
	5000, 10000, 20000, 50000, 100000, 200000, 500000,
	1000000, 2000000, 5000000, 10000000, 20000000, 50000000, 100000000,
};

/*
 * struct fault_thread - one fault thread
 * @tid:        the thread; written by fault_start() only
 * @epfd:       its epoll set: client uffds and @cmdfd; epoll_ctl() from the
 *              loop thread, epoll_wait() from the thread
 * @cmdfd:      eventfd the loop thread writes to post a command
 * @lock:       protects @releasing and @stop
 * @releasing:  contexts to release (struct uffd_ctx.node)
 * @stop:       exit when set
 * @retry:      faults to retry; thread only
 * @nr_retry:   entries in @retry; thread only
 * @cap_retry:  capacity of @retry; thread only
 * @lc:         compressor and page buffer for loads, the compressor also
 *              for direct reclaim; thread only
 * @run_buf:    EVICT_RUN_PAGES pages of buffer for direct reclaim; thread
 *              only
 * @t0:         when the fault being served was read (ns); thread only
 * @flags:      its message's flags (UFFD_PAGEFAULT_FLAG_*); thread only
 * @last_ns:    when the thread last read a fault (ns); thread only
 * @deferred:   the fault being served was queued for a retry; thread only
 * @beat:       the last heartbeat request the thread answered; written by
 *              the thread, read by the loop thread (atomic)
 * @st:         counters; written by the thread, read by anyone (atomic)
 * @lat:        the latency histogram (fault_latency); written by the
 *              thread, read by anyone (atomic)
 */
struct fault_thread {
	struct fault_pool *pool;
	pthread_t tid;
	int epfd;
	int cmdfd;
	pthread_mutex_t lock;
	struct list_node releasing;
	bool stop;
	struct fault_retry *retry;
	size_t nr_retry;
	size_t cap_retry;
	struct load_ctx lc;
	uint8_t *run_buf;
	uint64_t t0;
	uint64_t flags;
	uint64_t last_ns;
	bool deferred;
	atomic_uint beat;
	struct {
		atomic_uint_fast64_t faults, zero_fills, zero_pages, wakes,
			wp_faults, poisoned, retries, client_gone,
			client_dropped, loads, read_ahead;
	} st;
	struct {
		atomic_uint_fast64_t bucket[FAULT_LATENCY_BUCKETS + 1];
		atomic_uint_fast64_t sum_ns;
	} lat;
};

/*
 * struct fault_pool - the fault threads and the loop side of the release
 * path. @threads and @nr_threads are written by fault_start()/fault_stop()
 * on the loop thread while no fault thread runs; @released (the queue of
 * contexts handed back to the loop) is protected by @released_lock;
 * @async is the loop's, and the pool is freed in its close callback;
 * @released_cb, @arg and @ev (the evictors to wake when a fault takes a
 * client over budget) are immutable; @beat is the last heartbeat
 * requested (written by the loop thread); @spin_ns is how long a thread
 * polls after a fault (atomic); @loop is the loop thread, that alone may
 * attach, detach, heartbeat and stop (recorded by fault_start()).
 */
struct fault_pool {
	struct fault_thread threads[FAULT_MAX_THREADS];
	unsigned int nr_threads;
	uv_async_t async;
	pthread_mutex_t released_lock;
	struct list_node released;
	fault_released_cb released_cb;
	void *arg;
	struct evictors *ev;
	atomic_uint beat;
	atomic_uint_fast64_t spin_ns;
	struct owner_thread loop;
};

/* Source of zero-fills; never written, so it stays the zero page. */
static uint8_t zero_block[FAULT_BLOCK_PAGES * PAGE_SIZE];

#define STAT_INC(t, field, n) \
	atomic_fetch_add_explicit(&(t)->st.field, (n), memory_order_relaxed)

/*****************
 * Serving one fault
 *****************/

/* The ioctl found the process gone: stop serving this uffd. */
static bool client_gone(struct fault_thread *t, struct uffd_ctx *ctx,
			int err)
{
	if (err != -ESRCH && err != -ENOMEM)
		return false;
	if (!ctx->gone)
		STAT_INC(t, client_gone, 1);
	ctx->gone = true;
	return true;
}

static void retry_later(struct fault_thread *t, struct uffd_ctx *ctx,
			unsigned long addr)
{
	struct fault_retry *grown;

	if (t->nr_retry == t->cap_retry) {
		size_t cap = t->cap_retry ? 2 * t->cap_retry : 64;

		grown = realloc(t->retry, cap * sizeof(*grown));
		if (!grown) {
			/* the faulting thread stays asleep until a refault;
			 * waking it makes it refault */
			log_err_about("fault",
				      LOG_CLIENT(ctx->slot, .err = ENOMEM),
				      "pid %d: no memory to queue a retry",
				      (int)ctx->slot->pid);
			uffd_wake(ctx->fd, addr, PAGE_SIZE);
			return;
		}
		t->retry = grown;
		t->cap_retry = cap;
	}
	t->retry[t->nr_retry++] =
		(struct fault_retry){ ctx, addr, t->flags, t->t0 };
	t->deferred = true;
	STAT_INC(t, retries, 1);
}

/* NEW pages [first, first + n) were filled: RESIDENT, on the LRU as one
 * fault-in record. Only this thread moves pages out of NEW. */
static void mark_filled(struct region *r, size_t first, size_t n)
{
	int stamp = lru_add(&r->slot->lru, r->id, (uint32_t)first,
			    (uint16_t)n);
	uint32_t info = page_info(PAGE_RESIDENT, 0,
				  stamp < 0 ? 0 : (uint16_t)stamp);
	size_t i, added = 0;

	for (i = first; i < first + n; i++) {
		uint32_t old = page_info(PAGE_NEW, 0, 0);

		if (page_cas(&r->pages[i], &old, info))
			added++;
	}
	region_account(r, (long)added);
}

/* The range was unregistered (UNREGISTER, connection closed, shutdown) or
 * unmapped since the fault was read: the kernel woke the faulting thread,
 * which refaults on plain memory. Nothing to do. */
static bool range_gone(struct uffd_ctx *ctx, unsigned long addr, int err)
{
	if (err != -ENOENT)
		return false;
	log_debug_about("fault", LOG_CLIENT(ctx->slot),
			"pid %d: %#lx no longer registered",
			(int)ctx->slot->pid, addr);
	return true;
}

/*
 * Zero-fill one page that is NEW, or that is RESIDENT and yet missing
 * (a duplicate fault of threads that touched it together: EEXIST; or the
 * client punched its own page: then it gets what its memfd says, zeros).
 * A RESIDENT page is claimed meanwhile (RESIDENT -> EVICTING, as
 * unprotect() claims one), so that no evictor can punch it between the
 * look at its state and the copy: the copy would then put zeros where the
 * evictor's stored copy belongs. A page that moved on since the look is
 * retried. A RESIDENT page found missing was punched by the client: it
 * reads zeros, and a copy it kept (PAGE_RETAINED) is no longer its
 * content. Wakes its waiters.
 */
static void fill_one(struct fault_thread *t, struct uffd_ctx *ctx,
		     struct region *r, size_t idx)
{
	struct page_entry *p = &r->pages[idx];
	unsigned long addr = r->start + (idx << PAGE_SHIFT);
	uint32_t info = atomic_load(&p->info);
	bool was_new = page_state(info) == PAGE_NEW;
	bool claimed = false;
	int ret;

	if (page_state(info) == PAGE_RESIDENT)
		claimed = page_cas(p, &info, (info & ~PAGE_STATE_MASK) |
						     PAGE_EVICTING);
	if (!was_new && !claimed) {
		retry_later(t, ctx, addr);
		return;
	}
	ret = uffd_copy(ctx->fd, addr, zero_block, PAGE_SIZE,
			UFFD_COPY_DONTWAKE);
	if (claimed)
		region_unclaim(r, idx, info, ret == 0);
	if (ret == 0 || ret == -EEXIST) {
		if (was_new)
			mark_filled(r, idx, 1);
		if (ret == -EEXIST)
			STAT_INC(t, wakes, 1);
		else if (was_new)
			STAT_INC(t, zero_pages, 1);
		else
			STAT_INC(t, client_dropped, 1);
		uffd_wake(ctx->fd, addr, PAGE_SIZE);
	} else if (ret == -EAGAIN) {
		retry_later(t, ctx, addr);
	} else if (!range_gone(ctx, addr, ret) && !client_gone(t, ctx, ret)) {
		log_err_about("fault", LOG_REGION(r, .err = -ret),
			      "pid %d: UFFDIO_COPY at %#lx: %s",
			      (int)ctx->slot->pid, addr, strerror(-ret));
	}
}

static bool page_is_new(struct region *r, size_t idx)
{
	return page_state(atomic_load(&r->pages[idx].info)) == PAGE_NEW;
}

/*
 * A MISSING fault on NEW page @idx: fill the run of NEW pages around it
 * inside its aligned block, @room pages at most, with one UFFDIO_COPY;
 * anything unusual (a page already there, a partial copy) falls back to
 * one page at a time.
 */
static void fill_new(struct fault_thread *t, struct uffd_ctx *ctx,
		     struct region *r, size_t idx, size_t room)
{
	size_t block = idx & ~(size_t)(FAULT_BLOCK_PAGES - 1);
	size_t end = block + FAULT_BLOCK_PAGES, first = idx, last = idx + 1, i;
	size_t copied = 0;
	int ret;

	if (end > r->npages)
		end = r->npages;
	while (last < end && last - first < room && page_is_new(r, last))
		last++;
	while (first > block && last - first < room &&
	       page_is_new(r, first - 1))
		first--;

	ret = uffd_copy_partial(ctx->fd, r->start + (first << PAGE_SHIFT),
				zero_block, (last - first) << PAGE_SHIFT,
				UFFD_COPY_DONTWAKE, &copied);
	if (copied) {
		/* publish the states before the client runs again */
		mark_filled(r, first, copied >> PAGE_SHIFT);
		uffd_wake(ctx->fd, r->start + (first << PAGE_SHIFT), copied);
		STAT_INC(t, zero_fills, 1);
		STAT_INC(t, zero_pages, copied >> PAGE_SHIFT);
	}
	if (ret == 0 || range_gone(ctx, r->start, ret) ||
	    client_gone(t, ctx, ret))
		return;
	for (i = first + (copied >> PAGE_SHIFT); i < last; i++)
		if (i == idx || page_is_new(r, i))
			fill_one(t, ctx, r, i);
}

/* Whether the pages the fault being served loads keep their stored copy
 * (clean-page retention): not when it is a write, which would drop the
 * copy at once at the cost of a write-protect fault; a write stream's
 * read-ahead is likely written too. */
static bool retain_loads(const struct fault_thread *t)
{
	return !(t->flags & UFFD_PAGEFAULT_FLAG_WRITE);
}

/* The read-ahead window of a fault that continues @ctx's sequential
 * stream: double the last one, up to FAULT_RA_MAX. */
static unsigned int next_window(const struct uffd_ctx *ctx)
{
	unsigned int w = ctx->ra_window ? 2 * ctx->ra_window : 2;

	return w < FAULT_RA_MAX ? w : FAULT_RA_MAX;
}

/*
 * Read-ahead: after a fault on stored page @idx that continues a
 * sequential stream, bring the following stored pages in too, without
 * waking anyone (each is a DONTWAKE copy; the caller wakes the whole run
 * once). The window doubles while the stream stays sequential, up to
 * FAULT_RA_MAX, and closes at the first gap (a page not stored, or one
 * another thread holds) or once @room pages came in: the budget's room
 * left after the faulting page. Returns the pages brought in.
 */
static size_t read_ahead(struct fault_thread *t, struct uffd_ctx *ctx,
			 struct region *r, size_t idx, size_t room)
{
	unsigned long addr = r->start + (idx << PAGE_SHIFT);
	size_t n = 0;

	if (addr != ctx->ra_next) {
		ctx->ra_window = 0;
	} else {
		ctx->ra_window = next_window(ctx);
		while (n < ctx->ra_window && n < room &&
		       idx + 1 + n < r->npages &&
		       load_page(r, idx + 1 + n, &t->lc, retain_loads(t)) ==
			       LOAD_DONE)
			n++;
		STAT_INC(t, read_ahead, n);
	}
	ctx->ra_next = addr + ((n + 1) << PAGE_SHIFT);
	return n;
}

/* A LOST page, or one whose stored copy cannot be read back (a corrupt
 * object, an export that returned something else or stayed away past the
 * timeout): the touch gets SIGBUS (UFFDIO_POISON), never zeros or wrong
 * data, and never blocks for ever. */
static void poison_page(struct fault_thread *t, struct uffd_ctx *ctx,
			struct region *r, size_t idx)
{
	unsigned long addr = r->start + (idx << PAGE_SHIFT);
	int ret = uffd_poison(ctx->fd, addr, PAGE_SIZE);

	/* The kernel poisons only an empty PTE, and a page evicted while
	 * write-protected left a uffd-wp marker there: lifting the
	 * protection of the missing page clears it (nothing else to
	 * protect), then the poison takes. */
	if (ret == -EEXIST &&
	    uffd_writeprotect(ctx->fd, addr, PAGE_SIZE, false, true) == 0)
		ret = uffd_poison(ctx->fd, addr, PAGE_SIZE);
	STAT_INC(t, poisoned, 1);
	if (ret == -EEXIST)
		uffd_wake(ctx->fd, addr, PAGE_SIZE);
	else if (ret && !range_gone(ctx, addr, ret) &&
		 !client_gone(t, ctx, ret))
		log_err_about("fault", LOG_REGION(r, .err = -ret),
			      "pid %d: poison %#lx of an unreadable page: %s",
			      (int)ctx->slot->pid, addr, strerror(-ret));
}

/* A MISSING fault on a stored page: bring it back (and, @room allowing,
 * the pages after it), then wake the faulting threads. */
static void fill_stored(struct fault_thread *t, struct uffd_ctx *ctx,
			struct region *r, size_t idx, size_t room)
{
	unsigned long addr = r->start + (idx << PAGE_SHIFT);
	size_t more;

	switch (load_page(r, idx, &t->lc, retain_loads(t))) {
	case LOAD_DONE:
		STAT_INC(t, loads, 1);
		more = read_ahead(t, ctx, r, idx, room - 1);
		uffd_wake(ctx->fd, addr, (more + 1) << PAGE_SHIFT);
		break;
	case LOAD_BUSY:
	case LOAD_AGAIN:
		retry_later(t, ctx, addr);
		break;
	case LOAD_NOT_STORED:
		fill_one(t, ctx, r, idx);
		break;
	case LOAD_LOST:
	case LOAD_CORRUPT:
		poison_page(t, ctx, r, idx);
		break;
	case LOAD_GONE:
		break;
	}
}

/*
 * A write-protect fault. Pages are protected by an eviction, which lifts
 * the protection itself once the page is punched (lifting it earlier
 * would let the write land on a page about to be dropped: a lost write),
 * and by a load that retains the page's copy (PAGE_RETAINED: the first
 * write must drop it). So the protection is lifted here only when no
 * eviction holds the page: a page being evicted (EVICTING, or stored but
 * not yet punched) is left to its evictor; a RESIDENT page is first
 * claimed (RESIDENT -> EVICTING, as an evictor would) so that no eviction
 * can start on it meanwhile, and loses its retained copy; a page stored
 * and punched is safe (the writer refaults MISSING and loads it). A page
 * that changed under the claim is tried again.
 */
static void unprotect(struct fault_thread *t, struct uffd_ctx *ctx,
		      struct region *r, unsigned long addr)
{
	size_t idx = (addr - r->start) >> PAGE_SHIFT;
	struct page_entry *p = &r->pages[idx];
	uint32_t info = atomic_load(&p->info);
	bool claimed = false;
	int ret;

	if (page_state(info) == PAGE_EVICTING || (info & PAGE_UNPUNCHED))
		return;
	if (page_state(info) == PAGE_RESIDENT) {
		if (!page_cas(p, &info, (info & ~PAGE_STATE_MASK) |
						PAGE_EVICTING)) {
			retry_later(t, ctx, addr);
			return;
		}
		claimed = true;
	}
	ret = uffd_writeprotect(ctx->fd, addr, PAGE_SIZE, false, false);
	if (claimed)
		region_unclaim(r, idx, info, true);
	if (info & PAGE_RETAINED)	/* written: retention cost a fault */
		mm_slot_retain_credit(ctx->slot, -MM_SLOT_RETAIN_WRITTEN);
	if (ret == 0)
		STAT_INC(t, wp_faults, 1);
	else if (!range_gone(ctx, addr, ret) && !client_gone(t, ctx, ret))
		log_err_about("fault", LOG_REGION(r, .err = -ret),
			      "pid %d: un-protect %#lx: %s",
			      (int)ctx->slot->pid, addr, strerror(-ret));
}

/*
 * Back-pressure (see the top of this file): the pages the fault at @addr
 * may bring into its client, at least one, room made for up to @want; or
 * 0 if it was put off to wait for room (retried later).
 */
static size_t fault_room(struct fault_thread *t, struct uffd_ctx *ctx,
			 unsigned long addr, size_t want)
{
	struct mm_slot *slot = ctx->slot;
	size_t room;

	switch (evict_make_room(t->pool->ev, slot, want, &t->lc.comp,
				t->run_buf, &room)) {
	case EVICT_ROOM:
		return room;
	case EVICT_ROOM_WAIT:
		if (clock_now_ns() - t->t0 < FAULT_ROOM_WAIT_MS * 1000000ull) {
			atomic_fetch_add_explicit(&slot->budget_waits, 1,
						  memory_order_relaxed);
			retry_later(t, ctx, addr);
			return 0;
		}
		break;
	case EVICT_ROOM_OVER:
		break;
	}
	atomic_fetch_add_explicit(&slot->over_budget, 1, memory_order_relaxed);
	return 1;
}

/* A MISSING fault on page @idx of @r, in state @state. */
static void fill_missing(struct fault_thread *t, struct uffd_ctx *ctx,
			 struct region *r, size_t idx, unsigned int state)
{
	unsigned long addr = r->start + (idx << PAGE_SHIFT);
	size_t room;

	switch (state) {
	case PAGE_RESIDENT:
		fill_one(t, ctx, r, idx);
		return;
	case PAGE_LOST:
		poison_page(t, ctx, r, idx);
		return;
	case PAGE_NEW:
	case PAGE_COMPRESSED:
	case PAGE_SAME:
	case PAGE_WRITTEN_BACK:
		/* what the fault would bring in: a zero-fill block, or the
		 * page and, in a sequential stream, its read-ahead */
		room = fault_room(t, ctx, addr, state == PAGE_NEW ?
				  FAULT_BLOCK_PAGES :
				  addr == ctx->ra_next ? 1 + next_window(ctx)
						       : 1);
		if (!room)
			return;
		if (state == PAGE_NEW)
			fill_new(t, ctx, r, idx, room);
		else
			fill_stored(t, ctx, r, idx, room);
		return;
	default:
		/* EVICTING or LOADING: someone else's, for now */
		retry_later(t, ctx, addr);
		return;
	}
}

static void handle_pagefault(struct fault_thread *t, struct uffd_ctx *ctx,
			     unsigned long addr, uint64_t flags)
{
	struct region *r;
	size_t idx;

	addr &= ~(PAGE_SIZE - 1);
	STAT_INC(t, faults, 1);
	atomic_fetch_add_explicit(&ctx->slot->faults, 1,
				  memory_order_relaxed);
	r = mm_slot_find_region(ctx->slot, addr);
	if (!r) {
		/* being unregistered: the refault finds the range plain */
		uffd_wake(ctx->fd, addr, PAGE_SIZE);
		STAT_INC(t, wakes, 1);
		return;
	}
	idx = (addr - r->start) >> PAGE_SHIFT;
	if (flags & UFFD_PAGEFAULT_FLAG_WP)
		unprotect(t, ctx, r, addr);
	else
		fill_missing(t, ctx, r, idx,
			     page_state(atomic_load(&r->pages[idx].info)));
	evict_check(t->pool->ev, ctx->slot);
	region_put(r);
}

static void latency_add(struct fault_thread *t, uint64_t ns)
{
	unsigned int i = 0;

	while (i < FAULT_LATENCY_BUCKETS && ns > latency_le_ns[i])
		i++;
	atomic_fetch_add_explicit(&t->lat.bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->lat.sum_ns, ns, memory_order_relaxed);
}

/* Serve one fault read at @t0 and time it, unless it waits for a retry
 * (then it is timed when the retry resolves it). */
static void serve_fault(struct fault_thread *t, struct uffd_ctx *ctx,
			unsigned long addr, uint64_t flags, uint64_t t0)
{
	t->t0 = t0;
	t->flags = flags;
	t->deferred = false;
	handle_pagefault(t, ctx, addr, flags);
	if (!t->deferred)
		latency_add(t, clock_now_ns() - t0);
}

/* Read and serve the pending messages of one uffd; bounded per call so
 * that one busy client cannot starve the others of its thread. */
static void serve_uffd(struct fault_thread *t, struct uffd_ctx *ctx)
{
	struct uffd_msg msgs[FAULT_MSG_BATCH];
	int n, i, rounds;
	uint64_t t0;

	for (rounds = 0; rounds < 4 && !ctx->gone; rounds++) {
		n = uffd_read_msgs(ctx->fd, msgs, FAULT_MSG_BATCH);
		if (n <= 0) {
			if (n < 0 && n != -EAGAIN)
				client_gone(t, ctx, n == -EBADF ? -ESRCH : n);
			return;
		}
		t0 = clock_now_ns();
		t->last_ns = t0;
		for (i = 0; i < n; i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
				log_debug_about("fault", LOG_CLIENT(ctx->slot),
						"pid %d: event %u ignored",
						(int)ctx->slot->pid,
						msgs[i].event);
				continue;
			}
			serve_fault(t, ctx, msgs[i].arg.pagefault.address,
				    msgs[i].arg.pagefault.flags, t0);
		}
		if (n < FAULT_MSG_BATCH)
			return;
	}
}

static void run_retries(struct fault_thread *t)
{
	size_t i, n = t->nr_retry;
	struct fault_retry *todo;

	if (!n)
		return;
	todo = t->retry;
	t->retry = NULL;
	t->nr_retry = t->cap_retry = 0;
	for (i = 0; i < n; i++)
		if (!todo[i].ctx->gone)
			serve_fault(t, todo[i].ctx, todo[i].addr,
				    todo[i].flags, todo[i].t0);
	free(todo);
}

/*****************
 * Threads and the release path
 *****************/

static void forget_retries(struct fault_thread *t, struct uffd_ctx *ctx)
{
	size_t i, j;

	for (i = j = 0; i < t->nr_retry; i++)
		if (t->retry[i].ctx != ctx)
			t->retry[j++] = t->retry[i];
	t->nr_retry = j;
}

/* Hand released contexts to the loop; returns whether to stop. */
static bool run_commands(struct fault_thread *t)
{
	struct list_node todo, *pos, *tmp;
	uint64_t v;
	bool stop;

	if (read(t->cmdfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("fault", "command eventfd: %s", strerror(errno));
	atomic_store(&t->beat, atomic_load(&t->pool->beat));
	list_init(&todo);
	pthread_mutex_lock(&t->lock);
	list_for_each_safe(pos, tmp, &t->releasing) {
		list_del(pos);
		list_add_tail(pos, &todo);
	}
	stop = t->stop;
	pthread_mutex_unlock(&t->lock);
	if (list_empty(&todo))
		return stop;

	pthread_mutex_lock(&t->pool->released_lock);
	list_for_each_safe(pos, tmp, &todo) {
		forget_retries(t, container_of(pos, struct uffd_ctx, node));
		list_del(pos);
		list_add_tail(pos, &t->pool->released);
	}
	pthread_mutex_unlock(&t->pool->released_lock);
	uv_async_send(&t->pool->async);
	return stop;
}

/* How long the next epoll_wait() may sleep: not at all while polling
 * after a recent fault, FAULT_RETRY_MS with faults to retry, else until
 * an event. */
static int wait_timeout(const struct fault_thread *t)
{
	uint64_t spin = atomic_load_explicit(&t->pool->spin_ns,
					     memory_order_relaxed);

	if (spin && clock_now_ns() - t->last_ns < spin)
		return 0;
	return t->nr_retry ? FAULT_RETRY_MS : -1;
}

static void *fault_thread_main(void *arg)
{
	struct fault_thread *t = arg;
	struct epoll_event ev[FAULT_EVENTS];
	bool command, stop = false;
	int n, i;

	while (!stop) {
		n = epoll_wait(t->epfd, ev, FAULT_EVENTS, wait_timeout(t));
		if (n < 0 && errno != EINTR) {
			log_err("fault", "epoll_wait: %s", strerror(errno));
			break;
		}
		command = false;
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == t)
				command = true;
			else
				serve_uffd(t, ev[i].data.ptr);
		}
		run_retries(t);
		if (command)
			stop = run_commands(t);
	}
	return NULL;
}

static void released_async_cb(uv_async_t *handle)
{
	struct fault_pool *fp = container_of(handle, struct fault_pool, async);
	struct list_node todo, *pos, *tmp;

	list_init(&todo);
	pthread_mutex_lock(&fp->released_lock);
	list_for_each_safe(pos, tmp, &fp->released) {
		list_del(pos);
		list_add_tail(pos, &todo);
	}
	pthread_mutex_unlock(&fp->released_lock);
	list_for_each_safe(pos, tmp, &todo) {
		list_del(pos);
		fp->released_cb(container_of(pos, struct uffd_ctx, node),
				fp->arg);
	}
}

static void post_command(struct fault_thread *t)
{
	uint64_t one = 1;

	if (write(t->cmdfd, &one, sizeof(one)) < 0)
		log_err("fault", "command eventfd: %s", strerror(errno));
}

static void thread_close(struct fault_thread *t)
{
	close(t->cmdfd);
	close(t->epfd);
	pthread_mutex_destroy(&t->lock);
	free(t->retry);
	compressor_destroy(t->lc.comp);
	free(t->lc.buf);
	free(t->run_buf);
}

static int thread_start(struct fault_pool *fp, struct fault_thread *t)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
	int ret;

	memset(t, 0, sizeof(*t));
	t->pool = fp;
	pthread_mutex_init(&t->lock, NULL);
	list_init(&t->releasing);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->cmdfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->epfd < 0 || t->cmdfd < 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->cmdfd, &ev) < 0) {
		ret = -errno;
		goto out_close;
	}
	t->lc.comp = compressor_create(COMPRESS_LZ4, 0);
	t->lc.buf = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	t->run_buf = aligned_alloc(PAGE_SIZE, EVICT_RUN_PAGES * PAGE_SIZE);
	if (!t->lc.comp || !t->lc.buf || !t->run_buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	ret = thread_create(&t->tid, "uzswapd-fault", fault_thread_main, t);
	if (ret == 0)
		return 0;
out_close:
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->cmdfd >= 0)
		close(t->cmdfd);
	compressor_destroy(t->lc.comp);
	free(t->lc.buf);
	free(t->run_buf);
	pthread_mutex_destroy(&t->lock);
	return ret;
}

static void pool_closed(uv_handle_t *handle)
{
	struct fault_pool *fp = container_of((uv_async_t *)handle,
					     struct fault_pool, async);

	pthread_mutex_destroy(&fp->released_lock);
	free(fp);
}

struct fault_pool *fault_start(uv_loop_t *loop, unsigned int nthreads,
			       unsigned int spin_us, struct evictors *ev,
			       fault_released_cb released, void *arg)
{
	struct fault_pool *fp;
	unsigned int i;
	int ret;

	if (nthreads == 0 || nthreads > FAULT_MAX_THREADS) {
		errno = EINVAL;
		return NULL;
	}
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return NULL;
	pthread_mutex_init(&fp->released_lock, NULL);
	list_init(&fp->released);
	fp->released_cb = released;
	fp->arg = arg;
	fp->ev = ev;
	owner_thread_set(&fp->loop);
	fault_set_spin(fp, spin_us);
	ret = uv_async_init(loop, &fp->async, released_async_cb);
	if (ret) {
		pthread_mutex_destroy(&fp->released_lock);
		free(fp);
		errno = -ret;
		return NULL;
	}
	for (i = 0; i < nthreads; i++) {
		ret = thread_start(fp, &fp->threads[i]);
		if (ret)
			break;
		fp->nr_threads++;
	}
	if (ret) {
		fault_stop(fp);
		errno = -ret;
		return NULL;
	}
	return fp;
}

void fault_stop(struct fault_pool *fp)
{
	unsigned int i;

	assert_owner_thread(&fp->loop);
	for (i = 0; i < fp->nr_threads; i++) {
		struct fault_thread *t = &fp->threads[i];

		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_mutex_unlock(&t->lock);
		post_command(t);
	}
	for (i = 0; i < fp->nr_threads; i++) {
		pthread_join(fp->threads[i].tid, NULL);
		thread_close(&fp->threads[i]);
	}
	fp->nr_threads = 0;
	uv_close((uv_handle_t *)&fp->async, pool_closed);
}

unsigned int fault_nr_threads(struct fault_pool *fp)
{
	return fp->nr_threads;
}

int fault_attach(struct fault_pool *fp, struct uffd_ctx *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ctx };

	assert_owner_thread(&fp->loop);
	ctx->thread = (unsigned int)ctx->slot->pid % fp->nr_threads;
	if (epoll_ctl(fp->threads[ctx->thread].epfd, EPOLL_CTL_ADD, ctx->fd,
		      &ev) < 0)
		return -errno;
	return 0;
}

void fault_detach(struct fault_pool *fp, struct uffd_ctx *ctx)
{
	struct fault_thread *t = &fp->threads[ctx->thread];

	assert_owner_thread(&fp->loop);
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, ctx->fd, NULL);
	pthread_mutex_lock(&t->lock);
	list_add_tail(&ctx->node, &t->releasing);
	pthread_mutex_unlock(&t->lock);
	post_command(t);
}

void fault_set_spin(struct fault_pool *fp, unsigned int us)
{
	atomic_store(&fp->spin_ns, (uint64_t)us * 1000u);
}

void fault_heartbeat(struct fault_pool *fp)
{
	unsigned int i;

	assert_owner_thread(&fp->loop);
	atomic_fetch_add(&fp->beat, 1);
	for (i = 0; i < fp->nr_threads; i++)
		post_command(&fp->threads[i]);
}

bool fault_threads_alive(struct fault_pool *fp)
{
	unsigned int i, beat = atomic_load(&fp->beat);

	assert_owner_thread(&fp->loop);
	for (i = 0; i < fp->nr_threads; i++)
		if (atomic_load(&fp->threads[i].beat) != beat)
			return false;
	return true;
}

void fault_get_stats(struct fault_pool *fp, struct fault_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < fp->nr_threads; i++) {
		struct fault_thread *t = &fp->threads[i];

		st->faults += atomic_load(&t->st.faults);
		st->zero_fills += atomic_load(&t->st.zero_fills);
		st->zero_pages += atomic_load(&t->st.zero_pages);
		st->wakes += atomic_load(&t->st.wakes);
		st->wp_faults += atomic_load(&t->st.wp_faults);
		st->poisoned += atomic_load(&t->st.poisoned);
		st->retries += atomic_load(&t->st.retries);
		st->client_gone += atomic_load(&t->st.client_gone);
		st->client_dropped += atomic_load(&t->st.client_dropped);
		st->loads += atomic_load(&t->st.loads);
		st->read_ahead += atomic_load(&t->st.read_ahead);
	}
}

void fault_get_latency(struct fault_pool *fp, struct fault_latency *l)
{
	unsigned int i, b;

	assert_owner_thread(&fp->loop);
	memset(l, 0, sizeof(*l));
	memcpy(l->le_ns, latency_le_ns, sizeof(l->le_ns));
	for (i = 0; i < fp->nr_threads; i++) {
		struct fault_thread *t = &fp->threads[i];

		for (b = 0; b <= FAULT_LATENCY_BUCKETS; b++)
			l->bucket[b] += atomic_load_explicit(
				&t->lat.bucket[b], memory_order_relaxed);
		l->sum_ns += atomic_load_explicit(&t->lat.sum_ns,
						  memory_order_relaxed);
	}
	for (b = 0; b <= FAULT_LATENCY_BUCKETS; b++)
		l->count += l->bucket[b];
}
