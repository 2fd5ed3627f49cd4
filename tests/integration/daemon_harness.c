/*
 * daemon_harness.c - start/stop a real uzswapd and run client programs
 * against it; see daemon_harness.h.
 *
 * Child processes (the daemon, the clients) are set up between fork() and
 * exec() with async-signal-safe calls only: PR_SET_PDEATHSIG so that they
 * die with the test, an empty signal mask and default dispositions (both
 * survive exec, and a daemon started with SIGTERM blocked would never
 * stop), their stdio, and every other descriptor closed, so that no pipe
 * of the test runner is held open by a process that outlives a test.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/common/macros.h"
#include "lib/proto/proto.h"

#ifndef UZSWAPD_PATH
#error "UZSWAPD_PATH must name the built uzswapd"
#endif
#ifndef UZCLIENT_PATH
#error "UZCLIENT_PATH must name the built uzclient"
#endif

#define DH_MAX_ARGS	32
/* Room for a command line and the options the harness adds to it. */
#define DH_EXEC_ARGS	64
#define DH_POLL_MS	5

extern char **environ;

static char root[256];

/*****************
 * Helpers
 *****************/

/* Fill a unix socket address; -ENAMETOOLONG if @path does not fit. */
static int sun_set(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

void dh_brief_timeout(bool brief)
{
	char ms[16];

	snprintf(ms, sizeof(ms), "%d", dh_scaled_ms(2000));
	if (brief)
		setenv("UZSWAP_TIMEOUT_MS", ms, 1);
	else
		unsetenv("UZSWAP_TIMEOUT_MS");
}

long long dh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double dh_time_scale(void)
{
	const char *s = getenv("CK_TIMEOUT_MULTIPLIER");
	char *end;
	double f;

	if (!s)
		return 1;
	f = strtod(s, &end);
	return end != s && !*end && f >= 1 ? f : 1;
}

int dh_scaled_ms(int ms)
{
	return (int)(ms * dh_time_scale());
}

long long dh_deadline(int ms)
{
	return dh_now_ms() + dh_scaled_ms(ms);
}

void dh_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *dh_status_str(int status)
{
	static __thread char buf[64];

	if (status == -ETIMEDOUT)
		snprintf(buf, sizeof(buf), "did not exit in time (killed)");
	else if (status < 0)
		snprintf(buf, sizeof(buf), "error: %s", strerror(-status));
	else if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, sizeof(buf), "wait status %#x", status);
	return buf;
}

/* Reap @pid within @timeout_ms; -ETIMEDOUT if it is still running. */
static int reap(pid_t pid, int timeout_ms)
{
	long long deadline = dh_deadline(timeout_ms);
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (dh_now_ms() >= deadline)
			return -ETIMEDOUT;
		dh_sleep_ms(DH_POLL_MS);
	}
}

/* SIGKILL @pid (if it still runs) and reap it: its wait status, or
 * -errno. */
static int kill_and_reap(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return status;
}

/*
 * @argv, with "--state-dir @state" after the daemon's path (argv[0], or an
 * argument of a wrapper that execs it) into @out (DH_EXEC_ARGS entries):
 * every uzswapd the harness starts for a daemon keeps its state in that
 * daemon's directory. A --state-dir of @argv comes later and wins.
 */
static void with_state_dir(const char *const *argv, const char *state,
			   const char **out)
{
	size_t n = 0, i;

	for (i = 0; argv[i] && n < DH_EXEC_ARGS - 3; i++) {
		out[n++] = argv[i];
		if (!strcmp(argv[i], UZSWAPD_PATH)) {
			out[n++] = "--state-dir";
			out[n++] = state;
		}
	}
	out[n] = NULL;
}

/*
 * In a freshly forked child: die with the parent, default signal state,
 * stdin/stdout/stderr from @in/@out/@err, nothing else open. Returns only
 * on failure (the caller then _exit()s).
 */
static void child_setup(pid_t parent, int in, int out, int err)
{
	sigset_t none;
	int sig;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);	/* the parent died before the prctl */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	close_range(3, ~0u, 0);
}

/*****************
 * Root directory
 *****************/

