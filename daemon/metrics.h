/*
 * metrics.h - the Prometheus endpoint of uzswapd: GET /metrics in text
 * format 0.0.4 and GET / (a short HTML page linking it), served with
 * libmicrohttpd on the daemon's libuv loop (MHD's external epoll mode:
 * MHD's epoll descriptor is one uv_poll_t, its timeouts one uv_timer_t),
 * so that every response reads the daemon's counters on the loop thread.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_METRICS_H
#define UZSWAPD_METRICS_H

struct uzswapd;
struct metrics;

#define METRICS_DEFAULT_LISTEN "127.0.0.1:9577"
/*
 * The per-client series (uzswap_client_*, labelled pid and command) cover
 * at most this many clients by default: those with the most resident
 * memory. The others are only counted, in uzswap_metrics_clients_omitted,
 * so that a host with thousands of clients does not flood Prometheus with
 * series (7 per client).
 */
#define METRICS_DEFAULT_CLIENTS 64

/*
 * metrics_start() - serve /metrics on @listen
 * @listen:      "HOST:PORT" with an IPv4 literal, "[ADDR]:PORT" with an
 *               IPv6 literal (IPv6 only, never IPv4-mapped), or
 *               "localhost:PORT" (127.0.0.1); no name is resolved. PORT 0
 *               binds an ephemeral port. Copied.
 * @max_clients: per-client series for at most this many clients (those
 *               with the most resident memory); 0 for none
 *
 * Once serving, logs "serving http://ADDR:PORT/metrics" with the address
 * really bound (the port chosen for PORT 0).
 * Return: the server, or NULL with errno set and the reason logged as an
 * error: EINVAL (not such an address), EADDRINUSE, EADDRNOTAVAIL (not an
 * address of this host), EACCES (a port below 1024 without
 * CAP_NET_BIND_SERVICE), ENOMEM, EIO (libmicrohttpd refused to start).
 * Loop thread.
 */
struct metrics *metrics_start(struct uzswapd *d, const char *listen,
			      unsigned int max_clients);

/* Change the per-client cap of a running server. Loop thread. */
void metrics_set_max_clients(struct metrics *m, unsigned int max_clients);

/* Stop serving: every connection and the listening socket are closed at
 * once, @m is freed once its handles are closed (run the loop to finish).
 * NULL is a no-op. Loop thread. */
void metrics_stop(struct metrics *m);

#endif /* UZSWAPD_METRICS_H */
