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
 * Versions. A client sends HELLO with the range of versions it speaks; the
 * daemon answers with the one it picked, and every later header carries
 * it. A daemon refuses a header whose version it does not speak with
 * -EPROTONOSUPPORT, and a malformed message with -EBADMSG.
 *
 * Codecs. Each message has a plain struct and proto_encode_*() /
 * proto_decode_*(), which never read or write past the buffer and reject
 * truncated payloads, trailing bytes, unterminated strings and values out
 * of range with -EBADMSG.
 */
#ifndef UZSWAP_PROTO_H
#define UZSWAP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAGIC		0x55a5f00du
#define PROTO_VERSION		1	/* the newest version this build speaks */
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
	PROTO_TYPE_END,
};

struct proto_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t seq;
	uint32_t len;		/* payload bytes */
};

/* HELLO: the first message of a connection. */
struct proto_hello {
	uint16_t min_version;
	uint16_t max_version;
	uint32_t uffd_mode;	/* 0 full, 1 user-mode only */
	int32_t uffd_fdnum;	/* the uffd's number in the client's table */
};

struct proto_hello_reply {
	uint16_t version;	/* the version picked */
	uint32_t page_size;
	uint64_t default_limit;	/* bytes; 0 = unlimited */
};

#define PROTO_REGION_ADOPTED 0x1u	/* pages already hold data */

struct proto_register {
	uint64_t addr;
	uint64_t len;
	uint32_t flags;		/* PROTO_REGION_* */
	int32_t memfd_fdnum;	/* the memfd's number in the client's table */
	char name[PROTO_NAME_MAX];
};

struct proto_register_reply {
	uint64_t region_id;
};

struct proto_unregister {
	uint64_t addr;
};

struct proto_set_limit {
	uint64_t bytes;		/* 0 = the daemon's default */
};

#define PROTO_ADVISE_COLD	1	/* evict now */
#define PROTO_ADVISE_WILLNEED	2	/* bring back ahead of use */

struct proto_advise {
	uint64_t addr;
	uint64_t len;
	uint32_t advice;	/* PROTO_ADVISE_* */
};

/* STATS reply: counters of the calling process. */
struct proto_stats_reply {
	uint64_t resident_bytes;
	uint64_t limit_bytes;
	uint64_t registered_bytes;
	uint64_t stored_pages;
	uint64_t compressed_bytes;
	uint64_t faults;
	uint64_t evictions;
	uint64_t regions;
};

/* STATUS reply: the daemon's totals (an admin request). */
struct proto_status_reply {
	uint64_t clients;		/* client processes */
	uint64_t registered_bytes;
	uint64_t resident_bytes;
	uint64_t resident_limit;	/* all clients; 0 = none */
	uint64_t default_limit;		/* per client; 0 = none */
	uint64_t stored_pages;		/* compressed, raw and same-filled */
	uint64_t same_pages;
	uint64_t raw_pages;
	uint64_t payload_bytes;		/* bytes of the pool's objects */
	uint64_t pool_bytes;		/* pool pages in use */
	uint64_t evictions;		/* pages evicted so far */
	uint64_t loads;			/* pages brought back so far */
	uint64_t faults;
	uint64_t store_failures;	/* pages the pool could not take */
	uint64_t read_ahead;		/* pages brought back ahead of use */
	uint64_t pool_limit;		/* bytes; 0 = none */
	uint64_t pool_full;		/* 1 while the pool refuses pages */
	uint64_t written_back_pages;	/* pages now in the backing file */
	uint64_t writebacks;		/* pages written back so far */
	uint64_t writeback_failures;	/* objects the file did not take */
	uint64_t backing_bytes;		/* bytes stored in the backing file */
	uint64_t backing_limit;		/* its cap; 0 = no backing file */
	uint64_t uptime_sec;		/* seconds since the daemon started */
	uint64_t fault_rate_milli;	/* faults/s over the last 10 s, x1000 */
	uint64_t compressor;		/* 0 lz4, 1 zstd (for new pages) */
	uint64_t zstd_level;
};

/* DAEMON_VERSION reply. */
#define PROTO_RELEASE_MAX 32
struct proto_version_reply {
	uint16_t proto_min;	/* protocol versions the daemon speaks */
	uint16_t proto_max;
	char release[PROTO_RELEASE_MAX];	/* "0.1.0", NUL-terminated */
};

