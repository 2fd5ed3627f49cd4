/*
 * resp.h - a redis client for the integration tests: RESP over a unix
 * socket, just what check_preload and check_programs ask of a real
 * redis-server (SET in batches, DEBUG DIGEST, BGSAVE, INFO).
 *
 * Private to the tests. Every call fails the running Check test on an
 * error (a closed stream, an unexpected reply): the suites check
 * programs, not this client.
 */
#ifndef UZSWAP_ITEST_RESP_H
#define UZSWAP_ITEST_RESP_H

#include <stddef.h>

/* A connection and what it read ahead. */
struct resp {
	int fd;
	size_t off, len;	/* unread bytes: buf[off, len) */
	char buf[65536];
};

/* Connect to the redis-server listening at @path, waiting for it to come
 * up (@timeout_ms, scaled as the harness's waits are). */
void resp_connect(struct resp *r, const char *path, int timeout_ms);
void resp_close(struct resp *r);

/* Send the command @argv (NULL-terminated) as one RESP array. */
void resp_command(struct resp *r, const char *const *argv);

/* One reply line (a simple string, an error, an integer or a bulk's
 * length), without its CRLF, into @buf (cut to @size). */
void resp_line(struct resp *r, char *buf, size_t size);

/* A bulk string reply into @buf (NUL-terminated, cut to @size); its
 * length, or -1 for a null bulk. */
long resp_bulk(struct resp *r, char *buf, size_t size);

/* SET key:I to a value of its own (80 to 119 bytes, I in it), for I <
 * @keys, in pipelined batches; every reply must be +OK. */
void resp_fill(struct resp *r, int keys);

/* Wait (@timeout_ms, scaled) until the server has loaded its dataset
 * (INFO persistence: loading:0). A server answers while it loads, and
 * some commands (DEBUG DIGEST) then see part of the data. */
void resp_wait_loaded(struct resp *r, int timeout_ms);

/* DEBUG DIGEST (a server started with --enable-debug-command local): the
 * reply, "+" and 40 hex digits, into @buf. */
void resp_digest(struct resp *r, char *buf, size_t size);

#endif
