/*
 * fork.c - a client's fork(): the child's private copy of a region; see
 * fork.h.
 *
 * Before it forks, the client (libuzswap's atfork handler) sends FORK
 * with a new empty memfd, the child's. A worker copies the parent's
 * region into a new region over that memfd, which belongs to no client
 * yet: a pending copy (no slot, no uffd, on the daemon's list of
 * pending copies), named by a random token in the reply. After the fork,
 * the child maps the memfd where the region was and claims the copy with
 * REGISTER (PROTO_REGION_FORKED, the token): it becomes the child's
 * region, under the child's budget. A copy nobody claims in
 * PROTO_FORK_CLAIM_MS (the fork failed, the child died first) is
 * dropped.
 *
 * The copy, page by page; each parent page is taken as an evictor or a
 * load takes it, so that nothing changes it while it is copied:
 *   - NEW: nothing (the copy's page is NEW too);
 *   - stored (COMPRESSED, SAME, WRITTEN_BACK): the copy names the same
 *     object, or the same fill word: store_share() counts one more page
 *     naming the object, as deduplication does; no byte is copied;
 *   - RESIDENT keeping its pool object (PAGE_RETAINED): the copy names
 *     that object;
 *   - any other RESIDENT page: in runs of up to EVICT_RUN_PAGES, write-
 *     protected (the parent's writers wait, as during an eviction), read
 *     from the parent's memfd, un-protected (the writers go on), then
 *     stored for the copy: the child's page is born compressed, so the
 *     copy costs the child nothing of its budget;
 *   - LOST: LOST in the copy too (a touch gets SIGBUS in both).
 * The child's memfd stays empty, and the child never touches the
 * parent's: pages it touches fault in from its own copy (DESIGN.md,
 * "Unmodified programs"). Each page is copied as it is at the instant it
 * is taken: a write by another thread of the parent while the FORK runs
 * lands in the child or not, page by page, as a write racing fork() may.
 *
 * A pending copy has no client: no fault, eviction or drain reaches it;
 * write-back and compaction may move its objects (they find its pages
 * through the region index). A copy dropped unclaimed lets its objects
 * go even in a handover (region_set_unclaimed()): no successor would
 * know the pages that name them.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "evict.h"
#include "fork.h"
#include "lib/common/clock.h"
#include "lib/uffd/uffd.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "uffdctx.h"
#include "uzswapd.h"
#include "work.h"

/*
 * struct fork_copy - a FORK's copy, made by a worker, then pending
 * @work:     its place in the work pool (@work.arg: the connection)
 * @node:     entry of the daemon's pending copies once made; loop thread
 * @d:        the daemon; immutable
 * @parent:   the region copied (a reference), until the copy is made
 * @copy:     the copy (a reference), until claimed or dropped
 * @done:     FORK's reply; immutable
 * @token:    what the child names the copy by; immutable
 * @deadline: when an unclaimed copy is dropped (CLOCK_MONOTONIC ns);
 *            loop thread
 * @pid, @uid: the forking process; immutable
 * @next:     the next page to copy (or drop); the worker's
 * @resident: pages the store could not take, resident in the copy; the
 *            worker's
 * @status:   0, or why the copy failed; the worker's
 */
struct fork_copy {
	struct work work;
	struct list_node node;
	struct uzswapd *d;
	struct region *parent;
	struct region *copy;
	void (*done)(struct ctl_conn *c, int status, uint64_t token);
	uint64_t token;
	uint64_t deadline;
	pid_t pid;
	uid_t uid;
	size_t next;
	size_t resident;
	int status;
};

/* What a log line about copy @f is about (log.h): the forking process
 * and the copy's region. */
#define LOG_COPY(f, ...)						\
	LOG_ABOUT(.pid = (f)->pid, .region = (f)->copy->id,		\
		  .name = (f)->copy->name, __VA_ARGS__)

/*****************
 * The copy of one page
 *****************/

/* Page @i of the copy is stored as @info (stable state and object flags)
 * and @data, in an object of @n pool bytes (0: none in the pool). */
static void copy_stored(struct region *c, size_t i, uint32_t info,
			uint64_t data, size_t n)
{
	c->pages[i].data = data;
	atomic_store(&c->pages[i].info, info);
	atomic_fetch_add(&c->stored, 1);
	if (n) {
		atomic_fetch_add(&c->pooled, 1);
		atomic_fetch_add(&c->compressed_bytes, n);
	}
}

