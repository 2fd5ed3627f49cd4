/*
 * region.c - managed regions: creation from a client's memfd, the page
 * state table, reference counting, and the checks that a region is what
 * the client says it is.
 *
 * The state table is one array with an entry per page, from the page
 * provider (lib/common/pagemem.h) rather than the heap: anonymous memory,
 * or a memfd (struct region_index's @tables). It holds no pointer, so that
 * a restarted daemon can take it over whole, and it is sparse: registering
 * a huge region that is never touched costs the daemon next to nothing (a
 * heap table would be populated by memset, or by the daemon's memory
 * lock). Every entry starts NEW (zero); only the entries of pages that are
 * touched, or hold data, are ever written. Walkers of a range (dropping or
 * restoring stored pages, eviction, advice) go by region_next_entry(),
 * which skips the parts of a file-backed table that were never written:
 * reading them would allocate them, and a walk would make the table dense.
 * Pages that hold data when the region is registered (an adopted buffer)
 * are found with lseek(SEEK_DATA/SEEK_HOLE), never by touching the memfd:
 * touching a hole would allocate a zero page and hide the truth from the
 * client.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/uffd/uffd.h"
#include "region.h"
#include "store.h"
#include "uffdctx.h"

/*****************
 * The region index
 *****************/

static unsigned int id_hash(uint64_t id)
{
	return (unsigned int)((id * 0x9e3779b97f4a7c15ull) >>
			      (64 - REGION_INDEX_BITS));
}

void region_index_init(struct region_index *ix)
{
	memset(ix->buckets, 0, sizeof(ix->buckets));
	pthread_mutex_init(&ix->lock, NULL);
	atomic_init(&ix->next_id, 1);
	atomic_init(&ix->resident, 0);
	ix->tables = PAGEMEM_ANON;
}

void region_index_destroy(struct region_index *ix)
{
	free(ix->tallies);
	pthread_mutex_destroy(&ix->lock);
}

void region_index_hand_over(struct region_index *ix)
{
	atomic_store(&ix->handed_over, true);
}

/* Keep the tally of @r, freed after the hand-over. */
static void index_tally(struct region_index *ix, const struct region *r)
{
	struct region_tally *grown;
	size_t cap;

	pthread_mutex_lock(&ix->lock);
	if (ix->nr_tallies == ix->cap_tallies) {
		cap = ix->cap_tallies ? 2 * ix->cap_tallies : 64;
		grown = realloc(ix->tallies, cap * sizeof(*grown));
		if (!grown) {
			ix->tallies_lost = true;
			goto out_unlock;
		}
		ix->tallies = grown;
		ix->cap_tallies = cap;
	}
	ix->tallies[ix->nr_tallies++] = (struct region_tally){
		r->id, atomic_load(&r->stored), atomic_load(&r->pooled),
		atomic_load(&r->compressed_bytes), atomic_load(&r->retained) };
out_unlock:
	pthread_mutex_unlock(&ix->lock);
}

bool region_index_tallies(struct region_index *ix,
			  const struct region_tally **tallies, size_t *n)
{
	bool kept;

	pthread_mutex_lock(&ix->lock);
	*tallies = ix->tallies;
	*n = ix->nr_tallies;
	kept = !ix->tallies_lost;
	pthread_mutex_unlock(&ix->lock);
	return kept;
}

void region_set_tally(struct region *r, const struct region_tally *t)
{
	atomic_store(&r->stored, t->stored);
	atomic_store(&r->pooled, t->pooled);
	atomic_store(&r->compressed_bytes, t->compressed_bytes);
	atomic_store(&r->retained, t->retained);
}

static void index_insert(struct region_index *ix, struct region *r)
{
	unsigned int h = id_hash(r->id);

	pthread_mutex_lock(&ix->lock);
	r->index_next = ix->buckets[h];
	ix->buckets[h] = r;
	pthread_mutex_unlock(&ix->lock);
}

