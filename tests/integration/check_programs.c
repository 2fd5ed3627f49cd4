/*
 * check_programs.c - real programs through the real uzswap-run (cli/
 * uzswap-run, with UZSWAP_PRELOAD naming the build tree's
 * libuzswap-preload.so) against a real uzswapd, each compared with a
 * plain run of itself.
 *
 * Test cases of programs_suite() (heapuser, the test's plain malloc
 * program):
 *   churn    heapuser churn (4 threads, checksummed malloc, realloc and
 *            free) under 8M: no error, the daemon evicted, RssShmem
 *            sampled all along never over 1.1x the budget (+ one eviction
 *            run)
 *   purge    heapuser purge under 8M: 4 blocks of 8 MiB with a pattern,
 *            pages of them stored by the daemon, freed, every arena
 *            purged (mallctl): the freed blocks read zeros, never the
 *            pattern, their compressed copies are gone from the daemon,
 *            and calloc()'d memory is zero
 *   restart  heapuser churn while the daemon stops (SIGTERM, a handover)
 *            and starts again: the program does not notice (no error,
 *            exit 0), the new daemon took it over
 *   refuse   no daemon at the socket: the program runs unmanaged, exit 0,
 *            one line on stderr; with --require, 121 and nothing runs
 *            (static, setuid and Go refusals: check_run)
 *   exec     sh -c 'exec heapuser fill 8' (sh managed first): once
 *            heapuser runs, the pid's row holds heapuser's one region
 *            only, sh's are gone; after its exit the pool is empty
 * Parts (ckpart.h: own programs, SKIP where the program is missing):
 *   python   python3 builds ~160 MB of dicts, lists and bytes under 32M
 *            (a digest checked against a regeneration), forks: the child
 *            checks its copy, rewrites half, checks its own digest; the
 *            parent rewrites the other half and checks its own. Output
 *            equal to a plain python3's; a client with pages stored,
 *            listed by `uzswapctl clients` as python3, its region named
 *            by --name in its maps and the daemon's log; `uzswapctl set-limit PID 16M` and
 *            resident follows; the forked child was a client too;
 *            RssShmem of the parent within 1.1x 32M
 *   redis    Debian's redis-server, 300k keys: a plain one's DEBUG DIGEST
 *            and VmRSS; the managed one under a quarter of that RSS has
 *            the same digest, BGSAVEs (a fork) successfully, and a plain
 *            redis-server loading that dump.rdb has the digest too;
 *            RssShmem of the managed one within 1.1x its budget
 *   sort     GNU sort -S 512M of 48 MiB of random lines under 16M: output
 *            identical to a plain sort's, the daemon evicted, RssShmem
 *            within 1.1x the budget
 *
 * The RssShmem bound: only the preload's chunks are shared memory (the
 * start-up chunk of jemalloc, its metadata and the programs' own
 * anonymous mappings are RssAnon), and the daemon evicts in runs of 64
 * pages, so a budget holds to within one run: 1.1x the budget plus one
 * run, no other slack.
 *
 * Sanitizer builds: no program can run under the preload library there
 * (dh_cannot_preload() says why): every program of this file SKIPs.
 *
 * Every program started is stopped by pid (the harness's), every file
 * lies in the test's temporary root. One test case: CK_RUN_CASE=churn
 * ./check_programs. Logs kept: UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/common/run-exit.h"
#include "lib/proto/proto.h"
#include "resp.h"

#define KIB		1024ull
#define MIB		(1024ull * 1024)
#define PAGE		4096ull
/* The daemon evicts in runs of 64 pages: a budget holds to within one. */
#define RUN_BYTES	(64 * PAGE)
/* The preload's first chunk (HEAP_CHUNK_MIN in lib/preload/preload.c). */
#define FIRST_CHUNK	(64 * MIB)

#define TIMEOUT_CASE	600		/* seconds, per test */
#define LINE_MS		120000		/* a program's next line */
#define PROG_MS		300000		/* a program to its end */
#define FOLLOW_MS	5000		/* resident to follow a new budget */
#define SAMPLE_MS	10		/* RssShmem samples */
#define OUT_SIZE	65536

#define PYTHON		"/usr/bin/python3"
#define REDIS		"/usr/bin/redis-server"
#define SORT		"/usr/bin/sort"

static struct dh_daemon dmn;

/* The daemon of a test that waits for its pool to empty
 * (dh_wait_pool_empty() reads /metrics). */
static const char *const with_metrics[] = { "--metrics", "127.0.0.1:0",
					    NULL };

