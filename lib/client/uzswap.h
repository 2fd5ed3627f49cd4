/*
 * uzswap.h - libuzswap, the client library of uzswapd, the user-space
 * compressed swap daemon.
 *
 * A program links libuzswap and keeps (part of) its memory in managed
 * regions. uzswapd holds every client process inside a resident-memory
 * budget: it compresses the least recently used pages of the managed
 * regions into a pool in its own memory and brings them back,
 * transparently, when the program touches them again. The program sees
 * ordinary memory; a touch of an evicted page costs a page fault served by
 * the daemon (tens of microseconds) instead of a disk read.
 *
 * Building
 *
 *	cc -o prog prog.c $(pkg-config --cflags --libs uzswap)
 *
 * and in the source:
 *
 *	#include <uzswap.h>
 *
 *	uzswap_t *c = uzswap_connect(NULL);
 *	if (!c) {
 *		fprintf(stderr, "uzswap: %s\n", uzswap_strerror(errno));
 *		exit(1);
 *	}
 *	char *buf = uzswap_alloc(c, 1 << 30, "cache");
 *	...
 *	uzswap_free(c, buf);
 *	uzswap_disconnect(c);
 *
 * Errors
 *
 * One convention everywhere: functions returning int return 0 on success
 * or a negative errno value (-ETIMEDOUT, -EINVAL, ...); functions returning
 * a pointer return NULL and set errno. uzswap_strerror() turns either form
 * into a sentence that says what to do about it. Every request to the
 * daemon waits for its answer at most 5 seconds (set UZSWAP_TIMEOUT_MS in
 * the environment to change it) and fails with ETIMEDOUT after that: no
 * call blocks forever on an unresponsive daemon. (Requests on one
 * connection take turns, so a call may first wait for other threads'
 * requests, each bounded the same way.) A request that timed out leaves
 * the connection usable.
 *
 * Ownership
 *
 * A uzswap_t is one connection to the daemon and owns every region created
 * through it: uzswap_disconnect() unregisters and unmaps them all, then
 * frees the connection. A region belongs to the library from
 * uzswap_alloc() or uzswap_adopt() until uzswap_free() or
 * uzswap_disconnect(): do not munmap(), mremap(), mprotect() or madvise()
 * it yourself, and do not pass it to free(3).
 *
 * Threads
 *
 * Every call is safe from any thread, on the same connection or on
 * different ones: a connection serializes its requests internally. The
 * managed memory itself is ordinary memory and follows the program's own
 * synchronization. Several connections in one process share the process's
 * budget.
 *
 * Managed regions
 *
 * A region is a memfd mapped MAP_SHARED into the process, not anonymous
 * memory. This is what lets the daemon read and drop pages without any
 * help from the program's threads. For the program it means:
 * - the pages count as shared memory (Shmem in /proc/meminfo, RssShmem in
 *   /proc/PID/status), and the region shows in /proc/PID/maps as
 *   "/memfd:uzswap:NAME (deleted)";
 * - the region is not inherited by fork() (MADV_DONTFORK): the child
 *   does not have it and must not touch it; unless it was made with
 *   UZSWAP_ALLOC_INHERIT (see "fork()");
 * - transparent huge pages are off in the region (MADV_NOHUGEPAGE);
 * - write the region only through this mapping: a page read back from
 *   the daemon is mapped write-protected and keeps its compressed copy
 *   until its first write, so a write that bypasses the mapping (to the
 *   memfd reached through /proc/self/fd, or a second mapping of it) can
 *   be lost when the page is evicted again;
 * - a drain (uzswapctl drain, uzswap_admin_drain()) puts every evicted
 *   page back into the memfd: the program goes on with plain memory, and
 *   uzswap_free() of such a region still unmaps it. A daemon that stops
 *   (SIGTERM, systemctl stop or restart, an upgrade) or crashes loses
 *   nothing and gives nothing back: the daemon started again on its state
 *   directory takes the program over, and a touch of an evicted page
 *   waits meanwhile (it never reads wrong data); the library reconnects
 *   by itself (calls wait for the new daemon within their timeout);
 * - if the daemon could only open a "user-mode-only" userfaultfd (a
 *   warning says so at connect), the kernel cannot fault an evicted page
 *   in on a system call's behalf: read(fd, region, n) and friends fail
 *   with EFAULT on such a page. Touch the pages from user space first, or
 *   give the user access to /dev/userfaultfd (the uzswap group);
 * - debuggers that read memory through /proc/PID/mem (gdb) get EIO for
 *   pages not in memory at that moment; process_vm_readv() and ordinary
 *   system calls fault them in as usual.
 *
 * fork()
 *
 * A connection belongs to the process that made it. In a child created by
 * fork() every call on an inherited connection fails with -ECHILD (NULL and
 * errno ECHILD for the pointer-returning ones), the child's copy of the
 * connection's descriptors is closed, and uzswap_disconnect() only frees
 * the child's memory. A child that wants managed memory calls
 * uzswap_connect() itself.
 *
 * Unless the connection holds regions made with UZSWAP_ALLOC_INHERIT: then
 * fork() gives the child a private copy of each, at the same address, as
 * the kernel gives it the rest of the memory: the parent's writes after
 * the fork are not the child's and the other way round. The copy is made
 * by the daemon during fork() (pages it holds are shared by reference,
 * resident ones stored for the child: fork() takes longer the more of the
 * region is resident, not the bigger it is), and the child is a client of
 * its own, under the budget the parent set with uzswap_set_limit(). In
 * the child the connection keeps working (it is the child's now) and holds
 * only the inherited regions; the others are the parent's. A child that
 * cannot get its copies (the daemon unreachable or restarting during the
 * fork) writes one line to stderr and exits at once with status
 * UZSWAP_FORK_EXIT: it never runs on memory that is not its own. A
 * thread's write racing the fork() reaches the child or not, page by
 * page. vfork() and posix_spawn() copy nothing and need nothing.
 *
 * Versions
 *
 * The library speaks to daemons of other releases: it negotiates the
 * protocol at connect and fails with EPROTONOSUPPORT if there is no common
 * version. The ABI only grows: new functions get new symbol versions and
 * struct uzswap_stats keeps its size.
 */
