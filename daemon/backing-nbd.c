/*
 * backing-nbd.c - the write-back tier on an NBD export, through libnbd
 * (backing-io.h): nbd-server, qemu-nbd, nbdkit, or Ceph through rbd-nbd,
 * reached by a URI (nbd://host:port/export, nbd+unix:///export?socket=
 * PATH, nbds:// for TLS: libnbd's forms).
 *
 * Layout of the export. The first segment (1 MiB) holds the superblock
 * (struct nbd_super, at offset 0): a magic, the segment size, the
 * export's size and a random identity chosen when this daemon (or the
 * predecessor it took over from) started on it. backing.c's data space
 * begins at the second segment; its objects are framed and their
 * checksums seeded with the identity, so an object read from anything
 * else (an export that came back empty, another daemon's) never
 * verifies. Space is given back a segment at a time (one TRIM), when the
 * segment's last object goes; batches fill segments from their start.
 *
 * Which export is taken. At start an export is used if its first 4 KiB
 * are zeros or a uzswap superblock: anything else is someone's data
 * (a filesystem, a disk image) and refused (EEXIST). A successor (@keep)
 * takes a superblock as it is and names its predecessor's objects again;
 * otherwise the export is started empty: a new identity, and every data
 * segment trimmed (no client's page lingers on the server). At close,
 * unless handed over, the data segments are trimmed again.
 *
 * I/O. One connection, one I/O thread (the pump) that runs libnbd's
 * state machine: it polls the socket and an eventfd, and reads replies.
 * Worker threads (evictors, the writer, fault threads) issue their
 * commands themselves (nbd_aio_*, under @lock so that the handle cannot
 * go meanwhile), kick the pump, and wait on a semaphore the completion
 * callback posts: many requests are in flight at once, each caller
 * blocks only for its own. Completions run on the pump.
 *
 * When the server goes away. The pump sees the connection die (EOF, an
 * error, or a request that got no answer for NBD_STALL_S: the socket is
 * shut down), drops the handle (libnbd has failed the requests in
 * flight: their callers see -EAGAIN) and
 * reconnects with a growing pause (NBD_RETRY_MIN_MS .. NBD_RETRY_MAX_MS),
 * logging the loss once and the return. Meanwhile: a write fails at
 * once (its objects stay in the pool, and reclaim does not take pages
 * while backing_ready() is false); a read returns -EAGAIN, which backing.c
 * turns into a bounded wait. On return the superblock is read again: the
 * same identity, and everything resumes; an empty export (the server lost
 * its data: nbdkit's memory plugin restarted) is logged as the loss it
 * is, and given our superblock again, so that new objects go there and
 * each old one fails its checksum (its page gets SIGBUS, never zeros);
 * another superblock, or a different size, is refused and retried.
 *
 * Locks. @lock protects @h (the connection workers may use; NULL while
 * away); a worker holds it only while it issues a command, the
 * pump while it publishes or drops the handle. The pump's own handle
 * (@pump_h) and its retry state are the pump's alone. Counters are
 * atomic; the rest is immutable after backing_nbd_open().
 */
#include "config.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/common/clock.h"
#include "backing.h"
#include "backing-io.h"
#include "log.h"

#define SEGMENT		(1u << 20)	/* bytes: the release granule */
#define DATA_OFF	SEGMENT		/* the superblock's segment */
#define SUPER_BYTES	4096u
#define SUPER_MAGIC	0x424e7061777a7a75ull	/* "uzzwapNB" */
#define SUPER_VERSION	1u
#define NBD_ID_MARK	UINT64_MAX	/* id_dev of every export */
#define TRIM_CHUNK	(1ull << 30)	/* the largest TRIM issued */
#define NBD_STALL_S	15	/* a request unanswered this long: cut */
#define NBD_CONNECT_S	10	/* a connection attempt, at most */
#define NBD_RETRY_MIN_MS 100
#define NBD_RETRY_MAX_MS 2000
#define PUMP_TICK_MS	200

_Static_assert(SEGMENT / BACKING_UNIT <= BACKING_GRANULE_MAX, "granule");

enum nbd_cmd { CMD_READ, CMD_WRITE, CMD_TRIM };

