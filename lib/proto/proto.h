/*
 * proto.h - the uzswapd control protocol: message types, framing, codecs.
 *
 * This file is private to uzswap: compiled once into the noinst libproto,
 * linked by the daemon and by libuzswap. Never installed; the public API
 * is uzswap.h.
 *
 * Framing. Every message is a 16-byte header followed by at most
 * PROTO_MAX_PAYLOAD payload bytes, on a unix stream socket, in host byte
 * order (both ends are on one host). The header carries a magic, the
 * protocol version, the message type, a sequence number the reply echoes,
 * and the payload length. File descriptors (a client's userfaultfd, a
 * region's memfd) travel as SCM_RIGHTS with the header's first byte, at
 * most PROTO_MAX_FDS per message.
 *
 * Replies have type (request type | PROTO_REPLY). Their payload starts with
 * an int32 status, 0 or -errno; on error the rest is a NUL-terminated
 * message for humans (at most PROTO_MAX_ERRMSG bytes), on success the
 * type's reply body.
 *
 * Versions. Every frame carries the version of its connection. A
 * connection's version is that of its first frame until HELLO picks one:
 * the peer offers the range of versions it speaks, the daemon answers with
 * the newest both speak, and that reply and every frame after it, in both
 * directions, carry it. A receiver refuses a frame whose version is not
 * its connection's (or, for a first frame, one it does not speak) with
 * -EPROTONOSUPPORT, and a malformed message with -EBADMSG. A peer sends
 * its HELLO at PROTO_VERSION_MIN, which every daemon speaks. HELLO (with a
 * userfaultfd) makes a client; ADMIN_HELLO (version 2; a version-1 daemon
 * answers -EOPNOTSUPP) only negotiates, for an admin connection; a
 * connection sends one of them at most once. A peer that never sends
 * either speaks the version of its first frame: an admin tool of version 1
 * keeps working.
 * Each side encodes a message at its connection's version: a field newer
 * than that is not sent at all. What each version brought:
 *   1: the first release;
 *   2: every frame carries the connection's version; ADMIN_HELLO;
 *      CLIENTS rows with an offset and a size;
 *   3: STATUS carries every counter (counters.h), /metrics' among them;
 *      DRAIN (a daemon answers it -EOPNOTSUPP on a connection of an
 *      older version, as a daemon of that version would); HELLO's flags
 *      (RESUME: a client carries on with a new daemon);
 *   4: client rows carry the back-pressure counters (direct evictions,
 *      budget waits, pages over budget);
 *   5: STATUS carries the deduplication counters;
 *   6: fork(): FORK copies a region for the child the client is about
 *      to make, which claims the copy with REGISTER (PROTO_REGION_FORKED
 *      and the copy's token); ADVISE takes DISCARD (a daemon of an older
 *      version refuses it as a malformed message: a peer never sends it
 *      on a connection of an older version);
 *   7: STATUS carries the write-back tier's counters (its backend: none,
 *      a file or an NBD export; whether it answers; bytes, releases,
 *      checksum errors, waits and timeouts, connections, time spent).
 *
 * Layouts. Each message is a list of fields, PROTO_<MSG>_FIELDS below,
 * written once: the struct, the encoder, the decoder and the size derive
 * from it (PROTO_CODECS). Numbers are fixed-size integers in host order;
 * strings are fixed-size and NUL-terminated. There is no padding on the
 * wire: fields follow each other.
 *
 * Growth rule. Fields are only ever appended, each marked with the
 * version that appended it (@since), never removed, resized or reordered.
 * A decoder
 * - accepts a payload longer than the layout it knows, and ignores the
 *   tail: fields a newer peer appended (replies and requests alike);
 * - accepts a payload shorter than its layout only if it ends exactly
 *   where an older version's layout ended: the fields it lacks take their
 *   documented defaults (the last argument of F(), "" for strings);
 * - refuses anything else with -EBADMSG, as it refuses truncation inside
 *   a version's layout, unterminated strings and values out of range.
 * Peers of version 1 have strict decoders (no tail allowed): which is why
 * each side encodes at the connection's version. A message without fields
 * has no layout, and its payload must be empty. A reply whose body is an
 * array (CLIENTS) says from version 2 where its rows start and how long
 * each is, so that both its fixed part and its rows can grow.
 */