/* One client process, as CLIENT and CLIENTS describe it. */
#define PROTO_COMM_MAX 16
struct proto_client_row {
	int32_t pid;
	uint32_t uid;
	char comm[PROTO_COMM_MAX];	/* NUL-terminated */
	uint32_t regions;
	uint64_t registered_bytes;
	uint64_t resident_bytes;
	uint64_t limit_bytes;		/* the budget in force; 0 = none */
	uint64_t own_limit_bytes;	/* its own setting; 0 = the default */
	uint64_t stored_pages;		/* all kinds, written back too */
	uint64_t pooled_pages;		/* those compressed in the pool */
	uint64_t compressed_bytes;	/* pool bytes those take */
	uint64_t faults;
	uint64_t evictions;
};

/* CLIENT request; CLIENTS request (rows of pids above @pid, 0: from the
 * first). */
struct proto_client_req {
	int32_t pid;
};

/* CLIENTS reply: up to PROTO_CLIENTS_PER_PAGE rows in pid order; @more
 * says that rows of higher pids follow (ask again after the last pid). */
#define PROTO_CLIENTS_PER_PAGE 40
struct proto_clients_reply {
	uint32_t count;
	uint32_t more;
	struct proto_client_row rows[PROTO_CLIENTS_PER_PAGE];
};

/* ADMIN_LIMIT: which budget. */
#define PROTO_LIMIT_PID		0	/* @pid's own (0 = the default) */
#define PROTO_LIMIT_DEFAULT	1	/* clients without their own */
#define PROTO_LIMIT_GLOBAL	2	/* all clients together */

struct proto_admin_limit {
	uint32_t target;	/* PROTO_LIMIT_* */
	int32_t pid;		/* PROTO_LIMIT_PID only, else 0 */
	uint64_t bytes;		/* 0 = none (or the default) */
};

/* RECLAIM: evict @bytes (0: every resident page) from @pid (0: from
 * every client). The reply comes when it is done. */
struct proto_reclaim {
	int32_t pid;
	uint64_t bytes;
};

/* RECLAIM reply. */
struct proto_bytes_reply {
	uint64_t bytes;		/* evicted */
};

/* COMPACT reply. */
struct proto_compact_reply {
	uint64_t pages;		/* pool pages compacted */
	uint64_t pool_before;	/* pool bytes before and after */
	uint64_t pool_after;
};

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
};

/* Start (or restart) assembling a message; closes fds not taken. */
void proto_reader_reset(struct proto_reader *r);

/*
 * proto_reader_feed() - read what the socket has of the current message
 * Return: 1 when the message is complete (take it from r->msg, then
 * proto_reader_reset()), 0 when more bytes are needed (EAGAIN), or -errno:
 * -ECONNRESET at end of stream, -EBADMSG for a bad magic, -EMSGSIZE for a
 * payload over PROTO_MAX_PAYLOAD or too many fds, -EPROTONOSUPPORT for a
 * version outside [PROTO_VERSION_MIN, PROTO_VERSION]. After an error the
 * stream cannot be resynchronized: close the connection.
 */
int proto_reader_feed(struct proto_reader *r, int sock);

/* Close every fd a message holds and forget them. */
void proto_msg_close_fds(struct proto_msg *m);

/* Write header + @payload of a message into @buf (PROTO_HDR_SIZE +
 * PROTO_MAX_PAYLOAD bytes); returns the frame length, 0 if @len is too
 * big. */
size_t proto_frame(uint8_t *buf, uint16_t type, uint32_t seq,
		   const void *payload, size_t len);

/* Write a reply frame into @buf (as proto_frame()): status 0 and @body,
 * or a negative status and @errmsg (cut to PROTO_MAX_ERRMSG). Returns the
 * frame length, 0 if @body is too big. */
size_t proto_frame_reply(uint8_t *buf, uint16_t type, uint32_t seq,
			 int32_t status, const void *body, size_t len,
			 const char *errmsg);

/*
 * proto_send() - send header + payload (+ fds) as one message
 * Blocks on a blocking socket; on a non-blocking one returns -EAGAIN if the
 * socket buffer cannot take the whole message now (nothing is sent then,
 * messages being far smaller than a socket buffer).
 * Return: 0 or -errno.
 */
int proto_send(int sock, uint16_t type, uint32_t seq, const void *payload,
	       size_t len, const int *fds, int nfds);

