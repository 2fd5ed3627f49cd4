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
#include <uv.h>

#include "evict.h"
#include "lib/common/list.h"
#include "load.h"
#include "registry.h"
#include "store.h"

#define UZSWAPD_DEFAULT_SOCKET "/run/uzswap/uzswapd.sock"
#define UZSWAPD_STATE_DIR "/var/lib/uzswap"
#define UZSWAPD_DEFAULT_BACKING UZSWAPD_STATE_DIR "/backing"

/* Startup failures exit with these codes (listed in uzswapd(8)). */
enum uzswapd_exit {
	UZSWAPD_EXIT_OK = 0,
	UZSWAPD_EXIT_USAGE = 1,		/* bad command line */
	UZSWAPD_EXIT_SOCKET = 3,	/* control socket unusable */
	UZSWAPD_EXIT_RUNNING = 4,	/* another uzswapd owns the socket */
	UZSWAPD_EXIT_THREADS = 5,	/* fault threads did not start */
	UZSWAPD_EXIT_LOOP = 6,		/* event loop setup failed */
	UZSWAPD_EXIT_BACKING = 7,	/* the backing file given is unusable */
};

struct uzswapd_options {
	const char *socket_path;	/* NULL: socket activation or default */
	unsigned int fault_threads;
	struct evict_config evict;	/* budgets and evictor threads */
	enum compress_algo algo;
	int zstd_level;
	uint64_t pool_limit;		/* bytes; 0: none */
	const char *backing_path;	/* NULL: the default */
	uint64_t backing_limit;		/* bytes */
	bool no_mlock;
};

/*
 * struct uzswapd - the daemon's state; loop thread only unless a field
 * says otherwise
 * @opts:      options; immutable after startup
 * @loop:      the libuv loop
 * @registry:  the clients; see struct registry for its locking
 * @store:     the compressed store; thread-safe
 * @lc:        the loop thread's compressor and page buffer (restores,
 *             WILLNEED advice)
 * @run_buf:   the loop thread's EVICT_RUN_PAGES-page buffer (COLD advice)
 * @listen_fd: the control socket, -1 once closed
 * @bound_path: where the daemon bound it (removed at exit), NULL if
 *             systemd passed it
 * @listen:    libuv poll on @listen_fd
 * @spare_fd:  a descriptor kept in reserve: out of descriptors, it is
 *             closed to accept and drop one connection, so that the
 *             listening socket does not stay readable forever
 * @conns:     every open control connection (struct ctl_conn.all)
 * @signals:   SIGTERM, SIGINT, SIGHUP
 * @max_registered: bytes one process may register (4x RAM); immutable
 * @nr_ctxs:   client uffds not yet released by the fault threads
 * @stopping:  shutdown has begun: no new connections
 */
struct uzswapd {
	struct uzswapd_options opts;
	uv_loop_t loop;
	struct registry registry;
	struct store store;
	struct load_ctx lc;
	uint8_t *run_buf;
	int listen_fd;
	const char *bound_path;
	uv_poll_t listen;
	int spare_fd;
	struct list_node conns;
	uv_signal_t signals[3];
	uint64_t max_registered;
	unsigned int nr_ctxs;
	bool stopping;
};

int uzswapd_main(int argc, char **argv);

/* Begin an orderly shutdown: stop accepting, close every connection
 * (clients keep their memory); the fault threads stop once the last
 * client uffd is released (uzswapd_ctx_released()). */
void uzswapd_shutdown(struct uzswapd *d);

/* A client uffd was released; finishes a shutdown waiting for it. */
void uzswapd_ctx_released(struct uzswapd *d);

#endif /* UZSWAPD_H */