static void daemon_down(void)
{
	dh_down(&dmn, NULL);
}

/*****************
 * Helpers
 *****************/

/* Programs run through uzswap-run use the build tree's library. */
static void use_build_preload(void)
{
	setenv("UZSWAP_PRELOAD", PRELOAD_PATH, 1);
}

/*
 * run_start() - uzswap-run with the budget @limit (NULL: none), the
 * daemon's socket and the options @opts (NULL-terminated, may be NULL),
 * then "--" and @prog, against the daemon; stdin and stdout piped.
 * uzswap-run execs @prog in its process: the pid is the program's.
 */
static void run_start(struct dh_client *c, const char *limit,
		      const char *const *opts, const char *const *prog)
{
	const char *argv[48] = { UZSWAP_RUN_PATH, "--socket", dmn.sock };
	size_t n = 3;
	int ret;

	use_build_preload();
	if (limit) {
		argv[n++] = "--limit";
		argv[n++] = limit;
	}
	while (opts && *opts && n < 40)
		argv[n++] = *opts++;
	argv[n++] = "--";
	while (*prog && n < 47)
		argv[n++] = *prog++;
	argv[n] = NULL;
	ret = dh_client_start(&dmn, c, argv, true);
	DH_ASSERT(ret == 0, "start uzswap-run %s: %s", argv[n - 1],
		  strerror(-ret));
}

static void read_line(struct dh_client *c, char *buf, size_t size)
{
	int ret = dh_client_read_line(c, buf, size, LINE_MS);

	DH_ASSERT(ret == 0, "program's line: %s", strerror(-ret));
}

/* The program's lines until the end of its stdout, appended to @buf
 * (each with its newline). */
static void read_rest(struct dh_client *c, char *buf, size_t size)
{
	size_t len = strlen(buf);
	char line[1024];
	int ret;

	for (;;) {
		ret = dh_client_read_line(c, line, sizeof(line), LINE_MS);
		if (ret == -EPIPE)
			return;
		DH_ASSERT(ret == 0, "program's line: %s", strerror(-ret));
		len += (size_t)snprintf(buf + len, size - len, "%s\n", line);
		DH_ASSERT(len < size, "program's output too long");
	}
}

static void client_row(pid_t pid, struct proto_client_row *row)
{
	int ret = dh_client_row(&dmn, pid, row);

	DH_ASSERT(ret == 0, "CLIENT %d: %s", (int)pid, strerror(-ret));
}

/* Wait (@ms, scaled) until @pid is a client (uzswap-run and the
 * program's start come first) and the daemon holds pages of it. */
static void wait_stored(pid_t pid, int ms)
{
	long long deadline = dh_deadline(ms);
	struct proto_client_row row = { 0 };
	int ret;

	for (;;) {
		ret = dh_client_row(&dmn, pid, &row);
		DH_ASSERT(ret == 0 || ret == -ESRCH, "CLIENT %d: %s", (int)pid,
			  strerror(-ret));
		if (!ret && row.stored_pages > 0)
			return;
		DH_ASSERT(dh_now_ms() < deadline, "pid %d: %s (resident %"
			  PRIu64 ")", (int)pid, ret ? "not a client" :
			  "no page stored", row.resident_bytes);
		dh_sleep_ms(50);
	}
}

static void exits_ok(struct dh_client *c, const char *what)
{
	int st = dh_client_wait(c, dh_scaled_ms(PROG_MS));

	DH_ASSERT(dh_exited_ok(st), "%s: %s", what, dh_status_str(st));
}

static void evicted_some(void)
{
	struct proto_status_reply st;

	DH_ASSERT_EQ(dh_status(&dmn, &st), 0);
	DH_ASSERT(st.evictions > 0, "the daemon evicted nothing");
}

/* Write @text into @path. */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	DH_ASSERT(f, "%s: %s", path, strerror(errno));
	DH_ASSERT(fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

/*****************
 * RssShmem sampler
 *****************/

/*
 * struct sampler - a thread that reads a process's RssShmem every
 * SAMPLE_MS until stopped
 * @max:     the highest sample (samples of an exited process are none)
 * @samples: samples read
 */
struct sampler {
	pthread_t thread;
	pid_t pid;
	atomic_bool stop;
	long long max;
	unsigned long samples;
};

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	long long rss;

	while (!atomic_load(&s->stop)) {
		rss = dh_rss_shmem(s->pid);
		if (rss >= 0) {
			s->samples++;
			if (rss > s->max)
				s->max = rss;
		}
		dh_sleep_ms(SAMPLE_MS);
	}
	return NULL;
}