int dh_root_create(void)
{
	const char *tmp = getenv("TMPDIR");

	/* socket paths must fit sun_path: keep the root short */
	if (!tmp || !*tmp || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(root, sizeof(root), "%s/uzswap-itest.XXXXXX", tmp);
	if (!mkdtemp(root)) {
		root[0] = '\0';
		return -errno;
	}
	return 0;
}

const char *dh_root(void)
{
	return root;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void dh_root_remove(void)
{
	if (root[0])
		rm_tree(root);
	root[0] = '\0';
}

/*****************
 * The daemon
 *****************/

static bool socket_accepts(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = sun_set(&sa, path) == 0 &&
	     connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Start uzswapd in @d's directory, through @wrapper (a command line that
 * ends with the daemon's, NULL: none); it locks its memory if @lock. */
static int start_in_dir(struct dh_daemon *d, const char *const *wrapper,
			const char *const *extra, bool lock)
{
	const char *argv[DH_MAX_ARGS];
	int n = 0, i;

	for (i = 0; wrapper && wrapper[i] && n < DH_MAX_ARGS / 2; i++)
		argv[n++] = wrapper[i];
	argv[n++] = UZSWAPD_PATH;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	if (!lock)
		argv[n++] = "--no-mlock";
	argv[n++] = "-D";
	argv[n++] = "all";
	argv[n++] = "--backing-file";
	argv[n++] = d->backing;
	argv[n++] = "--config";
	argv[n++] = d->conf;
	argv[n++] = "--metrics";
	argv[n++] = "off";
	for (i = 0; extra && extra[i] && n < DH_MAX_ARGS - 1; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	return dh_launch(d, argv, NULL);
}

int dh_start(struct dh_daemon *d, const char *const *extra)
{
	int ret = dh_prepare(d);

	return ret ? ret : start_in_dir(d, NULL, extra, false);
}

int dh_start_under(struct dh_daemon *d, const char *const *wrapper,
		   const char *const *extra)
{
	int ret = dh_prepare(d);

	return ret ? ret : start_in_dir(d, wrapper, extra, false);
}

void dh_up(struct dh_daemon *d, const char *const *extra)
{
	int ret = dh_start(d, extra);

	DH_ASSERT_ON(d, ret == 0, "uzswapd did not start: %s", strerror(-ret));
}

void dh_up_locked(struct dh_daemon *d, const char *const *extra)
{
	int ret = dh_prepare(d);

	if (ret == 0)
		ret = start_in_dir(d, NULL, extra, true);
	DH_ASSERT_ON(d, ret == 0, "uzswapd did not start: %s", strerror(-ret));
}

void dh_assert_log_clean(const struct dh_daemon *d, const char *allow)
{
	char line[1024];

	DH_ASSERT_ON(d, !dh_log_bad_line(d, allow, line, sizeof(line)),
		     "uzswapd logged: %s", line);
}

void dh_stop_ok(struct dh_daemon *d, int sig, const char *allow)
{
	int status = dh_stop_with(d, sig);

	DH_ASSERT_ON(d, dh_exited_ok(status), "uzswapd on %s: %s",
		     sig ? strsignal(sig) : "its signal", dh_status_str(status));
	dh_assert_log_clean(d, allow);
}

void dh_down(struct dh_daemon *d, const char *allow)
{
	if (d->pid)
		dh_stop_ok(d, SIGTERM, allow);
	else if (d->dir[0])
		dh_assert_log_clean(d, allow);
	if (!getenv("UZSWAP_ITEST_KEEP"))
		dh_remove(d);
}

int dh_restart(struct dh_daemon *d, const char *const *extra)
{
	if (d->pid)
		return -EBUSY;
	return start_in_dir(d, NULL, extra, false);
}

int dh_stop(struct dh_daemon *d)
{
	return dh_stop_with(d, SIGTERM);
}

int dh_stop_with(struct dh_daemon *d, int sig)
{
	int status;

	if (!d->pid)
		return -ECHILD;
	if (sig)
		kill(d->pid, sig);
	status = reap(d->pid, DH_STOP_MS);
	d->status = status == -ETIMEDOUT ? kill_and_reap(d->pid) : status;
	d->pid = 0;
	return status;
}

void dh_kill(struct dh_daemon *d)
{
	if (d->pid)
		d->status = kill_and_reap(d->pid);
	d->pid = 0;
}

void dh_remove(struct dh_daemon *d)
{
	/* the state directory is inside */
	if (d->dir[0])
		rm_tree(d->dir);
	d->dir[0] = d->state[0] = '\0';
}

static void dump_file(const char *title, const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	fprintf(stderr, "----- %s (%s) -----\n", title, path);
	fflush(stderr);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(2, buf, (size_t)n) < 0)
			break;
	close(fd);
	fprintf(stderr, "----- end of %s -----\n", title);
}

const char *dh_msg(const char *fmt, ...)
{
	static const char more[] = " [... the whole message is on stderr]";
	static char buf[DH_MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < (int)sizeof(buf))
		return buf;
	fputs("failure message: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	memcpy(buf + sizeof(buf) - sizeof(more), more, sizeof(more));
	return buf;
}

void dh_dump_logs(const struct dh_daemon *d)
{
	dump_file("uzswapd log", d->log);
	dump_file("client stderr", d->clog);
}

/* dh_log_find(), of the first line holding @needle or of the @last. */
static bool log_find(const struct dh_daemon *d, const char *needle,
		     char *line, size_t size, bool last)
{
	char buf[2048], hit[2048];
	bool found = false;
	FILE *f = fopen(d->log, "re");

	if (!f)
		return false;
	while ((last || !found) && fgets(buf, sizeof(buf), f)) {
		if (!strstr(buf, needle))
			continue;
		found = true;
		memcpy(hit, buf, sizeof(hit));
	}
	fclose(f);
	if (found && line && size) {
		hit[strcspn(hit, "\n")] = '\0';
		snprintf(line, size, "%s", hit);
	}
	return found;
}

bool dh_log_find(const struct dh_daemon *d, const char *needle, char *line,
		 size_t size)
{
	return log_find(d, needle, line, size, false);
}

int dh_log_count(const struct dh_daemon *d, const char *needle)
{
	char buf[2048];
	int n = 0;
	FILE *f = fopen(d->log, "re");

	if (!f)
		return -errno;
	while (fgets(buf, sizeof(buf), f))
		if (strstr(buf, needle))
			n++;
	fclose(f);
	return n;
}

void dh_open_socket(const struct dh_daemon *d, mode_t sock_mode)
{
	DH_ASSERT_ON(d, chmod(dh_root(), 0711) == 0 &&
		     chmod(d->dir, 0711) == 0 &&
		     chmod(d->sock, sock_mode) == 0, "chmod: %s",
		     strerror(errno));
}

void dh_hup_and_wait(const struct dh_daemon *d, const char *needle,
		     int count)
{
	long long deadline = dh_deadline(DH_RELOAD_MS);

	DH_ASSERT_ON(d, kill(d->pid, SIGHUP) == 0, "SIGHUP: %s",
		     strerror(errno));
	while (dh_log_count(d, needle) < count) {
		DH_ASSERT_ON(d, dh_now_ms() < deadline, "no '%s' in the log "
			     "after SIGHUP", needle);
		dh_sleep_ms(20);
	}
}

int dh_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

int dh_wait_fd_count(const struct dh_daemon *d, int want)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);
	int n;

	for (;;) {
		n = dh_fd_count(d->pid);
		if (n < 0 || n == want || dh_now_ms() >= deadline)
			return n;
		dh_sleep_ms(DH_POLL_MS);
	}
}

/* Call @fn for the target of each fd of @pid; returns the sum of what it
 * returns, or -errno. */
static long for_each_fd(pid_t pid, long (*fn)(pid_t pid, const char *fd,
					      const char *target))
{
	char path[64], link[PATH_MAX], target[PATH_MAX];
	struct dirent *e;
	long sum = 0;
	ssize_t n;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;	/* closed meanwhile */
		target[n] = '\0';
		sum += fn(pid, e->d_name, target);
	}
	closedir(dir);
	return sum;
}

struct fd_list {
	char *buf;
	size_t size, len;
};

static __thread struct fd_list *cur_list;

static long list_fd(pid_t pid, const char *fd, const char *target)
{
	struct fd_list *l = cur_list;
	int n;

	if (l->len < l->size) {
		n = snprintf(l->buf + l->len, l->size - l->len, "%s -> %s\n",
			     fd, target);
		if (n > 0)
			l->len += (size_t)n;
	}
	return 0;
}

void dh_fd_list(pid_t pid, char *buf, size_t size)
{
	struct fd_list l = { buf, size, 0 };

	if (!size)
		return;
	buf[0] = '\0';
	cur_list = &l;
	for_each_fd(pid, list_fd);
	cur_list = NULL;
	if (l.len >= size)
		buf[size - 1] = '\0';
}

static long is_client_fd(pid_t pid, const char *fd, const char *target)
{
	return !strncmp(target, "socket:", 7) ||
	       !strcmp(target, "anon_inode:[pidfd]") ||
	       !strcmp(target, "anon_inode:[userfaultfd]") ||
	       !strncmp(target, "/memfd:", 7);
}

int dh_client_fds(pid_t pid)
{
	return (int)for_each_fd(pid, is_client_fd);
}

int dh_sync(const struct dh_daemon *d)
{
	struct proto_hdr h;
	uint8_t payload[PROTO_MAX_PAYLOAD];
	int fd = dh_connect(d), ret;

	if (fd < 0)
		return fd;
	ret = proto_send(fd, PROTO_VERSION_MIN, PROTO_STATS, 1, NULL, 0, NULL,
			 0);
	if (ret == 0)
		ret = recv(fd, &h, sizeof(h), MSG_WAITALL) == sizeof(h) ? 0
								       : -EIO;
	if (ret == 0 && (h.magic != PROTO_MAGIC || h.len > sizeof(payload) ||
			 h.type != (PROTO_STATS | PROTO_REPLY)))
		ret = -EBADMSG;
	if (ret == 0 && h.len &&
	    recv(fd, payload, h.len, MSG_WAITALL) != (ssize_t)h.len)
		ret = -EIO;
	close(fd);
	return ret;
}

int dh_wait_idle(const struct dh_daemon *d)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);
	int n = dh_sync(d);

	if (n < 0)
		return n;

	for (;;) {
		/* the listening socket is the one client-like fd left */
		n = dh_client_fds(d->pid);
		if (n < 0)
			return n;
		if (n <= 1 || dh_now_ms() >= deadline)
			return dh_fd_count(d->pid);
		dh_sleep_ms(DH_POLL_MS);
	}
}

