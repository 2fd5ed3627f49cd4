/*
 * send.h - raw sends for the tests that play a hostile peer: any number of
 * fds on a message (fdpass_send() stops at FDPASS_MAX_FDS, as it should).
 *
 * Private to uzswap's tests (libtestutil).
 */
#ifndef UZSWAP_TESTS_SEND_H
#define UZSWAP_TESTS_SEND_H

#include <stddef.h>
#include <sys/types.h>

/* The most fds send_with_fds() puts on one message. */
#define SEND_MAX_FDS 32

/*
 * send_with_fds() - one sendmsg() of @len bytes of @buf with @nfds fds on
 * its first byte, @flags besides MSG_NOSIGNAL; retried on EINTR
 * Return: the bytes sent, or -errno (-EINVAL for over SEND_MAX_FDS fds).
 */
ssize_t send_with_fds(int sock, const void *buf, size_t len, const int *fds,
		      int nfds, int flags);

#endif /* UZSWAP_TESTS_SEND_H */
