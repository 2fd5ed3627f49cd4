/*
 * check_uffd.c - tests of lib/uffd: userfaultfd, memfd regions, fd passing
 *
 * Most tests set up what a client and the daemon would: a memfd region
 * mapped MAP_SHARED and a uffd registered MISSING | WP on it. A "toucher"
 * thread plays the client thread that faults; the test body plays the
 * daemon's fault thread (poll, uffd_read_msgs(), uffd_copy(), ...). The
 * dead-client and user-mode-only tests fork a real client process, which
 * is how the daemon meets uffds: through a socket, from another process.
 *
 * Run under valgrind:
 *
 *   CK_FORK=no valgrind --leak-check=full ./check_uffd
 *
 * Valgrind needs root or access to /dev/userfaultfd: it does not know the
 * userfaultfd(2) system call (ENOSYS), so uffd_open() takes the device
 * path. Valgrind also runs one thread at a time, and a thread blocked in a
 * page fault keeps that turn forever, so the handler would never run.
 * Under valgrind the toucher therefore reaches the region from the kernel
 * (write() from it into a pipe, read() from a pipe into it): such a fault
 * blocks inside a system call, where valgrind lets other threads run.
 * Natively the toucher uses plain loads and stores (user-mode faults).
 * The user-mode-only test needs root to drop to nobody; it is the part
 * check_uffd_user_mode (tests/ckpart.h), skipped under valgrind.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/uffd/uffd.h"
#include "ckpart.h"
#include "lib/common/macros.h"
#include "send.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND()	(RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND()	false
#endif

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC	0x0020
#endif

#define PAGE_SIZE	4096ul
#define WAIT_MS		5000	/* longest wait for what must come */
#define BLOCKED_MS	100	/* how long a blocked thread stays so */
#define WANT_FEATURES	(UFFD_FEATURE_MISSING_SHMEM |		\
			 UFFD_FEATURE_WP_HUGETLBFS_SHMEM |	\
			 UFFD_FEATURE_THREAD_ID)
#define REG_MODE	(UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP)

/* Touch the region from the kernel instead of with loads and stores. */
static bool via_kernel;

/*****************
 * Helpers
 *****************/

static void fill(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed + i * 7 + i / PAGE_SIZE);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A memfd region of @pages pages, mapped, with a uffd registered on it. */
struct region {
	int uffd;
	int mode;
	int memfd;
	char *addr;
	size_t len;
	uint64_t features;
	uint64_t ioctls;
};

static void region_setup(struct region *r, size_t pages)
{
	int ret;

	ck_assert_int_eq(sysconf(_SC_PAGESIZE), PAGE_SIZE);
	r->len = pages * PAGE_SIZE;
	r->uffd = uffd_open(&r->mode);
	ck_assert_msg(r->uffd >= 0, "uffd_open: %s", strerror(-r->uffd));
	ret = uffd_api(r->uffd, WANT_FEATURES, &r->features);
	ck_assert_int_eq(ret, 0);
	ck_assert_uint_eq(r->features, WANT_FEATURES);
	r->memfd = memfd_region_create("check_uffd", r->len);
	ck_assert_int_ge(r->memfd, 0);
	r->addr = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       r->memfd, 0);
	ck_assert_ptr_ne(r->addr, MAP_FAILED);
	ck_assert_int_eq(madvise(r->addr, r->len, MADV_NOHUGEPAGE), 0);
	ret = uffd_register(r->uffd, r->addr, r->len, REG_MODE, &r->ioctls);
	ck_assert_int_eq(ret, 0);
	ck_assert(r->ioctls & (1ull << _UFFDIO_COPY));
	ck_assert(r->ioctls & (1ull << _UFFDIO_WAKE));
	ck_assert(r->ioctls & (1ull << _UFFDIO_WRITEPROTECT));
}

static void region_teardown(struct region *r)
{
	close(r->uffd);
	munmap(r->addr, r->len);
	close(r->memfd);
}

static unsigned long raddr(struct region *r, size_t page)
{
	return (unsigned long)(uintptr_t)r->addr + page * PAGE_SIZE;
}

static void read_page(int memfd, size_t page, unsigned char *buf)
{
	ck_assert_int_eq(pread(memfd, buf, PAGE_SIZE, page * PAGE_SIZE),
			 PAGE_SIZE);
}

/* The client thread that faults. */
enum touch_op { TOUCH_READ, TOUCH_WRITE };

struct toucher {
	pthread_t thread;
	enum touch_op op;
	char *addr;
	size_t len;
	unsigned char buf[PAGE_SIZE];	/* what was read, or is written */
	atomic_int tid;
	atomic_bool done;
	int err;			/* errno of a kernel-mode touch */
};

/* Kernel-mode access: the kernel copies through the region itself. */
static int touch_kernel(struct toucher *t)
{
	int p[2], err = 0;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0)
		return errno;
	if (t->op == TOUCH_READ) {
		n = write(p[1], t->addr, t->len);
		if (n == (ssize_t)t->len)
			n = read(p[0], t->buf, t->len);
	} else {
		n = write(p[1], t->buf, t->len);
		if (n == (ssize_t)t->len)
			n = read(p[0], t->addr, t->len);
	}
	if (n != (ssize_t)t->len)
		err = n < 0 ? errno : EIO;
	close(p[0]);
	close(p[1]);
	return err;
}

