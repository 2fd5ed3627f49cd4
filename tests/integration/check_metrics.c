/*
 * check_metrics.c - integration tests of uzswapd's Prometheus endpoint: a
 * real daemon (started by daemon_harness.c with "--metrics 127.0.0.1:0";
 * the port comes from its "serving http://ADDR/metrics" log line) scraped
 * with the real curl and checked with the real `promtool check metrics`,
 * while real clients (uzclient pager) have pages evicted and faulted back.
 *
 * Test cases of metrics_suite():
 *   scrape   curl | promtool with a client whose pages were evicted and
 *            faulted back: per-client series and histogram buckets filled,
 *            every counter equal to what STATUS says; walking the lists of
 *            counters.h, every listed counter is a series equal to what
 *            libuzswap's STATUS and CLIENT say, and every family is
 *            listed (or one of the few written by hand); a client whose
 *            command name holds a double quote, a backslash, a space, a
 *            newline and a byte that is not UTF-8 (uzclient run through a
 *            symlink of that name) comes out escaped and promtool takes
 *            it; --metrics-clients keeps the clients with the most resident
 *            memory and counts the others in uzswap_metrics_clients_omitted;
 *            the process_* series agree with what /proc and prlimit(2) say
 *            of the daemon; the reload status goes to 0 after a refused
 *            RELOAD (its timestamp stays), back to 1 after a good SIGHUP
 *            (its timestamp moves to the reload); every metric name that
 *            monitoring/'s rules, their unit tests and the Grafana
 *            dashboard use is a family the daemon exports
 *   http     GET and HEAD of / and /metrics, 405 with Allow for other
 *            methods, 404 for other paths, 413 for a request body, 431/414
 *            for oversized headers, garbage; a peer that sends half a
 *            request, one that trickles a byte at a time, and more slow
 *            peers than the connection limit are all cut off while scrapes
 *            go on; with 100 slow peers trickling, a scrape is answered at
 *            once, and once they are cut off the daemon holds no more
 *            descriptors than before; SIGTERM with slow peers connected
 *            exits 0
 *   startup  malformed addresses (256.1.1.1:99999, no port, IPv6 without
 *            brackets, names, a port out of range): a usage error (exit 1)
 *            naming the value; an address not of this host and a port
 *            another daemon serves: exit 8 (UZSWAPD_EXIT_METRICS) with a
 *            clear line, the first daemon serving on; localhost and [::1]
 *            serve; "off" serves nothing
 *
 * Outcomes are asserted, never timings: every wait is a bounded poll whose
 * bound is generous, and a bound that runs out is a failure. Every daemon
 * must exit 0 on SIGTERM (under ASan that includes LeakSanitizer's
 * verdict) and log no error line and no sanitizer report.
 *
 * Under valgrind (the daemon and the clients are separate programs, run
 * natively): CK_FORK=no valgrind --leak-check=full ./check_metrics
 * One test case: CK_RUN_CASE=http ./check_metrics. Logs kept:
 * UZSWAP_ITEST_KEEP=1. Needs curl and promtool in $PATH.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/client/uzswap.h"
#include "lib/common/clock.h"
#include "lib/common/macros.h"
#include "pager.h"
#include "lib/proto/proto.h"

#define MIB		(1024ull * 1024)
/* Clocks read by the test and by the daemon, compared: the daemon prints
 * times to the millisecond, and a process's start to the clock tick. */
#define CLOCK_SLACK_S	0.05
/* When the configuration in force was loaded. */
#define LOADED_AT	"uzswap_config_last_reload_success_timestamp_seconds"

/* Generous: CI machines are slow, and run all of this under ASan. */
#define TIMEOUT_CASE	600		/* seconds, per test */
#define TOOL_MS		60000		/* curl, promtool */
#define CURL_MAX_S	60		/* curl's own bound */
#define CUTOFF_MS	120000		/* a slow peer to be cut off */
#define EXIT_MS		20000		/* a daemon that must fail to start */

/* uzswapd's exit codes (uzswapd.h): a bad command line, a metrics
 * address that cannot be served. */
#define EXIT_USAGE	1
#define EXIT_METRICS	8
/* The daemon's limit of live connections (metrics.c), and a few more. */
#define SLOW_PEERS	140
/* A flood of slow peers, each trickling a byte every TRICKLE_MS, all
 * connected for FLOOD_SETTLE_MS before the scrape. */
#define FLOOD_PEERS	100
#define TRICKLE_MS	500
#define FLOOD_SETTLE_MS	1000
#define SCRAPE_HANG_S	5		/* a hang detector, not a timing */
#define FD_POLL_MS	20

/* A command name with every character the text format escapes, a space,
 * and a byte that is not UTF-8 (it must become U+FFFD). 11 bytes: the
 * kernel keeps 15. */
#define ODD_NAME	"a \"b\\c d\ne\xff"
#define ODD_LABEL	"command=\"a \\\"b\\\\c d\\ne\xef\xbf\xbd\""

static struct dh_daemon dmn;

/*****************
 * The daemon
 *****************/

/* The fixture that ends each test. */
static void daemon_down(void)
{
	dh_down(&dmn, NULL);
}

static void metrics_up(void)
{
	dh_up(&dmn, (const char *[]){ "--metrics", "127.0.0.1:0", NULL });
}

/* "ADDR:PORT" the daemon serves, from its log line. */
static void served_address(char *addr, size_t size)
{
	DH_ASSERT(dh_metrics_address(&dmn, addr, size) == 0,
		  "no 'serving http://.../metrics' line in the log");
}

static int served_port(void)
{
	char addr[128];
	const char *colon;

	served_address(addr, sizeof(addr));
	colon = strrchr(addr, ':');
	DH_ASSERT(colon && atoi(colon + 1) > 0, "no port in '%s'", addr);
	return atoi(colon + 1);
}

static void status(struct proto_status_reply *st)
{
	int ret = dh_status(&dmn, st);

	DH_ASSERT(ret == 0, "STATUS: %s", strerror(-ret));
}

/*****************
 * Programs: curl, promtool, a second uzswapd
 *****************/

/* Whether a line of @text holds both @a and @b. */
static bool line_with(const char *text, const char *a, const char *b)
{
	char *copy = strdup(text), *line, *save;
	bool found = false;

	DH_ASSERT(copy, "strdup");
	for (line = strtok_r(copy, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save))
		found = strstr(line, a) && strstr(line, b);
	free(copy);
	return found;
}

/* The whole of @path, NUL-terminated (free it). */
static char *slurp(const char *path)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	DH_ASSERT(fd >= 0, "%s: %s", path, strerror(errno));
	DH_ASSERT(fstat(fd, &st) == 0, "fstat");
	buf = malloc((size_t)st.st_size + 1);
	DH_ASSERT(buf, "malloc");
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	DH_ASSERT(n == st.st_size, "%s: short read", path);
	buf[n] = '\0';
	return buf;
}

static void dir_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dmn.dir, name);
}

/*
 * GET @url with curl (giving up after @max_s seconds) into a file of the
 * daemon's directory; must succeed (2xx). Return: the path of the body.
 */
static const char *curl_get(const char *url, const char *name, int max_s)
{
	static char body[PATH_MAX];
	char err[4096], max[16];
	int status;

	dir_path(body, sizeof(body), name);
	snprintf(max, sizeof(max), "%d", max_s);
	status = dh_run((const char *[]){ "curl", "-sS", "-f", "-g",
					  "--max-time", max, "-o", body, url,
					  NULL },
			NULL, NULL, NULL, 0, err, sizeof(err), TOOL_MS);
	DH_ASSERT(dh_exited_ok(status), "curl %s: %s: %s", url,
		  dh_status_str(status), err);
	return body;
}

