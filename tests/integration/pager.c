/*
 * pager.c - driving uzclient's "pager" subcommand from a test: start it,
 * send it commands, read its one-line replies (see cmd_pager() in
 * uzclient.c), and wait for the daemon to bring it within a budget; and
 * its "rmw" subcommand (checksummed read-modify-write writers).
 * Shared by the integration suites; every failure dumps the logs of the
 * client's daemon and fails the test.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "pager.h"

/* DH_ASSERT for the daemon the client @c was started against. */
#define PG_ASSERT(cond, ...) DH_ASSERT_ON(c->d, cond, __VA_ARGS__)

/* Wait for the pager's "ready". */
static void pager_ready(struct dh_client *c)
{
	char line[64];
	int ret;

	ret = dh_client_read_line(c, line, sizeof(line), PAGER_MS);
	PG_ASSERT(ret == 0 && !strcmp(line, "ready"),
		  "uzclient pager did not get ready: %s",
		  ret ? strerror(-ret) : line);
}

void pager_start(const struct dh_daemon *d, struct dh_client *c)
{
	static const char *const argv[] = { "pager", NULL };

	PG_ASSERT(dh_uzclient_start(d, c, argv, true) == 0, "fork");
	pager_ready(c);
}

void pager_start_prog(const struct dh_daemon *d, struct dh_client *c,
		      const char *path)
{
	const char *argv[] = { path, "pager", NULL };

	PG_ASSERT(dh_client_start(d, c, argv, true) == 0, "fork");
	pager_ready(c);
}

void pager_start_as(const struct dh_daemon *d, struct dh_client *c,
		    const char *path)
{
	PG_ASSERT(symlink(UZCLIENT_PATH, path) == 0, "symlink %s: %s", path,
		  strerror(errno));
	pager_start_prog(d, c, path);
}

/* Send a command, read its reply line into @reply. */
void pager_do(struct dh_client *c, char *reply, size_t size, const char *fmt,
	      ...)
{
	char cmd[128];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ret = dh_client_say(c, cmd);
	PG_ASSERT(ret == 0, "pager '%s': %s", cmd, strerror(-ret));
	ret = dh_client_read_line(c, reply, size, PAGER_MS);
	PG_ASSERT(ret == 0, "pager '%s': no reply: %s", cmd, strerror(-ret));
}

/* A command that must answer "ok..."; returns the rest of the line. */
const char *pager_ok(struct dh_client *c, const char *fmt, ...)
{
	static char reply[512];
	char cmd[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	pager_do(c, reply, sizeof(reply), "%s", cmd);
	PG_ASSERT(!strncmp(reply, "ok", 2), "pager '%s': %s", cmd, reply);
	return reply + 2;
}

/* A new region of @kind: its number. */
unsigned int pager_alloc(struct dh_client *c, const char *kind,
				unsigned int mib)
{
	unsigned int k;

	PG_ASSERT(sscanf(pager_ok(c, "alloc %s %u", kind, mib), " %u",
			 &k) == 1, "alloc: no region number");
	return k;
}

unsigned int pager_fragment(struct dh_client *c, unsigned int mib)
{
	const unsigned long pages = mib * 256ul;	/* of 4 KiB */
	unsigned int k[3], i;
	unsigned long p;

	for (i = 0; i < 3; i++)
		k[i] = pager_alloc(c, "text", mib);
	for (p = 0; p < pages; p++)
		for (i = 0; i < 3; i++)
			pager_ok(c, "cold %u %lu 1", k[i], p);
	pager_ok(c, "free %u", k[1]);
	pager_ok(c, "free %u", k[2]);
	return k[0];
}

void pager_stats(struct dh_client *c, struct pstats *s)
{
	const char *r = pager_ok(c, "stats");

	PG_ASSERT(sscanf(r, " resident %" SCNu64 " limit %" SCNu64
			 " registered %" SCNu64 " stored %" SCNu64
			 " compressed %" SCNu64 " faults %" SCNu64
			 " evictions %" SCNu64 " regions %" SCNu64,
			 &s->resident, &s->limit, &s->registered, &s->stored,
			 &s->compressed, &s->faults, &s->evictions,
			 &s->regions) == 8, "stats: cannot parse '%s'", r);
}

/* "quit": the client disconnects and must exit 0 (all its data checks
 * passed). */
void pager_quit(struct dh_client *c)
{
	int status;

	PG_ASSERT(dh_client_say(c, "quit") == 0, "pager: stdin");
	status = dh_client_wait(c, PAGER_MS);
	PG_ASSERT(dh_exited_ok(status), "uzclient pager: %s",
		  dh_status_str(status));
}

void pager_start_every_kind(const struct dh_daemon *d, struct dh_client *c,
			    struct pstats *s)
{
	pager_start(d, c);
	pager_ok(c, "limit 4");
	pager_alloc(c, "same", 4);
	pager_alloc(c, "text", 24);
	pager_alloc(c, "random", 8);
	pager_wait_resident(c, 5ull << 20, s);
}

void pager_verify_blocked(struct dh_client *c)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);

	PG_ASSERT(dh_client_say(c, "verify all") == 0, "pager: stdin");
	while (dh_uffd_waiting(c->pid) < 1 && dh_now_ms() < deadline)
		dh_sleep_ms(5);
	PG_ASSERT(dh_uffd_waiting(c->pid) >= 1, "the pager never blocked on "
		  "a stored page");
}

