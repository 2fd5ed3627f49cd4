/*
 * evict.c - the evictor threads and the eviction protocol.
 *
 * Budgets. A client is over budget when its resident pages exceed its
 * limit (uzswap_set_limit(), else --default-limit); the daemon is when all
 * clients together exceed --resident-limit. Fault threads call
 * evict_check() after each fault-in, which wakes the evictors at once;
 * they also wake every EVICT_TICK_MS to catch anything missed. An evictor
 * walks the clients round-robin with the registry's scan cursor (like
 * khugepaged_scan) and, for each client over budget, evicts from the tail
 * of its LRU until it is EVICT_RUN_PAGES under the budget (the low mark),
 * at most EVICT_QUANTUM pages per visit so that one client cannot hold an
 * evictor while others wait. It looks at the budget again before each
 * run, and a budget change waits for the runs in flight (@budget_lock):
 * once a raise is answered, nothing more is evicted for the old budget.
 *
 * The protocol (DESIGN.md, "Eviction protocol"), on a span of one region:
 * its victims, RESIDENT pages, and the stored pages between them, which
 * are holes in the memfd already (evict_run()):
 *   1. each victim RESIDENT -> EVICTING, each stored page between them ->
 *      LOADING (compare-and-swap: nobody else may take it now; a stored
 *      page is held so that no fault brings it back into the memfd before
 *      the punch), then UFFDIO_WRITEPROTECT the span: writers block;
 *   2. pread() the victims from the memfd (never through a mapping: a
 *      hole touched that way would turn into zeros);
 *   3. store each victim (same-filled, compressed or raw) and publish its
 *      stored state before the punch, marked PAGE_UNPUNCHED;
 *   4. memfd_punch() the span (fallocate PUNCH_HOLE | KEEP_SIZE): one
 *      page-table walk and TLB flush for all its victims;
 *   5. clear PAGE_UNPUNCHED, let the stored pages between go as they
 *      were, and wake the span (UFFDIO_WAKE): the blocked
 *      writers refault as MISSING and get the stored copy. The punched
 *      pages need no un-protect: the punch took them out of the page
 *      tables, and what is left of their protection (a uffd-wp marker)
 *      neither stops a read nor turns a write into a WP fault; the
 *      UFFDIO_COPY that brings a page back maps it writable (verified on
 *      6.18: both accesses fault MISSING). That saves the un-protect's
 *      walk and TLB flush, a third of a one-page eviction on a VM.
 *      Pages that were not punched (the store filled up, or the punch
 *      failed) are un-protected as before, then let go.
 * A page that kept its pool object since its load (PAGE_RETAINED, clean-
 * page retention) publishes that object in step 3 instead of a new one; a
 * span of such pages alone skips the write-protect and the pread (the load
 * protected them): one cachestat(2) over the span proves the memfd holds
 * them, and nothing between them (a client's own punch must read zeros,
 * never the older copy), then the punch.
 * Which pages are victims: on the LRU walk, the tail page and the cold
 * pages (those of the oldest quarter of the client's LRU records, not
 * active) in the EVICT_RUN_PAGES after it, up to the first young one:
 * the records of sequential fault-ins follow one another, and random
 * faults leave cold pages scattered among stored ones; on advice or an
 * operator's reclaim, every resident page of the range.
 * A region leaving its slot (region_detach()) is restored by the loop
 * thread; an evictor that took pages of it after that puts them back.
 * A page that faults between 4 and 5 waits (its fault is retried) until
 * step 5: nothing loads an UNPUNCHED page, not even a MISSING fault, whose
 * message may be older than the run (read-ahead brought the page in since,
 * and this run took it again): loaded before the punch, the page would be
 * RESIDENT over a hole. If the store fills up
 * (step 3) the punch stops after the last victim stored; if the punch
 * fails, every victim goes back to RESIDENT and its stored copy is
 * dropped.
 *
 * Reclaim from the bottom asks the pages' owner to give up pool objects
 * (struct store_owner): evict_wb_take() finds a page by its key through
 * the region index and takes it for the write-back, as a load would, so
 * that no fault or restore can use it meanwhile; evict_wb_settle()
 * publishes it WRITTEN_BACK once its batch is written, then frees the
 * pool's copy. The store's writer thread, which reclaims ahead of the
 * evictors, starts and stops with them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evict.h"
#include "lib/common/clock.h"
#include "lib/common/killpoint.h"
#include "lib/uffd/uffd.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "thread.h"
#include "uffdctx.h"

#define EVICT_MAX_THREADS	8
#define EVICT_QUANTUM		1024	/* pages per client per visit */
#define EVICT_TICK_MS		100
#define EVICT_TAIL_RECS		EVICT_RUN_PAGES	/* LRU records tidied
						   after a run, at most */
#define EVICT_COLD_SHARE	4	/* the oldest quarter of a client's LRU
					   records is cold */
#define EVICT_COLD_MAX		16384	/* cold records at most (a quarter of
					   the stamps) */
#define EVICT_TRIM_RECS		4096	/* stale records dropped per visit */
#define EVICT_DIRECT_TRIES	8	/* runs per direct reclaim, at most */
#define EVICT_DIRECT_BUSY_NS	200000	/* waiting for another evictor's
					   run on the tail, at most */