static void touch_user(struct toucher *t)
{
	volatile char *p = t->addr;
	size_t i;

	for (i = 0; i < t->len; i++) {
		if (t->op == TOUCH_READ)
			t->buf[i] = (unsigned char)p[i];
		else
			p[i] = (char)t->buf[i];
	}
}

static void *toucher_fn(void *arg)
{
	struct toucher *t = arg;

	atomic_store(&t->tid, (int)gettid());
	if (via_kernel)
		t->err = touch_kernel(t);
	else
		touch_user(t);
	atomic_store(&t->done, true);
	return NULL;
}

/* For TOUCH_WRITE, fill t->buf before calling. */
static void toucher_start(struct toucher *t, enum touch_op op, char *addr,
			  size_t len)
{
	ck_assert_uint_le(len, PAGE_SIZE);
	t->op = op;
	t->addr = addr;
	t->len = len;
	t->err = 0;
	atomic_store(&t->tid, 0);
	atomic_store(&t->done, false);
	ck_assert_int_eq(pthread_create(&t->thread, NULL, toucher_fn, t), 0);
}

static bool toucher_done_within(struct toucher *t, unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	while (!atomic_load(&t->done)) {
		if (now_ms() >= end)
			return false;
		usleep(1000);
	}
	return true;
}

/* Joins a toucher that must finish now. */
static void toucher_join(struct toucher *t)
{
	ck_assert_msg(toucher_done_within(t, WAIT_MS), "toucher still blocked");
	ck_assert_int_eq(pthread_join(t->thread, NULL), 0);
	ck_assert_msg(t->err == 0, "kernel-mode touch: %s", strerror(t->err));
}

static bool still_blocked(struct toucher *t)
{
	usleep(BLOCKED_MS * 1000);
	return !atomic_load(&t->done);
}

/* The daemon's side: wait for one page fault message. */
static void wait_fault(int uffd, struct uffd_msg *msg)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };

	ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
	ck_assert_int_eq(uffd_read_msgs(uffd, msg, 1), 1);
	ck_assert_uint_eq(msg->event, UFFD_EVENT_PAGEFAULT);
}

/* Which fds below 1024 are open. */
#define FD_MAP_SIZE 1024
static void fd_snapshot(bool *open_fds)
{
	int fd;

	for (fd = 0; fd < FD_MAP_SIZE; fd++)
		open_fds[fd] = fcntl(fd, F_GETFD) != -1;
}

/* Send @n copies of @fd with one byte, bypassing fdpass_send()'s limit. */
static void raw_send_fds(int sock, int fd, int n)
{
	int dups[SEND_MAX_FDS] = { 0 }, i;

	ck_assert_int_le(n, SEND_MAX_FDS);
	for (i = 0; i < n; i++) {
		dups[i] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		ck_assert_int_ge(dups[i], 0);
	}
	ck_assert_int_eq(send_with_fds(sock, "!", 1, dups, n, 0), 1);
	for (i = 0; i < n; i++)
		close(dups[i]);
}

/*****************
 * userfaultfd
 *****************/

START_TEST(test_open_api)
{
	struct uffd_msg msg;
	uint64_t avail = 0, got = 0;
	int fd, fl, memfd, mode = 0;
	const char *w;

	fd = uffd_open(&mode);
	ck_assert_msg(fd >= 0, "uffd_open: %s", strerror(-fd));
	if (geteuid() == 0)
		ck_assert_int_eq(mode, UFFD_MODE_FULL);
	else
		ck_assert(mode == UFFD_MODE_FULL ||
			  mode == UFFD_MODE_USER_ONLY);
	fl = fcntl(fd, F_GETFL);
	ck_assert(fl & O_NONBLOCK);
	ck_assert_int_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);

	/* Reading before the handshake is refused. */
	ck_assert_int_eq(uffd_read_msgs(fd, &msg, 1), -EINVAL);

	ck_assert_int_eq(uffd_probe_features(&avail), 0);
	ck_assert(avail & UFFD_FEATURE_MISSING_SHMEM);
	ck_assert(!(avail & (1ull << 62)));

	/* An unknown feature is left out; the rest is enabled. */
	ck_assert_int_eq(uffd_api(fd, UFFD_FEATURE_MISSING_SHMEM |
				  UFFD_FEATURE_THREAD_ID | (1ull << 62), &got),
			 0);
	ck_assert_uint_eq(got, UFFD_FEATURE_MISSING_SHMEM |
			  UFFD_FEATURE_THREAD_ID);
	/* Once per uffd: a second handshake fails. */
	ck_assert_int_eq(uffd_api(fd, UFFD_FEATURE_MISSING_SHMEM, &got),
			 -EINVAL);
	ck_assert_int_eq(uffd_api(fd, 0, NULL), -EINVAL);

	ck_assert_int_eq(uffd_read_msgs(fd, &msg, 1), 0);
	ck_assert_int_eq(uffd_read_msgs(fd, &msg, 0), -EINVAL);

	/* uffd_adopt() restores O_NONBLOCK and refuses other files. */
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK), 0);
	ck_assert_int_eq(uffd_adopt(fd), 0);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	memfd = memfd_region_create("not-a-uffd", PAGE_SIZE);
	ck_assert_int_ge(memfd, 0);
	ck_assert_int_eq(uffd_adopt(memfd), -EINVAL);
	ck_assert_int_eq(uffd_adopt(-1), -EBADF);
	ck_assert_int_eq(uffd_api(memfd, 0, NULL), -ENOTTY);

	w = uffd_mode_warning();
	ck_assert_ptr_nonnull(strstr(w, "CAP_SYS_PTRACE"));
	ck_assert_ptr_nonnull(strstr(w, "vm.unprivileged_userfaultfd=1"));
	ck_assert_ptr_nonnull(strstr(w, "/dev/userfaultfd"));
	ck_assert_ptr_nonnull(strstr(w, "0660"));
	ck_assert_ptr_nonnull(strstr(w, "EFAULT"));

	close(memfd);
	close(fd);
}
END_TEST

