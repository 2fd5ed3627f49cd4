/*
 * ctl.c - the control server of uzswapd.
 *
 * The listening socket and every connection are watched with uv_poll_t
 * (libuv's streams cannot receive file descriptors the way we need them:
 * with their message), and read with lib/proto's incremental reader, which
 * never reads past the message it assembles. Each complete message goes
 * through ctl_dispatch() and the one table below, ctl_handlers[], which
 * rejects unknown types, messages before HELLO and messages carrying the
 * wrong number of descriptors before any handler runs.
 *
 * The peer is whoever SO_PEERCRED says it is: a message never names a
 * process. A client registers only memory its own process maps from the
 * memfd it sends (checked in /proc/PID/maps), on a uffd its own process
 * holds (checked with kcmp).
 *
 * Bad input: a malformed payload gets an error reply and the connection
 * goes on; a broken frame (bad magic, unknown version, oversized payload,
 * stray descriptors) cannot be resynchronized, so it gets an error reply
 * and the connection is closed. Neither touches any other client. A peer
 * that sends requests without reading the replies gets back-pressure: a
 * reply that finds no room in the socket waits in the connection, and no
 * request is read until it is sent. Out of descriptors, the daemon drops
 * pending connections through a spare descriptor rather than spin.
 *
 * Limits (each handler runs on the loop thread): at most CTL_BURST
 * messages per readable event per connection, so one chatty client cannot
 * hold the loop; the handlers are O(regions of the client) plus one read
 * of /proc/PID/maps for REGISTER.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "evict.h"
#include "fault.h"
#include "load.h"
#include "lib/uffd/uffd.h"
#include "log.h"
#include "registry.h"
#include "uzswapd.h"

#define CTL_BURST 16
#define CTL_MAX_REGIONS 4096	/* per process */
#define CTL_MIN_LIMIT (1u << 20)
/* What a client uffd must offer: MISSING and WP faults on shmem. */
#define CTL_UFFD_FEATURES \
	(UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* What a handler answers: a body, or an error text for the reply. */
struct ctl_reply {
	uint8_t body[PROTO_MAX_PAYLOAD - sizeof(int32_t)];
	size_t len;
	const char *errmsg;
};

static int fail(struct ctl_reply *rep, int err, const char *msg)
{
	rep->errmsg = msg;
	return err;
}

/*****************
 * Handlers
 *****************/

/* Does the peer's process hold @fd's open file as its descriptor @fdnum? */
static int peer_holds_file(struct ctl_conn *c, int fdnum, int fd)
{
	long r = syscall(SYS_kcmp, c->pid, getpid(), KCMP_FILE, fdnum, fd);

	if (r == 0)
		return 0;
	if (r < 0 && errno == ENOSYS) {
		log_warn("ctl", "kcmp unavailable: cannot check that pid %d "
			 "owns the descriptors it sends", (int)c->pid);
		return 0;
	}
	return -EPERM;
}

static int ctl_hello(struct ctl_conn *c, struct proto_msg *m,
		     struct ctl_reply *rep)
{
	struct proto_hello_reply hr = { 0 };
	struct proto_hello h;
	uint64_t got;
	int uffd = m->fds[0];
	int ret;

	if (c->ctx)
		return fail(rep, -EISCONN, "HELLO was already sent");
	if (proto_decode_hello(m->payload, m->hdr.len, &h))
		return fail(rep, -EBADMSG, "malformed HELLO");
	hr.version = h.max_version < PROTO_VERSION ? h.max_version
						   : PROTO_VERSION;
	if (hr.version < h.min_version || hr.version < PROTO_VERSION_MIN)
		return fail(rep, -EPROTONOSUPPORT,
			    "no protocol version in common with this uzswapd");
	if (peer_holds_file(c, h.uffd_fdnum, uffd))
		return fail(rep, -EPERM,
			    "the userfaultfd sent is not an open file of "
			    "the sending process");
	if (uffd_adopt(uffd))
		return fail(rep, -EBADF, "the descriptor sent is not a "
			    "userfaultfd");
	ret = uffd_api(uffd, CTL_UFFD_FEATURES, &got);
	if (ret)
		return fail(rep, ret,
			    "UFFDIO_API failed: send a fresh userfaultfd "
			    "that nobody initialized");
	if ((got & CTL_UFFD_FEATURES) != CTL_UFFD_FEATURES)
		return fail(rep, -EOPNOTSUPP, "this kernel's userfaultfd "
			    "cannot serve memfd regions (missing features)");
	m->fds[0] = -1;
	ret = client_attach(c, uffd, h.uffd_mode == 1);
	if (ret)
		return fail(rep, ret, "cannot attach the client");
	log_debug("ctl", "pid %d: HELLO v%u%s", (int)c->pid, hr.version,
		  h.uffd_mode ? " (user-mode-only uffd)" : "");
	hr.page_size = PAGE_SIZE;
	hr.default_limit = 0;
	rep->len = proto_encode_hello_reply(rep->body, &hr);
	return 0;
}

/* Checks of a REGISTER that need no system call. */
static int register_args_ok(struct ctl_conn *c, const struct proto_register *p,
			    struct ctl_reply *rep)
{
	uint64_t registered;
	unsigned int nr;

	if ((p->addr | p->len) & (PAGE_SIZE - 1) || p->len == 0 ||
	    p->addr + p->len < p->addr)
		return fail(rep, -EINVAL,
			    "region address and length must be non-zero "
			    "page multiples");
	pthread_mutex_lock(&c->slot->lock);
	nr = c->slot->nr_regions;
	registered = c->slot->registered;
	pthread_mutex_unlock(&c->slot->lock);
	if (nr >= CTL_MAX_REGIONS)
		return fail(rep, -ENOSPC, "too many regions in this process");
	if (registered + p->len > c->d->max_registered ||
	    p->len > c->d->max_registered)
		return fail(rep, -ENOSPC,
			    "registered memory of this process would exceed "
			    "four times the machine's RAM");
	return 0;
}

static int ctl_register(struct ctl_conn *c, struct proto_msg *m,
			struct ctl_reply *rep)
{
	struct proto_register_reply rr;
	struct proto_register p;
	int memfd = m->fds[0];
	struct region *r;
	uint64_t ioctls;
	int ret;

	if (proto_decode_register(m->payload, m->hdr.len, &p))
		return fail(rep, -EBADMSG, "malformed REGISTER");
	ret = register_args_ok(c, &p, rep);
	if (ret)
		return ret;
	if (memfd_region_check(memfd, p.len))
		return fail(rep, -EBADF,
			    "the descriptor sent is not a read-write memfd "
			    "as long as the region");
	if (peer_holds_file(c, p.memfd_fdnum, memfd) ||
	    region_verify_mapping(c->pid, p.addr, p.len, memfd))
		return fail(rep, -EPERM,
			    "the region is not mapped shared from this memfd "
			    "in the sending process");

	m->fds[0] = -1;
	r = region_create(c->slot, c->ctx, &c->d->store, p.addr,
			  p.len >> PAGE_SHIFT, memfd, p.name);
	if (!r)
		return fail(rep, -errno, "cannot set up the region");
	ret = mm_slot_add_region(c->slot, r);
	if (ret) {
		region_put(r);
		return fail(rep, ret, "the region overlaps a registered one");
	}
	ret = uffd_register(c->ctx->fd, (void *)p.addr, p.len,
			    UFFDIO_REGISTER_MODE_MISSING |
				    UFFDIO_REGISTER_MODE_WP, &ioctls);
	if (ret == 0 && !(ioctls & (1ull << _UFFDIO_COPY))) {
		uffd_unregister(c->ctx->fd, (void *)p.addr, p.len);
		ret = -EOPNOTSUPP;
	}
	if (ret) {
		region_put(mm_slot_take_region(c->slot, p.addr, c->ctx));
		return fail(rep, ret, "UFFDIO_REGISTER refused the region");
	}
	if (region_verify_registered(c->pid, p.addr, p.len)) {
		uffd_unregister(c->ctx->fd, (void *)p.addr, p.len);
		region_put(mm_slot_take_region(c->slot, p.addr, c->ctx));
		return fail(rep, -EPERM, "the userfaultfd sent belongs to "
			    "another process");
	}
	log_debug("ctl", "pid %d: region %llu \"%s\" %#llx+%llu",
		  (int)c->pid, (unsigned long long)r->id, r->name,
		  (unsigned long long)p.addr, (unsigned long long)p.len);
	rr.region_id = r->id;
	rep->len = proto_encode_register_reply(rep->body, &rr);
	return 0;
}

static int ctl_unregister(struct ctl_conn *c, struct proto_msg *m,
			  struct ctl_reply *rep)
{
	struct proto_unregister u;
	struct region *r;
	int ret;

	if (proto_decode_unregister(m->payload, m->hdr.len, &u))
		return fail(rep, -EBADMSG, "malformed UNREGISTER");
	r = mm_slot_take_region(c->slot, u.addr, c->ctx);
	if (!r)
		return fail(rep, -EINVAL, "no region of yours starts there");
	ret = client_restore_region(c->d, r);
	if (ret == 0)
		ret = uffd_unregister(c->ctx->fd, (void *)r->start,
				      r->npages << PAGE_SHIFT);
	if (ret && ret != -ESRCH && ret != -EIO)
		log_warn("ctl", "pid %d: unregister %#lx: %s", (int)c->pid,
			 r->start, strerror(-ret));
	region_put(r);
	return 0;
}

static int ctl_set_limit(struct ctl_conn *c, struct proto_msg *m,
			 struct ctl_reply *rep)
{
	struct proto_set_limit l;

	if (proto_decode_set_limit(m->payload, m->hdr.len, &l))
		return fail(rep, -EBADMSG, "malformed SET_LIMIT");
	if (l.bytes && l.bytes < CTL_MIN_LIMIT)
		return fail(rep, -EINVAL, "a budget must be at least 1 MiB");
	atomic_store(&c->slot->limit, l.bytes);
	log_debug("ctl", "pid %d: budget %llu bytes", (int)c->pid,
		  (unsigned long long)l.bytes);
	evict_check(c->slot);
	return 0;
}

/*
 * Apply advice to the pages of @r in [@first, @end): COLD evicts every
 * resident one now (runs of EVICT_RUN_PAGES), WILLNEED brings every stored
 * one back. Cost: the protocol or a load per page, on the loop thread.
 * Return: 0, or -ENOMEM if the store filled up (COLD).
 */
static int advise_region(struct uzswapd *d, struct region *r, size_t first,
			 size_t end, uint32_t advice)
{
	size_t i, n;
	long got;

	if (advice == PROTO_ADVISE_WILLNEED) {
		for (i = first; i < end; i++)
			load_page(r, i, &d->lc, false, false);
		return 0;
	}
	if (store_compressor_current(&d->store, &d->lc.comp))
		return -ENOMEM;
	for (i = first; i < end; i += n) {
		n = end - i < EVICT_RUN_PAGES ? end - i : EVICT_RUN_PAGES;
		got = evict_run(r, i, n, -1, d->lc.comp, d->run_buf);
		if (got == -ENOMEM)
			return -ENOMEM;
		if (got > 0)
			n = (size_t)got;
		else
			n = 1;	/* not resident: the next page */
	}
	return 0;
}

static int ctl_advise(struct ctl_conn *c, struct proto_msg *m,
		      struct ctl_reply *rep)
{
	struct proto_advise a;
	unsigned long end, s, e;
	struct region *r;
	bool any = false;
	int ret = 0;

	if (proto_decode_advise(m->payload, m->hdr.len, &a))
		return fail(rep, -EBADMSG, "malformed ADVISE");
	end = a.addr + a.len;
	if ((a.addr | a.len) & (PAGE_SIZE - 1) || a.len == 0 || end < a.addr)
		return fail(rep, -EINVAL,
			    "advice needs a non-empty page-aligned range");
	for (s = a.addr; s < end && ret == 0; s = e) {
		r = mm_slot_find_region(c->slot, s);
		if (!r) {
			e = s + PAGE_SIZE;
			continue;
		}
		any = true;
		e = region_end(r) < end ? region_end(r) : end;
		ret = advise_region(c->d, r, (s - r->start) >> PAGE_SHIFT,
				    (e - r->start) >> PAGE_SHIFT, a.advice);
		region_put(r);
	}
	if (!any)
		return fail(rep, -EINVAL, "no managed region in that range");
	if (ret)
		return fail(rep, ret, "the compressed pool is full");
	return 0;
}

static int ctl_stats(struct ctl_conn *c, struct proto_msg *m,
		     struct ctl_reply *rep)
{
	struct proto_stats_reply s = { 0 };
	struct list_node *pos;

	if (m->hdr.len != 0)
		return fail(rep, -EBADMSG, "STATS takes no payload");
	pthread_mutex_lock(&c->slot->lock);
	for (pos = c->slot->regions.next; pos != &c->slot->regions;
	     pos = pos->next) {
		struct region *r = container_of(pos, struct region, node);

		s.stored_pages += atomic_load(&r->stored);
		s.compressed_bytes += atomic_load(&r->compressed_bytes);
	}
	s.registered_bytes = c->slot->registered;
	s.regions = c->slot->nr_regions;
	pthread_mutex_unlock(&c->slot->lock);
	s.resident_bytes = atomic_load(&c->slot->resident) << PAGE_SHIFT;
	s.limit_bytes = evict_slot_limit(c->slot);
	s.evictions = atomic_load(&c->slot->evictions);
	s.faults = atomic_load(&c->slot->faults);
	rep->len = proto_encode_stats_reply(rep->body, &s);
	return 0;
}

static int ctl_status(struct ctl_conn *c, struct proto_msg *m,
		      struct ctl_reply *rep)
{
	struct proto_status_reply s = { 0 };
	struct store_stats ss;
	struct evict_stats es;
	struct fault_stats fs;

	if (m->hdr.len != 0)
		return fail(rep, -EBADMSG, "STATUS takes no payload");
	s.clients = registry_nr_slots(&c->d->registry);
	registry_totals(&c->d->registry, &s.registered_bytes, &s.faults);
	s.resident_bytes = (uint64_t)region_resident_total() << PAGE_SHIFT;
	evict_get_limits(&s.default_limit, &s.resident_limit);
	store_get_stats(&c->d->store, &ss);
	evict_get_stats(&es);
	s.stored_pages = ss.compressed + ss.raw + ss.same;
	s.same_pages = ss.same;
	s.raw_pages = ss.raw;
	s.payload_bytes = ss.payload_bytes;
	s.pool_bytes = ss.pool_bytes;
	s.evictions = es.evicted;
	s.loads = ss.loads;
	s.store_failures = ss.failures;
	fault_get_stats(&fs);
	s.read_ahead = fs.read_ahead;
	s.pool_limit = ss.pool_limit;
	s.pool_full = ss.full;
	s.written_back_pages = ss.written_back;
	s.writebacks = ss.writebacks;
	s.writeback_failures = ss.writeback_failures;
	if (c->d->store.backing) {
		struct backing_stats bs;

		backing_get_stats(c->d->store.backing, &bs);
		s.backing_bytes = bs.used_bytes;
		s.backing_limit = bs.limit_bytes;
	}
	rep->len = proto_encode_status_reply(rep->body, &s);
	return 0;
}

/* Admin requests: root, or the daemon's own user. */
static bool peer_is_admin(const struct ctl_conn *c)
{
	return c->uid == 0 || c->uid == geteuid();
}

/*
 * The dispatch table: every message type a peer may send, whether it
 * needs a HELLO first, whether it is an admin request, and how many
 * descriptors it must carry.
 */
static const struct ctl_handler {
	bool needs_hello;
	bool admin;
	int nfds;
	int (*handle)(struct ctl_conn *c, struct proto_msg *m,
		      struct ctl_reply *rep);
} ctl_handlers[PROTO_TYPE_END] = {
	[PROTO_HELLO] = { false, false, 1, ctl_hello },
	[PROTO_REGISTER] = { true, false, 1, ctl_register },
	[PROTO_UNREGISTER] = { true, false, 0, ctl_unregister },
	[PROTO_SET_LIMIT] = { true, false, 0, ctl_set_limit },
	[PROTO_ADVISE] = { true, false, 0, ctl_advise },
	[PROTO_STATS] = { true, false, 0, ctl_stats },
	[PROTO_STATUS] = { false, true, 0, ctl_status },
};

/*****************
 * Connections
 *****************/

static void conn_io(uv_poll_t *handle, int status, int events);

/*
 * Send what waits in c->out. Return: 0 when all is sent, -EAGAIN when the
 * socket is full (the poll then waits for room, not for requests), or
 * -errno (close the connection).
 */
static int conn_flush(struct ctl_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			uv_poll_start(&c->poll, UV_WRITABLE, conn_io);
			return -EAGAIN;
		}
		if (n < 0)
			return -errno;
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	uv_poll_start(&c->poll, UV_READABLE, conn_io);
	return 0;
}

