/*
 * uffdctx.h - a client's userfaultfd as the daemon holds it: the
 * descriptor, who it belongs to, and its reference count. Regions,
 * the eviction protocol and loads reach the uffd through it; the fault
 * threads serve it (fault.h) but do not own it.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_UFFDCTX_H
#define UZSWAPD_UFFDCTX_H

#include <stdatomic.h>
#include <stdbool.h>

#include "lib/common/list.h"

struct mm_slot;

/*
 * struct uffd_ctx - one client userfaultfd, served by one fault thread
 * @fd:     the daemon's descriptor of the uffd; immutable, closed with the
 *          last reference
 * @refs:   references: its connection's, until released by its fault
 *          thread, and each region's registered on it (atomic)
 * @slot:   the client process; immutable; @slot_put drops the reference
 *          the context holds on it
 * @slot_put: how that reference is dropped; immutable
 * @thread: index of the fault thread serving it; set by fault_attach()
 * @user_mode_only: the client could only get a user-mode-only uffd;
 *          immutable
 * @client_fd: the uffd's number in the client's table (HELLO's, checked
 *          with kcmp); immutable
 * @slot_node: entry of @slot's uffds while its connection is open, or
 *          while it waits for one (@orphan); loop thread only
 * @orphan: taken over from a dead daemon, and no connection of the
 *          client has resumed it yet: the slot holds the reference a
 *          connection would; loop thread only
 * @gone:   an ioctl said the process is gone; its fault thread only
 * @ra_next: the address a sequential stream of faults on stored pages
 *          would fault next; its fault thread only
 * @ra_window: read-ahead pages for the next such fault (0: the stream is
 *          not sequential); its fault thread only
 * @node:   entry of the release queues (thread, then loop); each queue's
 *          lock
 */
struct uffd_ctx {
	int fd;
	atomic_uint refs;
	struct mm_slot *slot;
	void (*slot_put)(struct mm_slot *slot);
	unsigned int thread;
	bool user_mode_only;
	int client_fd;
	struct list_node slot_node;
	bool orphan;
	bool gone;
	unsigned long ra_next;
	unsigned int ra_window;
	struct list_node node;
};

/* Allocate a context for @fd (taken over; the client's number
 * @client_fd) serving @slot, with one reference; it takes over the
 * caller's reference on @slot, which the last uffd_ctx_put() drops with
 * @slot_put (on failure too). NULL+errno. */
struct uffd_ctx *uffd_ctx_alloc(int fd, int client_fd, struct mm_slot *slot,
				void (*slot_put)(struct mm_slot *slot),
				bool user_mode_only);
void uffd_ctx_get(struct uffd_ctx *ctx);
/* Drop a reference; the last closes the uffd and frees the context. */
void uffd_ctx_put(struct uffd_ctx *ctx);

#endif /* UZSWAPD_UFFDCTX_H */
