/*
 * uffd.c - userfaultfd helpers shared by uzswapd and libuzswap
 *
 * A client opens the userfaultfd (uffd_open()) and passes it to the
 * daemon, which does everything else through the passed fd: the
 * UFFDIO_API handshake, UFFDIO_REGISTER of the client's region, and then,
 * on its fault threads, reading fault messages and resolving them with
 * UFFDIO_COPY, UFFDIO_WAKE and UFFDIO_WRITEPROTECT. A uffd is bound to the
 * process that created it (the kernel keeps that process's mm), so every
 * address here is an address in the client, while copy sources are in the
 * caller.
 *
 * Why O_NONBLOCK: nothing on a uffd tells that its process exited. After
 * the exit the fd never polls readable (no POLLHUP, no POLLERR) and a
 * blocking read() sleeps forever; the ioctls fail (COPY, ZEROPAGE and
 * WRITEPROTECT with ESRCH, REGISTER and UNREGISTER with ENOMEM, while WAKE
 * still succeeds - measured on 6.18). So reads never block, and the
 * daemon learns of an exit from a pidfd or the control connection.
 * O_NONBLOCK lives in the open file description, which the client shares
 * and may change with F_SETFL; uffd_read_msgs() therefore reads with
 * RWF_NOWAIT, which does not depend on the flag (kernels whose uffd
 * refuses RWF_NOWAIT get a plain read(), i.e. rely on the flag).
 *
 * Why three ways to open: userfaultfd(2) gives a full uffd only to
 * CAP_SYS_PTRACE or when vm.unprivileged_userfaultfd=1; /dev/userfaultfd
 * (Linux 6.1) gives one to whoever may open the device; anyone else gets
 * UFFD_USER_MODE_ONLY, whose uffd sees no fault taken in kernel mode: a
 * system call touching an evicted page fails with EFAULT instead of
 * waiting for the daemon. Valgrind does not know userfaultfd(2), so under
 * it only the device path works.
 *
 * UFFDIO_API succeeds once per uffd. The first success, even one asking
 * for no feature, marks the uffd initialised, and every later call fails
 * with EINVAL: the "two-step handshake" of the man page (features=0 to
 * probe, then the real request) does not work on 6.18. A failed call
 * (unknown feature: EINVAL; EVENT_FORK without CAP_SYS_PTRACE: EPERM)
 * leaves the uffd uninitialised and its answer zeroed. So uffd_api() asks
 * for what it wants first, and only after a refusal learns the offered
 * set from a throwaway uffd and asks again for the intersection.
 *
 * Partial copies: UFFDIO_COPY stops at the first page it cannot fill and,
 * if it filled some, reports the count with -EAGAIN, hiding the real
 * error (EEXIST, ENOMEM, ...). uffd_copy_partial() continues from that
 * page, which either fills more or returns the real error at once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uffd.h"

#ifndef RWF_NOWAIT
#define RWF_NOWAIT	0x00000008
#endif

#define UFFD_OPEN_FLAGS	(O_CLOEXEC | O_NONBLOCK)

/*****************
 * Opening
 *****************/

static int uffd_syscall(int flags)
{
#ifdef SYS_userfaultfd
	long fd = syscall(SYS_userfaultfd, flags);

	return fd < 0 ? -errno : (int)fd;
#else
	return -ENOSYS;
#endif
}

/* A full-mode uffd from /dev/userfaultfd (Linux 6.1+). */
static int uffd_open_dev(int flags)
{
	int dev, fd;

	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
	if (fd < 0)
		fd = -errno;
	close(dev);
	return fd;
}

int uffd_open(int *mode)
{
	int fd;

	fd = uffd_syscall(UFFD_OPEN_FLAGS);
	if (fd < 0)
		fd = uffd_open_dev(UFFD_OPEN_FLAGS);
	if (fd >= 0) {
		if (mode)
			*mode = UFFD_MODE_FULL;
		return fd;
	}
	fd = uffd_syscall(UFFD_OPEN_FLAGS | UFFD_USER_MODE_ONLY);
	if (fd >= 0 && mode)
		*mode = UFFD_MODE_USER_ONLY;
	return fd;
}

const char *uffd_mode_warning(void)
{
	return "userfaultfd is in user-mode-only mode: this process may not "
	       "create a full userfaultfd. For full mode, do one of: give the "
	       "process CAP_SYS_PTRACE; set the sysctl "
	       "vm.unprivileged_userfaultfd=1; or make /dev/userfaultfd "
	       "owned by a group the process belongs to, with mode 0660 (the "
	       "uzswap udev rule gives it to the uzswap group). In "
	       "user-mode-only mode, a kernel-mode access to an evicted page "
	       "is not served: a system call that reads or writes an evicted "
	       "page of a managed region, such as write(fd, region, n) or "
	       "read(fd, region, n), fails with EFAULT instead of waiting for "
	       "the page to come back.";
}