/*
 * struct nbd_super - the superblock, at offset 0 of the export
 * @magic:   SUPER_MAGIC
 * @version: SUPER_VERSION
 * @segment: the segment size, bytes
 * @id:      the identity of the objects here (random, never 0)
 * @size:    the export's size when it was written
 * @sum:     XXH3-64 of the fields above
 */
struct nbd_super {
	uint64_t magic;
	uint32_t version;
	uint32_t segment;
	uint64_t id;
	uint64_t size;
	uint64_t sum;
};

/*
 * struct nbd_io - an export in use
 * @lock:      protects @h
 * @h:         the connection workers issue commands on; NULL while away;
 *             @lock
 * @pump_h:    the pump's view of the connection (@h, or the one being
 *             made); the pump's
 * @retry_ms:  the pause before the next attempt; the pump's
 * @next_try:  when it is due (ns); the pump's
 * @refused:   the last attempt found a server that is not ours (logged
 *             once); the pump's
 * @pump:      the I/O thread
 * @wake_fd:   eventfd that wakes the pump (a command issued, stop)
 * @stop:      backing close asked the pump to end; atomic
 * @connected: @h is set; atomic, for backing_ready() without @lock
 * @inflight:  commands issued and not completed; atomic
 * @progress:  when a command last completed, or was issued with none in
 *             flight (ns); atomic
 * @away_at:   when the connection was lost (ns); the pump's
 * @size, @id, @can_trim, @uri: the export; immutable
 * @st:        counters; atomic
 */
struct nbd_io {
	pthread_mutex_t lock;
	struct nbd_handle *h;
	struct nbd_handle *pump_h;
	unsigned int retry_ms;
	uint64_t next_try;
	bool refused;
	pthread_t pump;
	int wake_fd;
	atomic_bool stop;
	atomic_bool connected;
	atomic_uint inflight;
	atomic_uint_fast64_t progress;
	uint64_t away_at;
	uint64_t size;
	uint64_t id;
	bool can_trim;
	struct {
		atomic_uint_fast64_t connects, disconnects, stalls;
	} st;
	char uri[];
};

/* One command in flight: its caller waits on @done. */
struct nbd_req {
	sem_t done;
	int err;
};

/*****************
 * Helpers
 *****************/

static uint64_t super_sum(const struct nbd_super *s)
{
	return XXH3_64bits(s, offsetof(struct nbd_super, sum));
}

/* The libnbd error of the last call, as -errno (EIO if it gave none). */
static int nbd_err(void)
{
	int e = nbd_get_errno();

	return -(e ? e : EIO);
}

/* Errors that mean the connection went, not that the request failed. */
static bool conn_error(int err)
{
	return err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET ||
	       err == EPIPE || err == ECONNABORTED;
}

