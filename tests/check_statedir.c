/*
 * check_statedir.c - the state directory (daemon/statedir.c): the
 * superblock's round trip; every kind of bad superblock refused with its
 * message and every file left byte for byte as it was; the lock against a
 * second opener (in another process: flock is per open file description);
 * symlinks, other owners and other writers refused.
 *
 * Files live in a fresh directory under $TMPDIR (default /tmp).
 * Valgrind: CK_FORK=no valgrind --leak-check=full ./check_statedir
 */
#include "config.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/adopt.h"
#include "daemon/conf.h"
#include "daemon/statedir.h"
#include "lib/common/macros.h"
#include "tests/tmpdir.h"

/* The scratch directory of a test and the state directory in it. */
static struct {
	char dir[256], state[300], sb[320];
} t;

static void setup(void)
{
	ck_assert_int_eq(tmpdir_make(t.dir, sizeof(t.dir), "check_statedir"),
			 0);
	snprintf(t.state, sizeof(t.state), "%s/state", t.dir);
	snprintf(t.sb, sizeof(t.sb), "%s/superblock", t.state);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	nftw(t.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The records the round trip writes: two clients of one process, one of
 * another, and a region of each. */
static const struct statedir_client clients[] = {
	{ .pid = 100, .start_time = 12345, .uid = 1000, .uffd_fd = 3,
	  .limit = 64 << 20, .comm = "first" },
	{ .pid = 100, .start_time = 12345, .uid = 1000, .uffd_fd = 9,
	  .user_mode_only = true, .comm = "first" },
	{ .pid = 200, .start_time = 999, .uid = 0, .uffd_fd = 5,
	  .comm = "a) b (c" },
};

static const struct statedir_region regions[] = {
	{ .id = 1, .client = 0, .pid = 100, .start = 0x7f0000000000,
	  .len = 1 << 20, .flags = PROTO_REGION_ADOPTED, .memfd_fd = 4,
	  .memfd_dev = 7, .memfd_ino = 1234, .name = "heap",
	  .pages = "region-1.pages" },
	{ .id = 2, .client = 1, .pid = 100, .start = 0x7f0000200000,
	  .len = 4 << 20, .memfd_fd = 10, .memfd_dev = 7, .memfd_ino = 1235,
	  .name = "", .pages = "region-2.pages" },
	{ .id = 7, .client = 2, .pid = 200, .start = 0x10000,
	  .len = 4096, .memfd_fd = 6, .memfd_dev = 8, .memfd_ino = 99,
	  .name = "cache", .pages = "region-7.pages" },
};

/* The backing file the round trip names. */
static const struct statedir_backing backing = { .dev = 2049, .ino = 77 };

static struct statedir *open_ok(void)
{
	char err[STATEDIR_ERR_MAX] = "";
	struct statedir *sd = statedir_open(t.state, err);

	ck_assert_msg(sd, "statedir_open: %s", err);
	return sd;
}

static void write_records(struct statedir *sd)
{
	ck_assert_int_eq(statedir_write(sd, clients, ARRAY_SIZE(clients),
					regions, ARRAY_SIZE(regions)), 0);
}

/* The bytes of @path into @buf (at most @size); their count. */
static size_t slurp(const char *path, uint8_t *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, size);
	close(fd);
	ck_assert_int_ge(n, 0);
	return (size_t)n;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* The names in the state directory, sorted, as one string. */
static void listing(char *out, size_t size)
{
	struct dirent **names;
	size_t len = 0;
	int n, i;

	n = scandir(t.state, &names, NULL, alphasort);
	ck_assert_int_ge(n, 0);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, size - len, "%s ",
					names[i]->d_name);
		free(names[i]);
	}
	free(names);
}

