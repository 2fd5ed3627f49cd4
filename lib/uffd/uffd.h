/*
 * uffd.h - userfaultfd, memfd and SCM_RIGHTS helpers (lib/uffd).
 *
 * This header is private to uzswap: the daemon, libuzswap and the tests
 * include it; it is never installed.
 *
 * A managed region is a memfd mapped MAP_SHARED by the client. The client
 * opens a userfaultfd and passes it, with the memfd, to the daemon over the
 * control socket; the daemon performs the UFFDIO_API handshake and
 * registers the region (MISSING | WP) through the passed fd, reads pages
 * with pread() and drops them with memfd_punch(). These helpers are the
 * thin, checked layer over those system calls that both sides share:
 *
 *   uffd.c    userfaultfd: open (with privilege fallback), API handshake,
 *             register, copy, wake, write-protect, read fault messages
 *   memfd.c   the region's memfd: create, validate, punch a hole
 *   fdpass.c  SCM_RIGHTS fd passing and peer credentials on the control
 *             socket
 *
 * Errors: int-returning calls return 0 (or a count, or an fd) on success
 * and -errno on failure; none sets errno as its result, none exits or
 * prints.
 *
 * Threads: no global state. Every call is safe from any thread, and
 * several threads may use one uffd at once (the kernel serializes the
 * ioctls on it); each fault message is read by exactly one reader.
 *
 * Headers: the build machine has the Linux 6.1 uapi headers while the
 * kernel is newer (6.18), so the uapi constants added after 6.1 are
 * defined below under #ifndef, with the values of the kernel's
 * include/uapi/linux/userfaultfd.h. Whether the running kernel supports
 * them is learnt at run time (uffd_api(), uffd_register()'s @ioctls).
 */
#ifndef UZSWAP_UFFD_H
#define UZSWAP_UFFD_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>

/*****************
 * uapi constants newer than the installed headers
 *****************/

/* /dev/userfaultfd (6.1) */
#ifndef USERFAULTFD_IOC
#define USERFAULTFD_IOC			0xAA
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW		_IO(USERFAULTFD_IOC, 0x00)
#endif
/* userfaultfd(2) flag (5.11) */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY		1
#endif

/* UFFDIO_API features */
#ifndef UFFD_FEATURE_EXACT_ADDRESS
#define UFFD_FEATURE_EXACT_ADDRESS	(1 << 11)	/* 5.18 */
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM	(1 << 12)	/* 6.0 */
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)	/* 6.4 */
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON		(1 << 14)	/* 6.6 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)	/* 6.7 */
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE		(1 << 16)	/* 6.8 */
#endif

/* UFFDIO_CONTINUE_MODE_WP (6.5) */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP		((__u64)1 << 1)
#endif

/* UFFDIO_MOVE (6.8): move pages of private anonymous memory. */
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE			(0x05)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE		((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES	((__u64)1 << 1)
	__u64 mode;
	__s64 move;	/* written by the kernel: bytes moved or -errno */
};
#define UFFDIO_MOVE	_IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

/* UFFDIO_POISON (6.6): mark a range as poisoned (SIGBUS on access). */
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON			(0x08)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE	((__u64)1 << 0)
	__u64 mode;
	__s64 updated;	/* written by the kernel: bytes done or -errno */
};
#define UFFDIO_POISON	_IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/*****************
 * userfaultfd (uffd.c)
 *****************/

/* What uffd_open() obtained. */
enum uffd_mode {
	UFFD_MODE_FULL = 1,	/* faults from user and kernel mode */
	UFFD_MODE_USER_ONLY,	/* UFFD_USER_MODE_ONLY: user-mode faults */
};

/*
 * uffd_open() - create a userfaultfd for the calling process
 * @mode: set to an enum uffd_mode on success (may be NULL)
 *
 * The fd is O_CLOEXEC | O_NONBLOCK and not yet initialised (see
 * uffd_api()). Tries, in order: userfaultfd(2) in full mode (needs
 * CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1), /dev/userfaultfd
 * with USERFAULTFD_IOC_NEW (full mode for whoever may open the device),
 * then userfaultfd(2) with UFFD_USER_MODE_ONLY. In user-mode-only mode,
 * print uffd_mode_warning().
 * Return: the fd, or the -errno of the last attempt.
 */
int uffd_open(int *mode);

/* One paragraph for an operator: how to get full mode, and what
 * user-mode-only mode costs. A static string. */
const char *uffd_mode_warning(void);

/*
 * uffd_adopt() - check an fd received from a peer before using it as a
 * userfaultfd, and make it non-blocking
 * Return: 0; -EINVAL if @fd is not a userfaultfd; -errno if /proc is
 * not readable or fcntl() fails.
 */
int uffd_adopt(int fd);

