/*
 * check_drain.c - integration tests of uzswapctl drain (DRAIN): a real
 * uzswapd (daemon_harness.c) holding real clients (uzclient pager) under
 * small budgets is emptied, as swapoff empties a swap device, and every
 * client goes on with plain memory.
 *
 * Test cases of drain_suite():
 *   drain   pages compressed, same-filled, kept raw and written back to
 *           the backing file all come back: STATUS then shows nothing
 *           stored and no region, the client frees a drained region
 *           (uzswap_free() succeeds, the mapping is gone), a region
 *           registered after the drain is managed again, and with the
 *           daemon killed (SIGKILL: it restores nothing) the client reads
 *           every byte back, its RSS grown by all of it; while a client
 *           with hundreds of MiB stored is drained, the control socket
 *           answers STATUS (a STATUS shows the drain half done before its
 *           reply arrives) and a second DRAIN is refused -EBUSY; a
 *           client that exits mid-drain is counted as left and leaves
 *           nothing in the daemon; SIGTERM mid-drain stops it and the
 *           successor serves the rest; a drain under checksummed
 *           read-modify-write (faults, evictions, write-backs under way)
 *           loses no write; DRAIN on a connection of version 2 or
 *           1 is refused -EOPNOTSUPP (as a daemon of that version does)
 *           and the connection goes on; with the backing file spoilt, the
 *           region keeps the pages that cannot be read back, stored and
 *           managed, and the drain says so (exit 5)
 *   refuse  (a part: it needs a private mount namespace, SKIP where there
 *           is none) a daemon that sees 1 MiB of MemAvailable, through a
 *           /proc/meminfo bind-mounted in its own mount namespace, refuses
 *           the drain with both figures and leaves every page stored and
 *           managed; --force drains
 *
 * Why a mount namespace: the refusal depends on MemAvailable, which a
 * test cannot lower for real; a hidden option or environment variable
 * that makes the daemon read another file could be set in production
 * unnoticed. The daemon reads the real /proc/meminfo path; only the test
 * makes that path lie, for its own daemon (unshare --mount), with nothing
 * in the daemon for it.
 *
 * One test case: CK_RUN_CASE=drain ./check_drain. Logs kept:
 * UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/proto/proto.h"
#include "pager.h"

#define MIB		(1024ull * 1024)
#define PAGE		4096ull
#define RUN_BYTES	(64 * PAGE)	/* the daemon's eviction run */
#define BIG_MIB		256		/* "hundreds of MiB stored" */
#define TIMEOUT_CASE	900		/* seconds, per test */
/* One uzswapctl command, a DRAIN's reply: hang detectors, hundreds of
 * times what a drain of BIG_MIB takes even under ASan. */
#define CTL_MS		600000
#define OUT_SIZE	4096

static struct dh_daemon dmn;
static char out[OUT_SIZE], err[OUT_SIZE];
/* Error lines the running test expects in the daemon's log (those that
 * hold it), NULL: none. */
static const char *log_allow;

/*****************
 * Helpers
 *****************/

static void daemon_down(void)
{
	dh_down(&dmn, log_allow);
}

static void status(struct proto_status_reply *st)
{
	int ret = dh_status(&dmn, st);

	DH_ASSERT(ret == 0, "STATUS: %s", strerror(-ret));
}

/* Pages the daemon holds, in the pool and in the backing file. */
static uint64_t held(const struct proto_status_reply *st)
{
	return st->stored_pages + st->written_back_pages;
}

/* uzswapctl --socket SOCK drain [@arg]: its exit status; its output in
 * out and err. */
static int ctl_drain(const char *arg)
{
	const char *argv[] = { UZSWAPCTL_PATH, "--socket", dmn.sock, "drain",
			       arg, NULL };
	int status;

	status = dh_run(argv, NULL, NULL, out, sizeof(out), err, sizeof(err),
			CTL_MS);
	DH_ASSERT(status >= 0 && (status & 0x7f) == 0, "uzswapctl drain: %s",
		  dh_status_str(status));
	return (status >> 8) & 0xff;
}

/* Poll until the pager is within @bytes and its evictions stopped. */
static void settle(struct dh_client *c, uint64_t bytes, struct pstats *s)
{
	long long deadline = dh_deadline(SETTLE_MS);
	struct pstats again;

	for (;;) {
		pager_wait_resident(c, bytes, s);
		dh_sleep_ms(100);
		pager_stats(c, &again);
		if (again.evictions == s->evictions &&
		    again.stored == s->stored)
			return;
		DH_ASSERT(dh_now_ms() < deadline, "evictions did not stop "
			  "within %d ms", SETTLE_MS);
	}
}

