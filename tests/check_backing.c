/*
 * check_backing.c - unit tests of uzswapd's backing file (daemon/backing.c).
 *
 * Round trips of every object size from aligned and unaligned buffers,
 * zero padding on disk, free and reuse, the cap and its live changes,
 * holes punched as blocks become free, a real full filesystem (a 64 KiB
 * tmpfs mounted for the test: needs root, skipped otherwise), write
 * errors (EFBIG past RLIMIT_FSIZE), paths that are not regular files or
 * not ours (symlinks, a symlinked directory, hard links, a file someone
 * holds open), the flock against a second opener, what close leaves behind,
 * allocation-failure injection at open, and four threads writing, reading
 * and freeing each other's objects while the cap changes.
 *
 * Files live in a fresh directory under $TMPDIR (default /tmp).
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_backing
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "daemon/backing.h"
#include "lib/common/failpoint.h"
#include "lib/common/macros.h"
#include "tests/ckpart.h"
#include "tests/tmpdir.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define OBJ BACKING_MAX_OBJECT

static char dir[256];		/* per test case; unchecked fixture */
static char path[320];		/* dir/backing */
static char mnt[300];		/* dir/mnt, the small tmpfs */
static bool mounted;
static struct backing *b;

/*****************
 * Fixtures and helpers
 *****************/

static void dir_setup(void)
{
	if (tmpdir_make(dir, sizeof(dir), "check_backing")) {
		perror("mkdtemp");
		abort();
	}
	snprintf(path, sizeof(path), "%s/backing", dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
}

/* Runs in the parent process, even when a test failed in its child. */
static void dir_teardown(void)
{
	/* what the tests may leave, children before their directories */
	static const char *const left[] = {
		"other", "fifo", "victim", "nowhere", "link", "real/backing",
		"real",
	};
	char p[400];
	size_t i;

	if (mounted && umount2(mnt, MNT_DETACH) == 0)
		mounted = false;
	rmdir(mnt);
	unlink(path);
	for (i = 0; i < ARRAY_SIZE(left); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, left[i]);
		if (unlink(p) < 0 && errno == EISDIR)
			rmdir(p);
	}
	if (rmdir(dir) < 0)
		fprintf(stderr, "check_backing: %s left behind: %s\n", dir,
			strerror(errno));
}

/* A 64 KiB tmpfs at @mnt, to fill up (the part "full" runs only where
 * ckpart_cannot_mount() says it can; its test asserts @mounted). */
static void mnt_setup(void)
{
	dir_setup();
	if (mkdir(mnt, 0700) < 0) {
		perror("mkdir");
		abort();
	}
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700") == 0)
		mounted = true;
	else
		fprintf(stderr, "check_backing: cannot mount a tmpfs at %s: "
			"%s\n", mnt, strerror(errno));
}

static void setup(void)
{
	b = NULL;
	unlink(path);
}

static void teardown(void)
{
	backing_close(b);
	b = NULL;
	unlink(path);
}

static void open_backing(uint64_t limit)
{
	b = backing_open(path, limit, false);
	ck_assert_msg(b, "backing_open(%s): %s", path, strerror(errno));
}

static struct backing_stats stats(void)
{
	struct backing_stats st;

	backing_get_stats(b, &st);
	return st;
}

/* A byte pattern derived from @seed, and its check. */
static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static bool pattern_ok(const uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (p[i] != (uint8_t)x)
			return false;
	}
	return true;
}

/* Write @len bytes of pattern @seed; returns the slot. */
static uint64_t put(size_t len, uint64_t seed)
{
	_Alignas(4096) uint8_t buf[OBJ];
	uint64_t slot;
	int ret;

	fill(buf, len, seed);
	ret = backing_write(b, buf, len, &slot);
	ck_assert_msg(ret == 0, "write of %zu bytes: %s", len, strerror(-ret));
	return slot;
}

static int try_put(size_t len, uint64_t seed, uint64_t *slot)
{
	_Alignas(4096) uint8_t buf[OBJ];

	fill(buf, len, seed);
	return backing_write(b, buf, len, slot);
}

static void check(uint64_t slot, size_t len, uint64_t seed)
{
	_Alignas(4096) uint8_t buf[OBJ];
	int ret = backing_read(b, slot, buf, len);

	ck_assert_msg(ret == 0, "read of slot %llu: %s",
		      (unsigned long long)slot, strerror(-ret));
	ck_assert_msg(pattern_ok(buf, len, seed), "slot %llu (%zu bytes) "
		      "corrupted", (unsigned long long)slot, len);
}

static uint64_t disk_bytes(void)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return (uint64_t)sb.st_blocks * 512;
}

/*****************
 * Round trips, reuse, the cap
 *****************/

