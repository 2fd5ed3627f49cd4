/*
 * statedir.c - the state directory: its checks, its lock, and the
 * superblock's codec; see statedir.h.
 *
 * The directory. It is created if missing (0700; its parent must exist),
 * opened once without following a link, and checked on that fd: a
 * directory of the daemon's user that nobody else may write to (someone
 * who can plant a file there can feed a successor daemon a superblock of
 * their choosing). Every file in it is opened relative to that fd,
 * without following a link, and checked (privfile.h).
 *
 * The lock. DIR/lock is flock()ed for the daemon's life and holds its pid:
 * a second daemon on the directory refuses before it reads or writes
 * anything else there, and says who holds it. A lock dies with its
 * process, crash included, so a successor never finds a stale one. The
 * file itself stays (removing it would let two daemons lock two files).
 *
 * The superblock. DIR/superblock describes the clients (one record per
 * client uffd) and their regions, with what a successor needs to take
 * them over: the descriptors' numbers in each client's table, the memfds'
 * identities, and each region's page-table file in DIR. It is rewritten
 * whole at every change: "superblock.new" is written, then renamed over
 * "superblock", so a reader (or a successor after a crash) sees either
 * the old or the new one, never a mix. No fsync: the directory is on
 * tmpfs, where a crash of the process loses no write, and a reboot loses
 * the clients anyway.
 *
 * Formats. Every format starts with the same 64-byte prefix (magic,
 * checksum, format, header size, file size, writer's release: struct
 * statedir_prefix), which never changes; what follows is the format's
 * own. The writer writes only the newest format, STATEDIR_FORMAT. The
 * reader checks the prefix (size, magic, checksum), then hands the bytes
 * to the decoder of the file's format: decoders[] keeps one per format
 * ever written (decode_v1() for 0.3.0's format 1, decode_v2() for format
 * 2, which names the backing file), so a superblock of the previous
 * release is still taken over; each decoder fills the same in-memory
 * struct statedir_state. A file of a format
 * newer than the newest decoder is refused, naming its writer ("upgrade
 * or remove DIR"). Validation is complete before anything is used: sizes,
 * magic, checksum, format, then the header (this boot, this page size)
 * and every record (ranges, indices, terminated strings). A refusal
 * changes nothing in the directory.
 */
#include "config.h"

#define XXH_STATIC_LINKING_ONLY	/* XXH3_state_t on the stack */
#include <xxhash.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/common/fullio.h"
#include "lib/common/macros.h"
#include "log.h"
#include "privfile.h"
#include "registry.h"
#include "statedir.h"
#include "uffdctx.h"

#define SB_NAME		"superblock"
#define SB_NEW_NAME	"superblock.new"
#define REST_NAME	"at-rest"
#define REST_NEW_NAME	"at-rest.new"
#define LOCK_NAME	"lock"
#define BOOT_ID_PATH	"/proc/sys/kernel/random/boot_id"

/*
 * struct statedir - an open, locked state directory; loop thread only but
 * for @dirfd
 * @dirfd:     the directory; immutable
 * @lockfd:    DIR/lock, flock()ed while open; immutable
 * @host:      this machine's page size and boot; immutable
 * @epoch:     written in the superblock
 * @backing:   written in the superblock
 * @clients, @regions: statedir_save()'s record arrays, kept between calls
 * @nr_clients_max, @nr_regions_max: their capacity
 * @path:      the directory's path
 */
struct statedir {
	int dirfd;
	int lockfd;
	struct statedir_host host;
	uint64_t epoch;
	struct statedir_backing backing;
	struct statedir_client *clients;
	struct statedir_region *regions;
	uint32_t nr_clients_max;
	uint32_t nr_regions_max;
	char path[];
};