/* Queue a reply and send what the socket takes. */
static int conn_reply(struct ctl_conn *c, uint16_t type, uint32_t seq,
		      int status, const struct ctl_reply *rep)
{
	c->out_len = proto_frame_reply(c->out, type, seq, status, rep->body,
				       rep->len, rep->errmsg);
	c->out_off = 0;
	return conn_flush(c);
}

/* Run one complete message and queue its reply; -errno if the connection
 * must close, -EAGAIN if the reply waits for room. */
static int ctl_dispatch(struct ctl_conn *c, struct proto_msg *m)
{
	const struct ctl_handler *h = NULL;
	struct ctl_reply rep = { .len = 0 };
	uint16_t type = m->hdr.type;
	int ret;

	if (type < PROTO_TYPE_END)
		h = &ctl_handlers[type];
	if (!h || !h->handle)
		ret = fail(&rep, -EOPNOTSUPP, "unknown message type");
	else if (h->needs_hello && !c->ctx)
		ret = fail(&rep, -ENOTCONN, "send HELLO first");
	else if (h->admin && !peer_is_admin(c))
		ret = fail(&rep, -EPERM, "admin requests need root");
	else if (m->nfds != h->nfds)
		ret = fail(&rep, -EBADMSG,
			   "wrong number of file descriptors");
	else
		ret = h->handle(c, m, &rep);
	if (ret)
		log_debug("ctl", "pid %d: %s refused: %s", (int)c->pid,
			  proto_type_name(type), rep.errmsg);
	proto_msg_close_fds(m);
	return conn_reply(c, type, m->hdr.seq, ret, &rep);
}

