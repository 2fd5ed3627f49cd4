/*
 * restart.c - the restart benchmark (issue 11): how long a client of
 * uzswapd waits when its daemon crashes (SIGKILL) or is stopped (SIGTERM)
 * and a successor is started on the same state directory, against the
 * amount stored. Not a test: it asserts nothing about time and its
 * numbers vary with the machine; only wrong data fails it (exit 3).
 *
 * For each size S (--sizes, default 256M,1G,4G) of bytes stored:
 * 1. a private uzswapd (--uzswapd, default ../daemon/uzswapd: the build
 *    tree's) in a new directory D under --tmp (default /dev/shm: the
 *    state directory lives on tmpfs, as in production):
 *      uzswapd --socket D/sock --state-dir D/state --config /dev/null
 *              --metrics off --no-mlock --pool-limit 5S/4+64M
 *              --backing-file none
 *    (--writeback: --pool-limit S/2 --backing-file D/backing
 *    --backing-limit S+64M, so that half of S is written back);
 * 2. this program is its client through libuzswap: one region of S +
 *    budget + 4 MiB under a budget (--budget, default 32 MiB), filled with
 *    random bytes (a seeded generator per page: incompressible, so the
 *    daemon keeps them raw and S bytes of data are S bytes stored), a
 *    64-bit checksum of every page kept; then STATUS polled until the
 *    daemon holds S bytes (its compressed_bytes plus backing_bytes);
 *    then every page read back and checked once, before any restart: the
 *    baseline of the resident peaks below (how far over its budget the
 *    client goes in normal operation while it reads everything);
 * 3. crash, --runs times (default 3): SIGKILL the daemon (by pid), reap
 *    it; a thread of this process touches a stored page (mincore() says
 *    it is out) and blocks on it (the uffd's fdinfo counts its fault);
 *    the successor is started with the same command line. Measured:
 *    "ready", from just before the successor's fork() to the first STATUS
 *    it answers on a new connection (polled every 0.5 ms); "resume", from
 *    the same instant to the blocked thread's read returning; the
 *    successor's CPU time until ready (every thread's schedstat: less
 *    sensitive to a loaded machine than the wall clock); whether the
 *    successor still holds this process to its budget (uzswap_stats());
 *    Throughout, from just before the signal to its first page read
 *    from the successor, a prober thread reads stored pages (mincore()
 *    says out), one every 0.2 ms, each checked against its checksum:
 *    "stall" is its longest wait between two pages, what a busy client
 *    sees of the restart;
 * 4. then every page read back and compared with its checksum: a
 *    difference voids the run (exit 3); the budget set again if a
 *    successor lost it, and STATUS polled until S is stored again;
 * 5. handover: the same with SIGTERM, plus "stop", from the SIGTERM to the
 *    old daemon's exit (its pidfd polled): the first restart's alone
 *    too, since only the first daemon stopped had stored every page itself
 *    (its successors touched less of the pool, and the kernel's teardown
 *    of the memory mapped is part of an exit). Whatever SIGTERM does is
 *    measured: a stop that restores every page first leaves the thread
 *    nothing to block on (resume "-") and its successor nothing to serve
 *    (the runs end at the first);
 * 6. the bytes of the region in memory (the memfd's allocated blocks,
 *    sampled every 2 ms by a thread) are tracked: their peak during the
 *    gaps (signal to resume) and after them (between the runs and during
 *    the read-back), against the budget;
 * 7. the region freed, the daemon stopped, D removed.
 * Then the tables: the medians of the runs (the first stop) and the
 * ratios of the last size to the first (flat means about 1); the stops
 * and CPU times; the peaks of the region's bytes in memory.
 *
 * Every daemon is started with PR_SET_PDEATHSIG (it dies with this
 * program) and stopped by its pid; D is removed after each size and on
 * any exit, also on SIGINT, SIGTERM and SIGHUP. Every wait is bounded.
 *
 * Usage: restart [--uzswapd PATH] [--sizes LIST] [--budget MIB]
 *                [--tmp DIR] [--modes crash,handover] [--writeback]
 *                [--runs N]
 * Output: progress on stderr; on stdout one "sample KEY=VALUE ..." line
 * per restart, one "result KEY=VALUE ..." line per mode and size, and
 * the table. Exit: 0; 1 setup or daemon failure; 2 usage;
 * 3 data mismatch.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/common/macros.h"
#include "lib/common/size.h"
#include "connect.h"
#include "pagesum.h"
#include "uzswap.h"

#define PAGE		4096ul
#define WORDS		(PAGE / sizeof(uint64_t))
#define MIB		(UINT64_C(1) << 20)
#define GIB		(UINT64_C(1) << 30)
#define MAX_SIZES	8
#define REGION_EXTRA	(4 * MIB)	/* region = S + budget + this */
#define SAMPLE_NS	2000000l	/* resident bytes sampled this often */
#define POLL_NS		500000l		/* readiness polled this often */
#define START_S		600		/* bounds of the waits */
#define STOP_S		600
#define STORED_S	600
#define BLOCK_S		5
#define RESUME_S	60
#define SEED		0x7265737461727431ull
#define PROBE_NS	200000l		/* the prober's pause between touches */

enum mode { M_CRASH, M_HANDOVER, NR_MODES };

static const char *const mode_name[NR_MODES] = { "crash", "handover" };

/* Where the region's memory is tracked: not at all, during a read-back
 * before any restart (the baseline), during the gaps, after them. */
enum phase { PH_IDLE, PH_BASE, PH_GAP, PH_AFTER, NR_PHASES };

