/*
 * backing.h - the write-back tier of uzswapd: where the evict handler
 * puts compressed objects (at most one page each) when the z3fold pool is
 * full, and where the fault path reads them back from. It lives in a
 * local file (the backing file) or on an NBD export; "backing file"
 * below means either.
 *
 * Private to uzswapd. Every call is safe from any thread: evictor threads
 * write while fault threads read and free. The daemon keeps (slot, len) in
 * the page's WRITTEN_BACK state; this layer trusts it for the file, and
 * checks what an export returns against the object's frame. Calls return
 * 0 or -errno, backing_open() NULL with errno set; nothing here logs but
 * an export's connection events.
 */
#ifndef UZSWAPD_BACKING_H
#define UZSWAPD_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKING_UNIT		512u	/* allocation unit, bytes */
#define BACKING_MAX_OBJECT	4096u	/* largest object, bytes */
/* The extended attribute that marks a file as a backing file. */
#define BACKING_XATTR		"user.uzswap.backing"
/* How long reads wait for an export that went away, by default (s). */
#define BACKING_TIMEOUT_DEFAULT	60u

struct backing;

/* The upper bounds of the latency histogram's buckets, microseconds. */
#define BACKING_LATENCY_BUCKETS	10
extern const unsigned int BACKING_LATENCY_US[BACKING_LATENCY_BUCKETS];

/*
 * backing_open() - create (or take over) the backing file at @path, or
 * open the NBD export @path names
 * @path:        an NBD URI (nbd://, nbds://, nbd+unix://, nbds+unix://,
 *               nbd+vsock://: libnbd's forms, TLS where the scheme says
 *               so): see backing-nbd.c for what is written there and
 *               when the export is refused. Otherwise
 *               a regular file, never reached through a symlink (neither
 *               the file nor its directory is followed). Created mode
 *               0600 (O_EXCL); a file already there is taken over only if
 *               it is ours (the daemon's user), has no other hard link,
 *               and is empty or marked as a backing file (BACKING_XATTR:
 *               a crashed daemon's, whose contents are meaningless to a
 *               new one): it is unlinked and a fresh file created in its
 *               place, so that nobody holding the old one open sees what
 *               is written. Such a path is kept (emptied) at close.
 * @limit_bytes: cap on stored data, rounded down to 512-byte units; 0 is
 *               allowed (every write is refused until backing_set_limit()).
 *               The allocation bitmap costs @limit_bytes / 4096 bytes.
 *
 * The file is opened with O_DIRECT where the filesystem does direct I/O at
 * 512-byte granularity, buffered otherwise (see struct backing_stats).
 *
 * @keep:        a successor takes its predecessor's file over as it is,
 *               when it is a backing file: its objects are named again
 *               with backing_recover_ref(); a path that holds none is
 *               created as without @keep.
 *
 * Return: the backing, or NULL with errno set and no file left behind
 * (one this call created is removed; a pre-existing one is untouched):
 * EINVAL for an empty path, a limit past what off_t addresses or a path
 * that is not a regular file (/dev/full, a fifo), EISDIR for a directory,
 * ELOOP for a symlink (the file, or its directory), EPERM for a file
 * owned by another user, EMLINK for a file with another hard link, EEXIST
 * for a file that holds data and is no backing file (never overwritten),
 * EBUSY if another process holds the file (flock) or races us to the
 * path, ENOMEM, or open(2)'s.
 */
struct backing *backing_open(const char *path, uint64_t limit_bytes,
			     bool keep);

/* Whether @target (a configured backing-file) names an NBD export. */
bool backing_target_is_nbd(const char *target);

/* Whether a write may succeed now: false while an export is away
 * (reclaim then leaves the pool as it is rather than take pages from
 * clients to fail their write). */
bool backing_ready(struct backing *b);

/*
 * backing_set_timeout() - how long reads wait for an export that went
 * away (live). Until then a read returns -EAGAIN (the caller retries);
 * after, -ETIMEDOUT. The file never goes away.
 */
void backing_set_timeout(struct backing *b, unsigned int seconds);

/*
 * backing_close() - truncate the file to 0 (clients' data must not linger
 * on disk), remove it if backing_open() created it (and the path still
 * names it), close it and free @b. Objects still stored are lost, unless
 * backing_hand_over() was called: the file then stays as it is, for a
 * successor's backing_open(keep). No other call on @b may be running or
 * follow.
 */
void backing_close(struct backing *b);

/* The objects stored in @b outlive this daemon: backing_close() leaves
 * the file as it is. */
void backing_hand_over(struct backing *b);

/* The file's identity, as a successor checks it. */
void backing_identity(const struct backing *b, uint64_t *dev,
		      uint64_t *ino);

/*
 * backing_write() - store @len (1..4096) bytes of @buf; *@slot names them
 * for backing_read() and backing_free() (pass the same @len to both).
 * Blocks for the write (synchronous: O_DIRECT, or buffered and flushed).
 * Return: 0; -ENOSPC when the cap is reached (or no run of free units is
 * left) or the filesystem is full (ENOSPC, EDQUOT), nothing allocated and
 * nothing kept; -EINVAL for a bad @len; -EAGAIN when an export went
 * away (not counted as an error: try again once backing_ready());
 * another -errno (-EIO) when the write failed, nothing kept.
 */
int backing_write(struct backing *b, const void *buf, size_t len,
		  uint64_t *slot);