static const char *frame_error(int err)
{
	switch (err) {
	case -EPROTONOSUPPORT:
		return "protocol version not spoken by this uzswapd";
	case -EMSGSIZE:
		return "message too large or carrying stray descriptors";
	default:
		return "malformed message frame";
	}
}

static void conn_closed(uv_handle_t *handle)
{
	struct ctl_conn *c = container_of((uv_poll_t *)handle, struct ctl_conn,
					  poll);

	close(c->fd);
	free(c);
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->ctx)
		client_detach(c);
	proto_reader_reset(&c->rd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	list_del(&c->all);
	uv_close((uv_handle_t *)&c->poll, conn_closed);
}

/* Read and run up to CTL_BURST requests; returns -errno to close. */
static int conn_read_requests(struct ctl_conn *c)
{
	int i, ret = 0;

	for (i = 0; i < CTL_BURST && !c->closing; i++) {
		ret = proto_reader_feed(&c->rd, c->fd);
		if (ret <= 0)
			break;
		ret = ctl_dispatch(c, &c->rd.msg);
		proto_reader_reset(&c->rd);
		if (ret)
			break;
	}
	return ret == -EAGAIN ? 0 : ret;
}

static void conn_io(uv_poll_t *handle, int status, int events)
{
	struct ctl_conn *c = container_of(handle, struct ctl_conn, poll);
	int ret = status;

	if (ret == 0)
		ret = c->out_len ? conn_flush(c) : conn_read_requests(c);
	if (ret == 0 || ret == -EAGAIN)
		return;
	if (ret == -EBADMSG || ret == -EMSGSIZE || ret == -EPROTONOSUPPORT) {
		log_warn("ctl", "pid %d: %s; closing its connection",
			 (int)c->pid, frame_error(ret));
		proto_send_reply(c->fd, c->rd.msg.hdr.type, c->rd.msg.hdr.seq,
				 ret, NULL, 0, frame_error(ret));
	} else if (ret != -ECONNRESET) {
		log_debug("ctl", "pid %d: connection ends: %s", (int)c->pid,
			  status ? uv_strerror(status) : strerror(-ret));
	}
	ctl_conn_close(c);
}

