/*
 * metrics.c - the Prometheus endpoint of uzswapd (see metrics.h).
 *
 * libmicrohttpd (MHD) runs in its external epoll mode on the daemon's
 * loop: MHD keeps the listening socket and every connection in an epoll
 * set of its own, whose descriptor the loop watches with one uv_poll_t;
 * one uv_timer_t calls MHD again when MHD_get_timeout() asks (an idle
 * connection to drop) or when a connection's request deadline passes.
 * Every MHD callback therefore runs on the loop thread: a scrape reads the
 * counters with stats_snapshot() (the write-back tier's histogram with
 * them), the fault histogram with fault_get_latency()
 * and the clients with stats_client_rows(), as the control socket does,
 * the reload status from struct uzswapd (loop thread only: the reload
 * runs there too), and nothing in this file takes a lock of its own.
 *
 * What is exported comes from the lists of lib/proto/counters.h, looped
 * over: every counter there that names a metric, the daemon's from
 * stats_status() (as STATUS sends them), each client's from its row. Only
 * uzswap_build_info, uzswap_start_time_seconds, the reload status
 * (uzswap_config_last_reload_*, named as Prometheus names its own), the
 * write-back batch counters (put_writeback(): STATUS has no room left for
 * them), the clean-page retention's (put_retention(), for the same
 * reason), the fault-latency histogram, the write-back tier's backend
 * and request-latency histogram (put_backing()), uzswap_metrics_clients_omitted
 * and the process_* series every Prometheus client library exports
 * (put_process(): CPU, memory, descriptors, start time, from /proc/self)
 * are written here by hand.
 *
 * A scrape: GET /metrics -> one snapshot of the counters -> every client's
 * row, in pages of PROTO_CLIENTS_PER_PAGE, keeping the @max_clients with
 * the most resident bytes in a min-heap (the others are only counted, in
 * uzswap_metrics_clients_omitted) -> text format 0.0.4 into a growable
 * buffer that MHD sends and frees. Cost, on the loop thread: O(clients^2 /
 * PROTO_CLIENTS_PER_PAGE) row visits under the registry lock (each page
 * walks the registry: 25,000 visits for 1,000 clients), a read of
 * /proc/self/stat and a listing of /proc/self/fd (O(descriptors): a few
 * per client), and a body of about 7 KiB plus 1 KiB per client shown.
 *
 * What a peer can make the daemon do is bounded, and no peer can keep a
 * scrape waiting:
 *   - every connection is accepted at once, up to METRICS_MAX_CONNS live
 *     ones; one more cuts off (shutdown(2)) the live connection that has
 *     waited longest for its request head or its answer. A scraper sends
 *     its whole request as it connects and is answered by the MHD_run()
 *     that reads it, so slow peers, however many, only push each other
 *     out. Connections cut off but not yet closed by MHD count against
 *     MHD's own limit, METRICS_MHD_CONNS: at most that many sockets and
 *     METRICS_MEMORY_LIMIT of request memory each (about 2.5 MiB), plus
 *     METRICS_BACKLOG connections the kernel holds before accept(2);
 *   - a request head must be complete METRICS_HEAD_MS after the
 *     connection was made or its previous request answered, and the
 *     answer sent METRICS_REQUEST_MS after the head came in; past that
 *     the connection is cut off (a peer trickling a byte at a time never
 *     goes idle); MHD closes one idle for METRICS_IDLE_TIMEOUT_S;
 *   - request headers within METRICS_MEMORY_LIMIT per connection (MHD
 *     answers an error status beyond, and closes);
 *   - no request body: a request announcing one gets 413 and is closed;
 *   - only GET and HEAD of /metrics and /: other methods 405 (with Allow),
 *     other paths 404.
 * Limits per peer address would not help: Prometheus on this host shares
 * 127.0.0.1 with any local process that floods.
 *
 * Teardown (metrics_stop()): close the uv_poll_t (libuv drops the epoll
 * descriptor from its own set at once) and the timer, then
 * MHD_stop_daemon(), which closes every connection, MHD's epoll set and
 * the listening socket; the struct is freed by the last close callback.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "compress.h"
#include "fault.h"
#include "lib/common/clock.h"
#include "lib/common/list.h"
#include "lib/common/macros.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "uzswapd.h"

#define METRICS_MAX_CONNS	128
#define METRICS_MHD_CONNS	(METRICS_MAX_CONNS + 32)
#define METRICS_BACKLOG		128
#define METRICS_IDLE_TIMEOUT_S	5u
#define METRICS_HEAD_MS		5000
#define METRICS_REQUEST_MS	10000
#define METRICS_MEMORY_LIMIT	(16 * 1024)
#define METRICS_BODY_START	(16 * 1024)

#define HTTP_CONTENT_TOO_LARGE	413

#define CONTENT_TYPE_METRICS	"text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT	"text/plain; charset=utf-8"
#define CONTENT_TYPE_HTML	"text/html; charset=utf-8"

static const char index_page[] =
	"<!DOCTYPE html>\n"
	"<html><head><meta charset=\"utf-8\"><title>uzswapd</title></head>\n"
	"<body><h1>uzswapd</h1>\n"
	"<p><a href=\"/metrics\">/metrics</a>: Prometheus metrics</p>\n"
	"</body></html>\n";

/*
 * struct metrics_conn - one HTTP connection, for its deadline; loop
 * thread only (MHD's connection callbacks)
 * @node:     entry of struct metrics.conns while live; unlinked once cut
 *            off
 * @fd:       its socket (MHD's: only ever shut down here, never closed)
 * @deadline: when its request head must be in, or its answer sent (ms,
 *            monotonic); UINT64_MAX once cut off
 */
