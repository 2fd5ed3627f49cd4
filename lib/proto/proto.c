/*
 * proto.c - framing and codecs of the uzswapd control protocol; the wire
 * format is described in proto.h.
 *
 * Codecs go through a bounded cursor (struct cur): every put and get checks
 * the space left and latches an error, so an encoder or decoder is a plain
 * sequence of field calls and one check at the end. Decoders also insist
 * that the whole payload was consumed.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lib/uffd/uffd.h"
#include "proto.h"

/*****************
 * Bounded cursor
 *****************/

struct cur {
	uint8_t *w;		/* encoding: where to write, else NULL */
	const uint8_t *r;	/* decoding: where to read, else NULL */
	size_t off;
	size_t len;
	bool bad;
};

static void put(struct cur *c, const void *v, size_t n)
{
	if (c->bad || n > c->len - c->off) {
		c->bad = true;
		return;
	}
	memcpy(c->w + c->off, v, n);
	c->off += n;
}

static void get(struct cur *c, void *v, size_t n)
{
	if (c->bad || n > c->len - c->off) {
		c->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, c->r + c->off, n);
	c->off += n;
}

#define PUT(c, field) put((c), &(field), sizeof(field))
#define GET(c, field) get((c), &(field), sizeof(field))

static struct cur enc(uint8_t *buf)
{
	return (struct cur){ .w = buf, .len = PROTO_MAX_PAYLOAD };
}

static struct cur dec(const uint8_t *buf, size_t len)
{
	return (struct cur){ .r = buf, .len = len };
}

/* 0 when the decoder consumed exactly the payload, else -EBADMSG. */
static int dec_end(const struct cur *c)
{
	return c->bad || c->off != c->len ? -EBADMSG : 0;
}

/* Fixed-size string field: must hold a NUL. */
static void get_str(struct cur *c, char *s, size_t size)
{
	get(c, s, size);
	if (!c->bad && !memchr(s, '\0', size))
		c->bad = true;
}

/*****************
 * Codecs
 *****************/

size_t proto_encode_hello(uint8_t *buf, const struct proto_hello *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->min_version);
	PUT(&c, m->max_version);
	PUT(&c, m->uffd_mode);
	PUT(&c, m->uffd_fdnum);
	return c.off;
}

int proto_decode_hello(const uint8_t *buf, size_t len, struct proto_hello *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->min_version);
	GET(&c, m->max_version);
	GET(&c, m->uffd_mode);
	GET(&c, m->uffd_fdnum);
	if (m->min_version > m->max_version || m->uffd_mode > 1)
		c.bad = true;
	return dec_end(&c);
}

size_t proto_encode_hello_reply(uint8_t *buf,
				const struct proto_hello_reply *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->version);
	PUT(&c, m->page_size);
	PUT(&c, m->default_limit);
	return c.off;
}

int proto_decode_hello_reply(const uint8_t *buf, size_t len,
			     struct proto_hello_reply *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->version);
	GET(&c, m->page_size);
	GET(&c, m->default_limit);
	return dec_end(&c);
}

size_t proto_encode_register(uint8_t *buf, const struct proto_register *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->addr);
	PUT(&c, m->len);
	PUT(&c, m->flags);
	PUT(&c, m->memfd_fdnum);
	put(&c, m->name, sizeof(m->name));
	return c.off;
}

int proto_decode_register(const uint8_t *buf, size_t len,
			  struct proto_register *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->addr);
	GET(&c, m->len);
	GET(&c, m->flags);
	GET(&c, m->memfd_fdnum);
	get_str(&c, m->name, sizeof(m->name));
	if (m->flags & ~PROTO_REGION_ADOPTED)
		c.bad = true;
	return dec_end(&c);
}

size_t proto_encode_register_reply(uint8_t *buf,
				   const struct proto_register_reply *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->region_id);
	return c.off;
}

int proto_decode_register_reply(const uint8_t *buf, size_t len,
				struct proto_register_reply *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->region_id);
	return dec_end(&c);
}

size_t proto_encode_unregister(uint8_t *buf, const struct proto_unregister *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->addr);
	return c.off;
}

int proto_decode_unregister(const uint8_t *buf, size_t len,
			    struct proto_unregister *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->addr);
	return dec_end(&c);
}

size_t proto_encode_set_limit(uint8_t *buf, const struct proto_set_limit *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->bytes);
	return c.off;
}

int proto_decode_set_limit(const uint8_t *buf, size_t len,
			   struct proto_set_limit *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->bytes);
	return dec_end(&c);
}