/*
 * struct evictors - the evictor threads, owned by the daemon
 * @reg, @index, @store: the clients, their regions, where pages go;
 *              immutable
 * @threads, @nr_threads: written by evict_start()/evict_stop() only
 * @lock:       protects @kicked and @stop
 * @cond:       where idle evictors wait for a kick (or EVICT_TICK_MS)
 * @stuck:      the pool is full and takes nothing: logged once per
 *              episode (atomic)
 * @st:         counters of the protocol, whoever runs it (atomic)
 * @budget_lock: an evictor holds it shared from finding a client over
 *              budget to the end of the run that decision started; a
 *              budget change takes it exclusive once the new budget is
 *              stored, so that when the change is answered no eviction
 *              decided under the old budget is still going (writers
 *              preferred: evictors take it again for every run); a
 *              takeover holds it exclusive throughout (evict_pause())
 */
struct evictors {
	struct registry *reg;
	struct region_index *index;
	struct store *store;
	pthread_t threads[EVICT_MAX_THREADS];
	unsigned int nr_threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kicked;
	bool stop;
	atomic_bool stuck;
	pthread_rwlock_t budget_lock;
	struct {
		atomic_uint_fast64_t evicted, runs, store_full, second_chances,
			direct, clean;
	} st;
};

#define STAT_ADD(ev, field, n) \
	atomic_fetch_add_explicit(&(ev)->st.field, (n), memory_order_relaxed)

/*****************
 * Budgets
 *****************/

/*
 * The marks of a budget of @limit pages, as the kernel's watermarks: the
 * evictors wake above the high mark and evict down to the low mark, so
 * that a fault finds room under the budget itself, where back-pressure
 * (evict_make_room()) would otherwise stop it.
 */
static size_t high_mark(size_t limit)
{
	return limit > 4 * EVICT_RUN_PAGES ? limit - EVICT_RUN_PAGES
					   : limit / 4 * 3;
}

static size_t low_mark(size_t limit)
{
	return limit > 4 * EVICT_RUN_PAGES ? limit - 2 * EVICT_RUN_PAGES
					   : limit / 2;
}

static bool over_mark(size_t res, size_t limit, bool to_low)
{
	return limit && res > (to_low ? low_mark(limit) : high_mark(limit));
}

static bool slot_over(struct mm_slot *slot, bool to_low)
{
	return over_mark(atomic_load(&slot->resident),
			 mm_slot_limit(slot) >> PAGE_SHIFT, to_low);
}

static bool daemon_over(struct evictors *ev, bool to_low)
{
	return over_mark(region_index_resident(ev->index),
			 atomic_load(&ev->reg->resident_limit) >> PAGE_SHIFT,
			 to_low);
}