START_TEST(test_roundtrip_all_sizes)
{
	static uint64_t slot[OBJ + 1];
	uint8_t *wbuf = aligned_alloc(4096, 2 * OBJ);
	uint8_t *rbuf = aligned_alloc(4096, 2 * OBJ);
	struct backing_stats st;
	uint64_t units = 0;
	size_t len;

	ck_assert_ptr_nonnull(wbuf);
	ck_assert_ptr_nonnull(rbuf);
	open_backing(16 * MiB);
	for (len = 1; len <= OBJ; len++) {
		/* odd sizes from an unaligned buffer */
		uint8_t *p = wbuf + (len & 1);

		fill(p, len, len);
		ck_assert_int_eq(backing_write(b, p, len, &slot[len]), 0);
		units += (len + 511) / 512;
	}
	st = stats();
	ck_assert_uint_eq(st.objects, OBJ);
	ck_assert_uint_eq(st.writes, OBJ);
	ck_assert_uint_eq(st.used_bytes, units * 512);
	ck_assert_uint_eq(units, 512 * 36);
	ck_assert_uint_eq(st.full + st.write_errors, 0);

	for (len = 1; len <= OBJ; len++) {
		/* aligned, and off by 1, 8 (not 512-aligned) */
		uint8_t *p = rbuf + (len % 3 == 0 ? 0 : len % 3 == 1 ? 1 : 8);

		memset(rbuf, 0xa5, 2 * OBJ);
		ck_assert_int_eq(backing_read(b, slot[len], p, len), 0);
		ck_assert_msg(pattern_ok(p, len, len), "size %zu corrupted",
			      len);
		/* nothing past the object, nothing before the buffer */
		ck_assert_uint_eq(p[len], 0xa5);
		ck_assert_uint_eq(p[len + 7], 0xa5);
		if (p != rbuf)
			ck_assert_uint_eq(p[-1], 0xa5);
	}
	for (len = 1; len <= OBJ; len++)
		backing_free(b, slot[len], len);
	st = stats();
	ck_assert_uint_eq(st.objects, 0);
	ck_assert_uint_eq(st.used_bytes, 0);
	ck_assert_uint_eq(st.reads, OBJ);
	ck_assert_uint_eq(st.invalid_frees + st.read_errors, 0);
	free(wbuf);
	free(rbuf);
}
END_TEST

START_TEST(test_tail_zeroed_on_disk)
{
	uint8_t buf[512], raw[512];
	uint64_t slot;
	int fd, i;

	open_backing(4096);
	/* leave stale bytes in the unit first */
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(backing_write(b, buf, 512, &slot), 0);
	ck_assert_uint_eq(slot, 0);
	for (i = 1; i < 8; i++)
		put(512, (uint64_t)i);	/* keep the block from being punched */
	backing_free(b, 0, 512);
	memset(buf, 0xff, 100);
	ck_assert_int_eq(backing_write(b, buf, 100, &slot), 0);
	ck_assert_uint_eq(slot, 0);	/* the only free unit */
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, raw, 512, (off_t)(slot * 512)), 512);
	close(fd);
	for (i = 0; i < 100; i++)
		ck_assert_uint_eq(raw[i], 0xff);
	for (i = 100; i < 512; i++)
		ck_assert_msg(raw[i] == 0, "byte %d of the unit is %#x", i,
			      raw[i]);
}
END_TEST

START_TEST(test_free_reuse)
{
	uint64_t slot[8], s;
	int i;

	open_backing(4096);	/* 8 units */
	for (i = 0; i < 8; i++) {
		slot[i] = put(512, (uint64_t)i + 1);
		ck_assert_uint_eq(slot[i], (uint64_t)i);
	}
	ck_assert_int_eq(try_put(1, 99, &s), -ENOSPC);

	backing_free(b, slot[3], 512);
	slot[3] = put(300, 103);
	ck_assert_uint_eq(slot[3], 3);

	/* two free units together take a 2-unit object */
	backing_free(b, slot[5], 512);
	ck_assert_int_eq(try_put(1000, 105, &s), -ENOSPC);
	backing_free(b, slot[6], 512);
	slot[5] = put(1000, 105);
	ck_assert_uint_eq(slot[5], 5);

	for (i = 0; i < 8; i++) {
		if (i == 6)
			continue;
		check(slot[i], i == 3 ? 300 : i == 5 ? 1000 : 512,
		      (uint64_t)i + (i == 3 || i == 5 ? 100 : 1));
	}
	ck_assert_uint_eq(stats().objects, 7);

	/* frees of what is not allocated are counted, not done */
	backing_free(b, slot[7], 512);
	backing_free(b, slot[7], 512);		/* double free */
	backing_free(b, 1000, 512);		/* past the bitmap */
	backing_free(b, UINT64_MAX, 1);
	backing_free(b, 0, 0);
	backing_free(b, 6, 1024);		/* unit 7 is free */
	ck_assert_uint_eq(stats().invalid_frees, 5);
	ck_assert_uint_eq(stats().objects, 6);
	check(slot[5], 1000, 105);
}
END_TEST

