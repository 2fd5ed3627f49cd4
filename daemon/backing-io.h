/*
 * backing-io.h - the backends of the write-back tier: the place where
 * backing.c (the slot map, object framing, counters) puts bytes. A
 * backend moves bytes at offsets and gives space back; it knows nothing
 * of objects or slots. Two exist: the local file (backing-file.c) and an
 * NBD export (backing-nbd.c).
 *
 * Private to daemon/backing*.c. Every op is called from any worker
 * thread, several at once, never from the event loop; ops block their
 * caller for their I/O (a backend may run its own I/O thread and wait
 * for its completion). Ops return 0 or -errno; nothing here logs except
 * a backend's own connection events.
 */
#ifndef UZSWAPD_BACKING_IO_H
#define UZSWAPD_BACKING_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backing_io;
struct backing_stats;

/* The largest release granule, in 512-byte units (1 MiB). */
#define BACKING_GRANULE_MAX	2048u

/*
 * struct backing_io_info - what a backend tells backing.c at open; set
 * by the open call, immutable after
 * @kind:          "file" or "nbd", for the stats
 * @release_units: space is given back in granules of this many 512-byte
 *                 units (a power of two, at most BACKING_GRANULE_MAX; 8:
 *                 4 KiB holes of a file, 2048: the 1 MiB segments of an
 *                 export); a granule is released when its last object
 *                 goes
 * @mem_align:     alignment of the buffers write() and read() take as
 *                 they are (direct I/O); 1 for none
 * @size_bytes:    what the backend holds at most; UINT64_MAX: no bound
 *                 but the configured cap
 * @framed:        objects carry a header with a checksum (backing.c
 *                 writes and checks it); the file's are bare, as always
 * @kept:          a predecessor's objects are there, kept for a successor
 *                 to name again
 * @seed:          the checksum seed of @framed objects: the export's
 *                 identity, so that another export's objects never verify
 * @id_dev, @id_ino: the identity a successor checks (the file's device
 *                 and inode; an export's mark and its instance number)
 */
struct backing_io_info {
	const char *kind;
	unsigned int release_units;
	unsigned int mem_align;
	uint64_t size_bytes;
	bool framed;
	bool kept;
	uint64_t seed;
	uint64_t id_dev, id_ino;
};

/*
 * struct backing_ops - a backend
 * @write:   write @bytes (whole 512-byte units) of @buf at @off
 * @read:    read @len bytes at @off into @buf
 * @release: give back [@off, @off + @bytes) (a hole punched, a TRIM);
 *           -EOPNOTSUPP: the backend cannot, and is not asked again
 * @ready:   whether a write may succeed now (an export is connected);
 *           reclaim does not take pages from clients to fail them
 * @close:   end; @discard: the objects must not outlive the daemon (the
 *           file emptied and removed, the export trimmed); else they stay
 *           for a successor (an export is flushed first)
 * @stats:   fill the backend's part of the stats (file bytes, I/O mode,
 *           connection)
 */
struct backing_ops {
	int (*write)(struct backing_io *io, uint64_t off, const void *buf,
		     size_t bytes);
	int (*read)(struct backing_io *io, uint64_t off, void *buf,
		    size_t len);
	int (*release)(struct backing_io *io, uint64_t off, uint64_t bytes);
	bool (*ready)(struct backing_io *io);
	void (*close)(struct backing_io *io, bool discard);
	void (*stats)(struct backing_io *io, struct backing_stats *st);
};

/* The local file at @path (see backing_open() for the rules). NULL with
 * errno set. */
struct backing_io *backing_file_open(const char *path, bool keep,
				     const struct backing_ops **ops,
				     struct backing_io_info *info);

/* The NBD export @uri (libnbd's URI forms). NULL with errno set. */
struct backing_io *backing_nbd_open(const char *uri, bool keep,
				    const struct backing_ops **ops,
				    struct backing_io_info *info);

#endif /* UZSWAPD_BACKING_IO_H */