struct metrics_conn {
	struct list_node node;
	int fd;
	uint64_t deadline;
};

/*
 * struct metrics - the server; loop thread only
 * @d:           the daemon whose counters are served; immutable
 * @mhd:         the MHD daemon, NULL once stopped
 * @poll:        the loop's watch on MHD's epoll descriptor
 * @timer:       MHD's timeouts and the request deadlines
 * @conns:       live connections (struct metrics_conn.node), the one
 *               waiting longest (for a request head or an answer) first
 * @nr_conns:    entries of @conns
 * @max_clients: per-client series for at most this many clients
 * @open_handles: handles not yet closed; the last close frees the struct
 * @nr_closed:   connections closed so far
 * @start_time:  when the daemon started, Unix time in seconds; immutable
 * @process_start: when its process started, Unix time in seconds (0:
 *               unknown, /proc/self/stat unreadable); immutable
 * @listen:      the address as given to metrics_start(); immutable
 * @bound:       the address really bound ("127.0.0.1:9577"); immutable
 * @mhd_error:   MHD's last log message, for a failure at startup
 */
struct metrics {
	struct uzswapd *d;
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	struct list_node conns;
	unsigned int nr_conns;
	unsigned int max_clients;
	unsigned int open_handles;
	uint64_t nr_closed;
	double start_time;
	double process_start;
	char *listen;
	char bound[ADDR_STRLEN];
	char mhd_error[160];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*****************
 * The body: a growable buffer
 *****************/

/* A failed allocation sets @failed; later appends are then no-ops. */
struct mbuf {
	char *p;
	size_t len;
	size_t cap;
	bool failed;
};

static bool mbuf_reserve(struct mbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : METRICS_BODY_START;
	char *p;

	if (b->failed)
		return false;
	if (b->len + more < b->cap)
		return true;
	while (cap <= b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void mbuf_put(struct mbuf *b, const char *s, size_t n)
{
	if (!mbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!mbuf_reserve(b, 256))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!mbuf_reserve(b, (size_t)n + 1))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/*****************
 * Text format 0.0.4
 *****************/

/* Length of the valid UTF-8 sequence at @s (NUL-terminated), 0 if the
 * bytes there are not one (stray continuation, overlong form, surrogate,
 * beyond U+10FFFF, or cut short). */
static size_t utf8_seq_len(const unsigned char *s)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/*
 * A label value: backslash, double quote and newline escaped as the text
 * format wants; bytes that are not UTF-8 (a command name is whatever bytes
 * the process chose, cut at 15) become U+FFFD.
 */
static void put_label_value(struct mbuf *b, const char *value)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t n;

	while (*s) {
		n = utf8_seq_len(s);
		if (n == 0) {
			mbuf_put(b, "\xef\xbf\xbd", 3);
			n = 1;
		} else if (*s == '\\') {
			mbuf_put(b, "\\\\", 2);
		} else if (*s == '"') {
			mbuf_put(b, "\\\"", 2);
		} else if (*s == '\n') {
			mbuf_put(b, "\\n", 2);
		} else {
			mbuf_put(b, (const char *)s, n);
		}
		s += n;
	}
}

/* "# HELP" and "# TYPE" of a family; @help holds no backslash or
 * newline. */
static void put_family(struct mbuf *b, const char *name, const char *type,
		       const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		    type);
}

static void put_gauge(struct mbuf *b, const char *name, const char *help,
		      uint64_t v)
{
	put_family(b, name, "gauge", help);
	mbuf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* @ns nanoseconds as decimal seconds, exactly ("0.000005", "0.1"). */
static void put_seconds(struct mbuf *b, uint64_t ns)
{
	char frac[10];
	int i;

	snprintf(frac, sizeof(frac), "%09" PRIu64, ns % 1000000000u);
	for (i = 8; i >= 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	mbuf_printf(b, "%" PRIu64 "%s%s", ns / 1000000000u, frac[0] ? "." : "",
		    frac);
}

/*****************
 * The metrics
 *****************/

static void put_info(struct mbuf *b, const struct metrics *m,
		     const struct stats_snapshot *s)
{
	put_family(b, "uzswap_build_info", "gauge",
		   "Always 1: the release of uzswapd, and the compressor it "
		   "uses for new pages.");
	mbuf_printf(b, "uzswap_build_info{version=\"");
	put_label_value(b, PACKAGE_VERSION);
	mbuf_printf(b, "\",compressor=\"");
	put_label_value(b, compress_algo_name(s->algo));
	mbuf_printf(b, "\"} 1\n");
	put_family(b, "uzswap_start_time_seconds", "gauge",
		   "When uzswapd started, in seconds since the Unix epoch.");
	mbuf_printf(b, "uzswap_start_time_seconds %.3f\n", m->start_time);
}

/* Whether the last reload put its configuration in force, and when the
 * one in force was loaded: Prometheus's own prometheus_config_last_reload_*
 * under uzswap's prefix. Loop thread (the reload's). */
static void put_reload(struct mbuf *b, const struct uzswapd *d)
{
	put_gauge(b, "uzswap_config_last_reload_successful",
		  "1 if the last reload of the configuration (SIGHUP, "
		  "uzswapctl reload) put it in force, and before any reload; "
		  "0 if it was refused and the one before stays.",
		  d->reload_ok);
	put_family(b, "uzswap_config_last_reload_success_timestamp_seconds",
		   "gauge", "When the configuration in force was loaded (at "
		   "startup, or by the last reload that succeeded), in "
		   "seconds since the Unix epoch.");
	mbuf_printf(b, "uzswap_config_last_reload_success_timestamp_seconds "
		    "%.3f\n", d->conf_time);
}

/*
 * struct metrics_series - a counter of counters.h that /metrics exports
 * @type:  "gauge" or "counter"; NULL: not exported
 * @name:  its family
 * @label: its labels within the family, or ""
 * @help:  the family's help text
 * @off:   where its value is in the struct the list expands into
 * @size:  the value's bytes: 4 or 8
 */
struct metrics_series {
	const char *type;
	const char *name;
	const char *label;
	const char *help;
	size_t off;
	size_t size;
};

#define METRICS_STATUS_SERIES(x, name, since, pub, json, show, mtype,	\
			      metric, label, help)			\
	{ mtype, metric, label, help,					\
	  offsetof(struct proto_status_reply, name), sizeof(uint64_t) },
#define METRICS_CLIENT_SERIES(x, type, name, since, pub, json, mtype,	\
			      metric, help)				\
	{ mtype, metric, "", help,					\
	  offsetof(struct proto_client_row, name), sizeof(type) },

static const struct metrics_series status_series[] = {
	COUNTERS_STATUS(METRICS_STATUS_SERIES, _)
};

static const struct metrics_series client_series[] = {
	COUNTERS_CLIENT(METRICS_CLIENT_SERIES, _)
};

/* The value of @s in @base, a struct the list expanded into. */
static uint64_t series_value(const struct metrics_series *s,
			     const void *base)
{
	const char *p = (const char *)base + s->off;
	uint32_t v32;
	uint64_t v64;

	if (s->size == sizeof(v32)) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

/* Whether @s[@i] is exported and first of its family in @s. */
static bool family_first(const struct metrics_series *s, size_t i)
{
	size_t j;

	if (!s[i].type)
		return false;
	for (j = 0; j < i; j++)
		if (s[j].type && !strcmp(s[j].name, s[i].name))
			return false;
	return true;
}

/*
 * Every counter of COUNTERS_STATUS that names a metric, each family once
 * (HELP and TYPE, then its members), in the order of the list's first
 * member of each. O(entries^2) string compares: about 1,600.
 */
static void put_status(struct mbuf *b, const struct proto_status_reply *r)
{
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(status_series); i++) {
		const struct metrics_series *f = &status_series[i];

		if (!family_first(status_series, i))
			continue;
		put_family(b, f->name, f->type, f->help);
		for (j = i; j < ARRAY_SIZE(status_series); j++) {
			const struct metrics_series *m = &status_series[j];

			if (!m->type || strcmp(m->name, f->name))
				continue;
			mbuf_printf(b, "%s%s%s%s %" PRIu64 "\n", m->name,
				    m->label[0] ? "{" : "", m->label,
				    m->label[0] ? "}" : "",
				    series_value(m, r));
		}
	}
}

static void put_counter(struct mbuf *b, const char *name, const char *help,
			uint64_t v)
{
	put_family(b, name, "counter", help);
	mbuf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* Reclaim from the bottom in batches: whether it keeps up (STATUS has no
 * room left for these; they are /metrics only). */
static void put_writeback(struct mbuf *b, const struct store_stats *st)
{
	put_family(b, "uzswap_writeback_batches_total", "counter",
		   "Batches of pool objects written to the backing file, one "
		   "write each, by who wrote them: the writer thread ahead of "
		   "need, or an evictor that found the pool full (direct).");
	mbuf_printf(b, "uzswap_writeback_batches_total{by=\"writer\"} %"
		    PRIu64 "\n", st->wb_batches - st->wb_direct_batches);
	mbuf_printf(b, "uzswap_writeback_batches_total{by=\"direct\"} %"
		    PRIu64 "\n", st->wb_direct_batches);
	put_counter(b, "uzswap_writeback_bytes_total",
		    "Bytes written to the backing file by write-back batches "
		    "(objects, each padded to 512 bytes).", st->wb_bytes);
	put_counter(b, "uzswap_writeback_busy_objects_total",
		    "Pool objects reclaim could not write back because their "
		    "page was busy (being loaded, or not yet punched).",
		    st->wb_busy);
	put_counter(b, "uzswap_writeback_wakeups_total",
		    "Times the writer thread started writing back because the "
		    "pool reached its high mark.", st->wb_wakeups);
	put_gauge(b, "uzswap_writeback_high_mark_bytes",
		  "Pool bytes at which the writer thread starts writing back "
		  "(0: no pool limit).",
		  st->pool_limit / 100 * STORE_WB_HIGH_PCT);
}

/* Clean-page retention: pool objects kept for resident pages, what
 * evicting them again saved, and what reclaim gave up (/metrics only, as
 * put_writeback()'s). */
static void put_retention(struct mbuf *b, const struct stats_snapshot *s)
{
	put_gauge(b, "uzswap_retained_pages",
		  "Resident pages that kept their pool object since they were "
		  "loaded unchanged (clean-page retention): evicting one again "
		  "is a hole punch.", s->store.retained);
	put_gauge(b, "uzswap_retained_bytes",
		  "Pool bytes of those objects; they are in uzswap_pool_bytes, "
		  "not in uzswap_pool_payload_bytes.", s->store.retained_bytes);
	put_counter(b, "uzswap_evicted_clean_pages_total",
		    "Pages evicted unchanged since their load: their retained "
		    "object stored again, with no read, no compression and no "
		    "allocation.", s->evict.clean);
	put_counter(b, "uzswap_retained_given_up_objects_total",
		    "Retained objects freed to make room in the pool, before "
		    "anything was written back.", s->store.retain_given_up);
}

static void put_latency(struct mbuf *b, struct fault_pool *fp)
{
	struct fault_latency l;
	uint64_t cum = 0;
	unsigned int i;

	fault_get_latency(fp, &l);
	put_family(b, "uzswap_fault_latency_seconds", "histogram",
		   "Service time of page faults in uzswapd: from reading the "
		   "fault off the client's userfaultfd to resolving it (page "
		   "copied in, faulting thread woken). The kernel's delivery "
		   "and the client's wakeup are not included.");
	for (i = 0; i < FAULT_LATENCY_BUCKETS; i++) {
		cum += l.bucket[i];
		mbuf_printf(b, "uzswap_fault_latency_seconds_bucket{le=\"");
		put_seconds(b, l.le_ns[i]);
		mbuf_printf(b, "\"} %" PRIu64 "\n", cum);
	}
	mbuf_printf(b, "uzswap_fault_latency_seconds_bucket{le=\"+Inf\"} "
		    "%" PRIu64 "\n", l.count);
	mbuf_printf(b, "uzswap_fault_latency_seconds_sum ");
	put_seconds(b, l.sum_ns);
	mbuf_printf(b, "\nuzswap_fault_latency_seconds_count %" PRIu64 "\n",
		    l.count);
}

/* The write-back tier: which backend, and the latency of its requests
 * (the histogram is /metrics only; STATUS has their sums). */
static void put_backing(struct mbuf *b, const struct stats_snapshot *s)
{
	static const char *const op[2] = { "read", "write" };
	const struct backing_stats *st = &s->backing;
	unsigned int i, k;

	put_family(b, "uzswap_backing_info", "gauge",
		   "Always 1: where the pool writes back when full (backend "
		   "none, file or nbd).");
	mbuf_printf(b, "uzswap_backing_info{backend=\"%s\"} 1\n",
		    s->has_backing ? st->kind : "none");
	put_family(b, "uzswap_backing_request_duration_seconds", "histogram",
		   "Time of the write-back tier's requests, by operation: a "
		   "read of one object for a fault, a write of a batch of "
		   "objects (or of one). An NBD request's includes the round "
		   "trip to the server.");
	for (k = 0; k < 2; k++) {
		for (i = 0; i < BACKING_LATENCY_BUCKETS; i++) {
			mbuf_printf(b, "uzswap_backing_request_duration_"
				    "seconds_bucket{op=\"%s\",le=\"", op[k]);
			put_seconds(b, BACKING_LATENCY_US[i] * 1000ull);
			mbuf_printf(b, "\"} %" PRIu64 "\n", st->latency[k][i]);
		}
		mbuf_printf(b, "uzswap_backing_request_duration_seconds_bucket"
			    "{op=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", op[k],
			    st->latency[k][BACKING_LATENCY_BUCKETS]);
		mbuf_printf(b, "uzswap_backing_request_duration_seconds_sum"
			    "{op=\"%s\"} ", op[k]);
		put_seconds(b, st->latency_ns[k]);
		mbuf_printf(b, "\nuzswap_backing_request_duration_seconds_count"
			    "{op=\"%s\"} %" PRIu64 "\n", op[k],
			    st->latency[k][BACKING_LATENCY_BUCKETS]);
	}
}

/*****************
 * The process: the process_* series of the Prometheus clients
 *****************/

/*
 * struct proc_stat - what /proc/self/stat (proc(5)) says of the daemon
 * @cpu_ticks:   user and system time (utime + stime), in clock ticks
 * @start_ticks: when the process started, in clock ticks after boot
 * @vsize:       virtual memory size, bytes
 * @rss:         resident pages
 */
struct proc_stat {
	uint64_t cpu_ticks;
	uint64_t start_ticks;
	uint64_t vsize;
	uint64_t rss;
};

/* Read /proc/self/stat into @ps; false (errno set) if it cannot be read
 * or parsed. */
static bool proc_stat_read(struct proc_stat *ps)
{
	char buf[4096];
	uint64_t utime, stime;
	const char *fields;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* the command name (field 2) may hold spaces and ')': field 3 follows
	 * the last ')'; then fields 14, 15 (utime, stime) and 22 to 24
	 * (starttime, vsize, rss) are read */
	fields = strrchr(buf, ')');
	errno = EINVAL;
	if (!fields ||
	    sscanf(fields + 1, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
		   "%" SCNu64 " %" SCNu64 " %*s %*s %*s %*s %*s %*s %" SCNu64
		   " %" SCNu64 " %" SCNu64, &utime, &stime, &ps->start_ticks,
		   &ps->vsize, &ps->rss) != 5)
		return false;
	ps->cpu_ticks = utime + stime;
	return true;
}

/* @ticks clock ticks (sysconf(_SC_CLK_TCK) a second) in nanoseconds. */
static uint64_t ticks_ns(uint64_t ticks)
{
	uint64_t hz = (uint64_t)sysconf(_SC_CLK_TCK);

	return ticks / hz * 1000000000u + ticks % hz * 1000000000u / hz;
}

/*
 * When the process started, in seconds since the Unix epoch; 0 if
 * /proc/self/stat cannot be read. Its start is in ticks after boot
 * (suspend included); boot, on the wall clock, is now less the time
 * since boot (CLOCK_BOOTTIME, suspend included too). The official clients
 * read boot from /proc/stat (btime, whole seconds), which a unit with
 * ProcSubset=pid hides.
 */
static double process_start_time(void)
{
	struct proc_stat ps;
	struct timespec up;
	double boot;

	if (!proc_stat_read(&ps))
		return 0;
	clock_gettime(CLOCK_BOOTTIME, &up);
	boot = clock_unix_s() - ((double)up.tv_sec + up.tv_nsec / 1e9);
	return boot + (double)ticks_ns(ps.start_ticks) / 1e9;
}

/* Descriptors open, as /proc/self/fd lists them, without the one that
 * lists them (which the official clients count); -1 with errno set if it
 * cannot be read. O(descriptors). */
static long open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n - 1;
}

/*
 * The series the official Prometheus clients (Go, Python) export for
 * their process, with their names, help texts and meaning: CPU time,
 * resident and virtual memory, descriptors open and their limit
 * (RLIMIT_NOFILE's soft one), start time. A source that cannot be read
 * leaves its series out (logged as a debug line). O(descriptors).
 */
static void put_process(struct mbuf *b, const struct metrics *m)
{
	struct proc_stat ps;
	struct rlimit rl;
	long fds;

	if (proc_stat_read(&ps)) {
		put_family(b, "process_cpu_seconds_total", "counter",
			   "Total user and system CPU time spent in seconds.");
		mbuf_printf(b, "process_cpu_seconds_total ");
		put_seconds(b, ticks_ns(ps.cpu_ticks));
		mbuf_printf(b, "\n");
		put_gauge(b, "process_resident_memory_bytes",
			  "Resident memory size in bytes.",
			  ps.rss * (uint64_t)sysconf(_SC_PAGESIZE));
		put_gauge(b, "process_virtual_memory_bytes",
			  "Virtual memory size in bytes.", ps.vsize);
	} else {
		log_debug("metrics", "/proc/self/stat: %s", strerror(errno));
	}
	if (m->process_start) {
		put_family(b, "process_start_time_seconds", "gauge",
			   "Start time of the process since unix epoch in "
			   "seconds.");
		mbuf_printf(b, "process_start_time_seconds %.3f\n",
			    m->process_start);
	}
	fds = open_fds();
	if (fds >= 0)
		put_gauge(b, "process_open_fds",
			  "Number of open file descriptors.", (uint64_t)fds);
	else
		log_debug("metrics", "/proc/self/fd: %s", strerror(errno));
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		put_gauge(b, "process_max_fds",
			  "Maximum number of open file descriptors.",
			  rl.rlim_cur);
}

/*****************
 * Per-client series
 *****************/

/*
 * struct top_clients - the @max rows with the most resident bytes seen so
 * far, as a min-heap (the root is the first to go), growing as needed
 * @rows:    the heap, @n entries in @cap
 * @omitted: rows seen but not kept
 */
struct top_clients {
	struct proto_client_row *rows;
	size_t n, cap, max;
	uint64_t omitted;
	bool failed;
};

/* Whether @a ranks below @b: fewer resident bytes, then higher pid. */
static bool row_below(const struct proto_client_row *a,
		      const struct proto_client_row *b)
{
	if (a->resident_bytes != b->resident_bytes)
		return a->resident_bytes < b->resident_bytes;
	return a->pid > b->pid;
}

static void row_swap(struct proto_client_row *a, struct proto_client_row *b)
{
	struct proto_client_row t = *a;

	*a = *b;
	*b = t;
}

static void top_sift_down(struct top_clients *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, low = i;

		if (l < t->n && row_below(&t->rows[l], &t->rows[low]))
			low = l;
		if (r < t->n && row_below(&t->rows[r], &t->rows[low]))
			low = r;
		if (low == i)
			return;
		row_swap(&t->rows[i], &t->rows[low]);
		i = low;
	}
}