/* A toucher faults on a missing page; the handler copies a pattern in. */
START_TEST(test_missing_copy)
{
	unsigned char page[PAGE_SIZE], back[PAGE_SIZE];
	struct uffd_msg msg;
	struct toucher t;
	struct region r;

	region_setup(&r, 4);
	toucher_start(&t, TOUCH_READ, r.addr + PAGE_SIZE, PAGE_SIZE);
	wait_fault(r.uffd, &msg);
	ck_assert_uint_eq(msg.arg.pagefault.address, raddr(&r, 1));
	ck_assert_uint_eq(msg.arg.pagefault.flags &
			  (UFFD_PAGEFAULT_FLAG_WP | UFFD_PAGEFAULT_FLAG_WRITE),
			  0);
	ck_assert_int_eq(msg.arg.pagefault.feat.ptid, atomic_load(&t.tid));
	ck_assert_msg(still_blocked(&t), "toucher ran over a missing page");

	fill(page, PAGE_SIZE, 0x11);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 1), page, PAGE_SIZE, 0),
			 0);
	toucher_join(&t);
	ck_assert_mem_eq(t.buf, page, PAGE_SIZE);

	/* The copy is in the memfd, where the daemon reads it back. */
	read_page(r.memfd, 1, back);
	ck_assert_mem_eq(back, page, PAGE_SIZE);
	/* Nothing else is pending. */
	ck_assert_int_eq(uffd_read_msgs(r.uffd, &msg, 1), 0);
	region_teardown(&r);
}
END_TEST

/* Read-ahead: a DONTWAKE batch, then one wake; EEXIST on filled pages. */
START_TEST(test_dontwake_eexist)
{
	static unsigned char batch[4 * PAGE_SIZE];
	unsigned char page[PAGE_SIZE], back[PAGE_SIZE];
	struct uffd_msg msg;
	struct toucher t;
	struct region r;
	size_t copied = 1;
	int i;

	region_setup(&r, 8);
	fill(batch, sizeof(batch), 0x20);
	toucher_start(&t, TOUCH_READ, r.addr, PAGE_SIZE);
	wait_fault(r.uffd, &msg);
	ck_assert_uint_eq(msg.arg.pagefault.address, raddr(&r, 0));

	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 0), batch, sizeof(batch),
				   UFFD_COPY_DONTWAKE), 0);
	ck_assert_msg(still_blocked(&t), "a DONTWAKE copy woke the toucher");
	ck_assert_int_eq(uffd_wake(r.uffd, raddr(&r, 0), sizeof(batch)), 0);
	toucher_join(&t);
	ck_assert_mem_eq(t.buf, batch, PAGE_SIZE);
	for (i = 1; i < 4; i++) {
		read_page(r.memfd, i, back);
		ck_assert_mem_eq(back, batch + i * PAGE_SIZE, PAGE_SIZE);
	}

	/* Already filled: EEXIST, nothing copied. */
	fill(page, PAGE_SIZE, 0x30);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 2), page, PAGE_SIZE, 0),
			 -EEXIST);
	ck_assert_int_eq(uffd_copy_partial(r.uffd, raddr(&r, 3), page,
					   PAGE_SIZE, 0, &copied), -EEXIST);
	ck_assert_uint_eq(copied, 0);
	read_page(r.memfd, 2, back);
	ck_assert_mem_eq(back, batch + 2 * PAGE_SIZE, PAGE_SIZE);

	/* Pages 5 and 6 missing, 7 filled: 5 and 6 land, then EEXIST. */
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 7), page, PAGE_SIZE, 0),
			 0);
	ck_assert_int_eq(uffd_copy_partial(r.uffd, raddr(&r, 5), batch,
					   3 * PAGE_SIZE, 0, &copied),
			 -EEXIST);
	ck_assert_uint_eq(copied, 2 * PAGE_SIZE);
	for (i = 5; i < 7; i++) {
		read_page(r.memfd, i, back);
		ck_assert_mem_eq(back, batch + (i - 5) * PAGE_SIZE, PAGE_SIZE);
	}
	read_page(r.memfd, 7, back);
	ck_assert_mem_eq(back, page, PAGE_SIZE);

	/* Bad flags, bad length. */
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 4), page, PAGE_SIZE,
				   0x80), -EINVAL);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 4), page, 0, 0), -EINVAL);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 4) + 1, page, PAGE_SIZE,
				   0), -EINVAL);

	/* Zero-fill works on a memfd range too, and allocates the page. */
	ck_assert_int_eq(uffd_zeropage(r.uffd, raddr(&r, 4), PAGE_SIZE, false),
			 0);
	ck_assert_int_eq(lseek(r.memfd, 4 * PAGE_SIZE, SEEK_DATA),
			 4 * PAGE_SIZE);
	memset(page, 0, sizeof(page));
	read_page(r.memfd, 4, back);
	ck_assert_mem_eq(back, page, PAGE_SIZE);
	ck_assert_int_eq(uffd_zeropage(r.uffd, raddr(&r, 4), PAGE_SIZE, false),
			 -EEXIST);
	region_teardown(&r);
}
END_TEST

