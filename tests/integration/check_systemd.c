/*
 * check_systemd.c - uzswapd and systemd: the unit files and where they
 * install, socket activation, the sd_notify protocol and the watchdog, the
 * udev rule and the sysusers.d/tmpfiles.d entries, and the sandbox of the
 * service unit.
 *
 * Test cases of systemd_suite():
 *   files       `make install DESTDIR=` puts every file where configure said,
 *               templates filled in; `systemd-analyze verify --root` of the
 *               installed uzswapd.service and uzswapd.socket says nothing
 *               about them (the root holds the host's systemd units, the
 *               daemon, uzswapctl and our man pages: verify checks that
 *               each exists); `systemd-sysusers --root` creates the group and
 *               `systemd-tmpfiles --create --root` the directories, with no
 *               complaint about our files; `udevadm test` applies the rule
 *               to /dev/userfaultfd (that group, mode 0660) in a private
 *               mount namespace whose /dev and /run are empty tmpfs, since
 *               udevadm test of systemd 252 writes to both
 *   activation  under systemd-socket-activate, which execs the daemon (same
 *               pid), the daemon takes the socket passed, serves a real
 *               client, and leaves the socket file to its owner; under the
 *               unit's capability bounding set (read from the built unit),
 *               no new privileges, RLIMIT_MEMLOCK infinity and an OOM score
 *               set beforehand, as systemd runs it: it locks its memory,
 *               keeps the score, and serves a client of another user
 *   notify      on a NOTIFY_SOCKET of the test, every message from the main
 *               pid (NotifyAccess=main): READY=1 with MAINPID, STATUS with
 *               live counts (a client connected, then gone), WATCHDOG=1
 *               pings; SIGHUP: RELOADING=1 with MONOTONIC_USEC, then
 *               READY=1; a reload that fails: READY=1, the error in STATUS
 *               until a reload works, the daemon serving; SIGTERM:
 *               STOPPING=1 and exit 0; the watchdog is not pinged while the
 *               fault threads are stopped (ptrace) though the loop runs,
 *               and is again once they run
 *   journal     with $JOURNAL_STREAM naming its stderr, as systemd sets it,
 *               the daemon sends each line as a journal record with its
 *               fields (PRIORITY=, SYSLOG_IDENTIFIER=, UZSWAP_SUBSYSTEM=,
 *               CODE_*=; CLIENT_PID= and CLIENT_COMM= for a client's), to
 *               the journal socket of its own mount namespace, which the
 *               test serves: the system's journal gets nothing
 *
 * Nothing is installed into the real system: every install goes to a
 * DESTDIR under the test's root, every systemd tool runs with --root there,
 * and udevadm test runs in its own mount namespace; no systemctl is run. A
 * missing tool (systemd-analyze, systemd-socket-activate, systemd-sysusers,
 * systemd-tmpfiles, udevadm, man, unshare, setpriv, make) fails the test:
 * scripts/setup installs them.
 *
 * One test case: CK_RUN_CASE=notify ./check_systemd. Logs and the
 * temporary roots kept: UZSWAP_ITEST_KEEP=1. Under valgrind (the daemon
 * runs natively): CK_FORK=no valgrind --leak-check=full ./check_systemd
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/common/macros.h"

#ifndef TOP_BUILDDIR
#error "TOP_BUILDDIR must name the build tree"
#endif

/* Generous: CI machines are slow, and run all of this under ASan. */
#define TIMEOUT_CASE	300
#define TOOL_MS		120000	/* one make install, one systemd tool */
#define MSG_MS		10000	/* one sd_notify message */
#define WATCHDOG_USEC	"2000000"

static struct dh_daemon dmn;
/* Error lines a test provokes on purpose (NULL: none). */
static const char *log_allow;

/*****************
 * Helpers
 *****************/

/* The path of tool @name in $PATH (or the usual directories); the test
 * fails if there is none. */
static void need_tool(const char *name, const char *package, char *path,
		      size_t size)
{
	const char *env = getenv("PATH");
	char dirs[4096], *dir, *save = NULL;

	snprintf(dirs, sizeof(dirs), "%s:/usr/local/sbin:/usr/local/bin:"
		 "/usr/sbin:/usr/bin:/sbin:/bin", env ? env : "");
	for (dir = strtok_r(dirs, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, size, "%s/%s", dir, name);
		if (access(path, X_OK) == 0)
			return;
	}
	ck_abort_msg("%s is not installed (package %s; scripts/setup "
		     "installs it)", name, package);
}

/*
 * struct run - a command run by run_sh()
 * @status: its wait status, or -ETIMEDOUT (it was killed)
 * @out:    its stdout and stderr, NUL-terminated (cut at the size)
 */
struct run {
	int status;
	char out[32768];
};

/*
 * run_sh() - run the sh script @script with the NULL-terminated arguments
 * that follow as $1, $2 ...; stdin /dev/null, stdout and stderr into
 * @r->out. It runs in its own process group, which is killed if it takes
 * longer than @timeout_ms. Returns whether it exited with status 0.
 */
static bool run_sh(struct run *r, int timeout_ms, const char *script, ...)
{
	const char *argv[16];
	long long deadline = dh_deadline(timeout_ms);
	pid_t parent = getpid(), pid, got;
	int n = 0, out, null, status;
	ssize_t len;
	va_list ap;

	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = script;
	argv[n++] = "sh";
	va_start(ap, script);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;

	r->status = -1;
	r->out[0] = '\0';
	out = memfd_create("run_sh", MFD_CLOEXEC);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	DH_CHECK(out >= 0 && null >= 0, "memfd, /dev/null: %s",
		 strerror(errno));
	pid = fork();
	DH_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(null);
	for (;;) {
		got = waitpid(pid, &status, WNOHANG);
		if (got == pid) {
			r->status = status;
			break;
		}
		if (dh_now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			r->status = -ETIMEDOUT;
			break;
		}
		dh_sleep_ms(5);
	}
	len = pread(out, r->out, sizeof(r->out) - 1, 0);
	r->out[len > 0 ? len : 0] = '\0';
	close(out);
	return dh_exited_ok(r->status);
}

/* Whether a line of @text contains @a and, if not NULL, @b too; the first
 * such line is copied into @line if not NULL. */
static bool find_line(const char *text, const char *a, const char *b,
		      char *line, size_t size)
{
	const char *p = text, *eol;
	char buf[1024];
	size_t n;

	while (*p) {
		eol = strchr(p, '\n');
		n = eol ? (size_t)(eol - p) : strlen(p);
		snprintf(buf, sizeof(buf), "%.*s", (int)n, p);
		if (strstr(buf, a) && (!b || strstr(buf, b))) {
			if (line)
				snprintf(line, size, "%s", buf);
			return true;
		}
		p += n + (eol ? 1 : 0);
	}
	return false;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* A new directory under the test root, for one test's files. */
static void make_tmp(char *dir, size_t size, const char *what)
{
	int ret = dh_mkdtemp(dir, size, what);

	DH_CHECK(ret == 0, "mkdtemp %s: %s", dir, strerror(-ret));
}

static void remove_tmp(const char *dir)
{
	if (!getenv("UZSWAP_ITEST_KEEP"))
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole of a small file, NUL-terminated, into @buf. */
static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	DH_CHECK(fd >= 0, "cannot open %s: %s", path, strerror(errno));
	n = read(fd, buf, size - 1);
	DH_CHECK(n >= 0, "read %s: %s", path, strerror(errno));
	buf[n] = '\0';
	close(fd);
}

/*****************
 * Installed files
 *****************/

/* Where configure put each file (systemd/Makefile's print-dirs). */
struct dirs {
	char sbindir[PATH_MAX];
	char unitdir[PATH_MAX];
	char udevrulesdir[PATH_MAX];
	char sysusersdir[PATH_MAX];
	char tmpfilesdir[PATH_MAX];
	char mandir[PATH_MAX];
	char group[64];
};

static void get_dirs(struct dirs *dd)
{
	static const struct {
		const char *key;
		size_t off;
		size_t size;
	} keys[] = {
#define KEY(k, f) { k "=", offsetof(struct dirs, f), \
		    sizeof(((struct dirs *)0)->f) }
		KEY("sbindir", sbindir),
		KEY("systemdsystemunitdir", unitdir),
		KEY("udevrulesdir", udevrulesdir),
		KEY("sysusersdir", sysusersdir),
		KEY("tmpfilesdir", tmpfilesdir),
		KEY("mandir", mandir),
		KEY("group", group),
#undef KEY
	};
	char make[PATH_MAX], line[PATH_MAX + 64];
	struct run *r = malloc(sizeof(*r));
	size_t i;

	ck_assert(r);
	need_tool("make", "make", make, sizeof(make));
	memset(dd, 0, sizeof(*dd));
	DH_CHECK(run_sh(r, TOOL_MS, "unset MAKEFLAGS MFLAGS MAKELEVEL; "
			"exec \"$1\" -s -C \"$2/systemd\" print-dirs",
			make, TOP_BUILDDIR, NULL),
		 "make print-dirs: %s\n%s", dh_status_str(r->status),
		 r->out);
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		DH_CHECK(find_line(r->out, keys[i].key, NULL, line,
				   sizeof(line)) &&
				 !strncmp(line, keys[i].key,
					  strlen(keys[i].key)),
			 "make print-dirs gave no %s:\n%s", keys[i].key,
			 r->out);
		snprintf((char *)dd + keys[i].off, keys[i].size, "%s",
			 line + strlen(keys[i].key));
		DH_CHECK(((char *)dd)[keys[i].off] != '\0',
			 "configure left %s empty", keys[i].key);
	}
	free(r);
}