static void sampler_start(struct sampler *s, pid_t pid)
{
	*s = (struct sampler){ .pid = pid };
	DH_ASSERT_EQ(pthread_create(&s->thread, NULL, sampler_main, s), 0);
}

/* Stop the sampler; the highest RssShmem must be within 1.1x @limit
 * plus one eviction run (see the top of the file). */
static void sampler_check(struct sampler *s, unsigned long long limit)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	DH_ASSERT(s->samples > 0, "no RssShmem sample of pid %d",
		  (int)s->pid);
	DH_ASSERT(s->max <= (long long)(limit * 11 / 10 + RUN_BYTES),
		  "RssShmem reached %lld, budget %llu (%lu samples)", s->max,
		  limit, s->samples);
}

/*****************
 * churn
 *****************/

START_TEST(test_churn_budget)
{
	const char *const prog[] = { HEAPUSER_PATH, "churn", "10", NULL };
	unsigned long ops, errors;
	struct sampler smp;
	struct dh_client c;
	char line[256];

	dh_up(&dmn, NULL);
	run_start(&c, "8M", NULL, prog);
	sampler_start(&smp, c.pid);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(sscanf(line, "churn %lu %lu", &ops, &errors) == 2,
		  "heapuser: %s", line);
	DH_ASSERT(errors == 0 && ops > 0, "heapuser: %s", line);
	exits_ok(&c, "heapuser churn");
	sampler_check(&smp, 8 * MIB);
	evicted_some();
}
END_TEST

/*****************
 * purge
 *****************/

/* What may stay compressed of heapuser's heap once its blocks are
 * purged: its small blocks (stdio's buffers), well under a MiB. */
#define PURGE_LEFT	(1 * MIB)

START_TEST(test_purge_reads_zeros)
{
	const char *const prog[] = { HEAPUSER_PATH, "purge", "8", NULL };
	struct proto_client_row row;
	struct dh_client c;
	char line[256];

	dh_up(&dmn, NULL);
	run_start(&c, "8M", NULL, prog);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(!strcmp(line, "purge 8"), "heapuser: %s", line);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(!strcmp(line, "filled 4"), "heapuser: %s", line);
	/* 32 MiB under 8M: the daemon holds pages of the blocks */
	wait_stored(c.pid, LINE_MS);
	client_row(c.pid, &row);
	DH_ASSERT(row.compressed_bytes > PURGE_LEFT, "blocks stored in %"
		  PRIu64 " bytes", row.compressed_bytes);
	DH_ASSERT_EQ(dh_client_say(&c, "free"), 0);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(!strcmp(line, "purged zeros"), "heapuser: %s", line);
	/* the purge went to the daemon: the blocks' compressed copies are
	 * freed (what heapuser's reads brought back, zeros, is stored again
	 * under the budget: same-filled pages, no compressed bytes) */
	client_row(c.pid, &row);
	DH_ASSERT(row.compressed_bytes <= PURGE_LEFT, "after the purge %"
		  PRIu64 " bytes still compressed", row.compressed_bytes);
	DH_ASSERT_EQ(dh_client_say(&c, "calloc"), 0);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(!strcmp(line, "calloc zeros"), "heapuser: %s", line);
	exits_ok(&c, "heapuser purge");
}
END_TEST

/*****************
 * restart
 *****************/

START_TEST(test_restart_unnoticed)
{
	const char *const prog[] = { HEAPUSER_PATH, "churn", "16", NULL };
	struct proto_client_row row;
	unsigned long ops, errors;
	struct dh_client c;
	char line[256];
	int st;

	dh_up(&dmn, NULL);
	run_start(&c, "8M", NULL, prog);
	wait_stored(c.pid, LINE_MS);
	dh_sleep_ms(2000);
	st = dh_stop(&dmn);
	DH_ASSERT(dh_exited_ok(st), "uzswapd on SIGTERM: %s",
		  dh_status_str(st));
	DH_ASSERT_EQ(dh_restart(&dmn, NULL), 0);
	client_row(c.pid, &row);	/* taken over */
	read_line(&c, line, sizeof(line));
	DH_ASSERT(sscanf(line, "churn %lu %lu", &ops, &errors) == 2,
		  "heapuser: %s", line);
	DH_ASSERT(errors == 0 && ops > 0, "heapuser: %s", line);
	exits_ok(&c, "heapuser churn");
}
END_TEST

/*****************
 * refuse
 *****************/

