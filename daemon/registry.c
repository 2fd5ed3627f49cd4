/*
 * registry.c - the mm_slot hash keyed by pid, the scan list and its cursor,
 * and each slot's list of regions; see registry.h.
 *
 * Lock order: registry->lock, then slot->lock. Neither is held across a
 * system call: callers take references and drop the locks first.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "registry.h"

static unsigned int pid_hash(pid_t pid)
{
	return ((uint32_t)pid * 0x9e3779b1u) >> (32 - REGISTRY_HASH_BITS);
}

void registry_init(struct registry *reg)
{
	pthread_mutex_init(&reg->lock, NULL);
	list_init(&reg->mm_head);
	reg->scan.mm_slot = NULL;
	reg->scan.address = 0;
	reg->nr_slots = 0;
	atomic_init(&reg->default_limit, 0);
	atomic_init(&reg->resident_limit, 0);
}

void registry_destroy(struct registry *reg)
{
	pthread_mutex_destroy(&reg->lock);
}

struct mm_slot *mm_slot_alloc(pid_t pid, uid_t uid)
{
	struct mm_slot *slot = calloc(1, sizeof(*slot));

	if (!slot)
		return NULL;
	slot->pid = pid;
	slot->uid = uid;
	slot->pidfd = -1;
	pthread_mutex_init(&slot->lock, NULL);
	list_init(&slot->mm_node);
	list_init(&slot->regions);
	list_init(&slot->leaving);
	list_init(&slot->conns);
	list_init(&slot->uffds);
	lru_init(&slot->lru);
	atomic_init(&slot->refs, 1);
	return slot;
}

void mm_slot_get(struct mm_slot *slot)
{
	atomic_fetch_add(&slot->refs, 1);
}

void mm_slot_put(struct mm_slot *slot)
{
	if (atomic_fetch_sub(&slot->refs, 1) != 1)
		return;
	lru_destroy(&slot->lru);
	pthread_mutex_destroy(&slot->lock);
	free(slot);
}

int registry_insert(struct registry *reg, struct mm_slot *slot)
{
	unsigned int h = pid_hash(slot->pid);
	struct mm_slot *s;

	pthread_mutex_lock(&reg->lock);
	for (s = reg->hash[h]; s; s = s->hash) {
		if (s->pid == slot->pid) {
			pthread_mutex_unlock(&reg->lock);
			return -EEXIST;
		}
	}
	slot->hash = reg->hash[h];
	reg->hash[h] = slot;
	slot->registry = reg;
	list_add_tail(&slot->mm_node, &reg->mm_head);
	reg->nr_slots++;
	pthread_mutex_unlock(&reg->lock);
	return 0;
}

void registry_remove(struct registry *reg, struct mm_slot *slot)
{
	struct mm_slot **pp;

	pthread_mutex_lock(&reg->lock);
	for (pp = &reg->hash[pid_hash(slot->pid)]; *pp; pp = &(*pp)->hash) {
		if (*pp == slot) {
			*pp = slot->hash;
			break;
		}
	}
	if (reg->scan.mm_slot == slot) {
		/* khugepaged_scan moves on the same way */
		reg->scan.mm_slot = slot->mm_node.next == &reg->mm_head ?
			NULL : container_of(slot->mm_node.next,
					    struct mm_slot, mm_node);
		reg->scan.address = 0;
	}
	list_del(&slot->mm_node);
	reg->nr_slots--;
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_limits(struct registry *reg, uint64_t default_limit,
			 uint64_t resident_limit)
{
	atomic_store(&reg->default_limit, default_limit);
	atomic_store(&reg->resident_limit, resident_limit);
}

void registry_get_limits(struct registry *reg, uint64_t *default_limit,
			 uint64_t *resident_limit)
{
	*default_limit = atomic_load(&reg->default_limit);
	*resident_limit = atomic_load(&reg->resident_limit);
}

uint64_t mm_slot_limit(struct mm_slot *slot)
{
	uint64_t own = atomic_load(&slot->limit);

	return own ? own : atomic_load(&slot->registry->default_limit);
}

size_t mm_slot_room(struct mm_slot *slot)
{
	size_t limit = mm_slot_limit(slot) >> PAGE_SHIFT;
	size_t res = atomic_load(&slot->resident);

	if (!limit)
		return SIZE_MAX;
	return res < limit ? limit - res : 0;
}

bool mm_slot_retains(struct mm_slot *slot)
{
	return atomic_load_explicit(&slot->retain_credit,
				    memory_order_relaxed) >= 0 ||
	       atomic_fetch_add_explicit(&slot->retain_probes, 1,
					 memory_order_relaxed) %
			       MM_SLOT_RETAIN_PROBE == 0;
}