/*
 * The script that makes a root for systemd's tools in $1 from the build
 * tree $2 with make $3. With $4 = "files", only `make install` of
 * systemd/; with "full", first the host's layout (/bin, /sbin, /lib
 * symlinks into /usr where the host has them), the host's systemd units
 * (sysinit.target and the others ours depend on), then also the daemon,
 * uzswapctl (which ExecReload= runs) with libuzswap, and the man pages:
 * everything `systemd-analyze verify` looks for. Installed under a private
 * --prefix (make distcheck's), where systemd and udev do not look, the
 * files are also copied into the root's /etc directories, as an operator
 * of such an install would link them.
 */
static const char install_script[] =
	"set -e\n"
	"R=$1 B=$2 MAKE=$3\n"
	"unset MAKEFLAGS MFLAGS MAKELEVEL\n"
	"mkdir -p \"$R/etc\"\n"
	"if [ \"$4\" = full ]; then\n"
	"	for d in bin sbin lib; do\n"
	"		if [ -L \"/$d\" ]; then\n"
	"			ln -s \"$(readlink \"/$d\")\" \"$R/$d\"\n"
	"		fi\n"
	"	done\n"
	"	mkdir -p \"$R/usr/bin\" \"$R/usr/sbin\" \"$R/usr/lib/systemd\" "
	"\"$R/etc\"\n"
	"	cp -a /usr/lib/systemd/system \"$R/usr/lib/systemd/\"\n"
	"	if [ ! -L /lib ] && [ -d /lib/systemd/system ]; then\n"
	"		mkdir -p \"$R/lib/systemd\"\n"
	"		cp -a /lib/systemd/system \"$R/lib/systemd/\"\n"
	"	fi\n"
	"fi\n"
	"\"$MAKE\" -s -C \"$B/systemd\" install DESTDIR=\"$R\"\n"
	"eval \"$(\"$MAKE\" -s -C \"$B/systemd\" print-dirs)\"\n"
	"etc_copy() {\n"
	"	[ \"$1\" = \"$(pkg-config --variable=\"$2\" \"$3\")$4\" ] && return\n"
	"	mkdir -p \"$R/etc/$5\"\n"
	"	cp \"$R$1\"/* \"$R/etc/$5/\"\n"
	"}\n"
	"etc_copy \"$systemdsystemunitdir\" systemdsystemunitdir systemd '' "
	"systemd/system\n"
	"etc_copy \"$udevrulesdir\" udevdir udev /rules.d udev/rules.d\n"
	"etc_copy \"$sysusersdir\" sysusersdir systemd '' sysusers.d\n"
	"etc_copy \"$tmpfilesdir\" tmpfilesdir systemd '' tmpfiles.d\n"
	"if [ \"$4\" = full ]; then\n"
	"	\"$MAKE\" -s -C \"$B/daemon\" install-sbinPROGRAMS "
	"DESTDIR=\"$R\"\n"
	"	\"$MAKE\" -s -C \"$B/lib/client\" install-libLTLIBRARIES "
	"DESTDIR=\"$R\"\n"
	"	\"$MAKE\" -s -C \"$B/cli\" install-sbinPROGRAMS "
	"DESTDIR=\"$R\"\n"
	"	\"$MAKE\" -s -C \"$B/docs\" install DESTDIR=\"$R\"\n"
	"fi\n";

static void install_into(const char *root, const char *what)
{
	struct run *r = malloc(sizeof(*r));
	char make[PATH_MAX];

	ck_assert(r);
	need_tool("make", "make", make, sizeof(make));
	DH_CHECK(run_sh(r, TOOL_MS, install_script, root, TOP_BUILDDIR,
			make, what, NULL),
		 "make install DESTDIR=%s: %s\n%s", root,
		 dh_status_str(r->status), r->out);
	free(r);
}

/* @root@@dir/@name is a regular file; its contents into @buf. */
static void installed(const char *root, const char *dir, const char *name,
		      char *buf, size_t size)
{
	char path[PATH_MAX * 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s/%s", root, dir, name);
	DH_CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode),
		 "make install put no %s in %s (configure said so)",
		 name, dir);
	read_file(path, buf, size);
}

/* A template placeholder left in @text ("@word@"), or NULL. */
static const char *placeholder_left(const char *text)
{
	const char *p = text, *q;

	while ((p = strchr(p, '@'))) {
		q = p + 1;
		while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
		       *q == '_')
			q++;
		if (q > p + 1 && *q == '@')
			return p;
		p++;
	}
	return NULL;
}

/* Every file in place, filled in; @text must contain @want. */
static void assert_file(const char *root, const char *dir, const char *name,
			const char *want)
{
	char text[16384];
	const char *left;

	installed(root, dir, name, text, sizeof(text));
	left = placeholder_left(text);
	DH_CHECK(!left, "%s%s/%s: placeholder left: %.40s", root, dir,
		 name, left);
	DH_CHECK(strstr(text, want), "%s%s/%s does not contain '%s'",
		 root, dir, name, want);
}

START_TEST(test_install_and_verify)
{
	char root[PATH_MAX], want[PATH_MAX + 64], unit[2][PATH_MAX + 32];
	char analyze[PATH_MAX], man[PATH_MAX], manpath[PATH_MAX * 2];
	char line[1024], exe[PATH_MAX * 2 + 16];
	struct run *r = malloc(sizeof(*r));
	struct dirs dd;
	struct stat st;

	ck_assert(r);
	need_tool("systemd-analyze", "systemd", analyze, sizeof(analyze));
	need_tool("man", "man-db", man, sizeof(man));
	get_dirs(&dd);
	make_tmp(root, sizeof(root), "verify");
	install_into(root, "full");

	snprintf(want, sizeof(want), "\nExecStart=%s/uzswapd\n", dd.sbindir);
	assert_file(root, dd.unitdir, "uzswapd.service", want);
	snprintf(want, sizeof(want), "\nSocketGroup=%s\n", dd.group);
	assert_file(root, dd.unitdir, "uzswapd.socket", want);
	snprintf(want, sizeof(want), "GROUP=\"%s\"", dd.group);
	assert_file(root, dd.udevrulesdir, "60-uzswap.rules", want);
	snprintf(want, sizeof(want), "\ng %s ", dd.group);
	assert_file(root, dd.sysusersdir, "uzswap.conf", want);
	assert_file(root, dd.tmpfilesdir, "uzswap.conf", "d /run/uzswap ");
	snprintf(exe, sizeof(exe), "%s%s/uzswapd", root, dd.sbindir);
	DH_CHECK(stat(exe, &st) == 0 && (st.st_mode & S_IXUSR),
		 "make install put no uzswapd in %s", dd.sbindir);

	/* verify reads the units of the root; the man pages it looks for
	 * through man(1), which is told to look in the root only */
	snprintf(unit[0], sizeof(unit[0]), "%s/uzswapd.service", dd.unitdir);
	snprintf(unit[1], sizeof(unit[1]), "%s/uzswapd.socket", dd.unitdir);
	snprintf(manpath, sizeof(manpath), "%s%s", root, dd.mandir);
	run_sh(r, TOOL_MS, "cd / && MANPATH=\"$3\" exec \"$4\" verify "
	       "--root=\"$5\" \"$1\" \"$2\"", unit[0], unit[1], manpath,
	       analyze, root, NULL);
	DH_CHECK(!find_line(r->out, "uzswap", NULL, line, sizeof(line)),
		 "systemd-analyze verify: %s\n(all it said:)\n%s", line,
		 r->out);
	DH_CHECK(dh_exited_ok(r->status),
		 "systemd-analyze verify: %s\n%s",
		 dh_status_str(r->status), r->out);
	if (r->out[0])
		fprintf(stderr, "systemd-analyze verify, about other units:\n"
			"%s", r->out);
	free(r);
	remove_tmp(root);
}
END_TEST

