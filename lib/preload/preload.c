/*
 * preload.c - libuzswap-preload.so: the heap of an unmodified, dynamically
 * linked program under uzswapd, by LD_PRELOAD.
 *
 *	LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libuzswap-preload.so \
 *	UZSWAP_LIMIT=512M program ...
 *
 * glibc's brk heap cannot be redirected (DESIGN.md, "Unmodified
 * programs"), so the library replaces the allocator: malloc() and its
 * family are jemalloc, and jemalloc gets its memory from one large managed
 * region through extent hooks.
 *
 * The malloc family. The functions below take the names of glibc's and,
 * the preload coming first in the global scope, every object of the
 * process calls them. They are written only with jemalloc's non-standard
 * API (mallocx(), rallocx(), dallocx(), sallocx()): those names exist in
 * libjemalloc alone, so no lookup can land in glibc's malloc. A program
 * linked with the system jemalloc itself (Debian's redis-server) shares
 * the one libjemalloc.so.2 instance with us, its mallctl() calls included.
 * The functions work from the first call, before and during the
 * constructor: they only call jemalloc, which initializes itself. C++'s
 * operator new goes through malloc() in libstdc++.
 *
 * The regions. At load, the constructor connects to uzswapd
 * ($UZSWAP_SOCKET), sets the budget ($UZSWAP_LIMIT, uzswapctl's size
 * syntax) and creates the heap's first managed region, a chunk of
 * HEAP_CHUNK_MIN bytes, named $UZSWAP_NAME or the command name. The heap
 * grows by more chunks as jemalloc asks for memory, each as big as all
 * before it together (HEAP_CHUNK_MAX at most), up to $UZSWAP_RESERVE
 * (four times the RAM, the most uzswapd lets one process register):
 * what a process registers follows what its heap holds, so the daemon's
 * caps on registered memory count heaps, not reservations, and a
 * process that forks many children stays within them. A chunk is address
 * space: a page takes memory only once touched, and uzswapd keeps the
 * touched ones within the budget. The alloc hook hands addresses out of
 * the last chunk with a bump pointer; nothing is ever handed out twice.
 * It makes a new chunk itself, with jemalloc's locks held: libuzswap's
 * uzswap_alloc_flags() allocates nothing from the heap.
 *
 * The hooks (jemalloc 5.3's extent_hooks_t) go on every automatic arena,
 * the huge one included. With opt.retain (the default on Linux) jemalloc
 * never gives memory back to the hooks: it keeps every extent, asks the
 * alloc hook for growing chunks aligned to a page, and purges what it does
 * not use. Every hook first asks whether the range lies in the region:
 * ranges outside it (extents jemalloc mapped before the hooks, or that
 * the region could not serve) go to jemalloc's default hooks. In the
 * region:
 *   alloc          a bump; page alignment at most (the base allocator's
 *                  2 MiB-aligned metadata blocks go to the default hooks);
 *                  the pages are zero and committed
 *   dalloc         none: jemalloc then keeps the extent (opt.retain)
 *   destroy        nothing (automatic arenas are never destroyed, and an
 *                  address of the region is never handed out again)
 *   commit         success; decommit, purge_lazy: not supported
 *   purge_forced   a discard: the pages are dropped, the daemon's stored
 *                  copies freed, the range reads zeros afterwards
 *   split          success; merge: success if both parts are in the
 *                  region
 * On a MAP_SHARED memfd, MADV_DONTNEED does not zero, and the daemon may
 * hold an evicted copy of a page: a purge must be a discard, never an
 * madvise, or a purged page could read an old stored copy.
 *
 * jemalloc's metadata stays unmanaged, as DESIGN.md requires. Setting the
 * hooks of an existing arena changes only its extents' hooks, not those
 * of its metadata (base_extent_hooks_set()); but setting them on an
 * automatic arena not created yet creates it with our hooks for both. So
 * the arenas are first all created with the default hooks, then given
 * ours. The huge arena is created on its first use only: one allocation
 * of opt.oversize_threshold bytes creates it first.
 *
 * What stays unmanaged: what jemalloc mapped before the hooks (its
 * start-up chunk in arena 0, 2 MiB, whose pieces jemalloc goes on using
 * for small allocations), metadata, arenas a program creates itself
 * (arenas.create), and every allocation once the heap reached
 * $UZSWAP_RESERVE or uzswapd refused it a chunk (said once on stderr).
 *
 * Never take a program down. If the daemon cannot be reached, or refuses
 * the budget or the region, one line on stderr says so and the program
 * runs on plain jemalloc without hooks; with UZSWAP_REQUIRE=1 the line
 * says so and the process exits with UZSWAP_RUN_NO_DAEMON (121). Without
 * opt.retain it runs unmanaged too (see heap_retains()). The environment
 * is left as it is: programs exec'ed with it are managed too.
 *
 * fork(): the chunks are made with UZSWAP_ALLOC_INHERIT: the child of a
 * fork() gets a private copy of the heap, managed in its own name under
 * the same budget (libuzswap's fork handlers and uzswapd copy it; the
 * connection is the child's in the child). No hook runs during the fork:
 * jemalloc's own fork handler holds every arena's locks.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#include "lib/client/uzswap.h"
#include "lib/common/list.h"
#include "lib/common/macros.h"
#include "lib/common/run-exit.h"
#include "lib/common/size.h"

_Static_assert(UZSWAP_FORK_EXIT == UZSWAP_RUN_NO_DAEMON,
	       "one status for \"uzswapd was needed and could not be had\"");

/*****************
 * Structures
 *****************/

