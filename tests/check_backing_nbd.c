/*
 * check_backing_nbd.c - unit tests of the write-back tier on an NBD export
 * (daemon/backing.c over daemon/backing-nbd.c), against a real nbdkit on
 * a unix socket.
 *
 * Round trips of every object size, alone and in batches; the superblock
 * and the start on an empty export; segments trimmed when their last
 * object goes (seen by reading the export over a connection of the
 * test's own); an object corrupted on the server, an export that came
 * back empty, or a server that fails reads (nbdkit's error filter): never
 * returned as data; a server killed and restarted (nbdkit file: what was
 * written is read back, writes stop meanwhile and resume); reads that
 * wait for a server that stays away, then time out; a full export; an
 * export holding someone else's data refused; a successor taking the
 * export over with its objects; TLS with a PSK (nbds+unix://); four
 * threads at once.
 *
 * SKIP (77) where nbdkit is not installed. Files and sockets live in a
 * fresh directory under $TMPDIR.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/backing.h"
#include "tests/nbdserver.h"
#include "tests/tmpdir.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define OBJ BACKING_MAX_OBJECT
#define SEG MiB			/* the export's segment */
#define WAIT_S 20		/* generous bound on what must happen soon */

static char dir[256];		/* per test; unchecked fixture */
static char file[300];		/* dir/export, for nbdkit file */
static struct nbdserver srv;
static struct backing *b;

/*****************
 * Fixtures and helpers
 *****************/

static void setup(void)
{
	if (tmpdir_make(dir, sizeof(dir), "check_backing_nbd")) {
		perror("mkdtemp");
		abort();
	}
	snprintf(file, sizeof(file), "%s/export", dir);
	b = NULL;
}

static void teardown(void)
{
	if (b)
		backing_close(b);
	b = NULL;
	nbdserver_stop(&srv, SIGKILL);
	unlink(file);
	rmdir(dir);
}

/* nbdkit @args... on dir/sock. */
static void serve(const char *const *args)
{
	ck_assert_int_eq(nbdserver_start(&srv, dir, "sock", args), 0);
}

static void serve_memory(const char *size)
{
	char arg[32];
	const char *args[] = { "memory", arg, NULL };

	snprintf(arg, sizeof(arg), "size=%s", size);
	serve(args);
}

/* nbdkit file on dir/export, made @size bytes long (sparse). */
static void serve_file(uint64_t size)
{
	char arg[320];
	const char *args[] = { "file", arg, NULL };
	FILE *f = fopen(file, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ftruncate(fileno(f), (off_t)size), 0);
	fclose(f);
	snprintf(arg, sizeof(arg), "file=%s", file);
	serve(args);
}

/* A connection of the test's own to the export. */
static struct nbd_handle *peek_open(void)
{
	struct nbd_handle *h = nbd_create();

	ck_assert_ptr_nonnull(h);
	ck_assert_msg(nbd_connect_uri(h, srv.uri) == 0, "%s",
		      nbd_get_error());
	return h;
}

/* Object @seed of @len bytes: every byte depends on both. */
static void fill(uint8_t *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* Store object @seed of @len bytes alone: its slot. */
static uint64_t put(size_t len, unsigned int seed)
{
	uint8_t buf[OBJ];
	uint64_t slot;

	fill(buf, len, seed);
	ck_assert_int_eq(backing_write(b, buf, len, &slot), 0);
	return slot;
}

/* Object @seed of @len bytes reads back at @slot. */
static void check(uint64_t slot, size_t len, unsigned int seed)
{
	uint8_t want[OBJ], got[OBJ];

	fill(want, len, seed);
	ck_assert_int_eq(backing_read(b, slot, got, len), 0);
	ck_assert_mem_eq(got, want, len);
}

static struct backing_stats stats(void)
{
	struct backing_stats st;

	backing_get_stats(b, &st);
	return st;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };

	nanosleep(&ts, NULL);
}

/* Read @slot until it gives something else than @err, for WAIT_S at
 * most; the last result. */