/* A writer blocks on a write-protected page until un-protect wakes it. */
START_TEST(test_writeprotect)
{
	static const char word[8] = "WRITTEN!";
	unsigned char page[PAGE_SIZE], back[PAGE_SIZE];
	struct uffd_msg msg;
	struct toucher t;
	struct region r;

	region_setup(&r, 2);
	fill(page, PAGE_SIZE, 0x40);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 0), page, PAGE_SIZE, 0),
			 0);
	/* DONTWAKE means nothing when protecting: the kernel refuses it. */
	ck_assert_int_eq(uffd_writeprotect(r.uffd, raddr(&r, 0), PAGE_SIZE,
					   true, true), -EINVAL);
	ck_assert_int_eq(uffd_writeprotect(r.uffd, raddr(&r, 0), PAGE_SIZE,
					   true, false), 0);

	/* Readers pass. */
	toucher_start(&t, TOUCH_READ, r.addr, PAGE_SIZE);
	toucher_join(&t);
	ck_assert_mem_eq(t.buf, page, PAGE_SIZE);

	/* A writer blocks. */
	memcpy(t.buf, word, sizeof(word));
	toucher_start(&t, TOUCH_WRITE, r.addr + 100, sizeof(word));
	wait_fault(r.uffd, &msg);
	ck_assert_uint_eq(msg.arg.pagefault.address, raddr(&r, 0));
	ck_assert(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
	ck_assert(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	ck_assert_msg(still_blocked(&t), "writer ran over write protection");
	read_page(r.memfd, 0, back);
	ck_assert_mem_eq(back, page, PAGE_SIZE);

	/* Un-protect wakes it and the write lands. */
	ck_assert_int_eq(uffd_writeprotect(r.uffd, raddr(&r, 0), PAGE_SIZE,
					   false, false), 0);
	toucher_join(&t);
	memcpy(page + 100, word, sizeof(word));
	read_page(r.memfd, 0, back);
	ck_assert_mem_eq(back, page, PAGE_SIZE);
	region_teardown(&r);
}
END_TEST

/* A punched page is a hole again, and the next access faults. */
START_TEST(test_punch)
{
	unsigned char page[PAGE_SIZE], back[PAGE_SIZE], zero[PAGE_SIZE];
	struct uffd_msg msg;
	struct toucher t;
	struct region r;

	region_setup(&r, 2);
	fill(page, PAGE_SIZE, 0x50);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 0), page, PAGE_SIZE, 0),
			 0);
	ck_assert_int_eq(lseek(r.memfd, 0, SEEK_HOLE), PAGE_SIZE);

	ck_assert_int_eq(memfd_punch(r.memfd, 0, PAGE_SIZE), 0);
	ck_assert_int_eq(lseek(r.memfd, 0, SEEK_HOLE), 0);
	/* pread() of the hole reads zeros and allocates nothing. */
	memset(zero, 0, sizeof(zero));
	read_page(r.memfd, 0, back);
	ck_assert_mem_eq(back, zero, PAGE_SIZE);
	ck_assert_int_eq(lseek(r.memfd, 0, SEEK_HOLE), 0);

	/* The client's next access is a missing fault again. */
	toucher_start(&t, TOUCH_READ, r.addr, PAGE_SIZE);
	wait_fault(r.uffd, &msg);
	ck_assert_uint_eq(msg.arg.pagefault.address, raddr(&r, 0));
	ck_assert(!(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP));
	fill(page, PAGE_SIZE, 0x60);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 0), page, PAGE_SIZE, 0),
			 0);
	toucher_join(&t);
	ck_assert_mem_eq(t.buf, page, PAGE_SIZE);
	region_teardown(&r);
}
END_TEST

/*
 * The eviction protocol of DESIGN.md on one page, with a writer caught in
 * the middle: its write must land on the restored page, not be lost.
 */
