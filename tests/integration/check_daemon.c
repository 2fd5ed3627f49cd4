/*
 * check_daemon.c - integration tests of uzswapd: a real daemon (started by
 * daemon_harness.c) serving real client programs (uzclient, which links
 * libuzswap) and hostile peers crafted here with raw sockets and lib/proto.
 *
 * Test cases of daemon_suite():
 *   startup    start/stop, a second daemon on a busy socket, a stale
 *              socket, a daemon that fails to start (its /metrics port
 *              taken, its state directory locked) leaves no socket file,
 *              bad command lines, SIGHUP/SIGINT
 *   clients    alloc/write/read/free, adoption, 8 threads faulting one
 *              region, kernel-mode accesses, 32 clients at once, stats,
 *              API refusals, several connections in one process
 *   lifecycle  client exit (normal, crash, SIGKILL) returns the daemon to
 *              its baseline of open descriptors; a client SIGKILLed while
 *              blocked in a fault, and spinning clients killed at random,
 *              while others continue; SIGTERM with clients connected, and
 *              with one blocked in a fault, hands them over to the next
 *              daemon (they keep their data and go on); a restart without
 *              the state refuses to resume a client (-ESTALE)
 *   protocol   garbage, truncated, oversized and pipelined messages, a
 *              message before HELLO, a second HELLO, wrong descriptor
 *              counts, unknown types and versions, malformed payloads,
 *              REGISTER of memory that is not the sender's (unmapped, other
 *              memfd, other process, read-only, wrong offset), descriptors
 *              that are not what they claim, peers that never read, many
 *              connections, running out of descriptors
 *   loop       the control socket answers while the work that grows with
 *              a client's size runs: ADVISE over huge ranges, the
 *              teardown of a big stored region (connection closed, process
 *              killed), UNREGISTER of one (its reply waits for the
 *              restore); each prints the slowest STATUS round trip seen
 *
 * Every hostile case is followed by a normal client that must work, and
 * by a check that the daemon went back to the number of open descriptors
 * it had when idle at startup (a refused message must not leak the fds it
 * carried). Every daemon must exit 0 on SIGTERM (under ASan that includes
 * LeakSanitizer's verdict) and log no error line (<3>) and no sanitizer
 * report. Every data check uses patterns that cannot be mistaken for zeros.
 *
 * Under valgrind (the daemon and the clients are separate programs, run
 * natively): CK_FORK=no valgrind --leak-check=full ./check_daemon
 * One test case (startup, clients, lifecycle, protocol, loop):
 *   CK_RUN_CASE=protocol ./check_daemon
 * UZSWAP_ITEST_KEEP=1 keeps every daemon's and client's log.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/common/macros.h"
#include "lib/proto/proto.h"
#include "lib/uffd/uffd.h"
#include "pager.h"
#include "tests/send.h"

#define MIB		(1024ul * 1024)
#define PAGE		4096ul
#define REPLY_MS	10000
/* uzswapd's exit codes (uzswapd.h, uzswapd(8)) that tests expect. */
#define EXIT_METRICS	8
#define EXIT_STATE	11

/* Generous: CI machines are slow, and run all of this under ASan. */
#define TIMEOUT_FAST	120
#define TIMEOUT_SLOW	600

static struct dh_daemon dmn;
static int base_fds;
/* Error lines a test provokes on purpose (NULL: none). */
static const char *log_allow;
static char base_list[4096];	/* the daemon's fds when idle at start */

/* A status code and its name, for messages. */
static const char *errname(int status)
{
	static char buf[64];

	if (status == 0)
		return "0";
	snprintf(buf, sizeof(buf), "%d (%s)", status, strerror(-status));
	return buf;
}

#define ASSERT_STATUS(got, want)					\
	do {								\
		int got_ = (got), want_ = (want);			\
		if (got_ != want_) {					\
			char g_[64];					\
			snprintf(g_, sizeof(g_), "%s", errname(got_));	\
			DH_ASSERT(0, "%s: status %s, expected %s", #got,\
				  g_, errname(want_));			\
		}							\
	} while (0)

/*****************
 * Fixtures
 *****************/

static void daemon_up(void)
{
	log_allow = NULL;
	dh_up(&dmn, NULL);
	base_fds = dh_wait_idle(&dmn);
	DH_ASSERT(base_fds > 0, "cannot count the daemon's fds: %s",
		  strerror(-base_fds));
	dh_fd_list(dmn.pid, base_list, sizeof(base_list));
	DH_ASSERT_EQ(dh_client_fds(dmn.pid), 1);
}

/* Stop the daemon with @sig (0: it was signalled already): exit status
 * 0, a clean log, the socket removed. */
static void daemon_stop_with(int sig)
{
	dh_stop_ok(&dmn, sig, log_allow);
	DH_ASSERT(access(dmn.sock, F_OK) < 0 && errno == ENOENT,
		  "uzswapd left its socket %s behind", dmn.sock);
}

static void daemon_stop_ok(void)
{
	daemon_stop_with(SIGTERM);
}

static void daemon_down(void)
{
	if (dmn.pid)
		daemon_stop_ok();
	dh_down(&dmn, log_allow);
}

/* A normal client works (run after every hostile case). */
static void assert_serving(void)
{
	static const char *const argv[] = { "basic", "2", NULL };
	int status = dh_run_uzclient(&dmn, argv);

	DH_ASSERT(dh_exited_ok(status), "a normal client: %s",
		  dh_status_str(status));
}

/* The daemon holds what it held when idle at startup, once it has torn
 * down every client (asynchronously). */
static void assert_baseline(void)
{
	int n = dh_wait_idle(&dmn);

	if (n != base_fds) {
		char now[4096];

		dh_fd_list(dmn.pid, now, sizeof(now));
		fprintf(stderr, "uzswapd's fds at start:\n%s"
			"uzswapd's fds now:\n%s", base_list, now);
	}
	DH_ASSERT(n == base_fds,
		  "uzswapd holds %d fds (%d of clients), %d when it started",
		  n, dh_client_fds(dmn.pid), base_fds);
}

static void assert_alive(void)
{
	DH_ASSERT(dmn.pid && kill(dmn.pid, 0) == 0 &&
			  waitpid(dmn.pid, NULL, WNOHANG) == 0,
		  "uzswapd is gone");
}

/*****************
 * Raw protocol peer
 *****************/

struct raw {
	int fd;
	uint32_t seq;
	int uffd;	/* the uffd sent in HELLO, kept open, -1 if none */
};

static void raw_open(struct raw *r)
{
	r->fd = dh_connect(&dmn);
	DH_ASSERT(r->fd >= 0, "connect: %s", strerror(-r->fd));
	r->seq = 100;
	r->uffd = -1;
}

static void raw_close(struct raw *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->uffd >= 0)
		close(r->uffd);
	r->fd = r->uffd = -1;
}

/* Build a frame: header (any field values) + @plen payload bytes. */
static size_t frame(uint8_t *buf, uint32_t magic, uint16_t version,
		    uint16_t type, uint32_t seq, uint32_t hdr_len,
		    const void *payload, size_t plen)
{
	struct proto_hdr h = {
		.magic = magic, .version = version, .type = type,
		.seq = seq, .len = hdr_len,
	};

	memcpy(buf, &h, sizeof(h));
	if (plen)
		memcpy(buf + sizeof(h), payload, plen);
	return sizeof(h) + plen;
}

/* Send the whole of @buf, fds on the first byte. */
static void send_all(int sock, const void *buf, size_t len, const int *fds,
		     int nfds)
{
	ssize_t n = send_with_fds(sock, buf, len, fds, nfds, 0);

	DH_ASSERT(n == (ssize_t)len, "sendmsg: %zd of %zu (%s)", n, len,
		  n < 0 ? strerror((int)-n) : "short");
}

/* Send a well-formed request of @type; returns its sequence number. */
static uint32_t raw_send(struct raw *r, uint16_t type, const void *payload,
			 size_t len, const int *fds, int nfds)
{
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD];

	r->seq++;
	send_all(r->fd, buf,
		 frame(buf, PROTO_MAGIC, PROTO_VERSION, type, r->seq,
		       (uint32_t)len, payload, len),
		 fds, nfds);
	return r->seq;
}

/* Read one message (a reply) within REPLY_MS: 0, -ETIMEDOUT, or the
 * reader's -errno (-ECONNRESET at end of stream). */
static int raw_read(int sock, struct proto_msg *m)
{
	struct proto_reader rd;
	long long deadline = dh_deadline(REPLY_MS);
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int ret;

	memset(&rd, 0, sizeof(rd));
	for (;;) {
		ret = proto_reader_feed(&rd, sock);
		if (ret == 1)
			break;
		if (ret < 0) {
			proto_reader_reset(&rd);
			return ret;
		}
		if (dh_now_ms() >= deadline) {
			proto_reader_reset(&rd);
			return -ETIMEDOUT;
		}
		poll(&pfd, 1, 100);
	}
	*m = rd.msg;
	return 0;
}

/*
 * Read the reply to request @seq of @type and return its status; the body
 * is copied to @body (@size bytes at most, length in *@blen). Asserts
 * that the reply is well-formed, echoes type and sequence number, carries
 * no descriptor, and that an error comes with a message.
 */
static int raw_reply(struct raw *r, uint16_t type, uint32_t seq, void *body,
		     size_t size, size_t *blen)
{
	const uint8_t *b;
	const char *errmsg;
	struct proto_msg m;
	int32_t status;
	size_t len;
	int ret;

	ret = raw_read(r->fd, &m);
	DH_ASSERT(ret == 0, "no reply to %s: %s", proto_type_name(type),
		  strerror(-ret));
	DH_ASSERT(m.nfds == 0, "a reply carried %d fds", m.nfds);
	DH_ASSERT(m.hdr.type == (uint16_t)(type | PROTO_REPLY),
		  "reply type %#x to a request of type %#x", m.hdr.type, type);
	DH_ASSERT(m.hdr.seq == seq, "reply seq %u to request seq %u",
		  m.hdr.seq, seq);
	DH_ASSERT(m.hdr.version == PROTO_VERSION, "reply version %u",
		  m.hdr.version);
	ret = proto_parse_reply(&m, &status, &b, &len, &errmsg);
	DH_ASSERT(ret == 0, "malformed reply to %s", proto_type_name(type));
	if (status < 0) {
		DH_ASSERT(errmsg && strlen(errmsg) > 0,
			  "error %d without a message", status);
	} else if (body) {
		DH_ASSERT(len <= size, "reply body of %zu bytes", len);
		memcpy(body, b, len);
		if (blen)
			*blen = len;
	}
	return status;
}

/* One request, its reply's status. */
static int raw_call(struct raw *r, uint16_t type, const void *payload,
		    size_t len, const int *fds, int nfds)
{
	uint32_t seq = raw_send(r, type, payload, len, fds, nfds);

	return raw_reply(r, type, seq, NULL, 0, NULL);
}

/* After an error reply (or none), the daemon closes the connection. */
static void assert_closed(int sock)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	char c;
	ssize_t n;

	DH_ASSERT(poll(&pfd, 1, REPLY_MS) == 1,
		  "uzswapd did not close the connection");
	n = recv(sock, &c, 1, MSG_DONTWAIT);
	DH_ASSERT(n == 0 || (n < 0 && errno == ECONNRESET),
		  "connection still open after a broken frame (recv %zd)", n);
}

/* Read the error reply to a broken frame, then see the close. */
static void assert_frame_refused(struct raw *r, uint16_t type, uint32_t seq,
				 int want)
{
	ASSERT_STATUS(raw_reply(r, type, seq, NULL, 0, NULL), want);
	assert_closed(r->fd);
}

static int hello_with(struct raw *r, int fd, int32_t fdnum, uint16_t min,
		      uint16_t max)
{
	struct proto_hello h = {
		.min_version = min, .max_version = max,
		.uffd_mode = 0, .uffd_fdnum = fdnum,
	};
	uint8_t buf[PROTO_MAX_PAYLOAD];

	return raw_call(r, PROTO_HELLO, buf,
			proto_encode_hello(buf, &h, PROTO_VERSION), &fd, 1);
}

static int new_uffd(void)
{
	int mode, fd = uffd_open(&mode);

	DH_ASSERT(fd >= 0, "uffd_open: %s", strerror(-fd));
	return fd;
}

/* A good HELLO; the connection keeps its uffd. */
static void raw_hello(struct raw *r)
{
	r->uffd = new_uffd();
	ASSERT_STATUS(hello_with(r, r->uffd, r->uffd, PROTO_VERSION_MIN,
				 PROTO_VERSION), 0);
}