#define MIB			(1ull << 20)
#define HEAP_CHUNK_MIN		(64 * MIB)	/* the first chunk */
#define HEAP_CHUNK_MAX		(8192 * MIB)	/* a chunk, at most */
#define HEAP_CHUNKS		64		/* chunks, at most */

/* One managed region of the heap: [@start, @end). */
struct heap_chunk {
	uintptr_t start;
	uintptr_t end;
};

/*
 * struct heap - the process's heap in its managed regions
 * @hooks:   what jemalloc calls; each hook gets a pointer to it back and
 *           finds the heap with container_of(); immutable once installed
 * @dflt:    jemalloc's default hooks, for ranges outside the chunks;
 *           immutable once installed
 * @conn:    the connection to uzswapd; immutable once installed
 * @name:    the chunks' name; immutable
 * @page:    the page size; immutable
 * @reserve: bytes the chunks may take together; immutable
 * @grow_lock: serializes the alloc hook's bump and growth; protects
 *           @next, @reserved and @refused
 * @chunks:  the chunks; an entry below @nr_chunks is immutable
 * @nr_chunks: chunks made (atomic: published after its entry, read by
 *           every hook without the lock)
 * @next:    the first address of the last chunk never handed out
 * @reserved: bytes of all chunks
 * @refused: uzswapd refused a chunk (said once): no more are asked for
 */
struct heap {
	extent_hooks_t hooks;
	extent_hooks_t *dflt;
	uzswap_t *conn;
	char name[64];
	size_t page;
	uint64_t reserve;
	pthread_mutex_t grow_lock;
	struct heap_chunk chunks[HEAP_CHUNKS];
	_Atomic unsigned int nr_chunks;
	uintptr_t next;
	uint64_t reserved;
	bool refused;
};

/* What the constructor gathers from the environment. */
struct heap_config {
	const char *socket;	/* $UZSWAP_SOCKET or the default */
	uint64_t limit;		/* $UZSWAP_LIMIT; 0: the daemon's default */
	uint64_t reserve;	/* $UZSWAP_RESERVE or 4x RAM */
	char name[64];		/* $UZSWAP_NAME or the command name */
	bool required;		/* $UZSWAP_REQUIRE=1 */
};

/*****************
 * The malloc family
 *****************/

static void *nomem(void)
{
	errno = ENOMEM;
	return NULL;
}

/* @size bytes with jemalloc's @flags. jemalloc leaves 0 bytes undefined,
 * and C's malloc(0) is a unique pointer: 0 asks for 1. */
static void *heap_alloc(size_t size, int flags)
{
	void *p = mallocx(size ? size : 1, flags);

	return p ? p : nomem();
}

/* @size bytes aligned to @align, a power of two. */
static void *heap_alloc_aligned(size_t align, size_t size)
{
	return heap_alloc(size, MALLOCX_LG_ALIGN(__builtin_ctzl(align)));
}

