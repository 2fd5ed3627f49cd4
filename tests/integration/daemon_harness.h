/*
 * daemon_harness.h - start and stop a real uzswapd for the integration
 * tests, and run real client programs (uzclient) against it.
 *
 * Private to the tests.
 *
 * Every daemon gets its own directory (mkdtemp under the root the test
 * program made), holding its control socket, its log (the daemon's stderr,
 * "uzswapd.log"), the clients' stderr ("clients.log"), its backing file
 * ("backing": never the system's, which a second daemon could not lock)
 * and a state directory of its own: never the system's
 * /run/uzswap/state, where daemons of tests running at once would refuse
 * each other, but on tmpfs (/dev/shm) as in production, beside the
 * directory, in a second root removed with the first. Every uzswapd the harness starts for a daemon
 * (dh_start(), dh_launch(), dh_client_start()) is given that state
 * directory; a test that runs uzswapd with dh_run() passes one itself.
 * Every process the harness starts dies with the thread that started it
 * (PR_SET_PDEATHSIG), so a test that fails half-way (Check's fork mode
 * leaves with _exit(), skipping the teardown) leaves no daemon or client
 * behind. The harness only ever signals processes it started, by pid.
 *
 * Every wait is bounded, and a bound that runs out is a failure, never a
 * hang: tests check outcomes, not timings, so the bounds are generous
 * (CI machines are slow, and run everything under ASan).
 *
 * Errors: int-returning calls return 0 or -errno unless they say
 * otherwise; none exits or asserts.
 */
#ifndef UZSWAP_DAEMON_HARNESS_H
#define UZSWAP_DAEMON_HARNESS_H

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/ckpart.h"

/* Bounds of the harness's waits, in milliseconds, before dh_scaled_ms(). */
#define DH_START_MS	10000	/* daemon: until the socket accepts */
#define DH_STOP_MS	20000	/* daemon: from SIGTERM to its exit */
#define DH_CLIENT_MS	120000	/* a client program: until it exits */
#define DH_SETTLE_MS	10000	/* asynchronous teardown to finish */
#define DH_POOL_EMPTY_MS 60000	/* ... of the regions holding a pool */
#define DH_RELOAD_MS	60000	/* a SIGHUP's reload to be logged */

/*
 * struct dh_daemon - one uzswapd started by the harness
 * @pid:  the daemon; 0 once reaped
 * @status: the wait status of the last daemon the harness reaped here
 *        (by a stop, a kill, or at a failed start: a daemon that died by
 *        itself before it answered shows what killed it)
 * @dir:  its private directory
 * @sock: its control socket, "@dir/uzswapd.sock"
 * @log:  its stderr, "@dir/uzswapd.log"
 * @clog: the stderr of the clients started against it
 * @backing: its backing file, "@dir/backing"
 * @state: its state directory, "@dir/state" (the daemon makes it): in the
 *        test's temporary directory, like everything the tests write
 * @conf: its configuration file, "@dir/uzswapd.conf" (empty at first: the
 *        host's /etc/uzswap is never read by a test)
 */
struct dh_daemon {
	pid_t pid;
	int status;
	char dir[PATH_MAX - 64];
	char sock[PATH_MAX];
	char log[PATH_MAX];
	char clog[PATH_MAX];
	char backing[PATH_MAX];
	char state[PATH_MAX];
	char conf[PATH_MAX];
};

/* Make the root directory under which every daemon's directory goes, and
 * the one (on tmpfs) under which their state directories go (removed by
 * dh_root_remove()). Return: 0 or -errno. */
int dh_root_create(void);
const char *dh_root(void);
/* A new directory "ROOT/@what.XXXXXX" into @buf. Return: 0 or -errno. */
int dh_mkdtemp(char *buf, size_t size, const char *what);

/* Remove the roots (dh_root_create()) and everything under them. */
void dh_root_remove(void);

/*
 * dh_main() - what a suite's main() does: ignore SIGPIPE (a client that
 * died must not take the test with it on write()), make the temporary
 * root, run @s (CK_ENV), and remove the root unless UZSWAP_ITEST_KEEP is
 * set. Return: the exit status for main().
 */
int dh_main(const char *name, Suite *s);

