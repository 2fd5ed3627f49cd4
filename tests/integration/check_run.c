/*
 * check_run.c - integration tests of uzswap-run: the real command (cli/
 * uzswap-run, linking libuzswap) on real programs. UZSWAP_PRELOAD names a
 * dummy file in the test's directory: what these tests check needs no
 * preload library, only what uzswap-run does before and at the exec (the
 * loader says on stderr that it ignores the dummy; nothing reads it).
 *
 * Test cases of run_suite():
 *   usage    no program, an unknown option, an option without its value, a
 *            bad --limit or inherited UZSWAP_LIMIT, no preload library:
 *            exit 125 with one line on stderr, nothing run; options end
 *            at PROGRAM; --help and --version
 *   find     a program not in $PATH, a path to nothing: 127; a directory,
 *            a file without execute permission: 126
 *   exec     a dynamic program (sh) runs in uzswap-run's process (the pid
 *            the test forked) with the environment set exactly (LD_PRELOAD
 *            prepended to the one it had, the UZSWAP_* variables of the
 *            options, PYTHONMALLOC=malloc); its exit status and its death
 *            by a signal come through; #! scripts of a dynamic
 *            interpreter, direct or through /usr/bin/env, run
 *   refuse   a setuid and a setgid copy of a dynamic program, a 32-bit and
 *            a foreign-machine ELF header: 122, nothing run
 *   require  --require with nothing at the socket: 121, nothing run; with
 *            a real uzswapd there: the program runs with UZSWAP_REQUIRE=1
 * Parts (ckpart.h: each its own program, SKIP where it cannot run):
 *   static   a static and a static-pie program (cc -static, in the test's
 *            directory), a #! script whose interpreter is static: 122,
 *            "statically linked"
 *   go       /usr/bin/promtool, a real dynamically linked Go program: 122,
 *            "Go"
 *   filecap  a copy of a dynamic program with file capabilities
 *            (security.capability): 122
 *
 * Every file a test makes is in its own directory under the harness's
 * root, removed at its end; the only processes it starts are uzswap-run
 * (reaped, or killed by pid past RUN_MS), the compiler, and uzswapd in
 * `require` (stopped by the harness). One test case: CK_RUN_CASE=exec
 * ./check_run; files kept: UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/common/run-exit.h"
#include "daemon_harness.h"

#define TIMEOUT_CASE	120
#define RUN_MS		30000		/* one uzswap-run */
#define CC_MS		60000		/* one cc -static */
#define OUT_SIZE	8192
#define PROMTOOL	"/usr/bin/promtool"
#define DYNAMIC		"/bin/true"	/* a dynamically linked program */

static char dir[PATH_MAX - 64];		/* the test's directory */
static char preload[PATH_MAX];		/* the dummy library in it */
static char out[OUT_SIZE], err[OUT_SIZE];

/*****************
 * Helpers
 *****************/

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* The test's directory, with an empty file for the preload library. */
static void dir_make(void)
{
	int fd;

	ck_assert_int_eq(dh_mkdtemp(dir, sizeof(dir), "run"), 0);
	snprintf(preload, sizeof(preload), "%s/libdummy-preload.so", dir);
	fd = open(preload, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "cannot create %s: %s", preload,
		      strerror(errno));
	close(fd);
}

static void dir_remove(void)
{
	if (dir[0] && !getenv("UZSWAP_ITEST_KEEP"))
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* "@dir/@name" into @buf. */
static const char *in_dir(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
	return buf;
}

/* Write @text into the file @path, mode @mode. Return: 0 or -errno. */
static int write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	if (fclose(f) || chmod(path, mode))
		return -errno;
	return 0;
}

/* write_text(), or fail the test. */
static void write_file(const char *path, const char *text, mode_t mode)
{
	int ret = write_text(path, text, mode);

	ck_assert_msg(!ret, "cannot write %s: %s", path, strerror(-ret));
}

/* Copy the file @from to @to, mode @mode (chmod: with setuid bits). */
static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in, o;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(in >= 0, "cannot open %s: %s", from, strerror(errno));
	o = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	ck_assert_msg(o >= 0, "cannot create %s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(o, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(o), 0);
	ck_assert_int_eq(chmod(to, mode), 0);
}

/* Read the file @path into @buf (NUL-terminated, cut to @size). */
static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* In the child: the test's environment changed by @env ("NAME=value"
 * sets NAME, a bare "NAME" removes it), UZSWAP_PRELOAD the dummy unless
 * @env says otherwise. */