UZSWAP_EXTERN void *malloc(size_t size)
{
	return heap_alloc(size, 0);
}

UZSWAP_EXTERN void *calloc(size_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes))
		return nomem();
	return heap_alloc(bytes, MALLOCX_ZERO);
}

UZSWAP_EXTERN void free(void *p)
{
	if (p)
		dallocx(p, 0);
}

/* As glibc's: realloc(p, 0) frees @p and returns NULL. */
UZSWAP_EXTERN void *realloc(void *p, size_t size)
{
	void *q;

	if (!p)
		return heap_alloc(size, 0);
	if (!size) {
		dallocx(p, 0);
		return NULL;
	}
	q = rallocx(p, size, 0);
	return q ? q : nomem();
}

UZSWAP_EXTERN void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes))
		return nomem();
	return realloc(p, bytes);
}

/* Reports through its return value only: errno is left alone. */
UZSWAP_EXTERN int posix_memalign(void **out, size_t align, size_t size)
{
	int saved = errno;
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	p = heap_alloc_aligned(align, size);
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

/* C17: an alignment that is not a power of two fails (EINVAL, as glibc
 * 2.38 and later). */
UZSWAP_EXTERN void *aligned_alloc(size_t align, size_t size)
{
	if (!align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return heap_alloc_aligned(align, size);
}

/* As glibc's: an alignment that is not a power of two is rounded up to
 * one; past the largest power of two, EINVAL. */
UZSWAP_EXTERN void *memalign(size_t align, size_t size)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!align)
		return heap_alloc(size, 0);
	if (align & (align - 1))
		align = (size_t)1 << (sizeof(align) * 8 - __builtin_clzl(align));
	return heap_alloc_aligned(align, size);
}

UZSWAP_EXTERN void *valloc(size_t size)
{
	return heap_alloc_aligned((size_t)getpagesize(), size);
}

/* As glibc's: @size rounded up to whole pages (pvalloc(0) is one page). */
UZSWAP_EXTERN void *pvalloc(size_t size)
{
	size_t page = (size_t)getpagesize(), bytes;

	if (__builtin_add_overflow(size, page - 1, &bytes))
		return nomem();
	bytes &= ~(page - 1);
	return heap_alloc_aligned(page, bytes ? bytes : page);
}

UZSWAP_EXTERN size_t malloc_usable_size(void *p)
{
	return p ? sallocx(p, 0) : 0;
}

/*****************
 * The chunks
 *****************/

static struct heap *heap_of(extent_hooks_t *hooks)
{
	return container_of(hooks, struct heap, hooks);
}

/* The chunk holding [@addr, @addr + @size) whole, or -1. */
static int heap_chunk_of(struct heap *h, const void *addr, size_t size)
{
	unsigned int n = atomic_load_explicit(&h->nr_chunks,
					      memory_order_acquire), i;
	uintptr_t a = (uintptr_t)addr;

	for (i = 0; i < n; i++)
		if (a >= h->chunks[i].start && a < h->chunks[i].end &&
		    size <= h->chunks[i].end - a)
			return (int)i;
	return -1;
}

/* Whether [@addr, @addr + @size) lies in the heap's chunks. */
static bool heap_has(struct heap *h, const void *addr, size_t size)
{
	return heap_chunk_of(h, addr, size) >= 0;
}

/*
 * heap_bump() - @size bytes of the last chunk never handed out before,
 * aligned to @align (a power of two). @h->grow_lock held.
 * Return: the address, or NULL when the chunk has not that much left.
 */
static void *heap_bump(struct heap *h, size_t size, size_t align)
{
	unsigned int n = atomic_load_explicit(&h->nr_chunks,
					      memory_order_relaxed);
	uintptr_t end = n ? h->chunks[n - 1].end : 0;
	uintptr_t at = (h->next + align - 1) & ~(uintptr_t)(align - 1);

	if (!n || at < h->next || at > end || size > end - at)
		return NULL;
	h->next = at + size;
	return (void *)at;
}