/*
 * backing_write_batch() - store @nr objects with one write: object i is
 * @lens[i] (1..4096) bytes, and they lie in @buf back to back, each
 * starting at a multiple of BACKING_UNIT and zero-padded to the next
 * (so @buf holds the sum of each length rounded up to BACKING_UNIT).
 * @buf is aligned to 4096 bytes (direct I/O writes it as it is). Their
 * units are one contiguous run; @slots[i] names object i as
 * backing_write()'s slot does. Blocks for the write.
 * Return: 0; -ENOSPC when no run of free units is that long (not counted
 * as full: the caller writes the objects one by one) or, counted, the
 * filesystem is full; -EINVAL for a bad length or alignment; another
 * -errno when the write failed. On error nothing is kept.
 */
int backing_write_batch(struct backing *b, const void *buf,
			const size_t *lens, unsigned int nr, uint64_t *slots);

/*
 * backing_read() - read back into @buf exactly the @len bytes that
 * backing_write() stored in @slot. Takes no lock.
 * Return: 0, -EINVAL for a slot or length out of range, -EIO on a short
 * read, pread(2)'s or the server's -errno; from an export also -EBADMSG
 * when what it returned is not the object written (its frame or checksum
 * differs: never served), -EAGAIN while the export is away (retry), and
 * -ETIMEDOUT once it has been away for the timeout.
 */
int backing_read(struct backing *b, uint64_t slot, void *buf, size_t len);

/*
 * backing_free() - release @slot (written with @len bytes). Every 4 KiB
 * block of the file that becomes wholly free is given back to the
 * filesystem (a hole is punched); that I/O is done without the lock held.
 * A slot that is not allocated is ignored and counted (invalid_frees).
 */
void backing_free(struct backing *b, uint64_t slot, size_t len);

/*
 * backing_set_limit() - change the cap live (config reload). Growing may
 * reallocate the bitmap; shrinking below what is used only stops new
 * writes (stored objects stay readable; new ones go below the new cap).
 * Return: 0, -EINVAL for a limit past what off_t addresses, or -ENOMEM
 * (the cap is unchanged).
 */
/*
 * backing_recover_ref() - a successor's record names the object of @len
 * bytes at @slot: mark its units used (a file taken over starts with
 * none). Return: 0; -ESTALE if the file is not the predecessor's (made
 * anew), or the object lies past the cap or overlaps one already named
 * (a record gone wrong): nothing is marked.
 */
int backing_recover_ref(struct backing *b, uint64_t slot, size_t len);

/*
 * The slot map's image at rest, for a successor that takes the file over
 * (backing_hand_over()) instead of rebuilding the map object by object
 * with backing_recover_ref(). backing_image_size() bytes; saved with no
 * call in flight. backing_load_image() into a file taken over with no
 * unit marked yet: 0, or -EINVAL if the image is not one or does not fit
 * the map (backing_image_fits() says which first; nothing changed:
 * recover instead).
 */
size_t backing_image_size(struct backing *b);
void backing_save_image(struct backing *b, void *buf);
bool backing_image_fits(struct backing *b, const void *buf, size_t len);
int backing_load_image(struct backing *b, const void *buf, size_t len);

int backing_set_limit(struct backing *b, uint64_t limit_bytes);

struct backing_stats {
	const char *kind;	/* "file" or "nbd" */
	uint64_t limit_bytes;	/* the cap, as set */
	uint64_t used_bytes;	/* stored, rounded to 512-byte units */
	uint64_t objects;	/* objects stored (or being written) */
	uint64_t writes;	/* objects written */
	uint64_t batches;	/* writes of many objects at once */
	uint64_t reads;		/* objects read back */
	uint64_t write_errors;	/* writes failed by an I/O error (not full) */
	uint64_t read_errors;	/* reads failed (I/O) */
	uint64_t checksum_errors; /* reads that did not verify */
	uint64_t read_waits;	/* reads put off: the export was away */
	uint64_t timeouts;	/* reads failed: away past the timeout */
	uint64_t full;		/* writes refused by the cap or a full disk */
	uint64_t punched;	/* 4 KiB blocks given back (holes, TRIMs) */
	uint64_t punch_errors;	/* hole punches or TRIMs that failed */
	uint64_t invalid_frees;	/* frees of slots not allocated */
	uint64_t file_bytes;	/* disk space of the file (st_blocks * 512) */
	bool direct;		/* O_DIRECT; else buffered + FADV_DONTNEED */
	bool in_memory;		/* the file is on tmpfs/ramfs: saves no RAM */
	bool punch;		/* space is given back (holes, TRIM) */
	uint64_t read_bytes;	/* bytes read from the backend */
	uint64_t write_bytes;	/* bytes written to it */
	/* requests' latency: [0] reads, [1] writes; cumulative counts of
	 * those at most BACKING_LATENCY_US[i] microseconds, then all */
	uint64_t latency[2][BACKING_LATENCY_BUCKETS + 1];
	uint64_t latency_ns[2];	/* their total time */
	struct backing_nbd_stats {	/* kind "nbd" only */
		bool connected;		/* the export answers now */
		bool trim;		/* the server takes TRIM */
		uint64_t size_bytes;	/* the export's size */
		uint64_t connects;	/* connections made */
		uint64_t disconnects;	/* connections lost */
		uint64_t stalls;	/* cut: a request hung */
	} nbd;
};

void backing_get_stats(struct backing *b, struct backing_stats *st);

#endif /* UZSWAPD_BACKING_H */