static long uffd_waiting(pid_t pid, const char *fd, const char *target)
{
	char path[64], line[256];
	long waiting = 0;
	FILE *f;

	if (strcmp(target, "anon_inode:[userfaultfd]"))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "total: %ld", &waiting) == 1)
			break;
	fclose(f);
	return waiting;
}

long dh_uffd_waiting(pid_t pid)
{
	return for_each_fd(pid, uffd_waiting);
}

int dh_connect(const struct dh_daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = dh_scaled_ms(10000) / 1000 };
	int fd, ret;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sun_set(&sa, d->sock) < 0) {
		close(fd);
		return -ENAMETOOLONG;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * One request of @type (payload @req, @reqlen bytes) at protocol @version
 * on a new connection, which is then closed; the reply's body is decoded
 * with @decode into @out. Return: 0; the reply's status if the daemon
 * refused; -EBADMSG for a malformed reply; -errno.
 */
static int ask(const struct dh_daemon *d, uint16_t version, uint16_t type,
	       const void *req, size_t reqlen,
	       int (*decode)(const uint8_t *body, size_t len, void *out),
	       void *out)
{
	struct proto_reader rd;
	const uint8_t *body;
	const char *errmsg;
	int32_t status;
	size_t len;
	int fd = dh_connect(d), ret;

	if (fd < 0)
		return fd;
	memset(&rd, 0, sizeof(rd));
	ret = proto_send(fd, version, type, 1, req, reqlen, NULL, 0);
	/* a blocking socket: the reader returns a complete message, an
	 * error, or 0 when the receive timeout ran out */
	if (ret == 0)
		ret = proto_reader_feed(&rd, fd);
	if (ret == 0)
		ret = -ETIMEDOUT;
	if (ret == 1) {
		ret = 0;
		if (rd.msg.hdr.type != (type | PROTO_REPLY) ||
		    rd.msg.hdr.seq != 1 || rd.msg.nfds ||
		    proto_parse_reply(&rd.msg, &status, &body, &len, &errmsg))
			ret = -EBADMSG;
		else if (status)
			ret = status;
		else if (decode(body, len, out))
			ret = -EBADMSG;
	}
	proto_reader_reset(&rd);
	close(fd);
	return ret;
}

static int decode_status(const uint8_t *body, size_t len, void *out)
{
	return proto_decode_status_reply(body, len, out);
}

static int decode_client_row(const uint8_t *body, size_t len, void *out)
{
	return proto_decode_client_row(body, len, out);
}

int dh_status(const struct dh_daemon *d, struct proto_status_reply *st)
{
	return ask(d, PROTO_VERSION, PROTO_STATUS, NULL, 0, decode_status,
		   st);
}

int dh_metrics_address(const struct dh_daemon *d, char *addr, size_t size)
{
	static const char tag[] = "serving http://";
	char line[512], *p, *end;

	/* the last: a restarted daemon's */
	if (!log_find(d, tag, line, sizeof(line), true))
		return -ENOENT;
	p = strstr(line, tag) + strlen(tag);
	end = strstr(p, "/metrics");
	if (!end || (size_t)(end - p) >= size)
		return -ENOENT;
	memcpy(addr, p, (size_t)(end - p));
	addr[end - p] = '\0';
	return 0;
}

/* A connection to @d's /metrics address, or -1 with errno set. */
static int metrics_connect(const struct dh_daemon *d)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 30 };
	char addr[128], *colon;
	int fd;

	if (dh_metrics_address(d, addr, sizeof(addr)) ||
	    !(colon = strrchr(addr, ':'))) {
		errno = ENOENT;
		return -1;
	}
	*colon = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

