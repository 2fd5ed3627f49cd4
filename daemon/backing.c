/*
 * backing.c - the write-back tier: where the evict handler puts
 * compressed objects when the z3fold pool is full, and where the fault
 * path reads them back from. This file is the tier's slot map, object
 * framing and counters; the bytes go to a backend (backing-io.h): the
 * local file (backing-file.c) or an NBD export (backing-nbd.c), chosen
 * by what backing_open() is given.
 *
 * Layout. The backend's space is cut into 512-byte units; an object of n
 * bytes (at most one 4 KiB page: lz4/zstd output or a raw page) takes
 * ceil(n/512) contiguous units (with its frame, below, ceil((n+16)/512)),
 * and its slot is the number of its first unit (offset slot * 512 in the
 * backend's data space). An object is placed within one 4 KiB block
 * when some block has room (so a raw page is block-aligned): a read then
 * touches one block. It straddles two blocks only when no block has room.
 * The tail of an object's last unit is written as zeros: no stale bytes
 * from our buffers reach the backend.
 *
 * Frames. A backend that is not ours alone to trust (an NBD export: a
 * server may restart empty, be replaced, or return what another client
 * wrote) gets framed objects: a 16-byte header (magic, length, and the
 * XXH3-64 of the object seeded with the export's identity, the slot and
 * the length) before the object's bytes. A read checks all of it: an
 * object that does not verify is never returned (-EBADMSG, counted), and
 * the fault path poisons the page instead of serving wrong data. The
 * local file's objects are bare, as they always were.
 *
 * Allocation. One bit per unit over the cap, in a bitmap of 64-bit words:
 * the bitmap costs limit/4096 bytes of RAM (256 KiB per GiB of cap), and
 * the daemon's mlockall() keeps it resident. Allocation is next-fit: the
 * search starts at a cursor left after the last allocation and wraps
 * around, so it is usually a few words, O(bitmap words) when the space is
 * nearly full or fragmented (2 M words for a 64 GiB cap), twice when only
 * a straddling run is left. It fails fast when used + n would pass the
 * cap. Units past the cap (or past what the backend holds) are never
 * handed out.
 *
 * Giving space back. The backend gives space back in granules (4 KiB
 * holes in the file; 1 MiB segments of an export, one TRIM each). When a
 * free (or a failed write) leaves a granule wholly free, the freeing
 * thread marks the granule's units all-used while it releases it (punch,
 * TRIM) without the lock, then clears them: no allocator can place an
 * object in a granule being released. A backend that cannot release
 * (EOPNOTSUPP) is not asked again. While a release is in flight, an
 * allocation may fail to find room that is about to be free again and
 * return -ENOSPC; the caller treats that as full for a while, which is
 * safe.
 *
 * Batches. backing_write_batch() takes many objects, packed back to back
 * in whole units by the caller, in one run of contiguous units and one
 * write: a write of 100 KiB costs little more than one of 2 KiB (direct
 * I/O on the reference machine: 4 KiB writes 61 MB/s, 64 KiB 408 MB/s,
 * 256 KiB 713 MB/s; over the network a round trip saved per object). The
 * run is found by a word-wise next-fit scan (run_find_locked()), which
 * fills an empty space from its start: an export's segments fill one
 * after the other. When no run is free the caller writes the objects one
 * by one.
 *
 * Errors. A write that fails leaves the bitmap as it was: its units are
 * released before returning. ENOSPC and EDQUOT from the backend count as
 * full and return -ENOSPC, like the cap; other errors count as write
 * errors and return their -errno. The caller keeps the object in the pool
 * either way. A read the backend cannot serve for now (an export that is
 * away: -EAGAIN) is counted as a wait; once the backend has been away for
 * longer than the timeout (backing_set_timeout()), such reads fail with
 * -ETIMEDOUT instead, so that a fault is never left waiting for ever.
 *
 * Locks. b->lock (an adaptive mutex) protects the bitmap and its cursor,
 * cap and usage; it is held only for bitmap work, never across I/O, and
 * takes no other lock. The backend and its info are immutable after
 * backing_open(); counters are atomic. Reads take no lock.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "lib/common/clock.h"
#include "lib/common/debug.h"
#include "lib/common/failpoint.h"
#include "backing.h"
#include "backing-io.h"

/*****************
 * Structures
 *****************/