static void set_err(char err[STATEDIR_ERR_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(char err[STATEDIR_ERR_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, STATEDIR_ERR_MAX, fmt, ap);
	va_end(ap);
}

/* Whether @s is NUL-terminated within its @size bytes. */
static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/*****************
 * The directory and its lock
 *****************/

/* The boot id is the 32 hex digits of BOOT_ID_PATH (dashes skipped). */
int statedir_host_get(struct statedir_host *host)
{
	uint8_t *id = host->boot_id;
	char text[64], *p = text;
	unsigned int i, byte;
	ssize_t n;
	int fd;

	host->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	text[n] = '\0';
	for (i = 0; i < STATEDIR_BOOT_ID_LEN; i++) {
		p += *p == '-';
		if (sscanf(p, "%2x", &byte) != 1)
			return -EIO;
		id[i] = (uint8_t)byte;
		p += 2;
	}
	return 0;
}

/*
 * Create @path if missing (0700), open it and check it. Return: the fd,
 * or -errno with @err saying why.
 */
static int dir_open(const char *path, char err[STATEDIR_ERR_MAX])
{
	struct stat sb;
	int fd, ret;

	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		set_err(err, "state directory %s: %s", path,
			ret == -ENOENT ? "its parent directory does not exist"
				       : strerror(-ret));
		return ret;
	}
	fd = privfile_open_dir(path);
	if (fd < 0) {
		set_err(err, "state directory %s: %s", path,
			fd == -ELOOP ? "is a symbolic link (name the real "
				       "directory: links are never followed)"
				     : strerror(-fd));
		return fd;
	}
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		set_err(err, "state directory %s: %s", path, strerror(-ret));
	} else if (sb.st_uid != geteuid()) {
		ret = -EPERM;
		set_err(err, "state directory %s: owned by uid %u, not by "
			"uzswapd's user (uid %u)", path, (unsigned int)sb.st_uid,
			(unsigned int)geteuid());
	} else if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		ret = -EPERM;
		set_err(err, "state directory %s: writable by other users "
			"(mode %04o; make it 0700)", path,
			(unsigned int)(sb.st_mode & 07777));
	} else {
		return fd;
	}
	close(fd);
	return ret;
}

/* The pid a lock holder wrote in @fd, 0 if unknown. */
static long lock_holder(int fd)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

	if (n <= 0)
		return 0;
	text[n] = '\0';
	return strtol(text, NULL, 10);
}

/* Say who holds the lock of @sd. */
static void lock_busy_err(const struct statedir *sd, int fd,
			  char err[STATEDIR_ERR_MAX])
{
	long pid = lock_holder(fd);

	if (pid > 0)
		set_err(err, "state directory %s is in use by uzswapd (pid "
			"%ld)", sd->path, pid);
	else
		set_err(err, "state directory %s is in use by another uzswapd",
			sd->path);
}

/* Take DIR/lock and write our pid in it. Return: 0 or -errno with @err. */
static int lock_take(struct statedir *sd, char err[STATEDIR_ERR_MAX])
{
	char pid[32];
	int fd, ret, n;

	fd = statedir_open_file(sd, LOCK_NAME, O_RDWR | O_CREAT, 0600);
	if (fd < 0) {
		set_err(err, "state directory %s: %s: %s", sd->path, LOCK_NAME,
			strerror(-fd));
		return fd;
	}
	ret = privfile_lock(fd);
	if (ret == -EBUSY) {
		lock_busy_err(sd, fd, err);
		goto out_close;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ret == 0 && ftruncate(fd, 0) < 0)
		ret = -errno;
	if (ret == 0)
		ret = fullio_pwrite(fd, pid, (size_t)n, 0);
	if (ret) {
		set_err(err, "state directory %s: %s: %s", sd->path, LOCK_NAME,
			strerror(-ret));
		goto out_close;
	}
	sd->lockfd = fd;
	return 0;

out_close:
	close(fd);
	return ret;
}

struct statedir *statedir_open(const char *path, char err[STATEDIR_ERR_MAX])
{
	size_t len = strlen(path);
	struct statedir *sd;
	int ret;

	sd = calloc(1, sizeof(*sd) + len + 1);
	if (!sd) {
		set_err(err, "state directory %s: out of memory", path);
		return NULL;
	}
	memcpy(sd->path, path, len + 1);
	sd->epoch = 1;
	ret = statedir_host_get(&sd->host);
	if (ret) {
		set_err(err, "state directory %s: cannot read %s: %s", path,
			BOOT_ID_PATH, strerror(-ret));
		goto out_free;
	}
	ret = dir_open(path, err);
	if (ret < 0)
		goto out_free;
	sd->dirfd = ret;
	ret = lock_take(sd, err);
	if (ret)
		goto out_close_dir;
	return sd;

out_close_dir:
	close(sd->dirfd);
out_free:
	free(sd);
	errno = -ret;
	return NULL;
}

void statedir_close(struct statedir *sd)
{
	if (!sd)
		return;
	close(sd->lockfd);
	close(sd->dirfd);
	free(sd->clients);
	free(sd->regions);
	free(sd);
}

const char *statedir_path(const struct statedir *sd)
{
	return sd->path;
}

