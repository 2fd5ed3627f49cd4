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
#include <sys/types.h>

struct ctl_conn;
struct uffd_ctx;
struct uzswapd;
struct work;

/*
 * client_attach() - give connection @c (after a valid HELLO) its process's
 * mm_slot and a uffd context for @uffd (taken over; @client_fd in the
 * client's table), served by the fault threads from now on.
 * Return: 0 or -errno (@uffd closed then).
 */
int client_attach(struct ctl_conn *c, int uffd, int client_fd,
		  bool user_mode_only);

/*
 * client_detach() - detach connection @c from its slot: its regions leave
 * the slot now; a worker then restores and unregisters them (the process
 * runs) or drops their pages (it is gone), after the work of @c's last
 * request (@c->work) if that still runs; then its uffd is released. @c
 * holds no slot, uffd or teardown after. Cost on the loop thread:
 * O(regions of the slot) per region of @c.
 */
void client_detach(struct ctl_conn *c);

/*
 * client_unregister() - UNREGISTER: take the region of @c starting at
 * @start out of its slot; a worker writes every stored page back into its
 * memfd, then unregisters its range from the uffd. @done(@c) follows on
 * the loop thread once it is over, unless @c closed meanwhile (the work's
 * arg is then NULL). A page that cannot be restored (corrupt) keeps its
 * range registered: a touch of it blocks rather than reading zeros.
 * Return: the work (@c->work until @done), or NULL with errno EINVAL (no
 * region of @c starts at @start) or ENOMEM. Loop thread.
 */
struct work *client_unregister(struct ctl_conn *c, unsigned long start,
			       void (*done)(void *arg));

/*
 * Clients taken over from a dead daemon. client_adopt() gives process
 * @pid (@uid, watched through @pidfd: taken over) a slot if it has none,
 * and a context for its @uffd (taken over; @client_fd in its table) that
 * no connection holds yet (an orphan: the slot holds it); its regions are
 * added to the slot by the caller, then client_serve() hands it to the
 * fault threads. It is torn down as a closed connection's when the
 * process exits, unless a connection of it resumes it first
 * (client_resume()). Return: the context, or NULL with errno set (@uffd
 * and @pidfd closed).
 */
struct uffd_ctx *client_adopt(struct uzswapd *d, pid_t pid, uid_t uid,
			      int pidfd, int uffd, int client_fd,
			      bool user_mode_only);
int client_serve(struct uzswapd *d, struct uffd_ctx *ctx);

/*
 * Handover (a shutdown): nothing is restored, every client is left as it
 * is for the successor on the state directory. client_hand_over() closes
 * connection @c's side only: its uffd stays, an orphan, as after a
 * crash. Once the work in flight is done, client_release_all() hands
 * every uffd back to its fault thread; as the last one of a process is
 * released, its regions are let go (their stored pages, registered
 * ranges and table files stay). Loop thread.
 */
void client_hand_over(struct ctl_conn *c);
void client_release_all(struct uzswapd *d);

/*
 * client_resume() - HELLO with RESUME: connection @c carries on with the
 * orphan context of its process whose uffd is @uffd's file (taken over:
 * closed), as if it had made it.
 * Return: 0; -ESTALE if the process has no such orphan (the daemon holds
 * no state of it); -ENOMEM.
 */
int client_resume(struct ctl_conn *c, int uffd);

/* Fault-thread release callback (see fault_start()); @arg is the
 * daemon. */
void client_ctx_released(struct uffd_ctx *ctx, void *arg);

#endif /* UZSWAPD_CLIENT_H */