static void pump_kick(struct nbd_io *io)
{
	uint64_t one = 1;

	if (write(io->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the pump is awake anyway */
	}
}

/*
 * conn_turn() - wait up to PUMP_TICK_MS for @h's socket to be ready the
 * way libnbd wants it, or for a kick (drained), then let libnbd read or
 * write. Return: 0, or -errno if poll() failed.
 */
static int conn_turn(struct nbd_io *io, struct nbd_handle *h)
{
	unsigned int dir = nbd_aio_get_direction(h);
	struct pollfd pfd[2];
	uint64_t drain;

	pfd[0] = (struct pollfd){
		nbd_aio_get_fd(h),
		(short)((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
			(dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)), 0 };
	pfd[1] = (struct pollfd){ io->wake_fd, POLLIN, 0 };
	if (poll(pfd, 2, PUMP_TICK_MS) < 0)
		return errno == EINTR ? 0 : -errno;
	if ((pfd[1].revents & POLLIN) &&
	    read(io->wake_fd, &drain, sizeof(drain)) < 0) {
		/* nothing to drain */
	}
	if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
		nbd_aio_notify_read(h);
	else if (pfd[0].revents & POLLOUT)
		nbd_aio_notify_write(h);
	return 0;
}

/*
 * wait_ready() - drive @h's state machine from this thread until it has
 * connected (or failed, or NBD_CONNECT_S passed, or the pump was asked
 * to stop). Return: 0 or -errno.
 */
static int wait_ready(struct nbd_io *io, struct nbd_handle *h)
{
	uint64_t deadline = clock_now_ns() + NBD_CONNECT_S * 1000000000ull;
	int ret;

	while (nbd_aio_is_connecting(h)) {
		if (atomic_load(&io->stop))
			return -ECANCELED;
		if (clock_now_ns() > deadline)
			return -ETIMEDOUT;
		ret = conn_turn(io, h);
		if (ret < 0)
			return ret;
	}
	return nbd_aio_is_ready(h) ? 0 : nbd_err();
}

/* A new connection to the export, ready for commands; NULL with *@err
 * set (and libnbd's message in nbd_get_error()). */
static struct nbd_handle *export_connect(struct nbd_io *io, int *err)
{
	struct nbd_handle *h = nbd_create();

	if (!h) {
		*err = nbd_err();
		return NULL;
	}
	/* the URI is the operator's: its tls-certificates= and
	 * tls-psk-file= may name local files */
	if (nbd_set_uri_allow_local_file(h, true) < 0 ||
	    nbd_aio_connect_uri(h, io->uri) < 0) {
		*err = nbd_err();
		goto out_close;
	}
	*err = wait_ready(io, h);
	if (*err == 0)
		return h;
out_close:
	nbd_close(h);
	return NULL;
}

/* The superblock of an export of @size for objects of identity @id. */
static void super_make(struct nbd_super *s, uint64_t size, uint64_t id)
{
	*s = (struct nbd_super){ SUPER_MAGIC, SUPER_VERSION, SEGMENT, id,
				 size, 0 };
	s->sum = super_sum(s);
}

/* What the first 4 KiB of an export hold. */
enum super_kind { SUPER_EMPTY, SUPER_OURS, SUPER_FOREIGN };

static enum super_kind super_read(struct nbd_handle *h, struct nbd_super *s,
				  int *err)
{
	static const uint8_t zeros[SUPER_BYTES];
	uint8_t buf[SUPER_BYTES];

	*err = 0;
	if (nbd_pread(h, buf, sizeof(buf), 0, 0) < 0) {
		*err = nbd_err();
		return SUPER_FOREIGN;
	}
	memcpy(s, buf, sizeof(*s));
	if (s->magic == SUPER_MAGIC && s->version == SUPER_VERSION &&
	    s->segment == SEGMENT && s->sum == super_sum(s) && s->id)
		return SUPER_OURS;
	return memcmp(buf, zeros, sizeof(buf)) ? SUPER_FOREIGN : SUPER_EMPTY;
}

static int super_write(struct nbd_handle *h, uint64_t size, uint64_t id)
{
	uint8_t buf[SUPER_BYTES] = { 0 };
	struct nbd_super s;

	super_make(&s, size, id);
	memcpy(buf, &s, sizeof(s));
	if (nbd_pwrite(h, buf, sizeof(buf), 0, 0) < 0 ||
	    nbd_flush(h, 0) < 0)
		return nbd_err();
	return 0;
}

/* TRIM every data segment of the export (best effort: a server without
 * TRIM keeps what it has). */
static void trim_all(struct nbd_io *io, struct nbd_handle *h)
{
	uint64_t off, n;

	if (!io->can_trim)
		return;
	for (off = DATA_OFF; off < io->size; off += n) {
		n = io->size - off < TRIM_CHUNK ? io->size - off : TRIM_CHUNK;
		if (nbd_trim(h, n, off, 0) < 0) {
			log_warn("backing", "nbd: cannot trim %s: %s",
				 io->uri, nbd_get_error());
			return;
		}
	}
}

/*****************
 * Commands
 *****************/

static int req_done(void *user_data, int *error)
{
	struct nbd_req *r = user_data;

	r->err = *error;
	sem_post(&r->done);
	return 1;
}

/* Issue @cmd on the current connection. @lock held. */
static int64_t issue(struct nbd_io *io, enum nbd_cmd cmd, void *buf,
		     size_t len, uint64_t off, struct nbd_req *r)
{
	nbd_completion_callback cb = { .callback = req_done, .user_data = r };

	switch (cmd) {
	case CMD_READ:
		return nbd_aio_pread(io->h, buf, len, off, cb, 0);
	case CMD_WRITE:
		return nbd_aio_pwrite(io->h, buf, len, off, cb, 0);
	default:
		return nbd_aio_trim(io->h, len, off, cb, 0);
	}
}

/*
 * submit() - run @cmd (@len bytes of @buf at export offset @off) and wait
 * for its completion. Return: 0; -EAGAIN if the export is away (or went
 * away meanwhile: the command may not have happened); the server's
 * -errno.
 */
static int submit(struct nbd_io *io, enum nbd_cmd cmd, void *buf,
		  size_t len, uint64_t off)
{
	struct nbd_req r = { .err = 0 };
	int64_t cookie;
	int err;

	sem_init(&r.done, 0, 0);
	pthread_mutex_lock(&io->lock);
	if (!io->h) {
		pthread_mutex_unlock(&io->lock);
		sem_destroy(&r.done);
		return -EAGAIN;
	}
	/* the stamp before the count: the pump never sees a command in
	 * flight with an old stamp */
	if (atomic_load(&io->inflight) == 0)
		atomic_store(&io->progress, clock_now_ns());
	atomic_fetch_add(&io->inflight, 1);
	cookie = issue(io, cmd, buf, len, off, &r);
	/* a connection the pump has not yet found dead refuses commands */
	err = cookie >= 0 ? 0 :
	      nbd_aio_is_dead(io->h) || nbd_aio_is_closed(io->h) ? ENOTCONN :
	      -nbd_err();
	pthread_mutex_unlock(&io->lock);
	if (cookie < 0) {
		atomic_fetch_sub(&io->inflight, 1);
	} else {
		pump_kick(io);
		while (sem_wait(&r.done) < 0 && errno == EINTR)
			;
		err = r.err;
		atomic_store(&io->progress, clock_now_ns());
		atomic_fetch_sub(&io->inflight, 1);
	}
	sem_destroy(&r.done);
	if (err && conn_error(err))
		return -EAGAIN;
	return -err;
}

/*****************
 * The pump
 *****************/

/* The connection died: no new command reaches it; libnbd has failed the
 * ones in flight (or does so as it closes). */
static void conn_lost(struct nbd_io *io, const char *why)
{
	struct nbd_handle *h = io->pump_h;

	/* @why may be libnbd's message: logged before the handle goes */
	log_warn("backing", "nbd: lost %s (%s): writes back stop, faults on "
		 "pages there wait; reconnecting", io->uri, why);
	pthread_mutex_lock(&io->lock);
	io->h = NULL;
	atomic_store(&io->connected, false);
	pthread_mutex_unlock(&io->lock);
	io->pump_h = NULL;
	nbd_close(h);
	atomic_fetch_add(&io->st.disconnects, 1);
	io->away_at = clock_now_ns();
	io->retry_ms = NBD_RETRY_MIN_MS;
	io->next_try = io->away_at;
	io->refused = false;
}

/* Whether the export @h reaches is still ours: 0, or -errno with the
 * reason logged once. An export that came back empty is given our
 * superblock again (its objects are lost and fail their checksums). */
static int conn_check(struct nbd_io *io, struct nbd_handle *h)
{
	struct nbd_super s;
	int64_t size = nbd_get_size(h);
	int err;

	if (size < 0 || (uint64_t)size != io->size) {
		if (!io->refused)
			log_err("backing", "nbd: %s is back with another size "
				"(%lld bytes, was %llu): not used",
				io->uri, (long long)size,
				(unsigned long long)io->size);
		return -EINVAL;
	}
	switch (super_read(h, &s, &err)) {
	case SUPER_OURS:
		if (s.id == io->id && s.size == io->size)
			return 0;
		/* fall through */
	case SUPER_FOREIGN:
		if (!io->refused && !err)
			log_err("backing", "nbd: %s is back with other data "
				"than ours: not used", io->uri);
		return err ? err : -EEXIST;
	case SUPER_EMPTY:
		log_err("backing", "nbd: %s came back empty: the objects "
			"written back there are lost (their pages get SIGBUS "
			"when touched)", io->uri);
		return super_write(h, io->size, io->id);
	}
	return -EINVAL;
}

/* Try to connect again, when due. */
static void conn_retry(struct nbd_io *io)
{
	struct nbd_handle *h;
	uint64_t now = clock_now_ns();
	int err;

	if (now < io->next_try) {
		struct pollfd pfd = { io->wake_fd, POLLIN, 0 };
		uint64_t wait = (io->next_try - now) / 1000000 + 1;
		uint64_t drain;

		if (poll(&pfd, 1, (int)(wait < PUMP_TICK_MS ? wait
							    : PUMP_TICK_MS))
		    > 0 && read(io->wake_fd, &drain, sizeof(drain)) < 0) {
			/* nothing to drain */
		}
		return;
	}
	h = export_connect(io, &err);
	if (h && (err = conn_check(io, h)) < 0) {
		nbd_close(h);
		h = NULL;
		io->refused = true;
	}
	if (!h) {
		io->retry_ms = io->retry_ms * 2 > NBD_RETRY_MAX_MS ?
			       NBD_RETRY_MAX_MS : io->retry_ms * 2;
		io->next_try = clock_now_ns() + io->retry_ms * 1000000ull;
		return;
	}
	io->pump_h = h;
	pthread_mutex_lock(&io->lock);
	io->h = h;
	atomic_store(&io->connected, true);
	pthread_mutex_unlock(&io->lock);
	atomic_fetch_add(&io->st.connects, 1);
	log_info("backing", "nbd: %s is back after %.1f s", io->uri,
		 (double)(clock_now_ns() - io->away_at) / 1e9);
}

/* A request has waited NBD_STALL_S for its answer: cut the connection,
 * which fails it (and the others), and reconnect. */
static bool stalled(struct nbd_io *io)
{
	uint64_t since, now;

	if (!atomic_load(&io->inflight))
		return false;
	/* the stamp first: a completion may move it past a clock read
	 * before it */
	since = atomic_load(&io->progress);
	now = clock_now_ns();
	return now > since && now - since > NBD_STALL_S * 1000000000ull;
}

/* One turn of the connected pump: wait for the socket or a kick, let
 * libnbd read or write, then see whether the connection still holds. */
static void pump_turn(struct nbd_io *io)
{
	struct nbd_handle *h = io->pump_h;

	if (conn_turn(io, h) < 0)
		return;
	if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h)) {
		conn_lost(io, nbd_get_error() ?: "closed");
	} else if (stalled(io)) {
		/* the next read sees the end: libnbd fails what is in
		 * flight, and the connection is dropped as dead */
		atomic_fetch_add(&io->st.stalls, 1);
		atomic_store(&io->progress, clock_now_ns());
		shutdown(nbd_aio_get_fd(h), SHUT_RDWR);
	}
}