/*
 * uffd_probe_features() - the features this kernel offers, learnt from a
 * throwaway user-mode-only userfaultfd (so it needs no privilege).
 * Return: 0 and *@avail set, or -errno.
 */
int uffd_probe_features(uint64_t *avail);

/*
 * uffd_api() - the UFFDIO_API handshake: enable the features in @want
 * @got: set to the features enabled (may be NULL)
 *
 * The handshake succeeds once per uffd. Features the kernel does not offer
 * are left out rather than failing: compare *@got with @want, and close
 * the fd if a feature you need is missing (it cannot be asked again).
 * UFFD_FEATURE_EVENT_FORK is dropped if the caller lacks CAP_SYS_PTRACE.
 * Return: 0; -EINVAL if the uffd was already initialised (by anyone: a
 * peer may have done it before passing the fd); -ENOTTY if @uffd is not a
 * userfaultfd; -errno.
 */
int uffd_api(int uffd, uint64_t want, uint64_t *got);

/*
 * uffd_register() - register [@addr, @addr + @len) of the uffd's process
 * @mode:   UFFDIO_REGISTER_MODE_MISSING | _WP | _MINOR
 * @ioctls: set to the bitmask of range ioctls the kernel allows on the
 *          range, (1 << _UFFDIO_COPY) etc. (may be NULL)
 *
 * @addr is an address in the uffd's process, not necessarily the
 * caller's (the daemon registers client memory through a passed fd).
 * Return: 0; -EINVAL (unaligned, not a registrable mapping, mode not
 * supported); -EBUSY (registered with another uffd); -ENOMEM if the
 * process is gone; -errno.
 */
int uffd_register(int uffd, void *addr, size_t len, uint64_t mode,
		  uint64_t *ioctls);

/*
 * uffd_unregister() - unregister a range
 * Every thread blocked on a fault in the range is woken and retries the
 * access without userfaultfd: a hole of a memfd region then reads as
 * zeros. Restore every evicted page of a live process first.
 * Return: 0; -ENOMEM (or -ESRCH) if the process is gone; -errno.
 */
int uffd_unregister(int uffd, void *addr, size_t len);

/* Whether uffd_unregister()'s @err says that the process is gone. */
static inline bool uffd_unregister_gone(int err)
{
	return err == -ENOMEM || err == -ESRCH;
}

/* uffd_copy() flags */
#define UFFD_COPY_DONTWAKE	0x1u	/* do not wake the waiters */
#define UFFD_COPY_WP		0x2u	/* map the pages write-protected */

/*
 * uffd_copy() - resolve missing faults: copy @len bytes from @src (in the
 * caller) to @dst (in the uffd's process, page aligned, registered)
 *
 * A partial copy is continued until the kernel reports an error for the
 * first page that is left; uffd_copy_partial() says how far it got.
 * Without UFFD_COPY_DONTWAKE the copied pages' waiters are woken.
 * Return: 0 when every page was copied;
 *   -EEXIST   a page is already mapped (someone resolved it): wake it;
 *   -EAGAIN   the process's mappings are changing: retry later;
 *   -ESRCH    the process has exited (-ENOMEM may also mean it is going);
 *   -ENOENT   @dst is not in a registered range (it was unmapped);
 *   -EINVAL   bad alignment or flags; -EFAULT bad @src.
 */
int uffd_copy(int uffd, unsigned long dst, const void *src, size_t len,
	      unsigned int flags);

/* uffd_copy() that also reports in *@copied the bytes copied from the
 * start of the range (all of @len on success; pages past it untouched). */
int uffd_copy_partial(int uffd, unsigned long dst, const void *src,
		      size_t len, unsigned int flags, size_t *copied);

/*
 * uffd_zeropage() - resolve missing faults with zero-filled pages; works
 * on memfd (shmem) ranges too, where it allocates zeroed page-cache pages.
 * Same partial-progress rule and errors as uffd_copy().
 */
int uffd_zeropage(int uffd, unsigned long addr, size_t len, bool dontwake);

/*
 * uffd_poison() - resolve missing faults in the range with poison: a
 * touch of it gets SIGBUS (6.6; on shmem without asking UFFDIO_API for
 * UFFD_FEATURE_POISON). For a page whose content is lost: a client must
 * never read zeros in its place, nor block on it for ever.
 * Return: 0; -EEXIST a page is mapped; -ENOTTY before 6.6; as uffd_copy().
 */
int uffd_poison(int uffd, unsigned long addr, size_t len);

/*
 * uffd_wake() - wake the threads blocked on faults in the range
 * Return: 0 (also after the process exited); -EINVAL bad range; -errno.
 */
int uffd_wake(int uffd, unsigned long addr, size_t len);