static void top_sift_up(struct top_clients *t, size_t i)
{
	while (i && row_below(&t->rows[i], &t->rows[(i - 1) / 2])) {
		row_swap(&t->rows[i], &t->rows[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
}

static void top_add(struct top_clients *t, const struct proto_client_row *r)
{
	struct proto_client_row *grown;

	if (t->n < t->max && t->n == t->cap && !t->failed) {
		size_t cap = t->cap ? 2 * t->cap : 16;

		if (cap > t->max)
			cap = t->max;
		grown = realloc(t->rows, cap * sizeof(*grown));
		if (grown) {
			t->rows = grown;
			t->cap = cap;
		} else {
			t->failed = true;	/* keep what fits */
		}
	}
	if (t->n < t->cap) {
		t->rows[t->n] = *r;
		top_sift_up(t, t->n++);
		return;
	}
	t->omitted++;
	if (t->n && row_below(&t->rows[0], r)) {
		t->rows[0] = *r;
		top_sift_down(t, 0);
	}
}

static int by_pid(const void *a, const void *b)
{
	int32_t x = ((const struct proto_client_row *)a)->pid;
	int32_t y = ((const struct proto_client_row *)b)->pid;

	return (x > y) - (x < y);
}

/* Every client's row, in pages; keeps the top @t->max. */
static void top_collect(struct top_clients *t, struct uzswapd *d)
{
	struct proto_client_row page[PROTO_CLIENTS_PER_PAGE];
	pid_t after = 0;
	bool more;
	size_t n, i;

	do {
		n = stats_client_rows(&d->registry, after, page,
				      PROTO_CLIENTS_PER_PAGE, &more);
		for (i = 0; i < n; i++)
			top_add(t, &page[i]);
		if (n)
			after = page[n - 1].pid;
	} while (more && n);
	if (t->n)
		qsort(t->rows, t->n, sizeof(t->rows[0]), by_pid);
}

static void put_client_labels(struct mbuf *b,
			      const struct proto_client_row *r)
{
	mbuf_printf(b, "{pid=\"%d\",command=\"", (int)r->pid);
	put_label_value(b, r->comm);
	mbuf_printf(b, "\"}");
}

/* One per-client family: a line per row kept. */
static void put_client_family(struct mbuf *b, const struct top_clients *t,
			      const struct metrics_series *f)
{
	size_t i;

	put_family(b, f->name, f->type, f->help);
	for (i = 0; i < t->n; i++) {
		mbuf_printf(b, "%s", f->name);
		put_client_labels(b, &t->rows[i]);
		mbuf_printf(b, " %" PRIu64 "\n",
			    series_value(f, &t->rows[i]));
	}
}

/* Every counter of COUNTERS_CLIENT that names a metric, for the clients
 * kept. */
static void put_clients(struct mbuf *b, struct metrics *m)
{
	struct top_clients t = { .max = m->max_clients };
	char help[160];
	size_t i;

	top_collect(&t, m->d);
	for (i = 0; i < ARRAY_SIZE(client_series); i++)
		if (client_series[i].type)
			put_client_family(b, &t, &client_series[i]);
	snprintf(help, sizeof(help),
		 "Clients without uzswap_client_* series: only the %u with "
		 "the most resident bytes get them.", m->max_clients);
	put_gauge(b, "uzswap_metrics_clients_omitted", help, t.omitted);
	free(t.rows);
}

/* The whole exposition; NULL if out of memory. */
static char *metrics_render(struct metrics *m, size_t *len)
{
	struct proto_status_reply r;
	struct stats_snapshot s;
	struct mbuf b = { 0 };

	stats_snapshot(m->d, &s);
	stats_status(&s, &r);
	put_info(&b, m, &s);
	put_reload(&b, m->d);
	put_status(&b, &r);
	put_writeback(&b, &s.store);
	put_retention(&b, &s);
	put_latency(&b, m->d->faults);
	put_backing(&b, &s);
	put_clients(&b, m);
	put_process(&b, m);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/*****************
 * HTTP
 *****************/

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status,
			     struct MHD_Response *r, const char *type,
			     const char *allow)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;	/* out of memory: MHD closes */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c,
				  unsigned int status, const char *text,
				  const char *type, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

	return reply(c, status, r, type, allow);
}

static enum MHD_Result reply_metrics(struct metrics *m,
				     struct MHD_Connection *c)
{
	struct MHD_Response *r;
	size_t len;
	char *body = metrics_render(m, &len);

	if (!body) {
		log_warn("metrics", "no memory for a scrape");
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "out of memory\n", CONTENT_TYPE_TEXT, NULL);
	}
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r)
		free(body);
	return reply(c, MHD_HTTP_OK, r, CONTENT_TYPE_METRICS, NULL);
}