#ifndef UZSWAP_H
#define UZSWAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UZSWAP_VERSION_MAJOR	0
#define UZSWAP_VERSION_MINOR	3

#define UZSWAP_EXTERN __attribute__((visibility("default")))

/* The daemon's socket when neither the argument nor $UZSWAP_SOCKET names one. */
#define UZSWAP_DEFAULT_SOCKET	"/run/uzswap/uzswapd.sock"

/* A connection to uzswapd; opaque. */
typedef struct uzswap uzswap_t;

/* Flags of uzswap_alloc_flags(). */
#define UZSWAP_ALLOC_INHERIT	0x1u	/* fork() gives the child a private
					   copy (see "fork()") */

/* Exit status of a fork()'s child that could not get its copies. */
#define UZSWAP_FORK_EXIT	121

/* Advice for uzswap_advise(). */
#define UZSWAP_ADVISE_COLD	1	/* not needed soon: evict first */
#define UZSWAP_ADVISE_WILLNEED	2	/* needed soon: bring back now
					   (what fits under the budget) */

/*
 * Counters of the calling process (all its connections), from
 * uzswap_stats(). New counters take the place of @reserved, so the size of
 * the struct never changes.
 */
struct uzswap_stats {
	uint64_t resident_bytes;	/* managed bytes in memory now */
	uint64_t limit_bytes;		/* the budget; 0 = unlimited */
	uint64_t registered_bytes;	/* size of all managed regions */
	uint64_t stored_pages;		/* pages held by the daemon */
	uint64_t compressed_bytes;	/* what they take there */
	uint64_t faults;		/* faults the daemon served */
	uint64_t evictions;		/* pages it evicted */
	uint64_t regions;		/* managed regions */
	uint64_t reserved[8];		/* zero */
};