/* uzswap-run heapuser hello against a socket nobody serves, with
 * --require if @require: its wait status, stdout and stderr. */
static int run_unreachable(bool require, char *out, size_t out_size,
			   char *err, size_t err_size)
{
	char sock[PATH_MAX];
	const char *argv[] = { UZSWAP_RUN_PATH, "--socket", sock,
			       require ? "--require" : "--", "--",
			       HEAPUSER_PATH, "hello", NULL };

	if (!require)	/* one "--" */
		memmove(&argv[3], &argv[4], 4 * sizeof(argv[0]));
	use_build_preload();
	snprintf(sock, sizeof(sock), "%s/nobody.sock", dh_root());
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

START_TEST(test_refuse_absent)
{
	char out[256], err[1024];
	int st = run_unreachable(false, out, sizeof(out), err, sizeof(err));

	DH_CHECK(dh_exited_ok(st), "heapuser: %s, stderr: %s",
		 dh_status_str(st), err);
	DH_CHECK(!strcmp(out, "ok\n"), "stdout: %s", out);
	DH_CHECK(count_lines(err) == 1 && strstr(err, "running unmanaged"),
		 "stderr: %s", err);
}
END_TEST

START_TEST(test_refuse_required)
{
	char out[256], err[1024];
	int st = run_unreachable(true, out, sizeof(out), err, sizeof(err));

	DH_CHECK(st >= 0 && WIFEXITED(st) &&
		 WEXITSTATUS(st) == UZSWAP_RUN_NO_DAEMON,
		 "uzswap-run --require: %s, stderr: %s", dh_status_str(st),
		 err);
	DH_CHECK(!out[0], "it ran: stdout %s", out);
	DH_CHECK(count_lines(err) == 1, "stderr: %s", err);
}
END_TEST

/*****************
 * exec
 *****************/

START_TEST(test_exec_leaves_nothing)
{
	char cmd[PATH_MAX + 32], line[256], rest[1024] = "";
	const char *const prog[] = { "/bin/sh", "-c", cmd, NULL };
	long long deadline;
	struct proto_client_row row;
	struct dh_client c;

	dh_up(&dmn, with_metrics);
	snprintf(cmd, sizeof(cmd), "exec %s fill 8", HEAPUSER_PATH);
	run_start(&c, "16M", NULL, prog);
	read_line(&c, line, sizeof(line));
	DH_ASSERT(!strncmp(line, "filled ", 7), "heapuser: %s", line);
	/* sh was managed: its image had a region of its own */
	DH_ASSERT(dh_log_count(&dmn, "(sh) connected") == 1,
		  "sh was not a client");
	/* sh's connection closed at the exec; the daemon tears it down
	 * asynchronously (DH_SETTLE_MS) */
	deadline = dh_deadline(DH_SETTLE_MS);
	for (;;) {
		client_row(c.pid, &row);
		if (row.regions == 1 && row.registered_bytes == FIRST_CHUNK)
			break;
		DH_ASSERT(dh_now_ms() < deadline, "after the exec: %" PRIu64
			  " regions, %" PRIu64 " bytes registered",
			  (uint64_t)row.regions, row.registered_bytes);
		dh_sleep_ms(50);
	}
	DH_ASSERT(!strcmp(row.comm, "heapuser"), "client %s", row.comm);
	DH_ASSERT_EQ(dh_client_say(&c, "verify"), 0);
	read_rest(&c, rest, sizeof(rest));
	DH_ASSERT(strstr(rest, "verified "), "heapuser: %s", rest);
	exits_ok(&c, "heapuser fill");
	dh_wait_pool_empty(&dmn);
}
END_TEST

/*****************
 * python
 *****************/

/* Items of the script: ~2.5 KB each under PYTHONMALLOC=malloc. */
#define PY_ITEMS	"64000"
#define PY_LIMIT	(32 * MIB)
#define PY_NEW_LIMIT	(16 * MIB)
#define PY_NAME		"pyheap"

/*
 * A heap of PY_ITEMS (dict, list, bytes) items, digested (sha256), the
 * digest checked against one of the items made again; then, on a line of
 * stdin, a fork: the child checks its copy's digest, rewrites the odd
 * items and checks its digest, and sends its verdict through a pipe; the
 * parent rewrites the even ones meanwhile, checks its digest, prints the
 * child's verdict and its own. The output is the same in every run that
 * computes right.
 */
static const char py_script[] =
	"import hashlib, os, sys\n"
	"N = int(sys.argv[1])\n"
	"def make(i, gen):\n"
	"    s = '%d-%d-' % (gen, i)\n"
	"    return ({'k%d' % j: s * (2 + j % 5) for j in range(8)},\n"
	"            [gen * 1000003 + i * 31 + j for j in range(8)],\n"
	"            (s.encode() * 64)[:400 + i % 200])\n"
	"def digest(items):\n"
	"    h = hashlib.sha256()\n"
	"    for d, l, b in items:\n"
	"        for k, v in d.items():\n"
	"            h.update(k.encode()); h.update(v.encode())\n"
	"        h.update(repr(l).encode()); h.update(b)\n"
	"    return h.hexdigest()\n"
	"def expected(gens):\n"
	"    return digest(make(i, gens(i)) for i in range(N))\n"
	"objs = [make(i, 0) for i in range(N)]\n"
	"d0 = digest(objs)\n"
	"print('built', N, d0 == expected(lambda i: 0), d0, flush=True)\n"
	"sys.stdin.readline()\n"
	"r, w = os.pipe()\n"
	"pid = os.fork()\n"
	"if pid == 0:\n"
	"    os.close(r)\n"
	"    ok = digest(objs) == d0\n"
	"    for i in range(1, N, 2):\n"
	"        objs[i] = make(i, 1)\n"
	"    d1 = digest(objs)\n"
	"    ok = ok and d1 == expected(lambda i: i % 2)\n"
	"    os.write(w, ('child %s %s\\n' % (ok, d1)).encode())\n"
	"    os._exit(0 if ok else 1)\n"
	"os.close(w)\n"
	"for i in range(0, N, 2):\n"
	"    objs[i] = make(i, 2)\n"
	"d2 = digest(objs)\n"
	"ok = d2 == expected(lambda i: 2 if i % 2 == 0 else 0)\n"
	"with os.fdopen(r) as f:\n"
	"    print(f.read(), end='', flush=True)\n"
	"_, st = os.waitpid(pid, 0)\n"
	"print('child exit', os.waitstatus_to_exitcode(st), flush=True)\n"
	"print('parent', ok, d2, flush=True)\n";

/* `uzswapctl --socket S @args...`: its stdout into @out; must exit 0. */
static void uzswapctl(char *out, size_t size, const char *const *args)
{
	const char *argv[16] = { UZSWAPCTL_PATH, "--socket", dmn.sock };
	char err[1024];
	size_t n = 3;
	int st;

	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	st = dh_run(argv, NULL, NULL, out, size, err, sizeof(err),
		    dh_scaled_ms(LINE_MS));
	DH_ASSERT(dh_exited_ok(st), "uzswapctl %s: %s, %s", argv[3],
		  dh_status_str(st), err);
}

/* `uzswapctl clients` lists @pid as @comm. */
static void assert_listed(pid_t pid, const char *comm)
{
	static char out[OUT_SIZE];
	const char *const args[] = { "clients", NULL };
	char want[64];
	const char *l;
	int lpid;

	uzswapctl(out, sizeof(out), args);
	for (l = out; l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (sscanf(l, "%d %63s", &lpid, want) == 2 && lpid == pid)
			break;
	DH_ASSERT(l && !strcmp(want, comm), "uzswapctl clients, pid %d as "
		  "%s:\n%s", (int)pid, comm, out);
}

/* /proc/@pid/maps shows a region named @name. */
static void assert_region_named(pid_t pid, const char *name)
{
	char path[64], line[512], want[128];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	snprintf(want, sizeof(want), "/memfd:uzswap:%s ", name);
	f = fopen(path, "r");
	DH_ASSERT(f, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	fclose(f);
	DH_ASSERT(found, "no %s in %s", want, path);
}

START_TEST(test_python_fork)
{
	static char out[OUT_SIZE], plain[OUT_SIZE];
	char script[PATH_MAX], input[PATH_MAX], pid_arg[32], err[2048];
	const char *const plain_argv[] = { PYTHON, script, PY_ITEMS, NULL };
	const char *const prog[] = { PYTHON, script, PY_ITEMS, NULL };
	const char *const opts[] = { "--name", PY_NAME, NULL };
	const char *const set_limit[] = { "set-limit", pid_arg, "16M", NULL };
	struct proto_client_row row;
	long long deadline, t0;
	struct sampler smp;
	struct dh_client c;
	int st;

	dh_up(&dmn, with_metrics);
	snprintf(script, sizeof(script), "%s/heap.py", dmn.dir);
	snprintf(input, sizeof(input), "%s/go", dmn.dir);
	write_file(script, py_script);
	write_file(input, "go\n");

	t0 = dh_now_ms();
	st = dh_run(plain_argv, NULL, input, plain, sizeof(plain), err,
		    sizeof(err), dh_scaled_ms(PROG_MS));
	DH_ASSERT(dh_exited_ok(st), "plain python3: %s, %s",
		  dh_status_str(st), err);
	DH_ASSERT(strstr(plain, " True ") && strstr(plain, "child True ") &&
		  strstr(plain, "child exit 0\n") &&
		  strstr(plain, "parent True "), "plain python3: %s", plain);
	fprintf(stderr, "python: plain run %lld ms\n", dh_now_ms() - t0);

	t0 = dh_now_ms();
	run_start(&c, "32M", opts, prog);
	sampler_start(&smp, c.pid);
	read_line(&c, out, sizeof(out));
	strcat(out, "\n");

	/* a client with pages stored, by its name */
	client_row(c.pid, &row);
	DH_ASSERT(row.stored_pages > 0, "no page stored (resident %" PRIu64
		  ")", row.resident_bytes);
	DH_ASSERT(!strcmp(row.comm, "python3"), "client %s", row.comm);
	assert_listed(c.pid, "python3");
	/* --name: the region's name, in the maps and to the daemon
	 * (`uzswapctl clients` lists commands, not region names) */
	assert_region_named(c.pid, PY_NAME);
	DH_ASSERT(dh_log_find(&dmn, " \"" PY_NAME "\" ", NULL, 0),
		  "no region \"%s\" in the daemon's log", PY_NAME);

	/* a new budget, live: resident follows */
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)c.pid);
	uzswapctl(err, sizeof(err), set_limit);
	deadline = dh_deadline(FOLLOW_MS);
	for (;;) {
		client_row(c.pid, &row);
		if (row.limit_bytes == PY_NEW_LIMIT &&
		    row.resident_bytes <= PY_NEW_LIMIT + RUN_BYTES)
			break;
		DH_ASSERT(dh_now_ms() < deadline, "after set-limit 16M: limit "
			  "%" PRIu64 ", resident %" PRIu64, row.limit_bytes,
			  row.resident_bytes);
		dh_sleep_ms(20);
	}

	DH_ASSERT_EQ(dh_client_say(&c, "go"), 0);
	read_rest(&c, out, sizeof(out));
	exits_ok(&c, "python3");
	sampler_check(&smp, PY_LIMIT);
	fprintf(stderr, "python: managed run %lld ms, RssShmem at most "
		"%lld\n", dh_now_ms() - t0, smp.max);
	DH_ASSERT(!strcmp(out, plain), "python3 under uzswap-run:\n%s\n"
		  "plain:\n%s", out, plain);
	/* the forked child was a client of its own */
	DH_ASSERT(dh_log_count(&dmn, "(python3) connected") == 2,
		  "python3 clients: %d", dh_log_count(&dmn,
						      "(python3) connected"));
	dh_wait_pool_empty(&dmn);
}
END_TEST

/*****************
 * redis
 *****************/

#define REDIS_KEYS	300000
#define REDIS_SAVE_MS	120000	/* a BGSAVE to end */

/* Start a redis-server (through uzswap-run under @limit if not NULL) on
 * @dir/@sock_name, its directory @dir, loading @dir/@rdb if not NULL. */
static void redis_start(struct dh_client *c, const char *limit,
			const char *dir, const char *sock_name,
			const char *rdb, char *sock, size_t sock_size)
{
	const char *args[] = { REDIS, "--port", "0", "--unixsocket", sock,
			       "--save", "", "--appendonly", "no",
			       "--daemonize", "no", "--enable-debug-command",
			       "local", "--dir", dir,
			       rdb ? "--dbfilename" : NULL, rdb, NULL };
	int ret;

	snprintf(sock, sock_size, "%s/%s", dir, sock_name);
	if (limit) {
		run_start(c, limit, NULL, args);
		return;
	}
	ret = dh_client_start(&dmn, c, args, false);
	DH_ASSERT(ret == 0, "start redis: %s", strerror(-ret));
}

static void redis_stop(struct dh_client *c)
{
	int st;

	kill(c->pid, SIGTERM);
	st = dh_client_wait(c, dh_scaled_ms(LINE_MS));
	DH_ASSERT(dh_exited_ok(st), "redis-server: %s", dh_status_str(st));
}

/* VmRSS of @pid, in bytes. */
static unsigned long long vm_rss(pid_t pid)
{
	char path[64], line[256];
	unsigned long long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	DH_ASSERT(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	fclose(f);
	DH_ASSERT(kb > 0, "no VmRSS in %s", path);
	return kb * KIB;
}

/* BGSAVE, and wait until it ended well (INFO persistence). */
static void redis_bgsave(struct resp *r)
{
	const char *const bgsave[] = { "BGSAVE", NULL };
	const char *const info[] = { "INFO", "persistence", NULL };
	static char text[8192];
	long long deadline = dh_deadline(REDIS_SAVE_MS);
	char line[256];

	resp_command(r, bgsave);
	resp_line(r, line, sizeof(line));
	DH_ASSERT(!strcmp(line, "+Background saving started"), "BGSAVE: %s",
		  line);
	for (;;) {
		resp_command(r, info);
		DH_ASSERT(resp_bulk(r, text, sizeof(text)) > 0, "INFO: null");
		if (strstr(text, "rdb_bgsave_in_progress:0\r\n"))
			break;
		DH_ASSERT(dh_now_ms() < deadline, "BGSAVE still running");
		dh_sleep_ms(100);
	}
	DH_ASSERT(strstr(text, "rdb_last_bgsave_status:ok\r\n") &&
		  strstr(text, "rdb_changes_since_last_save:0\r\n"),
		  "after BGSAVE: %s", text);
}

START_TEST(test_redis_bgsave)
{
	static struct resp r;
	char plain_dir[PATH_MAX - 64], dir[PATH_MAX - 64], sock[PATH_MAX];
	char digest[64], plain[64], loaded[64], limit[32];
	unsigned long long rss, budget;
	struct sampler smp;
	struct dh_client c;
	long long t0 = dh_now_ms();

	dh_up(&dmn, with_metrics);
	DH_ASSERT_EQ(dh_mkdtemp(plain_dir, sizeof(plain_dir), "redis-plain"),
		     0);
	DH_ASSERT_EQ(dh_mkdtemp(dir, sizeof(dir), "redis"), 0);

	/* a plain server: the digest, and the RSS of the data */
	redis_start(&c, NULL, plain_dir, "r.sock", NULL, sock, sizeof(sock));
	resp_connect(&r, sock, LINE_MS);
	resp_fill(&r, REDIS_KEYS);
	resp_digest(&r, plain, sizeof(plain));
	rss = vm_rss(c.pid);
	resp_close(&r);
	redis_stop(&c);

	/* the managed one under a quarter of it */
	budget = rss / 4 / KIB * KIB;
	snprintf(limit, sizeof(limit), "%lluK", budget / KIB);
	redis_start(&c, limit, dir, "r.sock", NULL, sock, sizeof(sock));
	sampler_start(&smp, c.pid);
	resp_connect(&r, sock, LINE_MS);
	resp_fill(&r, REDIS_KEYS);
	resp_digest(&r, digest, sizeof(digest));
	DH_ASSERT(!strcmp(digest, plain), "digest %s, plain redis %s", digest,
		  plain);
	wait_stored(c.pid, LINE_MS);
	redis_bgsave(&r);	/* a fork */
	resp_close(&r);
	redis_stop(&c);
	sampler_check(&smp, budget);
	fprintf(stderr, "redis: plain VmRSS %llu, budget %s, RssShmem at most "
		"%lld\n", rss, limit, smp.max);

	/* its dump.rdb, loaded by a plain server */
	redis_start(&c, NULL, dir, "check.sock", "dump.rdb", sock,
		    sizeof(sock));
	resp_connect(&r, sock, LINE_MS);
	resp_wait_loaded(&r, LINE_MS);
	resp_digest(&r, loaded, sizeof(loaded));
	resp_close(&r);
	redis_stop(&c);
	DH_ASSERT(!strcmp(loaded, plain), "dump.rdb of the managed server: "
		  "digest %s, plain %s", loaded, plain);
	dh_wait_pool_empty(&dmn);
	fprintf(stderr, "redis: %lld ms\n", dh_now_ms() - t0);
}
END_TEST

/*****************
 * sort
 *****************/

#define SORT_BYTES	(48 * MIB)	/* three times the budget */
#define SORT_LIMIT	(16 * MIB)

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* SORT_BYTES of random lines (10 to 120 of [a-z0-9]) into @path. */
static void sort_input(const char *path)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint64_t rnd = 0x9e3779b97f4a7c15ull;
	unsigned long long have = 0;
	char line[128];
	size_t len, i;
	FILE *f = fopen(path, "w");

	DH_ASSERT(f, "%s: %s", path, strerror(errno));
	while (have < SORT_BYTES) {
		len = 10 + next_rand(&rnd) % 111;
		for (i = 0; i < len; i++)
			line[i] = alnum[next_rand(&rnd) % 36];
		line[len] = '\n';
		DH_ASSERT(fwrite(line, 1, len + 1, f) == len + 1, "write %s",
			  path);
		have += len + 1;
	}
	DH_ASSERT(fclose(f) == 0, "close %s", path);
}

/* Whether files @a and @b hold the same bytes. */
static bool same_file(const char *a, const char *b)
{
	static char ba[65536], bb[65536];
	FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
	bool same = fa && fb;
	size_t na, nb;

	while (same) {
		na = fread(ba, 1, sizeof(ba), fa);
		nb = fread(bb, 1, sizeof(bb), fb);
		same = na == nb && !memcmp(ba, bb, na);
		if (!na)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

START_TEST(test_sort_same_output)
{
	char in[PATH_MAX], out[PATH_MAX], plain[PATH_MAX], err[2048];
	const char *const plain_argv[] = { SORT, "-S", "512M", in, "-o",
					   plain, NULL };
	const char *const prog[] = { SORT, "-S", "512M", in, "-o", out,
				     NULL };
	struct sampler smp;
	struct dh_client c;
	long long t0;
	int st;

	dh_up(&dmn, NULL);
	snprintf(in, sizeof(in), "%s/in.txt", dmn.dir);
	snprintf(out, sizeof(out), "%s/sorted", dmn.dir);
	snprintf(plain, sizeof(plain), "%s/sorted.plain", dmn.dir);
	sort_input(in);
	/* both sorts: temporary files (if any) in the test's directory; the
	 * C locale, so that both compare bytes whatever the machine's */
	setenv("TMPDIR", dmn.dir, 1);
	setenv("LC_ALL", "C", 1);

	t0 = dh_now_ms();
	st = dh_run(plain_argv, NULL, NULL, NULL, 0, err, sizeof(err),
		    dh_scaled_ms(PROG_MS));
	DH_ASSERT(dh_exited_ok(st), "plain sort: %s, %s", dh_status_str(st),
		  err);
	fprintf(stderr, "sort: plain %lld ms\n", dh_now_ms() - t0);

	t0 = dh_now_ms();
	run_start(&c, "16M", NULL, prog);
	sampler_start(&smp, c.pid);
	exits_ok(&c, "sort");
	sampler_check(&smp, SORT_LIMIT);
	fprintf(stderr, "sort: managed %lld ms, RssShmem at most %lld\n",
		dh_now_ms() - t0, smp.max);
	evicted_some();
	DH_ASSERT(same_file(out, plain), "sort's output under uzswap-run "
		  "differs from a plain sort's");
	unlink(in);
	unlink(out);
	unlink(plain);
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
	if (!strcmp(part, "sort") && access(SORT, X_OK))
		return "no " SORT " (GNU coreutils)";
	return NULL;
}

/* A tcase of @s (a part if @part); with @daemon, its tests start a
 * daemon, which the fixture stops. */
static TCase *tcase(Suite *s, const char *name, bool part, bool daemon)
{
	return dh_tcase(s, name, part, TIMEOUT_CASE,
			daemon ? daemon_down : NULL);
}

static Suite *programs_suite(void)
{
	Suite *s = suite_create("programs");
	TCase *tc;

	tc = tcase(s, "churn", false, true);
	tcase_add_test(tc, test_churn_budget);
	tc = tcase(s, "purge", false, true);
	tcase_add_test(tc, test_purge_reads_zeros);
	tc = tcase(s, "restart", false, true);
	tcase_add_test(tc, test_restart_unnoticed);
	tc = tcase(s, "refuse", false, false);
	tcase_add_test(tc, test_refuse_absent);
	tcase_add_test(tc, test_refuse_required);
	tc = tcase(s, "exec", false, true);
	tcase_add_test(tc, test_exec_leaves_nothing);
	tc = tcase(s, "python", true, true);
	tcase_add_test(tc, test_python_fork);
	tc = tcase(s, "redis", true, true);
	tcase_add_test(tc, test_redis_bgsave);
	tc = tcase(s, "sort", true, true);
	tcase_add_test(tc, test_sort_same_output);
	return s;
}

int main(void)
{
	return dh_main_preload("check_programs", programs_suite, CKPART,
			       cannot_run);
}
