/*
 * client.c - the life of a client process; see client.h.
 *
 * A process may hold several connections (several uzswap_connect() calls,
 * each with its own uffd); they share its mm_slot. References to the slot:
 * the registry's (dropped when the pidfd watch is closed), one per
 * connection, one per uffd context (dropped when the context is freed).
 *
 * Teardown, for a connection: its regions leave the slot at once (on the
 * loop thread: a list operation per region), then a worker (work.c) takes
 * them in steps of WORK_STEP_PAGES pages: if the process still runs and
 * maps the region, it restores every stored page into the memfd and
 * unregisters the range from the uffd, so that the process keeps using
 * its memory normally; if the process is gone, or no longer maps the
 * region (it exec'd another program: its old memory went with its old
 * image), it drops the stored pages. The connection's last
 * request, if its work is still running, goes first (the teardown is
 * chained after it). Only once the teardown is done is the uffd detached
 * from its fault thread (which serves the range's faults until then), and
 * once the thread hands it back it is closed. The slot leaves the
 * registry when it has neither connections nor uffds left, so it outlives
 * the work on it. A process exit, seen on its pidfd, closes all its
 * connections at once. UNREGISTER restores its one region the same way.
 * Nothing here waits on the loop thread: other clients' faults and
 * control requests go on while a teardown runs.
 *
 * A crash in the middle of a teardown loses nothing: until its regions
 * are unregistered (or dropped), they stay on the slot's leaving list and
 * their uffd on the slot's list, so the superblock still names them, and
 * a successor takes them over as managed regions; the superblock is
 * written again once the teardown is done.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "adopt.h"
#include "client.h"
#include "ctl.h"
#include "fault.h"
#include "lib/common/killpoint.h"
#include "lib/uffd/uffd.h"
#include "load.h"
#include "log.h"
#include "registry.h"
#include "statedir.h"
#include "uzswapd.h"
#include "work.h"

/*
 * struct client_teardown - regions leaving their slot, torn down by a
 * worker in steps; the worker running it owns every field but @work's
 * loop-thread ones
 * @work:    its place in the work pool
 * @regions: the regions, taken out of their slot (struct region.node),
 *           each with the list's reference
 * @restore: restore each into its memfd and unregister its range (a live
 *           process), else drop its stored pages (a dead one)
 * @mapped:  the first region is still mapped in the process: restored
 *           (if @restore); one the process no longer maps (it exec'd:
 *           the old image is gone with its memory) is dropped, not
 *           restored into memory nobody will read
 * @next:    the next page of the first region
 * @failed:  a page of the first region could not be restored
 * @d:       the daemon
 * @slot:    a connection's teardown: its slot (holding the connection's
 *           reference), NULL for UNREGISTER
 * @ctx:     a connection's teardown: its uffd, detached once done
 * @done:    UNREGISTER: told (with @work.arg) once the region is restored
 */
struct client_teardown {
	struct work work;
	struct list_node regions;
	bool restore;
	bool mapped;
	size_t next;
	bool failed;
	struct uzswapd *d;
	struct mm_slot *slot;
	struct uffd_ctx *ctx;
	void (*done)(void *arg);
};

static void read_comm(struct mm_slot *slot)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)slot->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, slot->comm, sizeof(slot->comm) - 1);
	close(fd);
	if (n > 0 && slot->comm[n - 1] == '\n')
		n--;
	slot->comm[n > 0 ? n : 0] = '\0';
}

static void pid_watch_closed(uv_handle_t *handle)
{
	struct mm_slot *slot = container_of((uv_poll_t *)handle,
					    struct mm_slot, pid_watch);

	close(slot->pidfd);
	slot->pidfd = -1;
	mm_slot_put(slot);
}

/* Remove the slot from @d's registry once nothing uses it any more. */
static void slot_maybe_remove(struct uzswapd *d, struct mm_slot *slot)
{
	if (!list_empty(&slot->conns) || slot->ctxs || slot->pidfd < 0 ||
	    uv_is_closing((uv_handle_t *)&slot->pid_watch))
		return;
	log_debug_about("client", LOG_CLIENT(slot), "pid %d (%s) removed",
			(int)slot->pid, slot->comm);
	registry_remove(&d->registry, slot);
	uv_close((uv_handle_t *)&slot->pid_watch, pid_watch_closed);
}

static void orphan_detach(struct uzswapd *d, struct uffd_ctx *ctx);

