/*
 * registry.h - the clients uzswapd serves: one struct mm_slot per client
 * process in a hash keyed by pid, all slots on one scan list walked by a
 * single cursor, as khugepaged keeps its mm_slots and khugepaged_scan.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_REGISTRY_H
#define UZSWAPD_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/common/list.h"
#include "lru.h"
#include "region.h"

#define REGISTRY_HASH_BITS 10

/*
 * struct mm_slot - a client process
 * @hash:       hash collision chain; protected by registry->lock
 * @mm_node:    entry of the scan list headed at registry->mm_head;
 *              protected by registry->lock
 * @pid:        the process; immutable
 * @uid:        its user at connection time; immutable
 * @comm:       its command name, read again by each HELLO (the process
 *              may have exec'd another program); loop thread
 * @start_time: its start time (field 22 of /proc/PID/stat), telling it
 *              from a later process with its pid; immutable
 * @lock:       protects @regions, @nr_regions, @leaving and @nr_leaving
 * @regions:    struct region list, ordered by start address; @lock
 * @nr_regions: regions on the list; @lock
 * @leaving:    regions out of @regions that a teardown is giving back
 *              to the process (restoring, then unregistering) or
 *              dropping (it exited), through struct region.leave_node:
 *              until that is done, a successor must take them over;
 *              @lock
 * @nr_leaving: regions on @leaving; @lock
 * @registered: bytes registered in @regions; @lock
 * @refs:       the registry holds one, each thread using the slot outside
 *              registry->lock one (atomic)
 * @faults:     faults served for this process (atomic)
 * @resident:   pages RESIDENT or EVICTING in attached regions; changed
 *              with the region's @acct_lock held (see evict_account())
 * @evictions:  pages evicted so far, also the clock of refault distances
 *              (atomic)
 * @limit:      the process's budget in bytes, 0 for the daemon's default
 *              (atomic)
 * @direct_evictions: pages evicted by its own faults to make room under
 *              its budget (direct reclaim; atomic)
 * @budget_waits: times one of its faults was put off for a moment, at its
 *              budget with no room made yet (atomic)
 * @over_budget: pages brought in past its budget because nothing could
 *              make room (atomic)
 * @retain_credit: what clean-page retention earned the process lately:
 *              +1 per page evicted clean (a punch instead of a pread and
 *              a compression), -MM_SLOT_RETAIN_WRITTEN per retained page
 *              written (its copy dropped at the cost of a write-protect
 *              fault, a round trip the client waits for), within
 *              +-MM_SLOT_RETAIN_CREDIT (atomic; see mm_slot_retains())
 * @retain_probes: loads counted while the credit is negative (atomic)
 * @registry:   the registry it is in; set by registry_insert(), immutable
 *              after
 * @lru:        its page LRU; see lru.h
 * @pidfd:      watches the process's exit; loop thread only
 * @pid_watch:  libuv poll on @pidfd, its data the daemon; loop thread
 *              only, freed in its close callback
 * @conns:      control connections of the process; loop thread only
 * @uffds:      the uffds of those connections (struct uffd_ctx.slot_node),
 *              for the state directory; loop thread only
 * @ctxs:       uffds of the process not yet released by their fault
 *              thread; loop thread only
 */
struct mm_slot {
	struct mm_slot *hash;
	struct list_node mm_node;
	pid_t pid;
	uid_t uid;
	char comm[16];
	uint64_t start_time;
	pthread_mutex_t lock;
	struct list_node regions;
	unsigned int nr_regions;
	struct list_node leaving;
	unsigned int nr_leaving;
	uint64_t registered;
	atomic_uint refs;
	atomic_uint_fast64_t faults;
	atomic_size_t resident;
	atomic_uint_fast64_t evictions;
	atomic_uint_fast64_t limit;
	atomic_uint_fast64_t direct_evictions;
	atomic_uint_fast64_t budget_waits;
	atomic_uint_fast64_t over_budget;
	atomic_int retain_credit;
	atomic_uint retain_probes;
	struct registry *registry;
	struct lru lru;
	int pidfd;
	uv_poll_t pid_watch;
	struct list_node conns;
	struct list_node uffds;
	unsigned int ctxs;
};

/*
 * struct registry - every client of the daemon
 * @lock:    protects @hash, @mm_head, @scan and @nr_slots
 * @hash:    mm_slots by pid
 * @mm_head: the scan list
 * @scan:    the cursor: @scan.mm_slot is the slot being scanned (NULL:
 *           start at the head), @scan.address the next address in it
 * @default_limit: the budget of a client that set none, in bytes; 0: none
 *           (atomic)
 * @resident_limit: the budget of all clients together, in bytes; 0: none
 *           (atomic)
 */
struct registry {
	pthread_mutex_t lock;
	struct mm_slot *hash[1u << REGISTRY_HASH_BITS];
	struct list_node mm_head;
	struct {
		struct mm_slot *mm_slot;
		unsigned long address;
	} scan;
	unsigned int nr_slots;
	atomic_uint_fast64_t default_limit;
	atomic_uint_fast64_t resident_limit;
};

void registry_init(struct registry *reg);
/* Every slot must have been removed. */
void registry_destroy(struct registry *reg);

/* A new slot for @pid with one reference (the registry's, once
 * inserted), or NULL with errno set. Loop-thread-only fields are zeroed. */