#define UNIT_SHIFT	9
#define UNIT		(1u << UNIT_SHIFT)			/* 512 */
#define BLOCK_UNITS	(4096u / UNIT)	/* 8: one bitmap byte */
#define WORD_BITS	64u
#define FRAME_BYTES	16u
#define FRAME_MAGIC	0x626f7a75u	/* "uzob" */
/* The largest object with its frame, in units: 9. */
#define MAX_UNITS	((BACKING_MAX_OBJECT + FRAME_BYTES + UNIT - 1) / UNIT)
#define BOUNCE_ALIGN	4096u		/* direct I/O's strictest */

/* Largest cap: the last object must end below OFF_MAX. */
#define LIMIT_MAX	((uint64_t)INT64_MAX - MAX_UNITS * UNIT)

_Static_assert(UNIT == BACKING_UNIT, "unit size");
_Static_assert(BACKING_GRANULE_MAX % WORD_BITS == 0, "whole words");
_Static_assert(MAX_UNITS <= BLOCK_UNITS + 1,
	       "an object spans <= 2 blocks (and 2 granules)");

/*
 * struct frame - the header of a framed object, in the backend
 * @magic: FRAME_MAGIC
 * @len:   the object's bytes (1..4096), which follow
 * @zero:  0
 * @sum:   XXH3-64 of the object's bytes (frame_sum())
 */
struct frame {
	uint32_t magic;
	uint16_t len;
	uint16_t zero;
	uint64_t sum;
};

_Static_assert(sizeof(struct frame) == FRAME_BYTES, "frame size");

/*
 * struct backing - the write-back tier
 * @lock:        protects @bitmap, @nr_words, @limit_bytes, @limit_units,
 *               @used_units, @objects and @cursor; never held across I/O
 * @bitmap:      one bit per 512-byte unit, set while allocated (or while
 *               its granule is being released); @lock
 * @nr_words:    words in @bitmap (whole granules); only grows; @lock
 * @nr_units:    units @bitmap covers (@nr_words * 64), for the lockless
 *               range check of reads; only grows; atomic
 * @limit_bytes: the cap as set; @lock
 * @limit_units: the cap in units, never past what the backend holds:
 *               allocations stay below it; @lock
 * @used_units:  units allocated to objects (not to releases); @lock
 * @objects:     objects allocated; @lock
 * @cursor:      next-fit search start, in units; @lock
 * @ops, @io:    the backend; immutable
 * @info:        what the backend said at open; immutable
 * @release:     the backend gives space back; cleared on EOPNOTSUPP
 * @handed_over: backing_close() leaves the objects to a successor; set by
 *               the thread that closes, before
 * @timeout_ns:  how long reads wait for a backend that is away; atomic
 * @away_since:  when reads found the backend away, 0 while it answers;
 *               atomic
 * @st:          counters; atomic. @bytes, @latency (one count per
 *               bucket) and @latency_ns: [IO_READ] and [IO_WRITE]
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
	const struct backing_ops *ops;
	struct backing_io *io;
	struct backing_io_info info;
	atomic_bool release;
	bool handed_over;
	atomic_uint_fast64_t timeout_ns;
	atomic_uint_fast64_t away_since;
	struct {
		atomic_uint_fast64_t writes, batches, reads, write_errors,
			read_errors, checksum_errors, read_waits, timeouts,
			full, punched, punch_errors, invalid_frees;
		atomic_uint_fast64_t bytes[2];
		atomic_uint_fast64_t latency[2][BACKING_LATENCY_BUCKETS + 1];
		atomic_uint_fast64_t latency_ns[2];
	} st;
};

enum { IO_READ, IO_WRITE };

const unsigned int BACKING_LATENCY_US[BACKING_LATENCY_BUCKETS] = {
	50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 250000,
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

/* Units an object of @len bytes takes, with its frame if framed. */
static inline unsigned int obj_units(const struct backing *b, size_t len)
{
	return len_to_units(len + (b->info.framed ? FRAME_BYTES : 0));
}

/* Words of a bitmap covering @limit_bytes in whole granules of any
 * backend (BACKING_GRANULE_MAX units); never none. */
static inline size_t words_for(uint64_t limit_bytes)
{
	uint64_t units = limit_bytes >> UNIT_SHIFT;
	uint64_t span = BACKING_GRANULE_MAX;

	return (size_t)((units + span - 1) / span ?: 1) *
	       (BACKING_GRANULE_MAX / WORD_BITS);
}