/* The group line of @group in @root/etc/group; its gid. */
static unsigned int group_in_root(const char *root, const char *group,
				  char *line, size_t size)
{
	char path[PATH_MAX + 16], text[65536], key[80];
	unsigned int gid;

	snprintf(path, sizeof(path), "%s/etc/group", root);
	read_file(path, text, sizeof(text));
	snprintf(key, sizeof(key), "%s:", group);
	DH_CHECK(find_line(text, key, NULL, line, size) &&
			 !strncmp(line, key, strlen(key)) &&
			 sscanf(line + strlen(key), "%*[^:]:%u:", &gid) ==
				 1,
		 "systemd-sysusers created no group %s:\n%s", group, text);
	return gid;
}

static void assert_dir(const char *root, const char *dir, mode_t mode)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s", root, dir);
	DH_CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode),
		 "systemd-tmpfiles created no %s", dir);
	DH_CHECK((st.st_mode & 07777) == mode && st.st_uid == 0 &&
			 st.st_gid == 0,
		 "%s: mode %o owner %u:%u, expected %o root:root", dir,
		 st.st_mode & 07777, st.st_uid, st.st_gid, mode);
}

START_TEST(test_sysusers_tmpfiles)
{
	char root[PATH_MAX], sysusers[PATH_MAX], tmpfiles[PATH_MAX];
	char line[1024];
	struct run *r = malloc(sizeof(*r));
	struct dirs dd;

	ck_assert(r);
	need_tool("systemd-sysusers", "systemd", sysusers, sizeof(sysusers));
	need_tool("systemd-tmpfiles", "systemd", tmpfiles, sizeof(tmpfiles));
	get_dirs(&dd);
	make_tmp(root, sizeof(root), "sysusers");
	install_into(root, "files");

	/* with --root, both read only the root's sysusers.d/tmpfiles.d
	 * (ours) and write only under it */
	run_sh(r, TOOL_MS, "exec \"$1\" --root=\"$2\"", sysusers, root, NULL);
	DH_CHECK(dh_exited_ok(r->status) &&
			 !find_line(r->out, "uzswap.conf", NULL, line,
				    sizeof(line)),
		 "systemd-sysusers --root: %s\n%s",
		 dh_status_str(r->status), r->out);
	group_in_root(root, dd.group, line, sizeof(line));

	run_sh(r, TOOL_MS, "exec \"$1\" --create --root=\"$2\"", tmpfiles,
	       root, NULL);
	DH_CHECK(dh_exited_ok(r->status) &&
			 !find_line(r->out, "uzswap.conf", NULL, line,
				    sizeof(line)),
		 "systemd-tmpfiles --create --root: %s\n%s",
		 dh_status_str(r->status), r->out);
	assert_dir(root, "/run/uzswap", 0755);
	assert_dir(root, "/var/lib/uzswap", 0700);
	free(r);
	remove_tmp(root);
}
END_TEST

/*
 * udevadm test in a mount namespace of its own: /etc/group with the
 * uzswap group ($1, bound over it), our rule ($2, named $5) in
 * /run/udev/rules.d beside the host's rules, and empty tmpfs on /dev and
 * /run: udevadm test of systemd 252 creates /dev/char links, applies
 * permissions to the device node and writes /run/udev/data, none of which
 * may reach the host. A host that has the rule installed already keeps
 * its copy in /lib/udev/rules.d (which ours in /run overrides) or in
 * /etc/udev/rules.d (which overrides /run: ours is bound over it there).
 * The script's first line is "our rule: PATH", where udevadm reads it.
 */
static const char udev_script[] =
	"set -e\n"
	"rule=$(cat \"$2\")\n"
	"ours=/run/udev/rules.d/$5\n"
	"[ ! -e \"/etc/udev/rules.d/$5\" ] || ours=/etc/udev/rules.d/$5\n"
	"mount --bind \"$1\" /etc/group\n"
	"mount -t tmpfs -o mode=0755 tmpfs /dev\n"
	"mount -t tmpfs -o mode=0755 tmpfs /run\n"
	"mkdir -p /run/udev/rules.d\n"
	"printf '%s\\n' \"$rule\" > \"/run/udev/rules.d/$5\"\n"
	"[ \"$ours\" = \"/run/udev/rules.d/$5\" ] ||\n"
	"	mount --bind \"/run/udev/rules.d/$5\" \"$ours\"\n"
	"echo \"our rule: $ours\"\n"
	"exec \"$3\" test --action=add \"$4\"\n";

