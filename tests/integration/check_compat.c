/*
 * check_compat.c - the control protocol's promise to old peers, against a
 * real uzswapd: a client speaking version 1 on the raw socket keeps
 * working against this and every later daemon, and versions are enforced
 * per connection.
 *
 * The version-1 frames are built here byte by byte at fixed offsets, and
 * the replies are read the same way, without lib/proto's encoders or
 * decoders: this file pins the version-1 wire format, so that a change of
 * a field list that would break old peers fails here even if both codecs
 * agree with each other. Every reply body must have exactly its version-1
 * length, since version-1 decoders refuse trailing bytes.
 *
 * Test cases of compat_suite():
 *   v1     a client's life in version-1 frames (HELLO v1..v1 with a uffd,
 *          REGISTER, a page evicted by ADVISE COLD and brought back by a
 *          fault, STATS, UNREGISTER); an admin peer that sends no HELLO
 *          (STATUS, CLIENTS, DAEMON_VERSION)
 *   v2     HELLO and ADMIN_HELLO pick version 2, a CLIENTS reply says where
 *          its rows are, STATUS keeps its version-1 length, and a frame
 *          of another version than the connection's is refused with
 *          -EPROTONOSUPPORT and closes it
 *   v3     ADMIN_HELLO picks version 3, whose STATUS appends 14 counters
 *
 * UZSWAP_ITEST_KEEP=1 keeps the daemon's log.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/uffd/uffd.h"

#define PAGE		4096ul
#define REGION		(16 * PAGE)
#define TIMEOUT		300	/* generous: CI machines run this under ASan */

/* The version-1 wire format: header fields, message types, body sizes. */
#define V1_MAGIC	0x55a5f00du
#define V1_HDR		16	/* magic u32, version u16, type u16, seq u32,
				 * len u32 */
#define V1_REPLY	0x8000u
enum {
	T_HELLO = 1, T_REGISTER, T_UNREGISTER, T_SET_LIMIT, T_ADVISE,
	T_STATS, T_STATUS, T_DAEMON_VERSION, T_CLIENTS, T_CLIENT,
	T_ADMIN_HELLO = 15,	/* version 2 */
};
#define V1_HELLO_REPLY	14	/* version u16, page_size u32, limit u64 */
#define V1_REGISTER	88	/* addr, len u64; flags u32; fdnum i32;
				 * name[64] */
#define V1_STATS_REPLY	64	/* 8 x u64 */
#define V1_STATUS_REPLY	208	/* 26 x u64; version 2 too */
#define V3_STATUS_REPLY	328	/* 41 x u64: version 3 appends 15 */
#define V1_VERSION_REPLY 36	/* min, max u16; release[32] */
#define V1_ROW		100	/* pid i32, uid u32, comm[16], regions u32,
				 * 9 x u64 */
#define V2_CLIENTS_FIXED 16	/* count, more, rows_off, row_size u32 */

static struct dh_daemon dmn;

static void daemon_up(void)
{
	dh_up(&dmn, NULL);
}

static void daemon_down(void)
{
	dh_down(&dmn, NULL);
}

/*****************
 * Bytes on the wire
 *****************/