static int raw_stats(struct raw *r, struct proto_stats_reply *s)
{
	uint8_t body[PROTO_MAX_PAYLOAD];
	uint32_t seq = raw_send(r, PROTO_STATS, NULL, 0, NULL, 0);
	size_t len = 0;
	int ret = raw_reply(r, PROTO_STATS, seq, body, sizeof(body), &len);

	if (ret == 0)
		DH_ASSERT(proto_decode_stats_reply(body, len, s) == 0,
			  "malformed STATS reply body");
	return ret;
}

/* REGISTER; the region id in *@id if not NULL. */
static int raw_register(struct raw *r, uint64_t addr, uint64_t len,
			uint32_t flags, int memfd, int32_t fdnum, uint64_t *id)
{
	struct proto_register reg = {
		.addr = addr, .len = len, .flags = flags,
		.memfd_fdnum = fdnum,
	};
	struct proto_register_reply rr;
	uint8_t buf[PROTO_MAX_PAYLOAD], body[64];
	uint32_t seq;
	size_t blen = 0;
	int ret;

	snprintf(reg.name, sizeof(reg.name), "itest");
	seq = raw_send(r, PROTO_REGISTER, buf,
		       proto_encode_register(buf, &reg,
					     PROTO_VERSION), &memfd, 1);
	ret = raw_reply(r, PROTO_REGISTER, seq, body, sizeof(body), &blen);
	if (ret == 0) {
		DH_ASSERT(proto_decode_register_reply(body, blen, &rr) == 0,
			  "malformed REGISTER reply body");
		DH_ASSERT(rr.region_id > 0, "region id 0");
		if (id)
			*id = rr.region_id;
	}
	return ret;
}

static int raw_unregister(struct raw *r, uint64_t addr)
{
	struct proto_unregister u = { .addr = addr };
	uint8_t buf[PROTO_MAX_PAYLOAD];

	return raw_call(r, PROTO_UNREGISTER, buf,
			proto_encode_unregister(buf, &u,
						PROTO_VERSION), NULL, 0);
}

/* A memfd of @len bytes mapped shared read-write (as libuzswap maps a
 * region) at a fresh address. */
struct mregion {
	uint8_t *addr;
	size_t len;
	int memfd;
};

static void mregion_make(struct mregion *m, size_t len)
{
	m->len = len;
	m->memfd = memfd_region_create("itest", len);
	DH_ASSERT(m->memfd >= 0, "memfd: %s", strerror(-m->memfd));
	m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       m->memfd, 0);
	DH_ASSERT(m->addr != MAP_FAILED, "mmap: %s", strerror(errno));
	madvise(m->addr, len, MADV_NOHUGEPAGE);
}

static void mregion_free(struct mregion *m)
{
	munmap(m->addr, m->len);
	close(m->memfd);
}

/* Pattern words that are never zero. */
static uint64_t pat(uint64_t seed, size_t i)
{
	uint64_t x = (seed + i) * 0x9e3779b97f4a7c15ull;

	x ^= x >> 29;
	return x | 0x8000000000000001ull;
}

static void fill(void *p, size_t len, uint64_t seed)
{
	volatile uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = pat(seed, i);
}

static void check_fill(const void *p, size_t len, uint64_t seed)
{
	const volatile uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		DH_ASSERT(w[i] == pat(seed, i),
			  "word %zu (page %zu) is %#" PRIx64 "%s", i,
			  i * 8 / PAGE, w[i], w[i] ? "" : " (ZERO)");
}

/*****************
 * startup
 *****************/

START_TEST(test_start_stop)
{
	daemon_up();
	assert_alive();
	DH_ASSERT(dh_log_find(&dmn, "ready", NULL, 0),
		  "no 'ready' line in the log");
	daemon_stop_ok();
	DH_ASSERT(dh_log_find(&dmn, "stopped", NULL, 0),
		  "no 'stopped' line in the log");
	dh_remove(&dmn);
}
END_TEST

/*
 * The size of the stack mapping of thread @tid of the daemon, found from
 * the stack pointer it is blocked with (/proc/.../syscall: "nr args...
 * sp pc"): 0 if the thread is running and could not be caught blocked.
 */
static unsigned long thread_stack_size(pid_t tid)
{
	unsigned long sp = 0, lo, hi, size = 0;
	char path[96], line[512], *last, *prev;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)dmn.pid,
		 (int)tid);
	for (i = 0; i < 100 && !sp; i++) {
		f = fopen(path, "r");
		DH_ASSERT(f, "%s: %s", path, strerror(errno));
		if (fgets(line, sizeof(line), f) && strncmp(line, "running", 7)) {
			last = strrchr(line, ' ');
			*last = 0;
			prev = strrchr(line, ' ');
			sp = strtoul(prev + 1, NULL, 16);
		}
		fclose(f);
		if (!sp)
			dh_sleep_ms(10);
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)dmn.pid);
	f = fopen(path, "r");
	DH_ASSERT(f, "%s: %s", path, strerror(errno));
	while (sp && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= sp &&
		    sp < hi)
			size = hi - lo;
	fclose(f);
	return size;
}

/*
 * The daemon locks all its memory (mlockall): its fault and evictor
 * threads must not carry glibc's 8 MiB default stacks. Each such thread's
 * stack mapping stays under 1 MiB.
 */
START_TEST(test_thread_stacks)
{
	char path[64], comm[64], task[352];
	struct dirent *e;
	int fault = 0, evict = 0;
	unsigned long size;
	DIR *dir;
	FILE *f;

	daemon_up();
	snprintf(path, sizeof(path), "/proc/%d/task", (int)dmn.pid);
	dir = opendir(path);
	DH_ASSERT(dir, "%s: %s", path, strerror(errno));
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(task, sizeof(task), "%s/%s/comm", path, e->d_name);
		f = fopen(task, "r");
		if (!f || !fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		if (f)
			fclose(f);
		if (strncmp(comm, "uzswapd-fault", 13) &&
		    strncmp(comm, "uzswapd-evict", 13))
			continue;
		size = thread_stack_size(atoi(e->d_name));
		fprintf(stderr, "thread %s %.13s: stack %lu KiB\n", e->d_name,
			comm, size >> 10);
		DH_ASSERT(size > 0 && size < 1024 * 1024,
			  "%.13s stack %lu KiB", comm, size >> 10);
		if (comm[8] == 'f')
			fault++;
		else
			evict++;
	}
	closedir(dir);
	DH_ASSERT(fault > 0 && evict > 0, "%d fault, %d evictor threads",
		  fault, evict);
	daemon_stop_ok();
	dh_remove(&dmn);
}
END_TEST

START_TEST(test_second_daemon_refused)
{
	const char *argv[] = { UZSWAPD_PATH, "--socket", dmn.sock,
			       "--no-mlock", NULL };
	struct dh_client c;
	int status;

	daemon_up();
	/* the harness runs any program; uzswapd here, expecting exit 4 */
	DH_ASSERT(dh_client_start(&dmn, &c, argv, false) == 0, "fork");
	status = dh_client_wait(&c, DH_STOP_MS);
	DH_ASSERT(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 4,
		  "a second uzswapd on a served socket: %s, expected exit 4",
		  dh_status_str(status));
	assert_alive();
	assert_serving();
	assert_baseline();
	daemon_down();
}
END_TEST

START_TEST(test_stale_socket)
{
	int ret;

	daemon_up();
	dh_kill(&dmn);
	DH_ASSERT(access(dmn.sock, F_OK) == 0,
		  "a SIGKILLed daemon cannot remove its socket; expected it");
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "uzswapd over a stale socket: %s",
		  strerror(-ret));
	base_fds = dh_wait_idle(&dmn);
	dh_fd_list(dmn.pid, base_list, sizeof(base_list));
	assert_serving();
	assert_baseline();
	daemon_down();
}
END_TEST

/*
 * Run a second uzswapd on the socket "@dmn.sock.failed" with @state and
 * @metrics, expecting it to fail at startup with exit code @code and a
 * line holding @why on its stderr, leaving no socket file behind.
 */
static void assert_start_fails(const char *state, const char *metrics,
			       int code, const char *why)
{
	char sock[PATH_MAX + 8], err[4096];
	int status;

	snprintf(sock, sizeof(sock), "%s.failed", dmn.sock);
	status = dh_run((const char *[]){ UZSWAPD_PATH, "--socket", sock,
					  "--no-mlock", "--backing-file",
					  "none", "--config", dmn.conf,
					  "--state-dir", state, "--metrics",
					  metrics, NULL },
			NULL, NULL, NULL, 0, err, sizeof(err), DH_STOP_MS);
	DH_ASSERT(status >= 0 && WIFEXITED(status) &&
			  WEXITSTATUS(status) == code,
		  "uzswapd --metrics %s --state-dir %s: %s, expected exit %d; "
		  "stderr: %s", metrics, state, dh_status_str(status), code,
		  err);
	DH_ASSERT(strstr(err, why), "no '%s' in its stderr: %s", why, err);
	DH_ASSERT(access(sock, F_OK) < 0 && errno == ENOENT,
		  "a daemon that failed to start left its socket %s", sock);
}

/* A daemon that fails at its last startup step (its /metrics address is
 * taken: everything before is undone) or at the state directory (the
 * running daemon's, locked) says why and leaves no socket file; the
 * running daemon serves on, its socket in place. */
START_TEST(test_failed_start)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char state[PATH_MAX + 16], metrics[64];
	int holder;

	daemon_up();
	holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	DH_ASSERT(holder >= 0 &&
			  bind(holder, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
			  listen(holder, 1) == 0 &&
			  getsockname(holder, (struct sockaddr *)&sa,
				      &len) == 0,
		  "cannot hold a port: %s", strerror(errno));
	snprintf(metrics, sizeof(metrics), "127.0.0.1:%d",
		 (int)ntohs(sa.sin_port));
	snprintf(state, sizeof(state), "%s/state.failed", dmn.dir);
	assert_start_fails(state, metrics, EXIT_METRICS, metrics);
	close(holder);

	assert_start_fails(dmn.state, "off", EXIT_STATE, dmn.state);
	DH_ASSERT(access(dmn.sock, F_OK) == 0, "the running daemon's socket "
		  "is gone");
	assert_alive();
	assert_serving();
	daemon_down();
}
END_TEST

START_TEST(test_bad_command_lines)
{
	static const char *const bad[][4] = {
		{ "--fault-threads", "0", NULL },
		{ "--fault-threads", "17", NULL },
		{ "--fault-threads", "x", NULL },
		{ "--no-such-option", NULL },
		{ "extra-argument", NULL },
	};
	struct dh_client c;
	size_t i;
	int status;

	daemon_up();	/* for its directory and log */
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *argv[8] = { UZSWAPD_PATH, "--socket", NULL };
		char sock[PATH_MAX + 8];
		int n = 3, k;

		snprintf(sock, sizeof(sock), "%s.%zu", dmn.sock, i);
		argv[2] = sock;
		for (k = 0; bad[i][k]; k++)
			argv[n++] = bad[i][k];
		argv[n] = NULL;
		DH_ASSERT(dh_client_start(&dmn, &c, argv, false) == 0, "fork");
		status = dh_client_wait(&c, DH_STOP_MS);
		DH_ASSERT(status >= 0 && WIFEXITED(status) &&
				  WEXITSTATUS(status) == 1,
			  "uzswapd %s %s: %s, expected exit 1", bad[i][0],
			  bad[i][1] ? bad[i][1] : "", dh_status_str(status));
		DH_ASSERT(access(sock, F_OK) < 0,
			  "a refused command line created the socket");
	}
	{
		const char *argv[] = { UZSWAPD_PATH, "--version", NULL };

		DH_ASSERT(dh_client_start(&dmn, &c, argv, false) == 0, "fork");
		status = dh_client_wait(&c, DH_STOP_MS);
		DH_ASSERT(dh_exited_ok(status), "uzswapd --version: %s",
			  dh_status_str(status));
	}
	assert_serving();
	daemon_down();
}
END_TEST

START_TEST(test_sighup_sigint)
{
	daemon_up();
	DH_ASSERT(kill(dmn.pid, SIGHUP) == 0, "kill");
	assert_serving();
	assert_alive();
	assert_baseline();
	daemon_stop_with(SIGINT);
	daemon_down();
}
END_TEST

/*****************
 * clients
 *****************/

static void run_ok(const char *const *argv)
{
	int status = dh_run_uzclient(&dmn, argv);

	DH_ASSERT(dh_exited_ok(status), "uzclient %s: %s", argv[0],
		  dh_status_str(status));
}

START_TEST(test_basic)
{
	static const char *const argv[] = { "basic", "64", NULL };

	run_ok(argv);
	assert_baseline();
}
END_TEST