START_TEST(test_udev_rule)
{
	static const char devpath[] = "/devices/virtual/misc/userfaultfd";
	char root[PATH_MAX], sysusers[PATH_MAX], udevadm[PATH_MAX];
	char unshare[PATH_MAX], rule[PATH_MAX * 2 + 32], group[PATH_MAX + 16];
	char hostgroups[65536], gline[256], line[1024], want[64];
	char charlink[64], ours[PATH_MAX + 16];
	const char *p, *eol;
	struct run *r = malloc(sizeof(*r));
	struct stat before, after;
	struct group *gr;
	bool had_node, had_link, link_now;
	unsigned int gid;
	struct dirs dd;
	FILE *f;

	ck_assert(r);
	need_tool("systemd-sysusers", "systemd", sysusers, sizeof(sysusers));
	need_tool("udevadm", "udev", udevadm, sizeof(udevadm));
	need_tool("unshare", "util-linux", unshare, sizeof(unshare));
	DH_CHECK(access("/sys/devices/virtual/misc/userfaultfd",
			F_OK) == 0,
		 "the kernel has no /dev/userfaultfd (Linux 6.1+ with "
		 "CONFIG_USERFAULTFD)");
	get_dirs(&dd);
	make_tmp(root, sizeof(root), "udev");
	install_into(root, "files");
	DH_CHECK(run_sh(r, TOOL_MS, "exec \"$1\" --root=\"$2\"",
			sysusers, root, NULL),
		 "systemd-sysusers --root: %s\n%s",
		 dh_status_str(r->status), r->out);

	/* the host's groups, with ours as sysusers made it unless the host
	 * has it already */
	read_file("/etc/group", hostgroups, sizeof(hostgroups));
	snprintf(group, sizeof(group), "%s/group", root);
	f = fopen(group, "we");
	DH_CHECK(f, "%s: %s", group, strerror(errno));
	fputs(hostgroups, f);
	gr = getgrnam(dd.group);
	if (gr) {
		gid = gr->gr_gid;
	} else {
		gid = group_in_root(root, dd.group, gline, sizeof(gline));
		if (hostgroups[0] && hostgroups[strlen(hostgroups) - 1] != '\n')
			fputc('\n', f);
		fprintf(f, "%s\n", gline);
	}
	ck_assert(fclose(f) == 0);

	/* its minor is dynamic */
	read_file("/sys/devices/virtual/misc/userfaultfd/dev", line,
		  sizeof(line));
	snprintf(charlink, sizeof(charlink), "/dev/char/%.*s",
		 (int)strcspn(line, "\n"), line);
	had_node = stat("/dev/userfaultfd", &before) == 0;
	had_link = access(charlink, F_OK) == 0;
	snprintf(rule, sizeof(rule), "%s%s/60-uzswap.rules", root,
		 dd.udevrulesdir);
	run_sh(r, TOOL_MS, "u=$1; shift; exec \"$u\" --mount --propagation "
	       "private /bin/sh -c \"$@\"", unshare, udev_script, "sh",
	       group, rule, udevadm, devpath, "60-uzswap.rules", NULL);

	/* the host's /dev is as it was */
	if (had_node) {
		DH_CHECK(stat("/dev/userfaultfd", &after) == 0 &&
				 after.st_mode == before.st_mode &&
				 after.st_uid == before.st_uid &&
				 after.st_gid == before.st_gid &&
				 after.st_rdev == before.st_rdev,
			 "udevadm test changed the host's "
			 "/dev/userfaultfd");
	}
	link_now = access(charlink, F_OK) == 0;
	DH_CHECK(link_now == had_link,
		 "udevadm test changed the host's %s", charlink);

	DH_CHECK(dh_exited_ok(r->status), "udevadm test: %s\n%s",
		 dh_status_str(r->status), r->out);
	DH_CHECK(find_line(r->out, "our rule: ", NULL, ours, sizeof(ours)),
		 "the udev script did not start:\n%s", r->out);
	DH_CHECK(find_line(r->out, "Reading rules file", ours + 10, NULL, 0),
		 "udevadm test did not read our rule (%s):\n%s", ours + 10,
		 r->out);
	snprintf(want, sizeof(want), " GROUP %u", gid);
	DH_CHECK(find_line(r->out, "60-uzswap.rules:", want, NULL, 0),
		 "our rule did not give /dev/userfaultfd the group %s "
		 "(%u):\n%s", dd.group, gid, r->out);
	DH_CHECK(find_line(r->out, "60-uzswap.rules:", " MODE 0660",
			   NULL, 0),
		 "our rule did not make /dev/userfaultfd 0660:\n%s",
		 r->out);
	/* and said nothing else about our rule (no invalid key, no unknown
	 * group) */
	for (p = r->out; *p; p = eol ? eol + 1 : p + strlen(p)) {
		eol = strchr(p, '\n');
		snprintf(line, sizeof(line), "%.*s",
			 (int)(eol ? eol - p : (long)strlen(p)), p);
		if (!strstr(line, "60-uzswap.rules"))
			continue;
		if (!strncmp(line, "our rule: ", 10) ||
		    strstr(line, "Skipping overridden file"))
			continue;	/* the script's, the host's copy */
		DH_CHECK(strstr(line, "Reading rules file") ||
				 strstr(line, " GROUP ") ||
				 strstr(line, " MODE "),
			 "udevadm test about our rule: %s\n%s", line,
			 r->out);
	}
	free(r);
	remove_tmp(root);
}
END_TEST

/*****************
 * Daemons
 *****************/

/* The daemon's own options, as the harness gives them (dh_start()) but
 * for the socket, after @first (a wrapper and its arguments, or nothing),
 * with @more; --no-mlock unless @mlock. */
static void daemon_argv(const char **argv, size_t max,
			const char *const *first, bool mlock,
			const char *const *more)
{
	size_t n = 0, i;

	for (i = 0; first[i]; i++)
		argv[n++] = first[i];
	argv[n++] = UZSWAPD_PATH;
	if (!mlock)
		argv[n++] = "--no-mlock";
	argv[n++] = "-D";
	argv[n++] = "all";
	argv[n++] = "--backing-file";
	argv[n++] = "none";
	argv[n++] = "--config";
	argv[n++] = dmn.conf;
	argv[n++] = "--metrics";
	argv[n++] = "off";
	for (i = 0; more && more[i] && n < max - 1; i++)
		argv[n++] = more[i];
	argv[n] = NULL;
	ck_assert(n < max);
}

static void assert_serving(void)
{
	static const char *const argv[] = { "basic", "4", NULL };
	int status = dh_run_uzclient(&dmn, argv);

	DH_ASSERT(dh_exited_ok(status), "uzclient basic: %s",
		  dh_status_str(status));
}

static void daemon_setup(void)
{
	int ret;

	log_allow = NULL;
	ret = dh_prepare(&dmn);
	DH_CHECK(ret == 0, "dh_prepare: %s", strerror(-ret));
}

static void daemon_teardown(void)
{
	if (dmn.pid)
		dh_stop_ok(&dmn, SIGTERM, log_allow);
	if (!getenv("UZSWAP_ITEST_KEEP"))
		dh_remove(&dmn);
}

/* The target of /proc/@pid/exe. */
static void exe_of(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
}

START_TEST(test_socket_activation)
{
	char ssa[PATH_MAX], exe[PATH_MAX], line[512];
	const char *first[] = { ssa, "-l", dmn.sock, NULL };
	const char *argv[32];
	int ret;

	need_tool("systemd-socket-activate", "systemd", ssa, sizeof(ssa));
	daemon_argv(argv, 32, first, false, NULL);
	ret = dh_launch(&dmn, argv, NULL);
	DH_ASSERT(ret == 0, "uzswapd under systemd-socket-activate did not "
		  "start: %s", strerror(-ret));

	/* systemd-socket-activate execs the daemon: the pid is the
	 * daemon's, as under systemd */
	exe_of(dmn.pid, exe, sizeof(exe));
	DH_ASSERT(strstr(exe, "/uzswapd"), "pid %d is %s, not uzswapd",
		  (int)dmn.pid, exe);
	DH_ASSERT(dh_log_find(&dmn, "using the socket passed by systemd",
			      line, sizeof(line)),
		  "uzswapd did not say it took the socket from systemd");
	assert_serving();
	assert_serving();
	dh_stop_ok(&dmn, SIGTERM, log_allow);
	/* the socket file is systemd's (RemoveOnStop=): the daemon, which
	 * did not bind it, leaves it */
	DH_ASSERT(access(dmn.sock, F_OK) == 0,
		  "uzswapd removed the socket systemd passed it");
}
END_TEST

/* "CAP_A CAP_B" of the built unit's CapabilityBoundingSet= into setpriv's
 * "-all,+a,+b". */
