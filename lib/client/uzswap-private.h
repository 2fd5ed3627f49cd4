/*
 * uzswap-private.h - what the files of libuzswap share: the connection
 * and region structures and the one way to make a request.
 *
 * Private to libuzswap (as libuv's src/uv-common.h): never installed.
 */
#ifndef UZSWAP_PRIVATE_H
#define UZSWAP_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/proto/proto.h"

#define DEFAULT_TIMEOUT_MS	5000

/*
 * struct region - a managed region of a connection
 * @next:    next region of the connection; written with atomic stores
 *           under uzswap->lock (read without it by the fork handler)
 * @addr:    start, page-aligned; immutable
 * @len:     bytes, a multiple of the page size; immutable
 * @memfd:   the memfd mapped at @addr; closed by whoever unlinks the region
 * @id:      the daemon's id of the region; immutable once linked
 * @adopted: made by uzswap_adopt(); immutable
 * @inherit: UZSWAP_ALLOC_INHERIT: a fork()'s child gets a copy; immutable
 * @fork_memfd, @fork_token, @fork_err: the copy FORK made for the child
 *           of the fork() under way (the fork handlers': the connection's
 *           lock is held from prepare to the end): its memfd (-1: none),
 *           token, or why there is none
 * @name:    as sent to the daemon; immutable
 */
struct region {
	struct region *next;
	uintptr_t addr;
	size_t len;
	int memfd;
	uint64_t id;
	bool adopted;
	bool inherit;
	int fork_memfd;
	uint64_t fork_token;
	int fork_err;
	char name[PROTO_NAME_MAX];
};

/*
 * struct uzswap - a connection to uzswapd
 * @lock:          serializes requests; protects @seq, @dead, @rd, @regions
 * @next:          next connection of the process; protected by conns_lock
 * @pid:           the process that connected; immutable, but in the
 *                 child of a fork() that inherits a region (the fork
 *                 handler makes the connection the child's)
 * @sock:          control socket, non-blocking; its number is immutable
 *                 (the fork handler closes it in the child): a new
 *                 stream after a restart takes the same number
 * @uffd:          the process's userfaultfd, -1 on an admin connection;
 *                 immutable (idem)
 * @uffd_mode:     UFFD_MODE_FULL or UFFD_MODE_USER_ONLY; immutable
 * @timeout_ms:    how long a request waits for its reply; immutable
 * @page_size:     immutable
 * @version:       protocol version of the connection, which every frame
 *                 carries: PROTO_VERSION_MIN until (ADMIN_)HELLO picks
 *                 one; immutable once the connection is returned
 * @default_limit: the daemon's default budget, bytes (0 = none); immutable
 * @own_limit:     the budget uzswap_set_limit() set last (0: none), which
 *                 a forked child asks for too; @lock
 * @seq:           sequence number of the last request; @lock
 * @dead:          0, or the -errno that broke the stream; @lock
 * @regions:       the regions; @lock (see struct region)
 * @rd:            the reply being read (@rd.version: the version a reply
 *                 must carry, 0 until HELLO's reply); @lock
 * @errmsg:        the daemon's explanation of its last refusal; @lock
 * @path:          the daemon's socket, connected again when the daemon
 *                 restarts; immutable
 * @forking:       a fork() is under way that the connection's inherited
 *                 regions were copied for (their copies in the regions);
 *                 the fork handlers', under conns_lock
 */
struct uzswap {
	pthread_mutex_t lock;
	struct uzswap *next;
	pid_t pid;
	int sock;
	int uffd;
	int uffd_mode;
	int timeout_ms;
	size_t page_size;
	uint16_t version;
	uint64_t default_limit;
	uint64_t own_limit;
	uint32_t seq;
	int dead;
	struct region *regions;
	struct proto_reader rd;
	char errmsg[PROTO_MAX_ERRMSG];
	char path[108];		/* sizeof(sockaddr_un.sun_path) */
	bool forking;
};

/* Whether @c may be used by the caller: 0, -EINVAL for no connection,
 * -ECHILD in a forked child. */
int uzswap__usable(const struct uzswap *c);

/*
 * uzswap__call() - one request and its reply, under the connection's
 * lock, once uzswap__usable() allows it
 * @body:       where a successful reply's body goes, @cap bytes; its
 *              length in *@blen
 * @timeout_ms: how long to wait for the reply; 0: the connection's own
 * @why:        if @why_len, the daemon's explanation of a refusal ("" if
 *              none)
 * Return: -EINVAL or -ECHILD (see uzswap__usable()), the transport
 * error (-ETIMEDOUT, -ECONNRESET, ...), else the daemon's status (0 or
 * -errno).
 */
int uzswap__call(struct uzswap *c, uint16_t type, const uint8_t *payload,
		 size_t len, const int *fds, int nfds, uint8_t *body,
		 size_t cap, size_t *blen, int timeout_ms, char *why,
		 size_t why_len);

#endif /* UZSWAP_PRIVATE_H */