/* Whether the request announces a body (which nothing here takes). */
static bool has_body(struct MHD_Connection *c)
{
	const char *len = MHD_lookup_connection_value(
		c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return MHD_lookup_connection_value(c, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
	       (len && strspn(len, "0") != strlen(len));
}

/* The connection's state (NULL if there was no memory for it). */
static struct metrics_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

/* @mc now waits @ms for what comes next: last of the live connections
 * to be cut off for room. */
static void conn_wait(struct metrics *m, struct metrics_conn *mc,
		      uint64_t ms)
{
	if (!mc || mc->deadline == UINT64_MAX)
		return;
	mc->deadline = now_ms() + ms;
	list_del(&mc->node);
	list_add_tail(&mc->node, &m->conns);
}

/* Cut @mc off; MHD sees the connection end and closes it. */
static void conn_cut(struct metrics *m, struct metrics_conn *mc,
		     const char *why)
{
	log_debug("metrics", "a connection %s: cut off", why);
	shutdown(mc->fd, SHUT_RDWR);
	mc->deadline = UINT64_MAX;
	list_del(&mc->node);
	m->nr_conns--;
}

/*
 * MHD's access handler. The first call, once the request's headers are in,
 * refuses what is refused (MHD then closes the connection: a body sent
 * anyway is never read); the second, at the end of the request, answers
 * (the connection may then be kept alive). Loop thread; a scrape costs
 * what metrics_render() does (see the top of the file).
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version,
				  const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct metrics *m = cls;
	bool page = !strcmp(url, "/");

	assert_owner_thread(&m->d->thread);
	if (!*con_cls) {
		*con_cls = m;
		conn_wait(m, conn_of(c), METRICS_REQUEST_MS);
		log_debug("metrics", "%s %s", method, url);
		if (!page && strcmp(url, "/metrics"))
			return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n",
					  CONTENT_TYPE_TEXT, NULL);
		if (strcmp(method, MHD_HTTP_METHOD_GET) &&
		    strcmp(method, MHD_HTTP_METHOD_HEAD))
			return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "method not allowed\n",
					  CONTENT_TYPE_TEXT, "GET, HEAD");
		if (has_body(c))
			return reply_text(c, HTTP_CONTENT_TOO_LARGE,
					  "no request body accepted\n",
					  CONTENT_TYPE_TEXT, NULL);
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* a body nothing announced: refused above otherwise */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (page)
		return reply_text(c, MHD_HTTP_OK, index_page,
				  CONTENT_TYPE_HTML, NULL);
	return reply_metrics(m, c);
}

/* A request is over (its response sent, or the connection lost): the
 * next one's head must come in time. */
static void on_completed(void *cls, struct MHD_Connection *c,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	conn_wait(cls, conn_of(c), METRICS_HEAD_MS);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct metrics *m = cls;
	struct metrics_conn *mc = *socket_context;
	const union MHD_ConnectionInfo *info;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		m->nr_closed++;
		if (mc) {
			if (mc->deadline != UINT64_MAX)
				m->nr_conns--;
			list_del(&mc->node);
			free(mc);
		}
		*socket_context = NULL;
		return;
	}
	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	mc = malloc(sizeof(*mc));
	if (!info || !mc) {
		free(mc);	/* no deadline for it; the idle timeout holds */
		return;
	}
	mc->fd = info->connect_fd;
	mc->deadline = now_ms() + METRICS_HEAD_MS;
	list_add_tail(&mc->node, &m->conns);
	*socket_context = mc;
	if (++m->nr_conns > METRICS_MAX_CONNS)
		conn_cut(m, container_of(m->conns.next, struct metrics_conn,
					 node), "waited longest at the limit");
}

