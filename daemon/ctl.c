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
 * Versions: a connection speaks the version of its first frame until
 * HELLO picks one (lib/proto/proto.h, "Versions"); the reader refuses any
 * other, and every reply is encoded and framed at it.
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
 * of /proc/PID/maps for REGISTER, whatever the sizes a request names
 * (DRAIN: O(regions of every client) and one read of /proc/meminfo).
 * Work that grows with the pages of a range goes to the workers (work.h)
 * and its reply is deferred until they are done: ADVISE (which walks the
 * client's regions overlapping the range, never its pages, and refuses a
 * range past the user address space), UNREGISTER (a restore) and DRAIN (a
 * restore of every region, drain.c). So does RECLAIM, in steps on the
 * loop thread (reclaim.c). A connection with a deferred reply reads no
 * request until it is sent, so its requests are answered in order; if it
 * closes meanwhile, the work goes on without a reply (ADVISE and DRAIN
 * stop at their next step) and its teardown follows it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "drain.h"
#include "evict.h"
#include "fault.h"
#include "fork.h"
#include "load.h"
#include "lib/common/killpoint.h"
#include "lib/common/size.h"
#include "lib/uffd/uffd.h"
#include "log.h"
#include "reclaim.h"
#include "registry.h"
#include "statedir.h"
#include "stats.h"
#include "uzswapd.h"
#include "work.h"

