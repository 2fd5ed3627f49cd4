/*
 * check_preload.c - integration tests of libuzswap-preload.so: unmodified
 * programs (heapuser, which only calls malloc(); python3; Debian's
 * redis-server, linked with the system jemalloc) run with LD_PRELOAD
 * against a real uzswapd, their heap in a managed region.
 *
 * Test cases of preload_suite():
 *   heap      heapuser fills 64 MiB (small, large, huge, aligned blocks,
 *             checksummed) under a budget of a quarter of it: it is a
 *             client with chunks registered as its heap grew (no more
 *             than 1 GiB for its 64 MiB), within its budget,
 *             pages stored by the daemon; RssShmem sampled all along never
 *             over 1.1x the budget (plus one eviction run); its blocks lie
 *             in the region; every checksum holds. With the library twice
 *             in LD_PRELOAD, one region only
 *   churn     4 threads malloc, realloc and free checksummed blocks under
 *             a budget: no error, the daemon evicted
 *   absent    no daemon: the program runs unmanaged, exit 0, one line on
 *             stderr; with UZSWAP_REQUIRE=1 it exits 121
 * Parts (own programs, SKIP where the program is missing):
 *   python    python3 (PYTHONMALLOC=malloc) builds and checks a dict of
 *             1M entries, a client with pages stored
 *   redis     200k keys into redis-server on the preload and into a plain
 *             one: DEBUG DIGEST equal; the preloaded one a client with
 *             pages stored
 *
 * In a sanitizer build every program of this file SKIPs
 * (dh_cannot_preload()).
 *
 * Every program started is stopped by pid (the harness's), every file
 * lies in the test's temporary root. One test case: CK_RUN_CASE=heap
 * ./check_preload. Logs kept: UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/proto/proto.h"
#include "resp.h"

#define MIB		(1024ull * 1024)
#define PAGE		4096ull
/* The daemon evicts in runs of 64 pages: a budget holds to within one. */
#define RUN_BYTES	(64 * PAGE)
/* The preload's first chunk (HEAP_CHUNK_MIN): what a heap registers at
 * least. */
#define FIRST_CHUNK	(64 * MIB)
/* What a heap of 64 MiB registers at most: the chunks follow the heap
 * (each as big as all before it), never a reservation of the RAM's size. */
#define REGISTERED_MAX	(1024 * MIB)
/* jemalloc's start-up chunk in arena 0, mapped before the hooks: small
 * blocks may still come from it after heapuser's start-up. */
#define STARTUP_CHUNK	(2 * MIB)
/* The exit status of a process that cannot be managed and must be
 * (UZSWAP_REQUIRE=1), PRELOAD_EXIT_UNREACHABLE in lib/preload/preload.c. */
#define EXIT_UNREACHABLE 121

#define TIMEOUT_CASE	600		/* seconds, per test */
#define LINE_MS		120000		/* a client's next line */
#define SAMPLE_MS	5		/* RssShmem samples */

static struct dh_daemon dmn;

static void daemon_down(void)
{
	dh_down(&dmn, NULL);
}

/*****************
 * Helpers
 *****************/

/*
 * preload_start() - run @prog (argv[0] a path) on the preload, with the
 * budget @limit, against the daemon; stdin and
 * stdout piped. Through env(1), which is not preloaded itself and execs
 * @prog in the same process: the pid is the program's.
 */
static void preload_start(struct dh_client *c, const char *limit,
			  const char *const *prog)
{
	const char *argv[32] = {
		"/usr/bin/env", "LD_PRELOAD=" PRELOAD_PATH,
	};
	char limit_var[64];
	size_t n = 2;
	int ret;

	snprintf(limit_var, sizeof(limit_var), "UZSWAP_LIMIT=%s", limit);
	argv[n++] = limit_var;
	while (*prog && n < 31)
		argv[n++] = *prog++;
	argv[n] = NULL;
	ret = dh_client_start(&dmn, c, argv, true);
	DH_ASSERT(ret == 0, "start %s: %s", argv[n - 1], strerror(-ret));
}

static void read_line(struct dh_client *c, char *buf, size_t size)
{
	int ret = dh_client_read_line(c, buf, size, LINE_MS);

	DH_ASSERT(ret == 0, "client's line: %s", strerror(-ret));
}

