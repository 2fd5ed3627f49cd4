/*
 * statedir.h - uzswapd's state directory (--state-dir, default
 * /run/uzswap/state, on tmpfs): what a successor daemon needs to take over
 * the clients of one that crashed or was restarted. One daemon per
 * directory (DIR/lock); a superblock (DIR/superblock) says who the clients
 * and their regions are; the files the regions' page tables live in sit
 * beside it (their names are in the superblock).
 *
 * The superblock's format, its versions and how it is read are described
 * at the top of statedir.c.
 *
 * Private to uzswapd. One struct statedir per daemon, used by the loop
 * thread only (statedir_open_file() from any thread: the dir fd is
 * immutable).
 */
#ifndef UZSWAPD_STATEDIR_H
#define UZSWAPD_STATEDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/proto/proto.h"

#define STATEDIR_ERR_MAX	512
#define STATEDIR_RELEASE_MAX	32	/* PACKAGE_VERSION, NUL included */
#define STATEDIR_COMM_MAX	16	/* a process's comm, NUL included */
#define STATEDIR_FILE_MAX	32	/* a file name in DIR, NUL included */
#define STATEDIR_BOOT_ID_LEN	16
/* The largest superblock read: far above 4096 regions per process of
 * thousands of processes; a bigger file is refused, not read. */
#define STATEDIR_SB_MAX		(64u << 20)

/* The newest format this uzswapd writes and reads; it reads every older
 * one too. */
#define STATEDIR_FORMAT		2

/*
 * On-disk layout (host byte order: the file never leaves its host and
 * boot). Every format starts with struct statedir_prefix, which never
 * changes, so that any release can say who wrote a file and in what
 * format; what follows is the format's own. Sizes are pinned below.
 */
#define STATEDIR_MAGIC		"UZSWAPST"

/*
 * struct statedir_prefix - the first 64 bytes of every format
 * @magic:       STATEDIR_MAGIC, without a NUL
 * @checksum:    XXH3-64 (seed 0) of the whole file, these 8 bytes as zeros
 * @format:      the format version
 * @header_size: bytes before the first record (the format's header)
 * @file_size:   bytes of the whole file
 * @release:     the writer's PACKAGE_VERSION, NUL-terminated
 */
struct statedir_prefix {
	char magic[8];
	uint64_t checksum;
	uint32_t format;
	uint32_t header_size;
	uint64_t file_size;
	char release[STATEDIR_RELEASE_MAX];
};

/*
 * Format 1 (uzswapd 0.3.0): struct statedir_header_v1, then @nr_clients
 * client records, then @nr_regions region records (the fields of struct
 * statedir_client and struct statedir_region, as fixed-size integers and
 * strings).
 * Format 2: struct statedir_header_v2, the v1 header and the identity of
 * the backing file the written-back pages are in, then the same records.
 */
struct statedir_header_v1 {
	struct statedir_prefix prefix;
	uint32_t page_size;
	uint32_t nr_clients;
	uint32_t nr_regions;
	uint32_t reserved;		/* zero */
	uint8_t boot_id[STATEDIR_BOOT_ID_LEN];
	uint64_t epoch;
};

struct statedir_client_v1 {
	int32_t pid;
	uint32_t uid;
	uint64_t start_time;
	int32_t uffd_fd;
	uint32_t mode;			/* 0 full, 1 user-mode only */
	uint64_t limit;
	char comm[STATEDIR_COMM_MAX];
};

struct statedir_region_v1 {
	uint64_t id;
	uint32_t client;
	int32_t pid;
	uint64_t start;
	uint64_t len;
	uint32_t flags;
	int32_t memfd_fd;
	uint64_t memfd_dev;
	uint64_t memfd_ino;
	char name[PROTO_NAME_MAX];
	char pages[STATEDIR_FILE_MAX];
};

/*
 * struct statedir_header_v2 - format 2's header
 * @v1:          format 1's header fields, the same meaning
 * @backing_dev, @backing_ino: the backing file's device and inode (both 0:
 *               none), so that a successor never reads written-back pages
 *               from another file
 */
struct statedir_header_v2 {
	struct statedir_header_v1 v1;
	uint64_t backing_dev;
	uint64_t backing_ino;
};

_Static_assert(sizeof(struct statedir_prefix) == 64, "prefix: 64 bytes");
_Static_assert(sizeof(struct statedir_header_v1) == 104, "v1 header");
_Static_assert(sizeof(struct statedir_header_v2) == 120, "v2 header");
_Static_assert(sizeof(struct statedir_client_v1) == 48, "v1 client");
_Static_assert(sizeof(struct statedir_region_v1) == 152, "v1 region");

struct registry;
struct region;
struct statedir;