START_TEST(test_adopt)
{
	static const char *const argv[] = { "adopt", "16", NULL };

	run_ok(argv);
	assert_baseline();
}
END_TEST

START_TEST(test_threads)
{
	static const char *const argv[] = { "threads", "8", "64", NULL };
	static const char *const argv2[] = { "threads", "8", "1", NULL };
	int i;

	run_ok(argv);
	/* small regions: all 8 threads on the same few blocks */
	for (i = 0; i < 5; i++)
		run_ok(argv2);
	assert_baseline();
}
END_TEST

START_TEST(test_kernel_io)
{
	static const char *const argv[] = { "kernel-io", NULL };

	run_ok(argv);
	assert_baseline();
}
END_TEST

START_TEST(test_stats)
{
	static const char *const argv[] = { "stats", NULL };
	int i;

	/* several times: the counters must be right every time, not just
	 * eventually */
	for (i = 0; i < 10; i++)
		run_ok(argv);
	assert_baseline();
}
END_TEST

START_TEST(test_api)
{
	static const char *const argv[] = { "api", NULL };

	run_ok(argv);
	assert_baseline();
}
END_TEST

START_TEST(test_multi_connection)
{
	static const char *const argv[] = { "multi", NULL };

	run_ok(argv);
	assert_baseline();
}
END_TEST

#define NR_CLIENTS 32

START_TEST(test_32_clients)
{
	static const char *const basic[] = { "basic", "4", NULL };
	static const char *const threads[] = { "threads", "4", "2", NULL };
	static const char *const adopt[] = { "adopt", "2", NULL };
	struct dh_client c[NR_CLIENTS];
	int i, status, bad = 0;

	for (i = 0; i < NR_CLIENTS; i++)
		DH_ASSERT(dh_uzclient_start(&dmn, &c[i],
					    i % 4 == 1 ? threads :
					    i % 4 == 3 ? adopt : basic,
					    false) == 0,
			  "starting client %d", i);
	for (i = 0; i < NR_CLIENTS; i++) {
		status = dh_client_wait(&c[i], DH_CLIENT_MS);
		if (!dh_exited_ok(status)) {
			fprintf(stderr, "client %d: %s\n", i,
				dh_status_str(status));
			bad++;
		}
	}
	DH_ASSERT(bad == 0, "%d of %d concurrent clients failed", bad,
		  NR_CLIENTS);
	assert_baseline();
}
END_TEST

/*****************
 * lifecycle
 *****************/

static void start_ready(struct dh_client *c, const char *const *argv)
{
	char line[64];
	int ret;

	DH_ASSERT(dh_uzclient_start(&dmn, c, argv, true) == 0, "fork");
	ret = dh_client_read_line(c, line, sizeof(line), DH_CLIENT_MS);
	DH_ASSERT(ret == 0 && !strcmp(line, "ready"),
		  "uzclient %s did not get ready: %s", argv[0],
		  ret ? strerror(-ret) : line);
}

static void expect_exit_ok(struct dh_client *c, const char *what)
{
	int status = dh_client_wait(c, DH_CLIENT_MS);

	DH_ASSERT(dh_exited_ok(status), "%s: %s", what, dh_status_str(status));
}

/* Rounds a spinning client has completed. */
static unsigned long spin_rounds(struct dh_client *c)
{
	unsigned long n = 0;
	char line[64];
	int ret;

	DH_ASSERT(dh_client_say(c, "report") == 0, "spin: stdin");
	ret = dh_client_read_line(c, line, sizeof(line), DH_CLIENT_MS);
	DH_ASSERT(ret == 0 && sscanf(line, "rounds %lu", &n) == 1,
		  "spin: no report: %s", ret ? strerror(-ret) : line);
	return n;
}

/* Wait until the spinning client completes @more rounds. */
static void spin_progress(struct dh_client *c, unsigned long more)
{
	unsigned long start = spin_rounds(c), now;
	long long deadline = dh_deadline(DH_CLIENT_MS);

	do {
		DH_ASSERT(dh_now_ms() < deadline,
			  "a spinning client made no progress");
		dh_sleep_ms(10);
		now = spin_rounds(c);
	} while (now < start + more);
}

static void spin_stop(struct dh_client *c)
{
	DH_ASSERT(dh_client_say(c, "stop") == 0, "spin: stdin");
	expect_exit_ok(c, "spinning client");
}

START_TEST(test_exit_normal)
{
	static const char *const argv[] = { "basic", "8", NULL };

	run_ok(argv);
	assert_baseline();
	run_ok(argv);
	assert_baseline();
}
END_TEST

START_TEST(test_exit_crash)
{
	static const char *const argv[] = { "crash", "8", NULL };
	int status = dh_run_uzclient(&dmn, argv);

	DH_ASSERT(status >= 0 && WIFSIGNALED(status) &&
			  WTERMSIG(status) == SIGABRT,
		  "uzclient crash: %s, expected SIGABRT",
		  dh_status_str(status));
	assert_baseline();
	assert_serving();
	assert_baseline();
}
END_TEST

START_TEST(test_exit_sigkill)
{
	static const char *const argv[] = { "hold", "8", NULL };
	struct dh_client c;

	start_ready(&c, argv);
	DH_ASSERT(dh_client_fds(dmn.pid) > 1,
		  "a connected client holds no fd in the daemon");
	dh_client_kill(&c);
	assert_baseline();
	assert_serving();
	assert_baseline();
}
END_TEST

/*
 * A client SIGKILLed while blocked in a fault: the daemon is stopped
 * (SIGSTOP) so that the fault cannot be served, the client touches its
 * region and blocks (its uffd shows the unresolved fault), gets SIGKILLed,
 * and the daemon resumes with the dead client's fault queued. Spinning
 * clients, blocked meanwhile, must go on with correct data.
 */
/* "S (do_select)": a process's state and where it sleeps, for messages. */
static const char *proc_state(pid_t pid)
{
	static char buf[128];
	char path[64], stat[512] = "", wchan[64] = "";
	char *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, stat, sizeof(stat) - 1);
		stat[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, wchan, sizeof(wchan) - 1);
		wchan[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	p = strrchr(stat, ')');
	snprintf(buf, sizeof(buf), "%c (%s)", p && p[1] ? p[2] : '?', wchan);
	return buf;
}

START_TEST(test_sigkill_mid_fault)
{
	static const char *const spin[] = { "spin", "2", NULL };
	static const char *const block[] = { "block", "8", NULL };
	struct dh_client s[3], b;
	long long deadline;
	long pending = 0;
	int i, status;

	for (i = 0; i < 3; i++)
		start_ready(&s[i], spin);
	start_ready(&b, block);

	DH_ASSERT(kill(dmn.pid, SIGSTOP) == 0, "SIGSTOP");
	DH_ASSERT(dh_client_say(&b, "go") == 0, "block: stdin");
	deadline = dh_deadline(DH_SETTLE_MS);
	while ((pending = dh_uffd_waiting(b.pid)) < 1 &&
	       dh_now_ms() < deadline)
		dh_sleep_ms(5);
	if (pending < 1)
		kill(dmn.pid, SIGCONT);
	DH_ASSERT(pending >= 1, "the client never blocked in a fault: "
		  "%ld waiting, client %s", pending, proc_state(b.pid));

	kill(b.pid, SIGKILL);
	status = dh_client_wait(&b, DH_SETTLE_MS);
	kill(dmn.pid, SIGCONT);
	DH_ASSERT(status >= 0 && WIFSIGNALED(status) &&
			  WTERMSIG(status) == SIGKILL,
		  "the client blocked in a fault: %s after SIGKILL",
		  dh_status_str(status));

	for (i = 0; i < 3; i++)
		spin_progress(&s[i], 3);
	assert_serving();
	for (i = 0; i < 3; i++)
		spin_stop(&s[i]);
	assert_baseline();
}
END_TEST

/* Spinning clients (alloc/touch/free in a loop) SIGKILLed one after the
 * other, at whatever point they are; the others go on. */
START_TEST(test_sigkill_spinning)
{
	static const char *const spin[] = { "spin", "4", NULL };
	struct dh_client s[6];
	int i, k;

	for (i = 0; i < 6; i++)
		start_ready(&s[i], spin);
	for (k = 0; k < 3; k++) {
		/* let the next victim and the survivors run a little */
		for (i = k; i < 6; i++)
			spin_progress(&s[i], 1);
		dh_client_kill(&s[k]);
	}
	for (i = 3; i < 6; i++)
		spin_progress(&s[i], 3);
	assert_serving();
	for (i = 3; i < 6; i++)
		spin_stop(&s[i]);
	assert_baseline();
}
END_TEST

/*
 * SIGTERM with clients connected hands them over: the daemon exits 0
 * with their connections closed and their regions as they were (what was
 * written stays readable meanwhile); its successor takes them over, so
 * pages never touched read zeros, and every client's library resumes.
 * The test process holds a region too, registered over a raw connection
 * that does not resume: the successor serves it all the same.
 */
START_TEST(test_sigterm_hands_over_clients)
{
	static const char *const hold[] = { "hold", "8", NULL };
	struct dh_client h[3];
	struct mregion m;
	struct raw r;
	int i, ret;

	for (i = 0; i < 3; i++)
		start_ready(&h[i], hold);
	raw_open(&r);
	raw_hello(&r);
	mregion_make(&m, MIB);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, m.len, 0,
				   m.memfd, m.memfd, NULL), 0);
	fill(m.addr, m.len / 2, 77);

	daemon_stop_ok();
	assert_closed(r.fd);
	check_fill(m.addr, m.len / 2, 77);
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 4 clients, 4 regions", NULL,
			      0), "not every client taken over");

	/* the test's own region: written half intact, the rest zeros
	 * (served by the successor), and writable */
	check_fill(m.addr, m.len / 2, 77);
	for (i = (int)(m.len / 2 / 8); i < (int)(m.len / 8); i++)
		DH_ASSERT(((uint64_t *)m.addr)[i] == 0,
			  "never-touched word %d not zero after the handover",
			  i);
	fill(m.addr, m.len, 78);
	check_fill(m.addr, m.len, 78);
	for (i = 0; i < 3; i++) {
		DH_ASSERT(dh_client_say(&h[i], "alive") == 0, "hold: stdin");
		expect_exit_ok(&h[i], "a client handed over");
	}
	/* an orphan, the test's uffd stays with the successor until this
	 * process exits */
	raw_close(&r);
	mregion_free(&m);
}
END_TEST

/*
 * SIGTERM while a client is blocked in a fault the daemon has not read
 * (it was stopped): the fault is resolved either way, by the daemon
 * before it hands over or by its successor, and the client goes on with
 * its data.
 */
START_TEST(test_sigterm_during_fault)
{
	static const char *const block[] = { "block", "8", NULL };
	struct dh_client b;
	long long deadline;
	long pending = 0;
	char line[64];
	int ret;

	start_ready(&b, block);
	DH_ASSERT(kill(dmn.pid, SIGSTOP) == 0, "SIGSTOP");
	DH_ASSERT(dh_client_say(&b, "go") == 0, "block: stdin");
	deadline = dh_deadline(DH_SETTLE_MS);
	while ((pending = dh_uffd_waiting(b.pid)) < 1 &&
	       dh_now_ms() < deadline)
		dh_sleep_ms(5);
	if (pending < 1) {
		char st[128];

		snprintf(st, sizeof(st), "%s", proc_state(b.pid));
		kill(dmn.pid, SIGCONT);
		DH_ASSERT(0, "the client never blocked in a fault: %ld "
			  "waiting, client %s, daemon %s", pending, st,
			  proc_state(dmn.pid));
	}
	kill(dmn.pid, SIGTERM);
	kill(dmn.pid, SIGCONT);
	/* no second SIGTERM: it could come after the daemon stopped
	 * watching signals, and kill it */
	daemon_stop_with(0);
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	ret = dh_client_read_line(&b, line, sizeof(line), DH_CLIENT_MS);
	DH_ASSERT(ret == 0 && !strcmp(line, "done"),
		  "the blocked client did not finish: %s",
		  ret ? strerror(-ret) : line);
	DH_ASSERT(dh_client_say(&b, "alive") == 0, "block: stdin");
	expect_exit_ok(&b, "the client that was blocked at shutdown");
}
END_TEST

/* A stopped daemon started again in the same place, but without its
 * state (the superblock removed), serves new clients; a client of the
 * previous daemon is refused its resumption (-ESTALE) and keeps what is
 * resident. */