#ifndef UZSWAP_PROTO_H
#define UZSWAP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/proto/counters.h"

#define PROTO_MAGIC		0x55a5f00du
#define PROTO_VERSION		7	/* the newest version this build speaks */
#define PROTO_VERSION_MIN	1	/* the oldest */
#define PROTO_HDR_SIZE		16
#define PROTO_MAX_PAYLOAD	4096
#define PROTO_MAX_FDS		2
#define PROTO_MAX_ERRMSG	200
#define PROTO_NAME_MAX		64	/* region name, NUL included */
#define PROTO_REPLY		0x8000u

enum proto_type {
	PROTO_HELLO = 1,	/* client: versions; fds: its userfaultfd */
	PROTO_REGISTER,		/* a region; fds: its memfd */
	PROTO_UNREGISTER,	/* a region, by start address */
	PROTO_SET_LIMIT,	/* the process's resident budget */
	PROTO_ADVISE,		/* COLD / WILLNEED over a range */
	PROTO_STATS,		/* the process's counters */
	PROTO_STATUS,		/* admin: the daemon's counters */
	PROTO_DAEMON_VERSION,	/* anyone: the daemon's release */
	PROTO_CLIENTS,		/* admin: a page of client rows, by pid */
	PROTO_CLIENT,		/* admin: one client's row */
	PROTO_ADMIN_LIMIT,	/* admin: a client's, the default or the
				 * global budget */
	PROTO_RECLAIM,		/* admin: evict now */
	PROTO_COMPACT,		/* admin: compact the pool */
	PROTO_RELOAD,		/* admin: reread the configuration */
	PROTO_ADMIN_HELLO,	/* admin: versions (version 2) */
	PROTO_DRAIN,		/* admin: every stored page back into its
				 * client, every region released (version 3) */
	PROTO_FORK,		/* a region's copy for the child of a fork()
				 * about to happen; fds: the child's memfd
				 * (version 6) */
	PROTO_TYPE_END,
};

struct proto_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t seq;
	uint32_t len;		/* payload bytes */
};

/*
 * Field lists. F(type, name, since, default): an integer of @type;
 * S(name, size, since): a NUL-terminated string in @size bytes, default "".
 * @since: the protocol version that appended the field. Order is the wire
 * order; a new field goes at the end of its list, with the version that
 * brings it.
 */

/* HELLO flags. RESUME: the uffd served a daemon before this one, which
 * is to carry on with the regions it took over (a daemon that holds no
 * state of the uffd refuses it: -ESTALE). A HELLO with flags is framed at
 * PROTO_VERSION_MIN like any, but laid out at the newest version: a daemon
 * of version 2 or later reads them, one of version 1 refuses the HELLO. */
#define PROTO_HELLO_RESUME	0x1u

/* HELLO: the first message of a client's connection; fds: its uffd. */
#define PROTO_HELLO_FIELDS(F, S)					\
	F(uint16_t, min_version, 1, 1)					\
	F(uint16_t, max_version, 1, 1)					\
	F(uint32_t, uffd_mode, 1, 0)	/* 0 full, 1 user-mode only */	\
	F(int32_t, uffd_fdnum, 1, -1)	/* the uffd's number in the	\
					 * client's table */		\
	F(uint32_t, flags, 3, 0)	/* PROTO_HELLO_* */

/* ADMIN_HELLO: the first message of an admin connection; no fds. Sent,
 * as HELLO, at PROTO_VERSION_MIN: its first layout counts as version 1. */
#define PROTO_ADMIN_HELLO_FIELDS(F, S)					\
	F(uint16_t, min_version, 1, 1)					\
	F(uint16_t, max_version, 1, 1)

/* The reply to HELLO and ADMIN_HELLO. */
#define PROTO_HELLO_REPLY_FIELDS(F, S)					\
	F(uint16_t, version, 1, 1)	/* the version picked */	\
	F(uint32_t, page_size, 1, 0)					\
	F(uint64_t, default_limit, 1, 0)	/* bytes; 0 = unlimited */