static void child_environment(const char *const *env)
{
	char name[256];
	const char *eq;

	setenv("UZSWAP_PRELOAD", preload, 1);
	for (; env && *env; env++) {
		eq = strchr(*env, '=');
		if (!eq) {
			unsetenv(*env);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
		setenv(name, eq + 1, 1);
	}
}

/*
 * run_env() - run uzswap-run with @args (NULL-terminated) to its end, in
 * the environment child_environment() makes of @env, stdin /dev/null;
 * its stdout into out[], its stderr into err[], the pid the test forked
 * into *@pid (may be NULL). Past RUN_MS it is killed and the test fails.
 * Return: its wait status.
 */
static int run_env(const char *const *env, const char *const *args,
		   pid_t *pid)
{
	char out_path[PATH_MAX], err_path[PATH_MAX];
	const char *argv[32] = { UZSWAP_RUN_PATH };
	long long deadline = dh_deadline(RUN_MS);
	int status, i, fd;
	pid_t child, got;

	for (i = 0; args[i]; i++) {
		ck_assert_int_lt(i + 2, (int)(sizeof(argv) / sizeof(argv[0])));
		argv[i + 1] = args[i];
	}
	in_dir(out_path, sizeof(out_path), "stdout");
	in_dir(err_path, sizeof(err_path), "stderr");
	child = fork();
	ck_assert_int_ge(child, 0);
	if (!child) {
		child_environment(env);
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(99);
	}
	while ((got = waitpid(child, &status, WNOHANG)) == 0 &&
	       dh_now_ms() < deadline)
		dh_sleep_ms(5);
	if (!got) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		ck_abort_msg("uzswap-run %s ran over %d ms", args[0] ? args[0]
			     : "", RUN_MS);
	}
	ck_assert_int_eq(got, child);
	read_file(out_path, out, sizeof(out));
	read_file(err_path, err, sizeof(err));
	if (pid)
		*pid = child;
	return status;
}

static int run(const char *const *args)
{
	return run_env(NULL, args, NULL);
}

/* Whether wait status @status is "exited with @code". */
static bool exited_with(int status, int code)
{
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}

/* uzswap-run refused with @code: one line on stderr holding @needle,
 * and nothing on stdout (nothing ran). */
static void assert_refused(int status, int code, const char *needle)
{
	DH_CHECK(exited_with(status, code), "%s, expected exit %d; stderr: %s",
		 dh_status_str(status), code, err);
	DH_CHECK(!out[0], "stdout: %s", out);
	DH_CHECK(!strncmp(err, "uzswap-run: ", 12), "stderr: %s", err);
	DH_CHECK(strchr(err, '\n') == err + strlen(err) - 1,
		 "not one line: %s", err);
	DH_CHECK(strstr(err, needle), "no \"%s\" in: %s", needle, err);
}

/* Build a static program @name in the test's directory with cc @flag.
 * Return: the compiler's wait status (its stderr in err[]), or -errno. */
static int cc_static(const char *name, const char *flag)
{
	char src[PATH_MAX], bin[PATH_MAX];
	int ret;

	in_dir(src, sizeof(src), "static.c");
	ret = write_text(src, "int main(void) { return 0; }\n", 0644);
	if (ret)
		return ret;
	in_dir(bin, sizeof(bin), name);
	return dh_run((const char *[]){ "cc", flag, "-o", bin, src, NULL },
		      NULL, NULL, NULL, 0, err, sizeof(err), CC_MS);
}

/*****************
 * usage
 *****************/

START_TEST(test_usage_errors)
{
	char missing[PATH_MAX + 32];

	assert_refused(run((const char *[]){ NULL }), UZSWAP_RUN_ERROR,
		       "no program");
	assert_refused(run((const char *[]){ "--bogus", "true", NULL }),
		       UZSWAP_RUN_ERROR, "unknown option '--bogus'");
	assert_refused(run((const char *[]){ "-x", "true", NULL }),
		       UZSWAP_RUN_ERROR, "unknown option '-x'");
	assert_refused(run((const char *[]){ "--limit", NULL }),
		       UZSWAP_RUN_ERROR, "needs a value");
	assert_refused(run((const char *[]){ "--limit", "lots", "true",
					     NULL }),
		       UZSWAP_RUN_ERROR, "'lots' is not a budget");
	assert_refused(run((const char *[]){ "-l", "512K", "true", NULL }),
		       UZSWAP_RUN_ERROR, "not a budget");
	assert_refused(run((const char *[]){ "--name", "", "true", NULL }),
		       UZSWAP_RUN_ERROR, "--name");
	assert_refused(run_env((const char *[]){ "UZSWAP_LIMIT=2X", NULL },
			       (const char *[]){ "true", NULL }, NULL),
		       UZSWAP_RUN_ERROR, "UZSWAP_LIMIT='2X'");
	snprintf(missing, sizeof(missing), "UZSWAP_PRELOAD=%s/missing.so",
		 dir);
	assert_refused(run_env((const char *[]){ missing, NULL },
			       (const char *[]){ "true", NULL }, NULL),
		       UZSWAP_RUN_ERROR, "the preload library");
}
END_TEST

