/*
 * check_nbd.c - integration tests of the write-back tier on an NBD
 * export: a real uzswapd (daemon_harness.c) writing its pool's oldest
 * objects to a real nbdkit on a unix socket, with real clients (uzclient
 * rmw and pager).
 *
 * Test cases of nbd_suite():
 *   rmw      checksummed read-modify-write (4 threads, 64 MiB, 4 MiB
 *            budget, 4 MiB pool) against nbdkit memory: pages go to the
 *            export and back, not one write lost; STATUS shows the
 *            backend, its bytes and its time; once the client is gone the
 *            export's data segments were trimmed (they read zeros over a
 *            connection of the test's own)
 *   restart  the same against nbdkit file, killed in the middle and
 *            started again: writing back stops and resumes, faults on
 *            pages there wait and resume, not one write lost
 *   handover the daemon stopped (SIGTERM) and started again, twice, while
 *            the writers work with pages on the export: the successor
 *            takes the export and its slot map over, not one write lost
 *   full     an export of 4 MiB under 64 MiB of pages: the export fills,
 *            evictions stop and the budget is exceeded, every page reads
 *            back
 *   corrupt  the export's data overwritten behind the daemon's back: a
 *            client touching its written-back pages dies of SIGBUS (the
 *            pages are poisoned), it never reads wrong data or zeros;
 *            the checksum errors are counted
 *   gone     the server never comes back: a fault on a page there waits
 *            for backing-timeout, then gets SIGBUS
 *
 * SKIP (77) without nbdkit. Outcomes only, never timings: every wait is a
 * bounded poll with a generous bound.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "lib/proto/proto.h"
#include "pager.h"
#include "tests/nbdserver.h"

#define MIB		(1024ull * 1024)
#define SEG		MIB		/* the export's segment */
#define TIMEOUT_CASE	600		/* seconds, per test */
#ifdef UZSWAP_SANITIZED
#define RMW_SECONDS	8
#else
#define RMW_SECONDS	12
#endif
/* The evictor's warning when pool and backing are full. */
#define WB_STUCK	"backing file takes no more"
/* Error lines the cases that break the export expect. */
#define UNREADABLE	"cannot be read back"

static struct dh_daemon dmn;
static struct nbdserver srv;
static char srvdir[PATH_MAX];	/* the server's socket, its file */

/*****************
 * Fixtures and helpers
 *****************/

static void nbd_setup(void)
{
	DH_ASSERT(dh_mkdtemp(srvdir, sizeof(srvdir), "nbd") == 0, "mkdtemp");
}

static void nbd_teardown(void)
{
	char path[PATH_MAX + 16];

	nbdserver_stop(&srv, SIGKILL);
	snprintf(path, sizeof(path), "%s/export", srvdir);
	unlink(path);
	rmdir(srvdir);
}

/* nbdkit memory of @size on srvdir/sock. */
static void serve_memory(const char *size)
{
	char arg[32];
	const char *args[] = { "memory", arg, NULL };

	snprintf(arg, sizeof(arg), "size=%s", size);
	DH_ASSERT(nbdserver_start(&srv, srvdir, "sock", args) == 0,
		  "nbdkit memory did not start");
}

/* nbdkit file on srvdir/export, @size bytes (sparse). */
static void serve_file(uint64_t size)
{
	char path[PATH_MAX + 16], arg[PATH_MAX + 32];
	const char *args[] = { "file", arg, NULL };
	FILE *f;

	snprintf(path, sizeof(path), "%s/export", srvdir);
	f = fopen(path, "w");
	DH_ASSERT(f && ftruncate(fileno(f), (off_t)size) == 0, "%s", path);
	fclose(f);
	snprintf(arg, sizeof(arg), "file=%s", path);
	DH_ASSERT(nbdserver_start(&srv, srvdir, "sock", args) == 0,
		  "nbdkit file did not start");
}

/* uzswapd writing back to the export, its pool limited to @pool, with
 * @more arguments (NULL-terminated, at most 4). */
static void daemon_up(const char *pool, const char *const *more)
{
	const char *args[12] = { "--pool-limit", pool, "--backing-file",
				 srv.uri, "--backing-limit", "1G" };
	int n = 6, i;

	for (i = 0; more && more[i] && i < 4; i++)
		args[n++] = more[i];
	args[n] = NULL;
	dh_up(&dmn, args);
}