static void kick(struct evictors *ev)
{
	pthread_mutex_lock(&ev->lock);
	ev->kicked = true;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

void evict_check(struct evictors *ev, struct mm_slot *slot)
{
	if (slot_over(slot, false) || daemon_over(ev, false))
		kick(ev);
}

/* Wait for the runs started under the budgets before a change. */
static void wait_budget_decisions(struct evictors *ev)
{
	pthread_rwlock_wrlock(&ev->budget_lock);
	pthread_rwlock_unlock(&ev->budget_lock);
}

void evict_pause(struct evictors *ev)
{
	pthread_rwlock_wrlock(&ev->budget_lock);
}

void evict_resume(struct evictors *ev)
{
	pthread_rwlock_unlock(&ev->budget_lock);
	kick(ev);
}

void evict_set_slot_limit(struct evictors *ev, struct mm_slot *slot,
			  uint64_t limit)
{
	atomic_store(&slot->limit, limit);
	wait_budget_decisions(ev);
	evict_check(ev, slot);
}

void evict_set_limits(struct evictors *ev, uint64_t default_limit,
		      uint64_t resident_limit)
{
	registry_set_limits(ev->reg, default_limit, resident_limit);
	wait_budget_decisions(ev);
	kick(ev);
}

/*****************
 * The protocol
 *****************/

/*
 * Which RESIDENT pages a run takes as victims: any (@stamp < 0: advice,
 * an operator's reclaim), or the cold ones of an LRU walk: not active,
 * and stamped by one of the @cold records from @stamp, the tail's, on
 * (stamps are handed out in order; one that wrapped round only makes a
 * young page look cold).
 */
struct victim_filter {
	int stamp;
	uint16_t cold;
};

/*
 * struct span - the pages one run of the protocol covers: up to
 * EVICT_RUN_PAGES pages of one region from @first, each either a victim
 * (bit i of @victims: page @first + i, taken EVICTING) or, between two
 * victims, a gap: a stored page, a hole in the memfd already, held
 * LOADING for the run so that nothing brings it back into the memfd
 * before the punch that covers it. Private to the evictor running it.
 * @len:  pages, from a victim to a victim
 * @old:  each page's info as it was taken
 */
struct span {
	size_t first;
	size_t len;
	uint64_t victims;
	uint32_t old[EVICT_RUN_PAGES];
};

static bool span_victim(const struct span *s, size_t i)
{
	return (s->victims >> i) & 1;
}

/* Whether a page seen as @info is a victim by @f. */
static bool victim_matches(uint32_t info, const struct victim_filter *f)
{
	if (page_state(info) != PAGE_RESIDENT)
		return false;
	if (f->stamp < 0)
		return true;
	return !(info & PAGE_ACTIVE) &&
	       (uint16_t)(page_stamp(info) - f->stamp) < f->cold;
}

/* Whether a page seen as @info is a hole a span may cover: stored, and
 * punched by its evictor. */
static bool gap_matches(uint32_t info)
{
	return page_is_stored(page_state(info)) && !(info & PAGE_UNPUNCHED);
}

/* Put back the gaps of @s in [@from, @to) as they were taken. */
static void release_gaps(struct region *r, const struct span *s,
			 size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if (!span_victim(s, i))
			atomic_store(&r->pages[s->first + i].info, s->old[i]);
}

/*
 * Take a span of at most @n pages from @first into @s: victims by @f, and
 * the gaps between them. It starts at a victim (none at @first: an empty
 * span) and ends at the last victim before the first page that is
 * neither: a page another thread holds, a young or active one, a NEW one
 * (a fault may be filling it without taking it), a lost one. Returns its
 * length.
 */
static size_t take_span(struct region *r, size_t first, size_t n,
			const struct victim_filter *f, struct span *s)
{
	size_t k;

	s->first = first;
	s->len = 0;
	s->victims = 0;
	for (k = 0; k < n; k++) {
		struct page_entry *p = &r->pages[first + k];
		uint32_t info = atomic_load(&p->info);

		if (victim_matches(info, f)) {
			if (!page_cas(p, &info, (info & ~PAGE_STATE_MASK) |
						PAGE_EVICTING))
				break;
			s->victims |= 1ull << k;
			s->len = k + 1;
		} else if (k == 0 || !gap_matches(info) ||
			   !page_cas(p, &info, page_loading(info))) {
			break;
		}
		s->old[k] = info;
	}
	release_gaps(r, s, s->len, k);
	return s->len;
}

/* The copy page @idx of @r kept (taken as @old) is its stored copy
 * again: *@flags and *@data say what it is; returns its pool bytes. */
static int reuse_retained(struct region *r, size_t idx, uint32_t old,
			  uint32_t *flags, uint64_t *data)
{
	*flags = page_retained_copy(old);
	*data = r->pages[idx].data;
	atomic_fetch_sub(&r->retained, 1);
	return (int)store_restore_retained(r->store, *flags, *data);
}

/* Store the victims of @s, in order (@buf holds page i of the span at
 * page i, read unless all kept their copy); returns the span's pages
 * that the victims stored and published cover (the punch's length),
 * *@stored and *@clean how many were, and of those by reusing their
 * retained copy. */
static size_t store_span(struct region *r, const struct span *s,
			 struct compressor *c, const uint8_t *buf,
			 size_t *stored, size_t *clean)
{
	uint64_t clock = atomic_load(&r->slot->evictions);
	size_t i, covered = 0;

	*stored = *clean = 0;
	for (i = 0; i < s->len; i++) {
		struct page_entry *p = &r->pages[s->first + i];
		struct store_key key = { r->id, (uint32_t)(s->first + i) };
		uint32_t flags;
		uint64_t data;
		int bytes;

		if (!span_victim(s, i))
			continue;
		if (s->old[i] & PAGE_RETAINED) {
			/* @data names the copy already */
			bytes = reuse_retained(r, s->first + i, s->old[i],
					       &flags, &data);
			(*clean)++;
		} else {
			bytes = store_put(r->store, c,
					  buf + (i << PAGE_SHIFT), &key,
					  &flags, &data);
			if (bytes < 0)
				break;
			p->data = data;
		}
		p->evicted_at = (uint32_t)(clock + *stored);
		if (bytes) {
			atomic_fetch_add(&r->compressed_bytes, (size_t)bytes);
			atomic_fetch_add(&r->pooled, 1);
		}
		atomic_store(&p->info, flags | PAGE_UNPUNCHED);
		(*stored)++;
		covered = i + 1;
	}
	return covered;
}

/* EVICTING, still taken, as taken when it was @old, with no copy kept. */
static uint32_t still_taken(uint32_t old)
{
	return (old & ~(PAGE_STATE_MASK | PAGE_RETAIN_MASK)) | PAGE_EVICTING;
}

/* The punch failed: the victims stored in the first @covered pages of @s
 * are still in the memfd; they stay taken, with no copy (their
 * protection is lifted next). */
static void unstore_span(struct region *r, struct span *s, size_t covered)
{
	size_t i;

	for (i = 0; i < covered; i++) {
		struct page_entry *p = &r->pages[s->first + i];
		struct store_key key = { r->id, (uint32_t)(s->first + i) };
		uint32_t info = atomic_load(&p->info);

		if (!span_victim(s, i))
			continue;
		atomic_store(&p->info, still_taken(s->old[i]));
		region_unpool(r, store_drop(r->store, &key, info, p->data));
		s->old[i] &= ~PAGE_RETAIN_MASK;
	}
}

/* A hole where victims of @s are: the client punched them, and the
 * copies they kept are no longer their content. They stay taken, as
 * pages to store anew. */
static void forget_copies(struct region *r, struct span *s)
{
	size_t i;

	for (i = 0; i < s->len; i++) {
		struct page_entry *p = &r->pages[s->first + i];
		uint64_t data = p->data;

		if (!span_victim(s, i) || !(s->old[i] & PAGE_RETAINED))
			continue;
		atomic_store(&p->info, still_taken(s->old[i]));
		region_drop_retained(r, s->first + i, data);
		s->old[i] &= ~PAGE_RETAIN_MASK;
	}
}

/* Give the victims of @s from page @from on back as they were taken,
 * without the copies they kept: their protection was lifted. */
static void give_back_victims(struct region *r, const struct span *s,
			      size_t from)
{
	size_t i;

	for (i = from; i < s->len; i++)
		if (span_victim(s, i))
			region_unclaim(r, s->first + i, s->old[i], true);
}

/* Victims of @s that kept their copy. */
static size_t count_retained(const struct span *s)
{
	size_t i, n = 0;

	for (i = 0; i < s->len; i++)
		n += span_victim(s, i) && (s->old[i] & PAGE_RETAINED);
	return n;
}

/* Whether the memfd holds the victims of @s and nothing else of its
 * pages: a retained copy is a page's content only while the page is
 * there (the client may punch its own memory), and a gap is a hole. An
 * error counts as no: the copies are then dropped, never trusted. */
static bool span_has_data(const struct region *r, const struct span *s)
{
	long held = memfd_held(r->memfd, (off_t)(s->first << PAGE_SHIFT),
			       s->len << PAGE_SHIFT);

	return held == __builtin_popcountll(s->victims);
}

/* Read the victims of @s from the memfd into @buf (page i of the span at
 * page i), one pread() per run of adjacent victims. 0 or -EIO. */
static int read_victims(const struct region *r, const struct span *s,
			uint8_t *buf)
{
	uint64_t left = s->victims;

	while (left) {
		size_t i = (size_t)__builtin_ctzll(left);
		uint64_t rest = ~(left >> i);
		size_t n = rest ? (size_t)__builtin_ctzll(rest) : 64 - i;
		size_t len = n << PAGE_SHIFT;

		if (pread(r->memfd, buf + (i << PAGE_SHIFT), len,
			  (off_t)((s->first + i) << PAGE_SHIFT)) !=
		    (ssize_t)len)
			return -EIO;
		left &= n + i < 64 ? ~0ull << (n + i) : 0;
	}
	return 0;
}

static void mark_punched(struct region *r, size_t first, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++) {
		struct page_entry *p = &r->pages[first + i];
		uint32_t info = atomic_load(&p->info);

		/* fails harmlessly if a fault thread took it meanwhile */
		if (info & PAGE_UNPUNCHED)
			page_cas(p, &info, info & ~PAGE_UNPUNCHED);
	}
}