START_TEST(test_restart_without_state)
{
	static const char *const hold[] = { "hold", "4", NULL };
	char sb[sizeof(dmn.dir) + 32];
	struct dh_client h;
	int ret;

	start_ready(&h, hold);
	daemon_stop_ok();
	snprintf(sb, sizeof(sb), "%s/state/superblock", dmn.dir);
	DH_ASSERT(unlink(sb) == 0, "unlink %s: %s", sb, strerror(errno));
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	base_fds = dh_wait_idle(&dmn);
	dh_fd_list(dmn.pid, base_list, sizeof(base_list));
	DH_ASSERT(dh_client_say(&h, "restarted") == 0, "hold: stdin");
	expect_exit_ok(&h, "a client of the previous daemon");
	assert_serving();
	assert_baseline();
}
END_TEST

/* The test's own connection closing (no exit): its regions are
 * unregistered and go on as plain memory. */
START_TEST(test_connection_close_unregisters)
{
	struct proto_stats_reply st;
	struct mregion m;
	struct raw r, r2;

	raw_open(&r);
	raw_hello(&r);
	raw_open(&r2);
	raw_hello(&r2);
	mregion_make(&m, 2 * MIB);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, m.len, 0,
				   m.memfd, m.memfd, NULL), 0);
	fill(m.addr, MIB, 5);
	ASSERT_STATUS(raw_stats(&r2, &st), 0);
	DH_ASSERT_EQ(st.regions, 1);
	DH_ASSERT_EQ(st.registered_bytes, 2 * MIB);
	DH_ASSERT(st.resident_bytes >= MIB && st.faults > 0,
		  "resident %" PRIu64 " faults %" PRIu64, st.resident_bytes,
		  st.faults);
	raw_close(&r);
	/* the other connection of the process sees the region go */
	{
		long long deadline = dh_deadline(DH_SETTLE_MS);

		do {
			ASSERT_STATUS(raw_stats(&r2, &st), 0);
			if (st.regions == 0)
				break;
			dh_sleep_ms(5);
		} while (dh_now_ms() < deadline);
	}
	DH_ASSERT_EQ(st.regions, 0);
	DH_ASSERT_EQ(st.registered_bytes, 0);
	check_fill(m.addr, MIB, 5);
	fill(m.addr, m.len, 6);
	check_fill(m.addr, m.len, 6);
	raw_close(&r2);
	mregion_free(&m);
	assert_baseline();
}
END_TEST

/*****************
 * protocol: framing
 *****************/

START_TEST(test_proto_bad_magic)
{
	uint8_t buf[64];
	struct raw r;

	raw_open(&r);
	send_all(r.fd, buf, frame(buf, 0xdeadbeef, PROTO_VERSION, PROTO_STATS,
				  7, 0, NULL, 0), NULL, 0);
	assert_frame_refused(&r, PROTO_STATS, 7, -EBADMSG);
	raw_close(&r);

	/* text, as from a confused program */
	raw_open(&r);
	send_all(r.fd, "GET / HTTP/1.0\r\n\r\n", 18, NULL, 0);
	{
		struct proto_msg m;
		int32_t status;
		const uint8_t *b;
		const char *e;
		size_t len;

		DH_ASSERT(raw_read(r.fd, &m) == 0, "no reply to garbage");
		DH_ASSERT(proto_parse_reply(&m, &status, &b, &len, &e) == 0,
			  "malformed reply");
		ASSERT_STATUS(status, -EBADMSG);
	}
	assert_closed(r.fd);
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

START_TEST(test_proto_truncated)
{
	uint8_t buf[64], payload[12] = { 1 };
	struct raw r;
	int uffd;

	/* a header cut short, then end of stream */
	raw_open(&r);
	frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_STATS, 1, 0, NULL, 0);
	send_all(r.fd, buf, 7, NULL, 0);
	shutdown(r.fd, SHUT_WR);
	assert_closed(r.fd);
	raw_close(&r);

	/* a payload cut short (with its fd), then end of stream */
	raw_open(&r);
	uffd = new_uffd();
	send_all(r.fd, buf,
		 frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_HELLO, 1,
		       sizeof(payload), payload, 5),
		 &uffd, 1);
	shutdown(r.fd, SHUT_WR);
	assert_closed(r.fd);
	raw_close(&r);
	close(uffd);

	assert_serving();
	assert_baseline();
}
END_TEST

/* A peer that sends half a message and waits: others are served, and the
 * message completes later, byte by byte. */
START_TEST(test_proto_slow_peer)
{
	struct proto_hello h = { PROTO_VERSION_MIN, PROTO_VERSION, 0, 0, 0 };
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD], p[PROTO_MAX_PAYLOAD];
	struct proto_stats_reply st;
	struct raw r;
	size_t len, i;

	raw_open(&r);
	r.uffd = new_uffd();
	h.uffd_fdnum = r.uffd;
	len = proto_encode_hello(p, &h, PROTO_VERSION);
	len = frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_HELLO, ++r.seq,
		    (uint32_t)len, p, len);
	send_all(r.fd, buf, 1, &r.uffd, 1);
	send_all(r.fd, buf + 1, 9, NULL, 0);
	assert_serving();
	for (i = 10; i < len; i++)
		send_all(r.fd, buf + i, 1, NULL, 0);
	ASSERT_STATUS(raw_reply(&r, PROTO_HELLO, r.seq, NULL, 0, NULL), 0);

	/* a STATS byte by byte */
	len = frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_STATS, ++r.seq, 0,
		    NULL, 0);
	for (i = 0; i < len; i++)
		send_all(r.fd, buf + i, 1, NULL, 0);
	{
		uint8_t body[256];
		size_t blen = 0;

		ASSERT_STATUS(raw_reply(&r, PROTO_STATS, r.seq, body,
					sizeof(body), &blen), 0);
		DH_ASSERT(proto_decode_stats_reply(body, blen, &st) == 0,
			  "STATS body");
	}
	raw_close(&r);
	assert_baseline();
}
END_TEST

START_TEST(test_proto_oversized)
{
	static const uint32_t lens[] = { PROTO_MAX_PAYLOAD + 1, 65536,
					 0x7fffffff, 0xffffffff };
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD] = { 0 };
	struct raw r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		raw_open(&r);
		send_all(r.fd, buf,
			 frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_STATS,
			       9, lens[i], NULL, 0),
			 NULL, 0);
		assert_frame_refused(&r, PROTO_STATS, 9, -EMSGSIZE);
		raw_close(&r);
	}

	/* exactly the maximum is a valid frame: a STATS that should have
	 * no payload is refused, and the connection goes on */
	raw_open(&r);
	raw_hello(&r);
	memset(buf + PROTO_HDR_SIZE, 0x41, PROTO_MAX_PAYLOAD);
	ASSERT_STATUS(raw_call(&r, PROTO_STATS, buf + PROTO_HDR_SIZE,
			       PROTO_MAX_PAYLOAD, NULL, 0), -EBADMSG);
	{
		struct proto_stats_reply st;

		ASSERT_STATUS(raw_stats(&r, &st), 0);
	}
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

START_TEST(test_proto_unknown_type)
{
	static const uint16_t types[] = { 0, PROTO_TYPE_END, 99, 0x7fff,
					  PROTO_REPLY | PROTO_HELLO,
					  PROTO_REPLY | PROTO_STATS, 0xffff };
	struct raw r;
	size_t i;

	raw_open(&r);
	/* before and after HELLO, the connection stays usable */
	for (i = 0; i < ARRAY_SIZE(types); i++)
		ASSERT_STATUS(raw_call(&r, types[i], "xy", 2, NULL, 0),
			      -EOPNOTSUPP);
	raw_hello(&r);
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		int fd = dup(r.uffd);

		/* with a stray fd too: it must be closed */
		ASSERT_STATUS(raw_call(&r, types[i], NULL, 0, &fd, 1),
			      -EOPNOTSUPP);
		close(fd);
	}
	{
		struct proto_stats_reply st;

		ASSERT_STATUS(raw_stats(&r, &st), 0);
	}
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

START_TEST(test_proto_version)
{
	static const uint16_t versions[] = { 0, PROTO_VERSION + 1, 0xffff };
	uint8_t buf[64];
	struct raw r;
	size_t i;
	int uffd;

	/* a header version this daemon does not speak: refused, closed */
	for (i = 0; i < ARRAY_SIZE(versions); i++) {
		raw_open(&r);
		send_all(r.fd, buf,
			 frame(buf, PROTO_MAGIC, versions[i], PROTO_STATS, 3,
			       0, NULL, 0),
			 NULL, 0);
		assert_frame_refused(&r, PROTO_STATS, 3, -EPROTONOSUPPORT);
		raw_close(&r);
	}

	/* a HELLO offering only versions from the future: refused, the
	 * connection goes on and a proper HELLO works */
	raw_open(&r);
	uffd = new_uffd();
	ASSERT_STATUS(hello_with(&r, uffd, uffd, PROTO_VERSION + 1,
				 PROTO_VERSION + 5), -EPROTONOSUPPORT);
	/* min > max is malformed */
	ASSERT_STATUS(hello_with(&r, uffd, uffd, 3, 2), -EBADMSG);
	/* the refused HELLOs did not use up the uffd (no UFFDIO_API) */
	ASSERT_STATUS(hello_with(&r, uffd, uffd, 0, 0xffff), 0);
	r.uffd = uffd;
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

/* Requests sent back to back, more than one readable event's burst:
 * answered in order. (Not more than a socket buffer of replies: a peer
 * that does not read is test_proto_never_reads.) */
START_TEST(test_proto_pipelined)
{
	enum { N = 64 };
	uint8_t *buf = malloc(N * PROTO_HDR_SIZE), body[256];
	struct proto_stats_reply st;
	struct raw r;
	size_t off = 0, blen;
	int i;

	DH_ASSERT(buf != NULL, "malloc");
	raw_open(&r);
	raw_hello(&r);
	for (i = 0; i < N; i++)
		off += frame(buf + off, PROTO_MAGIC, PROTO_VERSION,
			     PROTO_STATS, 1000 + (uint32_t)i, 0, NULL, 0);
	send_all(r.fd, buf, off, NULL, 0);
	for (i = 0; i < N; i++) {
		blen = 0;
		ASSERT_STATUS(raw_reply(&r, PROTO_STATS, 1000 + (uint32_t)i,
					body, sizeof(body), &blen), 0);
		DH_ASSERT(proto_decode_stats_reply(body, blen, &st) == 0,
			  "STATS body %d", i);
	}
	free(buf);
	raw_close(&r);
	assert_baseline();
}
END_TEST

/* A peer that floods requests and never reads the replies: the daemon
 * must not block on it (it may drop it) and must go on serving. */
START_TEST(test_proto_never_reads)
{
	uint8_t buf[64 * PROTO_HDR_SIZE];
	size_t off = 0;
	struct raw r;
	ssize_t n;
	int i, rounds = 0;

	raw_open(&r);
	raw_hello(&r);
	for (i = 0; i < 64; i++)
		off += frame(buf + off, PROTO_MAGIC, PROTO_VERSION,
			     PROTO_STATS, (uint32_t)i, 0, NULL, 0);
	/* until the socket is full both ways (or the daemon hangs up) */
	for (rounds = 0; rounds < 100000; rounds++) {
		n = send_with_fds(r.fd, buf, off, NULL, 0, MSG_DONTWAIT);
		if (n == -EAGAIN) {
			struct pollfd pfd = { .fd = r.fd, .events = POLLOUT };

			if (poll(&pfd, 1, 2000) == 0)
				break;	/* full: the daemon stopped reading */
			continue;
		}
		if (n < 0)
			break;		/* hung up on us: fine */
		DH_ASSERT(n == (ssize_t)off, "partial send %zd", n);
	}
	assert_alive();
	assert_serving();
	raw_close(&r);
	assert_baseline();
}
END_TEST

/* Many connections at once, half of them past HELLO. */
START_TEST(test_proto_many_connections)
{
	enum { N = 200 };
	struct raw r[N];
	int i;

	for (i = 0; i < N; i++) {
		raw_open(&r[i]);
		if (i % 2)
			raw_hello(&r[i]);
	}
	assert_serving();
	for (i = 0; i < N; i++) {
		struct proto_stats_reply st;

		if (i % 2)
			ASSERT_STATUS(raw_stats(&r[i], &st), 0);
		else
			ASSERT_STATUS(raw_stats(&r[i], &st), -ENOTCONN);
		raw_close(&r[i]);
	}
	assert_baseline();
	assert_serving();
}
END_TEST

/* The daemon runs out of descriptors: it refuses what it cannot take,
 * and serves again once the hostile connections are gone. */
START_TEST(test_proto_out_of_fds)
{
	enum { N = 80 };
	struct rlimit lim, old;
	struct raw r[N];
	int i, errors;

	/* running out of descriptors is worth an error line */
	log_allow = "accept: Too many open files";
	/* leave the daemon about 40 descriptors to spare */
	DH_ASSERT(prlimit(dmn.pid, RLIMIT_NOFILE, NULL, &old) == 0,
		  "prlimit: %s", strerror(errno));
	lim = old;
	lim.rlim_cur = (rlim_t)base_fds + 40;
	DH_ASSERT(prlimit(dmn.pid, RLIMIT_NOFILE, &lim, NULL) == 0,
		  "prlimit: %s", strerror(errno));
	for (i = 0; i < N; i++) {
		r[i].fd = dh_connect(&dmn);
		r[i].uffd = -1;
		r[i].seq = 0;
	}
	/* let the daemon try to accept them all for a while */
	dh_sleep_ms(500);
	assert_alive();
	for (i = 0; i < N; i++)
		raw_close(&r[i]);
	errors = dh_log_count(&dmn, "accept:");
	assert_baseline();
	DH_ASSERT(prlimit(dmn.pid, RLIMIT_NOFILE, &old, NULL) == 0,
		  "prlimit: %s", strerror(errno));
	assert_serving();
	assert_baseline();
	/* one line per refused connection at most: more is a busy loop */
	DH_ASSERT(errors <= N, "uzswapd logged %d accept errors for %d "
		  "connections while out of descriptors (a busy loop on a "
		  "full descriptor table)", errors, N);
}
END_TEST

/*****************
 * protocol: order and descriptors
 *****************/

START_TEST(test_proto_before_hello)
{
	struct proto_unregister u = { 0x10000 };
	struct proto_set_limit l = { MIB };
	struct proto_advise a = { 0x10000, PAGE, PROTO_ADVISE_COLD };
	struct proto_register reg = { 0x10000, PAGE, 0, 0, "x", 0 };
	uint8_t buf[PROTO_MAX_PAYLOAD];
	struct mregion m;
	struct raw r;

	mregion_make(&m, PAGE);
	raw_open(&r);
	ASSERT_STATUS(raw_call(&r, PROTO_STATS, NULL, 0, NULL, 0), -ENOTCONN);
	reg.addr = (uintptr_t)m.addr;
	reg.memfd_fdnum = m.memfd;
	ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, buf,
			       proto_encode_register(buf, &reg, PROTO_VERSION),
			       &m.memfd, 1),
		      -ENOTCONN);
	ASSERT_STATUS(raw_call(&r, PROTO_UNREGISTER, buf,
			       proto_encode_unregister(buf, &u,
						       PROTO_VERSION), NULL, 0),
		      -ENOTCONN);
	ASSERT_STATUS(raw_call(&r, PROTO_SET_LIMIT, buf,
			       proto_encode_set_limit(buf, &l,
						      PROTO_VERSION), NULL, 0),
		      -ENOTCONN);
	ASSERT_STATUS(raw_call(&r, PROTO_ADVISE, buf,
			       proto_encode_advise(buf, &a,
						   PROTO_VERSION), NULL, 0),
		      -ENOTCONN);
	/* the connection is still good for a HELLO */
	raw_hello(&r);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, PAGE, 0, m.memfd,
				   m.memfd, NULL), 0);
	raw_close(&r);
	mregion_free(&m);
	assert_serving();
	assert_baseline();
}
END_TEST