START_TEST(test_usage_help)
{
	int status;

	status = run((const char *[]){ "--help", NULL });
	DH_CHECK(exited_with(status, 0), "--help: %s", dh_status_str(status));
	DH_CHECK(strstr(out, "Usage: uzswap-run") && strstr(out, "--require"),
		 "--help: %s", out);
	status = run((const char *[]){ "-V", NULL });
	DH_CHECK(exited_with(status, 0) && !strcmp(out, "uzswap-run "
						     PACKAGE_VERSION "\n"),
		 "-V: %s: %s", dh_status_str(status), out);
	/* options end at PROGRAM: the rest are its own */
	status = run((const char *[]){ "/bin/echo", "--limit", "x", NULL });
	DH_CHECK(exited_with(status, 0) && !strcmp(out, "--limit x\n"),
		 "echo --limit x: %s: %s", dh_status_str(status), out);
	status = run((const char *[]){ "--", "/bin/echo", "-l", NULL });
	DH_CHECK(exited_with(status, 0) && !strcmp(out, "-l\n"),
		 "-- echo -l: %s: %s", dh_status_str(status), out);
}
END_TEST

/*****************
 * find
 *****************/

START_TEST(test_find_not_found)
{
	char path[PATH_MAX];

	assert_refused(run((const char *[]){ "uzswap-no-such-program", NULL }),
		       UZSWAP_RUN_NOT_FOUND, "not found in $PATH");
	in_dir(path, sizeof(path), "nothing");
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_NOT_FOUND, "not found");
}
END_TEST

START_TEST(test_find_cannot_execute)
{
	char path[PATH_MAX];

	assert_refused(run((const char *[]){ dir, NULL }),
		       UZSWAP_RUN_CANNOT_EXEC, "cannot execute");
	in_dir(path, sizeof(path), "not-executable");
	write_file(path, "#!/bin/sh\necho ran\n", 0644);
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_CANNOT_EXEC, "cannot execute");
}
END_TEST

/*****************
 * exec
 *****************/

#define SHOW_ENV "printf '%s|%s|%s|%s|%s|%s|%s\\n' \"$LD_PRELOAD\" "	\
	"\"${UZSWAP_LIMIT-unset}\" \"${UZSWAP_NAME-unset}\" "		\
	"\"${UZSWAP_SOCKET-unset}\" \"${UZSWAP_REQUIRE-unset}\" "	\
	"\"${PYTHONMALLOC-unset}\" $$"

/* Every option: their variables, LD_PRELOAD prepended, in the same pid. */
START_TEST(test_exec_environment)
{
	const char *const env[] = { "LD_PRELOAD=/old/libfirst.so",
				    "UZSWAP_LIMIT", "UZSWAP_NAME",
				    "UZSWAP_SOCKET",
				    "UZSWAP_REQUIRE", "PYTHONMALLOC=pymalloc",
				    NULL };
	char want[OUT_SIZE];
	pid_t pid;
	int status;

	status = run_env(env, (const char *[]){ "--limit", "2G", "-n", "heap",
						"--socket", "/x/uz.sock", "--",
						"sh", "-c", SHOW_ENV, NULL },
			 &pid);
	DH_CHECK(exited_with(status, 0), "%s; stderr: %s",
		 dh_status_str(status), err);
	snprintf(want, sizeof(want), "%s:/old/libfirst.so|2G|heap|/x/uz.sock|"
		 "unset|malloc|%d\n", preload, (int)pid);
	DH_CHECK(!strcmp(out, want), "got %s, expected %s", out, want);
}
END_TEST

