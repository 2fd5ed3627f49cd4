/*
 * privfile.c - opening, checking and locking the daemon's private files;
 * see privfile.h.
 *
 * Every check is made on a descriptor (fstat), never on a path, so that a
 * name changed between the check and the use changes nothing. A lock is
 * flock(): it belongs to the open file, so it holds for as long as the
 * descriptor is open and dies with the process, crash included.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "privfile.h"

int privfile_open_dir(const char *path)
{
	struct stat sb;
	int fd;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	/* O_DIRECTORY reports a symlink as ENOTDIR */
	if (errno == ENOTDIR && lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode))
		return -ELOOP;
	return -errno;
}

int privfile_check(int fd, struct stat *sb)
{
	if (fstat(fd, sb) < 0)
		return -errno;
	if (!S_ISREG(sb->st_mode))
		return -EINVAL;
	if (sb->st_uid != geteuid())
		return -EPERM;
	if (sb->st_nlink != 1)
		return -EMLINK;
	return 0;
}

int privfile_lock(int fd)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	return errno == EWOULDBLOCK ? -EBUSY : -errno;
}
