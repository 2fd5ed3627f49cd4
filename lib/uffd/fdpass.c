/*
 * fdpass.c - passing fds (SCM_RIGHTS) and identifying the peer on the
 * control socket
 *
 * A client hands its region's memfd and its userfaultfd to the daemon in
 * one message; the fds ride on the first byte of the message. The daemon
 * must never leak an fd a peer sends, whatever the peer sends: a message
 * with more fds than FDPASS_MAX_FDS, or whose control data did not fit
 * (MSG_CTRUNC: the kernel installed the fds that fit and dropped the
 * rest), has every installed fd closed before the error is returned. The
 * control buffer has room for twice FDPASS_MAX_FDS, so a message a little
 * over the limit is seen whole and refused as such.
 *
 * Received fds are close-on-exec from the start (MSG_CMSG_CLOEXEC): a
 * daemon thread that forks and execs meanwhile does not inherit them.
 * Sends use MSG_NOSIGNAL, so a client that went away gives EPIPE and never
 * kills the daemon with SIGPIPE.
 *
 * The peer is identified by the kernel, never by what it says:
 * SO_PEERCRED gives the pid, uid and gid it had at connect(), and
 * SO_PEERPIDFD (Linux 6.5) a pidfd that cannot be confused with a later
 * process reusing the pid, and that polls readable when the peer exits.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uffd.h"

/* asm-generic value; other architectures lack it before their headers do */
#if !defined(SO_PEERPIDFD) && (defined(__x86_64__) || defined(__i386__) || \
	defined(__aarch64__) || defined(__arm__) || defined(__riscv))
#define SO_PEERPIDFD	77
#endif

/* fds one receive can see: enough to recognise an overflow as such */
#define FDPASS_CMSG_FDS	(2 * FDPASS_MAX_FDS)

ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds,
		    int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
	} control;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	size_t sent = 0;
	ssize_t n;

	if (nfds < 0 || nfds > FDPASS_MAX_FDS || len > SSIZE_MAX ||
	    (len && !buf) || (nfds && (!fds || !len)))
		return -EINVAL;

	while (sent < len) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = (char *)buf + sent;
		iov.iov_len = len - sent;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if (sent == 0 && nfds > 0) {
			memset(&control, 0, sizeof(control));
			msg.msg_control = control.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
		}
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (sent > 0 && (errno == EAGAIN ||
					 errno == EWOULDBLOCK))
				break;
			return -errno;
		}
		sent += (size_t)n;
	}
	return (ssize_t)sent;
}

ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fds, int *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_CMSG_FDS)];
	} control;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	bool refuse;
	ssize_t n;
	size_t i, k;
	int fd, got = 0;

	if (!buf || !len || !fds || !nfds)
		return -EINVAL;
	*nfds = 0;

	do {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = buf;
		iov.iov_len = len;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	/* Take every fd that arrived, closing those beyond the limit. */
	refuse = msg.msg_flags & MSG_CTRUNC;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS ||
		    cmsg->cmsg_len < CMSG_LEN(0))
			continue;
		k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			       sizeof(int));
			if (got < FDPASS_MAX_FDS) {
				fds[got++] = fd;
			} else {
				close(fd);
				refuse = true;
			}
		}
	}
	if (refuse)
		goto out_close_fds;
	*nfds = got;
	return n;

out_close_fds:
	while (got > 0)
		close(fds[--got]);
	return -EMSGSIZE;
}

int fdpass_peer_cred(int sock, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred))
		return -EPROTO;
	if (pid)
		*pid = cred.pid;
	if (uid)
		*uid = cred.uid;
	if (gid)
		*gid = cred.gid;
	return 0;
}

/*
 * The peer's supplementary groups into *@groups: @buf if they fit (its
 * @n entries), else an allocated array (free it if it is not @buf).
 * SO_PEERGROUPS fails with ERANGE and says the size it needs when the
 * buffer is short; the groups cannot change, but the loop bounds it
 * anyway. Return: the number of groups or -errno.
 */
static ssize_t peer_groups(int sock, gid_t *buf, size_t n, gid_t **groups)
{
	socklen_t len = (socklen_t)(n * sizeof(gid_t));
	gid_t *g = buf;
	int tries;

	for (tries = 0; tries < 3; tries++) {
		if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
			*groups = g;
			return (ssize_t)(len / sizeof(gid_t));
		}
		if (g != buf)
			free(g);
		if (errno != ERANGE)
			return -errno;
		g = malloc(len);
		if (!g)
			return -ENOMEM;
	}
	if (g != buf)
		free(g);
	return -ERANGE;
}

int fdpass_peer_in_group(int sock, gid_t gid)
{
	gid_t buf[64], *groups = buf, primary = 0;
	bool found = false;
	ssize_t n, i;

	if (fdpass_peer_cred(sock, NULL, NULL, &primary) == 0 &&
	    primary == gid)
		return 1;
	n = peer_groups(sock, buf, sizeof(buf) / sizeof(buf[0]), &groups);
	if (n < 0)
		return (int)n;
	for (i = 0; i < n && !found; i++)
		found = groups[i] == gid;
	if (groups != buf)
		free(groups);
	return found;
}

int fdpass_peer_pidfd(int sock)
{
#ifdef SO_PEERPIDFD
	socklen_t len = sizeof(int);
	int pidfd = -1;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		return -errno;
	if (len != sizeof(int) || pidfd < 0) {
		if (pidfd >= 0)
			close(pidfd);
		return -EPROTO;
	}
	return pidfd;
#else
	return -ENOPROTOOPT;
#endif
}