/* Step 5 for a run of @k pages at @addr whose first @stored were punched:
 * wake those, un-protect the others (which also wakes). */
static void release_run(int fd, unsigned long addr, size_t stored, size_t k)
{
	if (stored)
		uffd_wake(fd, addr, stored << PAGE_SHIFT);
	if (stored < k)
		uffd_writeprotect(fd, addr + (stored << PAGE_SHIFT),
				  (k - stored) << PAGE_SHIFT, false, false);
}

/*
 * evict_run() - the eviction protocol (DESIGN.md) on a span of @r from
 * @first, at most @n <= EVICT_RUN_PAGES pages: its victims (@f) taken
 * EVICTING and the stored pages between them held, write-protect, pread,
 * store, publish, one punch over the span, un-protect. Pages that kept
 * their copy (PAGE_RETAINED) publish it instead of a new one; a span of
 * such pages alone is already protected and needs neither the
 * write-protect nor the pread: it is a punch.
 * @c: the caller's compressor; @buf: EVICT_RUN_PAGES pages of buffer;
 * *@covered: set to the pages of @r the run went over (0: @first was not
 * a victim).
 * Return: pages evicted (0 if @first was not evictable), or -ENOMEM if the
 * store took nothing, or -errno from the kernel (the pages are then
 * RESIDENT again, untouched).
 */
static long evict_run(struct evictors *ev, struct region *r, size_t first,
		      size_t n, const struct victim_filter *f,
		      struct compressor *c, uint8_t *buf, size_t *covered)
{
	unsigned long addr = r->start + (first << PAGE_SHIFT);
	off_t off = (off_t)(first << PAGE_SHIFT);
	size_t len, clean, nvictims, stored = 0, punched = 0;
	int fd = r->ctx->fd;
	struct span s;
	long ret = 0;