/*
 * uzswap_connect() - connect to uzswapd
 * @socket_path: the daemon's control socket; NULL means $UZSWAP_SOCKET if
 *               set, else UZSWAP_DEFAULT_SOCKET
 *
 * Also opens the process's userfaultfd and hands it to the daemon. Prints
 * one warning to stderr per process ("libuzswap: ...") if only a
 * user-mode-only userfaultfd could be opened (see "Managed regions").
 *
 * Return: the connection, or NULL with errno set: ENOENT or ECONNREFUSED
 * (the daemon is not running, or the path is wrong), EACCES (not in the
 * uzswap group), ETIMEDOUT, EPROTONOSUPPORT (daemon from an incompatible
 * release), EPERM (no userfaultfd allowed), ENOMEM.
 */
UZSWAP_EXTERN uzswap_t *uzswap_connect(const char *socket_path);

/*
 * uzswap_disconnect() - unregister and unmap every region of @c, close the
 * connection and free @c. Pointers into the regions are invalid afterwards.
 * @c may be NULL.
 */
UZSWAP_EXTERN void uzswap_disconnect(uzswap_t *c);

/*
 * uzswap_alloc() - a new managed region
 * @len:  bytes, rounded up to the page size; 0 is EINVAL
 * @name: shown in /proc/PID/maps and by uzswapctl; NULL is "anon"; cut at
 *        63 bytes
 *
 * Return: the page-aligned, zero-filled region, or NULL with errno set.
 * Release it with uzswap_free().
 */
UZSWAP_EXTERN void *uzswap_alloc(uzswap_t *c, size_t len, const char *name);

/*
 * uzswap_alloc_flags() - uzswap_alloc() with @flags: 0 or
 * UZSWAP_ALLOC_INHERIT. Return: as uzswap_alloc(); EOPNOTSUPP if the
 * daemon is too old for @flags (uzswap_daemon_version() protocol < 6);
 * EAGAIN for an inherited region while another thread forks (try
 * again: it is not waited for, so that an allocator may call this with
 * its locks held). It allocates nothing with malloc().
 */
UZSWAP_EXTERN void *uzswap_alloc_flags(uzswap_t *c, size_t len,
				       const char *name, unsigned int flags);

/*
 * uzswap_adopt() - make existing memory managed, in place
 * @addr: page-aligned start of the range
 * @len:  bytes, rounded up to the page size
 * @name: as for uzswap_alloc()
 *
 * The range must be private anonymous read-write memory (mmap(MAP_PRIVATE
 * | MAP_ANONYMOUS), not the heap of brk(), the stack, a file or another
 * region); else EINVAL. Its contents are moved into a new region mapped at
 * the same address, so pointers into it stay valid; all-zero pages take no
 * memory afterwards. Other threads must not write to the range while it is
 * being adopted: such writes can be lost. madvise() and mlock() settings
 * of the range are not kept.
 *
 * After success the range is a region like one from uzswap_alloc():
 * uzswap_free() and uzswap_disconnect() unmap it. On failure the range is
 * left as private anonymous memory with the same contents (or, if there
 * is no memory for that copy, as a shared mapping with the same
 * contents).
 *
 * Return: @addr, or NULL with errno set.
 */
UZSWAP_EXTERN void *uzswap_adopt(uzswap_t *c, void *addr, size_t len,
				 const char *name);

/*
 * uzswap_free() - unregister and unmap a region
 * @addr: the address uzswap_alloc() or uzswap_adopt() returned
 *
 * Return: 0 (also for a region a drain released: it is unmapped as any
 * other); -EINVAL if @addr is not a region of @c, -ECHILD (nothing done
 * then). Any other error (-ETIMEDOUT, -ECONNRESET, ...) says that the
 * daemon did not confirm; the region is unmapped nonetheless.
 */
UZSWAP_EXTERN int uzswap_free(uzswap_t *c, void *addr);

