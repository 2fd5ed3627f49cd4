/*
 * check_statedir.c - integration tests of the state directory: real
 * uzswapd daemons, each on the private state directory the harness gives
 * it (daemon_harness.h), and real clients (uzclient pager).
 *
 *   lock        a second daemon on a directory in use exits with
 *               UZSWAPD_EXIT_STATE, says who holds it, and changes
 *               nothing there; the first goes on serving
 *   superblock  read with the daemon's own decoder: it lists each
 *               client's uffd and regions with the client's descriptor
 *               numbers and the memfds' (dev, ino); UNREGISTER, a
 *               disconnect and a client's death take them out
 *   restart     a daemon after a SIGKILLed one finds its state, sets it
 *               aside and counts the next epoch; an invalid superblock
 *               stops the next start with its reason, untouched; so does
 *               a backing file other than the one the pages were written
 *               back to (none, here), and the right one then takes over;
 *               a superblock of format 1 (uzswapd 0.3.0) is taken over
 *               with every kind of stored page, and so is a pool without
 *               its owners file (a release before owner words), whose
 *               objects are then written back
 *
 * One test case: CK_RUN_CASE=superblock ./check_statedir. Logs kept:
 * UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#define XXH_INLINE_ALL		/* the checksum of a rewritten superblock */
#include <xxhash.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/adopt.h"
#include "daemon/statedir.h"
#include "daemon/uzswapd.h"
#include "daemon_harness.h"
#include "lib/client/uzswap.h"
#include "pager.h"

#define MIB		(1024ull * 1024)
#define RUN_MS		60000	/* a daemon that must refuse to start */
#define SB_MAX		(1u << 20)

static struct dh_daemon dmn;

/*****************
 * Helpers
 *****************/

/* The bytes of @d's superblock into @buf (SB_MAX): their count. */
static size_t superblock_bytes(const struct dh_daemon *d, uint8_t *buf)
{
	char path[PATH_MAX + 16];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/superblock", d->state);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	DH_ASSERT_ON(d, fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, SB_MAX);
	close(fd);
	DH_ASSERT_ON(d, n >= 0, "%s: %s", path, strerror(errno));
	return (size_t)n;
}

/* @d's superblock, decoded by the daemon's own code (must be valid). */
static void superblock_read(const struct dh_daemon *d,
			    struct statedir_state *st)
{
	static uint8_t buf[SB_MAX];
	char err[STATEDIR_ERR_MAX];
	struct statedir_host host;
	size_t len = superblock_bytes(d, buf);

	DH_ASSERT_ON(d, statedir_host_get(&host) == 0, "boot id: %s",
		     strerror(errno));
	DH_ASSERT_ON(d, statedir_decode(&host, d->state, buf, len, st,
					err) == 0, "%s", err);
}

/*
 * Poll @d's superblock until it lists @clients client uffds and @regions
 * regions (a client's exit is seen asynchronously), within DH_SETTLE_MS;
 * leaves it in @st.
 */
static void superblock_wait(const struct dh_daemon *d, uint32_t clients,
			    uint32_t regions, struct statedir_state *st)
{
	long long deadline = dh_deadline(DH_SETTLE_MS);

	for (;;) {
		superblock_read(d, st);
		if (st->nr_clients == clients && st->nr_regions == regions)
			return;
		DH_ASSERT_ON(d, dh_now_ms() < deadline, "superblock: %u "
			     "clients, %u regions; expected %u, %u",
			     st->nr_clients, st->nr_regions, clients,
			     regions);
		statedir_state_free(st);
		dh_sleep_ms(10);
	}
}

/* The target of descriptor @fd of @pid and its identity. */
static void client_fd(pid_t pid, int fd, char *target, size_t size,
		      struct stat *sb)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, target, size - 1);
	DH_ASSERT(n > 0, "%s: %s", path, strerror(errno));
	target[n] = '\0';
	DH_ASSERT(stat(path, sb) == 0, "%s: %s", path, strerror(errno));
}

/* Whether /proc/@pid/maps has a mapping starting at @start. */
static bool maps_at(pid_t pid, uint64_t start)
{
	char path[64], line[512];
	unsigned long long a;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%llx-", &a) == 1 && a == start;
	fclose(f);
	return found;
}

