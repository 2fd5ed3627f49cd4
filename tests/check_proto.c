/*
 * check_proto.c - unit tests of the control protocol (lib/proto): every
 * message's round trip at every version, the growth rule (a longer
 * payload's tail ignored, a payload ending at an older version's layout
 * completed with defaults, any other length refused) on the real messages
 * and on a generated one of three versions, STATUS at versions 2 and 3
 * (a version-2 decoder takes the version-3 reply's prefix), the CLIENTS
 * reply's rows, decoders against truncated, extended and random
 * payloads, the incremental reader fed a byte at a time over a real socket
 * and held to its connection's version, file descriptors that arrive with
 * the right or the wrong bytes, broken frames, and replies.
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
#include <stdio.h>
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

/* Growth rule for a message whose fields are of version 1, but for those
 * after byte @old_end (where an older version's layout ended; SIZE_MAX:
 * none): every shorter payload is refused but one that ends at @old_end,
 * and a longer one is accepted (the tail is a newer peer's fields) and
 * decodes to the same message. */
#define CHECK_GROWTH_FROM(decode, buf, n, type, want, old_end)               \
	do {                                                                 \
		type tmp_;                                                   \
		size_t k_;                                                   \
		for (k_ = 0; k_ < (n); k_++)                                 \
			if (k_ != (old_end))                                 \
				ck_assert_int_eq(decode((buf), k_, &tmp_),   \
						 -EBADMSG);                  \
		memset((buf) + (n), 0xa5, 8);                                \
		ck_assert_int_eq(decode((buf), (n) + 8, &tmp_), 0);          \
		ck_assert_mem_eq(&tmp_, (want), sizeof(tmp_));               \
	} while (0)
#define CHECK_GROWTH(decode, buf, n, type, want)                             \
	CHECK_GROWTH_FROM(decode, buf, n, type, want, SIZE_MAX)

START_TEST(test_hello_codec)
{
	struct proto_hello in = { 1, 3, 1, 17, PROTO_HELLO_RESUME }, out;
	uint8_t buf[PROTO_MAX_PAYLOAD + 8] = { 0 };
	size_t n = proto_encode_hello(buf, &in, PROTO_VERSION);

	ck_assert_uint_eq(n, PROTO_SIZE_hello);
	ck_assert_int_eq(proto_decode_hello(buf, n, &out), 0);
	ck_assert_uint_eq(out.min_version, 1);
	ck_assert_uint_eq(out.max_version, 3);
	ck_assert_uint_eq(out.uffd_mode, 1);
	ck_assert_int_eq(out.uffd_fdnum, 17);
	ck_assert_uint_eq(out.flags, PROTO_HELLO_RESUME);
	CHECK_GROWTH_FROM(proto_decode_hello, buf, n, struct proto_hello, &out,
			  PROTO_SIZE_hello - 4);
	/* a version-2 HELLO has no flags: they read 0 */
	n = proto_encode_hello(buf, &in, 2);
	ck_assert_uint_eq(n, PROTO_SIZE_hello - 4);
	ck_assert_int_eq(proto_decode_hello(buf, n, &out), 0);
	ck_assert_uint_eq(out.flags, 0);
	/* flags nobody knows */
	in.flags = 2;
	n = proto_encode_hello(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_hello(buf, n, &out), -EBADMSG);
	in.flags = 0;

	in.min_version = 4;	/* min above max */
	n = proto_encode_hello(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_hello(buf, n, &out), -EBADMSG);
	in.min_version = 1;
	in.uffd_mode = 7;
	n = proto_encode_hello(buf, &in, PROTO_VERSION);
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
	uint8_t buf[PROTO_MAX_PAYLOAD + 8] = { 0 };
	size_t n;

	strcpy(in.name, "heap");
	n = proto_encode_register(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), 0);
	ck_assert_uint_eq(out.addr, in.addr);
	ck_assert_uint_eq(out.len, in.len);
	ck_assert_uint_eq(out.flags, in.flags);
	ck_assert_int_eq(out.memfd_fdnum, 9);
	ck_assert_str_eq(out.name, "heap");
	CHECK_GROWTH_FROM(proto_decode_register, buf, n,
			  struct proto_register, &out,
			  PROTO_SIZE_register - sizeof(uint64_t));
	/* a fork's copy, claimed: by its token only */
	in.flags = PROTO_REGION_FORKED;
	in.fork_token = 0x1234;
	n = proto_encode_register(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), 0);
	ck_assert_uint_eq(out.fork_token, 0x1234);
	n = proto_encode_register(buf, &in, 5);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), -EBADMSG);
	in.flags = PROTO_REGION_FORKED | PROTO_REGION_ADOPTED;
	n = proto_encode_register(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), -EBADMSG);
	in.flags = PROTO_REGION_ADOPTED;

	/* a name without its NUL */
	memset(in.name, 'x', sizeof(in.name));
	n = proto_encode_register(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), -EBADMSG);
	/* unknown flags */
	strcpy(in.name, "x");
	in.flags = 0x80;
	n = proto_encode_register(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_register(buf, n, &out), -EBADMSG);
}
END_TEST