/* Cut off the connections past their deadline; returns the next deadline
 * (UINT64_MAX: none). O(connections), at most METRICS_MAX_CONNS. */
static uint64_t enforce_deadlines(struct metrics *m)
{
	uint64_t now = now_ms(), next = UINT64_MAX;
	struct list_node *pos, *tmp;

	list_for_each_safe(pos, tmp, &m->conns) {
		struct metrics_conn *mc =
			container_of(pos, struct metrics_conn, node);

		if (mc->deadline <= now)
			conn_cut(m, mc, "missed its deadline");
		else if (mc->deadline < next)
			next = mc->deadline;
	}
	return next;
}

static void on_timer(uv_timer_t *t);

/*
 * Let MHD work, then arm the timer for whatever comes first: MHD's next
 * timeout or a request deadline. A run that closed connections is followed
 * by another at once: at its connection limit MHD takes the listening
 * socket out of its epoll set, and puts it back only at the start of a
 * run, which nothing else would trigger (MHD_get_timeout() does not ask
 * for it). O(connections) besides MHD's own work.
 */
static void metrics_run(struct metrics *m)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	uint64_t next, wait = UINT64_MAX, closed = m->nr_closed;

	enforce_deadlines(m);
	if (MHD_run(m->mhd) != MHD_YES)
		log_warn("metrics", "MHD_run failed");
	if (m->nr_closed != closed)
		wait = 0;
	else if (MHD_get_timeout(m->mhd, &mhd_ms) == MHD_YES)
		wait = mhd_ms;
	/* a connection accepted by this run has a deadline too */
	next = enforce_deadlines(m);
	if (next != UINT64_MAX) {
		uint64_t now = now_ms();

		next = next > now ? next - now : 0;
		if (next < wait)
			wait = next;
	}
	if (wait == UINT64_MAX)
		uv_timer_stop(&m->timer);
	else
		uv_timer_start(&m->timer, on_timer, wait, 0);
}