static void index_remove(struct region_index *ix, struct region *r)
{
	struct region **pp;

	pthread_mutex_lock(&ix->lock);
	for (pp = &ix->buckets[id_hash(r->id)]; *pp; pp = &(*pp)->index_next)
		if (*pp == r) {
			*pp = r->index_next;
			break;
		}
	pthread_mutex_unlock(&ix->lock);
}

struct region *region_index_get(struct region_index *ix, uint64_t id)
{
	struct region *r;
	unsigned int refs;

	pthread_mutex_lock(&ix->lock);
	for (r = ix->buckets[id_hash(id)]; r && r->id != id; r = r->index_next)
		;
	if (r) {
		/* a region whose last reference is going stays out */
		refs = atomic_load(&r->refs);
		while (refs && !atomic_compare_exchange_weak(&r->refs, &refs,
							     refs + 1))
			;
		if (!refs)
			r = NULL;
	}
	pthread_mutex_unlock(&ix->lock);
	return r;
}

size_t region_index_resident(struct region_index *ix)
{
	return atomic_load(&ix->resident);
}

/*****************
 * Regions
 *****************/

void region_account(struct region *r, long pages)
{
	pthread_mutex_lock(&r->acct_lock);
	atomic_fetch_add(&r->resident, (size_t)pages);
	if (r->slot_resident) {
		atomic_fetch_add(r->slot_resident, (size_t)pages);
		atomic_fetch_add(&r->index->resident, (size_t)pages);
	}
	pthread_mutex_unlock(&r->acct_lock);
}

void region_attach(struct region *r, atomic_size_t *slot_resident)
{
	size_t n;

	pthread_mutex_lock(&r->acct_lock);
	n = atomic_load(&r->resident);
	r->slot_resident = slot_resident;
	atomic_fetch_add(slot_resident, n);
	atomic_fetch_add(&r->index->resident, n);
	pthread_mutex_unlock(&r->acct_lock);
}

void region_detach(struct region *r)
{
	size_t n;

	atomic_store(&r->detached, true);
	pthread_mutex_lock(&r->acct_lock);
	if (r->slot_resident) {
		n = atomic_load(&r->resident);
		atomic_fetch_sub(r->slot_resident, n);
		r->slot_resident = NULL;
		atomic_fetch_sub(&r->index->resident, n);
	}
	pthread_mutex_unlock(&r->acct_lock);
}