static int read_until_not(uint64_t slot, size_t len, int err)
{
	uint8_t buf[OBJ];
	int ret, i;

	for (i = 0; i < WAIT_S * 100; i++) {
		ret = backing_read(b, slot, buf, len);
		if (ret != err)
			return ret;
		sleep_ms(10);
	}
	return ret;
}

/* Wait until backing_ready() is @ready (WAIT_S at most). */
static void wait_ready(bool ready)
{
	int i;

	for (i = 0; i < WAIT_S * 100 && backing_ready(b) != ready; i++)
		sleep_ms(10);
	ck_assert_int_eq(backing_ready(b), ready);
}

/* A batch of @nr objects (seeds @seed0 + i, sizes varying), written with
 * one call; their slots in @slots, sizes in @lens. */
static void put_batch(unsigned int nr, unsigned int seed0, size_t *lens,
		      uint64_t *slots)
{
	static _Alignas(4096) uint8_t buf[64 * OBJ];
	size_t at = 0;
	unsigned int i;

	ck_assert_uint_le(nr, 64);
	for (i = 0; i < nr; i++) {
		lens[i] = 200 + (seed0 + i) * 611 % (OBJ - 200);
		fill(buf + at, lens[i], seed0 + i);
		memset(buf + at + lens[i], 0,
		       (lens[i] + 511) / 512 * 512 - lens[i]);
		at += (lens[i] + 511) / 512 * 512;
	}
	ck_assert_int_eq(backing_write_batch(b, buf, lens, nr, slots), 0);
}

/*****************
 * Round trips, the superblock
 *****************/

START_TEST(test_round_trip)
{
	uint64_t slots[OBJ + 1], bslots[40];
	size_t len, lens[40];
	struct backing_stats st;
	unsigned int i;

	serve_memory("64M");
	b = backing_open(srv.uri, 1024 * MiB, false);
	ck_assert_ptr_nonnull(b);
	st = stats();
	ck_assert_str_eq(st.kind, "nbd");
	ck_assert(st.nbd.connected);
	ck_assert(st.nbd.trim);
	ck_assert_uint_eq(st.nbd.size_bytes, 64 * MiB);
	ck_assert_uint_eq(st.nbd.connects, 1);
	ck_assert(backing_ready(b));

	for (len = 1; len <= OBJ; len += len < 600 ? 1 : 37)
		slots[len] = put(len, (unsigned int)len);
	put_batch(40, 1000, lens, bslots);
	for (len = 1; len <= OBJ; len += len < 600 ? 1 : 37)
		check(slots[len], len, (unsigned int)len);
	for (i = 0; i < 40; i++)
		check(bslots[i], lens[i], 1000 + i);
	st = stats();
	ck_assert_uint_eq(st.batches, 1);
	ck_assert_uint_gt(st.reads, 600);
	ck_assert_uint_eq(st.checksum_errors + st.read_errors +
			  st.write_errors, 0);
	ck_assert_uint_gt(st.write_bytes, 0);
	ck_assert_uint_eq(st.latency[0][BACKING_LATENCY_BUCKETS], st.reads);
}
END_TEST

/* The cap never passes the export: it is full where the export ends,
 * less its superblock segment. */
START_TEST(test_full_export)
{
	uint64_t n = 0, slot;
	uint8_t buf[OBJ];
	struct backing_stats st;
	int ret;

	serve_memory("4M");
	b = backing_open(srv.uri, 1024 * MiB, false);
	ck_assert_ptr_nonnull(b);
	fill(buf, OBJ, 1);
	while ((ret = backing_write(b, buf, OBJ, &slot)) == 0)
		n++;
	ck_assert_int_eq(ret, -ENOSPC);
	st = stats();
	/* 3 MiB of data space, 4 KiB + 16 bytes per object: 9 units */
	ck_assert_uint_eq(n, 3 * MiB / (9 * 512));
	ck_assert_uint_eq(st.full, 1);
	ck_assert_uint_eq(st.write_errors, 0);
}
END_TEST