static int peer_credentials(struct ctl_conn *c)
{
	int ret = fdpass_peer_cred(c->fd, &c->pid, &c->uid, NULL);

	if (ret)
		return ret;
	if (c->pid <= 0)
		return -EPERM;	/* in a pid namespace we cannot see */
	ret = fdpass_peer_pidfd(c->fd);
	c->pidfd = ret >= 0 ? ret : -1;
	return 0;
}

static void accept_one(struct uzswapd *d, int fd)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		log_err("ctl", "no memory for a connection");
		close(fd);
		return;
	}
	c->d = d;
	c->fd = fd;
	c->pidfd = -1;
	list_init(&c->node);
	if (peer_credentials(c) < 0 || uv_poll_init(&d->loop, &c->poll, fd)) {
		log_warn("ctl", "connection refused: unknown peer process");
		close(fd);
		if (c->pidfd >= 0)
			close(c->pidfd);
		free(c);
		return;
	}
	list_add_tail(&c->all, &d->conns);
	uv_poll_start(&c->poll, UV_READABLE, conn_io);
	log_debug("ctl", "connection from pid %d uid %u", (int)c->pid,
		  (unsigned int)c->uid);
}

/* Out of descriptors (@err): accept and drop one pending connection with
 * the spare descriptor, as libuv does. Returns whether one was dropped. */
