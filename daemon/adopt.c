/*
 * adopt.c - taking a client's descriptors back after a restart (see
 * adopt.h).
 *
 * A pid alone may name another process since the record was written; the
 * pidfd is opened first and the start time read after, so that the pidfd
 * refers to the recorded process if the start time matches (a process
 * that took the pid in between has another start time). A descriptor
 * number alone may name another file since: the uffd is recognized by its
 * anonymous inode's name, a memfd by its device and inode.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "adopt.h"

#define STAT_START_FIELD 22	/* starttime, proc(5) */

int adopt_start_time(pid_t pid, uint64_t *ticks)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	/* a proc file of this size reads whole in one call */
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? (int)n : -ESRCH;
	buf[n] = '\0';
	/* the command name (field 2) may hold spaces and parentheses: the
	 * fields after it start after its last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	for (field = 2; field < STAT_START_FIELD && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%" SCNu64, ticks) != 1)
		return -EIO;
	return 0;
}

int adopt_process(pid_t pid, uint64_t start_time)
{
	uint64_t now;
	int pidfd, ret;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	ret = adopt_start_time(pid, &now);
	if (ret == 0 && now != start_time)
		ret = -ESTALE;
	if (ret) {
		close(pidfd);
		return ret;
	}
	return pidfd;
}

/* The process's descriptor @fdnum, as ours (close-on-exec). */
static int take_fd(int pidfd, int fdnum)
{
	int fd;

	if (fdnum < 0)
		return -EBADF;
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, fdnum, 0);
	if (fd >= 0)
		return fd;
	/* EBADF: no such descriptor any more; ESRCH: the process exited */
	return errno == EBADF ? -ESTALE : -errno;
}

/* Whether our @fd is an anonymous inode named @name ("[userfaultfd]"). */
static bool is_anon_inode(int fd, const char *name)
{
	char path[64], target[64], want[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	snprintf(want, sizeof(want), "anon_inode:%s", name);
	return !strcmp(target, want);
}

int adopt_uffd(int pidfd, int fdnum)
{
	int fd = take_fd(pidfd, fdnum), fl;

	if (fd < 0)
		return fd;
	if (!is_anon_inode(fd, "[userfaultfd]")) {
		close(fd);
		return -ESTALE;
	}
	/* the fault threads never block on a uffd: one the client made
	 * blocking is not one libuzswap made */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || !(fl & O_NONBLOCK)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int adopt_memfd(int pidfd, int fdnum, dev_t dev, ino_t ino)
{
	int fd = take_fd(pidfd, fdnum);
	struct stat sb;

	if (fd < 0)
		return fd;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_dev != dev ||
	    sb.st_ino != ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}
