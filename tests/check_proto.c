/*
 * check_proto.c - unit tests of the control protocol (lib/proto): every
 * codec round trip, decoders against truncated, extended and random
 * payloads, the incremental reader fed a byte at a time over a real
 * socket, file descriptors that arrive with the right or the wrong bytes,
 * broken frames, and replies.
 *
 * lib/proto allocates nothing, so it has no allocation failure to inject.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_proto
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/proto/proto.h"
#include "lib/uffd/uffd.h"

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/*****************
 * Codecs
 *****************/

/* Every shorter and one longer payload must be refused. */
#define CHECK_STRICT(decode, buf, n, type)                                   \
	do {                                                                 \
		type tmp_;                                                   \
		size_t k_;                                                   \
		for (k_ = 0; k_ < (n); k_++)                                 \
			ck_assert_int_eq(decode((buf), k_, &tmp_), -EBADMSG); \
		ck_assert_int_eq(decode((buf), (n) + 1, &tmp_), -EBADMSG);   \
	} while (0)

START_TEST(test_hello_codec)
{
	struct proto_hello in = { 1, 3, 1, 17 }, out;
	uint8_t buf[PROTO_MAX_PAYLOAD + 1] = { 0 };
	size_t n = proto_encode_hello(buf, &in);

	ck_assert_int_eq(proto_decode_hello(buf, n, &out), 0);
	ck_assert_uint_eq(out.min_version, 1);
	ck_assert_uint_eq(out.max_version, 3);
	ck_assert_uint_eq(out.uffd_mode, 1);
	ck_assert_int_eq(out.uffd_fdnum, 17);
	CHECK_STRICT(proto_decode_hello, buf, n, struct proto_hello);

	in.min_version = 4;	/* min above max */
	n = proto_encode_hello(buf, &in);
	ck_assert_int_eq(proto_decode_hello(buf, n, &out), -EBADMSG);
	in.min_version = 1;
	in.uffd_mode = 7;
	n = proto_encode_hello(buf, &in);
	ck_assert_int_eq(proto_decode_hello(buf, n, &out), -EBADMSG);
}
END_TEST

START_TEST(test_register_codec)
{
	struct proto_register in = { .addr = 0x7f0000001000ull,
				     .len = 1ull << 30,
				     .flags = PROTO_REGION_ADOPTED,
				     .memfd_fdnum = 9 };
	struct proto_register out;
	uint8_t buf[PROTO_MAX_PAYLOAD + 1] = { 0 };
	size_t n;

	strcpy(in.name, "heap");
	n = proto_encode_register(buf, &in);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), 0);
	ck_assert_uint_eq(out.addr, in.addr);
	ck_assert_uint_eq(out.len, in.len);
	ck_assert_uint_eq(out.flags, in.flags);
	ck_assert_int_eq(out.memfd_fdnum, 9);
	ck_assert_str_eq(out.name, "heap");
	CHECK_STRICT(proto_decode_register, buf, n, struct proto_register);

	/* a name without its NUL */
	memset(in.name, 'x', sizeof(in.name));
	n = proto_encode_register(buf, &in);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), -EBADMSG);
	/* unknown flags */
	strcpy(in.name, "x");
	in.flags = 0x80;
	n = proto_encode_register(buf, &in);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), -EBADMSG);
}
END_TEST

