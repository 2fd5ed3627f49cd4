/*
 * fuzz_proto_reader.c - libFuzzer target: proto_reader_feed(), the
 * daemon's reader of what a peer writes on the control socket.
 *
 * Input: chunks, each a control byte and its bytes. The control byte's low
 * 5 bits are the chunk's length (0: the rest of the input), its top 3 bits
 * pick how many fds (of /dev/null) ride on the chunk's first byte, from
 * chunk_fds[]: up to PROTO_MAX_FDS, past it, past FDPASS_MAX_FDS, and past
 * the control buffer of fdpass_recv() (MSG_CTRUNC). Each chunk is written
 * to a unix stream socket whose other end the reader feeds on,
 * non-blocking, until it wants more: so messages arrive cut anywhere and
 * fds arrive anywhere, as from a hostile peer. At the end the writer
 * closes.
 *
 * Checked: every message the reader completes has a valid header, its
 * whole payload and at most PROTO_MAX_FDS open fds; after the stream ends
 * (at the latest at end of input) no fd the peer sent is left open.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "lib/proto/proto.h"
#include "lib/uffd/uffd.h"
#include "tests/send.h"

#define CHUNK_LEN(ctl)	((ctl) & 0x1fu)
#define CHUNK_FDS(ctl)	(chunk_fds[(ctl) >> 5])
#define MAX_CHUNK_FDS	(2 * FDPASS_MAX_FDS + 1)

static const unsigned int chunk_fds[8] = {
	0, 1, PROTO_MAX_FDS, PROTO_MAX_FDS + 1, FDPASS_MAX_FDS,
	FDPASS_MAX_FDS + 1, 2 * FDPASS_MAX_FDS, MAX_CHUNK_FDS,
};

/* The lowest free fd number: a leaked fd takes it. */
static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* Write @len bytes (at least one) with @nfds fds of /dev/null on them;
 * false if the socket cannot take them (the reader stopped reading). */
static bool send_chunk(int sock, const uint8_t *buf, size_t len,
		       unsigned int nfds)
{
	int fds[MAX_CHUNK_FDS];
	unsigned int i;
	ssize_t n;

	for (i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	n = send_with_fds(sock, buf, len, fds, (int)nfds, MSG_DONTWAIT);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	return n == (ssize_t)len;
}

/* A message the reader says is complete. */
static void check_msg(const struct proto_reader *r)
{
	const struct proto_msg *m = &r->msg;
	int i;

	FUZZ_CHECK(m->hdr.magic == PROTO_MAGIC);
	FUZZ_CHECK(m->hdr.version >= PROTO_VERSION_MIN &&
		   m->hdr.version <= PROTO_VERSION);
	FUZZ_CHECK(m->hdr.len <= PROTO_MAX_PAYLOAD);
	FUZZ_CHECK(r->have == PROTO_HDR_SIZE + m->hdr.len);
	FUZZ_CHECK(m->nfds >= 0 && m->nfds <= PROTO_MAX_FDS);
	for (i = 0; i < m->nfds; i++)
		FUZZ_CHECK(fcntl(m->fds[i], F_GETFD) >= 0);
}

/* Feed until the reader wants more (0) or the stream is dead (-errno). */
static int feed(struct proto_reader *r, int sock)
{
	int ret;

	while ((ret = proto_reader_feed(r, sock)) == 1) {
		check_msg(r);
		proto_reader_reset(r);
	}
	FUZZ_CHECK(ret <= 0);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_reader *r = calloc(1, sizeof(*r));
	int free_fd = lowest_free_fd();
	size_t off = 0, len;
	int sv[2], ret = 0;
	uint8_t ctl;

	if (!r)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       sv) < 0)
		goto out_free;
	while (ret == 0 && off < size) {
		ctl = data[off++];
		len = CHUNK_LEN(ctl) ? CHUNK_LEN(ctl) : size - off;
		if (len > size - off)
			len = size - off;
		if (len == 0 || !send_chunk(sv[1], data + off, len,
					    CHUNK_FDS(ctl)))
			break;
		off += len;
		ret = feed(r, sv[0]);
	}
	close(sv[1]);
	if (ret == 0)
		ret = feed(r, sv[0]);
	FUZZ_CHECK(ret < 0);
	proto_reader_reset(r);
	close(sv[0]);
	FUZZ_CHECK(lowest_free_fd() == free_fd);
out_free:
	free(r);
	return 0;
}