static void w16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void w32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void w64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static uint16_t r16(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint32_t r32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint64_t r64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

/* A peer on the raw socket, framing everything at @version. */
struct peer {
	int fd;
	uint16_t version;
	uint32_t seq;
};

/* A reply: its header's version and the payload after the status. */
struct reply {
	uint16_t version;
	int32_t status;
	uint8_t body[8192];
	size_t len;
};

static void peer_open(struct peer *p, uint16_t version)
{
	p->fd = dh_connect(&dmn);
	DH_ASSERT(p->fd >= 0, "connect: %s", strerror(-p->fd));
	p->version = version;
	p->seq = 0;
}

/* Send a request of @type with @len payload bytes (and @fd if >= 0). */
static uint32_t peer_send(struct peer *p, uint16_t type, const uint8_t *pl,
			  size_t len, int fd)
{
	uint8_t buf[V1_HDR + 256];
	ssize_t n;

	DH_ASSERT(len <= sizeof(buf) - V1_HDR, "payload of %zu", len);
	w32(buf, 0, V1_MAGIC);
	w16(buf, 4, p->version);
	w16(buf, 6, type);
	w32(buf, 8, ++p->seq);
	w32(buf, 12, (uint32_t)len);
	if (len)
		memcpy(buf + V1_HDR, pl, len);
	n = fdpass_send(p->fd, buf, V1_HDR + len, &fd, fd >= 0 ? 1 : 0);
	DH_ASSERT(n == (ssize_t)(V1_HDR + len), "send: %zd", n);
	return p->seq;
}

/* Read exactly @n bytes (the socket's 10 s timeout is a hang detector,
 * far above the milliseconds a reply takes); false at end of stream. */
static bool read_exact(int fd, uint8_t *buf, size_t n)
{
	ssize_t got = recv(fd, buf, n, MSG_WAITALL);

	DH_ASSERT(got == (ssize_t)n || got == 0 ||
			  (got < 0 && errno == ECONNRESET),
		  "recv: %zd of %zu (%s)", got, n,
		  got < 0 ? strerror(errno) : "short");
	return got == (ssize_t)n;
}

/* Read the reply to request @seq of @type. */
static void peer_reply(struct peer *p, uint16_t type, uint32_t seq,
		       struct reply *r)
{
	uint8_t hdr[V1_HDR], payload[8192];
	uint32_t len;

	DH_ASSERT(read_exact(p->fd, hdr, V1_HDR), "no reply to type %u",
		  type);
	len = r32(hdr, 12);
	DH_ASSERT(r32(hdr, 0) == V1_MAGIC, "reply magic %#x", r32(hdr, 0));
	DH_ASSERT(r16(hdr, 6) == (type | V1_REPLY), "reply type %#x",
		  r16(hdr, 6));
	DH_ASSERT(r32(hdr, 8) == seq, "reply seq %u for %u", r32(hdr, 8),
		  seq);
	DH_ASSERT(len >= 4 && len <= sizeof(payload), "reply of %u bytes",
		  len);
	DH_ASSERT(read_exact(p->fd, payload, len), "reply cut short");
	r->version = r16(hdr, 4);
	r->status = (int32_t)r32(payload, 0);
	r->len = len - 4;
	memcpy(r->body, payload + 4, r->len);
}

/* One request; asserts its reply's version and status (and body length
 * if @body_len >= 0). */
static void peer_call(struct peer *p, uint16_t type, const uint8_t *pl,
		      size_t len, int fd, int32_t status, long body_len,
		      struct reply *r)
{
	uint32_t seq = peer_send(p, type, pl, len, fd);

	peer_reply(p, type, seq, r);
	DH_ASSERT(r->version == p->version, "type %u: reply version %u",
		  type, r->version);
	DH_ASSERT(r->status == status, "type %u: status %d, expected %d",
		  type, r->status, status);
	if (body_len >= 0)
		DH_ASSERT(r->len == (size_t)body_len,
			  "type %u: body of %zu bytes, expected %ld", type,
			  r->len, body_len);
}

/* The connection is closed by the daemon (after a broken frame). */
static void assert_closed(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t c;

	DH_ASSERT(poll(&pfd, 1, 10000) == 1, "connection not closed");
	DH_ASSERT(recv(fd, &c, 1, MSG_DONTWAIT) <= 0,
		  "connection still open after a broken frame");
}

/*****************
 * Version-1 messages
 *****************/

static void hello_payload(uint8_t *pl, uint16_t min, uint16_t max, int mode,
			  int uffd)
{
	w16(pl, 0, min);
	w16(pl, 2, max);
	w32(pl, 4, mode == UFFD_MODE_USER_ONLY ? 1 : 0);
	w32(pl, 8, (uint32_t)uffd);
}

/* HELLO v@min..v@max with a fresh uffd (returned): the daemon picks
 * @want, and frames its reply and what follows at it. */
static int hello(struct peer *p, uint16_t min, uint16_t max, uint16_t want)
{
	struct reply r;
	uint8_t pl[12];
	int mode, uffd = uffd_open(&mode);

	DH_ASSERT(uffd >= 0, "uffd_open: %s", strerror(-uffd));
	hello_payload(pl, min, max, mode, uffd);
	peer_reply(p, T_HELLO, peer_send(p, T_HELLO, pl, sizeof(pl), uffd),
		   &r);
	DH_ASSERT(r.status == 0 && r.len == V1_HELLO_REPLY,
		  "HELLO: status %d, %zu bytes", r.status, r.len);
	DH_ASSERT(r.version == want && r16(r.body, 0) == want,
		  "version picked %u, in a frame of %u", r16(r.body, 0),
		  r.version);
	DH_ASSERT(r32(r.body, 2) == PAGE, "page size %u", r32(r.body, 2));
	p->version = want;
	return uffd;
}

static void register_payload(uint8_t *pl, const void *addr, int memfd)
{
	memset(pl, 0, V1_REGISTER);
	w64(pl, 0, (uintptr_t)addr);
	w64(pl, 8, REGION);
	w32(pl, 16, 0);
	w32(pl, 20, (uint32_t)memfd);
	memcpy(pl + 24, "compat", 7);
}

static uint64_t stat_at(const struct reply *r, unsigned int index)
{
	return r64(r->body, index * 8);
}

/* STATS, a version-1 body: resident, limit, registered, stored,
 * compressed, faults, evictions, regions. */
enum { S_REGISTERED = 2, S_FAULTS = 5, S_EVICTIONS = 6, S_REGIONS = 7 };

/*****************
 * Tests
 *****************/

START_TEST(test_v1_client)
{
	struct peer p;
	struct reply r;
	uint8_t pl[V1_REGISTER];
	volatile uint64_t *words;
	int memfd, uffd;
	uint8_t *mem;
	size_t i;

	memfd = memfd_region_create("compat", REGION);
	DH_ASSERT(memfd >= 0, "memfd: %s", strerror(-memfd));
	mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
		   0);
	DH_ASSERT(mem != MAP_FAILED, "mmap: %s", strerror(errno));
	madvise(mem, REGION, MADV_NOHUGEPAGE);
	words = (volatile uint64_t *)mem;

	peer_open(&p, 1);
	uffd = hello(&p, 1, 1, 1);

	register_payload(pl, mem, memfd);
	peer_call(&p, T_REGISTER, pl, V1_REGISTER, memfd, 0, 8, &r);
	DH_ASSERT(r64(r.body, 0) > 0, "region id 0");
	for (i = 0; i < REGION / 8; i++)
		words[i] = 0x5a5a000000000001ull + i;

	/* ADVISE COLD over the region: its pages leave */
	w64(pl, 0, (uintptr_t)mem);
	w64(pl, 8, REGION);
	w32(pl, 16, 1);
	peer_call(&p, T_ADVISE, pl, 20, -1, 0, 0, &r);
	peer_call(&p, T_STATS, NULL, 0, -1, 0, V1_STATS_REPLY, &r);
	DH_ASSERT(stat_at(&r, S_EVICTIONS) > 0, "nothing evicted");
	DH_ASSERT_EQ(stat_at(&r, S_REGISTERED), REGION);
	DH_ASSERT_EQ(stat_at(&r, S_REGIONS), 1);

	/* touching them faults, and the daemon serves the faults */
	for (i = 0; i < REGION / 8; i++)
		DH_ASSERT(words[i] == 0x5a5a000000000001ull + i,
			  "word %zu lost", i);
	peer_call(&p, T_STATS, NULL, 0, -1, 0, V1_STATS_REPLY, &r);
	DH_ASSERT(stat_at(&r, S_FAULTS) > 0, "no fault served");

	w64(pl, 0, (uintptr_t)mem);
	peer_call(&p, T_UNREGISTER, pl, 8, -1, 0, 0, &r);
	peer_call(&p, T_STATS, NULL, 0, -1, 0, V1_STATS_REPLY, &r);
	DH_ASSERT_EQ(stat_at(&r, S_REGIONS), 0);
	for (i = 0; i < REGION / 8; i++)
		DH_ASSERT(words[i] == 0x5a5a000000000001ull + i,
			  "word %zu lost after UNREGISTER", i);

	close(p.fd);
	close(uffd);
	munmap(mem, REGION);
	close(memfd);
}
END_TEST