static void unit_bounding_set(char *out, size_t size)
{
	char path[PATH_MAX], text[16384], line[1024], *tok, *save = NULL;
	size_t n;

	snprintf(path, sizeof(path), "%s/systemd/uzswapd.service",
		 TOP_BUILDDIR);
	read_file(path, text, sizeof(text));
	DH_CHECK(find_line(text, "CapabilityBoundingSet=", NULL, line,
			   sizeof(line)),
		 "%s has no CapabilityBoundingSet=", path);
	n = (size_t)snprintf(out, size, "-all");
	for (tok = strtok_r(strchr(line, '=') + 1, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		DH_CHECK(!strncmp(tok, "CAP_", 4), "not a capability: %s",
			 tok);
		n += (size_t)snprintf(out + n, size - n, ",+");
		for (tok += 4; *tok && n + 1 < size; tok++)
			out[n++] = (char)(*tok >= 'A' && *tok <= 'Z'
						  ? *tok - 'A' + 'a' : *tok);
		out[n] = '\0';
	}
}

/* A value of /proc/@pid/status ("VmLck:") as a number, -1 if none. */
static long long proc_status_value(pid_t pid, const char *key)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) &&
		    sscanf(line + strlen(key), "%lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/*
 * As the unit runs it: root with only the unit's bounding set (setpriv),
 * no new privileges, RLIMIT_MEMLOCK infinity (LimitMEMLOCK=), the OOM
 * score lowered before the capabilities go (OOMScoreAdjust=), memory
 * locked (no --no-mlock). The shell lowers the limits it can: the OOM
 * and memory-locking checks are parts of their own (check_systemd_oom,
 * check_systemd_mlock) that machines without CAP_SYS_RESOURCE skip.
 */
static void unit_daemon_up(void)
{
	const char *const sock[] = { "--socket", dmn.sock, NULL };
	static const char prologue[] =
		"{ ulimit -H -l unlimited && ulimit -S -l unlimited; } "
		"2>/dev/null; { echo -900 > /proc/self/oom_score_adj; } "
		"2>/dev/null; exec \"$@\"";
	char setpriv[PATH_MAX], bset[256], bopt[300], line[512];
	const char *first[12], *argv[40];
	int ret, i = 0;

	need_tool("setpriv", "util-linux", setpriv, sizeof(setpriv));
	unit_bounding_set(bset, sizeof(bset));
	snprintf(bopt, sizeof(bopt), "--bounding-set=%s", bset);
	first[i++] = "/bin/sh";
	first[i++] = "-c";
	first[i++] = prologue;
	first[i++] = "sh";
	first[i++] = setpriv;
	first[i++] = bopt;
	first[i++] = "--inh-caps=-all";
	first[i++] = "--no-new-privs";
	first[i] = NULL;
	/* memory locked, as in the unit */
	daemon_argv(argv, 40, first, true, sock);
	ret = dh_launch(&dmn, argv, NULL);
	DH_ASSERT(ret == 0, "uzswapd under setpriv %s did not start: %s",
		  bopt, strerror(-ret));
	exe_of(dmn.pid, line, sizeof(line));
	DH_ASSERT(strstr(line, "/uzswapd"), "pid %d is %s, not uzswapd",
		  (int)dmn.pid, line);
}

/* A client of another user (nobody) must work: that is what
 * CAP_SYS_PTRACE is for. */
START_TEST(test_unit_privileges)
{
	char setpriv[PATH_MAX];
	const char *cargv[12];
	struct dh_client c;
	int status, i = 0;

	need_tool("setpriv", "util-linux", setpriv, sizeof(setpriv));
	unit_daemon_up();
	DH_ASSERT(proc_status_value(dmn.pid, "NoNewPrivs:") == 1,
		  "no_new_privs not set");

	/* root's client, then nobody's (the socket's directories are the
	 * test's, root's only: let nobody in) */
	assert_serving();
	DH_ASSERT(chmod(dh_root(), 0711) == 0 && chmod(dmn.dir, 0711) == 0 &&
			  chmod(dmn.sock, 0666) == 0,
		  "chmod: %s", strerror(errno));
	cargv[i++] = setpriv;
	cargv[i++] = "--reuid=65534";
	cargv[i++] = "--regid=65534";
	cargv[i++] = "--clear-groups";
	cargv[i++] = UZCLIENT_PATH;
	cargv[i++] = "basic";
	cargv[i++] = "4";
	cargv[i] = NULL;
	DH_ASSERT(dh_client_start(&dmn, &c, cargv, false) == 0, "fork");
	status = dh_client_wait(&c, DH_CLIENT_MS);
	DH_ASSERT(dh_exited_ok(status), "uzclient basic as nobody: %s",
		  dh_status_str(status));
	dh_stop_ok(&dmn, SIGTERM, log_allow);
}
END_TEST

/* Part "oom": OOMScoreAdjust=-900, set before the capabilities go. */
START_TEST(test_unit_oom_score)
{
	char path[64], line[512], adj[32];
	ssize_t n;
	int fd;

	unit_daemon_up();
	DH_ASSERT(!dh_log_find(&dmn, "cannot lower the OOM score", line,
			       sizeof(line)),
		  "with OOMScoreAdjust=-900 set before: %s", line);
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)dmn.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	DH_ASSERT(fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, adj, sizeof(adj) - 1);
	close(fd);
	adj[n > 0 ? n : 0] = '\0';
	DH_ASSERT(atoi(adj) == -900, "oom_score_adj is %s", adj);
	dh_stop_ok(&dmn, SIGTERM, log_allow);
}
END_TEST

/* Part "mlock": memory locked without CAP_IPC_LOCK, by
 * LimitMEMLOCK=infinity. */
START_TEST(test_unit_mlock)
{
	char line[512];
	long long locked;

	unit_daemon_up();
	DH_ASSERT(!dh_log_find(&dmn, "memory locked on fault only", line,
			       sizeof(line)) &&
			  !dh_log_find(&dmn, "cannot lock memory", line,
				       sizeof(line)),
		  "without CAP_IPC_LOCK, LimitMEMLOCK=infinity: %s", line);
	locked = proc_status_value(dmn.pid, "VmLck:");
	DH_ASSERT(locked > 0, "VmLck: %lld kB", locked);
	dh_stop_ok(&dmn, SIGTERM, log_allow);
}
END_TEST

/*****************
 * sd_notify
 *****************/

/*
 * struct rx - the test's NOTIFY_SOCKET
 * @fd:    bound datagram socket, SO_PASSCRED
 * @path:  where
 * @env:   "NOTIFY_SOCKET=@path"
 * @seen:  every message received, for failure messages
 */
struct rx {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char env[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
	char seen[16384];
	size_t seen_len;
};

static struct rx rx = { .fd = -1 };

static void rx_open(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int one = 1;

	rx.seen_len = 0;
	rx.seen[0] = '\0';
	DH_CHECK((size_t)snprintf(rx.path, sizeof(rx.path), "%s/notify",
				  dmn.dir) < sizeof(rx.path),
		 "socket path too long");
	snprintf(rx.env, sizeof(rx.env), "NOTIFY_SOCKET=%s", rx.path);
	memcpy(sa.sun_path, rx.path, strlen(rx.path) + 1);
	rx.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	DH_CHECK(rx.fd >= 0 &&
			 setsockopt(rx.fd, SOL_SOCKET, SO_PASSCRED, &one,
				    sizeof(one)) == 0 &&
			 bind(rx.fd, (struct sockaddr *)&sa,
			      sizeof(sa)) == 0,
		 "notify socket %s: %s", rx.path, strerror(errno));
}

static void rx_close(void)
{
	if (rx.fd >= 0)
		close(rx.fd);
	rx.fd = -1;
}

/*
 * rx_one() - one message within @ms into @buf: 1; 0 if none came. The
 * sender must be the daemon's main process, as NotifyAccess=main wants.
 */
static int rx_one(char *buf, size_t size, int ms)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { buf, size - 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd pfd = { .fd = rx.fd, .events = POLLIN };
	struct ucred cred = { 0 };
	struct cmsghdr *cm;
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0)
		return 0;
	n = recvmsg(rx.fd, &mh, MSG_DONTWAIT);
	DH_ASSERT(n >= 0, "recvmsg: %s", strerror(errno));
	buf[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_CREDENTIALS)
			memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
	if (rx.seen_len + (size_t)n + 8 < sizeof(rx.seen))
		rx.seen_len += (size_t)snprintf(rx.seen + rx.seen_len,
						sizeof(rx.seen) - rx.seen_len,
						"[%s]\n", buf);
	DH_ASSERT(cred.pid == dmn.pid, "message from pid %d, not the main "
		  "pid %d: %s", (int)cred.pid, (int)dmn.pid, buf);
	return 1;
}

/* Whether message @msg has a line starting with @prefix; the rest of
 * that line into @val if not NULL. */
static bool msg_has(const char *msg, const char *prefix, char *val,
		    size_t size)
{
	const char *p = msg, *eol;
	size_t n = strlen(prefix);

	for (; *p; p = eol ? eol + 1 : p + strlen(p)) {
		eol = strchr(p, '\n');
		if (!strncmp(p, prefix, n)) {
			if (val)
				snprintf(val, size, "%.*s",
					 (int)((eol ? eol - p
						    : (long)strlen(p)) -
					       (long)n),
					 p + n);
			return true;
		}
	}
	return false;
}

/*
 * rx_wait() - receive until a message has a line starting with @prefix
 * (and containing @also, if not NULL), within @ms; it goes into @msg. No
 * message before it may have a line starting with @forbid (if not NULL).
 */
static void rx_wait(const char *prefix, const char *also,
		    const char *forbid, char *msg, size_t size, int ms)
{
	long long deadline = dh_deadline(ms), left;
	char val[1024];

	for (;;) {
		left = deadline - dh_now_ms();
		DH_ASSERT(left > 0 && rx_one(msg, size, (int)left),
			  "no %s%s%s from uzswapd within %d ms; it sent:\n%s",
			  prefix, also ? " with " : "", also ? also : "", ms,
			  rx.seen);
		if (msg_has(msg, prefix, val, sizeof(val)) &&
		    (!also || strstr(val, also)))
			return;
		DH_ASSERT(!forbid || !msg_has(msg, forbid, NULL, 0),
			  "%s before %s; uzswapd sent:\n%s", forbid, prefix,
			  rx.seen);
	}
}

