/*
 * backing.c - the backing file: where the evict handler puts compressed
 * objects when the z3fold pool is full, and where the fault path reads
 * them back from.
 *
 * Layout. The file is cut into 512-byte units; an object of n bytes (at
 * most one 4 KiB page: lz4/zstd output or a raw page) takes ceil(n/512)
 * contiguous units, at most 8, and its slot is the number of its first
 * unit (offset slot * 512). An object is placed within one 4 KiB block
 * when some block has room (so a raw page is block-aligned): a read then
 * touches one block, and blocks empty independently of each other. It
 * straddles two blocks only when no block has room. The tail of an
 * object's last unit is written as zeros: no stale bytes from our buffers
 * reach the disk.
 *
 * Allocation. One bit per unit over the cap, in a bitmap of 64-bit words:
 * the bitmap costs limit/4096 bytes of RAM (256 KiB per GiB of cap), and
 * the daemon's mlockall() keeps it resident. Allocation is next-fit: the
 * search starts at a cursor left after the last allocation and wraps
 * around, so it is usually a few words, O(bitmap words) when the file is
 * nearly full or fragmented (2 M words for a 64 GiB cap), twice when only
 * a straddling run is left. It fails fast when used + n would pass the
 * cap. Units past the cap are never handed out, so the file never extends
 * past it either.
 *
 * Sparse file, holes. The file is never preallocated or extended to the
 * cap; it grows as objects land. Each 4 KiB block is one byte of the
 * bitmap. When a free (or a failed write) leaves a block wholly free, the
 * freeing thread marks the block's byte all-used while it punches the
 * hole (fallocate PUNCH_HOLE | KEEP_SIZE) without the lock, then clears
 * it: no allocator can place an object in a block being punched. On a
 * filesystem that cannot punch (EOPNOTSUPP) this stops after the first try.
 * While a punch is in flight, an allocation may fail to find room that is
 * about to be free again and return -ENOSPC; the caller treats that as
 * full for a while, which is safe.
 *
 * I/O mode, chosen at open and reported in the stats ("direct"): the file
 * is meant to save RAM, so its data must not sit in the page cache.
 * - O_DIRECT when the filesystem does direct I/O at 512-byte offsets:
 *   statx(STATX_DIOALIGN) says so, or, on kernels or filesystems that do
 *   not report it, a 512-byte direct write at offset 0 of the empty file
 *   succeeds. I/O is done in whole units through an aligned bounce buffer
 *   on the caller's stack (4 KiB; no allocation per call), or straight
 *   from/to the caller's buffer when it is aligned and a multiple of 512.
 *   On ext4 (this machine's /, /tmp and /var/lib) this is the mode.
 * - Buffered otherwise (no O_DIRECT, or alignment coarser than 512): each
 *   write is flushed (sync_file_range) so that its errors are seen now and
 *   its pages are clean, then the pages are dropped (POSIX_FADV_DONTNEED
 *   over the enclosing 2 MiB: see cache_drop()); reads are followed by
 *   DONTNEED too, and readahead is off (POSIX_FADV_RANDOM).
 * - tmpfs/ramfs ("in_memory"): the kernel accepts O_DIRECT there (6.6+)
 *   but the data lives in RAM either way; buffered, without flush or
 *   advice. The daemon should warn that such a backing file saves nothing.
 *
 * Batches. backing_write_batch() takes many objects, packed back to back
 * in whole units by the caller, in one run of contiguous units and one
 * write: a write of 100 KiB costs little more than one of 2 KiB (direct
 * I/O on the reference machine: 4 KiB writes 61 MB/s, 64 KiB 408 MB/s,
 * 256 KiB 713 MB/s). Objects of a batch may straddle 4 KiB blocks. The
 * run is found by a word-wise next-fit scan (run_find_locked()); when no
 * run is free the caller writes the objects one by one.
 *
 * Errors. A write that fails leaves the bitmap as it was: its units are
 * released (and their blocks punched) before returning. ENOSPC and EDQUOT
 * from the filesystem count as full and return -ENOSPC, like the cap;
 * other errors count as write errors and return their -errno. The caller
 * keeps the object in the pool either way.
 *
 * Locks. b->lock (an adaptive mutex) protects the bitmap and its cursor,
 * cap and usage; it is held only for bitmap work, never across I/O, and
 * takes no other lock. The file descriptor and I/O mode are immutable
 * after backing_open(); counters are atomic. Reads take no lock.
 *
 * Costs, measured on the reference machine (ext4 on virtio, O_DIRECT,
 * objects of 1000-4000 bytes): a write 85-140 us, a read 70-150 us, a
 * free that punches a hole 60-70 us. Every call blocks its thread for
 * that long; none is for the event-loop thread.
 *
 * The file is flock()ed for the daemon's lifetime, so a second daemon
 * pointed at the same path fails with EBUSY instead of truncating it.
 *
 * The path may be in a directory others can write to (/var/tmp): another
 * user can plant a symlink or a hard link there to a file of ours, or
 * hold a file of ours open before the daemon starts, and read every page
 * written back. So the daemon writes only to a file it has just created
 * (O_EXCL, 0600) with one name, opened relative to its directory without
 * following a link, neither the file's nor the directory's; a file found
 * at the path is checked on its fd (regular, ours, one name, empty or
 * marked) and replaced, never reused.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/common/debug.h"
#include "lib/common/failpoint.h"
#include "lib/common/fullio.h"
#include "backing.h"
#include "privfile.h"

/*****************
 * Structures
 *****************/