/* Client record @c is pager @p's uffd. */
static void assert_client(const struct statedir_client *c, pid_t p)
{
	char target[256];
	uint64_t start;
	struct stat sb;

	DH_ASSERT_EQ(c->pid, p);
	DH_ASSERT(adopt_start_time(p, &start) == 0, "start time");
	DH_ASSERT_EQ(c->start_time, start);
	DH_ASSERT_EQ(c->uid, getuid());
	client_fd(p, c->uffd_fd, target, sizeof(target), &sb);
	DH_ASSERT(!strcmp(target, "anon_inode:[userfaultfd]"),
		  "client fd %d is %s, not its uffd", c->uffd_fd, target);
	DH_ASSERT(!strcmp(c->comm, "uzclient"), "comm %s", c->comm);
}

/* Region record @r is a region of pager @p of @mib MiB named @name. */
static void assert_region(const struct statedir_region *r, pid_t p,
			  unsigned int mib, const char *name)
{
	char target[256], pages[STATEDIR_FILE_MAX];
	struct stat sb;

	DH_ASSERT_EQ(r->pid, p);
	DH_ASSERT_EQ(r->client, 0);
	DH_ASSERT_EQ(r->len, mib * MIB);
	DH_ASSERT(!strcmp(r->name, name), "region name %s", r->name);
	client_fd(p, r->memfd_fd, target, sizeof(target), &sb);
	DH_ASSERT(!strncmp(target, "/memfd:", 7), "client fd %d is %s, not "
		  "a memfd", r->memfd_fd, target);
	DH_ASSERT_EQ(sb.st_dev, r->memfd_dev);
	DH_ASSERT_EQ(sb.st_ino, r->memfd_ino);
	DH_ASSERT(maps_at(p, r->start), "no mapping at %#llx",
		  (unsigned long long)r->start);
	snprintf(pages, sizeof(pages), "region-%llu.pages",
		 (unsigned long long)r->id);
	DH_ASSERT(!strcmp(r->pages, pages), "page table file %s", r->pages);
}

/* The region record named @name in @st (the slot lists them by address). */
static const struct statedir_region *region_named(
	const struct statedir_state *st, const char *name)
{
	uint32_t i;

	for (i = 0; i < st->nr_regions; i++)
		if (!strcmp(st->regions[i].name, name))
			return &st->regions[i];
	DH_ASSERT(false, "no region %s in the superblock", name);
	return NULL;
}

/*
 * Run another uzswapd on @d's state directory (and its own socket,
 * "@d->dir/second.sock"), expecting it to refuse to start. Return: its
 * wait status; its stderr in @err.
 */
static int run_second(const struct dh_daemon *d, char *err, size_t size)
{
	char sock[PATH_MAX + 16];
	const char *argv[] = { UZSWAPD_PATH, "--socket", sock, "--no-mlock",
			       "--backing-file", "none", "--config", d->conf,
			       "--metrics", "off", "--state-dir", d->state,
			       NULL };
	int status;

	snprintf(sock, sizeof(sock), "%s/second.sock", d->dir);
	status = dh_run(argv, NULL, NULL, NULL, 0, err, size, RUN_MS);
	DH_ASSERT_ON(d, access(sock, F_OK) < 0, "the refused daemon left "
		     "its socket");
	return status;
}

static bool exited_with(int status, int code)
{
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}

/*****************
 * lock
 *****************/

START_TEST(test_second_daemon_refused)
{
	static uint8_t before[SB_MAX], after[SB_MAX];
	char err[4096], want[PATH_MAX + 64];
	size_t len;
	int status;

	dh_up(&dmn, NULL);
	len = superblock_bytes(&dmn, before);
	status = run_second(&dmn, err, sizeof(err));
	DH_ASSERT(exited_with(status, UZSWAPD_EXIT_STATE), "second uzswapd: "
		  "%s, expected exit %d; stderr: %s", dh_status_str(status),
		  UZSWAPD_EXIT_STATE, err);
	snprintf(want, sizeof(want), "state directory %s is in use by uzswapd "
		 "(pid %d)", dmn.state, (int)dmn.pid);
	DH_ASSERT(strstr(err, want), "stderr: %s", err);
	DH_ASSERT_EQ(superblock_bytes(&dmn, after), len);
	DH_ASSERT(!memcmp(before, after, len), "the superblock changed");
	DH_ASSERT(dh_sync(&dmn) == 0, "the first daemon stopped serving");
	dh_down(&dmn, NULL);
}
END_TEST