/*
 * uzswap_set_limit() - set the resident budget of this process
 * @resident_bytes: managed bytes allowed in memory; 0 = the daemon's
 *                  default
 *
 * Return: 0 or -errno.
 */
UZSWAP_EXTERN int uzswap_set_limit(uzswap_t *c, uint64_t resident_bytes);

/*
 * uzswap_advise() - tell the daemon how a range will be used
 * @addr:   page-aligned, inside one region of @c
 * @len:    bytes, rounded up to the page size; the range must not leave
 *          the region
 * @advice: UZSWAP_ADVISE_COLD or UZSWAP_ADVISE_WILLNEED
 *
 * A hint: the contents never change. Return: 0 or -errno; -EINVAL for a
 * bad argument.
 */
UZSWAP_EXTERN int uzswap_advise(uzswap_t *c, void *addr, size_t len,
				int advice);

/*
 * uzswap_discard() - drop the contents of a range, as madvise(MADV_DONTNEED)
 * drops private anonymous memory (which it does not do for a managed
 * region, shared memory): the range reads zeros afterwards, and the
 * memory and the daemon's stored copies of its pages are freed
 * @addr, @len: as for uzswap_advise()
 * Return: 0 or -errno; -EINVAL for a bad range; -EOPNOTSUPP from a daemon
 * too old (protocol < 6). After a failure the contents are undefined.
 */
UZSWAP_EXTERN int uzswap_discard(uzswap_t *c, void *addr, size_t len);

/*
 * uzswap_stats() - the counters of this process
 * Return: 0 and *@st filled, or -errno.
 */
UZSWAP_EXTERN int uzswap_stats(uzswap_t *c, struct uzswap_stats *st);

/*
 * uzswap_strerror() - describe an error code
 * @err: an errno value, negative or positive
 *
 * Return: a constant string, saying what to do for the errors users meet.
 * Safe from any thread; never NULL.
 */
UZSWAP_EXTERN const char *uzswap_strerror(int err);

/*
 * Administration
 *
 * The calls below steer and watch the daemon as a whole; uzswapctl is
 * built on them. The daemon allows them to root, to its own user and to
 * its admin-group (uzswapd.conf(5)), judged from the connecting process's
 * credentials; anyone else gets -EPERM. uzswap_daemon_version() is open to
 * all. They work on any connection; uzswap_admin_connect() makes one that
 * opens no userfaultfd and cannot hold regions.
 */

/* The compressor of new pages, in struct uzswap_status. */
#define UZSWAP_COMPRESSOR_LZ4	0
#define UZSWAP_COMPRESSOR_ZSTD	1

/* Where the pool writes back, in struct uzswap_status. */
#define UZSWAP_BACKING_NONE	0
#define UZSWAP_BACKING_FILE	1	/* a local file */
#define UZSWAP_BACKING_NBD	2	/* an NBD export */

/* The daemon's totals, from uzswap_status(). New counters are appended:
 * a program built against an older header passes its smaller size and
 * gets the fields it knows. */