/*
 * heap_grow() - a new chunk of at least @need bytes: as big as all the
 * chunks before it together, between HEAP_CHUNK_MIN and HEAP_CHUNK_MAX
 * (or @need), within @h->reserve. First chunk: @h->conn only, no hook
 * yet. Otherwise @h->grow_lock held, and jemalloc's locks: the request
 * to uzswapd allocates nothing (uzswap_alloc_flags()).
 * Return: 0, or -errno (the heap is as it was; the first refusal by
 * uzswapd is said on stderr, and no chunk is asked for again; -EAGAIN:
 * a fork is under way, not a refusal).
 */
static int heap_grow(struct heap *h, size_t need)
{
	unsigned int n = atomic_load_explicit(&h->nr_chunks,
					      memory_order_relaxed);
	uint64_t size = h->reserved < HEAP_CHUNK_MIN ? HEAP_CHUNK_MIN :
			h->reserved > HEAP_CHUNK_MAX ? HEAP_CHUNK_MAX :
			h->reserved;
	char a[16], b[16];
	void *p;

	if (size < need)
		size = (need + HEAP_CHUNK_MIN - 1) & ~(HEAP_CHUNK_MIN - 1);
	if (size > h->reserve - h->reserved)
		size = (h->reserve - h->reserved) & ~(uint64_t)(h->page - 1);
	if (h->refused || n == HEAP_CHUNKS || !size || size < need)
		return -ENOSPC;
	p = uzswap_alloc_flags(h->conn, size, h->name, UZSWAP_ALLOC_INHERIT);
	if (!p && errno == EAGAIN)
		return -EAGAIN;	/* another thread forks: this extent is
				   unmanaged, the next one may be */
	if (!p) {
		if (n)
			fprintf(stderr, "uzswap: uzswapd gave the heap no "
				"more than %s (a chunk of %s: %s): larger "
				"allocations are unmanaged\n",
				size_format(h->reserved, a, sizeof(a)),
				size_format(size, b, sizeof(b)),
				uzswap_strerror(errno));
		h->refused = n > 0;
		return -errno;
	}
	h->chunks[n] = (struct heap_chunk){ (uintptr_t)p,
					    (uintptr_t)p + size };
	h->next = (uintptr_t)p;
	h->reserved += size;
	atomic_store_explicit(&h->nr_chunks, n + 1, memory_order_release);
	return 0;
}

/* @size bytes of the heap, aligned to @align: from the last chunk, or a
 * new one. NULL: the heap cannot have them. */
static void *heap_extent(struct heap *h, size_t size, size_t align)
{
	void *p;

	pthread_mutex_lock(&h->grow_lock);
	p = heap_bump(h, size, align);
	if (!p && !heap_grow(h, size + align))
		p = heap_bump(h, size, align);
	pthread_mutex_unlock(&h->grow_lock);
	return p;
}

/*
 * heap_discard() - drop the pages of [@addr, @addr + @len) of a chunk:
 * the daemon's stored copies freed, the range reading zeros afterwards
 * (uzswap_discard()).
 *
 * Runs in jemalloc's purge hook, on an application thread (or jemalloc's
 * background thread) while jemalloc holds arena locks: it must not call
 * malloc(). A request on an existing connection of libuzswap allocates
 * nothing (lib/client/client.c: uzswap__call() -> transact() ->
 * proto_send()/proto_reader_feed() work in stack buffers; a reconnect
 * after a restart of the daemon opens a socket and says HELLO, also in
 * stack buffers). Its one stdio call is the line saying that a restarted
 * daemon refused to take the process over, after which no request is
 * made again. A discard that fails leaves the pages as they were: the
 * hook then says "not purged", and jemalloc keeps them.
 *
 * Return: 0 or -errno.
 */
static int heap_discard(struct heap *h, void *addr, size_t len)
{
	return uzswap_discard(h->conn, addr, len);
}

/*****************
 * Extent hooks
 *
 * Each one: the region's answer for a range in it, the default hook's for
 * a range outside it (a NULL default hook means "not supported": true).
 * They run with jemalloc's locks held: no malloc().
 *****************/