int uffd_adopt(int fd)
{
	static const char want[] = "anon_inode:[userfaultfd]";
	char path[40], target[sizeof(want) + 1];
	ssize_t n;
	int fl;

	if (fd < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (strcmp(target, want) != 0)
		return -EINVAL;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

/*****************
 * Handshake and registration
 *****************/

/* One UFFDIO_API call; *@offered is the kernel's full feature set. */
static int uffd_api_once(int uffd, uint64_t features, uint64_t *offered)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return -errno;
	*offered = api.features;
	return 0;
}

int uffd_probe_features(uint64_t *avail)
{
	int fd, ret;

	fd = uffd_open(NULL);
	if (fd < 0)
		return fd;
	ret = uffd_api_once(fd, 0, avail);
	close(fd);
	return ret;
}

/*
 * At most three UFFDIO_API calls: the request; after EPERM, the request
 * without EVENT_FORK; after EINVAL, the request cut to the offered set
 * (probed once).
 */
int uffd_api(int uffd, uint64_t want, uint64_t *got)
{
	uint64_t ask = want, offered = 0, avail;
	bool probed = false;
	int tries, ret = -EINVAL;

	for (tries = 0; tries < 3; tries++) {
		ret = uffd_api_once(uffd, ask, &offered);
		if (ret == 0)
			break;
		if (ret == -EPERM && (ask & UFFD_FEATURE_EVENT_FORK)) {
			ask &= ~(uint64_t)UFFD_FEATURE_EVENT_FORK;
			continue;
		}
		if (ret != -EINVAL || probed)
			return ret;
		probed = true;
		/* Nothing to cut: initialised already, or a bad api. */
		if (uffd_probe_features(&avail) < 0 || !(ask & ~avail))
			return ret;
		ask &= avail;
	}
	if (ret)
		return ret;

	if (ask & UFFD_FEATURE_WP_ASYNC)
		ask |= UFFD_FEATURE_WP_UNPOPULATED;	/* implied */
	if (got)
		*got = ask & offered;
	return 0;
}

int uffd_register(int uffd, void *addr, size_t len, uint64_t mode,
		  uint64_t *ioctls)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = mode,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

int uffd_unregister(int uffd, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	if (ioctl(uffd, UFFDIO_UNREGISTER, &range) < 0)
		return -errno;
	return 0;
}

/*****************
 * Resolving faults
 *****************/

/*
 * Each round maps at least one page or ends the loop, so a call makes at
 * most len / page size + 1 ioctls (two in practice).
 */
int uffd_copy_partial(int uffd, unsigned long dst, const void *src,
		      size_t len, unsigned int flags, size_t *copied)
{
	struct uffdio_copy copy;
	size_t done = 0;
	__u64 mode = 0;
	int ret;

	if (copied)
		*copied = 0;
	if (flags & ~(UFFD_COPY_DONTWAKE | UFFD_COPY_WP))
		return -EINVAL;
	if (len == 0)
		return -EINVAL;
	if (flags & UFFD_COPY_DONTWAKE)
		mode |= UFFDIO_COPY_MODE_DONTWAKE;
	if (flags & UFFD_COPY_WP)
		mode |= UFFDIO_COPY_MODE_WP;

	for (;;) {
		copy.dst = dst + done;
		copy.src = (uintptr_t)src + done;
		copy.len = len - done;
		copy.mode = mode;
		copy.copy = 0;
		if (ioctl(uffd, UFFDIO_COPY, &copy) == 0) {
			done = len;
			ret = 0;
			break;
		}
		ret = -errno;
		/* Partial progress is reported as -EAGAIN with copy > 0. */
		if (ret != -EAGAIN || copy.copy <= 0 ||
		    (__u64)copy.copy >= copy.len)
			break;
		done += (size_t)copy.copy;
	}
	if (copied)
		*copied = done;
	return ret;
}

int uffd_copy(int uffd, unsigned long dst, const void *src, size_t len,
	      unsigned int flags)
{
	return uffd_copy_partial(uffd, dst, src, len, flags, NULL);
}

int uffd_zeropage(int uffd, unsigned long addr, size_t len, bool dontwake)
{
	struct uffdio_zeropage zp;
	size_t done = 0;
	int ret;

	if (len == 0)
		return -EINVAL;
	for (;;) {
		zp.range.start = addr + done;
		zp.range.len = len - done;
		zp.mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0;
		zp.zeropage = 0;
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &zp) == 0)
			return 0;
		ret = -errno;
		if (ret != -EAGAIN || zp.zeropage <= 0 ||
		    (__u64)zp.zeropage >= zp.range.len)
			return ret;
		done += (size_t)zp.zeropage;
	}
}

int uffd_poison(int uffd, unsigned long addr, size_t len)
{
	struct uffdio_poison po = {
		.range = { .start = addr, .len = len },
	};

	if (ioctl(uffd, UFFDIO_POISON, &po) < 0)
		return -errno;
	return 0;
}

int uffd_wake(int uffd, unsigned long addr, size_t len)
{
	struct uffdio_range range = { .start = addr, .len = len };

	if (ioctl(uffd, UFFDIO_WAKE, &range) < 0)
		return -errno;
	return 0;
}

int uffd_writeprotect(int uffd, unsigned long addr, size_t len, bool protect,
		      bool dontwake)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = addr, .len = len },
		.mode = (protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
			(dontwake ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0),
	};

	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return -errno;
	return 0;
}

/*
 * One preadv2(RWF_NOWAIT); where the kernel refuses RWF_NOWAIT on a uffd
 * (EOPNOTSUPP, before uffd had ->read_iter), one read() more.
 */
int uffd_read_msgs(int uffd, struct uffd_msg *msgs, int max)
{
	struct iovec iov;
	ssize_t n;

	if (!msgs || max <= 0)
		return -EINVAL;
	iov.iov_base = msgs;
	iov.iov_len = (size_t)max * sizeof(*msgs);
	do {
		n = preadv2(uffd, &iov, 1, -1, RWF_NOWAIT);
		if (n < 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
			n = read(uffd, msgs, iov.iov_len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return (int)((size_t)n / sizeof(*msgs));
}
