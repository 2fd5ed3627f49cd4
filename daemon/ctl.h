/*
 * ctl.h - the control server: the listening socket, the client
 * connections, and the one table that maps message types to handlers.
 *
 * Private to uzswapd. Loop thread only.
 */
#ifndef UZSWAPD_CTL_H
#define UZSWAPD_CTL_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/common/list.h"
#include "lib/proto/proto.h"

struct uzswapd;
struct mm_slot;
struct uffd_ctx;
struct reclaim_job;
struct client_teardown;
struct work;

/*
 * struct ctl_conn - one control connection; loop thread only. Its memory
 * holds @poll, so it is freed in the poll's close callback.
 * @d:      the daemon
 * @poll:   libuv poll on @fd
 * @fd:     the accepted socket
 * @pid:    the peer process, from SO_PEERCRED (never from a message)
 * @uid:    the peer's user, from SO_PEERCRED
 * @pidfd:  the peer's pidfd from SO_PEERPIDFD, -1 if not given (yet to
 *          be handed to the mm_slot)
 * @rd:     the message being received; @rd.version is the connection's
 *          protocol version, which every frame both ways carries: 0
 *          until the first frame, whose version it takes, then the one
 *          HELLO picked
 * @out:    the reply being sent: while it waits for room in the socket
 *          (a peer that does not read), no request is read
 * @out_len: bytes in @out, 0 when nothing waits
 * @out_off: bytes of @out already sent
 * @hello:  HELLO or ADMIN_HELLO succeeded
 * @slot:   the peer's mm_slot once HELLO succeeded (holds a reference)
 * @ctx:    the peer's uffd once HELLO succeeded
 * @node:   entry of @slot's connection list
 * @all:    entry of the daemon's connection list
 * @job:    a RECLAIM job whose reply is awaited (no request is read
 *          meanwhile), NULL if none
 * @work:   the worker's work (ADVISE, UNREGISTER) whose reply is awaited
 *          (no request is read meanwhile), NULL if none
 * @teardown: what client_detach() will queue, set up by HELLO, so that
 *          a teardown never fails for want of memory; NULL before
 * @drained: starts of regions of @ctx a drain took (drain.h): UNREGISTER
 *          of one it released is answered -ENOENT; @nr_drained entries
 * @deferred_type, @deferred_seq: the request that reply answers
 * @closing: being closed
 */
struct ctl_conn {
	struct uzswapd *d;
	uv_poll_t poll;
	int fd;
	pid_t pid;
	uid_t uid;
	int pidfd;
	struct proto_reader rd;
	uint8_t out[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD];
	size_t out_len;
	size_t out_off;
	bool hello;
	struct mm_slot *slot;
	struct uffd_ctx *ctx;
	struct list_node node;
	struct list_node all;
	struct reclaim_job *job;
	struct work *work;
	struct client_teardown *teardown;
	unsigned long *drained;
	unsigned int nr_drained;
	uint16_t deferred_type;
	uint32_t deferred_seq;
	bool closing;
};

/* What a handler answers: a body, or an error text for the reply. */
struct ctl_reply {
	uint8_t body[PROTO_MAX_PAYLOAD - sizeof(int32_t)];
	size_t len;
	const char *errmsg;
};

/* Listen on @fd (already bound and listening). Once its loop handle is
 * set up (d->listen_fd is @fd) the socket is the daemon's, closed by
 * ctl_stop_listening(), even if a later step fails; before that it stays
 * the caller's. Return: 0 or -errno. */
int ctl_listen(struct uzswapd *d, int fd);

/* Stop accepting and close the listening socket. */
void ctl_stop_listening(struct uzswapd *d);

/* Send the reply of a deferred request (status 0 with @rep's body, or
 * -errno with @rep's message) and read requests again. Loop thread. */
void ctl_conn_complete(struct ctl_conn *c, int status,
		       const struct ctl_reply *rep);

/* Close a connection: its regions are unregistered (the client keeps its
 * memory) and its uffd released, by a worker (see client_detach()); the
 * work of its last request goes on without it. */
void ctl_conn_close(struct ctl_conn *c);

#endif /* UZSWAPD_CTL_H */
