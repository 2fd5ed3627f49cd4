/*
 * client.c - the life of a client process; see client.h.
 *
 * A process may hold several connections (several uzswap_connect() calls,
 * each with its own uffd); they share its mm_slot. References to the slot:
 * the registry's (dropped when the pidfd watch is closed), one per
 * connection, one per uffd context (dropped when the context is freed).
 *
 * Teardown, for a connection: its regions leave the slot (unregistered
 * from the uffd if the process still runs, so that it keeps using its
 * memory normally), its uffd is detached from its fault thread, and once
 * the thread hands it back it is closed. The slot leaves the registry when
 * it has neither connections nor uffds left. A process exit, seen on its
 * pidfd, closes all its connections at once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "fault.h"
#include "lib/uffd/uffd.h"
#include "load.h"
#include "log.h"
#include "registry.h"
#include "uzswapd.h"

/* The daemon whose clients these are; set by the first client_attach(). */
static struct uzswapd *client_daemon;

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

/* Remove the slot once nothing uses it any more. */
static void slot_maybe_remove(struct mm_slot *slot)
{
	if (!list_empty(&slot->conns) || slot->ctxs || slot->pidfd < 0 ||
	    uv_is_closing((uv_handle_t *)&slot->pid_watch))
		return;
	log_debug("client", "pid %d (%s) removed", (int)slot->pid,
		  slot->comm);
	registry_remove(&client_daemon->registry, slot);
	uv_close((uv_handle_t *)&slot->pid_watch, pid_watch_closed);
}

static void pid_exited(uv_poll_t *handle, int status, int events)
{
	struct mm_slot *slot = container_of(handle, struct mm_slot, pid_watch);
	struct list_node *pos, *tmp;

	log_info("client", "pid %d (%s) exited", (int)slot->pid, slot->comm);
	uv_poll_stop(handle);
	mm_slot_get(slot);
	list_for_each_safe(pos, tmp, &slot->conns)
		ctl_conn_close(container_of(pos, struct ctl_conn, node));
	slot_maybe_remove(slot);
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

/* The slot of @c's process, created (and watched) if new, with a
 * reference for the connection. */
static struct mm_slot *slot_get_or_create(struct ctl_conn *c)
{
	struct uzswapd *d = c->d;
	struct mm_slot *slot = registry_find(&d->registry, c->pid);
	int ret;

	if (slot)
		return slot;
	slot = mm_slot_alloc(c->pid, c->uid);
	if (!slot)
		return NULL;
	read_comm(slot);
	slot->pidfd = pidfd_of(c);
	if (slot->pidfd < 0) {
		ret = slot->pidfd;
		goto out_put;
	}
	ret = uv_poll_init(&d->loop, &slot->pid_watch, slot->pidfd);
	if (ret) {
		close(slot->pidfd);
		goto out_put;
	}
	uv_poll_start(&slot->pid_watch, UV_READABLE, pid_exited);
	registry_insert(&d->registry, slot);	/* pid is new: cannot fail */
	log_info("client", "pid %d (%s) connected", (int)slot->pid,
		 slot->comm);
	mm_slot_get(slot);			/* the connection's */
	return slot;

out_put:
	mm_slot_put(slot);
	errno = -ret;
	return NULL;
}

int client_attach(struct ctl_conn *c, int uffd, bool user_mode_only)
{
	struct mm_slot *slot;
	struct uffd_ctx *ctx;
	int ret;

	client_daemon = c->d;
	slot = slot_get_or_create(c);
	if (!slot) {
		close(uffd);
		return -errno;
	}
	mm_slot_get(slot);		/* the context's */
	ctx = uffd_ctx_alloc(uffd, slot, mm_slot_put, user_mode_only);
	if (!ctx) {
		ret = -ENOMEM;
		goto out_put;
	}
	ret = fault_attach(ctx);
	if (ret) {
		uffd_ctx_put(ctx);
		goto out_put;
	}
	slot->ctxs++;
	c->d->nr_ctxs++;
	c->slot = slot;
	c->ctx = ctx;
	list_add_tail(&c->node, &slot->conns);
	return 0;

out_put:
	mm_slot_put(slot);
	slot_maybe_remove(slot);
	return ret;
}

void client_detach(struct ctl_conn *c)
{
	struct mm_slot *slot = c->slot;
	bool alive = uv_is_active((uv_handle_t *)&slot->pid_watch);
	struct region *r;
	int ret;

	list_del(&c->node);
	while ((r = mm_slot_take_region(slot, REGION_ANY_START, c->ctx))) {
		if (alive && client_restore_region(c->d, r) == 0) {
			ret = uffd_unregister(c->ctx->fd, (void *)r->start,
					      r->npages << PAGE_SHIFT);
			if (ret && !uffd_unregister_gone(ret))
				log_warn("client", "pid %d: unregister %#lx: %s",
					 (int)slot->pid, r->start,
					 strerror(-ret));
		}
		region_put(r);
	}
	fault_detach(c->ctx);
	c->ctx = NULL;
	c->slot = NULL;
	slot_maybe_remove(slot);
	mm_slot_put(slot);
}

int client_restore_region(struct uzswapd *d, struct region *r)
{
	int ret = load_region_restore(r, &d->lc);

	if (ret)
		log_err("client", "pid %d: region %llu could not be fully "
			"restored; it stays registered, and a touch of a "
			"lost page blocks", (int)r->slot->pid,
			(unsigned long long)r->id);
	return ret;
}

void client_ctx_released(struct uffd_ctx *ctx)
{
	struct mm_slot *slot = ctx->slot;

	mm_slot_get(slot);
	uffd_ctx_put(ctx);
	slot->ctxs--;
	slot_maybe_remove(slot);
	mm_slot_put(slot);
	client_daemon->nr_ctxs--;
	uzswapd_ctx_released(client_daemon);
}