struct uzswap_status {
	uint64_t clients;		/* client processes */
	uint64_t registered_bytes;	/* size of all managed regions */
	uint64_t resident_bytes;	/* managed bytes in memory */
	uint64_t resident_limit;	/* all clients' budget; 0 = none */
	uint64_t default_limit;		/* per-client default; 0 = none */
	uint64_t stored_pages;		/* pages held in memory: compressed,
					 * raw and same-filled */
	uint64_t same_pages;		/* ... kept as a fill word */
	uint64_t raw_pages;		/* ... kept uncompressed */
	uint64_t written_back_pages;	/* pages in the backing file */
	uint64_t compressed_bytes;	/* bytes of the pool's objects */
	uint64_t pool_bytes;		/* memory the pool takes */
	uint64_t pool_limit;		/* 0 = none */
	uint64_t pool_full;		/* 1 while the pool refuses pages */
	uint64_t backing_bytes;		/* used in the backing file */
	uint64_t backing_limit;		/* its cap; 0 = no backing file */
	uint64_t faults;		/* faults served since start */
	uint64_t fault_rate_milli;	/* faults/s over 10 s, x1000 */
	uint64_t evictions;		/* pages evicted since start */
	uint64_t loads;			/* pages brought back since start */
	uint64_t read_ahead;		/* ... of them ahead of use */
	uint64_t store_failures;	/* pages the pool could not take */
	uint64_t writebacks;		/* pages written back since start */
	uint64_t writeback_failures;	/* objects the file did not take */
	uint64_t uptime_sec;
	uint32_t compressor;		/* UZSWAP_COMPRESSOR_* */
	uint32_t zstd_level;
	/* From here: sent by daemons of protocol 3 or later, 0 from older
	 * ones (uzswap_daemon_version() tells the protocol). */
	uint64_t compressed_pages;	/* compressed in the pool */
	uint64_t backing_file_bytes;	/* disk the backing file takes */
	uint64_t fault_zero_pages;	/* first touches, zero-filled */
	uint64_t fault_loads;		/* loaded by their fault */
	uint64_t fault_wakes;		/* faults found resolved: woken */
	uint64_t fault_wp;		/* write-protect faults resolved */
	uint64_t fault_retries;		/* faults retried: page busy */
	uint64_t eviction_runs;		/* runs of up to 64 pages */
	uint64_t eviction_store_full;	/* ... cut short: store full */
	uint64_t lru_second_chances;	/* used pages kept another trip */
	uint64_t stores;		/* pages stored since start */
	uint64_t pool_full_events;	/* times the pool hit its cap */
	uint64_t backing_read_errors;	/* failed backing-file reads */
	uint64_t backing_write_errors;	/* writes failed by I/O errors */
	uint64_t fault_poisoned;	/* touches of lost pages: SIGBUS */
	/* From here: protocol 5 or later, 0 from older daemons. */
	uint64_t dedup;			/* 1: equal pages share a copy */
	/* From here: filled by uzswap_status_size() only. */
	uint64_t dedup_pages_shared;	/* objects 2+ pages name */
	uint64_t dedup_pages_sharing;	/* pages beyond each one's first */
	uint64_t dedup_bytes_saved;	/* pool bytes their copies would
					 * take */
	uint64_t dedup_merged;		/* pages stored by sharing, so far */
	uint64_t dedup_collisions;	/* hash found, content differed */
	uint64_t dedup_chains;		/* objects past max-page-sharing */
	uint64_t dedup_dups;		/* ... their copies */
	uint64_t dedup_index_bytes;	/* memory of the index */
	uint64_t compacted_pages;	/* pool pages compaction freed */
	uint64_t migrated_objects;	/* objects it moved */
	uint64_t compact_runs;		/* background compactions */
	/* From here: protocol 7 or later, 0 from older daemons. */
	uint64_t backing_backend;	/* UZSWAP_BACKING_* */
	uint64_t backing_up;		/* 1: it takes writes now */
	uint64_t backing_read_bytes;	/* read from it, so far */
	uint64_t backing_write_bytes;	/* written to it, so far */
	uint64_t backing_released_bytes; /* punched or trimmed, so far */
	uint64_t backing_checksum_errors; /* an export's objects that did
					   * not verify (never served) */
	uint64_t backing_read_waits;	/* reads put off: export away */
	uint64_t backing_read_timeouts;	/* ... past backing-timeout */
	uint64_t backing_connects;	/* connections to the export */
	uint64_t backing_disconnects;	/* ... lost */
	uint64_t backing_export_bytes;	/* the export's size; 0: file */
	uint64_t backing_read_ns;	/* time in reads */
	uint64_t backing_reads_timed;	/* ... of so many reads */
	uint64_t backing_write_ns;	/* time in writes */
	uint64_t backing_writes_timed;	/* ... of so many writes */
};

/* One client process, from uzswap_client() and uzswap_clients(). New
 * counters take the place of @reserved. */
