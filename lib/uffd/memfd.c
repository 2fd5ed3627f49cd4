/*
 * memfd.c - the memfd behind a managed region
 *
 * A region's memory is a memfd that the client maps MAP_SHARED and passes
 * to the daemon. The daemon never maps it: it reads pages with pread() and
 * drops them with memfd_punch(), so a stuck or hostile client cannot stall
 * reclaim. Touching a hole through a mapping would allocate a zero page in
 * the page cache and turn the evicted data into zeros; pread() of a hole
 * returns zeros without allocating anything.
 *
 * memfd_held() counts the pages of a range that hold data (the daemon's
 * proof that a client did not punch a page whose stored copy it kept),
 * with cachestat(2) bounded to the range.
 *
 * memfd_punch() removes the pages from the page cache and zaps every
 * mapping of them, so the client's next access faults as missing and
 * reaches the daemon through the uffd (a page write-protected by the uffd
 * keeps a marker instead, until the protection is removed - step 5 of the
 * eviction protocol in DESIGN.md).
 *
 * The memfd is created with MFD_NOEXEC_SEAL (Linux 6.3) where the kernel
 * knows it: with vm.memfd_noexec=2 a memfd_create() without it fails with
 * EACCES, and lower settings log a warning. Region memory is data, never
 * code.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "uffd.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL		0x0008U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE	0x0010
#endif

int memfd_region_create(const char *name, size_t len)
{
	int fd, ret;

	if (len == 0)
		return -EINVAL;
	if ((off_t)len < 0 || (size_t)(off_t)len != len)
		return -EFBIG;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL)	/* kernel before 6.3 */
		fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0) {
		ret = -errno;
		goto out_close;
	}
	return fd;

out_close:
	close(fd);
	return ret;
}

/*
 * A file the daemon may pread() and punch without surprises: a regular
 * file of the kernel's internal tmpfs (memfd) or of a tmpfs mount. This
 * rules out pipes, sockets and devices (pread() of a FUSE or NFS file
 * could block the daemon) and hugetlbfs (its pages are not 4 KiB). The fd
 * must be open for writing (fallocate() needs it) and the file not sealed
 * against writes (a write seal makes every punch fail with EPERM). A peer
 * can still add a write seal or truncate the file later: punch and pread
 * errors must be handled at run time too.
 */
int memfd_region_check(int fd, size_t len)
{
	struct statfs sfs;
	struct stat st;
	int fl, seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (fstatfs(fd, &sfs) < 0)
		return -errno;
	if (sfs.f_type != TMPFS_MAGIC)
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) != O_RDWR)
		return -EBADF;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return -errno;
	if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
		return -EPERM;
	if (st.st_size < 0 || (uint64_t)st.st_size < len)
		return -ERANGE;
	return 0;
}

/*
 * @off and @len should be page aligned: a page only partly covered is
 * zeroed in place, not dropped.
 */
bool memfd_is_empty(int fd)
{
	return lseek(fd, 0, SEEK_DATA) < 0 && errno == ENXIO;
}

int memfd_punch(int fd, off_t off, size_t len)
{
	if (off < 0 || len == 0 || (off_t)len < 0)
		return -EINVAL;
	while (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			 (off_t)len) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

#ifndef __NR_cachestat
#define __NR_cachestat 451	/* the same on every architecture */
#endif

/* <linux/mman.h> of Linux 6.5 */
struct uzswap_cachestat_range {
	uint64_t off;
	uint64_t len;
};

struct uzswap_cachestat {
	uint64_t nr_cache;
	uint64_t nr_dirty;
	uint64_t nr_writeback;
	uint64_t nr_evicted;
	uint64_t nr_recently_evicted;
};

long memfd_held(int fd, off_t off, size_t len)
{
	struct uzswap_cachestat_range range = { (uint64_t)off, len };
	struct uzswap_cachestat cs;
	off_t end = off + (off_t)len, data, hole;
	long held = 0;

	if (syscall(__NR_cachestat, fd, &range, &cs, 0) == 0)
		/* a shmem page in swap is counted evicted, not cached */
		return (long)(cs.nr_cache + cs.nr_evicted);
	if (errno != ENOSYS)
		return -errno;
	for (; off < end; off = hole) {
		data = lseek(fd, off, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? held : -errno;
		if (data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > end)
			hole = end;
		held += (long)((hole - data) / sysconf(_SC_PAGESIZE));
	}
	return held;
}