#define PROTO_REGION_ADOPTED 0x1u	/* pages already hold data */
#define PROTO_REGION_FORKED 0x2u	/* the copy FORK made (@fork_token),
					 * claimed by the forked child: the
					 * memfd is the one FORK was sent */

/* REGISTER: a region; fds: its memfd. */
#define PROTO_REGISTER_FIELDS(F, S)					\
	F(uint64_t, addr, 1, 0)						\
	F(uint64_t, len, 1, 0)						\
	F(uint32_t, flags, 1, 0)	/* PROTO_REGION_* */		\
	F(int32_t, memfd_fdnum, 1, -1)	/* the memfd's number in the	\
					 * client's table */		\
	S(name, PROTO_NAME_MAX, 1)					\
	F(uint64_t, fork_token, 6, 0)	/* PROTO_REGION_FORKED */

#define PROTO_REGISTER_REPLY_FIELDS(F, S)				\
	F(uint64_t, region_id, 1, 0)

#define PROTO_UNREGISTER_FIELDS(F, S)					\
	F(uint64_t, addr, 1, 0)

#define PROTO_SET_LIMIT_FIELDS(F, S)					\
	F(uint64_t, bytes, 1, 0)	/* 0 = the daemon's default */

#define PROTO_ADVISE_COLD	1	/* evict now */
#define PROTO_ADVISE_WILLNEED	2	/* bring back ahead of use */
#define PROTO_ADVISE_DISCARD	3	/* drop the contents: the range reads
					 * zeros afterwards (version 6) */

#define PROTO_ADVISE_FIELDS(F, S)					\
	F(uint64_t, addr, 1, 0)						\
	F(uint64_t, len, 1, 0)						\
	F(uint32_t, advice, 1, 0)	/* PROTO_ADVISE_* */

/* STATS reply: counters of the calling process. */
#define PROTO_STATS_REPLY_FIELDS(F, S)					\
	F(uint64_t, resident_bytes, 1, 0)				\
	F(uint64_t, limit_bytes, 1, 0)					\
	F(uint64_t, registered_bytes, 1, 0)				\
	F(uint64_t, stored_pages, 1, 0)					\
	F(uint64_t, compressed_bytes, 1, 0)				\
	F(uint64_t, faults, 1, 0)					\
	F(uint64_t, evictions, 1, 0)					\
	F(uint64_t, regions, 1, 0)

/* STATUS reply: the daemon's totals (an admin request), every counter of
 * COUNTERS_STATUS as a u64, in its order. */
#define PROTO_STATUS_COUNTER(F, name, since, ...)			\
	F(uint64_t, name, since, 0)
#define PROTO_STATUS_REPLY_FIELDS(F, S)					\
	COUNTERS_STATUS(PROTO_STATUS_COUNTER, F)

/* DAEMON_VERSION reply. */
#define PROTO_RELEASE_MAX 32
#define PROTO_VERSION_REPLY_FIELDS(F, S)				\
	F(uint16_t, proto_min, 1, 1)	/* versions the daemon speaks */ \
	F(uint16_t, proto_max, 1, 1)					\
	S(release, PROTO_RELEASE_MAX, 1)	/* "0.1.0" */

/* One client process, as CLIENT and CLIENTS describe it: who it is, then
 * every counter of COUNTERS_CLIENT, in its order. */
#define PROTO_COMM_MAX 16
#define PROTO_CLIENT_COUNTER(F, type, name, since, ...)		\
	F(type, name, since, 0)
#define PROTO_CLIENT_ROW_FIELDS(F, S)					\
	F(int32_t, pid, 1, 0)						\
	F(uint32_t, uid, 1, 0)						\
	S(comm, PROTO_COMM_MAX, 1)					\
	COUNTERS_CLIENT(PROTO_CLIENT_COUNTER, F)

/* CLIENT request; CLIENTS request (rows of pids above @pid, 0: from the
 * first). */
#define PROTO_CLIENT_REQ_FIELDS(F, S)					\
	F(int32_t, pid, 1, 0)