/*****************
 * superblock
 *****************/

START_TEST(test_superblock_lists_regions)
{
	struct statedir_state st;
	struct dh_client c;

	dh_up(&dmn, NULL);
	superblock_wait(&dmn, 0, 0, &st);
	statedir_state_free(&st);

	pager_start(&dmn, &c);
	superblock_read(&dmn, &st);
	DH_ASSERT_EQ(st.nr_clients, 1);
	DH_ASSERT_EQ(st.nr_regions, 0);
	assert_client(&st.clients[0], c.pid);
	statedir_state_free(&st);

	pager_alloc(&c, "text", 1);
	pager_alloc(&c, "none", 2);
	superblock_read(&dmn, &st);
	DH_ASSERT_EQ(st.nr_clients, 1);
	DH_ASSERT_EQ(st.nr_regions, 2);
	assert_client(&st.clients[0], c.pid);
	assert_region(region_named(&st, "text"), c.pid, 1, "text");
	assert_region(region_named(&st, "none"), c.pid, 2, "none");
	DH_ASSERT(st.regions[0].memfd_ino != st.regions[1].memfd_ino,
		  "two regions, one memfd");
	statedir_state_free(&st);

	/* UNREGISTER: gone once answered */
	pager_ok(&c, "free 0");
	superblock_read(&dmn, &st);
	DH_ASSERT_EQ(st.nr_regions, 1);
	assert_region(region_named(&st, "none"), c.pid, 2, "none");
	statedir_state_free(&st);

	pager_quit(&c);
	superblock_wait(&dmn, 0, 0, &st);
	statedir_state_free(&st);
	dh_down(&dmn, NULL);
}
END_TEST

START_TEST(test_superblock_forgets_dead_client)
{
	struct statedir_state st;
	struct dh_client c;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 1);
	superblock_read(&dmn, &st);
	DH_ASSERT_EQ(st.nr_regions, 1);
	statedir_state_free(&st);

	dh_client_kill(&c);
	superblock_wait(&dmn, 0, 0, &st);
	statedir_state_free(&st);
	dh_down(&dmn, NULL);
}
END_TEST

/* The regions a drain released are not the daemon's to hand on: the
 * superblock forgets them once the drain is done. */
START_TEST(test_superblock_forgets_drained)
{
	struct uzswap_drain dr;
	struct statedir_state st;
	struct dh_client c;
	uzswap_t *admin;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 1);
	pager_alloc(&c, "none", 2);
	superblock_read(&dmn, &st);
	DH_ASSERT_EQ(st.nr_regions, 2);
	statedir_state_free(&st);

	admin = uzswap_admin_connect(dmn.sock);
	DH_ASSERT(admin, "admin connection: %s", strerror(errno));
	DH_ASSERT_EQ(uzswap_admin_drain(admin, UZSWAP_DRAIN_FORCE, &dr), 0);
	uzswap_disconnect(admin);
	DH_ASSERT_EQ(dr.regions, 2);
	superblock_read(&dmn, &st);
	DH_ASSERT_EQ(st.nr_clients, 1);
	DH_ASSERT_EQ(st.nr_regions, 0);
	statedir_state_free(&st);

	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

/*****************
 * restart
 *****************/

/* A daemon SIGKILLed with a client that died too: the next one logs what
 * it found, leaves the dead client (its table file goes) and counts on. */
START_TEST(test_restart_leaves_dead_client)
{
	char table[PATH_MAX + 32], line[512];
	struct statedir_state st;
	struct dh_client c;
	int ret;

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 1);
	snprintf(table, sizeof(table), "%s/region-1.pages", dmn.state);
	DH_ASSERT(access(table, F_OK) == 0, "no %s", table);
	dh_kill(&dmn);
	dh_client_kill(&c);

	ret = dh_restart(&dmn, NULL);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "found state of 1 clients, 1 regions "
			      "from uzswapd " PACKAGE_VERSION " (epoch 1)",
			      line, sizeof(line)), "nothing found logged");
	DH_ASSERT(dh_log_find(&dmn, "took over 0 clients, 0 regions", line,
			      sizeof(line)), "no takeover logged");
	DH_ASSERT(strstr(line, "1 clients and 1 regions left"), "%s", line);
	DH_ASSERT(access(table, F_OK) < 0 && errno == ENOENT,
		  "%s is still there", table);
	superblock_read(&dmn, &st);
	DH_ASSERT_EQ(st.epoch, 2);
	DH_ASSERT_EQ(st.nr_clients, 0);
	statedir_state_free(&st);
	dh_down(&dmn, NULL);
}
END_TEST