START_TEST(test_bad_args)
{
	uint8_t buf[OBJ + 1] = { 0 };
	uint64_t s;

	open_backing(1 * MiB);
	ck_assert_int_eq(backing_write(b, buf, 0, &s), -EINVAL);
	ck_assert_int_eq(backing_write(b, buf, OBJ + 1, &s), -EINVAL);
	s = put(10, 1);
	ck_assert_int_eq(backing_read(b, s, buf, 0), -EINVAL);
	ck_assert_int_eq(backing_read(b, s, buf, OBJ + 1), -EINVAL);
	ck_assert_int_eq(backing_read(b, 2048, buf, 1), -EINVAL);
	ck_assert_int_eq(backing_read(b, 2047, buf, 513), -EINVAL);
	ck_assert_int_eq(backing_read(b, UINT64_MAX, buf, 1), -EINVAL);
	ck_assert_uint_eq(stats().full + stats().write_errors, 0);
	check(s, 10, 1);
}
END_TEST

/*
 * A batch: objects of every size class packed back to back in one write
 * land in one contiguous run, each readable and freeable on its own; a
 * batch longer than any free run is refused (-ENOSPC, not counted as
 * full) and nothing is kept; a bad length is refused.
 */
START_TEST(test_batch)
{
	static const size_t lens[] = { 1, 511, 512, 513, 2000, OBJ, 3000, 7 };
	const unsigned int nr = sizeof(lens) / sizeof(lens[0]);
	uint64_t slots[8], units = 0, s;
	uint8_t *buf = aligned_alloc(4096, 8 * OBJ);
	size_t off = 0, bad = 0;
	unsigned int i;

	ck_assert_ptr_nonnull(buf);
	open_backing(64 * KiB);
	memset(buf, 0, 8 * OBJ);
	for (i = 0; i < nr; i++) {
		fill(buf + off, lens[i], i + 1);
		off += (lens[i] + 511) & ~(size_t)511;
	}
	ck_assert_int_eq(backing_write_batch(b, buf, lens, nr, slots), 0);
	for (i = 0; i < nr; i++) {
		ck_assert_uint_eq(slots[i], slots[0] + units);
		units += (lens[i] + 511) / 512;
		check(slots[i], lens[i], i + 1);
	}
	ck_assert_uint_eq(stats().objects, nr);
	ck_assert_uint_eq(stats().writes, nr);
	ck_assert_uint_eq(stats().batches, 1);
	ck_assert_uint_eq(stats().used_bytes, units * 512);
	/* 24 units a batch: five fill 120 of the file's 128; a sixth finds
	 * no run, but one object at a time still finds room */
	for (i = 1; i < 5; i++)
		ck_assert_int_eq(backing_write_batch(b, buf, lens, nr, slots),
				 0);
	ck_assert_int_eq(backing_write_batch(b, buf, lens, nr, slots),
			 -ENOSPC);
	ck_assert_uint_eq(stats().full, 0);
	ck_assert_uint_eq(stats().objects, 5 * nr);
	ck_assert_int_eq(backing_write_batch(b, buf, &bad, 1, slots),
			 -EINVAL);
	s = put(OBJ, 42);
	check(s, OBJ, 42);
	for (i = 0; i < nr; i++) {
		check(slots[i], lens[i], i + 1);
		backing_free(b, slots[i], lens[i]);
	}
	ck_assert_uint_eq(stats().invalid_frees, 0);
	ck_assert_uint_eq(stats().objects, 4 * nr + 1);
	free(buf);
}
END_TEST

START_TEST(test_cap)
{
	uint64_t slot[16], s;
	struct backing_stats st;
	int i;

	open_backing(64 * KiB);
	for (i = 0; i < 16; i++)
		slot[i] = put(OBJ, (uint64_t)i);
	ck_assert_int_eq(try_put(OBJ, 100, &s), -ENOSPC);
	ck_assert_int_eq(try_put(1, 101, &s), -ENOSPC);
	st = stats();
	ck_assert_uint_eq(st.full, 2);
	ck_assert_uint_eq(st.objects, 16);
	ck_assert_uint_eq(st.used_bytes, 64 * KiB);
	ck_assert_uint_eq(st.write_errors, 0);
	/* nothing lost */
	for (i = 0; i < 16; i++)
		check(slot[i], OBJ, (uint64_t)i);

	backing_free(b, slot[7], OBJ);
	slot[7] = put(OBJ, 7);
	ck_assert_uint_eq(slot[7], 7 * 8);
	for (i = 0; i < 16; i++) {
		check(slot[i], OBJ, (uint64_t)i);
		backing_free(b, slot[i], OBJ);
	}

	/* 3-unit objects, two per block, none straddling: then 2-unit gaps
	 * are all that is left, which refuses a 3-unit object below the cap
	 * and takes 2-unit ones */
	backing_close(b);
	open_backing(64 * KiB);
	for (i = 0; i < 32; i++) {
		s = put(1500, (uint64_t)i);
		ck_assert_uint_eq(s / 8, (s + 2) / 8);
	}
	ck_assert_int_eq(try_put(1500, 1, &s), -ENOSPC);
	ck_assert_uint_eq(stats().used_bytes, 48 * KiB);
	for (i = 0; i < 16; i++)
		put(1024, (uint64_t)i);
	ck_assert_int_eq(try_put(1, 2, &s), -ENOSPC);
	ck_assert_uint_eq(stats().used_bytes, 64 * KiB);
}
END_TEST