struct mm_slot *mm_slot_alloc(pid_t pid, uid_t uid);
void mm_slot_get(struct mm_slot *slot);
/* Drop a reference; the last one frees the slot, which must hold no
 * regions by then. */
void mm_slot_put(struct mm_slot *slot);

/* Insert @slot; -EEXIST if its pid is already there. O(1). */
int registry_insert(struct registry *reg, struct mm_slot *slot);
/* Remove @slot (the registry's reference passes to the caller); the cursor
 * moves on if it was on @slot. O(1). */
void registry_remove(struct registry *reg, struct mm_slot *slot);
/* The budgets (bytes; 0: none): of a client that set none, and of all
 * clients together. Any thread. */
void registry_set_limits(struct registry *reg, uint64_t default_limit,
			 uint64_t resident_limit);
void registry_get_limits(struct registry *reg, uint64_t *default_limit,
			 uint64_t *resident_limit);

/* A client's budget in bytes: its own, else its registry's default; 0:
 * none. Any thread. */
uint64_t mm_slot_limit(struct mm_slot *slot);
/* Pages that still fit under @slot's budget: 0 at or over it, SIZE_MAX
 * with no budget. Any thread; two atomic loads. */
size_t mm_slot_room(struct mm_slot *slot);

/*
 * Clean-page retention, per client: a read-modify-write workload writes
 * every page it loads, and each retained load then costs it a
 * write-protect fault and saves nothing. mm_slot_retains(): whether a
 * load for @slot keeps its copy: while the credit is not negative, and
 * one load in MM_SLOT_RETAIN_PROBE after (so that a change of workload
 * is seen). mm_slot_retain_credit(): @delta more (or less) credit. Any
 * thread; a few atomic operations.
 */
#define MM_SLOT_RETAIN_CREDIT	64
#define MM_SLOT_RETAIN_WRITTEN	2
#define MM_SLOT_RETAIN_PROBE	32
bool mm_slot_retains(struct mm_slot *slot);
void mm_slot_retain_credit(struct mm_slot *slot, int delta);

/* How many slots there are. */
unsigned int registry_nr_slots(struct registry *reg);

/* Sum over every slot: registered bytes and faults served. O(slots). */
void registry_totals(struct registry *reg, uint64_t *registered,
		     uint64_t *faults);

/* Bytes registered by every slot (*@all) and by the slots of user @uid
 * (*@of_uid). O(slots). */
void registry_registered(struct registry *reg, uid_t uid, uint64_t *all,
			 uint64_t *of_uid);

/* The slot of @pid with a reference taken, or NULL. O(1) average. */
struct mm_slot *registry_find(struct registry *reg, pid_t pid);

/* The slot with the lowest pid above @pid, with a reference taken, or
 * NULL. O(slots). */
struct mm_slot *registry_next_after(struct registry *reg, pid_t pid);

/*
 * registry_scan_next() - move the cursor to the next slot, round-robin,
 * and return it with a reference taken (NULL if there is none). The
 * cursor's address restarts at 0 in the new slot.
 */
struct mm_slot *registry_scan_next(struct registry *reg);

/* Add @r (whose range must not overlap another region of the slot);
 * -EEXIST if it does. The list takes over the caller's reference. */
int mm_slot_add_region(struct mm_slot *slot, struct region *r);
/* The region containing @addr, with a reference taken, or NULL. O(regions). */
struct region *mm_slot_find_region(struct mm_slot *slot, unsigned long addr);
/* The first region starting at or after @addr, with a reference taken,
 * or NULL. O(regions). */
struct region *mm_slot_next_region(struct mm_slot *slot, unsigned long addr);
/* The region numbered @id, with a reference taken, or NULL. O(regions). */
struct region *mm_slot_find_region_id(struct mm_slot *slot, uint64_t id);
/* Unlink the region starting at @start (REGION_ANY_START: the first one)
 * and registered on @ctx (NULL: any) and return it with the list's
 * reference, or NULL. */
#define REGION_ANY_START (~0ul)
struct region *mm_slot_take_region(struct mm_slot *slot, unsigned long start,
				   const struct uffd_ctx *ctx);

/*
 * mm_slot_give_back_region() - mm_slot_take_region() for a teardown: the
 * region also joins @slot's leaving list, where the state directory still
 * names it, until mm_slot_region_left() once its teardown is done (its
 * range unregistered, or its pages dropped).
 */
struct region *mm_slot_give_back_region(struct mm_slot *slot,
					unsigned long start,
					const struct uffd_ctx *ctx);
void mm_slot_region_left(struct mm_slot *slot, struct region *r);

/*
 * mm_slot_hold_region() - with @hold, stop evictions of @r (they see it
 * detached) while it stays in @slot, its faults served as before, so that
 * its pages can be restored for good; without, let them resume. Nothing
 * changes if @r left @slot (its detachment is then for good).
 * Return: whether @r is in @slot. O(regions).
 */
bool mm_slot_hold_region(struct mm_slot *slot, struct region *r, bool hold);

/* Unlink @r from @slot, as mm_slot_take_region() does; the caller gets
 * the list's reference. Return: false if @r is not in @slot. O(regions). */
bool mm_slot_remove_region(struct mm_slot *slot, struct region *r);

#endif /* UZSWAPD_REGISTRY_H */