static void pid_exited(uv_poll_t *handle, int status, int events)
{
	struct mm_slot *slot = container_of(handle, struct mm_slot, pid_watch);
	struct uzswapd *d = handle->data;
	struct list_node *pos, *tmp;

	log_info_about("client", LOG_CLIENT(slot), "pid %d (%s) exited",
		       (int)slot->pid, slot->comm);
	uv_poll_stop(handle);
	mm_slot_get(slot);
	list_for_each_safe(pos, tmp, &slot->conns)
		ctl_conn_close(container_of(pos, struct ctl_conn, node));
	list_for_each_safe(pos, tmp, &slot->uffds) {
		struct uffd_ctx *ctx = container_of(pos, struct uffd_ctx,
						    slot_node);

		if (ctx->orphan)
			orphan_detach(d, ctx);
	}
	slot_maybe_remove(d, slot);
	mm_slot_put(slot);
}

static int pidfd_of(struct ctl_conn *c)
{
	int fd = c->pidfd;

	if (fd >= 0) {
		c->pidfd = -1;
		return fd;
	}
	fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	return fd < 0 ? -errno : fd;
}

/* A new slot of process @pid (@uid) watched through @pidfd (taken over),
 * in the registry, with a reference for the caller. NULL+errno. */
static struct mm_slot *slot_create(struct uzswapd *d, pid_t pid, uid_t uid,
				   int pidfd)
{
	struct mm_slot *slot = mm_slot_alloc(pid, uid);
	int ret;

	if (!slot) {
		close(pidfd);
		return NULL;
	}
	read_comm(slot);
	/* a process gone already keeps 0, which no process starts at */
	adopt_start_time(slot->pid, &slot->start_time);
	slot->pidfd = pidfd;
	ret = uv_poll_init(&d->loop, &slot->pid_watch, slot->pidfd);
	if (ret) {
		close(slot->pidfd);
		goto out_put;
	}
	slot->pid_watch.data = d;
	uv_poll_start(&slot->pid_watch, UV_READABLE, pid_exited);
	registry_insert(&d->registry, slot);	/* pid is new: cannot fail */
	log_info_about("client", LOG_CLIENT(slot), "pid %d (%s) connected",
		       (int)slot->pid, slot->comm);
	mm_slot_get(slot);			/* the caller's */
	return slot;

out_put:
	mm_slot_put(slot);
	errno = -ret;
	return NULL;
}

/* The slot of @c's process, created (and watched) if new, with a
 * reference for the connection. */
static struct mm_slot *slot_get_or_create(struct ctl_conn *c)
{
	struct mm_slot *slot = registry_find(&c->d->registry, c->pid);
	int pidfd;

	if (slot) {
		read_comm(slot);	/* it may have exec'd another program */
		return slot;
	}
	pidfd = pidfd_of(c);
	if (pidfd < 0) {
		errno = -pidfd;
		return NULL;
	}
	return slot_create(c->d, c->pid, c->uid, pidfd);
}

/* @r (restored into its memfd unless @t->failed) leaves its uffd. */
static void teardown_unregister(struct client_teardown *t, struct region *r)
{
	int ret;

	if (t->failed) {
		log_err_about("client", LOG_REGION(r),
			      "pid %d: region %llu could not be fully "
			      "restored; it stays registered, and a touch of "
			      "a lost page blocks", (int)r->slot->pid,
			      (unsigned long long)r->id);
		return;
	}
	ret = uffd_unregister(r->ctx->fd, (void *)r->start,
			      r->npages << PAGE_SHIFT);
	if (ret && !uffd_unregister_gone(ret))
		log_warn_about("client", LOG_REGION(r, .err = -ret),
			       "pid %d: unregister %#lx: %s",
			       (int)r->slot->pid, r->start, strerror(-ret));
}

/* One step: up to WORK_STEP_PAGES pages of the first region. Worker. */
static bool teardown_step(struct work *w, struct work_ctx *wc)
{
	struct client_teardown *t = container_of(w, struct client_teardown,
						 work);
	struct region *r;
	size_t end;

	if (list_empty(&t->regions))
		return true;
	r = container_of(t->regions.next, struct region, node);
	if (t->next == 0)
		t->mapped = t->restore &&
			    !region_verify_mapping(r->slot->pid, r->start,
						   r->npages << PAGE_SHIFT,
						   r->memfd);
	end = work_step_end(t->next, r->npages);
	if (!t->mapped)
		region_drop_stored(r, t->next, end);
	else if (load_region_restore(r, t->next, end, &wc->lc))
		t->failed = true;
	killpoint("unregister.restoring");
	t->next = end;
	if (end < r->npages)
		return false;
	if (t->mapped)
		teardown_unregister(t, r);
	killpoint("unregister.unregistered");
	mm_slot_region_left(r->slot, r);
	list_del(&r->node);
	region_put(r);
	t->next = 0;
	t->failed = false;
	return list_empty(&t->regions);
}

/* A connection's teardown is over: its uffd goes back to its fault
 * thread. Loop thread. */