START_TEST(test_small_codecs)
{
	uint8_t buf[PROTO_MAX_PAYLOAD + 1] = { 0 };
	struct proto_hello_reply hr = { 1, 4096, 1 << 20 }, hr2;
	struct proto_register_reply rr = { 42 }, rr2;
	struct proto_unregister u = { 0x5000 }, u2;
	struct proto_set_limit l = { 123456 }, l2;
	struct proto_advise a = { 0x1000, 0x2000, PROTO_ADVISE_WILLNEED }, a2;
	struct proto_stats_reply s, s2;
	size_t n, i;

	n = proto_encode_hello_reply(buf, &hr);
	ck_assert_int_eq(proto_decode_hello_reply(buf, n, &hr2), 0);
	ck_assert(hr2.version == 1 && hr2.page_size == 4096 &&
		  hr2.default_limit == 1 << 20);
	CHECK_STRICT(proto_decode_hello_reply, buf, n,
		     struct proto_hello_reply);

	n = proto_encode_register_reply(buf, &rr);
	ck_assert_int_eq(proto_decode_register_reply(buf, n, &rr2), 0);
	ck_assert_uint_eq(rr2.region_id, 42);
	CHECK_STRICT(proto_decode_register_reply, buf, n,
		     struct proto_register_reply);

	n = proto_encode_unregister(buf, &u);
	ck_assert_int_eq(proto_decode_unregister(buf, n, &u2), 0);
	ck_assert_uint_eq(u2.addr, 0x5000);
	CHECK_STRICT(proto_decode_unregister, buf, n, struct proto_unregister);

	n = proto_encode_set_limit(buf, &l);
	ck_assert_int_eq(proto_decode_set_limit(buf, n, &l2), 0);
	ck_assert_uint_eq(l2.bytes, 123456);
	CHECK_STRICT(proto_decode_set_limit, buf, n, struct proto_set_limit);

	n = proto_encode_advise(buf, &a);
	ck_assert_int_eq(proto_decode_advise(buf, n, &a2), 0);
	ck_assert(a2.addr == 0x1000 && a2.len == 0x2000 &&
		  a2.advice == PROTO_ADVISE_WILLNEED);
	CHECK_STRICT(proto_decode_advise, buf, n, struct proto_advise);
	a.advice = 3;
	n = proto_encode_advise(buf, &a);
	ck_assert_int_eq(proto_decode_advise(buf, n, &a2), -EBADMSG);

	for (i = 0; i < sizeof(s) / sizeof(uint64_t); i++)
		((uint64_t *)&s)[i] = i * 1000 + 1;
	n = proto_encode_stats_reply(buf, &s);
	ck_assert_int_eq(proto_decode_stats_reply(buf, n, &s2), 0);
	ck_assert_mem_eq(&s, &s2, sizeof(s));
	CHECK_STRICT(proto_decode_stats_reply, buf, n,
		     struct proto_stats_reply);
}
END_TEST

START_TEST(test_decoders_random_input)
{
	uint8_t buf[PROTO_MAX_PAYLOAD];
	uint64_t x = 0x2545f4914f6cdd1dull;
	union {
		struct proto_hello h;
		struct proto_hello_reply hr;
		struct proto_register r;
		struct proto_register_reply rr;
		struct proto_unregister u;
		struct proto_set_limit l;
		struct proto_advise a;
		struct proto_stats_reply s;
	} out;
	unsigned int round;
	size_t i, len;
	int ret;

	for (round = 0; round < 20000; round++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = x % 160;
		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)(x >> (i % 56));
		ret = proto_decode_hello(buf, len, &out.h) |
		      proto_decode_hello_reply(buf, len, &out.hr) |
		      proto_decode_register(buf, len, &out.r) |
		      proto_decode_register_reply(buf, len, &out.rr) |
		      proto_decode_unregister(buf, len, &out.u) |
		      proto_decode_set_limit(buf, len, &out.l) |
		      proto_decode_advise(buf, len, &out.a) |
		      proto_decode_stats_reply(buf, len, &out.s);
		/* only 0 and -EBADMSG may come out */
		ck_assert((ret | -EBADMSG) == -EBADMSG);
	}
	ck_assert_str_eq(proto_type_name(PROTO_REGISTER | PROTO_REPLY),
			 "REGISTER");
	ck_assert_str_eq(proto_type_name(999), "?");
}
END_TEST

/*****************
 * Framing over a socket
 *****************/

static int sv[2];

static void sock_setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

static void sock_teardown(void)
{
	close(sv[0]);
	close(sv[1]);
}