/* A row of @pid in a CLIENTS body of @count rows of @row bytes from
 * @off; NULL if none. */
static const uint8_t *find_row(const struct reply *r, size_t off,
			       size_t row, uint32_t count, pid_t pid)
{
	uint32_t i;

	for (i = 0; i < count; i++)
		if ((pid_t)r32(r->body, off + i * row) == pid)
			return r->body + off + i * row;
	return NULL;
}

/* A client peer with one registered region, for CLIENTS to list. */
struct client_peer {
	struct peer p;
	int uffd;
	int memfd;
	void *mem;
};

static void client_peer_open(struct client_peer *c, uint16_t version)
{
	uint8_t pl[V1_REGISTER];
	struct reply r;

	c->memfd = memfd_region_create("compat", REGION);
	DH_ASSERT(c->memfd >= 0, "memfd: %s", strerror(-c->memfd));
	c->mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->memfd, 0);
	DH_ASSERT(c->mem != MAP_FAILED, "mmap: %s", strerror(errno));
	peer_open(&c->p, 1);
	c->uffd = hello(&c->p, 1, version, version);
	register_payload(pl, c->mem, c->memfd);
	peer_call(&c->p, T_REGISTER, pl, V1_REGISTER, c->memfd, 0, 8, &r);
}

static void client_peer_close(struct client_peer *c)
{
	close(c->p.fd);
	close(c->uffd);
	munmap(c->mem, REGION);
	close(c->memfd);
}