/* A scrape of /metrics that curl gives up after @max_s seconds, checked
 * by promtool; returns the body (free it). */
static char *scrape_checked_within(int port, int max_s)
{
	char url[128], out[4096], err[4096];
	const char *body;
	int status;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	body = curl_get(url, "scrape.txt", max_s);
	status = dh_run((const char *[]){ "promtool", "check", "metrics",
					  NULL },
			NULL, body, out, sizeof(out), err, sizeof(err),
			TOOL_MS);
	if (!dh_exited_ok(status) || out[0] || err[0]) {
		char *scraped = slurp(body);

		fprintf(stderr, "----- scrape -----\n%s----- end -----\n",
			scraped);
		free(scraped);
		DH_ASSERT(0, "promtool check metrics: %s: %s%s",
			  dh_status_str(status), out, err);
	}
	return slurp(body);
}

static char *scrape_checked(int port)
{
	return scrape_checked_within(port, CURL_MAX_S);
}

/*
 * Run a second uzswapd with "--metrics @listen" in a new directory of its
 * own (dh_prepare(): socket, state directory, empty configuration; no
 * backing file),
 * expecting it to fail at startup. Return: its wait status (-ETIMEDOUT if
 * it had to be killed); what it logged in @log.
 */
static int run_daemon_expect_exit(const char *listen, char *log,
				  size_t size)
{
	struct dh_daemon other;
	int status;

	DH_ASSERT(dh_prepare(&other) == 0, "dh_prepare");
	status = dh_run((const char *[]){ UZSWAPD_PATH, "--socket", other.sock,
					  "--no-mlock", "--backing-file",
					  "none", "--config", other.conf,
					  "--state-dir", other.state,
					  "--metrics", listen, NULL },
			NULL, NULL, NULL, 0, log, size, EXIT_MS);
	dh_remove(&other);
	return status;
}

/*****************
 * The exposition
 *****************/

/* The value of the sample @series ("name" or "name{labels}"), if any. */
static double value(const char *body, const char *series)
{
	double v = 0;

	DH_ASSERT(dh_sample(body, series, &v), "no sample %s", series);
	return v;
}

static uint64_t u64(const char *body, const char *series)
{
	return (uint64_t)value(body, series);
}

/* Samples whose line starts with @prefix. */
static int count_lines(const char *body, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = body;
	int count = 0;

	while (p && *p) {
		if (!strncmp(p, prefix, n))
			count++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return count;
}

static void client_series(char *buf, size_t size, const char *name,
			  pid_t pid, const char *command)
{
	snprintf(buf, size, "%s{pid=\"%d\",command=\"%s\"}", name, (int)pid,
		 command);
}

/* The histogram is well formed: cumulative buckets, +Inf == _count. */
static uint64_t check_histogram(const char *body)
{
	static const char *const le[] = {
		"0.000005", "0.00001", "0.00002", "0.00005", "0.0001",
		"0.0002", "0.0005", "0.001", "0.002", "0.005", "0.01",
		"0.02", "0.05", "0.1", "+Inf",
	};
	char series[128];
	uint64_t prev = 0, v, count;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(le); i++) {
		snprintf(series, sizeof(series),
			 "uzswap_fault_latency_seconds_bucket{le=\"%s\"}",
			 le[i]);
		v = u64(body, series);
		DH_ASSERT(v >= prev, "%s %" PRIu64 " below the bucket before",
			  series, v);
		prev = v;
	}
	count = u64(body, "uzswap_fault_latency_seconds_count");
	DH_ASSERT_EQ(prev, count);
	DH_ASSERT(value(body, "uzswap_fault_latency_seconds_sum") >= 0,
		  "negative sum");
	return count;
}

/* Poll until the pager's resident bytes are at most @bytes. */
static void pager_settle(struct dh_client *c, uint64_t bytes)
{
	struct pstats ps;

	pager_wait_resident(c, bytes, &ps);
}

/* A pager run through a symlink named @name in the daemon's directory. */
static void pager_named(struct dh_client *c, const char *name)
{
	char link[PATH_MAX];

	dir_path(link, sizeof(link), name);
	pager_start_as(&dmn, c, link);
}

/*****************
 * Raw HTTP
 *****************/

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 30 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	DH_ASSERT(fd >= 0, "socket: %s", strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	DH_ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		  "connect to port %d: %s", port, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Send @len bytes of @req (the server may close before taking them all)
 * and read the answer until the server closes, into @resp.
 * Return: the HTTP status, 0 if the server closed without one.
 */
static int http_raw(int port, const char *req, size_t len, char *resp,
		    size_t size)
{
	size_t got = 0, sent = 0;
	int fd = tcp_connect(port), code = 0;
	ssize_t n;

	while (sent < len) {
		n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n <= 0)
			break;	/* refused half-way: read what it said */
		sent += (size_t)n;
	}
	for (;;) {
		n = recv(fd, resp + got, size - 1 - got, 0);
		if (n <= 0 || got + (size_t)n >= size - 1) {
			if (n > 0)
				got += (size_t)n;
			break;
		}
		got += (size_t)n;
	}
	DH_ASSERT(n >= 0 || errno == ECONNRESET,
		  "no answer from the server: %s", strerror(errno));
	close(fd);
	resp[got] = '\0';
	sscanf(resp, "HTTP/1.%*d %d", &code);
	return code;
}

static int http_req(int port, const char *req, char *resp, size_t size)
{
	return http_raw(port, req, strlen(req), resp, size);
}

/* The body of a response (after the blank line). */
static const char *http_body(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	return p ? p + 4 : "";
}

static bool has_header(const char *resp, const char *header)
{
	const char *end = strstr(resp, "\r\n\r\n");
	const char *p = strcasestr(resp, header);

	return p && (!end || p < end);
}

/* A connection that sent half a request; wait for the server to cut it
 * off: end of file (or a reset), within CUTOFF_MS. */
static void wait_cut_off(int fd)
{
	long long deadline = dh_deadline(CUTOFF_MS);
	char buf[256];
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return;
		DH_ASSERT(dh_now_ms() < deadline,
			  "a slow peer was not cut off within %d ms",
			  CUTOFF_MS);
	}
}

/*****************
 * scrape
 *****************/

/* STATUS twice around a scrape, until nothing moved meanwhile. */
static char *scrape_at_rest(int port, struct proto_status_reply *st)
{
	struct proto_status_reply again;
	int tries;
	char *body;

	for (tries = 0; tries < 50; tries++) {
		status(st);
		body = scrape_checked(port);
		status(&again);
		/* the clock fields move on their own */
		again.uptime_sec = st->uptime_sec;
		again.fault_rate_milli = st->fault_rate_milli;
		if (!memcmp(st, &again, sizeof(again)))
			return body;
		free(body);
		dh_sleep_ms(100);
	}
	DH_ASSERT(0, "the daemon's counters never stood still");
	return NULL;
}

/* Scrapes until no client is left (bounded). */
static char *scrape_until_no_clients(int port)
{
	long long deadline = dh_deadline(SETTLE_MS);
	char *b;

	for (;;) {
		b = scrape_checked(port);
		if (u64(b, "uzswap_clients") == 0)
			return b;
		free(b);
		DH_ASSERT(dh_now_ms() < deadline, "a client never went away");
		dh_sleep_ms(20);
	}
}