	if (n > EVICT_RUN_PAGES)
		n = EVICT_RUN_PAGES;
	*covered = take_span(r, first, n, f, &s);
	if (!s.len)
		return 0;
	if (atomic_load(&r->detached))
		goto out_revert;	/* leaving its slot: being restored */
	len = s.len << PAGE_SHIFT;
	nvictims = (size_t)__builtin_popcountll(s.victims);
	clean = count_retained(&s);
	if (clean && !span_has_data(r, &s)) {
		forget_copies(r, &s);
		clean = 0;
	}
	if (clean < nvictims) {
		ret = uffd_writeprotect(fd, addr, len, true, false);
		if (ret)
			goto out_revert;
		killpoint("evict.protected");
		ret = read_victims(r, &s, buf);
		if (ret)
			goto out_release;
	}
	punched = store_span(r, &s, c, buf, &stored, &clean);
	if (stored < nvictims)
		STAT_ADD(ev, store_full, 1);
	killpoint("evict.published");
	if (punched)
		ret = memfd_punch(r->memfd, off, punched << PAGE_SHIFT);
	killpoint("evict.punched");
	if (ret < 0) {
		log_err_about("evict", LOG_REGION(r, .err = (int)-ret),
			      "pid %d: punch of region %llu: %s",
			      (int)r->slot->pid, (unsigned long long)r->id,
			      strerror((int)-ret));
		unstore_span(r, &s, punched);
		stored = punched = 0;
	}
	mark_punched(r, first, punched);
out_release:
	/* the punch is over: the pages between go before the wake */
	release_gaps(r, &s, 0, s.len);
	/* un-protected before they are let go: taken by another evictor
	 * first, a page would lose that evictor's protection */
	release_run(fd, addr, punched, s.len);
	give_back_victims(r, &s, punched);
	if (stored) {
		atomic_fetch_add(&r->stored, stored);
		region_account(r, -(long)stored);
		atomic_fetch_add(&r->slot->evictions, stored);
		STAT_ADD(ev, evicted, stored);
		STAT_ADD(ev, clean, clean);
		if (clean)
			mm_slot_retain_credit(r->slot, (int)clean);
		STAT_ADD(ev, runs, 1);
		return (long)stored;
	}
	return ret ? ret : -ENOMEM;

out_revert:
	release_gaps(r, &s, 0, s.len);
	give_back_victims(r, &s, 0);
	if (ret)
		log_debug_about("evict", LOG_REGION(r, .err = (int)-ret),
				"pid %d: region %llu pages %zu+%zu: %s",
				(int)r->slot->pid, (unsigned long long)r->id,
				first, s.len, strerror((int)-ret));
	return ret;
}

long evict_range(struct evictors *ev, struct region *r, size_t first,
		 size_t end, size_t max, struct compressor *c, uint8_t *buf)
{
	static const struct victim_filter any = { -1, 0 };
	size_t i, n, done = 0, span = 0, covered;
	long got;

	/* runs never reach into parts of the table nothing was written to */
	for (i = first; done < max &&
	     (i = region_next_entry(r, i, end, &span)) < end; i += n) {
		n = span - i < EVICT_RUN_PAGES ? span - i : EVICT_RUN_PAGES;
		if (n > max - done)
			n = max - done;
		got = evict_run(ev, r, i, n, &any, c, buf, &covered);
		if (got == -ENOMEM)
			return done ? (long)done : -ENOMEM;
		if (got < 0)
			break;	/* the client is going: leave the region */
		done += (size_t)got;
		n = covered ? covered : 1;	/* none: the next page */
	}
	return (long)done;
}

/*****************
 * Walking the LRU
 *****************/

/* Whether page @idx of @r is an evictable page of record @stamp. */
static bool page_matches(struct region *r, size_t idx, uint16_t stamp)
{
	uint32_t info = atomic_load(&r->pages[idx].info);

	return page_state(info) == PAGE_RESIDENT &&
	       page_stamp(info) == stamp && !(info & PAGE_ACTIVE);
}

/* An active page at the LRU tail, seen as @info: clear the mark, give it
 * a new record; only if the page is still as seen (another thread may
 * have taken it since, even stored and punched it: it must not be made
 * RESIDENT over that). A retained copy stays the page's. */
static void second_chance(struct evictors *ev, struct mm_slot *slot,
			  struct region *r, size_t idx, uint32_t info)
{
	struct page_entry *p = &r->pages[idx];
	int stamp = lru_add(&slot->lru, r->id, (uint32_t)idx, 1);

	if (stamp >= 0 &&
	    page_cas(p, &info, page_info(PAGE_RESIDENT,
					 info & PAGE_RETAIN_MASK,
					 (uint16_t)stamp)))
		STAT_ADD(ev, second_chances, 1);
}

/* How many records from the tail of @slot's LRU are cold (victims of a
 * run that starts at the tail): the oldest 1/EVICT_COLD_SHARE, at least
 * the tail's own. */
static uint16_t cold_records(struct mm_slot *slot)
{
	size_t n = lru_records(&slot->lru) / EVICT_COLD_SHARE;

	if (n < 1)
		return 1;
	return n > EVICT_COLD_MAX ? EVICT_COLD_MAX : (uint16_t)n;
}

/* Pages from the front of @rec that no longer carry it: evicted, or
 * faulted in again since under a newer record (a page another evictor
 * holds still does: its run may give it back). */
static size_t rec_gone(struct region *r, const struct lru_rec *rec)
{
	size_t n;

	for (n = 0; n < rec->npages && rec->first + n < r->npages; n++) {
		uint32_t info = atomic_load(&r->pages[rec->first + n].info);
		unsigned int state = page_state(info);

		if ((state == PAGE_RESIDENT || state == PAGE_EVICTING) &&
		    page_stamp(info) == rec->stamp)
			break;
	}
	return rec->first + n < r->npages ? n : rec->npages;
}

/* Consume from the tail of @slot's LRU what no longer carries its record,
 * in @r's records, up to the first page that does (a run just took them).
 */
static void consume_gone(struct mm_slot *slot, struct region *r)
{
	struct lru_rec recs[EVICT_TAIL_RECS];
	size_t nrecs = lru_peek(&slot->lru, recs, EVICT_TAIL_RECS);
	size_t i, n;

	for (i = 0; i < nrecs && recs[i].region_id == r->id; i++) {
		n = rec_gone(r, &recs[i]);
		if (n)
			lru_consume(&slot->lru, &recs[i], (uint16_t)n);
		if (n < recs[i].npages)
			break;
	}
}