/* What one restart measured; times in ms, NAN when not measured. */
struct sample {
	double stop_ms;		/* signal to the old daemon's exit */
	double ready_ms;	/* successor's fork to its first STATUS */
	double resume_ms;	/* successor's fork to the blocked read */
	double stall_ms;	/* the prober's longest wait for a page */
	double cpu_ms;		/* successor's CPU time until ready */
	bool served;		/* the successor serves the client */
	bool budget_kept;	/* ... and holds it to its budget */
};

/* What the restarts of one mode at one size gave: the medians of the
 * samples (resume: of those where the thread blocked), and the first
 * stop alone: only the first daemon stopped had stored every page itself
 * (its successors touched less of the pool), and the kernel's teardown of
 * its memory is part of its stop. */
struct figures {
	double stop_ms, ready_ms, resume_ms, cpu_ms, stall_ms;
	double first_stop_ms;
	int runs;		/* restarts done */
	int blocked;		/* ... in which the thread blocked */
	bool served;		/* the last successor served the client */
	bool budget_kept;	/* every successor held it to its budget */
	uint64_t peak[NR_PHASES]; /* region bytes in memory, peak */
	double verify_s;	/* the read-back after the last restart */
};

/* One size: the read-back before any restart, then each mode's. */
struct size_figures {
	uint64_t base_peak;	/* region bytes in memory, peak */
	double base_s;		/* its time */
	struct figures mode[NR_MODES];
};

/* The command line; immutable after parse_opts(). */
struct opts {
	const char *uzswapd;
	const char *tmp;
	uint64_t sizes[MAX_SIZES];
	int nr_sizes;
	uint64_t budget;
	bool mode[NR_MODES];
	bool writeback;
	int runs;		/* restarts per mode and size */
};

/*
 * struct daemon - the uzswapd of one size; written by the main thread
 * only. @pid and @dir are also read by the signal handler (teardown()),
 * which only kills by the one and removes the other: a pid_t store is
 * atomic on every platform this builds on, and @dir is set once per size
 * before the daemon starts and cleared after it stopped.
 */
struct daemon {
	volatile pid_t pid;	/* 0: none runs */
	char dir[PATH_MAX - 64];
	char sock[PATH_MAX];
	char state[PATH_MAX];
	char log[PATH_MAX];
	char backing[PATH_MAX];
	char pool_limit[32];
	char backing_limit[32];
};

/*
 * struct client - this process as the daemon's client; main thread only,
 * but for @mem, whose pages the blocked thread reads too.
 */
struct client {
	uzswap_t *c;
	uint8_t *mem;
	size_t pages;
	uint64_t *sums;		/* checksum of each page */
	int memfd;		/* the region's memfd (the library's fd) */
	int uffd;		/* the process's userfaultfd (the library's) */
};

/*
 * struct sampler - the thread that tracks the region's bytes in memory.
 * @phase is set by the main thread; @peak written by the sampler, reset
 * by the main thread only while @phase is PH_IDLE.
 */
struct sampler {
	pthread_t thread;
	int memfd;			/* immutable */
	atomic_int phase;
	atomic_bool stop;
	atomic_uint_fast64_t peak[NR_PHASES];
};

/* The thread blocked on a stored page: @page immutable while it runs;
 * @done_at written before @done is set (release), read after. */
struct blocker {
	pthread_t thread;
	volatile const uint8_t *page;
	uint8_t byte;		/* what it read: the read is not elided */
	double done_at;
	atomic_bool done;
};

/*
 * struct prober - the thread that goes on touching stored pages through a
 * restart, as a busy client would, one every PROBE_NS, each checked
 * against its checksum: the longest wait between two pages read is how
 * long the restart held a client up. @cl and @next immutable while it
 * runs; @stall_ms and @bad (1 + a page that read wrong, 0: none) written
 * by it and read after the join; @last_ns its last read (atomic).
 */
struct prober {
	pthread_t thread;
	const struct client *cl;
	size_t next;
	atomic_bool stop;
	atomic_uint_fast64_t last_ns;
	double stall_ms;
	size_t bad;
};

/* The one daemon and directory the signal handler tears down. */
static struct daemon dmn;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000l,
			       .tv_nsec = ns % 1000000000l };

	nanosleep(&ts, NULL);
}