/* Every counter STATUS has says the same in the exposition. */
static void assert_matches_status(const char *b,
				  const struct proto_status_reply *st)
{
	uint64_t stored = u64(b, "uzswap_stored_pages{kind=\"compressed\"}") +
			  u64(b, "uzswap_stored_pages{kind=\"same\"}") +
			  u64(b, "uzswap_stored_pages{kind=\"raw\"}");

	DH_ASSERT_EQ(u64(b, "uzswap_clients"), st->clients);
	DH_ASSERT_EQ(u64(b, "uzswap_registered_bytes"), st->registered_bytes);
	DH_ASSERT_EQ(u64(b, "uzswap_resident_bytes"), st->resident_bytes);
	DH_ASSERT_EQ(u64(b, "uzswap_resident_limit_bytes"),
		     st->resident_limit);
	DH_ASSERT_EQ(u64(b, "uzswap_default_limit_bytes"), st->default_limit);
	DH_ASSERT_EQ(stored, st->stored_pages);
	DH_ASSERT_EQ(u64(b, "uzswap_stored_pages{kind=\"same\"}"),
		     st->same_pages);
	DH_ASSERT_EQ(u64(b, "uzswap_stored_pages{kind=\"raw\"}"),
		     st->raw_pages);
	DH_ASSERT_EQ(u64(b, "uzswap_stored_pages{kind=\"written_back\"}"),
		     st->written_back_pages);
	DH_ASSERT_EQ(u64(b, "uzswap_pool_payload_bytes"), st->payload_bytes);
	DH_ASSERT_EQ(u64(b, "uzswap_pool_bytes"), st->pool_bytes);
	DH_ASSERT_EQ(u64(b, "uzswap_pool_limit_bytes"), st->pool_limit);
	DH_ASSERT_EQ(u64(b, "uzswap_pool_full"), st->pool_full);
	DH_ASSERT_EQ(u64(b, "uzswap_evicted_pages_total"), st->evictions);
	DH_ASSERT_EQ(u64(b, "uzswap_loaded_pages_total"), st->loads);
	/* STATUS sums the faults of the clients connected: one so far */
	DH_ASSERT_EQ(u64(b, "uzswap_faults_total"), st->faults);
	DH_ASSERT_EQ(u64(b, "uzswap_store_rejected_pages_total"),
		     st->store_failures);
	DH_ASSERT_EQ(u64(b, "uzswap_fault_read_ahead_pages_total"),
		     st->read_ahead);
	DH_ASSERT_EQ(u64(b, "uzswap_writeback_pages_total"), st->writebacks);
	DH_ASSERT_EQ(u64(b, "uzswap_writeback_failed_objects_total"),
		     st->writeback_failures);
	DH_ASSERT_EQ(u64(b, "uzswap_backing_bytes"), st->backing_bytes);
	DH_ASSERT_EQ(u64(b, "uzswap_backing_limit_bytes"), st->backing_limit);
}

/* A daemon serving /metrics (its port returned) with a client whose 16
 * MiB, under a 2 MiB budget, were evicted and read back. */
static int served_with_paged_client(struct dh_client *c)
{
	metrics_up();
	pager_start(&dmn, c);
	pager_ok(c, "limit 2");
	pager_ok(c, "alloc text 16");
	pager_settle(c, 3 * MIB);
	pager_ok(c, "verify 0");
	pager_settle(c, 3 * MIB);
	return served_port();
}

/*
 * A client with a 2 MiB budget fills 16 MiB (evicted), reads it all back
 * (faults loading stored pages): promtool takes the scrape, the client's
 * series and the histogram are there and filled, and every counter is
 * what STATUS says.
 */
START_TEST(test_scrape_with_client)
{
	struct proto_status_reply st;
	struct dh_client c;
	char series[256], build[128];
	uint64_t timed;
	double start;
	int port;
	char *b;

	port = served_with_paged_client(&c);

	b = scrape_at_rest(port, &st);
	assert_matches_status(b, &st);
	DH_ASSERT(st.evictions > 0 && st.loads > 0,
		  "nothing was evicted and loaded back");

	snprintf(build, sizeof(build),
		 "uzswap_build_info{version=\"%s\",compressor=\"lz4\"}",
		 PACKAGE_VERSION);
	DH_ASSERT_EQ(u64(b, build), 1);
	start = value(b, "uzswap_start_time_seconds");
	DH_ASSERT(start > 1.6e9 && start <= (double)time(NULL) + 1,
		  "start time %f", start);

	client_series(series, sizeof(series), "uzswap_client_resident_bytes",
		      c.pid, "uzclient");
	DH_ASSERT(u64(b, series) <= 3 * MIB, "%s over the budget", series);
	client_series(series, sizeof(series), "uzswap_client_limit_bytes",
		      c.pid, "uzclient");
	DH_ASSERT_EQ(u64(b, series), 2 * MIB);
	client_series(series, sizeof(series),
		      "uzswap_client_registered_bytes", c.pid, "uzclient");
	DH_ASSERT_EQ(u64(b, series), 16 * MIB);
	client_series(series, sizeof(series), "uzswap_client_faults_total",
		      c.pid, "uzclient");
	DH_ASSERT_EQ(u64(b, series), st.faults);
	client_series(series, sizeof(series),
		      "uzswap_client_evicted_pages_total", c.pid, "uzclient");
	DH_ASSERT_EQ(u64(b, series), st.evictions);
	client_series(series, sizeof(series), "uzswap_client_stored_pages",
		      c.pid, "uzclient");
	DH_ASSERT_EQ(u64(b, series), st.stored_pages);
	client_series(series, sizeof(series),
		      "uzswap_client_compressed_bytes", c.pid, "uzclient");
	DH_ASSERT(u64(b, series) > 0, "%s is 0", series);
	DH_ASSERT_EQ(u64(b, "uzswap_metrics_clients_omitted"), 0);

	timed = check_histogram(b);
	DH_ASSERT(timed > 0 && timed <= u64(b, "uzswap_faults_total"),
		  "%" PRIu64 " faults timed of %" PRIu64, timed,
		  u64(b, "uzswap_faults_total"));
	DH_ASSERT(u64(b, "uzswap_eviction_runs_total") > 0, "no runs");
	/* an eviction stores the page, or publishes the object it kept
	 * since its load (clean-page retention) */
	DH_ASSERT(u64(b, "uzswap_store_accepted_pages_total") +
		  u64(b, "uzswap_evicted_clean_pages_total") >= st.evictions,
		  "fewer stores and clean evictions than evictions");
	free(b);

	pager_quit(&c);
	/* the client gone (the daemon tears it down asynchronously), its
	 * series are gone too */
	b = scrape_until_no_clients(port);
	DH_ASSERT_EQ(count_lines(b, "uzswap_client_"), 0);
	DH_ASSERT_EQ(u64(b, "uzswap_metrics_clients_omitted"), 0);
	free(b);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * A counter of counters.h as the views show it: its series in /metrics
 * (@type NULL: none) and its field in the public struct, where libuzswap
 * puts what STATUS, CLIENT or CLIENTS said.
 */
struct listed {
	const char *type;
	const char *metric;
	const char *label;
	size_t off;
	size_t size;
};

#define LISTED(st, type, metric, label, pub)				\
	{ type, metric, label, offsetof(st, pub), sizeof(((st *)0)->pub) },
#define LISTED_STATUS(x, name, since, pub, json, show, mtype, metric,	\
		      label, help)					\
	LISTED(struct uzswap_status, mtype, metric, label, pub)
