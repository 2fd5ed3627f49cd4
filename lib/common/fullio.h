/*
 * fullio.h - read or write all of a buffer: the loop around read(2),
 * write(2), pread(2) and pwrite(2) that retries short counts and EINTR,
 * written once for the daemon, the client library, the tests and the
 * benchmarks.
 *
 * Private to uzswap (libc only). Safe from any thread; each call blocks
 * until done on a blocking descriptor (a non-blocking one that would block
 * gives -EAGAIN, with part of the buffer possibly transferred).
 * Return: 0 once all @len bytes are transferred; -EIO if the file ended
 * (or a write transferred nothing) first; -EINVAL for a negative @off;
 * otherwise the -errno of the failed call.
 */
#ifndef UZSWAP_FULLIO_H
#define UZSWAP_FULLIO_H

#include <stddef.h>
#include <sys/types.h>

int fullio_read(int fd, void *buf, size_t len);
int fullio_write(int fd, const void *buf, size_t len);
int fullio_pread(int fd, void *buf, size_t len, off_t off);
int fullio_pwrite(int fd, const void *buf, size_t len, off_t off);

#endif /* UZSWAP_FULLIO_H */