void mm_slot_retain_credit(struct mm_slot *slot, int delta)
{
	int old = atomic_load_explicit(&slot->retain_credit,
				       memory_order_relaxed), new;

	do {
		new = old + delta;
		if (new > MM_SLOT_RETAIN_CREDIT)
			new = MM_SLOT_RETAIN_CREDIT;
		if (new < -MM_SLOT_RETAIN_CREDIT)
			new = -MM_SLOT_RETAIN_CREDIT;
	} while (new != old &&
		 !atomic_compare_exchange_weak_explicit(&slot->retain_credit,
							&old, new,
							memory_order_relaxed,
							memory_order_relaxed));
}

unsigned int registry_nr_slots(struct registry *reg)
{
	unsigned int n;

	pthread_mutex_lock(&reg->lock);
	n = reg->nr_slots;
	pthread_mutex_unlock(&reg->lock);
	return n;
}

void registry_totals(struct registry *reg, uint64_t *registered,
		     uint64_t *faults)
{
	struct list_node *pos;

	*registered = *faults = 0;
	pthread_mutex_lock(&reg->lock);
	for (pos = reg->mm_head.next; pos != &reg->mm_head; pos = pos->next) {
		struct mm_slot *s = container_of(pos, struct mm_slot, mm_node);

		pthread_mutex_lock(&s->lock);
		*registered += s->registered;
		pthread_mutex_unlock(&s->lock);
		*faults += atomic_load(&s->faults);
	}
	pthread_mutex_unlock(&reg->lock);
}

void registry_registered(struct registry *reg, uid_t uid, uint64_t *all,
			 uint64_t *of_uid)
{
	struct list_node *pos;
	uint64_t bytes;

	*all = *of_uid = 0;
	pthread_mutex_lock(&reg->lock);
	for (pos = reg->mm_head.next; pos != &reg->mm_head; pos = pos->next) {
		struct mm_slot *s = container_of(pos, struct mm_slot, mm_node);

		pthread_mutex_lock(&s->lock);
		bytes = s->registered;
		pthread_mutex_unlock(&s->lock);
		*all += bytes;
		if (s->uid == uid)
			*of_uid += bytes;
	}
	pthread_mutex_unlock(&reg->lock);
}

struct mm_slot *registry_next_after(struct registry *reg, pid_t pid)
{
	struct mm_slot *best = NULL;
	struct list_node *pos;

	pthread_mutex_lock(&reg->lock);
	list_for_each(pos, &reg->mm_head) {
		struct mm_slot *s = container_of(pos, struct mm_slot, mm_node);

		if (s->pid > pid && (!best || s->pid < best->pid))
			best = s;
	}
	if (best)
		mm_slot_get(best);
	pthread_mutex_unlock(&reg->lock);
	return best;
}

struct mm_slot *registry_find(struct registry *reg, pid_t pid)
{
	struct mm_slot *s;

	pthread_mutex_lock(&reg->lock);
	for (s = reg->hash[pid_hash(pid)]; s; s = s->hash)
		if (s->pid == pid)
			break;
	if (s)
		mm_slot_get(s);
	pthread_mutex_unlock(&reg->lock);
	return s;
}

struct mm_slot *registry_scan_next(struct registry *reg)
{
	struct list_node *next;
	struct mm_slot *s = NULL;

	pthread_mutex_lock(&reg->lock);
	if (!list_empty(&reg->mm_head)) {
		next = reg->scan.mm_slot ? reg->scan.mm_slot->mm_node.next :
					   reg->mm_head.next;
		if (next == &reg->mm_head)
			next = next->next;
		s = container_of(next, struct mm_slot, mm_node);
		mm_slot_get(s);
	}
	reg->scan.mm_slot = s;
	reg->scan.address = 0;
	pthread_mutex_unlock(&reg->lock);
	return s;
}

int mm_slot_add_region(struct mm_slot *slot, struct region *r)
{
	struct list_node *pos;

	pthread_mutex_lock(&slot->lock);
	for (pos = slot->regions.next; pos != &slot->regions;
	     pos = pos->next) {
		struct region *o = container_of(pos, struct region, node);

		if (o->start >= region_end(r))
			break;
		if (region_end(o) > r->start) {
			pthread_mutex_unlock(&slot->lock);
			return -EEXIST;
		}
	}
	list_add_between(&r->node, pos->prev, pos);
	region_attach(r, &slot->resident);
	slot->nr_regions++;
	slot->registered += r->npages << PAGE_SHIFT;
	pthread_mutex_unlock(&slot->lock);
	return 0;
}