#define LISTED_CLIENT(x, type, name, since, pub, json, mtype, metric,	\
		      help)						\
	LISTED(struct uzswap_client, mtype, metric, "", pub)

static const struct listed listed_status[] = {
	COUNTERS_STATUS(LISTED_STATUS, _)
};

static const struct listed listed_client[] = {
	COUNTERS_CLIENT(LISTED_CLIENT, _)
};

/* The families /metrics writes by hand, beside the lists. */
static const char *const unlisted[] = {
	"uzswap_build_info", "uzswap_start_time_seconds",
	"uzswap_fault_latency_seconds", "uzswap_metrics_clients_omitted",
	"uzswap_writeback_batches_total", "uzswap_writeback_bytes_total",
	"uzswap_writeback_busy_objects_total", "uzswap_writeback_wakeups_total",
	"uzswap_writeback_high_mark_bytes", "uzswap_retained_pages",
	"uzswap_retained_bytes", "uzswap_evicted_clean_pages_total",
	"uzswap_retained_given_up_objects_total",
	"uzswap_config_last_reload_successful",
	"uzswap_config_last_reload_success_timestamp_seconds",
	"uzswap_backing_info", "uzswap_backing_request_duration_seconds",
	"process_cpu_seconds_total", "process_resident_memory_bytes",
	"process_virtual_memory_bytes", "process_start_time_seconds",
	"process_open_fds", "process_max_fds",
};

static uint64_t listed_value(const struct listed *l, const void *base)
{
	const char *p = (const char *)base + l->off;
	uint32_t v32;
	uint64_t v64;

	if (l->size == sizeof(v32)) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

/* The type @l[0..@n) gives family @name; NULL if none of them lists it. */
static const char *listed_type(const struct listed *l, size_t n,
			       const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i].type && !strcmp(l[i].metric, name))
			return l[i].type;
	return NULL;
}

/* Families in @l[0..@n): entries exported, each family once. */
static size_t listed_families(const struct listed *l, size_t n)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		count += l[i].type && listed_type(l, i, l[i].metric) == NULL;
	return count;
}

/*
 * Every "# TYPE" of the exposition is a family of the lists, with the
 * list's type, or one written by hand; and there are exactly as many as
 * the lists and the hand-written ones make (so none is left out).
 */
static void assert_families_listed(const char *b)
{
	static const char tag[] = "# TYPE ";
	size_t seen = 0, i;
	const char *p;

	for (p = strstr(b, tag); p; p = strstr(p + 1, tag)) {
		char name[128], type[32];
		const char *want;

		DH_ASSERT(sscanf(p + strlen(tag), "%127s %31s", name, type) ==
				  2, "bad TYPE line");
		seen++;
		want = listed_type(listed_status, ARRAY_SIZE(listed_status),
				   name);
		if (!want)
			want = listed_type(listed_client,
					   ARRAY_SIZE(listed_client), name);
		for (i = 0; !want && i < ARRAY_SIZE(unlisted); i++)
			if (!strcmp(unlisted[i], name))
				want = type;
		DH_ASSERT(want, "%s is in no list", name);
		DH_ASSERT(!strcmp(want, type), "%s is a %s, listed %s", name,
			  type, want);
	}
	DH_ASSERT_EQ(seen,
		     listed_families(listed_status,
				     ARRAY_SIZE(listed_status)) +
		     listed_families(listed_client,
				     ARRAY_SIZE(listed_client)) +
		     ARRAY_SIZE(unlisted));
}

/* STATUS and one client's row through libuzswap around a scrape, until
 * nothing moved meanwhile; returns the scrape (free it). */
static char *scrape_with_lib_at_rest(int port, uzswap_t *c, pid_t pid,
				     struct uzswap_status *st,
				     struct uzswap_client *cl)
{
	struct uzswap_status st2;
	struct uzswap_client cl2;
	int tries;
	char *body;

	for (tries = 0; tries < 50; tries++) {
		DH_ASSERT(uzswap_status(c, st) == 0, "uzswap_status");
		DH_ASSERT(uzswap_client(c, pid, cl) == 0, "uzswap_client");
		body = scrape_checked(port);
		DH_ASSERT(uzswap_status(c, &st2) == 0, "uzswap_status");
		DH_ASSERT(uzswap_client(c, pid, &cl2) == 0, "uzswap_client");
		/* the clock fields move on their own */
		st2.uptime_sec = st->uptime_sec;
		st2.fault_rate_milli = st->fault_rate_milli;
		if (!memcmp(st, &st2, sizeof(st2)) &&
		    !memcmp(cl, &cl2, sizeof(cl2)))
			return body;
		free(body);
		dh_sleep_ms(100);
	}
	DH_ASSERT(0, "the daemon's counters never stood still");
	return NULL;
}

/*
 * Every counter of counters.h, walked from the lists themselves: each one
 * the lists export is a series of /metrics equal to what libuzswap's
 * STATUS (or CLIENT, for a client's) says, and /metrics has no family the
 * lists do not account for. A counter a view does not expand fails here:
 * one /metrics shows and STATUS does not carry, one written into /metrics
 * by hand and not listed.
 */