static void *hook_alloc(extent_hooks_t *hooks, void *new_addr, size_t size,
			size_t align, bool *zero, bool *commit, unsigned ind)
{
	struct heap *h = heap_of(hooks);
	void *p;

	/* A fixed address in a chunk (jemalloc growing an extent in place,
	 * which it does not do with opt.retain) cannot be had: the bump
	 * pointer passed it. */
	if (new_addr && heap_has(h, new_addr, size))
		return NULL;
	if (!new_addr && align <= h->page) {
		p = heap_extent(h, size, align);
		if (p) {
			*zero = true;	/* never touched: holes read zeros */
			*commit = true;
			return p;
		}
	}
	return h->dflt->alloc(h->dflt, new_addr, size, align, zero, commit,
			      ind);
}

static void hook_destroy(extent_hooks_t *hooks, void *addr, size_t size,
			 bool committed, unsigned ind)
{
	struct heap *h = heap_of(hooks);

	if (!heap_has(h, addr, size) && h->dflt->destroy)
		h->dflt->destroy(h->dflt, addr, size, committed, ind);
}

/* A hook over part of an extent (commit, decommit, the purges: one type)
 * of the default hooks, for an extent outside the chunks. */
static bool dflt_part(extent_purge_t *fn, extent_hooks_t *dflt, void *addr,
		      size_t size, size_t offset, size_t length,
		      unsigned ind)
{
	return fn ? fn(dflt, addr, size, offset, length, ind) : true;
}

static bool hook_commit(extent_hooks_t *hooks, void *addr, size_t size,
			size_t offset, size_t length, unsigned ind)
{
	struct heap *h = heap_of(hooks);

	return !heap_has(h, addr, size) &&
	       dflt_part(h->dflt->commit, h->dflt, addr, size, offset, length,
			 ind);
}

static bool hook_decommit(extent_hooks_t *hooks, void *addr, size_t size,
			  size_t offset, size_t length, unsigned ind)
{
	struct heap *h = heap_of(hooks);

	return heap_has(h, addr, size) ||
	       dflt_part(h->dflt->decommit, h->dflt, addr, size, offset,
			 length, ind);
}

/* MADV_FREE, the default's lazy purge, does not apply to shared memory. */
static bool hook_purge_lazy(extent_hooks_t *hooks, void *addr, size_t size,
			    size_t offset, size_t length, unsigned ind)
{
	struct heap *h = heap_of(hooks);

	return heap_has(h, addr, size) ||
	       dflt_part(h->dflt->purge_lazy, h->dflt, addr, size, offset,
			 length, ind);
}

static bool hook_purge_forced(extent_hooks_t *hooks, void *addr, size_t size,
			      size_t offset, size_t length, unsigned ind)
{
	struct heap *h = heap_of(hooks);

	if (heap_has(h, addr, size))
		return heap_discard(h, (char *)addr + offset, length) != 0;
	return dflt_part(h->dflt->purge_forced, h->dflt, addr, size, offset,
			 length, ind);
}

static bool hook_split(extent_hooks_t *hooks, void *addr, size_t size,
		       size_t size_a, size_t size_b, bool committed,
		       unsigned ind)
{
	struct heap *h = heap_of(hooks);

	if (heap_has(h, addr, size))
		return false;
	return h->dflt->split ?
	       h->dflt->split(h->dflt, addr, size, size_a, size_b, committed,
			      ind) :
	       true;
}

/* Two extents merge if both are in one chunk (they are adjacent), or
 * both outside the chunks and the default agrees: never across a
 * chunk's edge (two chunks are two memfds, even if adjacent). */
static bool hook_merge(extent_hooks_t *hooks, void *addr_a, size_t size_a,
		       void *addr_b, size_t size_b, bool committed,
		       unsigned ind)
{
	struct heap *h = heap_of(hooks);
	int in_a = heap_chunk_of(h, addr_a, size_a);
	int in_b = heap_chunk_of(h, addr_b, size_b);

	if (in_a != in_b)
		return true;
	if (in_a >= 0)
		return false;
	return h->dflt->merge ?
	       h->dflt->merge(h->dflt, addr_a, size_a, addr_b, size_b,
			      committed, ind) :
	       true;
}

/* The process's heap. Its hooks are set here, the rest by the
 * constructor before jemalloc sees them. The dalloc hook is NULL: with
 * opt.retain, the default one declines too (it keeps every extent), and a
 * NULL one spares jemalloc the attempt (ehooks_dalloc_will_fail()). */