START_TEST(test_limit_zero)
{
	uint64_t s;

	open_backing(0);
	ck_assert_int_eq(try_put(1, 1, &s), -ENOSPC);
	ck_assert_int_eq(backing_set_limit(b, 4096), 0);
	s = put(OBJ, 2);
	check(s, OBJ, 2);
	ck_assert_uint_eq(stats().full, 1);
}
END_TEST

START_TEST(test_set_limit_live)
{
	enum { N = 108 };
	static uint64_t slot[N];
	uint64_t s;
	struct backing_stats st;
	int i;

	open_backing(32 * KiB);
	for (i = 0; i < 8; i++)
		slot[i] = put(OBJ, (uint64_t)i);
	ck_assert_int_eq(try_put(OBJ, 0, &s), -ENOSPC);

	/* grow: the bitmap is reallocated, the objects stay */
	ck_assert_int_eq(backing_set_limit(b, 1 * MiB), 0);
	for (i = 8; i < N; i++)
		slot[i] = put(OBJ, (uint64_t)i);
	for (i = 0; i < N; i++)
		check(slot[i], OBJ, (uint64_t)i);
	ck_assert_uint_eq(stats().limit_bytes, 1 * MiB);

	/* shrink below use: writes stop, reads and frees go on */
	ck_assert_int_eq(backing_set_limit(b, 64 * KiB), 0);
	ck_assert_int_eq(try_put(1, 0, &s), -ENOSPC);
	for (i = 0; i < N; i++)
		check(slot[i], OBJ, (uint64_t)i);
	for (i = 16; i < N; i++)
		backing_free(b, slot[i], OBJ);
	ck_assert_int_eq(try_put(1, 0, &s), -ENOSPC);	/* used == cap */
	backing_free(b, slot[3], OBJ);
	backing_free(b, slot[9], OBJ);
	/* new objects go below the new cap */
	for (i = 0; i < 16; i++) {
		slot[16 + i] = put(512, 1000 + (uint64_t)i);
		ck_assert_uint_lt(slot[16 + i], 64 * KiB / 512);
	}
	ck_assert_int_eq(try_put(1, 0, &s), -ENOSPC);
	st = stats();
	ck_assert_uint_eq(st.used_bytes, 64 * KiB);
	ck_assert_uint_eq(st.limit_bytes, 64 * KiB);

	/* growing again within the bitmap, and failing to grow it */
	ck_assert_int_eq(backing_set_limit(b, 128 * KiB), 0);
	s = put(OBJ, 5000);
	check(s, OBJ, 5000);
	failpoint_arm(1);
	ck_assert_int_eq(backing_set_limit(b, 64 * MiB), -ENOMEM);
	failpoint_arm(0);
	ck_assert_uint_eq(stats().limit_bytes, 128 * KiB);
	ck_assert_int_eq(backing_set_limit(b, UINT64_MAX), -EINVAL);
	ck_assert_int_eq(backing_set_limit(b, 64 * MiB), 0);
	for (i = 0; i < 16; i++)
		if (i != 3 && i != 9)
			check(slot[i], OBJ, (uint64_t)i);
	for (i = 0; i < 16; i++)
		check(slot[16 + i], 512, 1000 + (uint64_t)i);
	check(s, OBJ, 5000);
}
END_TEST

/*****************
 * Disk space: holes, a full filesystem
 *****************/

START_TEST(test_holes_punched)
{
	enum { N = 256 };
	static uint64_t slot[N];
	uint64_t before, after, punched, small[8], unit[16], s;
	int i;

	open_backing(4 * MiB);
	for (i = 0; i < N; i++)
		slot[i] = put(OBJ, (uint64_t)i);
	before = disk_bytes();
	ck_assert_uint_ge(before, N * OBJ);
	ck_assert_uint_eq(stats().file_bytes, before);

	/* every other page: half the blocks go back (allow an extent block) */
	for (i = 0; i < N; i += 2)
		backing_free(b, slot[i], OBJ);
	ck_assert_msg(stats().punch, "%s cannot punch holes", dir);
	after = disk_bytes();
	ck_assert_uint_eq(stats().punched, N / 2);
	ck_assert_uint_le(after, before - N / 2 * OBJ + 64 * KiB);
	for (i = 1; i < N; i += 2) {
		check(slot[i], OBJ, (uint64_t)i);
		backing_free(b, slot[i], OBJ);
	}
	ck_assert_uint_le(disk_bytes(), 8 * KiB);

	/* a block goes back only when its last unit is freed */
	punched = stats().punched;
	ck_assert_int_eq(backing_set_limit(b, 4096), 0);
	for (i = 0; i < 8; i++)
		small[i] = put(512, (uint64_t)i);
	ck_assert_uint_ge(disk_bytes(), 4096);
	for (i = 0; i < 7; i++)
		backing_free(b, small[i], 512);
	ck_assert_uint_eq(stats().punched, punched);
	check(small[7], 512, 7);
	backing_free(b, small[7], 512);
	ck_assert_uint_eq(stats().punched, punched + 1);

	/* an object straddles two blocks only when nothing else fits, and
	 * its free gives both back at once */
	ck_assert_int_eq(backing_set_limit(b, 8 * KiB), 0);
	for (i = 0; i < 16; i++)
		unit[i] = put(512, (uint64_t)i);
	for (i = 0; i < 16; i++)
		if (unit[i] >= 6 && unit[i] <= 8)
			backing_free(b, unit[i], 512);
	s = put(1536, 99);
	ck_assert_uint_eq(s, 6);
	for (i = 0; i < 16; i++)
		if (unit[i] < 6 || unit[i] > 8)
			backing_free(b, unit[i], 512);
	punched = stats().punched;
	check(s, 1536, 99);
	backing_free(b, s, 1536);
	ck_assert_uint_eq(stats().punched, punched + 2);
	ck_assert_uint_eq(stats().punch_errors, 0);
	ck_assert_uint_le(disk_bytes(), 8 * KiB);
}
END_TEST