/* The cap in units: @limit_bytes, never past what the backend holds. */
static inline uint64_t limit_units(const struct backing *b,
				   uint64_t limit_bytes)
{
	uint64_t bytes = limit_bytes < b->info.size_bytes ?
			 limit_bytes : b->info.size_bytes;

	return bytes >> UNIT_SHIFT;
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


/* The mask of granule @k's units in its word (granules under a word). */
static inline uint64_t granule_mask(const struct backing *b, uint64_t k)
{
	unsigned int g = b->info.release_units;

	return ((1ull << g) - 1) << (k * g % WORD_BITS);
}

/* Whether no unit of granule @k is in use. @lock held. */
static bool granule_empty(const struct backing *b, uint64_t k)
{
	unsigned int g = b->info.release_units;
	size_t w = (size_t)(k * g / WORD_BITS), end;

	if (g < WORD_BITS)
		return !(b->bitmap[w] & granule_mask(b, k));
	for (end = w + g / WORD_BITS; w < end; w++)
		if (b->bitmap[w])
			return false;
	return true;
}

/* Mark every unit of granule @k used (while it is released) or free.
 * @lock held. */
static void granule_fill(struct backing *b, uint64_t k, bool used)
{
	unsigned int g = b->info.release_units;
	size_t w = (size_t)(k * g / WORD_BITS), end;

	if (g < WORD_BITS) {
		if (used)
			b->bitmap[w] |= granule_mask(b, k);
		else
			b->bitmap[w] &= ~granule_mask(b, k);
		return;
	}
	for (end = w + g / WORD_BITS; w < end; w++)
		b->bitmap[w] = used ? ~0ull : 0;
}

/*
 * units_release() - give back @n units at @start, then release every
 * granule that became wholly free. The granules are marked used while
 * the backend releases them, without @lock (it is I/O), and cleared
 * after.
 * Return: false if the units were not all allocated (nothing done). The
 * check is best-effort: a slot carries no generation, so a stale free of
 * units since given to another object is not detected.
 * Takes @lock twice when it releases, once otherwise.
 */
static bool units_release(struct backing *b, uint64_t start, unsigned int n)
{
	unsigned int g = b->info.release_units;
	uint64_t first = start / g, last = (start + n - 1) / g;
	uint64_t lo = UINT64_MAX, hi = 0, k;
	bool release = atomic_load_explicit(&b->release,
					    memory_order_relaxed);
	unsigned int i;
	int ret;

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
	for (k = first; release && k <= last; k++) {
		if (!granule_empty(b, k))
			continue;
		granule_fill(b, k, true);
		if (lo == UINT64_MAX)
			lo = k;
		hi = k;
	}
	pthread_mutex_unlock(&b->lock);
	if (lo == UINT64_MAX)
		return true;

	/* lo..hi are contiguous: at most two granules, both reserved */
	ret = b->ops->release(b->io, lo * g * UNIT, (hi - lo + 1) * g * UNIT);
	if (ret == 0) {
		atomic_fetch_add_explicit(&b->st.punched,
					  (hi - lo + 1) * g / BLOCK_UNITS,
					  memory_order_relaxed);
	} else {
		if (ret == -EOPNOTSUPP)
			atomic_store(&b->release, false);
		stat_inc(&b->st.punch_errors);
	}

	pthread_mutex_lock(&b->lock);
	for (k = lo; k <= hi; k++)
		granule_fill(b, k, false);
	pthread_mutex_unlock(&b->lock);
	return true;

out_invalid:
	pthread_mutex_unlock(&b->lock);
	return false;
}

/*****************
 * Timed I/O
 *****************/

/* A request of @bytes in direction @dir, begun at @t0, ended with @ret. */
static void io_account(struct backing *b, int dir, uint64_t t0,
		       size_t bytes, int ret)
{
	uint64_t ns = clock_now_ns() - t0;
	unsigned int i = 0;

	while (i < BACKING_LATENCY_BUCKETS &&
	       ns > BACKING_LATENCY_US[i] * 1000ull)
		i++;
	stat_inc(&b->st.latency[dir][i]);
	atomic_fetch_add_explicit(&b->st.latency_ns[dir], ns,
				  memory_order_relaxed);
	if (ret == 0)
		atomic_fetch_add_explicit(&b->st.bytes[dir], bytes,
					  memory_order_relaxed);
}

static int io_read(struct backing *b, uint64_t off, void *buf, size_t len)
{
	uint64_t t0 = clock_now_ns();
	int ret = b->ops->read(b->io, off, buf, len);

	if (ret != -EAGAIN)
		io_account(b, IO_READ, t0, len, ret);
	return ret;
}

static int io_write(struct backing *b, uint64_t off, const void *buf,
		    size_t bytes)
{
	uint64_t t0 = clock_now_ns();
	int ret = b->ops->write(b->io, off, buf, bytes);

	if (ret != -EAGAIN)
		io_account(b, IO_WRITE, t0, bytes, ret);
	return ret;
}

/*****************
 * Frames
 *****************/

/* The checksum of object @obj of @len bytes at @slot. */
static uint64_t frame_sum(const struct backing *b, uint64_t slot,
			  const void *obj, size_t len)
{
	return XXH3_64bits_withSeed(obj, len, b->info.seed ^
				    (slot * 0x9e3779b97f4a7c15ull) ^ len);
}

/* Write object @obj (@len bytes) at @slot into @dst as the backend
 * keeps it, zero-padded to its last unit: framed or bare. Returns the
 * bytes of @dst used (whole units). */
static size_t frame_put(const struct backing *b, uint64_t slot,
			const void *obj, size_t len, uint8_t *dst)
{
	size_t bytes = (size_t)obj_units(b, len) << UNIT_SHIFT;
	size_t head = b->info.framed ? FRAME_BYTES : 0;

	if (head) {
		struct frame f = { FRAME_MAGIC, (uint16_t)len, 0,
				   frame_sum(b, slot, obj, len) };

		memcpy(dst, &f, sizeof(f));
	}
	memcpy(dst + head, obj, len);
	memset(dst + head + len, 0, bytes - head - len);
	return bytes;
}

/* Whether the framed object read at @slot into @src is the one of @len
 * bytes written there. */
static bool frame_check(const struct backing *b, uint64_t slot,
			const uint8_t *src, size_t len)
{
	struct frame f;

	memcpy(&f, src, sizeof(f));
	return f.magic == FRAME_MAGIC && f.len == len && f.zero == 0 &&
	       f.sum == frame_sum(b, slot, src + FRAME_BYTES, len);
}

/*****************
 * API Functions
 *****************/

bool backing_target_is_nbd(const char *target)
{
	/* libnbd's URI schemes */
	static const char *const schemes[] = {
		"nbd://", "nbds://", "nbd+unix://", "nbds+unix://",
		"nbd+vsock://", "nbds+vsock://",
	};
	size_t i;

	for (i = 0; target && i < sizeof(schemes) / sizeof(*schemes); i++)
		if (!strncmp(target, schemes[i], strlen(schemes[i])))
			return true;
	return false;
}

struct backing *backing_open(const char *target, uint64_t limit_bytes,
			     bool keep)
{
	pthread_mutexattr_t attr;
	struct backing *b;
	int err;

	if (!target || !*target || limit_bytes > LIMIT_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if (failpoint_hit() || !(b = calloc(1, sizeof(*b)))) {
		errno = ENOMEM;
		return NULL;
	}
	/* the bitmap first: a failed open leaves a file there untouched */
	b->nr_words = words_for(limit_bytes);
	if (failpoint_hit() ||
	    !(b->bitmap = calloc(b->nr_words, sizeof(*b->bitmap)))) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	b->io = backing_target_is_nbd(target) ?
		backing_nbd_open(target, keep, &b->ops, &b->info) :
		backing_file_open(target, keep, &b->ops, &b->info);
	if (!b->io) {
		err = errno;
		free(b->bitmap);
		free(b);
		errno = err;
		return NULL;
	}
	b->limit_bytes = limit_bytes;
	b->limit_units = limit_units(b, limit_bytes);
	atomic_init(&b->nr_units, (uint64_t)b->nr_words * WORD_BITS);
	atomic_init(&b->release, true);
	atomic_init(&b->timeout_ns, BACKING_TIMEOUT_DEFAULT * 1000000000ull);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&b->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return b;
}

void backing_hand_over(struct backing *b)
{
	b->handed_over = true;
}

void backing_identity(const struct backing *b, uint64_t *dev,
		      uint64_t *ino)
{
	*dev = b->info.id_dev;
	*ino = b->info.id_ino;
}

void backing_close(struct backing *b)
{
	if (!b)
		return;
	b->ops->close(b->io, !b->handed_over);
	pthread_mutex_destroy(&b->lock);
	free(b->bitmap);
	free(b);
}

bool backing_ready(struct backing *b)
{
	return b->ops->ready(b->io);
}

void backing_set_timeout(struct backing *b, unsigned int seconds)
{
	atomic_store(&b->timeout_ns, seconds * 1000000000ull);
}

/* A write of @n units at @start failed with @ret: give them back (as
 * objects of @lens, @nr of them); the error as backing_write() returns
 * it. */
static int write_failed(struct backing *b, uint64_t start,
			const size_t *lens, unsigned int nr, int ret)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		units_release(b, start, obj_units(b, lens[i]));
		start += obj_units(b, lens[i]);
	}
	if (ret == -ENOSPC || ret == -EDQUOT) {
		stat_inc(&b->st.full);
		return -ENOSPC;
	}
	if (ret != -EAGAIN)	/* an export that went away: no I/O error */
		stat_inc(&b->st.write_errors);
	return ret;
}

