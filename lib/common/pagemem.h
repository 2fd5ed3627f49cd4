/*
 * pagemem.h - the page provider: zero-filled, page-aligned tables that
 * cost nothing where they are never touched, for state that may one day
 * outlive the process (DESIGN.md "Restart without loss").
 *
 * Private to uzswap.
 *
 * A table is its own mapping of anonymous memory (MAP_NORESERVE), never
 * heap memory: a page of it takes RAM only once written. Reading an
 * untouched page maps the kernel's shared zero page and allocates
 * nothing, so a walker may read every entry of a huge table; only the
 * entries it writes cost memory. A daemon that locks its memory must lock
 * these mappings on fault only (mlockall() with MCL_ONFAULT, before they
 * are made): populating them would cost what the table spans.
 *
 * A pool that grows and shrinks reserves its largest extent once
 * (pagemem_reserve(): address space, no memory) and makes parts of it
 * usable and gives them back as it goes (pagemem_commit(),
 * pagemem_decommit()), so that it never moves.
 *
 * Nothing stored in a table may be a pointer: the next step backs tables
 * with a memfd that a restarted daemon maps again at another address.
 * @name is that memfd's name to be; today it names the mapping in
 * /proc/PID/maps ("[anon:NAME]", where the kernel supports it).
 *
 * Errors: 0 or -errno. Every call that asks the system for memory first
 * asks failpoint_hit() (failpoint.h). Threads: tables are plain memory;
 * the calls keep no shared state; the caller keeps two threads from
 * committing or decommitting the same part at once.
 */
#ifndef UZSWAP_PAGEMEM_H
#define UZSWAP_PAGEMEM_H

#include <stddef.h>

/*
 * struct pagemem - one table
 * @base: its first byte, page-aligned; NULL when none is held
 * @len:  bytes mapped: the size asked for, rounded up to whole pages
 * @name: what it is for, as given (a string that outlives it)
 */
struct pagemem {
	void *base;
	size_t len;
	const char *name;
};

/*
 * pagemem_alloc() - a zero-filled table of at least @size bytes into @m
 * @name: what the mapping is for (printable, no brackets), as "uzswap
 *        page states"; kept, not copied
 * Return: 0; -EINVAL if @size is 0; -ENOMEM.
 */
int pagemem_alloc(struct pagemem *m, size_t size, const char *name);

/*
 * pagemem_reserve() - address space for @size bytes (rounded up to pages)
 * into @m, none of it usable until committed
 * Return: as pagemem_alloc().
 */
int pagemem_reserve(struct pagemem *m, size_t size, const char *name);

/* Make [@off, @off + @len) of @m (page-aligned) usable: it reads zero
 * where nothing was written since it was reserved or last decommitted.
 * Return: 0 or -ENOMEM. */
int pagemem_commit(struct pagemem *m, size_t off, size_t len);

/* Give the memory of [@off, @off + @len) of @m (page-aligned) back; the
 * part is unusable until committed again. Return: 0 or -ENOMEM. */
int pagemem_decommit(struct pagemem *m, size_t off, size_t len);

/* Give all of @m back, committed or not (nothing if it holds none); @m
 * holds none after. */
void pagemem_free(struct pagemem *m);

#endif /* UZSWAP_PAGEMEM_H */