/* @st holds clients[] and regions[]. */
static void assert_records(const struct statedir_state *st)
{
	unsigned int i;

	ck_assert_uint_eq(st->nr_clients, ARRAY_SIZE(clients));
	ck_assert_uint_eq(st->nr_regions, ARRAY_SIZE(regions));
	for (i = 0; i < st->nr_clients; i++) {
		const struct statedir_client *a = &clients[i];
		const struct statedir_client *b = &st->clients[i];

		ck_assert_int_eq(a->pid, b->pid);
		ck_assert_uint_eq(a->start_time, b->start_time);
		ck_assert_uint_eq(a->uid, b->uid);
		ck_assert_int_eq(a->uffd_fd, b->uffd_fd);
		ck_assert_int_eq(a->user_mode_only, b->user_mode_only);
		ck_assert_uint_eq(a->limit, b->limit);
		ck_assert_str_eq(a->comm, b->comm);
	}
	for (i = 0; i < st->nr_regions; i++) {
		const struct statedir_region *a = &regions[i];
		const struct statedir_region *b = &st->regions[i];

		ck_assert_uint_eq(a->id, b->id);
		ck_assert_uint_eq(a->client, b->client);
		ck_assert_int_eq(a->pid, b->pid);
		ck_assert_uint_eq(a->start, b->start);
		ck_assert_uint_eq(a->len, b->len);
		ck_assert_uint_eq(a->flags, b->flags);
		ck_assert_int_eq(a->memfd_fd, b->memfd_fd);
		ck_assert_uint_eq(a->memfd_dev, b->memfd_dev);
		ck_assert_uint_eq(a->memfd_ino, b->memfd_ino);
		ck_assert_str_eq(a->name, b->name);
		ck_assert_str_eq(a->pages, b->pages);
	}
}