struct region *mm_slot_find_region(struct mm_slot *slot, unsigned long addr)
{
	struct list_node *pos;
	struct region *found = NULL;

	pthread_mutex_lock(&slot->lock);
	for (pos = slot->regions.next; pos != &slot->regions;
	     pos = pos->next) {
		struct region *r = container_of(pos, struct region, node);

		if (region_contains(r, addr)) {
			region_get(r);
			found = r;
			break;
		}
	}
	pthread_mutex_unlock(&slot->lock);
	return found;
}

struct region *mm_slot_next_region(struct mm_slot *slot, unsigned long addr)
{
	struct list_node *pos;
	struct region *found = NULL;

	pthread_mutex_lock(&slot->lock);
	list_for_each(pos, &slot->regions) {
		struct region *r = container_of(pos, struct region, node);

		if (r->start >= addr) {
			region_get(r);
			found = r;
			break;
		}
	}
	pthread_mutex_unlock(&slot->lock);
	return found;
}

struct region *mm_slot_find_region_id(struct mm_slot *slot, uint64_t id)
{
	struct list_node *pos;
	struct region *found = NULL;

	pthread_mutex_lock(&slot->lock);
	for (pos = slot->regions.next; pos != &slot->regions;
	     pos = pos->next) {
		struct region *r = container_of(pos, struct region, node);

		if (r->id == id) {
			region_get(r);
			found = r;
			break;
		}
	}
	pthread_mutex_unlock(&slot->lock);
	return found;
}

/* Unlink @r from @slot. With slot->lock held. */
static void unlink_region_locked(struct mm_slot *slot, struct region *r)
{
	list_del(&r->node);
	region_detach(r);
	slot->nr_regions--;
	slot->registered -= r->npages << PAGE_SHIFT;
}

/* Unlink the region of @slot starting at @start (or any) on @ctx (or
 * any), onto the leaving list if @leaving. With slot->lock held. */
static struct region *take_region_locked(struct mm_slot *slot,
					 unsigned long start,
					 const struct uffd_ctx *ctx,
					 bool leaving)
{
	struct list_node *pos;

	list_for_each(pos, &slot->regions) {
		struct region *r = container_of(pos, struct region, node);

		if ((start == REGION_ANY_START || r->start == start) &&
		    (!ctx || r->ctx == ctx)) {
			unlink_region_locked(slot, r);
			if (leaving) {
				list_add_tail(&r->leave_node, &slot->leaving);
				slot->nr_leaving++;
			}
			return r;
		}
	}
	return NULL;
}

struct region *mm_slot_take_region(struct mm_slot *slot, unsigned long start,
				   const struct uffd_ctx *ctx)
{
	struct region *r;

	pthread_mutex_lock(&slot->lock);
	r = take_region_locked(slot, start, ctx, false);
	pthread_mutex_unlock(&slot->lock);
	return r;
}

struct region *mm_slot_give_back_region(struct mm_slot *slot,
					unsigned long start,
					const struct uffd_ctx *ctx)
{
	struct region *r;

	pthread_mutex_lock(&slot->lock);
	r = take_region_locked(slot, start, ctx, true);
	pthread_mutex_unlock(&slot->lock);
	return r;
}

void mm_slot_region_left(struct mm_slot *slot, struct region *r)
{
	pthread_mutex_lock(&slot->lock);
	list_del(&r->leave_node);
	list_init(&r->leave_node);
	slot->nr_leaving--;
	pthread_mutex_unlock(&slot->lock);
}

/* Whether @r is on @slot's list. With slot->lock held. */
static bool has_region_locked(struct mm_slot *slot, const struct region *r)
{
	struct list_node *pos;

	list_for_each(pos, &slot->regions)
		if (pos == &r->node)
			return true;
	return false;
}

bool mm_slot_hold_region(struct mm_slot *slot, struct region *r, bool hold)
{
	bool in;

	pthread_mutex_lock(&slot->lock);
	in = has_region_locked(slot, r);
	if (in)
		atomic_store(&r->detached, hold);
	pthread_mutex_unlock(&slot->lock);
	return in;
}

bool mm_slot_remove_region(struct mm_slot *slot, struct region *r)
{
	bool in;

	pthread_mutex_lock(&slot->lock);
	in = has_region_locked(slot, r);
	if (in)
		unlink_region_locked(slot, r);
	pthread_mutex_unlock(&slot->lock);
	return in;
}