static void client_row(pid_t pid, struct proto_client_row *row)
{
	int ret = dh_client_row(&dmn, pid, row);

	DH_ASSERT(ret == 0, "CLIENT %d: %s", (int)pid, strerror(-ret));
}

/* The client is managed: chunks registered as its heap grew (at least
 * the first), pages stored. */
static void assert_managed(pid_t pid)
{
	struct proto_client_row row;

	client_row(pid, &row);
	DH_ASSERT(row.registered_bytes >= FIRST_CHUNK,
		  "registered %" PRIu64 " bytes", row.registered_bytes);
	DH_ASSERT(row.stored_pages > 0, "no page stored (resident %" PRIu64
		  ")", row.resident_bytes);
}

static void client_exits_ok(struct dh_client *c)
{
	int st = dh_client_wait(c, dh_scaled_ms(LINE_MS));

	DH_ASSERT(dh_exited_ok(st), "client: %s", dh_status_str(st));
}

/*****************
 * heap
 *****************/

/*
 * Read heapuser's lines until "filled", sampling its RssShmem every
 * SAMPLE_MS meanwhile. Return: the highest sample.
 */
static long long fill_watch(struct dh_client *c)
{
	struct pollfd pfd = { .fd = c->out, .events = POLLIN };
	long long deadline = dh_deadline(LINE_MS), max = 0, rss;
	char line[256];

	for (;;) {
		DH_ASSERT(dh_now_ms() < deadline, "heapuser did not fill");
		rss = dh_rss_shmem(c->pid);
		if (rss > max)
			max = rss;
		if (poll(&pfd, 1, SAMPLE_MS) != 1)
			continue;
		read_line(c, line, sizeof(line));
		if (!strncmp(line, "filled ", 7))
			return max;
		DH_ASSERT(0, "heapuser: %s", line);
	}
}

/* heapuser's "region KIND IN OUT OUTBYTES" lines: every kind has blocks
 * in the region, and only small ones out of it, within the start-up
 * chunk. */
static void assert_in_region(struct dh_client *c)
{
	unsigned long in, out;
	unsigned long long out_bytes;
	char line[256], kind[16];
	int i;

	for (i = 0; i < 4; i++) {
		read_line(c, line, sizeof(line));
		DH_ASSERT(sscanf(line, "region %15s %lu %lu %llu", kind, &in,
				 &out, &out_bytes) == 4, "heapuser: %s", line);
		DH_ASSERT(in > 0, "no %s block in the region: %s", kind, line);
		if (!strcmp(kind, "small"))
			DH_ASSERT(out_bytes <= STARTUP_CHUNK,
				  "small blocks out of the region: %s", line);
		else
			DH_ASSERT(out == 0, "%s blocks out of the region: %s",
				  kind, line);
	}
}

/* heapuser verifies every block, says where they lie, and exits 0. */
static void verify_and_exit(struct dh_client *c)
{
	char line[256];

	DH_ASSERT_EQ(dh_client_say(c, "verify"), 0);
	assert_in_region(c);
	read_line(c, line, sizeof(line));
	DH_ASSERT(!strncmp(line, "verified ", 9), "heapuser: %s", line);
	client_exits_ok(c);
}

START_TEST(test_heap_managed)
{
	const char *const prog[] = { HEAPUSER_PATH, "fill", "64", NULL };
	const unsigned long long limit = 16 * MIB;
	struct proto_client_row row;
	struct dh_client c;
	long long max;

	dh_up(&dmn, NULL);
	preload_start(&c, "16M", prog);
	max = fill_watch(&c);

	client_row(c.pid, &row);
	DH_ASSERT(row.resident_bytes <= limit + RUN_BYTES,
		  "resident %" PRIu64 " over the budget %llu",
		  row.resident_bytes, limit);
	assert_managed(c.pid);
	DH_ASSERT(row.registered_bytes <= REGISTERED_MAX,
		  "a heap of 64 MiB registered %" PRIu64 " bytes",
		  row.registered_bytes);
	/* Only the chunks are shared memory: jemalloc's start-up chunk and
	 * metadata are anonymous (RssAnon), so no slack but the daemon's
	 * eviction run for them. */
	DH_ASSERT(max <= (long long)(limit * 11 / 10 + RUN_BYTES),
		  "RssShmem reached %lld, budget %llu", max, limit);

	verify_and_exit(&c);
}
END_TEST