static void *pump_main(void *arg)
{
	struct nbd_io *io = arg;

	while (!atomic_load(&io->stop)) {
		if (io->pump_h)
			pump_turn(io);
		else
			conn_retry(io);
	}
	return NULL;
}

/*****************
 * Ops
 *****************/

static int nbd_write_op(struct backing_io *bio, uint64_t off,
			const void *buf, size_t bytes)
{
	return submit((struct nbd_io *)bio, CMD_WRITE, (void *)buf, bytes,
		      DATA_OFF + off);
}

static int nbd_read_op(struct backing_io *bio, uint64_t off, void *buf,
		       size_t len)
{
	return submit((struct nbd_io *)bio, CMD_READ, buf, len,
		      DATA_OFF + off);
}

static int nbd_release_op(struct backing_io *bio, uint64_t off,
			  uint64_t bytes)
{
	struct nbd_io *io = (struct nbd_io *)bio;

	if (!io->can_trim)
		return -EOPNOTSUPP;
	off += DATA_OFF;
	if (off >= io->size)
		return 0;
	if (bytes > io->size - off)
		bytes = io->size - off;
	return submit(io, CMD_TRIM, NULL, bytes, off);
}

static bool nbd_ready_op(struct backing_io *bio)
{
	return atomic_load(&((struct nbd_io *)bio)->connected);
}