static inline bool aligned_for(const struct backing *b, const void *p)
{
	return ((uintptr_t)p & (b->info.mem_align - 1)) == 0;
}

int backing_write(struct backing *b, const void *buf, size_t len,
		  uint64_t *slot)
{
	_Alignas(BOUNCE_ALIGN) uint8_t bounce[MAX_UNITS * UNIT];
	const void *src = buf;
	unsigned int n;
	uint64_t start;
	size_t bytes;
	int ret;

	if (len == 0 || len > BACKING_MAX_OBJECT)
		return -EINVAL;
	n = obj_units(b, len);
	if (units_alloc(b, n, &start) < 0) {
		stat_inc(&b->st.full);
		return -ENOSPC;
	}
	bytes = (size_t)n << UNIT_SHIFT;
	if (bytes != len || b->info.framed || !aligned_for(b, buf)) {
		frame_put(b, start, buf, len, bounce);
		src = bounce;
	}
	ret = io_write(b, start << UNIT_SHIFT, src, bytes);
	if (ret < 0)
		return write_failed(b, start, &len, 1, ret);
	stat_inc(&b->st.writes);
	*slot = start;
	return 0;
}

/* The batch @buf (bare objects of @lens, each padded to a unit) framed
 * for the run at @start, in a new buffer (free()); NULL if out of
 * memory. */