START_TEST(test_eviction_protocol)
{
	static const char word[8] = "EVICTME!";
	unsigned char page[PAGE_SIZE], saved[PAGE_SIZE], back[PAGE_SIZE];
	struct uffd_msg msg;
	struct toucher t;
	struct region r;

	region_setup(&r, 1);
	fill(page, PAGE_SIZE, 0x70);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 0), page, PAGE_SIZE, 0),
			 0);

	/* 1. write-protect; a writer now blocks */
	ck_assert_int_eq(uffd_writeprotect(r.uffd, raddr(&r, 0), PAGE_SIZE,
					   true, false), 0);
	memcpy(t.buf, word, sizeof(word));
	toucher_start(&t, TOUCH_WRITE, r.addr + 200, sizeof(word));
	wait_fault(r.uffd, &msg);
	ck_assert(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
	/* 2. read the page; 3. "store" it */
	read_page(r.memfd, 0, saved);
	ck_assert_mem_eq(saved, page, PAGE_SIZE);
	/* 4. punch */
	ck_assert_int_eq(memfd_punch(r.memfd, 0, PAGE_SIZE), 0);
	ck_assert_msg(still_blocked(&t), "writer ran during eviction");
	/* 5. un-protect: the writer refaults as missing */
	ck_assert_int_eq(uffd_writeprotect(r.uffd, raddr(&r, 0), PAGE_SIZE,
					   false, false), 0);
	wait_fault(r.uffd, &msg);
	ck_assert_uint_eq(msg.arg.pagefault.address, raddr(&r, 0));
	ck_assert(!(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP));
	ck_assert(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	ck_assert_int_eq(uffd_copy(r.uffd, raddr(&r, 0), saved, PAGE_SIZE, 0),
			 0);
	toucher_join(&t);

	memcpy(page + 200, word, sizeof(word));
	read_page(r.memfd, 0, back);
	ck_assert_mem_eq(back, page, PAGE_SIZE);
	region_teardown(&r);
}
END_TEST

/* What a client sends the daemon when it registers a region. */
struct client_hello {
	uint64_t addr;
	uint64_t len;
};

/* A listening socket at a fresh abstract address, returned in @addr. */
static int listen_abstract(struct sockaddr_un *addr, socklen_t *addrlen)
{
	static atomic_int seq;
	int fd, n;

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	n = snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1,
		     "check_uffd-%d-%d", (int)getpid(),
		     atomic_fetch_add(&seq, 1));
	*addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, *addrlen), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	return fd;
}

/*
 * The forked client: opens a uffd and a region, sends both to the test
 * (the daemon), checks the page the daemon filled, and exits when told.
 * Returns its exit status: 0, or the step that failed.
 */
static int client_main(int sock)
{
	unsigned char page[PAGE_SIZE];
	struct client_hello hello;
	int fds[2], mode;
	char *addr, c;

	fds[0] = uffd_open(&mode);
	if (fds[0] < 0)
		return 10;
	fds[1] = memfd_region_create("client", 2 * PAGE_SIZE);
	if (fds[1] < 0)
		return 11;
	addr = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    fds[1], 0);
	if (addr == MAP_FAILED)
		return 12;
	hello.addr = (uintptr_t)addr;
	hello.len = 2 * PAGE_SIZE;
	if (fdpass_send(sock, &hello, sizeof(hello), fds, 2) !=
	    (ssize_t)sizeof(hello))
		return 13;
	if (read(sock, &c, 1) != 1 || c != 'c')
		return 14;
	fill(page, PAGE_SIZE, 0x66);
	if (memcmp(addr, page, PAGE_SIZE) != 0)
		return 15;
	if (write(sock, "k", 1) != 1)
		return 16;
	if (read(sock, &c, 1) != 1 || c != 'x')
		return 17;
	/*
	 * Unmap before exiting: valgrind's leak check reads all memory at
	 * exit and would block on page 1, which nobody will fill any more.
	 */
	munmap(addr, 2 * PAGE_SIZE);
	return 0;
}

/*
 * The daemon registers a client's region through the passed uffd; then
 * the client exits, and the uffd must say so without ever blocking.
 */
