/*
 * connect.h - how the benchmarks that drive a private uzswapd connect to
 * it: the script that starts the daemon does not wait for it to listen.
 *
 * Private to bench/.
 */
#ifndef UZSWAP_BENCH_CONNECT_H
#define UZSWAP_BENCH_CONNECT_H

#include "uzswap.h"

/* uzswap_connect(@path), retried for up to 2 s while the daemon has not
 * bound or not yet listens on its socket; NULL with errno otherwise. */
uzswap_t *bench_connect(const char *path);

#endif /* UZSWAP_BENCH_CONNECT_H */