static void detach_done(struct work *w)
{
	struct client_teardown *t = container_of(w, struct client_teardown,
						 work);
	struct mm_slot *slot = t->slot;

	list_del(&t->ctx->slot_node);
	fault_detach(t->d->faults, t->ctx);
	statedir_save(t->d->statedir, &t->d->registry);
	slot_maybe_remove(t->d, slot);
	free(t);
	mm_slot_put(slot);
}

/* UNREGISTER's teardown is over. Loop thread. */
static void unregister_done(struct work *w)
{
	struct client_teardown *t = container_of(w, struct client_teardown,
						 work);

	statedir_save(t->d->statedir, &t->d->registry);
	if (w->arg)
		t->done(w->arg);
	free(t);
}

static struct client_teardown *teardown_alloc(struct uzswapd *d, bool restore,
					      work_done_fn done)
{
	struct client_teardown *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->d = d;
	work_init(&t->work, teardown_step, done, NULL);
	list_init(&t->regions);
	t->restore = restore;
	return t;
}

int client_attach(struct ctl_conn *c, int uffd, int client_fd,
		  bool user_mode_only)
{
	struct mm_slot *slot;
	struct uffd_ctx *ctx;
	int ret;

	c->teardown = teardown_alloc(c->d, true, detach_done);
	if (!c->teardown) {
		close(uffd);
		return -ENOMEM;
	}
	slot = slot_get_or_create(c);
	if (!slot) {
		ret = -errno;
		close(uffd);
		goto out_free_teardown;
	}
	mm_slot_get(slot);		/* the context's */
	ctx = uffd_ctx_alloc(uffd, client_fd, slot, mm_slot_put,
			     user_mode_only);
	if (!ctx) {
		ret = -ENOMEM;
		goto out_put;
	}
	ret = fault_attach(c->d->faults, ctx);
	if (ret) {
		uffd_ctx_put(ctx);
		goto out_put;
	}
	slot->ctxs++;
	c->d->nr_ctxs++;
	c->slot = slot;
	c->ctx = ctx;
	list_add_tail(&c->node, &slot->conns);
	list_add_tail(&ctx->slot_node, &slot->uffds);
	return 0;

out_put:
	mm_slot_put(slot);
	slot_maybe_remove(c->d, slot);
out_free_teardown:
	free(c->teardown);
	c->teardown = NULL;
	return ret;
}

void client_detach(struct ctl_conn *c)
{
	struct client_teardown *t = c->teardown;
	struct region *r;

	assert_owner_thread(&c->d->thread);
	list_del(&c->node);
	t->restore = uv_is_active((uv_handle_t *)&c->slot->pid_watch);
	t->slot = c->slot;
	t->ctx = c->ctx;
	while ((r = mm_slot_give_back_region(c->slot, REGION_ANY_START,
					     c->ctx)))
		list_add_tail(&r->node, &t->regions);
	work_queue(&c->d->work, &t->work, c->work);
	c->teardown = NULL;
	c->ctx = NULL;
	c->slot = NULL;
	statedir_save(c->d->statedir, &c->d->registry);
}

struct work *client_unregister(struct ctl_conn *c, unsigned long start,
			       void (*done)(void *arg))
{
	struct client_teardown *t = teardown_alloc(c->d, true,
						   unregister_done);
	struct region *r;

	assert_owner_thread(&c->d->thread);
	if (!t)
		return NULL;
	r = mm_slot_give_back_region(c->slot, start, c->ctx);
	if (!r) {
		free(t);
		errno = EINVAL;
		return NULL;
	}
	list_add_tail(&r->node, &t->regions);
	t->done = done;
	t->work.arg = c;
	work_queue(&c->d->work, &t->work, NULL);
	statedir_save(c->d->statedir, &c->d->registry);
	return &t->work;
}

/*****************
 * Clients taken over from a dead daemon
 *****************/

struct uffd_ctx *client_adopt(struct uzswapd *d, pid_t pid, uid_t uid,
			      int pidfd, int uffd, int client_fd,
			      bool user_mode_only)
{
	struct mm_slot *slot = registry_find(&d->registry, pid);
	struct uffd_ctx *ctx;

	assert_owner_thread(&d->thread);
	if (slot)
		close(pidfd);
	else if (!(slot = slot_create(d, pid, uid, pidfd)))
		goto out_close;
	mm_slot_get(slot);		/* the context's */
	ctx = uffd_ctx_alloc(uffd, client_fd, slot, mm_slot_put,
			     user_mode_only);
	if (!ctx) {
		mm_slot_put(slot);
		slot_maybe_remove(d, slot);
		return NULL;
	}
	ctx->orphan = true;
	slot->ctxs++;
	d->nr_ctxs++;
	list_add_tail(&ctx->slot_node, &slot->uffds);
	mm_slot_put(slot);		/* the registry keeps it */
	return ctx;

out_close:
	close(uffd);
	return NULL;
}

