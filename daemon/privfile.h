/*
 * privfile.h - files that hold clients' memory or the daemon's state, and
 * that only the daemon's user may hold: opened without following a link
 * (neither the file's nor its directory's), checked on their descriptor,
 * never on their path, and locked for the daemon's life. The backing file
 * (backing.c) and the state directory (statedir.c) share these.
 *
 * Private to uzswapd. libc only; no state: safe from any thread.
 */
#ifndef UZSWAPD_PRIVFILE_H
#define UZSWAPD_PRIVFILE_H

#include <sys/stat.h>

/*
 * privfile_open_dir() - open directory @path read-only without following
 * a symlink in its last component (O_NOFOLLOW): files are then created
 * and removed relative to this fd, so a directory swapped for a link
 * later cannot redirect them.
 * Return: the fd, or -errno (-ELOOP for a symlink, -ENOTDIR for anything
 * else that is not a directory).
 */
int privfile_open_dir(const char *path);

/*
 * privfile_check() - whether @fd may be one of the daemon's private files:
 * a regular file (-EINVAL), of the daemon's user (-EPERM: someone else's
 * file, they may hold it open and read what we write), with no other name
 * (-EMLINK: a hard link planted to a file of ours). Fills *@sb.
 * Return: 0 or -errno.
 */
int privfile_check(int fd, struct stat *sb);

/* Lock @fd (flock, exclusive) for as long as it is open: 0, -EBUSY if
 * another open file holds the lock (another process), or -errno. */
int privfile_lock(int fd);

#endif /* UZSWAPD_PRIVFILE_H */