START_TEST(test_proto_second_hello)
{
	struct proto_stats_reply st;
	struct raw r;
	int uffd2;

	raw_open(&r);
	raw_hello(&r);
	uffd2 = new_uffd();
	ASSERT_STATUS(hello_with(&r, uffd2, uffd2, PROTO_VERSION_MIN,
				 PROTO_VERSION), -EISCONN);
	ASSERT_STATUS(hello_with(&r, r.uffd, r.uffd, PROTO_VERSION_MIN,
				 PROTO_VERSION), -EISCONN);
	ASSERT_STATUS(raw_stats(&r, &st), 0);
	close(uffd2);
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

START_TEST(test_proto_fd_counts)
{
	struct proto_hello h = { PROTO_VERSION_MIN, PROTO_VERSION, 0, 0, 0 };
	struct proto_unregister u = { 0x10000 };
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD], p[PROTO_MAX_PAYLOAD];
	struct proto_stats_reply st;
	struct mregion m;
	int fds[16], uffd, i;
	struct raw r;
	size_t len;

	mregion_make(&m, PAGE);
	for (i = 0; i < 16; i++)
		fds[i] = m.memfd;
	raw_open(&r);

	/* HELLO without its uffd, with two fds */
	uffd = new_uffd();
	h.uffd_fdnum = uffd;
	len = proto_encode_hello(p, &h, PROTO_VERSION);
	ASSERT_STATUS(raw_call(&r, PROTO_HELLO, p, len, NULL, 0), -EBADMSG);
	{
		int two[2] = { uffd, m.memfd };

		ASSERT_STATUS(raw_call(&r, PROTO_HELLO, p, len, two, 2),
			      -EBADMSG);
	}
	/* the refusals left the uffd usable */
	ASSERT_STATUS(raw_call(&r, PROTO_HELLO, p, len, &uffd, 1), 0);
	r.uffd = uffd;

	/* requests that take no fd, with one */
	ASSERT_STATUS(raw_call(&r, PROTO_STATS, NULL, 0, fds, 1), -EBADMSG);
	ASSERT_STATUS(raw_call(&r, PROTO_UNREGISTER, p,
			       proto_encode_unregister(p, &u,
						       PROTO_VERSION), fds, 2),
		      -EBADMSG);
	/* REGISTER without its memfd, with two */
	{
		struct proto_register reg = {
			.addr = (uintptr_t)m.addr, .len = PAGE,
			.memfd_fdnum = m.memfd, .name = "x",
		};

		len = proto_encode_register(p, &reg, PROTO_VERSION);
		ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, p, len, NULL, 0),
			      -EBADMSG);
		ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, p, len, fds, 2),
			      -EBADMSG);
	}
	ASSERT_STATUS(raw_stats(&r, &st), 0);
	DH_ASSERT_EQ(st.regions, 0);
	raw_close(&r);

	/* more fds than a message may carry: a broken frame */
	for (i = 3; i <= 12; i += 3) {
		raw_open(&r);
		len = frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_STATS, 5, 0,
			    NULL, 0);
		DH_ASSERT(send_with_fds(r.fd, buf, len, fds, i, 0) ==
				  (ssize_t)len, "sendmsg");
		{
			struct pollfd pfd = { .fd = r.fd, .events = POLLIN };
			struct proto_msg msg;
			int ret;

			/* an error reply, or a plain close when the fds
			 * overflowed the control buffer */
			DH_ASSERT(poll(&pfd, 1, REPLY_MS) == 1,
				  "no answer to %d fds", i);
			ret = raw_read(r.fd, &msg);
			if (ret == 0) {
				int32_t status;
				const uint8_t *b;
				const char *e;
				size_t l;

				DH_ASSERT(proto_parse_reply(&msg, &status, &b,
							    &l, &e) == 0,
					  "malformed reply");
				ASSERT_STATUS(status, -EMSGSIZE);
			} else {
				DH_ASSERT(ret == -ECONNRESET,
					  "%d fds: %s", i, strerror(-ret));
			}
		}
		assert_closed(r.fd);
		raw_close(&r);
	}

	/* an fd riding on a byte after the first of the message */
	raw_open(&r);
	len = frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_UNREGISTER, 6,
		    (uint32_t)proto_encode_unregister(p, &u, PROTO_VERSION), p,
		    proto_encode_unregister(p, &u, PROTO_VERSION));
	send_all(r.fd, buf, PROTO_HDR_SIZE, NULL, 0);
	send_all(r.fd, buf + PROTO_HDR_SIZE, len - PROTO_HDR_SIZE, fds, 1);
	assert_frame_refused(&r, PROTO_UNREGISTER, 6, -EMSGSIZE);
	raw_close(&r);

	mregion_free(&m);
	assert_serving();
	assert_baseline();
}
END_TEST

/*****************
 * protocol: payloads
 *****************/

START_TEST(test_proto_malformed_payloads)
{
	struct proto_hello h = { PROTO_VERSION_MIN, PROTO_VERSION, 0, 0, 0 };
	struct proto_register reg = { 0, PAGE, 0, 0, "x", 0 };
	struct proto_advise adv = { 0, PAGE, PROTO_ADVISE_COLD };
	uint8_t p[PROTO_MAX_PAYLOAD + 8];
	struct proto_stats_reply st;
	struct mregion m;
	struct raw r;
	size_t len;
	int uffd;

	mregion_make(&m, PAGE);
	raw_open(&r);
	uffd = new_uffd();
	h.uffd_fdnum = uffd;

	/* HELLO: short, empty, bad uffd mode; a trailing byte (a field of a
	 * newer peer) is ignored */
	len = proto_encode_hello(p, &h, PROTO_VERSION);
	ASSERT_STATUS(raw_call(&r, PROTO_HELLO, p, len - 1, &uffd, 1),
		      -EBADMSG);
	ASSERT_STATUS(raw_call(&r, PROTO_HELLO, p, 0, &uffd, 1), -EBADMSG);
	h.uffd_mode = 2;
	ASSERT_STATUS(raw_call(&r, PROTO_HELLO, p,
			       proto_encode_hello(p, &h,
						  PROTO_VERSION), &uffd, 1),
		      -EBADMSG);
	h.uffd_mode = 0;
	len = proto_encode_hello(p, &h, PROTO_VERSION);
	p[len] = 0x5a;
	ASSERT_STATUS(raw_call(&r, PROTO_HELLO, p, len + 1, &uffd, 1), 0);
	r.uffd = uffd;

	/* REGISTER: short, unterminated name, unknown flag */
	reg.addr = (uintptr_t)m.addr;
	reg.memfd_fdnum = m.memfd;
	len = proto_encode_register(p, &reg, PROTO_VERSION);
	ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, p, len - 1, &m.memfd, 1),
		      -EBADMSG);
	ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, p, 8, &m.memfd, 1),
		      -EBADMSG);
	memset(reg.name, 'a', sizeof(reg.name));
	ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, p,
			       proto_encode_register(p, &reg, PROTO_VERSION),
			       &m.memfd, 1),
		      -EBADMSG);
	snprintf(reg.name, sizeof(reg.name), "x");
	reg.flags = 0x80;
	ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, p,
			       proto_encode_register(p, &reg, PROTO_VERSION),
			       &m.memfd, 1),
		      -EBADMSG);
	reg.flags = 0;

	/* UNREGISTER, SET_LIMIT, ADVISE, STATS */
	ASSERT_STATUS(raw_call(&r, PROTO_UNREGISTER, p, 7, NULL, 0), -EBADMSG);
	ASSERT_STATUS(raw_call(&r, PROTO_SET_LIMIT, p, 0, NULL, 0), -EBADMSG);
	ASSERT_STATUS(raw_call(&r, PROTO_SET_LIMIT, p, 7, NULL, 0), -EBADMSG);
	adv.addr = (uintptr_t)m.addr;
	adv.advice = 0;
	ASSERT_STATUS(raw_call(&r, PROTO_ADVISE, p,
			       proto_encode_advise(p, &adv,
						   PROTO_VERSION), NULL, 0),
		      -EBADMSG);
	adv.advice = PROTO_ADVISE_DISCARD + 1;
	ASSERT_STATUS(raw_call(&r, PROTO_ADVISE, p,
			       proto_encode_advise(p, &adv,
						   PROTO_VERSION), NULL, 0),
		      -EBADMSG);
	ASSERT_STATUS(raw_call(&r, PROTO_STATS, p, 1, NULL, 0), -EBADMSG);

	/* well-formed SET_LIMIT and ADVISE (a range with no region); SET_LIMIT
	 * and UNREGISTER (of no region) with a newer peer's tail, ignored */
	{
		struct proto_set_limit l = { 64 * MIB };
		struct proto_unregister u = { (uintptr_t)m.addr + PAGE };

		ASSERT_STATUS(raw_call(&r, PROTO_SET_LIMIT, p,
				       proto_encode_set_limit(p, &l,
							      PROTO_VERSION),
				       NULL, 0),
			      0);
		len = proto_encode_set_limit(p, &l, PROTO_VERSION);
		memset(p + len, 0x5a, 4);
		ASSERT_STATUS(raw_call(&r, PROTO_SET_LIMIT, p, len + 4, NULL,
				       0), 0);
		len = proto_encode_unregister(p, &u, PROTO_VERSION);
		p[len] = 0x5a;
		ASSERT_STATUS(raw_call(&r, PROTO_UNREGISTER, p, len + 1, NULL,
				       0), -EINVAL);
		adv.advice = PROTO_ADVISE_WILLNEED;
		ASSERT_STATUS(raw_call(&r, PROTO_ADVISE, p,
				       proto_encode_advise(p, &adv,
							   PROTO_VERSION),
				       NULL, 0),
			      -EINVAL);
	}

	/* after all that, the connection works; a REGISTER with a newer
	 * peer's tail too */
	len = proto_encode_register(p, &reg, PROTO_VERSION);
	p[len] = 0x5a;
	ASSERT_STATUS(raw_call(&r, PROTO_REGISTER, p, len + 1, &m.memfd, 1),
		      0);
	ASSERT_STATUS(raw_stats(&r, &st), 0);
	DH_ASSERT_EQ(st.regions, 1);
	raw_close(&r);
	mregion_free(&m);
	assert_serving();
	assert_baseline();
}
END_TEST

