/*
 * connect.h - how the benchmarks that drive a private uzswapd connect to
 * it (the script that starts the daemon does not wait for it to listen),
 * advise it over whole regions, and read its counters.
 *
 * Private to bench/.
 */
#ifndef UZSWAP_BENCH_CONNECT_H
#define UZSWAP_BENCH_CONNECT_H

#include <sys/types.h>

#include "uzswap.h"

/* uzswap_connect(@path), retried for up to 2 s while the daemon has not
 * bound or not yet listens on its socket; NULL with errno otherwise. */
uzswap_t *bench_connect(const char *path);

/* uzswap_advise(@c, ...) over @len bytes at @region, in requests of at
 * most 64 MiB: the daemon answers a request when it is done, and a
 * request longer than the library's timeout (5 s) would fail. Return: 0,
 * or -errno of the first request that failed (the rest not sent). */
int bench_advise(uzswap_t *c, char *region, size_t len, int advice);

/* The daemon's counters (an admin request), on a connection of its own
 * to @path. Return: 0 or -errno. */
int bench_daemon_status(const char *path, struct uzswap_status *st);

/* The step a benchmark is at (STEP()), for its message on stderr. */
extern const char *bench_step;

/* What went wrong at bench_step with @err: a data check's failure, a
 * STATUS request's errno, or libuzswap's error. */
const char *bench_step_error(int err);

/* Run @expr as step @what; an error (in the caller's ret) goes to out. */
#define STEP(what, expr) \
	do { \
		bench_step = (what); \
		if ((ret = (expr))) \
			goto out; \
	} while (0)

/* The CPU time process @pid (the daemon) has used so far, every thread
 * of it (/proc/PID/task/TID/schedstat), in nanoseconds. Return: 0 or
 * -errno. */
int bench_daemon_cpu_ns(pid_t pid, double *ns);

#endif /* UZSWAP_BENCH_CONNECT_H */