static void put_raw(const void *p, size_t n)
{
	ck_assert_int_eq(write(sv[0], p, n), (ssize_t)n);
}

static struct proto_hdr hdr(uint16_t type, uint32_t len)
{
	return (struct proto_hdr){ PROTO_MAGIC, PROTO_VERSION, type, 7, len };
}

START_TEST(test_reader_byte_at_a_time)
{
	struct proto_unregister u = { 0xabc000 };
	uint8_t payload[PROTO_MAX_PAYLOAD], wire[64];
	struct proto_hdr h;
	struct proto_reader rd = { .have = 0 };
	struct proto_unregister got;
	size_t n = proto_encode_unregister(payload, &u), i;

	h = hdr(PROTO_UNREGISTER, (uint32_t)n);
	memcpy(wire, &h, sizeof(h));
	memcpy(wire + sizeof(h), payload, n);
	for (i = 0; i < sizeof(h) + n; i++) {
		ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 0);
		put_raw(wire + i, 1);
	}
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 1);
	ck_assert_uint_eq(rd.msg.hdr.type, PROTO_UNREGISTER);
	ck_assert_uint_eq(rd.msg.hdr.seq, 7);
	ck_assert_int_eq(proto_decode_unregister(rd.msg.payload,
						 rd.msg.hdr.len, &got), 0);
	ck_assert_uint_eq(got.addr, 0xabc000);
	proto_reader_reset(&rd);

	/* two messages back to back: the reader stops at the first */
	ck_assert_int_eq(proto_send(sv[0], PROTO_STATS, 1, NULL, 0, NULL, 0),
			 0);
	ck_assert_int_eq(proto_send(sv[0], PROTO_STATS, 2, NULL, 0, NULL, 0),
			 0);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 1);
	ck_assert_uint_eq(rd.msg.hdr.seq, 1);
	proto_reader_reset(&rd);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 1);
	ck_assert_uint_eq(rd.msg.hdr.seq, 2);
	proto_reader_reset(&rd);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 0);
}
END_TEST

START_TEST(test_reader_fds)
{
	struct proto_reader rd = { .have = 0 };
	int fds[2], before = open_fds();
	uint8_t byte = 0;
	struct proto_hdr h;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	ck_assert_int_eq(proto_send(sv[0], PROTO_REGISTER, 3, "abcd", 4, fds,
				    2), 0);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 1);
	ck_assert_int_eq(rd.msg.nfds, 2);
	ck_assert_int_eq(write(rd.msg.fds[1], "z", 1), 1);
	ck_assert_int_eq(read(fds[0], &byte, 1), 1);
	ck_assert_uint_eq(byte, 'z');
	proto_reader_reset(&rd);	/* closes the received copies */
	close(fds[0]);
	close(fds[1]);
	ck_assert_int_eq(open_fds(), before);

	/* descriptors attached to payload bytes, not the header: refused */
	h = hdr(PROTO_REGISTER, 4);
	put_raw(&h, sizeof(h));
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	ck_assert_int_eq(fdpass_send(sv[0], "abcd", 4, fds, 1), 4);
	close(fds[0]);
	close(fds[1]);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), -EMSGSIZE);
	proto_reader_reset(&rd);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

START_TEST(test_reader_too_many_fds)
{
	struct proto_reader rd = { .have = 0 };
	int fds[3], before = open_fds(), i;
	struct proto_hdr h = hdr(PROTO_HELLO, 0);

	for (i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(fdpass_send(sv[0], &h, sizeof(h), fds, 3),
			 (ssize_t)sizeof(h));
	for (i = 0; i < 3; i++)
		close(fds[i]);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), -EMSGSIZE);
	proto_reader_reset(&rd);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

