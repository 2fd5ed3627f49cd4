/*
 * z3fold.h - the z3fold compressed-object allocator (user-space port).
 *
 * This header is private to uzswap: the daemon, its tests and its
 * benchmarks include it; it is never installed.
 *
 * A pool packs up to three objects (FIRST, MIDDLE, LAST buddies) into each
 * 4 KiB pool page, or one object that is too big to share into a HEADLESS
 * page. Objects are named by opaque handles; z3fold_map() turns a handle
 * into an address for as long as the object stays mapped.
 *
 * Errors: int-returning calls return 0 or -errno. Invalid handles (freed,
 * never allocated, stale after reuse) are detected, counted in
 * z3fold_stats.invalid_ops and reported on stderr; they never touch
 * another object.
 *
 * Threads: every call is safe from any thread. The evict handler is called
 * without any pool lock held and may call z3fold_free(), z3fold_map() and
 * z3fold_unmap() (it must free the handle it evicts, see
 * z3fold_reclaim_page()).
 */
#ifndef UZSWAP_Z3FOLD_H
#define UZSWAP_Z3FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/pagemem.h"

#define Z3FOLD_PAGE_SIZE 4096u
/* Largest object that shares a page; bigger ones get a HEADLESS page. */
#define Z3FOLD_MAX_SHARED_SIZE (Z3FOLD_PAGE_SIZE - 2 * 64u)

struct z3fold_pool;

/*
 * struct z3fold_ops - user callbacks of a pool; each gets the @priv pointer
 * given to z3fold_create_pool() (the kernel's zpool keeps its owner the
 * same way), so that a pool's user is never a file-scope singleton
 * @evict: called by z3fold_reclaim_page() for each object of the page being
 *         reclaimed. Returns 0 after it has stored the object elsewhere and
 *         called z3fold_free() on @handle; non-zero if it cannot evict.
 */
struct z3fold_ops {
	int (*evict)(struct z3fold_pool *pool, unsigned long handle,
		     void *priv);
};

/* Counters of a pool; a snapshot, each field read atomically. */
struct z3fold_stats {
	uint64_t pages;           /* pool pages in use (all kinds) */
	uint64_t headless_pages;  /* of which HEADLESS */
	uint64_t objects;         /* objects currently allocated */
	uint64_t payload_bytes;   /* sum of the sizes asked of z3fold_alloc() */
	uint64_t reserved_pages;  /* pages taken from the OS (in use + cached) */
	uint64_t allocs;          /* successful z3fold_alloc() calls */
	uint64_t frees;           /* successful z3fold_free() calls */
	uint64_t compactions;     /* middle buddies moved */
	uint64_t reclaimed_pages; /* pages freed by reclaim from the bottom */
	uint64_t migrated_pages;  /* isolated pages freed (objects moved) */
	uint64_t evict_failures;  /* evict handler calls that returned non-zero */
	uint64_t invalid_ops;     /* invalid handles passed to free/map/unmap */
};

/*
 * struct z3fold_mem - what a pool's pages, its side table and its owner
 * words are made of (pagemem.h): anonymous, a new memfd each, or the
 * caller's files. All zero is anonymous memory for all three. A pool made
 * on files that already hold a pool is that pool again, to be recovered
 * (below) before any other call; an empty @owners file (a pool written
 * before owner words existed) reads as zero words.
 */
struct z3fold_mem {
	struct pagemem_src pages;
	struct pagemem_src frames;
	struct pagemem_src owners;
};

/*
 * z3fold_create_pool() - create a pool
 * @name: pool name, copied; used in diagnostics
 * @mem:  what its memory is made of; NULL: anonymous memory
 * @ops:  callbacks (may be NULL: then z3fold_reclaim_page() returns -EINVAL)
 * @priv: passed to every callback; the pool never dereferences it
 *
 * The pool reserves address space for as many pages as the machine has
 * RAM, and takes pages from the OS in batches as it grows. A pool whose
 * pages may outlive the process (not anonymous) never moves an object it
 * holds within its page (no z3fold_compact()): that move rewrites an
 * object a successor may read. Migration (z3fold_isolate()) moves none in
 * place and works on any pool.
 * Return: the pool, or NULL with errno set.
 */
struct z3fold_pool *z3fold_create_pool(const char *name,
				       const struct z3fold_mem *mem,
				       const struct z3fold_ops *ops, void *priv);

/*
 * Recovery. A pool made on the files of a pool whose owner died is rebuilt
 * from what the owner's records still name, as in a crash any object may
 * have been half allocated or half freed:
 *   z3fold_recover_begin(pool);
 *   z3fold_recover_ref(pool, handle)   for every handle a record names;
 *   z3fold_recover_end(pool);
 * Every object no record named is freed, the lists and counters are
 * rebuilt, and the pool is usable. A handle that names no live object of
 * its generation (never published, or a record gone wrong) is refused:
 * its page must not be served from it. The owner's writes follow the rule
 * that makes this sound: an object's header fields are written only while
 * no record names it. No other call may run meanwhile, but
 * z3fold_set_owner() and z3fold_owner() (a named object's word may be
 * rewritten: one a crash tore, or one of a pool whose owners file is new).
 */