/* Page @i of the copy names what @info and @data name (a stored page's,
 * or a retained copy's if @retained): the store counts one more page
 * naming it. 0, -EAGAIN (the object is being moved: later) or -errno. */
static int name_copy(struct fork_copy *f, size_t i, uint32_t info,
		     uint64_t data, bool retained)
{
	struct region *c = f->copy;
	struct store_key from = { f->parent->id, (uint32_t)i };
	struct store_key to = { c->id, (uint32_t)i };
	long n = store_share(c->store, &from, info, data, retained, &to);

	if (n < 0)
		return n == -EBUSY ? -EAGAIN : (int)n;
	copy_stored(c, i, page_info(page_state(info),
				    info & PAGE_OBJECT_FLAGS, 0),
		    data, (size_t)n);
	return 0;
}

/* A stored parent page: taken (LOADING) while the copy names its
 * object. */
static int share_stored(struct fork_copy *f, size_t i, uint32_t info)
{
	struct page_entry *e = &f->parent->pages[i];
	int ret;

	if ((info & PAGE_UNPUNCHED) || !page_cas(e, &info, page_loading(info)))
		return -EAGAIN;
	ret = name_copy(f, i, info, e->data, false);
	atomic_store(&e->info, info);
	return ret;
}

/* A resident parent page that keeps its object: claimed (EVICTING, as
 * the fault path claims one) so that the object stays while the copy
 * names it. */
static int share_retained(struct fork_copy *f, size_t i, uint32_t info)
{
	struct page_entry *e = &f->parent->pages[i];
	int ret;

	if (!page_cas(e, &info, (info & ~PAGE_STATE_MASK) | PAGE_EVICTING))
		return -EAGAIN;
	ret = name_copy(f, i, page_retained_copy(info), e->data, true);
	region_unclaim(f->parent, i, info, false);
	return ret;
}

/* Page @i of the copy is @page, resident in the copy's memfd: the child
 * starts over its budget by that page, as a client does while the pool
 * takes no more (evict.c), rather than the fork failing. 0 or -errno. */
static int copy_resident(struct fork_copy *f, size_t i, const uint8_t *page)
{
	struct region *c = f->copy;
	ssize_t got = pwrite(c->memfd, page, PAGE_SIZE,
			     (off_t)(i << PAGE_SHIFT));

	if (got != PAGE_SIZE)
		return got < 0 ? -errno : -EIO;
	atomic_store(&c->pages[i].info, page_info(PAGE_RESIDENT, 0, 0));
	region_account(c, 1);
	f->resident++;
	return 0;
}

/* How often one page of a copy may find the pool full again after
 * write-back made room (other evictors fill it meanwhile) before it
 * stays resident. */
#define FORK_RECLAIM_TRIES	64

/* Page @i of the copy is @page: stored anew, or resident if the store
 * cannot take it (the pool full and write-back making no room). */
static int store_copy(struct fork_copy *f, size_t i, const uint8_t *page,
		      struct work_ctx *wc)
{
	struct region *c = f->copy;
	struct store_key key = { c->id, (uint32_t)i };
	uint32_t flags;
	uint64_t data;
	int n = store_put(c->store, wc->lc.comp, page, &key, &flags, &data);

	int tries = 0;

	while (n == -ENOMEM && tries++ < FORK_RECLAIM_TRIES &&
	       store_reclaim(c->store))
		n = store_put(c->store, wc->lc.comp, page, &key, &flags,
			      &data);
	if (n < 0)
		return copy_resident(f, i, page);
	copy_stored(c, i, flags, data, (size_t)n);
	return 0;
}

/*
 * copy_dirty_run() - the resident parent pages from @i that keep no
 * object, up to @max: claimed, write-protected, read, un-protected (the
 * waiting writers wake), then stored for the copy.
 * Return: the pages copied, or -errno (-EAGAIN: page @i is busy).
 */
static long copy_dirty_run(struct fork_copy *f, size_t i, size_t max,
			   struct work_ctx *wc)
{
	struct region *p = f->parent;
	uint32_t infos[EVICT_RUN_PAGES];
	unsigned long addr = p->start + (i << PAGE_SHIFT);
	size_t n, k, len;
	ssize_t got;
	int ret;

