/*
 * check_fullio.c - unit tests of the full-read/write helper (lib/common/
 * fullio.c): megabytes through a pipe while signals interrupt the calls
 * (short counts and EINTR, both ways), the end of a file or a pipe
 * (-EIO), positioned reads and writes that leave the file position alone,
 * and the errors passed through (-EINVAL, -EBADF, -EAGAIN).
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_fullio
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/common/fullio.h"
#include "tests/tmpdir.h"

#define BIG	(8u << 20)	/* through the pipe: 128 times its buffer */

static void on_signal(int sig)
{
	(void)sig;
}

/* SIGUSR1 interrupts blocking calls: no SA_RESTART. */
static void signal_setup(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + i / 4096);
	return p;
}

/*
 * The other end of the pipe, in 4 KiB pieces (so that the side under test
 * gets short counts), and the thread that interrupts the side under test
 * with SIGUSR1 every 100 us until @stop.
 */
struct pipe_test {
	int fd;
	uint8_t *buf;
	bool write;
	int ret;
	pthread_t target;
	atomic_bool stop;
};

static void *peer_run(void *arg)
{
	struct pipe_test *t = arg;
	size_t off;

	for (off = 0; off < BIG && !t->ret; off += 4096)
		t->ret = t->write ? fullio_write(t->fd, t->buf + off, 4096)
				  : fullio_read(t->fd, t->buf + off, 4096);
	return NULL;
}

static void *interrupter_run(void *arg)
{
	struct pipe_test *t = arg;
	struct timespec ts = { .tv_nsec = 100000 };

	while (!atomic_load(&t->stop)) {
		pthread_kill(t->target, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* BIG bytes through a pipe, this thread writing (@writes) or reading
 * them in one call while interrupted. */
static void through_pipe(bool writes)
{
	uint8_t *src = pattern(BIG), *dst = calloc(1, BIG);
	struct pipe_test t = { .target = pthread_self(), .write = !writes };
	pthread_t peer, interrupter;
	int fds[2], ret;

	ck_assert_ptr_nonnull(dst);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	t.fd = writes ? fds[0] : fds[1];
	t.buf = writes ? dst : src;
	ck_assert_int_eq(pthread_create(&peer, NULL, peer_run, &t), 0);
	ck_assert_int_eq(pthread_create(&interrupter, NULL, interrupter_run,
					&t), 0);
	ret = writes ? fullio_write(fds[1], src, BIG)
		     : fullio_read(fds[0], dst, BIG);
	atomic_store(&t.stop, true);
	pthread_join(interrupter, NULL);
	close(fds[writes]);	/* a peer left waiting sees the end */
	pthread_join(peer, NULL);
	close(fds[!writes]);
	ck_assert_int_eq(ret, 0);
	ck_assert_int_eq(t.ret, 0);
	ck_assert_int_eq(memcmp(src, dst, BIG), 0);
	free(src);
	free(dst);
}

START_TEST(test_write_interrupted)
{
	through_pipe(true);
}
END_TEST

START_TEST(test_read_interrupted)
{
	through_pipe(false);
}
END_TEST

/* A temporary file of @len bytes of pattern(@len). */
static int tmpfile_of(size_t len)
{
	char path[256];
	uint8_t *p = pattern(len);
	int fd;

	tmpdir_template(path, sizeof(path), "check_fullio");
	fd = mkostemp(path, O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(fullio_write(fd, p, len), 0);
	free(p);
	return fd;
}

/* Positioned calls: at their offset, the file position left alone. */
START_TEST(test_positioned)
{
	uint8_t *want = pattern(3 * 4096), got[5000];
	int fd = tmpfile_of(3 * 4096);

	ck_assert_int_eq(lseek(fd, 100, SEEK_SET), 100);
	ck_assert_int_eq(fullio_pread(fd, got, 5000, 4000), 0);
	ck_assert_int_eq(memcmp(got, want + 4000, 5000), 0);
	memset(got, 0xa5, sizeof(got));
	ck_assert_int_eq(fullio_pwrite(fd, got, 5000, 3 * 4096 - 10), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 100);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 3 * 4096 - 10 + 5000);
	ck_assert_int_eq(fullio_pread(fd, want, 5000, 3 * 4096 - 10), 0);
	ck_assert_int_eq(memcmp(got, want, 5000), 0);
	close(fd);
	free(want);
}
END_TEST

/* The end of a file or of a pipe before @len bytes: -EIO. */
START_TEST(test_end_of_file)
{
	uint8_t buf[8192];
	int fd = tmpfile_of(4096), fds[2];

	ck_assert_int_eq(fullio_pread(fd, buf, 4097, 0), -EIO);
	ck_assert_int_eq(fullio_pread(fd, buf, 1, 4096), -EIO);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(fullio_read(fd, buf, sizeof(buf)), -EIO);
	close(fd);

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	ck_assert_int_eq(fullio_write(fds[1], buf, 100), 0);
	close(fds[1]);
	ck_assert_int_eq(fullio_read(fds[0], buf, 101), -EIO);
	close(fds[0]);
}
END_TEST

/* Errors are the failed call's, and a negative offset is refused. */
START_TEST(test_errors)
{
	uint8_t buf[16] = { 0 };
	int fd = tmpfile_of(16), fds[2];

	ck_assert_int_eq(fullio_pread(fd, buf, 1, -1), -EINVAL);
	ck_assert_int_eq(fullio_pwrite(fd, buf, 1, -4096), -EINVAL);
	close(fd);
	ck_assert_int_eq(fullio_read(fd, buf, 1), -EBADF);
	ck_assert_int_eq(fullio_write(fd, buf, 1), -EBADF);
	ck_assert_int_eq(fullio_read(fd, buf, 0), 0);

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	ck_assert_int_eq(fullio_read(fds[0], buf, 1), -EAGAIN);
	close(fds[0]);
	ck_assert_int_eq(fullio_write(fds[1], buf, 1), -EPIPE);
	close(fds[1]);
}
END_TEST

static Suite *fullio_suite(void)
{
	Suite *s = suite_create("fullio");
	TCase *tc = tcase_create("fullio");

	tcase_add_unchecked_fixture(tc, signal_setup, NULL);
	tcase_add_test(tc, test_write_interrupted);
	tcase_add_test(tc, test_read_interrupted);
	tcase_add_test(tc, test_positioned);
	tcase_add_test(tc, test_end_of_file);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fullio_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