static void nbd_stats_op(struct backing_io *bio, struct backing_stats *st)
{
	struct nbd_io *io = (struct nbd_io *)bio;

	st->nbd.connected = atomic_load(&io->connected);
	st->nbd.trim = io->can_trim;
	st->nbd.size_bytes = io->size;
	st->nbd.connects = atomic_load(&io->st.connects);
	st->nbd.disconnects = atomic_load(&io->st.disconnects);
	st->nbd.stalls = atomic_load(&io->st.stalls);
}

static void io_free(struct nbd_io *io)
{
	close(io->wake_fd);
	pthread_mutex_destroy(&io->lock);
	free(io);
}

static void nbd_close_op(struct backing_io *bio, bool discard)
{
	struct nbd_io *io = (struct nbd_io *)bio;

	atomic_store(&io->stop, true);
	pump_kick(io);
	pthread_join(io->pump, NULL);
	if (io->pump_h) {
		if (discard)
			trim_all(io, io->pump_h);
		else if (nbd_flush(io->pump_h, 0) < 0)
			log_warn("backing", "nbd: flush of %s: %s", io->uri,
				 nbd_get_error());
		nbd_shutdown(io->pump_h, 0);
		nbd_close(io->pump_h);
	}
	io_free(io);
}

static const struct backing_ops nbd_ops = {
	.write = nbd_write_op,
	.read = nbd_read_op,
	.release = nbd_release_op,
	.ready = nbd_ready_op,
	.close = nbd_close_op,
	.stats = nbd_stats_op,
};