/*****************
 * protocol: HELLO's uffd
 *****************/

START_TEST(test_proto_hello_not_a_uffd)
{
	struct raw r;
	int p[2], ev, uffd;
	uint64_t got;

	raw_open(&r);
	DH_ASSERT(pipe2(p, O_CLOEXEC) == 0, "pipe");
	ASSERT_STATUS(hello_with(&r, p[0], p[0], PROTO_VERSION_MIN,
				 PROTO_VERSION), -EBADF);
	ev = memfd_region_create("not-a-uffd", PAGE);
	ASSERT_STATUS(hello_with(&r, ev, ev, PROTO_VERSION_MIN,
				 PROTO_VERSION), -EBADF);
	/* a uffd the sender already initialized */
	uffd = new_uffd();
	DH_ASSERT(uffd_api(uffd, 0, &got) == 0, "UFFDIO_API");
	DH_ASSERT(hello_with(&r, uffd, uffd, PROTO_VERSION_MIN,
			     PROTO_VERSION) < 0,
		  "an initialized uffd was accepted");
	close(uffd);
	/* the connection recovers with a fresh one */
	raw_hello(&r);
	close(p[0]);
	close(p[1]);
	close(ev);
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

START_TEST(test_proto_hello_fdnum_lies)
{
	struct proto_hello h = { PROTO_VERSION_MIN, PROTO_VERSION, 0, 0, 0 };
	uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD], p[PROTO_MAX_PAYLOAD];
	struct raw r;
	size_t len;
	int uffd, other;

	raw_open(&r);
	uffd = new_uffd();
	other = new_uffd();
	/* the fd number of another uffd of the sender, of nothing, -1 */
	ASSERT_STATUS(hello_with(&r, uffd, other, PROTO_VERSION_MIN,
				 PROTO_VERSION), -EPERM);
	ASSERT_STATUS(hello_with(&r, uffd, 1000000, PROTO_VERSION_MIN,
				 PROTO_VERSION), -EPERM);
	ASSERT_STATUS(hello_with(&r, uffd, -1, PROTO_VERSION_MIN,
				 PROTO_VERSION), -EPERM);
	close(other);

	/* a uffd the sender no longer holds: sent on the first byte, closed,
	 * then the rest of the message */
	h.uffd_fdnum = uffd;
	len = proto_encode_hello(p, &h, PROTO_VERSION);
	len = frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_HELLO, ++r.seq,
		    (uint32_t)len, p, len);
	send_all(r.fd, buf, 1, &uffd, 1);
	close(uffd);
	send_all(r.fd, buf + 1, len - 1, NULL, 0);
	ASSERT_STATUS(raw_reply(&r, PROTO_HELLO, r.seq, NULL, 0, NULL),
		      -EPERM);

	raw_hello(&r);
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

/* Whether process @pid's mapping at @addr is registered with some
 * userfaultfd for missing faults ("um" in its smaps VmFlags). */
static bool uffd_registered_at(pid_t pid, uintptr_t addr)
{
	char path[64], line[512];
	bool in = false, um = false;
	unsigned long lo, hi;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	DH_ASSERT(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *dash = strchr(line, '-'), *sp = strchr(line, ' ');

		/* "lo-hi perms ..." starts a mapping; "Key: value" follow */
		if (dash && sp && dash < sp &&
		    sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = addr >= lo && addr < hi;
		else if (in && !strncmp(line, "VmFlags:", 8))
			um = strstr(line, " um") != NULL;
	}
	fclose(f);
	return um;
}

/*
 * A uffd created by another process (so bound to the other process's
 * memory), forwarded by the sender, which holds it too (kcmp passes). The
 * other process maps the same memfd at the same address (it was forked
 * from the sender). The daemon must refuse to act through it: at HELLO,
 * or at REGISTER, with EPERM; and the other process's memory must not be
 * registered.
 */
START_TEST(test_proto_hello_foreign_uffd)
{
	int sv[2], nfds = 0, fds[FDPASS_MAX_FDS], ret;
	struct mregion m;
	struct raw r;
	pid_t pid;
	char c;

	mregion_make(&m, MIB);
	DH_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
		  "socketpair");
	pid = fork();
	DH_ASSERT(pid >= 0, "fork");
	if (pid == 0) {
		int mode, uffd = uffd_open(&mode);

		close(sv[0]);
		if (uffd < 0 || fdpass_send(sv[1], "u", 1, &uffd, 1) != 1)
			_exit(1);
		/* hold it until the test is done */
		while (read(sv[1], &c, 1) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	DH_ASSERT(fdpass_recv(sv[0], &c, 1, fds, &nfds) == 1 && nfds == 1,
		  "no uffd from the other process");

	raw_open(&r);
	ret = hello_with(&r, fds[0], fds[0], PROTO_VERSION_MIN, PROTO_VERSION);
	if (ret == 0) {
		ret = raw_register(&r, (uintptr_t)m.addr, MIB, 0, m.memfd,
				   m.memfd, NULL);
		DH_ASSERT(!uffd_registered_at(pid, (uintptr_t)m.addr),
			  "REGISTER through another process's uffd registered "
			  "that process's memory (REGISTER status %d)", ret);
		ASSERT_STATUS(ret, -EPERM);
	} else {
		ASSERT_STATUS(ret, -EPERM);
	}
	close(sv[0]);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	raw_close(&r);
	/* the sender's own uffd works */
	raw_open(&r);
	raw_hello(&r);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, MIB, 0, m.memfd,
				   m.memfd, NULL), 0);
	DH_ASSERT(uffd_registered_at(getpid(), (uintptr_t)m.addr),
		  "a registered region shows no \"um\" in smaps");
	raw_close(&r);
	mregion_free(&m);
	assert_serving();
	assert_baseline();
}
END_TEST

/* A connection handed to another process (SO_PEERCRED still names the
 * one that connected): HELLO with the new holder's uffd is refused. */
START_TEST(test_proto_connection_handed_over)
{
	struct raw r;
	pid_t pid;
	int status;

	raw_open(&r);
	pid = fork();
	DH_ASSERT(pid >= 0, "fork");
	if (pid == 0) {
		struct proto_hello h = { PROTO_VERSION_MIN, PROTO_VERSION, 0,
					 0, 0 };
		uint8_t buf[PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD];
		uint8_t p[PROTO_MAX_PAYLOAD];
		struct proto_reader rd;
		const uint8_t *b;
		const char *e;
		int32_t st = 1;
		int mode, uffd;
		size_t len;

		/* a descriptor number the parent does not have */
		uffd = uffd_open(&mode);
		if (uffd < 0 || dup2(uffd, 900) < 0)
			_exit(10);
		h.uffd_fdnum = 900;
		len = proto_encode_hello(p, &h, PROTO_VERSION);
		len = frame(buf, PROTO_MAGIC, PROTO_VERSION, PROTO_HELLO, 1,
			    (uint32_t)len, p, len);
		uffd = 900;
		if (fdpass_send(r.fd, buf, len, &uffd, 1) != (ssize_t)len)
			_exit(11);
		memset(&rd, 0, sizeof(rd));
		while (proto_reader_feed(&rd, r.fd) == 0)
			;
		if (proto_parse_reply(&rd.msg, &st, &b, &len, &e))
			_exit(12);
		_exit(st == -EPERM ? 0 : st == 0 ? 13 : 14);
	}
	DH_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	DH_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "HELLO from the process the connection was handed to: %s "
		  "(13: accepted, 14: another error)", dh_status_str(status));
	raw_hello(&r);
	raw_close(&r);
	assert_serving();
	assert_baseline();
}
END_TEST

/*****************
 * protocol: REGISTER
 *****************/

/* The control case: a region of the test process, registered by hand,
 * is served; UNREGISTER works once. */
START_TEST(test_proto_register_ok)
{
	struct proto_stats_reply st;
	struct mregion m, m2;
	uint64_t id1 = 0, id2 = 0;
	struct raw r;

	mregion_make(&m, 2 * MIB);
	mregion_make(&m2, MIB);
	raw_open(&r);
	raw_hello(&r);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, m.len, 0, m.memfd,
				   m.memfd, &id1), 0);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m2.addr, m2.len, 0,
				   m2.memfd, m2.memfd, &id2), 0);
	DH_ASSERT(id1 != id2, "two regions got the same id %" PRIu64, id1);
	ASSERT_STATUS(raw_stats(&r, &st), 0);
	DH_ASSERT_EQ(st.regions, 2);
	DH_ASSERT_EQ(st.registered_bytes, 3 * MIB);
	DH_ASSERT_EQ(st.resident_bytes, 0);
	fill(m.addr, m.len, 1);
	check_fill(m.addr, m.len, 1);
	fill(m2.addr, m2.len, 2);
	ASSERT_STATUS(raw_stats(&r, &st), 0);
	DH_ASSERT_EQ(st.resident_bytes, 3 * MIB);
	DH_ASSERT(st.faults > 0, "no fault counted");

	/* overlapping a registered region */
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, m.len, 0, m.memfd,
				   m.memfd, NULL), -EEXIST);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, PAGE, 0, m.memfd,
				   m.memfd, NULL), -EEXIST);

	ASSERT_STATUS(raw_unregister(&r, (uintptr_t)m.addr), 0);
	ASSERT_STATUS(raw_unregister(&r, (uintptr_t)m.addr), -EINVAL);
	ASSERT_STATUS(raw_unregister(&r, (uintptr_t)m2.addr + PAGE), -EINVAL);
	ASSERT_STATUS(raw_unregister(&r, 0), -EINVAL);
	ASSERT_STATUS(raw_stats(&r, &st), 0);
	DH_ASSERT_EQ(st.regions, 1);
	DH_ASSERT_EQ(st.registered_bytes, MIB);
	check_fill(m.addr, m.len, 1);
	check_fill(m2.addr, m2.len, 2);

	/* an adopted region: its data pages count as resident at once */
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, m.len,
				   PROTO_REGION_ADOPTED, m.memfd, m.memfd,
				   NULL), 0);
	ASSERT_STATUS(raw_stats(&r, &st), 0);
	DH_ASSERT_EQ(st.resident_bytes, 3 * MIB);
	check_fill(m.addr, m.len, 1);
	raw_close(&r);
	mregion_free(&m);
	mregion_free(&m2);
	assert_baseline();
}
END_TEST

/* FORK of the region at @addr with @memfd for the child; its token in
 * *@token. */
static int raw_fork(struct raw *r, uint64_t addr, int memfd, uint64_t *token)
{
	struct proto_fork f = { .addr = addr };
	struct proto_fork_reply fr;
	uint8_t buf[PROTO_MAX_PAYLOAD], body[64];
	size_t blen = 0;
	uint32_t seq;
	int ret;

	seq = raw_send(r, PROTO_FORK, buf,
		       proto_encode_fork(buf, &f, PROTO_VERSION), &memfd, 1);
	ret = raw_reply(r, PROTO_FORK, seq, body, sizeof(body), &blen);
	if (ret == 0) {
		DH_ASSERT(proto_decode_fork_reply(body, blen, &fr) == 0,
			  "malformed FORK reply body");
		DH_ASSERT(fr.token != 0, "token 0");
		*token = fr.token;
	}
	return ret;
}

/* REGISTER claiming the fork copy @token, with @memfd mapped at
 * @m->addr. */
static int raw_claim(struct raw *r, const struct mregion *m, int memfd,
		     uint64_t token)
{
	struct proto_register reg = {
		.addr = (uintptr_t)m->addr, .len = m->len,
		.flags = PROTO_REGION_FORKED, .memfd_fdnum = memfd,
		.fork_token = token,
	};
	uint8_t buf[PROTO_MAX_PAYLOAD];

	snprintf(reg.name, sizeof(reg.name), "claim");
	return raw_call(r, PROTO_REGISTER, buf,
			proto_encode_register(buf, &reg, PROTO_VERSION),
			&memfd, 1);
}

