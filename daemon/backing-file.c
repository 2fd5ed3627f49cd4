/*
 * backing-file.c - the local backing file, the write-back tier's first
 * backend (backing-io.h): a sparse file in the state directory by
 * default, where backing.c's 512-byte units lie at offset slot * 512.
 *
 * I/O mode, chosen at open and reported in the stats ("direct"): the file
 * is meant to save RAM, so its data must not sit in the page cache.
 * - O_DIRECT when the filesystem does direct I/O at 512-byte offsets:
 *   statx(STATX_DIOALIGN) says so, or, on kernels or filesystems that do
 *   not report it, a 512-byte direct write at offset 0 of the empty file
 *   succeeds. Reads of a length that is not whole units, or into an
 *   unaligned buffer, go through an aligned bounce buffer on the caller's
 *   stack (4 KiB; no allocation per call). On ext4 (this machine's /,
 *   /tmp and /var/lib) this is the mode.
 * - Buffered otherwise (no O_DIRECT, or alignment coarser than 512): each
 *   write is flushed (sync_file_range) so that its errors are seen now and
 *   its pages are clean, then the pages are dropped (POSIX_FADV_DONTNEED
 *   over the enclosing 2 MiB: see cache_drop()); reads are followed by
 *   DONTNEED too, and readahead is off (POSIX_FADV_RANDOM).
 * - tmpfs/ramfs ("in_memory"): the kernel accepts O_DIRECT there (6.6+)
 *   but the data lives in RAM either way; buffered, without flush or
 *   advice. The daemon warns that such a backing file saves nothing.
 *
 * Space is given back in 4 KiB holes (fallocate PUNCH_HOLE | KEEP_SIZE);
 * on a filesystem that cannot punch, backing.c stops asking.
 *
 * Costs, measured on the reference machine (ext4 on virtio, O_DIRECT,
 * objects of 1000-4000 bytes): a write 85-140 us, a read 70-150 us, a
 * punch 60-70 us. Every call blocks its thread for that long.
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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/common/failpoint.h"
#include "lib/common/fullio.h"
#include "backing.h"
#include "backing-io.h"
#include "privfile.h"

#define UNIT		BACKING_UNIT
#define BLOCK		4096u		/* hole-punch granule */
#define DIO_MAX_ALIGN	4096u		/* bounce buffer alignment */
#define DROP_GRANULE	(2l << 20)	/* largest page cache folio (PMD) */

/*
 * struct file_io - an open backing file; every field is set by
 * backing_file_open() and immutable after, so any thread may use it
 * @fd:        the file
 * @direct:    @fd has O_DIRECT
 * @in_memory: the file is on tmpfs/ramfs
 * @mem_align: buffer alignment direct I/O needs
 * @created:   backing_file_open() created the file where there was none
 *             (it is removed at close)
 * @kept:      it is a predecessor's file, kept as it was
 * @dev, @ino: identity of the file, checked before unlinking
 * @dirfd:     the file's directory, opened once without following a link;
 *             the file is created and removed relative to it
 * @name:      the file's name in @dirfd (points into @path)
 * @path:      the path
 */
struct file_io {
	int fd;
	bool direct;
	bool in_memory;
	bool created;
	bool kept;
	unsigned int mem_align;
	dev_t dev;
	ino_t ino;
	int dirfd;
	const char *name;
	char path[];
};

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
static void cache_drop(struct file_io *f, off_t off, size_t len)
{
	off_t start = off & ~(off_t)(DROP_GRANULE - 1);
	off_t end = (off + (off_t)len + DROP_GRANULE - 1) &
		    ~(off_t)(DROP_GRANULE - 1);

	posix_fadvise(f->fd, start, end - start, POSIX_FADV_DONTNEED);
}

static inline bool dio_aligned(const struct file_io *f, const void *p)
{
	return ((uintptr_t)p & (f->mem_align - 1)) == 0;
}