static void status(struct proto_status_reply *st)
{
	int ret = dh_status(&dmn, st);

	DH_ASSERT(ret == 0, "STATUS: %s", strerror(-ret));
}

static void print_backing(const char *when, const struct proto_status_reply *s)
{
	fprintf(stderr, "%s: up %" PRIu64 " stored %" PRIu64 " written back %"
		PRIu64 " backing %" PRIu64 "/%" PRIu64 " read %" PRIu64
		" written %" PRIu64 " released %" PRIu64 " checksum %" PRIu64
		" waits %" PRIu64 " timeouts %" PRIu64 " connects %" PRIu64
		" disconnects %" PRIu64 " poisoned %" PRIu64 "\n", when,
		s->backing_up, s->stored_pages, s->written_back_pages,
		s->backing_bytes, s->backing_limit, s->backing_read_bytes,
		s->backing_write_bytes, s->backing_released_bytes,
		s->backing_checksum_errors, s->backing_read_waits,
		s->backing_read_timeouts, s->backing_connects,
		s->backing_disconnects, s->fault_poisoned);
}

/* Poll until at least @pages pages are written back to the export. */
static void wait_written_back(uint64_t pages, struct proto_status_reply *s)
{
	long long deadline = dh_deadline(SETTLE_MS);

	for (;;) {
		status(s);
		if (s->written_back_pages >= pages)
			return;
		if (dh_now_ms() >= deadline)
			print_backing("not written back", s);
		DH_ASSERT(dh_now_ms() < deadline, "%" PRIu64 " pages written "
			  "back, not %" PRIu64, s->written_back_pages, pages);
		dh_sleep_ms(20);
	}
}

/* Whether the export's data segments (after the superblock's) up to
 * @bytes read zeros, over a connection of the test's own. */
static bool export_data_zero(uint64_t bytes)
{
	static uint8_t buf[SEG];
	struct nbd_handle *h = nbd_create();
	uint64_t off;
	bool zero = true;
	size_t i;

	DH_ASSERT(h && nbd_connect_uri(h, srv.uri) == 0, "nbd: %s",
		  nbd_get_error());
	for (off = SEG; zero && off < SEG + bytes; off += SEG) {
		DH_ASSERT(nbd_pread(h, buf, SEG, off, 0) == 0, "nbd: %s",
			  nbd_get_error());
		for (i = 0; i < SEG && zero; i++)
			zero = !buf[i];
	}
	nbd_close(h);
	return zero;
}

/* Overwrite the export's first @bytes of data with a pattern. */
static void export_scribble(uint64_t bytes)
{
	static uint8_t buf[SEG];
	struct nbd_handle *h = nbd_create();
	uint64_t off;

	memset(buf, 0x5a, sizeof(buf));
	DH_ASSERT(h && nbd_connect_uri(h, srv.uri) == 0, "nbd: %s",
		  nbd_get_error());
	for (off = SEG; off < SEG + bytes; off += SEG)
		DH_ASSERT(nbd_pwrite(h, buf, SEG, off, 0) == 0, "nbd: %s",
			  nbd_get_error());
	nbd_close(h);
}

/* The pager is told to verify every page; it must die of SIGBUS. */
static void verify_dies_of_sigbus(struct dh_client *c)
{
	int st;

	DH_ASSERT(dh_client_say(c, "verify all") == 0, "pager");
	st = dh_client_wait(c, PAGER_MS);
	DH_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
		  "the pager read pages whose copy is unreadable: %s (it "
		  "must die of SIGBUS)", dh_status_str(st));
}

/* nbdkit memory of @export, uzswapd with a 2 MiB pool writing back to it
 * (and @more), and a pager with @mib MiB of text under a 2 MiB budget. */
static void pager_on_export(const char *export, const char *const *more,
			    unsigned int mib, struct dh_client *c)
{
	serve_memory(export);
	daemon_up("2M", more);
	pager_start(&dmn, c);
	pager_ok(c, "limit 2");
	pager_alloc(c, "text", mib);
}

/*****************
 * Cases
 *****************/