int client_serve(struct uzswapd *d, struct uffd_ctx *ctx)
{
	assert_owner_thread(&d->thread);
	return fault_attach(d->faults, ctx);
}

/* An orphan goes as a closed connection's uffd: a worker restores its
 * regions (the process runs) or drops their pages (it exited), then it
 * is released. */
static void orphan_detach(struct uzswapd *d, struct uffd_ctx *ctx)
{
	bool alive = uv_is_active((uv_handle_t *)&ctx->slot->pid_watch);
	struct client_teardown *t = teardown_alloc(d, alive, detach_done);
	struct mm_slot *slot = ctx->slot;
	struct region *r;

	if (!t) {
		log_err_about("client", LOG_CLIENT(slot, .err = ENOMEM),
			      "pid %d: out of memory: its regions stay until "
			      "the daemon stops", (int)slot->pid);
		return;
	}
	ctx->orphan = false;
	mm_slot_get(slot);		/* the teardown's */
	t->slot = slot;
	t->ctx = ctx;
	while ((r = mm_slot_give_back_region(slot, REGION_ANY_START, ctx)))
		list_add_tail(&r->node, &t->regions);
	work_queue(&d->work, &t->work, NULL);
	statedir_save(d->statedir, &d->registry);
}

/*****************
 * Handing over to a successor
 *****************/

void client_hand_over(struct ctl_conn *c)
{
	assert_owner_thread(&c->d->thread);
	list_del(&c->node);
	c->ctx->orphan = true;
	free(c->teardown);
	c->teardown = NULL;
	mm_slot_put(c->slot);		/* the connection's */
	c->ctx = NULL;
	c->slot = NULL;
}

void client_release_all(struct uzswapd *d)
{
	struct list_node *pos, *tmp;
	struct mm_slot *slot;
	pid_t pid = 0;

	assert_owner_thread(&d->thread);
	while ((slot = registry_next_after(&d->registry, pid))) {
		pid = slot->pid;
		list_for_each_safe(pos, tmp, &slot->uffds) {
			struct uffd_ctx *ctx = container_of(pos,
							    struct uffd_ctx,
							    slot_node);

			list_del(&ctx->slot_node);
			ctx->orphan = false;
			fault_detach(d->faults, ctx);
		}
		mm_slot_put(slot);
	}
}

/* The last uffd of @slot is released in a handover: its regions leave
 * the daemon as they are (pages stored, ranges registered, tables kept). */
static void slot_let_go(struct mm_slot *slot)
{
	struct region *r;

	while ((r = mm_slot_take_region(slot, REGION_ANY_START, NULL)))
		region_put(r);
}

/* Whether descriptors @a and @b of this process are one file. */
static bool same_file(int a, int b)
{
	pid_t me = getpid();

	return syscall(SYS_kcmp, me, me, KCMP_FILE, a, b) == 0;
}

int client_resume(struct ctl_conn *c, int uffd)
{
	struct mm_slot *slot = registry_find(&c->d->registry, c->pid);
	struct uffd_ctx *ctx = NULL;
	struct list_node *pos;

	assert_owner_thread(&c->d->thread);
	if (!slot)
		goto out_stale;
	list_for_each(pos, &slot->uffds) {
		ctx = container_of(pos, struct uffd_ctx, slot_node);
		if (ctx->orphan && same_file(ctx->fd, uffd))
			break;
		ctx = NULL;
	}
	if (!ctx)
		goto out_stale;
	c->teardown = teardown_alloc(c->d, true, detach_done);
	if (!c->teardown) {
		mm_slot_put(slot);
		close(uffd);
		return -ENOMEM;
	}
	close(uffd);			/* the daemon holds it already */
	ctx->orphan = false;
	c->slot = slot;			/* with registry_find()'s reference */
	c->ctx = ctx;
	list_add_tail(&c->node, &slot->conns);
	return 0;

out_stale:
	if (slot)
		mm_slot_put(slot);
	close(uffd);
	return -ESTALE;
}

void client_ctx_released(struct uffd_ctx *ctx, void *arg)
{
	struct mm_slot *slot = ctx->slot;
	struct uzswapd *d = arg;

	mm_slot_get(slot);
	uffd_ctx_put(ctx);
	slot->ctxs--;
	if (d->stopping && !slot->ctxs)
		slot_let_go(slot);
	slot_maybe_remove(d, slot);
	mm_slot_put(slot);
	d->nr_ctxs--;
	uzswapd_ctx_released(d);
}
