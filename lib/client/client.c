/*
 * client.c - libuzswap: the connection to uzswapd and the managed regions
 *
 * A connection (struct uzswap) is a unix stream socket to the daemon's
 * control socket plus the process's userfaultfd. uzswap_connect() opens
 * both, sends HELLO with the uffd attached (SCM_RIGHTS) and keeps its own
 * copy of the uffd for the life of the connection: if the daemon dies, a
 * touch of an evicted page then blocks in the kernel instead of reading
 * zeros, because the uffd is still registered and nobody resolves the fault.
 *
 * Requests. Every call is one request and one reply, made under the
 * connection's lock, with the framing and codecs of lib/proto. The socket
 * is non-blocking and the wait for the reply is a poll() against a
 * deadline (5 s, or $UZSWAP_TIMEOUT_MS): a hung daemon costs a caller
 * ETIMEDOUT, never a hang. A timeout does not break the stream: the
 * reader keeps the half-read message in the connection, and a reply that
 * arrives after its request gave up is recognized by its sequence number
 * and dropped by the next request. A malformed or oversized message marks
 * the connection dead; every later request then fails at once with the
 * same error.
 *
 * Restarts. When the daemon goes away (its end of the stream closes: a
 * crash, a restart, an upgrade), the library connects again by itself,
 * within the request's own timeout (a restart takes well under a second;
 * meanwhile the socket refuses or does not exist): a client connection
 * sends HELLO with PROTO_HELLO_RESUME and its uffd again, and the new
 * daemon, which took the process's regions over, carries on with them;
 * an admin connection negotiates again. A stream the daemon closed
 * between two requests (a stop hands over that way) is noticed before the
 * next one is sent, which then goes to the new daemon, whatever it is. A
 * request left unanswered by a daemon that went away is asked again if
 * asking twice does what asking once does; otherwise (REGISTER, a
 * RECLAIM...) it fails with -ECONNRESET, its outcome unknown, and the
 * next request goes to the new daemon. A daemon that holds no state of
 * the process refuses the resumption: the connection is then dead with
 * -ESTALE, said once on stderr, because its evicted pages are gone.
 *
 * Regions. A managed region is a memfd mapped MAP_SHARED, MADV_NOHUGEPAGE
 * and MADV_DONTFORK (why: DESIGN.md, "The memory model"), registered with
 * the daemon by REGISTER with the memfd attached. uzswap_alloc() maps a new
 * memfd anywhere. uzswap_adopt() takes a private anonymous range in place:
 *   1. check /proc/self/maps: the range is wholly "rw-p" with no file;
 *   2. copy its non-zero pages into a new memfd with pwrite() (zero pages
 *      stay holes, which cost nothing and read as zeros);
 *   3. map the memfd at a temporary address, madvise it there, then
 *      mremap(MREMAP_FIXED) it over the range: one atomic replacement, the
 *      range is never unmapped, and a refused madvise leaves it untouched;
 *   4. REGISTER with PROTO_REGION_ADOPTED.
 * Writes by other threads between steps 2 and 3 are lost; the header says
 * so.
 *
 * A drain (uzswap_admin_drain()) releases regions behind the library's
 * back: the daemon unregisters their ranges, and the memory stays mapped,
 * plain shared memory. The library learns it only when it frees one: the
 * daemon answers that UNREGISTER -ENOENT, and the region is unmapped and
 * its memfd closed as any other.
 *
 * Failures. Every step is undone in reverse order. The delicate case is a
 * REGISTER that got no answer (timeout, daemon gone): the daemon may still
 * register the range later, and may even have evicted pages of it already.
 * So:
 * - alloc: the range is replaced by a PROT_NONE reservation (no memory) so
 *   that its addresses are not reused, then an UNREGISTER is sent; once its
 *   reply arrives the daemon has settled both requests and the reservation
 *   is unmapped. Without a reply the reservation stays: a few pages of
 *   address space, never memory.
 * - adopt: the contents are copied out through the managed mapping (a
 *   fault on an evicted page is served by the daemon), into a fresh
 *   anonymous mapping that is then mremap()ed over the range, and the
 *   UNREGISTER follows. After a definite refusal the daemon never touched
 *   the memfd, which is then copied with pread() over its data extents.
 *   If even that is impossible (no memory for the copy), the range stays a
 *   shared mapping of the memfd: the contents are intact, but it is no
 *   region of the connection.
 *
 * fork(). A connection belongs to the process that made it (@pid). In a
 * child, calls fail with -ECHILD, and a pthread_atfork() child handler
 * closes the child's copies of the socket, the uffd and the memfds: the
 * child cannot corrupt the parent's stream, and does not keep the parent's
 * regions' memory alive after the parent exits. It walks a global list of
 * connections under conns_lock, which the prepare handler takes, and each
 * connection's region list without its lock (another thread of the parent
 * may hold it forever from the child's point of view): list links are
 * therefore written with single atomic stores, so that the child's
 * snapshot is a consistent list.
 *
 * Inherited regions (UZSWAP_ALLOC_INHERIT) are the exception: the child
 * gets a private copy of each, managed in its own name. The prepare
 * handler stops new inherited regions (fork_lock) and sends FORK for each
 * one with a new empty memfd, the child's; the daemon copies the region
 * into it (stored pages shared, not copied: fork.c) before it answers.
 * It holds no connection's lock past its own requests: another thread's
 * request may wait for it while holding an allocator's lock (a purge
 * from jemalloc's hook, under the preload library), which the
 * allocator's own fork handler takes after this one. In the child, the handler maps each copy's memfd
 * where the region was (the parent's mapping is MADV_DONTFORK: the child
 * never touches the parent's memfd), opens its own uffd, connects again
 * as a new client with the parent's budget and claims each copy with
 * REGISTER (PROTO_REGION_FORKED): the connection is the child's from
 * then on. The child handler allocates nothing (the program's heap may
 * be an inherited region, not mapped yet), and a child that cannot have
 * its copies exits at once with status UZSWAP_FORK_EXIT and a line on
 * stderr: it never runs on memory that is not its own.
 *
 * Locks: conns_lock, then a connection's lock, never the other way. A
 * connection's lock is held across a whole request, so for at most one
 * timeout; the slow parts of alloc and adopt (copy, mmap, madvise) run
 * without it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/common/fullio.h"
#include "lib/proto/proto.h"
#include "lib/uffd/uffd.h"
#include "uzswap-private.h"
#include "uzswap.h"

_Static_assert(UZSWAP_VERSION_MAJOR == RELEASE_MAJOR &&
	       UZSWAP_VERSION_MINOR == RELEASE_MINOR,
	       "uzswap.h's version is not the release's (configure.ac)");

/*****************
 * Structures
 *****************/