char *dh_scrape(const struct dh_daemon *d)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	size_t got = 0, cap = 1 << 16;
	char *resp = malloc(cap), *body, *grown;
	int fd = metrics_connect(d);
	ssize_t n = 0;

	if (fd < 0 || !resp ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) !=
		    (ssize_t)(sizeof(req) - 1))
		goto fail;
	for (;;) {
		if (got + 1 == cap) {
			grown = realloc(resp, 2 * cap);
			if (!grown)
				goto fail;
			resp = grown;
			cap *= 2;
		}
		n = recv(fd, resp + got, cap - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (n < 0)
		goto fail;
	close(fd);
	resp[got] = '\0';
	body = strstr(resp, "\r\n\r\n");
	if (strncmp(resp, "HTTP/1.", 7) || !strstr(resp, " 200 ") || !body) {
		free(resp);
		errno = EBADMSG;
		return NULL;
	}
	memmove(resp, body + 4, strlen(body + 4) + 1);
	return resp;

fail:
	if (fd >= 0)
		close(fd);
	free(resp);
	return NULL;
}

bool dh_sample(const char *body, const char *series, double *v)
{
	size_t n = strlen(series);
	const char *p = body;

	for (;;) {
		if (!strncmp(p, series, n) && p[n] == ' ') {
			*v = strtod(p + n + 1, NULL);
			return true;
		}
		p = strchr(p, '\n');
		if (!p)
			return false;
		p++;
	}
}

void dh_write_file(const struct dh_daemon *d, const char *path,
		   const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	va_list ap;

	DH_ASSERT_ON(d, f, "%s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	DH_ASSERT_ON(d, fclose(f) == 0, "%s: %s", path, strerror(errno));
}

uint64_t dh_metric(const struct dh_daemon *d, const char *series)
{
	char *body = dh_scrape(d);
	double v = 0;
	bool found;

	DH_ASSERT_ON(d, body, "GET /metrics: %s", strerror(errno));
	found = dh_sample(body, series, &v);
	free(body);
	DH_ASSERT_ON(d, found, "no sample %s on /metrics", series);
	return (uint64_t)v;
}

void dh_wait_pool_empty(const struct dh_daemon *d)
{
	long long deadline = dh_deadline(DH_POOL_EMPTY_MS);
	static const char *const zero[] = {
		"uzswap_pool_bytes", "uzswap_pool_payload_bytes",
		"uzswap_dedup_shared_objects", "uzswap_dedup_sharing_pages",
	};
	size_t i;
	uint64_t v;

	while ((dh_metric(d, "uzswap_pool_bytes") ||
		dh_metric(d, "uzswap_dedup_shared_objects")) &&
	       dh_now_ms() < deadline)
		dh_sleep_ms(20);
	for (i = 0; i < ARRAY_SIZE(zero); i++) {
		v = dh_metric(d, zero[i]);
		DH_ASSERT_ON(d, v == 0, "%s is %llu, not 0 once the clients "
			     "left", zero[i], (unsigned long long)v);
	}
}

void dh_wait_backing_empty(const struct dh_daemon *d,
			   struct proto_status_reply *now)
{
	long long deadline = dh_deadline(DH_POOL_EMPTY_MS);
	int ret;

	for (;;) {
		ret = dh_status(d, now);
		DH_ASSERT_ON(d, ret == 0, "STATUS: %s", strerror(-ret));
		if (now->written_back_pages == 0 && now->backing_bytes == 0)
			return;
		DH_ASSERT_ON(d, dh_now_ms() < deadline, "the backing file did "
			     "not empty: %" PRIu64 " pages written back, %"
			     PRIu64 " bytes", now->written_back_pages,
			     now->backing_bytes);
		dh_sleep_ms(20);
	}
}

int dh_client_row(const struct dh_daemon *d, pid_t pid,
		  struct proto_client_row *row)
{
	struct proto_client_req q = { .pid = (int32_t)pid };
	uint8_t req[PROTO_MAX_PAYLOAD];

	return ask(d, PROTO_VERSION, PROTO_CLIENT, req,
		   proto_encode_client_req(req, &q, PROTO_VERSION),
		   decode_client_row, row);
}

const char *dh_cannot_preload(void)
{
#ifdef UZSWAP_SANITIZED
	return "libuzswap-preload.so is built with a sanitizer, whose "
	       "runtime cannot be preloaded into a program (it must come "
	       "first) nor leave its malloc to the library";
#else
	return NULL;
#endif
}

int dh_main_preload(const char *name, Suite *(*suite)(void),
		    const char *part, ckpart_cannot_run_fn *cannot_run)
{
	const char *why = dh_cannot_preload();

	if (why) {
		fprintf(stderr, "%s: SKIP: %s\n", name, why);
		return CKPART_SKIP;
	}
	return dh_main_part(name, suite(), part, cannot_run);
}

TCase *dh_tcase(Suite *s, const char *name, bool part, int seconds,
		void (*teardown)(void))
{
	TCase *tc = part ? ckpart_tcase(s, name) : tcase_create(name);

	if (teardown)
		tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, seconds);
	if (!part)
		suite_add_tcase(s, tc);
	return tc;
}

long long dh_rss_shmem(pid_t pid)
{
	char path[64], line[256];
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssShmem: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -ENOENT : kb * 1024;
}

/*****************
 * Clients
 *****************/

/* environ plus UZSWAP_SOCKET and (unless set) a generous request
 * timeout: a loaded machine under ASan or TSan must not turn into
 * ETIMEDOUT. */
static char **client_env(const struct dh_daemon *d, char *sockvar)
{
	static char timeout[48];
	size_t n = 0, i, k = 0;
	char **env;

	snprintf(timeout, sizeof(timeout), "UZSWAP_TIMEOUT_MS=%d",
		 dh_scaled_ms(60000));
	while (environ[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "UZSWAP_SOCKET=", 14))
			env[k++] = environ[i];
	snprintf(sockvar, PATH_MAX + 16, "UZSWAP_SOCKET=%s", d->sock);
	env[k++] = sockvar;
	if (!getenv("UZSWAP_TIMEOUT_MS"))
		env[k++] = timeout;
	env[k] = NULL;
	return env;
}

int dh_client_start(const struct dh_daemon *d, struct dh_client *c,
		    const char *const *argv, bool pipes)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	const char *args[DH_EXEC_ARGS];
	char sockvar[PATH_MAX + 16];
	pid_t parent = getpid();
	int err, null, ret;
	char **env;

	c->pid = 0;
	c->in = c->out = -1;
	c->d = d;
	env = client_env(d, sockvar);
	if (!env)
		return -ENOMEM;
	err = open(d->clog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (err < 0 || null < 0)
		goto out_errno;
	if (pipes && (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0))
		goto out_errno;
	with_state_dir(argv, d->state, args);

	c->pid = fork();
	if (c->pid == 0) {
		child_setup(parent, pipes ? in[0] : null,
			    pipes ? out[1] : null, err);
		execve(args[0], (char *const *)args, env);
		_exit(127);
	}
	if (c->pid < 0)
		goto out_errno;
	if (pipes) {
		close(in[0]);
		close(out[1]);
		c->in = in[1];
		c->out = out[0];
	}
	close(err);
	close(null);
	free(env);
	return 0;

out_errno:
	ret = -errno;
	c->pid = 0;
	if (err >= 0)
		close(err);
	if (null >= 0)
		close(null);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	free(env);
	return ret;
}

int dh_uzclient_start(const struct dh_daemon *d, struct dh_client *c,
		      const char *const *argv, bool pipes)
{
	const char *full[DH_MAX_ARGS];
	int n = 0, i;

	full[n++] = UZCLIENT_PATH;
	for (i = 0; argv && argv[i] && n < DH_MAX_ARGS - 1; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	return dh_client_start(d, c, full, pipes);
}

void dh_client_close_pipes(struct dh_client *c)
{
	if (c->in >= 0)
		close(c->in);
	if (c->out >= 0)
		close(c->out);
	c->in = c->out = -1;
}

int dh_client_wait(struct dh_client *c, int timeout_ms)
{
	int status;

	if (!c->pid)
		return -ECHILD;
	status = reap(c->pid, timeout_ms);
	if (status == -ETIMEDOUT)
		kill_and_reap(c->pid);
	c->pid = 0;
	dh_client_close_pipes(c);
	return status;
}

void dh_client_kill(struct dh_client *c)
{
	if (c->pid)
		kill_and_reap(c->pid);
	c->pid = 0;
	dh_client_close_pipes(c);
}

int dh_client_read_line(struct dh_client *c, char *buf, size_t size,
			int timeout_ms)
{
	long long deadline = dh_deadline(timeout_ms);
	struct pollfd pfd = { .fd = c->out, .events = POLLIN };
	size_t n = 0;
	long long left;
	ssize_t r;
	char ch;

	for (;;) {
		left = deadline - dh_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		/* one byte at a time: never read past the line */
		r = read(c->out, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		if (ch == '\n') {
			buf[n] = '\0';
			return 0;
		}
		if (n + 1 >= size)
			return -EMSGSIZE;
		buf[n++] = ch;
	}
}

int dh_client_say(struct dh_client *c, const char *line)
{
	char buf[256];
	size_t len;
	ssize_t r;

	len = (size_t)snprintf(buf, sizeof(buf), "%s\n", line);
	if (len >= sizeof(buf))
		return -EMSGSIZE;
	do {
		r = write(c->in, buf, len);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -EIO;
}

int dh_run_uzclient(const struct dh_daemon *d, const char *const *argv)
{
	struct dh_client c;
	int ret = dh_uzclient_start(d, &c, argv, false);

	if (ret)
		return ret;
	return dh_client_wait(&c, DH_CLIENT_MS);
}

int dh_main(const char *name, Suite *s)
{
	return dh_main_part(name, s, NULL, NULL);
}

int dh_main_part(const char *name, Suite *s, const char *part,
		 ckpart_cannot_run_fn *cannot_run)
{
	SRunner *sr;
	int ret;

	signal(SIGPIPE, SIG_IGN);
	ret = dh_root_create();
	if (ret) {
		fprintf(stderr, "%s: cannot create a directory: %s\n", name,
			strerror(-ret));
		return EXIT_FAILURE;
	}
	sr = srunner_create(s);
	ret = ckpart_run(sr, part, cannot_run);
	srunner_free(sr);
	if (getenv("UZSWAP_ITEST_KEEP"))
		fprintf(stderr, "%s: logs kept in %s\n", name, dh_root());
	else
		dh_root_remove();
	return ret;
}

bool dh_log_bad_line(const struct dh_daemon *d, const char *allow,
		     char *line, size_t size)
{
	static const char *const errors[] = { "<3>", "<2>", "<1>", "<0>" };
	bool found = false;
	FILE *f = fopen(d->log, "re");
	size_t i;

	if (!f)
		return false;
	while (!found && fgets(line, (int)size, f)) {
		if (strstr(line, "Sanitizer") || strstr(line, "runtime error")) {
			found = true;
			break;
		}
		if (allow && strstr(line, allow))
			continue;
		for (i = 0; i < ARRAY_SIZE(errors); i++)
			if (strstr(line, errors[i]))
				found = true;
	}
	fclose(f);
	return found;
}

/*****************
 * Daemons started by another command line
 *****************/

int dh_mkdtemp(char *buf, size_t size, const char *what)
{
	if (!root[0])
		return -ENOENT;		/* dh_root_create() first */
	snprintf(buf, size, "%s/%s.XXXXXX", root, what);
	return mkdtemp(buf) ? 0 : -errno;
}

int dh_prepare(struct dh_daemon *d)
{
	int fd, ret;

	memset(d, 0, sizeof(*d));
	ret = dh_mkdtemp(d->dir, sizeof(d->dir), "d");
	if (ret)
		return ret;
	snprintf(d->sock, sizeof(d->sock), "%s/uzswapd.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/uzswapd.log", d->dir);
	snprintf(d->clog, sizeof(d->clog), "%s/clients.log", d->dir);
	snprintf(d->backing, sizeof(d->backing), "%s/backing", d->dir);
	snprintf(d->state, sizeof(d->state), "%s/state", d->dir);
	snprintf(d->conf, sizeof(d->conf), "%s/uzswapd.conf", d->dir);
	fd = open(d->conf, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* Whether environment entry @e names @name (a "NAME" or "NAME=..."). */
static bool env_names(const char *e, const char *name)
{
	size_t n = strcspn(name, "=");

	return !strncmp(e, name, n) && (e[n] == '=' || e[n] == '\0');
}

/* environ without the systemd variables and the names in @env, then the
 * "NAME=value" entries of @env; free() the array (not the strings). */
static char **launch_env(const char *const *env)
{
	static const char *const systemd_vars[] = {
		"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
		"WATCHDOG_USEC", "WATCHDOG_PID", NULL,
	};
	size_t n = 0, m = 0, i, j, k = 0;
	char **out;
	bool drop;

	while (environ[n])
		n++;
	while (env && env[m])
		m++;
	out = calloc(n + m + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		drop = false;
		for (j = 0; systemd_vars[j] && !drop; j++)
			drop = env_names(environ[i], systemd_vars[j]);
		for (j = 0; j < m && !drop; j++)
			drop = env_names(environ[i], env[j]);
		if (!drop)
			out[k++] = environ[i];
	}
	for (j = 0; j < m; j++)
		if (strchr(env[j], '='))
			out[k++] = (char *)env[j];
	out[k] = NULL;
	return out;
}

int dh_launch(struct dh_daemon *d, const char *const *argv,
	      const char *const *env)
{
	const char *args[DH_EXEC_ARGS];
	long long deadline;
	pid_t parent = getpid();
	int logfd, null, status, ret;
	char **envp;

	with_state_dir(argv, d->state, args);
	envp = launch_env(env);
	if (!envp)
		return -ENOMEM;
	logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (logfd < 0 || null < 0) {
		ret = -errno;
		goto out_close;
	}
	d->pid = fork();
	if (d->pid == 0) {
		child_setup(parent, null, null, logfd);
		execve(args[0], (char *const *)args, envp);
		_exit(127);
	}
	if (d->pid < 0) {
		ret = -errno;
		d->pid = 0;
		goto out_close;
	}

	deadline = dh_deadline(DH_START_MS);
	for (;;) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "%s exited at startup: %s\n", argv[0],
				dh_status_str(status));
			d->status = status;
			d->pid = 0;
			ret = -ECHILD;
			break;
		}
		if (socket_accepts(d->sock)) {
			ret = dh_sync(d);
			if (ret) {
				d->status = kill_and_reap(d->pid);
				d->pid = 0;
			}
			break;
		}
		if (dh_now_ms() >= deadline) {
			d->status = kill_and_reap(d->pid);
			d->pid = 0;
			ret = -ETIMEDOUT;
			break;
		}
		dh_sleep_ms(DH_POLL_MS);
	}
out_close:
	if (logfd >= 0)
		close(logfd);
	if (null >= 0)
		close(null);
	free(envp);
	return ret;
}

/*****************
 * Running a command to its end
 *****************/

/* Change to @cred's user and groups in a child; exits 127 on failure. */
static void become(const struct dh_cred *cred)
{
	if (!cred)
		return;
	if (setgroups((size_t)cred->ngroups, cred->groups) < 0 ||
	    setgid(cred->gid) < 0 || setuid(cred->uid) < 0)
		_exit(127);
}

/* Read what @fds[0..1] give into @bufs (NUL-terminated, cut to @sizes)
 * until both reach end of file or @deadline passes. */
static void drain(int fds[2], char *bufs[2], size_t sizes[2],
		  long long deadline)
{
	size_t have[2] = { 0, 0 };
	struct pollfd pfd[2];
	char sink[4096];
	int i, open_fds = 2;

	for (i = 0; i < 2; i++) {
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (sizes[i])
			bufs[i][0] = '\0';
	}
	while (open_fds && dh_now_ms() < deadline) {
		if (poll(pfd, 2, (int)(deadline - dh_now_ms())) <= 0)
			continue;
		for (i = 0; i < 2; i++) {
			size_t room = sizes[i] > have[i] + 1
					      ? sizes[i] - have[i] - 1 : 0;
			char *dst = room ? bufs[i] + have[i] : sink;
			ssize_t n;

			if (!(pfd[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(fds[i], dst, room ? room : sizeof(sink));
			if (n <= 0) {
				pfd[i].fd = -1;
				open_fds--;
				continue;
			}
			if (room) {
				have[i] += (size_t)n;
				bufs[i][have[i]] = '\0';
			}
		}
	}
}

int dh_run(const char *const *argv, const struct dh_cred *cred,
	   const char *in, char *out, size_t out_size, char *err,
	   size_t err_size, int timeout_ms)
{
	long long deadline = dh_deadline(timeout_ms);
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, fds[2];
	char *bufs[2] = { out, err };
	size_t sizes[2] = { out_size, err_size };
	pid_t parent = getpid(), pid;
	int null, status, ret;

	null = open(in ? in : "/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out_close;
	}
	pid = fork();
	if (pid == 0) {
		child_setup(parent, null, po[1], pe[1]);
		become(cred);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0) {
		ret = -errno;
		goto out_close;
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	fds[0] = po[0];
	fds[1] = pe[0];
	drain(fds, bufs, sizes, deadline);
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			ret = status;
			break;
		}
		if (dh_now_ms() >= deadline) {
			kill_and_reap(pid);
			ret = -ETIMEDOUT;
			break;
		}
		dh_sleep_ms(DH_POLL_MS);
	}
out_close:
	if (null >= 0)
		close(null);
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return ret;
}