	if (max - i > EVICT_RUN_PAGES)
		max = i + EVICT_RUN_PAGES;
	for (n = 0; i + n < max; n++) {
		uint32_t info = atomic_load(&p->pages[i + n].info);

		if (page_state(info) != PAGE_RESIDENT ||
		    (info & PAGE_RETAINED) ||
		    !page_cas(&p->pages[i + n], &info,
			      (info & ~PAGE_STATE_MASK) | PAGE_EVICTING))
			break;
		infos[n] = info;
	}
	if (!n)
		return -EAGAIN;
	len = n << PAGE_SHIFT;
	ret = uffd_writeprotect(p->ctx->fd, addr, len, true, false);
	if (!ret) {
		got = pread(p->memfd, wc->run_buf, len, (off_t)(i << PAGE_SHIFT));
		ret = got == (ssize_t)len ? 0 : got < 0 ? -errno : -EIO;
		uffd_writeprotect(p->ctx->fd, addr, len, false, false);
	}
	for (k = 0; k < n; k++)
		region_unclaim(p, i + k, infos[k], false);
	for (k = 0; !ret && k < n; k++)
		ret = store_copy(f, i + k, wc->run_buf + (k << PAGE_SHIFT), wc);
	return ret ? ret : (long)n;
}

/* Copy the parent's page @i (and the dirty ones after it, up to @max).
 * Return: the pages done (at least 1), or -errno (-EAGAIN: busy). */
static long copy_pages(struct fork_copy *f, size_t i, size_t max,
		       struct work_ctx *wc)
{
	uint32_t info = atomic_load(&f->parent->pages[i].info);

	switch (page_state(info)) {
	case PAGE_NEW:
		return 1;
	case PAGE_LOST:
		atomic_store(&f->copy->pages[i].info,
			     page_info(PAGE_LOST, 0, 0));
		return 1;
	case PAGE_COMPRESSED:
	case PAGE_SAME:
	case PAGE_WRITTEN_BACK:
		return share_stored(f, i, info) ?: 1;
	case PAGE_RESIDENT:
		if (info & PAGE_RETAINED)
			return share_retained(f, i, info) ?: 1;
		return copy_dirty_run(f, i, max, wc);
	default:
		return -EAGAIN;	/* an evictor or a load holds it */
	}
}

/* One step: up to WORK_STEP_PAGES pages of the parent. Worker. */
static bool copy_step(struct work *w, struct work_ctx *wc)
{
	struct fork_copy *f = container_of(w, struct fork_copy, work);
	struct region *p = f->parent;
	size_t end = work_step_end(f->next, p->npages), i, span = 0;
	long n;

	if (atomic_load(&w->cancelled)) {
		f->status = -ECANCELED;
		return true;
	}
	f->status = store_compressor_current(wc->store, &wc->lc.comp);
	for (i = f->next; !f->status &&
	     (i = region_next_entry(p, i, end, &span)) < end; i += (size_t)n) {
		n = copy_pages(f, i, span, wc);
		if (n == -EAGAIN) {
			sched_yield();	/* held for a moment: wait */
			n = 0;
		} else if (n < 0) {
			f->status = (int)n;
		}
	}
	f->next = end;
	return f->status || end >= p->npages;
}

/*****************
 * Pending copies
 *****************/

/* Drop an unclaimed copy: a step of region_drop_stored(). Worker. */
static bool drop_step(struct work *w, struct work_ctx *wc)
{
	struct fork_copy *f = container_of(w, struct fork_copy, work);
	size_t end = work_step_end(f->next, f->copy->npages);

	(void)wc;
	region_drop_stored(f->copy, f->next, end);
	f->next = end;
	return end >= f->copy->npages;
}

static void drop_done(struct work *w)
{
	struct fork_copy *f = container_of(w, struct fork_copy, work);

	region_put(f->copy);
	free(f);
}

/* Let a worker drop @f's copy and free @f. Loop thread. */
static void drop_copy(struct fork_copy *f)
{
	work_init(&f->work, drop_step, drop_done, NULL);
	f->next = 0;
	work_queue(&f->d->work, &f->work, NULL);
}