/* CLIENTS reply: this fixed part, then @count rows in pid order; @more
 * says that rows of higher pids follow (ask again after the last pid).
 * Version 1 packs rows of the version-1 row layout right after @more;
 * from version 2 the rows start at @rows_off and each takes @row_size
 * bytes (a row layout of that version or a later one). The encoder sets
 * both. A decoder takes up to PROTO_CLIENTS_PER_PAGE rows (what daemons
 * before version 4 send); an encoder sends at most PROTO_CLIENTS_SENT,
 * so that a page of the newest, longest rows fits a reply. */
#define PROTO_CLIENTS_PER_PAGE 40
#define PROTO_CLIENTS_SENT 32
#define PROTO_CLIENTS_REPLY_FIELDS(F, S)				\
	F(uint32_t, count, 1, 0)					\
	F(uint32_t, more, 1, 0)						\
	F(uint32_t, rows_off, 2, 0)	/* 0: version 1 */		\
	F(uint32_t, row_size, 2, 0)	/* 0: version 1 */

/* ADMIN_LIMIT: which budget. */
#define PROTO_LIMIT_PID		0	/* @pid's own (0 = the default) */
#define PROTO_LIMIT_DEFAULT	1	/* clients without their own */
#define PROTO_LIMIT_GLOBAL	2	/* all clients together */

#define PROTO_ADMIN_LIMIT_FIELDS(F, S)					\
	F(uint32_t, target, 1, 0)	/* PROTO_LIMIT_* */		\
	F(int32_t, pid, 1, 0)	/* PROTO_LIMIT_PID only, else 0 */	\
	F(uint64_t, bytes, 1, 0)	/* 0 = none (or the default) */

/* RECLAIM: evict @bytes (0: every resident page) from @pid (0: from
 * every client). The reply comes when it is done. */
#define PROTO_RECLAIM_FIELDS(F, S)					\
	F(int32_t, pid, 1, 0)						\
	F(uint64_t, bytes, 1, 0)

/* RECLAIM reply. */
#define PROTO_BYTES_REPLY_FIELDS(F, S)					\
	F(uint64_t, bytes, 1, 0)	/* evicted */

/* COMPACT reply. */
#define PROTO_COMPACT_REPLY_FIELDS(F, S)				\
	F(uint64_t, pages, 1, 0)	/* pool pages freed */	\
	F(uint64_t, pool_before, 1, 0)	/* pool bytes before, after */	\
	F(uint64_t, pool_after, 1, 0)

/* The version that brought DRAIN: a peer of an older one never sends it. */
#define PROTO_DRAIN_VERSION	3
/* DRAIN: even if the pages do not fit in MemAvailable. */
#define PROTO_DRAIN_FORCE	0x1u

/* STATUS's backing_backend: where the pool writes back (version 7). */
#define PROTO_BACKING_NONE	0
#define PROTO_BACKING_FILE	1
#define PROTO_BACKING_NBD	2

/* DRAIN: restore every stored page into its client's memfd and release
 * every region (the daemon unregisters its range). The reply comes when
 * it is done. */
#define PROTO_DRAIN_FIELDS(F, S)					\
	F(uint32_t, flags, 3, 0)	/* PROTO_DRAIN_* */

/* The version that brought FORK, REGISTER's fork_token and DISCARD. */
#define PROTO_FORK_VERSION	6

/* FORK: copy the region starting at @addr for a child: the pages it
 * holds now are the child's, whatever the parent does next; fds: the
 * child's memfd, empty, as long as the region. The reply's token names
 * the copy until the child claims it (REGISTER, PROTO_REGION_FORKED),
 * for at most PROTO_FORK_CLAIM_MS. */
#define PROTO_FORK_CLAIM_MS	30000
#define PROTO_FORK_FIELDS(F, S)						\
	F(uint64_t, addr, 6, 0)

#define PROTO_FORK_REPLY_FIELDS(F, S)					\
	F(uint64_t, token, 6, 0)

/* DRAIN reply. A region that kept a page the drain could not restore
 * stays managed, with that page stored. */