/* The library twice in LD_PRELOAD (another path): one region. */
START_TEST(test_heap_loaded_twice)
{
	const char *const prog[] = { HEAPUSER_PATH, "fill", "32", NULL };
	char copy[PATH_MAX], cmd[2 * PATH_MAX + 16], var[2 * PATH_MAX + 32];
	const char *argv[] = { "/usr/bin/env", var, prog[0], prog[1],
			       prog[2], NULL };
	struct proto_client_row row;
	struct dh_client c;
	int ret;

	dh_up(&dmn, NULL);
	snprintf(copy, sizeof(copy), "%s/copy.so", dmn.dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", PRELOAD_PATH, copy);
	DH_ASSERT(system(cmd) == 0, "%s failed", cmd);
	snprintf(var, sizeof(var), "LD_PRELOAD=%s:%s", PRELOAD_PATH, copy);
	ret = dh_client_start(&dmn, &c, argv, true);
	DH_ASSERT(ret == 0, "start heapuser: %s", strerror(-ret));
	fill_watch(&c);
	client_row(c.pid, &row);
	DH_ASSERT_EQ(row.regions, 1);
	verify_and_exit(&c);
}
END_TEST

/*****************
 * churn
 *****************/

START_TEST(test_churn_threads)
{
	const char *const prog[] = { HEAPUSER_PATH, "churn", "10", NULL };
	struct proto_status_reply st;
	struct dh_client c;
	unsigned long ops, errors;
	char line[256];

	dh_up(&dmn, NULL);
	preload_start(&c, "8M", prog);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(sscanf(line, "churn %lu %lu", &ops, &errors) == 2,
		  "heapuser: %s", line);
	DH_ASSERT(errors == 0 && ops > 0, "heapuser: %s", line);
	client_exits_ok(&c);
	DH_ASSERT_EQ(dh_status(&dmn, &st), 0);
	DH_ASSERT(st.evictions > 0, "the daemon evicted nothing");
}
END_TEST

/*****************
 * absent
 *****************/

/*
 * Run heapuser hello on the preload against a socket nobody serves, with
 * UZSWAP_REQUIRE=@require: its wait status, stdout in @out, stderr in
 * @err.
 */
static int run_unreachable(const char *require, char *out, size_t out_size,
			   char *err, size_t err_size)
{
	char sock[PATH_MAX + 32], req[32];
	const char *const argv[] = { "/usr/bin/env", "LD_PRELOAD=" PRELOAD_PATH,
				     sock, req, HEAPUSER_PATH, "hello", NULL };

	snprintf(sock, sizeof(sock), "UZSWAP_SOCKET=%s/nobody.sock",
		 dh_root());
	snprintf(req, sizeof(req), "UZSWAP_REQUIRE=%s", require);
	return dh_run(argv, NULL, NULL, out, out_size, err, err_size,
		      dh_scaled_ms(LINE_MS));
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_absent_unmanaged)
{
	char out[256], err[1024];
	int st = run_unreachable("0", out, sizeof(out), err, sizeof(err));

	DH_CHECK(dh_exited_ok(st), "heapuser: %s, stderr: %s",
		 dh_status_str(st), err);
	DH_CHECK(!strcmp(out, "ok\n"), "stdout: %s", out);
	DH_CHECK(count_lines(err) == 1 &&
		 !strncmp(err, "uzswap: uzswapd is not reachable at ", 36) &&
		 strstr(err, ": running unmanaged\n"), "stderr: %s", err);
}
END_TEST

START_TEST(test_absent_required)
{
	char out[256], err[1024];
	int st = run_unreachable("1", out, sizeof(out), err, sizeof(err));

	DH_CHECK(st >= 0 && WIFEXITED(st) &&
		 WEXITSTATUS(st) == EXIT_UNREACHABLE,
		 "heapuser: %s, stderr: %s", dh_status_str(st), err);
	DH_CHECK(!out[0], "stdout: %s", out);
	DH_CHECK(count_lines(err) == 1 &&
		 strstr(err, ": required (UZSWAP_REQUIRE), exiting\n"),
		 "stderr: %s", err);
}
END_TEST

/*****************
 * python
 *****************/

#define PYTHON		"/usr/bin/python3"
#define PY_SCRIPT							\
	"import sys\n"							\
	"n = 1000000\n"							\
	"d = {i: ('v%d' % i) * 3 for i in range(n)}\n"			\
	"print('built', len(d), flush=True)\n"				\
	"sys.stdin.readline()\n"					\
	"ok = all(d[i] == ('v%d' % i) * 3 for i in range(n))\n"	\
	"print('checked' if ok else 'wrong', flush=True)\n"

START_TEST(test_python_dict)
{
	const char *const prog[] = { "PYTHONMALLOC=malloc", PYTHON, "-c",
				     PY_SCRIPT, NULL };
	struct dh_client c;
	char line[256];

	dh_up(&dmn, NULL);
	preload_start(&c, "16M", prog);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(!strcmp(line, "built 1000000"), "python3: %s", line);
	assert_managed(c.pid);
	DH_ASSERT_EQ(dh_client_say(&c, "check"), 0);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(!strcmp(line, "checked"), "python3: %s", line);
	client_exits_ok(&c);
}
END_TEST

/*****************
 * redis
 *****************/

#define REDIS		"/usr/bin/redis-server"
#define REDIS_KEYS	200000

/* Start a redis-server on @sock (on the preload if @preload), fill it,
 * and return its DEBUG DIGEST into @digest; it is left running in @c. */
static void redis_digest(struct dh_client *c, bool preload, const char *sock,
			 char *digest, size_t size)
{
	const char *const args[] = { REDIS, "--port", "0", "--unixsocket",
				     sock, "--save", "", "--appendonly", "no",
				     "--daemonize", "no",
				     "--enable-debug-command", "local", NULL };
	static struct resp r;
	int ret;

	if (preload) {
		preload_start(c, "8M", args);
	} else {
		ret = dh_client_start(&dmn, c, args, false);
		DH_ASSERT(ret == 0, "start redis: %s", strerror(-ret));
	}
	resp_connect(&r, sock, LINE_MS);
	resp_fill(&r, REDIS_KEYS);
	resp_digest(&r, digest, size);
	resp_close(&r);
}

static void redis_stop(struct dh_client *c)
{
	int st;

	kill(c->pid, SIGTERM);
	st = dh_client_wait(c, dh_scaled_ms(LINE_MS));
	DH_ASSERT(dh_exited_ok(st), "redis-server: %s", dh_status_str(st));
}

START_TEST(test_redis_digest)
{
	char sock[PATH_MAX], plain_sock[PATH_MAX], digest[64], plain[64];
	struct dh_client c, p;

	dh_up(&dmn, NULL);
	snprintf(sock, sizeof(sock), "%s/redis.sock", dmn.dir);
	snprintf(plain_sock, sizeof(plain_sock), "%s/plain.sock", dmn.dir);
	redis_digest(&c, true, sock, digest, sizeof(digest));
	assert_managed(c.pid);
	redis_digest(&p, false, plain_sock, plain, sizeof(plain));
	DH_ASSERT(!strcmp(digest, plain), "digest %s, plain redis %s", digest,
		  plain);
	redis_stop(&p);
	redis_stop(&c);
	unlink(sock);
	unlink(plain_sock);
}
END_TEST

/*****************
 * Suite
 *****************/

static const char *cannot_run(const char *part)
{
	if (!strcmp(part, "python") && access(PYTHON, X_OK))
		return "no " PYTHON;
	if (!strcmp(part, "redis") && access(REDIS, X_OK))
		return "no " REDIS " (Debian's redis-server)";
	return NULL;
}

/* A tcase of @s (a part if @part); with @daemon, its tests start a
 * daemon, which the fixture stops. */
static TCase *tcase(Suite *s, const char *name, bool part, bool daemon)
{
	return dh_tcase(s, name, part, TIMEOUT_CASE,
			daemon ? daemon_down : NULL);
}

static Suite *preload_suite(void)
{
	Suite *s = suite_create("preload");
	TCase *tc;

	tc = tcase(s, "heap", false, true);
	tcase_add_test(tc, test_heap_managed);
	tcase_add_test(tc, test_heap_loaded_twice);
	tc = tcase(s, "churn", false, true);
	tcase_add_test(tc, test_churn_threads);
	tc = tcase(s, "absent", false, false);
	tcase_add_test(tc, test_absent_unmanaged);
	tcase_add_test(tc, test_absent_required);
	tc = tcase(s, "python", true, true);
	tcase_add_test(tc, test_python_dict);
	tc = tcase(s, "redis", true, true);
	tcase_add_test(tc, test_redis_digest);
	return s;
}

int main(void)
{
	return dh_main_preload("check_preload", preload_suite, CKPART,
			       cannot_run);
}