struct uzswap_client {
	int32_t pid;
	uint32_t uid;
	char comm[16];			/* its command name */
	uint32_t regions;
	uint32_t reserved0;
	uint64_t registered_bytes;
	uint64_t resident_bytes;
	uint64_t limit_bytes;		/* the budget in force; 0 = none */
	uint64_t own_limit_bytes;	/* its own; 0 = the default */
	uint64_t stored_pages;		/* held by the daemon, all kinds */
	uint64_t pool_pages;		/* ... of them compressed in the pool */
	uint64_t compressed_bytes;	/* what those take in the pool */
	uint64_t faults;
	uint64_t evictions;
	/* From here: sent by daemons of protocol 4 or later, 0 from older
	 * ones. */
	uint64_t direct_evictions;	/* evicted by its own faults to make
					 * room under its budget */
	uint64_t budget_waits;		/* faults put off for room */
	uint64_t over_budget_pages;	/* brought in past its budget:
					 * nothing could make room */
	uint64_t reserved[5];		/* zero */
};

/* Targets of uzswap_admin_set_limit() besides a pid. */
#define UZSWAP_LIMIT_DEFAULT	(-1)	/* clients without their own */
#define UZSWAP_LIMIT_GLOBAL	(-2)	/* all clients together */

/*
 * uzswap_admin_connect() - connect for administration only
 * Like uzswap_connect() but opens no userfaultfd: uzswap_alloc() and
 * friends fail on it. It negotiates the protocol version too (a daemon
 * too old to negotiate for admins is spoken to in version 1). Release
 * with uzswap_disconnect().
 * Return: the connection, or NULL with errno set.
 */
UZSWAP_EXTERN uzswap_t *uzswap_admin_connect(const char *socket_path);

/*
 * uzswap_status() - the daemon's totals, every field of *@st (a field the
 * daemon does not send is 0). It is uzswap_status_size() with this
 * header's sizeof(*st); a program built against a header whose struct
 * was smaller calls the function of that name, which fills the first
 * release's 328 bytes (up to @dedup).
 * uzswap_status_size() - the same into the first @size bytes of *@st;
 * fields past @size are not written.
 * Return: 0; -EINVAL if @size is smaller than the first release's struct;
 * -errno.
 */
UZSWAP_EXTERN int uzswap_status_size(uzswap_t *c, struct uzswap_status *st,
				     size_t size);
UZSWAP_EXTERN int uzswap_status(uzswap_t *c, struct uzswap_status *st);
#define uzswap_status(c, st) uzswap_status_size((c), (st), sizeof(*(st)))

/*
 * uzswap_client() - one client process
 * Return: 0; -ESRCH if @pid is no client of the daemon; -errno.
 */
UZSWAP_EXTERN int uzswap_client(uzswap_t *c, pid_t pid,
				struct uzswap_client *cl);

/*
 * uzswap_clients() - every client process, in pid order
 * @list: set to an array of *@n entries (NULL if none); free() it
 * Return: 0 or -errno.
 */
UZSWAP_EXTERN int uzswap_clients(uzswap_t *c, struct uzswap_client **list,
				 size_t *n);

/*
 * uzswap_admin_set_limit() - set a budget
 * @pid:   a client process, UZSWAP_LIMIT_DEFAULT or UZSWAP_LIMIT_GLOBAL
 * @bytes: resident bytes; 0 removes it (a client then follows the
 *         default); else at least 1 MiB
 * Until the next reload or restart: the configuration file is not
 * changed. Return: 0; -ESRCH for an unknown pid; -EINVAL; -errno.
 */
UZSWAP_EXTERN int uzswap_admin_set_limit(uzswap_t *c, pid_t pid,
					 uint64_t bytes);

/*
 * uzswap_reclaim() - evict pages now, whatever the budgets
 * @pid:   a client process, or 0 for every client
 * @bytes: how much to evict; 0 for every resident page
 * @evicted: if not NULL, set to the bytes evicted
 * Waits until the daemon is done (at most UZSWAP_RECLAIM_TIMEOUT_MS).
 * Return: 0; -ESRCH for an unknown pid; -ENOSPC when the pool and the
 * backing file take nothing more; -errno.
 */