#define PROTO_DRAIN_REPLY_FIELDS(F, S)					\
	F(uint64_t, bytes, 3, 0)	/* restored into the memfds */	\
	F(uint64_t, pages, 3, 0)	/* the same, in pages */	\
	F(uint64_t, regions, 3, 0)	/* released */			\
	F(uint64_t, clients, 3, 0)	/* processes they belonged to */ \
	F(uint64_t, regions_kept, 3, 0)	/* not released: still managed */ \
	F(uint64_t, pages_kept, 3, 0)	/* still stored in those */	\
	F(uint64_t, regions_left, 3, 0)	/* unregistered by their client, \
					 * or whose client exited, while \
					 * the drain ran */

/*
 * The messages with a flat layout: M(name, FIELDS, CHECK), where CHECK(m)
 * says whether a decoded message's values are in range (proto.c). Each
 * gets
 *   struct proto_<name>            the fields, as members;
 *   PROTO_SIZE_<name>              its newest layout's bytes;
 *   proto_size_<name>(version)     the bytes of a version's layout;
 *   proto_encode_<name>(buf, m, version)
 *       writes the fields of @version or older into @buf (at least
 *       PROTO_SIZE_<name> bytes) and returns their length;
 *   proto_decode_<name>(buf, len, m)
 *       0 or -EBADMSG, under the growth rule and the message's checks.
 */
#define PROTO_MESSAGES(M)						\
	M(hello, PROTO_HELLO_FIELDS, hello_ok)				\
	M(admin_hello, PROTO_ADMIN_HELLO_FIELDS, admin_hello_ok)	\
	M(hello_reply, PROTO_HELLO_REPLY_FIELDS, proto_no_check)	\
	M(register, PROTO_REGISTER_FIELDS, register_ok)			\
	M(register_reply, PROTO_REGISTER_REPLY_FIELDS, proto_no_check)	\
	M(unregister, PROTO_UNREGISTER_FIELDS, proto_no_check)		\
	M(set_limit, PROTO_SET_LIMIT_FIELDS, proto_no_check)		\
	M(advise, PROTO_ADVISE_FIELDS, advise_ok)			\
	M(stats_reply, PROTO_STATS_REPLY_FIELDS, proto_no_check)	\
	M(status_reply, PROTO_STATUS_REPLY_FIELDS, proto_no_check)	\
	M(version_reply, PROTO_VERSION_REPLY_FIELDS, proto_no_check)	\
	M(client_row, PROTO_CLIENT_ROW_FIELDS, proto_no_check)		\
	M(client_req, PROTO_CLIENT_REQ_FIELDS, client_req_ok)		\
	M(admin_limit, PROTO_ADMIN_LIMIT_FIELDS, admin_limit_ok)	\
	M(reclaim, PROTO_RECLAIM_FIELDS, reclaim_ok)			\
	M(bytes_reply, PROTO_BYTES_REPLY_FIELDS, proto_no_check)	\
	M(compact_reply, PROTO_COMPACT_REPLY_FIELDS,			\
	  proto_no_check)						\
	M(drain, PROTO_DRAIN_FIELDS, drain_ok)				\
	M(drain_reply, PROTO_DRAIN_REPLY_FIELDS, proto_no_check)	\
	M(fork, PROTO_FORK_FIELDS, proto_no_check)			\
	M(fork_reply, PROTO_FORK_REPLY_FIELDS, proto_no_check)

/* Expansions of a field list into members and sizes. */
#define PROTO_F_MEMBER(type, name, since, def)	type name;
#define PROTO_S_MEMBER(name, size, since)	char name[size];
#define PROTO_F_SIZE(type, name, since, def)	+ sizeof(type)
#define PROTO_S_SIZE(name, size, since)		+ (size)

#define PROTO_DECLARE(msg, FIELDS, CHECK)				\
	struct proto_##msg {						\
		FIELDS(PROTO_F_MEMBER, PROTO_S_MEMBER)			\
	};								\
	enum { PROTO_SIZE_##msg = 0 FIELDS(PROTO_F_SIZE, PROTO_S_SIZE) }; \
	size_t proto_size_##msg(uint16_t version);			\
	size_t proto_encode_##msg(uint8_t *buf,				\
				  const struct proto_##msg *m,		\
				  uint16_t version);			\
	int proto_decode_##msg(const uint8_t *buf, size_t len,		\
			       struct proto_##msg *m);

PROTO_MESSAGES(PROTO_DECLARE)

