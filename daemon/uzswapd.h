/*
 * uzswapd.h - the daemon as a whole: its options, its state, its entry
 * point and its exit codes. daemon/main.c only calls uzswapd_main(); the
 * tests link libuzswapd and drive the same code.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_H
#define UZSWAPD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "conf.h"
#include "evict.h"
#include "lib/common/debug.h"
#include "lib/common/list.h"
#include "load.h"
#include "registry.h"
#include "statedir.h"
#include "stats.h"
#include "store.h"
#include "work.h"


/* Startup failures exit with these codes (listed in uzswapd(8)). */
enum uzswapd_exit {
	UZSWAPD_EXIT_OK = 0,
	UZSWAPD_EXIT_USAGE = 1,		/* bad command line */
	UZSWAPD_EXIT_SOCKET = 3,	/* control socket unusable */
	UZSWAPD_EXIT_RUNNING = 4,	/* another uzswapd owns the socket */
	UZSWAPD_EXIT_THREADS = 5,	/* fault or evictor threads did not start */
	UZSWAPD_EXIT_LOOP = 6,		/* event loop setup failed */
	UZSWAPD_EXIT_BACKING = 7,	/* the backing file given is unusable */
	UZSWAPD_EXIT_METRICS = 8,	/* the metrics address is unusable */
	UZSWAPD_EXIT_CONFIG = 9,	/* the configuration file is wrong */
	UZSWAPD_EXIT_STORE = 10,	/* the compressed store cannot be set up */
	UZSWAPD_EXIT_STATE = 11,	/* the state directory is unusable, in
					   use, or holds invalid state */
};

/*
 * struct uzswapd - the daemon's state; loop thread only unless a field
 * says otherwise
 * @src:       where the configuration comes from (files, command line);
 *             immutable after startup
 * @conf:      the configuration in force; replaced by uzswapd_reload()
 * @loop:      the libuv loop
 * @registry:  the clients; see struct registry for its locking
 * @regions:   every region by id; see struct region_index for its locking
 * @statedir:  the state directory, locked while the daemon runs
 * @taking:    the predecessor's superblock, until it is taken over (at
 *             startup); NULL after, or when there was none
 * @rest:      the image the predecessor left at rest (atrest.h), until
 *             it is taken over; NULL after, or when it left none (a
 *             crash) or one refused: then the takeover recovers page by
 *             page
 * @store:     the compressed store; thread-safe
 * @evictors:  the evictor threads (see evict.h); NULL once stopped
 * @faults:    the fault threads (see fault.h); NULL once stopped
 * @work:      the workers: restores, drops and ADVISE, off the loop
 *             thread (work.h)
 * @comp:      the loop thread's compressor (RECLAIM steps)
 * @run_buf:   the loop thread's EVICT_RUN_PAGES-page buffer (RECLAIM)
 * @listen_fd: the control socket, -1 once closed
 * @bound_path: where the daemon bound it (removed at exit), NULL if
 *             systemd passed it
 * @bound_dev, @bound_ino: the socket file it bound there (0 until
 *             bound): at exit, only that file is removed; immutable once
 *             bound
 * @listen:    libuv poll on @listen_fd
 * @spare_fd:  a descriptor kept in reserve: out of descriptors, it is
 *             closed to accept and drop one connection, so that the
 *             listening socket does not stay readable forever
 * @conns:     every open control connection (struct ctl_conn.all)
 * @forks:     fork copies waiting for their child (fork.h)
 * @signals:   SIGTERM, SIGINT, SIGHUP
 * @tick:      the one-second timer: fault rate, systemd STATUS, watchdog,
 *             fork copies unclaimed too long
 * @rate:      the fault rate and uptime (stats.h)
 * @metrics:   the /metrics server, NULL when off
 * @reload_ok: whether the last reload (SIGHUP or RELOAD) put its
 *             configuration in force; true until the first one
 * @conf_time: when the configuration in force was loaded: at startup, or
 *             by the last reload that succeeded (seconds since the Unix
 *             epoch)
 *             Both loop thread only, as the rest: uzswapd_reload() writes
 *             them, /metrics reads them (its MHD runs on the loop)
 * @max_registered: bytes one process may register (4x RAM); immutable
 * @nr_ctxs:   client uffds not yet released by the fault threads
 * @stopping:  shutdown (a handover) has begun: no new connections
 * @released:  shutdown: the superblock was written for the last time and
 *             every client uffd handed back to its fault thread
 * @draining:  a DRAIN runs (drain.h)
 * @thread:    the loop thread, the one that runs uzswapd_main(); the
 *             loop-thread-only calls check it in debug builds
 */
struct atrest;

struct uzswapd {
	struct conf_source src;
	struct conf conf;
	uv_loop_t loop;
	struct registry registry;
	struct region_index regions;
	struct statedir *statedir;
	struct statedir_state *taking;
	struct atrest *rest;
	struct store store;
	struct evictors *evictors;
	struct fault_pool *faults;
	struct work_pool work;
	struct compressor *comp;
	uint8_t *run_buf;
	int listen_fd;
	char *bound_path;
	dev_t bound_dev;
	ino_t bound_ino;
	uv_poll_t listen;
	int spare_fd;
	struct list_node conns;
	struct list_node forks;
	uv_signal_t signals[3];
	uv_timer_t tick;
	struct stats_rate rate;
	struct metrics *metrics;
	bool reload_ok;
	double conf_time;
	uint64_t max_registered;
	unsigned int nr_ctxs;
	bool stopping;
	bool released;
	bool draining;
	struct owner_thread thread;
};

int uzswapd_main(int argc, char **argv);

/* Begin an orderly shutdown, a handover to the next daemon on the state
 * directory: stop accepting, close every connection (its uffd stays, as
 * after a crash), let the work in flight end, write the superblock a last
 * time and hand every client uffd back to its fault thread (nothing is
 * restored: stored pages, page tables and the backing file stay); the
 * workers and the fault threads stop once the last uffd is released
 * (uzswapd_ctx_released()). */
void uzswapd_shutdown(struct uzswapd *d);

/*
 * uzswapd_reload() - read the configuration again and put what may change
 * live in force (budgets, pool limit, compressor for new pages, metrics
 * address and cap, admin group); keys that need a restart keep their
 * running value (with a warning). On any error nothing changes but
 * @d->reload_ok, which says whether the configuration read was put in
 * force (and @d->conf_time, when it was).
 * Return: 0, or -errno with @err saying why. Loop thread.
 */
int uzswapd_reload(struct uzswapd *d, char err[CONF_ERR_MAX]);

/* A client uffd was released; finishes a shutdown waiting for it. */
void uzswapd_ctx_released(struct uzswapd *d);

#endif /* UZSWAPD_H */