/*
 * Evict the run that starts at the tail of @slot's LRU: the tail page and,
 * in the EVICT_RUN_PAGES after it (in its page of the region's table),
 * the cold pages (cold_records()) up to the first young one, across the
 * stored pages between them. Sequential fault-ins leave many records of
 * adjacent pages, random ones leave cold pages scattered among stored
 * ones: either way one write-protect and one punch cover them. What the
 * run took is consumed from the tail; a cold page evicted with it leaves
 * a stale record, dropped when it comes to the tail.
 * Return: pages evicted; 0 if the tail only needed tidying (stale pages,
 * an active page, a region gone); -ENODATA when the LRU is empty;
 * -ENOMEM when the store is full; -EBUSY when another evictor is on it.
 */
static long evict_tail(struct evictors *ev, struct mm_slot *slot,
		       struct compressor *c, uint8_t *buf)
{
	struct victim_filter f;
	struct lru_rec rec;
	struct region *r;
	size_t covered;
	uint32_t info;
	long got;

	if (!lru_peek(&slot->lru, &rec, 1))
		return -ENODATA;
	r = mm_slot_find_region_id(slot, rec.region_id);
	if (!r || rec.first >= r->npages) {
		lru_consume(&slot->lru, &rec, rec.npages);
		got = 0;
		goto out_put;
	}
	info = atomic_load(&r->pages[rec.first].info);
	if (page_state(info) == PAGE_EVICTING) {
		/* the other evictor holds the tail run and consumes its
		 * record; consumed here, the pages it cannot store would
		 * stay resident with no record, never evicted again */
		got = -EBUSY;
		goto out_put;
	}
	if (page_state(info) == PAGE_RESIDENT &&
	    page_stamp(info) == rec.stamp && (info & PAGE_ACTIVE))
		second_chance(ev, slot, r, rec.first, info);
	if (!page_matches(r, rec.first, rec.stamp)) {
		lru_consume(&slot->lru, &rec, 1);
		got = 0;
		goto out_put;
	}
	f = (struct victim_filter){ rec.stamp, cold_records(slot) };
	got = evict_run(ev, r, rec.first,
			region_entries_near(r, rec.first, EVICT_RUN_PAGES), &f,
			c, buf, &covered);
	if (got < 0 && got != -ENOMEM)
		lru_consume(&slot->lru, &rec, rec.npages); /* client going */
	else
		consume_gone(slot, r);
out_put:
	if (r)
		region_put(r);
	return got;
}

/* Evict resident pages of @slot in address order, at most @max. */
static long evict_slot_regions(struct evictors *ev, struct mm_slot *slot,
			       size_t max, struct compressor *c, uint8_t *buf)
{
	unsigned long addr = 0;
	struct region *r;
	long got, done = 0;

	while ((size_t)done < max) {
		r = mm_slot_next_region(slot, addr);
		if (!r)
			break;
		addr = region_end(r);
		got = evict_range(ev, r, 0, r->npages, max - (size_t)done, c,
				  buf);
		region_put(r);
		if (got == -ENOMEM)
			return done ? done : -ENOMEM;
		done += got;
	}
	return done;
}

long evict_slot_now(struct evictors *ev, struct mm_slot *slot, size_t max,
		    struct compressor *c, uint8_t *buf)
{
	long got, done = 0;

	while ((size_t)done < max) {
		got = evict_tail(ev, slot, c, buf);
		if (got == -ENOMEM)
			return done ? done : -ENOMEM;
		if (got < 0)	/* empty, busy, or the client is going */
			break;
		done += got;
	}
	if ((size_t)done == max)
		return done;
	got = evict_slot_regions(ev, slot, max - (size_t)done, c, buf);
	if (got == -ENOMEM)
		return done ? done : -ENOMEM;
	return done + got;
}

/* Whether any page of @rec still carries its stamp as a RESIDENT page. */
static bool rec_live(struct region *r, const struct lru_rec *rec)
{
	size_t k;

	for (k = 0; k < rec->npages && rec->first + k < r->npages; k++) {
		uint32_t info = atomic_load(&r->pages[rec->first + k].info);

		if (page_state(info) == PAGE_RESIDENT &&
		    page_stamp(info) == rec->stamp)
			return true;
	}
	return false;
}

/*
 * Drop stale records from the tail of @slot's LRU (their pages were
 * evicted and faulted in again since, or their region is gone), at most
 * EVICT_TRIM_RECS per call: a client within its budget has nothing else
 * consuming its records, and its ring would grow with every refault.
 */
static void trim_lru(struct mm_slot *slot)
{
	struct lru_rec rec;
	struct region *r;
	unsigned int i;
	bool live;

	for (i = 0; i < EVICT_TRIM_RECS; i++) {
		if (!lru_peek(&slot->lru, &rec, 1))
			return;
		r = mm_slot_find_region_id(slot, rec.region_id);
		live = r && rec_live(r, &rec);
		if (r)
			region_put(r);
		if (live)
			return;
		lru_consume(&slot->lru, &rec, rec.npages);
	}
}

enum slot_result {
	SLOT_DONE,	/* within budget, or nothing left to evict */
	SLOT_MORE,	/* quantum used up, still over budget */
	SLOT_FULL,	/* the store takes no more */
};