static uint8_t *batch_frame(const struct backing *b, const uint8_t *buf,
			    const size_t *lens, unsigned int nr,
			    uint64_t start, uint64_t units)
{
	size_t in = 0, at = 0;
	unsigned int i;
	void *mem;
	uint8_t *out;

	if (posix_memalign(&mem, BOUNCE_ALIGN, (size_t)units * UNIT))
		return NULL;
	out = mem;
	for (i = 0; i < nr; i++) {
		at += frame_put(b, start + (at >> UNIT_SHIFT), buf + in,
				lens[i], out + at);
		in += (size_t)len_to_units(lens[i]) << UNIT_SHIFT;
	}
	return out;
}

int backing_write_batch(struct backing *b, const void *buf,
			const size_t *lens, unsigned int nr, uint64_t *slots)
{
	uint64_t units = 0, start, at;
	uint8_t *framed = NULL;
	unsigned int i;
	int ret;

	for (i = 0; i < nr; i++) {
		if (lens[i] == 0 || lens[i] > BACKING_MAX_OBJECT)
			return -EINVAL;
		units += obj_units(b, lens[i]);
	}
	if (nr == 0 || !aligned_for(b, buf))
		return -EINVAL;
	if (run_alloc(b, units, nr, &start) < 0)
		return -ENOSPC;		/* no run: not counted as full */
	if (b->info.framed) {
		framed = batch_frame(b, buf, lens, nr, start, units);
		if (!framed)
			return write_failed(b, start, lens, nr, -ENOMEM);
		buf = framed;
	}
	ret = io_write(b, start << UNIT_SHIFT, buf,
		       (size_t)units << UNIT_SHIFT);
	free(framed);
	if (ret < 0)
		return write_failed(b, start, lens, nr, ret);
	for (i = 0, at = start; i < nr; i++) {
		slots[i] = at;
		at += obj_units(b, lens[i]);
	}
	atomic_fetch_add_explicit(&b->st.writes, nr, memory_order_relaxed);
	stat_inc(&b->st.batches);
	return 0;
}

/* A read found the backend away: wait (-EAGAIN, the caller retries) until
 * it has been away for the timeout, then -ETIMEDOUT. */
