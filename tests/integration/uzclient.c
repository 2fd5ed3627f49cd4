/*
 * uzclient.c - a real client program of uzswapd for the integration tests:
 * it links libuzswap (and nothing from the daemon) and uses it the way an
 * application does.
 *
 * Usage: uzclient COMMAND [ARGS]   (socket from $UZSWAP_SOCKET)
 *
 *   basic MIB        alloc, check zeros, write, read back, free; twice
 *   adopt MIB        adopt a buffer (data, zero pages, a partial page
 *                    pattern) and keep its contents; bad adoptions refused
 *   threads N MIB    N threads fault the same region at once: reads, then
 *                    interleaved writes to the same pages, then own pages
 *   kernel-io        system calls reading from / writing to fresh region
 *                    pages: read(2)/pread(2) from a file, recv(2),
 *                    write(2) to a pipe, process_vm_readv/writev,
 *                    /proc/self/mem
 *   stats            uzswap_stats() values: regions, registered, resident
 *                    after touching N pages, faults, across connections
 *   api              refused arguments, SET_LIMIT, COLD/WILLNEED advice,
 *                    -ECHILD after fork()
 *   multi            two connections in one process; closing one leaves
 *                    the other's regions working
 *   spin MIB         alloc/write/verify/free in a loop; stdin commands:
 *                    "report" (prints "rounds N"), "stop" or end of file;
 *                    prints "ready" after the first round
 *   hold MIB         alloc, write the first half, print "ready", read a
 *                    command: "alive" (a daemon serves: the same, or a
 *                    successor that took the process over), "drained"
 *                    (the region was drained, then the daemon stopped:
 *                    calls wait for a successor, in vain; the memory is
 *                    plain) or "restarted" (a daemon without this
 *                    process's state serves: it refuses to resume, and
 *                    only the resident first half may be touched); then
 *                    verify, write and verify what may be touched
 *   block MIB        alloc, print "ready", wait for a line, then write
 *                    every page (blocks while the daemon is stopped),
 *                    verify, print "done"; then "alive", verify and free
 *   crash MIB        alloc, write, abort()
 *   reserve MIB N    alloc N regions of MIB each until one is refused,
 *                    write and check the first page of each, print
 *                    "allocated K" and, if one was refused, "refused:
 *                    ERROR"; free them
 *   pager            driven by commands on stdin, one reply line each:
 *                    set the budget, allocate regions of compressible,
 *                    incompressible, same-filled or sparse pages, verify,
 *                    rewrite, COLD/WILLNEED advice, free, stats (see
 *                    cmd_pager())
 *   rmw THREADS MIB LIMIT_MIB SECONDS
 *                    THREADS writers doing checksummed read-modify-write
 *                    of the pages of a MIB region under a LIMIT_MIB budget
 *                    for SECONDS (0: until a line or end of file on
 *                    stdin); every lost, stale, torn or zeroed write is
 *                    caught (see cmd_rmw())
 *   fork MIB LIMIT_MIB [over]
 *                    an inherited region (UZSWAP_ALLOC_INHERIT) under a
 *                    LIMIT_MIB budget, of written, same-filled and never
 *                    touched pages, partly discarded (reads zeros); then
 *                    children made by fork() check their private copies
 *                    while the parent rewrites its own, rewrite theirs
 *                    (and fork a grandchild that checks its copy of
 *                    that), two at once, one exec()s; each side checks that it
 *                    sees its own writes only (see cmd_fork()); each
 *                    child's RssShmem is within 1.1 x the budget, unless
 *                    "over" says the pool takes no pages
 *   fork-hold MIB LIMIT_MIB
 *                    the same region, one child: both hold their copies
 *                    and print "ready" (the parent, once the child is
 *                    ready); on a line "alive" each checks and rewrites
 *                    its own, the parent waits for the child and prints
 *                    "done" (a daemon restarted meanwhile serves both)
 *
 * Exit status: 0 only when every check passed; 1 when a check failed
 * (what and where on stderr); 2 for a usage error. Every data check uses
 * patterns whose 64-bit words are never zero, derived from the pid, a
 * seed and the word's index, so a page read back as zeros (or as another
 * client's page) is always caught.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/client/uzswap.h"
#include "lib/common/fullio.h"
#include "lib/common/macros.h"

#define MIB		(1024ul * 1024)
#define PAGE		4096ul
#define WORDS_PER_PAGE	(PAGE / sizeof(uint64_t))

static const char *cmd = "uzclient";
static int failures;

/*****************
 * Reporting
 *****************/

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uzclient %s [%d]: FAIL: ", cmd, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

/* Fatal: the rest of the command cannot run. */
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uzclient %s [%d]: FATAL: ", cmd, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CHECK(cond, ...)				\
	do {						\
		if (!(cond))				\
			fail(__VA_ARGS__);		\
	} while (0)

/* A call returning 0 or -errno that must succeed. */
#define MUST(call)							\
	do {								\
		int must_ret_ = (call);					\
		if (must_ret_)						\
			die("%s: %s (%s)", #call, strerror(-must_ret_),	\
			    uzswap_strerror(must_ret_));		\
	} while (0)

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*****************
 * Patterns
 *****************/

/* The word at index @i of a buffer filled with @seed: never zero. */
static uint64_t pat(uint64_t seed, size_t i)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + i + 1;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x | 0x8000000000000001ull;
}

/* A seed unique to this process and @n. */
static uint64_t seed_of(uint64_t n)
{
	return ((uint64_t)getpid() << 32) ^ n;
}

/* Fill words [first, first + n) of @p (word indices from the start of
 * the region) with @seed. */
static void fill_words(void *p, size_t first, size_t n, uint64_t seed)
{
	volatile uint64_t *w = p;
	size_t i;

	for (i = first; i < first + n; i++)
		w[i] = pat(seed, i);
}

static void fill(void *p, size_t len, uint64_t seed)
{
	fill_words(p, 0, len / sizeof(uint64_t), seed);
}

/*
 * Check words [first, first + n) against @seed; reports the first bad word
 * (whether it reads zero) and how many are bad. Return: bad words.
 */
static size_t check_words(const char *what, const void *p, size_t first,
			  size_t n, uint64_t seed)
{
	const volatile uint64_t *w = p;
	size_t i, bad = 0, first_bad = 0;
	uint64_t got = 0;

	for (i = first; i < first + n; i++) {
		uint64_t v = w[i];

		if (v != pat(seed, i)) {
			if (!bad) {
				first_bad = i;
				got = v;
			}
			bad++;
		}
	}
	if (bad)
		fail("%s: %zu of %zu words wrong; first at byte %#zx (page "
		     "%zu): %#" PRIx64 " instead of %#" PRIx64 "%s", what,
		     bad, n, first_bad * 8, first_bad * 8 / PAGE, got,
		     pat(seed, first_bad), got ? "" : " (READS ZERO)");
	return bad;
}

static size_t check(const char *what, const void *p, size_t len,
		    uint64_t seed)
{
	return check_words(what, p, 0, len / sizeof(uint64_t), seed);
}

/* Check that [p, p + len) reads zero (fresh, never written memory). */
static size_t check_zero(const char *what, const void *p, size_t len)
{
	const volatile uint64_t *w = p;
	size_t i, n = len / sizeof(uint64_t);

	for (i = 0; i < n; i++) {
		if (w[i]) {
			fail("%s: fresh memory not zero at byte %#zx: %#" PRIx64,
			     what, i * 8, w[i]);
			return 1;
		}
	}
	return 0;
}

/*****************
 * Helpers
 *****************/

static unsigned long parse_ul(const char *s, const char *what,
			      unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > max) {
		fprintf(stderr, "uzclient: bad %s '%s' (1..%lu)\n", what, s,
			max);
		exit(2);
	}
	return v;
}

static uzswap_t *connect_or_die(void)
{
	uzswap_t *c = uzswap_connect(NULL);

	if (!c)
		die("uzswap_connect: %s (%s)", strerror(errno),
		    uzswap_strerror(errno));
	return c;
}

static void *alloc_or_die(uzswap_t *c, size_t len, const char *name)
{
	void *p = uzswap_alloc(c, len, name);

	if (!p)
		die("uzswap_alloc(%zu): %s (%s)", len, strerror(errno),
		    uzswap_strerror(errno));
	if ((uintptr_t)p & (PAGE - 1))
		die("uzswap_alloc returned unaligned %p", p);
	return p;
}

/* alloc_or_die(), asking again while the daemon restarts under the
 * REGISTER (-ECONNRESET: its outcome unknown, the library undid it). */
static void *alloc_across_restarts(uzswap_t *c, size_t len, const char *name)
{
	int tries = 10;
	void *p;

	while (!(p = uzswap_alloc(c, len, name)) && errno == ECONNRESET &&
	       --tries)
		;
	return p ? p : alloc_or_die(c, len, name);
}

static void stats_or_die(uzswap_t *c, struct uzswap_stats *st)
{
	MUST(uzswap_stats(c, st));
}

static void print_stats(const char *when, const struct uzswap_stats *st)
{
	fprintf(stderr,
		"uzclient %s [%d]: stats %s: regions %" PRIu64
		" registered %" PRIu64 " resident %" PRIu64 " faults %" PRIu64
		" limit %" PRIu64 " stored %" PRIu64 " evictions %" PRIu64 "\n",
		cmd, (int)getpid(), when, st->regions, st->registered_bytes,
		st->resident_bytes, st->faults, st->limit_bytes,
		st->stored_pages, st->evictions);
}

/* Read a command line from stdin (blocking); NULL at end of file. */
static char *read_command(char *buf, size_t size)
{
	size_t n;

	if (!fgets(buf, (int)size, stdin))
		return NULL;
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return buf;
}

