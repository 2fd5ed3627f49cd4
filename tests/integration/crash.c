/*
 * crash.c - the crash tests' workload and kill-point helpers; see crash.h.
 *
 * Nothing here waits on the daemon while it may be dead: the pager's
 * setup commands are sent without reading their replies, and the rmw
 * clients are not waited for, until crash_load_ready(), which a test
 * calls once a successor serves (or before arming anything).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "crash.h"
#include "pager.h"

#define MIB (1024ull * 1024)
#define STR_(x) #x
#define STR(x) STR_(x)

const char *const CRASH_DAEMON_ARGS[] = {
	"--pool-limit", "3M", "--backing-limit", "256M",
	"--evict-threads", "2", NULL,
};

/* DH_ASSERT for the daemon the client @c was started against. */
#define CL_ASSERT(c, cond, ...) DH_ASSERT_ON((c)->d, cond, __VA_ARGS__)

static void say(struct dh_client *c, const char *line)
{
	int ret = dh_client_say(c, line);

	CL_ASSERT(c, ret == 0, "client %d: '%s': %s", (int)c->pid, line,
		  strerror(-ret));
}

static void read_line(struct dh_client *c, char *line, size_t size,
		      const char *what)
{
	int ret = dh_client_read_line(c, line, size, PAGER_MS);

	CL_ASSERT(c, ret == 0, "client %d: no %s: %s", (int)c->pid, what,
		  strerror(-ret));
}

void crash_load_start(const struct dh_daemon *d, struct crash_load *l)
{
	static const char *const rmw[] = {
		"rmw", STR(CRASH_RMW_THREADS), STR(CRASH_RMW_MIB),
		STR(CRASH_LIMIT_MIB), "0", NULL,
	};
	unsigned int i;

	pager_start(d, &l->pager);
	say(&l->pager, "limit " STR(CRASH_LIMIT_MIB));
	say(&l->pager, "alloc text " STR(CRASH_TEXT_MIB));
	say(&l->pager, "alloc random " STR(CRASH_RANDOM_MIB));
	for (i = 0; i < CRASH_RMW; i++) {
		l->ready[i] = false;
		DH_ASSERT_ON(d, dh_uzclient_start(d, &l->rmw[i], rmw, true) == 0,
			     "fork");
	}
}

/* The reply to the pager's "alloc KIND MIB" for region @k: a REGISTER
 * that a restart cut off (-ECONNRESET, the library undid it; -EPIPE when
 * its reconnection met the dying daemon) is asked again. */
static void pager_alloc_reply(struct dh_client *c, unsigned int k,
			      const char *cmd)
{
	char line[256], want[16];
	int tries = 10;

	snprintf(want, sizeof(want), "ok %u", k);
	for (;;) {
		read_line(c, line, sizeof(line), cmd);
		if (strncmp(line, "fail alloc", 10) ||
		    (!strstr(line, "reset") && !strstr(line, "pipe")) ||
		    !--tries)
			break;
		say(c, cmd);
	}
	CL_ASSERT(c, !strcmp(line, want), "pager '%s': %s", cmd, line);
}

void crash_load_ready(struct crash_load *l)
{
	char line[256];
	unsigned int i;

	if (l->ready[0])
		return;
	read_line(&l->pager, line, sizeof(line), "reply to 'limit'");
	CL_ASSERT(&l->pager, !strcmp(line, "ok"), "pager 'limit': %s", line);
	pager_alloc_reply(&l->pager, 0, "alloc text " STR(CRASH_TEXT_MIB));
	pager_alloc_reply(&l->pager, 1, "alloc random " STR(CRASH_RANDOM_MIB));
	for (i = 0; i < CRASH_RMW; i++) {
		read_line(&l->rmw[i], line, sizeof(line), "ready");
		CL_ASSERT(&l->rmw[i], !strcmp(line, "ready"),
			  "uzclient rmw did not get ready: %s", line);
		l->ready[i] = true;
	}
}

/* Stop rmw client @c and check what it says: every read and every page
 * right, a clean exit. */
static void rmw_stop(struct dh_client *c)
{
	uint64_t ops, bad, limit = 0;
	char line[256];
	int status;

	say(c, "stop");
	read_line(c, line, sizeof(line), "result");
	CL_ASSERT(c, sscanf(line, "result ops %" SCNu64 " bad %" SCNu64, &ops,
			    &bad) == 2, "uzclient rmw: no result: %s", line);
	read_line(c, line, sizeof(line), "stats");
	fprintf(stderr, "rmw %d: ops %" PRIu64 " bad %" PRIu64 "; %s\n",
		(int)c->pid, ops, bad, line);
	sscanf(line, "stats resident %*u limit %" SCNu64, &limit);
	status = dh_client_wait(c, PAGER_MS);
	CL_ASSERT(c, bad == 0, "uzclient rmw: %" PRIu64 " bad reads (lost, "
		  "stale, torn or zeroed writes: see the clients' log)", bad);
	CL_ASSERT(c, dh_exited_ok(status), "uzclient rmw: %s",
		  dh_status_str(status));
	/* the successor kept the budget the client set before the crash */
	CL_ASSERT(c, limit == CRASH_LIMIT_MIB * MIB, "uzclient rmw: %s (its "
		  "budget is %d MiB)", line, CRASH_LIMIT_MIB);
}

void crash_load_finish(struct crash_load *l)
{
	unsigned int i;

	crash_load_ready(l);
	pager_ok(&l->pager, "verify all");
	for (i = 0; i < CRASH_RMW; i++)
		rmw_stop(&l->rmw[i]);
	pager_quit(&l->pager);
}

void crash_arm(const char *spec)
{
	if (spec)
		setenv("UZSWAPD_KILLPOINT", spec, 1);
	else
		unsetenv("UZSWAPD_KILLPOINT");
}

void crash_assert_killed_at(const struct dh_daemon *d, int status,
			    const char *name)
{
	char needle[128];

	snprintf(needle, sizeof(needle), "killpoint %s: hit", name);
	DH_ASSERT_ON(d, dh_log_find(d, needle, NULL, 0),
		     "kill point %s never reached (the daemon: %s)", name,
		     dh_status_str(status));
	DH_ASSERT_ON(d, status >= 0 && WIFSIGNALED(status) &&
		     WTERMSIG(status) == SIGKILL,
		     "kill point %s: the daemon ended with %s, not SIGKILL",
		     name, dh_status_str(status));
}

void crash_restart(struct dh_daemon *d)
{
	int ret = dh_restart(d, CRASH_DAEMON_ARGS);

	DH_ASSERT_ON(d, ret == 0, "the successor did not start: %s",
		     strerror(-ret));
}