/* No option: LD_PRELOAD is the library alone, the rest left unset. */
START_TEST(test_exec_defaults)
{
	const char *const env[] = { "LD_PRELOAD", "UZSWAP_LIMIT",
				    "UZSWAP_NAME", "UZSWAP_SOCKET",
				    "UZSWAP_REQUIRE", "PYTHONMALLOC", NULL };
	char want[OUT_SIZE];
	pid_t pid;
	int status;

	status = run_env(env, (const char *[]){ "sh", "-c", SHOW_ENV, NULL },
			 &pid);
	DH_CHECK(exited_with(status, 0), "%s; stderr: %s",
		 dh_status_str(status), err);
	snprintf(want, sizeof(want), "%s|unset|unset|unset|unset|malloc|%d\n",
		 preload, (int)pid);
	DH_CHECK(!strcmp(out, want), "got %s, expected %s", out, want);
}
END_TEST

START_TEST(test_exec_exit_status)
{
	int status = run((const char *[]){ "sh", "-c", "exit 7", NULL });

	DH_CHECK(exited_with(status, 7), "%s, expected exit 7",
		 dh_status_str(status));
}
END_TEST

START_TEST(test_exec_signal)
{
	int status = run((const char *[]){ "sh", "-c", "kill -TERM $$",
					   NULL });

	DH_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
		 "%s, expected signal %d", dh_status_str(status), SIGTERM);
}
END_TEST

/* Scripts of a dynamic interpreter run, with their arguments. */
START_TEST(test_exec_scripts)
{
	char path[PATH_MAX];
	int status;

	in_dir(path, sizeof(path), "direct");
	write_file(path, "#!/bin/sh\necho \"direct $1\"\n", 0755);
	status = run((const char *[]){ path, "arg", NULL });
	DH_CHECK(exited_with(status, 0) && !strcmp(out, "direct arg\n"),
		 "%s: %s: %s", path, dh_status_str(status), out);
	in_dir(path, sizeof(path), "by-env");
	write_file(path, "#!/usr/bin/env sh\necho \"by env $1\"\n", 0755);
	status = run((const char *[]){ path, "arg", NULL });
	DH_CHECK(exited_with(status, 0) && !strcmp(out, "by env arg\n"),
		 "%s: %s: %s", path, dh_status_str(status), out);
}
END_TEST

/*****************
 * refuse
 *****************/

START_TEST(test_refuse_setuid)
{
	char path[PATH_MAX];

	in_dir(path, sizeof(path), "setuid-true");
	copy_file(DYNAMIC, path, 04755);
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_UNREACHABLE, "setuid");
	in_dir(path, sizeof(path), "setgid-true");
	copy_file(DYNAMIC, path, 02755);
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_UNREACHABLE, "setgid");
}
END_TEST

/* Patch byte @off of a copy of a dynamic program to @v: its ELF header
 * says another class or machine. */
static void patched_copy(const char *path, off_t off, unsigned char v)
{
	int fd;

	copy_file(DYNAMIC, path, 0755);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

START_TEST(test_refuse_foreign_elf)
{
	char path[PATH_MAX];
	unsigned char other;

	in_dir(path, sizeof(path), "class32");
	patched_copy(path, EI_CLASS, ELFCLASS32);
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_UNREACHABLE, "64-bit");
	in_dir(path, sizeof(path), "foreign");
	other = EM_X86_64;
#if defined(__x86_64__)
	other = EM_AARCH64;
#endif
	patched_copy(path, offsetof(Elf64_Ehdr, e_machine), other);
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_UNREACHABLE, "another machine");
}
END_TEST

/*****************
 * require
 *****************/

static struct dh_daemon dmn;

static void daemon_down(void)
{
	if (dmn.dir[0])
		dh_down(&dmn, NULL);
	memset(&dmn, 0, sizeof(dmn));
	dir_remove();
}

START_TEST(test_require_no_daemon)
{
	char sock[PATH_MAX];

	in_dir(sock, sizeof(sock), "nobody.sock");
	assert_refused(run((const char *[]){ "--require", "--socket", sock,
					     "sh", "-c", "echo ran", NULL }),
		       UZSWAP_RUN_NO_DAEMON, "cannot reach uzswapd");
}
END_TEST

START_TEST(test_require_daemon)
{
	char want[PATH_MAX + 8];
	int status;

	dh_up(&dmn, NULL);
	status = run((const char *[]){ "-r", "-s", dmn.sock, "sh", "-c",
				       "echo $UZSWAP_REQUIRE $UZSWAP_SOCKET",
				       NULL });
	snprintf(want, sizeof(want), "1 %s\n", dmn.sock);
	DH_ASSERT(exited_with(status, 0) && !strcmp(out, want),
		  "%s: %s; stderr: %s", dh_status_str(status), out, err);
}
END_TEST

/*****************
 * Parts: static, go, filecap
 *****************/

