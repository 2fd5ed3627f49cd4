/*
 * fork.h - a client's fork(): the child's private copy of a managed
 * region, made by FORK before the fork and claimed by the child's
 * REGISTER after it (DESIGN.md, "Unmodified programs": the child never
 * touches the parent's memfd; stored objects are shared, not copied).
 *
 * Private to uzswapd. Loop thread, but for the copy's steps (a worker).
 */
#ifndef UZSWAPD_FORK_H
#define UZSWAPD_FORK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ctl_conn;
struct region;
struct uzswapd;
struct work;

#define FORK_PENDING_MAX 16	/* copies one process may have unclaimed */

/*
 * fork_start() - FORK: copy @parent (a region of connection @c, a
 * reference taken) into a new region over @memfd (the child's: empty,
 * as long as @parent; taken over), by a worker. @done(@c, status, token)
 * follows on the loop thread, unless @c closed meanwhile; the copy then
 * waits for its child (fork_claim()) at most PROTO_FORK_CLAIM_MS.
 * Return: the work (@c->work until @done), or NULL with errno EBUSY (too
 * many copies of this process unclaimed) or ENOMEM.
 */
struct work *fork_start(struct ctl_conn *c, struct region *parent, int memfd,
			void (*done)(struct ctl_conn *c, int status,
				     uint64_t token));

/*
 * fork_claim() - REGISTER with PROTO_REGION_FORKED: the copy named
 * @token, taken out of the pending copies with its reference, if the
 * claimer (@uid) is of the forking process's user, sent the copy's own
 * memfd (@memfd, the claimer's, only compared) and names its range
 * [@start, @start + @len). The caller sets its owner
 * (region_set_owner()). Return: the region, or NULL with errno ENOENT
 * (no such copy: never made, expired, or made by a daemon before this
 * one), EPERM (another user's, or not its memfd) or EINVAL (another
 * range).
 */
struct region *fork_claim(struct uzswapd *d, uint64_t token, uid_t uid,
			  int memfd, unsigned long start, size_t len);

/* A claimed copy @r that could not join its child's slot: a worker drops
 * its stored pages, then the reference. Loop thread. */
void fork_drop(struct uzswapd *d, struct region *r);

/* Drop the copies unclaimed past their time, or every one if @all (a
 * shutdown: before the regions are handed over). */
void fork_expire(struct uzswapd *d, bool all);

#endif /* UZSWAPD_FORK_H */
