/*
 * resp.c - a redis client for the integration tests (resp.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "resp.h"

#define FILL_BATCH	1000	/* SETs pipelined */

void resp_connect(struct resp *r, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = dh_deadline(timeout_ms);
	int fd;

	r->off = r->len = 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		DH_CHECK(fd >= 0, "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		DH_CHECK(dh_now_ms() < deadline, "redis at %s: %s", path,
			 strerror(errno));
		dh_sleep_ms(50);
	}
	r->fd = fd;
}

void resp_close(struct resp *r)
{
	close(r->fd);
	r->fd = -1;
}

static void send_all(struct resp *r, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(r->fd, buf, len);
		DH_CHECK(n > 0, "write to redis: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

/* Append the command @argv to @buf (@len bytes used of @size). */
static size_t put_command(char *buf, size_t len, size_t size,
			  const char *const *argv)
{
	size_t argc = 0, i;

	while (argv[argc])
		argc++;
	len += (size_t)snprintf(buf + len, size - len, "*%zu\r\n", argc);
	for (i = 0; i < argc && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "$%zu\r\n%s\r\n",
					strlen(argv[i]), argv[i]);
	DH_CHECK(len < size, "a redis command too long");
	return len;
}

void resp_command(struct resp *r, const char *const *argv)
{
	char buf[4096];

	send_all(r, buf, put_command(buf, 0, sizeof(buf), argv));
}

static char next_byte(struct resp *r)
{
	ssize_t n;

	if (r->off == r->len) {
		n = read(r->fd, r->buf, sizeof(r->buf));
		DH_CHECK(n > 0, "redis closed the stream%s%s", n ? ": " : "",
			 n ? strerror(errno) : "");
		r->off = 0;
		r->len = (size_t)n;
	}
	return r->buf[r->off++];
}

void resp_line(struct resp *r, char *buf, size_t size)
{
	size_t n = 0;
	char ch;

	while ((ch = next_byte(r)) != '\n')
		if (ch != '\r' && n + 1 < size)
			buf[n++] = ch;
	buf[n] = '\0';
}

long resp_bulk(struct resp *r, char *buf, size_t size)
{
	char line[64];
	long len, i;

	resp_line(r, line, sizeof(line));
	DH_CHECK(line[0] == '$' && sscanf(line + 1, "%ld", &len) == 1,
		 "redis: %s, not a bulk string", line);
	if (len < 0)
		return -1;
	for (i = 0; i < len; i++) {
		char ch = next_byte(r);

		if ((size_t)i + 1 < size)
			buf[i] = ch;
	}
	buf[(size_t)len < size ? (size_t)len : size - 1] = '\0';
	next_byte(r);	/* CRLF */
	next_byte(r);
	return len;
}

void resp_fill(struct resp *r, int keys)
{
	static char buf[FILL_BATCH * 256];
	char key[32], val[160], line[256];
	size_t len;
	int i, j;

	for (i = 0; i < keys; i += FILL_BATCH) {
		len = 0;
		for (j = i; j < i + FILL_BATCH && j < keys; j++) {
			const char *set[] = { "SET", key, val, NULL };

			snprintf(key, sizeof(key), "key:%d", j);
			snprintf(val, sizeof(val), "value-%d-%0*d", j,
				 80 + j % 40, j);
			len = put_command(buf, len, sizeof(buf), set);
		}
		send_all(r, buf, len);
		for (j = i; j < i + FILL_BATCH && j < keys; j++) {
			resp_line(r, line, sizeof(line));
			DH_CHECK(!strcmp(line, "+OK"), "SET: %s", line);
		}
	}
}

void resp_wait_loaded(struct resp *r, int timeout_ms)
{
	const char *const info[] = { "INFO", "persistence", NULL };
	long long deadline = dh_deadline(timeout_ms);
	static char text[8192];

	for (;;) {
		resp_command(r, info);
		DH_CHECK(resp_bulk(r, text, sizeof(text)) > 0, "INFO: null");
		/* not async_loading:0 */
		if (strstr(text, "\nloading:0\r\n"))
			return;
		DH_CHECK(dh_now_ms() < deadline, "redis still loading");
		dh_sleep_ms(50);
	}
}

void resp_digest(struct resp *r, char *buf, size_t size)
{
	const char *const cmd[] = { "DEBUG", "DIGEST", NULL };

	resp_command(r, cmd);
	resp_line(r, buf, size);
	DH_CHECK(buf[0] == '+' && strlen(buf) == 41, "DEBUG DIGEST: %s", buf);
}
