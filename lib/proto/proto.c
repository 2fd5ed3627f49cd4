/*
 * proto.c - framing and codecs of the uzswapd control protocol; the wire
 * format is described in proto.h.
 *
 * The codecs are generated from the field lists of proto.h by
 * PROTO_CODECS: a sequence of bounded cursor calls (struct proto_cur), one
 * per field, that latch an error, and one check at the end. Only what a
 * layout cannot say is written here: the range checks of each message, and
 * the CLIENTS reply, a fixed part followed by an array of rows.
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

void proto_cur_put(struct proto_cur *c, const void *v, size_t n)
{
	if (c->bad || n > c->len - c->off) {
		c->bad = true;
		return;
	}
	memcpy(c->w + c->off, v, n);
	c->off += n;
}

bool proto_cur_get(struct proto_cur *c, void *v, size_t n, uint16_t since)
{
	/* the payload ends between two versions' fields: an older layout */
	if (!c->bad && c->off == c->len && since > c->since)
		c->ended = true;
	if (c->bad || c->ended || n > c->len - c->off) {
		c->bad = !c->ended;
		memset(v, 0, n);
		return false;
	}
	memcpy(v, c->r + c->off, n);
	c->off += n;
	c->since = since;
	return true;
}

void proto_cur_get_str(struct proto_cur *c, char *s, size_t n,
		       uint16_t since)
{
	if (proto_cur_get(c, s, n, since) && !memchr(s, '\0', n))
		c->bad = true;
}

int proto_cur_end(const struct proto_cur *c)
{
	return c->bad ? -EBADMSG : 0;
}

/*****************
 * Codecs
 *****************/

/* The checks of decoded values, by message (PROTO_MESSAGES names them). */
#define proto_no_check(m) ((void)(m), true)

static bool hello_ok(const struct proto_hello *m)
{
	return m->min_version <= m->max_version && m->uffd_mode <= 1 &&
	       !(m->flags & ~PROTO_HELLO_RESUME);
}

static bool admin_hello_ok(const struct proto_admin_hello *m)
{
	return m->min_version <= m->max_version;
}

static bool register_ok(const struct proto_register *m)
{
	return !(m->flags & ~(PROTO_REGION_ADOPTED | PROTO_REGION_FORKED)) &&
	       !(m->flags & PROTO_REGION_ADOPTED &&
		 m->flags & PROTO_REGION_FORKED) &&
	       (!(m->flags & PROTO_REGION_FORKED) || m->fork_token);
}

static bool advise_ok(const struct proto_advise *m)
{
	return m->advice == PROTO_ADVISE_COLD ||
	       m->advice == PROTO_ADVISE_WILLNEED ||
	       m->advice == PROTO_ADVISE_DISCARD;
}

static bool client_req_ok(const struct proto_client_req *m)
{
	return m->pid >= 0;
}

static bool admin_limit_ok(const struct proto_admin_limit *m)
{
	return m->target <= PROTO_LIMIT_GLOBAL &&
	       (m->target == PROTO_LIMIT_PID) == (m->pid > 0);
}

static bool reclaim_ok(const struct proto_reclaim *m)
{
	return m->pid >= 0;
}

static bool drain_ok(const struct proto_drain *m)
{
	return !(m->flags & ~PROTO_DRAIN_FORCE);
}

PROTO_MESSAGES(PROTO_CODECS)

/* The fixed part of a CLIENTS reply, with its own codecs. */
struct proto_clients_fixed {
	PROTO_CLIENTS_REPLY_FIELDS(PROTO_F_MEMBER, PROTO_S_MEMBER)
};
enum {
	PROTO_SIZE_clients_fixed =
		0 PROTO_CLIENTS_REPLY_FIELDS(PROTO_F_SIZE, PROTO_S_SIZE)
};

static bool clients_fixed_ok(const struct proto_clients_fixed *m)
{
	return m->count <= PROTO_CLIENTS_PER_PAGE && m->more <= 1;
}

static size_t proto_size_clients_fixed(uint16_t version);
static size_t proto_encode_clients_fixed(uint8_t *buf,
					 const struct proto_clients_fixed *m,
					 uint16_t version);