/* Whether process @pid maps a region named @name. */
static bool maps_region(pid_t pid, const char *name)
{
	char path[64], line[512], want[96];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	snprintf(want, sizeof(want), "/memfd:uzswap:%s ", name);
	f = fopen(path, "re");
	DH_ASSERT(f, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	fclose(f);
	return found;
}

/*****************
 * Raw frames
 *****************/

/* A connection without HELLO: it speaks the version of its first frame. */
static int raw_open(void)
{
	int fd = dh_connect(&dmn);

	DH_ASSERT(fd >= 0, "connect: %s", strerror(-fd));
	return fd;
}

/* Whether a reply waits on @fd, within @ms. */
static bool raw_ready(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1;
}

/* Send DRAIN (@flags) at @version as request @seq. */
static void raw_drain(int fd, uint16_t version, uint32_t seq,
		      uint32_t flags)
{
	struct proto_drain q = { .flags = flags };
	uint8_t buf[PROTO_MAX_PAYLOAD];
	size_t len = proto_encode_drain(buf, &q, PROTO_VERSION);
	int ret = proto_send(fd, version, PROTO_DRAIN, seq, buf, len, NULL, 0);

	DH_ASSERT(ret == 0, "send DRAIN: %s", strerror(-ret));
}

/*
 * The reply to request @seq of @type, at @version, within CTL_MS: its
 * status, and its body into @body (*@len bytes).
 */
static int32_t raw_reply(int fd, uint16_t version, uint16_t type,
			 uint32_t seq, uint8_t *body, size_t *len)
{
	struct proto_reader rd = { .version = version };
	const uint8_t *b;
	const char *errmsg;
	int32_t status;
	int ret;

	DH_ASSERT(raw_ready(fd, dh_scaled_ms(CTL_MS)), "no reply to %s",
		  proto_type_name(type));
	ret = proto_reader_feed(&rd, fd);
	DH_ASSERT(ret == 1, "reply to %s: %d", proto_type_name(type), ret);
	DH_ASSERT(rd.msg.hdr.type == (type | PROTO_REPLY) &&
			  rd.msg.hdr.seq == seq,
		  "reply type %#x seq %u", rd.msg.hdr.type, rd.msg.hdr.seq);
	DH_ASSERT(!proto_parse_reply(&rd.msg, &status, &b, len, &errmsg),
		  "malformed reply to %s", proto_type_name(type));
	if (status == 0 && body)
		memcpy(body, b, *len);
	proto_reader_reset(&rd);
	return status;
}

/* A STATUS on @fd, at @version, must be answered. */
static void raw_status_ok(int fd, uint16_t version, uint32_t seq)
{
	uint8_t body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret = proto_send(fd, version, PROTO_STATUS, seq, NULL, 0, NULL, 0);

	DH_ASSERT(ret == 0, "send STATUS: %s", strerror(-ret));
	DH_ASSERT_EQ(raw_reply(fd, version, PROTO_STATUS, seq, body, &len), 0);
}

/* DRAIN (@flags) at @version, on a connection of its own, is refused
 * with @want, and the connection goes on. */
static void raw_drain_refused(uint16_t version, uint32_t flags, int32_t want)
{
	int fd = raw_open();
	size_t len;

	raw_drain(fd, version, 1, flags);
	DH_ASSERT_EQ(raw_reply(fd, version, PROTO_DRAIN, 1, NULL, &len), want);
	raw_status_ok(fd, version, 2);
	close(fd);
}

/*****************
 * drain
 *****************/

/*
 * Every kind of stored page comes back, the regions are released, and
 * the client needs the daemon no more for them: it frees one, registers
 * a new one (managed again), and once the daemon is stopped reads every
 * byte, from its own memory.
 */
START_TEST(test_drain_all_kinds)
{
	static const char *const args[] = { "--pool-limit", "8M", NULL };
	struct proto_status_reply st;
	struct pstats ps;
	struct dh_client c;
	unsigned int fresh;
	long long rss;

	dh_up(&dmn, args);
	/* it outlives its daemon (SIGKILL): no successor to wait for */
	dh_brief_timeout(true);
	pager_start(&dmn, &c);
	dh_brief_timeout(false);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 32);
	pager_alloc(&c, "random", 2);
	pager_alloc(&c, "same", 4);
	settle(&c, 4 * MIB, &ps);
	status(&st);
	DH_ASSERT(st.same_pages && st.raw_pages && st.written_back_pages &&
			  st.stored_pages > st.same_pages + st.raw_pages,
		  "stored %" PRIu64 ": same %" PRIu64 ", raw %" PRIu64
		  "; written back %" PRIu64, st.stored_pages, st.same_pages,
		  st.raw_pages, st.written_back_pages);
	DH_ASSERT_EQ(held(&st), ps.stored);
	rss = dh_rss_shmem(c.pid);
	DH_ASSERT(rss >= 0 && rss < (long long)(8 * MIB), "RssShmem %lld "
		  "bytes within a 4 MiB budget", rss);

	DH_ASSERT(ctl_drain(NULL) == 0, "uzswapctl drain: %s", err);
	DH_ASSERT(strstr(out, "draining ") && strstr(out, " back into 1 "),
		  "no need printed: %s", out);
	DH_ASSERT(strstr(out, "3 regions of 1 clients released"),
		  "drain printed: %s", out);
	status(&st);
	DH_ASSERT_EQ(held(&st), 0);
	DH_ASSERT_EQ(st.registered_bytes, 0);
	DH_ASSERT_EQ(st.clients, 1);
	dh_wait_backing_empty(&dmn, &st);
	pager_stats(&c, &ps);
	DH_ASSERT(ps.regions == 0 && ps.stored == 0 && ps.registered == 0,
		  "after the drain: %" PRIu64 " regions, %" PRIu64 " stored",
		  ps.regions, ps.stored);

	/* a drained region freed: no error, unmapped */
	DH_ASSERT(maps_region(c.pid, "random"), "no random region mapped");
	pager_ok(&c, "free 1");
	DH_ASSERT(!maps_region(c.pid, "random"), "freed region still mapped");

	/* a new region is managed again (then freed: the daemon must not
	 * hold a page of the client when it is killed below) */
	fresh = pager_alloc(&c, "sparse", 16);
	pager_ok(&c, "cold %u", fresh);
	pager_stats(&c, &ps);
	DH_ASSERT(ps.regions == 1 && ps.stored > 0, "new region: %" PRIu64
		  " regions, %" PRIu64 " stored", ps.regions, ps.stored);
	pager_ok(&c, "verify %u", fresh);
	pager_ok(&c, "free %u", fresh);

	/* the daemon dies without restoring anything (SIGKILL): the drained
	 * regions are the client's own memory, every byte of them there */
	dh_kill(&dmn);
	pager_ok(&c, "verify all");
	rss = dh_rss_shmem(c.pid);
	DH_ASSERT(rss >= (long long)(36 * MIB), "RssShmem %lld bytes after "
		  "reading 36 MiB back", rss);
	pager_ok(&c, "rewrite 0");
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/* A client with BIG_MIB stored under a 4 MiB budget; the pages held. */
static uint64_t big_client(struct dh_client *c)
{
	struct proto_status_reply st;
	struct pstats ps;

	pager_start(&dmn, c);
	pager_ok(c, "limit 4");
	pager_alloc(c, "text", BIG_MIB);
	settle(c, 4 * MIB, &ps);
	status(&st);
	DH_ASSERT(held(&st) >= (BIG_MIB - 8) * MIB / PAGE,
		  "only %" PRIu64 " pages stored", held(&st));
	return held(&st);
}

/*
 * Send DRAIN on a new connection (returned), then ask STATUS until one
 * shows fewer than the @total pages held, but not none: the drain is
 * under way, and the daemon answered while it runs. Fails if the drain's
 * reply comes first.
 */
static int drain_until_half(uint64_t total)
{
	struct proto_status_reply st;
	long long deadline;
	int fd = raw_open();

	raw_drain(fd, PROTO_VERSION, 1, 0);
	deadline = dh_deadline(CTL_MS);
	for (;;) {
		DH_ASSERT(!raw_ready(fd, 0), "no STATUS answered while the "
			  "drain ran");
		status(&st);
		if (held(&st) && held(&st) < total)
			return fd;
		DH_ASSERT(dh_now_ms() < deadline, "no reply to DRAIN");
	}
}

/* The reply to drain_until_half()'s DRAIN, which must succeed. */
static void drain_reply(int fd, struct proto_drain_reply *r)
{
	uint8_t body[PROTO_MAX_PAYLOAD];
	size_t len;

	DH_ASSERT_EQ(raw_reply(fd, PROTO_VERSION, PROTO_DRAIN, 1, body, &len),
		     0);
	close(fd);
	DH_ASSERT(!proto_decode_drain_reply(body, len, r), "DRAIN reply");
	DH_ASSERT_EQ(r->bytes, r->pages * PAGE);
	DH_ASSERT(!r->regions_kept && !r->pages_kept, "%" PRIu64 " regions "
		  "kept", r->regions_kept);
}

/*
 * The loop thread does nothing proportional to a client's size: while a
 * client with BIG_MIB stored is drained, STATUS is answered, and one
 * answer shows the drain half done before the drain's reply arrives. A
 * second DRAIN meanwhile is refused.
 */
START_TEST(test_drain_serves_status)
{
	struct proto_status_reply st;
	struct proto_drain_reply r;
	struct dh_client c;
	uint64_t total;
	size_t len;
	int fd, fd2;

	dh_up(&dmn, NULL);
	total = big_client(&c);
	fd = drain_until_half(total);
	fd2 = raw_open();
	raw_drain(fd2, PROTO_VERSION, 1, PROTO_DRAIN_FORCE);
	DH_ASSERT_EQ(raw_reply(fd2, PROTO_VERSION, PROTO_DRAIN, 1, NULL,
			       &len), -EBUSY);
	close(fd2);

	drain_reply(fd, &r);
	DH_ASSERT(r.regions == 1 && r.clients == 1 && !r.regions_left &&
			  r.pages >= total,
		  "drained %" PRIu64 " pages of %" PRIu64 " regions, %"
		  PRIu64 " left", r.pages, r.regions, r.regions_left);
	status(&st);
	DH_ASSERT_EQ(held(&st), 0);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/*
 * A client that exits while it is drained: its region is its teardown's,
 * counted as left (or released, if the drain was quicker than the kill),
 * and the daemon is left with nothing of it.
 */
START_TEST(test_drain_client_exits)
{
	struct proto_status_reply st;
	struct proto_drain_reply r;
	struct dh_client c;
	int fd;

	dh_up(&dmn, NULL);
	fd = drain_until_half(big_client(&c));
	dh_client_kill(&c);
	drain_reply(fd, &r);
	DH_ASSERT(r.regions + r.regions_left == 1, "%" PRIu64 " regions "
		  "released, %" PRIu64 " left", r.regions, r.regions_left);
	/* the client's teardown may still be dropping its pages */
	DH_ASSERT(dh_wait_idle(&dmn) >= 0, "the daemon did not settle");
	DH_ASSERT_EQ(dh_client_fds(dmn.pid), 1);	/* its listening socket */
	status(&st);
	DH_ASSERT(held(&st) == 0 && st.registered_bytes == 0 && !st.clients,
		  "%" PRIu64 " pages held, %" PRIu64 " bytes registered",
		  held(&st), st.registered_bytes);
}
END_TEST

/*
 * SIGTERM in the middle of a drain: the drain stops, the daemon hands
 * over what it did not release yet, and the client reads every byte back
 * with the successor.
 */
START_TEST(test_drain_sigterm)
{
	struct dh_client c;
	int fd, ret;

	dh_up(&dmn, NULL);
	fd = drain_until_half(big_client(&c));
	dh_stop_ok(&dmn, SIGTERM, NULL);
	close(fd);
	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/* Seconds the rmw writers run: the drain comes in the middle. */
#define RMW_SECONDS	"6"

/*
 * A drain while writers do checksummed read-modify-write under a small
 * budget, faults, evictions and write-backs all under way: not one write
 * is lost, torn or zeroed (uzclient rmw checks every read and every page
 * at the end, and exits 0 only if all is well), and the writers go on in
 * plain memory.
 */
START_TEST(test_drain_under_writes)
{
	static const char *const args[] = { "--pool-limit", "2M", NULL };
	static const char *const argv[] = { "rmw", "2", "32", "4",
					     RMW_SECONDS, NULL };
	struct proto_status_reply st;
	struct dh_client c;
	long long deadline;
	char line[128];
	int ret;

	dh_up(&dmn, args);
	DH_ASSERT(dh_uzclient_start(&dmn, &c, argv, true) == 0, "fork");
	ret = dh_client_read_line(&c, line, sizeof(line), PAGER_MS);
	DH_ASSERT(ret == 0 && !strcmp(line, "ready"), "uzclient rmw: %s",
		  ret ? strerror(-ret) : line);
	deadline = dh_deadline(SETTLE_MS);
	do {
		DH_ASSERT(dh_now_ms() < deadline, "no write-back");
		dh_sleep_ms(20);
		status(&st);
	} while (!st.written_back_pages || st.evictions < 8192);

	DH_ASSERT(ctl_drain(NULL) == 0, "uzswapctl drain: %s", err);
	DH_ASSERT(strstr(out, "1 regions of 1 clients released"),
		  "drain printed: %s", out);
	status(&st);
	DH_ASSERT_EQ(held(&st), 0);
	ret = dh_client_wait(&c, atoi(RMW_SECONDS) * 1000 + PAGER_MS);
	DH_ASSERT(dh_exited_ok(ret), "uzclient rmw: %s (see the client log)",
		  dh_status_str(ret));
}
END_TEST

/* Overwrite the daemon's backing file with zeros: what was written back
 * no longer decompresses. */
static void zero_backing(void)
{
	static const uint8_t zeros[65536];
	off_t off, size;
	int fd;

	fd = open(dmn.backing, O_WRONLY | O_CLOEXEC);
	DH_ASSERT(fd >= 0, "%s: %s", dmn.backing, strerror(errno));
	size = lseek(fd, 0, SEEK_END);
	for (off = 0; off < size; off += (off_t)sizeof(zeros))
		DH_ASSERT(pwrite(fd, zeros, sizeof(zeros), off) ==
				  (ssize_t)sizeof(zeros),
			  "zeroing the backing file: %s", strerror(errno));
	DH_ASSERT(fsync(fd) == 0, "fsync: %s", strerror(errno));
	close(fd);
}

/*
 * Pages that cannot be read back are never lost silently: with the
 * backing file spoilt, the drain restores what it can, keeps the region
 * managed with the pages it could not restore still stored, says so, and
 * uzswapctl fails.
 */
START_TEST(test_drain_keeps_unreadable)
{
	static const char *const args[] = { "--pool-limit", "2M", NULL };
	struct proto_status_reply st;
	struct pstats ps, after;
	struct dh_client c;
	uint64_t kept;
	const char *p;
	int rc;

	log_allow = "restore";	/* "cannot restore page", "could not be
				 * restored" */
	dh_up(&dmn, args);
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 16);
	settle(&c, 4 * MIB, &ps);
	status(&st);
	DH_ASSERT(st.written_back_pages > 0 && st.stored_pages > 0,
		  "written back %" PRIu64 ", in the pool %" PRIu64,
		  st.written_back_pages, st.stored_pages);
	zero_backing();

	rc = ctl_drain(NULL);
	p = strstr(err, "drain: 1 regions stay managed with ");
	DH_ASSERT(rc == 5 && p && sscanf(p + 35, "%" SCNu64, &kept) == 1,
		  "uzswapctl drain: exit %d, stderr: %s", rc, err);
	DH_ASSERT(kept > 0 && kept <= st.written_back_pages, "%" PRIu64
		  " pages kept, %" PRIu64 " were written back", kept,
		  st.written_back_pages);
	DH_ASSERT(strstr(out, "0 regions of 0 clients released"),
		  "drain printed: %s", out);
	/* the evictors may take the pages restored meanwhile back again:
	 * the region is managed */
	pager_stats(&c, &after);
	DH_ASSERT(after.regions == 1 && after.stored >= kept,
		  "kept: %" PRIu64 " regions, %" PRIu64 " stored", after.regions,
		  after.stored);
	status(&st);
	DH_ASSERT(held(&st) >= kept, "%" PRIu64 " pages held", held(&st));
	/* the client would block on a spoilt page: it goes without a word */
	dh_client_kill(&c);
	dh_stop_ok(&dmn, SIGTERM, log_allow);
}
END_TEST

/* DRAIN on a connection of version 2 or 1 is refused as those daemons
 * refuse an unknown type, and the connection goes on; a bad flag is
 * refused. */
START_TEST(test_drain_old_versions)
{
	uint16_t v;

	dh_up(&dmn, NULL);
	for (v = PROTO_VERSION_MIN; v < PROTO_DRAIN_VERSION; v++)
		raw_drain_refused(v, 0, -EOPNOTSUPP);
	raw_drain_refused(PROTO_VERSION, PROTO_DRAIN_FORCE << 1, -EBADMSG);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/*****************
 * refuse
 *****************/

/* What the daemon of the part sees in /proc/meminfo. */
#define FAKE_MEMINFO	"MemTotal: 1048576 kB\nMemFree: 1024 kB\n" \
			"MemAvailable: 1024 kB\n"
/* Runs the rest of its command line with @FAKE (its $0) mounted over
 * /proc/meminfo, in a mount namespace of its own. */
#define MEMINFO_WRAPPER(fake)						\
	"/usr/bin/unshare", "--mount", "--propagation", "private",	\
	"/bin/sh", "-c", "mount --bind \"$0\" /proc/meminfo && exec \"$@\"", \
	(fake)

/* Write FAKE_MEMINFO into a new file under the root: its path. */
static const char *fake_meminfo(void)
{
	static char path[PATH_MAX];
	char dir[PATH_MAX - 16];
	int fd, ret;

	ret = dh_mkdtemp(dir, sizeof(dir), "meminfo");
	if (ret)
		return NULL;
	snprintf(path, sizeof(path), "%s/meminfo", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return NULL;
	ret = write(fd, FAKE_MEMINFO, strlen(FAKE_MEMINFO)) ==
	      (ssize_t)strlen(FAKE_MEMINFO);
	close(fd);
	return ret ? path : NULL;
}

/*
 * A drain that does not fit in MemAvailable is refused with both figures
 * and changes nothing: every page stays stored, every region managed (a
 * read is served by the daemon, which evicts again). --force drains.
 */
START_TEST(test_drain_refused)
{
	const char *fake = fake_meminfo();
	const char *const wrapper[] = { MEMINFO_WRAPPER(fake), NULL };
	struct pstats ps, after;
	struct dh_client c;
	int ret;

	ck_assert_msg(fake, "cannot write a fake meminfo");
	ret = dh_start_under(&dmn, wrapper, NULL);
	DH_ASSERT(ret == 0, "uzswapd did not start: %s", strerror(-ret));
	pager_start(&dmn, &c);
	pager_ok(&c, "limit 4");
	pager_alloc(&c, "text", 16);
	settle(&c, 4 * MIB, &ps);
	DH_ASSERT(ps.stored * PAGE > 4 * MIB, "%" PRIu64 " pages stored",
		  ps.stored);

	ret = ctl_drain(NULL);
	DH_ASSERT(ret == 5 && strstr(err, "drain needs ") &&
			  strstr(err, "of memory, 1.0 MiB available; --force "
				      "to drain anyway"),
		  "uzswapctl drain: exit %d, stderr: %s", ret, err);
	pager_stats(&c, &after);
	DH_ASSERT(after.regions == 1 && after.stored == ps.stored,
		  "after a refusal: %" PRIu64 " regions, %" PRIu64 " of %"
		  PRIu64 " pages stored", after.regions, after.stored,
		  ps.stored);
	pager_ok(&c, "verify 0");
	pager_stats(&c, &after);
	DH_ASSERT(after.faults > ps.faults, "the region is not managed: no "
		  "fault served");

	DH_ASSERT(ctl_drain("--force") == 0, "uzswapctl drain --force: %s",
		  err);
	pager_stats(&c, &after);
	DH_ASSERT(after.regions == 0 && after.stored == 0, "after --force: %"
		  PRIu64 " regions, %" PRIu64 " stored", after.regions,
		  after.stored);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
}
END_TEST

/* The part runs where a private mount namespace can hide /proc/meminfo. */
static const char *cannot_run(const char *part)
{
	const char *fake = fake_meminfo();
	const char *const argv[] = { MEMINFO_WRAPPER(fake),
				     "/bin/grep", "-q", "MemAvailable: 1024 kB",
				     "/proc/meminfo", NULL };

	if (!fake)
		return "cannot write a file under the test's root";
	if (access(argv[0], X_OK))
		return "no /usr/bin/unshare";
	if (!dh_exited_ok(dh_run(argv, NULL, NULL, NULL, 0, NULL, 0, 60000)))
		return "cannot mount over /proc/meminfo in a mount namespace";
	return NULL;
}

static Suite *drain_suite(void)
{
	Suite *s = suite_create("drain");
	TCase *tc;

	tc = tcase_create("drain");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_drain_all_kinds);
	tcase_add_test(tc, test_drain_serves_status);
	tcase_add_test(tc, test_drain_client_exits);
	tcase_add_test(tc, test_drain_sigterm);
	tcase_add_test(tc, test_drain_under_writes);
	tcase_add_test(tc, test_drain_old_versions);
	tcase_add_test(tc, test_drain_keeps_unreadable);
	suite_add_tcase(s, tc);

	tc = ckpart_tcase(s, "refuse");
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_drain_refused);
	return s;
}

int main(void)
{
	return dh_main_part("check_drain", drain_suite(), CKPART, cannot_run);
}