/* Send a reply frame (see proto_frame_reply()), as proto_send(). */
int proto_send_reply(int sock, uint16_t type, uint32_t seq, int32_t status,
		     const void *body, size_t len, const char *errmsg);

/*
 * Split a reply payload: *@status, then the body (status 0) or the error
 * text (status < 0, NUL-terminated, at most PROTO_MAX_ERRMSG bytes).
 * Return: 0, or -EBADMSG if the payload is malformed.
 */
int proto_parse_reply(const struct proto_msg *m, int32_t *status,
		      const uint8_t **body, size_t *len, const char **errmsg);

/* Codecs: encode returns the payload length (always fits
 * PROTO_MAX_PAYLOAD); decode returns 0 or -EBADMSG. */
size_t proto_encode_hello(uint8_t *buf, const struct proto_hello *m);
int proto_decode_hello(const uint8_t *buf, size_t len, struct proto_hello *m);
size_t proto_encode_hello_reply(uint8_t *buf,
				const struct proto_hello_reply *m);
int proto_decode_hello_reply(const uint8_t *buf, size_t len,
			     struct proto_hello_reply *m);
size_t proto_encode_register(uint8_t *buf, const struct proto_register *m);
int proto_decode_register(const uint8_t *buf, size_t len,
			  struct proto_register *m);
size_t proto_encode_register_reply(uint8_t *buf,
				   const struct proto_register_reply *m);
int proto_decode_register_reply(const uint8_t *buf, size_t len,
				struct proto_register_reply *m);
size_t proto_encode_unregister(uint8_t *buf,
			       const struct proto_unregister *m);
int proto_decode_unregister(const uint8_t *buf, size_t len,
			    struct proto_unregister *m);
size_t proto_encode_set_limit(uint8_t *buf, const struct proto_set_limit *m);
int proto_decode_set_limit(const uint8_t *buf, size_t len,
			   struct proto_set_limit *m);
size_t proto_encode_advise(uint8_t *buf, const struct proto_advise *m);
int proto_decode_advise(const uint8_t *buf, size_t len,
			struct proto_advise *m);
size_t proto_encode_stats_reply(uint8_t *buf,
				const struct proto_stats_reply *m);
int proto_decode_stats_reply(const uint8_t *buf, size_t len,
			     struct proto_stats_reply *m);
size_t proto_encode_status_reply(uint8_t *buf,
				 const struct proto_status_reply *m);
int proto_decode_status_reply(const uint8_t *buf, size_t len,
			      struct proto_status_reply *m);

size_t proto_encode_version_reply(uint8_t *buf,
				  const struct proto_version_reply *m);
int proto_decode_version_reply(const uint8_t *buf, size_t len,
			       struct proto_version_reply *m);
size_t proto_encode_client_req(uint8_t *buf, const struct proto_client_req *m);
int proto_decode_client_req(const uint8_t *buf, size_t len,
			    struct proto_client_req *m);
size_t proto_encode_client_row(uint8_t *buf,
			       const struct proto_client_row *m);
int proto_decode_client_row(const uint8_t *buf, size_t len,
			    struct proto_client_row *m);
size_t proto_encode_clients_reply(uint8_t *buf,
				  const struct proto_clients_reply *m);
int proto_decode_clients_reply(const uint8_t *buf, size_t len,
			       struct proto_clients_reply *m);
size_t proto_encode_admin_limit(uint8_t *buf,
				const struct proto_admin_limit *m);
int proto_decode_admin_limit(const uint8_t *buf, size_t len,
			     struct proto_admin_limit *m);
size_t proto_encode_reclaim(uint8_t *buf, const struct proto_reclaim *m);
int proto_decode_reclaim(const uint8_t *buf, size_t len,
			 struct proto_reclaim *m);
size_t proto_encode_bytes_reply(uint8_t *buf,
				const struct proto_bytes_reply *m);
int proto_decode_bytes_reply(const uint8_t *buf, size_t len,
			     struct proto_bytes_reply *m);
size_t proto_encode_compact_reply(uint8_t *buf,
				  const struct proto_compact_reply *m);
int proto_decode_compact_reply(const uint8_t *buf, size_t len,
			       struct proto_compact_reply *m);

/* Name of a message type for logs ("HELLO"), "?" if unknown. */
const char *proto_type_name(uint16_t type);

#endif /* UZSWAP_PROTO_H */
