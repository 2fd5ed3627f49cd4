/*
 * fuzz_proto_decode.c - libFuzzer target: every proto_decode_*() and
 * proto_parse_reply(), the decoders of what a peer sends.
 *
 * Input: one byte that picks the decoder (modulo their number, in the
 * order of codecs[]), then the payload. The payload is copied to a buffer
 * of exactly its size, so ASan sees any read past it. What decodes must
 * re-encode to the payload it came from (up to trailing bytes the decoder
 * ignores), and decoding that encoding must give the same encoding again.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "lib/proto/proto.h"

/* Decode @in (@len bytes) as a @type with proto_decode_@name(), re-encode
 * it and check the round trip. */
#define ROUND_TRIP(name, type)						\
static void round_trip_##name(const uint8_t *in, size_t len)		\
{									\
	uint8_t out[PROTO_MAX_PAYLOAD], again[PROTO_MAX_PAYLOAD];	\
	struct type m, m2;						\
	size_t n;							\
									\
	if (proto_decode_##name(in, len, &m))				\
		return;							\
	n = proto_encode_##name(out, &m);				\
	FUZZ_CHECK(n > 0 && n <= len && !memcmp(out, in, n));		\
	FUZZ_CHECK(proto_decode_##name(out, n, &m2) == 0);		\
	FUZZ_CHECK(proto_encode_##name(again, &m2) == n &&		\
		   !memcmp(again, out, n));				\
}

ROUND_TRIP(hello, proto_hello)
ROUND_TRIP(hello_reply, proto_hello_reply)
ROUND_TRIP(register, proto_register)
ROUND_TRIP(register_reply, proto_register_reply)
ROUND_TRIP(unregister, proto_unregister)
ROUND_TRIP(set_limit, proto_set_limit)
ROUND_TRIP(advise, proto_advise)
ROUND_TRIP(stats_reply, proto_stats_reply)
ROUND_TRIP(status_reply, proto_status_reply)
ROUND_TRIP(version_reply, proto_version_reply)
ROUND_TRIP(client_req, proto_client_req)
ROUND_TRIP(client_row, proto_client_row)
ROUND_TRIP(clients_reply, proto_clients_reply)
ROUND_TRIP(admin_limit, proto_admin_limit)
ROUND_TRIP(reclaim, proto_reclaim)
ROUND_TRIP(bytes_reply, proto_bytes_reply)
ROUND_TRIP(compact_reply, proto_compact_reply)

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

static void (*const codecs[])(const uint8_t *in, size_t len) = {
	round_trip_hello,
	round_trip_hello_reply,
	round_trip_register,
	round_trip_register_reply,
	round_trip_unregister,
	round_trip_set_limit,
	round_trip_advise,
	round_trip_stats_reply,
	round_trip_status_reply,
	round_trip_version_reply,
	round_trip_client_req,
	round_trip_client_row,
	round_trip_clients_reply,
	round_trip_admin_limit,
	round_trip_reclaim,
	round_trip_bytes_reply,
	round_trip_compact_reply,
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
	codecs[data[0] % (sizeof(codecs) / sizeof(codecs[0]))](payload, len);
	free(payload);
	return 0;
}