/*
 * Issue 14: FORK's refusals (no region there, a memfd too short or not
 * empty), claims refused (a token nobody gave, the copy's token with
 * another memfd), and a copy no child claims: dropped after
 * PROTO_FORK_CLAIM_MS, and the pool with it.
 */
START_TEST(test_proto_fork)
{
	struct proto_status_reply st;
	int copy, small, full;
	uint64_t token = 0;
	struct mregion m;
	struct raw r;
	char line[256];
	long long deadline;

	mregion_make(&m, MIB);
	raw_open(&r);
	raw_hello(&r);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, m.len, 0, m.memfd,
				   m.memfd, NULL), 0);
	fill(m.addr, m.len, 5);
	copy = memfd_region_create("copy", MIB);
	small = memfd_region_create("small", PAGE);
	full = memfd_region_create("full", MIB);
	DH_ASSERT(copy >= 0 && small >= 0 && full >= 0, "memfd_create");
	DH_ASSERT(pwrite(full, "x", 1, 0) == 1, "pwrite");

	ASSERT_STATUS(raw_fork(&r, (uintptr_t)m.addr + PAGE, copy, &token),
		      -EINVAL);
	ASSERT_STATUS(raw_fork(&r, (uintptr_t)m.addr, small, &token),
		      -EBADF);
	ASSERT_STATUS(raw_fork(&r, (uintptr_t)m.addr, full, &token), -EBADF);
	ASSERT_STATUS(raw_fork(&r, (uintptr_t)m.addr, copy, &token), 0);
	DH_ASSERT(dh_status(&dmn, &st) == 0 && st.pool_bytes > 0,
		  "the copy stored nothing");

	/* the parent's own memfd is mapped there: the copy is another's */
	ASSERT_STATUS(raw_claim(&r, &m, m.memfd, token), -EPERM);
	ASSERT_STATUS(raw_claim(&r, &m, m.memfd, token ^ 1), -ENOENT);
	check_fill(m.addr, m.len, 5);

	log_allow = "did not claim its copy";
	deadline = dh_deadline(PROTO_FORK_CLAIM_MS + REPLY_MS);
	while (!dh_log_find(&dmn, "did not claim its copy", line,
			    sizeof(line)) && dh_now_ms() < deadline)
		dh_sleep_ms(100);
	DH_ASSERT(dh_now_ms() < deadline, "the unclaimed copy stays");
	ASSERT_STATUS(raw_claim(&r, &m, m.memfd, token), -ENOENT);
	raw_close(&r);
	close(copy);
	close(small);
	close(full);
	mregion_free(&m);
	assert_baseline();
	DH_ASSERT(dh_status(&dmn, &st) == 0, "STATUS");
	DH_ASSERT_EQ(st.pool_bytes, 0);
}
END_TEST

START_TEST(test_proto_register_bad_ranges)
{
	struct mregion m, m2, big;
	struct raw r;
	uint8_t *p;
	uintptr_t a;

	mregion_make(&m, MIB);
	mregion_make(&m2, MIB);
	mregion_make(&big, 2 * MIB);
	raw_open(&r);
	raw_hello(&r);
	a = (uintptr_t)m.addr;

	/* alignment and length */
	ASSERT_STATUS(raw_register(&r, a + 1, PAGE, 0, m.memfd, m.memfd, NULL),
		      -EINVAL);
	ASSERT_STATUS(raw_register(&r, a, PAGE + 1, 0, m.memfd, m.memfd,
				   NULL), -EINVAL);
	ASSERT_STATUS(raw_register(&r, a, 0, 0, m.memfd, m.memfd, NULL),
		      -EINVAL);
	ASSERT_STATUS(raw_register(&r, UINT64_MAX & ~(PAGE - 1), 2 * PAGE, 0,
				   m.memfd, m.memfd, NULL), -EINVAL);
	/* more than the daemon lets one process register */
	ASSERT_STATUS(raw_register(&r, a, 1ull << 60, 0, m.memfd, m.memfd,
				   NULL), -ENOSPC);

	/* mapped from another memfd than the one sent */
	ASSERT_STATUS(raw_register(&r, a, MIB, 0, m2.memfd, m2.memfd, NULL),
		      -EPERM);
	/* longer than the mapping (the memfd is long enough) */
	ASSERT_STATUS(raw_register(&r, (uintptr_t)big.addr, 2 * MIB, 0,
				   big.memfd, big.memfd, NULL), 0);
	ASSERT_STATUS(raw_unregister(&r, (uintptr_t)big.addr), 0);
	munmap(big.addr + MIB, MIB);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)big.addr, 2 * MIB, 0,
				   big.memfd, big.memfd, NULL), -EPERM);
	/* not mapped at all */
	ASSERT_STATUS(raw_register(&r, (uintptr_t)big.addr + MIB, MIB, 0,
				   big.memfd, big.memfd, NULL), -EPERM);
	/* kernel addresses */
	ASSERT_STATUS(raw_register(&r, 0xffff800000000000ull, MIB, 0,
				   m.memfd, m.memfd, NULL), -EPERM);
	/* mapped from the memfd at an offset other than 0 */
	p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, big.memfd,
		 MIB);
	DH_ASSERT(p != MAP_FAILED, "mmap");
	ASSERT_STATUS(raw_register(&r, (uintptr_t)p, MIB, 0, big.memfd,
				   big.memfd, NULL), -EPERM);
	munmap(p, MIB);
	/* private, and read-only, mappings of the memfd */
	p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE, m2.memfd, 0);
	DH_ASSERT(p != MAP_FAILED, "mmap");
	ASSERT_STATUS(raw_register(&r, (uintptr_t)p, MIB, 0, m2.memfd,
				   m2.memfd, NULL), -EPERM);
	munmap(p, MIB);
	p = mmap(NULL, MIB, PROT_READ, MAP_SHARED, m2.memfd, 0);
	DH_ASSERT(p != MAP_FAILED, "mmap");
	ASSERT_STATUS(raw_register(&r, (uintptr_t)p, MIB, 0, m2.memfd,
				   m2.memfd, NULL), -EPERM);
	munmap(p, MIB);
	/* a memfd shorter than the region (mapped past its end) */
	{
		int fd = memfd_region_create("short", PAGE);

		p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		DH_ASSERT(p != MAP_FAILED, "mmap");
		ASSERT_STATUS(raw_register(&r, (uintptr_t)p, MIB, 0, fd, fd,
					   NULL), -EBADF);
		munmap(p, MIB);
		close(fd);
	}
	/* an anonymous range, with some memfd */
	p = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	DH_ASSERT(p != MAP_FAILED, "mmap");
	ASSERT_STATUS(raw_register(&r, (uintptr_t)p, MIB, 0, m2.memfd,
				   m2.memfd, NULL), -EPERM);
	munmap(p, MIB);
	/* the memfd's fd number is not the sender's */
	ASSERT_STATUS(raw_register(&r, a, MIB, 0, m.memfd, m2.memfd, NULL),
		      -EPERM);
	ASSERT_STATUS(raw_register(&r, a, MIB, 0, m.memfd, 999999, NULL),
		      -EPERM);

	/* after all the refusals: the right one works */
	ASSERT_STATUS(raw_register(&r, a, MIB, 0, m.memfd, m.memfd, NULL), 0);
	fill(m.addr, MIB, 3);
	check_fill(m.addr, MIB, 3);
	raw_close(&r);
	mregion_free(&m);
	mregion_free(&m2);
	munmap(big.addr, MIB);
	close(big.memfd);
	assert_serving();
	assert_baseline();
}
END_TEST

/* Descriptors that are not a read-write memfd. */
START_TEST(test_proto_register_bad_memfd)
{
	char path[PATH_MAX + 16], proc[64];
	struct mregion m;
	struct raw r;
	int fd, p[2];
	uint8_t *map;

	mregion_make(&m, MIB);
	raw_open(&r);
	raw_hello(&r);

	/* the same memfd, reopened read-only */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", m.memfd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	DH_ASSERT(fd >= 0, "reopen: %s", strerror(errno));
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, MIB, 0, fd, fd,
				   NULL), -EBADF);
	close(fd);
	/* a pipe */
	DH_ASSERT(pipe2(p, O_CLOEXEC) == 0, "pipe");
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, MIB, 0, p[1], p[1],
				   NULL), -EBADF);
	close(p[0]);
	close(p[1]);
	/* a file on a disk file system (not tmpfs), mapped shared rw */
	snprintf(path, sizeof(path), "%s/file", dmn.dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	DH_ASSERT(fd >= 0 && ftruncate(fd, MIB) == 0, "file");
	map = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	DH_ASSERT(map != MAP_FAILED, "mmap");
	{
		int ret = raw_register(&r, (uintptr_t)map, MIB, 0, fd, fd,
				       NULL);

		/* /tmp may itself be tmpfs: then the file qualifies */
		if (ret != 0)
			ASSERT_STATUS(ret, -EBADF);
		else
			ASSERT_STATUS(raw_unregister(&r, (uintptr_t)map), 0);
	}
	munmap(map, MIB);
	close(fd);
	/* a directory */
	fd = open(dmn.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, MIB, 0, fd, fd,
				   NULL), -EBADF);
	close(fd);
	/* our own uffd */
	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, MIB, 0, r.uffd,
				   r.uffd, NULL), -EBADF);
	/* a memfd sealed against writes (the daemon could never drop its
	 * pages) */
	{
		struct mregion s;

		mregion_make(&s, MIB);
		DH_ASSERT(fcntl(s.memfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == 0,
			  "F_SEAL_FUTURE_WRITE: %s", strerror(errno));
		ASSERT_STATUS(raw_register(&r, (uintptr_t)s.addr, MIB, 0,
					   s.memfd, s.memfd, NULL), -EBADF);
		mregion_free(&s);
	}

	ASSERT_STATUS(raw_register(&r, (uintptr_t)m.addr, MIB, 0, m.memfd,
				   m.memfd, NULL), 0);
	raw_close(&r);
	mregion_free(&m);
	assert_serving();
	assert_baseline();
}
END_TEST

/* Memory of another process: a child maps the memfd at an address where
 * the sender has nothing; the sender claims it. */
START_TEST(test_proto_register_other_pid)
{
	struct mregion m;
	struct raw r;
	int sv[2], status;
	uintptr_t addr = 0;
	pid_t pid;
	char c;

	mregion_make(&m, MIB);
	DH_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
		  "socketpair");
	pid = fork();
	DH_ASSERT(pid >= 0, "fork");
	if (pid == 0) {
		void *p;

		close(sv[0]);
		p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED,
			 m.memfd, 0);
		addr = (uintptr_t)p;
		if (p == MAP_FAILED ||
		    write(sv[1], &addr, sizeof(addr)) != sizeof(addr))
			_exit(1);
		while (read(sv[1], &c, 1) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	DH_ASSERT(read(sv[0], &addr, sizeof(addr)) == sizeof(addr),
		  "child's address");

	raw_open(&r);
	raw_hello(&r);
	if (addr != (uintptr_t)m.addr) {
		ASSERT_STATUS(raw_register(&r, addr, MIB, 0, m.memfd, m.memfd,
					   NULL), -EPERM);
	}
	/* and the child's pid in no field can change who we are: the
	 * sender's own mapping is the only one that counts */
	munmap(m.addr, MIB);
	ASSERT_STATUS(raw_register(&r, addr, MIB, 0, m.memfd, m.memfd, NULL),
		      -EPERM);
	close(sv[0]);
	waitpid(pid, &status, 0);
	raw_close(&r);
	close(m.memfd);
	assert_serving();
	assert_baseline();
}
END_TEST

/* A connection may not unregister the regions of another connection
 * (even of the same process). */
START_TEST(test_proto_unregister_other_connection)
{
	struct proto_stats_reply st;
	struct mregion m;
	struct raw r1, r2;

	mregion_make(&m, MIB);
	raw_open(&r1);
	raw_hello(&r1);
	raw_open(&r2);
	raw_hello(&r2);
	ASSERT_STATUS(raw_register(&r1, (uintptr_t)m.addr, MIB, 0, m.memfd,
				   m.memfd, NULL), 0);
	ASSERT_STATUS(raw_unregister(&r2, (uintptr_t)m.addr), -EINVAL);
	/* nor register over it through its own uffd */
	ASSERT_STATUS(raw_register(&r2, (uintptr_t)m.addr, MIB, 0, m.memfd,
				   m.memfd, NULL), -EEXIST);
	ASSERT_STATUS(raw_stats(&r2, &st), 0);
	DH_ASSERT_EQ(st.regions, 1);
	fill(m.addr, MIB, 9);
	check_fill(m.addr, MIB, 9);
	ASSERT_STATUS(raw_unregister(&r1, (uintptr_t)m.addr), 0);
	raw_close(&r1);
	raw_close(&r2);
	mregion_free(&m);
	assert_baseline();
}
END_TEST