START_TEST(test_rmw)
{
	struct proto_status_reply s;
	struct rmw_result res;
	struct dh_client c;

	serve_memory("256M");
	daemon_up("4M", NULL);
	status(&s);
	DH_ASSERT_EQ(s.backing_backend, PROTO_BACKING_NBD);
	DH_ASSERT_EQ(s.backing_up, 1);
	DH_ASSERT_EQ(s.backing_export_bytes, 256 * MIB);
	DH_ASSERT_EQ(s.backing_connects, 1);
	rmw_start(&dmn, &c, 4, 64, 4, RMW_SECONDS);
	rmw_finish(&c, RMW_SECONDS, &res);
	status(&s);
	print_backing("after rmw", &s);
	DH_ASSERT(res.ops > 1000, "only %" PRIu64 " read-modify-writes",
		  res.ops);
	DH_ASSERT(s.writebacks > 0, "nothing written back");
	DH_ASSERT_EQ(s.writeback_failures, 0);
	DH_ASSERT(s.backing_write_bytes > 0 && s.backing_read_bytes > 0,
		  "written %" PRIu64 " read %" PRIu64, s.backing_write_bytes,
		  s.backing_read_bytes);
	DH_ASSERT(s.backing_writes_timed > 0 && s.backing_write_ns > 0 &&
		  s.backing_reads_timed > 0 && s.backing_read_ns > 0,
		  "requests not timed");
	DH_ASSERT_EQ(s.backing_checksum_errors + s.backing_read_errors +
		     s.backing_write_errors + s.fault_poisoned, 0);
	/* the client is gone: its objects too, and their segments were
	 * trimmed on the server */
	dh_wait_backing_empty(&dmn, &s);
	print_backing("client gone", &s);
	DH_ASSERT(s.backing_released_bytes >= SEG, "released %" PRIu64,
		  s.backing_released_bytes);
	DH_ASSERT(export_data_zero(s.backing_write_bytes < 64 * MIB ?
				   s.backing_write_bytes : 64 * MIB),
		  "the export keeps data after its objects went");
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

START_TEST(test_restart)
{
	struct proto_status_reply s;
	struct rmw_result res;
	struct dh_client c;

	serve_file(256 * MIB);
	daemon_up("4M", NULL);
	rmw_start(&dmn, &c, 4, 64, 4, 0);
	wait_written_back(2048, &s);
	nbdserver_stop(&srv, SIGKILL);
	/* the writers go on from the pool; faults on the export's pages
	 * wait for it */
	dh_sleep_ms(2000);
	status(&s);
	print_backing("server away", &s);
	DH_ASSERT_EQ(s.backing_up, 0);
	DH_ASSERT(nbdserver_restart(&srv) == 0, "nbdkit did not restart");
	dh_sleep_ms(3000);
	DH_ASSERT(dh_client_say(&c, "stop") == 0, "rmw");
	rmw_finish(&c, RMW_SECONDS, &res);
	status(&s);
	print_backing("after restart", &s);
	DH_ASSERT_EQ(s.backing_up, 1);
	DH_ASSERT(s.backing_disconnects >= 1 && s.backing_connects >= 2,
		  "connects %" PRIu64 " disconnects %" PRIu64,
		  s.backing_connects, s.backing_disconnects);
	DH_ASSERT(s.backing_read_waits > 0, "no fault waited for the export");
	DH_ASSERT_EQ(s.backing_checksum_errors + s.backing_read_timeouts +
		     s.fault_poisoned, 0);
	dh_wait_backing_empty(&dmn, &s);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

/* A handover while pages are on the export: the successor takes the
 * export over with its slot map, and the writers go on with every page. */
START_TEST(test_handover)
{
	const char *args[] = { "--pool-limit", "4M", "--backing-file",
			       srv.uri, "--backing-limit", "1G", NULL };
	struct proto_status_reply s;
	struct rmw_result res;
	struct dh_client c;
	int round, ret;

	serve_memory("256M");
	dh_up(&dmn, args);
	rmw_start(&dmn, &c, 4, 64, 4, 0);
	for (round = 0; round < 2; round++) {
		wait_written_back(2048, &s);
		dh_stop_ok(&dmn, SIGTERM, NULL);
		ret = dh_restart(&dmn, args);
		DH_ASSERT(ret == 0, "restart %d: %s", round, strerror(-ret));
		status(&s);
		print_backing("successor", &s);
		DH_ASSERT(s.written_back_pages > 0, "the successor found "
			  "nothing on the export");
	}
	DH_ASSERT(dh_client_say(&c, "stop") == 0, "rmw");
	rmw_finish(&c, RMW_SECONDS, &res);
	DH_ASSERT(res.have_stats, "no stats from the last daemon");
	status(&s);
	DH_ASSERT_EQ(s.backing_checksum_errors + s.fault_poisoned, 0);
	dh_wait_backing_empty(&dmn, &s);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

START_TEST(test_full)
{
	struct proto_status_reply s;
	struct dh_client c;

	pager_on_export("4M", NULL, 64, &c);
	{
		long long deadline = dh_deadline(SETTLE_MS);

		while (!dh_log_find(&dmn, WB_STUCK, NULL, 0)) {
			DH_ASSERT(dh_now_ms() < deadline, "the full export "
				  "was not reported");
			dh_sleep_ms(20);
		}
	}
	status(&s);
	print_backing("export full", &s);
	DH_ASSERT(s.backing_bytes > 2 * MIB && s.backing_bytes <= 3 * MIB,
		  "%" PRIu64 " bytes in an export of 3 MiB of data",
		  s.backing_bytes);
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_wait_backing_empty(&dmn, &s);
	dh_stop_ok(&dmn, SIGTERM, NULL);
}
END_TEST

START_TEST(test_corrupt)
{
	struct proto_status_reply s;
	struct dh_client c;

	pager_on_export("64M", NULL, 32, &c);
	wait_written_back(1024, &s);
	export_scribble(4 * MIB);
	verify_dies_of_sigbus(&c);
	status(&s);
	print_backing("after the scribble", &s);
	DH_ASSERT(s.backing_checksum_errors > 0, "no checksum error");
	DH_ASSERT(s.fault_poisoned > 0, "no page poisoned");
	DH_ASSERT_EQ(s.backing_up, 1);
	dh_wait_backing_empty(&dmn, &s);
	dh_stop_ok(&dmn, SIGTERM, UNREADABLE);
}
END_TEST

START_TEST(test_gone)
{
	static const char *const more[] = { "--backing-timeout", "2", NULL };
	struct proto_status_reply s;
	struct dh_client c;

	pager_on_export("64M", more, 32, &c);
	wait_written_back(1024, &s);
	nbdserver_stop(&srv, SIGKILL);
	verify_dies_of_sigbus(&c);
	status(&s);
	print_backing("server gone", &s);
	DH_ASSERT(s.backing_read_waits > 0 && s.backing_read_timeouts > 0,
		  "waits %" PRIu64 " timeouts %" PRIu64, s.backing_read_waits,
		  s.backing_read_timeouts);
	DH_ASSERT(s.fault_poisoned > 0, "no page poisoned");
	DH_ASSERT_EQ(s.backing_up, 0);
	dh_stop_ok(&dmn, SIGTERM, UNREADABLE);
}
END_TEST

static void daemon_down(void)
{
	dh_down(&dmn, UNREADABLE);
}

/* A tcase of one test, named as its case (CK_RUN_CASE runs one). */
static void add_case(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, nbd_setup, nbd_teardown);
	tcase_add_checked_fixture(tc, NULL, daemon_down);
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

static Suite *nbd_suite(void)
{
	Suite *s = suite_create("nbd");

	add_case(s, "rmw", test_rmw);
	add_case(s, "restart", test_restart);
	add_case(s, "handover", test_handover);
	add_case(s, "full", test_full);
	add_case(s, "corrupt", test_corrupt);
	add_case(s, "gone", test_gone);
	return s;
}

/* A client of a sanitizer build must die of the SIGBUS it gets, as any
 * program does, rather than have the sanitizer report it and exit. */
static void let_sigbus_kill(void)
{
	static const char *const vars[] = { "ASAN_OPTIONS", "TSAN_OPTIONS" };
	char opts[1024];
	const char *was;
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(*vars); i++) {
		was = getenv(vars[i]);
		snprintf(opts, sizeof(opts), "%s%shandle_sigbus=0",
			 was ? was : "", was && *was ? ":" : "");
		setenv(vars[i], opts, 1);
	}
}

int main(void)
{
	const char *why = nbdserver_missing();

	if (why) {
		fprintf(stderr, "SKIP: %s\n", why);
		return 77;
	}
	let_sigbus_kill();
	return dh_main("check_nbd", nbd_suite());
}