#define UNIT_SHIFT	9
#define UNIT		(1u << UNIT_SHIFT)			/* 512 */
#define MAX_UNITS	(BACKING_MAX_OBJECT >> UNIT_SHIFT)	/* 8 */
#define BLOCK		4096u		/* hole-punch granule */
#define BLOCK_UNITS	(BLOCK / UNIT)	/* 8: one bitmap byte */
#define WORD_BITS	64u
#define BLOCK_MASK	0xffull
#define DIO_MAX_ALIGN	4096u		/* bounce buffer alignment */
#define DROP_GRANULE	(2l << 20)	/* largest page cache folio (PMD) */

/* Largest cap: the last object must end below OFF_MAX. */
#define LIMIT_MAX	((uint64_t)INT64_MAX - BACKING_MAX_OBJECT)

_Static_assert(UNIT == BACKING_UNIT, "unit size");
_Static_assert(BLOCK_UNITS == 8 && MAX_UNITS <= BLOCK_UNITS,
	       "a block is one bitmap byte and an object spans <= 2 blocks");

/*
 * struct backing - an open backing file
 * @lock:        protects @bitmap, @nr_words, @limit_units, @used_units,
 *               @objects and @cursor; never held across I/O
 * @bitmap:      one bit per 512-byte unit, set while allocated (or while
 *               its block is being punched); @lock
 * @nr_words:    words in @bitmap; only grows; @lock
 * @nr_units:    units @bitmap covers (@nr_words * 64), for the lockless
 *               range check of reads; only grows; atomic
 * @limit_bytes: the cap as set; @lock
 * @limit_units: the cap in units: allocations stay below it; @lock
 * @used_units:  units allocated to objects (not to punches); @lock
 * @objects:     objects allocated; @lock
 * @cursor:      next-fit search start, in units; @lock
 * @fd:          the file; immutable
 * @direct:      @fd has O_DIRECT; immutable
 * @in_memory:   the file is on tmpfs/ramfs; immutable
 * @mem_align:   buffer alignment direct I/O needs; immutable
 * @created:     backing_open() created the file where there was none
 *               (it is removed at close); immutable
 * @kept:        it is a predecessor's file, kept as it was (its objects
 *               may be named again); immutable
 * @handed_over: backing_close() leaves the file to a successor; set by
 *               the thread that closes, before
 * @dev, @ino:   identity of the file, checked before unlinking; immutable
 * @punch:       the filesystem punches holes; cleared on EOPNOTSUPP
 * @st:          counters; atomic
 * @dirfd:       the file's directory, opened once without following a
 *               link; the file is created and removed relative to it;
 *               immutable
 * @name:        the file's name in @dirfd (points into @path); immutable
 * @path:        the path; immutable
 */
struct backing {
	pthread_mutex_t lock;
	uint64_t *bitmap;
	size_t nr_words;
	atomic_uint_fast64_t nr_units;
	uint64_t limit_bytes;
	uint64_t limit_units;
	uint64_t used_units;
	uint64_t objects;
	uint64_t cursor;
	int fd;
	bool direct;
	bool in_memory;
	bool created;
	bool kept;
	bool handed_over;
	unsigned int mem_align;
	dev_t dev;
	ino_t ino;
	atomic_bool punch;
	int dirfd;
	const char *name;
	struct {
		atomic_uint_fast64_t writes, batches, reads, write_errors,
			read_errors, full, punched, punch_errors,
			invalid_frees;
	} st;
	char path[];
};

/*****************
 * Helpers
 *****************/