/* The counts of a STATUS= text. */
static void status_counts(const char *status, unsigned int *clients,
			  unsigned long long *resident_mib)
{
	DH_ASSERT(sscanf(status, "%u clients, %llu MiB resident", clients,
			 resident_mib) == 2,
		  "STATUS without counts: %s", status);
}

/* Wait for a STATUS= saying @want clients with @min_mib resident; its
 * text into @val. */
static void rx_wait_clients(unsigned int want, unsigned long long min_mib,
			    char *val, size_t size)
{
	long long deadline = dh_deadline(DH_CLIENT_MS);
	unsigned long long mib;
	char msg[2048];
	unsigned int n;

	for (;;) {
		/* what is left of the scaled deadline, unscaled */
		rx_wait("STATUS=", NULL, NULL, msg, sizeof(msg),
			(int)((deadline - dh_now_ms()) / dh_time_scale()));
		msg_has(msg, "STATUS=", val, size);
		status_counts(val, &n, &mib);
		if (n == want && mib >= min_mib)
			return;
	}
}

/* Start the daemon on the test's NOTIFY_SOCKET and watchdog. */
static void notify_start(const char *const *more)
{
	const char *const env[] = { rx.env, "WATCHDOG_USEC=" WATCHDOG_USEC,
				    NULL };
	const char *first[] = { NULL };
	const char *argv[40], *opts[16];
	size_t i = 0, j;
	int ret;

	opts[i++] = "--socket";
	opts[i++] = dmn.sock;
	for (j = 0; more && more[j] && i < 15; j++)
		opts[i++] = more[j];
	opts[i] = NULL;
	daemon_argv(argv, 40, first, false, opts);
	ret = dh_launch(&dmn, argv, env);
	DH_ASSERT(ret == 0, "uzswapd did not start: %s", strerror(-ret));
}

static void notify_setup(void)
{
	daemon_setup();
	rx_open();
}

static void notify_teardown(void)
{
	daemon_teardown();
	rx_close();
}

/* Write @text to the daemon's configuration file. */
static void write_conf(const char *text)
{
	int fd = open(dmn.conf, O_WRONLY | O_TRUNC | O_CLOEXEC);

	DH_ASSERT(fd >= 0 && write(fd, text, strlen(text)) ==
				     (ssize_t)strlen(text),
		  "%s: %s", dmn.conf, strerror(errno));
	close(fd);
}

static unsigned long long now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull +
	       (unsigned long long)ts.tv_nsec / 1000u;
}

/* SIGHUP: RELOADING=1 with a MONOTONIC_USEC of this moment, then
 * READY=1 (and nothing READY before RELOADING). */
static void reload_and_wait(void)
{
	char msg[2048], val[64];
	unsigned long long t0 = now_usec(), t;

	DH_ASSERT(kill(dmn.pid, SIGHUP) == 0, "kill: %s", strerror(errno));
	rx_wait("RELOADING=1", NULL, "READY=1", msg, sizeof(msg), MSG_MS);
	DH_ASSERT(msg_has(msg, "MONOTONIC_USEC=", val, sizeof(val)),
		  "RELOADING=1 without MONOTONIC_USEC: %s", msg);
	t = strtoull(val, NULL, 10);
	DH_ASSERT(t >= t0 && t <= now_usec(),
		  "MONOTONIC_USEC=%s is not the time of the reload (%llu)",
		  val, t0);
	rx_wait("READY=1", NULL, "RELOADING=1", msg, sizeof(msg), MSG_MS);
}

static void stop_and_wait(void)
{
	char msg[2048];

	DH_ASSERT(kill(dmn.pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	rx_wait("STOPPING=1", NULL, NULL, msg, sizeof(msg), MSG_MS);
	dh_stop_ok(&dmn, 0, log_allow);
}

START_TEST(test_notify)
{
	static const char *const hold[] = { "hold", "4", NULL };
	char msg[2048], val[1024], line[64];
	struct dh_client c;
	int i, ret;

	notify_start(NULL);
	rx_wait("READY=1", NULL, NULL, msg, sizeof(msg), MSG_MS);
	snprintf(val, sizeof(val), "MAINPID=%d", (int)dmn.pid);
	DH_ASSERT(msg_has(msg, val, NULL, 0), "READY=1 without %s: %s", val,
		  msg);
	rx_wait_clients(0, 0, val, sizeof(val));
	for (i = 0; i < 2; i++)
		rx_wait("WATCHDOG=1", NULL, NULL, msg, sizeof(msg), MSG_MS);

	/* live counts: a client holding 2 MiB written, then gone */
	DH_ASSERT(dh_uzclient_start(&dmn, &c, hold, true) == 0, "fork");
	ret = dh_client_read_line(&c, line, sizeof(line), DH_CLIENT_MS);
	DH_ASSERT(ret == 0 && !strcmp(line, "ready"),
		  "uzclient hold did not get ready: %s",
		  ret ? strerror(-ret) : line);
	rx_wait_clients(1, 1, val, sizeof(val));
	DH_ASSERT(dh_client_say(&c, "alive") == 0, "uzclient: stdin");
	ret = dh_client_wait(&c, DH_CLIENT_MS);
	DH_ASSERT(dh_exited_ok(ret), "uzclient hold: %s", dh_status_str(ret));
	rx_wait_clients(0, 0, val, sizeof(val));

	/* a reload that takes a new configuration */
	write_conf("[store]\ncompressor = zstd\n");
	reload_and_wait();
	DH_ASSERT(dh_log_find(&dmn, "configuration reloaded: zstd", NULL, 0),
		  "the new configuration is not in force");
	rx_wait("WATCHDOG=1", NULL, NULL, msg, sizeof(msg), MSG_MS);
	assert_serving();

	stop_and_wait();
}
END_TEST

START_TEST(test_reload_failed)
{
	static const char *const hold[] = { "hold", "4", NULL };
	char msg[2048], val[1024], line[64];
	struct dh_client c;
	int ret;

	log_allow = "reload failed";
	notify_start(NULL);
	rx_wait("READY=1", NULL, NULL, msg, sizeof(msg), MSG_MS);

	write_conf("[store]\ncompressor = brotli\n");
	reload_and_wait();
	rx_wait("STATUS=", "reload failed", NULL, msg, sizeof(msg), MSG_MS);
	DH_ASSERT(dh_log_find(&dmn, "reload failed", NULL, 0),
		  "the failed reload is not in the log");
	assert_serving();
	/* the error stays in STATUS while the counts change */
	DH_ASSERT(dh_uzclient_start(&dmn, &c, hold, true) == 0, "fork");
	ret = dh_client_read_line(&c, line, sizeof(line), DH_CLIENT_MS);
	DH_ASSERT(ret == 0 && !strcmp(line, "ready"),
		  "uzclient hold did not get ready: %s",
		  ret ? strerror(-ret) : line);
	rx_wait_clients(1, 1, val, sizeof(val));
	DH_ASSERT(strstr(val, "reload failed"), "the error left STATUS: %s",
		  val);
	DH_ASSERT(dh_client_say(&c, "alive") == 0, "uzclient: stdin");
	ret = dh_client_wait(&c, DH_CLIENT_MS);
	DH_ASSERT(dh_exited_ok(ret), "uzclient hold: %s", dh_status_str(ret));

	write_conf("");
	reload_and_wait();
	rx_wait("STATUS=", "clients", NULL, msg, sizeof(msg), MSG_MS);
	DH_ASSERT(!strstr(msg, "reload failed"),
		  "the error stayed after a good reload: %s", msg);
	stop_and_wait();
}
END_TEST

/* Whether thread @tid of the daemon sits in epoll_wait(). */
static bool in_epoll_wait(pid_t tid)
{
	char path[80], buf[128];
	long nr = -1;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)dmn.pid,
		 (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (sscanf(buf, "%ld", &nr) != 1)
		return false;	/* "running" */
	return
#ifdef SYS_epoll_wait
		nr == SYS_epoll_wait ||
#endif
#ifdef SYS_epoll_pwait2
		nr == SYS_epoll_pwait2 ||
#endif
		nr == SYS_epoll_pwait;
}

/*
 * The fault threads of an idle daemon: its threads, but the main one (the
 * loop), that wait in epoll_wait() (the evictors wait on a condition
 * variable, libuv's workers on a futex). Polled until @want are seen.
 */
static int fault_threads(pid_t *tids, int max, int want)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);
	char path[64];
	struct dirent *e;
	int n;
	DIR *dir;
	pid_t tid;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)dmn.pid);
	do {
		n = 0;
		dir = opendir(path);
		DH_ASSERT(dir, "%s: %s", path, strerror(errno));
		while ((e = readdir(dir)) && n < max) {
			tid = (pid_t)atoi(e->d_name);
			if (tid > 0 && tid != dmn.pid && in_epoll_wait(tid))
				tids[n++] = tid;
		}
		closedir(dir);
		if (n == want)
			return n;
		dh_sleep_ms(5);
	} while (dh_now_ms() < deadline);
	DH_ASSERT(0, "found %d fault threads, not %d", n, want);
	return n;
}

