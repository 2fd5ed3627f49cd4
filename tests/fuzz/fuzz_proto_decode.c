/*
 * fuzz_proto_decode.c - libFuzzer target: every proto_decode_*() and
 * proto_parse_reply(), the decoders of what a peer sends.
 *
 * Input: one byte that picks the decoder (modulo their number, in the
 * order of codecs[]: PROTO_MESSAGES', then the CLIENTS reply's, then
 * proto_parse_reply()), then the payload. The payload is copied to a buffer
 * of exactly its size, so ASan sees any read past it. What decodes must
 * re-encode to the payload it came from (up to trailing bytes the decoder
 * ignores, and for a shorter, older layout up to its end), and decoding
 * that encoding must give the same encoding again.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "lib/common/macros.h"
#include "lib/proto/proto.h"

/* Decode @in (@len bytes) as a @msg, re-encode it at the newest version
 * and check the round trip: a payload as long as the newest layout (or
 * longer: a newer peer's tail, ignored) re-encodes to its own bytes; a
 * shorter one, which may only end where an older layout ended, comes back
 * with the defaults appended; and the re-encoding decodes to itself. */
#define ROUND_TRIP(msg, FIELDS, CHECK)					\
static void round_trip_##msg(const uint8_t *in, size_t len)		\
{									\
	uint8_t out[PROTO_MAX_PAYLOAD], again[PROTO_MAX_PAYLOAD];	\
	struct proto_##msg m, m2;					\
	size_t n;							\
									\
	if (proto_decode_##msg(in, len, &m))				\
		return;							\
	n = proto_encode_##msg(out, &m, PROTO_VERSION);			\
	FUZZ_CHECK(n == PROTO_SIZE_##msg);				\
	FUZZ_CHECK(len < n || !memcmp(out, in, n));			\
	FUZZ_CHECK(len >= n || !memcmp(out, in, len));			\
	FUZZ_CHECK(proto_decode_##msg(out, n, &m2) == 0);		\
	FUZZ_CHECK(proto_encode_##msg(again, &m2, PROTO_VERSION) == n &&	\
		   !memcmp(again, out, n));				\
}

PROTO_MESSAGES(ROUND_TRIP)

/* The CLIENTS reply, whose rows' place depends on the frame's version:
 * the version is the payload's first byte. */
static void round_trip_clients_reply(const uint8_t *in, size_t len)
{
	static struct proto_clients_reply m, m2;
	uint8_t out[PROTO_MAX_PAYLOAD], again[PROTO_MAX_PAYLOAD];
	uint16_t version;
	size_t n;

	if (len == 0)
		return;
	version = (uint16_t)(PROTO_VERSION_MIN +
			     in[0] % (PROTO_VERSION - PROTO_VERSION_MIN + 1));
	if (proto_decode_clients_reply(in + 1, len - 1, &m, version))
		return;
	FUZZ_CHECK(m.count <= PROTO_CLIENTS_PER_PAGE);
	n = proto_encode_clients_reply(out, &m, version);
	FUZZ_CHECK(n > 0 && n <= PROTO_MAX_PAYLOAD);
	FUZZ_CHECK(proto_decode_clients_reply(out, n, &m2, version) == 0);
	/* a page of an older daemon may hold more rows than this one sends:
	 * the rest are left for the next page */
	if (m.count > PROTO_CLIENTS_SENT)
		FUZZ_CHECK(m2.count == PROTO_CLIENTS_SENT && m2.more == 1);
	else
		FUZZ_CHECK(m2.count == m.count && m2.more == m.more);
	/* rows longer than the version's (a newer peer's, from version 2
	 * on) carry fields the version does not: those are left out, and
	 * the encoding is then what stays the same */
	if (m.row_size <= proto_size_client_row(version))
		FUZZ_CHECK(!memcmp(m2.rows, m.rows,
				   m2.count * sizeof(m.rows[0])));
	FUZZ_CHECK(proto_encode_clients_reply(again, &m2, version) == n &&
		   !memcmp(again, out, n));
}

/* A reply's payload: status, then a body or a NUL-terminated message
 * that lies inside the payload. */
static void parse_reply(const uint8_t *in, size_t len)
{
	struct proto_msg *m = calloc(1, sizeof(*m));
	const uint8_t *body;
	const char *errmsg;
	int32_t status;
	size_t blen;

	if (!m)
		return;
	m->hdr.type = PROTO_STATUS | PROTO_REPLY;
	m->hdr.len = (uint32_t)len;
	memcpy(m->payload, in, len);
	if (proto_parse_reply(m, &status, &body, &blen, &errmsg) == 0) {
		FUZZ_CHECK(status <= 0);
		FUZZ_CHECK(status < 0 ||
			   (body == m->payload + sizeof(status) &&
			    blen == len - sizeof(status)));
		FUZZ_CHECK(status == 0 ||
			   strlen(errmsg) < len - sizeof(status));
	}
	free(m);
}

#define CODEC_ENTRY(msg, FIELDS, CHECK) round_trip_##msg,
static void (*const codecs[])(const uint8_t *in, size_t len) = {
	PROTO_MESSAGES(CODEC_ENTRY)
	round_trip_clients_reply,
	parse_reply,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = size - 1;
	uint8_t *payload;

	if (size == 0 || len > PROTO_MAX_PAYLOAD)
		return 0;
	payload = malloc(len ? len : 1);
	if (!payload)
		return 0;
	memcpy(payload, data + 1, len);
	codecs[data[0] % ARRAY_SIZE(codecs)](payload, len);
	free(payload);
	return 0;
}