START_TEST(test_round_trip)
{
	struct statedir *sd = open_ok();
	struct statedir_state st;
	char err[STATEDIR_ERR_MAX];

	statedir_set_epoch(sd, 42);
	statedir_set_backing(sd, &backing);
	write_records(sd);
	ck_assert_int_eq(statedir_load(sd, &st, err), 0);
	ck_assert_uint_eq(st.format, STATEDIR_FORMAT);
	ck_assert_str_eq(st.release, PACKAGE_VERSION);
	ck_assert_uint_eq(st.epoch, 42);
	ck_assert(st.backing_known);
	ck_assert_uint_eq(st.backing.dev, backing.dev);
	ck_assert_uint_eq(st.backing.ino, backing.ino);
	ck_assert_uint_eq(st.page_size, (uint32_t)sysconf(_SC_PAGESIZE));
	assert_records(&st);
	statedir_state_free(&st);

	/* an empty one, as a daemon without clients writes */
	ck_assert_int_eq(statedir_write(sd, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(statedir_load(sd, &st, err), 0);
	ck_assert_uint_eq(st.nr_clients + st.nr_regions, 0);
	statedir_state_free(&st);
	statedir_close(sd);
}
END_TEST

START_TEST(test_none_is_enoent)
{
	struct statedir *sd = open_ok();
	struct statedir_state st;
	char err[STATEDIR_ERR_MAX];

	ck_assert_int_eq(statedir_load(sd, &st, err), -ENOENT);
	statedir_close(sd);
}
END_TEST

/* Make the superblock's checksum right again after a patch. */
static void reseal(uint8_t *buf, size_t len)
{
	const size_t off = offsetof(struct statedir_prefix, checksum);
	uint64_t sum;

	memset(buf + off, 0, sizeof(sum));
	sum = XXH3_64bits(buf, len);
	memcpy(buf + off, &sum, sizeof(sum));
}

/* How each bad superblock is made from a good one (@buf, @len bytes). */
enum corruption {
	C_TRUNCATED,
	C_EMPTY,
	C_MAGIC,
	C_CHECKSUM,
	C_NEWER,
	C_BOOT,
	C_PAGE_SIZE,
	C_CLIENT_INDEX,
	C_REGION_LEN,
	C_CLIENT_MODE,
	C_PAGES_NAME,
	C_LONGER,
	NR_CORRUPTIONS
};

/* The message part each refusal must hold. */
static const char *const expect[NR_CORRUPTIONS] = {
	[C_TRUNCATED] = "truncated",
	[C_EMPTY] = "truncated",
	[C_MAGIC] = "wrong magic",
	[C_CHECKSUM] = "checksum mismatch",
	[C_NEWER] = "format 3; this uzswapd reads up to 2: upgrade or remove",
	[C_BOOT] = "written before a reboot",
	[C_PAGE_SIZE] = "written with pages of 8192 bytes",
	[C_CLIENT_INDEX] = "region record 1 is out of range",
	[C_REGION_LEN] = "region record 2 is out of range",
	[C_CLIENT_MODE] = "client record 0 is out of range",
	[C_PAGES_NAME] = "region record 0 is out of range",
	[C_LONGER] = "bytes written",
};

#define HDR	sizeof(struct statedir_header_v2)
#define CREC	sizeof(struct statedir_client_v1)
#define RREC	sizeof(struct statedir_region_v1)

static size_t corrupt(uint8_t *buf, size_t len, enum corruption c)
{
	struct statedir_header_v1 *h = &((struct statedir_header_v2 *)buf)->v1;
	uint8_t *regs = buf + HDR + ARRAY_SIZE(clients) * CREC;
	struct statedir_region_v1 *r;

	switch (c) {
	case C_TRUNCATED:
		return len - 1;
	case C_EMPTY:
		return 0;
	case C_MAGIC:
		buf[0] ^= 0x20;
		return len;
	case C_CHECKSUM:
		buf[len - 1] ^= 1;	/* the last region's file name */
		return len;
	case C_NEWER:
		h->prefix.format = 3;
		snprintf(h->prefix.release, sizeof(h->prefix.release),
			 "9.0.0");
		break;
	case C_BOOT:
		h->boot_id[3] ^= 0xff;
		break;
	case C_PAGE_SIZE:
		h->page_size = 8192;
		break;
	case C_CLIENT_INDEX:
		r = (struct statedir_region_v1 *)(regs + RREC);
		r->client = ARRAY_SIZE(clients);
		break;
	case C_REGION_LEN:
		r = (struct statedir_region_v1 *)(regs + 2 * RREC);
		r->len = 100;
		break;
	case C_CLIENT_MODE:
		((struct statedir_client_v1 *)(buf + HDR))->mode = 2;
		break;
	case C_PAGES_NAME:
		r = (struct statedir_region_v1 *)regs;
		snprintf(r->pages, sizeof(r->pages), "../etc/passwd");
		break;
	case C_LONGER:
		buf[len] = 0;
		return len + 1;
	default:
		break;
	}
	reseal(buf, len);
	return len;
}

/* Each bad superblock is refused with its message, and nothing in the
 * directory changes. */
START_TEST(test_bad_superblock_refused)
{
	static uint8_t good[8192], bad[8192], after[8192];
	char err[STATEDIR_ERR_MAX], before_names[512], after_names[512];
	enum corruption c = (enum corruption)_i;
	struct statedir *sd = open_ok();
	struct statedir_state st;
	size_t len, n;

	write_records(sd);
	len = slurp(t.sb, good, sizeof(good));
	ck_assert_uint_eq(len, HDR + 3 * CREC + 3 * RREC);
	memcpy(bad, good, len);
	n = corrupt(bad, len, c);
	spit(t.sb, bad, n);
	listing(before_names, sizeof(before_names));

	err[0] = '\0';
	ck_assert_int_eq(statedir_load(sd, &st, err), -EINVAL);
	ck_assert_msg(strstr(err, expect[c]), "case %d: %s", c, err);
	ck_assert_msg(strstr(err, t.sb), "the file is not named: %s", err);
	ck_assert_ptr_null(st.clients);

	ck_assert_uint_eq(slurp(t.sb, after, sizeof(after)), n);
	ck_assert_msg(!memcmp(after, bad, n), "the superblock changed");
	listing(after_names, sizeof(after_names));
	ck_assert_str_eq(before_names, after_names);
	statedir_close(sd);
}
END_TEST

/* A superblock of format 1 (uzswapd 0.3.0), made from a format 2 one by
 * taking the backing file's identity out of its header, is read: the
 * same records, no backing file named. */
START_TEST(test_reads_format_1)
{
	static uint8_t v2[8192], v1[8192];
	const size_t extra = HDR - sizeof(struct statedir_header_v1);
	struct statedir_header_v1 h;
	struct statedir *sd = open_ok();
	char err[STATEDIR_ERR_MAX] = "";
	struct statedir_state st;
	size_t len;

	statedir_set_epoch(sd, 7);
	statedir_set_backing(sd, &backing);
	write_records(sd);
	len = slurp(t.sb, v2, sizeof(v2));
	memcpy(&h, v2, sizeof(h));
	h.prefix.format = 1;
	h.prefix.header_size = sizeof(h);
	h.prefix.file_size = len - extra;
	memcpy(v1, &h, sizeof(h));
	memcpy(v1 + sizeof(h), v2 + HDR, len - HDR);
	reseal(v1, len - extra);
	spit(t.sb, v1, len - extra);

	ck_assert_msg(statedir_load(sd, &st, err) == 0, "%s", err);
	ck_assert_uint_eq(st.format, 1);
	ck_assert_uint_eq(st.epoch, 7);
	ck_assert(!st.backing_known);
	assert_records(&st);
	statedir_state_free(&st);
	statedir_close(sd);
}
END_TEST

/* A process that opens the directory while we hold it: its exit code
 * says what it got, its pipe what it was told. */
static void second_opener(int out)
{
	char err[STATEDIR_ERR_MAX] = "";
	struct statedir *sd = statedir_open(t.state, err);

	if (write(out, err, strlen(err) + 1) < 0)
		_exit(3);
	_exit(sd ? 0 : errno == EBUSY ? 1 : 2);
}

START_TEST(test_lock_refuses_second_opener)
{
	char err[STATEDIR_ERR_MAX], want[64];
	struct statedir *sd = open_ok();
	int p[2], status;
	pid_t pid;
	ssize_t n;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		second_opener(p[1]);
	close(p[1]);
	n = read(p[0], err, sizeof(err) - 1);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
		      "second opener: status %#x: %s", status, n > 0 ? err : "");
	snprintf(want, sizeof(want), "is in use by uzswapd (pid %d)",
		 (int)getpid());
	ck_assert_msg(strstr(err, want), "told: %s", err);

	/* once we let go, another may take it */
	statedir_close(sd);
	sd = open_ok();
	statedir_close(sd);
}
END_TEST

START_TEST(test_symlinked_superblock_refused)
{
	char err[STATEDIR_ERR_MAX], target[320];
	static uint8_t good[8192], after[8192];
	struct statedir *sd = open_ok();
	struct statedir_state st;
	struct stat sb;
	size_t len;

	write_records(sd);
	snprintf(target, sizeof(target), "%s/elsewhere", t.dir);
	ck_assert_int_eq(rename(t.sb, target), 0);
	ck_assert_int_eq(symlink(target, t.sb), 0);
	len = slurp(target, good, sizeof(good));

	ck_assert_int_eq(statedir_load(sd, &st, err), -EINVAL);
	ck_assert_msg(strstr(err, "symbolic link"), "%s", err);
	ck_assert_int_eq(lstat(t.sb, &sb), 0);
	ck_assert(S_ISLNK(sb.st_mode));
	ck_assert_uint_eq(slurp(target, after, sizeof(after)), len);
	ck_assert(!memcmp(good, after, len));
	ck_assert_int_eq(statedir_open_file(sd, "superblock", O_RDONLY, 0),
			 -ELOOP);
	statedir_close(sd);
}
END_TEST

/* statedir_open() of @path must fail with @msg in its message. */
static void assert_open_refused(const char *path, const char *msg)
{
	char err[STATEDIR_ERR_MAX] = "";
	struct statedir *sd = statedir_open(path, err);

	if (sd)
		statedir_close(sd);
	ck_assert_msg(!sd, "%s was accepted", path);
	ck_assert_msg(strstr(err, msg) && strstr(err, path), "%s", err);
}

START_TEST(test_symlinked_dir_refused)
{
	char real[300];

	snprintf(real, sizeof(real), "%s/real", t.dir);
	ck_assert_int_eq(mkdir(real, 0700), 0);
	ck_assert_int_eq(symlink(real, t.state), 0);
	assert_open_refused(t.state, "symbolic link");
	ck_assert_int_eq(access(t.sb, F_OK), -1);	/* nothing made */
}
END_TEST

START_TEST(test_foreign_dir_refused)
{
	/* root makes one of another user; others meet root's "/" */
	if (geteuid() == 0) {
		ck_assert_int_eq(mkdir(t.state, 0700), 0);
		ck_assert_int_eq(chown(t.state, 65534, 65534), 0);
		assert_open_refused(t.state, "owned by uid 65534");
	} else {
		assert_open_refused("/", "owned by uid 0");
	}
}
END_TEST

START_TEST(test_writable_dir_refused)
{
	ck_assert_int_eq(mkdir(t.state, 0700), 0);
	ck_assert_int_eq(chmod(t.state, 0777), 0);
	assert_open_refused(t.state, "writable by other users");
	ck_assert_int_eq(chmod(t.state, 0770), 0);
	assert_open_refused(t.state, "writable by other users");
}
END_TEST

START_TEST(test_missing_parent_refused)
{
	char path[320];

	snprintf(path, sizeof(path), "%s/no/state", t.dir);
	assert_open_refused(path, "parent directory does not exist");
}
END_TEST

/* A comm with spaces and parentheses does not shift the fields. */
START_TEST(test_start_time)
{
	uint64_t mine = 0, child = 0;
	int p[2], status;
	char c;
	pid_t pid;

	ck_assert_int_eq(adopt_start_time(getpid(), &mine), 0);
	ck_assert_uint_gt(mine, 0);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[1]);
		prctl(PR_SET_NAME, "x) 1 2 (y");
		if (read(p[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	/* the rename is the child's first step: wait until it shows */
	for (;;) {
		char path[64], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		f = fopen(path, "re");
		ck_assert_ptr_nonnull(f);
		ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
		fclose(f);
		if (!strcmp(comm, "x) 1 2 (y\n"))
			break;
		usleep(1000);
	}
	ck_assert_int_eq(adopt_start_time(pid, &child), 0);
	ck_assert_uint_ge(child, mine);
	close(p[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(adopt_start_time(pid, &child), -ESRCH);
}
END_TEST

/* The configuration from a file holding @text. */
static void conf_from(struct conf *c, const char *text)
{
	struct conf_source src = { .path_given = true };
	char path[320], err[CONF_ERR_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/uzswapd.conf", t.dir);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	src.path = path;
	ck_assert_msg(conf_load(c, &src, err) == 0, "%s", err);
}

/* state-dir defaults to /run/uzswap/state, and a reload that changes it
 * keeps the running one: it is locked and holds the clients. */
START_TEST(test_state_dir_key_needs_restart)
{
	struct conf cur, next;

	conf_from(&cur, "");
	ck_assert_str_eq(cur.state_dir, "/run/uzswap/state");
	conf_free(&cur);
	conf_from(&cur, "[daemon]\nstate-dir = /run/a\n");
	conf_from(&next, "[daemon]\nstate-dir = /run/b\n");
	ck_assert_uint_eq(conf_keep_restart_keys(&next, &cur), 1);
	ck_assert_str_eq(next.state_dir, "/run/a");
	conf_free(&next);
	conf_free(&cur);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("statedir");
	TCase *tc = tcase_create("statedir");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_none_is_enoent);
	tcase_add_loop_test(tc, test_bad_superblock_refused, 0,
			    NR_CORRUPTIONS);
	tcase_add_test(tc, test_reads_format_1);
	tcase_add_test(tc, test_lock_refuses_second_opener);
	tcase_add_test(tc, test_symlinked_superblock_refused);
	tcase_add_test(tc, test_symlinked_dir_refused);
	tcase_add_test(tc, test_foreign_dir_refused);
	tcase_add_test(tc, test_writable_dir_refused);
	tcase_add_test(tc, test_missing_parent_refused);
	tcase_add_test(tc, test_start_time);
	tcase_add_test(tc, test_state_dir_key_needs_restart);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