size_t proto_encode_advise(uint8_t *buf, const struct proto_advise *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->addr);
	PUT(&c, m->len);
	PUT(&c, m->advice);
	return c.off;
}

int proto_decode_advise(const uint8_t *buf, size_t len,
			struct proto_advise *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->addr);
	GET(&c, m->len);
	GET(&c, m->advice);
	if (m->advice != PROTO_ADVISE_COLD && m->advice != PROTO_ADVISE_WILLNEED)
		c.bad = true;
	return dec_end(&c);
}

/* Counter replies are sequences of u64 fields, in struct order (the
 * structs hold nothing else, so they have no padding). */
static size_t encode_counters(uint8_t *buf, const void *m, size_t size)
{
	struct cur c = enc(buf);

	put(&c, m, size);
	return c.off;
}

static int decode_counters(const uint8_t *buf, size_t len, void *m,
			   size_t size)
{
	struct cur c = dec(buf, len);

	get(&c, m, size);
	return dec_end(&c);
}

size_t proto_encode_stats_reply(uint8_t *buf,
				const struct proto_stats_reply *m)
{
	return encode_counters(buf, m, sizeof(*m));
}

int proto_decode_stats_reply(const uint8_t *buf, size_t len,
			     struct proto_stats_reply *m)
{
	return decode_counters(buf, len, m, sizeof(*m));
}

size_t proto_encode_status_reply(uint8_t *buf,
				 const struct proto_status_reply *m)
{
	return encode_counters(buf, m, sizeof(*m));
}

int proto_decode_status_reply(const uint8_t *buf, size_t len,
			      struct proto_status_reply *m)
{
	return decode_counters(buf, len, m, sizeof(*m));
}

size_t proto_encode_version_reply(uint8_t *buf,
				  const struct proto_version_reply *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->proto_min);
	PUT(&c, m->proto_max);
	put(&c, m->release, sizeof(m->release));
	return c.off;
}

int proto_decode_version_reply(const uint8_t *buf, size_t len,
			       struct proto_version_reply *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->proto_min);
	GET(&c, m->proto_max);
	get_str(&c, m->release, sizeof(m->release));
	return dec_end(&c);
}

size_t proto_encode_client_req(uint8_t *buf, const struct proto_client_req *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->pid);
	return c.off;
}

int proto_decode_client_req(const uint8_t *buf, size_t len,
			    struct proto_client_req *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->pid);
	if (m->pid < 0)
		c.bad = true;
	return dec_end(&c);
}

static void put_row(struct cur *c, const struct proto_client_row *m)
{
	PUT(c, m->pid);
	PUT(c, m->uid);
	put(c, m->comm, sizeof(m->comm));
	PUT(c, m->regions);
	PUT(c, m->registered_bytes);
	PUT(c, m->resident_bytes);
	PUT(c, m->limit_bytes);
	PUT(c, m->own_limit_bytes);
	PUT(c, m->stored_pages);
	PUT(c, m->pooled_pages);
	PUT(c, m->compressed_bytes);
	PUT(c, m->faults);
	PUT(c, m->evictions);
}

static void get_row(struct cur *c, struct proto_client_row *m)
{
	GET(c, m->pid);
	GET(c, m->uid);
	get_str(c, m->comm, sizeof(m->comm));
	GET(c, m->regions);
	GET(c, m->registered_bytes);
	GET(c, m->resident_bytes);
	GET(c, m->limit_bytes);
	GET(c, m->own_limit_bytes);
	GET(c, m->stored_pages);
	GET(c, m->pooled_pages);
	GET(c, m->compressed_bytes);
	GET(c, m->faults);
	GET(c, m->evictions);
}

size_t proto_encode_client_row(uint8_t *buf, const struct proto_client_row *m)
{
	struct cur c = enc(buf);

	put_row(&c, m);
	return c.off;
}

int proto_decode_client_row(const uint8_t *buf, size_t len,
			    struct proto_client_row *m)
{
	struct cur c = dec(buf, len);

	get_row(&c, m);
	return dec_end(&c);
}

size_t proto_encode_clients_reply(uint8_t *buf,
				  const struct proto_clients_reply *m)
{
	struct cur c = enc(buf);
	uint32_t i;

	PUT(&c, m->count);
	PUT(&c, m->more);
	for (i = 0; i < m->count && i < PROTO_CLIENTS_PER_PAGE; i++)
		put_row(&c, &m->rows[i]);
	return c.bad ? 0 : c.off;
}