START_TEST(test_full_filesystem)
{
	enum { N = 64 };
	uint64_t slot[N], s;
	struct backing_stats st;
	int i, n, ret = 0;

	ck_assert_msg(mounted, "no tmpfs mounted on %s", mnt);
	snprintf(path, sizeof(path), "%s/backing", mnt);
	open_backing(1 * MiB);	/* the cap is far above the 64 KiB fs */
	st = stats();
	ck_assert(st.in_memory);
	ck_assert(!st.direct);

	for (n = 0; n < N; n++) {
		ret = try_put(OBJ, (uint64_t)n, &slot[n]);
		if (ret)
			break;
	}
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_int_ge(n, 4);
	ck_assert_int_le(n, 16);
	st = stats();
	ck_assert_uint_eq(st.full, 1);
	ck_assert_uint_eq(st.write_errors, 0);
	/* the failed write left nothing allocated */
	ck_assert_uint_eq(st.objects, (uint64_t)n);
	ck_assert_uint_eq(st.used_bytes, (uint64_t)n * OBJ);
	for (i = 0; i < n; i++)
		check(slot[i], OBJ, (uint64_t)i);
	/* small objects are refused too, and lose nothing */
	ret = try_put(100, 1, &s);
	if (ret == 0)
		backing_free(b, s, 100);
	else
		ck_assert_int_eq(ret, -ENOSPC);

	/* a freed page goes back to the filesystem: writes resume */
	backing_free(b, slot[0], OBJ);
	slot[0] = put(OBJ, 0);
	for (i = 0; i < n; i++) {
		check(slot[i], OBJ, (uint64_t)i);
		backing_free(b, slot[i], OBJ);
	}
	ck_assert_uint_eq(stats().used_bytes, 0);
	backing_close(b);
	b = NULL;
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/backing", dir);
}
END_TEST

START_TEST(test_write_error)
{
	struct rlimit old, small = { .rlim_cur = 16 * KiB };
	uint64_t slot[4], s;
	struct backing_stats st;
	int i;

	/* writes past RLIMIT_FSIZE fail with EFBIG: an I/O error that is
	 * not "full", with no device to break */
	open_backing(1 * MiB);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	for (i = 0; i < 4; i++)
		slot[i] = put(OBJ, (uint64_t)i);
	ck_assert_int_eq(try_put(OBJ, 4, &s), -EFBIG);
	ck_assert_int_eq(try_put(100, 5, &s), -EFBIG);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	st = stats();
	ck_assert_uint_eq(st.write_errors, 2);
	ck_assert_uint_eq(st.full, 0);
	ck_assert_uint_eq(st.writes, 4);
	/* nothing kept: the bitmap is as it was */
	ck_assert_uint_eq(st.objects, 4);
	ck_assert_uint_eq(st.used_bytes, 16 * KiB);
	for (i = 0; i < 4; i++)
		check(slot[i], OBJ, (uint64_t)i);
	s = put(OBJ, 6);
	check(s, OBJ, 6);
}
END_TEST

/*****************
 * Opening and closing
 *****************/