void fork_drop(struct uzswapd *d, struct region *r)
{
	struct fork_copy *f = calloc(1, sizeof(*f));

	if (!f) {
		region_put(r);	/* the slow way, on the loop thread */
		return;
	}
	region_set_unclaimed(r);
	f->d = d;
	f->copy = r;
	drop_copy(f);
}

/* The copy is made, or failed: the reply, and the copy waits for its
 * child. Loop thread. */
static void copy_done(struct work *w)
{
	struct fork_copy *f = container_of(w, struct fork_copy, work);
	struct ctl_conn *c = w->arg;
	int status = f->status;

	region_put(f->parent);
	f->parent = NULL;
	if (!status && (!c || f->d->stopping))
		status = -ECANCELED;
	if (status) {
		if (status != -ECANCELED)
			log_warn_about("fork", LOG_COPY(f, .err = -status),
				       "pid %d: no copy of region %llu for "
				       "its child: %s", (int)f->pid,
				       (unsigned long long)f->copy->id,
				       strerror(-status));
		if (c)
			f->done(c, status, 0);
		drop_copy(f);
		return;
	}
	if (f->resident)
		log_warn("fork", "pid %d: the pool takes no more: %zu pages "
			 "of region %llu's copy stay resident in its child",
			 (int)f->pid, f->resident,
			 (unsigned long long)f->copy->id);
	f->deadline = clock_now_ns() + PROTO_FORK_CLAIM_MS * 1000000ull;
	list_add_tail(&f->node, &f->d->forks);
	f->done(c, 0, f->token);
}

static unsigned int pending_of(struct uzswapd *d, pid_t pid)
{
	struct list_node *pos;
	unsigned int n = 0;

	list_for_each(pos, &d->forks)
		n += container_of(pos, struct fork_copy, node)->pid == pid;
	return n;
}

static uint64_t new_token(void)
{
	uint64_t t = 0;

	while (getrandom(&t, sizeof(t), 0) != sizeof(t) || !t)
		;
	return t;
}

struct work *fork_start(struct ctl_conn *c, struct region *parent, int memfd,
			void (*done)(struct ctl_conn *c, int status,
				     uint64_t token))
{
	struct fork_copy *f;

	if (pending_of(c->d, c->pid) >= FORK_PENDING_MAX) {
		close(memfd);
		errno = EBUSY;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(memfd);
		errno = ENOMEM;
		return NULL;
	}
	f->copy = region_create(&c->d->regions, NULL, NULL, &c->d->store,
				parent->start, parent->npages, memfd,
				parent->name);
	if (!f->copy) {
		free(f);
		return NULL;
	}
	region_set_unclaimed(f->copy);
	region_get(parent);
	f->parent = parent;
	f->d = c->d;
	f->done = done;
	f->token = new_token();
	f->pid = c->pid;
	f->uid = c->uid;
	list_init(&f->node);
	work_init(&f->work, copy_step, copy_done, c);
	work_queue(&c->d->work, &f->work, NULL);
	return &f->work;
}

/* Whether descriptors @a and @b are one file. */
static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

struct region *fork_claim(struct uzswapd *d, uint64_t token, uid_t uid,
			  int memfd, unsigned long start, size_t len)
{
	struct list_node *pos;
	struct fork_copy *f;
	struct region *r;

	list_for_each(pos, &d->forks) {
		f = container_of(pos, struct fork_copy, node);
		if (f->token != token)
			continue;
		r = f->copy;
		if (f->uid != uid || !same_file(memfd, r->memfd)) {
			errno = EPERM;
			return NULL;
		}
		if (r->start != start || r->npages << PAGE_SHIFT != len) {
			errno = EINVAL;
			return NULL;
		}
		list_del(&f->node);
		free(f);
		return r;
	}
	errno = ENOENT;
	return NULL;
}

void fork_expire(struct uzswapd *d, bool all)
{
	struct list_node *pos, *tmp;
	uint64_t now = clock_now_ns();

	list_for_each_safe(pos, tmp, &d->forks) {
		struct fork_copy *f = container_of(pos, struct fork_copy,
						   node);

		if (!all && now < f->deadline)
			continue;
		if (!all)
			log_warn_about("fork", LOG_COPY(f),
				       "pid %d: the child of a fork() did not "
				       "claim its copy of region %llu in "
				       "time; dropped", (int)f->pid,
				       (unsigned long long)f->copy->id);
		list_del(&f->node);
		drop_copy(f);
	}
}