int proto_decode_clients_reply(const uint8_t *buf, size_t len,
			       struct proto_clients_reply *m)
{
	struct cur c = dec(buf, len);
	uint32_t i;

	GET(&c, m->count);
	GET(&c, m->more);
	if (m->count > PROTO_CLIENTS_PER_PAGE || m->more > 1)
		return -EBADMSG;
	for (i = 0; i < m->count; i++)
		get_row(&c, &m->rows[i]);
	return dec_end(&c);
}

size_t proto_encode_admin_limit(uint8_t *buf,
				const struct proto_admin_limit *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->target);
	PUT(&c, m->pid);
	PUT(&c, m->bytes);
	return c.off;
}

int proto_decode_admin_limit(const uint8_t *buf, size_t len,
			     struct proto_admin_limit *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->target);
	GET(&c, m->pid);
	GET(&c, m->bytes);
	if (m->target > PROTO_LIMIT_GLOBAL ||
	    (m->target == PROTO_LIMIT_PID) != (m->pid > 0))
		c.bad = true;
	return dec_end(&c);
}

size_t proto_encode_reclaim(uint8_t *buf, const struct proto_reclaim *m)
{
	struct cur c = enc(buf);

	PUT(&c, m->pid);
	PUT(&c, m->bytes);
	return c.off;
}

int proto_decode_reclaim(const uint8_t *buf, size_t len,
			 struct proto_reclaim *m)
{
	struct cur c = dec(buf, len);

	GET(&c, m->pid);
	GET(&c, m->bytes);
	if (m->pid < 0)
		c.bad = true;
	return dec_end(&c);
}

size_t proto_encode_bytes_reply(uint8_t *buf,
				const struct proto_bytes_reply *m)
{
	return encode_counters(buf, m, sizeof(*m));
}

int proto_decode_bytes_reply(const uint8_t *buf, size_t len,
			     struct proto_bytes_reply *m)
{
	return decode_counters(buf, len, m, sizeof(*m));
}

size_t proto_encode_compact_reply(uint8_t *buf,
				  const struct proto_compact_reply *m)
{
	return encode_counters(buf, m, sizeof(*m));
}

int proto_decode_compact_reply(const uint8_t *buf, size_t len,
			       struct proto_compact_reply *m)
{
	return decode_counters(buf, len, m, sizeof(*m));
}

const char *proto_type_name(uint16_t type)
{
	static const char *const names[PROTO_TYPE_END] = {
		[PROTO_HELLO] = "HELLO",
		[PROTO_REGISTER] = "REGISTER",
		[PROTO_UNREGISTER] = "UNREGISTER",
		[PROTO_SET_LIMIT] = "SET_LIMIT",
		[PROTO_ADVISE] = "ADVISE",
		[PROTO_STATS] = "STATS",
		[PROTO_STATUS] = "STATUS",
		[PROTO_DAEMON_VERSION] = "DAEMON_VERSION",
		[PROTO_CLIENTS] = "CLIENTS",
		[PROTO_CLIENT] = "CLIENT",
		[PROTO_ADMIN_LIMIT] = "ADMIN_LIMIT",
		[PROTO_RECLAIM] = "RECLAIM",
		[PROTO_COMPACT] = "COMPACT",
		[PROTO_RELOAD] = "RELOAD",
	};

	type &= (uint16_t)~PROTO_REPLY;
	return type < PROTO_TYPE_END && names[type] ? names[type] : "?";
}

/*****************
 * Framing
 *****************/