START_TEST(test_dead_client)
{
	unsigned char page[PAGE_SIZE], back[PAGE_SIZE];
	struct pollfd pfd = { .events = POLLIN };
	struct client_hello hello;
	struct uffd_msg msgs[4];
	struct sockaddr_un addr;
	socklen_t addrlen;
	int sv[2], fds[FDPASS_MAX_FDS], nfds, uffd, memfd, pidfd, status, fl;
	uint64_t got, t0;
	pid_t pid, peer;
	char c;

	/*
	 * The client connects, as it would to the daemon: the peer of a
	 * socketpair() is whoever created the pair, not the forked child.
	 */
	sv[1] = listen_abstract(&addr, &addrlen);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(sv[1]);
		sv[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (sv[0] < 0 ||
		    connect(sv[0], (struct sockaddr *)&addr, addrlen) < 0)
			_exit(1);
		_exit(client_main(sv[0]));
	}
	sv[0] = accept4(sv[1], NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(sv[0], 0);
	close(sv[1]);

	ck_assert_int_eq(fdpass_recv(sv[0], &hello, sizeof(hello), fds, &nfds),
			 sizeof(hello));
	ck_assert_int_eq(nfds, 2);
	uffd = fds[0];
	memfd = fds[1];
	ck_assert_int_eq(fdpass_peer_cred(sv[0], &peer, NULL, NULL), 0);
	ck_assert_int_eq(peer, pid);
	pidfd = fdpass_peer_pidfd(sv[0]);
	ck_assert(pidfd >= 0 || pidfd == -ENOPROTOOPT);
	ck_assert_int_eq(uffd_adopt(uffd), 0);
	ck_assert_int_eq(memfd_region_check(memfd, hello.len), 0);

	/* Handshake and registration from another process work. */
	ck_assert_int_eq(uffd_api(uffd, WANT_FEATURES, &got), 0);
	ck_assert_uint_eq(got, WANT_FEATURES);
	ck_assert_int_eq(uffd_register(uffd, (void *)(uintptr_t)hello.addr,
				       hello.len, REG_MODE, NULL), 0);
	fill(page, PAGE_SIZE, 0x66);
	ck_assert_int_eq(uffd_copy(uffd, hello.addr, page, PAGE_SIZE, 0), 0);
	ck_assert_int_eq(write(sv[0], "c", 1), 1);
	ck_assert_int_eq(read(sv[0], &c, 1), 1);
	ck_assert_int_eq(c, 'k');

	/* The client exits. */
	ck_assert_int_eq(write(sv[0], "x", 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "client failed at step %d", WEXITSTATUS(status));

	/* What the fault path sees (measured on 6.18). */
	ck_assert_int_eq(uffd_copy(uffd, hello.addr + PAGE_SIZE, page,
				   PAGE_SIZE, 0), -ESRCH);
	ck_assert_int_eq(uffd_zeropage(uffd, hello.addr + PAGE_SIZE,
				       PAGE_SIZE, false), -ESRCH);
	ck_assert_int_eq(uffd_writeprotect(uffd, hello.addr, PAGE_SIZE, true,
					   false), -ESRCH);
	ck_assert_int_eq(uffd_writeprotect(uffd, hello.addr, PAGE_SIZE, false,
					   false), -ESRCH);
	ck_assert_int_eq(uffd_register(uffd, (void *)(uintptr_t)hello.addr,
				       PAGE_SIZE, REG_MODE, NULL), -ENOMEM);
	ck_assert_int_eq(uffd_unregister(uffd, (void *)(uintptr_t)hello.addr,
					 PAGE_SIZE), -ENOMEM);
	ck_assert_int_eq(uffd_wake(uffd, hello.addr, PAGE_SIZE), 0);

	/* Nothing on the uffd tells of the exit, and reads never block, */
	pfd.fd = uffd;
	ck_assert_int_eq(poll(&pfd, 1, BLOCKED_MS), 0);
	ck_assert_int_eq(uffd_read_msgs(uffd, msgs, 4), 0);
	/* not even after the client cleared the shared O_NONBLOCK. */
	fl = fcntl(uffd, F_GETFL);
	ck_assert_int_eq(fcntl(uffd, F_SETFL, fl & ~O_NONBLOCK), 0);
	t0 = now_ms();
	ck_assert_int_eq(uffd_read_msgs(uffd, msgs, 4), 0);
	ck_assert_uint_lt(now_ms() - t0, 1000);
	/* The pidfd does tell. */
	if (pidfd >= 0) {
		pfd.fd = pidfd;
		ck_assert_int_eq(poll(&pfd, 1, 0), 1);
		close(pidfd);
	}

	/* The memfd outlives the client. */
	read_page(memfd, 0, back);
	ck_assert_mem_eq(back, page, PAGE_SIZE);

	close(uffd);
	close(memfd);
	close(sv[0]);
}
END_TEST

/*
 * Without privilege the fallback is a user-mode-only uffd, and then a
 * kernel-mode access to a missing page fails with EFAULT. EVENT_FORK is
 * refused (EPERM) and uffd_api() goes on without it.
 */
START_TEST(test_user_mode_only)
{
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int uffd, memfd, mode, p[2];
		uint64_t got;
		char *addr;

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(20);
		uffd = uffd_open(&mode);
		if (uffd < 0)
			_exit(21);
		if (mode != UFFD_MODE_USER_ONLY)
			_exit(22);
		/* EVENT_FORK needs CAP_SYS_PTRACE: left out, not fatal. */
		if (uffd_api(uffd, UFFD_FEATURE_MISSING_SHMEM |
			     UFFD_FEATURE_EVENT_FORK, &got) ||
		    got != UFFD_FEATURE_MISSING_SHMEM)
			_exit(23);
		memfd = memfd_region_create("user-only", PAGE_SIZE);
		if (memfd < 0)
			_exit(24);
		addr = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_SHARED, memfd, 0);
		if (addr == MAP_FAILED)
			_exit(25);
		if (uffd_register(uffd, addr, PAGE_SIZE,
				  UFFDIO_REGISTER_MODE_MISSING, NULL))
			_exit(26);
		if (pipe(p))
			_exit(27);
		if (write(p[1], addr, PAGE_SIZE) >= 0)
			_exit(28);
		_exit(errno == EFAULT ? 0 : 29);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "user-mode-only child failed at step %d",
		      WEXITSTATUS(status));
}
END_TEST

/*****************
 * memfd
 *****************/

