/*
 * client.h - the life of a client process in uzswapd: its mm_slot appears
 * with its first HELLO, is watched through a pidfd, and goes when its last
 * connection is closed and its uffds are released — or at once when the
 * process exits, whatever state it was in.
 *
 * Private to uzswapd. Loop thread only.
 */
#ifndef UZSWAPD_CLIENT_H
#define UZSWAPD_CLIENT_H

#include <stdbool.h>

struct ctl_conn;
struct region;
struct uffd_ctx;
struct uzswapd;

/*
 * client_attach() - give connection @c (after a valid HELLO) its process's
 * mm_slot and a uffd context for @uffd (taken over), served by the fault
 * threads from now on. Return: 0 or -errno (@uffd closed then).
 */
int client_attach(struct ctl_conn *c, int uffd, bool user_mode_only);

/* Detach connection @c from its slot: its regions are unregistered and
 * dropped, its uffd is released. */
void client_detach(struct ctl_conn *c);

/* Write every stored page of @r (taken out of its slot) back into its
 * memfd, before its range is unregistered from a live client. Return: 0,
 * or -EIO if a page could not be restored: the range must then stay
 * registered (a touch of that page blocks rather than reading zeros). */
int client_restore_region(struct uzswapd *d, struct region *r);

/* Fault-thread release callback (see fault_start()). */
void client_ctx_released(struct uffd_ctx *ctx);

#endif /* UZSWAPD_CLIENT_H */
