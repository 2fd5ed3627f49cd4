/*
 * evict.h - eviction: the evictor threads that keep every client within
 * its resident budget (and all clients within the daemon's), and the
 * eviction protocol they run on a run of pages.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_EVICT_H
#define UZSWAPD_EVICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress.h"
#include "region.h"
#include "store.h"

#define EVICT_RUN_PAGES 64	/* pages per run of the protocol, at most */

struct registry;
struct mm_slot;

/* The evictor threads, owned by the daemon (struct uzswapd); the
 * protocol's counters, whoever runs it. */
struct evictors;

/* Counters of eviction (each read atomically). */
struct evict_stats {
	uint64_t evicted;	/* pages stored and dropped from memfds */
	uint64_t runs;		/* protocol runs */
	uint64_t store_full;	/* runs cut short: the pool took no more */
	uint64_t second_chances;/* active pages given another LRU trip */
	uint64_t direct;	/* pages evicted by direct reclaim (fault
				   threads making room) */
	uint64_t clean;		/* pages evicted unchanged since their load:
				   their retained copy published again, no
				   pread, no compression */
};

/* Start @nthreads evictor threads over the clients of @reg (and their
 * budgets), whose regions are in @ix. Return: the evictors, or NULL with
 * errno set (no thread left running). Loop thread. */
struct evictors *evict_start(struct registry *reg, struct region_index *ix,
			     struct store *store, unsigned int nthreads);
/* Stop and join the threads, and free @ev. */
void evict_stop(struct evictors *ev);

/* Change the budgets (reload, or an operator's set-limit: see
 * registry_set_limits()) and wake the evictors. Returns once no eviction
 * decided under the old budgets is still going (at most one run per
 * evictor). */
void evict_set_limits(struct evictors *ev, uint64_t default_limit,
		      uint64_t resident_limit);

/*
 * evict_pause() - no eviction runs from its return until evict_resume():
 * it waits for the runs in flight (at most one per evictor). A takeover
 * pauses the evictors until it has recovered every region and woken it:
 * a run then would put objects in the pool that the store's recovery has
 * not counted (and may free), or be under way when a range is
 * un-write-protected (a write would land between its pread and its
 * punch, and be lost). Operator
 * reclaims and COLD advice (evict_slot_now()) are not paused: they come
 * from requests, which a takeover does not serve yet. Loop thread; both
 * calls from the same thread.
 */
void evict_pause(struct evictors *ev);
void evict_resume(struct evictors *ev);

/* Change @slot's budget to @limit bytes (0: the default), as
 * evict_set_limits() does the daemon's. */
void evict_set_slot_limit(struct evictors *ev, struct mm_slot *slot,
			  uint64_t limit);

/* Wake the evictors if @slot or the daemon is over budget. Cheap: two
 * atomic loads. Any thread. */
void evict_check(struct evictors *ev, struct mm_slot *slot);

/*
 * evict_range() - evict every RESIDENT page of @r in [@first, @end), at
 * most @max, in runs of EVICT_RUN_PAGES (COLD advice, reclaim).
 * Return: pages evicted, or -ENOMEM if the store took none.
 */
long evict_range(struct evictors *ev, struct region *r, size_t first,
		 size_t end, size_t max, struct compressor *c, uint8_t *buf);

/*
 * evict_slot_now() - evict up to @max pages of @slot now, whatever its
 * budget (an operator's reclaim): the coldest first, from its LRU tail,
 * then, once the LRU has no more, any resident page in address order.
 * Cost: the protocol per run of pages, on the caller's thread.
 * Return: pages evicted (0: none resident; up to EVICT_RUN_PAGES - 1 more
 * than @max when the LRU tail is a longer run), or -ENOMEM if the store
 * took none.
 */
long evict_slot_now(struct evictors *ev, struct mm_slot *slot, size_t max,
		    struct compressor *c, uint8_t *buf);

/* What evict_make_room() found. */
enum evict_room {
	EVICT_ROOM,		/* pages fit under the budget */
	EVICT_ROOM_WAIT,	/* none fits yet; room is being made (the
				   evictors, reclaim from the bottom, a
				   budget change under way): try again */
	EVICT_ROOM_OVER,	/* none fits, and nothing can make room now:
				   the pool and the backing file take no
				   more, or nothing of the client's is on
				   its LRU */
};

/*
 * evict_make_room() - back-pressure: before a fault brings up to @want
 * pages into @slot, make room for them under its budget. If fewer fit,
 * evict from @slot's LRU tail on the calling thread (direct reclaim: the
 * runs the tail offers, at most a few), and wake the evictors to make
 * room for the faults after. @c: the caller's compressor (made anew if
 * the store's algorithm changed); @buf: EVICT_RUN_PAGES pages of buffer.
 * *@room: set to the pages that fit (SIZE_MAX: no budget); EVICT_ROOM
 * when at least one does.
 * Cost: two atomic loads while there is room; else up to
 * EVICT_DIRECT_TRIES runs of the protocol (one to 64 pages each).
 * Fault threads.
 */
enum evict_room evict_make_room(struct evictors *ev, struct mm_slot *slot,
				size_t want, struct compressor **c,
				uint8_t *buf, size_t *room);

/*
 * The store's owner callbacks (struct store_owner, @ctx: the struct
 * region_index), for reclaim from the bottom and compaction:
 * evict_wb_take() - take page @wb->key, which holds @wb->handle, for its
 * write-back or its object's move: COMPRESSED -> LOADING, its region
 * held in @wb->ref. The key comes from the object's owner word or its
 * node's reverse map and may be stale: only a page whose entry names the
 * handle is taken. Return: 0; -ENOENT if the region is gone or has no
 * page @key->idx; -EBUSY if the page does not hold the handle, another
 * thread holds it or its evictor has not yet punched it. A page that is
 * resident and keeps the handle as its retained copy gives the copy up
 * instead: -EALREADY (for a write-back; for a move, -EBUSY: it keeps it).
 * evict_wb_settle() - the page taken, as @how says: written back at
 * @wb->data (the entry names the slot, WRITTEN_BACK is published; the
 * store frees the pool's copy after), moved to the object @wb->data
 * (the entry names it, COMPRESSED again), or COMPRESSED again as it was.
 * Lets the region go.
 * evict_give_up() - page @key gives up the copy it retained, if it still
 * keeps the one it was queued for (@tag: its LRU stamp then): the pool
 * bytes freed, or 0.
 */
int evict_wb_take(void *ctx, struct store_wb *wb);
void evict_wb_settle(void *ctx, struct store *s, struct store_wb *wb,
		     enum store_settle how);
size_t evict_give_up(void *ctx, struct store *s, const struct store_key *key,
		     uint32_t tag);

void evict_get_stats(struct evictors *ev, struct evict_stats *st);

#endif /* UZSWAPD_EVICT_H */
