/*
 * drain.h - DRAIN (uzswapctl drain), swapoff for uzswap: every stored page
 * back into its client's memfd and every region released (its range
 * unregistered from the uffd), while the daemon keeps running and keeps
 * its clients' connections. See drain.c.
 *
 * Private to uzswapd. Loop thread only.
 */
#ifndef UZSWAPD_DRAIN_H
#define UZSWAPD_DRAIN_H

#include <stdbool.h>

#include "lib/proto/proto.h"

struct ctl_conn;
struct work;

/* The drain asked for by a connection is over: @arg is the connection
 * (NULL if it closed meanwhile: then nothing is called), @r what was done. */
typedef void drain_done_fn(struct ctl_conn *c,
			   const struct proto_drain_reply *r);

/*
 * drain_start() - start a drain for connection @c: the regions of every
 * client are taken (a reference each, O(regions) here), the memory their
 * stored pages need back is weighed against MemAvailable, and a worker
 * restores and releases them one by one. @done(@c, ...) follows on the
 * loop thread once it is over, unless @c closed (which stops the drain at
 * its next step: the regions released so far stay released).
 * @force:  drain even if the pages need more than MemAvailable
 * @why:    the reason of a refusal, for the reply
 * Return: the work (@c->work until @done); NULL with errno EBUSY (a drain
 * runs), ENOMEM (it does not fit, or no memory), EIO (MemAvailable is
 * unreadable), @why set.
 */
struct work *drain_start(struct ctl_conn *c, bool force, drain_done_fn *done,
			 char why[PROTO_MAX_ERRMSG]);

/*
 * drain_forget() - UNREGISTER found no region of @c at @start: whether a
 * drain released one there (the client does not know it yet); if so it is
 * forgotten. O(regions a drain released on @c).
 */
bool drain_forget(struct ctl_conn *c, unsigned long start);

#endif /* UZSWAPD_DRAIN_H */