#define UZSWAP_RECLAIM_TIMEOUT_MS (10 * 60 * 1000)
UZSWAP_EXTERN int uzswap_reclaim(uzswap_t *c, pid_t pid, uint64_t bytes,
				 uint64_t *evicted);

/*
 * uzswap_compact() - compact the compressed pool now: the objects of its
 * sparsest pages move into fuller ones until no more pages can be freed
 * @pages: if not NULL, set to the pool pages freed
 * @freed: if not NULL, set to the pool bytes given back
 * Waits until the daemon is done (at most UZSWAP_RECLAIM_TIMEOUT_MS).
 * Return: 0 or -errno.
 */
UZSWAP_EXTERN int uzswap_compact(uzswap_t *c, uint64_t *pages,
				 uint64_t *freed);

/*
 * uzswap_reload() - make the daemon read its configuration again
 * @why: if @len, the daemon's explanation when it refuses (a bad file:
 *       "FILE:LINE: ..."; the old configuration then stays in force)
 * Return: 0 or -errno (-EINVAL for a bad configuration).
 */
UZSWAP_EXTERN int uzswap_reload(uzswap_t *c, char *why, size_t len);

/* uzswap_admin_drain()'s @flags. */
#define UZSWAP_DRAIN_FORCE	0x1u	/* even if it does not fit in memory */

/* What uzswap_admin_drain() did. */
struct uzswap_drain {
	uint64_t bytes;			/* put back into the clients' memory */
	uint64_t pages;			/* the same, in pages */
	uint64_t regions;		/* released: no longer managed */
	uint64_t clients;		/* processes they belonged to */
	uint64_t regions_kept;		/* not released: a page could not be
					 * restored (see the daemon's log) */
	uint64_t pages_kept;		/* still stored in those */
	uint64_t regions_left;		/* unregistered by their client, or
					 * whose client exited, meanwhile */
	uint64_t reserved[8];		/* zero */
	char why[256];			/* the daemon's reason of a refusal,
					 * "" if none */
};

/*
 * uzswap_admin_drain() - empty uzswap, as swapoff empties a swap device:
 * every stored page (compressed, same-filled, kept raw, written back) is
 * put back into its client's memory, and every region stops being
 * managed: its client goes on with plain shared memory, the daemon no
 * longer involved. The daemon keeps running and keeps its clients'
 * connections; they may register new regions afterwards, and
 * uzswap_free() and uzswap_disconnect() of a released region work as
 * before.
 * @flags:  UZSWAP_DRAIN_FORCE to drain even if the stored pages need more
 *          memory than MemAvailable; 0 refuses then
 * @result: filled in (may be NULL); on a refusal, @result->why says why
 *          ("drain needs 3.2 GiB of memory, 1.1 GiB available; --force
 *          to drain anyway")
 * Waits until the daemon is done (at most UZSWAP_DRAIN_TIMEOUT_MS; the
 * drain goes on if the call gives up, and stops if the connection is
 * closed). A region holding a page that could not be read back (its
 * backing file failed) is not released and keeps the page stored: it
 * stays managed, and @result counts it.
 * Return: 0; -ENOMEM (it does not fit); -EBUSY (a drain runs already);
 * -EOPNOTSUPP (a uzswapd too old to drain); -errno.
 */
#define UZSWAP_DRAIN_TIMEOUT_MS (60 * 60 * 1000)
UZSWAP_EXTERN int uzswap_admin_drain(uzswap_t *c, unsigned int flags,
				     struct uzswap_drain *result);

/*
 * uzswap_daemon_version() - the daemon's release ("0.3.0") into @release
 * (@len bytes) and the newest protocol version it speaks into *@protocol
 * (may be NULL). Open to every user. Return: 0 or -errno.
 */
UZSWAP_EXTERN int uzswap_daemon_version(uzswap_t *c, char *release,
					size_t len, unsigned int *protocol);

#ifdef __cplusplus
}
#endif

#endif /* UZSWAP_H */