/*****************
 * basic
 *****************/

static int cmd_basic(int argc, char **argv)
{
	size_t len;
	uzswap_t *c;
	int round;

	if (argc != 1)
		return 2;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	c = connect_or_die();
	for (round = 0; round < 2; round++) {
		uint8_t *p = alloc_or_die(c, len, "basic");
		uint64_t seed = seed_of((uint64_t)round);

		check_zero("fresh region", p, len);
		fill(p, len, seed);
		check("read back", p, len, seed);
		/* rewrite every other page, as an application would */
		for (size_t off = 0; off < len; off += 2 * PAGE)
			fill_words(p, off / 8, WORDS_PER_PAGE, seed + 1);
		for (size_t off = 0; off < len; off += PAGE)
			check_words("rewrite", p, off / 8, WORDS_PER_PAGE,
				    (off / PAGE) % 2 ? seed : seed + 1);
		CHECK(uzswap_free(c, p) == 0, "uzswap_free failed");
	}
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * adopt
 *****************/

static int cmd_adopt(int argc, char **argv)
{
	size_t len, npages, i;
	uint64_t seed = seed_of(7);
	struct uzswap_stats st;
	uint8_t *buf;
	uzswap_t *c;
	void *p;

	if (argc != 1)
		return 2;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	npages = len / PAGE;
	c = connect_or_die();

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	/* pages 0 mod 3: data; 1 mod 3: all zero, never touched;
	 * 2 mod 3: one word of data at the end of the page */
	for (i = 0; i < npages; i++) {
		if (i % 3 == 0)
			fill_words(buf, i * WORDS_PER_PAGE, WORDS_PER_PAGE,
				   seed);
		else if (i % 3 == 2)
			fill_words(buf, (i + 1) * WORDS_PER_PAGE - 1, 1, seed);
	}

	p = uzswap_adopt(c, buf, len, "adopted");
	if (p != buf)
		die("uzswap_adopt: %p, %s", p, strerror(errno));

	for (i = 0; i < npages; i++) {
		size_t w0 = i * WORDS_PER_PAGE;

		if (i % 3 == 0) {
			check_words("adopted data page", buf, w0,
				    WORDS_PER_PAGE, seed);
		} else if (i % 3 == 1) {
			check_zero("adopted zero page", buf + i * PAGE, PAGE);
		} else {
			check_zero("adopted partial page",
				   buf + i * PAGE, PAGE - 8);
			check_words("adopted partial page", buf,
				    w0 + WORDS_PER_PAGE - 1, 1, seed);
		}
	}
	stats_or_die(c, &st);
	CHECK(st.regions == 1 && st.registered_bytes == len,
	      "after adopt: regions %" PRIu64 " registered %" PRIu64,
	      st.regions, st.registered_bytes);
	/* pages holding data are in the memfd; zero pages are holes */
	CHECK(st.resident_bytes >= (npages - npages / 3) * PAGE &&
		      st.resident_bytes <= len,
	      "after adopt: resident %" PRIu64 " of %zu bytes (%zu pages "
	      "hold data)", st.resident_bytes, len, npages - npages / 3);

	/* the adopted region is a region: write everything, read back */
	fill(buf, len, seed + 1);
	check("adopted region rewritten", buf, len, seed + 1);

	/* adopting it again, or other memory, is refused; data unharmed */
	errno = 0;
	CHECK(!uzswap_adopt(c, buf, len, "again") && errno == EINVAL,
	      "adopting a region again: %s", strerror(errno));
	CHECK(!uzswap_adopt(c, buf + 1, PAGE, "odd") && errno == EINVAL,
	      "adopting an unaligned address: %s", strerror(errno));
	{
		char stackbuf[3 * PAGE];
		void *a = (void *)(((uintptr_t)stackbuf + PAGE - 1) &
				   ~(PAGE - 1));

		errno = 0;
		CHECK(!uzswap_adopt(c, a, PAGE, "stack") && errno == EINVAL,
		      "adopting the stack: %s", strerror(errno));
	}
	{
		void *ro = mmap(NULL, PAGE, PROT_READ,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		errno = 0;
		CHECK(!uzswap_adopt(c, ro, PAGE, "ro") && errno == EINVAL,
		      "adopting read-only memory: %s", strerror(errno));
		munmap(ro, PAGE);
	}
	check("adopted region after refusals", buf, len, seed + 1);
	CHECK(uzswap_free(c, buf) == 0, "uzswap_free of an adopted region");

	/* an adopted buffer of only zero pages */
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	if (uzswap_adopt(c, buf, len, "zeros") != buf)
		die("uzswap_adopt (zeros): %s", strerror(errno));
	check_zero("adopted all-zero buffer", buf, len);
	fill(buf, len, seed + 2);
	check("adopted all-zero buffer written", buf, len, seed + 2);
	uzswap_disconnect(c);	/* unmaps it */
	return failures ? 1 : 0;
}

/*****************
 * threads
 *****************/

struct thr {
	pthread_t tid;
	unsigned int idx;
	unsigned int n;
	uint8_t *r1, *r2;
	size_t len;
	pthread_barrier_t *bar;
	uint64_t seed;
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	size_t npages = t->len / PAGE, words = t->len / 8, i;
	volatile uint64_t *w2 = (volatile uint64_t *)t->r2;
	uint64_t sum = 0;

	/* 1: everybody reads every page of r1, in the same order, at once */
	pthread_barrier_wait(t->bar);
	for (i = 0; i < npages; i++)
		sum |= ((volatile uint64_t *)t->r1)[i * WORDS_PER_PAGE + t->idx];
	if (sum)
		fail("thread %u: fresh region read non-zero", t->idx);

	/* 2: everybody writes its words of every page of r2, at once: each
	 * page is faulted by all threads together, none may lose a write */
	pthread_barrier_wait(t->bar);
	for (i = t->idx; i < words; i += t->n)
		w2[i] = pat(t->seed, i);
	pthread_barrier_wait(t->bar);
	check("r2 interleaved words", t->r2, t->len, t->seed);

	/* 3: own pages of r1, then everybody checks everything */
	for (i = t->idx; i < npages; i += t->n)
		fill_words(t->r1, i * WORDS_PER_PAGE, WORDS_PER_PAGE,
			   t->seed + 1);
	pthread_barrier_wait(t->bar);
	check("r1 pages of all threads", t->r1, t->len, t->seed + 1);
	return NULL;
}

static int cmd_threads(int argc, char **argv)
{
	struct thr thr[64];
	pthread_barrier_t bar;
	unsigned int n, i;
	size_t len;
	uzswap_t *c;
	uint8_t *r1, *r2;
	int ret;

	if (argc != 2)
		return 2;
	n = (unsigned int)parse_ul(argv[0], "N", 64);
	len = parse_ul(argv[1], "MIB", 4096) * MIB;
	c = connect_or_die();
	r1 = alloc_or_die(c, len, "threads-1");
	r2 = alloc_or_die(c, len, "threads-2");
	pthread_barrier_init(&bar, NULL, n);
	for (i = 0; i < n; i++) {
		thr[i] = (struct thr){ .idx = i, .n = n, .r1 = r1, .r2 = r2,
				       .len = len, .bar = &bar,
				       .seed = seed_of(11) };
		ret = pthread_create(&thr[i].tid, NULL, thread_main, &thr[i]);
		if (ret)
			die("pthread_create: %s", strerror(ret));
	}
	for (i = 0; i < n; i++)
		pthread_join(thr[i].tid, NULL);
	pthread_barrier_destroy(&bar);
	check("r2 after join", r2, len, seed_of(11));
	check("r1 after join", r1, len, seed_of(11) + 1);
	CHECK(uzswap_free(c, r1) == 0, "uzswap_free r1");
	CHECK(uzswap_free(c, r2) == 0, "uzswap_free r2");
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * kernel-io
 *****************/

/* A thread writing @len bytes of @buf to @fd; @err: 0 or -errno. */
struct sender {
	int fd;
	const uint8_t *buf;
	size_t len;
	int err;
};

static void *send_thread(void *arg)
{
	struct sender *s = arg;

	s->err = fullio_write(s->fd, s->buf, s->len);
	close(s->fd);
	return NULL;
}

/* Write @len bytes from @src (a region) into a pipe with write(2) while
 * a thread drains it into @dst. */
static int through_pipe(const void *src, void *dst, size_t len)
{
	struct sender s;
	pthread_t tid;
	int p[2], ret;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	/* the writer is the region side: the kernel reads the region */
	s = (struct sender){ .fd = p[1], .buf = src, .len = len };
	ret = pthread_create(&tid, NULL, send_thread, &s);
	if (ret) {
		close(p[0]);
		close(p[1]);
		return -ret;
	}
	ret = fullio_read(p[0], dst, len);
	pthread_join(tid, NULL);
	close(p[0]);
	return ret ? ret : s.err;
}

static int cmd_kernel_io(int argc, char **argv)
{
	const size_t len = 4 * MIB;
	uint64_t seed = seed_of(21);
	char path[] = "/tmp/uzclient-kio.XXXXXX";
	uint8_t *src, *tmp, *r;
	struct sender s;
	pthread_t tid;
	uzswap_t *c;
	int fd, sv[2], ret;

	if (argc != 0)
		return 2;
	c = connect_or_die();
	src = malloc(len);
	tmp = malloc(len);
	if (!src || !tmp)
		die("malloc");
	fill(src, len, seed);

	/* 1. read(2) from a file into fresh pages: the kernel's copy to
	 * the region faults in kernel mode on every page */
	fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp: %s", strerror(errno));
	unlink(path);
	if (fullio_write(fd, src, len) || lseek(fd, 0, SEEK_SET) != 0)
		die("writing the source file: %s", strerror(errno));
	r = alloc_or_die(c, len, "kio-read");
	ret = fullio_read(fd, r, len);
	CHECK(ret == 0, "read(2) into a fresh region: %s", strerror(-ret));
	check("read(2) into a fresh region", r, len, seed);

	/* 2. pread(2) in odd-sized pieces straddling pages of a fresh
	 * region */
	{
		uint8_t *r2 = alloc_or_die(c, len, "kio-pread");
		size_t off = 0, piece = 3 * PAGE + 123;

		while (off < len) {
			size_t n = len - off < piece ? len - off : piece;
			ssize_t got = pread(fd, r2 + off, n, (off_t)off);

			if (got != (ssize_t)n) {
				fail("pread(2) into a fresh region at %zu: %zd"
				     " (%s)", off, got, strerror(errno));
				break;
			}
			off += n;
		}
		check("pread(2) into a fresh region", r2, len, seed);
		CHECK(uzswap_free(c, r2) == 0, "uzswap_free");
	}
	close(fd);

	/* 3. write(2) from the region (resident now) to a pipe */
	memset(tmp, 0, len);
	ret = through_pipe(r, tmp, len);
	CHECK(ret == 0, "write(2) from a region to a pipe: %s",
	      strerror(-ret));
	check("write(2) from a region to a pipe", tmp, len, seed);

	/* 4. write(2) from fresh pages: the kernel's read of the region
	 * faults; half written by the program, half never touched */
	{
		uint8_t *r3 = alloc_or_die(c, len, "kio-write");

		fill_words(r3, 0, len / 16, seed + 3);
		memset(tmp, 0xa5, len);
		ret = through_pipe(r3, tmp, len);
		CHECK(ret == 0, "write(2) from fresh region pages: %s",
		      strerror(-ret));
		check_words("write(2) from written pages", tmp, 0, len / 16,
			    seed + 3);
		check_zero("write(2) from never-touched pages", tmp + len / 2,
			   len / 2);
		/* the region itself still holds what was written */
		check_words("region after write(2)", r3, 0, len / 16,
			    seed + 3);
		check_zero("region after write(2)", r3 + len / 2, len / 2);
		CHECK(uzswap_free(c, r3) == 0, "uzswap_free");
	}

	/* 5. recv(2) from a socket into fresh pages */
	{
		uint8_t *r4 = alloc_or_die(c, len, "kio-recv");
		size_t off = 0;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			die("socketpair: %s", strerror(errno));
		s = (struct sender){ .fd = sv[1], .buf = src, .len = len };
		ret = pthread_create(&tid, NULL, send_thread, &s);
		if (ret)
			die("pthread_create: %s", strerror(ret));
		while (off < len) {
			ssize_t n = recv(sv[0], r4 + off, len - off,
					 MSG_WAITALL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fail("recv(2) into a fresh region: %zd (%s)",
				     n, strerror(errno));
				break;
			}
			off += (size_t)n;
		}
		pthread_join(tid, NULL);
		close(sv[0]);
		check("recv(2) into a fresh region", r4, len, seed);
		CHECK(uzswap_free(c, r4) == 0, "uzswap_free");
	}

	/* 6. process_vm_writev/readv (get_user_pages with retry, as a
	 * remote reader would use it) into and from fresh pages */
	{
		uint8_t *r5 = alloc_or_die(c, len, "kio-vm");
		struct iovec local, remote;
		ssize_t n;

		local = (struct iovec){ src, len / 2 };
		remote = (struct iovec){ r5, len / 2 };
		n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
		CHECK(n == (ssize_t)(len / 2),
		      "process_vm_writev to fresh pages: %zd (%s)", n,
		      strerror(errno));
		check_words("written by process_vm_writev", r5, 0, len / 16,
			    seed);
		memset(tmp, 0xa5, len);
		local = (struct iovec){ tmp, len };
		remote = (struct iovec){ r5, len };
		n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		CHECK(n == (ssize_t)len, "process_vm_readv: %zd (%s)", n,
		      strerror(errno));
		check_words("read by process_vm_readv", tmp, 0, len / 16,
			    seed);
		check_zero("read by process_vm_readv (never touched)",
			   tmp + len / 2, len / 2);
		CHECK(uzswap_free(c, r5) == 0, "uzswap_free");
	}

	/* 7. /proc/self/mem (what a debugger uses): the kernel reaches the
	 * pages with get_user_pages without retry, which userfaultfd cannot
	 * serve: a page that is not in memory fails with EIO. It must never
	 * hang or give wrong data; pages in memory read and write normally. */
	{
		uint8_t *r6 = alloc_or_die(c, 16 * PAGE, "kio-procmem");
		uint64_t word = pat(seed, 0), got = 0;
		ssize_t n;

		fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			die("open /proc/self/mem: %s", strerror(errno));
		n = pread(fd, &got, 8, (off_t)(uintptr_t)r6);
		CHECK((n == 8 && got == 0) || (n < 0 && errno == EIO),
		      "/proc/self/mem read of a fresh page: %zd (%s), "
		      "%#" PRIx64, n, strerror(errno), got);
		n = pwrite(fd, &word, 8, (off_t)(uintptr_t)(r6 + PAGE));
		CHECK((n == 8 && ((uint64_t *)r6)[PAGE / 8] == word) ||
			      (n < 0 && errno == EIO),
		      "/proc/self/mem write to a fresh page: %zd (%s)", n,
		      strerror(errno));
		fill(r6, 16 * PAGE, seed + 4);
		n = pwrite(fd, &word, 8, (off_t)(uintptr_t)(r6 + 2 * PAGE));
		CHECK(n == 8, "/proc/self/mem write to a resident page: %zd "
		      "(%s)", n, strerror(errno));
		n = pread(fd, &got, 8, (off_t)(uintptr_t)(r6 + 2 * PAGE));
		CHECK(n == 8 && got == word, "/proc/self/mem read of a "
		      "resident page: %zd (%s), %#" PRIx64, n,
		      strerror(errno), got);
		close(fd);
		CHECK(uzswap_free(c, r6) == 0, "uzswap_free");
	}

	check("first region at the end", r, len, seed);
	CHECK(uzswap_free(c, r) == 0, "uzswap_free");
	free(src);
	free(tmp);
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * stats
 *****************/

static int cmd_stats(int argc, char **argv)
{
	const size_t len = 4 * MIB, npages = len / PAGE, touched = 8;
	uint64_t seed = seed_of(31), faults;
	struct uzswap_stats st;
	uzswap_t *c, *c2;
	uint8_t *a, *b, *b2, *buf;
	size_t i;

	if (argc != 0)
		return 2;
	c = connect_or_die();
	stats_or_die(c, &st);
	CHECK(st.regions == 0 && st.registered_bytes == 0 &&
		      st.resident_bytes == 0 && st.faults == 0,
	      "a new client has counters");
	CHECK(st.limit_bytes == 0 && st.evictions == 0 &&
		      st.stored_pages == 0 && st.compressed_bytes == 0,
	      "no eviction yet, but limit/evictions/stored are set");
	for (i = 0; i < 8; i++)
		CHECK(st.reserved[i] == 0, "reserved[%zu] = %" PRIu64, i,
		      st.reserved[i]);

	a = alloc_or_die(c, len, "stats-a");
	stats_or_die(c, &st);
	CHECK(st.regions == 1 && st.registered_bytes == len &&
		      st.resident_bytes == 0 && st.faults == 0,
	      "after alloc of %zu bytes", len);
	if (failures)
		print_stats("after alloc", &st);

	/* touch one page in each of @touched distant 256 KiB pieces */
	for (i = 0; i < touched; i++)
		fill_words(a, (i * (npages / touched) + 3) * WORDS_PER_PAGE,
			   WORDS_PER_PAGE, seed);
	stats_or_die(c, &st);
	CHECK(st.resident_bytes >= touched * PAGE &&
		      st.resident_bytes <= len,
	      "after touching %zu pages: resident %" PRIu64, touched,
	      st.resident_bytes);
	CHECK(st.faults >= 1 && st.faults <= touched,
	      "after touching %zu pages: faults %" PRIu64, touched,
	      st.faults);
	faults = st.faults;
	if (failures)
		print_stats("after touching", &st);

	/* touch all: every page resident, exactly */
	for (i = 0; i < npages; i++)
		if ((i - 3) % (npages / touched))
			fill_words(a, i * WORDS_PER_PAGE, WORDS_PER_PAGE,
				   seed);
	stats_or_die(c, &st);
	CHECK(st.resident_bytes == len, "all %zu pages touched: resident "
	      "%" PRIu64, npages, st.resident_bytes);
	CHECK(st.faults > faults && st.faults <= npages,
	      "all pages touched: faults %" PRIu64 " (before: %" PRIu64 ")",
	      st.faults, faults);
	/* reading resident pages faults no more */
	faults = st.faults;
	for (i = 0; i < npages; i++)
		check_words("stats-a", a, i * WORDS_PER_PAGE, WORDS_PER_PAGE,
			    seed);
	stats_or_die(c, &st);
	CHECK(st.faults == faults, "reading resident pages faulted: %"
	      PRIu64 " -> %" PRIu64, faults, st.faults);

	b = alloc_or_die(c, MIB, "stats-b");
	stats_or_die(c, &st);
	CHECK(st.regions == 2 && st.registered_bytes == len + MIB &&
		      st.resident_bytes == len,
	      "second region: regions %" PRIu64 " registered %" PRIu64
	      " resident %" PRIu64, st.regions, st.registered_bytes,
	      st.resident_bytes);

	/* a second connection of the same process: counters are the
	 * process's */
	c2 = connect_or_die();
	b2 = alloc_or_die(c2, MIB, "stats-c2");
	fill(b2, MIB, seed + 5);
	stats_or_die(c, &st);
	CHECK(st.regions == 3 && st.registered_bytes == len + 2 * MIB &&
		      st.resident_bytes == len + MIB,
	      "second connection: regions %" PRIu64 " registered %" PRIu64
	      " resident %" PRIu64, st.regions, st.registered_bytes,
	      st.resident_bytes);
	check("second connection's region", b2, MIB, seed + 5);
	uzswap_disconnect(c2);
	stats_or_die(c, &st);
	CHECK(st.regions == 2 && st.registered_bytes == len + MIB,
	      "second connection closed: regions %" PRIu64 " registered %"
	      PRIu64, st.regions, st.registered_bytes);

	CHECK(uzswap_free(c, b) == 0, "uzswap_free b");
	stats_or_die(c, &st);
	CHECK(st.regions == 1 && st.registered_bytes == len &&
		      st.resident_bytes == len,
	      "region freed: regions %" PRIu64 " registered %" PRIu64
	      " resident %" PRIu64, st.regions, st.registered_bytes,
	      st.resident_bytes);

	/* adopt: exactly the pages holding data are resident */
	buf = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	for (i = 0; i < 10; i++)
		fill_words(buf, i * 25 * WORDS_PER_PAGE, WORDS_PER_PAGE,
			   seed + 9);
	if (uzswap_adopt(c, buf, MIB, "stats-adopt") != buf)
		die("uzswap_adopt: %s", strerror(errno));
	stats_or_die(c, &st);
	CHECK(st.regions == 2 && st.registered_bytes == len + MIB &&
		      st.resident_bytes == len + 10 * PAGE,
	      "adopted 10 data pages of 256: regions %" PRIu64
	      " registered %" PRIu64 " resident %" PRIu64 " (want %zu)",
	      st.regions, st.registered_bytes, st.resident_bytes,
	      len + 10 * PAGE);
	for (i = 0; i < 10; i++)
		check_words("adopted", buf, i * 25 * WORDS_PER_PAGE,
			    WORDS_PER_PAGE, seed + 9);

	CHECK(uzswap_free(c, a) == 0, "uzswap_free a");
	CHECK(uzswap_free(c, buf) == 0, "uzswap_free adopted");
	stats_or_die(c, &st);
	CHECK(st.regions == 0 && st.registered_bytes == 0 &&
		      st.resident_bytes == 0,
	      "all freed: regions %" PRIu64 " registered %" PRIu64
	      " resident %" PRIu64, st.regions, st.registered_bytes,
	      st.resident_bytes);
	if (failures)
		print_stats("at the end", &st);
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * api
 *****************/

static int cmd_api(int argc, char **argv)
{
	uint64_t seed = seed_of(41);
	struct uzswap_stats st;
	uint8_t *p, other[PAGE];
	uzswap_t *c;
	pid_t pid;
	int ret, status;

	if (argc != 0)
		return 2;
	c = connect_or_die();
	p = alloc_or_die(c, MIB, "api");
	fill(p, MIB, seed);

	ret = uzswap_set_limit(c, 64 * MIB);
	CHECK(ret == 0, "uzswap_set_limit: %d (%s)", ret, strerror(-ret));
	ret = uzswap_stats(c, &st);
	CHECK(ret == 0 && st.limit_bytes == 64 * MIB,
	      "limit after uzswap_set_limit: %llu",
	      (unsigned long long)st.limit_bytes);
	ret = uzswap_set_limit(c, 4096);
	CHECK(ret == -EINVAL, "uzswap_set_limit(4096): %d", ret);
	ret = uzswap_advise(c, p, MIB, UZSWAP_ADVISE_COLD);
	CHECK(ret == 0, "uzswap_advise COLD: %d (%s)", ret, strerror(-ret));
	ret = uzswap_stats(c, &st);
	CHECK(ret == 0 && st.resident_bytes == 0 &&
		      st.stored_pages == MIB / PAGE && st.evictions == MIB / PAGE,
	      "after COLD: resident %llu stored %llu evictions %llu",
	      (unsigned long long)st.resident_bytes,
	      (unsigned long long)st.stored_pages,
	      (unsigned long long)st.evictions);
	ret = uzswap_advise(c, p + PAGE, PAGE, UZSWAP_ADVISE_WILLNEED);
	CHECK(ret == 0, "uzswap_advise WILLNEED: %d", ret);
	ret = uzswap_stats(c, &st);
	CHECK(ret == 0 && st.resident_bytes == PAGE,
	      "after WILLNEED: resident %llu",
	      (unsigned long long)st.resident_bytes);
	check("after COLD and WILLNEED", p, MIB, seed);
	ret = uzswap_advise(c, p, MIB, 99);
	CHECK(ret == -EINVAL, "uzswap_advise bad advice: %d", ret);
	ret = uzswap_advise(c, p + 1, PAGE, UZSWAP_ADVISE_COLD);
	CHECK(ret == -EINVAL, "uzswap_advise unaligned: %d", ret);
	ret = uzswap_advise(c, p, 2 * MIB, UZSWAP_ADVISE_COLD);
	CHECK(ret == -EINVAL, "uzswap_advise past the region: %d", ret);
	ret = uzswap_advise(c, other, PAGE, UZSWAP_ADVISE_COLD);
	CHECK(ret == -EINVAL, "uzswap_advise outside regions: %d", ret);
	ret = uzswap_free(c, other);
	CHECK(ret == -EINVAL, "uzswap_free of no region: %d", ret);
	ret = uzswap_free(c, p + PAGE);
	CHECK(ret == -EINVAL, "uzswap_free inside a region: %d", ret);
	errno = 0;
	CHECK(!uzswap_alloc(c, 0, "zero") && errno == EINVAL,
	      "uzswap_alloc(0): %s", strerror(errno));
	errno = 0;
	CHECK(!uzswap_alloc(c, SIZE_MAX - 5, "huge") && errno,
	      "uzswap_alloc(SIZE_MAX - 5) succeeded");
	ret = uzswap_stats(c, NULL);
	CHECK(ret == -EINVAL, "uzswap_stats(NULL): %d", ret);
	CHECK(uzswap_strerror(-ENOTSUP) && uzswap_strerror(12345),
	      "uzswap_strerror returned NULL");

	/* a name longer than 63 bytes is cut, not refused */
	{
		char name[200];
		void *q;

		memset(name, 'n', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		q = uzswap_alloc(c, PAGE, name);
		CHECK(q != NULL, "uzswap_alloc with a long name: %s",
		      strerror(errno));
		if (q) {
			fill(q, PAGE, seed + 1);
			check("long-name region", q, PAGE, seed + 1);
			CHECK(uzswap_free(c, q) == 0, "uzswap_free");
		}
	}

	/* fork: the child's calls fail with ECHILD, the parent is fine */
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int bad = 0;

		if (uzswap_stats(c, &st) != -ECHILD)
			bad++;
		if (uzswap_alloc(c, PAGE, "child") || errno != ECHILD)
			bad++;
		if (uzswap_free(c, p) != -ECHILD)
			bad++;
		uzswap_disconnect(c);
		_exit(bad ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		fail("forked child: calls did not fail with ECHILD (status "
		     "%#x)", status);

	stats_or_die(c, &st);
	CHECK(st.regions == 1 && st.registered_bytes == MIB,
	      "after refusals: regions %" PRIu64 " registered %" PRIu64,
	      st.regions, st.registered_bytes);
	check("region after refusals and fork", p, MIB, seed);
	CHECK(uzswap_free(c, p) == 0, "uzswap_free");
	uzswap_disconnect(c);
	uzswap_disconnect(NULL);
	return failures ? 1 : 0;
}

/*****************
 * multi
 *****************/

static int cmd_multi(int argc, char **argv)
{
	const size_t len = 8 * MIB;
	uint64_t seed = seed_of(51);
	uzswap_t *c1, *c2;
	uint8_t *p1, *p2;

	if (argc != 0)
		return 2;
	c1 = connect_or_die();
	c2 = connect_or_die();
	p1 = alloc_or_die(c1, len, "multi-1");
	p2 = alloc_or_die(c2, len, "multi-2");
	fill(p1, len / 2, seed);
	fill(p2, len / 2, seed + 1);
	uzswap_disconnect(c1);
	/* c2's region: written half intact, fresh half still served */
	check("c2 region after c1 closed", p2, len / 2, seed + 1);
	check_zero("c2 fresh half after c1 closed", p2 + len / 2, len / 2);
	fill(p2, len, seed + 2);
	check("c2 region rewritten", p2, len, seed + 2);
	CHECK(uzswap_free(c2, p2) == 0, "uzswap_free");
	uzswap_disconnect(c2);
	return failures ? 1 : 0;
}

/*****************
 * spin
 *****************/

/* A command waiting on stdin, without blocking: 1 (line in @buf), 0
 * (none), -1 at end of file. Reads byte by byte so stdio never holds
 * part of a later line. */
static int poll_command(char *buf, size_t size)
{
	static char line[64];
	static size_t have;
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	char ch;
	ssize_t n;

	while (poll(&pfd, 1, 0) > 0) {
		n = read(0, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (ch == '\n') {
			line[have] = '\0';
			snprintf(buf, size, "%s", line);
			have = 0;
			return 1;
		}
		if (have + 1 < sizeof(line))
			line[have++] = ch;
	}
	return 0;
}

static int cmd_spin(int argc, char **argv)
{
	unsigned long rounds = 0;
	char line[64];
	size_t len;
	uzswap_t *c;
	int r;

	if (argc != 1)
		return 2;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	c = connect_or_die();
	for (;;) {
		uint8_t *p = alloc_or_die(c, len, "spin");
		uint64_t seed = seed_of(rounds);

		check_zero("spin: fresh region", p, len);
		fill(p, len, seed);
		check("spin", p, len, seed);
		CHECK(uzswap_free(c, p) == 0, "uzswap_free");
		if (failures)
			break;
		if (++rounds == 1)
			say("ready");
		r = poll_command(line, sizeof(line));
		if (r < 0 || (r > 0 && !strcmp(line, "stop")))
			break;
		if (r > 0 && !strcmp(line, "report"))
			say("rounds %lu", rounds);
	}
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * hold
 *****************/

static int cmd_hold(int argc, char **argv)
{
	uint64_t seed = seed_of(61);
	struct uzswap_stats st;
	char line[64];
	size_t len;
	uzswap_t *c;
	uint8_t *p;
	bool alive;
	int ret, want;
	bool served;

	if (argc != 1)
		return 2;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	c = connect_or_die();
	p = alloc_or_die(c, len, "hold");
	fill(p, len / 2, seed);
	check("hold: first half", p, len / 2, seed);
	say("ready");
	if (!read_command(line, sizeof(line)))
		die("no command on stdin");
	if (!strcmp(line, "alive"))
		want = 0;
	else if (!strcmp(line, "drained"))
		want = -ETIMEDOUT;	/* waited for a successor */
	else if (!strcmp(line, "restarted"))
		want = -ESTALE;		/* the successor cannot resume it */
	else
		die("unknown command '%s'", line);
	alive = want == 0;
	/* served by a daemon or plain memory: the whole region may be
	 * touched; a process nobody resumed would block on a hole */
	served = want != -ESTALE;

	ret = uzswap_stats(c, &st);
	if (alive)
		CHECK(ret == 0 && st.regions == 1 &&
			      st.registered_bytes == len,
		      "stats with the daemon up: %d (%s)", ret,
		      strerror(-ret));
	else
		CHECK(ret == want, "stats with the daemon %s: %d (%s), want "
		      "%d", line, ret, strerror(-ret), want);

	/* the first half is resident; the never-touched half reads zeros
	 * (and must not block) */
	check("hold: first half after the command", p, len / 2, seed);
	if (served) {
		check_zero("hold: second half (never touched)", p + len / 2,
			   len / 2);
		fill_words(p, len / 16, len / 16, seed);
		check("hold: all after writing the second half", p, len,
		      seed);
	}
	fill(p, served ? len : len / 2, seed + 1);
	check("hold: all rewritten", p, served ? len : len / 2, seed + 1);

	ret = uzswap_free(c, p);
	if (alive)
		CHECK(ret == 0, "uzswap_free: %s", strerror(-ret));
	else
		CHECK(ret < 0, "uzswap_free with the daemon stopped: %d", ret);
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * block, crash
 *****************/

static int cmd_block(int argc, char **argv)
{
	uint64_t seed = seed_of(71);
	char line[64];
	size_t len;
	uzswap_t *c;
	uint8_t *p;

	if (argc != 1)
		return 2;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	c = connect_or_die();
	p = alloc_or_die(c, len, "block");
	say("ready");
	if (!read_command(line, sizeof(line)))
		die("no command on stdin");
	fill(p, len, seed);
	check("block", p, len, seed);
	say("done");
	if (!read_command(line, sizeof(line)))
		die("no second command on stdin");
	if (strcmp(line, "alive"))
		die("unknown command '%s'", line);
	check("block, after the second command", p, len, seed);
	CHECK(uzswap_free(c, p) == 0, "uzswap_free");
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

static int cmd_crash(int argc, char **argv)
{
	struct rlimit no_core = { 0, 0 };
	size_t len;
	uzswap_t *c;
	uint8_t *p;

	if (argc != 1)
		return 2;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	c = connect_or_die();
	p = alloc_or_die(c, len, "crash");
	fill(p, len, seed_of(81));
	check("crash", p, len, seed_of(81));
	if (failures)
		return 1;
	setrlimit(RLIMIT_CORE, &no_core);
	abort();
}

static int cmd_reserve(int argc, char **argv)
{
	uint8_t *p[16];
	size_t len, n, k, i;
	uzswap_t *c;
	int err;

	if (argc != 2)
		return 2;
	len = parse_ul(argv[0], "MIB", 1ul << 20) * MIB;
	n = parse_ul(argv[1], "N", 16);
	c = connect_or_die();
	for (k = 0; k < n && (p[k] = uzswap_alloc(c, len, "reserve")); k++) {
		fill(p[k], PAGE, seed_of(90 + k));
		check("reserve", p[k], PAGE, seed_of(90 + k));
	}
	err = errno;
	say("allocated %zu", k);
	if (k < n)
		say("refused: %s", strerror(err));
	for (i = 0; i < k; i++)
		if (uzswap_free(c, p[i]))
			fail("uzswap_free of region %zu", i);
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * Eviction: pager, rmw
 *****************/

/*
 * Page contents by kind, all derived from (seed, page index, word index):
 *   text    compressible (32 groups of 16 equal low-entropy words), word 0
 *           unique to the page: never same-filled, never zero
 *   random  incompressible: every word from pat()
 *   same    one 64-bit word repeated; every 4th page all zeros (a zero
 *           page that was written), the others a page-unique non-zero word
 *   sparse  every 4th page is text, the others are never touched (they
 *           must read zero, and reading them must not block)
 *   none    never touched at all (a huge registration costs nothing)
 */
enum kind { K_TEXT, K_RANDOM, K_SAME, K_SPARSE, K_NONE };

static const char *const kind_names[] = { "text", "random", "same",
					  "sparse", "none" };

static int kind_parse(const char *s, enum kind *k)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kind_names); i++) {
		if (!strcmp(s, kind_names[i])) {
			*k = (enum kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

static uint64_t text_word(uint64_t seed, size_t page, size_t w)
{
	if (w == 0)
		return pat(seed, page);
	return (pat(seed + page, w / 16) & 0x0f0f0f0f0f0f0f0full) |
	       0x4040404040404040ull;
}

/* Whether page @page of a region of @k is written at all. */
static bool kind_writes(enum kind k, size_t page)
{
	return k != K_NONE && (k != K_SPARSE || page % 4 == 0);
}

static uint64_t kind_word(enum kind k, uint64_t seed, size_t page, size_t w)
{
	switch (k) {
	case K_TEXT:
		return text_word(seed, page, w);
	case K_RANDOM:
		return pat(seed, page * WORDS_PER_PAGE + w);
	case K_SAME:
		return page % 4 ? pat(seed, page) : 0;
	case K_SPARSE:
		return page % 4 ? 0 : text_word(seed, page, w);
	case K_NONE:
		return 0;
	}
	return 0;
}

static void kind_fill(uint8_t *p, size_t len, enum kind k, uint64_t seed)
{
	size_t page, w;

	for (page = 0; page < len / PAGE; page++) {
		volatile uint64_t *pw =
			(volatile uint64_t *)(p + page * PAGE);

		if (!kind_writes(k, page))
			continue;
		for (w = 0; w < WORDS_PER_PAGE; w++)
			pw[w] = kind_word(k, seed, page, w);
	}
}

/*
 * Check pages [first, first + n) of a region of @k. Reports the first bad
 * page on stderr. Return: bad pages; *@zero: how many of them read all
 * zeros (an evicted page turned into zeros).
 */
static size_t kind_check(const char *what, const uint8_t *p, size_t first,
			 size_t n, enum kind k, uint64_t seed, size_t *zero)
{
	size_t page, w, bad = 0, zeros = 0, first_bad = 0, bad_word = 0;
	uint64_t got = 0, want = 0;

	for (page = first; page < first + n; page++) {
		const volatile uint64_t *pw =
			(const volatile uint64_t *)(p + page * PAGE);
		bool page_bad = false, all_zero = true;

		for (w = 0; w < WORDS_PER_PAGE; w++) {
			uint64_t v = pw[w], e = kind_word(k, seed, page, w);

			if (v)
				all_zero = false;
			if (v != e && !page_bad) {
				page_bad = true;
				if (!bad) {
					first_bad = page;
					bad_word = w;
					got = v;
					want = e;
				}
			}
		}
		if (page_bad) {
			bad++;
			if (all_zero)
				zeros++;
		}
	}
	if (bad)
		fail("%s: %zu of %zu pages wrong (%zu read all zeros); first: "
		     "page %zu word %zu is %#" PRIx64 " instead of %#" PRIx64,
		     what, bad, n, zeros, first_bad, bad_word, got, want);
	if (zero)
		*zero = zeros;
	return bad;
}

#define PAGER_MAX_REGIONS 16

struct pager_region {
	uint8_t *p;
	size_t len;
	enum kind kind;
	uint64_t seed;
};

/* The region numbered by @arg, or NULL (with a reply) if there is none. */
static struct pager_region *pager_region(struct pager_region *rs,
					 const char *arg)
{
	char *end;
	unsigned long k = strtoul(arg ? arg : "", &end, 10);

	if (!arg || *end || end == arg || k >= PAGER_MAX_REGIONS ||
	    !rs[k].p) {
		say("fail no region '%s'", arg ? arg : "");
		return NULL;
	}
	return &rs[k];
}

static void pager_verify(struct pager_region *r, unsigned long k)
{
	char what[64];
	size_t zero = 0, bad;

	snprintf(what, sizeof(what), "region %lu (%s)", k,
		 kind_names[r->kind]);
	bad = kind_check(what, r->p, 0, r->len / PAGE, r->kind, r->seed,
			 &zero);
	if (bad)
		say("fail %zu bad pages, %zu read zeros", bad, zero);
	else
		say("ok");
}

/* "touch K FIRST N" (@write) or "touched K FIRST N" on a region of kind
 * none. */
static void pager_touch(struct pager_region *rs, char **args, bool write)
{
	struct pager_region *r = pager_region(rs, args[0]);
	unsigned long first = strtoul(args[1], NULL, 10);
	unsigned long n = strtoul(args[2], NULL, 10);
	size_t bad = 0, page, w;

	if (!r)
		return;
	if (r->kind != K_NONE || n == 0 || first + n > r->len / PAGE) {
		say("fail range");
		return;
	}
	for (page = first; write && page < first + n; page++) {
		volatile uint64_t *pw =
			(volatile uint64_t *)(r->p + page * PAGE);

		bad += kind_check("touch", r->p, page, 1, K_NONE, r->seed,
				  NULL);
		for (w = 0; w < WORDS_PER_PAGE; w++)
			pw[w] = text_word(r->seed, page, w);
	}
	bad += kind_check("touched", r->p, first, n, K_TEXT, r->seed, NULL);
	if (bad)
		say("fail %zu bad pages", bad);
	else
		say("ok");
}

/* "advise K [FIRST NPAGES]": the whole region when no range is given. */
static void pager_advise(struct pager_region *rs, char **args, int nargs,
			 uzswap_t *c, int advice)
{
	struct pager_region *r = pager_region(rs, nargs > 0 ? args[0] : NULL);
	unsigned long first = 0, n;
	int ret;

	if (!r)
		return;
	n = r->len / PAGE;
	if (nargs == 3) {
		first = strtoul(args[1], NULL, 10);
		n = strtoul(args[2], NULL, 10);
	}
	if (first + n > r->len / PAGE || n == 0) {
		say("fail range");
		return;
	}
	ret = uzswap_advise(c, r->p + first * PAGE, n * PAGE, advice);
	if (ret)
		say("fail %d %s", ret, strerror(-ret));
	else
		say("ok");
}

/* Wait (at most @ms) until @fd has no hole left in its @len bytes. */
static void wait_no_hole(int fd, size_t len, long long ms)
{
	long long deadline = now_ms() + ms;
	struct timespec ts = { 0, 10 * 1000000L };

	while (lseek(fd, 0, SEEK_HOLE) < (off_t)len && now_ms() < deadline)
		nanosleep(&ts, NULL);
}

/*
 * "free-keep K": uzswap_free region K, holding its memory through a
 * descriptor of its memfd (/proc/self/map_files: needs CAP_SYS_ADMIN)
 * meanwhile, then check that memory: the daemon's UNREGISTER restores
 * every stored page into the memfd before it lets the range go, also when
 * it is killed in the middle (its successor finishes the job, within
 * @ms). Replies "ok RET" (uzswap_free's return) or "fail ...".
 */
static void pager_free_keep(struct pager_region *r, uzswap_t *c, long long ms)
{
	char path[64], what[64];
	size_t zero = 0, bad;
	uint8_t *buf;
	int fd, ret, err;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx",
		 (unsigned long)r->p, (unsigned long)(r->p + r->len));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	buf = malloc(r->len);
	if (fd < 0 || !buf) {
		say("fail %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(buf);
		return;
	}
	ret = uzswap_free(c, r->p);
	r->p = NULL;
	wait_no_hole(fd, r->len, ms);
	if ((err = fullio_pread(fd, buf, r->len, 0))) {
		say("fail pread %s: %s", path, strerror(-err));
	} else {
		snprintf(what, sizeof(what), "freed region (%s)",
			 kind_names[r->kind]);
		bad = kind_check(what, buf, 0, r->len / PAGE, r->kind, r->seed,
				 &zero);
		if (bad)
			say("fail %zu pages not restored, %zu of them zeros "
			    "(uzswap_free: %d)", bad, zero, ret);
		else
			say("ok %d", ret);
	}
	close(fd);
	free(buf);
}

/*
 * pager: a client driven line by line from stdin, for the tests of
 * eviction; every command is answered by one line, "ok ..." or
 * "fail ...". A data check that fails also makes the exit status 1.
 *   limit MIB              uzswap_set_limit (0: the daemon's default)
 *   alloc KIND MIB [SEED]  a new region filled by kind: "ok K"; with a
 *                          SEED, the content of any pager's region of
 *                          that kind, size and seed (a twin's)
 *   verify K|all           check every page of region K, or of all
 *   rewrite K              fill region K again with a new seed
 *   touch K FIRST N        on a region of kind none: check that pages
 *                          [FIRST, FIRST + N) read zero, write them as
 *                          text pages, check them (verify K does not
 *                          know of them: it expects zeros)
 *   touched K FIRST N      check that they still hold what touch wrote
 *   cold K [FIRST N]       uzswap_advise COLD (whole region by default)
 *   willneed K [FIRST N]   uzswap_advise WILLNEED
 *   free K                 uzswap_free
 *   free-keep K            uzswap_free, then check that the memory was
 *                          all restored into the memfd (pager_free_keep())
 *   stats                  "ok resident R limit L registered G stored S
 *                          compressed C faults F evictions E regions N"
 *   quit                   disconnect and exit
 * Prints "ready" once connected. End of file is "quit".
 */
static int cmd_pager(int argc, char **argv)
{
	struct pager_region rs[PAGER_MAX_REGIONS] = { { 0 } };
	struct uzswap_stats st;
	char line[256], *args[8], *save, *tok, *verb;
	unsigned long k, v;
	uzswap_t *c;
	int nargs, ret;
	uint64_t gen = 100;
	enum kind kind;

	if (argc != 0)
		return 2;
	c = connect_or_die();
	say("ready");
	while (read_command(line, sizeof(line))) {
		verb = strtok_r(line, " ", &save);
		if (!verb)
			continue;
		nargs = 0;
		while (nargs < 8 && (tok = strtok_r(NULL, " ", &save)))
			args[nargs++] = tok;
		if (!strcmp(verb, "quit"))
			break;
		if (!strcmp(verb, "limit") && nargs == 1) {
			v = strtoul(args[0], NULL, 10);
			ret = uzswap_set_limit(c, (uint64_t)v * MIB);
			if (ret)
				say("fail %d %s", ret, strerror(-ret));
			else
				say("ok");
		} else if (!strcmp(verb, "alloc") &&
			   (nargs == 2 || nargs == 3) &&
			   !kind_parse(args[0], &kind)) {
			for (k = 0; k < PAGER_MAX_REGIONS && rs[k].p; k++)
				;
			v = strtoul(args[1], NULL, 10);
			if (k == PAGER_MAX_REGIONS || v == 0) {
				say("fail no room");
				continue;
			}
			rs[k].len = v * MIB;
			rs[k].p = uzswap_alloc(c, rs[k].len, kind_names[kind]);
			if (!rs[k].p) {
				say("fail alloc: %s", strerror(errno));
				continue;
			}
			rs[k].kind = kind;
			rs[k].seed = nargs == 3 ? strtoull(args[2], NULL, 10)
						: seed_of(gen++);
			kind_fill(rs[k].p, rs[k].len, kind, rs[k].seed);
			say("ok %lu", k);
		} else if (!strcmp(verb, "verify") && nargs == 1 &&
			   !strcmp(args[0], "all")) {
			size_t bad = 0, zero = 0, z;

			for (k = 0; k < PAGER_MAX_REGIONS; k++) {
				if (!rs[k].p)
					continue;
				bad += kind_check("verify all", rs[k].p, 0,
						  rs[k].len / PAGE, rs[k].kind,
						  rs[k].seed, &z);
				zero += z;
			}
			if (bad)
				say("fail %zu bad pages, %zu read zeros", bad,
				    zero);
			else
				say("ok");
		} else if (!strcmp(verb, "verify") && nargs == 1) {
			struct pager_region *r = pager_region(rs, args[0]);

			if (r)
				pager_verify(r, strtoul(args[0], NULL, 10));
		} else if (!strcmp(verb, "rewrite") && nargs == 1) {
			struct pager_region *r = pager_region(rs, args[0]);

			if (r) {
				r->seed = seed_of(gen++);
				kind_fill(r->p, r->len, r->kind, r->seed);
				say("ok");
			}
		} else if (!strcmp(verb, "touch") && nargs == 3) {
			pager_touch(rs, args, true);
		} else if (!strcmp(verb, "touched") && nargs == 3) {
			pager_touch(rs, args, false);
		} else if (!strcmp(verb, "cold")) {
			pager_advise(rs, args, nargs, c, UZSWAP_ADVISE_COLD);
		} else if (!strcmp(verb, "willneed")) {
			pager_advise(rs, args, nargs, c,
				     UZSWAP_ADVISE_WILLNEED);
		} else if (!strcmp(verb, "free") && nargs == 1) {
			struct pager_region *r = pager_region(rs, args[0]);

			if (r) {
				ret = uzswap_free(c, r->p);
				r->p = NULL;
				if (ret)
					say("fail %d %s", ret, strerror(-ret));
				else
					say("ok");
			}
		} else if (!strcmp(verb, "free-keep") && nargs == 1) {
			struct pager_region *r = pager_region(rs, args[0]);

			if (r)
				pager_free_keep(r, c, 20000);
		} else if (!strcmp(verb, "stats") && nargs == 0) {
			ret = uzswap_stats(c, &st);
			if (ret)
				say("fail %d %s", ret, strerror(-ret));
			else
				say("ok resident %" PRIu64 " limit %" PRIu64
				    " registered %" PRIu64 " stored %" PRIu64
				    " compressed %" PRIu64 " faults %" PRIu64
				    " evictions %" PRIu64 " regions %" PRIu64,
				    st.resident_bytes, st.limit_bytes,
				    st.registered_bytes, st.stored_pages,
				    st.compressed_bytes, st.faults,
				    st.evictions, st.regions);
		} else {
			say("fail unknown command");
		}
	}
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*
 * rmw: THREADS writer threads do checksummed read-modify-write on the
 * pages of one region under a small budget. Each thread owns the pages
 * whose index is its number modulo THREADS and keeps, in private memory,
 * the counter each of its pages must hold. A page:
 *   word 0          RMW_MAGIC ^ page index (never zero)
 *   word 1          the page's write counter (1 after the first fill)
 *   words 2..255    pattern of (seed, counter, word): incompressible
 *   words 256..510  one word of (seed, counter, page): compressible
 *   word 511        checksum of words 0..510
 * Every RMW checks the page before writing it: a stale page (a lost
 * write), a zero page or a torn page is a failure. Half of the RMWs go to
 * a few "hot" pages of the thread, written again and again while the
 * fault-in LRU carries them to its tail, so that the evictor takes pages
 * that are being written; the other half to random own pages, which
 * fault nearly every time.
 */
#define RMW_MAGIC	0xa5c3e1f00f1e3c5aull
#define RMW_HOT		8

struct rmw_thr {
	pthread_t tid;
	unsigned int idx, n;
	uint8_t *p;
	size_t npages;
	uint64_t seed;
	uint32_t *expect;	/* counter of own page idx + n * j, at [j] */
	atomic_bool *stop;
	pthread_barrier_t *bar;
	uint64_t ops, bad;
};

static uint64_t rmw_sum(const uint64_t *w)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < WORDS_PER_PAGE - 1; i++) {
		h ^= w[i];
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h | 1;
}

static void rmw_make(uint64_t *w, uint64_t seed, size_t page, uint32_t cnt)
{
	uint64_t s = seed ^ ((uint64_t)cnt << 40);
	uint64_t rep = pat(s, page);
	size_t i;

	w[0] = RMW_MAGIC ^ page;
	w[1] = cnt;
	for (i = 2; i < WORDS_PER_PAGE / 2; i++)
		w[i] = pat(s, page * WORDS_PER_PAGE + i);
	for (; i < WORDS_PER_PAGE - 1; i++)
		w[i] = rep;
	w[WORDS_PER_PAGE - 1] = rmw_sum(w);
}

/* Check page @page against counter @cnt; 0 or 1 (reported). */
static int rmw_check(struct rmw_thr *t, const char *what, size_t page,
		     uint32_t cnt)
{
	uint64_t w[WORDS_PER_PAGE];
	size_t i;
	bool zero = true;

	memcpy(w, t->p + page * PAGE, PAGE);
	for (i = 0; i < WORDS_PER_PAGE; i++)
		if (w[i])
			zero = false;
	if (zero) {
		fail("%s: page %zu READS ZERO (counter %u expected)", what,
		     page, cnt);
		return 1;
	}
	if (w[0] != (RMW_MAGIC ^ page) ||
	    w[WORDS_PER_PAGE - 1] != rmw_sum(w)) {
		fail("%s: page %zu torn or foreign: word 0 %#" PRIx64
		     ", checksum %#" PRIx64 " (computed %#" PRIx64 ")", what,
		     page, w[0], w[WORDS_PER_PAGE - 1], rmw_sum(w));
		return 1;
	}
	if (w[1] != cnt) {
		fail("%s: page %zu holds write %" PRIu64 ", expected %u (%s)",
		     what, page, w[1], cnt,
		     w[1] < cnt ? "a LOST WRITE" : "from the future");
		return 1;
	}
	return 0;
}

static void rmw_write(struct rmw_thr *t, size_t page, uint32_t cnt)
{
	uint64_t w[WORDS_PER_PAGE];

	rmw_make(w, t->seed, page, cnt);
	memcpy(t->p + page * PAGE, w, PAGE);
}

static void *rmw_main(void *arg)
{
	struct rmw_thr *t = arg;
	size_t own = (t->npages - t->idx + t->n - 1) / t->n, j, hot[RMW_HOT];
	uint64_t x = t->seed ^ (0x9e3779b97f4a7c15ull * (t->idx + 1));
	size_t h;

	for (j = 0; j < own; j++) {
		t->expect[j] = 1;
		rmw_write(t, t->idx + t->n * j, 1);
	}
	for (h = 0; h < RMW_HOT; h++)
		hot[h] = (own * h) / RMW_HOT;
	pthread_barrier_wait(t->bar);
	while (!atomic_load_explicit(t->stop, memory_order_relaxed) &&
	       t->bad < 10) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = x & 1 ? hot[(x >> 1) % RMW_HOT] : (x >> 1) % own;
		t->bad += (uint64_t)rmw_check(t, "rmw", t->idx + t->n * j,
					      t->expect[j]);
		t->expect[j]++;
		rmw_write(t, t->idx + t->n * j, t->expect[j]);
		t->ops++;
	}
	return NULL;
}

/*
 * rmw THREADS MIB LIMIT_MIB SECONDS: prints "ready" once every page is
 * written, runs SECONDS (0: until a line, or end of file, on stdin: the
 * crash tests run it across many restarts of the daemon), checks every
 * page, then prints
 *   "result ops N bad B"
 *   "stats resident R limit L evictions E faults F stored S" (after
 *   waiting, bounded, for resident to come within the limit), or
 *   "stats fail ERR" (and the command fails)
 */
static int cmd_rmw(int argc, char **argv)
{
	struct rmw_thr thr[16];
	pthread_barrier_t bar;
	atomic_bool stop = false;
	struct uzswap_stats st;
	unsigned int n, i;
	unsigned long secs;
	uint64_t limit, ops = 0, bad = 0, seed = seed_of(91);
	long long deadline;
	struct timespec ts;
	size_t len, j;
	uzswap_t *c;
	uint8_t *p;
	int ret;

	if (argc != 4)
		return 2;
	n = (unsigned int)parse_ul(argv[0], "THREADS", 16);
	len = parse_ul(argv[1], "MIB", 4096) * MIB;
	limit = parse_ul(argv[2], "LIMIT_MIB", 4096) * MIB;
	secs = strcmp(argv[3], "0") ? parse_ul(argv[3], "SECONDS", 3600) : 0;
	c = connect_or_die();
	MUST(uzswap_set_limit(c, limit));
	p = alloc_across_restarts(c, len, "rmw");
	pthread_barrier_init(&bar, NULL, n + 1);
	for (i = 0; i < n; i++) {
		size_t own = (len / PAGE - i + n - 1) / n;

		thr[i] = (struct rmw_thr){ .idx = i, .n = n, .p = p,
					   .npages = len / PAGE,
					   .seed = seed, .stop = &stop,
					   .bar = &bar };
		thr[i].expect = calloc(own, sizeof(uint32_t));
		if (!thr[i].expect)
			die("calloc");
		ret = pthread_create(&thr[i].tid, NULL, rmw_main, &thr[i]);
		if (ret)
			die("pthread_create: %s", strerror(ret));
	}
	pthread_barrier_wait(&bar);
	say("ready");
	if (secs) {
		ts = (struct timespec){ (time_t)secs, 0 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	} else {
		char line[64];

		read_command(line, sizeof(line));
	}
	atomic_store(&stop, true);
	for (i = 0; i < n; i++) {
		pthread_join(thr[i].tid, NULL);
		ops += thr[i].ops;
		bad += thr[i].bad;
	}
	pthread_barrier_destroy(&bar);
	/* every page, once more, against what its thread last wrote, in
	 * address order: a sequential reader, whatever the random phase
	 * left stored or written back comes in with read-ahead */
	for (j = 0; j < len / PAGE && bad < 100; j++)
		bad += (uint64_t)rmw_check(&thr[j % n], "final check", j,
					   thr[j % n].expect[j / n]);
	for (i = 0; i < n; i++)
		free(thr[i].expect);
	say("result ops %" PRIu64 " bad %" PRIu64, ops, bad);

	/* the evictor brings resident back within the budget */
	deadline = now_ms() + 20000;
	while ((ret = uzswap_stats(c, &st)) == 0 &&
	       st.resident_bytes > st.limit_bytes && now_ms() < deadline) {
		ts = (struct timespec){ 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (ret) {
		fail("uzswap_stats: %s", strerror(-ret));
		say("stats fail %d", ret);
	} else {
		say("stats resident %" PRIu64 " limit %" PRIu64
		    " evictions %" PRIu64 " faults %" PRIu64
		    " stored %" PRIu64, st.resident_bytes, st.limit_bytes,
		    st.evictions, st.faults, st.stored_pages);
	}
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * fork
 *****************/

/* The pages of a fork test region filled with @seed: page k is never
 * written if k % 11 == 5 (zeros), one word repeated (pat(@seed, k)) if
 * k % 7 == 3 (same-filled), else the pattern. */
static void fork_fill(uint8_t *p, size_t first, size_t end, uint64_t seed)
{
	size_t k, i;

	for (k = first; k < end; k++) {
		uint64_t *w = (uint64_t *)(p + k * PAGE);

		if (k % 11 == 5)
			continue;
		if (k % 7 == 3) {
			for (i = 0; i < WORDS_PER_PAGE; i++)
				w[i] = pat(seed, k);
			continue;
		}
		fill_words(p, k * WORDS_PER_PAGE, WORDS_PER_PAGE, seed);
	}
}

/* Check pages [@first, @end) against fork_fill(@seed). Return: pages
 * wrong (it stops at 4). */
static size_t fork_check(const char *what, const uint8_t *p, size_t first,
			 size_t end, uint64_t seed)
{
	size_t k, i, bad = 0;

	for (k = first; k < end && bad < 4; k++) {
		const volatile uint64_t *w = (const uint64_t *)(p + k * PAGE);

		if (k % 11 == 5) {
			bad += check_zero(what, (const void *)w, PAGE);
			continue;
		}
		if (k % 7 != 3) {
			bad += !!check_words(what, p, k * WORDS_PER_PAGE,
					     WORDS_PER_PAGE, seed);
			continue;
		}
		for (i = 0; i < WORDS_PER_PAGE && w[i] == pat(seed, k); i++)
			;
		if (i < WORDS_PER_PAGE) {
			fail("%s: same-filled page %zu wrong at word %zu: "
			     "%#" PRIx64, what, k, i, w[i]);
			bad++;
		}
	}
	return bad;
}

/* This process's RssShmem, bytes (-1 if unreadable). */
static long long rss_shmem(void)
{
	char line[256];
	long long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssShmem: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* A child forks in turn: the grandchild's copy is the child's region,
 * @seed's. */
static void fork_grandchild(uint8_t *p, size_t npages, uint64_t seed)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork in the child: %s", strerror(errno));
	if (!pid) {
		cmd = "fork grandchild";
		fork_check("grandchild's copy", p, 0, npages, seed);
		fflush(NULL);
		_exit(failures ? 1 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "grandchild: status %#x", status);
}

/* cmd_fork()'s "over": the pool takes no pages, budgets are exceeded. */
static bool fork_over;

/* The child's side: its copy is the parent's region as it was, whatever
 * the parent writes meanwhile; its writes are its own. */
static void fork_child(uzswap_t *c, uint8_t *p, size_t npages,
		       uint64_t limit, uint64_t had, size_t had_end,
		       uint64_t rest, uint64_t own)
{
	struct uzswap_stats st;
	long long rss;

	cmd = "fork child";
	fork_check("child's copy", p, 0, had_end, had);
	fork_check("child's copy", p, had_end, npages, rest);
	fork_fill(p, 0, npages, own);
	fork_check("child's rewrite", p, 0, npages, own);
	fork_grandchild(p, npages, own);
	MUST(uzswap_stats(c, &st));
	CHECK(st.regions == 1 && st.registered_bytes == npages * PAGE,
	      "child: %llu regions, %llu bytes registered",
	      (unsigned long long)st.regions,
	      (unsigned long long)st.registered_bytes);
	CHECK(st.limit_bytes == limit, "child: budget %llu, not %llu",
	      (unsigned long long)st.limit_bytes, (unsigned long long)limit);
	rss = rss_shmem();
	CHECK(rss >= 0 && (fork_over || (uint64_t)rss <= limit + limit / 10),
	      "child: RssShmem %lld over 1.1 x the budget %llu", rss,
	      (unsigned long long)limit);
	fflush(NULL);
	_exit(failures ? 1 : 0);
}

/* Wait for child @pid: it must exit 0. */
static void fork_wait(pid_t pid, const char *what)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		die("waitpid %s: %s", what, strerror(errno));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "%s: status %#x", what, status);
}

static pid_t fork_or_die(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	return pid;
}

/* The child of fork-hold: its copy checked, "ready" on @ready_fd, then
 * on a byte from @go_fd, checked again, rewritten, checked. */
static void fork_hold_child(uint8_t *p, size_t npages, uint64_t had,
			    uint64_t own, int ready_fd, int go_fd)
{
	char b = 'r';

	cmd = "fork-hold child";
	fork_check("child's copy", p, 0, npages, had);
	if (write(ready_fd, &b, 1) != 1 || read(go_fd, &b, 1) != 1)
		die("fork-hold child: pipes: %s", strerror(errno));
	fork_check("child's copy after the command", p, 0, npages, had);
	fork_fill(p, 0, npages, own);
	fork_check("child's rewrite", p, 0, npages, own);
	fflush(NULL);
	_exit(failures ? 1 : 0);
}

static int cmd_fork_hold(int argc, char **argv)
{
	uint64_t a = seed_of(21), b = seed_of(22), own = seed_of(23);
	int ready[2], go[2];
	size_t len, npages;
	char line[64], x;
	uzswap_t *c;
	uint8_t *p;
	pid_t pid;

	if (argc != 2)
		return 2;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	npages = len / PAGE;
	c = connect_or_die();
	MUST(uzswap_set_limit(c, parse_ul(argv[1], "LIMIT_MIB", 4096) * MIB));
	p = uzswap_alloc_flags(c, len, "fork-hold", UZSWAP_ALLOC_INHERIT);
	if (!p)
		die("uzswap_alloc_flags: %s", uzswap_strerror(errno));
	fork_fill(p, 0, npages, a);
	if (pipe(ready) || pipe(go))
		die("pipe: %s", strerror(errno));
	pid = fork_or_die();
	if (!pid) {
		close(ready[0]);
		close(go[1]);
		fork_hold_child(p, npages, a, own, ready[1], go[0]);
	}
	/* a child gone early reads as end of file, not a wait forever */
	close(ready[1]);
	close(go[0]);
	fork_fill(p, 0, npages, b);
	if (read(ready[0], &x, 1) != 1)
		die("the child is not ready");
	say("ready");
	if (!read_command(line, sizeof(line)) || strcmp(line, "alive"))
		die("expected \"alive\"");
	if (write(go[1], &x, 1) != 1)
		die("the child does not listen");
	fork_check("parent after the command", p, 0, npages, b);
	fork_fill(p, 0, npages, a);
	fork_check("parent's rewrite", p, 0, npages, a);
	fork_wait(pid, "the child");
	if (!failures)
		say("done");
	CHECK(uzswap_free(c, p) == 0, "uzswap_free failed");
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

static int cmd_fork(int argc, char **argv)
{
	uint64_t a = seed_of(1), b = seed_of(2), p2 = seed_of(3);
	size_t len, npages, half, d0, dn;
	uint64_t limit;
	uzswap_t *c;
	uint8_t *p;
	pid_t pid, two[2];
	int j;

	if (argc != 2 && (argc != 3 || strcmp(argv[2], "over")))
		return 2;
	fork_over = argc == 3;
	len = parse_ul(argv[0], "MIB", 4096) * MIB;
	limit = parse_ul(argv[1], "LIMIT_MIB", 4096) * MIB;
	npages = len / PAGE;
	half = npages / 2;
	c = connect_or_die();
	MUST(uzswap_set_limit(c, limit));
	p = uzswap_alloc_flags(c, len, "fork", UZSWAP_ALLOC_INHERIT);
	if (!p)
		die("uzswap_alloc_flags: %s", uzswap_strerror(errno));
	fork_fill(p, 0, npages, a);
	fork_check("before fork", p, 0, npages, a);

	/* a discard: resident and stored pages alike read zeros */
	d0 = npages / 4;
	dn = npages / 8;
	MUST(uzswap_discard(c, p + d0 * PAGE, dn * PAGE));
	check_zero("discarded", p + d0 * PAGE, dn * PAGE);
	fork_fill(p, d0, d0 + dn, a);

	/* a child checks its copy while the parent rewrites half of its own */
	pid = fork_or_die();
	if (!pid)
		fork_child(c, p, npages, limit, a, npages, a, b);
	fork_fill(p, 0, half, p2);
	fork_wait(pid, "first child");
	fork_check("parent after the first child", p, 0, half, p2);
	fork_check("parent after the first child", p, half, npages, a);

	/* two children at once, each rewriting its own copy */
	for (j = 0; j < 2; j++) {
		two[j] = fork_or_die();
		if (!two[j])
			fork_child(c, p, npages, limit, p2, half, a,
				   seed_of(10 + (uint64_t)j));
	}
	for (j = 0; j < 2; j++)
		fork_wait(two[j], "one of two children");

	/* exec: nothing of the child stays managed */
	pid = fork_or_die();
	if (!pid) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	fork_wait(pid, "the child that exec'd");
	fork_check("parent at the end", p, 0, half, p2);
	fork_check("parent at the end", p, half, npages, a);
	if (!failures)
		say("forked ok");
	CHECK(uzswap_free(c, p) == 0, "uzswap_free failed");
	uzswap_disconnect(c);
	return failures ? 1 : 0;
}

/*****************
 * main
 *****************/

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
} commands[] = {
	{ "basic", cmd_basic, "MIB" },
	{ "adopt", cmd_adopt, "MIB" },
	{ "threads", cmd_threads, "N MIB" },
	{ "kernel-io", cmd_kernel_io, "" },
	{ "stats", cmd_stats, "" },
	{ "api", cmd_api, "" },
	{ "multi", cmd_multi, "" },
	{ "spin", cmd_spin, "MIB" },
	{ "hold", cmd_hold, "MIB" },
	{ "block", cmd_block, "MIB" },
	{ "crash", cmd_crash, "MIB" },
	{ "reserve", cmd_reserve, "MIB N" },
	{ "pager", cmd_pager, "" },
	{ "rmw", cmd_rmw, "THREADS MIB LIMIT_MIB SECONDS" },
	{ "fork", cmd_fork, "MIB LIMIT_MIB [over]" },
	{ "fork-hold", cmd_fork_hold, "MIB LIMIT_MIB" },
};

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage: uzclient COMMAND [ARGS]  (socket from "
		"$UZSWAP_SOCKET)\n");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(stderr, "  %s %s\n", commands[i].name,
			commands[i].args);
}

int main(int argc, char **argv)
{
	size_t i;
	int ret;

	if (argc < 2) {
		usage();
		return 2;
	}
	for (i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		cmd = commands[i].name;
		ret = commands[i].run(argc - 2, argv + 2);
		if (ret == 2)
			usage();
		else if (ret)
			fprintf(stderr, "uzclient %s [%d]: %d check(s) "
				"failed\n", cmd, (int)getpid(), failures);
		return ret;
	}
	usage();
	return 2;
}