START_TEST(test_v1_admin_without_hello)
{
	struct client_peer c;
	const uint8_t *row;
	struct peer a;
	struct reply r;
	uint8_t pl[4] = { 0 };
	uint32_t count;

	client_peer_open(&c, 1);
	peer_open(&a, 1);
	peer_call(&a, T_STATUS, NULL, 0, -1, 0, V1_STATUS_REPLY, &r);
	DH_ASSERT_EQ(r64(r.body, 0), 1);	/* clients */
	DH_ASSERT_EQ(r64(r.body, 8), REGION);	/* registered_bytes */

	peer_call(&a, T_DAEMON_VERSION, NULL, 0, -1, 0, V1_VERSION_REPLY, &r);
	DH_ASSERT(r16(r.body, 0) == 1 && r16(r.body, 2) >= 1,
		  "versions %u..%u", r16(r.body, 0), r16(r.body, 2));
	DH_ASSERT(memchr(r.body + 4, '\0', 32), "release unterminated");

	/* CLIENTS: count, more, then rows of the version-1 layout */
	peer_call(&a, T_CLIENTS, pl, sizeof(pl), -1, 0, -1, &r);
	count = r32(r.body, 0);
	DH_ASSERT(count >= 1 && r.len == 8 + count * V1_ROW,
		  "CLIENTS: %u rows in %zu bytes", count, r.len);
	row = find_row(&r, 8, V1_ROW, count, getpid());
	DH_ASSERT(row, "this process is not listed");
	DH_ASSERT_EQ(r32(row, 24), 1);		/* regions */
	DH_ASSERT_EQ(r64(row, 28), REGION);	/* registered_bytes */

	close(a.fd);
	client_peer_close(&c);
}
END_TEST

/* A frame of @version on @a, which speaks another: -EPROTONOSUPPORT in
 * the connection's version, then the connection is closed (and @a). */
static void assert_version_refused(struct peer *a, uint16_t version)
{
	uint16_t own = a->version;
	struct reply r;

	a->version = version;
	peer_reply(a, T_STATUS, peer_send(a, T_STATUS, NULL, 0, -1), &r);
	DH_ASSERT(r.status == -EPROTONOSUPPORT && r.version == own,
		  "status %d in v%u", r.status, r.version);
	assert_closed(a->fd);
	close(a->fd);
}