/* An invalid superblock stops the start (exit UZSWAPD_EXIT_STATE), with
 * its reason; nothing in the directory changes. */
START_TEST(test_invalid_superblock_stops_start)
{
	static uint8_t bad[SB_MAX], after[SB_MAX];
	char path[PATH_MAX + 16], err[4096];
	size_t len;
	int status;
	FILE *f;

	dh_up(&dmn, NULL);
	dh_stop_ok(&dmn, SIGTERM, NULL);
	len = superblock_bytes(&dmn, bad);
	bad[len - 1] ^= 1;
	snprintf(path, sizeof(path), "%s/superblock", dmn.state);
	f = fopen(path, "we");
	DH_ASSERT(f && fwrite(bad, 1, len, f) == len && fclose(f) == 0,
		  "rewrite %s", path);

	status = run_second(&dmn, err, sizeof(err));
	DH_ASSERT(exited_with(status, UZSWAPD_EXIT_STATE), "uzswapd on a "
		  "corrupt superblock: %s; stderr: %s", dh_status_str(status),
		  err);
	DH_ASSERT(strstr(err, "superblock: checksum mismatch"), "stderr: %s",
		  err);
	DH_ASSERT(strstr(err, path), "the file is not named: %s", err);
	DH_ASSERT_EQ(superblock_bytes(&dmn, after), len);
	DH_ASSERT(!memcmp(bad, after, len), "the superblock changed");
	dh_down(&dmn, NULL);
}
END_TEST

/* Options that make a client's pages go to the backing file. */
static const char *const wb_args[] = {
	"--pool-limit", "6M", "--backing-limit", "256M", NULL,
};

/* A client with every kind of stored page, written back ones among them,
 * under a 4 MiB budget. */
static void client_with_every_kind(struct dh_client *c)
{
	struct proto_status_reply s;
	struct pstats ps;

	pager_start_every_kind(&dmn, c, &ps);
	DH_ASSERT_EQ(dh_status(&dmn, &s), 0);
	DH_ASSERT(s.written_back_pages > 0 && s.raw_pages > 0 &&
		  s.same_pages > 0, "not every kind stored");
}

/* A handover to a daemon whose backing file is another one (none): it
 * refuses to start (its written-back pages would be read from the wrong
 * file), touching neither the superblock nor the backing file; started
 * with the right one, the next daemon takes over every page. */
START_TEST(test_other_backing_refused)
{
	static uint8_t before[SB_MAX], after[SB_MAX];
	char err[4096], path[PATH_MAX + 16];
	struct dh_client c;
	struct stat sb0, sb1;
	size_t len;
	int status, ret;

	dh_up(&dmn, wb_args);
	client_with_every_kind(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);
	len = superblock_bytes(&dmn, before);
	snprintf(path, sizeof(path), "%s/backing", dmn.dir);
	DH_ASSERT(stat(path, &sb0) == 0 && sb0.st_blocks > 0,
		  "the backing file %s is empty or gone", path);

	status = run_second(&dmn, err, sizeof(err));
	DH_ASSERT(exited_with(status, UZSWAPD_EXIT_STATE), "uzswapd without "
		  "the backing file: %s; stderr: %s", dh_status_str(status),
		  err);
	DH_ASSERT(strstr(err, "superblock: its clients' written-back pages "
			 "are in another backing file"), "stderr: %s", err);
	DH_ASSERT_EQ(superblock_bytes(&dmn, after), len);
	DH_ASSERT(!memcmp(before, after, len), "the superblock changed");
	DH_ASSERT(stat(path, &sb1) == 0 && sb1.st_ino == sb0.st_ino &&
		  sb1.st_size == sb0.st_size && sb1.st_blocks == sb0.st_blocks,
		  "the backing file changed");

	ret = dh_restart(&dmn, wb_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 1 clients, 3 regions", NULL,
			      0), "no takeover in the log");
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