START_TEST(test_every_listed_counter)
{
	struct uzswap_status st;
	struct uzswap_client cl;
	struct dh_client p;
	char series[256];
	uzswap_t *c;
	size_t i;
	int port;
	char *b;

	port = served_with_paged_client(&p);
	c = uzswap_admin_connect(dmn.sock);
	DH_ASSERT(c, "uzswap_admin_connect: %s", strerror(errno));

	b = scrape_with_lib_at_rest(port, c, p.pid, &st, &cl);
	/* counters only /metrics had before version 3 moved */
	DH_ASSERT(st.stores > 0 && st.eviction_runs > 0 &&
			  st.fault_zero_pages > 0 && st.compressed_pages > 0,
		  "STATUS misses counters");
	for (i = 0; i < ARRAY_SIZE(listed_status); i++) {
		const struct listed *l = &listed_status[i];

		if (!l->type)
			continue;
		snprintf(series, sizeof(series), "%s%s%s%s", l->metric,
			 l->label[0] ? "{" : "", l->label,
			 l->label[0] ? "}" : "");
		DH_ASSERT(u64(b, series) == listed_value(l, &st),
			  "%s %" PRIu64 ", STATUS %" PRIu64, series,
			  u64(b, series), listed_value(l, &st));
	}
	for (i = 0; i < ARRAY_SIZE(listed_client); i++) {
		const struct listed *l = &listed_client[i];

		if (!l->type)
			continue;
		client_series(series, sizeof(series), l->metric, p.pid,
			      "uzclient");
		DH_ASSERT(u64(b, series) == listed_value(l, &cl),
			  "%s %" PRIu64 ", CLIENT %" PRIu64, l->metric,
			  u64(b, series), listed_value(l, &cl));
	}
	assert_families_listed(b);
	free(b);
	uzswap_disconnect(c);
	pager_ok(&p, "verify 0");
	pager_quit(&p);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* A command name with a double quote, a backslash, a space, a newline
 * and a byte that is not UTF-8: escaped, and promtool takes it. */
START_TEST(test_label_escaping)
{
	struct dh_client odd, plain;
	char series[256];
	int port;
	char *b;

	metrics_up();
	port = served_port();
	pager_named(&odd, ODD_NAME);
	pager_start(&dmn, &plain);
	pager_ok(&odd, "alloc text 1");
	pager_ok(&plain, "alloc text 1");

	b = scrape_checked(port);
	snprintf(series, sizeof(series),
		 "uzswap_client_registered_bytes{pid=\"%d\"," ODD_LABEL "}",
		 (int)odd.pid);
	DH_ASSERT_EQ(u64(b, series), MIB);
	client_series(series, sizeof(series), "uzswap_client_registered_bytes",
		      plain.pid, "uzclient");
	DH_ASSERT_EQ(u64(b, series), MIB);
	DH_ASSERT_EQ(count_lines(b, "uzswap_client_registered_bytes{"), 2);
	free(b);

	pager_quit(&odd);
	pager_quit(&plain);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* Three clients of 1, 4 and 2 MiB resident; @cap series at most. */
static void check_cap(unsigned int cap)
{
	static const unsigned int mib[3] = { 1, 4, 2 };
	struct dh_client c[3];
	char opt[16], series[256];
	unsigned int i;
	int port;
	char *b;

	snprintf(opt, sizeof(opt), "%u", cap);
	dh_up(&dmn, (const char *[]){ "--metrics", "127.0.0.1:0",
				    "--metrics-clients", opt, NULL });
	port = served_port();
	for (i = 0; i < 3; i++) {
		pager_start(&dmn, &c[i]);
		pager_ok(&c[i], "alloc text %u", mib[i]);
	}

	b = scrape_checked(port);
	DH_ASSERT_EQ(count_lines(b, "uzswap_client_resident_bytes{"),
		     cap < 3 ? cap : 3);
	DH_ASSERT_EQ(u64(b, "uzswap_metrics_clients_omitted"),
		     cap < 3 ? 3 - cap : 0);
	DH_ASSERT_EQ(u64(b, "uzswap_clients"), 3);
	/* those kept are those with the most resident memory */
	for (i = 0; i < 3; i++) {
		double v;
		bool kept = cap >= 3 || (cap == 1 && i == 1) ||
			    (cap == 2 && i != 0);

		client_series(series, sizeof(series),
			      "uzswap_client_resident_bytes", c[i].pid,
			      "uzclient");
		DH_ASSERT(dh_sample(b, series, &v) == kept, "%s %s", series,
			  kept ? "missing" : "shown");
		if (kept)
			DH_ASSERT_EQ(v, mib[i] * MIB);
	}
	free(b);
	for (i = 0; i < 3; i++)
		pager_quit(&c[i]);
	dh_stop_ok(&dmn, SIGTERM, NULL);
	dh_remove(&dmn);
}

START_TEST(test_client_cap)
{
	check_cap(1);
	check_cap(2);
	check_cap(0);
}
END_TEST

/* User and system time of process @pid, in clock ticks (proc(5): fields
 * 14 and 15 of /proc/PID/stat, after the command name's last ')'). */
static uint64_t cpu_ticks(pid_t pid)
{
	char path[64], stat[4096], *fields;
	uint64_t utime, stime;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	DH_ASSERT(fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	DH_ASSERT(n > 0, "%s: %s", path, strerror(errno));
	stat[n] = '\0';
	fields = strrchr(stat, ')');
	DH_ASSERT(fields && sscanf(fields + 1, "%*s %*s %*s %*s %*s %*s %*s "
				   "%*s %*s %*s %*s %" SCNu64 " %" SCNu64,
				   &utime, &stime) == 2, "%s: %s", path, stat);
	return utime + stime;
}

/*
 * The process_* series say what /proc and prlimit(2) say of the daemon:
 * its CPU time between what it was before and after the scrape, its
 * descriptors between those counted before and after (and the scrape's
 * connection), its limit of them, memory, and a start between the test's
 * launch and the daemon's own start time.
 */
START_TEST(test_process_series)
{
	double launched = clock_unix_s(), hz = (double)sysconf(_SC_CLK_TCK);
	double cpu, start, rss, vsz, fds;
	uint64_t ticks0, ticks1;
	int port, fds0, fds1;
	struct rlimit rl;
	char *b;

	metrics_up();
	port = served_port();
	fds0 = dh_fd_count(dmn.pid);
	ticks0 = cpu_ticks(dmn.pid);
	b = scrape_checked(port);
	ticks1 = cpu_ticks(dmn.pid);
	fds1 = dh_fd_count(dmn.pid);

	cpu = value(b, "process_cpu_seconds_total");
	DH_ASSERT(cpu >= ticks0 / hz && cpu <= ticks1 / hz,
		  "CPU %f s, /proc says %f then %f", cpu, ticks0 / hz,
		  ticks1 / hz);
	fds = value(b, "process_open_fds");
	DH_ASSERT(fds0 > 0 && fds >= (fds0 < fds1 ? fds0 : fds1) &&
		  fds <= (fds0 > fds1 ? fds0 : fds1) + 1,
		  "%f fds, /proc says %d then %d (and the scrape's)", fds,
		  fds0, fds1);
	DH_ASSERT(prlimit(dmn.pid, RLIMIT_NOFILE, NULL, &rl) == 0,
		  "prlimit: %s", strerror(errno));
	DH_ASSERT_EQ(u64(b, "process_max_fds"), rl.rlim_cur);
	rss = value(b, "process_resident_memory_bytes");
	vsz = value(b, "process_virtual_memory_bytes");
	DH_ASSERT(rss >= MIB && rss <= vsz, "resident %f, virtual %f", rss,
		  vsz);
	start = value(b, "process_start_time_seconds");
	DH_ASSERT(start >= launched - CLOCK_SLACK_S &&
		  start <= value(b, "uzswap_start_time_seconds") +
			   CLOCK_SLACK_S,
		  "started at %f: launched at %f, uzswap_start_time_seconds "
		  "%f", start, launched,
		  value(b, "uzswap_start_time_seconds"));
	free(b);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * uzswap_config_last_reload_successful is 1 at start, 0 after a RELOAD
 * (libuzswap's, as uzswapctl's) of a bad file, 1 again after a SIGHUP
 * with a good one; uzswap_config_last_reload_success_timestamp_seconds is
 * the start's load, stays through the refused reload, then is the good
 * reload's time.
 */
START_TEST(test_reload_status)
{
	double launched = clock_unix_s(), loaded, hup;
	char why[256];
	uzswap_t *c;
	int port;
	char *b;

	metrics_up();
	port = served_port();
	b = scrape_checked(port);
	DH_ASSERT_EQ(u64(b, "uzswap_config_last_reload_successful"), 1);
	loaded = value(b, LOADED_AT);
	DH_ASSERT(loaded >= launched - CLOCK_SLACK_S &&
		  loaded <= value(b, "uzswap_start_time_seconds") +
			    CLOCK_SLACK_S,
		  "configuration loaded at %f: launched at %f, started %f",
		  loaded, launched, value(b, "uzswap_start_time_seconds"));
	free(b);

	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 4 megs\n");
	c = uzswap_admin_connect(dmn.sock);
	DH_ASSERT(c, "uzswap_admin_connect: %s", strerror(errno));
	DH_ASSERT_EQ(uzswap_reload(c, why, sizeof(why)), -EINVAL);
	uzswap_disconnect(c);
	b = scrape_checked(port);
	DH_ASSERT_EQ(u64(b, "uzswap_config_last_reload_successful"), 0);
	DH_ASSERT(value(b, LOADED_AT) == loaded, "a refused reload moved the "
		  "time of the configuration in force");
	free(b);

	dh_write_file(&dmn, dmn.conf, "[budget]\ndefault-limit = 4M\n");
	hup = clock_unix_s();
	dh_hup_and_wait(&dmn, "configuration reloaded", 1);
	b = scrape_checked(port);
	DH_ASSERT_EQ(u64(b, "uzswap_config_last_reload_successful"), 1);
	loaded = value(b, LOADED_AT);
	DH_ASSERT(loaded >= hup - CLOCK_SLACK_S &&
		  loaded <= clock_unix_s() + CLOCK_SLACK_S,
		  "configuration loaded at %f, SIGHUP at %f", loaded, hup);
	free(b);
	dh_down(&dmn, "reload failed");
}
END_TEST

/* Whether @c can stand beside a metric name (is not part of a longer
 * name: a recording rule's "instance:uzswap_pool_fill:ratio" is not
 * uzswap_pool_fill). */
static bool name_edge(char c)
{
	return !isalnum((unsigned char)c) && c != '_' && c != ':';
}

/* Whether the exposition @b has the family @name of type @type (any type
 * if NULL). */
static bool has_family(const char *b, const char *name, const char *type)
{
	char tag[192];

	snprintf(tag, sizeof(tag), "# TYPE %s %s", name, type ? type : "");
	return strstr(b, tag) != NULL;
}

/* Whether @name is a family of @b, or a series of one of its histograms
 * (NAME_bucket, NAME_sum, NAME_count). */
static bool exported(const char *b, const char *name)
{
	static const char *const suffix[] = { "_bucket", "_sum", "_count" };
	size_t n = strlen(name), i, k;
	char base[128];

	if (has_family(b, name, NULL))
		return true;
	for (i = 0; i < ARRAY_SIZE(suffix); i++) {
		k = strlen(suffix[i]);
		if (n <= k || n - k >= sizeof(base) ||
		    strcmp(name + n - k, suffix[i]))
			continue;
		memcpy(base, name, n - k);
		base[n - k] = '\0';
		if (has_family(b, base, "histogram\n"))
			return true;
	}
	return false;
}

/* Every metric name (uzswap_*, process_*) the file @path of the source
 * tree uses is exported in @b; returns how many names it uses. */
static int assert_names_exported(const char *b, const char *path)
{
	char full[PATH_MAX], name[128];
	const char *p;
	char *text;
	int used = 0;
	size_t n;

	snprintf(full, sizeof(full), "%s/%s", TOP_SRCDIR, path);
	text = slurp(full);
	for (p = text; *p; p += n ? n : 1) {
		n = 0;
		if ((strncmp(p, "uzswap_", 7) && strncmp(p, "process_", 8)) ||
		    (p > text && !name_edge(p[-1])))
			continue;
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		if (!name_edge(p[n]))
			continue;
		DH_ASSERT(n < sizeof(name), "%s: a name too long", path);
		memcpy(name, p, n);
		name[n] = '\0';
		DH_ASSERT(exported(b, name), "%s uses %s, which uzswapd does "
			  "not export", path, name);
		used++;
	}
	free(text);
	return used;
}

/* The rules, their tests and the dashboard name only metrics that a real
 * daemon exports. */
START_TEST(test_monitoring_names)
{
	static const char *const files[] = {
		"monitoring/uzswap.rules.yml.in",
		"monitoring/uzswap.rules.test.yml.in",
		"monitoring/uzswap-dashboard.json",
	};
	size_t i;
	char *b;

	metrics_up();
	b = scrape_checked(served_port());
	for (i = 0; i < ARRAY_SIZE(files); i++)
		DH_ASSERT(assert_names_exported(b, files[i]) > 0,
			  "%s names no metric", files[i]);
	free(b);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*****************
 * http
 *****************/

#define REQ(method, path, extra)					\
	method " " path " HTTP/1.1\r\nHost: localhost\r\n"		\
	"Connection: close\r\n" extra "\r\n"

/* What is served, what is refused, and how. */
START_TEST(test_http_requests)
{
	static char resp[256 * 1024];
	char url[128];
	const char *path;
	char *html;
	int port;

	metrics_up();
	port = served_port();

	DH_ASSERT_EQ(http_req(port, REQ("GET", "/metrics", ""), resp,
			      sizeof(resp)), 200);
	DH_ASSERT(has_header(resp, "Content-Type: text/plain; version=0.0.4; "
				   "charset=utf-8"), "metrics type: %s", resp);
	DH_ASSERT(strstr(http_body(resp), "# TYPE uzswap_faults_total "
					  "counter\n"), "no metrics: %s",
		  resp);

	DH_ASSERT_EQ(http_req(port, REQ("HEAD", "/metrics", ""), resp,
			      sizeof(resp)), 200);
	DH_ASSERT(!http_body(resp)[0], "HEAD with a body: %s", resp);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	path = curl_get(url, "index.html", CURL_MAX_S);
	html = slurp(path);
	DH_ASSERT(strstr(html, "<a href=\"/metrics\">"), "index: %s", html);
	free(html);
	DH_ASSERT_EQ(http_req(port, REQ("GET", "/", ""), resp, sizeof(resp)),
		     200);
	DH_ASSERT(has_header(resp, "Content-Type: text/html"), "index type: "
		  "%s", resp);

	DH_ASSERT_EQ(http_req(port, REQ("POST", "/metrics",
					"Content-Length: 0\r\n"), resp,
			      sizeof(resp)), 405);
	DH_ASSERT(has_header(resp, "Allow: GET, HEAD"), "no Allow: %s", resp);
	DH_ASSERT_EQ(http_req(port, REQ("PUT", "/metrics",
					"Content-Length: 5\r\n") "hello",
			      resp, sizeof(resp)), 405);
	DH_ASSERT_EQ(http_req(port, REQ("DELETE", "/", ""), resp,
			      sizeof(resp)), 405);
	DH_ASSERT(has_header(resp, "Allow: GET, HEAD"), "no Allow: %s", resp);
	DH_ASSERT_EQ(http_req(port, REQ("OPTIONS", "/metrics", ""), resp,
			      sizeof(resp)), 405);

	DH_ASSERT_EQ(http_req(port, REQ("GET", "/nope", ""), resp,
			      sizeof(resp)), 404);
	DH_ASSERT_EQ(http_req(port, REQ("GET", "/metrics/x", ""), resp,
			      sizeof(resp)), 404);
	DH_ASSERT_EQ(http_req(port, REQ("POST", "/nope", ""), resp,
			      sizeof(resp)), 404);

	/* a body, announced or chunked: never read */
	DH_ASSERT_EQ(http_req(port, REQ("GET", "/metrics",
					"Content-Length: 5\r\n") "hello",
			      resp, sizeof(resp)), 413);
	DH_ASSERT_EQ(http_req(port, REQ("GET", "/metrics",
					"Transfer-Encoding: chunked\r\n")
			      "5\r\nhello\r\n0\r\n\r\n", resp, sizeof(resp)),
		     413);

	/* the connection stays fine for a curl scrape */
	free(scrape_checked(port));
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* Oversized headers, a huge URL and garbage get an error (or the door),
 * and the daemon serves on. */
START_TEST(test_http_bad_requests)
{
	static char resp[64 * 1024];
	size_t big = 256 * 1024, n;
	char *req;
	int port, code;

	metrics_up();
	port = served_port();
	req = malloc(big + 256);
	DH_ASSERT(req, "malloc");

	n = (size_t)sprintf(req, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
			    "X-Big: ");
	memset(req + n, 'a', big);
	n += big;
	n += (size_t)sprintf(req + n, "\r\n\r\n");
	code = http_raw(port, req, n, resp, sizeof(resp));
	DH_ASSERT(code == 431 || code == 413 || code == 400,
		  "oversized header: status %d", code);

	n = (size_t)sprintf(req, "GET /");
	memset(req + n, 'a', 64 * 1024);
	n += 64 * 1024;
	n += (size_t)sprintf(req + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	code = http_raw(port, req, n, resp, sizeof(resp));
	DH_ASSERT(code == 414 || code == 431 || code == 400,
		  "oversized URL: status %d", code);

	/* many headers, each small */
	n = (size_t)sprintf(req, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
	while (n < big)
		n += (size_t)sprintf(req + n, "X-H%zu: v\r\n", n);
	n += (size_t)sprintf(req + n, "\r\n");
	code = http_raw(port, req, n, resp, sizeof(resp));
	DH_ASSERT(code >= 400, "many headers: status %d", code);
	free(req);

	code = http_req(port, "\x01\x02garbage\r\n\r\n", resp, sizeof(resp));
	DH_ASSERT(code == 0 || code >= 400, "garbage: status %d", code);
	code = http_req(port, "GET /metrics HTTP/9.9\r\n\r\n", resp,
			sizeof(resp));
	DH_ASSERT(code == 0 || code >= 400, "HTTP/9.9: status %d", code);
	code = http_req(port, "GET /metrics HTTP/1.1\r\n\r\n", resp,
			sizeof(resp));
	DH_ASSERT(code == 400, "HTTP/1.1 without Host: status %d", code);

	free(scrape_checked(port));
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*
 * Half a request, a request trickled a byte at a time, and more slow
 * peers than the connection limit: all cut off, and scrapes go on. The
 * daemon then exits 0 on SIGTERM with slow peers still connected.
 */
START_TEST(test_http_slow)
{
	static const char half[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	static const char trickle[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
				      "X-Slow: ";
	long long deadline;
	int fds[SLOW_PEERS], fd, port, i;
	size_t k;
	bool cut = false;

	metrics_up();
	port = served_port();

	/* half a request: scrapes go on meanwhile, then it is cut off */
	fd = tcp_connect(port);
	DH_ASSERT(send(fd, half, strlen(half), MSG_NOSIGNAL) ==
		  (ssize_t)strlen(half), "send");
	free(scrape_checked(port));
	wait_cut_off(fd);
	close(fd);

	/* a byte every 100 ms (then a header value that never ends): never
	 * idle, still cut off */
	fd = tcp_connect(port);
	deadline = dh_deadline(CUTOFF_MS);
	for (k = 0; !cut; k++) {
		const char *byte = k < strlen(trickle) ? trickle + k : "a";

		if (send(fd, byte, 1, MSG_NOSIGNAL) < 0) {
			DH_ASSERT(errno == EPIPE || errno == ECONNRESET,
				  "send: %s", strerror(errno));
			cut = true;
		} else {
			char c;

			cut = recv(fd, &c, 1, MSG_DONTWAIT) == 0;
		}
		DH_ASSERT(dh_now_ms() < deadline,
			  "a trickling peer was not cut off within %d ms",
			  CUTOFF_MS);
		dh_sleep_ms(100);
	}
	close(fd);

	/* more slow peers than live connections allowed: the oldest are cut
	 * off to make room, and a scrape succeeds */
	for (i = 0; i < SLOW_PEERS; i++) {
		fds[i] = tcp_connect(port);
		DH_ASSERT(send(fds[i], half, strlen(half), MSG_NOSIGNAL) ==
			  (ssize_t)strlen(half), "send");
	}
	free(scrape_checked(port));
	for (i = 0; i < SLOW_PEERS; i++)
		close(fds[i]);

	/* SIGTERM with slow peers connected */
	for (i = 0; i < 4; i++) {
		fds[i] = tcp_connect(port);
		DH_ASSERT(send(fds[i], half, strlen(half), MSG_NOSIGNAL) ==
			  (ssize_t)strlen(half), "send");
	}
	DH_ASSERT(dh_sync(&dmn) == 0, "the daemon does not answer");
	dh_stop_ok(&dmn, SIGTERM, NULL);
	for (i = 0; i < 4; i++)
		close(fds[i]);
}
END_TEST

/*
 * A flood of slow peers: each connected without blocking (the daemon may
 * not accept at once) and trickling a request head that never ends, a
 * byte every TRICKLE_MS, from a thread of its own while the test scrapes.
 * @cut: how many the daemon cut off (end of file, or a reset); written by
 * the thread, read by the test.
 */
struct flood {
	int fd[FLOOD_PEERS];
	bool peer_cut[FLOOD_PEERS];
	size_t sent[FLOOD_PEERS];
	_Atomic int cut;
	_Atomic bool stop;
	pthread_t thread;
};

static void flood_trickle(struct flood *f, int i)
{
	static const char head[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
				   "X-Slow: ";
	const char *byte = f->sent[i] < strlen(head) ? head + f->sent[i] : "a";
	char c;

	if (send(f->fd[i], byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
		f->sent[i]++;
		if (recv(f->fd[i], &c, 1, MSG_DONTWAIT) != 0)
			return;
	} else if (errno == EAGAIN || errno == ENOTCONN) {
		return;	/* not accepted yet */
	}
	f->peer_cut[i] = true;
	f->cut++;
}

static void *flood_run(void *arg)
{
	struct flood *f = arg;
	int i;

	while (!f->stop) {
		for (i = 0; i < FLOOD_PEERS; i++)
			if (!f->peer_cut[i])
				flood_trickle(f, i);
		dh_sleep_ms(TRICKLE_MS);
	}
	return NULL;
}

static void flood_start(struct flood *f, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	int i, ret;

	memset(f, 0, sizeof(*f));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < FLOOD_PEERS; i++) {
		f->fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
					   SOCK_CLOEXEC, 0);
		DH_ASSERT(f->fd[i] >= 0, "socket: %s", strerror(errno));
		DH_ASSERT(connect(f->fd[i], (struct sockaddr *)&sa,
				  sizeof(sa)) == 0 || errno == EINPROGRESS,
			  "connect: %s", strerror(errno));
	}
	ret = pthread_create(&f->thread, NULL, flood_run, f);
	DH_ASSERT(ret == 0, "pthread_create: %s", strerror(ret));
}

static void flood_stop(struct flood *f)
{
	int i;

	f->stop = true;
	pthread_join(f->thread, NULL);
	for (i = 0; i < FLOOD_PEERS; i++)
		close(f->fd[i]);
}

/* Wait (at most DH_SETTLE_MS) until the daemon has no more than @fds
 * descriptors open. */
static void wait_fds_at_most(int fds)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);
	int n;

	for (;;) {
		n = dh_fd_count(dmn.pid);
		DH_ASSERT(n >= 0, "fds of the daemon: %s", strerror(-n));
		if (n <= fds)
			return;
		DH_ASSERT(dh_now_ms() < deadline, "the daemon keeps %d fds, "
			  "had %d", n, fds);
		dh_sleep_ms(FD_POLL_MS);
	}
}

/*
 * FLOOD_PEERS slow peers connected and trickling: a scrape is answered
 * at once all the same, and promtool takes it. The requirement is an
 * answer within a second (Prometheus gives up at 10 s; before the fix it
 * took 16 s with 40 peers): curl's bound of SCRAPE_HANG_S is a hang
 * detector, well over ten times what a scrape takes here. Every slow peer
 * is then cut off, and the daemon's descriptors come back to what it had
 * before the flood.
 */
START_TEST(test_http_slow_flood)
{
	static char resp[256 * 1024];
	long long t0, raw_ms;
	struct flood f;
	int port, fds;

	metrics_up();
	port = served_port();
	fds = dh_fd_count(dmn.pid);

	flood_start(&f, port);
	dh_sleep_ms(FLOOD_SETTLE_MS);
	DH_ASSERT_EQ(f.cut, 0);
	t0 = dh_now_ms();
	DH_ASSERT_EQ(http_req(port, REQ("GET", "/metrics", ""), resp,
			      sizeof(resp)), 200);
	raw_ms = dh_now_ms() - t0;
	t0 = dh_now_ms();
	free(scrape_checked_within(port, SCRAPE_HANG_S));
	fprintf(stderr, "test_http_slow_flood: with %d slow peers, a GET "
		"took %lld ms, curl and promtool %lld ms\n", FLOOD_PEERS,
		raw_ms, dh_now_ms() - t0);

	t0 = dh_deadline(CUTOFF_MS);
	while (f.cut < FLOOD_PEERS) {
		DH_ASSERT(dh_now_ms() < t0, "%d of %d slow peers cut off "
			  "within %d ms", f.cut, FLOOD_PEERS, CUTOFF_MS);
		dh_sleep_ms(TRICKLE_MS);
	}
	flood_stop(&f);
	wait_fds_at_most(fds);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*****************
 * startup
 *****************/

/*
 * Addresses that cannot be served. Those that are not HOST:PORT at all are
 * refused by the option parser: a usage error (exit 1) naming the value.
 * Those that parse but cannot be bound: exit 8 and metrics' error line.
 */
START_TEST(test_bad_addresses)
{
	static const struct {
		const char *listen;
		int exit;
		const char *why;
	} bad[] = {
		{ "256.1.1.1:99999", EXIT_USAGE, "HOST:PORT" },
		{ "256.1.1.1:9577", EXIT_USAGE, "HOST:PORT" },
		{ "127.0.0.1", EXIT_USAGE, "HOST:PORT" },
		{ "127.0.0.1:", EXIT_USAGE, "HOST:PORT" },
		{ "127.0.0.1:65536", EXIT_USAGE, "HOST:PORT" },
		{ "127.0.0.1:-1", EXIT_USAGE, "HOST:PORT" },
		{ "127.0.0.1: 80", EXIT_USAGE, "HOST:PORT" },
		{ ":9577", EXIT_USAGE, "HOST:PORT" },
		{ "::1:9577", EXIT_USAGE, "HOST:PORT" },
		{ "[::1]", EXIT_USAGE, "HOST:PORT" },
		{ "[127.0.0.1]:9577", EXIT_USAGE, "HOST:PORT" },
		{ "example.com:9577", EXIT_USAGE, "HOST:PORT" },
		{ "192.0.2.1:9577", EXIT_METRICS,
		  "<3>metrics: cannot serve metrics on 192.0.2.1:9577: "
		  "Cannot assign requested address (not an address of this "
		  "host)" },
	};
	char log[8192];
	size_t i;
	int status;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		status = run_daemon_expect_exit(bad[i].listen, log,
						sizeof(log));
		DH_ASSERT(status >= 0 && WIFEXITED(status) &&
			  WEXITSTATUS(status) == bad[i].exit,
			  "--metrics '%s': %s, expected exit %d: %s",
			  bad[i].listen, dh_status_str(status), bad[i].exit,
			  log);
		DH_ASSERT(line_with(log, bad[i].listen, bad[i].why),
			  "--metrics '%s': no clear line saying why: %s",
			  bad[i].listen, log);
	}
}
END_TEST

/* A port another daemon serves: the second one exits 8, the first goes
 * on. */
START_TEST(test_port_in_use)
{
	char log[8192], listen[64];
	int port, status;

	metrics_up();
	port = served_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	status = run_daemon_expect_exit(listen, log, sizeof(log));
	DH_ASSERT(status >= 0 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == EXIT_METRICS,
		  "second daemon on port %d: %s, expected exit %d", port,
		  dh_status_str(status), EXIT_METRICS);
	DH_ASSERT(line_with(log, "<3>metrics: cannot serve metrics on",
			    "in use"), "unclear: %s", log);

	free(scrape_checked(port));
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

static bool ipv6_loopback(void)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa,
				  sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* localhost is 127.0.0.1; off serves nothing. */
START_TEST(test_addresses)
{
	char addr[128];

	dh_up(&dmn, (const char *[]){ "--metrics", "localhost:0", NULL });
	served_address(addr, sizeof(addr));
	DH_ASSERT(!strncmp(addr, "127.0.0.1:", 10), "localhost: %s", addr);
	free(scrape_checked(served_port()));
	dh_stop_ok(&dmn, SIGTERM, NULL);
	dh_remove(&dmn);

	dh_up(&dmn, (const char *[]){ "--metrics", "off", NULL });
	DH_ASSERT_EQ(dh_log_count(&dmn, "serving http://"), 0);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* Part "ipv6" (check_metrics_ipv6): [::1] serves IPv6. */
START_TEST(test_address_ipv6)
{
	char addr[128], url[160];
	char *b;

	dh_up(&dmn, (const char *[]){ "--metrics", "[::1]:0", NULL });
	served_address(addr, sizeof(addr));
	DH_ASSERT(!strncmp(addr, "[::1]:", 6), "[::1]: %s", addr);
	snprintf(url, sizeof(url), "http://%s/metrics", addr);
	b = slurp(curl_get(url, "v6.txt", CURL_MAX_S));
	DH_ASSERT(strstr(b, "uzswap_build_info{"), "v6: %s", b);
	free(b);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*****************
 * Suite
 *****************/

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = tcase_create("scrape");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_scrape_with_client);
	tcase_add_test(tc, test_every_listed_counter);
	tcase_add_test(tc, test_label_escaping);
	tcase_add_test(tc, test_client_cap);
	tcase_add_test(tc, test_process_series);
	tcase_add_test(tc, test_reload_status);
	tcase_add_test(tc, test_monitoring_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("http");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_http_requests);
	tcase_add_test(tc, test_http_bad_requests);
	tcase_add_test(tc, test_http_slow);
	tcase_add_test(tc, test_http_slow_flood);
	suite_add_tcase(s, tc);

	tc = tcase_create("startup");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_bad_addresses);
	tcase_add_test(tc, test_port_in_use);
	tcase_add_test(tc, test_addresses);
	suite_add_tcase(s, tc);

	/* a part of its own (check_metrics_ipv6): it needs IPv6 */
	tc = ckpart_tcase(s, "ipv6");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_address_ipv6);
	return s;
}

static const char *cannot_run(const char *part)
{
	return ipv6_loopback() ? NULL : "no IPv6 loopback ([::1])";
}

int main(void)
{
	return dh_main_part("check_metrics", metrics_suite(), CKPART,
			    cannot_run);
}
