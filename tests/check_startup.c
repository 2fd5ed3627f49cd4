/*
 * check_startup.c - uzswapd_main() on startup failures, in a child that
 * runs it itself: the exit code says which step failed (an allocation of
 * the compressed store made to fail with failpoint_arm(), which no outside
 * condition can provoke; the metrics address taken once everything else
 * runs), and the startup unwinds: no thread left running, no descriptor
 * left open, the control socket and the backing file removed.
 *
 * Files live in a fresh directory under $TMPDIR (default /tmp), the
 * daemon's state directory too (never the system's /run/uzswap/state).
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/uzswapd.h"
#include "lib/common/failpoint.h"
#include "tests/tmpdir.h"

/* What a child says when uzswapd_main() returned but left something. */
enum leftover {
	LEFT_THREADS = 100,
	LEFT_FDS,
	LEFT_SOCKET,
	LEFT_BACKING,
};

/* The scratch directory of a test and the paths in it. */
static struct {
	char dir[256], sock[300], conf[300], backing[300], state[300];
} t;

static void setup(void)
{
	int fd;

	ck_assert_int_eq(tmpdir_make(t.dir, sizeof(t.dir), "check_startup"), 0);
	snprintf(t.sock, sizeof(t.sock), "%s/sock", t.dir);
	snprintf(t.conf, sizeof(t.conf), "%s/uzswapd.conf", t.dir);
	snprintf(t.backing, sizeof(t.backing), "%s/backing", t.dir);
	snprintf(t.state, sizeof(t.state), "%s/state", t.dir);
	fd = open(t.conf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

/* Remove the state directory's files (the lock, superblocks). */
static void state_remove(void)
{
	struct dirent *e;
	DIR *dir = opendir(t.state);

	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(dir), e->d_name, 0);
	closedir(dir);
	rmdir(t.state);
}

static void teardown(void)
{
	state_remove();
	unlink(t.sock);
	unlink(t.backing);
	unlink(t.conf);
	rmdir(t.dir);
}

/* Entries of directory @path, with "." and ".." and the descriptor that
 * reads it (when it lists /proc/self/fd) left out. */
static int count_entries(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(dir))
			n++;
	closedir(dir);
	return n;
}

/*
 * A joined thread can still be listed in /proc/self/task for a moment:
 * pthread_join() returns when the kernel clears the thread's tid, before
 * the task is released. Wait up to 5 s for the count of @path's entries
 * to be @want; return the count last seen. A thread left running keeps
 * the count up and is still found.
 */
static int settled_entries(const char *path, int want)
{
	struct timespec pause = { 0, 1000000 };
	int n, tries = 5000;

	while ((n = count_entries(path)) != want && --tries > 0)
		nanosleep(&pause, NULL);
	return n;
}

static void *tell_tid(void *arg)
{
	*(pid_t *)arg = gettid();
	return NULL;
}

/* Wait until the joined thread @tid has left /proc/self/task. */
static void wait_released(pid_t tid)
{
	struct timespec pause = { 0, 1000000 };
	char path[64];
	int tries = 5000;

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	while (access(path, F_OK) == 0 && --tries > 0)
		nanosleep(&pause, NULL);
}

/*
 * In a child: run uzswapd_main(@argc, @argv) with allocation @fail_nth
 * made to fail (0: none), then check what it left behind. Return the
 * child's exit code: the daemon's, or an enum leftover.
 */
static int run_child(int argc, char **argv, unsigned long fail_nth)
{
	int status, fds, threads, ret;
	pid_t pid = fork(), tid_nr = 0;
	pthread_t tid;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* libuv opens its process-wide signal pipe at the first loop
		 * and keeps it: open it before counting */
		uv_loop_t loop;

		if (uv_loop_init(&loop) || uv_loop_close(&loop))
			_exit(LEFT_FDS);
		/* ThreadSanitizer starts a thread of its own with the first
		 * thread created: create one before counting */
		if (pthread_create(&tid, NULL, tell_tid, &tid_nr) ||
		    pthread_join(tid, NULL))
			_exit(LEFT_THREADS);
		wait_released(tid_nr);
		fds = count_entries("/proc/self/fd");
		threads = count_entries("/proc/self/task");
		failpoint_arm(fail_nth);
		ret = uzswapd_main(argc, argv);
		failpoint_arm(0);
		if (settled_entries("/proc/self/task", threads) != threads)
			_exit(LEFT_THREADS);
		if (count_entries("/proc/self/fd") != fds)
			_exit(LEFT_FDS);
		if (access(t.sock, F_OK) == 0)
			_exit(LEFT_SOCKET);
		if (access(t.backing, F_OK) == 0)
			_exit(LEFT_BACKING);
		_exit(ret);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "status %#x", status);
	return WEXITSTATUS(status);
}

/*
 * With no backing file, the store's pool is the first allocation that
 * asks failpoint_hit(): the daemon must say the store failed, not the
 * threads (it said UZSWAPD_EXIT_THREADS).
 */
START_TEST(test_store_failure_exit_code)
{
	char *argv[] = { "uzswapd", "--socket", t.sock, "--config", t.conf,
			 "--no-mlock", "--backing-file", "none", "--metrics",
			 "off", "--state-dir", t.state, NULL };

	ck_assert_int_eq(run_child(12, argv, 1), UZSWAPD_EXIT_STORE);
}
END_TEST

/*
 * /metrics is the last step: when its address is taken, the workers, the
 * fault threads and the evictors already run, the socket is bound and the
 * backing file made. All of it must be undone (the threads were left
 * running, and the socket and backing file on disk).
 */
START_TEST(test_metrics_failure_unwinds)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	char addr[64];
	char *argv[] = { "uzswapd", "--socket", t.sock, "--config", t.conf,
			 "--no-mlock", "--backing-file", t.backing,
			 "--metrics", addr, "--state-dir", t.state, NULL };
	int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(busy, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(busy, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(busy, 1), 0);
	ck_assert_int_eq(getsockname(busy, (struct sockaddr *)&sa, &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u",
		 (unsigned int)ntohs(sa.sin_port));
	ck_assert_int_eq(run_child(12, argv, 0), UZSWAPD_EXIT_METRICS);
	close(busy);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("startup");
	TCase *tc = tcase_create("failures");
	SRunner *sr;
	int failed;

	/* a daemon that did not fail would serve until killed */
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_store_failure_exit_code);
	tcase_add_test(tc, test_metrics_failure_unwinds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