/* An export with data that is not ours is refused, and left as it is. */
START_TEST(test_foreign_refused)
{
	struct nbd_handle *h;
	char buf[16] = "a filesystem";

	serve_memory("8M");
	h = peek_open();
	ck_assert_int_eq(nbd_pwrite(h, buf, sizeof(buf), 100, 0), 0);
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(errno, EEXIST);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(nbd_pread(h, buf, sizeof(buf), 100, 0), 0);
	ck_assert_str_eq(buf, "a filesystem");
	nbd_close(h);
}
END_TEST

/* TLS when the URI asks for it (nbds+unix://, a PSK): the export is
 * used as any other; the same URI without TLS is refused by the server. */
START_TEST(test_tls)
{
	char psk[320], pskarg[340], uri[800];
	const char *args[] = { "--tls=require", pskarg, "memory", "size=16M",
			       NULL };
	uint64_t slot;
	FILE *f;

	snprintf(psk, sizeof(psk), "%s/psk", dir);
	f = fopen(psk, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "uzswapd:0123456789abcdef0123456789abcdef\n");
	fclose(f);
	snprintf(pskarg, sizeof(pskarg), "--tls-psk=%s", psk);
	serve(args);
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_null(b);
	snprintf(uri, sizeof(uri),
		 "nbds+unix://uzswapd@/?socket=%s&tls-psk-file=%s", srv.sock,
		 psk);
	b = backing_open(uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	slot = put(3333, 8);
	check(slot, 3333, 8);
	unlink(psk);
}
END_TEST

/* Nothing listens: refused at open. */
START_TEST(test_no_server)
{
	char uri[400];

	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s/none", dir);
	b = backing_open(uri, 64 * MiB, false);
	ck_assert_ptr_null(b);
}
END_TEST

/* A successor takes the export over with its objects; a new daemon
 * (without keep) starts it empty. */
START_TEST(test_hand_over)
{
	uint64_t slot, dev, ino, dev2, ino2;
	uint8_t buf[OBJ];

	serve_memory("16M");
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	slot = put(3000, 7);
	backing_identity(b, &dev, &ino);
	backing_hand_over(b);
	backing_close(b);

	b = backing_open(srv.uri, 64 * MiB, true);
	ck_assert_ptr_nonnull(b);
	backing_identity(b, &dev2, &ino2);
	ck_assert_uint_eq(dev, dev2);
	ck_assert_uint_eq(ino, ino2);
	ck_assert_int_eq(backing_recover_ref(b, slot, 3000), 0);
	check(slot, 3000, 7);
	backing_close(b);	/* not handed over: trimmed */

	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	backing_identity(b, &dev2, &ino2);
	ck_assert_uint_ne(ino, ino2);
	ck_assert_int_eq(backing_recover_ref(b, slot, 3000), -ESTALE);
	ck_assert_int_eq(backing_read(b, slot, buf, 3000), -EBADMSG);
}
END_TEST

/*****************
 * Segments and TRIM
 *****************/

/* Whether the export's bytes [@off, @off + @len) are all zero. */
static bool export_zero(struct nbd_handle *h, uint64_t off, size_t len)
{
	static uint8_t buf[SEG];
	size_t i;

	ck_assert_uint_le(len, sizeof(buf));
	ck_assert_int_eq(nbd_pread(h, buf, len, off, 0), 0);
	for (i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

START_TEST(test_trim_segments)
{
	/* 4 KiB objects in 4.5 KiB: 227 fill a segment and start the next */
	enum { NR = 240 };
	uint64_t slots[NR], seg1 = SEG, seg2 = 2 * SEG;
	struct nbd_handle *h;
	struct backing_stats st;
	unsigned int i;

	serve_memory("16M");
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	for (i = 0; i < NR; i++)
		slots[i] = put(OBJ, i);
	h = peek_open();
	ck_assert(!export_zero(h, seg1, SEG));
	ck_assert(!export_zero(h, seg2, 4096));

	/* all but one object that starts in the first segment (the last
	 * of them ends in the second): nothing trimmed */
	for (i = 1; i < NR && slots[i] < SEG / 512; i++)
		backing_free(b, slots[i], OBJ);
	ck_assert_uint_gt(slots[i - 1] + 9, SEG / 512);
	ck_assert_uint_eq(stats().punched, 0);
	ck_assert(!export_zero(h, seg1, SEG));
	/* its last: the segment goes in one TRIM, the next stays */
	backing_free(b, slots[0], OBJ);
	st = stats();
	ck_assert_uint_eq(st.punched, SEG / 4096);
	ck_assert_uint_eq(st.punch_errors, 0);
	ck_assert(export_zero(h, seg1, SEG));
	ck_assert(!export_zero(h, seg2, 4096));
	for (; i < NR; i++)
		check(slots[i], OBJ, i);
	nbd_close(h);
}
END_TEST

/*****************
 * What the export returns is checked
 *****************/

START_TEST(test_corruption_detected)
{
	struct nbd_handle *h;
	uint64_t slot, other;
	uint8_t byte, buf[OBJ];

	serve_memory("16M");
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	slot = put(2500, 3);
	other = put(2500, 4);
	/* one bit of the object's last byte flips on the server */
	h = peek_open();
	ck_assert_int_eq(nbd_pread(h, &byte, 1, SEG + slot * 512 + 16 + 2499,
				   0), 0);
	byte ^= 1;
	ck_assert_int_eq(nbd_pwrite(h, &byte, 1, SEG + slot * 512 + 16 + 2499,
				    0), 0);
	nbd_close(h);
	ck_assert_int_eq(backing_read(b, slot, buf, 2500), -EBADMSG);
	check(other, 2500, 4);
	/* read with another length: never taken for the object */
	ck_assert_int_eq(backing_read(b, other, buf, 2400), -EBADMSG);
	ck_assert_uint_eq(stats().checksum_errors, 2);
}
END_TEST

/* nbdkit's error filter fails every read: an error, never data. */
START_TEST(test_server_read_errors)
{
	const char *args[] = { "--filter=error", "memory", "size=16M",
			       "error=EIO", "error-pread-rate=100%",
			       "error-pread-file=", NULL };
	char trigger[320], rate[340];
	uint8_t buf[OBJ];
	uint64_t slot;
	FILE *f;

	/* reads fail only while the trigger file exists (the superblock
	 * is read at open) */
	snprintf(trigger, sizeof(trigger), "%s/fail-reads", dir);
	snprintf(rate, sizeof(rate), "error-pread-file=%s", trigger);
	args[5] = rate;
	serve(args);
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	slot = put(1000, 9);
	f = fopen(trigger, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(backing_read(b, slot, buf, 1000), -EIO);
	ck_assert_uint_eq(stats().read_errors, 1);
	ck_assert(backing_ready(b));	/* the connection stays */
	unlink(trigger);
	check(slot, 1000, 9);
}
END_TEST

/*****************
 * The server goes away
 *****************/

/* nbdkit file killed and restarted: nothing written is lost. */
START_TEST(test_server_restart)
{
	uint64_t slots[50], bslots[20], slot;
	size_t lens[20];
	uint8_t buf[OBJ];
	struct backing_stats st;
	unsigned int i;

	serve_file(32 * MiB);
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	for (i = 0; i < 50; i++)
		slots[i] = put(100 + i * 50, i);
	put_batch(20, 500, lens, bslots);

	nbdserver_stop(&srv, SIGKILL);
	ck_assert_int_eq(read_until_not(slots[0], 100, 0), -EAGAIN);
	wait_ready(false);
	fill(buf, 100, 1);
	ck_assert_int_lt(backing_write(b, buf, 100, &slot), 0);
	ck_assert_uint_gt(stats().read_waits, 0);

	ck_assert_int_eq(nbdserver_restart(&srv), 0);
	ck_assert_int_eq(read_until_not(slots[0], 100, -EAGAIN), 0);
	wait_ready(true);
	for (i = 0; i < 50; i++)
		check(slots[i], 100 + i * 50, i);
	for (i = 0; i < 20; i++)
		check(bslots[i], lens[i], 500 + i);
	slot = put(OBJ, 77);
	check(slot, OBJ, 77);
	st = stats();
	ck_assert_uint_eq(st.nbd.connects, 2);
	ck_assert_uint_eq(st.nbd.disconnects, 1);
	ck_assert_uint_eq(st.checksum_errors + st.timeouts, 0);
}
END_TEST

/* nbdkit memory restarted comes back empty: the old objects fail their
 * checksum (never zeros), new ones are written and read. */
START_TEST(test_server_came_back_empty)
{
	uint64_t slot, slot2;

	serve_memory("16M");
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	slot = put(1234, 5);
	nbdserver_stop(&srv, SIGKILL);
	ck_assert_int_eq(read_until_not(slot, 1234, 0), -EAGAIN);
	ck_assert_int_eq(nbdserver_restart(&srv), 0);
	ck_assert_int_eq(read_until_not(slot, 1234, -EAGAIN), -EBADMSG);
	wait_ready(true);
	slot2 = put(1234, 6);
	check(slot2, 1234, 6);
}
END_TEST

/* A server that stays away: reads wait, then time out. */
START_TEST(test_read_timeout)
{
	struct backing_stats st;
	uint64_t slot;

	serve_memory("16M");
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	backing_set_timeout(b, 1);
	slot = put(999, 1);
	nbdserver_stop(&srv, SIGKILL);
	ck_assert_int_eq(read_until_not(slot, 999, 0), -EAGAIN);
	ck_assert_int_eq(read_until_not(slot, 999, -EAGAIN), -ETIMEDOUT);
	st = stats();
	ck_assert_uint_gt(st.read_waits, 0);
	ck_assert_uint_gt(st.timeouts, 0);
	ck_assert(!st.nbd.connected);
}
END_TEST

/*****************
 * Threads
 *****************/

#define ST_THREADS 4
#define ST_OPS 1500

static void *stress(void *arg)
{
	unsigned int t = (unsigned int)(uintptr_t)arg, i;
	uint64_t slots[16] = { 0 };
	size_t lens[16] = { 0 };
	uint8_t buf[OBJ], want[OBJ];
	int ret;

	for (i = 0; i < ST_OPS; i++) {
		unsigned int k = i % 16, seed = t * 100000 + i - 16;

		if (lens[k]) {
			fill(want, lens[k], seed);
			ret = backing_read(b, slots[k], buf, lens[k]);
			if (ret || memcmp(buf, want, lens[k])) {
				fprintf(stderr, "thread %u: read %u: %s\n", t,
					i, ret ? strerror(-ret) : "differs");
				return (void *)1;
			}
			backing_free(b, slots[k], lens[k]);
		}
		lens[k] = 1 + (t * 7919 + i * 104729) % OBJ;
		fill(buf, lens[k], t * 100000 + i);
		ret = backing_write(b, buf, lens[k], &slots[k]);
		if (ret) {
			fprintf(stderr, "thread %u: write %u: %s\n", t, i,
				strerror(-ret));
			return (void *)2;
		}
	}
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t th[ST_THREADS];
	void *ret;
	unsigned int i;

	serve_memory("64M");
	b = backing_open(srv.uri, 64 * MiB, false);
	ck_assert_ptr_nonnull(b);
	for (i = 0; i < ST_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, stress,
						(void *)(uintptr_t)i), 0);
	for (i = 0; i < ST_THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_uint_eq(stats().objects, ST_THREADS * 16);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("backing_nbd");
	TCase *tc;

	tc = tcase_create("export");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_full_export);
	tcase_add_test(tc, test_foreign_refused);
	tcase_add_test(tc, test_no_server);
	tcase_add_test(tc, test_tls);
	tcase_add_test(tc, test_hand_over);
	tcase_add_test(tc, test_trim_segments);
	suite_add_tcase(s, tc);

	tc = tcase_create("checked");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_corruption_detected);
	tcase_add_test(tc, test_server_read_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("away");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_server_restart);
	tcase_add_test(tc, test_server_came_back_empty);
	tcase_add_test(tc, test_read_timeout);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *why = nbdserver_missing();
	SRunner *sr;
	int failed;

	if (why) {
		fprintf(stderr, "SKIP: %s\n", why);
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