static struct heap the_heap = {
	.grow_lock = PTHREAD_MUTEX_INITIALIZER,
	.hooks = {
		.alloc = hook_alloc,
		.dalloc = NULL,
		.destroy = hook_destroy,
		.commit = hook_commit,
		.decommit = hook_decommit,
		.purge_lazy = hook_purge_lazy,
		.purge_forced = hook_purge_forced,
		.split = hook_split,
		.merge = hook_merge,
	},
};

/*****************
 * Installing the hooks
 *****************/

/*
 * heap_retains() - whether jemalloc runs with opt.retain. Without it,
 * jemalloc asks the alloc hook for every extent at its own size and
 * alignment and gives extents back with dalloc, expecting their address
 * space to be reusable: a bump pointer that never reuses an address would
 * run through the region, and refusing dalloc leaves jemalloc with
 * fragments it cannot grow into.
 */
static bool heap_retains(void)
{
	bool retain = false;
	size_t len = sizeof(retain);

	return mallctl("opt.retain", &retain, &len, NULL, 0) == 0 && retain;
}

/*
 * huge_arena_create() - create the huge arena (index narenas_auto, for
 * allocations of opt.oversize_threshold bytes and more) now, with the
 * default hooks, so that its hooks can be set: jemalloc creates it on
 * first use (arena_choose_huge()), and the ctl cannot. The allocation
 * that creates it is kept, never touched: freed, its unmanaged extent
 * would serve a later allocation of its size class. It costs address
 * space only.
 */
static void huge_arena_create(void)
{
	size_t threshold = 0, len = sizeof(threshold);

	if (mallctl("opt.oversize_threshold", &threshold, &len, NULL, 0) ||
	    !threshold)
		return;
	mallocx(threshold, 0);
}

/* Set the extent hooks of arena @ind to @hooks (@mib is
 * "arena.0.extent_hooks"). Return: 0 or an errno; EFAULT: no such arena
 * (a manual index unused, the huge arena not created). */
static int arena_hooks_set(size_t *mib, size_t miblen, unsigned ind,
			   extent_hooks_t *hooks)
{
	mib[1] = ind;
	return mallctlbymib(mib, miblen, NULL, NULL, &hooks, sizeof(hooks));
}

/*
 * heap_hooks_install() - put @h's hooks on every automatic arena. The
 * first pass creates the arenas not created yet, with the default hooks
 * (so that their metadata keeps them), the second gives every arena ours.
 * Return: 0, or an errno from the first pass (nothing of ours installed
 * then).
 */
static int heap_hooks_install(struct heap *h)
{
	size_t mib[3], miblen = ARRAY_SIZE(mib), len = sizeof(h->dflt);
	unsigned n = 0, i;
	int ret;

	ret = mallctlnametomib("arena.0.extent_hooks", mib, &miblen);
	if (ret)
		return ret;
	ret = mallctlbymib(mib, miblen, &h->dflt, &len, NULL, 0);
	if (ret)
		return ret;
	huge_arena_create();
	len = sizeof(n);
	ret = mallctl("arenas.narenas", &n, &len, NULL, 0);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		ret = arena_hooks_set(mib, miblen, i, h->dflt);
		if (ret && ret != EFAULT)
			return ret;
	}
	/* An arena that exists takes new hooks without fail
	 * (arena_set_extent_hooks()); the indices the first pass found
	 * empty fail the same way here. */
	for (i = 0; i < n; i++)
		arena_hooks_set(mib, miblen, i, &h->hooks);
	return 0;
}

/*****************
 * Start-up
 *****************/

/*
 * The mark of this copy of the library, by two names: the exported one,
 * which dlsym() finds in the first copy of the global scope, and one that
 * only this copy's code sees. (Comparing malloc() itself would not do: a
 * non-PIE executable that takes malloc()'s address, as python3.11 does,
 * makes its own PLT entry the address every lookup returns.)
 */
UZSWAP_EXTERN const char uzswap_preload_mark = 1;
extern const char preload_own_mark
	__attribute__((alias("uzswap_preload_mark"), visibility("hidden")));

/* Whether this copy of the library is the first in the global scope, the
 * one whose malloc() the process uses: a second copy (another path in
 * LD_PRELOAD, a dlopen()) does nothing. */
static bool preload_is_first(void)
{
	return dlsym(RTLD_DEFAULT, "uzswap_preload_mark") == &preload_own_mark;
}