/*****************
 * Open
 *****************/

/* A new identity: random, never 0. */
static uint64_t new_id(void)
{
	uint64_t id = 0;

	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = clock_now_ns() ^ (uint64_t)getpid() << 32;
	return id;
}

/*
 * export_take() - decide what the export @h holds (see the top of the
 * file): take a predecessor's objects if @keep, else start it empty.
 * Return: 0, *@kept set; or -errno (-EEXIST: someone else's data).
 */
static int export_take(struct nbd_io *io, struct nbd_handle *h, bool keep,
		       bool *kept)
{
	struct nbd_super s;
	int err;

	*kept = false;
	switch (super_read(h, &s, &err)) {
	case SUPER_FOREIGN:
		return err ? err : -EEXIST;
	case SUPER_OURS:
		if (keep && s.size == io->size) {
			io->id = s.id;
			*kept = true;
			return 0;
		}
		break;
	case SUPER_EMPTY:
		break;
	}
	io->id = new_id();
	trim_all(io, h);
	return super_write(h, io->size, io->id);
}

struct backing_io *backing_nbd_open(const char *uri, bool keep,
				    const struct backing_ops **ops,
				    struct backing_io_info *info)
{
	size_t n = strlen(uri);
	struct nbd_handle *h;
	struct nbd_io *io;
	int64_t size;
	bool kept;
	int err;

	io = calloc(1, sizeof(*io) + n + 1);
	if (!io) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(io->uri, uri, n + 1);
	pthread_mutex_init(&io->lock, NULL);
	io->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->wake_fd < 0) {
		err = -errno;
		pthread_mutex_destroy(&io->lock);
		free(io);
		errno = -err;
		return NULL;
	}
	h = export_connect(io, &err);
	if (!h) {
		log_err("backing", "nbd: cannot connect to %s: %s", uri,
			nbd_get_error() ?: strerror(-err));
		goto out_free;
	}
	size = nbd_get_size(h);
	if (size < 2 * (int64_t)SEGMENT) {
		log_err("backing", "nbd: %s is too small (%lld bytes; at "
			"least 2 MiB)", uri, (long long)size);
		err = -EINVAL;
		goto out_close;
	}
	io->size = (uint64_t)size;
	io->can_trim = nbd_can_trim(h) == 1;
	err = export_take(io, h, keep, &kept);
	if (err < 0) {
		if (err == -EEXIST)
			log_err("backing", "nbd: %s holds data that is not "
				"uzswap's: not used", uri);
		goto out_close;
	}
	io->pump_h = io->h = h;
	atomic_store(&io->connected, true);
	atomic_store(&io->st.connects, 1);
	err = -pthread_create(&io->pump, NULL, pump_main, io);
	if (err < 0)
		goto out_close;
	*ops = &nbd_ops;
	*info = (struct backing_io_info){
		.kind = "nbd",
		.release_units = SEGMENT / BACKING_UNIT,
		.mem_align = 1,
		.size_bytes = (io->size - DATA_OFF) & ~(uint64_t)(SEGMENT - 1),
		.framed = true,
		.kept = kept,
		.seed = io->id,
		.id_dev = NBD_ID_MARK,
		.id_ino = io->id,
	};
	return (struct backing_io *)io;

out_close:
	nbd_close(h);
out_free:
	io_free(io);
	errno = -err;
	return NULL;
}