/* Write @bytes (whole units) of @src at @at; synchronous. 0 or -errno. */
static int file_write(struct backing_io *io, uint64_t at, const void *src,
		      size_t bytes)
{
	struct file_io *f = (struct file_io *)io;
	off_t off = (off_t)at;
	int ret;

	ret = fullio_pwrite(f->fd, src, bytes, off);
	if (ret < 0 || f->direct || f->in_memory)
		return ret;

	/* buffered: see the write's errors now, and leave clean pages (not
	 * for durability: the file is truncated at every start) */
	if (sync_file_range(f->fd, off, (off_t)bytes,
			    SYNC_FILE_RANGE_WAIT_BEFORE |
			    SYNC_FILE_RANGE_WRITE |
			    SYNC_FILE_RANGE_WAIT_AFTER) < 0)
		return -errno;
	cache_drop(f, off, bytes);
	return 0;
}


/* Read @len bytes (at most BACKING_MAX_OBJECT) at @at into @buf: direct
 * I/O reads whole units, through a bounce buffer unless @buf is aligned
 * and @len a multiple of the unit. 0 or -errno. */
static int file_read(struct backing_io *io, uint64_t at, void *buf,
		     size_t len)
{
	_Alignas(DIO_MAX_ALIGN) unsigned char bounce[BACKING_MAX_OBJECT];
	struct file_io *f = (struct file_io *)io;
	size_t bytes = (len + UNIT - 1) & ~(size_t)(UNIT - 1);
	off_t off = (off_t)at;
	int ret;

	if (!f->direct) {
		ret = fullio_pread(f->fd, buf, len, off);
		if (!f->in_memory)
			cache_drop(f, off, len);
		return ret;
	}
	if (bytes == len && dio_aligned(f, buf))
		return fullio_pread(f->fd, buf, len, off);
	ret = fullio_pread(f->fd, bounce, bytes, off);
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
 * file_keep() - a successor's: the path names its predecessor's backing
 * file (ours, one name, not locked by a live daemon, marked): use it as it
 * is. Return: the fd (locked), -ENOENT if there is no file, -EEXIST if it
 * is no backing file, or -errno.
 */
static int file_keep(struct file_io *f, struct stat *sb)
{
	int fd, ret;

	fd = openat(f->dirfd, f->name, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
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

/*
 * file_open() - open @f->path, never through a symlink (neither the file
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
static int file_open(struct file_io *f, bool keep)
{
	struct stat sb;
	bool replaced = false;
	int fd, ret, tries = 0;

	ret = file_dir_open(f->path, &f->name);
	if (ret < 0)
		return ret;
	f->dirfd = ret;
	if (keep) {
		fd = file_keep(f, &sb);
		if (fd >= 0) {
			f->fd = fd;
			f->dev = sb.st_dev;
			f->ino = sb.st_ino;
			f->kept = true;
			return 0;
		}
		if (fd != -ENOENT) {
			close(f->dirfd);
			return fd;
		}
	}
again:
	fd = openat(f->dirfd, f->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0 && errno == EEXIST && !replaced) {
		ret = file_take_over(f->dirfd, f->name);
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
	f->created = !replaced;
	ret = privfile_check(fd, &sb);
	if (ret == 0)
		ret = privfile_lock(fd);
	if (ret < 0)
		goto out_unlink;
	if (fsetxattr(fd, BACKING_XATTR, "1", 1, 0) < 0 && errno != ENOTSUP) {
		ret = -errno;
		goto out_unlink;
	}
	f->fd = fd;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	return 0;

out_unlink:
	unlinkat(f->dirfd, f->name, 0);
	close(fd);
out_close_dir:
	close(f->dirfd);
	return ret;
}

/* Remove the file if the path still names it. */
static void file_unlink(struct file_io *f)
{
	struct stat sb;

	if (fstatat(f->dirfd, f->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    sb.st_dev == f->dev && sb.st_ino == f->ino)
		unlinkat(f->dirfd, f->name, 0);
}

/*
 * dio_usable() - whether direct I/O at 512-byte offsets works on the
 * (empty) file, @fd already having O_DIRECT. Asks statx(STATX_DIOALIGN);
 * if the kernel or filesystem does not tell, writes 512 zeros at offset 0
 * and truncates the file back to 0.
 * Return: 1 yes, 0 no, or -errno if the file could not be emptied again.
 */
static int dio_usable(struct file_io *f)
{
	_Alignas(DIO_MAX_ALIGN) static const unsigned char zeros[UNIT];
	bool ok;

#ifdef STATX_DIOALIGN
	struct statx sx;

	if (statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN)) {
		unsigned int o = sx.stx_dio_offset_align;
		unsigned int m = sx.stx_dio_mem_align;

		/* 0: no direct I/O on this file */
		if (!o || UNIT % o || !m || m > DIO_MAX_ALIGN || (m & (m - 1)))
			return 0;
		f->mem_align = m;
		return 1;
	}
#endif
	ok = pwrite(f->fd, zeros, UNIT, 0) == UNIT;
	if (ftruncate(f->fd, 0) < 0)
		return -errno;
	f->mem_align = UNIT;
	return ok;
}

/*
 * io_setup() - choose the I/O mode (see the file header): buffered on
 * tmpfs/ramfs, O_DIRECT where it works at 512 bytes, buffered otherwise.
 * Return: 0 or -errno.
 */
static int io_setup(struct file_io *f)
{
	struct statfs sf;
	int flags, ret;

	if (fstatfs(f->fd, &sf) == 0 &&
	    (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)) {
		f->in_memory = true;
		return 0;
	}
	flags = fcntl(f->fd, F_GETFL);
	if (flags < 0)
		return -errno;
	/* EINVAL: the filesystem has no direct I/O */
	if (fcntl(f->fd, F_SETFL, flags | O_DIRECT) == 0) {
		ret = dio_usable(f);
		if (ret < 0)
			return ret;
		if (ret == 0 && fcntl(f->fd, F_SETFL, flags) < 0)
			return -errno;
		f->direct = ret;
	}
	if (!f->direct)	/* a fault reads one object: no readahead */
		posix_fadvise(f->fd, 0, 0, POSIX_FADV_RANDOM);
	return 0;
}


/* Give [@at, @at + @bytes) back to the filesystem: a hole. */
static int file_release(struct backing_io *io, uint64_t at, uint64_t bytes)
{
	struct file_io *f = (struct file_io *)io;

	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)at, (off_t)bytes) < 0)
		return -errno;
	return 0;
}