int statedir_open_file(struct statedir *sd, const char *name, int flags,
		       mode_t mode)
{
	struct stat sb;
	int fd, ret;

	fd = openat(sd->dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
		    mode);
	if (fd < 0)
		return -errno;
	ret = privfile_check(fd, &sb);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* The name of the page-table file of region @id. */
static void table_name(uint64_t id, char name[STATEDIR_FILE_MAX])
{
	snprintf(name, STATEDIR_FILE_MAX, "region-%llu.pages",
		 (unsigned long long)id);
}

int statedir_table_open(void *ctx, uint64_t id, bool create)
{
	char name[STATEDIR_FILE_MAX];

	table_name(id, name);
	return statedir_open_file(ctx, name, O_RDWR | (create ? O_CREAT |
						       O_TRUNC : 0), 0600);
}

void statedir_table_remove(void *ctx, uint64_t id)
{
	struct statedir *sd = ctx;
	char name[STATEDIR_FILE_MAX];

	table_name(id, name);
	unlinkat(sd->dirfd, name, 0);
}

int statedir_pool_open(struct statedir *sd, const char *name, bool fresh)
{
	return statedir_open_file(sd, name, O_RDWR | O_CREAT |
				  (fresh ? O_TRUNC : 0), 0600);
}

/*****************
 * Decoding
 *****************/

/* What decoders share: what the file must match, its path (for the
 * messages), where to say what is wrong. */
struct decode_ctx {
	const struct statedir_host *host;
	const char *what;
	char *err;
};

/* Refuse the file: "WHAT: why". Return: -EINVAL. */
static int refuse(const struct decode_ctx *dc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int refuse(const struct decode_ctx *dc, const char *fmt, ...)
{
	char why[STATEDIR_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	set_err(dc->err, "%s: %s", dc->what, why);
	return -EINVAL;
}

/* A file name in DIR a record may give: no path, no dot file. */
static bool file_name_ok(const char *name, size_t size)
{
	return terminated(name, size) && name[0] && name[0] != '.' &&
	       !strchr(name, '/');
}

static int decode_client_v1(const struct decode_ctx *dc,
			    const struct statedir_client_v1 *in, uint32_t i,
			    struct statedir_client *out)
{
	if (in->pid <= 0 || in->uffd_fd < 0 || in->mode > 1 ||
	    !terminated(in->comm, sizeof(in->comm)))
		return refuse(dc, "client record %u is out of range", i);
	*out = (struct statedir_client){
		.pid = in->pid, .start_time = in->start_time, .uid = in->uid,
		.uffd_fd = in->uffd_fd, .user_mode_only = in->mode == 1,
		.limit = in->limit,
	};
	memcpy(out->comm, in->comm, sizeof(out->comm));
	return 0;
}

static int decode_region_v1(const struct decode_ctx *dc,
			    const struct statedir_region_v1 *in, uint32_t i,
			    const struct statedir_state *st,
			    struct statedir_region *out)
{
	uint64_t mask = st->page_size - 1;

	if (in->client >= st->nr_clients ||
	    in->pid != st->clients[in->client].pid || in->len == 0 ||
	    ((in->start | in->len) & mask) || in->start + in->len < in->start ||
	    in->memfd_fd < 0 || !terminated(in->name, sizeof(in->name)) ||
	    !file_name_ok(in->pages, sizeof(in->pages)))
		return refuse(dc, "region record %u is out of range", i);
	*out = (struct statedir_region){
		.id = in->id, .client = in->client, .pid = in->pid,
		.start = in->start, .len = in->len, .flags = in->flags,
		.memfd_fd = in->memfd_fd, .memfd_dev = in->memfd_dev,
		.memfd_ino = in->memfd_ino,
	};
	memcpy(out->name, in->name, sizeof(out->name));
	memcpy(out->pages, in->pages, sizeof(out->pages));
	return 0;
}

/* The v1 header @h of a file of @len bytes whose header is @hsize bytes:
 * checked against the file and this host, and copied into @st. */
static int decode_header_v1(const struct decode_ctx *dc,
			    const struct statedir_header_v1 *h, size_t hsize,
			    size_t len, struct statedir_state *st)
{
	const size_t csize = sizeof(struct statedir_client_v1);
	const size_t rsize = sizeof(struct statedir_region_v1);

	if (h->prefix.header_size != hsize || h->reserved ||
	    len != hsize + h->nr_clients * csize + h->nr_regions * rsize)
		return refuse(dc, "its header does not match its size "
			      "(%zu bytes)", len);
	if (memcmp(h->boot_id, dc->host->boot_id, sizeof(h->boot_id)))
		return refuse(dc, "written before a reboot: its clients are "
			      "gone (remove it)");
	if (h->page_size != dc->host->page_size)
		return refuse(dc, "written with pages of %u bytes; this "
			      "machine's are %u", h->page_size,
			      dc->host->page_size);
	st->epoch = h->epoch;
	st->page_size = h->page_size;
	memcpy(st->boot_id, h->boot_id, sizeof(st->boot_id));
	return 0;
}

/* The @nr_clients client and @nr_regions region records at @p, of
 * formats 1 and 2 alike, into @st. */
static int decode_records_v1(const struct decode_ctx *dc, const uint8_t *p,
			     uint32_t nr_clients, uint32_t nr_regions,
			     struct statedir_state *st)
{
	const size_t csize = sizeof(struct statedir_client_v1);
	const size_t rsize = sizeof(struct statedir_region_v1);
	struct statedir_client_v1 c;
	struct statedir_region_v1 r;
	uint32_t i;
	int ret;

	st->clients = calloc(nr_clients ?: 1, sizeof(*st->clients));
	st->regions = calloc(nr_regions ?: 1, sizeof(*st->regions));
	if (!st->clients || !st->regions) {
		set_err(dc->err, "%s: out of memory", dc->what);
		return -ENOMEM;
	}
	st->nr_clients = nr_clients;
	st->nr_regions = nr_regions;
	for (i = 0; i < nr_clients; i++, p += csize) {
		memcpy(&c, p, csize);
		ret = decode_client_v1(dc, &c, i, &st->clients[i]);
		if (ret)
			return ret;
	}
	for (i = 0; i < nr_regions; i++, p += rsize) {
		memcpy(&r, p, rsize);
		ret = decode_region_v1(dc, &r, i, st, &st->regions[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* Format 1 (the prefix is checked): no backing file named. */
static int decode_v1(const struct decode_ctx *dc, const uint8_t *buf,
		     size_t len, struct statedir_state *st)
{
	struct statedir_header_v1 h;
	int ret;

	if (len < sizeof(h))
		return refuse(dc, "truncated: %zu of at least %zu bytes", len,
			      sizeof(h));
	memcpy(&h, buf, sizeof(h));
	ret = decode_header_v1(dc, &h, sizeof(h), len, st);
	if (ret)
		return ret;
	return decode_records_v1(dc, buf + sizeof(h), h.nr_clients,
				 h.nr_regions, st);
}

/* Format 2: format 1 and the backing file's identity. */
static int decode_v2(const struct decode_ctx *dc, const uint8_t *buf,
		     size_t len, struct statedir_state *st)
{
	struct statedir_header_v2 h;
	int ret;

	if (len < sizeof(h))
		return refuse(dc, "truncated: %zu of at least %zu bytes", len,
			      sizeof(h));
	memcpy(&h, buf, sizeof(h));
	ret = decode_header_v1(dc, &h.v1, sizeof(h), len, st);
	if (ret)
		return ret;
	st->backing_known = true;
	st->backing = (struct statedir_backing){ h.backing_dev,
						 h.backing_ino };
	return decode_records_v1(dc, buf + sizeof(h), h.v1.nr_clients,
				 h.v1.nr_regions, st);
}

typedef int decode_fn(const struct decode_ctx *dc, const uint8_t *buf,
		      size_t len, struct statedir_state *st);

/* One decoder per format ever written, indexed by format - 1: never
 * removed, so that a newer uzswapd reads what an older one wrote. */
static decode_fn *const decoders[] = {
	decode_v1,
	decode_v2,
};

_Static_assert(ARRAY_SIZE(decoders) == STATEDIR_FORMAT,
	       "a decoder for every format up to the newest");

/* XXH3-64 of @len bytes at @buf, its checksum field read as zeros. */
static uint64_t checksum(const uint8_t *buf, size_t len)
{
	const size_t off = offsetof(struct statedir_prefix, checksum);
	static const uint64_t zero;
	XXH3_state_t s;

	XXH3_INITSTATE(&s);
	XXH3_64bits_reset(&s);
	XXH3_64bits_update(&s, buf, off);
	XXH3_64bits_update(&s, &zero, sizeof(zero));
	XXH3_64bits_update(&s, buf + off + sizeof(zero),
			   len - off - sizeof(zero));
	return XXH3_64bits_digest(&s);
}

int statedir_decode(const struct statedir_host *host, const char *dir,
		    const void *buf, size_t len, struct statedir_state *st,
		    char err[STATEDIR_ERR_MAX])
{
	char what[STATEDIR_ERR_MAX / 2];
	const struct decode_ctx dc = { host, what, err };
	struct statedir_prefix pre;
	int ret;

	snprintf(what, sizeof(what), "%s/%s", dir, SB_NAME);
	memset(st, 0, sizeof(*st));
	if (len < sizeof(pre))
		return refuse(&dc, "truncated: %zu bytes, not even a header",
			      len);
	memcpy(&pre, buf, sizeof(pre));
	if (memcmp(pre.magic, STATEDIR_MAGIC, sizeof(pre.magic)))
		return refuse(&dc, "wrong magic: not a uzswapd superblock");
	if (pre.file_size > len)
		return refuse(&dc, "truncated: %zu of %llu bytes", len,
			      (unsigned long long)pre.file_size);
	if (pre.file_size < len)
		return refuse(&dc, "%llu bytes written, %zu found",
			      (unsigned long long)pre.file_size, len);
	if (pre.checksum != checksum(buf, len))
		return refuse(&dc, "checksum mismatch: corrupt");
	if (!terminated(pre.release, sizeof(pre.release)) || !pre.format)
		return refuse(&dc, "its header is out of range");
	if (pre.format > STATEDIR_FORMAT)
		return refuse(&dc, "written by uzswapd %s, format %u; this "
			      "uzswapd reads up to %u: upgrade or remove %s",
			      pre.release, pre.format, STATEDIR_FORMAT, dir);
	st->format = pre.format;
	memcpy(st->release, pre.release, sizeof(st->release));
	ret = decoders[pre.format - 1](&dc, buf, len, st);
	if (ret)
		statedir_state_free(st);
	return ret;
}

void statedir_state_free(struct statedir_state *st)
{
	free(st->clients);
	free(st->regions);
	st->clients = NULL;
	st->regions = NULL;
	st->nr_clients = st->nr_regions = 0;
}

/* The whole of file @fd, at most @max bytes, into a new *@buf of *@len
 * bytes. Return: 0; -EFBIG (larger than @max), or another -errno. */
static int read_whole(int fd, uint64_t max, uint8_t **buf, size_t *len)
{
	struct stat sb;
	int ret;

	*buf = NULL;
	if (fstat(fd, &sb) < 0)
		return -errno;
	if ((uint64_t)sb.st_size > max)
		return -EFBIG;
	*len = (size_t)sb.st_size;
	*buf = malloc(*len ?: 1);
	if (!*buf)
		return -ENOMEM;
	ret = fullio_pread(fd, *buf, *len, 0);
	if (ret) {
		free(*buf);
		*buf = NULL;
	}
	return ret;
}

int statedir_load(struct statedir *sd, struct statedir_state *st,
		  char err[STATEDIR_ERR_MAX])
{
	char what[STATEDIR_ERR_MAX / 2];
	uint8_t *buf;
	size_t len;
	int fd, ret;

	snprintf(what, sizeof(what), "%s/%s", sd->path, SB_NAME);
	fd = statedir_open_file(sd, SB_NAME, O_RDONLY | O_NONBLOCK, 0);
	if (fd == -ENOENT)
		return fd;
	if (fd < 0) {
		set_err(err, "%s: %s", what,
			fd == -ELOOP ? "is a symbolic link" :
			fd == -EINVAL ? "is not a regular file" :
			fd == -EPERM ? "is owned by another user" :
			fd == -EMLINK ? "has other hard links" : strerror(-fd));
		return fd == -ELOOP || fd == -EPERM || fd == -EMLINK ? -EINVAL
								     : fd;
	}
	ret = read_whole(fd, STATEDIR_SB_MAX, &buf, &len);
	close(fd);
	if (ret == -EFBIG) {
		set_err(err, "%s: larger than %u MiB: not a superblock", what,
			STATEDIR_SB_MAX >> 20);
		return -EINVAL;
	}
	if (ret) {
		set_err(err, "%s: cannot read: %s", what, strerror(-ret));
		return ret;
	}
	ret = statedir_decode(&sd->host, sd->path, buf, len, st, err);
	free(buf);
	return ret;
}

/*****************
 * Encoding and writing
 *****************/

static void encode_client_v1(const struct statedir_client *in,
			     struct statedir_client_v1 *out)
{
	*out = (struct statedir_client_v1){
		.pid = in->pid, .uid = in->uid, .start_time = in->start_time,
		.uffd_fd = in->uffd_fd, .mode = in->user_mode_only,
		.limit = in->limit,
	};
	snprintf(out->comm, sizeof(out->comm), "%s", in->comm);
}

static void encode_region_v1(const struct statedir_region *in,
			     struct statedir_region_v1 *out)
{
	*out = (struct statedir_region_v1){
		.id = in->id, .client = in->client, .pid = in->pid,
		.start = in->start, .len = in->len, .flags = in->flags,
		.memfd_fd = in->memfd_fd, .memfd_dev = in->memfd_dev,
		.memfd_ino = in->memfd_ino,
	};
	snprintf(out->name, sizeof(out->name), "%s", in->name);
	snprintf(out->pages, sizeof(out->pages), "%s", in->pages);
}

/* The superblock of @sd with these records, in the newest format, into a
 * new buffer of *@len bytes (NULL: no memory). */
static uint8_t *encode(const struct statedir *sd,
		       const struct statedir_client *clients,
		       uint32_t nr_clients,
		       const struct statedir_region *regions,
		       uint32_t nr_regions, size_t *len)
{
	const size_t csize = sizeof(struct statedir_client_v1);
	const size_t rsize = sizeof(struct statedir_region_v1);
	struct statedir_header_v2 h = {
		.v1 = {
			.prefix = {
				.magic = STATEDIR_MAGIC,
				.format = STATEDIR_FORMAT,
				.header_size = sizeof(h),
				.release = PACKAGE_VERSION,
			},
			.page_size = sd->host.page_size,
			.nr_clients = nr_clients, .nr_regions = nr_regions,
			.epoch = sd->epoch,
		},
		.backing_dev = sd->backing.dev,
		.backing_ino = sd->backing.ino,
	};
	struct statedir_client_v1 c;
	struct statedir_region_v1 r;
	uint8_t *buf, *p;
	uint32_t i;

	*len = sizeof(h) + nr_clients * csize + nr_regions * rsize;
	buf = malloc(*len);
	if (!buf)
		return NULL;
	h.v1.prefix.file_size = *len;
	memcpy(h.v1.boot_id, sd->host.boot_id, sizeof(h.v1.boot_id));
	p = buf + sizeof(h);
	for (i = 0; i < nr_clients; i++, p += csize) {
		encode_client_v1(&clients[i], &c);
		memcpy(p, &c, csize);
	}
	for (i = 0; i < nr_regions; i++, p += rsize) {
		encode_region_v1(&regions[i], &r);
		memcpy(p, &r, rsize);
	}
	memcpy(buf, &h, sizeof(h));
	h.v1.prefix.checksum = checksum(buf, *len);
	memcpy(buf + offsetof(struct statedir_prefix, checksum),
	       &h.v1.prefix.checksum, sizeof(h.v1.prefix.checksum));
	return buf;
}

/* Write @len bytes at @buf as file @name: file @new_name in full, then
 * renamed over @name. 0 or -errno (@name then stays as it was). */
static int write_renamed(struct statedir *sd, const char *new_name,
			 const char *name, const void *buf, size_t len)
{
	int fd, ret;

	fd = statedir_open_file(sd, new_name, O_WRONLY | O_CREAT | O_TRUNC,
				0600);
	if (fd < 0)
		return fd;
	ret = fullio_write(fd, buf, len);
	close(fd);
	if (ret == 0 && renameat(sd->dirfd, new_name, sd->dirfd, name) < 0)
		ret = -errno;
	if (ret)
		unlinkat(sd->dirfd, new_name, 0);
	return ret;
}

int statedir_write(struct statedir *sd, const struct statedir_client *clients,
		   uint32_t nr_clients, const struct statedir_region *regions,
		   uint32_t nr_regions)
{
	uint8_t *buf;
	size_t len;
	int ret;

	buf = encode(sd, clients, nr_clients, regions, nr_regions, &len);
	if (!buf)
		return -ENOMEM;
	ret = write_renamed(sd, SB_NEW_NAME, SB_NAME, buf, len);
	free(buf);
	return ret;
}

/*****************
 * The image at rest
 *****************/

/*
 * struct rest_header - the at-rest file's header: the common prefix (its
 * own magic), then the epoch of the daemon that wrote it, which is the
 * epoch of the superblock it goes with
 */
struct rest_header {
	struct statedir_prefix prefix;
	uint64_t epoch;
};
_Static_assert(sizeof(struct rest_header) == STATEDIR_REST_HEADER,
	       "the at-rest header");

int statedir_rest_write(struct statedir *sd, void *buf, size_t len)
{
	struct rest_header h = {
		.prefix = {
			.magic = STATEDIR_REST_MAGIC,
			.format = STATEDIR_REST_FORMAT,
			.header_size = sizeof(h),
			.file_size = len,
			.release = PACKAGE_VERSION,
		},
		.epoch = sd->epoch,
	};

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	h.prefix.checksum = checksum(buf, len);
	memcpy((uint8_t *)buf + offsetof(struct statedir_prefix, checksum),
	       &h.prefix.checksum, sizeof(h.prefix.checksum));
	return write_renamed(sd, REST_NEW_NAME, REST_NAME, buf, len);
}

/* Refuse the at-rest file of @sd: -EINVAL, @err saying why. */
static int rest_refuse(const struct statedir *sd, char err[STATEDIR_ERR_MAX],
		       const char *why)
{
	set_err(err, "%s/%s: %s", sd->path, REST_NAME, why);
	return -EINVAL;
}

/* Whether the @len bytes at @buf are an at-rest file of epoch @epoch. */
static int rest_check(const struct statedir *sd, const uint8_t *buf,
		      size_t len, uint64_t epoch, char err[STATEDIR_ERR_MAX])
{
	struct rest_header h;

	if (len < sizeof(h))
		return rest_refuse(sd, err, "truncated");
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.prefix.magic, STATEDIR_REST_MAGIC,
		   sizeof(h.prefix.magic)))
		return rest_refuse(sd, err, "not an image at rest");
	if (h.prefix.format != STATEDIR_REST_FORMAT ||
	    h.prefix.header_size != sizeof(h))
		return rest_refuse(sd, err, "another format");
	if (h.prefix.file_size != len)
		return rest_refuse(sd, err, "truncated or grown");
	if (h.prefix.checksum != checksum(buf, len))
		return rest_refuse(sd, err, "checksum mismatch");
	if (h.epoch != epoch)
		return rest_refuse(sd, err, "of another daemon than the "
				   "superblock's");
	return 0;
}

int statedir_rest_remove(struct statedir *sd)
{
	return unlinkat(sd->dirfd, REST_NAME, 0) < 0 && errno != ENOENT ?
		       -errno : 0;
}

int statedir_rest_take(struct statedir *sd, uint64_t epoch, void **buf,
		       size_t *len, char err[STATEDIR_ERR_MAX])
{
	uint8_t *p;
	int fd, ret;

	*buf = NULL;
	fd = statedir_open_file(sd, REST_NAME, O_RDONLY | O_NONBLOCK, 0);
	if (fd == -ENOENT)
		return fd;
	/* whatever it holds, it is never read again */
	if (unlinkat(sd->dirfd, REST_NAME, 0) < 0) {
		ret = -errno;
		set_err(err, "%s/%s: cannot remove: %s", sd->path, REST_NAME,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (fd < 0) {
		set_err(err, "%s/%s: %s", sd->path, REST_NAME, strerror(-fd));
		return fd;
	}
	ret = read_whole(fd, STATEDIR_REST_MAX, &p, len);
	close(fd);
	if (ret == -EFBIG)
		return rest_refuse(sd, err, "too large");
	if (ret) {
		set_err(err, "%s/%s: cannot read: %s", sd->path, REST_NAME,
			strerror(-ret));
		return ret;
	}
	ret = rest_check(sd, p, *len, epoch, err);
	if (ret) {
		free(p);
		return ret;
	}
	*len -= sizeof(struct rest_header);
	memmove(p, p + sizeof(struct rest_header), *len);
	*buf = p;
	return 0;
}

void statedir_set_backing(struct statedir *sd,
			  const struct statedir_backing *b)
{
	sd->backing = *b;
}

void statedir_set_epoch(struct statedir *sd, uint64_t epoch)
{
	sd->epoch = epoch;
}

/*****************
 * From the registry
 *****************/

/* Room for @need records of @size bytes in *@arr, which has room for
 * *@max (grown by doubling). Return: 0 or -ENOMEM. */
static int records_grow(void **arr, uint32_t *max, uint32_t need,
			size_t size)
{
	void *p;

	if (need <= *max)
		return 0;
	p = reallocarray(*arr, (size_t)need * 2, size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*max = need * 2;
	return 0;
}

/* Uffds of live connections and regions in @reg. @reg->lock held; takes
 * each slot's lock. */
static void registry_count_locked(struct registry *reg, uint32_t *nr_clients,
				  uint32_t *nr_regions)
{
	struct list_node *pos, *u;

	*nr_clients = *nr_regions = 0;
	list_for_each(pos, &reg->mm_head) {
		struct mm_slot *slot = container_of(pos, struct mm_slot,
						    mm_node);

		list_for_each(u, &slot->uffds)
			(*nr_clients)++;
		pthread_mutex_lock(&slot->lock);
		*nr_regions += slot->nr_regions + slot->nr_leaving;
		pthread_mutex_unlock(&slot->lock);
	}
}

/* The record index of @ctx among @slot's uffds, counted from @first; -1
 * if it is not there. O(uffds of the slot). */
static long uffd_index(struct mm_slot *slot, const struct uffd_ctx *ctx,
		       uint32_t first)
{
	struct list_node *u;
	uint32_t i = first;

	list_for_each(u, &slot->uffds) {
		if (container_of(u, struct uffd_ctx, slot_node) == ctx)
			return i;
		i++;
	}
	return -1;
}

/* The record of @r, a region of @slot whose uffd records start at
 * @first, appended to @sd's regions. */
static void region_record_locked(struct statedir *sd, struct mm_slot *slot,
				 struct region *r, uint32_t first,
				 uint32_t *nr)
{
	long idx = uffd_index(slot, r->ctx, first);

	/* room was counted (records_collect()); a uffd is listed until
	 * the teardown of its last region is over */
	if (idx < 0 || *nr == sd->nr_regions_max)
		return;
	sd->regions[(*nr)++] = (struct statedir_region){
		.id = r->id, .client = (uint32_t)idx, .pid = slot->pid,
		.start = r->start, .len = r->npages << PAGE_SHIFT,
		.flags = r->client.flags, .memfd_fd = r->client.memfd,
		.memfd_dev = r->client.dev, .memfd_ino = r->client.ino,
	};
	memcpy(sd->regions[*nr - 1].name, r->name, sizeof(r->name));
	table_name(r->id, sd->regions[*nr - 1].pages);
}

/* @slot's uffds and regions, those leaving it included (a successor
 * finishes giving them back: see struct mm_slot.leaving). */
static void slot_records_locked(struct statedir *sd, struct mm_slot *slot,
				uint32_t *nc, uint32_t *nr)
{
	uint32_t first = *nc;
	struct list_node *pos;

	list_for_each(pos, &slot->uffds) {
		struct uffd_ctx *ctx = container_of(pos, struct uffd_ctx,
						    slot_node);
		struct statedir_client *c;

		if (*nc == sd->nr_clients_max)
			return;
		c = &sd->clients[(*nc)++];
		*c = (struct statedir_client){
			.pid = slot->pid, .start_time = slot->start_time,
			.uid = slot->uid, .uffd_fd = ctx->client_fd,
			.user_mode_only = ctx->user_mode_only,
			.limit = atomic_load(&slot->limit),
		};
		memcpy(c->comm, slot->comm, sizeof(c->comm));
	}
	list_for_each(pos, &slot->regions)
		region_record_locked(sd, slot,
				     container_of(pos, struct region, node),
				     first, nr);
	list_for_each(pos, &slot->leaving)
		region_record_locked(sd, slot,
				     container_of(pos, struct region,
						  leave_node),
				     first, nr);
}

/*
 * Fill @sd's arrays from @reg. Counts are taken first, room made without
 * the locks, and the records copied under them: registrations happen on
 * the loop thread only (ours), so the counts cannot grow in between.
 */
static int records_collect(struct statedir *sd, struct registry *reg,
			   uint32_t *nc, uint32_t *nr)
{
	struct list_node *pos;
	int ret;

	pthread_mutex_lock(&reg->lock);
	registry_count_locked(reg, nc, nr);
	pthread_mutex_unlock(&reg->lock);
	ret = records_grow((void **)&sd->clients, &sd->nr_clients_max, *nc,
			   sizeof(*sd->clients));
	if (ret == 0)
		ret = records_grow((void **)&sd->regions, &sd->nr_regions_max,
				   *nr, sizeof(*sd->regions));
	if (ret)
		return ret;
	*nc = *nr = 0;
	pthread_mutex_lock(&reg->lock);
	list_for_each(pos, &reg->mm_head) {
		struct mm_slot *slot = container_of(pos, struct mm_slot,
						    mm_node);

		pthread_mutex_lock(&slot->lock);
		slot_records_locked(sd, slot, nc, nr);
		pthread_mutex_unlock(&slot->lock);
	}
	pthread_mutex_unlock(&reg->lock);
	return 0;
}

void statedir_save(struct statedir *sd, struct registry *reg)
{
	uint32_t nc, nr;
	int ret;

	ret = records_collect(sd, reg, &nc, &nr);
	if (ret == 0)
		ret = statedir_write(sd, sd->clients, nc, sd->regions, nr);
	if (ret)
		log_err("main", "cannot write %s/%s: %s; a successor would "
			"not find the current clients", sd->path, SB_NAME,
			strerror(-ret));
}

int statedir_note_region(struct region *r, int memfd_fd, uint32_t flags)
{
	struct stat sb;

	if (fstat(r->memfd, &sb) < 0)
		return -errno;
	r->client = (struct region_client){
		.memfd = memfd_fd, .flags = flags, .dev = sb.st_dev,
		.ino = sb.st_ino,
	};
	return 0;
}