/*
 * struct statedir_client - a client uffd of a process: the superblock
 * has one per HELLO (a process with several connections has several,
 * with the same pid)
 * @pid, @start_time: the process, and when it started (field 22 of
 *          /proc/PID/stat), so that a reused pid is never taken for it
 * @uid:    its user
 * @uffd_fd: the uffd's number in the process's descriptor table
 * @user_mode_only: the uffd is UFFD_USER_MODE_ONLY
 * @limit:  its own budget in bytes (0: the daemon's default)
 * @comm:   its command name
 */
struct statedir_client {
	pid_t pid;
	uint64_t start_time;
	uid_t uid;
	int uffd_fd;
	bool user_mode_only;
	uint64_t limit;
	char comm[STATEDIR_COMM_MAX];
};

/*
 * struct statedir_region - a registered region
 * @id:       the daemon's region id
 * @client:   index of its uffd's record in the clients' array
 * @pid:      its owner (the same as its client record's)
 * @start, @len: where it is in the client, in bytes (page multiples)
 * @flags:    REGISTER's flags (PROTO_REGION_*)
 * @memfd_fd: the memfd's number in the client's descriptor table
 * @memfd_dev, @memfd_ino: the memfd's identity
 * @name:     the client's name for it
 * @pages:    the name of its page-table file in the state directory
 */
struct statedir_region {
	uint64_t id;
	uint32_t client;
	pid_t pid;
	uint64_t start;
	uint64_t len;
	uint32_t flags;
	int memfd_fd;
	uint64_t memfd_dev;
	uint64_t memfd_ino;
	char name[PROTO_NAME_MAX];
	char pages[STATEDIR_FILE_MAX];
};

/* A backing file's identity; both 0: there is none. */
struct statedir_backing {
	uint64_t dev;
	uint64_t ino;
};

/*
 * struct statedir_state - what a superblock says
 * @format:    the format it was written in
 * @release:   the uzswapd release that wrote it
 * @epoch:     how many daemons have owned the directory (the writer's
 *             number)
 * @page_size, @boot_id: the writer's (checked against ours when read)
 * @backing_known: the writer named its backing file (format 2 on), in
 *             @backing; format 1 did not, and its file is taken on trust
 * @clients, @nr_clients: the client uffds (owned: statedir_state_free())
 * @regions, @nr_regions: the regions (owned)
 */
struct statedir_state {
	unsigned int format;
	char release[STATEDIR_RELEASE_MAX];
	uint64_t epoch;
	uint32_t page_size;
	uint8_t boot_id[STATEDIR_BOOT_ID_LEN];
	bool backing_known;
	struct statedir_backing backing;
	struct statedir_client *clients;
	uint32_t nr_clients;
	struct statedir_region *regions;
	uint32_t nr_regions;
};

/*
 * statedir_open() - create directory @path if missing (mode 0700; its
 * parent must exist), open it without following a link, check it (a
 * directory of the daemon's user, writable by nobody else) and take its
 * lock (DIR/lock, holding our pid), before anything else in it is read or
 * written. The lock is held until statedir_close() or the process's end.
 * Return: the state directory, or NULL with errno set and @err saying why
 * ("state directory DIR: ..."; EBUSY: "state directory DIR is in use by
 * uzswapd (pid N)").
 */
struct statedir *statedir_open(const char *path, char err[STATEDIR_ERR_MAX]);

/* Release the lock and free @sd (NULL: nothing). Leaves every file. */
void statedir_close(struct statedir *sd);

/* The directory's path. */
const char *statedir_path(const struct statedir *sd);

/*
 * statedir_open_file() - open file @name of the directory, relative to its
 * fd, never through a symlink; @flags and @mode as for openat() (O_NOFOLLOW
 * and O_CLOEXEC are added). The file must be a regular file of the
 * daemon's user with one name (privfile_check()).
 * Return: the fd, or -errno (-ELOOP: a symlink). Any thread.
 */
int statedir_open_file(struct statedir *sd, const char *name, int flags,
		       mode_t mode);

/*
 * statedir_load() - read and validate the superblock into @st (free it
 * with statedir_state_free()). Nothing in the directory changes.
 * Return: 0; -ENOENT if there is none; -EINVAL (invalid: @err names the
 * file and what is wrong), or another -errno (it cannot be read; @err
 * says so).
 */
int statedir_load(struct statedir *sd, struct statedir_state *st,
		  char err[STATEDIR_ERR_MAX]);

/* What a superblock must match: this machine's page size and boot. */
struct statedir_host {
	uint32_t page_size;
	uint8_t boot_id[STATEDIR_BOOT_ID_LEN];
};

/* This machine's (the boot id from /proc/sys/kernel/random/boot_id).
 * Return: 0 or -errno. */