static int read_away(struct backing *b)
{
	uint64_t now = clock_now_ns(), since = 0;

	if (!atomic_compare_exchange_strong(&b->away_since, &since, now))
		now = clock_now_ns();
	else
		since = now;
	if (now - since <= atomic_load(&b->timeout_ns)) {
		stat_inc(&b->st.read_waits);
		return -EAGAIN;
	}
	stat_inc(&b->st.timeouts);
	return -ETIMEDOUT;
}

/* Read the framed object of @len bytes at @slot into @buf. */
static int framed_read(struct backing *b, uint64_t slot, void *buf,
		       size_t len)
{
	_Alignas(BOUNCE_ALIGN) uint8_t bounce[MAX_UNITS * UNIT];
	int ret;

	ret = io_read(b, slot << UNIT_SHIFT, bounce, len + FRAME_BYTES);
	if (ret == 0 && !frame_check(b, slot, bounce, len)) {
		stat_inc(&b->st.checksum_errors);
		return -EBADMSG;
	}
	if (ret == 0)
		memcpy(buf, bounce + FRAME_BYTES, len);
	return ret;
}

int backing_read(struct backing *b, uint64_t slot, void *buf, size_t len)
{
	uint64_t units = atomic_load_explicit(&b->nr_units,
					      memory_order_acquire);
	int ret;

	if (len == 0 || len > BACKING_MAX_OBJECT || slot > units ||
	    units - slot < obj_units(b, len))
		return -EINVAL;
	ret = b->info.framed ? framed_read(b, slot, buf, len) :
			       io_read(b, slot << UNIT_SHIFT, buf, len);
	if (ret == -EAGAIN)
		return read_away(b);
	atomic_store_explicit(&b->away_since, 0, memory_order_relaxed);
	if (ret == 0)
		stat_inc(&b->st.reads);
	else if (ret != -EBADMSG)
		stat_inc(&b->st.read_errors);
	return ret;
}

void backing_free(struct backing *b, uint64_t slot, size_t len)
{
	if (len == 0 || len > BACKING_MAX_OBJECT ||
	    slot > UINT64_MAX - MAX_UNITS ||
	    !units_release(b, slot, obj_units(b, len)))
		stat_inc(&b->st.invalid_frees);
}

int backing_recover_ref(struct backing *b, uint64_t slot, size_t len)
{
	unsigned int n, i;
	int ret = -ESTALE;

	/* a file made anew holds none of a predecessor's objects */
	if (len == 0 || len > BACKING_MAX_OBJECT || !b->info.kept)
		return -ESTALE;
	n = obj_units(b, len);
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

	if (!b->info.kept || len < sizeof(*im) || im->magic != MAP_IMAGE_MAGIC ||
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
	b->limit_units = limit_units(b, limit_bytes);
	pthread_mutex_unlock(&b->lock);
	free(old);
	return 0;
}

void backing_get_stats(struct backing *b, struct backing_stats *st)
{
	uint64_t sum;
	unsigned int i;
	int dir;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&b->lock);
	st->limit_bytes = b->limit_bytes;
	st->used_bytes = b->used_units << UNIT_SHIFT;
	st->objects = b->objects;
	pthread_mutex_unlock(&b->lock);
	st->kind = b->info.kind;
	st->writes = stat_get(&b->st.writes);
	st->batches = stat_get(&b->st.batches);
	st->reads = stat_get(&b->st.reads);
	st->write_errors = stat_get(&b->st.write_errors);
	st->read_errors = stat_get(&b->st.read_errors);
	st->checksum_errors = stat_get(&b->st.checksum_errors);
	st->read_waits = stat_get(&b->st.read_waits);
	st->timeouts = stat_get(&b->st.timeouts);
	st->full = stat_get(&b->st.full);
	st->punched = stat_get(&b->st.punched);
	st->punch_errors = stat_get(&b->st.punch_errors);
	st->invalid_frees = stat_get(&b->st.invalid_frees);
	st->punch = atomic_load_explicit(&b->release, memory_order_relaxed);
	st->read_bytes = stat_get(&b->st.bytes[IO_READ]);
	st->write_bytes = stat_get(&b->st.bytes[IO_WRITE]);
	for (dir = IO_READ; dir <= IO_WRITE; dir++) {
		for (i = 0, sum = 0; i <= BACKING_LATENCY_BUCKETS; i++) {
			sum += stat_get(&b->st.latency[dir][i]);
			st->latency[dir][i] = sum;
		}
		st->latency_ns[dir] = stat_get(&b->st.latency_ns[dir]);
	}
	b->ops->stats(b->io, st);
}