static bool file_ready(struct backing_io *io)
{
	(void)io;
	return true;
}

/*
 * Teardown order: truncate first, so the data is gone even if the unlink
 * fails; unlink while still holding the flock, so that a daemon starting
 * meanwhile cannot have its new file removed; close (drops the lock) last.
 */
static void file_close(struct backing_io *io, bool discard)
{
	struct file_io *f = (struct file_io *)io;

	if (discard) {
		if (ftruncate(f->fd, 0) < 0) {
			/* nothing to do about it: the data goes with the
			 * unlink */
		}
		if (f->created)
			file_unlink(f);
	}
	close(f->fd);
	close(f->dirfd);
	free(f);
}

static void file_stats(struct backing_io *io, struct backing_stats *st)
{
	struct file_io *f = (struct file_io *)io;
	struct stat sb;

	if (fstat(f->fd, &sb) == 0)
		st->file_bytes = (uint64_t)sb.st_blocks * 512;
	st->direct = f->direct;
	st->in_memory = f->in_memory;
}

static const struct backing_ops file_ops = {
	.write = file_write,
	.read = file_read,
	.release = file_release,
	.ready = file_ready,
	.close = file_close,
	.stats = file_stats,
};

struct backing_io *backing_file_open(const char *path, bool keep,
				     const struct backing_ops **ops,
				     struct backing_io_info *info)
{
	size_t plen = strlen(path);
	struct file_io *f;
	int ret;

	if (failpoint_hit() || !(f = calloc(1, sizeof(*f) + plen + 1))) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(f->path, path, plen + 1);
	f->mem_align = 1;
	ret = file_open(f, keep);
	if (ret < 0)
		goto out_free;
	ret = io_setup(f);
	if (ret < 0) {
		file_unlink(f);
		close(f->fd);
		close(f->dirfd);
		goto out_free;
	}
	*ops = &file_ops;
	*info = (struct backing_io_info){
		.kind = "file",
		.release_units = BLOCK / UNIT,
		.mem_align = f->direct ? f->mem_align : 1,
		.size_bytes = UINT64_MAX,
		.kept = f->kept,
		.id_dev = (uint64_t)f->dev,
		.id_ino = (uint64_t)f->ino,
	};
	return (struct backing_io *)f;

out_free:
	free(f);
	errno = -ret;
	return NULL;
}