/*****************
 * loop: the control socket stays responsive
 *****************/

/* Generous: the pool and the evictions of a few hundred MiB, under ASan. */
#define LOOP_REGION	(256 * MIB)
#define LOOP_LIMIT	(4 * MIB)
#define LOOP_SETTLE_MS	120000

/* The slowest STATUS round trip of the running test, in microseconds. */
static long long slowest_status_us;

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One STATUS on a new connection (dh_status(): 10 s, a hang detector:
 * the answer takes milliseconds); its round trip counts in the slowest. */
static void timed_status(struct proto_status_reply *st)
{
	long long t0 = now_us();
	int ret = dh_status(&dmn, st);

	if (now_us() - t0 > slowest_status_us)
		slowest_status_us = now_us() - t0;
	DH_ASSERT(ret == 0, "STATUS: %s", errname(ret));
}

/* What the store holds for every client: in the pool or written back. */
static uint64_t stored_of(const struct proto_status_reply *st)
{
	return st->stored_pages + st->written_back_pages;
}

static void print_slowest(const char *test)
{
	fprintf(stderr, "SLOWEST STATUS in %s: %lld us\n", test,
		slowest_status_us);
}

/* Send ADVISE without reading its reply; its sequence number. */
static uint32_t raw_send_advise(struct raw *r, uint64_t addr, uint64_t len,
				uint32_t advice)
{
	struct proto_advise a = { .addr = addr, .len = len, .advice = advice };
	uint8_t buf[PROTO_MAX_PAYLOAD];

	return raw_send(r, PROTO_ADVISE, buf,
			proto_encode_advise(buf, &a, PROTO_VERSION), NULL, 0);
}

static void raw_set_limit(struct raw *r, uint64_t bytes)
{
	struct proto_set_limit l = { .bytes = bytes };
	uint8_t buf[PROTO_MAX_PAYLOAD];

	ASSERT_STATUS(raw_call(r, PROTO_SET_LIMIT, buf,
			       proto_encode_set_limit(buf, &l, PROTO_VERSION),
			       NULL, 0), 0);
}

/* Poll until the store is at rest (two equal answers 100 ms apart) with
 * at least @want pages (a budget keeps a few MiB more resident than it
 * says); the last answer in *@st. */
static void wait_stored(uint64_t want, struct proto_status_reply *st)
{
	long long deadline = dh_deadline(LOOP_SETTLE_MS);
	uint64_t last = 0;

	for (;;) {
		timed_status(st);
		if (stored_of(st) >= want && stored_of(st) == last)
			return;
		last = stored_of(st);
		DH_ASSERT(dh_now_ms() < deadline, "%" PRIu64 " pages stored "
			  "within %d ms, %" PRIu64 " expected", last,
			  LOOP_SETTLE_MS, want);
		dh_sleep_ms(100);
	}
}

/*
 * A region of LOOP_REGION bytes of the test process, registered on @r
 * under a LOOP_LIMIT budget and filled with @seed: the evictors store all
 * but the budget, most of it written back from the small pool. Returns
 * once the store is at rest, with the pages stored by every client then.
 */
static uint64_t stored_region(struct raw *r, struct mregion *m,
			      uint64_t seed)
{
	struct proto_status_reply st;
	uint64_t before;

	timed_status(&st);
	before = stored_of(&st);
	raw_open(r);
	raw_hello(r);
	raw_set_limit(r, LOOP_LIMIT);
	mregion_make(m, LOOP_REGION);
	ASSERT_STATUS(raw_register(r, (uintptr_t)m->addr, m->len, 0,
				   m->memfd, m->memfd, NULL), 0);
	fill(m->addr, m->len, seed);
	wait_stored(before + LOOP_REGION / 2 / PAGE, &st);
	DH_ASSERT(st.written_back_pages > 0, "nothing written back");
	return stored_of(&st);
}

/*
 * Poll STATUS while the store empties from @before pages down to @after,
 * as a teardown runs; with @reply_fd, also until a reply is readable
 * there. Returns how many answers saw the teardown under way: fewer pages
 * than @before but more than @after (before the workers, it ran on the
 * loop thread, which answered nothing in the meantime). The bound is a
 * hang detector: a teardown takes a second or two.
 */
static int watch_teardown(uint64_t before, uint64_t after, int reply_fd)
{
	long long deadline = dh_deadline(LOOP_SETTLE_MS);
	struct pollfd pfd = { .fd = reply_fd, .events = POLLIN };
	struct proto_status_reply st;
	bool replied = reply_fd < 0;
	int midway = 0;

	for (;;) {
		timed_status(&st);
		if (!replied)
			replied = poll(&pfd, 1, 0) == 1;
		if (stored_of(&st) < before && stored_of(&st) > after)
			midway++;
		if (stored_of(&st) <= after && replied)
			return midway;
		DH_ASSERT(dh_now_ms() < deadline, "the teardown did not end "
			  "within %d ms: %" PRIu64 " pages stored",
			  LOOP_SETTLE_MS, stored_of(&st));
	}
}

static void loop_up(void)
{
	static const char *const args[] = { "--pool-limit", "16M", NULL };

	log_allow = NULL;
	slowest_status_us = 0;
	dh_up(&dmn, args);
}

/*
 * ADVISE over huge ranges where the client has no region: each is refused
 * at once, a second connection is answered meanwhile, and the daemon
 * stops on SIGTERM. ADVISE used to step through the range a page at a
 * time on the loop thread: 1 TiB took seconds, the last two ranges never
 * ended (SIGTERM ignored).
 */
START_TEST(test_loop_advise_huge)
{
	static const struct {
		uint64_t addr, len;
	} ranges[] = {
		{ 1ull << 40, 1ull << 40 },			/* 1 TiB */
		{ 1ull << 20, 0xfffffffffff00000ull },		/* to the top */
		{ 0xfffffffffff00000ull, 1ull << 21 },		/* wraps */
		{ 1ull << 46, 1ull << 56 },			/* past user space */
	};
	struct proto_status_reply st;
	struct raw r;
	uint32_t seq;
	size_t i;

	raw_open(&r);
	raw_hello(&r);
	for (i = 0; i < ARRAY_SIZE(ranges); i++) {
		seq = raw_send_advise(&r, ranges[i].addr, ranges[i].len,
				      PROTO_ADVISE_COLD);
		timed_status(&st);
		ASSERT_STATUS(raw_reply(&r, PROTO_ADVISE, seq, NULL, 0, NULL),
			      -EINVAL);
	}
	raw_close(&r);
	print_slowest("advise_huge");
	daemon_stop_ok();
}
END_TEST

/*
 * A live client's connection closes with a big stored region (restored
 * into its memfd, then unregistered), then a client with another one is
 * killed (its pages dropped): STATUS is answered while each teardown
 * runs, and every page of the live client reads back intact after.
 */
START_TEST(test_loop_teardown)
{
	struct proto_status_reply st;
	struct dh_client c;
	struct pstats ps;
	struct mregion m;
	uint64_t before;
	struct raw r;
	int midway;

	before = stored_region(&r, &m, 31);
	raw_close(&r);
	midway = watch_teardown(before, 0, -1);
	DH_ASSERT(midway > 0, "no STATUS answered while the restore ran");
	check_fill(m.addr, m.len, 31);
	mregion_free(&m);

	pager_start(&dmn, &c);
	pager_ok(&c, "limit %lu", LOOP_LIMIT / MIB);
	pager_alloc(&c, "random", LOOP_REGION / MIB);
	pager_wait_resident(&c, 4 * LOOP_LIMIT, &ps);
	wait_stored(LOOP_REGION / 2 / PAGE, &st);
	DH_ASSERT(st.written_back_pages > 0, "nothing written back");
	dh_client_kill(&c);
	midway = watch_teardown(stored_of(&st), 0, -1);
	DH_ASSERT(midway > 0, "no STATUS answered while the drop ran");
	print_slowest("teardown");
	assert_serving();
}
END_TEST

/*
 * UNREGISTER of a big stored region: STATUS is answered while the restore
 * runs, the reply comes once it is over, and the client then reads its
 * data without a daemon (had the range left the uffd before every page
 * was back, it would read zeros).
 */
START_TEST(test_loop_unregister)
{
	struct proto_status_reply st;
	struct proto_unregister u;
	uint8_t buf[PROTO_MAX_PAYLOAD];
	struct mregion m;
	uint64_t before;
	struct raw r;
	uint32_t seq;
	int midway;

	before = stored_region(&r, &m, 41);
	u.addr = (uintptr_t)m.addr;
	seq = raw_send(&r, PROTO_UNREGISTER, buf,
		       proto_encode_unregister(buf, &u, PROTO_VERSION), NULL,
		       0);
	midway = watch_teardown(before, 0, r.fd);
	DH_ASSERT(midway > 0, "no STATUS answered while the restore ran");
	ASSERT_STATUS(raw_reply(&r, PROTO_UNREGISTER, seq, NULL, 0, NULL), 0);
	print_slowest("unregister");
	timed_status(&st);
	DH_ASSERT_EQ(stored_of(&st), 0);
	dh_kill(&dmn);
	check_fill(m.addr, m.len, 41);
	raw_close(&r);
	mregion_free(&m);
}
END_TEST

/*****************
 * Suites
 *****************/

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc;

	tc = tcase_create("startup");
	tcase_set_timeout(tc, TIMEOUT_FAST);
	tcase_add_test(tc, test_start_stop);
	tcase_add_test(tc, test_thread_stacks);
	tcase_add_test(tc, test_second_daemon_refused);
	tcase_add_test(tc, test_stale_socket);
	tcase_add_test(tc, test_failed_start);
	tcase_add_test(tc, test_bad_command_lines);
	tcase_add_test(tc, test_sighup_sigint);
	suite_add_tcase(s, tc);

	tc = tcase_create("clients");
	tcase_add_checked_fixture(tc, daemon_up, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_SLOW);
	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_adopt);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_kernel_io);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_api);
	tcase_add_test(tc, test_multi_connection);
	tcase_add_test(tc, test_32_clients);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, daemon_up, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_SLOW);
	tcase_add_test(tc, test_exit_normal);
	tcase_add_test(tc, test_exit_crash);
	tcase_add_test(tc, test_exit_sigkill);
	tcase_add_test(tc, test_sigkill_mid_fault);
	tcase_add_test(tc, test_sigkill_spinning);
	tcase_add_test(tc, test_sigterm_hands_over_clients);
	tcase_add_test(tc, test_sigterm_during_fault);
	tcase_add_test(tc, test_restart_without_state);
	tcase_add_test(tc, test_connection_close_unregisters);
	suite_add_tcase(s, tc);

	tc = tcase_create("protocol");
	tcase_add_checked_fixture(tc, daemon_up, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_SLOW);
	tcase_add_test(tc, test_proto_bad_magic);
	tcase_add_test(tc, test_proto_truncated);
	tcase_add_test(tc, test_proto_slow_peer);
	tcase_add_test(tc, test_proto_oversized);
	tcase_add_test(tc, test_proto_unknown_type);
	tcase_add_test(tc, test_proto_version);
	tcase_add_test(tc, test_proto_pipelined);
	tcase_add_test(tc, test_proto_never_reads);
	tcase_add_test(tc, test_proto_many_connections);
	tcase_add_test(tc, test_proto_out_of_fds);
	tcase_add_test(tc, test_proto_before_hello);
	tcase_add_test(tc, test_proto_second_hello);
	tcase_add_test(tc, test_proto_fd_counts);
	tcase_add_test(tc, test_proto_malformed_payloads);
	tcase_add_test(tc, test_proto_hello_not_a_uffd);
	tcase_add_test(tc, test_proto_hello_fdnum_lies);
	tcase_add_test(tc, test_proto_hello_foreign_uffd);
	tcase_add_test(tc, test_proto_connection_handed_over);
	tcase_add_test(tc, test_proto_register_ok);
	tcase_add_test(tc, test_proto_register_bad_ranges);
	tcase_add_test(tc, test_proto_register_bad_memfd);
	tcase_add_test(tc, test_proto_register_other_pid);
	tcase_add_test(tc, test_proto_unregister_other_connection);
	tcase_add_test(tc, test_proto_fork);
	suite_add_tcase(s, tc);

	tc = tcase_create("loop");
	tcase_add_checked_fixture(tc, loop_up, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_SLOW);
	tcase_add_test(tc, test_loop_advise_huge);
	tcase_add_test(tc, test_loop_teardown);
	tcase_add_test(tc, test_loop_unregister);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("check_daemon", daemon_suite());
}