START_TEST(test_open_refuses)
{
	char p[400];
	struct stat sb;
	int fd;

	errno = 0;
	ck_assert_ptr_null(backing_open("/dev/full", 1 * MiB, false));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(stat("/dev/full", &sb), 0);	/* not removed */
	ck_assert(S_ISCHR(sb.st_mode));

	snprintf(p, sizeof(p), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	ck_assert_ptr_null(backing_open(p, 1 * MiB, false));	/* did not block */
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(unlink(p), 0);

	ck_assert_ptr_null(backing_open(dir, 1 * MiB, false));
	ck_assert_int_eq(errno, EISDIR);

	/* another user's file is neither used nor touched */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_ptr_null(backing_open(path, 1 * MiB, false));
		ck_assert_int_eq(errno, EPERM);
		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_int_eq(sb.st_size, 1);
	}
	ck_assert_int_eq(unlink(path), 0);

	snprintf(p, sizeof(p), "%s/nodir/backing", dir);
	ck_assert_ptr_null(backing_open(p, 1 * MiB, false));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_null(backing_open("", 1 * MiB, false));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(backing_open(path, UINT64_MAX, false));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/*
 * The path's traps: another user plants, in a shared directory, a link to
 * a file of the daemon's user (one it holds open, or can read) so that
 * the daemon writes clients' pages into it. Each is refused and the victim
 * is left exactly as it was.
 */

/* A file of ours at dir/victim: @data (may be empty), mode 0644, marked
 * as a backing file if @marked. Its path is left in @victim. */
static void victim_make(char *victim, size_t size, const char *data,
			bool marked)
{
	int fd;

	snprintf(victim, size, "%s/victim", dir);
	fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	ck_assert_int_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	if (marked)
		ck_assert_int_eq(fsetxattr(fd, BACKING_XATTR, "1", 1, 0), 0);
	close(fd);
}

/* @victim is as victim_make() left it. */
static void victim_check(const char *victim, const char *data, bool marked)
{
	struct stat sb;
	char v;

	ck_assert_int_eq(lstat(victim, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0644);
	ck_assert_int_eq(sb.st_size, (off_t)strlen(data));
	ck_assert_int_eq(getxattr(victim, BACKING_XATTR, &v, 1) == 1, marked);
}

/* backing_open(@p) fails with @err. */
static void open_refused(const char *p, int err)
{
	errno = 0;
	b = backing_open(p, 1 * MiB, false);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(errno, err);
}

START_TEST(test_open_refuses_symlink)
{
	static const char data[] = "a dead daemon's objects";
	char victim[400];

	/* an empty file of ours, and a marked one: both taken over when
	 * named directly, never through a link */
	victim_make(victim, sizeof(victim), "", false);
	ck_assert_int_eq(symlink(victim, path), 0);
	open_refused(path, ELOOP);
	victim_check(victim, "", false);

	victim_make(victim, sizeof(victim), data, true);
	open_refused(path, ELOOP);
	victim_check(victim, data, true);
}
END_TEST

START_TEST(test_open_refuses_dangling_symlink)
{
	char nowhere[400];

	snprintf(nowhere, sizeof(nowhere), "%s/nowhere", dir);
	ck_assert_int_eq(symlink(nowhere, path), 0);
	open_refused(path, ELOOP);
	ck_assert_int_eq(access(nowhere, F_OK), -1);	/* not created */
}
END_TEST

/* dir/link -> dir/real: the file would land wherever the link points */
START_TEST(test_open_refuses_symlinked_dir)
{
	char real[400], link[400], p[420];

	snprintf(real, sizeof(real), "%s/real", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	ck_assert_int_eq(mkdir(real, 0700), 0);
	ck_assert_int_eq(symlink(real, link), 0);
	snprintf(p, sizeof(p), "%s/backing", link);
	open_refused(p, ELOOP);
	snprintf(p, sizeof(p), "%s/backing", real);
	ck_assert_int_eq(access(p, F_OK), -1);
}
END_TEST

/* A hard link is another name for the victim: a backing file has one. */
START_TEST(test_open_refuses_hard_link)
{
	static const char data[] = "a dead daemon's objects";
	char victim[400];

	victim_make(victim, sizeof(victim), data, true);
	ck_assert_int_eq(link(victim, path), 0);
	open_refused(path, EMLINK);
	victim_check(victim, data, true);
}
END_TEST

/*
 * An empty file of ours that someone opened while it was readable: taking
 * it over must not hand them what we write. The file is replaced by a
 * fresh one (O_EXCL, 0600); the old one is unlinked, and whoever holds it
 * reads nothing.
 */
START_TEST(test_open_replaces_held_file)
{
	char buf[OBJ];
	struct stat sb, held;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	open_backing(1 * MiB);
	check(put(OBJ, 1), OBJ, 1);
	ck_assert_int_eq(fstat(fd, &held), 0);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert(sb.st_ino != held.st_ino);
	ck_assert_int_eq(held.st_nlink, 0);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 0);
	close(fd);
}
END_TEST

START_TEST(test_open_busy)
{
	uint64_t s;

	open_backing(1 * MiB);
	s = put(2000, 1);
	ck_assert_ptr_null(backing_open(path, 1 * MiB, false));
	ck_assert_int_eq(errno, EBUSY);
	/* the failed opener neither removed nor truncated the file */
	ck_assert_int_eq(access(path, F_OK), 0);
	check(s, 2000, 1);
}
END_TEST

START_TEST(test_close_removes_created)
{
	struct stat sb;

	open_backing(1 * MiB);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	put(OBJ, 1);
	backing_close(b);
	b = NULL;
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_close_truncates_existing)
{
	static const char old[] = "an old daemon's data";
	struct stat sb;
	int fd;

	/* a backing file a crashed daemon left: marked, so taken over */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, old, sizeof(old)), sizeof(old));
	ck_assert_int_eq(fsetxattr(fd, BACKING_XATTR, "1", 1, 0), 0);
	close(fd);

	open_backing(1 * MiB);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);		/* truncated at open */
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);	/* made private */
	put(OBJ, 1);
	put(100, 2);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_gt(sb.st_size, 0);
	backing_close(b);
	b = NULL;
	ck_assert_int_eq(stat(path, &sb), 0);		/* kept, emptied */
	ck_assert_int_eq(sb.st_size, 0);
	ck_assert_int_eq(sb.st_blocks, 0);
}
END_TEST