START_TEST(test_memfd)
{
	unsigned char buf[3 * PAGE_SIZE];
	char path[40];
	struct stat st;
	int fd, probe, seals, p[2], ro;
	bool noexec_seal;

	ck_assert_int_eq(memfd_region_create("empty", 0), -EINVAL);
	fd = memfd_region_create("check_uffd", 3 * PAGE_SIZE);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 3 * PAGE_SIZE);

	/* Sealed against exec where the kernel knows MFD_NOEXEC_SEAL. */
	probe = memfd_create("probe", MFD_CLOEXEC | 0x0008U);
	seals = fcntl(fd, F_GET_SEALS);
	ck_assert_int_ge(seals, 0);
	noexec_seal = probe >= 0;
	if (noexec_seal) {
		ck_assert(seals & F_SEAL_EXEC);
		ck_assert_uint_eq(st.st_mode & 0111, 0);
		close(probe);
	}

	ck_assert_int_eq(memfd_region_check(fd, 3 * PAGE_SIZE), 0);
	ck_assert_int_eq(memfd_region_check(fd, 3 * PAGE_SIZE + 1), -ERANGE);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(memfd_region_check(p[0], 0), -EINVAL);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(memfd_region_check(-1, 0), -EBADF);
	/* The same memfd opened read-only cannot be punched. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(ro, 0);
	ck_assert_int_eq(memfd_region_check(ro, 0), -EBADF);
	close(ro);

	/* Punch the middle page of three. */
	fill(buf, sizeof(buf), 0x80);
	ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
	ck_assert_int_eq(memfd_punch(fd, PAGE_SIZE, PAGE_SIZE), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_HOLE), PAGE_SIZE);
	ck_assert_int_eq(lseek(fd, PAGE_SIZE, SEEK_DATA), 2 * PAGE_SIZE);
	/* what holds data, bounded to the range asked (the page after a
	 * range says nothing of it) */
	ck_assert_int_eq(memfd_held(fd, 0, PAGE_SIZE), 1);
	ck_assert_int_eq(memfd_held(fd, 2 * PAGE_SIZE, PAGE_SIZE), 1);
	ck_assert_int_eq(memfd_held(fd, PAGE_SIZE, PAGE_SIZE), 0);
	ck_assert_int_eq(memfd_held(fd, 0, 2 * PAGE_SIZE), 1);
	ck_assert_int_eq(memfd_held(fd, 0, 3 * PAGE_SIZE), 2);
	ck_assert_int_eq(memfd_held(fd, PAGE_SIZE, 2 * PAGE_SIZE), 1);
	ck_assert_int_eq(memfd_held(-1, 0, PAGE_SIZE), -EBADF);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 3 * PAGE_SIZE);
	ck_assert_int_eq(memfd_punch(fd, -1, PAGE_SIZE), -EINVAL);
	ck_assert_int_eq(memfd_punch(fd, 0, 0), -EINVAL);
	ck_assert_int_eq(memfd_punch(-1, 0, PAGE_SIZE), -EBADF);

	/*
	 * A write-sealed memfd cannot be punched: refused up front. (Before
	 * MFD_NOEXEC_SEAL our memfds do not allow sealing at all.)
	 */
	if (noexec_seal) {
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
		ck_assert_int_eq(memfd_punch(fd, 0, PAGE_SIZE), -EPERM);
		ck_assert_int_eq(memfd_region_check(fd, 0), -EPERM);
	}
	close(fd);
}
END_TEST

/*****************
 * fd passing
 *****************/

START_TEST(test_fdpass)
{
	struct stat a, b;
	char buf[64], info[256], want[32];
	int sv[2], send_fds[2], fds[FDPASS_MAX_FDS], nfds = -1, i, pidfd, fd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	ssize_t n;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	send_fds[0] = memfd_region_create("fdpass", 2 * PAGE_SIZE);
	ck_assert_int_ge(send_fds[0], 0);
	send_fds[1] = uffd_open(NULL);
	ck_assert_int_ge(send_fds[1], 0);

	ck_assert_int_eq(fdpass_send(sv[0], "region", 7, send_fds, 2), 7);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), fds, &nfds), 7);
	ck_assert_str_eq(buf, "region");
	ck_assert_int_eq(nfds, 2);
	for (i = 0; i < 2; i++) {
		ck_assert_int_ne(fds[i], send_fds[i]);
		ck_assert_int_eq(fcntl(fds[i], F_GETFD), FD_CLOEXEC);
		ck_assert_int_eq(fstat(fds[i], &a), 0);
		ck_assert_int_eq(fstat(send_fds[i], &b), 0);
		ck_assert_uint_eq(a.st_dev, b.st_dev);
		ck_assert_uint_eq(a.st_ino, b.st_ino);
	}
	/* The daemon's checks accept them, in their places only. */
	ck_assert_int_eq(memfd_region_check(fds[0], 2 * PAGE_SIZE), 0);
	ck_assert_int_eq(uffd_adopt(fds[1]), 0);
	ck_assert_int_eq(uffd_adopt(fds[0]), -EINVAL);
	ck_assert_int_eq(memfd_region_check(fds[1], 0), -EINVAL);
	close(fds[0]);
	close(fds[1]);

	/* A message without fds. */
	ck_assert_int_eq(fdpass_send(sv[0], "plain", 6, NULL, 0), 6);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), fds, &nfds), 6);
	ck_assert_int_eq(nfds, 0);

	/* The peer, as the kernel knows it. */
	ck_assert_int_eq(fdpass_peer_cred(sv[1], &pid, &uid, &gid), 0);
	ck_assert_int_eq(pid, getpid());
	ck_assert_uint_eq(uid, geteuid());
	ck_assert_uint_eq(gid, getegid());
	pidfd = fdpass_peer_pidfd(sv[1]);
	if (pidfd != -ENOPROTOOPT) {
		ck_assert_int_ge(pidfd, 0);
		ck_assert_int_eq(fcntl(pidfd, F_GETFD), FD_CLOEXEC);
		snprintf(buf, sizeof(buf), "/proc/self/fdinfo/%d", pidfd);
		fd = open(buf, O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		n = read(fd, info, sizeof(info) - 1);
		ck_assert_int_gt(n, 0);
		info[n] = '\0';
		snprintf(want, sizeof(want), "Pid:\t%d\n", (int)getpid());
		ck_assert_ptr_nonnull(strstr(info, want));
		close(fd);
		close(pidfd);
	}

	/* Refused arguments. */
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, send_fds,
				     FDPASS_MAX_FDS + 1), -EINVAL);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 0, send_fds, 1), -EINVAL);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, NULL, 1), -EINVAL);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, 0, fds, &nfds), -EINVAL);

	/* A closed peer gives EPIPE, not SIGPIPE; then end of stream. */
	close(sv[1]);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, NULL, 0), -EPIPE);
	close(sv[0]);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	close(sv[0]);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), fds, &nfds), 0);
	ck_assert_int_eq(nfds, 0);
	close(sv[1]);
	close(send_fds[0]);
	close(send_fds[1]);
}
END_TEST