int statedir_host_get(struct statedir_host *host);

/*
 * statedir_decode() - validate the @len superblock bytes at @buf, read
 * from directory @dir (for the messages), against @host, into @st (free
 * it with statedir_state_free()). Pure: reads nothing else.
 * Return: 0, or -EINVAL (or -ENOMEM) with @err naming the file and what
 * is wrong.
 */
int statedir_decode(const struct statedir_host *host, const char *dir,
		    const void *buf, size_t len, struct statedir_state *st,
		    char err[STATEDIR_ERR_MAX]);

void statedir_state_free(struct statedir_state *st);

/* The epoch written from now on: the number of this daemon among those
 * that have owned the directory. */
void statedir_set_epoch(struct statedir *sd, uint64_t epoch);

/* The backing file named from now on (its identity; zeros: none). */
void statedir_set_backing(struct statedir *sd,
			  const struct statedir_backing *b);

/*
 * statedir_write() - write a superblock of the newest format describing
 * @clients and @regions: "superblock.new" in full, then renamed over
 * "superblock" (atomic: a reader sees the old one or the new one). No
 * fsync: on tmpfs a process crash loses no page-cache write.
 * Return: 0 or -errno (the old superblock then stays).
 */
int statedir_write(struct statedir *sd, const struct statedir_client *clients,
		   uint32_t nr_clients, const struct statedir_region *regions,
		   uint32_t nr_regions);

/*
 * statedir_save() - write the superblock from @reg: one client record per
 * uffd of a live connection (struct mm_slot.uffds), one region record per
 * region in a slot. Called on the loop thread whenever clients or regions
 * change (HELLO, REGISTER, UNREGISTER, a connection's end); a failure is
 * logged (the old superblock stays). Cost: O(clients + regions) under
 * @reg's and each slot's lock (no system call held under them), then one
 * write and one rename. Loop thread.
 */
void statedir_save(struct statedir *sd, struct registry *reg);

/*
 * The page tables of the regions, a file each ("region-ID.pages"), as
 * struct region_files wants them (@ctx: the struct statedir): opened
 * (made empty when @create) and removed. Any thread.
 */
int statedir_table_open(void *ctx, uint64_t id, bool create);
void statedir_table_remove(void *ctx, uint64_t id);

/*
 * The image at rest (DIR/at-rest): what a daemon that stopped with nothing
 * in flight (a handover) knew beside its files, so that its successor
 * need not rebuild it page by page. Its header is struct
 * statedir_prefix (magic STATEDIR_REST_MAGIC), then the writer's epoch;
 * the caller's bytes follow. It is worth something only beside the
 * superblock of the same epoch, and only until anything changes: the
 * successor removes it before it reads it.
 * statedir_rest_write(): @buf's first STATEDIR_REST_HEADER bytes are the
 * header's (filled here), the rest the caller's; written in full then
 * renamed into place. 0 or -errno.
 * statedir_rest_take(): remove the file and give its caller's bytes in a
 * new *@buf of *@len bytes. Return: 0; -ENOENT (none); -EINVAL (not one,
 * damaged, or of another epoch than @epoch) or another -errno, @err
 * saying why.
 */
#define STATEDIR_REST_MAGIC	"UZSWAPRS"
#define STATEDIR_REST_FORMAT	1
#define STATEDIR_REST_HEADER	72
/* far above the slot map of the largest backing file, refused beyond */
#define STATEDIR_REST_MAX	(1ull << 30)
int statedir_rest_write(struct statedir *sd, void *buf, size_t len);
int statedir_rest_take(struct statedir *sd, uint64_t epoch, void **buf,
		       size_t *len, char err[STATEDIR_ERR_MAX]);
/* No image at rest is left (a daemon starting afresh). 0 or -errno. */
int statedir_rest_remove(struct statedir *sd);

/* The pool's file @name (STATEDIR_POOL_PAGES, STATEDIR_POOL_FRAMES,
 * STATEDIR_POOL_OWNERS), made if missing (a directory of a release before
 * owner words has no pool.owners: it is made empty, and recovery fills
 * it), emptied if @fresh. Return: the fd or -errno. */
#define STATEDIR_POOL_PAGES	"pool.pages"
#define STATEDIR_POOL_FRAMES	"pool.frames"
#define STATEDIR_POOL_OWNERS	"pool.owners"
int statedir_pool_open(struct statedir *sd, const char *name, bool fresh);

/* Note how the client names @r (its memfd's number @memfd_fd in the
 * client's table, REGISTER's @flags) and the memfd's identity, before @r
 * joins its slot. Return: 0 or -errno (fstat failed). */
int statedir_note_region(struct region *r, int memfd_fd, uint32_t flags);

#endif /* UZSWAPD_STATEDIR_H */
