/*
 * takeover.h - a daemon started on the state directory of one that died
 * (a crash, a kill, a restart) carries on with its clients: their uffds
 * and memfds taken back from their own descriptor tables, their regions'
 * page tables and the pool mapped again from the directory, every page
 * recovered, and every thread that waited on the dead daemon woken
 * (docs/architecture.md, "Restart without loss").
 *
 * Private to uzswapd. Loop thread, at startup.
 */
#ifndef UZSWAPD_TAKEOVER_H
#define UZSWAPD_TAKEOVER_H

struct statedir_state;
struct uzswapd;

/*
 * takeover_run() - take over what @st (the predecessor's superblock)
 * describes. The store must have been made on the predecessor's pool
 * files and be recovering (store_recover_begin()); this ends its recovery
 * (store_recover_end()). A client whose process is gone, or whose
 * descriptors are no longer the recorded ones, is left: what it had
 * stored is freed. The new superblock is written at the end.
 * Return: 0, or -errno if the store could not be recovered (then nothing
 * can be trusted, and the daemon must not start).
 */
int takeover_run(struct uzswapd *d, const struct statedir_state *st);

#endif /* UZSWAPD_TAKEOVER_H */