/* A file that holds data and is no backing file (a typo in the path:
 * /etc/passwd) is refused and left exactly as it was; an empty one is
 * taken over and marked. */
START_TEST(test_open_spares_foreign_data)
{
	static const char data[] = "root:x:0:0:root:/root:/bin/bash\n";
	char buf[sizeof(data)], v;
	struct stat sb;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, sizeof(data)), sizeof(data));
	close(fd);
	errno = 0;
	ck_assert_ptr_null(backing_open(path, 1 * MiB, false));
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0644);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), sizeof(data));
	close(fd);
	ck_assert_mem_eq(buf, data, sizeof(data));

	fd = open(path, O_WRONLY | O_TRUNC);
	close(fd);
	open_backing(1 * MiB);
	ck_assert_int_eq(getxattr(path, BACKING_XATTR, &v, 1), 1);
	backing_close(b);
	b = NULL;
}
END_TEST

START_TEST(test_close_spares_replaced)
{
	char other[400];
	struct stat sb;
	int fd;

	open_backing(1 * MiB);
	put(OBJ, 1);
	/* someone put another file at the path: close must not remove it */
	snprintf(other, sizeof(other), "%s/other", dir);
	fd = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	ck_assert_int_eq(rename(other, path), 0);
	backing_close(b);
	b = NULL;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 1);
}
END_TEST

START_TEST(test_alloc_failure_injection)
{
	static const char old[] = "kept until the open succeeds";
	struct stat sb;
	unsigned long n;
	int fd;

	/* created: a failed open leaves no file */
	for (n = 1; !b; n++) {
		failpoint_arm(n);
		b = backing_open(path, 64 * MiB, false);
		if (!b) {
			ck_assert_int_eq(errno, ENOMEM);
			ck_assert_uint_eq(failpoint_failures(), 1);
			ck_assert_int_eq(access(path, F_OK), -1);
		}
	}
	failpoint_arm(0);
	ck_assert_uint_eq(n, 5);	/* the tier, the file and the bitmap */
	check(put(OBJ, 1), OBJ, 1);
	backing_close(b);
	b = NULL;

	/* a pre-existing backing file: a failed open leaves it as it was */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, old, sizeof(old)), sizeof(old));
	ck_assert_int_eq(fsetxattr(fd, BACKING_XATTR, "1", 1, 0), 0);
	close(fd);
	for (n = 1; !b; n++) {
		failpoint_arm(n);
		b = backing_open(path, 64 * MiB, false);
		if (!b) {
			ck_assert_int_eq(stat(path, &sb), 0);
			ck_assert_int_eq(sb.st_size, sizeof(old));
		}
	}
	failpoint_arm(0);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);
}
END_TEST

/*****************
 * Four threads at once
 *****************/

#define ST_THREADS 4
#define ST_ENTRIES 1024
#define ST_OPS 6000

/* One object of the stress test; @lock guards the rest. */
struct st_entry {
	pthread_mutex_t lock;
	bool used;
	uint64_t slot;
	uint64_t seed;
	size_t len;
};