static int proto_decode_clients_fixed(const uint8_t *buf, size_t len,
				      struct proto_clients_fixed *m);

PROTO_CODECS(clients_fixed, PROTO_CLIENTS_REPLY_FIELDS, clients_fixed_ok)

_Static_assert(PROTO_SIZE_clients_reply <=
		       PROTO_MAX_PAYLOAD - sizeof(int32_t),
	       "a page of clients fits a reply");

size_t proto_encode_clients_reply(uint8_t *buf,
				  const struct proto_clients_reply *m,
				  uint16_t version)
{
	struct proto_clients_fixed f = {
		.count = m->count < PROTO_CLIENTS_SENT
				 ? m->count : PROTO_CLIENTS_SENT,
		/* rows left out follow on the next page */
		.more = m->count > PROTO_CLIENTS_SENT ? 1 : m->more,
		.rows_off = (uint32_t)proto_size_clients_fixed(version),
		.row_size = (uint32_t)proto_size_client_row(version),
	};
	size_t off = proto_encode_clients_fixed(buf, &f, version);
	uint32_t i;

	for (i = 0; i < f.count; i++)
		off += proto_encode_client_row(buf + off, &m->rows[i],
					       version);
	return off;
}

int proto_decode_clients_reply(const uint8_t *buf, size_t len,
			       struct proto_clients_reply *m,
			       uint16_t version)
{
	struct proto_clients_fixed f;
	size_t fixed = proto_size_clients_fixed(version), row, i;

	/* from version 2 the fixed part says where it ends */
	if (len < fixed ||
	    proto_decode_clients_fixed(buf, version < 2 ? fixed : len, &f))
		return -EBADMSG;
	if (version >= 2) {
		fixed = f.rows_off;
		if (fixed > len || proto_decode_clients_fixed(buf, fixed, &f))
			return -EBADMSG;
	}
	row = version >= 2 ? f.row_size : proto_size_client_row(version);
	if (row == 0 || f.count > (len - fixed) / row)
		return -EBADMSG;
	m->count = f.count;
	m->more = f.more;
	m->rows_off = (uint32_t)fixed;
	m->row_size = (uint32_t)row;
	for (i = 0; i < f.count; i++)
		if (proto_decode_client_row(buf + fixed + i * row, row,
					    &m->rows[i]))
			return -EBADMSG;
	return 0;
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
		[PROTO_ADMIN_HELLO] = "ADMIN_HELLO",
		[PROTO_DRAIN] = "DRAIN",
		[PROTO_FORK] = "FORK",
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

/* Check a complete header against the version @want (0: any spoken);
 * 0 or -errno. */
static int hdr_check(const struct proto_hdr *h, uint16_t want)
{
	if (h->magic != PROTO_MAGIC)
		return -EBADMSG;
	if (want ? h->version != want
		 : h->version < PROTO_VERSION_MIN || h->version > PROTO_VERSION)
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
			ret = hdr_check(&r->msg.hdr, r->version);
			if (ret)
				return ret;
		}
	}
}

size_t proto_frame(uint8_t *buf, uint16_t version, uint16_t type,
		   uint32_t seq, const void *payload, size_t len)
{
	struct proto_hdr h = {
		.magic = PROTO_MAGIC,
		.version = version,
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

size_t proto_frame_reply(uint8_t *buf, uint16_t version, uint16_t type,
			 uint32_t seq, int32_t status, const void *body,
			 size_t len, const char *errmsg)
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
	return proto_frame(buf, version, (uint16_t)(type | PROTO_REPLY), seq, p,
			   n);
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

int proto_send(int sock, uint16_t version, uint16_t type, uint32_t seq,
	       const void *payload, size_t len, const int *fds, int nfds)
{
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD];

	return send_frame(sock, buf,
			  proto_frame(buf, version, type, seq, payload, len),
			  fds, nfds);
}

int proto_send_reply(int sock, uint16_t version, uint16_t type,
		     uint32_t seq, int32_t status, const void *body,
		     size_t len, const char *errmsg)
{
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD];

	return send_frame(sock, buf,
			  proto_frame_reply(buf, version, type, seq, status,
					    body, len, errmsg),
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