/* dh_main() of a suite with parts some machines cannot run (ckpart.h):
 * runs what ckpart_run(@part, @cannot_run) runs; 77 when it skips. */
int dh_main_part(const char *name, Suite *s, const char *part,
		 ckpart_cannot_run_fn *cannot_run);

/*
 * dh_log_bad_line() - find in @d's log the first line that shows an error
 * (priority <3> or worse) or a sanitizer report, skipping error lines that
 * contain @allow (NULL: none). Return: whether one was found, copied into
 * @line.
 */
bool dh_log_bad_line(const struct dh_daemon *d, const char *allow,
		     char *line, size_t size);

/*
 * dh_msg() - a failure message that fits Check's limit (4 KiB, and a
 * longer one is lost with the test): formatted into a static buffer of
 * DH_MSG_MAX bytes; a longer one goes whole to stderr, and the buffer
 * ends saying so.
 */
#define DH_MSG_MAX	1024
const char *dh_msg(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* A Check assertion whose message may embed a command's output. */
#define DH_CHECK(cond, ...)						\
	do {								\
		if (!(cond))						\
			ck_abort_msg("%s", dh_msg(__VA_ARGS__));	\
	} while (0)

/* Check assertions that dump the logs of daemon @d on failure;
 * DH_ASSERT() is for the suite's own `struct dh_daemon dmn`. */
#define DH_ASSERT_ON(d, cond, ...)					\
	do {								\
		if (!(cond)) {						\
			dh_dump_logs(d);				\
			ck_abort_msg("%s", dh_msg(__VA_ARGS__));	\
		}							\
	} while (0)

#define DH_ASSERT(cond, ...) DH_ASSERT_ON(&dmn, cond, __VA_ARGS__)

#define DH_ASSERT_EQ(a, b)						\
	do {								\
		long long a_ = (long long)(a), b_ = (long long)(b);	\
		DH_ASSERT(a_ == b_, "%s == %lld, expected %s == %lld",	\
			  #a, a_, #b, b_);				\
	} while (0)


/*
 * dh_start() - start uzswapd in a new directory under the root, with
 * "--socket SOCK --no-mlock -D all --backing-file DIR/backing --config
 * DIR/uzswapd.conf --metrics off" and @extra
 * (NULL-terminated, may be NULL; an option given again there wins)
 * appended, and wait until its socket accepts a connection.
 * Return: 0; -ETIMEDOUT if it did not within DH_START_MS (it is killed);
 * -ECHILD if it exited first; -errno.
 */
int dh_start(struct dh_daemon *d, const char *const *extra);

/* dh_start() through @wrapper: a command line (argv[0] a path) that runs
 * the daemon's, appended to it, as its own process (it execs it). */
int dh_start_under(struct dh_daemon *d, const char *const *wrapper,
		   const char *const *extra);

/*
 * The same, as assertions that fail the running test with the daemon's
 * logs:
 * dh_up()              dh_start() must succeed;
 * dh_up_locked()       the same without --no-mlock: the daemon locks its
 *                      memory, as in production;
 * dh_assert_log_clean() no error line in @d's log (but lines holding
 *                      @allow, if not NULL) and no sanitizer report;
 * dh_stop_ok()         dh_stop_with(@sig) must give exit status 0, then a
 *                      clean log;
 * dh_down()            the end of a test: dh_stop_ok(SIGTERM) if @d runs,
 *                      else a clean log; then @d's directory is removed
 *                      (kept with UZSWAP_ITEST_KEEP=1).
 */
void dh_up(struct dh_daemon *d, const char *const *extra);
void dh_up_locked(struct dh_daemon *d, const char *const *extra);
void dh_assert_log_clean(const struct dh_daemon *d, const char *allow);
void dh_stop_ok(struct dh_daemon *d, int sig, const char *allow);
void dh_down(struct dh_daemon *d, const char *allow);

/* Start uzswapd again in @d's directory, on the same socket path, after
 * the previous one was stopped or killed. Same returns as dh_start(). */
int dh_restart(struct dh_daemon *d, const char *const *extra);

/*
 * dh_stop() - SIGTERM the daemon and reap it within DH_STOP_MS; if it
 * hangs, SIGKILL it and reap it.
 * Return: its wait status (>= 0), or -ETIMEDOUT if it had to be killed.
 */
int dh_stop(struct dh_daemon *d);

/* dh_stop() with another signal (SIGINT), or with none (@sig 0: the
 * daemon was already told to stop). */
int dh_stop_with(struct dh_daemon *d, int sig);

/* SIGKILL the daemon and reap it (for tests that crash it on purpose). */
void dh_kill(struct dh_daemon *d);

/* Remove the daemon's directory and its state directory. */
void dh_remove(struct dh_daemon *d);

/* Copy the daemon's log (and the clients') to stderr, for a failure. */
void dh_dump_logs(const struct dh_daemon *d);

/* Whether the daemon's log holds a line containing @needle; if so and
 * @line is not NULL, the first such line is copied there. */
bool dh_log_find(const struct dh_daemon *d, const char *needle, char *line,
		 size_t size);

/* Lines of the daemon's log that contain @needle. */
int dh_log_count(const struct dh_daemon *d, const char *needle);

/* Write @path (a configuration file of @d's, say) with what @fmt makes;
 * fails the running test (with @d's logs) if it cannot. */
void dh_write_file(const struct dh_daemon *d, const char *path,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* SIGHUP the daemon, then wait (DH_RELOAD_MS) until its log has said
 * @needle @count times: fails the test if it does not. */
void dh_hup_and_wait(const struct dh_daemon *d, const char *needle,
		     int count);

/* Entries in /proc/@pid/fd, or -errno. */
int dh_fd_count(pid_t pid);

/*
 * dh_wait_fd_count() - poll until the daemon has @want open fds, at most
 * DH_SETTLE_MS (the daemon tears a client down asynchronously).
 * Return: the last count seen (== @want on success), or -errno.
 */
int dh_wait_fd_count(const struct dh_daemon *d, int want);

/*
 * dh_sync() - one request and its reply on a new connection (a STATS
 * before HELLO, refused), which is then closed: once it returns, the
 * daemon has accepted every connection made before the call.
 * Return: 0, or -errno (-ETIMEDOUT after 10 s).
 */
int dh_sync(const struct dh_daemon *d);

/*
 * dh_wait_idle() - dh_sync(), then poll (at most DH_SETTLE_MS) until the
 * daemon holds no descriptor of a client: no socket but its listening
 * one, no pidfd, no userfaultfd, no memfd.
 * Return: its number of open fds then (the idle baseline, to compare
 * with the one at startup), also when the bound ran out; -errno.
 */
int dh_wait_idle(const struct dh_daemon *d);

/* The targets of @pid's fds, one "N -> target" per line, into @buf. */
void dh_fd_list(pid_t pid, char *buf, size_t size);

/* Descriptors of process @pid that are sockets, pidfds, userfaultfds or
 * memfds (client descriptors, in the daemon); -errno. */
int dh_client_fds(pid_t pid);

/* Faults not yet resolved on the userfaultfds of process @pid, whether
 * their handler has read them or not (the "total" counts of their
 * fdinfo), or -errno. */
long dh_uffd_waiting(pid_t pid);

/* A blocking connection to the daemon's socket, with 10 s send and
 * receive timeouts; -errno on failure. */
int dh_connect(const struct dh_daemon *d);

struct proto_status_reply;
struct proto_client_row;

/*
 * dh_status() - the daemon's totals: one STATUS request (an admin request:
 * the tests run as root) on a new connection, which is then closed. It
 * speaks the newest version, so every counter of the lists comes (a
 * daemon of this build answers at it).
 * Return: 0 and *@st filled; the reply's status if the daemon refused;
 * -EBADMSG for a malformed reply; -errno (-ETIMEDOUT after 10 s).
 */
int dh_status(const struct dh_daemon *d, struct proto_status_reply *st);

/* The row of client @pid (a CLIENT request at the newest protocol
 * version, every counter in it), as dh_status() asks. */
int dh_client_row(const struct dh_daemon *d, pid_t pid,
		  struct proto_client_row *row);

/*
 * /metrics of a daemon started with "--metrics 127.0.0.1:0":
 * dh_metrics_address() - "ADDR:PORT" it serves, from its last "serving
 * http://" log line (a restarted daemon's): 0, or -ENOENT if it logged
 * none.
 * dh_scrape() - one GET /metrics over HTTP/1.0: the body (free() it), or
 * NULL with errno set.
 * dh_sample() - the value of the sample @series (name and labels, as
 * exposed) in the exposition @body: whether there is one.
 */
int dh_metrics_address(const struct dh_daemon *d, char *addr, size_t size);
char *dh_scrape(const struct dh_daemon *d);
bool dh_sample(const char *body, const char *series, double *v);

/* The value of @series on @d's /metrics now, as an assertion: the
 * running test fails if it cannot be had. */
uint64_t dh_metric(const struct dh_daemon *d, const char *series);

/* Wait (DH_POOL_EMPTY_MS at most: teardowns of big regions, under a
 * sanitizer) until @d's pool is empty: no object, no
 * payload, nothing shared (its clients gone and their pages with them);
 * an assertion. */
void dh_wait_pool_empty(const struct dh_daemon *d);

/* Poll STATUS into *@now until nothing is written back any more (no
 * page, no byte of the backing file or export: its clients gone), for
 * DH_POOL_EMPTY_MS at most; an assertion. */
void dh_wait_backing_empty(const struct dh_daemon *d,
			   struct proto_status_reply *now);

/*
 * dh_cannot_preload() - why no program can run under this build's
 * libuzswap-preload.so, or NULL. A sanitizer build instruments the
 * library (UZSWAP_CFLAGS), and a sanitizer runtime must come first in a
 * process's libraries: the loader's LD_PRELOAD of it into any program
 * fails ("ASan runtime does not come first in initial library list"),
 * and preloading the runtime first would put its malloc, not the
 * library's, under the program. Static text.
 */
const char *dh_cannot_preload(void);

/* dh_main_part() of the suite @suite builds, whose programs run on the
 * preload library: SKIP (77) with dh_cannot_preload()'s reason where it
 * says so, before any suite is built (a sanitizer's leak check would
 * report a suite built and never run). */
int dh_main_preload(const char *name, Suite *(*suite)(void),
		    const char *part, ckpart_cannot_run_fn *cannot_run);

/* A tcase @name of @s with a timeout of @seconds, a part (ckpart.h) if
 * @part; @teardown (may be NULL) runs after each of its tests. */
TCase *dh_tcase(Suite *s, const char *name, bool part, int seconds,
		void (*teardown)(void));

/* @pid's RssShmem from /proc/PID/status, in bytes (managed regions are
 * shared memory: this is what the kernel says a client has resident), or
 * -errno. */
long long dh_rss_shmem(pid_t pid);

/*
 * struct dh_client - a client program started by the harness
 * @pid: the process; 0 once reaped
 * @in:  write end of its stdin (-1 if not piped)
 * @out: read end of its stdout (-1 if not piped)
 * @d:   the daemon it was started against (its logs go with a failure)
 */
struct dh_client {
	pid_t pid;
	int in;
	int out;
	const struct dh_daemon *d;
};

/*
 * dh_client_start() - run @argv (argv[0] is the program's path) with
 * UZSWAP_SOCKET set to the daemon's socket, stderr appended to the
 * daemon's clients.log; with @pipes, its stdin and stdout are pipes to the
 * caller (else /dev/null).
 * Return: 0 or -errno.
 */
int dh_client_start(const struct dh_daemon *d, struct dh_client *c,
		    const char *const *argv, bool pipes);

/* Convenience: uzclient (the test client program) with @argv after it. */
int dh_uzclient_start(const struct dh_daemon *d, struct dh_client *c,
		      const char *const *argv, bool pipes);

/*
 * dh_client_wait() - reap the client within @timeout_ms; if it does not
 * exit, SIGKILL and reap it.
 * Return: its wait status (>= 0), or -ETIMEDOUT if it had to be killed.
 */
int dh_client_wait(struct dh_client *c, int timeout_ms);

/* SIGKILL the client and reap it; closes its pipes. */
void dh_client_kill(struct dh_client *c);

/* Close the client's pipes (its stdin then sees end of file). */
void dh_client_close_pipes(struct dh_client *c);

/*
 * dh_client_read_line() - read one line of the client's stdout into @buf
 * (without the newline), waiting at most @timeout_ms.
 * Return: 0; -ETIMEDOUT; -EPIPE at end of file; -EMSGSIZE if longer than
 * @size - 1.
 */
int dh_client_read_line(struct dh_client *c, char *buf, size_t size,
			int timeout_ms);

/* Write @line and a newline to the client's stdin. Return: 0 or -errno. */
int dh_client_say(struct dh_client *c, const char *line);

/*
 * dh_run_uzclient() - run uzclient with @argv to completion
 * Return: its wait status, or -errno / -ETIMEDOUT (it was killed).
 */
int dh_run_uzclient(const struct dh_daemon *d, const char *const *argv);

/* Whether a wait status is "exited with status 0". */
static inline bool dh_exited_ok(int status)
{
	return status >= 0 && (status & 0x7f) == 0 &&
	       ((status >> 8) & 0xff) == 0;
}

/* Human text for a wait status or -errno ("exit 3", "signal 9", ...),
 * in a static buffer of the calling thread. */
const char *dh_status_str(int status);

/* Milliseconds on the monotonic clock. */
long long dh_now_ms(void);

/* Clients started from now on (@brief) wait for a daemon that went away
 * a few seconds (scaled), not the generous minute: they are told it is
 * gone for good. !@brief: the minute again. */
void dh_brief_timeout(bool brief);

/*
 * dh_time_scale() - the factor every time limit of the tests is multiplied
 * by: Check's CK_TIMEOUT_MULTIPLIER (which also scales the tcase
 * timeouts), set by tests/Makefile.am in slow builds (TSan); 1 if unset.
 * The harness scales its own waits; dh_scaled_ms() scales @ms, and
 * dh_deadline() is the monotonic time @ms (scaled) from now.
 */
double dh_time_scale(void);
int dh_scaled_ms(int ms);
long long dh_deadline(int ms);

/* Sleep @ms milliseconds (for polling loops). */
void dh_sleep_ms(int ms);

/*
 * Daemons started by another command line (check_systemd: under
 * systemd-socket-activate, or with a test's $NOTIFY_SOCKET).
 *
 * dh_prepare() - what dh_start() does before it starts anything: a new
 * directory under the root, the paths in @d filled in, an empty @d->conf.
 * Return: 0 or -errno.
 *
 * dh_launch() - start @argv (argv[0] is a path; no PATH search) as @d's
 * daemon: stdin and stdout /dev/null, stderr appended to @d->log, the
 * test's environment changed by @env (NULL-terminated, may be NULL):
 * "NAME=value" sets NAME, a bare "NAME" removes it; LISTEN_FDS,
 * LISTEN_PID, LISTEN_FDNAMES, NOTIFY_SOCKET, WATCHDOG_USEC and
 * WATCHDOG_PID are always removed first, so that only what @env says
 * reaches the daemon. @d->pid is the process started (the daemon itself
 * once a wrapper such as systemd-socket-activate execs it). Then wait
 * until @d->sock accepts a connection and answers a request.
 * Return: as dh_start().
 */
int dh_prepare(struct dh_daemon *d);
int dh_launch(struct dh_daemon *d, const char *const *argv,
	      const char *const *env);

/* Let other users reach @d's socket, whose mode (@sock_mode) then says
 * who may connect: its directories become 0711. Fails the test if it
 * cannot. */
void dh_open_socket(const struct dh_daemon *d, mode_t sock_mode);

/* A user and groups to run a command as (dh_run()). */
struct dh_cred {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;	/* supplementary groups */
	int ngroups;
};

/*
 * dh_run() - run @argv (argv[0] found in $PATH unless it has a slash) to
 * its end, as @cred if not NULL, with stdin from the file @in (NULL:
 * /dev/null), and capture its stdout into @out and its stderr into @err
 * (each NUL-terminated, cut to its size; a size may be 0)
 * Return: its wait status; -ETIMEDOUT if it ran longer than @timeout_ms
 * (it is killed); -errno.
 */
int dh_run(const char *const *argv, const struct dh_cred *cred,
	   const char *in, char *out, size_t out_size, char *err,
	   size_t err_size, int timeout_ms);

#endif /* UZSWAP_DAEMON_HARNESS_H */