/*
 * uffd_writeprotect() - write-protect a range (@protect), or remove the
 * protection, which wakes the blocked writers unless @dontwake
 * @dontwake is only meaningful when removing protection: the kernel
 * rejects it with @protect (-EINVAL).
 * Return: 0; -EAGAIN mappings changing; -ESRCH process gone; -ENOENT not
 * registered for WP; -errno.
 */
int uffd_writeprotect(int uffd, unsigned long addr, size_t len, bool protect,
		      bool dontwake);

/*
 * uffd_read_msgs() - read the pending messages, at most @max, in one read
 * Never blocks, even if the fd lost O_NONBLOCK (a peer shares the flag).
 * Return: how many were read; 0 if none was pending; -errno.
 */
int uffd_read_msgs(int uffd, struct uffd_msg *msgs, int max);

/*****************
 * memfd regions (memfd.c)
 *****************/

/*
 * memfd_region_create() - create the memfd backing a region of @len bytes
 * The fd is close-on-exec, sealed against exec where the kernel can.
 * Return: the fd, or -errno (-EINVAL for @len 0).
 */
int memfd_region_create(const char *name, size_t len);

/*
 * memfd_region_check() - check an fd received from a peer before using it
 * as a region of @len bytes: a shmem file (memfd, not hugetlbfs) open
 * read-write, not sealed against writes, at least @len bytes long.
 * Return: 0; -EINVAL wrong kind of file; -EBADF not open read-write;
 * -EPERM write-sealed (punching would fail); -ERANGE too short; -errno.
 */
int memfd_region_check(int fd, size_t len);

/* memfd_is_empty() - whether the memfd holds no data at all (holes
 * only), as a fresh one. */
bool memfd_is_empty(int fd);

/*
 * memfd_punch() - drop the pages of [@off, @off + @len) from the memfd,
 * keeping the size; the next access through a mapping faults as missing.
 * Return: 0 or -errno.
 */
int memfd_punch(int fd, off_t off, size_t len);

/*
 * memfd_held() - how many pages of [@off, @off + @len) of the memfd hold
 * data (in memory or in swap). One cachestat(2) over the range (Linux
 * 6.5); before it, an lseek(SEEK_DATA/SEEK_HOLE) pair per extent of data.
 * Return: pages, or -errno.
 */
long memfd_held(int fd, off_t off, size_t len);

/*****************
 * fd passing over unix stream sockets (fdpass.c)
 *****************/

/* Most fds one message may carry (a uffd, a memfd and room to grow). */
#define FDPASS_MAX_FDS	4

/*
 * fdpass_send() - send @len bytes (at least 1 when sending fds) with
 * @nfds fds attached to the first byte
 * Retries on EINTR and continues short sends. MSG_NOSIGNAL: a closed peer
 * gives -EPIPE, never SIGPIPE. The caller keeps its own fds.
 * Return: @len; fewer bytes only when a non-blocking socket filled up
 * after part was sent (send the rest without fds); -EINVAL for more than
 * FDPASS_MAX_FDS fds; -EAGAIN if nothing could be sent; -errno.
 */
ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds,
		    int nfds);

/*
 * fdpass_recv() - receive up to @len bytes and the fds attached to them
 * @fds:  room for FDPASS_MAX_FDS fds; received fds are close-on-exec and
 *        owned by the caller
 * @nfds: set to the number of fds received
 *
 * If the message carried more than FDPASS_MAX_FDS fds, or its control
 * data was truncated, every fd it brought is closed and -EMSGSIZE is
 * returned (the bytes read are consumed: treat it as a protocol error).
 * Retries on EINTR.
 * Return: bytes read (0 at end of stream, with no fds); -errno.
 */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fds, int *nfds);

/*
 * fdpass_peer_cred() - the peer's credentials, as they were at connect()
 * (SO_PEERCRED); any pointer may be NULL. A pid of 0 means the peer is
 * in a pid namespace we cannot see.
 * Return: 0 or -errno.
 */
int fdpass_peer_cred(int sock, pid_t *pid, uid_t *uid, gid_t *gid);

/*
 * fdpass_peer_in_group() - whether @gid is the peer's primary group or one
 * of its supplementary groups (SO_PEERGROUPS), as they were at connect();
 * any number of them (up to NGROUPS_MAX, 65536).
 * Return: 1 yes, 0 no, or -errno.
 */
int fdpass_peer_in_group(int sock, gid_t gid);

/*
 * fdpass_peer_pidfd() - a pidfd of the peer process (SO_PEERPIDFD, Linux
 * 6.5), free of pid reuse races; it polls readable when the peer exits.
 * Return: the close-on-exec pidfd; -ENOPROTOOPT on older kernels; -errno.
 */
int fdpass_peer_pidfd(int sock);

#endif /* UZSWAP_UFFD_H */
