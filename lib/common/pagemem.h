/*
 * pagemem.h - the page provider: zero-filled, page-aligned tables that
 * cost nothing where they are never touched, for state that may outlive
 * the process (DESIGN.md "Restart without loss").
 *
 * Private to uzswap.
 *
 * A table is its own mapping, never heap memory, of one of three kinds
 * (struct pagemem_src):
 * - anonymous memory (PAGEMEM_ANON, MAP_PRIVATE | MAP_NORESERVE): gone
 *   with the process;
 * - a new memfd the table creates (PAGEMEM_MEMFD), mapped MAP_SHARED: its
 *   descriptor (pagemem_fd()) can be handed to a successor;
 * - a file the caller gives (PAGEMEM_FILE: a file in a state directory, or
 *   a descriptor back from systemd's fd store), mapped MAP_SHARED with
 *   what it holds: this is how a restarted daemon maps its tables again,
 *   at whatever address, with exactly the contents written before.
 * A file is sparse: it grows (ftruncate()) as parts are committed, and
 * decommitting punches holes in it (fallocate(PUNCH_HOLE | KEEP_SIZE)),
 * which gives their memory back.
 *
 * A page of a table takes memory only once written, with one difference
 * between the kinds that walkers must respect: reading an untouched page
 * of an anonymous table maps the kernel's shared zero page and allocates
 * nothing, but reading a hole of a shared file mapping (shmem, tmpfs)
 * allocates a page. A walker of a huge sparse table would make it dense:
 * walkers read only the parts pagemem_next_data() names. A daemon that
 * locks its memory must lock these mappings on fault only (mlockall()
 * with MCL_ONFAULT, before they are made): populating them would cost
 * what the table spans.
 *
 * A pool that grows and shrinks reserves its largest extent once
 * (pagemem_reserve(): address space, no memory) and makes parts of it
 * usable and gives them back as it goes (pagemem_commit(),
 * pagemem_decommit()), so that it never moves.
 *
 * Nothing stored in a table may be a pointer: a restarted daemon maps a
 * file-backed table again at another address.
 *
 * Errors: 0 or -errno. Every call that asks the system for memory or space
 * (mmap(), mprotect() of new parts, memfd_create(), ftruncate()) first asks
 * failpoint_hit() (failpoint.h). Threads: tables are plain memory; the
 * caller keeps two threads from committing or decommitting the same part
 * at once (commits of different parts may run together).
 */
#ifndef UZSWAP_PAGEMEM_H
#define UZSWAP_PAGEMEM_H

#include <pthread.h>
#include <stddef.h>

enum pagemem_kind {
	PAGEMEM_ANON = 0,	/* anonymous private memory */
	PAGEMEM_MEMFD,		/* a new memfd, named after the table */
	PAGEMEM_FILE,		/* the caller's file, contents kept */
};

/*
 * struct pagemem_src - where a table's memory comes from
 * @kind: enum pagemem_kind
 * @fd:   PAGEMEM_FILE: the file, open read-write; the table keeps a
 *        duplicate, so @fd stays the caller's. Ignored otherwise.
 */
struct pagemem_src {
	enum pagemem_kind kind;
	int fd;
};

/*
 * struct pagemem - one table
 * @base: its first byte, page-aligned; NULL when none is held; immutable
 * @len:  bytes mapped: the size asked for, rounded up to whole pages;
 *        immutable
 * @name: what it is for, as given (a string that outlives it); immutable
 * @fd:   the file behind it (the table's own descriptor), -1 for anonymous
 *        memory; immutable
 * @grow_lock: makes "is the file long enough? else grow it" one step, so
 *        that two commits never shrink each other's part
 */
struct pagemem {
	void *base;
	size_t len;
	const char *name;
	int fd;
	pthread_mutex_t grow_lock;
};

/*
 * pagemem_alloc() - a table of at least @size bytes into @m, all of it
 * usable: zero-filled, or what @src's file holds
 * @src:  where its memory comes from; NULL for anonymous memory
 * @name: what the mapping is for (printable, no brackets), as "uzswap
 *        page states"; kept, not copied; names a new memfd too
 * Return: 0; -EINVAL if @size is 0 or @src is not usable; -ENOMEM; or the
 * -errno of the file's creation, duplication or growth.
 */
int pagemem_alloc(struct pagemem *m, const struct pagemem_src *src,
		  size_t size, const char *name);

/*
 * pagemem_reserve() - address space for @size bytes (rounded up to pages)
 * into @m, none of it usable until committed; a file is not grown yet
 * Return: as pagemem_alloc().
 */
int pagemem_reserve(struct pagemem *m, const struct pagemem_src *src,
		    size_t size, const char *name);

/* Make [@off, @off + @len) of @m (page-aligned) usable: it reads zero
 * where nothing was written since the table (or its file) was made, or
 * since it was last decommitted; a file grows to cover it. Return: 0,
 * -ENOMEM, or the -errno of the file's growth. */
int pagemem_commit(struct pagemem *m, size_t off, size_t len);

/* Give the memory of [@off, @off + @len) of @m (page-aligned) back (a
 * file's part becomes a hole); the part is unusable until committed
 * again. On failure the part stays usable. Return: 0, -ENOMEM, or the
 * -errno of the punch or of mprotect(). */
int pagemem_decommit(struct pagemem *m, size_t off, size_t len);

/*
 * pagemem_unmap_pages() - a file table's pages, out of this process's page
 * tables (and unlocked, if mlockall() had locked them): the file keeps
 * them, a touch maps them again. Tearing a mapping down costs a few
 * hundred nanoseconds per mapped page, on a VM more; done while the
 * process still works, its exit need not. Any thread, any time: only
 * the mappings change, never what they show. Return: 0; -EINVAL for an
 * anonymous table (its pages would be lost).
 */
int pagemem_unmap_pages(struct pagemem *m);

/*
 * pagemem_next_data() - the next part of @m at or after @off that a walker
 * may read: it returns the part's start and sets *@end to its end (both
 * at most @m->len; the start is @m->len when there is none). All of an
 * anonymous table may be read: [@off, @m->len). In a file only the parts
 * that hold data (lseek(SEEK_DATA/SEEK_HOLE), whole pages) may: the rest
 * are holes, which read as zeros without being read. @end may be NULL:
 * then only the start is looked for. Cost: two lseek() calls for a file
 * (one without @end), none otherwise; on tmpfs SEEK_HOLE walks every page
 * of the part it ends, so a caller that only asks whether a range holds
 * data passes no @end (a walk over each segment of a dense file would
 * otherwise be quadratic).
 */
size_t pagemem_next_data(const struct pagemem *m, size_t off, size_t *end);

/* The descriptor of @m's file (to hand over; dup() it to keep it), -1 if
 * @m is anonymous memory. */
static inline int pagemem_fd(const struct pagemem *m)
{
	return m->fd;
}

/* Give all of @m back, committed or not, and close its descriptor
 * (nothing if it holds none); @m holds none after. A file's contents
 * stay in the file for whoever else holds it. */
void pagemem_free(struct pagemem *m);

#endif /* UZSWAP_PAGEMEM_H */