/* @d's superblock rewritten as format 1 (uzswapd 0.3.0) would have
 * written it: format 2 less the backing file's identity in its header. */
static void rewrite_as_format_1(const struct dh_daemon *d)
{
	static uint8_t v2[SB_MAX], v1[SB_MAX];
	const size_t off = offsetof(struct statedir_prefix, checksum);
	const size_t h1 = sizeof(struct statedir_header_v1);
	const size_t h2 = sizeof(struct statedir_header_v2);
	struct statedir_header_v1 h;
	char path[PATH_MAX + 16];
	size_t len = superblock_bytes(d, v2), len1;
	uint64_t sum = 0;
	FILE *f;

	DH_ASSERT(len >= h2, "superblock of %zu bytes", len);
	len1 = len - (h2 - h1);
	memcpy(&h, v2, h1);
	DH_ASSERT_EQ(h.prefix.format, 2);
	h.prefix.format = 1;
	h.prefix.header_size = h1;
	h.prefix.file_size = len1;
	memcpy(v1, &h, h1);
	memcpy(v1 + h1, v2 + h2, len - h2);
	memcpy(v1 + off, &sum, sizeof(sum));
	sum = XXH3_64bits(v1, len1);
	memcpy(v1 + off, &sum, sizeof(sum));
	snprintf(path, sizeof(path), "%s/superblock", d->state);
	f = fopen(path, "we");
	DH_ASSERT(f && fwrite(v1, 1, len1, f) == len1 && fclose(f) == 0,
		  "rewrite %s", path);
}

/* The previous format: a daemon SIGKILLed, its superblock as 0.3.0 wrote
 * it; the next daemon takes every page over. */
START_TEST(test_format_1_taken_over)
{
	struct dh_client c;
	char line[512];
	int ret;

	dh_up(&dmn, wb_args);
	client_with_every_kind(&c);
	dh_kill(&dmn);
	rewrite_as_format_1(&dmn);
	ret = dh_restart(&dmn, wb_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 1 clients, 3 regions", line,
			      sizeof(line)), "no takeover in the log");
	DH_ASSERT(strstr(line, " 0 lost"), "%s", line);
	pager_ok(&c, "verify all");
	pager_ok(&c, "rewrite 1");
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

/* The bytes of file @name of @d's state directory into @buf (SB_MAX):
 * their count, or -1 if there is none. */
static ssize_t state_file_read(const struct dh_daemon *d, const char *name,
			       uint8_t *buf)
{
	char path[PATH_MAX + 32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", d->state, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return -1;
	DH_ASSERT_ON(d, fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, SB_MAX);
	close(fd);
	DH_ASSERT_ON(d, n >= 0 && n < SB_MAX, "%s: %zd bytes", path, n);
	return n;
}

/* Write @len bytes at @buf as file @name of @d's state directory. */
static void state_file_write(const struct dh_daemon *d, const char *name,
			     const uint8_t *buf, size_t len)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", d->state, name);
	f = fopen(path, "we");
	DH_ASSERT_ON(d, f && fwrite(buf, 1, len, f) == len && fclose(f) == 0,
		     "rewrite %s", path);
}

/* A handover, the image it left at rest replaced by @image (@len bytes),
 * the successor started: it refuses the image with @why, recovers page by
 * page, removes the file, and every page reads back. */
static void restart_on_image(struct dh_client *c, const uint8_t *image,
			     size_t len, const char *why)
{
	static uint8_t left[SB_MAX];
	char line[512];
	int ret;

	dh_stop_ok(&dmn, SIGTERM, NULL);
	DH_ASSERT(state_file_read(&dmn, "at-rest", left) > 0,
		  "the handover left no image at rest");
	state_file_write(&dmn, "at-rest", image, len);
	ret = dh_restart(&dmn, wb_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, why, line, sizeof(line)),
		  "the image was not refused for '%s'", why);
	DH_ASSERT(strstr(line, "at-rest") && strstr(line, "recovering page "
							  "by page"), "%s",
		  line);
	DH_ASSERT(dh_log_find(&dmn, "recovered page by page", line,
			      sizeof(line)) && strstr(line, " 0 lost"),
		  "no takeover page by page without loss");
	DH_ASSERT(state_file_read(&dmn, "at-rest", left) < 0,
		  "the refused image is still there");
	pager_ok(c, "verify all");
}