START_TEST(test_small_codecs)
{
	uint8_t buf[PROTO_MAX_PAYLOAD + 8] = { 0 };
	struct proto_hello_reply hr = { 1, 4096, 1 << 20 }, hr2;
	struct proto_register_reply rr = { 42 }, rr2;
	struct proto_unregister u = { 0x5000 }, u2;
	struct proto_set_limit l = { 123456 }, l2;
	struct proto_advise a = { 0x1000, 0x2000, PROTO_ADVISE_WILLNEED }, a2;
	struct proto_stats_reply s, s2;
	struct proto_drain d = { PROTO_DRAIN_FORCE }, d2;
	size_t n, i;

	n = proto_encode_hello_reply(buf, &hr, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_hello_reply(buf, n, &hr2), 0);
	ck_assert(hr2.version == 1 && hr2.page_size == 4096 &&
		  hr2.default_limit == 1 << 20);
	CHECK_GROWTH(proto_decode_hello_reply, buf, n,
		     struct proto_hello_reply, &hr2);

	n = proto_encode_register_reply(buf, &rr, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_register_reply(buf, n, &rr2), 0);
	ck_assert_uint_eq(rr2.region_id, 42);
	CHECK_GROWTH(proto_decode_register_reply, buf, n,
		     struct proto_register_reply, &rr2);

	n = proto_encode_unregister(buf, &u, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_unregister(buf, n, &u2), 0);
	ck_assert_uint_eq(u2.addr, 0x5000);
	CHECK_GROWTH(proto_decode_unregister, buf, n, struct proto_unregister,
		     &u2);

	n = proto_encode_set_limit(buf, &l, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_set_limit(buf, n, &l2), 0);
	ck_assert_uint_eq(l2.bytes, 123456);
	CHECK_GROWTH(proto_decode_set_limit, buf, n, struct proto_set_limit,
		     &l2);

	n = proto_encode_advise(buf, &a, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_advise(buf, n, &a2), 0);
	ck_assert(a2.addr == 0x1000 && a2.len == 0x2000 &&
		  a2.advice == PROTO_ADVISE_WILLNEED);
	CHECK_GROWTH(proto_decode_advise, buf, n, struct proto_advise, &a2);
	a.advice = PROTO_ADVISE_DISCARD;
	n = proto_encode_advise(buf, &a, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_advise(buf, n, &a2), 0);
	a.advice = 4;
	n = proto_encode_advise(buf, &a, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_advise(buf, n, &a2), -EBADMSG);

	for (i = 0; i < sizeof(s) / sizeof(uint64_t); i++)
		((uint64_t *)&s)[i] = i * 1000 + 1;
	n = proto_encode_stats_reply(buf, &s, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_stats_reply(buf, n, &s2), 0);
	ck_assert_mem_eq(&s, &s2, sizeof(s));
	CHECK_GROWTH(proto_decode_stats_reply, buf, n,
		     struct proto_stats_reply, &s2);

	n = proto_encode_drain(buf, &d, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_drain(buf, n, &d2), 0);
	ck_assert_uint_eq(d2.flags, PROTO_DRAIN_FORCE);
	d.flags = PROTO_DRAIN_FORCE << 1;
	n = proto_encode_drain(buf, &d, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_drain(buf, n, &d2), -EBADMSG);
}
END_TEST

