/*
 * check_adopt.c - unit tests of taking a client's descriptors back
 * (daemon/adopt.c) from a real child process: its uffd and its memfd are
 * taken at their numbers; a reused pid (another start time), a number
 * that now holds another file, a blocking uffd, a closed number and an
 * exited process are all refused.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/adopt.h"
#include "lib/uffd/uffd.h"

/* The child's descriptors, at the numbers it holds them under. */
static int child_uffd, child_memfd, child_blocking_uffd;
static pid_t child;
static uint64_t child_start;

static void setup(void)
{
	int ready[2];
	char c;

	ck_assert_int_eq(pipe(ready), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		close(ready[0]);
		/* the same numbers in both processes: made before fork */
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	ck_assert_int_eq(adopt_start_time(child, &child_start), 0);
}

static void teardown(void)
{
	if (waitpid(child, NULL, WNOHANG) == 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
}

static void make_fds(void)
{
	child_uffd = uffd_open(NULL);
	ck_assert_int_ge(child_uffd, 0);
	child_blocking_uffd = uffd_open(NULL);
	ck_assert_int_ge(child_blocking_uffd, 0);
	ck_assert_int_eq(fcntl(child_blocking_uffd, F_SETFL, 0), 0);
	child_memfd = memfd_create("check_adopt", MFD_CLOEXEC);
	ck_assert_int_ge(child_memfd, 0);
}

static void close_fds(void)
{
	close(child_uffd);
	close(child_blocking_uffd);
	close(child_memfd);
}

START_TEST(test_takes_the_recorded_files)
{
	struct stat sb;
	int pidfd, fd;

	ck_assert_int_eq(fstat(child_memfd, &sb), 0);
	pidfd = adopt_process(child, child_start);
	ck_assert_int_ge(pidfd, 0);
	fd = adopt_uffd(pidfd, child_uffd);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = adopt_memfd(pidfd, child_memfd, sb.st_dev, sb.st_ino);
	ck_assert_int_ge(fd, 0);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	close(pidfd);
}
END_TEST

START_TEST(test_refuses_what_is_not_the_record)
{
	struct stat sb;
	int pidfd;

	ck_assert_int_eq(fstat(child_memfd, &sb), 0);
	/* a reused pid: the process has another start time */
	ck_assert_int_eq(adopt_process(child, child_start + 1), -ESTALE);
	pidfd = adopt_process(child, child_start);
	ck_assert_int_ge(pidfd, 0);
	/* the uffd's number holds a memfd, the memfd's a uffd */
	ck_assert_int_eq(adopt_uffd(pidfd, child_memfd), -ESTALE);
	ck_assert_int_eq(adopt_memfd(pidfd, child_uffd, sb.st_dev,
				     sb.st_ino), -ESTALE);
	/* another memfd at the number */
	ck_assert_int_eq(adopt_memfd(pidfd, child_memfd, sb.st_dev,
				     sb.st_ino + 1), -ESTALE);
	/* a uffd libuzswap did not make (blocking) */
	ck_assert_int_eq(adopt_uffd(pidfd, child_blocking_uffd), -ESTALE);
	/* a number the process does not hold */
	ck_assert_int_eq(adopt_uffd(pidfd, 1000), -ESTALE);
	ck_assert_int_eq(adopt_uffd(pidfd, -1), -EBADF);
	close(pidfd);
}
END_TEST

START_TEST(test_refuses_an_exited_process)
{
	int pidfd = adopt_process(child, child_start);

	ck_assert_int_ge(pidfd, 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ck_assert_int_eq(adopt_uffd(pidfd, child_uffd), -ESRCH);
	close(pidfd);
	/* reaped: the pid names nobody (teardown's kill finds no one) */
	ck_assert_int_eq(adopt_process(child, child_start), -ESRCH);
}
END_TEST

/* A command name with spaces and parentheses does not shift the fields
 * after it: read naively, this one would give field 20 (threads: 1). */
START_TEST(test_start_time_of_a_strange_name)
{
	uint64_t mine, odd;
	int ready[2];
	pid_t p;
	char c;

	ck_assert_int_eq(pipe(ready), 0);
	p = fork();
	ck_assert_int_ge(p, 0);
	if (p == 0) {
		prctl(PR_SET_NAME, "x) 1 2 (y", 0, 0, 0);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(adopt_start_time(getpid(), &mine), 0);
	ck_assert_int_eq(adopt_start_time(p, &odd), 0);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	close(ready[0]);
	close(ready[1]);
	ck_assert_uint_ge(odd, mine);
	ck_assert_int_eq(adopt_start_time(0x3ffffff0, &mine), -ESRCH);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("adopt");
	TCase *tc = tcase_create("descriptors");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, make_fds, close_fds);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_takes_the_recorded_files);
	tcase_add_test(tc, test_refuses_what_is_not_the_record);
	tcase_add_test(tc, test_refuses_an_exited_process);
	tcase_add_test(tc, test_start_time_of_a_strange_name);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