/* An image at rest that is damaged, or that another handover left (its
 * epoch is not the superblock's), is refused with its reason: the
 * successor recovers page by page and loses nothing. A daemon that finds
 * no superblock removes an image left. */
START_TEST(test_image_at_rest_refused)
{
	static uint8_t first[SB_MAX], bad[SB_MAX];
	char sb[PATH_MAX + 16];
	struct dh_client c;
	ssize_t len;
	int ret;

	dh_up(&dmn, wb_args);
	client_with_every_kind(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);
	len = state_file_read(&dmn, "at-rest", first);
	DH_ASSERT(len > 0, "the handover left no image at rest");
	ret = dh_restart(&dmn, wb_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	pager_ok(&c, "rewrite 1");

	restart_on_image(&c, first, (size_t)len,
			 "of another daemon than the superblock's");
	memcpy(bad, first, (size_t)len);
	bad[len - 1] ^= 1;
	restart_on_image(&c, bad, (size_t)len, "checksum mismatch");
	restart_on_image(&c, first, (size_t)len / 2, "truncated or grown");
	pager_ok(&c, "rewrite 1");
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_stop_ok(&dmn, SIGTERM, NULL);

	/* an image beside no superblock goes before anything is made */
	snprintf(sb, sizeof(sb), "%s/superblock", dmn.state);
	DH_ASSERT(unlink(sb) == 0, "%s: %s", sb, strerror(errno));
	DH_ASSERT(state_file_read(&dmn, "at-rest", bad) > 0, "no image");
	ret = dh_restart(&dmn, wb_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(state_file_read(&dmn, "at-rest", bad) < 0,
		  "a daemon starting afresh left an image at rest");
	dh_down(&dmn, NULL);
}
END_TEST

/* The pool of a release before owner words: a daemon SIGKILLed, its
 * pool.owners removed; the next daemon makes the file, takes every page
 * over, and its reclaim from the bottom writes objects back (a rewrite
 * fills the pool again). That recovery makes each word right is
 * check_store's test_recovery_heals_owner_words. */
START_TEST(test_pool_without_owners_taken_over)
{
	struct proto_status_reply s;
	char path[PATH_MAX + 16], line[512];
	struct dh_client c;
	struct pstats ps;
	int ret;

	dh_up(&dmn, wb_args);
	client_with_every_kind(&c);
	dh_kill(&dmn);
	snprintf(path, sizeof(path), "%s/" STATEDIR_POOL_OWNERS, dmn.state);
	DH_ASSERT(unlink(path) == 0, "%s: %s", path, strerror(errno));
	ret = dh_restart(&dmn, wb_args);
	DH_ASSERT(ret == 0, "restart: %s", strerror(-ret));
	DH_ASSERT(dh_log_find(&dmn, "took over 1 clients, 3 regions", line,
			      sizeof(line)), "no takeover in the log");
	DH_ASSERT(strstr(line, " 0 lost"), "%s", line);
	DH_ASSERT(access(path, F_OK) == 0, "%s not made again", path);
	pager_ok(&c, "rewrite 1");
	pager_wait_resident(&c, 5 * MIB, &ps);
	DH_ASSERT_EQ(dh_status(&dmn, &s), 0);
	DH_ASSERT(s.writebacks > 0, "nothing written back after the "
		  "takeover");
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

static Suite *statedir_suite(void)
{
	Suite *s = suite_create("statedir");
	TCase *tc;

	tc = tcase_create("lock");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_second_daemon_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("superblock");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_superblock_lists_regions);
	tcase_add_test(tc, test_superblock_forgets_dead_client);
	tcase_add_test(tc, test_superblock_forgets_drained);
	suite_add_tcase(s, tc);

	tc = tcase_create("restart");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_restart_leaves_dead_client);
	tcase_add_test(tc, test_invalid_superblock_stops_start);
	tcase_add_test(tc, test_other_backing_refused);
	tcase_add_test(tc, test_format_1_taken_over);
	tcase_add_test(tc, test_image_at_rest_refused);
	tcase_add_test(tc, test_pool_without_owners_taken_over);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dh_main("statedir", statedir_suite());
}
