/*
 * region.h - a managed region as uzswapd sees it: a client's memfd mapped
 * at [start, start + npages pages) in the client, registered on one of its
 * userfaultfds, with a per-page state table.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_REGION_H
#define UZSWAPD_REGION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/common/list.h"
#include "lib/common/pagemem.h"
#include "lib/proto/proto.h"
#include "pagestate.h"

#define REGION_INDEX_BITS 12

struct mm_slot;
struct store;
struct uffd_ctx;
struct region;

/*
 * struct region_files - where a region index's page tables live when they
 * must outlive the daemon (the state directory): a file per region, named
 * by the region's id
 * @open:   the file of region @id, made (empty) when @create, else as a
 *          predecessor left it: a descriptor, or -errno
 * @remove: the region is gone for good: its file goes too
 * @ctx:    passed to both; NULL @open: tables are not files
 */
struct region_files {
	int (*open)(void *ctx, uint64_t id, bool create);
	void (*remove)(void *ctx, uint64_t id);
	void *ctx;
};

/*
 * struct region_index - every region of the daemon, by id (the key the
 * store and the LRU name pages by), and what they hold resident
 * @lock:     protects @buckets
 * @buckets:  chains of struct region through @index_next, by id
 * @next_id:  the id of the next region (atomic)
 * @resident: pages RESIDENT or EVICTING over every attached region (see
 *            region_account(); atomic)
 * @tables:   what the page-state tables of its regions are made of:
 *            PAGEMEM_ANON or PAGEMEM_MEMFD (a memfd each), unless @files
 *            says; set before the first region_create(), immutable after
 * @files:    where the tables live when they must outlive the daemon;
 *            same rule
 * @handed_over: the daemon hands over to a successor: a region freed from
 *            now on keeps its stored pages and its table file, and leaves
 *            its tally (atomic)
 * @tallies, @nr_tallies, @cap_tallies: the tallies of the regions freed
 *            since the hand-over, for the successor; @lock
 * @tallies_lost: one could not be kept (out of memory); @lock
 */
struct region_index {
	pthread_mutex_t lock;
	struct region *buckets[1u << REGION_INDEX_BITS];
	atomic_uint_fast64_t next_id;
	atomic_size_t resident;
	enum pagemem_kind tables;
	struct region_files files;
	atomic_bool handed_over;
	struct region_tally *tallies;
	size_t nr_tallies, cap_tallies;
	bool tallies_lost;
};

/*
 * struct region_tally - what a region handed over holds, as its counters
 * say (struct region), so that a successor need not count it page by page
 */
struct region_tally {
	uint64_t id;
	uint64_t stored;
	uint64_t pooled;
	uint64_t compressed_bytes;
	uint64_t retained;
};

/* An empty index whose regions' tables are anonymous memory. */
void region_index_init(struct region_index *ix);
/* Every region must have been freed. */
void region_index_destroy(struct region_index *ix);

/* The regions outlive this daemon: those freed from now on leave their
 * stored pages and their table files (@files) to a successor. Any
 * thread. */
void region_index_hand_over(struct region_index *ix);

/* The tallies of every region freed since region_index_hand_over(), in
 * *@tallies (@ix's, valid until region_index_destroy()); false if one
 * could not be kept. Call once every region is freed. */
bool region_index_tallies(struct region_index *ix,
			  const struct region_tally **tallies, size_t *n);

/* Region @r, just adopted, holds what @t says (its counters set). */
void region_set_tally(struct region *r, const struct region_tally *t);

/* The region numbered @id with a reference taken, or NULL if there is none
 * or its last reference is going. O(1) average. Any thread. */
struct region *region_index_get(struct region_index *ix, uint64_t id);

/* Pages RESIDENT or EVICTING over every attached region. */
size_t region_index_resident(struct region_index *ix);

/*
 * struct region_client - what a region is in its client: REGISTER's
 * memfd number (checked with kcmp) and flags (PROTO_REGION_*), and the
 * memfd's identity
 */
struct region_client {
	int memfd;
	uint32_t flags;
	dev_t dev;
	ino_t ino;
};