/* Stop (ptrace) the @want fault threads, each in epoll_wait(), where it
 * holds no lock. */
static int stop_fault_threads(pid_t *tids, int max, int want)
{
	int n = fault_threads(tids, max, want), i, status;

	for (i = 0; i < n; i++) {
		DH_ASSERT(ptrace(PTRACE_SEIZE, tids[i], 0, 0) == 0 &&
				  ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) == 0,
			  "ptrace thread %d: %s", (int)tids[i],
			  strerror(errno));
		DH_ASSERT(waitpid(tids[i], &status, __WALL) == tids[i] &&
				  WIFSTOPPED(status),
			  "thread %d did not stop", (int)tids[i]);
	}
	return n;
}

static void resume_threads(const pid_t *tids, int n)
{
	int i;

	for (i = 0; i < n; i++)
		DH_ASSERT(ptrace(PTRACE_DETACH, tids[i], 0, 0) == 0,
			  "detach thread %d: %s", (int)tids[i],
			  strerror(errno));
}

START_TEST(test_watchdog_stuck)
{
	static const char *const more[] = { "--fault-threads", "2", NULL };
	char msg[2048], val[1024];
	long long stopped, deadline;
	bool noted = false;
	pid_t tids[64];
	int n, late_pings = 0;

	log_allow = "does not answer";
	notify_start(more);
	rx_wait("READY=1", NULL, NULL, msg, sizeof(msg), MSG_MS);
	rx_wait("WATCHDOG=1", NULL, NULL, msg, sizeof(msg), MSG_MS);

	/* The loop runs on; the fault threads answer no heartbeat (one
	 * stopped between two epoll_wait() calls would do; stopping it in
	 * one is what the test can do without catching it holding a lock). One
	 * ping may still come (answered just before they stopped): none
	 * after 2.5 s (two ticks and a half). */
	n = stop_fault_threads(tids, 64, 2);
	stopped = dh_now_ms();
	deadline = stopped + 6000;
	while (dh_now_ms() < deadline) {
		if (!rx_one(msg, sizeof(msg), (int)(deadline - dh_now_ms())))
			continue;
		if (msg_has(msg, "WATCHDOG=1", NULL, 0) &&
		    dh_now_ms() > stopped + 2500)
			late_pings++;
		if (msg_has(msg, "STATUS=", val, sizeof(val)) &&
		    strstr(val, "a fault thread does not answer"))
			noted = true;
	}
	/* the loop still serves the control socket */
	DH_ASSERT(dh_sync(&dmn) == 0, "the loop does not answer");
	resume_threads(tids, n);
	DH_ASSERT(late_pings == 0, "%d WATCHDOG=1 with the fault threads "
		  "stopped; uzswapd sent:\n%s", late_pings, rx.seen);
	DH_ASSERT(noted, "STATUS did not say a fault thread does not "
		  "answer; uzswapd sent:\n%s", rx.seen);
	DH_ASSERT(dh_log_find(&dmn, "does not answer", NULL, 0),
		  "no error line for the stuck fault thread");

	/* running again: pinged again, STATUS without the note */
	rx_wait("WATCHDOG=1", NULL, NULL, msg, sizeof(msg), MSG_MS);
	rx_wait("STATUS=", "clients", NULL, msg, sizeof(msg), MSG_MS);
	DH_ASSERT(!strstr(msg, "does not answer"), "STATUS still says: %s",
		  msg);
	DH_ASSERT(dh_log_find(&dmn, "answers again", NULL, 0),
		  "no log line for the recovery");
	assert_serving();
	stop_and_wait();
}
END_TEST

/*****************
 * The journal
 *****************/

/*
 * struct journal - the test's stand-in for journald's native socket
 * (/run/systemd/journal/socket in the daemon's own mount namespace): a
 * datagram socket that @thread drains, each record appended to @recs as
 * "KEY=value" lines and a blank line. The daemon sends a record at a
 * time and waits when the socket's queue is full: the thread keeps it
 * short.
 * @dir:    the directory mounted on /run/systemd/journal
 * @fd:     the socket, @dir/socket
 * @lock:   protects @recs, @len and @stop
 */
static struct journal {
	char dir[PATH_MAX];
	int fd;
	pthread_t thread;
	pthread_mutex_t lock;
	char recs[65536];
	size_t len;
	bool stop;
} jsock = { .fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

/* Append record @buf (@n bytes, the native protocol: "KEY=value\n", or
 * "KEY\n", a little-endian 64-bit size and the value, "\n") to jsock.recs
 * as lines. jsock.lock held. */
static void journal_append_locked(const char *buf, size_t n)
{
	const char *p = buf, *end = buf + n, *nl, *eq;
	uint64_t len = 0;
	int i;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		eq = memchr(p, '=', (size_t)(nl - p));
		if (eq) {
			len = (uint64_t)(nl - p);
		} else if (end - nl > 9) {
			for (i = 8; i >= 1; i--)
				len = len << 8 | (uint8_t)nl[i];
			if (len > (uint64_t)(end - nl - 9))
				break;
			jsock.len += (size_t)snprintf(jsock.recs + jsock.len,
						   sizeof(jsock.recs) - jsock.len,
						   "%.*s=", (int)(nl - p), p);
			p = nl + 9;
		} else {
			break;
		}
		jsock.len += (size_t)snprintf(jsock.recs + jsock.len,
					   sizeof(jsock.recs) - jsock.len, "%.*s\n",
					   (int)len, p);
		p += len + 1;
		if (jsock.len >= sizeof(jsock.recs) - 1)
			jsock.len = sizeof(jsock.recs) - 1;
	}
	jsock.len += (size_t)snprintf(jsock.recs + jsock.len, sizeof(jsock.recs) - jsock.len,
				   "\n");
	if (jsock.len >= sizeof(jsock.recs) - 1)
		jsock.len = sizeof(jsock.recs) - 1;
}

static void *journal_drain(void *arg)
{
	struct pollfd pfd = { .fd = jsock.fd, .events = POLLIN };
	static char buf[65536];
	bool stop = false;
	ssize_t n;

	(void)arg;
	while (!stop) {
		if (poll(&pfd, 1, 100) == 1) {
			n = recv(jsock.fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0) {
				pthread_mutex_lock(&jsock.lock);
				journal_append_locked(buf, (size_t)n);
				pthread_mutex_unlock(&jsock.lock);
			}
		}
		pthread_mutex_lock(&jsock.lock);
		stop = jsock.stop;
		pthread_mutex_unlock(&jsock.lock);
	}
	return NULL;
}

static void journal_open(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ret = dh_mkdtemp(jsock.dir, sizeof(jsock.dir), "journal");

	DH_CHECK(ret == 0, "mkdtemp: %s", strerror(-ret));
	DH_CHECK((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path),
				  "%s/socket", jsock.dir) < sizeof(sa.sun_path),
		 "socket path too long");
	jsock.len = 0;
	jsock.stop = false;
	jsock.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	DH_CHECK(jsock.fd >= 0 &&
			 bind(jsock.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		 "journal socket %s: %s", sa.sun_path, strerror(errno));
	DH_CHECK(pthread_create(&jsock.thread, NULL, journal_drain, NULL) == 0,
		 "pthread_create");
}