/* Whether @slot is above its low mark, or the daemon above its own and
 * @slot has pages to give. */
static bool still_over(struct evictors *ev, struct mm_slot *slot)
{
	return slot_over(slot, true) ||
	       (daemon_over(ev, true) && atomic_load(&slot->resident));
}

/* Evict from @slot while it (or the daemon) is over budget, at most
 * EVICT_QUANTUM pages, one run per look at the budgets. */
static enum slot_result evict_slot(struct evictors *ev, struct mm_slot *slot,
				   struct compressor *c, uint8_t *buf)
{
	long got, done = 0;

	if (!slot_over(slot, false) && !daemon_over(ev, false))
		return SLOT_DONE;
	for (;;) {
		if (done >= EVICT_QUANTUM)
			return SLOT_MORE;
		pthread_rwlock_rdlock(&ev->budget_lock);
		got = still_over(ev, slot) ? evict_tail(ev, slot, c, buf)
					   : -ENODATA;
		pthread_rwlock_unlock(&ev->budget_lock);
		if (got == -ENOMEM)
			return SLOT_FULL;
		if (got < 0)
			return SLOT_DONE;
		done += got ? got : 1;
	}
}

/*****************
 * Back-pressure: the fault path's direct reclaim
 *****************/

/* Evict from @slot's LRU tail until @want pages fit under its budget, at most
 * EVICT_DIRECT_TRIES runs (stale records, dropped on the way, do not
 * count). An evictor holding the tail is about to make room itself (a
 * run takes microseconds): yield to it and look again, for at most
 * EVICT_DIRECT_BUSY_NS. Returns the last tail's verdict (evict_tail()).
 * Under @budget_lock, shared. */
static long reclaim_directly(struct evictors *ev, struct mm_slot *slot,
			     size_t want, struct compressor *c, uint8_t *buf)
{
	unsigned int tries = 0, tidied = 0;
	uint64_t busy_since = 0;
	long got = 0;

	while (mm_slot_room(slot) < want && tries < EVICT_DIRECT_TRIES &&
	       tidied < EVICT_TRIM_RECS) {
		got = evict_tail(ev, slot, c, buf);
		if (got == 0) {
			tidied++;	/* a stale record: cheap, no syscall */
			continue;
		}
		if (got == -EBUSY) {
			if (!busy_since)
				busy_since = clock_now_ns();
			else if (clock_now_ns() - busy_since >
				 EVICT_DIRECT_BUSY_NS)
				break;
			sched_yield();
			continue;
		}
		tries++;
		if (got < 0)
			break;
		STAT_ADD(ev, direct, got);
		atomic_fetch_add_explicit(&slot->direct_evictions, got,
					  memory_order_relaxed);
	}
	return got;
}

enum evict_room evict_make_room(struct evictors *ev, struct mm_slot *slot,
				size_t want, struct compressor **c,
				uint8_t *buf, size_t *room)
{
	long got = -EAGAIN;

	*room = mm_slot_room(slot);
	if (*room >= want)
		return EVICT_ROOM;
	/* not taken: a budget change or a takeover is under way */
	if (pthread_rwlock_tryrdlock(&ev->budget_lock) == 0) {
		if (store_compressor_current(ev->store, c) == 0)
			got = reclaim_directly(ev, slot, want, *c, buf);
		pthread_rwlock_unlock(&ev->budget_lock);
	}
	/* the evictors make the room the next faults want */
	kick(ev);
	*room = mm_slot_room(slot);
	if (*room)
		return EVICT_ROOM;
	if (got == -ENODATA || (got == -ENOMEM && atomic_load(&ev->stuck)))
		return EVICT_ROOM_OVER;
	return EVICT_ROOM_WAIT;
}

/* The pool is at its limit: reclaim from the bottom. Returns whether it
 * takes pages again; if not, evictions stop until it does. Logged once
 * per episode (budgets are exceeded rather than a page lost); an episode
 * ends when the pool is back under its low mark, not when another
 * evictor merely finds it not yet full again. */
static bool relieve_store(struct evictors *ev)
{
	if (store_reclaim(ev->store)) {
		if (atomic_load(&ev->stuck) && store_pool_low(ev->store) &&
		    atomic_exchange(&ev->stuck, false))
			log_info("evict", "the pool takes pages again");
		return true;
	}
	if (!atomic_exchange(&ev->stuck, true))
		log_warn("evict", "the pool is at its limit and the backing "
			 "file takes no more: evictions stop, budgets are "
			 "exceeded until pages are freed");
	return false;
}

/* One round over every client. Returns whether to go round again: some
 * client is still over budget and the store takes more. */
static bool evict_pass(struct evictors *ev, struct compressor *c,
		       uint8_t *buf)
{
	unsigned int i, n = registry_nr_slots(ev->reg);
	enum slot_result res;
	struct mm_slot *slot;
	bool again = false;

	store_flush_frees(ev->store);
	if (!relieve_store(ev))
		return false;
	for (i = 0; i < n; i++) {
		slot = registry_scan_next(ev->reg);
		if (!slot)
			break;
		trim_lru(slot);
		res = evict_slot(ev, slot, c, buf);
		mm_slot_put(slot);
		if (res == SLOT_FULL)
			return relieve_store(ev);
		again |= res == SLOT_MORE;
	}
	return again;
}