/*
 * struct region - a registered managed region
 * @node:     entry in the slot's region list (protected by slot->lock);
 *            once taken out of it, of the list of the work tearing it
 *            down (that work's only)
 * @leave_node: entry in the slot's leaving list while a teardown gives it
 *            back to its client (mm_slot_give_back_region()), so that the
 *            state directory still names it; slot->lock
 * @index:    the daemon's region index it is in; immutable
 * @index_next: chain of @index; protected by index->lock
 * @slot:     the owning process; immutable once the region joins it (a
 *            fork's copy has none until its child claims it:
 *            region_set_owner())
 * @ctx:      the uffd the range is registered on; as @slot, referenced
 * @store:    where its evicted pages are; immutable
 * @id:       daemon-wide region number; immutable
 * @start:    first address in the client; immutable
 * @npages:   length in pages; immutable
 * @memfd:    the daemon's descriptor of the region's memfd; immutable,
 *            closed when the last reference goes
 * @name:     the client's name for it; immutable
 * @client:   how the client names it, for the state directory's
 *            superblock (statedir_note_region()); set before it joins
 *            its slot, immutable after
 * @refs:     references: the slot's list holds one, each user one (atomic)
 * @acct_lock: makes a change of @resident and of the slot's and the
 *            daemon's totals one step (region_account()), so that
 *            region_detach() takes exactly what the region added
 * @slot_resident: its slot's resident total, which it counts in while
 *            attached (NULL: not attached); @acct_lock
 * @unclaimed: a fork's copy no child has claimed (fork.h): its stored
 *            pages go with it even in a handover (atomic)
 * @detached: set (for good) when it leaves its slot, and while a drain
 *            holds it (mm_slot_hold_region()): no eviction may start on
 *            it then (atomic)
 * @resident: pages RESIDENT or EVICTING; @acct_lock (read atomically)
 * @stored:   pages COMPRESSED, SAME, WRITTEN_BACK or LOADING (atomic)
 * @compressed_bytes: pool bytes of its COMPRESSED pages (atomic)
 * @pooled:   its COMPRESSED pages, whose objects are in the pool (not
 *            same-filled, not written back): what @compressed_bytes holds
 *            (atomic)
 * @retained: its RESIDENT pages that keep their pool object
 *            (PAGE_RETAINED; atomic)
 * @table:    the provider's memory @pages lives in: sparse, so that
 *            entries of pages never touched cost nothing; immutable
 * @pages:    @npages entries (@table's base); see struct page_entry.
 *            A walker over a range reads only the entries
 *            region_next_entry() hands it: in a file-backed table, reading
 *            an untouched part would allocate it
 */
struct region {
	struct list_node node;
	struct list_node leave_node;
	struct region_index *index;
	struct region *index_next;
	struct mm_slot *slot;
	struct uffd_ctx *ctx;
	struct store *store;
	uint64_t id;
	unsigned long start;
	size_t npages;
	int memfd;
	char name[PROTO_NAME_MAX];
	struct region_client client;
	atomic_uint refs;
	pthread_mutex_t acct_lock;
	atomic_size_t *slot_resident;
	atomic_bool unclaimed;
	atomic_bool detached;
	atomic_size_t resident;
	atomic_size_t stored;
	atomic_size_t compressed_bytes;
	atomic_size_t pooled;
	atomic_size_t retained;
	struct pagemem table;
	struct page_entry *pages;
};

/*
 * region_create() - a region over @memfd (taken over: closed on failure and
 * at the end) mapped at @start for @npages pages, numbered and found in
 * @ix until its last reference goes. Pages that hold data in the memfd
 * start RESIDENT, holes NEW. Takes a reference on @ctx.
 * Return: the region with one reference, or NULL with errno set.
 */
struct region *region_create(struct region_index *ix, struct mm_slot *slot,
			     struct uffd_ctx *ctx,
			     struct store *store, unsigned long start,
			     size_t npages, int memfd, const char *name);

/*
 * region_adopt() - a region a dead daemon left, numbered @id, over @memfd
 * (taken over as by region_create()), its table the file it left (@ix's
 * files). Its entries are as the predecessor left them: recover it
 * (recover.h) before anything uses it. Takes a reference on @ctx.
 * Return: the region with one reference, or NULL with errno set.
 */
struct region *region_adopt(struct region_index *ix, struct mm_slot *slot,
			    struct uffd_ctx *ctx, struct store *store,
			    unsigned long start, size_t npages, int memfd,
			    const char *name, uint64_t id);

/*
 * region_seek_entry() - the first entry of @r at or after @i, below @end,
 * that may be anything but NEW (one whose part of the table may hold
 * data), or @end if none; *@span is set to the end of the run of such
 * entries it starts (at most @end). Entries outside these runs are NEW
 * and must not be read. Cost: two lseek() calls for a file-backed table,
 * nothing for an anonymous one (all of it is one run).
 */
size_t region_seek_entry(struct region *r, size_t i, size_t end,
			 size_t *span);

/*
 * region_next_entry() - the next entry of [@i, @end) of @r a walker may
 * read: @i itself inside the run *@span ends, else region_seek_entry().
 * A walk:
 *	size_t span = 0;
 *	for (i = first; (i = region_next_entry(r, i, end, &span)) < end; i++)
 */