START_TEST(test_reader_broken_frames)
{
	struct proto_reader rd = { .have = 0 };
	struct proto_hdr h;

	h = hdr(PROTO_STATS, 0);
	h.magic = 0x12345678;
	put_raw(&h, sizeof(h));
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), -EBADMSG);
	proto_reader_reset(&rd);

	h = hdr(PROTO_STATS, 0);
	h.version = PROTO_VERSION + 1;
	put_raw(&h, sizeof(h));
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), -EPROTONOSUPPORT);
	proto_reader_reset(&rd);

	h = hdr(PROTO_STATS, PROTO_MAX_PAYLOAD + 1);
	put_raw(&h, sizeof(h));
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), -EMSGSIZE);
	proto_reader_reset(&rd);

	/* the stream ends inside a message */
	h = hdr(PROTO_STATS, 10);
	put_raw(&h, sizeof(h));
	put_raw("12345", 5);
	shutdown(sv[0], SHUT_WR);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), -ECONNRESET);
	proto_reader_reset(&rd);

	ck_assert_int_eq(proto_send(sv[0], PROTO_STATS, 1, NULL,
				    PROTO_MAX_PAYLOAD + 1, NULL, 0),
			 -EMSGSIZE);
}
END_TEST

START_TEST(test_replies)
{
	struct proto_reader rd = { .have = 0 };
	struct proto_register_reply rr = { 5 }, rr2;
	uint8_t body[PROTO_MAX_PAYLOAD], big[PROTO_MAX_ERRMSG * 2];
	const uint8_t *b;
	const char *msg;
	int32_t status;
	size_t n, len;

	n = proto_encode_register_reply(body, &rr);
	ck_assert_int_eq(proto_send_reply(sv[0], PROTO_REGISTER, 9, 0, body, n,
					  NULL), 0);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 1);
	ck_assert_uint_eq(rd.msg.hdr.type, PROTO_REGISTER | PROTO_REPLY);
	ck_assert_int_eq(proto_parse_reply(&rd.msg, &status, &b, &len, &msg),
			 0);
	ck_assert_int_eq(status, 0);
	ck_assert_int_eq(proto_decode_register_reply(b, len, &rr2), 0);
	ck_assert_uint_eq(rr2.region_id, 5);
	proto_reader_reset(&rd);

	/* an error text longer than allowed is cut, and still parses */
	memset(big, 'e', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(proto_send_reply(sv[0], PROTO_HELLO, 1, -EPERM, NULL,
					  0, (const char *)big), 0);
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 1);
	ck_assert_int_eq(proto_parse_reply(&rd.msg, &status, &b, &len, &msg),
			 0);
	ck_assert_int_eq(status, -EPERM);
	ck_assert_uint_eq(strlen(msg), PROTO_MAX_ERRMSG - 1);
	proto_reader_reset(&rd);

	/* malformed replies: positive status, text without NUL, a request */
	rd.msg.hdr = hdr(PROTO_HELLO | PROTO_REPLY, 4);
	status = 3;
	memcpy(rd.msg.payload, &status, 4);
	ck_assert_int_eq(proto_parse_reply(&rd.msg, &status, &b, &len, &msg),
			 -EBADMSG);
	rd.msg.hdr.len = 6;
	status = -EIO;
	memcpy(rd.msg.payload, &status, 4);
	memcpy(rd.msg.payload + 4, "ab", 2);
	ck_assert_int_eq(proto_parse_reply(&rd.msg, &status, &b, &len, &msg),
			 -EBADMSG);
	rd.msg.hdr.type = PROTO_HELLO;
	ck_assert_int_eq(proto_parse_reply(&rd.msg, &status, &b, &len, &msg),
			 -EBADMSG);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("codecs");
	tcase_add_test(tc, test_hello_codec);
	tcase_add_test(tc, test_register_codec);
	tcase_add_test(tc, test_small_codecs);
	tcase_add_test(tc, test_decoders_random_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("framing");
	tcase_add_checked_fixture(tc, sock_setup, sock_teardown);
	tcase_add_test(tc, test_reader_byte_at_a_time);
	tcase_add_test(tc, test_reader_fds);
	tcase_add_test(tc, test_reader_too_many_fds);
	tcase_add_test(tc, test_reader_broken_frames);
	tcase_add_test(tc, test_replies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
