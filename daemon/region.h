/*
 * region.h - a managed region as uzswapd sees it: a client's memfd mapped
 * at [start, start + npages pages) in the client, registered on one of its
 * userfaultfds, with a per-page state table.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_REGION_H
#define UZSWAPD_REGION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/common/list.h"
#include "lib/proto/proto.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ul << PAGE_SHIFT)

struct mm_slot;
struct uffd_ctx;

/* State of one page of a region. */
enum page_state {
	PAGE_NEW = 0,	/* never touched: a hole in the memfd, reads as zero */
	PAGE_RESIDENT,	/* in the memfd's page cache */
};

/*
 * struct page_entry - the per-page state table entry
 * @state: enum page_state; written only by the fault thread that owns the
 *         region's uffd, read by anyone (atomic)
 */
struct page_entry {
	_Atomic uint8_t state;
};

/*
 * struct region - a registered managed region
 * @node:     entry in the slot's region list; protected by slot->lock
 * @slot:     the owning process; immutable
 * @ctx:      the uffd the range is registered on; immutable
 * @id:       daemon-wide region number; immutable
 * @start:    first address in the client; immutable
 * @npages:   length in pages; immutable
 * @memfd:    the daemon's descriptor of the region's memfd; immutable,
 *            closed when the last reference goes
 * @name:     the client's name for it; immutable
 * @refs:     references: the slot's list holds one, each user one (atomic)
 * @resident: pages in PAGE_RESIDENT (atomic)
 * @pages:    @npages entries in one allocation; see struct page_entry
 */
struct region {
	struct list_node node;
	struct mm_slot *slot;
	struct uffd_ctx *ctx;
	uint64_t id;
	unsigned long start;
	size_t npages;
	int memfd;
	char name[PROTO_NAME_MAX];
	atomic_uint refs;
	atomic_size_t resident;
	struct page_entry *pages;
};

/*
 * region_create() - a region over @memfd (taken over: closed on failure and
 * at the end) mapped at @start for @npages pages. Pages that hold data in
 * the memfd start RESIDENT, holes NEW.
 * Return: the region with one reference, or NULL with errno set.
 */
struct region *region_create(struct mm_slot *slot, struct uffd_ctx *ctx,
			     unsigned long start, size_t npages, int memfd,
			     const char *name);

void region_get(struct region *r);
/* Drop a reference; the last one frees the region (any thread). */
void region_put(struct region *r);

static inline unsigned long region_end(const struct region *r)
{
	return r->start + (r->npages << PAGE_SHIFT);
}

static inline bool region_contains(const struct region *r, unsigned long a)
{
	return a >= r->start && a < region_end(r);
}

/*
 * region_verify_mapping() - does process @pid map @memfd, shared and
 * writable, at exactly [@start, @start + @len) from offset 0? Read from
 * /proc/PID/maps; this is how the daemon knows a client registers only
 * its own memory. Return: 0, -EPERM if not, -errno if maps is unreadable.
 */
int region_verify_mapping(pid_t pid, unsigned long start, size_t len,
			  int memfd);

/*
 * region_verify_registered() - after UFFDIO_REGISTER through a uffd a
 * client sent: is [@start, @start + @len) of process @pid now registered
 * for MISSING and WP faults ("um" and "uw" in /proc/PID/smaps)? If not,
 * the uffd belongs to another process (one that handed it over), whose
 * memory was registered instead. Return: 0, -EPERM, or -errno.
 */
int region_verify_registered(pid_t pid, unsigned long start, size_t len);

#endif /* UZSWAPD_REGION_H */