/*
 * Every message round-trips at every version: the fields of that version
 * or older come back, the newer ones take their defaults. And fields are
 * only appended: their versions never decrease down a list, and a
 * version's layout is a prefix of the newest one. Each unsigned
 * field is set to 1 and each signed one (pids, descriptors) to 0, which
 * every message's checks accept; strings to "s".
 */
#define RT_SET_F(type, name, since, def)                                     \
	in.name = (type)_Generic(in.name, int32_t: 0, default: 1);
#define RT_SET_S(name, size, since) strcpy(in.name, "s");
#define RT_CMP_F(type, name, since, def)                                     \
	ck_assert((since) <= v ? out.name == in.name                         \
			       : out.name == (type)(def));
#define RT_CMP_S(name, size, since)                                          \
	ck_assert_str_eq(out.name, (since) <= v ? in.name : "");
#define RT_ORDER_F(type, name, since, def)                                   \
	ck_assert((since) >= prev && (since) <= PROTO_VERSION);              \
	prev = (since);
#define RT_ORDER_S(name, size, since) RT_ORDER_F(char, name, since, 0)
#define ROUND_TRIP(msg, FIELDS, CHECK)                                       \
	static void round_trip_##msg(void)                                   \
	{                                                                    \
		uint8_t buf[PROTO_MAX_PAYLOAD], newest[PROTO_MAX_PAYLOAD];   \
		struct proto_##msg in, out;                                  \
		uint16_t v;                                                  \
		size_t n = 0, full;                                          \
		int prev = PROTO_VERSION_MIN;                                \
                                                                             \
		FIELDS(RT_ORDER_F, RT_ORDER_S)                               \
		memset(&in, 0, sizeof(in));                                  \
		FIELDS(RT_SET_F, RT_SET_S)                                   \
		full = proto_encode_##msg(newest, &in, PROTO_VERSION);       \
		for (v = PROTO_VERSION_MIN; v <= PROTO_VERSION; v++) {       \
			n = proto_encode_##msg(buf, &in, v);                 \
			ck_assert_uint_eq(n, proto_size_##msg(v));           \
			ck_assert(n <= full && !memcmp(buf, newest, n));     \
			memset(&out, 0xee, sizeof(out));                     \
			ck_assert_int_eq(proto_decode_##msg(buf, n, &out),   \
					 0);                                 \
			FIELDS(RT_CMP_F, RT_CMP_S)                           \
		}                                                            \
		ck_assert_uint_eq(n, PROTO_SIZE_##msg);                      \
	}
PROTO_MESSAGES(ROUND_TRIP)

#define RT_CALL(msg, FIELDS, CHECK) round_trip_##msg();

START_TEST(test_every_message_round_trips)
{
	PROTO_MESSAGES(RT_CALL)
}
END_TEST

/*
 * The growth rule on a message of three versions, generated as the real
 * ones are: version 1 has a and b, version 2 appends c and s, version 3
 * appends d.
 */
#define GROWN_FIELDS(F, S)                                                   \
	F(uint32_t, a, 1, 0)                                                 \
	F(uint16_t, b, 1, 0)                                                 \
	F(uint64_t, c, 2, 7)                                                 \
	S(s, 8, 2)                                                           \
	F(uint32_t, d, 3, 9)
PROTO_DECLARE(grown, GROWN_FIELDS, proto_no_check)
#define grown_ok(m) ((m)->b != 0xdead)
PROTO_CODECS(grown, GROWN_FIELDS, grown_ok)

START_TEST(test_growth_rule)
{
	struct proto_grown in = { 1, 2, 3, "abc", 4 }, out;
	uint8_t buf[64];
	size_t n, v1 = 6, v2 = 6 + 8 + 8, v3 = v2 + 4, len;

	ck_assert_uint_eq(proto_size_grown(1), v1);
	ck_assert_uint_eq(proto_size_grown(2), v2);
	ck_assert_uint_eq(proto_size_grown(3), v3);
	ck_assert_uint_eq(PROTO_SIZE_grown, v3);
	n = proto_encode_grown(buf, &in, 3);
	ck_assert_uint_eq(n, v3);
	ck_assert_uint_eq(proto_encode_grown(buf + 32, &in, 1), v1);

	/* longer: the tail is ignored */
	memset(buf + n, 0x5a, sizeof(buf) - n);
	ck_assert_int_eq(proto_decode_grown(buf, sizeof(buf), &out), 0);
	ck_assert(out.a == 1 && out.b == 2 && out.c == 3 && out.d == 4);
	ck_assert_str_eq(out.s, "abc");

	/* shorter at an older version's end: defaults; elsewhere refused */
	for (len = 0; len < v3; len++) {
		memset(&out, 0xee, sizeof(out));
		if (len != v1 && len != v2) {
			ck_assert_int_eq(proto_decode_grown(buf, len, &out),
					 -EBADMSG);
			continue;
		}
		ck_assert_int_eq(proto_decode_grown(buf, len, &out), 0);
		ck_assert(out.a == 1 && out.b == 2 && out.d == 9);
		ck_assert_uint_eq(out.c, len == v1 ? 7 : 3);
		ck_assert_str_eq(out.s, len == v1 ? "" : "abc");
	}

	/* the other checks stay: an unterminated string, a value refused */
	memset(in.s, 'x', sizeof(in.s));
	n = proto_encode_grown(buf, &in, 3);
	ck_assert_int_eq(proto_decode_grown(buf, n, &out), -EBADMSG);
	ck_assert_int_eq(proto_decode_grown(buf, v2, &out), -EBADMSG);
	ck_assert_int_eq(proto_decode_grown(buf, v1, &out), 0);
	in.b = 0xdead;
	n = proto_encode_grown(buf, &in, 1);
	ck_assert_int_eq(proto_decode_grown(buf, n, &out), -EBADMSG);
}
END_TEST

/*
 * STATUS across versions, pinned in bytes: versions 1 and 2 carry the 26
 * counters of the first release, version 3 appends the 14 that only
 * /metrics showed before. A version-2 peer decodes strictly (its decoder
 * knows no newer field): the prefix of a version-3 reply that ends where
 * version 2 ended is its whole reply, field for field.
 */
#define STATUS_V2_SIZE	(26 * 8)
#define STATUS_V3_SIZE	(41 * 8)
#define STATUS_V5_SIZE	(53 * 8)
#define STATUS_V7_SIZE	(68 * 8)

/* Field @i (in list order) gets the value @i + 1. */
#define STATUS_SET(F, name, since, ...)	in.name = ++i;
/* A field of a reply decoded from version @cmp_version: its value if
 * that version sends it, else its default, 0. */
#define STATUS_CMP(F, name, since, ...)					\
	i++;								\
	ck_assert_uint_eq(out.name, (since) <= cmp_version ? i : 0);
/* A strict decoder of version 2: its fields, then nothing. */
#define STATUS_GET_V2(F, name, since, ...)				\
	if ((since) <= 2)						\
		ck_assert(proto_cur_get(&c, &v2[n++], 8, (since)));

START_TEST(test_status_versions)
{
	struct proto_status_reply in, out;
	uint8_t v3buf[PROTO_MAX_PAYLOAD], v2buf[PROTO_MAX_PAYLOAD];
	uint64_t v2[STATUS_V3_SIZE / 8], i = 0;
	struct proto_cur c = { .r = v3buf, .len = STATUS_V2_SIZE,
			       .since = PROTO_VERSION_MIN };
	size_t n = 0, k;
	unsigned int cmp_version;

	ck_assert_int_eq(PROTO_VERSION, 7);
	COUNTERS_STATUS(STATUS_SET, _)
	ck_assert_uint_eq(proto_size_status_reply(1), STATUS_V2_SIZE);
	ck_assert_uint_eq(proto_size_status_reply(2), STATUS_V2_SIZE);
	ck_assert_uint_eq(proto_size_status_reply(3), STATUS_V3_SIZE);
	/* version 4 grew client rows only; 5 the deduplication counters */
	ck_assert_uint_eq(proto_size_status_reply(4), STATUS_V3_SIZE);
	ck_assert_uint_eq(proto_size_status_reply(5), STATUS_V5_SIZE);
	/* version 6 brought fork() and discard, no counter; 7 the
	 * write-back tier's counters */
	ck_assert_uint_eq(proto_size_status_reply(6), STATUS_V5_SIZE);
	ck_assert_uint_eq(proto_size_status_reply(7), STATUS_V7_SIZE);
	ck_assert_uint_eq(proto_encode_status_reply(v2buf, &in, 2),
			  STATUS_V2_SIZE);
	ck_assert_uint_eq(proto_encode_status_reply(v3buf, &in, 3),
			  STATUS_V3_SIZE);
	ck_assert_mem_eq(v2buf, v3buf, STATUS_V2_SIZE);

	/* version 2's decoder on the prefix: every byte, in order */
	COUNTERS_STATUS(STATUS_GET_V2, _)
	ck_assert_int_eq(proto_cur_end(&c), 0);
	ck_assert_uint_eq(c.off, STATUS_V2_SIZE);
	for (k = 0; k < n; k++)
		ck_assert_uint_eq(v2[k], k + 1);

	/* this build's decoder: the prefix leaves the new counters 0 */
	ck_assert_int_eq(proto_decode_status_reply(v3buf, STATUS_V2_SIZE,
						   &out), 0);
	ck_assert_uint_eq(out.zstd_level, n);
	ck_assert_uint_eq(out.stores, 0);
	ck_assert_uint_eq(out.backing_write_errors, 0);

	/* a version-3 reply to this build's decoder: the dedup counters 0 */
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(proto_decode_status_reply(v3buf, STATUS_V3_SIZE,
						   &out), 0);
	ck_assert_uint_eq(out.fault_poisoned, STATUS_V3_SIZE / 8);
	ck_assert_uint_eq(out.dedup_pages_shared, 0);

	/* version 5 round trip, every counter its own value */
	ck_assert_uint_eq(proto_encode_status_reply(v3buf, &in, 5),
			  STATUS_V5_SIZE);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(proto_decode_status_reply(v3buf, STATUS_V5_SIZE,
						   &out), 0);
	i = 0;
	cmp_version = 5;
	COUNTERS_STATUS(STATUS_CMP, _)
	ck_assert_uint_eq(out.compact_runs, STATUS_V5_SIZE / 8);

	/* version 7 round trip: every counter its own value */
	ck_assert_uint_eq(proto_encode_status_reply(v3buf, &in, 7),
			  STATUS_V7_SIZE);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(proto_decode_status_reply(v3buf, STATUS_V7_SIZE,
						   &out), 0);
	i = 0;
	cmp_version = 7;
	COUNTERS_STATUS(STATUS_CMP, _)
	ck_assert_uint_eq(i, STATUS_V7_SIZE / 8);
	ck_assert_uint_eq(out.backing_writes_timed, STATUS_V7_SIZE / 8);
}
END_TEST

/* A CLIENTS reply of @count rows, pids 1..count. */
/* The fixed part of a version-1 CLIENTS reply: @count and @more. */
static size_t proto_encode_clients_fixed_v1(uint8_t *buf, uint32_t count,
					    uint32_t more)
{
	memcpy(buf, &count, 4);
	memcpy(buf + 4, &more, 4);
	return 8;
}

static void clients_fill(struct proto_clients_reply *r, uint32_t count)
{
	uint32_t i;

	memset(r, 0, sizeof(*r));
	r->count = count;
	r->more = 1;
	for (i = 0; i < count; i++) {
		r->rows[i].pid = (int32_t)i + 1;
		r->rows[i].evictions = 1000 + i;
		snprintf(r->rows[i].comm, sizeof(r->rows[i].comm), "p%u", i);
	}
}

START_TEST(test_clients_codec)
{
	static struct proto_clients_reply in, out;
	uint8_t buf[PROTO_MAX_PAYLOAD], grown[PROTO_MAX_PAYLOAD];
	size_t n, row = PROTO_SIZE_client_row, row1, fixed, i;
	uint32_t big;

	clients_fill(&in, PROTO_CLIENTS_PER_PAGE);
	/* version 1: the rows right after count and more, of version 1's
	 * layout; a page sends PROTO_CLIENTS_SENT rows at most */
	row1 = proto_size_client_row(1);
	ck_assert_uint_lt(row1, row);
	n = proto_encode_clients_reply(buf, &in, 1);
	ck_assert_uint_eq(n, 8 + PROTO_CLIENTS_SENT * row1);
	ck_assert_int_eq(proto_decode_clients_reply(buf, n, &out, 1), 0);
	ck_assert_uint_eq(out.count, PROTO_CLIENTS_SENT);
	ck_assert_uint_eq(out.more, 1);
	ck_assert_int_eq(out.rows[31].pid, 32);
	/* the rows left out follow: more is set even if the caller's was
	 * not */
	in.more = 0;
	n = proto_encode_clients_reply(buf, &in, 1);
	ck_assert_int_eq(proto_decode_clients_reply(buf, n, &out, 1), 0);
	ck_assert_uint_eq(out.more, 1);
	ck_assert_str_eq(out.rows[31].comm, "p31");
	ck_assert_int_eq(proto_decode_clients_reply(buf, n - 1, &out, 1),
			 -EBADMSG);
	/* a daemon before version 4 sends pages of 40 rows: taken */
	n = proto_encode_clients_fixed_v1(buf, PROTO_CLIENTS_PER_PAGE, 1);
	for (i = 0; i < PROTO_CLIENTS_PER_PAGE; i++)
		n += proto_encode_client_row(buf + n, &in.rows[i], 1);
	ck_assert_int_eq(proto_decode_clients_reply(buf, n, &out, 1), 0);
	ck_assert_uint_eq(out.count, PROTO_CLIENTS_PER_PAGE);
	ck_assert_int_eq(out.rows[39].pid, 40);
	ck_assert_str_eq(out.rows[39].comm, "p39");
	/* the newest layout: every counter comes through */
	in.rows[5].over_budget = 7;
	n = proto_encode_clients_reply(buf, &in, PROTO_VERSION);
	ck_assert_int_eq(proto_decode_clients_reply(buf, n, &out,
						    PROTO_VERSION), 0);
	ck_assert_uint_eq(out.rows[5].over_budget, 7);
	ck_assert_uint_le(n, PROTO_MAX_PAYLOAD - sizeof(int32_t));

	/* version 2: the fixed part says where rows start and their size */
	clients_fill(&in, 3);
	n = proto_encode_clients_reply(buf, &in, 2);
	fixed = 16;	/* count, more, rows_off, row_size */
	ck_assert_uint_eq(n, fixed + 3 * row1);
	ck_assert_int_eq(proto_decode_clients_reply(buf, n, &out, 2), 0);
	ck_assert_uint_eq(out.rows_off, fixed);
	ck_assert_uint_eq(out.row_size, row1);
	ck_assert_uint_eq(out.rows[2].evictions, 1002);

	/* a peer newer than this build: 4 more bytes in the fixed part, 8
	 * in each row of the newest layout */
	n = proto_encode_clients_reply(buf, &in, PROTO_VERSION);
	ck_assert_uint_eq(n, fixed + 3 * row);
	memcpy(grown, buf, 8);
	big = (uint32_t)(fixed + 4);
	memcpy(grown + 8, &big, 4);
	big = (uint32_t)(row + 8);
	memcpy(grown + 12, &big, 4);
	memset(grown + 16, 0x77, 4);
	for (i = 0; i < 3; i++) {
		memcpy(grown + fixed + 4 + i * (row + 8), buf + fixed + i * row,
		       row);
		memset(grown + fixed + 4 + i * (row + 8) + row, 0x77, 8);
	}
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(proto_decode_clients_reply(grown,
						    fixed + 4 + 3 * (row + 8),
						    &out, 2), 0);
	ck_assert_int_eq(out.rows[2].pid, 3);
	ck_assert_uint_eq(out.rows[2].evictions, 1002);
	ck_assert_str_eq(out.rows[1].comm, "p1");
	/* rows that overrun the payload, a row size inside a field */
	ck_assert_int_eq(proto_decode_clients_reply(grown,
						    fixed + 4 + 3 * (row + 8) -
							    1,
						    &out, 2), -EBADMSG);
	big = (uint32_t)(row - 1);
	memcpy(grown + 12, &big, 4);
	ck_assert_int_eq(proto_decode_clients_reply(grown,
						    fixed + 4 + 3 * (row + 8),
						    &out, 2), -EBADMSG);

	/* too many rows */
	in.count = PROTO_CLIENTS_PER_PAGE + 1;
	n = proto_encode_clients_reply(buf, &in, 1);
	big = PROTO_CLIENTS_PER_PAGE + 1;
	memcpy(buf, &big, 4);
	ck_assert_int_eq(proto_decode_clients_reply(buf, n, &out, 1),
			 -EBADMSG);
}
END_TEST

/* Every decoder of PROTO_MESSAGES on @len bytes of @buf, OR-ed. */
#define RANDOM_DECODE(msg, FIELDS, CHECK)                                    \
	{                                                                    \
		struct proto_##msg out_;                                     \
		ret |= proto_decode_##msg(buf, len, &out_);                  \
	}

START_TEST(test_decoders_random_input)
{
	static struct proto_clients_reply clients;
	uint8_t buf[PROTO_MAX_PAYLOAD];
	uint64_t x = 0x2545f4914f6cdd1dull;
	unsigned int round;
	size_t i, len;
	int ret;

	for (round = 0; round < 20000; round++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = round < 10000 ? x % 160 : x % 4096;
		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)(x >> (i % 56));
		ret = proto_decode_clients_reply(buf, len, &clients, 1) |
		      proto_decode_clients_reply(buf, len, &clients, 2);
		PROTO_MESSAGES(RANDOM_DECODE)
		/* only 0 and -EBADMSG may come out */
		ck_assert((ret | -EBADMSG) == -EBADMSG);
	}
	ck_assert_str_eq(proto_type_name(PROTO_REGISTER | PROTO_REPLY),
			 "REGISTER");
	ck_assert_str_eq(proto_type_name(PROTO_ADMIN_HELLO), "ADMIN_HELLO");
	ck_assert_str_eq(proto_type_name(PROTO_DRAIN), "DRAIN");
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
	size_t n = proto_encode_unregister(payload, &u, PROTO_VERSION), i;

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
	ck_assert_int_eq(proto_send(sv[0], PROTO_VERSION, PROTO_STATS, 1, NULL,
				    0, NULL, 0), 0);
	ck_assert_int_eq(proto_send(sv[0], PROTO_VERSION, PROTO_STATS, 2, NULL,
				    0, NULL, 0), 0);
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
	ck_assert_int_eq(proto_send(sv[0], PROTO_VERSION, PROTO_REGISTER, 3,
				    "abcd", 4, fds, 2), 0);
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

	/* a reader set to its connection's version refuses any other */
	rd.version = 1;
	h = hdr(PROTO_STATS, 0);
	put_raw(&h, sizeof(h));
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), -EPROTONOSUPPORT);
	proto_reader_reset(&rd);
	rd.version = PROTO_VERSION;
	put_raw(&h, sizeof(h));
	ck_assert_int_eq(proto_reader_feed(&rd, sv[1]), 1);
	proto_reader_reset(&rd);
	rd.version = 0;

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

	ck_assert_int_eq(proto_send(sv[0], PROTO_VERSION, PROTO_STATS, 1, NULL,
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

	n = proto_encode_register_reply(body, &rr, PROTO_VERSION);
	ck_assert_int_eq(proto_send_reply(sv[0], PROTO_VERSION, PROTO_REGISTER,
					  9, 0, body, n, NULL), 0);
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
	ck_assert_int_eq(proto_send_reply(sv[0], PROTO_VERSION, PROTO_HELLO, 1,
					  -EPERM, NULL, 0, (const char *)big),
			 0);
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
	tcase_add_test(tc, test_every_message_round_trips);
	tcase_add_test(tc, test_growth_rule);
	tcase_add_test(tc, test_status_versions);
	tcase_add_test(tc, test_clients_codec);
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