static bool wait_for_work(struct evictors *ev)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += EVICT_TICK_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ev->lock);
	if (!ev->kicked && !ev->stop)
		pthread_cond_timedwait(&ev->cond, &ev->lock, &ts);
	ev->kicked = false;
	stop = ev->stop;
	pthread_mutex_unlock(&ev->lock);
	return !stop;
}

static void *evictor_main(void *arg)
{
	struct evictors *ev = arg;
	struct compressor *c = NULL;
	uint8_t *buf;

	buf = aligned_alloc(PAGE_SIZE, EVICT_RUN_PAGES * PAGE_SIZE);
	if (!buf) {
		log_err("evict", "no memory for an evictor's buffer");
		return NULL;
	}
	while (wait_for_work(ev)) {
		if (store_compressor_current(ev->store, &c)) {
			log_err("evict", "cannot make a compressor");
			continue;
		}
		while (evict_pass(ev, c, buf))
			;
	}
	compressor_destroy(c);
	free(buf);
	return NULL;
}

static void init_budget_lock(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

struct evictors *evict_start(struct registry *reg, struct region_index *ix,
			     struct store *store, unsigned int nthreads)
{
	struct evictors *ev;
	unsigned int i;
	int ret = 0;

	if (nthreads == 0 || nthreads > EVICT_MAX_THREADS) {
		errno = EINVAL;
		return NULL;
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return NULL;
	ev->reg = reg;
	ev->index = ix;
	ev->store = store;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_cond_init(&ev->cond, NULL);
	init_budget_lock(&ev->budget_lock);
	for (i = 0; i < nthreads && ret == 0; i++) {
		ret = thread_create(&ev->threads[i], "uzswapd-evict",
				    evictor_main, ev);
		if (ret == 0)
			ev->nr_threads++;
	}
	if (ret == 0)
		ret = store_writer_start(store);
	if (ret) {
		evict_stop(ev);
		errno = -ret;
		return NULL;
	}
	return ev;
}

void evict_stop(struct evictors *ev)
{
	unsigned int i;

	pthread_mutex_lock(&ev->lock);
	ev->stop = true;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
	for (i = 0; i < ev->nr_threads; i++)
		pthread_join(ev->threads[i], NULL);
	/* after the evictors: a store of theirs may still kick the writer */
	store_writer_stop(ev->store);
	pthread_rwlock_destroy(&ev->budget_lock);
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

/*****************
 * Reclaim from the bottom: the pages' side
 *****************/

int evict_wb_take(void *ctx, struct store_wb *wb)
{
	struct region *r = region_index_get(ctx, wb->key.region_id);
	struct page_entry *p;
	uint32_t info;
	int ret;

	if (!r)
		return -ENOENT;
	if (wb->key.idx >= r->npages) {
		/* a stale owner word may name any index */
		region_put(r);
		return -ENOENT;
	}
	p = &r->pages[wb->key.idx];
	info = atomic_load(&p->info);
	if ((info & PAGE_RETAINED) && p->data == wb->handle) {
		/* a copy of a resident page: given up, not written; kept
		 * where it is, not moved */
		ret = !wb->move &&
		      region_give_up_retained(r, wb->key.idx, -1) ?
			      -EALREADY : -EBUSY;
		region_put(r);
		return ret;
	}
	if (page_state(info) != PAGE_COMPRESSED || p->data != wb->handle ||
	    (info & PAGE_UNPUNCHED) ||
	    !page_cas(p, &info, page_loading(info))) {
		region_put(r);
		return -EBUSY;
	}
	wb->info = info;
	wb->ref = r;
	return 0;
}

size_t evict_give_up(void *ctx, struct store *s, const struct store_key *key,
		     uint32_t tag)
{
	struct region *r = region_index_get(ctx, key->region_id);
	size_t freed = 0;

	(void)s;
	if (!r)
		return 0;
	if (key->idx < r->npages)
		freed = region_give_up_retained(r, key->idx, (int)tag);
	region_put(r);
	return freed;
}

void evict_wb_settle(void *ctx, struct store *s, struct store_wb *wb,
		     enum store_settle how)
{
	struct region *r = wb->ref;
	struct page_entry *p = &r->pages[wb->key.idx];

	(void)ctx;
	(void)s;
	switch (how) {
	case STORE_KEEP:
		atomic_store(&p->info, wb->info);
		break;
	case STORE_MOVED:
		/* the same bytes in another object: nothing else changes */
		p->data = wb->data;
		killpoint("migrate.moved");
		atomic_store(&p->info, wb->info);
		break;
	case STORE_WRITTEN:
		killpoint("writeback.written");
		p->data = wb->data;
		killpoint("writeback.slotted");
		atomic_store(&p->info, (wb->info & ~PAGE_STATE_MASK) |
				       PAGE_WRITTEN_BACK);
		killpoint("writeback.published");
		region_unpool(r, wb->len);
		break;
	}
	region_put(r);
}

void evict_get_stats(struct evictors *ev, struct evict_stats *st)
{
	st->evicted = atomic_load(&ev->st.evicted);
	st->runs = atomic_load(&ev->st.runs);
	st->store_full = atomic_load(&ev->st.store_full);
	st->second_chances = atomic_load(&ev->st.second_chances);
	st->direct = atomic_load(&ev->st.direct);
	st->clean = atomic_load(&ev->st.clean);
}