/* Start recovering @pool (made on existing files). Return: 0 or -ENOMEM. */
int z3fold_recover_begin(struct z3fold_pool *pool);

/* A record names @handle. Return: the object's size, or -ESTALE if
 * @handle names no object the files hold (then nothing is kept for it). */
long z3fold_recover_ref(struct z3fold_pool *pool, unsigned long handle);

/* Free every object no z3fold_recover_ref() named; rebuild the lists and
 * the counters. O(pages of the files). */
void z3fold_recover_end(struct z3fold_pool *pool);

/*
 * The image of a pool at rest. A pool on files holds its objects, their
 * headers and its lists' links there; what it keeps only in memory (list
 * heads, segments, counters) is its image. An owner that stops with no
 * call in flight saves the image; a successor that makes a pool on the
 * same files loads it instead of recovering: O(segments), not O(pages).
 * Only an image saved at rest is a pool's: if anything could have touched
 * the files since, recover instead.
 */

/* Bytes of @pool's image. */
size_t z3fold_image_size(struct z3fold_pool *pool);

/* Write @pool's image into @buf (z3fold_image_size() bytes). No other call
 * may run meanwhile. */
void z3fold_save_image(struct z3fold_pool *pool, void *buf);

/*
 * z3fold_load_image() - make @pool (just made on the files of a pool at
 * rest) that pool again from the @len bytes of its image at @buf.
 * Return: 0; -EINVAL if the image cannot be this pool's (*@why says why;
 * nothing was changed: recover instead), -ENOMEM (mapping failed).
 */
int z3fold_load_image(struct z3fold_pool *pool, const void *buf, size_t len,
		      const char **why);

/*
 * z3fold_memory() - the page provider's tables @pool lives in: *@pages
 * its pool pages (pool page f at byte f * Z3FOLD_PAGE_SIZE, so an object
 * sits at the same offset wherever the table is mapped), *@frames its side
 * table (16 bytes per pool page), *@owners its owner words (32 bytes per
 * pool page, see z3fold_set_owner()). They hold frame numbers and the
 * user's words, never pointers; file-backed, their descriptors
 * (pagemem_fd()) are what a successor maps again. Immutable for the
 * pool's life.
 */
void z3fold_memory(struct z3fold_pool *pool, const struct pagemem **pages,
		   const struct pagemem **frames,
		   const struct pagemem **owners);

/* The pages of a pool on files, out of this process's page tables (they
 * stay in the files, and come back on the next touch): a pool handed
 * over unmaps them while its owner still serves, so that the owner's exit
 * costs nothing per page. Any time; nothing for an anonymous pool. */
void z3fold_release_mappings(struct z3fold_pool *pool);

/* Destroys a pool; every object must have been freed, but in a persistent
 * pool, whose objects stay in its files for the next user. */
void z3fold_destroy_pool(struct z3fold_pool *pool);

/*
 * z3fold_alloc() - allocate an object of @size bytes
 * Return: 0 and *@handle set; -EINVAL if @size is 0 or an argument is NULL;
 * -ENOSPC if @size exceeds a page; -ENOMEM if no page could be had.
 */
int z3fold_alloc(struct z3fold_pool *pool, size_t size, unsigned long *handle);

/*
 * z3fold_alloc_packed() - z3fold_alloc() into a page that holds objects
 * already (best fit), never a new one: for moving an object out of a
 * sparse page. Return: 0; -ENOSPC if no page has room (or @size needs a
 * HEADLESS page); -EINVAL.
 */
int z3fold_alloc_packed(struct z3fold_pool *pool, size_t size,
			unsigned long *handle);

/*
 * z3fold_free() - free the object of @handle
 * If its page is being reclaimed, only marks the buddy free; the reclaimer
 * releases the page once every buddy is gone.
 */
void z3fold_free(struct z3fold_pool *pool, unsigned long handle);

/*
 * z3fold_map() - address of the object of @handle
 * The object does not move until z3fold_unmap(); pair every map with one
 * unmap. Return: the address, or NULL for an invalid handle.
 */
void *z3fold_map(struct z3fold_pool *pool, unsigned long handle);
void z3fold_unmap(struct z3fold_pool *pool, unsigned long handle);

/*
 * z3fold_reclaim_page() - evict the objects of the least recently allocated
 * page and free it ("reclaim from the bottom").
 * @retries: how many pages from the LRU tail to try before giving up
 *
 * Takes the LRU tail page, claims it, and calls ops->evict for each of its
 * buddies (middle, first, last). If every handler returned 0 (each having
 * freed its handle) the page is freed. If one returns non-zero, the page
 * goes back on the pool lists with the buddies that remain and the next
 * page is tried.
 * Return: 0 when a page was freed; -EINVAL if there is no evict handler or
 * the pool is empty; -EAGAIN when @retries pages were tried.
 */