START_TEST(test_static)
{
	char path[PATH_MAX], script[PATH_MAX], text[PATH_MAX + 16];

	DH_CHECK(exited_with(cc_static("static", "-static"), 0),
		 "cc -static: %s", err);
	in_dir(path, sizeof(path), "static");
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_UNREACHABLE, "statically linked");
	if (exited_with(cc_static("static-pie", "-static-pie"), 0)) {
		in_dir(path, sizeof(path), "static-pie");
		assert_refused(run((const char *[]){ path, NULL }),
			       UZSWAP_RUN_UNREACHABLE, "statically linked");
	}
	in_dir(path, sizeof(path), "static");
	in_dir(script, sizeof(script), "script");
	snprintf(text, sizeof(text), "#!%s -x\necho ran\n", path);
	write_file(script, text, 0755);
	assert_refused(run((const char *[]){ script, NULL }),
		       UZSWAP_RUN_UNREACHABLE, "statically linked");
	DH_CHECK(strstr(err, "its interpreter"), "stderr: %s", err);
}
END_TEST

START_TEST(test_go)
{
	assert_refused(run((const char *[]){ PROMTOOL, "--version", NULL }),
		       UZSWAP_RUN_UNREACHABLE, "a Go program");
}
END_TEST

/* security.capability, version 2: CAP_NET_RAW permitted and effective. */
static int set_file_cap(const char *path)
{
	struct vfs_cap_data cap = {
		.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE,
		.data = { { .permitted = 1u << CAP_NET_RAW } },
	};

	return setxattr(path, "security.capability", &cap,
			XATTR_CAPS_SZ_2, 0) ? -errno : 0;
}

START_TEST(test_filecap)
{
	char path[PATH_MAX];

	in_dir(path, sizeof(path), "cap-true");
	copy_file(DYNAMIC, path, 0755);
	ck_assert_int_eq(set_file_cap(path), 0);
	assert_refused(run((const char *[]){ path, NULL }),
		       UZSWAP_RUN_UNREACHABLE, "file capabilities");
}
END_TEST

/* Whether the machine can run part @part. */
static const char *cannot_run(const char *part)
{
	const char *why = NULL;

	if (!strcmp(part, "go"))
		return access(PROMTOOL, X_OK) ? "no " PROMTOOL : NULL;
	if (dh_mkdtemp(dir, sizeof(dir), "probe"))
		return "cannot make a directory under the test's root";
	if (!strcmp(part, "static") &&
	    !exited_with(cc_static("probe", "-static"), 0))
		why = "cc -static cannot link (no static libc?)";
	if (!strcmp(part, "filecap")) {
		char path[PATH_MAX];

		in_dir(path, sizeof(path), "probe");
		if (write_text(path, "", 0755) || set_file_cap(path))
			why = "cannot set security.capability here";
	}
	dir_remove();
	return why;
}

static Suite *run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc;

	tc = tcase_create("usage");
	tcase_add_checked_fixture(tc, dir_make, dir_remove);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_usage_help);
	suite_add_tcase(s, tc);

	tc = tcase_create("find");
	tcase_add_checked_fixture(tc, dir_make, dir_remove);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_find_not_found);
	tcase_add_test(tc, test_find_cannot_execute);
	suite_add_tcase(s, tc);

	tc = tcase_create("exec");
	tcase_add_checked_fixture(tc, dir_make, dir_remove);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_exec_environment);
	tcase_add_test(tc, test_exec_defaults);
	tcase_add_test(tc, test_exec_exit_status);
	tcase_add_test(tc, test_exec_signal);
	tcase_add_test(tc, test_exec_scripts);
	suite_add_tcase(s, tc);

	tc = tcase_create("refuse");
	tcase_add_checked_fixture(tc, dir_make, dir_remove);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_refuse_setuid);
	tcase_add_test(tc, test_refuse_foreign_elf);
	suite_add_tcase(s, tc);

	tc = tcase_create("require");
	tcase_add_checked_fixture(tc, dir_make, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_require_no_daemon);
	tcase_add_test(tc, test_require_daemon);
	suite_add_tcase(s, tc);

	tc = ckpart_tcase(s, "static");
	tcase_add_checked_fixture(tc, dir_make, dir_remove);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_static);

	tc = ckpart_tcase(s, "go");
	tcase_add_checked_fixture(tc, dir_make, dir_remove);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_go);

	tc = ckpart_tcase(s, "filecap");
	tcase_add_checked_fixture(tc, dir_make, dir_remove);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_filecap);
	return s;
}

int main(void)
{
	return dh_main_part("check_run", run_suite(), CKPART, cannot_run);
}