static inline void stat_inc(atomic_uint_fast64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline uint64_t stat_get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static inline unsigned int len_to_units(size_t len)
{
	return (unsigned int)((len + UNIT - 1) >> UNIT_SHIFT);
}

static inline size_t words_for(uint64_t limit_bytes)
{
	uint64_t units = limit_bytes >> UNIT_SHIFT;

	/* at least one word, so that the bitmap is never empty */
	return (size_t)((units + WORD_BITS - 1) / WORD_BITS) ?: 1;
}

/* Free units of word @w as set bits; units at or past the cap are
 * reported used. @lock held. */
static inline uint64_t free_bits(const struct backing *b, size_t w)
{
	uint64_t first = (uint64_t)w * WORD_BITS;
	uint64_t f = ~b->bitmap[w];

	assert_held(&b->lock);
	if (first + WORD_BITS > b->limit_units)
		f &= first >= b->limit_units ? 0 :
			(1ull << (b->limit_units - first)) - 1;
	return f;
}

static inline bool unit_test(const struct backing *b, uint64_t u)
{
	return b->bitmap[u / WORD_BITS] >> (u % WORD_BITS) & 1;
}

static inline void unit_set(struct backing *b, uint64_t u)
{
	b->bitmap[u / WORD_BITS] |= 1ull << (u % WORD_BITS);
}

static inline void unit_clear(struct backing *b, uint64_t u)
{
	b->bitmap[u / WORD_BITS] &= ~(1ull << (u % WORD_BITS));
}

/* The bitmap byte of 4 KiB block @k (its 8 units). */
static inline uint64_t block_bits(const struct backing *b, uint64_t k)
{
	return b->bitmap[k / 8] >> (k % 8 * 8) & BLOCK_MASK;
}

static inline void block_fill(struct backing *b, uint64_t k, bool used)
{
	uint64_t mask = BLOCK_MASK << (k % 8 * 8);

	if (used)
		b->bitmap[k / 8] |= mask;
	else
		b->bitmap[k / 8] &= ~mask;
}

/*
 * units_find_locked() - find @n (1..8) free contiguous units below the cap,
 * next-fit from @cursor, wrapping around once. Unless @straddle, the run
 * must lie within one 4 KiB block (one bitmap byte); otherwise it may
 * cross blocks and words.
 * Cost: O(bitmap words) worst case; one pass over @nr_words + 1 words.
 * Return: whether a run was found (in *@start). @lock held.
 */
static bool units_find_locked(struct backing *b, unsigned int n,
			      bool straddle, uint64_t *start)
{
	assert_held(&b->lock);
	/* starts 0 .. 8-n of every byte: runs that end in their block */
	uint64_t in_block = straddle ? ~0ull :
		((1ull << (BLOCK_UNITS + 1 - n)) - 1) * 0x0101010101010101ull;
	size_t nw, w0, i;
	uint64_t cursor;

	if (b->limit_units < n)
		return false;
	nw = (size_t)((b->limit_units + WORD_BITS - 1) / WORD_BITS);
	cursor = b->cursor < b->limit_units ? b->cursor : 0;
	w0 = (size_t)(cursor / WORD_BITS);

	for (i = 0; i <= nw; i++) {
		size_t w = (w0 + i) % nw;
		uint64_t f = free_bits(b, w), g, m;
		unsigned int k;

		if (!f)
			continue;
		g = w + 1 < nw ? free_bits(b, w + 1) : 0;
		/* bit j of m: units j .. j+n-1 (into the next word) free */
		m = f;
		for (k = 1; k < n; k++)
			m &= f >> k | g << (WORD_BITS - k);
		m &= in_block;
		if (i == 0)
			m &= ~0ull << (cursor % WORD_BITS);
		if (m) {
			*start = (uint64_t)w * WORD_BITS +
				 (unsigned int)__builtin_ctzll(m);
			return true;
		}
	}
	return false;
}

/* Allocate @n units, within one 4 KiB block if possible (one block to read,
 * and its hole punched independently of its neighbours): 0 or -ENOSPC.
 * Cost: up to two bitmap scans. Takes @lock. */
static int units_alloc(struct backing *b, unsigned int n, uint64_t *start)
{
	int ret = -ENOSPC;
	unsigned int i;

	pthread_mutex_lock(&b->lock);
	if (b->used_units + n <= b->limit_units &&
	    (units_find_locked(b, n, false, start) ||
	     (n > 1 && units_find_locked(b, n, true, start)))) {
		for (i = 0; i < n; i++)
			unit_set(b, *start + i);
		b->used_units += n;
		b->objects++;
		b->cursor = *start + n;
		ret = 0;
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}

/*
 * run_find_locked() - find @n free contiguous units below the cap, next-fit
 * from the word of @cursor, wrapping around once; a run never wraps. Only
 * runs that start at a word's first free bits after a used one, or span
 * whole words, are seen: meant for batches (tens to hundreds of units),
 * not for one object. Cost: one pass over the bitmap's words, worst case.
 * Return: whether a run was found (in *@start). @lock held.
 */
static bool run_find_locked(struct backing *b, uint64_t n, uint64_t *start)
{
	size_t nw, w0, w, i;
	uint64_t run = 0, from = 0, f;
	unsigned int lo, hi;

	assert_held(&b->lock);
	if (b->limit_units < n)
		return false;
	nw = (size_t)((b->limit_units + WORD_BITS - 1) / WORD_BITS);
	w0 = (size_t)((b->cursor < b->limit_units ? b->cursor : 0) /
		      WORD_BITS);
	for (i = 0; i <= nw; i++) {
		w = (w0 + i) % nw;
		if (w == 0 || i == 0)
			run = 0;
		f = free_bits(b, w);
		/* free units at the low end of the word: they continue the
		 * run; the free ones at its high end start the next */
		lo = ~f ? (unsigned int)__builtin_ctzll(~f) : WORD_BITS;
		if (run == 0)
			from = (uint64_t)w * WORD_BITS;
		run += lo;
		if (run >= n)
			break;
		if (lo < WORD_BITS) {
			hi = (unsigned int)__builtin_clzll(~f);
			run = hi;
			from = (uint64_t)(w + 1) * WORD_BITS - hi;
		}
	}
	if (run < n)
		return false;
	*start = from;
	return true;
}

/* Allocate a run of @n units for @nr objects: 0 or -ENOSPC. Takes @lock. */
static int run_alloc(struct backing *b, uint64_t n, unsigned int nr,
		     uint64_t *start)
{
	int ret = -ENOSPC;
	uint64_t i;

	pthread_mutex_lock(&b->lock);
	if (b->used_units + n <= b->limit_units &&
	    run_find_locked(b, n, start)) {
		for (i = 0; i < n; i++)
			unit_set(b, *start + i);
		b->used_units += n;
		b->objects += nr;
		b->cursor = *start + n;
		ret = 0;
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}

/*
 * units_release() - give back @n units at @start, then punch every 4 KiB
 * block that became wholly free. The blocks are marked used while the
 * hole is punched, without @lock (fallocate is I/O), and cleared after.
 * Return: false if the units were not all allocated (nothing done). The
 * check is best-effort: a slot carries no generation, so a stale free of
 * units since given to another object is not detected.
 * Takes @lock twice when it punches, once otherwise.
 */
static bool units_release(struct backing *b, uint64_t start, unsigned int n)
{
	uint64_t first = start / BLOCK_UNITS;
	uint64_t last = (start + n - 1) / BLOCK_UNITS;
	uint64_t lo = UINT64_MAX, hi = 0, k;
	bool punch = atomic_load_explicit(&b->punch, memory_order_relaxed);
	unsigned int i;

	pthread_mutex_lock(&b->lock);
	if (start + n > (uint64_t)b->nr_words * WORD_BITS ||
	    b->used_units < n)
		goto out_invalid;
	for (i = 0; i < n; i++)
		if (!unit_test(b, start + i))
			goto out_invalid;
	for (i = 0; i < n; i++)
		unit_clear(b, start + i);
	b->used_units -= n;
	b->objects--;
	for (k = first; punch && k <= last; k++) {
		if (block_bits(b, k))
			continue;
		block_fill(b, k, true);
		if (lo == UINT64_MAX)
			lo = k;
		hi = k;
	}
	pthread_mutex_unlock(&b->lock);
	if (lo == UINT64_MAX)
		return true;

	/* lo..hi are contiguous: at most two blocks, both reserved */
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(lo * BLOCK),
		      (off_t)((hi - lo + 1) * BLOCK)) == 0) {
		atomic_fetch_add_explicit(&b->st.punched, hi - lo + 1,
					  memory_order_relaxed);
	} else {
		if (errno == EOPNOTSUPP)
			atomic_store(&b->punch, false);
		stat_inc(&b->st.punch_errors);
	}

	pthread_mutex_lock(&b->lock);
	for (k = lo; k <= hi; k++)
		block_fill(b, k, false);
	pthread_mutex_unlock(&b->lock);
	return true;

out_invalid:
	pthread_mutex_unlock(&b->lock);
	return false;
}

/*
 * cache_drop() - drop the page cache around [@off, @off + @len). The advice
 * only drops folios wholly inside its range, and the page cache uses large
 * folios (ext4 on the reference machine's 6.18 kernel: advice over the
 * object's own pages dropped almost nothing), so the range is widened to
 * the largest folio, naturally aligned. Other objects' clean pages in it
 * go too, as they should; folios being written by another thread are
 * dirty or locked and skipped (that thread drops them after its own
 * write). The cost is a walk of the cached entries of that range, which
 * stay few.
 */
static void cache_drop(struct backing *b, off_t off, size_t len)
{
	off_t start = off & ~(off_t)(DROP_GRANULE - 1);
	off_t end = (off + (off_t)len + DROP_GRANULE - 1) &
		    ~(off_t)(DROP_GRANULE - 1);

	posix_fadvise(b->fd, start, end - start, POSIX_FADV_DONTNEED);
}

static inline bool dio_aligned(const struct backing *b, const void *p)
{
	return ((uintptr_t)p & (b->mem_align - 1)) == 0;
}

/* Write @bytes (whole units) of @src at unit @slot; synchronous. 0 or
 * -errno. No lock held. */
static int units_write(struct backing *b, uint64_t slot, const void *src,
		       size_t bytes)
{
	off_t off = (off_t)(slot << UNIT_SHIFT);
	int ret;

	ret = fullio_pwrite(b->fd, src, bytes, off);
	if (ret < 0 || b->direct || b->in_memory)
		return ret;

	/* buffered: see the write's errors now, and leave clean pages (not
	 * for durability: the file is truncated at every start) */
	if (sync_file_range(b->fd, off, (off_t)bytes,
			    SYNC_FILE_RANGE_WAIT_BEFORE |
			    SYNC_FILE_RANGE_WRITE |
			    SYNC_FILE_RANGE_WAIT_AFTER) < 0)
		return -errno;
	cache_drop(b, off, bytes);
	return 0;
}

/* Write an object of @len bytes to its units at @slot, zero-padded to the
 * unit; synchronous. 0 or -errno. No lock held. */
static int object_write(struct backing *b, uint64_t slot, const void *buf,
			size_t len)
{
	_Alignas(DIO_MAX_ALIGN) unsigned char bounce[BACKING_MAX_OBJECT];
	size_t bytes = (size_t)len_to_units(len) << UNIT_SHIFT;
	const void *src = buf;

	if (bytes != len || (b->direct && !dio_aligned(b, buf))) {
		memcpy(bounce, buf, len);
		memset(bounce + len, 0, bytes - len);
		src = bounce;
	}
	return units_write(b, slot, src, bytes);
}

/* Read the object of @len bytes at @slot into @buf. 0 or -errno. */
static int object_read(struct backing *b, uint64_t slot, void *buf,
		       size_t len)
{
	_Alignas(DIO_MAX_ALIGN) unsigned char bounce[BACKING_MAX_OBJECT];
	size_t bytes = (size_t)len_to_units(len) << UNIT_SHIFT;
	off_t off = (off_t)(slot << UNIT_SHIFT);
	int ret;

	if (!b->direct) {
		ret = fullio_pread(b->fd, buf, len, off);
		if (!b->in_memory)
			cache_drop(b, off, len);
		return ret;
	}
	if (bytes == len && dio_aligned(b, buf))
		return fullio_pread(b->fd, buf, len, off);
	ret = fullio_pread(b->fd, bounce, bytes, off);
	if (ret == 0)
		memcpy(buf, bounce, len);
	return ret;
}

/*
 * file_dir_open() - open the directory of @path without following a
 * symlink in its last component (privfile_open_dir()): the file is
 * created and removed relative to this fd. *@name is set to the file's
 * name in @path. Return: the fd, or -errno (-ELOOP for a symlinked
 * directory, -EISDIR for a path that ends in '/').
 */
static int file_dir_open(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	*name = slash ? slash + 1 : path;
	if (!**name)
		return -EISDIR;
	if (!slash)
		dir = strdup(".");
	else
		dir = slash == path ? strdup("/") :
			strndup(path, (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	fd = privfile_open_dir(dir);
	free(dir);
	return fd;
}

/*
 * Whether the existing file @fd may be taken over: it is empty, or it
 * carries BACKING_XATTR, the mark every backing file gets (one a crashed
 * daemon left). Anything else is someone's data: a typo in the path must
 * never truncate it.
 */
static bool file_is_ours(int fd, const struct stat *sb)
{
	char v;

	return (sb->st_size == 0 && sb->st_blocks == 0) ||
	       fgetxattr(fd, BACKING_XATTR, &v, sizeof(v)) >= 0;
}

/*
 * file_take_over() - the path names an existing file: check it (regular,
 * ours, one name, not locked by a live daemon, empty or a backing file),
 * then unlink it, so that whoever holds it open (it may have been
 * readable once) never sees what we write; file_open() creates a fresh
 * one in its place. Symlinks are not followed. The old file's contents
 * are lost: empty, or a dead daemon's objects that mean nothing now.
 * Return: 0 (path unlinked), -ENOENT if it vanished meanwhile, or -errno
 * with the file untouched.
 */
static int file_take_over(int dirfd, const char *name)
{
	struct stat sb, now;
	int fd, ret;

	/* O_NONBLOCK: opening a fifo or a device must not block */
	fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	ret = privfile_check(fd, &sb);
	if (ret == 0)
		ret = privfile_lock(fd);
	if (ret < 0)
		goto out_close;
	if (!file_is_ours(fd, &sb)) {
		ret = -EEXIST;
		goto out_close;
	}
	/* the name must still be the file checked and locked */
	if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    now.st_dev != sb.st_dev || now.st_ino != sb.st_ino) {
		ret = -EBUSY;
		goto out_close;
	}
	ret = unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
out_close:
	close(fd);
	return ret;
}

/*
 * file_open() - open @b->path, never through a symlink (neither the file
 * nor its directory): create it (O_EXCL, 0600); or, if a file is there,
 * take it over (file_take_over(): checked, unlinked) and create a fresh
 * one in its place. The new file is locked (flock) and marked
 * (BACKING_XATTR, where the filesystem has extended attributes). The
 * daemon only ever writes to a file it created itself, mode 0600, that
 * nobody else can have opened.
 * On failure no file of this call is left; a pre-existing file is left
 * untouched, unless the failure came after it was replaced (then it is
 * gone: it held nothing of value).
 * Return: 0 or -errno (see backing_open()).
 */
/*
 * file_keep() - a successor's: the path names its predecessor's backing
 * file (ours, one name, not locked by a live daemon, marked): use it as it
 * is. Return: the fd (locked), -ENOENT if there is no file, -EEXIST if it
 * is no backing file, or -errno.
 */
static int file_keep(struct backing *b, struct stat *sb)
{
	int fd, ret;

	fd = openat(b->dirfd, b->name, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	ret = privfile_check(fd, sb);
	if (ret == 0)
		ret = privfile_lock(fd);
	if (ret == 0 && !file_is_ours(fd, sb))
		ret = -EEXIST;
	if (ret == 0 && fcntl(fd, F_SETFL, 0) < 0)
		ret = -errno;
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static int file_open(struct backing *b, bool keep)
{
	struct stat sb;
	bool replaced = false;
	int fd, ret, tries = 0;

	ret = file_dir_open(b->path, &b->name);
	if (ret < 0)
		return ret;
	b->dirfd = ret;
	if (keep) {
		fd = file_keep(b, &sb);
		if (fd >= 0) {
			b->fd = fd;
			b->dev = sb.st_dev;
			b->ino = sb.st_ino;
			b->kept = true;
			return 0;
		}
		if (fd != -ENOENT) {
			close(b->dirfd);
			return fd;
		}
	}
again:
	fd = openat(b->dirfd, b->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0 && errno == EEXIST && !replaced) {
		ret = file_take_over(b->dirfd, b->name);
		if (ret == 0)
			replaced = true;
		if (ret == 0 || (ret == -ENOENT && tries++ < 3))
			goto again;	/* replaced, or removed meanwhile */
		goto out_close_dir;
	}
	if (fd < 0) {
		/* EEXIST after a replace: another process raced us there */
		ret = errno == EEXIST ? -EBUSY : -errno;
		goto out_close_dir;
	}
	/* a daemon that removed the old file keeps the path (emptied) */
	b->created = !replaced;
	ret = privfile_check(fd, &sb);
	if (ret == 0)
		ret = privfile_lock(fd);
	if (ret < 0)
		goto out_unlink;
	if (fsetxattr(fd, BACKING_XATTR, "1", 1, 0) < 0 && errno != ENOTSUP) {
		ret = -errno;
		goto out_unlink;
	}
	b->fd = fd;
	b->dev = sb.st_dev;
	b->ino = sb.st_ino;
	return 0;

out_unlink:
	unlinkat(b->dirfd, b->name, 0);
	close(fd);
out_close_dir:
	close(b->dirfd);
	return ret;
}

/* Remove the file if the path still names it. */
static void file_unlink(struct backing *b)
{
	struct stat sb;

	if (fstatat(b->dirfd, b->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    sb.st_dev == b->dev && sb.st_ino == b->ino)
		unlinkat(b->dirfd, b->name, 0);
}

/*
 * dio_usable() - whether direct I/O at 512-byte offsets works on the
 * (empty) file, @fd already having O_DIRECT. Asks statx(STATX_DIOALIGN);
 * if the kernel or filesystem does not tell, writes 512 zeros at offset 0
 * and truncates the file back to 0.
 * Return: 1 yes, 0 no, or -errno if the file could not be emptied again.
 */
static int dio_usable(struct backing *b)
{
	_Alignas(DIO_MAX_ALIGN) static const unsigned char zeros[UNIT];
	bool ok;

#ifdef STATX_DIOALIGN
	struct statx sx;

	if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN)) {
		unsigned int o = sx.stx_dio_offset_align;
		unsigned int m = sx.stx_dio_mem_align;

		/* 0: no direct I/O on this file */
		if (!o || UNIT % o || !m || m > DIO_MAX_ALIGN || (m & (m - 1)))
			return 0;
		b->mem_align = m;
		return 1;
	}
#endif
	ok = pwrite(b->fd, zeros, UNIT, 0) == UNIT;
	if (ftruncate(b->fd, 0) < 0)
		return -errno;
	b->mem_align = UNIT;
	return ok;
}

/*
 * io_setup() - choose the I/O mode (see the file header): buffered on
 * tmpfs/ramfs, O_DIRECT where it works at 512 bytes, buffered otherwise.
 * Return: 0 or -errno.
 */
static int io_setup(struct backing *b)
{
	struct statfs sf;
	int flags, ret;

	if (fstatfs(b->fd, &sf) == 0 &&
	    (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)) {
		b->in_memory = true;
		return 0;
	}
	flags = fcntl(b->fd, F_GETFL);
	if (flags < 0)
		return -errno;
	/* EINVAL: the filesystem has no direct I/O */
	if (fcntl(b->fd, F_SETFL, flags | O_DIRECT) == 0) {
		ret = dio_usable(b);
		if (ret < 0)
			return ret;
		if (ret == 0 && fcntl(b->fd, F_SETFL, flags) < 0)
			return -errno;
		b->direct = ret;
	}
	if (!b->direct)	/* a fault reads one object: no readahead */
		posix_fadvise(b->fd, 0, 0, POSIX_FADV_RANDOM);
	return 0;
}

/*****************
 * API Functions
 *****************/

struct backing *backing_open(const char *path, uint64_t limit_bytes,
			     bool keep)
{
	pthread_mutexattr_t attr;
	struct backing *b;
	size_t plen;
	int ret;

	if (!path || !*path || limit_bytes > LIMIT_MAX) {
		errno = EINVAL;
		return NULL;
	}
	plen = strlen(path);
	if (failpoint_hit() || !(b = calloc(1, sizeof(*b) + plen + 1))) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(b->path, path, plen + 1);
	b->limit_bytes = limit_bytes;
	b->limit_units = limit_bytes >> UNIT_SHIFT;
	b->nr_words = words_for(limit_bytes);
	atomic_init(&b->nr_units, (uint64_t)b->nr_words * WORD_BITS);
	atomic_init(&b->punch, true);
	if (failpoint_hit() ||
	    !(b->bitmap = calloc(b->nr_words, sizeof(*b->bitmap)))) {
		ret = -ENOMEM;
		goto out_free_backing;
	}
	ret = file_open(b, keep);
	if (ret < 0)
		goto out_free_bitmap;
	ret = io_setup(b);
	if (ret < 0)
		goto out_close_file;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&b->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return b;

out_close_file:
	file_unlink(b);
	close(b->fd);
	close(b->dirfd);
out_free_bitmap:
	free(b->bitmap);
out_free_backing:
	free(b);
	errno = -ret;
	return NULL;
}

/*
 * Teardown order: truncate first, so the data is gone even if the unlink
 * fails; unlink while still holding the flock, so that a daemon starting
 * meanwhile cannot have its new file removed; close (drops the lock) last.
 */
void backing_hand_over(struct backing *b)
{
	b->handed_over = true;
}

void backing_identity(const struct backing *b, uint64_t *dev,
		      uint64_t *ino)
{
	*dev = (uint64_t)b->dev;
	*ino = (uint64_t)b->ino;
}

/* Nothing of @b's objects may stay: empty the file, and remove it if it
 * is ours. */
static void file_discard(struct backing *b)
{
	if (ftruncate(b->fd, 0) < 0) {
		/* nothing to do about it: the data goes with the unlink */
	}
	if (b->created)
		file_unlink(b);
}

void backing_close(struct backing *b)
{
	if (!b)
		return;
	if (!b->handed_over)
		file_discard(b);
	close(b->fd);
	close(b->dirfd);
	pthread_mutex_destroy(&b->lock);
	free(b->bitmap);
	free(b);
}

int backing_write(struct backing *b, const void *buf, size_t len,
		  uint64_t *slot)
{
	unsigned int n;
	uint64_t start;
	int ret;

	if (len == 0 || len > BACKING_MAX_OBJECT)
		return -EINVAL;
	n = len_to_units(len);
	if (units_alloc(b, n, &start) < 0) {
		stat_inc(&b->st.full);
		return -ENOSPC;
	}
	ret = object_write(b, start, buf, len);
	if (ret < 0) {
		units_release(b, start, n);
		if (ret == -ENOSPC || ret == -EDQUOT) {
			stat_inc(&b->st.full);
			return -ENOSPC;
		}
		stat_inc(&b->st.write_errors);
		return ret;
	}
	stat_inc(&b->st.writes);
	*slot = start;
	return 0;
}

/* A write of units at @start failed with @ret: give back the objects of
 * @lens there; the error as backing_write() returns it. */
static int batch_failed(struct backing *b, uint64_t start,
			const size_t *lens, unsigned int nr, int ret)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		units_release(b, start, len_to_units(lens[i]));
		start += len_to_units(lens[i]);
	}
	if (ret == -ENOSPC || ret == -EDQUOT) {
		stat_inc(&b->st.full);
		return -ENOSPC;
	}
	stat_inc(&b->st.write_errors);
	return ret;
}

int backing_write_batch(struct backing *b, const void *buf,
			const size_t *lens, unsigned int nr, uint64_t *slots)
{
	uint64_t units = 0, start;
	unsigned int i;
	int ret;

	for (i = 0; i < nr; i++) {
		if (lens[i] == 0 || lens[i] > BACKING_MAX_OBJECT)
			return -EINVAL;
		units += len_to_units(lens[i]);
	}
	if (nr == 0 || (b->direct && !dio_aligned(b, buf)))
		return -EINVAL;
	if (run_alloc(b, units, nr, &start) < 0)
		return -ENOSPC;		/* no run: not counted as full */
	ret = units_write(b, start, buf, (size_t)units << UNIT_SHIFT);
	if (ret < 0)
		return batch_failed(b, start, lens, nr, ret);
	for (i = 0; i < nr; i++) {
		slots[i] = start;
		start += len_to_units(lens[i]);
	}
	atomic_fetch_add_explicit(&b->st.writes, nr, memory_order_relaxed);
	stat_inc(&b->st.batches);
	return 0;
}

int backing_read(struct backing *b, uint64_t slot, void *buf, size_t len)
{
	uint64_t units = atomic_load_explicit(&b->nr_units,
					      memory_order_acquire);
	int ret;

	if (len == 0 || len > BACKING_MAX_OBJECT || slot > units ||
	    units - slot < len_to_units(len))
		return -EINVAL;
	ret = object_read(b, slot, buf, len);
	stat_inc(ret < 0 ? &b->st.read_errors : &b->st.reads);
	return ret;
}

void backing_free(struct backing *b, uint64_t slot, size_t len)
{
	if (len == 0 || len > BACKING_MAX_OBJECT ||
	    slot > UINT64_MAX - MAX_UNITS ||
	    !units_release(b, slot, len_to_units(len)))
		stat_inc(&b->st.invalid_frees);
}

int backing_recover_ref(struct backing *b, uint64_t slot, size_t len)
{
	unsigned int n = len_to_units(len), i;
	int ret = -ESTALE;

	/* a file made anew holds none of a predecessor's objects */
	if (len == 0 || len > BACKING_MAX_OBJECT || !b->kept)
		return -ESTALE;
	pthread_mutex_lock(&b->lock);
	if (slot > b->limit_units || b->limit_units - slot < n)
		goto out_unlock;
	for (i = 0; i < n; i++)
		if (unit_test(b, slot + i))
			goto out_unlock;
	for (i = 0; i < n; i++)
		unit_set(b, slot + i);
	b->used_units += n;
	b->objects++;
	ret = 0;
out_unlock:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

/*
 * The image of the slot map at rest: struct map_image, then the bitmap's
 * words up to the last one in use.
 */
#define MAP_IMAGE_MAGIC	0x757a736c6f746d70ull	/* "uzslotmp" */

struct map_image {
	uint64_t magic;
	uint64_t used_units;
	uint64_t objects;
	uint64_t cursor;
	uint64_t nr_words;
};

/* Words of @b's bitmap up to the last one with a unit in use; lock held. */
static size_t words_in_use(const struct backing *b)
{
	size_t n = b->nr_words;

	while (n && !b->bitmap[n - 1])
		n--;
	return n;
}

size_t backing_image_size(struct backing *b)
{
	size_t n;

	pthread_mutex_lock(&b->lock);
	n = words_in_use(b);
	pthread_mutex_unlock(&b->lock);
	return sizeof(struct map_image) + n * sizeof(*b->bitmap);
}

void backing_save_image(struct backing *b, void *buf)
{
	struct map_image *im = buf;

	pthread_mutex_lock(&b->lock);
	*im = (struct map_image){ MAP_IMAGE_MAGIC, b->used_units, b->objects,
				  b->cursor, words_in_use(b) };
	memcpy(im + 1, b->bitmap, im->nr_words * sizeof(*b->bitmap));
	pthread_mutex_unlock(&b->lock);
}

bool backing_image_fits(struct backing *b, const void *buf, size_t len)
{
	const struct map_image *im = buf;
	bool fits;

	if (!b->kept || len < sizeof(*im) || im->magic != MAP_IMAGE_MAGIC ||
	    (len - sizeof(*im)) % sizeof(*b->bitmap) ||
	    (len - sizeof(*im)) / sizeof(*b->bitmap) != im->nr_words ||
	    im->used_units > im->nr_words * WORD_BITS)
		return false;
	pthread_mutex_lock(&b->lock);
	fits = im->nr_words <= b->nr_words && !b->used_units;
	pthread_mutex_unlock(&b->lock);
	return fits;
}

int backing_load_image(struct backing *b, const void *buf, size_t len)
{
	const struct map_image *im = buf;

	if (!backing_image_fits(b, buf, len))
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	memcpy(b->bitmap, im + 1, im->nr_words * sizeof(*b->bitmap));
	b->used_units = im->used_units;
	b->objects = im->objects;
	b->cursor = im->cursor < b->nr_words * WORD_BITS ? im->cursor : 0;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

int backing_set_limit(struct backing *b, uint64_t limit_bytes)
{
	size_t words = words_for(limit_bytes);
	uint64_t *bitmap, *old = NULL;

	if (limit_bytes > LIMIT_MAX)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	if (words <= b->nr_words)
		goto out_set;
	pthread_mutex_unlock(&b->lock);

	/* grow: allocate without the lock, then copy under it (O(bitmap),
	 * a memcpy of limit/4096 bytes, once per reload that grows) */
	if (failpoint_hit() || !(bitmap = calloc(words, sizeof(*bitmap))))
		return -ENOMEM;
	pthread_mutex_lock(&b->lock);
	if (words <= b->nr_words) {
		old = bitmap;	/* another reload grew it meanwhile */
		goto out_set;
	}
	memcpy(bitmap, b->bitmap, b->nr_words * sizeof(*bitmap));
	old = b->bitmap;
	b->bitmap = bitmap;
	b->nr_words = words;
	atomic_store_explicit(&b->nr_units, (uint64_t)words * WORD_BITS,
			      memory_order_release);
out_set:
	b->limit_bytes = limit_bytes;
	b->limit_units = limit_bytes >> UNIT_SHIFT;
	pthread_mutex_unlock(&b->lock);
	free(old);
	return 0;
}

void backing_get_stats(struct backing *b, struct backing_stats *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&b->lock);
	st->limit_bytes = b->limit_bytes;
	st->used_bytes = b->used_units << UNIT_SHIFT;
	st->objects = b->objects;
	pthread_mutex_unlock(&b->lock);
	st->writes = stat_get(&b->st.writes);
	st->batches = stat_get(&b->st.batches);
	st->reads = stat_get(&b->st.reads);
	st->write_errors = stat_get(&b->st.write_errors);
	st->read_errors = stat_get(&b->st.read_errors);
	st->full = stat_get(&b->st.full);
	st->punched = stat_get(&b->st.punched);
	st->punch_errors = stat_get(&b->st.punch_errors);
	st->invalid_frees = stat_get(&b->st.invalid_frees);
	if (fstat(b->fd, &sb) == 0)
		st->file_bytes = (uint64_t)sb.st_blocks * 512;
	st->direct = b->direct;
	st->in_memory = b->in_memory;
	st->punch = atomic_load_explicit(&b->punch, memory_order_relaxed);
}