static void on_timer(uv_timer_t *t)
{
	metrics_run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct metrics *m = p->data;

	if (status < 0)
		log_warn("metrics", "poll: %s", uv_strerror(status));
	metrics_run(m);
}

/* MHD's messages are debug lines; the last one explains a failure to
 * start. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct metrics *m = cls;
	size_t n;

	vsnprintf(m->mhd_error, sizeof(m->mhd_error), fmt, ap);
	n = strlen(m->mhd_error);
	while (n && (m->mhd_error[n - 1] == '\n' || m->mhd_error[n - 1] == '.'))
		m->mhd_error[--n] = '\0';
	log_debug("metrics", "libmicrohttpd: %s", m->mhd_error);
}

/*****************
 * The listening socket
 *****************/

/* A listening socket on @m->listen; its real address in @m->bound.
 * Return: the socket, or -errno (logged). */
static int open_listener(struct metrics *m)
{
	struct sockaddr_storage sa;
	socklen_t len = 0;
	const char *why = NULL;
	int fd, on = 1, ret;

	ret = addr_parse(m->listen, &sa, &len, &why);
	if (ret) {
		log_err("metrics", "cannot serve metrics on '%s': %s",
			m->listen, why);
		return ret;
	}
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		ret = -errno;
		log_err("metrics", "cannot serve metrics on %s: socket: %s",
			m->listen, strerror(-ret));
		return ret;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (sa.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(fd, METRICS_BACKLOG) < 0) {
		ret = -errno;
		log_err("metrics", "cannot serve metrics on %s: %s%s",
			m->listen, strerror(-ret),
			ret == -EADDRINUSE ? " (another uzswapd, or another "
					     "exporter on that port?)" :
			ret == -EADDRNOTAVAIL ? " (not an address of this "
						"host)" :
			ret == -EACCES ? " (a port below 1024 needs "
					 "CAP_NET_BIND_SERVICE)" : "");
		close(fd);
		return ret;
	}
	len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		ret = -errno;
		log_err("metrics", "cannot serve metrics on %s: getsockname: "
			"%s", m->listen, strerror(-ret));
		close(fd);
		return ret;
	}
	addr_format(&sa, m->bound, sizeof(m->bound));
	return fd;
}

