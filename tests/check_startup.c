/*
 * check_startup.c - uzswapd_main()'s exit codes for startup failures that
 * no outside condition can provoke: an allocation of the compressed store
 * fails (failpoint_arm()), in a child that runs uzswapd_main() itself.
 *
 * Files live in a fresh directory under $TMPDIR (default /tmp).
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/uzswapd.h"
#include "lib/common/failpoint.h"

/*
 * With no backing file, the store's pool is the first allocation that
 * asks failpoint_hit(): the daemon must say the store failed, not the
 * threads (it said UZSWAPD_EXIT_THREADS).
 */
START_TEST(test_store_failure_exit_code)
{
	const char *tmp = getenv("TMPDIR");
	char dir[256], sock[300], conf[300];
	char *argv[] = { "uzswapd", "--socket", sock, "--config", conf,
			 "--no-mlock", "--backing-file", "none", "--metrics",
			 "off", NULL };
	int status, fd;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/check_startup.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(conf, sizeof(conf), "%s/uzswapd.conf", dir);
	fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		failpoint_arm(1);
		_exit(uzswapd_main(10, argv));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	unlink(sock);
	unlink(conf);
	rmdir(dir);
	ck_assert_msg(WIFEXITED(status), "status %#x", status);
	ck_assert_int_eq(WEXITSTATUS(status), UZSWAPD_EXIT_STORE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("startup");
	TCase *tc = tcase_create("exit codes");
	SRunner *sr;
	int failed;

	/* a daemon that did not fail would serve until killed */
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_store_failure_exit_code);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