/* Too many fds, or truncated control data: every fd closed, no leak. */
START_TEST(test_fdpass_refuse)
{
	static bool before[FD_MAP_SIZE], after[FD_MAP_SIZE];
	static const int counts[] = { FDPASS_MAX_FDS + 1, FDPASS_MAX_FDS * 2,
				      FDPASS_MAX_FDS * 2 + 1, 32 };
	int sv[2], p[2], fds[FDPASS_MAX_FDS], nfds, fd;
	char buf[16];
	size_t i;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);

	for (i = 0; i < ARRAY_SIZE(counts); i++) {
		raw_send_fds(sv[0], p[0], counts[i]);
		fd_snapshot(before);
		nfds = -1;
		ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), fds,
					     &nfds), -EMSGSIZE);
		ck_assert_int_eq(nfds, 0);
		fd_snapshot(after);
		for (fd = 0; fd < FD_MAP_SIZE; fd++)
			ck_assert_msg(before[fd] == after[fd],
				      "%d fds sent: fd %d left open",
				      counts[i], fd);
	}

	/* Exactly the limit is fine, and the stream is still in step. */
	raw_send_fds(sv[0], p[0], FDPASS_MAX_FDS);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), fds, &nfds), 1);
	ck_assert_int_eq(buf[0], '!');
	ck_assert_int_eq(nfds, FDPASS_MAX_FDS);
	for (fd = 0; fd < nfds; fd++)
		close(fds[fd]);

	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * A peer in more supplementary groups than a small buffer holds: the
 * group sought comes last. The peer is a child with 1000 groups (root
 * only: setgroups) that makes the socket pair, so the kernel records its
 * groups on it.
 */
#define MANY_GROUPS 1000
#define GROUP_BASE 100000

START_TEST(test_peer_in_many_groups)
{
	gid_t groups[MANY_GROUPS];
	int sv[2], status, i;
	pid_t pid;

	if (geteuid() != 0) {
		fprintf(stderr, "check_uffd: SKIPPED test_peer_in_many_groups: "
			"setgroups needs root\n");
		return;
	}
	for (i = 0; i < MANY_GROUPS; i++)
		groups[i] = GROUP_BASE + (gid_t)i;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(MANY_GROUPS, groups) < 0 ||
		    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			_exit(2);
		_exit(fdpass_peer_in_group(sv[1], groups[MANY_GROUPS - 1]) == 1 &&
		      fdpass_peer_in_group(sv[1], groups[0]) == 1 &&
		      fdpass_peer_in_group(sv[1], GROUP_BASE - 1) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "group check in a 1000-group peer: status %#x", status);
}
END_TEST

static Suite *uffd_suite(void)
{
	Suite *s = suite_create("uffd");
	TCase *tc;

	tc = tcase_create("userfaultfd");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_api);
	tcase_add_test(tc, test_missing_copy);
	tcase_add_test(tc, test_dontwake_eexist);
	tcase_add_test(tc, test_writeprotect);
	tcase_add_test(tc, test_punch);
	tcase_add_test(tc, test_eviction_protocol);
	tcase_add_test(tc, test_dead_client);
	suite_add_tcase(s, tc);

	/* a part of its own (check_uffd_user_mode) */
	tc = ckpart_tcase(s, "user_mode_only");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_user_mode_only);

	tc = tcase_create("memfd");
	tcase_add_test(tc, test_memfd);
	suite_add_tcase(s, tc);

	tc = tcase_create("fdpass");
	tcase_add_test(tc, test_fdpass);
	tcase_add_test(tc, test_fdpass_refuse);
	tcase_add_test(tc, test_peer_in_many_groups);
	suite_add_tcase(s, tc);
	return s;
}

/* Part "user_mode_only": it needs root (to become nobody), no valgrind
 * (see the header), and vm.unprivileged_userfaultfd=0 (else nobody gets a
 * full uffd). */
static const char *cannot_run(const char *part)
{
	char sysctl[8] = "";
	int fd;

	if (geteuid() != 0)
		return "needs root to become nobody";
	if (via_kernel)
		return "not under valgrind";
	fd = open("/proc/sys/vm/unprivileged_userfaultfd", O_RDONLY);
	if (fd >= 0) {
		if (read(fd, sysctl, sizeof(sysctl) - 1) < 0)
			sysctl[0] = '\0';
		close(fd);
	}
	if (sysctl[0] != '0')
		return "vm.unprivileged_userfaultfd is not 0: unprivileged "
		       "processes get a full uffd here";
	return NULL;
}

int main(void)
{
	SRunner *sr;
	int ret;

	via_kernel = UNDER_VALGRIND();
	sr = srunner_create(uffd_suite());
	ret = ckpart_run(sr, CKPART, cannot_run);
	srunner_free(sr);
	return ret;
}