/* The command name, from /proc/self/comm, into @buf (@size bytes). */
static void comm_read(char *buf, size_t size)
{
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		snprintf(buf, size, "heap");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * give_up() - say on stderr, in one line, why the heap is not managed,
 * then carry on unmanaged; or, with UZSWAP_REQUIRE=1, exit with
 * UZSWAP_RUN_NO_DAEMON.
 */
__attribute__((format(printf, 2, 3)))
static void give_up(const struct heap_config *cfg, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!cfg->required) {
		fprintf(stderr, "uzswap: %s: running unmanaged\n", why);
		return;
	}
	fprintf(stderr, "uzswap: %s: required (UZSWAP_REQUIRE), exiting\n",
		why);
	_exit(UZSWAP_RUN_NO_DAEMON);
}

/* Read the environment into @cfg. Return: 0, or -EINVAL after saying
 * which variable is wrong (give_up()). */
static int config_read(struct heap_config *cfg)
{
	const char *s;

	s = getenv("UZSWAP_REQUIRE");
	cfg->required = s && !strcmp(s, "1");
	s = getenv("UZSWAP_SOCKET");
	cfg->socket = s && *s ? s : UZSWAP_DEFAULT_SOCKET;
	s = getenv("UZSWAP_LIMIT");
	cfg->limit = 0;
	if (s && size_parse(s, SIZE_NONE_OK, &cfg->limit)) {
		give_up(cfg, "UZSWAP_LIMIT=%s is not a size", s);
		return -EINVAL;
	}
	s = getenv("UZSWAP_RESERVE");
	cfg->reserve = 4 * size_ram_bytes();
	if (s && size_parse(s, 0, &cfg->reserve)) {
		give_up(cfg, "UZSWAP_RESERVE=%s is not a size", s);
		return -EINVAL;
	}
	s = getenv("UZSWAP_NAME");
	if (s && *s)
		snprintf(cfg->name, sizeof(cfg->name), "%s", s);
	else
		comm_read(cfg->name, sizeof(cfg->name));
	return 0;
}

/*
 * heap_connect() - connect @h to uzswapd, set the budget, make the first
 * chunk. Return: 0, or -errno after give_up() (nothing left behind).
 */
static int heap_connect(struct heap *h, const struct heap_config *cfg)
{
	char size[16];
	int ret;

	h->conn = uzswap_connect(cfg->socket);
	if (!h->conn) {
		ret = -errno;
		give_up(cfg, "uzswapd is not reachable at %s (%s)", cfg->socket,
			uzswap_strerror(ret));
		return ret;
	}
	if (cfg->limit) {
		ret = uzswap_set_limit(h->conn, cfg->limit);
		if (ret) {
			give_up(cfg, "uzswapd refused the budget of %s (%s)",
				size_format(cfg->limit, size, sizeof(size)),
				uzswap_strerror(ret));
			goto out_disconnect;
		}
	}
	h->reserve = cfg->reserve;
	memcpy(h->name, cfg->name, sizeof(h->name));
	ret = heap_grow(h, 0);
	if (ret) {
		give_up(cfg, "uzswapd at %s gave no region of %s (%s)",
			cfg->socket, size_format(HEAP_CHUNK_MIN, size,
						 sizeof(size)),
			uzswap_strerror(ret));
		goto out_disconnect;
	}
	return 0;

out_disconnect:
	uzswap_disconnect(h->conn);
	h->conn = NULL;
	return ret;
}

__attribute__((constructor))
static void preload_init(void)
{
	struct heap *h = &the_heap;
	struct heap_config cfg;
	int ret;

	if (!preload_is_first() || config_read(&cfg))
		return;
	if (!heap_retains()) {
		give_up(&cfg, "jemalloc runs without opt.retain (MALLOC_CONF?), "
			"which the heap's region needs");
		return;
	}
	h->page = (size_t)getpagesize();
	if (heap_connect(h, &cfg))
		return;
	ret = heap_hooks_install(h);
	if (ret) {
		uzswap_disconnect(h->conn);
		h->conn = NULL;
		give_up(&cfg, "jemalloc refused the extent hooks (%s)",
			strerror(ret));
	}
}