START_TEST(test_v2_negotiated)
{
	struct client_peer c;
	struct peer a;
	struct reply r;
	uint8_t pl[4] = { 0 };
	uint32_t count;

	/* HELLO at version 1 offering 1..2: the reply and what follows
	 * are version 2 */
	client_peer_open(&c, 2);
	peer_call(&c.p, T_STATS, NULL, 0, -1, 0, V1_STATS_REPLY, &r);

	/* ADMIN_HELLO too; a second one is refused */
	peer_open(&a, 1);
	w16(pl, 0, 1);
	w16(pl, 2, 2);
	peer_reply(&a, T_ADMIN_HELLO, peer_send(&a, T_ADMIN_HELLO, pl, 4, -1),
		   &r);
	DH_ASSERT(r.status == 0 && r.len == V1_HELLO_REPLY,
		  "ADMIN_HELLO: status %d, %zu bytes", r.status, r.len);
	DH_ASSERT(r.version == 2 && r16(r.body, 0) == 2, "picked %u in v%u",
		  r16(r.body, 0), r.version);
	a.version = 2;
	peer_call(&a, T_ADMIN_HELLO, pl, 4, -1, -EISCONN, -1, &r);

	/* STATUS of version 2: the counters of version 1, nothing more */
	peer_call(&a, T_STATUS, NULL, 0, -1, 0, V1_STATUS_REPLY, &r);
	DH_ASSERT_EQ(r64(r.body, 0), 1);	/* clients */

	/* CLIENTS of version 2: rows where the fixed part says */
	memset(pl, 0, sizeof(pl));
	peer_call(&a, T_CLIENTS, pl, sizeof(pl), -1, 0, -1, &r);
	count = r32(r.body, 0);
	DH_ASSERT(r32(r.body, 8) == V2_CLIENTS_FIXED &&
			  r32(r.body, 12) == V1_ROW,
		  "rows at %u, %u bytes each", r32(r.body, 8),
		  r32(r.body, 12));
	DH_ASSERT(r.len == V2_CLIENTS_FIXED + count * V1_ROW,
		  "CLIENTS: %u rows in %zu bytes", count, r.len);
	DH_ASSERT(find_row(&r, V2_CLIENTS_FIXED, V1_ROW, count, getpid()),
		  "this process is not listed");

	/* a frame of version 1 on a version-2 connection: refused, closed */
	assert_version_refused(&a, 1);

	/* and a version-2 frame on a connection that spoke version 1 */
	peer_open(&a, 1);
	peer_call(&a, T_STATUS, NULL, 0, -1, 0, V1_STATUS_REPLY, &r);
	assert_version_refused(&a, 2);

	/* the client connection is unaffected */
	peer_call(&c.p, T_STATS, NULL, 0, -1, 0, V1_STATS_REPLY, &r);
	DH_ASSERT_EQ(stat_at(&r, S_REGIONS), 1);
	client_peer_close(&c);
}
END_TEST

/* ADMIN_HELLO offering 1..3 picks 3, and STATUS appends its counters
 * to those of versions 1 and 2, which keep their places. */
START_TEST(test_v3_status)
{
	struct client_peer c;
	struct peer a;
	struct reply r;
	uint8_t pl[4];

	client_peer_open(&c, 1);
	peer_open(&a, 1);
	w16(pl, 0, 1);
	w16(pl, 2, 3);
	peer_reply(&a, T_ADMIN_HELLO, peer_send(&a, T_ADMIN_HELLO, pl, 4, -1),
		   &r);
	DH_ASSERT(r.status == 0 && r.version == 3 && r16(r.body, 0) == 3,
		  "status %d: picked %u in v%u", r.status, r16(r.body, 0),
		  r.version);
	a.version = 3;
	peer_call(&a, T_STATUS, NULL, 0, -1, 0, V3_STATUS_REPLY, &r);
	DH_ASSERT_EQ(r64(r.body, 0), 1);	/* clients */
	DH_ASSERT_EQ(r64(r.body, 8), REGION);	/* registered_bytes */
	close(a.fd);
	client_peer_close(&c);
}
END_TEST

static Suite *compat_suite(void)
{
	Suite *s = suite_create("compat");
	TCase *tc;

	tc = tcase_create("v1");
	tcase_add_checked_fixture(tc, daemon_up, daemon_down);
	tcase_set_timeout(tc, TIMEOUT);
	tcase_add_test(tc, test_v1_client);
	tcase_add_test(tc, test_v1_admin_without_hello);
	suite_add_tcase(s, tc);

	tc = tcase_create("v2");
	tcase_add_checked_fixture(tc, daemon_up, daemon_down);
	tcase_set_timeout(tc, TIMEOUT);
	tcase_add_test(tc, test_v2_negotiated);
	suite_add_tcase(s, tc);

	tc = tcase_create("v3");
	tcase_add_checked_fixture(tc, daemon_up, daemon_down);
	tcase_set_timeout(tc, TIMEOUT);
	tcase_add_test(tc, test_v3_status);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("check_compat", compat_suite());
}