/* CLIENTS reply: its fixed part, then the rows. */
struct proto_clients_reply {
	PROTO_CLIENTS_REPLY_FIELDS(PROTO_F_MEMBER, PROTO_S_MEMBER)
	struct proto_client_row rows[PROTO_CLIENTS_PER_PAGE];
};

#define PROTO_SIZE_clients_reply					\
	(0 PROTO_CLIENTS_REPLY_FIELDS(PROTO_F_SIZE, PROTO_S_SIZE) +	\
	 PROTO_CLIENTS_SENT * PROTO_SIZE_client_row)

/* Encode at @version: the fixed part (@rows_off and @row_size set here),
 * then min(@count, PROTO_CLIENTS_SENT) rows (@more set if that left rows
 * out). Returns the length. */
size_t proto_encode_clients_reply(uint8_t *buf,
				  const struct proto_clients_reply *m,
				  uint16_t version);

/* Decode a reply that came in a frame of @version (where the rows start
 * depends on it): 0 or -EBADMSG. */
int proto_decode_clients_reply(const uint8_t *buf, size_t len,
			       struct proto_clients_reply *m,
			       uint16_t version);

/*
 * A bounded cursor over a payload, for the generated codecs (and tests
 * of the growth rule that generate their own): every put and get checks
 * the room left and latches @bad.
 * @w:     encoding: where to write, else NULL
 * @r:     decoding: where to read, else NULL
 * @off:   bytes written or read
 * @len:   bytes of the buffer or payload
 * @since: decoding: the version of the last field read
 * @ended: decoding: the payload ended where a version's layout ended;
 *         the fields after that take their defaults
 * @bad:   a put or get did not fit, or a value was refused
 */
struct proto_cur {
	uint8_t *w;
	const uint8_t *r;
	size_t off;
	size_t len;
	uint16_t since;
	bool ended;
	bool bad;
};

/* Write @n bytes of @v; latches @bad if they do not fit. */
void proto_cur_put(struct proto_cur *c, const void *v, size_t n);

/* Read a field of @n bytes, appended in version @since, into @v: true if
 * read; false if the payload ended at an older version's layout (the
 * caller sets the default) or was cut short (@bad latched). */
bool proto_cur_get(struct proto_cur *c, void *v, size_t n, uint16_t since);

/* As proto_cur_get() for a string field: also refuses one without a NUL,
 * and a missing one is "". */
void proto_cur_get_str(struct proto_cur *c, char *s, size_t n,
		       uint16_t since);

/* The end of a decode: 0, or -EBADMSG if @bad. */
int proto_cur_end(const struct proto_cur *c);

/* Expansions of a field list into a codec (for PROTO_CODECS). */
#define PROTO_F_PUT(type, name, since, def)				\
	if ((since) <= version)						\
		proto_cur_put(&c, &m->name, sizeof(type));
#define PROTO_S_PUT(name, size, since)					\
	if ((since) <= version)						\
		proto_cur_put(&c, m->name, (size));
#define PROTO_F_GET(type, name, since, def)				\
	if (!proto_cur_get(&c, &m->name, sizeof(type), (since)))	\
		m->name = (type)(def);
#define PROTO_S_GET(name, size, since)					\
	proto_cur_get_str(&c, m->name, (size), (since));
#define PROTO_F_VSIZE(type, name, since, def)				\
	+ ((since) <= version ? sizeof(type) : 0)
#define PROTO_S_VSIZE(name, size, since)				\
	+ ((since) <= version ? (size) : 0)

/*
 * PROTO_CODECS(msg, FIELDS, CHECK) - define proto_size_, proto_encode_
 * and proto_decode_<msg> from a field list; the decoder then refuses a
 * message for which CHECK(m) is false.
 */