static void note(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
	va_list ap;

	fputs("restart: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *size_label(uint64_t v, char *buf, size_t len)
{
	if (v % GIB == 0)
		snprintf(buf, len, "%" PRIu64 " GiB", v / GIB);
	else
		snprintf(buf, len, "%" PRIu64 " MiB", v / MIB);
	return buf;
}

/*****************
 * Teardown: on every exit, the daemon killed and its directory removed;
 * async-signal-safe (kill, fork, execve, waitpid), so that the signal
 * handler can do it too
 *****************/

/* rm -rf @path, in a child. */
static void remove_tree(const char *path)
{
	pid_t pid;

	if (!path[0])
		return;
	pid = fork();
	if (pid == 0) {
		execl("/bin/rm", "rm", "-rf", "--", path, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void teardown(void)
{
	pid_t pid = dmn.pid;

	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		dmn.pid = 0;
	}
	remove_tree(dmn.dir);
	dmn.dir[0] = '\0';
}

static void on_signal(int sig)
{
	teardown();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Print the daemon's log, then exit (atexit: teardown()). */
static void die(int code, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	FILE *f;

	fputs("restart: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	f = dmn.log[0] ? fopen(dmn.log, "re") : NULL;
	if (f) {
		fprintf(stderr, "restart: the daemons' log (%s):\n", dmn.log);
		while (fgets(line, sizeof(line), f))
			fprintf(stderr, "  | %s", line);
		fclose(f);
	}
	exit(code);
}

/*****************
 * The daemon
 *****************/

static void daemon_prepare(struct daemon *d, const struct opts *o,
			   uint64_t size)
{
	char tmpl[sizeof(d->dir)];
	uint64_t pool = size * 5 / 4 + 64 * MIB;

	snprintf(tmpl, sizeof(tmpl), "%s/uzswap-restart.XXXXXX", o->tmp);
	if (!mkdtemp(tmpl))
		die(1, "mkdtemp %s: %s", tmpl, strerror(errno));
	snprintf(d->dir, sizeof(d->dir), "%s", tmpl);
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
	snprintf(d->state, sizeof(d->state), "%s/state", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/uzswapd.log", d->dir);
	snprintf(d->backing, sizeof(d->backing), "%s/backing", d->dir);
	if (o->writeback)
		pool = size / 2;
	snprintf(d->pool_limit, sizeof(d->pool_limit), "%" PRIu64 "M",
		 pool / MIB);
	snprintf(d->backing_limit, sizeof(d->backing_limit), "%" PRIu64 "M",
		 (size + 64 * MIB) / MIB);
}

/* Fork and exec a daemon on @d's directory; it dies with this process.
 * Return: its pid. */
static pid_t daemon_spawn(const struct daemon *d, const struct opts *o)
{
	const char *argv[] = {
		o->uzswapd, "--socket", d->sock, "--state-dir", d->state,
		"--config", "/dev/null", "--metrics", "off", "--no-mlock",
		"--pool-limit", d->pool_limit,
		"--backing-file", o->writeback ? d->backing : "none",
		"--backing-limit", d->backing_limit, NULL,
	};
	pid_t parent = getpid(), pid;
	int fd;

	pid = fork();
	if (pid < 0)
		die(1, "fork: %s", strerror(errno));
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	signal(SIGPIPE, SIG_DFL);
	fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	execv(o->uzswapd, (char *const *)argv);
	_exit(127);
}


/* Poll STATUS until the daemon answers. Return: when it first did. */
static double daemon_wait_ready(const struct daemon *d)
{
	double deadline = now() + START_S;
	struct uzswap_status st;
	int status;

	for (;;) {
		if (bench_daemon_status(d->sock, &st) == 0)
			return now();
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			die(1, "uzswapd exited at startup (status 0x%x)",
			    status);
		if (now() > deadline)
			die(1, "uzswapd did not answer STATUS in %d s",
			    START_S);
		sleep_ns(POLL_NS);
	}
}

/* CPU time of every thread of process @pid so far (schedstat, ns), in
 * ms; NAN if it cannot be read. */
static double daemon_cpu_ms(pid_t pid)
{
	char path[64], sub[sizeof(((struct dirent *)0)->d_name) + 80];
	unsigned long long ns, sum = 0;
	struct dirent *e;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return NAN;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/schedstat", path, e->d_name);
		f = fopen(sub, "re");
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		if (f)
			fclose(f);
	}
	closedir(dir);
	return (double)sum / 1e6;
}

/* Wait for the daemon's exit (its pidfd) and reap it. Return: when it
 * exited. */
static double daemon_wait_exit(struct daemon *d)
{
	int pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	double t;

	if (pidfd < 0)
		die(1, "pidfd_open: %s", strerror(errno));
	if (poll(&pfd, 1, STOP_S * 1000) != 1)
		die(1, "uzswapd (%d) did not exit within %d s", (int)d->pid,
		    STOP_S);
	t = now();
	close(pidfd);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
	return t;
}

/* Bytes the daemon stores for its clients: in the pool and written back. */
static uint64_t daemon_stored(const struct daemon *d)
{
	struct uzswap_status st;
	int ret = bench_daemon_status(d->sock, &st);

	if (ret)
		die(1, "STATUS: %s", uzswap_strerror(ret));
	return st.compressed_bytes + st.backing_bytes;
}

/* Poll until the daemon stores @size bytes. Return: seconds waited. */
static double daemon_wait_stored(const struct daemon *d, uint64_t size)
{
	double t0 = now(), deadline = t0 + STORED_S;
	uint64_t stored;

	while ((stored = daemon_stored(d)) < size) {
		if (now() > deadline)
			die(1, "the daemon stores %" PRIu64 " MiB after %d s, "
			    "not %" PRIu64, stored / MIB, STORED_S,
			    size / MIB);
		sleep_ns(20 * POLL_NS);
	}
	return now() - t0;
}

/*****************
 * The client: its region, its data, the descriptors the library holds
 *****************/

/* The fd of this process whose link starts with @target, or -1. */
static int find_fd(const char *target)
{
	struct dirent *e;
	char path[sizeof(e->d_name) + 16], link[PATH_MAX];
	int fd = -1;
	ssize_t n;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	while (fd < 0 && (e = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strncmp(link, target, strlen(target)))
			fd = atoi(e->d_name);
	}
	closedir(dir);
	return fd;
}

static void client_set_budget(const struct client *cl, uint64_t budget)
{
	int ret = uzswap_set_limit(cl->c, budget);

	if (ret)
		die(1, "uzswap_set_limit: %s", uzswap_strerror(ret));
}

/* Whether the daemon serves this process still (a stop that hands every
 * page back leaves a successor nothing to serve: -ESTALE); if so, the
 * budget it holds it to into *@limit (0: none). */
static bool client_served(const struct client *cl, uint64_t *limit)
{
	struct uzswap_stats st;
	int ret = uzswap_stats(cl->c, &st);

	if (ret == -ESTALE)
		return false;
	if (ret)
		die(1, "uzswap_stats: %s", uzswap_strerror(ret));
	*limit = st.limit_bytes;
	return true;
}

static void client_open(struct client *cl, const struct daemon *d,
			uint64_t size, uint64_t budget)
{
	size_t len = size + budget + REGION_EXTRA;

	cl->c = uzswap_connect(d->sock);
	if (!cl->c)
		die(1, "uzswap_connect: %s", uzswap_strerror(errno));
	client_set_budget(cl, budget);
	cl->mem = uzswap_alloc(cl->c, len, "restart");
	if (!cl->mem)
		die(1, "uzswap_alloc(%zu MiB): %s", len >> 20,
		    uzswap_strerror(errno));
	cl->pages = len / PAGE;
	cl->sums = calloc(cl->pages, sizeof(*cl->sums));
	if (!cl->sums)
		die(1, "out of memory");
	cl->memfd = find_fd("/memfd:uzswap:restart");
	cl->uffd = find_fd("anon_inode:[userfaultfd]");
	if (cl->memfd < 0 || cl->uffd < 0)
		die(1, "the region's memfd or the userfaultfd is not in "
		    "/proc/self/fd");
}

/* Every page random bytes of its own seeded stream; record its sum. */
/* The generator of page @i's bytes. */
static uint64_t page_seed(size_t i)
{
	return SEED ^ (i * 0xd1b54a32d192ed03ull);
}

/* Every page random bytes of its own seeded stream; record its sum. */
static void client_fill(struct client *cl)
{
	size_t i, w;

	for (i = 0; i < cl->pages; i++) {
		uint64_t *p = (uint64_t *)(cl->mem + i * PAGE);
		uint64_t s = page_seed(i);

		for (w = 0; w < WORDS; w++)
			p[w] = rnd(&s);
		cl->sums[i] = page_sum(p);
	}
}

/* What wrong page @i holds instead, on stderr: zeros, another page's
 * bytes (found by the first word), or which words differ. */
static void client_explain(const struct client *cl, size_t i)
{
	const uint64_t *p = (const uint64_t *)(cl->mem + i * PAGE);
	size_t w, j, zero = 0, diff = 0, first = WORDS;
	uint64_t s = page_seed(i), want;

	for (w = 0; w < WORDS; w++) {
		want = rnd(&s);
		zero += !p[w];
		if (p[w] != want && !diff++)
			first = w;
	}
	note("page %zu (offset %#zx): %zu of %zu words differ from the "
	     "first at word %zu; %zu words zero", i, i * PAGE, diff, WORDS,
	     first, zero);
	for (j = 0; j < cl->pages; j++) {
		s = page_seed(j);
		if (j != i && rnd(&s) == p[0]) {
			note("page %zu starts like page %zu (its checksum %s)",
			     i, j, page_sum(p) == cl->sums[j] ?
			     "too: it holds that page's bytes" : "differs");
			break;
		}
	}
}

/* Read every page back and compare it with its sum; a difference voids
 * the run. Return: seconds taken. */
static double client_verify(const struct client *cl, const char *what)
{
	double t0 = now();
	size_t i, bad = 0, first = 0;

	for (i = 0; i < cl->pages; i++) {
		if (page_sum(cl->mem + i * PAGE) == cl->sums[i])
			continue;
		if (!bad++)
			first = i;
		if (bad <= 8)
			client_explain(cl, i);
	}
	if (bad)
		die(3, "DATA MISMATCH after the %s: %zu of %zu pages differ "
		    "(the first: page %zu); the figures are void", what, bad,
		    cl->pages, first);
	return now() - t0;
}

/* A page of the region not in memory (mincore), the first one found. */
static size_t client_stored_page(const struct client *cl)
{
	unsigned char vec[4096];
	size_t i, n, j;

	for (i = 0; i < cl->pages; i += n) {
		n = cl->pages - i < sizeof(vec) ? cl->pages - i : sizeof(vec);
		if (mincore(cl->mem + i * PAGE, n * PAGE, vec))
			die(1, "mincore: %s", strerror(errno));
		for (j = 0; j < n; j++)
			if (!(vec[j] & 1))
				return i + j;
	}
	die(1, "no page of the region is stored");
}

/* Faults waiting on the process's userfaultfd (its fdinfo's "total"). */
static long client_faults_waiting(const struct client *cl)
{
	char path[64], line[256];
	long waiting = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", cl->uffd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "total: %ld", &waiting) == 1)
			break;
	fclose(f);
	return waiting;
}

static void client_close(struct client *cl)
{
	uzswap_disconnect(cl->c);
	free(cl->sums);
	memset(cl, 0, sizeof(*cl));
}

/*****************
 * The sampler and the blocked thread
 *****************/

static void *sampler_run(void *arg)
{
	struct sampler *s = arg;
	struct stat st;

	while (!atomic_load(&s->stop)) {
		int ph = atomic_load(&s->phase);
		uint64_t bytes, peak;

		if (ph != PH_IDLE && fstat(s->memfd, &st) == 0) {
			bytes = (uint64_t)st.st_blocks * 512;
			peak = atomic_load(&s->peak[ph]);
			if (bytes > peak)
				atomic_store(&s->peak[ph], bytes);
		}
		sleep_ns(SAMPLE_NS);
	}
	return NULL;
}

static void sampler_start(struct sampler *s, int memfd)
{
	memset(s, 0, sizeof(*s));
	s->memfd = memfd;
	if (pthread_create(&s->thread, NULL, sampler_run, s))
		die(1, "pthread_create failed");
}

/* Track phase @ph from now on. */
static void sampler_phase(struct sampler *s, enum phase ph)
{
	atomic_store(&s->phase, ph);
}

/* Forget the peaks; while the phase is PH_IDLE. */
static void sampler_reset(struct sampler *s)
{
	int i;

	for (i = 0; i < NR_PHASES; i++)
		atomic_store(&s->peak[i], 0);
}

static void sampler_stop(struct sampler *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
}

static void *blocker_run(void *arg)
{
	struct blocker *b = arg;

	b->byte = *b->page;
	b->done_at = now();
	atomic_store_explicit(&b->done, true, memory_order_release);
	return NULL;
}

static void blocker_start(struct blocker *b, const uint8_t *page)
{
	memset(b, 0, sizeof(*b));
	b->page = page;
	if (pthread_create(&b->thread, NULL, blocker_run, b))
		die(1, "pthread_create failed");
}

/* Whether the thread blocked on its page: its fault waits on the uffd
 * (true), or it read the page at once (false: the page was in memory). */
static bool blocker_blocked(struct blocker *b, const struct client *cl)
{
	double deadline = now() + BLOCK_S;

	while (now() < deadline) {
		if (atomic_load_explicit(&b->done, memory_order_acquire))
			return false;
		if (client_faults_waiting(cl) > 0)
			return true;
		sleep_ns(POLL_NS);
	}
	die(1, "the thread neither blocked nor read its page in %d s",
	    BLOCK_S);
}

/* Wait for its read. Return: when it returned. */
static double blocker_wait(struct blocker *b)
{
	double deadline = now() + RESUME_S;

	while (!atomic_load_explicit(&b->done, memory_order_acquire)) {
		if (now() > deadline)
			die(1, "the blocked thread did not get its page within "
			    "%d s of the successor", RESUME_S);
		sleep_ns(POLL_NS / 5);
	}
	pthread_join(b->thread, NULL);
	return b->done_at;
}

static void *prober_run(void *arg)
{
	struct prober *p = arg;
	const struct client *cl = p->cl;
	double last = now(), t;
	size_t i = p->next;
	unsigned char in;

	while (!atomic_load(&p->stop) && !p->bad) {
		i = (i + 1) % cl->pages;
		if (mincore(cl->mem + i * PAGE, PAGE, &in) || (in & 1))
			continue;
		if (page_sum(cl->mem + i * PAGE) != cl->sums[i])
			p->bad = i + 1;
		t = now();
		if ((t - last) * 1e3 > p->stall_ms)
			p->stall_ms = (t - last) * 1e3;
		last = t;
		atomic_store(&p->last_ns, (uint64_t)(t * 1e9));
		sleep_ns(PROBE_NS);
	}
	return NULL;
}

static void prober_start(struct prober *p, const struct client *cl,
			 size_t first)
{
	memset(p, 0, sizeof(*p));
	p->cl = cl;
	p->next = first;
	if (pthread_create(&p->thread, NULL, prober_run, p))
		die(1, "pthread_create failed");
}

/* Stop it once it has read a page after @t (the successor serves it).
 * Return: its longest wait, ms. */
static double prober_stop(struct prober *p, double t)
{
	double deadline = now() + RESUME_S;

	while ((double)atomic_load(&p->last_ns) / 1e9 <= t && !p->bad) {
		if (now() > deadline)
			die(1, "the prober got no page within %d s of the "
			    "successor", RESUME_S);
		sleep_ns(POLL_NS);
	}
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	if (p->bad) {
		client_explain(p->cl, p->bad - 1);
		die(3, "DATA MISMATCH: the prober's page %zu", p->bad - 1);
	}
	return p->stall_ms;
}

/*****************
 * One restart
 *****************/

/* Stop the daemon (SIGKILL for a crash, SIGTERM for a handover), block a
 * thread on a stored page in the gap, start the successor, and time it;
 * a prober reads stored pages throughout. */
static void restart_once(enum mode m, const struct opts *o,
			 struct client *cl, struct sample *r)
{
	size_t page = client_stored_page(cl);
	double t_sig, t_exit, t_fork, t_ready, t_page;
	uint64_t limit = 0;
	struct prober p;
	struct blocker b;
	bool blocked;

	prober_start(&p, cl, page + cl->pages / 2);
	t_sig = now();
	kill(dmn.pid, m == M_CRASH ? SIGKILL : SIGTERM);
	t_exit = daemon_wait_exit(&dmn);

	blocker_start(&b, cl->mem + page * PAGE);
	blocked = blocker_blocked(&b, cl);

	t_fork = now();
	dmn.pid = daemon_spawn(&dmn, o);
	t_ready = daemon_wait_ready(&dmn);
	r->cpu_ms = daemon_cpu_ms(dmn.pid);
	t_page = blocker_wait(&b);
	r->stall_ms = prober_stop(&p, t_ready);
	if (page_sum(cl->mem + page * PAGE) != cl->sums[page]) {
		client_explain(cl, page);
		die(3, "DATA MISMATCH: the blocked thread's page %zu", page);
	}
	r->served = client_served(cl, &limit);
	r->budget_kept = r->served && limit == o->budget;
	r->stop_ms = (t_exit - t_sig) * 1e3;
	r->ready_ms = (t_ready - t_fork) * 1e3;
	r->resume_ms = blocked ? (t_page - t_fork) * 1e3 : NAN;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of the values of @v[0..@n) that are not NAN; NAN if none. */
static double median(double *v, int n)
{
	int i, k = 0;

	for (i = 0; i < n; i++)
		if (!isnan(v[i]))
			v[k++] = v[i];
	if (!k)
		return NAN;
	qsort(v, (size_t)k, sizeof(*v), cmp_double);
	return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

/* --runs restarts in mode @m (fewer if a successor no longer serves the
 * client: a stop that handed every page back), then every page read
 * back; the medians into @f. */
static void restart_mode(enum mode m, const struct opts *o,
			 struct client *cl, struct sampler *s,
			 struct figures *f)
{
	double stop[o->runs], ready[o->runs], resume[o->runs], cpu[o->runs];
	double stall[o->runs];
	struct sample r;
	int i;

	sampler_reset(s);
	f->budget_kept = true;
	for (i = 0; i < o->runs; i++) {
		sampler_phase(s, PH_GAP);
		restart_once(m, o, cl, &r);
		sampler_phase(s, PH_AFTER);
		printf("sample mode=%s run=%d stop_ms=%.1f ready_ms=%.1f "
		       "resume_ms=%.1f stall_ms=%.1f cpu_ms=%.1f served=%d "
		       "budget_kept=%d\n", mode_name[m], i + 1, r.stop_ms,
		       r.ready_ms, r.resume_ms, r.stall_ms, r.cpu_ms, r.served,
		       r.budget_kept);
		fflush(stdout);
		stop[i] = r.stop_ms;
		ready[i] = r.ready_ms;
		cpu[i] = r.cpu_ms;
		resume[i] = r.resume_ms;
		stall[i] = r.stall_ms;
		f->blocked += !isnan(r.resume_ms);
		f->budget_kept &= r.budget_kept;
		f->served = r.served;
		f->runs = i + 1;
		if (!r.served)
			break;
	}
	f->verify_s = client_verify(cl, mode_name[m]);
	sampler_phase(s, PH_IDLE);
	if (f->served && !f->budget_kept)
		client_set_budget(cl, o->budget);
	f->first_stop_ms = stop[0];
	f->stop_ms = median(stop, f->runs);
	f->cpu_ms = median(cpu, f->runs);
	f->ready_ms = median(ready, f->runs);
	f->resume_ms = median(resume, f->runs);
	f->stall_ms = median(stall, f->runs);
	f->peak[PH_GAP] = atomic_load(&s->peak[PH_GAP]);
	f->peak[PH_AFTER] = atomic_load(&s->peak[PH_AFTER]);
}

/*****************
 * One size, the table, the options
 *****************/

static void print_result(uint64_t size, enum mode m, const struct figures *f)
{
	printf("result size_mib=%" PRIu64 " mode=%s runs=%d "
	       "first_stop_ms=%.1f stop_ms=%.1f ready_ms=%.1f resume_ms=%.1f "
	       "stall_ms=%.1f cpu_ms=%.1f blocked=%d served=%d budget_kept=%d "
	       "gap_peak_mib=%.1f after_peak_mib=%.1f verify_s=%.1f\n",
	       size / MIB, mode_name[m], f->runs, f->first_stop_ms,
	       f->stop_ms, f->ready_ms, f->resume_ms, f->stall_ms, f->cpu_ms,
	       f->blocked,
	       f->served, f->budget_kept,
	       (double)f->peak[PH_GAP] / MIB,
	       (double)f->peak[PH_AFTER] / MIB, f->verify_s);
	fflush(stdout);
}

/* Read every page back before any restart: how far over its budget the
 * client goes in normal operation, to compare the read-backs after the
 * restarts with. */
static void read_baseline(struct client *cl, struct sampler *s,
			  struct size_figures *sf)
{
	sampler_reset(s);
	sampler_phase(s, PH_BASE);
	sf->base_s = client_verify(cl, "fill");
	sampler_phase(s, PH_IDLE);
	sf->base_peak = atomic_load(&s->peak[PH_BASE]);
}

static void run_size(const struct opts *o, uint64_t size,
		     struct size_figures *sf)
{
	struct figures *fig = sf->mode;
	struct client cl;
	struct sampler s;
	char label[32];
	double t0, fill_s, settle_s;
	bool settled = false;
	int m;

	size_label(size, label, sizeof(label));
	daemon_prepare(&dmn, o, size);
	dmn.pid = daemon_spawn(&dmn, o);
	daemon_wait_ready(&dmn);
	client_open(&cl, &dmn, size, o->budget);
	sampler_start(&s, cl.memfd);
	t0 = now();
	client_fill(&cl);
	fill_s = now() - t0;
	settle_s = daemon_wait_stored(&dmn, size);
	note("%s: filled in %.1f s, %s stored %.1f s later", label, fill_s,
	     label, settle_s);
	read_baseline(&cl, &s, sf);
	note("%s: read back before any restart in %.1f s", label, sf->base_s);
	printf("result size_mib=%" PRIu64 " mode=none verify_s=%.1f "
	       "peak_mib=%.1f\n", size / MIB, sf->base_s,
	       (double)sf->base_peak / MIB);
	for (m = 0; m < NR_MODES; m++) {
		if (!o->mode[m])
			continue;
		if (!settled) {
			settle_s = daemon_wait_stored(&dmn, size);
			note("%s: stored again after %.1f s", label, settle_s);
		}
		restart_mode(m, o, &cl, &s, &fig[m]);
		note("%s %s: read back intact in %.1f s%s", label,
		     mode_name[m], fig[m].verify_s, !fig[m].served ?
		     "; the successor does not serve the client" :
		     !fig[m].budget_kept ?
		     "; the successor had lost the budget: set again" : "");
		print_result(size, m, &fig[m]);
		settled = false;
	}
	sampler_stop(&s);
	client_close(&cl);
	kill(dmn.pid, SIGTERM);
	daemon_wait_exit(&dmn);
	remove_tree(dmn.dir);
	memset(&dmn, 0, sizeof(dmn));
}

static void print_ms(double ms)
{
	if (isnan(ms))
		printf(" %15s", "-");
	else
		printf(" %15.1f", ms);
}

static void print_ratio(double last, double first)
{
	if (isnan(last) || isnan(first) || first <= 0)
		printf(" %15s", "-");
	else
		printf(" %15.2f", last / first);
}

/* "AMD EPYC, 2 CPUs, kernel 6.1.0" */
static void print_machine(void)
{
	char line[256], model[128] = "unknown CPU", *p;
	FILE *f = fopen("/proc/cpuinfo", "re");
	char release[128] = "?";

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) || !(p = strchr(line, ':')))
			continue;
		snprintf(model, sizeof(model), "%s", p + 2);
		model[strcspn(model, "\n")] = '\0';
		break;
	}
	if (f)
		fclose(f);
	f = fopen("/proc/sys/kernel/osrelease", "re");
	if (f && fgets(release, sizeof(release), f))
		release[strcspn(release, "\n")] = '\0';
	if (f)
		fclose(f);
	printf("machine: %s, %ld CPUs, %.1f GiB, kernel %s\n", model,
	       sysconf(_SC_NPROCESSORS_ONLN),
	       (double)size_ram_bytes() / GIB, release);
}

/* "@a/@b" right-aligned in @width columns; "-" for a NAN. */
static void print_pair(double a, double b, int width)
{
	char cell[48];

	if (isnan(a) || isnan(b))
		snprintf(cell, sizeof(cell), "-");
	else
		snprintf(cell, sizeof(cell), "%.1f/%.1f", a, b);
	printf(" %*s", width, cell);
}

static void print_times(const struct opts *o, const struct size_figures *sf)
{
	const struct figures *a = sf[0].mode, *z = sf[o->nr_sizes - 1].mode;
	char label[80], first[32];
	int i;

	printf("ms: ready = the successor's fork to its first STATUS "
	       "answered; stall = the\nlongest a client reading stored pages "
	       "throughout waited for one (from before\nthe signal to its "
	       "first page from the successor); both the median of %d\n"
	       "restarts; stop = SIGTERM to the old daemon's exit, the first "
	       "restart's (the\ndaemon that had stored every page itself)\n",
	       o->runs);
	printf("%-16s %15s %15s %15s %15s %15s\n", "stored", "crash ready",
	       "crash stall", "handover stop", "handover ready",
	       "handover stall");
	for (i = 0; i < o->nr_sizes; i++) {
		printf("%-16s", size_label(o->sizes[i], label, sizeof(label)));
		print_ms(sf[i].mode[M_CRASH].ready_ms);
		print_ms(sf[i].mode[M_CRASH].stall_ms);
		print_ms(sf[i].mode[M_HANDOVER].first_stop_ms);
		print_ms(sf[i].mode[M_HANDOVER].ready_ms);
		print_ms(sf[i].mode[M_HANDOVER].stall_ms);
		printf("\n");
	}
	if (o->nr_sizes < 2)
		return;
	size_label(o->sizes[o->nr_sizes - 1], label, sizeof(label));
	size_label(o->sizes[0], first, sizeof(first));
	snprintf(label + strlen(label), sizeof(label) - strlen(label), " / %s",
		 first);
	printf("%-16s", label);
	print_ratio(z[M_CRASH].ready_ms, a[M_CRASH].ready_ms);
	print_ratio(z[M_CRASH].stall_ms, a[M_CRASH].stall_ms);
	print_ratio(z[M_HANDOVER].first_stop_ms, a[M_HANDOVER].first_stop_ms);
	print_ratio(z[M_HANDOVER].ready_ms, a[M_HANDOVER].ready_ms);
	print_ratio(z[M_HANDOVER].stall_ms, a[M_HANDOVER].stall_ms);
	printf("  (flat: about 1)\n");
}

static void print_stops(const struct opts *o, const struct size_figures *sf)
{
	char label[32];
	int i;

	printf("\nthe old daemon's stop, ms (signal to exit): the first "
	       "restart's / the median;\nthe successor's CPU time until "
	       "ready, ms (all its threads; less sensitive to\nthe machine's "
	       "load than ready), the median\n");
	printf("%-16s %19s %19s %15s %15s\n", "stored", "crash stop",
	       "handover stop", "crash cpu", "handover cpu");
	for (i = 0; i < o->nr_sizes; i++) {
		const struct figures *c = &sf[i].mode[M_CRASH];
		const struct figures *h = &sf[i].mode[M_HANDOVER];

		printf("%-16s", size_label(o->sizes[i], label, sizeof(label)));
		print_pair(c->first_stop_ms, c->stop_ms, 19);
		print_pair(h->first_stop_ms, h->stop_ms, 19);
		print_ms(c->cpu_ms);
		print_ms(h->cpu_ms);
		printf("\n");
	}
}

static void print_memory(const struct opts *o, const struct size_figures *sf)
{
	char label[32];
	int i, m, marks = 0;

	printf("\nthe region's bytes in memory, peak MiB (budget %" PRIu64
	       "): a read-back of every page\nbefore any restart; in the "
	       "gaps (signal to resume) / after them (to the end of\nthe "
	       "read-back after the last restart)\n", o->budget / MIB);
	printf("%-16s %19s %19s %19s\n", "stored", "read-back",
	       "crash gap/after", "handover gap/after");
	for (i = 0; i < o->nr_sizes; i++) {
		printf("%-16s", size_label(o->sizes[i], label, sizeof(label)));
		printf(" %19.1f", (double)sf[i].base_peak / MIB);
		for (m = 0; m < NR_MODES; m++) {
			const struct figures *f = &sf[i].mode[m];
			char cell[48] = "-";

			if (o->mode[m]) {
				snprintf(cell, sizeof(cell), "%.1f/%.1f%s",
					 (double)f->peak[PH_GAP] / MIB,
					 (double)f->peak[PH_AFTER] / MIB,
					 !f->served ? "+" :
					 !f->budget_kept ? "*" : "");
				marks |= !f->served ? 2 :
					 !f->budget_kept ? 1 : 0;
			}
			printf(" %19s", cell);
		}
		printf("\n");
	}
	if (marks & 1)
		printf("*: the successor did not hold the client to its budget "
		       "(it had none for it\n   after the restart; the "
		       "benchmark set it again after the read-back)\n");
	if (marks & 2)
		printf("+: the successor did not serve the client (its regions "
		       "were handed back by the\n   stop: plain memory "
		       "since)\n");
}

static void print_table(const struct opts *o, const struct size_figures *sf)
{
	printf("\nrestart of uzswapd on the same state directory, against "
	       "the bytes stored\n");
	print_machine();
	printf("data: random pages (incompressible, kept raw: bytes stored "
	       "= bytes of data); budget %" PRIu64 " MiB; write-back %s\n",
	       o->budget / MIB, o->writeback ? "on (half of it in the "
	       "backing file)" : "off (all in the pool)");
	print_times(o, sf);
	print_stops(o, sf);
	print_memory(o, sf);
}

static __attribute__((noreturn)) void usage(int code)
{
	fprintf(stderr, "usage: restart [--uzswapd PATH] [--sizes LIST] "
		"[--budget MIB] [--tmp DIR]\n               [--modes "
		"crash,handover] [--writeback] [--runs N]\n");
	exit(code);
}

static void parse_sizes(struct opts *o, char *list)
{
	char *tok, *save = NULL;

	o->nr_sizes = 0;
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (o->nr_sizes == MAX_SIZES || size_parse(tok, 0, &v) ||
		    v < 16 * MIB || v % MIB) {
			fprintf(stderr, "restart: --sizes takes up to %d sizes "
				"of whole MiB, 16M or more\n", MAX_SIZES);
			usage(2);
		}
		o->sizes[o->nr_sizes++] = v;
	}
	if (!o->nr_sizes)
		usage(2);
}

static void parse_modes(struct opts *o, char *list)
{
	char *tok, *save = NULL;
	int m;

	memset(o->mode, 0, sizeof(o->mode));
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (m = 0; m < NR_MODES; m++)
			if (!strcmp(tok, mode_name[m]))
				break;
		if (m == NR_MODES) {
			fprintf(stderr, "restart: unknown mode %s\n", tok);
			usage(2);
		}
		o->mode[m] = true;
	}
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "uzswapd", required_argument, NULL, 'u' },
		{ "sizes", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "tmp", required_argument, NULL, 't' },
		{ "modes", required_argument, NULL, 'm' },
		{ "writeback", no_argument, NULL, 'w' },
		{ "runs", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char sizes[] = "256M,1G,4G", modes[] = "crash,handover";
	int opt;

	o->uzswapd = "../daemon/uzswapd";
	o->tmp = "/dev/shm";
	o->budget = 32 * MIB;
	o->runs = 3;
	parse_sizes(o, sizes);
	parse_modes(o, modes);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			o->uzswapd = optarg;
			break;
		case 's':
			parse_sizes(o, optarg);
			break;
		case 'b':
			o->budget = strtoull(optarg, NULL, 10) * MIB;
			if (o->budget < MIB)
				usage(2);
			break;
		case 't':
			o->tmp = optarg;
			break;
		case 'm':
			parse_modes(o, optarg);
			break;
		case 'w':
			o->writeback = true;
			break;
		case 'r':
			o->runs = atoi(optarg);
			if (o->runs < 1 || o->runs > 100)
				usage(2);
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (access(o->uzswapd, X_OK))
		die(1, "no uzswapd at %s (run me from the build tree's bench/ "
		    "directory after make, or give --uzswapd)", o->uzswapd);
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct size_figures sf[MAX_SIZES];
	struct sigaction sa = { .sa_handler = on_signal };
	struct opts o;
	size_t i;
	int n;

	memset(&o, 0, sizeof(o));
	parse_opts(&o, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	atexit(teardown);
	memset(sf, 0, sizeof(sf));
	for (n = 0; n < MAX_SIZES; n++)
		for (i = 0; i < NR_MODES; i++)
			sf[n].mode[i] = (struct figures){
				.stop_ms = NAN, .ready_ms = NAN,
				.resume_ms = NAN, .cpu_ms = NAN,
				.stall_ms = NAN, .first_stop_ms = NAN };
	for (n = 0; n < o.nr_sizes; n++)
		run_size(&o, o.sizes[n], &sf[n]);
	print_table(&o, sf);
	return 0;
}