/*****************
 * API
 *****************/

/* When the daemon started, from its monotonic start (stats_rate_init()). */
static double start_time(const struct uzswapd *d)
{
	struct timespec mono;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	return clock_unix_s() -
	       ((double)(mono.tv_sec - d->rate.started.tv_sec) +
		(mono.tv_nsec - d->rate.started.tv_nsec) / 1e9);
}

static void on_close(uv_handle_t *h)
{
	struct metrics *m = h->data;

	if (--m->open_handles)
		return;
	free(m->listen);
	free(m);
}

static struct MHD_Daemon *start_mhd(struct metrics *m, int fd)
{
	return MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, m,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, m,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_MHD_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, METRICS_IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)METRICS_MEMORY_LIMIT,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, m,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, m,
		MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_END);
}

struct metrics *metrics_start(struct uzswapd *d, const char *listen,
			      unsigned int max_clients)
{
	const union MHD_DaemonInfo *info;
	struct metrics *m;
	int fd, ret;

	m = calloc(1, sizeof(*m));
	if (!m)
		goto out_nomem;
	m->listen = strdup(listen);
	if (!m->listen) {
		free(m);
		goto out_nomem;
	}
	m->d = d;
	m->max_clients = max_clients;
	m->start_time = start_time(d);
	m->process_start = process_start_time();
	list_init(&m->conns);

	fd = open_listener(m);
	if (fd < 0) {
		ret = fd;
		goto out_free;
	}
	m->mhd = start_mhd(m, fd);
	if (!m->mhd) {
		/* MHD leaves a socket it was given open when it fails */
		close(fd);
		log_err("metrics", "cannot serve metrics on %s: %s",
			m->listen, m->mhd_error[0] ? m->mhd_error
						   : "libmicrohttpd failed");
		ret = -EIO;
		goto out_free;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		log_err("metrics", "libmicrohttpd has no epoll descriptor");
		ret = -ENOSYS;
		goto out_stop_mhd;
	}

	uv_timer_init(&d->loop, &m->timer);
	m->timer.data = m;
	m->open_handles = 1;
	ret = uv_poll_init(&d->loop, &m->poll, info->epoll_fd);
	if (ret)
		goto out_close_timer;
	m->poll.data = m;
	m->open_handles = 2;
	ret = uv_poll_start(&m->poll, UV_READABLE, on_poll);
	if (ret)
		goto out_close_poll;

	log_info("metrics", "serving http://%s/metrics", m->bound);
	return m;

out_close_poll:
	uv_close((uv_handle_t *)&m->poll, on_close);
out_close_timer:
	log_err("metrics", "cannot watch libmicrohttpd: %s", uv_strerror(ret));
	uv_close((uv_handle_t *)&m->timer, on_close);	/* frees @m */
	MHD_stop_daemon(m->mhd);
	errno = -ret;
	return NULL;
out_stop_mhd:
	MHD_stop_daemon(m->mhd);
out_free:
	free(m->listen);
	free(m);
	errno = -ret;
	return NULL;
out_nomem:
	log_err("metrics", "cannot serve metrics: out of memory");
	errno = ENOMEM;
	return NULL;
}

void metrics_set_max_clients(struct metrics *m, unsigned int max_clients)
{
	m->max_clients = max_clients;
}

void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	/* libuv stops watching MHD's epoll set before MHD closes it */
	uv_close((uv_handle_t *)&m->poll, on_close);
	uv_close((uv_handle_t *)&m->timer, on_close);
	MHD_stop_daemon(m->mhd);
	m->mhd = NULL;
	log_info("metrics", "stopped serving http://%s/metrics", m->bound);
}