#define PROTO_CODECS(msg, FIELDS, CHECK)				\
	size_t proto_size_##msg(uint16_t version)			\
	{								\
		return 0 FIELDS(PROTO_F_VSIZE, PROTO_S_VSIZE);		\
	}								\
	size_t proto_encode_##msg(uint8_t *buf,				\
				  const struct proto_##msg *m,		\
				  uint16_t version)			\
	{								\
		struct proto_cur c = { .w = buf,			\
				       .len = PROTO_SIZE_##msg };	\
									\
		FIELDS(PROTO_F_PUT, PROTO_S_PUT)			\
		return c.off;						\
	}								\
	int proto_decode_##msg(const uint8_t *buf, size_t len,		\
			       struct proto_##msg *m)			\
	{								\
		struct proto_cur c = { .r = buf, .len = len,		\
				       .since = PROTO_VERSION_MIN };	\
									\
		FIELDS(PROTO_F_GET, PROTO_S_GET)			\
		if (!c.bad && !CHECK(m))				\
			c.bad = true;					\
		return proto_cur_end(&c);				\
	}

/* A message being built or parsed: header, payload, fds. */
struct proto_msg {
	struct proto_hdr hdr;
	uint8_t payload[PROTO_MAX_PAYLOAD];
	int fds[PROTO_MAX_FDS];
	int nfds;
};

/*
 * Incremental reader of one message from a socket, for blocking and
 * non-blocking sockets alike: it never reads past the message it is
 * assembling, so file descriptors stay with their message.
 */
struct proto_reader {
	struct proto_msg msg;
	size_t have;		/* header + payload bytes received */
	uint16_t version;	/* the version every frame must carry (the
				 * connection's, set by the owner); 0: any
				 * this build speaks */
};

/* Start (or restart) assembling a message; closes fds not taken. */
void proto_reader_reset(struct proto_reader *r);

/*
 * proto_reader_feed() - read what the socket has of the current message
 * Return: 1 when the message is complete (take it from r->msg, then
 * proto_reader_reset()), 0 when more bytes are needed (EAGAIN), or -errno:
 * -ECONNRESET at end of stream, -EBADMSG for a bad magic, -EMSGSIZE for a
 * payload over PROTO_MAX_PAYLOAD or too many fds, -EPROTONOSUPPORT for a
 * version other than r->version (if 0: outside [PROTO_VERSION_MIN,
 * PROTO_VERSION]). After an error the
 * stream cannot be resynchronized: close the connection.
 */
int proto_reader_feed(struct proto_reader *r, int sock);

/* Close every fd a message holds and forget them. */
void proto_msg_close_fds(struct proto_msg *m);

/* Write header (of @version) + @payload of a message into @buf
 * (PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD bytes); returns the frame length, 0
 * if @len is too big. */
size_t proto_frame(uint8_t *buf, uint16_t version, uint16_t type,
		   uint32_t seq, const void *payload, size_t len);

/* Write a reply frame into @buf (as proto_frame()): status 0 and @body,
 * or a negative status and @errmsg (cut to PROTO_MAX_ERRMSG). Returns the
 * frame length, 0 if @body is too big. */
size_t proto_frame_reply(uint8_t *buf, uint16_t version, uint16_t type,
			 uint32_t seq, int32_t status, const void *body,
			 size_t len, const char *errmsg);

/*
 * proto_send() - send header (of @version) + payload (+ fds) as one
 * message
 * Blocks on a blocking socket; on a non-blocking one returns -EAGAIN if the
 * socket buffer cannot take the whole message now (nothing is sent then,
 * messages being far smaller than a socket buffer).
 * Return: 0 or -errno.
 */
int proto_send(int sock, uint16_t version, uint16_t type, uint32_t seq,
	       const void *payload, size_t len, const int *fds, int nfds);

/* Send a reply frame (see proto_frame_reply()), as proto_send(). */
int proto_send_reply(int sock, uint16_t version, uint16_t type,
		     uint32_t seq, int32_t status, const void *body,
		     size_t len, const char *errmsg);

/*
 * Split a reply payload: *@status, then the body (status 0) or the error
 * text (status < 0, NUL-terminated, at most PROTO_MAX_ERRMSG bytes).
 * Return: 0, or -EBADMSG if the payload is malformed.
 */
int proto_parse_reply(const struct proto_msg *m, int32_t *status,
		      const uint8_t **body, size_t *len, const char **errmsg);

/* Name of a message type for logs ("HELLO"), "?" if unknown. */
const char *proto_type_name(uint16_t type);

#endif /* UZSWAP_PROTO_H */