#define CTL_BURST 16
#define CTL_MAX_REGIONS 4096	/* per process */
#define CTL_MIN_LIMIT (1u << 20)
/* What a client uffd must offer: MISSING and WP faults on shmem. */
#define CTL_UFFD_FEATURES \
	(UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* The end of the largest user address space Linux gives (x86-64 with
 * 5-level page tables; arm64 and riscv stop lower): no range past it can
 * hold a region. */
#define CTL_USER_END (1ull << 56)

/* A handler's return when its reply comes later (ctl_conn_complete()). */
#define CTL_DEFERRED 1
#define COMPACT_STEP_PAGES 64	/* pool pages a COMPACT step isolates, at
				   most: ~1 ms */

/* What a log line about connection @c is about (log.h): its peer, with
 * its command name once the peer is a client. */
#define LOG_CONN(c, ...)						\
	LOG_ABOUT(.pid = (c)->pid,					\
		  .comm = (c)->slot ? (c)->slot->comm : NULL, __VA_ARGS__)

static int fail(struct ctl_reply *rep, int err, const char *msg)
{
	rep->errmsg = msg;
	return err;
}

/*****************
 * Handlers
 *****************/

/*
 * Does the peer's process hold @fd's open file as its descriptor @fdnum?
 * Return: 0; -EPERM if not; -EACCES if the daemon may not look (it lacks
 * CAP_SYS_PTRACE over the peer: logged, as the operator must fix it).
 */
static int peer_holds_file(struct ctl_conn *c, int fdnum, int fd)
{
	long r = syscall(SYS_kcmp, c->pid, getpid(), KCMP_FILE, fdnum, fd);

	if (r == 0)
		return 0;
	if (r < 0 && errno == ENOSYS) {
		log_warn_about("ctl", LOG_CONN(c),
			       "kcmp unavailable: cannot check that pid %d "
			       "owns the descriptors it sends", (int)c->pid);
		return 0;
	}
	if (r < 0 && errno == EPERM) {
		log_err_about("ctl", LOG_CONN(c, .err = EPERM),
			      "pid %d: not allowed to inspect the process "
			      "(kcmp): uzswapd needs CAP_SYS_PTRACE",
			      (int)c->pid);
		return -EACCES;
	}
	return -EPERM;
}

/* The error text of peer_holds_file()'s @err. */
static const char *peer_file_error(int err)
{
	return err == -EACCES ? "uzswapd may not inspect this process: it "
				"needs CAP_SYS_PTRACE (see its log)"
			      : "the descriptor sent is not an open file of "
				"the sending process";
}

/*
 * hello_pick() - the version of a connection whose peer offers [@min,
 * @max] in HELLO or ADMIN_HELLO: the newest both speak
 * Return: 0 with *@version set; -EISCONN if a HELLO succeeded already;
 * -EPROTONOSUPPORT if no version is common.
 */
static int hello_pick(struct ctl_conn *c, uint16_t min, uint16_t max,
		      uint16_t *version, struct ctl_reply *rep)
{
	uint16_t v = max < PROTO_VERSION ? max : PROTO_VERSION;

	if (c->hello)
		return fail(rep, -EISCONN, "HELLO was already sent");
	if (v < min || v < PROTO_VERSION_MIN)
		return fail(rep, -EPROTONOSUPPORT,
			    "no protocol version in common with this uzswapd");
	*version = v;
	return 0;
}

/* Record the version picked and answer with it (both HELLOs). */
static int hello_done(struct ctl_conn *c, uint16_t version,
		      struct ctl_reply *rep)
{
	struct proto_hello_reply hr = {
		.version = version,
		.page_size = PAGE_SIZE,
		.default_limit = 0,
	};

	c->hello = true;
	c->rd.version = version;
	rep->len = proto_encode_hello_reply(rep->body, &hr, version);
	return 0;
}

/* Take the peer's uffd (HELLO's descriptor) and make it a client. */
static int hello_attach(struct ctl_conn *c, struct proto_msg *m,
			const struct proto_hello *h, struct ctl_reply *rep)
{
	int uffd = m->fds[0];
	uint64_t got;
	int ret;

	ret = peer_holds_file(c, h->uffd_fdnum, uffd);
	if (ret)
		return fail(rep, ret, peer_file_error(ret));
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
	ret = client_attach(c, uffd, h->uffd_fdnum, h->uffd_mode == 1);
	if (ret)
		return fail(rep, ret, "cannot attach the client");
	return 0;
}

/* HELLO with RESUME: carry on with what a dead daemon held of the
 * process's uffd, taken over. */
static int hello_resume(struct ctl_conn *c, struct proto_msg *m,
			const struct proto_hello *h, struct ctl_reply *rep)
{
	int uffd = m->fds[0];
	int ret;

	ret = peer_holds_file(c, h->uffd_fdnum, uffd);
	if (ret)
		return fail(rep, ret, peer_file_error(ret));
	m->fds[0] = -1;
	ret = client_resume(c, uffd);
	if (ret == -ESTALE)
		return fail(rep, ret, "uzswapd holds no state of this "
			    "process: it did not take over from the daemon "
			    "that served it");
	if (ret)
		return fail(rep, ret, "cannot resume the client");
	log_info_about("ctl", LOG_CONN(c), "pid %d resumed", (int)c->pid);
	return 0;
}

/* HELLO: agree on a version and become a client. */
static int ctl_hello(struct ctl_conn *c, struct proto_msg *m,
		     struct ctl_reply *rep)
{
	struct proto_hello h;
	uint16_t version;
	int ret;

	if (proto_decode_hello(m->payload, m->hdr.len, &h))
		return fail(rep, -EBADMSG, "malformed HELLO");
	ret = hello_pick(c, h.min_version, h.max_version, &version, rep);
	if (ret == 0 && (h.flags & PROTO_HELLO_RESUME))
		ret = hello_resume(c, m, &h, rep);
	else if (ret == 0)
		ret = hello_attach(c, m, &h, rep);
	if (ret)
		return ret;
	log_debug_about("ctl", LOG_CONN(c), "pid %d: HELLO v%u%s",
			(int)c->pid, version,
			h.uffd_mode ? " (user-mode-only uffd)" : "");
	statedir_save(c->d->statedir, &c->d->registry);
	return hello_done(c, version, rep);
}

/* ADMIN_HELLO: agree on a version, for admin requests. */
static int ctl_admin_hello(struct ctl_conn *c, struct proto_msg *m,
			   struct ctl_reply *rep)
{
	struct proto_admin_hello h;
	uint16_t version;
	int ret;

	if (proto_decode_admin_hello(m->payload, m->hdr.len, &h))
		return fail(rep, -EBADMSG, "malformed ADMIN_HELLO");
	ret = hello_pick(c, h.min_version, h.max_version, &version, rep);
	if (ret)
		return ret;
	log_debug_about("ctl", LOG_CONN(c), "pid %d: ADMIN_HELLO v%u",
			(int)c->pid, version);
	return hello_done(c, version, rep);
}

/* Would @add more bytes take @used past @cap (0: no cap)? */
static bool over_cap(uint64_t used, uint64_t add, uint64_t cap)
{
	return cap && (add > cap || used > cap - add);
}

/*
 * Checks of a REGISTER that need no system call, the caps on registered
 * bytes among them: of this process (four times RAM), of all clients and
 * of the peer's user (uzswapd.conf(5) [budget]). Registrations are made
 * on the loop thread only, so nothing registers between this check and
 * mm_slot_add_region(). O(clients).
 */
static int register_args_ok(struct ctl_conn *c, const struct proto_register *p,
			    struct ctl_reply *rep)
{
	uint64_t registered, all, of_user;
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
	if (over_cap(registered, p->len, c->d->max_registered))
		return fail(rep, -ENOSPC,
			    "registered memory of this process would exceed "
			    "four times the machine's RAM");
	registry_registered(&c->d->registry, c->uid, &all, &of_user);
	if (over_cap(all, p->len, c->d->conf.registered_limit))
		return fail(rep, -ENOSPC,
			    "registered memory of all clients would exceed "
			    "registered-limit ([budget] in uzswapd.conf)");
	if (over_cap(of_user, p->len, c->d->conf.user_registered_limit))
		return fail(rep, -ENOSPC,
			    "registered memory of this user would exceed "
			    "user-registered-limit ([budget] in uzswapd.conf)");
	return 0;
}

/* REGISTER with PROTO_REGION_FORKED: the fork copy the child claims,
 * its own now; @memfd (the child's descriptor of the copy's memfd) is
 * closed. NULL with errno and @rep's message if refused. */
static struct region *claim_copy(struct ctl_conn *c,
				 const struct proto_register *p, int memfd,
				 struct ctl_reply *rep)
{
	struct region *r = fork_claim(c->d, p->fork_token, c->uid, memfd,
				      p->addr, p->len);
	int err = errno;

	close(memfd);
	if (!r) {
		fail(rep, -err, err == ENOENT ?
		     "no copy of the parent's region by that token (it "
		     "expired, or uzswapd restarted since the fork)" :
		     err == EPERM ? "that copy is not this memfd's, or not "
				    "this user's" :
				    "that copy is of another range");
		errno = err;
		return NULL;
	}
	region_set_owner(r, c->slot, c->ctx);
	return r;
}

/* A region REGISTER set up and must give up before it joined the slot:
 * a claimed fork copy holds stored pages, which a worker drops. */
static void region_let_go(struct ctl_conn *c, struct region *r)
{
	if (atomic_load(&r->stored))
		fork_drop(c->d, r);
	else
		region_put(r);
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
	ret = peer_holds_file(c, p.memfd_fdnum, memfd);
	if (ret)
		return fail(rep, ret, peer_file_error(ret));
	if (region_verify_mapping(c->pid, p.addr, p.len, memfd))
		return fail(rep, -EPERM,
			    "the region is not mapped shared from this memfd "
			    "in the sending process");

	m->fds[0] = -1;
	r = p.flags & PROTO_REGION_FORKED ? claim_copy(c, &p, memfd, rep) :
		region_create(&c->d->regions, c->slot, c->ctx, &c->d->store,
			      p.addr, p.len >> PAGE_SHIFT, memfd, p.name);
	if (!r)
		return rep->errmsg ? -errno :
			fail(rep, -errno, "cannot set up the region");
	ret = statedir_note_region(r, p.memfd_fdnum, p.flags);
	if (ret) {
		region_let_go(c, r);
		return fail(rep, ret, "cannot set up the region");
	}
	ret = mm_slot_add_region(c->slot, r);
	if (ret) {
		region_let_go(c, r);
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
	log_debug_about("ctl", LOG_REGION(r),
			"pid %d: region %llu \"%s\" %#llx+%llu",
			(int)c->pid, (unsigned long long)r->id, r->name,
			(unsigned long long)p.addr,
			(unsigned long long)p.len);
	killpoint("register.registered");
	statedir_save(c->d->statedir, &c->d->registry);
	killpoint("register.saved");
	rr.region_id = r->id;
	rep->len = proto_encode_register_reply(rep->body, &rr, c->rd.version);
	return 0;
}

/* UNREGISTER's region is restored and unregistered: the reply. */
static void unregister_reply(void *arg)
{
	struct ctl_conn *c = arg;
	struct ctl_reply rep = { .len = 0 };

	c->work = NULL;
	ctl_conn_complete(c, 0, &rep);
}

static int ctl_unregister(struct ctl_conn *c, struct proto_msg *m,
			  struct ctl_reply *rep)
{
	struct proto_unregister u;

	bool drained;

	if (proto_decode_unregister(m->payload, m->hdr.len, &u))
		return fail(rep, -EBADMSG, "malformed UNREGISTER");
	drained = drain_forget(c, u.addr);
	c->work = client_unregister(c, u.addr, unregister_reply);
	if (!c->work && errno == EINVAL && drained)
		return fail(rep, -ENOENT, "a drain released that region: it "
			    "is plain memory now");
	if (!c->work)
		return errno == EINVAL ?
			fail(rep, -EINVAL, "no region of yours starts there") :
			fail(rep, -ENOMEM, "no memory to unregister");
	return CTL_DEFERRED;
}

static int ctl_set_limit(struct ctl_conn *c, struct proto_msg *m,
			 struct ctl_reply *rep)
{
	struct proto_set_limit l;

	if (proto_decode_set_limit(m->payload, m->hdr.len, &l))
		return fail(rep, -EBADMSG, "malformed SET_LIMIT");
	if (l.bytes && l.bytes < CTL_MIN_LIMIT)
		return fail(rep, -EINVAL, "a budget must be at least 1 MiB");
	evict_set_slot_limit(c->d->evictors, c->slot, l.bytes);
	statedir_save(c->d->statedir, &c->d->registry);
	log_debug_about("ctl", LOG_CONN(c), "pid %d: budget %llu bytes%s",
			(int)c->pid, (unsigned long long)l.bytes,
			l.bytes ? "" : " (the default)");
	return 0;
}

/*
 * struct advise_work - ADVISE over [@next, @end), run by a worker one
 * region and at most WORK_STEP_PAGES pages at a time
 * @work:   its place in the work pool (@work.arg: the connection)
 * @slot:   the client's slot (a reference)
 * @next:   the next address to advise; the worker's
 * @end:    the end of the range; immutable
 * @advice: PROTO_ADVISE_COLD or PROTO_ADVISE_WILLNEED; immutable
 * @status: 0, or -ENOMEM once the store took nothing (COLD); the worker's
 */
struct advise_work {
	struct work work;
	struct mm_slot *slot;
	unsigned long next;
	unsigned long end;
	uint32_t advice;
	int status;
};

/* The first region of @slot overlapping [@s, @end), with a reference, or
 * NULL. O(regions of the slot). */
static struct region *region_in(struct mm_slot *slot, unsigned long s,
				unsigned long end)
{
	struct region *r = mm_slot_find_region(slot, s);

	if (!r)
		r = mm_slot_next_region(slot, s);
	if (r && r->start >= end) {
		region_put(r);
		r = NULL;
	}
	return r;
}

/*
 * Apply advice to the pages of @r in [@first, @end): COLD evicts every
 * resident one now (runs of EVICT_RUN_PAGES), WILLNEED brings every stored
 * one back that fits under the client's budget, DISCARD drops them all
 * (region_discard()). Cost: the protocol, a load or a punch per page, on
 * a worker.
 * Return: 0, -ENOMEM if the store took nothing (COLD), or a punch's
 * -errno (DISCARD).
 */
static int advise_pages(struct region *r, size_t first, size_t end,
			uint32_t advice, struct work_ctx *wc)
{
	size_t i, span = 0;

	if (advice == PROTO_ADVISE_DISCARD)
		return region_discard(r, first, end);
	if (advice == PROTO_ADVISE_WILLNEED) {
		/* one wake for the range, not one per page; no page past
		 * the budget (the rest faults in, under back-pressure) */
		for (i = first; mm_slot_room(r->slot) &&
		     (i = region_next_entry(r, i, end, &span)) < end; i++)
			load_page(r, i, &wc->lc, true);
		uffd_wake(r->ctx->fd, r->start + (first << PAGE_SHIFT),
			  (end - first) << PAGE_SHIFT);
		return 0;
	}
	if (store_compressor_current(wc->store, &wc->lc.comp) ||
	    evict_range(wc->evictors, r, first, end, SIZE_MAX, wc->lc.comp,
			wc->run_buf) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

/* One step: the next region in the range, WORK_STEP_PAGES pages at most.
 * Stops early once the connection closed. Worker. */
static bool advise_step(struct work *w, struct work_ctx *wc)
{
	struct advise_work *a = container_of(w, struct advise_work, work);
	unsigned long s, e;
	struct region *r;

	if (atomic_load(&w->cancelled))
		return true;
	r = region_in(a->slot, a->next, a->end);
	if (!r)
		return true;
	s = a->next > r->start ? a->next : r->start;
	e = region_end(r) < a->end ? region_end(r) : a->end;
	if ((e - s) >> PAGE_SHIFT > WORK_STEP_PAGES)
		e = s + (WORK_STEP_PAGES << PAGE_SHIFT);
	a->status = advise_pages(r, (s - r->start) >> PAGE_SHIFT,
				 (e - r->start) >> PAGE_SHIFT, a->advice, wc);
	region_put(r);
	a->next = e;
	return a->status || e >= a->end;
}

/* The advice was applied: the reply, unless the connection closed. */
static void advise_done(struct work *w)
{
	struct advise_work *a = container_of(w, struct advise_work, work);
	struct ctl_conn *c = w->arg;
	struct ctl_reply rep = { .len = 0 };

	if (c) {
		c->work = NULL;
		if (a->status)
			fail(&rep, a->status, a->advice == PROTO_ADVISE_DISCARD ?
			     "the memfd refused a punch" :
			     "the compressed pool is full");
		ctl_conn_complete(c, a->status, &rep);
	}
	mm_slot_put(a->slot);
	free(a);
}

static int ctl_advise(struct ctl_conn *c, struct proto_msg *m,
		      struct ctl_reply *rep)
{
	struct advise_work *aw;
	struct proto_advise a;
	struct region *r;

	if (proto_decode_advise(m->payload, m->hdr.len, &a))
		return fail(rep, -EBADMSG, "malformed ADVISE");
	if ((a.addr | a.len) & (PAGE_SIZE - 1) || a.len == 0)
		return fail(rep, -EINVAL,
			    "advice needs a non-empty page-aligned range");
	if (a.addr >= CTL_USER_END || a.len > CTL_USER_END - a.addr)
		return fail(rep, -EINVAL, "the range ends past the user "
			    "address space");
	if (a.advice == PROTO_ADVISE_DISCARD &&
	    c->rd.version < PROTO_FORK_VERSION)
		return fail(rep, -EINVAL, "DISCARD came with protocol 6");
	/* if the reference dropped here is the last, the work that took the
	 * region out of its slot has restored or dropped its pages already */
	r = region_in(c->slot, a.addr, a.addr + a.len);
	if (!r)
		return fail(rep, -EINVAL, "no managed region in that range");
	region_put(r);
	aw = calloc(1, sizeof(*aw));
	if (!aw)
		return fail(rep, -ENOMEM, "no memory for the advice");
	work_init(&aw->work, advise_step, advise_done, c);
	mm_slot_get(c->slot);
	aw->slot = c->slot;
	aw->next = a.addr;
	aw->end = a.addr + a.len;
	aw->advice = a.advice;
	c->work = &aw->work;
	work_queue(&c->d->work, &aw->work, NULL);
	return CTL_DEFERRED;
}

/* FORK's copy is made (@token), or failed: the reply. */
static void fork_reply(struct ctl_conn *c, int status, uint64_t token)
{
	struct proto_fork_reply fr = { .token = token };
	struct ctl_reply rep = { .len = 0 };

	c->work = NULL;
	if (status)
		fail(&rep, status, status == -ENOSPC ?
		     "the compressed pool is full: no copy for the child" :
		     "cannot copy the region for the child");
	else
		rep.len = proto_encode_fork_reply(rep.body, &fr,
						  c->rd.version);
	ctl_conn_complete(c, status, &rep);
}

static int ctl_fork(struct ctl_conn *c, struct proto_msg *m,
		    struct ctl_reply *rep)
{
	struct proto_fork f;
	int memfd = m->fds[0];
	struct region *r;

	if (c->rd.version < PROTO_FORK_VERSION ||
	    proto_decode_fork(m->payload, m->hdr.len, &f))
		return fail(rep, -EBADMSG, "malformed FORK");
	r = mm_slot_find_region(c->slot, f.addr);
	if (r && r->start != f.addr) {
		region_put(r);
		r = NULL;
	}
	if (!r)
		return fail(rep, -EINVAL, "no region of yours starts there");
	if (memfd_region_check(memfd, r->npages << PAGE_SHIFT) ||
	    !memfd_is_empty(memfd)) {
		region_put(r);
		return fail(rep, -EBADF, "the child's descriptor is not an "
			    "empty read-write memfd as long as the region");
	}
	m->fds[0] = -1;
	c->work = fork_start(c, r, memfd, fork_reply);
	region_put(r);
	if (!c->work)
		return fail(rep, -errno, errno == EBUSY ?
			    "too many copies wait for their child" :
			    "no memory for the copy");
	return CTL_DEFERRED;
}

/* The STATS reply's fields are fields of the client row, by name. */
#define CTL_STATS_FROM_ROW(type, name, since, def)	s.name = row.name;
#define CTL_STATS_STR_FROM_ROW(name, size, since)			\
	memcpy(s.name, row.name, size);

static int ctl_stats(struct ctl_conn *c, struct proto_msg *m,
		     struct ctl_reply *rep)
{
	struct proto_stats_reply s;
	struct proto_client_row row;

	if (m->hdr.len != 0)
		return fail(rep, -EBADMSG, "STATS takes no payload");
	stats_client_row(c->slot, &row);
	PROTO_STATS_REPLY_FIELDS(CTL_STATS_FROM_ROW, CTL_STATS_STR_FROM_ROW)
	rep->len = proto_encode_stats_reply(rep->body, &s, c->rd.version);
	return 0;
}

static int ctl_status(struct ctl_conn *c, struct proto_msg *m,
		      struct ctl_reply *rep)
{
	struct proto_status_reply s;
	struct stats_snapshot ss;

	if (m->hdr.len != 0)
		return fail(rep, -EBADMSG, "STATUS takes no payload");
	stats_snapshot(c->d, &ss);
	stats_status(&ss, &s);
	rep->len = proto_encode_status_reply(rep->body, &s, c->rd.version);
	return 0;
}

static int ctl_daemon_version(struct ctl_conn *c, struct proto_msg *m,
			      struct ctl_reply *rep)
{
	struct proto_version_reply v = {
		.proto_min = PROTO_VERSION_MIN,
		.proto_max = PROTO_VERSION,
	};

	if (m->hdr.len != 0)
		return fail(rep, -EBADMSG, "DAEMON_VERSION takes no payload");
	snprintf(v.release, sizeof(v.release), "%s", PACKAGE_VERSION);
	rep->len = proto_encode_version_reply(rep->body, &v, c->rd.version);
	return 0;
}

static int ctl_clients(struct ctl_conn *c, struct proto_msg *m,
		       struct ctl_reply *rep)
{
	struct proto_clients_reply r;
	struct proto_client_req q;
	bool more;

	if (proto_decode_client_req(m->payload, m->hdr.len, &q))
		return fail(rep, -EBADMSG, "malformed CLIENTS");
	r.count = (uint32_t)stats_client_rows(&c->d->registry, q.pid, r.rows,
					      PROTO_CLIENTS_SENT, &more);
	r.more = more;
	rep->len = proto_encode_clients_reply(rep->body, &r, c->rd.version);
	return 0;
}

/* The slot of the client @pid names, with a reference, or NULL. */
static struct mm_slot *find_client(struct ctl_conn *c, int32_t pid)
{
	return pid > 0 ? registry_find(&c->d->registry, pid) : NULL;
}

static int ctl_client(struct ctl_conn *c, struct proto_msg *m,
		      struct ctl_reply *rep)
{
	struct proto_client_row row;
	struct proto_client_req q;
	struct mm_slot *slot;

	if (proto_decode_client_req(m->payload, m->hdr.len, &q))
		return fail(rep, -EBADMSG, "malformed CLIENT");
	slot = find_client(c, q.pid);
	if (!slot)
		return fail(rep, -ESRCH, "no client process has that pid");
	stats_client_row(slot, &row);
	mm_slot_put(slot);
	rep->len = proto_encode_client_row(rep->body, &row, c->rd.version);
	return 0;
}

static int ctl_admin_limit(struct ctl_conn *c, struct proto_msg *m,
			   struct ctl_reply *rep)
{
	uint64_t def, all;
	struct proto_admin_limit l;
	struct mm_slot *slot;
	const char *to;
	char size[32];

	if (proto_decode_admin_limit(m->payload, m->hdr.len, &l))
		return fail(rep, -EBADMSG, "malformed ADMIN_LIMIT");
	if (l.bytes && l.bytes < CTL_MIN_LIMIT)
		return fail(rep, -EINVAL, "a budget must be at least 1 MiB");
	registry_get_limits(&c->d->registry, &def, &all);
	switch (l.target) {
	case PROTO_LIMIT_PID:
		slot = find_client(c, l.pid);
		if (!slot)
			return fail(rep, -ESRCH,
				    "no client process has that pid");
		evict_set_slot_limit(c->d->evictors, slot, l.bytes);
		statedir_save(c->d->statedir, &c->d->registry);
		mm_slot_put(slot);
		break;
	case PROTO_LIMIT_DEFAULT:
		evict_set_limits(c->d->evictors, l.bytes, all);
		break;
	default:
		evict_set_limits(c->d->evictors, def, l.bytes);
		break;
	}
	to = l.bytes ? size_format(l.bytes, size, sizeof(size)) : NULL;
	if (l.target == PROTO_LIMIT_PID)
		log_info_about("ctl", LOG_ABOUT(.pid = l.pid),
			       "pid %d (uid %u) set the budget of pid %d to %s",
			       (int)c->pid, (unsigned int)c->uid, (int)l.pid,
			       to ? to : "the default");
	else
		log_info_about("ctl", LOG_CONN(c),
			       "pid %d (uid %u) set the %s budget to %s",
			       (int)c->pid, (unsigned int)c->uid,
			       l.target == PROTO_LIMIT_DEFAULT ? "default" :
								 "global",
			       to ? to : "none");
	return 0;
}

/* A RECLAIM job ended: send the reply that waited for it. */
static void reclaim_done(void *arg, int status, uint64_t bytes)
{
	struct ctl_conn *c = arg;
	struct proto_bytes_reply r = { .bytes = bytes };
	struct ctl_reply rep = { .len = 0 };

	c->job = NULL;
	if (status == -ESRCH)
		fail(&rep, status, "the client exited");
	else if (status)
		fail(&rep, status, "the compressed pool and the backing file "
		     "take no more pages");
	else
		rep.len = proto_encode_bytes_reply(rep.body, &r, c->rd.version);
	log_info_about("ctl", LOG_CONN(c),
		       "reclaim for pid %d: %llu bytes evicted", (int)c->pid,
		       (unsigned long long)bytes);
	ctl_conn_complete(c, status, &rep);
}

static int ctl_reclaim(struct ctl_conn *c, struct proto_msg *m,
		       struct ctl_reply *rep)
{
	struct proto_reclaim q;
	struct mm_slot *slot;

	if (proto_decode_reclaim(m->payload, m->hdr.len, &q))
		return fail(rep, -EBADMSG, "malformed RECLAIM");
	if (q.pid) {
		slot = find_client(c, q.pid);
		if (!slot)
			return fail(rep, -ESRCH,
				    "no client process has that pid");
		mm_slot_put(slot);
	}
	c->job = reclaim_start(c->d, q.pid, q.bytes, reclaim_done, c);
	if (!c->job)
		return fail(rep, -errno, "cannot start the reclaim");
	return CTL_DEFERRED;
}

/* struct compact_work - a COMPACT request, run by the workers */
struct compact_work {
	struct work work;
	struct proto_compact_reply r;
	unsigned int freed;
};

/* One step: COMPACT_STEP_PAGES pool pages at most. Worker. */
static bool compact_step(struct work *w, struct work_ctx *wc)
{
	struct compact_work *cw = container_of(w, struct compact_work, work);

	return atomic_load(&w->cancelled) ||
	       store_compact(wc->store, COMPACT_STEP_PAGES, &cw->freed);
}

/* The pool is as packed as it gets: the reply, unless the connection
 * closed. */
static void compact_done(struct work *w)
{
	struct compact_work *cw = container_of(w, struct compact_work, work);
	struct ctl_conn *c = w->arg;
	struct ctl_reply rep = { .len = 0 };
	struct store_stats ss;

	if (c) {
		c->work = NULL;
		store_get_stats(&c->d->store, &ss);
		cw->r.pages = cw->freed;
		cw->r.pool_after = ss.pool_bytes;
		rep.len = proto_encode_compact_reply(rep.body, &cw->r,
						     c->rd.version);
		ctl_conn_complete(c, 0, &rep);
	}
	free(cw);
}

static int ctl_compact(struct ctl_conn *c, struct proto_msg *m,
		       struct ctl_reply *rep)
{
	struct compact_work *cw;
	struct store_stats ss;

	if (m->hdr.len != 0)
		return fail(rep, -EBADMSG, "COMPACT takes no payload");
	cw = calloc(1, sizeof(*cw));
	if (!cw)
		return fail(rep, -ENOMEM, "no memory for the compaction");
	store_get_stats(&c->d->store, &ss);
	cw->r.pool_before = ss.pool_bytes;
	work_init(&cw->work, compact_step, compact_done, c);
	c->work = &cw->work;
	work_queue(&c->d->work, &cw->work, NULL);
	return CTL_DEFERRED;
}

/* The drain is over: its reply. */
static void drain_reply(struct ctl_conn *c, const struct proto_drain_reply *r)
{
	struct ctl_reply rep = { .len = 0 };

	c->work = NULL;
	rep.len = proto_encode_drain_reply(rep.body, r, c->rd.version);
	ctl_conn_complete(c, 0, &rep);
}

/* DRAIN, from version 3 on: a connection of an older version is answered
 * as a daemon of that version would. */
static int ctl_drain(struct ctl_conn *c, struct proto_msg *m,
		     struct ctl_reply *rep)
{
	/* static: the reply's error text points here after we return (loop
	 * thread only, one request at a time) */
	static char why[PROTO_MAX_ERRMSG];
	struct proto_drain q;

	if (c->rd.version < PROTO_DRAIN_VERSION)
		return fail(rep, -EOPNOTSUPP, "unknown message type");
	if (proto_decode_drain(m->payload, m->hdr.len, &q))
		return fail(rep, -EBADMSG, "malformed DRAIN");
	c->work = drain_start(c, q.flags & PROTO_DRAIN_FORCE, drain_reply,
			      why);
	if (!c->work)
		return fail(rep, -errno, why);
	return CTL_DEFERRED;
}

static int ctl_reload(struct ctl_conn *c, struct proto_msg *m,
		      struct ctl_reply *rep)
{
	/* static: the reply's error text points here after we return (loop
	 * thread only, one request at a time) */
	static char err[CONF_ERR_MAX];
	int ret;

	if (m->hdr.len != 0)
		return fail(rep, -EBADMSG, "RELOAD takes no payload");
	log_info_about("ctl", LOG_CONN(c), "pid %d (uid %u) asks for a reload",
		       (int)c->pid, (unsigned int)c->uid);
	ret = uzswapd_reload(c->d, err);
	return ret ? fail(rep, ret, err) : 0;
}

/* Is @gid the peer's primary or a supplementary group? */
static bool peer_in_group(const struct ctl_conn *c, gid_t gid)
{
	return fdpass_peer_in_group(c->fd, gid) > 0;
}

/* Admin requests: root, the daemon's own user, or the admin group. */
static bool peer_is_admin(const struct ctl_conn *c)
{
	return c->uid == 0 || c->uid == geteuid() ||
	       (c->d->conf.admin_group &&
		peer_in_group(c, c->d->conf.admin_gid));
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
	[PROTO_DAEMON_VERSION] = { false, false, 0, ctl_daemon_version },
	[PROTO_CLIENTS] = { false, true, 0, ctl_clients },
	[PROTO_CLIENT] = { false, true, 0, ctl_client },
	[PROTO_ADMIN_LIMIT] = { false, true, 0, ctl_admin_limit },
	[PROTO_RECLAIM] = { false, true, 0, ctl_reclaim },
	[PROTO_COMPACT] = { false, true, 0, ctl_compact },
	[PROTO_RELOAD] = { false, true, 0, ctl_reload },
	[PROTO_ADMIN_HELLO] = { false, false, 0, ctl_admin_hello },
	[PROTO_DRAIN] = { false, true, 0, ctl_drain },
	[PROTO_FORK] = { true, false, 1, ctl_fork },
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
	c->out_len = proto_frame_reply(c->out, c->rd.version, type, seq,
				       status, rep->body, rep->len,
				       rep->errmsg);
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

	assert_owner_thread(&c->d->thread);
	if (type < PROTO_TYPE_END)
		h = &ctl_handlers[type];
	if (!h || !h->handle)
		ret = fail(&rep, -EOPNOTSUPP, "unknown message type");
	else if (h->needs_hello && !c->ctx)
		ret = fail(&rep, -ENOTCONN, "send HELLO first");
	else if (h->admin && !peer_is_admin(c))
		ret = fail(&rep, -EPERM, "admin requests need root, the "
			   "daemon's user or its admin-group");
	else if (m->nfds != h->nfds)
		ret = fail(&rep, -EBADMSG,
			   "wrong number of file descriptors");
	else
		ret = h->handle(c, m, &rep);
	proto_msg_close_fds(m);
	if (ret == CTL_DEFERRED) {
		c->deferred_type = type;
		c->deferred_seq = m->hdr.seq;
		uv_poll_stop(&c->poll);
		return -EAGAIN;
	}
	if (ret)
		log_debug_about("ctl", LOG_CONN(c, .err = -ret),
				"pid %d: %s refused: %s", (int)c->pid,
				proto_type_name(type), rep.errmsg);
	return conn_reply(c, type, m->hdr.seq, ret, &rep);
}

void ctl_conn_complete(struct ctl_conn *c, int status,
		       const struct ctl_reply *rep)
{
	int ret = conn_reply(c, c->deferred_type, c->deferred_seq, status, rep);

	if (ret && ret != -EAGAIN)
		ctl_conn_close(c);
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

/* The version of the reply to a broken frame: the connection's, else
 * the frame's if this daemon speaks it, else the newest. */
static uint16_t frame_error_version(const struct ctl_conn *c)
{
	uint16_t v = c->rd.msg.hdr.version;

	if (c->rd.version)
		return c->rd.version;
	return v >= PROTO_VERSION_MIN && v <= PROTO_VERSION ? v
							    : PROTO_VERSION;
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
	if (c->job)
		reclaim_cancel(c->job);
	c->job = NULL;
	if (c->work) {
		/* it goes on (an UNREGISTER must finish) without its reply */
		c->work->arg = NULL;
		atomic_store(&c->work->cancelled, true);
	}
	if (c->ctx && c->d->stopping)
		client_hand_over(c);
	else if (c->ctx)
		client_detach(c);
	c->work = NULL;
	free(c->drained);
	c->drained = NULL;
	c->nr_drained = 0;
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
		if (!c->rd.version)
			c->rd.version = c->rd.msg.hdr.version;
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
		log_warn_about("ctl", LOG_CONN(c, .err = -ret),
			       "pid %d: %s; closing its connection",
			       (int)c->pid, frame_error(ret));
		proto_send_reply(c->fd, frame_error_version(c),
				 c->rd.msg.hdr.type, c->rd.msg.hdr.seq, ret,
				 NULL, 0, frame_error(ret));
	} else if (ret != -ECONNRESET) {
		log_debug_about("ctl", LOG_CONN(c),
				"pid %d: connection ends: %s", (int)c->pid,
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
	log_debug_about("ctl", LOG_CONN(c), "connection from pid %d uid %u",
			(int)c->pid, (unsigned int)c->uid);
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
	list_init(&d->conns);
	ret = uv_poll_init(&d->loop, &d->listen, fd);
	if (ret)
		return ret;
	d->listen_fd = fd;
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
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