static inline size_t region_next_entry(struct region *r, size_t i,
				       size_t end, size_t *span)
{
	return i < *span ? i : region_seek_entry(r, i, end, span);
}

/*
 * region_entries_near() - how many entries from @i, at most @n, a walker
 * that may read entry @i may read too without region_seek_entry(): those
 * of @i's page of the table (a page of a file-backed table is there or
 * not as a whole). Cost: nothing.
 */
static inline size_t region_entries_near(const struct region *r, size_t i,
					 size_t n)
{
	const size_t per_page = PAGE_SIZE / sizeof(struct page_entry);
	size_t end = (i / per_page + 1) * per_page;

	if (end > r->npages)
		end = r->npages;
	return end - i < n ? end - i : n;
}

/* @r, made with no slot and no uffd, is a fork's copy waiting for its
 * child (see @unclaimed). */
void region_set_unclaimed(struct region *r);

/* The child claimed fork copy @r: it belongs to @slot and @ctx (a
 * reference taken) from now on, before it joins @slot. */
void region_set_owner(struct region *r, struct mm_slot *slot,
		      struct uffd_ctx *ctx);

void region_get(struct region *r);
/* Drop a reference; the last one drops the pages still stored (the client
 * is gone or unregistered them after restoring; not in a handover:
 * region_index_hand_over()) and frees the region. Any
 * thread; it costs a look at every page when some are still stored, so
 * the loop thread never drops the last reference of a stored region. */
void region_put(struct region *r);

/* A stored copy of page @idx of @r (@info and @data, as its entry
 * said), which the entry no longer names: the store lets it go (frees
 * it unless other pages share it) and @r no longer counts it. Any
 * thread. */
void region_drop_copy(struct region *r, size_t idx, uint32_t info,
		      uint64_t data);

/* The copy page @idx of @r kept (PAGE_RETAINED) as @data, which its
 * entry no longer names: the store lets it go and @r no longer counts
 * it. Returns its pool bytes. Any thread. */
size_t region_drop_retained(struct region *r, size_t idx, uint64_t data);

/* Let go of page @idx of @r, a RESIDENT page claimed (as EVICTING) when
 * it was @info: RESIDENT again; if it kept its stored copy and @changed
 * (its protection is lifted, or a hole was found where it was), no
 * longer: the flag goes, then the copy. Any thread. */
void region_unclaim(struct region *r, size_t idx, uint32_t info,
		    bool changed);

/* If page @idx of @r is RESIDENT and keeps its copy (and carries LRU
 * stamp @stamp, unless it is -1: the retention queued then), it no longer
 * does: the flag goes, then the copy. Returns the pool bytes freed (0: it
 * kept none, not that one, or another thread holds it). Any thread. */
size_t region_give_up_retained(struct region *r, size_t idx, int stamp);

/*
 * region_drop_stored() - forget the stored pages of @r in [@first, @end)
 * (its process is gone): each goes NEW; a resident page's retained copy
 * goes too. Pages another thread holds (LOADING, EVICTING, or stored but
 * not yet punched by their evictor) are left to the last region_put().
 * Cost: a look at each page whose entry may have been written
 * (region_next_entry()), a store_drop() per stored one. Any thread.
 */
void region_drop_stored(struct region *r, size_t first, size_t end);

/*
 * region_discard() - drop what pages [@first, @end) of @r hold (a client's
 * discard: MADV_DONTNEED for a managed region): each goes NEW, its
 * stored or retained copy let go and its data punched out of the memfd,
 * so that it reads zeros, never an older copy. Pages other threads hold
 * are waited for. Cost: a look at each page whose entry may have been
 * written, a punch per resident one. Any thread but the loop's.
 * Return: 0, or -errno if a punch failed (that page stays RESIDENT).
 */
int region_discard(struct region *r, size_t first, size_t end);

/* @pages (negative: fewer) more pages of @r are RESIDENT or EVICTING:
 * counted in @r, and in its slot's and the daemon's totals while @r is
 * attached (from mm_slot_add_region() to region_detach()). Any thread. */
void region_account(struct region *r, long pages);

/* Take @r's resident pages out of its slot's and the daemon's totals, for
 * good: it is leaving its slot. */
void region_detach(struct region *r);

/* Count @r's resident pages in its slot's total (@slot_resident) and the
 * daemon's. */
void region_attach(struct region *r, atomic_size_t *slot_resident);

/* A page of @r whose object took @bytes of the pool left it (0: it had
 * none there: same-filled or written back). */
static inline void region_unpool(struct region *r, size_t bytes)
{
	if (!bytes)
		return;
	atomic_fetch_sub(&r->compressed_bytes, bytes);
	atomic_fetch_sub(&r->pooled, 1);
}

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