static int mark_resident_pages(struct region *r)
{
	off_t len = (off_t)(r->npages << PAGE_SHIFT);
	off_t off = 0, data, hole;
	size_t i;

	while (off < len) {
		data = lseek(r->memfd, off, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		if (data >= len)
			return 0;
		hole = lseek(r->memfd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > len)
			hole = len;
		for (i = (size_t)data >> PAGE_SHIFT;
		     i < ((size_t)hole + PAGE_SIZE - 1) >> PAGE_SHIFT; i++)
			atomic_store(&r->pages[i].info,
				     page_info(PAGE_RESIDENT, 0, 0));
		region_account(r, (long)((((size_t)hole + PAGE_SIZE - 1) >>
					  PAGE_SHIFT) -
					 ((size_t)data >> PAGE_SHIFT)));
		off = hole;
	}
	return 0;
}

/* The table of region @id, @size bytes: @ix's kind of memory, or its
 * file (made now unless it is a predecessor's, @existing). 0 or -errno. */
static int table_alloc(struct region_index *ix, struct pagemem *table,
		       uint64_t id, size_t size, bool existing)
{
	struct pagemem_src src = { ix->tables, -1 };
	struct stat sb;
	int ret;

	if (ix->files.open) {
		src = (struct pagemem_src){ PAGEMEM_FILE,
			ix->files.open(ix->files.ctx, id, !existing) };
		if (src.fd < 0)
			return src.fd;
		/* a predecessor's table covers its region whole */
		ret = existing && (fstat(src.fd, &sb) < 0 ||
				   (size_t)sb.st_size < size) ? -ESTALE : 0;
		if (ret == 0)
			ret = pagemem_alloc(table, &src, size,
					    "uzswap page states");
		close(src.fd);
		if (ret && !existing && ix->files.remove)
			ix->files.remove(ix->files.ctx, id);
		return ret;
	}
	return pagemem_alloc(table, &src, size, "uzswap page states");
}

/* A region numbered @id, not yet in @ix: its table (see table_alloc())
 * and its fields; @memfd is taken over (closed on failure). */
static struct region *region_new(struct region_index *ix,
				 struct mm_slot *slot, struct uffd_ctx *ctx,
				 struct store *store, unsigned long start,
				 size_t npages, int memfd, const char *name,
				 uint64_t id, bool existing)
{
	struct region *r;
	int ret;

	if (npages > SIZE_MAX / sizeof(*r->pages)) {
		errno = ENOMEM;
		goto out_close;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out_close;
	ret = table_alloc(ix, &r->table, id, npages * sizeof(*r->pages),
			  existing);
	if (ret) {
		errno = -ret;
		goto out_free_region;
	}
	r->id = id;
	r->pages = r->table.base;
	list_init(&r->node);
	list_init(&r->leave_node);
	r->index = ix;
	r->slot = slot;
	r->ctx = ctx;
	r->store = store;
	r->start = start;
	r->npages = npages;
	r->memfd = memfd;
	snprintf(r->name, sizeof(r->name), "%s", name);
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->acct_lock, NULL);
	return r;

out_free_region:
	free(r);
out_close:
	close(memfd);
	return NULL;
}

/* Free what region_new() made of @r, its table's file included. */
static void region_free(struct region *r)
{
	struct region_index *ix = r->index;

	pthread_mutex_destroy(&r->acct_lock);
	if (r->memfd >= 0)
		close(r->memfd);
	pagemem_free(&r->table);
	if (atomic_load(&ix->handed_over) && !atomic_load(&r->unclaimed))
		index_tally(ix, r);
	else if (ix->files.remove)
		ix->files.remove(ix->files.ctx, r->id);
	free(r);
}

struct region *region_create(struct region_index *ix, struct mm_slot *slot,
			     struct uffd_ctx *ctx, struct store *store,
			     unsigned long start, size_t npages, int memfd,
			     const char *name)
{
	uint64_t id = atomic_fetch_add(&ix->next_id, 1);
	struct region *r;
	int ret;

	r = region_new(ix, slot, ctx, store, start, npages, memfd, name, id,
		       false);
	if (!r)
		return NULL;
	ret = mark_resident_pages(r);
	if (ret) {
		region_free(r);
		errno = -ret;
		return NULL;
	}
	if (ctx)
		uffd_ctx_get(ctx);
	index_insert(ix, r);
	return r;
}

struct region *region_adopt(struct region_index *ix, struct mm_slot *slot,
			    struct uffd_ctx *ctx, struct store *store,
			    unsigned long start, size_t npages, int memfd,
			    const char *name, uint64_t id)
{
	uint_fast64_t next = atomic_load(&ix->next_id);
	struct region *r;

	if (!ix->files.open) {
		close(memfd);
		errno = EINVAL;
		return NULL;
	}
	r = region_new(ix, slot, ctx, store, start, npages, memfd, name, id,
		       true);
	if (!r)
		return NULL;
	while (next <= id &&
	       !atomic_compare_exchange_weak(&ix->next_id, &next, id + 1))
		;
	if (ctx)
		uffd_ctx_get(ctx);
	index_insert(ix, r);
	return r;
}

size_t region_seek_entry(struct region *r, size_t i, size_t end,
			 size_t *span)
{
	const size_t size = sizeof(*r->pages);
	size_t data, data_end;

	if (i >= end)
		return end;
	data = pagemem_next_data(&r->table, i * size, &data_end) / size;
	data_end = (data_end + size - 1) / size;
	*span = data_end < end ? data_end : end;
	return data < end ? data : end;
}

void region_set_unclaimed(struct region *r)
{
	atomic_store(&r->unclaimed, true);
}

void region_set_owner(struct region *r, struct mm_slot *slot,
		      struct uffd_ctx *ctx)
{
	r->slot = slot;
	r->ctx = ctx;
	uffd_ctx_get(ctx);
	atomic_store(&r->unclaimed, false);
}

void region_get(struct region *r)
{
	atomic_fetch_add(&r->refs, 1);
}

void region_drop_copy(struct region *r, size_t idx, uint32_t info,
		      uint64_t data)
{
	struct store_key key = { r->id, (uint32_t)idx };

	region_unpool(r, store_drop(r->store, &key, info, data));
	atomic_fetch_sub(&r->stored, 1);
}

size_t region_drop_retained(struct region *r, size_t idx, uint64_t data)
{
	struct store_key key = { r->id, (uint32_t)idx };

	atomic_fetch_sub(&r->retained, 1);
	return store_drop_retained(r->store, &key, data);
}

void region_unclaim(struct region *r, size_t idx, uint32_t info,
		    bool changed)
{
	struct page_entry *p = &r->pages[idx];
	uint64_t data = p->data;

	if (!changed || !(info & PAGE_RETAINED)) {
		atomic_store(&p->info, info);
		return;
	}
	atomic_store(&p->info, info & ~PAGE_RETAIN_MASK);
	region_drop_retained(r, idx, data);
}

size_t region_give_up_retained(struct region *r, size_t idx, int stamp)
{
	struct page_entry *p = &r->pages[idx];
	uint32_t info = atomic_load(&p->info);
	uint64_t data;

	if (page_state(info) != PAGE_RESIDENT || !(info & PAGE_RETAINED) ||
	    (stamp >= 0 && page_stamp(info) != stamp))
		return 0;
	/* read before the flag goes: then an evictor may store anew */
	data = p->data;
	if (!page_cas(p, &info, info & ~PAGE_RETAIN_MASK))
		return 0;
	return region_drop_retained(r, idx, data);
}

void region_drop_stored(struct region *r, size_t first, size_t end)
{
	size_t i, span = 0;

	for (i = first; (atomic_load(&r->stored) ||
			 atomic_load(&r->retained)) &&
	     (i = region_next_entry(r, i, end, &span)) < end; i++) {
		struct page_entry *p = &r->pages[i];
		uint32_t info = atomic_load(&p->info);
		uint64_t data;

		if (info & PAGE_RETAINED) {
			region_give_up_retained(r, i, -1);
			continue;
		}
		/* UNPUNCHED: its evictor may still take it back */
		if (!page_is_stored(page_state(info)) ||
		    (info & PAGE_UNPUNCHED) ||
		    !page_cas(p, &info, page_loading(info)))
			continue;
		/* the entry stops naming the copy before it is freed */
		data = p->data;
		atomic_store(&p->info, page_info(PAGE_NEW, 0, 0));
		region_drop_copy(r, i, info, data);
	}
}

/* Discard page @i of @r: 0, -EAGAIN (another thread holds it) or the
 * punch's -errno. */
static int discard_page(struct region *r, size_t i)
{
	struct page_entry *p = &r->pages[i];
	uint32_t info = atomic_load(&p->info);
	uint64_t data = p->data;
	int ret;

	switch (page_state(info)) {
	case PAGE_NEW:
		return 0;
	case PAGE_LOST:
		return page_cas(p, &info, page_info(PAGE_NEW, 0, 0)) ? 0
								   : -EAGAIN;
	case PAGE_RESIDENT:
		if (!page_cas(p, &info,
			      (info & ~PAGE_STATE_MASK) | PAGE_EVICTING))
			return -EAGAIN;
		ret = memfd_punch(r->memfd, (off_t)(i << PAGE_SHIFT),
				  PAGE_SIZE);
		if (ret) {
			atomic_store(&p->info, info);
			return ret;
		}
		atomic_store(&p->info, page_info(PAGE_NEW, 0, 0));
		if (info & PAGE_RETAINED)
			region_drop_retained(r, i, data);
		region_account(r, -1);
		return 0;
	case PAGE_COMPRESSED:
	case PAGE_SAME:
	case PAGE_WRITTEN_BACK:
		/* UNPUNCHED: its evictor still holds it */
		if ((info & PAGE_UNPUNCHED) ||
		    !page_cas(p, &info, page_loading(info)))
			return -EAGAIN;
		atomic_store(&p->info, page_info(PAGE_NEW, 0, 0));
		region_drop_copy(r, i, info, data);
		return 0;
	default:
		return -EAGAIN;
	}
}

int region_discard(struct region *r, size_t first, size_t end)
{
	size_t i, span = 0;
	int ret;

	for (i = first; (i = region_next_entry(r, i, end, &span)) < end;) {
		ret = discard_page(r, i);
		if (ret == -EAGAIN) {
			sched_yield();	/* an evictor or a load: a moment */
			continue;
		}
		if (ret)
			return ret;
		i++;
	}
	return 0;
}

void region_put(struct region *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	index_remove(r->index, r);
	if (!atomic_load(&r->index->handed_over) ||
	    atomic_load(&r->unclaimed))
		region_drop_stored(r, 0, r->npages);
	if (r->ctx)
		uffd_ctx_put(r->ctx);
	region_free(r);
}

/* One line of /proc/PID/maps; returns whether it parsed. */
struct maps_line {
	unsigned long start, end, offset, inode;
	unsigned int major, minor;
	char perms[5];
};

static bool parse_maps_line(const char *s, struct maps_line *l)
{
	return sscanf(s, "%lx-%lx %4s %lx %x:%x %lu", &l->start, &l->end,
		      l->perms, &l->offset, &l->major, &l->minor,
		      &l->inode) == 7;
}

/* Does a smaps "VmFlags:" line hold the two-letter flag @flag? */
static bool vmflags_has(const char *line, const char *flag)
{
	const char *p = line + strlen("VmFlags:");

	while ((p = strstr(p, flag))) {
		if (p[-1] == ' ' && (p[2] == ' ' || p[2] == '\n' || !p[2]))
			return true;
		p += 2;
	}
	return false;
}

int region_verify_registered(pid_t pid, unsigned long start, size_t len)
{
	unsigned long want = start, end = start + len;
	struct maps_line l;
	char path[64], line[512];
	bool in_range = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* stop at the end of the range: smaps walks each mapping's pages */
	while (want < end && fgets(line, sizeof(line), f)) {
		if (parse_maps_line(line, &l)) {
			in_range = l.start <= want && l.end > want;
			if (!in_range && l.start > want)
				break;
			continue;
		}
		if (!in_range || strncmp(line, "VmFlags:", 8))
			continue;
		if (!vmflags_has(line, "um") || !vmflags_has(line, "uw"))
			break;
		want = l.end;
		in_range = false;
	}
	fclose(f);
	return want >= end ? 0 : -EPERM;
}

int region_verify_mapping(pid_t pid, unsigned long start, size_t len,
			  int memfd)
{
	unsigned long want = start, end = start + len;
	struct maps_line l;
	char path[64], line[512];
	struct stat st;
	FILE *f;

	if (fstat(memfd, &st) < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (want < end && fgets(line, sizeof(line), f)) {
		if (!parse_maps_line(line, &l) || l.end <= want)
			continue;
		if (l.start != want || l.inode != st.st_ino ||
		    l.major != major(st.st_dev) ||
		    l.minor != minor(st.st_dev) ||
		    l.offset != want - start || strncmp(l.perms, "rw", 2) ||
		    l.perms[3] != 's')
			break;
		want = l.end;
	}
	fclose(f);
	return want >= end ? 0 : -EPERM;
}