static bool drop_one(struct uzswapd *d, int err)
{
	static bool warned;
	int fd;

	if (d->spare_fd < 0)
		return false;
	if (!warned)
		log_err("ctl", "accept: %s: dropping connections until "
			"descriptors are free", strerror(err));
	warned = true;
	close(d->spare_fd);
	fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0;
}

static void listen_readable(uv_poll_t *handle, int status, int events)
{
	struct uzswapd *d = container_of(handle, struct uzswapd, listen);
	int i, fd;

	for (i = 0; i < CTL_BURST; i++) {
		fd = accept4(d->listen_fd, NULL, NULL,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			accept_one(d, fd);
			continue;
		}
		if ((errno == EMFILE || errno == ENFILE) &&
		    drop_one(d, errno))
			continue;
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_err("ctl", "accept: %s", strerror(errno));
		return;
	}
}

int ctl_listen(struct uzswapd *d, int fd)
{
	int ret, fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	d->listen_fd = fd;
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	list_init(&d->conns);
	ret = uv_poll_init(&d->loop, &d->listen, fd);
	if (ret)
		return ret;
	return uv_poll_start(&d->listen, UV_READABLE, listen_readable);
}

void ctl_stop_listening(struct uzswapd *d)
{
	if (d->listen_fd < 0)
		return;
	uv_close((uv_handle_t *)&d->listen, NULL);
	close(d->listen_fd);
	d->listen_fd = -1;
	if (d->spare_fd >= 0)
		close(d->spare_fd);
	d->spare_fd = -1;
}