void proto_msg_close_fds(struct proto_msg *m)
{
	int i;

	for (i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

void proto_reader_reset(struct proto_reader *r)
{
	proto_msg_close_fds(&r->msg);
	r->have = 0;
}

/* Check a complete header; 0 or -errno. */
static int hdr_check(const struct proto_hdr *h)
{
	if (h->magic != PROTO_MAGIC)
		return -EBADMSG;
	if (h->version < PROTO_VERSION_MIN || h->version > PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (h->len > PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	return 0;
}

/* Keep fds that arrived with a read; the header's first byte carries
 * them, any later arrival or excess is an error. */
static int take_fds(struct proto_reader *r, const int *fds, int nfds,
		    bool at_start)
{
	int i;

	if (nfds && (!at_start || nfds > PROTO_MAX_FDS)) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		return -EMSGSIZE;
	}
	for (i = 0; i < nfds; i++)
		r->msg.fds[r->msg.nfds++] = fds[i];
	return 0;
}

int proto_reader_feed(struct proto_reader *r, int sock)
{
	int fds[FDPASS_MAX_FDS];
	int nfds, ret;
	size_t want;
	ssize_t n;

	for (;;) {
		bool in_hdr = r->have < PROTO_HDR_SIZE;
		uint8_t *dst;

		if (in_hdr) {
			want = PROTO_HDR_SIZE - r->have;
			dst = (uint8_t *)&r->msg.hdr + r->have;
		} else {
			want = PROTO_HDR_SIZE + r->msg.hdr.len - r->have;
			dst = r->msg.payload + (r->have - PROTO_HDR_SIZE);
		}
		if (want == 0)
			return 1;
		nfds = 0;
		n = fdpass_recv(sock, dst, want, fds, &nfds);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return 0;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ECONNRESET;
		ret = take_fds(r, fds, nfds, r->have == 0);
		if (ret)
			return ret;
		r->have += (size_t)n;
		if (in_hdr && r->have == PROTO_HDR_SIZE) {
			ret = hdr_check(&r->msg.hdr);
			if (ret)
				return ret;
		}
	}
}

size_t proto_frame(uint8_t *buf, uint16_t type, uint32_t seq,
		   const void *payload, size_t len)
{
	struct proto_hdr h = {
		.magic = PROTO_MAGIC,
		.version = PROTO_VERSION,
		.type = type,
		.seq = seq,
		.len = (uint32_t)len,
	};

	if (len > PROTO_MAX_PAYLOAD)
		return 0;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memmove(buf + PROTO_HDR_SIZE, payload, len);
	return PROTO_HDR_SIZE + len;
}

size_t proto_frame_reply(uint8_t *buf, uint16_t type, uint32_t seq,
			 int32_t status, const void *body, size_t len,
			 const char *errmsg)
{
	uint8_t *p = buf + PROTO_HDR_SIZE;
	size_t n = sizeof(status);

	memcpy(p, &status, sizeof(status));
	if (status < 0) {
		size_t m = errmsg ? strnlen(errmsg, PROTO_MAX_ERRMSG - 1) : 0;

		memcpy(p + n, errmsg ? errmsg : "", m);
		p[n + m] = '\0';
		n += m + 1;
	} else {
		if (len > PROTO_MAX_PAYLOAD - n)
			return 0;
		memcpy(p + n, body, len);
		n += len;
	}
	/* the payload is in place already: frame the header around it */
	return proto_frame(buf, (uint16_t)(type | PROTO_REPLY), seq, p, n);
}

/* Send a whole frame; a short write leaves the stream cut in a message,
 * which makes it unusable (-EPIPE). */
static int send_frame(int sock, const uint8_t *buf, size_t n, const int *fds,
		      int nfds)
{
	ssize_t sent;

	if (n == 0 || nfds > PROTO_MAX_FDS)
		return -EMSGSIZE;
	sent = fdpass_send(sock, buf, n, fds, nfds);
	if (sent < 0)
		return (int)sent;
	return (size_t)sent == n ? 0 : -EPIPE;
}

int proto_send(int sock, uint16_t type, uint32_t seq, const void *payload,
	       size_t len, const int *fds, int nfds)
{
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD];

	return send_frame(sock, buf, proto_frame(buf, type, seq, payload, len),
			  fds, nfds);
}

int proto_send_reply(int sock, uint16_t type, uint32_t seq, int32_t status,
		     const void *body, size_t len, const char *errmsg)
{
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD];

	return send_frame(sock, buf,
			  proto_frame_reply(buf, type, seq, status, body, len,
					    errmsg),
			  NULL, 0);
}

int proto_parse_reply(const struct proto_msg *m, int32_t *status,
		      const uint8_t **body, size_t *len, const char **errmsg)
{
	const uint8_t *p = m->payload + sizeof(*status);
	size_t rest;

	if (!(m->hdr.type & PROTO_REPLY) || m->hdr.len < sizeof(*status))
		return -EBADMSG;
	memcpy(status, m->payload, sizeof(*status));
	rest = m->hdr.len - sizeof(*status);
	*body = NULL;
	*len = 0;
	*errmsg = NULL;
	if (*status > 0)
		return -EBADMSG;
	if (*status < 0) {
		if (rest == 0 || rest > PROTO_MAX_ERRMSG ||
		    !memchr(p, '\0', rest))
			return -EBADMSG;
		*errmsg = (const char *)p;
		return 0;
	}
	*body = p;
	*len = rest;
	return 0;
}