#define COPY_RUN_MAX		(1u << 20)	/* bytes per pwrite()/pread() */
#define RECONNECT_PAUSE_MS	20	/* between tries while nobody listens */

/* Every connection of the process, for the fork handler. */
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
/* Held for writing by the fork handlers, from prepare until the fork is
 * over; an inherited region is made under it for reading, tried, never
 * waited for (-EAGAIN): its maker may be an allocator's hook holding the
 * allocator's locks, which the allocator's own fork handler is about to
 * take. So every inherited region either is copied for the child, or is
 * made after the fork. */
static pthread_rwlock_t fork_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct uzswap *conns;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static atomic_bool mode_warned;

/*****************
 * Helpers
 *****************/

static bool in_child(const struct uzswap *c)
{
	return getpid() != c->pid;
}

int uzswap__usable(const struct uzswap *c)
{
	if (!c)
		return -EINVAL;
	return in_child(c) ? -ECHILD : 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Round @len up to a multiple of @ps; 0 if it overflows. */
static size_t page_round(size_t len, size_t ps)
{
	if (len > SIZE_MAX - (ps - 1))
		return 0;
	return (len + ps - 1) & ~(ps - 1);
}

static void *ptr_err(int err)
{
	errno = -err;
	return NULL;
}

/* Whether a page holds only zero bytes. Reads it (an untouched anonymous
 * page reads as the shared zero page and costs nothing). */
static bool page_is_zero(const void *p, size_t ps)
{
	const unsigned long *w = p;
	size_t i, j, n = ps / sizeof(*w);

	for (i = 0; i < n; i += 8) {
		unsigned long acc = 0;

		for (j = 0; j < 8; j++)
			acc |= w[i + j];
		if (acc)
			return false;
	}
	return true;
}

/*****************
 * Requests
 *****************/

/*
 * send_msg() - send one request before @deadline
 * Called with c->lock held. A full socket buffer (the daemon not reading)
 * is waited for with poll().
 */
static int send_msg(struct uzswap *c, uint16_t type, const uint8_t *payload,
		    size_t len, const int *fds, int nfds, int64_t deadline)
{
	struct pollfd pfd = { .fd = c->sock, .events = POLLOUT };
	int64_t left;
	int ret;

	for (;;) {
		ret = proto_send(c->sock, c->version, type, c->seq, payload,
				 len, fds, nfds);
		if (ret != -EAGAIN && ret != -EINTR)
			return ret;
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * recv_reply() - wait until @deadline for the reply to request c->seq
 * Called with c->lock held. Replies to earlier requests that timed out are
 * dropped. On success the reply is in c->rd.msg; the caller resets the
 * reader when done with it.
 */
static int recv_reply(struct uzswap *c, uint16_t type, int64_t deadline)
{
	struct pollfd pfd = { .fd = c->sock, .events = POLLIN };
	struct proto_msg *m = &c->rd.msg;
	int64_t left;
	int ret;

	for (;;) {
		ret = proto_reader_feed(&c->rd, c->sock);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		if (ret == 1) {
			if (m->hdr.seq == c->seq) {
				/* we expect no fds in a reply */
				proto_msg_close_fds(m);
				if (m->hdr.type != (type | PROTO_REPLY))
					return -EBADMSG;
				return 0;
			}
			proto_reader_reset(&c->rd);	/* stale */
			continue;
		}
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * transact_once() - one request and its reply, on the stream as it is
 * @status: the daemon's answer, 0 or -errno
 * @body:   where to copy the reply body (status 0), @body_size bytes; a
 *          longer body is -EBADMSG (a shorter one is for the decoder to
 *          judge, through *@body_len)
 * @deadline: when to stop waiting for the reply (now_ms())
 *
 * Called with c->lock held; holds it until @deadline at most. A refusal's
 * explanation from the daemon is kept in c->errmsg.
 * Return: 0 when the daemon answered (its answer in *@status), or -errno
 * when it did not: -ETIMEDOUT (the stream stays usable), or the error that
 * broke the stream (kept in c->dead).
 */
static int transact_once(struct uzswap *c, uint16_t type,
			 const uint8_t *payload, size_t len, const int *fds,
			 int nfds, int32_t *status, uint8_t *body,
			 size_t body_size, size_t *body_len, int64_t deadline)
{
	const uint8_t *rbody;
	const char *errmsg;
	size_t rlen;
	int ret;

	if (c->dead)
		return c->dead;
	c->seq++;
	ret = send_msg(c, type, payload, len, fds, nfds, deadline);
	if (ret == -ETIMEDOUT)
		return ret;	/* nothing was sent: the stream is intact */
	if (ret)
		goto out_dead;
	ret = recv_reply(c, type, deadline);
	if (ret == -ETIMEDOUT)
		return ret;
	if (ret)
		goto out_dead;
	ret = proto_parse_reply(&c->rd.msg, status, &rbody, &rlen, &errmsg);
	if (!ret && errmsg)
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", errmsg);
	if (!ret && *status == 0) {
		if (rlen > body_size) {
			ret = -EBADMSG;
		} else {
			if (rlen)
				memcpy(body, rbody, rlen);
			if (body_len)
				*body_len = rlen;
		}
	}
	proto_reader_reset(&c->rd);
	return ret;

out_dead:
	c->dead = ret;
	return ret;
}

/* Whether @err means the daemon went away: its end of the stream closed. */
static bool daemon_gone(int err)
{
	return err == -ECONNRESET || err == -EPIPE;
}

/* Whether a request of @type left unanswered by a daemon that went away
 * may be asked of its successor: asking twice does what asking once does. */
static bool idempotent(uint16_t type)
{
	switch (type) {
	case PROTO_SET_LIMIT:
	case PROTO_ADVISE:
	case PROTO_STATS:
	case PROTO_STATUS:
	case PROTO_DAEMON_VERSION:
	case PROTO_CLIENTS:
	case PROTO_CLIENT:
	case PROTO_ADMIN_LIMIT:
	case PROTO_UNREGISTER:	/* see uzswap_free() */
		return true;
	default:
		return false;
	}
}

static int reconnect(struct uzswap *c, int64_t deadline);

/* Whether the daemon closed its end of @c's stream since the last reply
 * (it stopped, handing its clients over): then a request would be lost
 * unsent, and the successor is asked instead. A reply still owed after a
 * timeout is data, not a hang-up: it does not count. */
static bool peer_closed(const struct uzswap *c)
{
	struct pollfd p = { .fd = c->sock, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/*
 * transact() - transact_once(), across a restart of the daemon: a stream
 * the daemon closed (seen by an earlier request, or now by peer_closed())
 * is connected again first (reconnect()); a request the
 * daemon left unanswered by going away is asked again of its successor if
 * it is idempotent(), else it fails with -ECONNRESET once the connection
 * is back. @timeout_ms bounds it all: a daemon that does not come back
 * in time is -ETIMEDOUT, one that will not resume the process -ESTALE.
 * c->lock held.
 */
static int transact(struct uzswap *c, uint16_t type, const uint8_t *payload,
		    size_t len, const int *fds, int nfds, int32_t *status,
		    uint8_t *body, size_t body_size, size_t *body_len,
		    int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int ret;

	if (!c->dead && peer_closed(c))
		c->dead = -ECONNRESET;
	if (daemon_gone(c->dead)) {
		ret = reconnect(c, deadline);
		if (ret)
			return ret;
	}
	ret = transact_once(c, type, payload, len, fds, nfds, status, body,
			    body_size, body_len, deadline);
	if (!daemon_gone(ret))
		return ret;
	ret = reconnect(c, deadline) ?: (idempotent(type) ? 0 : -ECONNRESET);
	if (ret)
		return ret;
	return transact_once(c, type, payload, len, fds, nfds, status, body,
			     body_size, body_len, deadline);
}

int uzswap__call(struct uzswap *c, uint16_t type, const uint8_t *payload,
		 size_t len, const int *fds, int nfds, uint8_t *body,
		 size_t cap, size_t *blen, int timeout_ms, char *why,
		 size_t why_len)
{
	int32_t status = 0;
	int ret = uzswap__usable(c);

	if (ret)
		return ret;
	pthread_mutex_lock(&c->lock);
	c->errmsg[0] = '\0';
	ret = transact(c, type, payload, len, fds, nfds, &status, body, cap,
		       blen, timeout_ms ? timeout_ms : c->timeout_ms);
	if (why_len)
		snprintf(why, why_len, "%s", c->errmsg);
	pthread_mutex_unlock(&c->lock);
	return ret ? ret : status;
}

static int call(struct uzswap *c, uint16_t type, const uint8_t *payload,
		size_t len, const int *fds, int nfds, uint8_t *body,
		size_t cap, size_t *blen)
{
	return uzswap__call(c, type, payload, len, fds, nfds, body, cap, blen,
			    0, NULL, 0);
}

/* A request whose reply has no body, with c->lock held: the transport
 * error, else the daemon's status. */
static int request(struct uzswap *c, uint16_t type, const uint8_t *payload,
		   size_t len, const int *fds, int nfds)
{
	uint8_t none[1];
	int32_t status = 0;
	size_t n;
	int ret;

	ret = transact(c, type, payload, len, fds, nfds, &status, none, 0,
		       &n, c->timeout_ms);
	return ret ? ret : status;
}

/*****************
 * Connection
 *****************/

static void atfork_register(void);

static int env_timeout_ms(void)
{
	const char *s = secure_getenv("UZSWAP_TIMEOUT_MS");
	char *end;
	long v;

	if (!s || !*s)
		return DEFAULT_TIMEOUT_MS;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return DEFAULT_TIMEOUT_MS;
	return (int)v;
}

/*
 * sock_connect() - connect to the daemon, waiting at most @timeout_ms for
 * room in its backlog (SO_SNDTIMEO bounds a unix stream connect).
 * Return: the socket, non-blocking and close-on-exec, or -errno.
 */
static int sock_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		goto out_errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			errno = ETIMEDOUT;
		goto out_errno;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto out_errno;
	return fd;

out_errno:
	ret = -errno;
	close(fd);
	return ret;
}

/* Take the reply to HELLO or ADMIN_HELLO: the version picked, which
 * every later frame carries, and the daemon's parameters. */
static int hello_reply_take(struct uzswap *c, const uint8_t *body,
			    size_t len)
{
	struct proto_hello_reply rep;
	int ret;

	ret = proto_decode_hello_reply(body, len, &rep);
	if (ret)
		return ret;
	if (rep.version < PROTO_VERSION_MIN || rep.version > PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (rep.page_size != c->page_size)
		return -EPROTO;
	c->version = rep.version;
	c->rd.version = rep.version;
	c->default_limit = rep.default_limit;
	return 0;
}

/* A handshake request on a fresh stream, c->lock held: the transport
 * error, else the daemon's status; the reply's body into @body. */
static int handshake(struct uzswap *c, uint16_t type, const uint8_t *buf,
		     size_t len, const int *fds, int nfds, uint8_t *body,
		     size_t *blen, int64_t deadline)
{
	int32_t status = 0;
	int ret;

	c->errmsg[0] = '\0';
	ret = transact_once(c, type, buf, len, fds, nfds, &status, body,
			    PROTO_MAX_PAYLOAD, blen, deadline);
	return ret ? ret : status;
}

/* HELLO: hand over the uffd, agree on a version, learn the parameters.
 * @flags: PROTO_HELLO_*. c->lock held. */
static int hello(struct uzswap *c, uint32_t flags, int64_t deadline)
{
	struct proto_hello h = {
		.min_version = PROTO_VERSION_MIN,
		.max_version = PROTO_VERSION,
		.uffd_mode = c->uffd_mode == UFFD_MODE_USER_ONLY ? 1 : 0,
		.uffd_fdnum = c->uffd,
		.flags = flags,
	};
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	/* framed at the oldest version, as every HELLO; flags make it the
	 * newest layout, which a daemon of version 1 refuses */
	len = proto_encode_hello(buf, &h, flags ? PROTO_VERSION : c->version);
	ret = handshake(c, PROTO_HELLO, buf, len, &c->uffd, 1, body, &len,
			deadline);
	return ret ? ret : hello_reply_take(c, body, len);
}

/* ADMIN_HELLO: agree on a version. A daemon of version 1 does not know
 * the request: the connection then stays at version 1. c->lock held. */
static int admin_hello(struct uzswap *c, int64_t deadline)
{
	struct proto_admin_hello h = {
		.min_version = PROTO_VERSION_MIN,
		.max_version = PROTO_VERSION,
	};
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	len = proto_encode_admin_hello(buf, &h, c->version);
	ret = handshake(c, PROTO_ADMIN_HELLO, buf, len, NULL, 0, body, &len,
			deadline);
	if (ret == -EOPNOTSUPP) {
		c->rd.version = c->version;
		return 0;
	}
	return ret ? ret : hello_reply_take(c, body, len);
}

/* Connect to @path, waiting until @deadline while nobody listens there (a
 * daemon restarting). Return: the socket, or -errno. */
static int sock_connect_until(const char *path, int64_t deadline)
{
	int64_t left;
	int fd;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		fd = sock_connect(path, (int)left);
		if (fd != -ECONNREFUSED && fd != -ENOENT)
			return fd;
		poll(NULL, 0, left < RECONNECT_PAUSE_MS ? (int)left :
							 RECONNECT_PAUSE_MS);
	}
}

/* One attempt of reconnect(). */
static int reconnect_once(struct uzswap *c, int64_t deadline)
{
	int fd = sock_connect_until(c->path, deadline), ret;

	if (fd < 0)
		return fd;
	ret = dup3(fd, c->sock, O_CLOEXEC) < 0 ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	proto_reader_reset(&c->rd);
	c->version = PROTO_VERSION_MIN;
	c->rd.version = 0;
	c->dead = 0;
	if (c->uffd < 0)
		return admin_hello(c, deadline);
	ret = hello(c, PROTO_HELLO_RESUME, deadline);
	if (ret == 0 || c->dead)
		return ret;
	/* the daemon answered, and will not carry on with this process */
	fprintf(stderr, "libuzswap: uzswapd restarted without this "
		"process's state (%s): its managed memory cannot be served\n",
		c->errmsg[0] ? c->errmsg : strerror(-ret));
	c->dead = -ESTALE;
	return -ESTALE;
}

/*
 * reconnect() - the daemon went away: a new stream to whatever daemon
 * serves the socket now, in place of the old one (same descriptor
 * number), and the handshake again: HELLO with RESUME for a client
 * connection, ADMIN_HELLO for an admin one. A stream that breaks during
 * the handshake met the old daemon on its way out: tried again until
 * @deadline. A refused resumption leaves the connection dead with
 * -ESTALE (see the top of this file).
 * c->lock held. Return: 0 or -errno (c->dead is set then).
 */
static int reconnect(struct uzswap *c, int64_t deadline)
{
	int ret;

	while (daemon_gone(ret = reconnect_once(c, deadline)) &&
	       now_ms() < deadline)
		poll(NULL, 0, RECONNECT_PAUSE_MS);
	return ret;
}

/* Link @c into the process's connections (for the fork handler). */
static void conns_link(struct uzswap *c)
{
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&conns_lock);
	c->next = conns;
	conns = c;
	pthread_mutex_unlock(&conns_lock);
}

/*
 * conn_open() - a connection with its socket connected, no uffd yet
 * @socket_path: as for uzswap_connect()
 * Return: the connection, or NULL with *@err set.
 */
static struct uzswap *conn_open(const char *socket_path, int *err)
{
	const char *path = socket_path;
	struct uzswap *c;

	if (!path) {
		path = secure_getenv("UZSWAP_SOCKET");
		if (!path || !*path)
			path = UZSWAP_DEFAULT_SOCKET;
	}
	if (strlen(path) >= sizeof(c->path)) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	strcpy(c->path, path);
	*err = -pthread_mutex_init(&c->lock, NULL);
	if (*err)
		goto out_free;
	c->pid = getpid();
	c->uffd = -1;
	c->version = PROTO_VERSION_MIN;
	c->timeout_ms = env_timeout_ms();
	c->page_size = (size_t)sysconf(_SC_PAGESIZE);
	c->sock = sock_connect(path, c->timeout_ms);
	if (c->sock >= 0)
		return c;
	*err = c->sock;
	pthread_mutex_destroy(&c->lock);
out_free:
	free(c);
	return NULL;
}

uzswap_t *uzswap_connect(const char *socket_path)
{
	struct uzswap *c;
	int ret;

	c = conn_open(socket_path, &ret);
	if (!c)
		return ptr_err(ret);
	c->uffd = uffd_open(&c->uffd_mode);
	if (c->uffd < 0) {
		ret = c->uffd;
		goto out_close_sock;
	}
	pthread_mutex_lock(&c->lock);
	ret = hello(c, 0, now_ms() + c->timeout_ms);
	pthread_mutex_unlock(&c->lock);
	if (ret)
		goto out_close_uffd;

	if (c->uffd_mode == UFFD_MODE_USER_ONLY &&
	    !atomic_exchange(&mode_warned, true))
		fprintf(stderr, "libuzswap: %s\n", uffd_mode_warning());
	conns_link(c);
	return c;

out_close_uffd:
	proto_reader_reset(&c->rd);
	close(c->uffd);
out_close_sock:
	close(c->sock);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return ptr_err(ret);
}

uzswap_t *uzswap_admin_connect(const char *socket_path)
{
	struct uzswap *c;
	int ret;

	c = conn_open(socket_path, &ret);
	if (!c)
		return ptr_err(ret);
	pthread_mutex_lock(&c->lock);
	ret = admin_hello(c, now_ms() + c->timeout_ms);
	pthread_mutex_unlock(&c->lock);
	if (ret) {
		proto_reader_reset(&c->rd);
		close(c->sock);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return ptr_err(ret);
	}
	conns_link(c);
	return c;
}

static void conns_unlink(struct uzswap *c)
{
	struct uzswap **pp;

	pthread_mutex_lock(&conns_lock);
	for (pp = &conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&conns_lock);
}

/*****************
 * Region list
 *****************/

/* Called with c->lock held. */
static void region_link(struct uzswap *c, struct region *r)
{
	r->next = c->regions;
	__atomic_store_n(&c->regions, r, __ATOMIC_RELEASE);
}

/* The region starting at @addr, unlinked; NULL if none. c->lock held. */
static struct region *region_unlink(struct uzswap *c, uintptr_t addr)
{
	struct region **pp, *r;

	for (pp = &c->regions; (r = *pp); pp = &r->next) {
		if (r->addr == addr) {
			__atomic_store_n(pp, r->next, __ATOMIC_RELEASE);
			return r;
		}
	}
	return NULL;
}

/* The region holding [addr, addr + len); NULL if none. c->lock held. */
static struct region *region_find(struct uzswap *c, uintptr_t addr,
				  size_t len)
{
	struct region *r;

	for (r = c->regions; r; r = r->next)
		if (addr >= r->addr && addr - r->addr < r->len &&
		    len <= r->len - (addr - r->addr))
			return r;
	return NULL;
}

/* A region's own memory is a mapping, not malloc()'s: making a region
 * allocates nothing from the program's heap, so an allocator may call
 * uzswap_alloc_flags() to grow (the preload library does, from
 * jemalloc's extent hook). */
static struct region *region_new(const char *name)
{
	struct region *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (r == MAP_FAILED)
		return NULL;
	r->memfd = -1;
	r->fork_memfd = -1;
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "anon");
	return r;
}

/* REGISTER @r (a fork's copy, claimed, if @r->fork_token) and learn its
 * id; @unsure as for region_register(). c->lock held. */
static int register_request(struct uzswap *c, struct region *r, bool *unsure)
{
	struct proto_register reg = {
		.addr = r->addr,
		.len = r->len,
		.flags = r->adopted ? PROTO_REGION_ADOPTED :
			 r->fork_token ? PROTO_REGION_FORKED : 0,
		.memfd_fdnum = r->memfd,
		.fork_token = r->fork_token,
	};
	struct proto_register_reply rep;
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	int32_t status = 0;
	size_t len;
	int ret;

	memcpy(reg.name, r->name, sizeof(reg.name));
	len = proto_encode_register(buf, &reg, c->version);
	*unsure = true;
	ret = transact(c, PROTO_REGISTER, buf, len, &r->memfd, 1, &status,
		       body, sizeof(body), &len, c->timeout_ms);
	if (ret)
		return ret;
	/* registered, but an unreadable id: unsure, so that it is taken back */
	ret = status ? status : proto_decode_register_reply(body, len, &rep);
	*unsure = !status && ret;
	if (ret == 0)
		r->id = rep.region_id;
	return ret;
}

/*
 * region_register() - REGISTER @r and link it to @c
 * @unsure: set when the daemon gave no usable answer, so that it may still
 *          register the range later (see "Failures" above); after a
 *          refusal it is clear, and the daemon did not touch the range.
 * Return: 0 or -errno.
 */
static int region_register(struct uzswap *c, struct region *r, bool *unsure)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = register_request(c, r, unsure);
	if (ret == 0)
		region_link(c, r);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* Whether the daemon has settled every earlier request, given what
 * region_forget() returned: it answered, or it closed the connection. */
static bool answered(int ret)
{
	return ret == 0 || ret == -ECONNRESET || ret == -EPIPE;
}

/* Send UNREGISTER for @addr. Return: 0 if the daemon answered (whatever
 * its answer), else -errno. */
static int region_forget(struct uzswap *c, uintptr_t addr)
{
	struct proto_unregister un = { .addr = addr };
	uint8_t buf[PROTO_MAX_PAYLOAD], none[1];
	int32_t status = 0;
	size_t len;
	int ret;

	pthread_mutex_lock(&c->lock);
	len = proto_encode_unregister(buf, &un, c->version);
	ret = transact(c, PROTO_UNREGISTER, buf, len, NULL, 0, &status, none,
		       0, &len, c->timeout_ms);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* region_map() at @addr with mmap()'s @flags (MAP_FIXED: in place). */
static void *region_map_at(struct region *r, void *addr, int flags)
{
	void *p;
	int err;

	p = mmap(addr, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | flags,
		 r->memfd, 0);
	if (p == MAP_FAILED)
		return p;
	/* Shmem THP would fill holes, fork would copy the mapping: both are
	 * mandatory (DESIGN.md); a kernel that refuses them gets no region. */
	if (madvise(p, r->len, MADV_NOHUGEPAGE) < 0 ||
	    madvise(p, r->len, MADV_DONTFORK) < 0) {
		err = errno;
		munmap(p, r->len);
		errno = err;
		return MAP_FAILED;
	}
	return p;
}

/*
 * region_map() - map @r's memfd at a new address with the mandatory
 * advice. Return: the address or MAP_FAILED with errno set.
 */
static void *region_map(struct region *r)
{
	return region_map_at(r, NULL, 0);
}

/* A new memfd for @r, named "uzswap:NAME" (shown in /proc/PID/maps as
 * "/memfd:uzswap:NAME (deleted)"): the descriptor or -errno. */
static int memfd_of(const struct region *r)
{
	char name[sizeof("uzswap:") + PROTO_NAME_MAX];

	snprintf(name, sizeof(name), "uzswap:%s", r->name);
	return memfd_region_create(name, r->len);
}

/* The memfd of @r (memfd_of()), kept in @r. */
static int region_memfd(struct region *r)
{
	int fd = memfd_of(r);

	if (fd >= 0)
		r->memfd = fd;
	return fd;
}

static void region_free(struct region *r)
{
	if (r->memfd >= 0)
		close(r->memfd);
	munmap(r, sizeof(*r));
}

/*****************
 * fork()
 *****************/

/* FORK's wait for its copy: the daemon stores the resident pages of the
 * region for the child before it answers, seconds for gigabytes. */
#define FORK_TIMEOUT_MS	(120 * 1000)

#define FORK_CHILD_EXIT_MSG "libuzswap: fork(): the child cannot have its " \
	"copy of region \"%s\" (%s); it exits with status %d\n"

/* Whether @c has a region a fork()'s child inherits. c->lock held, or
 * the fork handlers'. */
static bool conn_inherits(const struct uzswap *c)
{
	const struct region *r;

	for (r = c->regions; r; r = r->next)
		if (r->inherit)
			return true;
	return false;
}

/* FORK: the daemon copies @r into a new memfd for the child of the fork()
 * under way; @r->fork_memfd and @r->fork_token name the copy, or
 * @r->fork_err says why there is none. c->lock held. */
static void fork_copy_region(struct uzswap *c, struct region *r)
{
	struct proto_fork f = { .addr = r->addr };
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	struct proto_fork_reply rep;
	int32_t status = 0;
	size_t len;
	int ret;

	r->fork_token = 0;
	r->fork_memfd = memfd_of(r);
	ret = r->fork_memfd < 0 ? r->fork_memfd : 0;
	if (!ret) {
		len = proto_encode_fork(buf, &f, c->version);
		ret = transact(c, PROTO_FORK, buf, len, &r->fork_memfd, 1,
			       &status, body, sizeof(body), &len,
			       FORK_TIMEOUT_MS);
	}
	ret = ret ?: status ?: proto_decode_fork_reply(body, len, &rep);
	r->fork_err = ret;
	if (!ret) {
		r->fork_token = rep.token;
	} else if (r->fork_memfd >= 0) {
		/* no copy in it: the child must not run over it */
		close(r->fork_memfd);
		r->fork_memfd = -1;
	}
}

/* The parent's side of the fork is over: its copies of the child's
 * memfds go. */
static void fork_parent_done(struct uzswap *c)
{
	struct region *r;

	for (r = c->regions; r; r = r->next) {
		if (r->fork_memfd >= 0)
			close(r->fork_memfd);
		r->fork_memfd = -1;
		r->fork_token = 0;
	}
}

/* A child that inherits none of @c's regions: the parent's descriptors
 * go (see "fork()" at the top). */
static void fork_child_close(struct uzswap *c)
{
	struct region *r;

	if (c->sock >= 0)
		close(c->sock);
	if (c->uffd >= 0)
		close(c->uffd);
	c->sock = -1;
	c->uffd = -1;
	for (r = __atomic_load_n(&c->regions, __ATOMIC_ACQUIRE); r;
	     r = __atomic_load_n(&r->next, __ATOMIC_ACQUIRE)) {
		if (r->memfd >= 0)
			close(r->memfd);
		r->memfd = -1;
	}
}

/* In the child: @c keeps its inherited regions, each now over its
 * copy's memfd mapped in place; the others are the parent's alone (not
 * mapped here: MADV_DONTFORK) and are forgotten, not freed (nothing is
 * allocated or freed here). Return: 0, or the first copy's error. */
static int fork_child_regions(struct uzswap *c, const char **name)
{
	struct region **pp = &c->regions, *r;
	int ret = 0;

	while ((r = *pp)) {
		if (r->memfd >= 0)
			close(r->memfd);
		r->memfd = r->fork_memfd;
		r->fork_memfd = -1;
		if (!r->inherit) {
			*pp = r->next;
			continue;
		}
		pp = &r->next;
		if (ret)
			continue;
		*name = r->name;
		ret = r->fork_err ?: r->memfd < 0 || !r->fork_token ? -EBADF :
		      region_map_at(r, (void *)r->addr, MAP_FIXED) ==
				      MAP_FAILED ? -errno : 0;
	}
	return ret;
}

/* In the child: a uffd of its own and a new stream (on the same
 * descriptor numbers), HELLO as a new client, the parent's budget, and
 * each copy claimed. Return: 0 or -errno. */
static int fork_child_connect(struct uzswap *c, const char **name)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	struct proto_set_limit sl = { .bytes = c->own_limit };
	uint8_t buf[PROTO_MAX_PAYLOAD];
	struct region *r;
	bool unsure;
	int fd, ret;

	fd = uffd_open(&c->uffd_mode);
	if (fd < 0)
		return fd;
	ret = dup3(fd, c->uffd, O_CLOEXEC) < 0 ? -errno : 0;
	close(fd);
	fd = ret ? ret : sock_connect_until(c->path, deadline);
	if (fd < 0)
		return fd;
	ret = dup3(fd, c->sock, O_CLOEXEC) < 0 ? -errno : 0;
	close(fd);
	proto_reader_reset(&c->rd);
	c->version = PROTO_VERSION_MIN;
	c->rd.version = 0;
	c->dead = 0;
	ret = ret ?: hello(c, 0, deadline);
	if (!ret && c->own_limit)
		ret = request(c, PROTO_SET_LIMIT, buf,
			      proto_encode_set_limit(buf, &sl, c->version),
			      NULL, 0);
	for (r = c->regions; !ret && r; r = r->next) {
		*name = r->name;
		ret = register_request(c, r, &unsure);
	}
	return ret;
}

/* The child of a fork() that inherits regions of @c: the connection is
 * the child's, or the child exits. */
static void fork_child_resume(struct uzswap *c)
{
	const char *name = "";
	int ret;

	pthread_mutex_init(&c->lock, NULL);
	c->pid = getpid();
	ret = fork_child_regions(c, &name) ?: fork_child_connect(c, &name);
	if (!ret)
		return;
	fprintf(stderr, FORK_CHILD_EXIT_MSG, name, uzswap_strerror(ret),
		UZSWAP_FORK_EXIT);
	_exit(UZSWAP_FORK_EXIT);
}

/* Before fork(): the daemon copies each inherited region for the child;
 * the connections stay locked until the fork is over. */
static void atfork_prepare(void)
{
	struct uzswap *c;
	struct region *r;

	pthread_rwlock_wrlock(&fork_lock);
	pthread_mutex_lock(&conns_lock);
	for (c = conns; c; c = c->next) {
		if (in_child(c) || c->uffd < 0)
			continue;
		pthread_mutex_lock(&c->lock);
		c->forking = conn_inherits(c);
		for (r = c->regions; c->forking && r; r = r->next)
			if (r->inherit)
				fork_copy_region(c, r);
		pthread_mutex_unlock(&c->lock);
	}
}

static void atfork_parent(void)
{
	struct uzswap *c;

	for (c = conns; c; c = c->next) {
		if (!c->forking)
			continue;
		c->forking = false;
		pthread_mutex_lock(&c->lock);
		fork_parent_done(c);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&conns_lock);
	pthread_rwlock_unlock(&fork_lock);
}

static void atfork_child(void)
{
	struct uzswap *c;

	for (c = conns; c; c = c->next) {
		if (c->forking)
			fork_child_resume(c);
		else
			fork_child_close(c);
		c->forking = false;
	}
	pthread_mutex_unlock(&conns_lock);
	/* not unlocked: the child's thread is not the one that took it
	 * (glibc would take its unlock for a reader's), and it is alone */
	fork_lock = (pthread_rwlock_t)PTHREAD_RWLOCK_INITIALIZER;
}

static void atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/*****************
 * Adoption
 *****************/

/*
 * range_is_private_anon() - whether [start, end) is wholly private
 * anonymous read-write memory: "rw-p" entries of /proc/self/maps without a
 * file, contiguous. Named anonymous memory ("[anon:NAME]") qualifies; the
 * heap ("[heap]") and stacks do not.
 * Return: 0, -EINVAL, or -errno if the maps cannot be read.
 */
static int range_is_private_anon(uintptr_t start, uintptr_t end)
{
	uintptr_t next = start;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	while (next < end && getline(&line, &cap, f) > 0) {
		unsigned long lo, hi, ino;
		char perms[5], *path;
		int pos = 0;

		if (sscanf(line, "%lx-%lx %4s %*x %*x:%*x %lu %n", &lo, &hi,
			   perms, &ino, &pos) < 4 || !pos)
			break;
		if (hi <= next)
			continue;
		if (lo > next)
			break;		/* a hole in the range */
		path = line + pos;
		path[strcspn(path, "\n")] = '\0';
		if (strcmp(perms, "rw-p") || ino ||
		    (*path && strncmp(path, "[anon:", 6)))
			break;
		next = hi;
	}
	free(line);
	fclose(f);
	return next >= end ? 0 : -EINVAL;
}

/* Copy the non-zero pages of [src, src + len) into @fd at the same
 * offsets, in runs; zero pages stay holes. */
static int copy_to_memfd(int fd, const uint8_t *src, size_t len, size_t ps)
{
	size_t off = 0, run;
	int ret;

	while (off < len) {
		if (page_is_zero(src + off, ps)) {
			off += ps;
			continue;
		}
		run = ps;
		while (off + run < len && run < COPY_RUN_MAX &&
		       !page_is_zero(src + off + run, ps))
			run += ps;
		ret = fullio_pwrite(fd, src + off, run, (off_t)off);
		if (ret)
			return ret;
		off += run;
	}
	return 0;
}

/* Copy the data extents of memfd @fd into @dst (zero-filled, anonymous):
 * holes are zeros already and are skipped without allocating anything. */
static int copy_from_memfd(int fd, uint8_t *dst, size_t len)
{
	off_t data, hole, end = (off_t)len;
	size_t n;
	int ret;

	for (data = 0; data < end; data = hole) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		if (data >= end)
			return 0;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > end)
			hole = end;
		n = (size_t)(hole - data);
		ret = fullio_pread(fd, dst + data, n, data);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * region_restore() - turn the managed mapping of @r back into private
 * anonymous memory with the same contents, in place
 * @via_mapping: copy through the mapping (the daemon may have registered
 *               the range and evicted pages: its faults are served), else
 *               from the memfd (the daemon never touched it)
 *
 * Return: 0, or -errno with the range left as a shared mapping of the
 * memfd (contents intact).
 */
static int region_restore(struct region *r, size_t ps, bool via_mapping)
{
	uint8_t *src = (uint8_t *)r->addr, *tmp;
	size_t off;
	int ret;

	tmp = mmap(NULL, r->len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED)
		return -errno;
	if (via_mapping) {
		for (off = 0; off < r->len; off += ps)
			if (!page_is_zero(src + off, ps))
				memcpy(tmp + off, src + off, ps);
	} else {
		ret = copy_from_memfd(r->memfd, tmp, r->len);
		if (ret)
			goto out_unmap;
	}
	if (mremap(tmp, r->len, r->len, MREMAP_MAYMOVE | MREMAP_FIXED,
		   src) == MAP_FAILED) {
		ret = -errno;
		goto out_unmap;
	}
	return 0;

out_unmap:
	munmap(tmp, r->len);
	return ret;
}

/*****************
 * API Functions
 *****************/

void uzswap_disconnect(uzswap_t *c)
{
	struct region *r;

	if (!c)
		return;
	conns_unlink(c);
	if (in_child(c)) {
		/* The fork handler closed the descriptors; the regions are
		 * not in this process (MADV_DONTFORK) and the lock may be
		 * held by a thread that does not exist here: only free. */
		while ((r = c->regions)) {
			c->regions = r->next;
			region_free(r);
		}
		free(c);
		return;
	}

	/* Teardown order: for each region, UNREGISTER (the daemon stops
	 * serving it), then munmap; then the socket; the uffd last, so that
	 * no mapped region is ever left without its uffd. After one timeout
	 * the remaining regions are not waited for: the daemon drops them
	 * when it sees the socket close. */
	pthread_mutex_lock(&c->lock);
	while ((r = c->regions)) {
		__atomic_store_n(&c->regions, r->next, __ATOMIC_RELEASE);
		if (!c->dead) {
			struct proto_unregister un = { .addr = r->addr };
			uint8_t buf[PROTO_MAX_PAYLOAD];
			size_t len = proto_encode_unregister(buf, &un,
							     c->version);

			if (request(c, PROTO_UNREGISTER, buf, len, NULL, 0) ==
			    -ETIMEDOUT)
				c->dead = -ETIMEDOUT;
		}
		munmap((void *)r->addr, r->len);
		region_free(r);
	}
	proto_reader_reset(&c->rd);
	close(c->sock);
	if (c->uffd >= 0)
		close(c->uffd);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void *uzswap_alloc(uzswap_t *c, size_t len, const char *name)
{
	return uzswap_alloc_flags(c, len, name, 0);
}

/* uzswap_alloc_flags() once its arguments are checked. */
static void *alloc_region(struct uzswap *c, size_t len, const char *name,
			  bool inherit)
{
	struct region *r;
	bool unsure;
	void *p;
	int ret;

	r = region_new(name);
	if (!r)
		return ptr_err(-ENOMEM);
	r->len = len;
	r->inherit = inherit;
	ret = region_memfd(r);
	if (ret < 0)
		goto out_free;
	p = region_map(r);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto out_free;
	}
	r->addr = (uintptr_t)p;

	ret = region_register(c, r, &unsure);
	if (ret && !unsure)
		goto out_unmap;
	if (ret) {
		/* No answer: keep the addresses reserved until the daemon has
		 * settled REGISTER, so that it never registers someone else's
		 * memory at them. */
		if (mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
			goto out_unmap;
		if (answered(region_forget(c, r->addr)))
			munmap(p, len);
		goto out_free;
	}
	return p;

out_unmap:
	munmap(p, len);
out_free:
	region_free(r);
	return ptr_err(ret);
}

void *uzswap_alloc_flags(uzswap_t *c, size_t len, const char *name,
			 unsigned int flags)
{
	bool inherit = flags & UZSWAP_ALLOC_INHERIT;
	void *p;
	int ret;

	ret = uzswap__usable(c);
	if (ret)
		return ptr_err(ret);
	if (!len || (flags & ~UZSWAP_ALLOC_INHERIT))
		return ptr_err(-EINVAL);
	if (inherit && c->version < PROTO_FORK_VERSION)
		return ptr_err(-EOPNOTSUPP);
	len = page_round(len, c->page_size);
	if (!len)
		return ptr_err(-ENOMEM);
	if (!inherit)
		return alloc_region(c, len, name, false);
	/* not while a fork copies the inherited regions: see fork_lock */
	if (pthread_rwlock_tryrdlock(&fork_lock))
		return ptr_err(-EAGAIN);
	p = alloc_region(c, len, name, true);
	ret = errno;
	pthread_rwlock_unlock(&fork_lock);
	errno = ret;
	return p;
}

void *uzswap_adopt(uzswap_t *c, void *addr, size_t len, const char *name)
{
	uintptr_t start = (uintptr_t)addr;
	struct region *r;
	bool unsure;
	void *p;
	int ret;

	ret = uzswap__usable(c);
	if (ret)
		return ptr_err(ret);
	if (!addr || !len || start & (c->page_size - 1))
		return ptr_err(-EINVAL);
	len = page_round(len, c->page_size);
	if (!len || start + len < start)
		return ptr_err(-EINVAL);
	ret = range_is_private_anon(start, start + len);
	if (ret)
		return ptr_err(ret);

	r = region_new(name);
	if (!r)
		return ptr_err(-ENOMEM);
	r->addr = start;
	r->len = len;
	r->adopted = true;
	ret = region_memfd(r);
	if (ret < 0)
		goto out_free;
	ret = copy_to_memfd(r->memfd, addr, len, c->page_size);
	if (ret)
		goto out_free;
	p = region_map(r);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto out_free;
	}
	/* The atomic replacement: the range is never unmapped. */
	if (mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr) ==
	    MAP_FAILED) {
		ret = -errno;
		munmap(p, len);
		/* a failed move may have unmapped the target after all */
		if (range_is_private_anon(start, start + len))
			region_restore(r, c->page_size, false);
		goto out_free;
	}

	ret = region_register(c, r, &unsure);
	if (ret == 0)
		return addr;
	if (!unsure) {
		region_restore(r, c->page_size, false);
		goto out_free;
	}
	/* No answer: the daemon may have the range registered, and pages
	 * evicted; read them through the mapping, then tell it to forget. */
	if (region_restore(r, c->page_size, true) == 0)
		region_forget(c, r->addr);

out_free:
	region_free(r);
	return ptr_err(ret);
}

int uzswap_free(uzswap_t *c, void *addr)
{
	struct proto_unregister un = { .addr = (uintptr_t)addr };
	uint8_t buf[PROTO_MAX_PAYLOAD];
	struct region *r;
	size_t len;
	int ret;

	ret = uzswap__usable(c);
	if (ret)
		return ret;
	len = proto_encode_unregister(buf, &un, c->version);
	pthread_mutex_lock(&c->lock);
	r = region_unlink(c, (uintptr_t)addr);
	if (!r) {
		pthread_mutex_unlock(&c->lock);
		return -EINVAL;
	}
	ret = request(c, PROTO_UNREGISTER, buf, len, NULL, 0);
	pthread_mutex_unlock(&c->lock);
	munmap(addr, r->len);
	region_free(r);
	/*
	 * ENOENT: a drain released the region, which was plain memory.
	 * EINVAL: the daemon does not know it, which the library does: asked
	 * again of a successor, the UNREGISTER the dead daemon had finished
	 * (one it had not is finished by the successor, which took the
	 * region over with its memfd, still open here).
	 */
	return ret == -ENOENT || ret == -EINVAL ? 0 : ret;
}

int uzswap_set_limit(uzswap_t *c, uint64_t resident_bytes)
{
	struct proto_set_limit sl = { .bytes = resident_bytes };
	uint8_t buf[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	ret = uzswap__usable(c);
	if (ret)
		return ret;
	len = proto_encode_set_limit(buf, &sl, c->version);
	pthread_mutex_lock(&c->lock);
	ret = request(c, PROTO_SET_LIMIT, buf, len, NULL, 0);
	if (ret == 0)
		c->own_limit = resident_bytes;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* ADVISE @advice (PROTO_ADVISE_*) over a range of a region of @c. */
static int advise(struct uzswap *c, void *addr, size_t len, uint32_t advice)
{
	struct proto_advise adv = {
		.addr = (uintptr_t)addr,
		.advice = advice,
	};
	uint8_t buf[PROTO_MAX_PAYLOAD];
	size_t n;
	int ret;

	ret = uzswap__usable(c);
	if (ret)
		return ret;
	if (!len || (uintptr_t)addr & (c->page_size - 1))
		return -EINVAL;
	adv.len = page_round(len, c->page_size);
	if (!adv.len)
		return -EINVAL;
	n = proto_encode_advise(buf, &adv, c->version);
	pthread_mutex_lock(&c->lock);
	if (!region_find(c, (uintptr_t)addr, adv.len))
		ret = -EINVAL;
	else
		ret = request(c, PROTO_ADVISE, buf, n, NULL, 0);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int uzswap_advise(uzswap_t *c, void *addr, size_t len, int advice)
{
	int ret = uzswap__usable(c);

	if (ret)
		return ret;
	if (advice != UZSWAP_ADVISE_COLD && advice != UZSWAP_ADVISE_WILLNEED)
		return -EINVAL;
	return advise(c, addr, len, advice == UZSWAP_ADVISE_COLD ?
				    PROTO_ADVISE_COLD : PROTO_ADVISE_WILLNEED);
}

int uzswap_discard(uzswap_t *c, void *addr, size_t len)
{
	int ret = uzswap__usable(c);

	if (ret)
		return ret;
	if (c->version < PROTO_FORK_VERSION)
		return -EOPNOTSUPP;
	return advise(c, addr, len, PROTO_ADVISE_DISCARD);
}

int uzswap_stats(uzswap_t *c, struct uzswap_stats *st)
{
	struct proto_stats_reply rep;
	uint8_t body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	if (!st)
		return -EINVAL;
	ret = call(c, PROTO_STATS, NULL, 0, NULL, 0, body, sizeof(body), &len);
	if (ret)
		return ret;
	ret = proto_decode_stats_reply(body, len, &rep);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	st->resident_bytes = rep.resident_bytes;
	st->limit_bytes = rep.limit_bytes;
	st->registered_bytes = rep.registered_bytes;
	st->stored_pages = rep.stored_pages;
	st->compressed_bytes = rep.compressed_bytes;
	st->faults = rep.faults;
	st->evictions = rep.evictions;
	st->regions = rep.regions;
	return 0;
}

const char *uzswap_strerror(int err)
{
	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case ENOENT:
	case ECONNREFUSED:
		return "uzswapd is not running or the socket path is wrong: "
		       "start it (systemctl start uzswapd) or set UZSWAP_SOCKET";
	case EACCES:
		return "permission denied by uzswapd: the user is not in the "
		       "uzswap group (add it, then log in again), or uzswapd "
		       "lacks CAP_SYS_PTRACE (its log says so)";
	case EPERM:
		return "userfaultfd is not allowed: give the user access to "
		       "/dev/userfaultfd (the uzswap group) or set "
		       "vm.unprivileged_userfaultfd=1";
	case ETIMEDOUT:
		return "uzswapd did not answer in time: check it "
		       "(systemctl status uzswapd) or raise UZSWAP_TIMEOUT_MS";
	case EPROTONOSUPPORT:
		return "uzswapd is from an incompatible release: use the "
		       "libuzswap that ships with the running uzswapd";
	case ENOTSUP:
		return "not supported by this uzswapd (yet): upgrade uzswapd";
	case ECHILD:
		return "the connection belongs to the parent process: after "
		       "fork(), call uzswap_connect() in the child";
	case EINVAL:
		return "invalid argument: addresses must be page-aligned and "
		       "inside a region of this connection (or private "
		       "anonymous memory for uzswap_adopt), lengths non-zero, "
		       "advice UZSWAP_ADVISE_*";
	case ENOMEM:
		return "out of memory or address space: check ulimit -v, the "
		       "cgroup's memory.max and vm.max_map_count, or the "
		       "daemon's limits";
	case ECONNRESET:
	case EPIPE:
		return "the connection to uzswapd was lost (stopped or "
		       "restarted): reconnect with uzswap_connect()";
	case EMFILE:
	case ENFILE:
		return "too many open files: each region holds one; raise the "
		       "limit (ulimit -n) or use fewer, larger regions";
	case ENAMETOOLONG:
		return "the socket path is too long for a unix socket";
	case EBADMSG:
	case EPROTO:
		return "malformed message between libuzswap and uzswapd: "
		       "report a bug";
	default:
		break;
	}
#ifdef HAVE_STRERRORDESC_NP
	{
		const char *s = strerrordesc_np(err);

		if (s)
			return s;
	}
#endif
	return "unknown error";
}