void pager_verify_goes_on(struct dh_client *c)
{
	char line[256];
	int ret = dh_client_read_line(c, line, sizeof(line), PAGER_MS);

	PG_ASSERT(ret == 0 && !strncmp(line, "ok", 2), "the blocked verify "
		  "did not go on: %s", ret ? strerror(-ret) : line);
}

/* Poll until the pager's resident bytes are at most @bytes. */
void pager_wait_resident(struct dh_client *c, uint64_t bytes,
				struct pstats *s)
{
	long long deadline = dh_deadline(SETTLE_MS);

	for (;;) {
		pager_stats(c, s);
		if (s->resident <= bytes)
			return;
		PG_ASSERT(dh_now_ms() < deadline,
			  "resident %" PRIu64 " bytes, not within %" PRIu64
			  " after %d ms (limit %" PRIu64 ", evictions %" PRIu64
			  ")", s->resident, bytes, SETTLE_MS, s->limit,
			  s->evictions);
		dh_sleep_ms(20);
	}
}

/*****************
 * The rmw client
 *****************/

void rmw_start(const struct dh_daemon *d, struct dh_client *c,
	       unsigned int threads, unsigned int mib, unsigned int limit_mib,
	       unsigned int secs)
{
	char a[4][16], line[128];
	const char *argv[8];
	int ret, n = 0;

	snprintf(a[0], sizeof(a[0]), "%u", threads);
	snprintf(a[1], sizeof(a[1]), "%u", mib);
	snprintf(a[2], sizeof(a[2]), "%u", limit_mib);
	snprintf(a[3], sizeof(a[3]), "%u", secs);
	argv[n++] = "rmw";
	argv[n++] = a[0];
	argv[n++] = a[1];
	argv[n++] = a[2];
	argv[n++] = a[3];
	argv[n] = NULL;
	ret = dh_uzclient_start(d, c, argv, true);
	PG_ASSERT(ret == 0, "fork");
	ret = dh_client_read_line(c, line, sizeof(line), PAGER_MS);
	PG_ASSERT(ret == 0 && !strcmp(line, "ready"),
		  "uzclient rmw did not get ready: %s",
		  ret ? strerror(-ret) : line);
}

void rmw_finish(struct dh_client *c, unsigned int secs,
		       struct rmw_result *res)
{
	char line[256];
	int ret, status;

	memset(res, 0, sizeof(*res));
	ret = dh_client_read_line(c, line, sizeof(line),
				  (int)secs * 1000 + PAGER_MS);
	PG_ASSERT(ret == 0 && sscanf(line, "result ops %" SCNu64
				     " bad %" SCNu64, &res->ops,
				     &res->bad) == 2,
		  "uzclient rmw: no result: %s", ret ? strerror(-ret) : line);
	ret = dh_client_read_line(c, line, sizeof(line), PAGER_MS);
	PG_ASSERT(ret == 0, "uzclient rmw: no stats: %s", strerror(-ret));
	res->have_stats = sscanf(line, "stats resident %" SCNu64
				 " limit %" SCNu64 " evictions %" SCNu64
				 " faults %" SCNu64 " stored %" SCNu64,
				 &res->resident, &res->limit,
				 &res->evictions, &res->faults,
				 &res->stored) == 5;
	PG_ASSERT(res->have_stats || !strncmp(line, "stats fail", 10),
		  "uzclient rmw: bad stats line '%s'", line);
	fprintf(stderr, "rmw: ops %" PRIu64 " bad %" PRIu64 "; %s\n",
		res->ops, res->bad, line);
	status = dh_client_wait(c, PAGER_MS);
	PG_ASSERT(res->bad == 0, "uzclient rmw: %" PRIu64 " bad pages "
		  "(lost, stale, torn or zeroed writes; see the client log)",
		  res->bad);
	PG_ASSERT(dh_exited_ok(status), "uzclient rmw: %s",
		  dh_status_str(status));
}