static void journal_close(void)
{
	pthread_mutex_lock(&jsock.lock);
	jsock.stop = true;
	pthread_mutex_unlock(&jsock.lock);
	pthread_join(jsock.thread, NULL);
	close(jsock.fd);
	jsock.fd = -1;
}

/* Does record @rec (its lines, a blank line after) hold every line of
 * @want? A want ending in '*' is a prefix. */
static bool record_has(const char *rec, const char *const *want)
{
	char line[1024];
	size_t n;

	for (; *want; want++) {
		n = strlen(*want);
		if ((*want)[n - 1] == '*')
			snprintf(line, sizeof(line), "\n%.*s", (int)n - 1,
				 *want);
		else
			snprintf(line, sizeof(line), "\n%s\n", *want);
		if (!strstr(rec, line))
			return false;
	}
	return true;
}

/* Wait (at most MSG_MS, scaled) for a record holding every line of
 * @want (NULL-terminated); fails the test with what came if none does. */
static void journal_expect(const char *const *want)
{
	long long deadline = dh_deadline(MSG_MS);
	char rec[4096];
	const char *p, *end;
	bool found = false;

	do {
		pthread_mutex_lock(&jsock.lock);
		for (p = jsock.recs; !found && p < jsock.recs + jsock.len; p = end + 2) {
			end = strstr(p, "\n\n");
			if (!end)
				break;
			snprintf(rec, sizeof(rec), "\n%.*s\n", (int)(end - p),
				 p);
			found = record_has(rec, want);
		}
		pthread_mutex_unlock(&jsock.lock);
		if (!found)
			dh_sleep_ms(20);
	} while (!found && dh_now_ms() < deadline);
	DH_ASSERT(found, "no journal record with %s, %s...; received:\n%.3000s",
		  want[0], want[1] ? want[1] : "", jsock.recs);
}

/* In the unshared mount namespace: /run is a tmpfs of its own, the test's
 * directory ($0) is the journal's, and $JOURNAL_STREAM names stderr, as
 * systemd sets it for a service whose StandardError= is the journal. */
static const char journal_script[] =
	"mount -t tmpfs tmpfs /run\n"
	"mkdir -p /run/systemd/journal\n"
	"mount --bind \"$0\" /run/systemd/journal\n"
	"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)\n"
	"export JOURNAL_STREAM\n"
	"exec \"$@\"\n";

/*
 * Under systemd, with its stderr the journal's stream ($JOURNAL_STREAM),
 * the daemon sends structured records to the journal's socket, which here
 * is the test's: the daemon runs in a mount namespace of its own (nothing
 * reaches the system's journal). Its startup line comes with the standard
 * fields, a client's with CLIENT_PID= and CLIENT_COMM=; nothing goes to
 * the stream itself.
 */
START_TEST(test_journal_stream)
{
	char unshare[PATH_MAX], msg[128], pid[32], line[512];
	const char *first[] = { unshare, "--mount", "--propagation",
				"private", "/bin/sh", "-ec", journal_script,
				jsock.dir, NULL };
	const char *more[] = { "--socket", dmn.sock, NULL };
	const char *argv[32];
	struct dh_client c;
	int ret;

	need_tool("unshare", "util-linux", unshare, sizeof(unshare));
	journal_open();
	daemon_argv(argv, 32, first, false, more);
	ret = dh_launch(&dmn, argv, NULL);
	DH_ASSERT(ret == 0, "uzswapd with JOURNAL_STREAM did not start: %s",
		  strerror(-ret));
	journal_expect((const char *[]){
		"MESSAGE=main: uzswapd " PACKAGE_VERSION " ready, *",
		"PRIORITY=6", "SYSLOG_IDENTIFIER=uzswapd",
		"UZSWAP_SUBSYSTEM=main", "CODE_FILE=daemon/uzswapd.c",
		"CODE_FUNC=uzswapd_main", "CODE_LINE=*", NULL });

	ret = dh_uzclient_start(&dmn, &c,
				(const char *[]){ "basic", "4", NULL }, false);
	DH_ASSERT(ret == 0, "uzclient: %s", strerror(-ret));
	snprintf(msg, sizeof(msg), "MESSAGE=client: pid %d (uzclient) "
		 "connected", (int)c.pid);
	snprintf(pid, sizeof(pid), "CLIENT_PID=%d", (int)c.pid);
	ret = dh_client_wait(&c, DH_CLIENT_MS);
	DH_ASSERT(dh_exited_ok(ret), "uzclient basic: %s", dh_status_str(ret));
	journal_expect((const char *[]){ msg, pid, "CLIENT_COMM=uzclient",
					 "PRIORITY=6",
					 "UZSWAP_SUBSYSTEM=client",
					 "CODE_FILE=daemon/client.c", NULL });
	dh_stop_ok(&dmn, SIGTERM, log_allow);
	journal_expect((const char *[]){
		"MESSAGE=main: stopped; the clients wait for the next uzswapd",
		NULL });
	journal_close();
	DH_ASSERT(!dh_log_find(&dmn, "", line, sizeof(line)),
		  "a line went to the stream, not as a record: %s", line);
}
END_TEST

/*****************
 * Suite
 *****************/

static Suite *systemd_suite(void)
{
	Suite *s = suite_create("systemd");
	TCase *tc;

	tc = tcase_create("files");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_install_and_verify);
	tcase_add_test(tc, test_sysusers_tmpfiles);
	tcase_add_test(tc, test_udev_rule);
	suite_add_tcase(s, tc);

	tc = tcase_create("activation");
	tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_socket_activation);
	tcase_add_test(tc, test_unit_privileges);
	suite_add_tcase(s, tc);

	/* parts of their own (check_systemd_oom, check_systemd_mlock) */
	tc = ckpart_tcase(s, "oom");
	tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_unit_oom_score);

	tc = ckpart_tcase(s, "mlock");
	tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_unit_mlock);

	tc = tcase_create("journal");
	tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_journal_stream);
	suite_add_tcase(s, tc);

	tc = tcase_create("notify");
	tcase_add_checked_fixture(tc, notify_setup, notify_teardown);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_notify);
	tcase_add_test(tc, test_reload_failed);
	tcase_add_test(tc, test_watchdog_stuck);
	suite_add_tcase(s, tc);
	return s;
}

/* Can this process lower its OOM score as OOMScoreAdjust=-900 does?
 * (A child tries: its score must not change.) */
static bool can_lower_oom_score(void)
{
	pid_t pid = fork();
	int fd, status;

	if (pid == 0) {
		fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		_exit(fd >= 0 && write(fd, "-900", 4) == 4 ? 0 : 1);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid &&
	       dh_exited_ok(status);
}

/* Why the daemon cannot lock memory as LimitMEMLOCK=infinity lets it,
 * or NULL if it can: this process must be able to raise RLIMIT_MEMLOCK. */
static const char *cannot_lock_memory(void)
{
	struct rlimit old, inf = { RLIM_INFINITY, RLIM_INFINITY };

#ifdef UZSWAP_SANITIZED
	return "a sanitizer build of uzswapd does not lock memory";
#endif
	if (getrlimit(RLIMIT_MEMLOCK, &old) < 0 ||
	    setrlimit(RLIMIT_MEMLOCK, &inf) < 0)
		return "cannot raise RLIMIT_MEMLOCK to infinity here (no "
		       "CAP_SYS_RESOURCE)";
	setrlimit(RLIMIT_MEMLOCK, &old);
	return NULL;
}

static const char *cannot_run(const char *part)
{
	if (!strcmp(part, "oom"))
		return can_lower_oom_score() ? NULL
		       : "cannot set oom_score_adj -900 here (no "
			 "CAP_SYS_RESOURCE)";
	return cannot_lock_memory();
}

int main(void)
{
	return dh_main_part("check_systemd", systemd_suite(), CKPART,
			    cannot_run);
}