static struct st_entry st_entries[ST_ENTRIES];
static atomic_ulong st_mismatch, st_errors, st_full, st_written;
static atomic_bool st_stop;

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *stress_thread(void *arg)
{
	_Alignas(4096) uint8_t buf[OBJ + 8];
	uint64_t x = 0x1234567ull + (uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	int op;

	for (op = 0; op < ST_OPS; op++) {
		struct st_entry *e = &st_entries[xorshift(&x) % ST_ENTRIES];
		uint64_t r = xorshift(&x);
		uint8_t *p = buf + (r >> 20 & 1);	/* aligned or not */
		int ret;

		pthread_mutex_lock(&e->lock);
		if (!e->used) {
			/* mostly compressed sizes, some raw pages */
			e->len = r % 4 ? 1 + (r >> 8) % 3000 : OBJ;
			e->seed = (uint64_t)(uintptr_t)arg << 32 |
				  (unsigned int)op;
			fill(p, e->len, e->seed);
			ret = backing_write(b, p, e->len, &e->slot);
			if (ret == 0) {
				e->used = true;
				st_written++;
			} else if (ret == -ENOSPC) {
				st_full++;
			} else {
				st_errors++;
			}
		} else if (r % 3) {
			ret = backing_read(b, e->slot, p, e->len);
			if (ret)
				st_errors++;
			else if (!pattern_ok(p, e->len, e->seed))
				st_mismatch++;
		} else {
			backing_free(b, e->slot, e->len);
			e->used = false;
		}
		pthread_mutex_unlock(&e->lock);
	}
	return NULL;
}

/* Config reloads: grow (reallocating the bitmap) and shrink the cap. */
static void *limit_thread(void *arg)
{
	static const uint64_t limits[] = {
		1 * MiB, 2 * MiB, 512 * KiB, 3 * MiB, 1536 * KiB, 4 * MiB,
	};
	unsigned int i = 0;

	(void)arg;
	while (!atomic_load(&st_stop)) {
		if (backing_set_limit(b, limits[i++ % 6]) != 0)
			st_errors++;
		usleep(2000);
	}
	return NULL;
}

START_TEST(test_stress_threads)
{
	pthread_t t[ST_THREADS], lt;
	struct backing_stats st;
	uintptr_t i;

	open_backing(1 * MiB);
	for (i = 0; i < ST_ENTRIES; i++)
		pthread_mutex_init(&st_entries[i].lock, NULL);
	ck_assert_int_eq(pthread_create(&lt, NULL, limit_thread, NULL), 0);
	for (i = 0; i < ST_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, stress_thread,
						(void *)i), 0);
	for (i = 0; i < ST_THREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&st_stop, true);
	pthread_join(lt, NULL);

	ck_assert_uint_eq(st_mismatch, 0);
	ck_assert_uint_eq(st_errors, 0);
	ck_assert_uint_gt(st_written, 1000);
	ck_assert_uint_gt(st_full, 0);	/* the cap was met */
	st = stats();
	ck_assert_uint_eq(st.write_errors + st.read_errors, 0);
	ck_assert_uint_eq(st.invalid_frees + st.punch_errors, 0);
	ck_assert_uint_eq(st.writes, st_written);
	for (i = 0; i < ST_ENTRIES; i++) {
		struct st_entry *e = &st_entries[i];

		if (e->used) {
			check(e->slot, e->len, e->seed);
			backing_free(b, e->slot, e->len);
		}
		pthread_mutex_destroy(&e->lock);
	}
	st = stats();
	ck_assert_uint_eq(st.objects, 0);
	ck_assert_uint_eq(st.used_bytes, 0);
	if (st.punch)
		ck_assert_uint_le(st.file_bytes, 64 * KiB);
}
END_TEST

static Suite *backing_suite(void)
{
	Suite *s = suite_create("backing");
	TCase *tc;

	tc = tcase_create("objects");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip_all_sizes);
	tcase_add_test(tc, test_tail_zeroed_on_disk);
	tcase_add_test(tc, test_free_reuse);
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_limit_zero);
	tcase_add_test(tc, test_set_limit_live);
	suite_add_tcase(s, tc);

	tc = tcase_create("disk");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_write_error);
	suite_add_tcase(s, tc);

	/* parts of their own (check_backing_punch, check_backing_full) */
	tc = ckpart_tcase(s, "punch");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_holes_punched);

	tc = ckpart_tcase(s, "full");
	tcase_add_unchecked_fixture(tc, mnt_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full_filesystem);

	tc = tcase_create("file");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_refuses);
	tcase_add_test(tc, test_open_refuses_symlink);
	tcase_add_test(tc, test_open_refuses_dangling_symlink);
	tcase_add_test(tc, test_open_refuses_symlinked_dir);
	tcase_add_test(tc, test_open_refuses_hard_link);
	tcase_add_test(tc, test_open_replaces_held_file);
	tcase_add_test(tc, test_open_busy);
	tcase_add_test(tc, test_close_removes_created);
	tcase_add_test(tc, test_close_truncates_existing);
	tcase_add_test(tc, test_open_spares_foreign_data);
	tcase_add_test(tc, test_close_spares_replaced);
	tcase_add_test(tc, test_alloc_failure_injection);
	suite_add_tcase(s, tc);

	tc = tcase_create("stress");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_stress_threads);
	suite_add_tcase(s, tc);
	return s;
}

/* NULL if the filesystem of $TMPDIR (where dir_setup() puts the backing
 * file) punches holes, else why not. */
static const char *cannot_punch(void)
{
	static char buf[4096], why[128];
	int fd, err = 0;

	dir_setup();
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf) ||
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      sizeof(buf)) < 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	dir_teardown();
	if (!err)
		return NULL;
	snprintf(why, sizeof(why), "cannot punch holes in $TMPDIR: %s",
		 strerror(err));
	return why;
}

static const char *cannot_run(const char *part)
{
	return !strcmp(part, "punch") ? cannot_punch() : ckpart_cannot_mount();
}

int main(void)
{
	SRunner *sr = srunner_create(backing_suite());
	int ret;

	ret = ckpart_run(sr, CKPART, cannot_run);
	srunner_free(sr);
	return ret;
}
