/*
 * fullio.c - read or write all of a buffer (see fullio.h).
 *
 * The four calls share one loop; an offset of -1 stands for the file
 * position (read(2), write(2)) and is never accepted from a caller.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "fullio.h"

#define FULLIO_FILE_POS	((off_t)-1)

/* One system call: at @off, or at the file position. */
static ssize_t fullio_once(int fd, char *p, size_t len, off_t off,
			   bool out)
{
	if (out)
		return off == FULLIO_FILE_POS ? write(fd, p, len)
					      : pwrite(fd, p, len, off);
	return off == FULLIO_FILE_POS ? read(fd, p, len)
				      : pread(fd, p, len, off);
}

static int fullio_all(int fd, char *p, size_t len, off_t off, bool out)
{
	ssize_t n;

	while (len) {
		n = fullio_once(fd, p, len, off, out);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		if (off != FULLIO_FILE_POS)
			off += n;
	}
	return 0;
}

int fullio_read(int fd, void *buf, size_t len)
{
	return fullio_all(fd, buf, len, FULLIO_FILE_POS, false);
}

int fullio_write(int fd, const void *buf, size_t len)
{
	return fullio_all(fd, (char *)buf, len, FULLIO_FILE_POS, true);
}

int fullio_pread(int fd, void *buf, size_t len, off_t off)
{
	if (off < 0)
		return -EINVAL;
	return fullio_all(fd, buf, len, off, false);
}

int fullio_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (off < 0)
		return -EINVAL;
	return fullio_all(fd, (char *)buf, len, off, true);
}