int z3fold_reclaim_page(struct z3fold_pool *pool, unsigned int retries);

/*
 * Reclaim in two steps, for a caller that moves the objects of many pages
 * at once (one write for all of them) rather than one by one through
 * ops->evict:
 * z3fold_reclaim_begin() - claim the LRU tail page (the first one not
 * busy from the tail): it leaves every list, no allocation goes there,
 * and a free of one of its objects only marks the buddy free. @handles
 * receives its objects' handles in evict order, *@page names it for
 * z3fold_reclaim_end().
 * Return: how many handles (1..3); -EINVAL if the pool is empty; -EAGAIN
 * if every page is busy this instant.
 *
 * z3fold_reclaim_end() - the caller freed what it could of claimed
 * @page: the page is released if it is empty (counted as reclaimed), else
 * put back on the lists, at the LRU head. Return: whether it was freed.
 */
int z3fold_reclaim_begin(struct z3fold_pool *pool, unsigned long handles[3],
			 unsigned long *page);
bool z3fold_reclaim_end(struct z3fold_pool *pool, unsigned long page);

/*
 * Migration (the kernel's movable_operations: isolate, migrate, put
 * back), for a caller that moves objects out of sparse pages to pack the
 * pool:
 * z3fold_isolate() - claim the sparsest page holding objects (most free
 * chunks; a HEADLESS page or a full one is never taken): as
 * z3fold_reclaim_begin() claims one, no allocation goes there and a free
 * of one of its objects only marks the buddy free. @handles receives its
 * objects, *@page names it. The caller moves what it can: allocates a
 * new object elsewhere (z3fold_alloc_packed()), copies the old one into
 * it, makes its records name the new handle, frees the old one. No
 * object is rewritten in place, so a pool on files may be migrated too.
 * Return: how many handles (1..3); -EINVAL if no page has free room;
 * -EAGAIN if every such page is busy this instant.
 * z3fold_putback() - the caller moved what it could from @page: the page
 * is freed if it is empty (counted in migrated_pages), else put back on
 * the lists (-EAGAIN in the kernel's words: try later). Return: whether
 * it was freed.
 */
int z3fold_isolate(struct z3fold_pool *pool, unsigned long handles[3],
		   unsigned long *page);
bool z3fold_putback(struct z3fold_pool *pool, unsigned long page);

/*
 * z3fold_compact() - compact pages whose middle buddy could not be moved
 * when a neighbour was freed (because it was mapped at the time).
 * At most @max_pages pages are examined per call.
 * Return: the number of pages compacted.
 */
unsigned int z3fold_compact(struct z3fold_pool *pool, unsigned int max_pages);

/* Pool size in pages (pages holding objects, all kinds). */
uint64_t z3fold_get_pool_size(struct z3fold_pool *pool);

/*
 * Owner words: each object has one 64-bit word for its user, typically
 * to say whom the object belongs to, so that an evict handler, which is
 * given only a handle, finds its owner (the old kernel zswap kept the swp
 * entry in a header at the start of each object). The words live in the
 * pool's third table (struct z3fold_mem.owners): in a file they outlive
 * the process with the objects; a recovered object keeps its word. A word
 * is not cleared when its object is freed, nor set when one is allocated:
 * a new object's word holds what an earlier object of its slot left.
 * Each word stays with its object for the object's life, compaction
 * included. Cost: one atomic access, no lock.
 *
 * z3fold_set_owner() - set the owner word of @handle to @owner, with a
 * relaxed atomic store. The caller owns the object (between its
 * z3fold_alloc() and its z3fold_free()); a handle outside the pool is
 * counted and reported as invalid.
 *
 * z3fold_owner() - the owner word of @handle, read with a relaxed atomic
 * load. For a handle that is stale or freed it returns whatever the slot
 * holds (another object's word, or garbage): the caller checks what the
 * word names against its own records. A handle outside the pool reads 0.
 */
void z3fold_set_owner(struct z3fold_pool *pool, unsigned long handle,
		      uint64_t owner);
uint64_t z3fold_owner(struct z3fold_pool *pool, unsigned long handle);

/* Size in bytes of the object of @handle, 0 for an invalid handle. */
size_t z3fold_object_size(struct z3fold_pool *pool, unsigned long handle);

void z3fold_get_stats(struct z3fold_pool *pool, struct z3fold_stats *st);

/*
 * z3fold_verify() - check the pool's invariants: every in-use page is on
 * the LRU once, sits on the unbuddied list its free space selects, its
 * buddies do not overlap, and the counters agree with the pages. For tests
 * and debugging; call it while no other thread uses the pool. O(pages).
 * Return: 0, or -EUCLEAN with the first broken invariant on stderr.
 */
int z3fold_verify(struct z3fold_pool *pool);

#endif /* UZSWAP_Z3FOLD_H */
