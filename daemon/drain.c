/*
 * drain.c - DRAIN, swapoff for uzswap; see drain.h.
 *
 * What SIGTERM did before the daemon could hand over to a successor, on
 * purpose and without stopping: every stored page (compressed,
 * same-filled, raw, written back) goes back into its client's memfd and
 * every region stops being managed, its range unregistered from the
 * client's uffd, so that the client goes on with plain shared memory and
 * no daemon involved. The connections stay; a client may register new
 * regions afterwards.
 *
 * On the loop thread, drain_start(): a reference on every region of every
 * client (O(regions)), the bytes their stored pages take once back in
 * memory (stored pages x page size) against MemAvailable (/proc/meminfo),
 * a refusal if they do not fit (unless forced), and each region's start
 * noted in its connection (drain_forget()): UNREGISTER of a region the
 * drain released is answered -ENOENT, which libuzswap takes as done.
 *
 * On a worker (work.c), one region after the other, in steps of at most
 * WORK_STEP_PAGES pages (another client's work waits one step at most):
 *   1. hold the region (mm_slot_hold_region()): no eviction starts on it
 *      any more, and one under way is waited for by the restore; it stays
 *      in its slot, its faults served as before;
 *   2. write every stored page back into the memfd (load_region_restore(),
 *      the restore that a connection's teardown does);
 *   3. take it out of its slot, then unregister its range.
 * A region with a page that could not be restored (a corrupt object, a
 * backing-file read error) is not released: it is let go (evictions
 * resume) and stays managed with that page stored; it is logged and
 * counted in the reply. A region its client unregistered, or left by
 * exiting, while the drain ran is no longer in its slot at step 3 (or its
 * uffd says the process is gone): its teardown is the client's, and it is
 * counted as left. Once the asking connection closes, the drain stops at
 * its next step: the region it held is let go, those released stay so.
 * The reply is sent on the loop thread once the worker is done.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "drain.h"
#include "lib/common/killpoint.h"
#include "lib/common/size.h"
#include "lib/uffd/uffd.h"
#include "load.h"
#include "log.h"
#include "registry.h"
#include "uffdctx.h"
#include "uzswapd.h"
#include "work.h"

/*
 * struct drain - one drain; the worker running it owns every field but
 * @work's loop-thread ones
 * @work:    its place in the work pool (@work.arg: the connection)
 * @d:       the daemon; immutable
 * @done:    what the connection is told; immutable
 * @regions: every region when it started, a reference each (dropped
 *           once the region is done)
 * @nr:      entries of @regions
 * @next:    the region being drained
 * @page:    its next page
 * @held:    it is held (mm_slot_hold_region())
 * @failed:  a page of it could not be restored
 * @stored:  its stored pages when it was held
 * @last:    the slot of the last region released (clients counted once)
 * @res:     the reply
 */
struct drain {
	struct work work;
	struct uzswapd *d;
	drain_done_fn *done;
	struct region **regions;
	size_t nr;
	size_t next;
	size_t page;
	bool held;
	bool failed;
	size_t stored;
	struct mm_slot *last;
	struct proto_drain_reply res;
};

/*****************
 * The start, on the loop thread
 *****************/

/* MemAvailable from /proc/meminfo, in bytes. Return: 0 or -errno. */
static int mem_available(uint64_t *bytes)
{
	unsigned long long kb;
	char line[128];
	int ret = -EIO;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			*bytes = (uint64_t)kb << 10;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/*
 * Walk every region of every client: count them and their stored pages
 * (*@stored) and the clients that have some (*@clients); with @out, take
 * a reference on the first @max of them into @out. O(regions).
 */
static size_t collect(struct registry *reg, struct region **out, size_t max,
		      uint64_t *stored, uint64_t *clients)
{
	struct list_node *s, *pos;
	size_t n = 0, of_slot;

	*stored = 0;
	*clients = 0;
	pthread_mutex_lock(&reg->lock);
	list_for_each(s, &reg->mm_head) {
		struct mm_slot *slot = container_of(s, struct mm_slot,
						    mm_node);

		pthread_mutex_lock(&slot->lock);
		of_slot = 0;
		list_for_each(pos, &slot->regions) {
			struct region *r = container_of(pos, struct region,
							node);

			of_slot += atomic_load(&r->stored);
			if (!out) {
				n++;
			} else if (n < max) {
				region_get(r);
				out[n++] = r;
			}
		}
		pthread_mutex_unlock(&slot->lock);
		*stored += of_slot;
		*clients += of_slot != 0;
	}
	pthread_mutex_unlock(&reg->lock);
	return n;
}

/* The connection of @r's uffd, or NULL if it closed. O(connections of
 * the process). */
static struct ctl_conn *conn_of(const struct region *r)
{
	struct list_node *pos;

	list_for_each(pos, &r->slot->conns) {
		struct ctl_conn *c = container_of(pos, struct ctl_conn, node);

		if (c->ctx == r->ctx)
			return c;
	}
	return NULL;
}

/* Whether @c has @start noted as drained; at *@at if so. */
static bool drained_at(const struct ctl_conn *c, unsigned long start,
		       unsigned int *at)
{
	unsigned int i;

	for (i = 0; i < c->nr_drained; i++) {
		if (c->drained[i] == start) {
			*at = i;
			return true;
		}
	}
	return false;
}

/* Note @r's start in its connection (once). Return: 0 or -ENOMEM. */
static int note_drained(const struct region *r)
{
	struct ctl_conn *c = conn_of(r);
	unsigned long *grown;
	unsigned int at;

	if (!c || drained_at(c, r->start, &at))
		return 0;
	grown = realloc(c->drained, (c->nr_drained + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->drained = grown;
	c->drained[c->nr_drained++] = r->start;
	return 0;
}

static void drain_free(struct drain *dr)
{
	size_t i;

	for (i = dr->next; i < dr->nr; i++)
		region_put(dr->regions[i]);
	free(dr->regions);
	free(dr);
}

/* Say why the drain is refused, in @why; returns -@err. */
static int refuse(int err, char why[PROTO_MAX_ERRMSG], const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(int err, char why[PROTO_MAX_ERRMSG], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, PROTO_MAX_ERRMSG, fmt, ap);
	va_end(ap);
	return -err;
}

/* Do @stored pages of @clients fit in memory? 0, or -errno with @why
 * set. */
static int drain_fits(uint64_t stored, uint64_t clients, bool force,
		      char why[PROTO_MAX_ERRMSG])
{
	uint64_t need = stored << PAGE_SHIFT, avail = 0;
	char n[16], a[16];

	if (mem_available(&avail))
		return refuse(EIO, why, "cannot read MemAvailable in "
			      "/proc/meminfo");
	log_info("client", "drain: %llu stored pages (%s) of %llu clients, "
		 "%s available%s", (unsigned long long)stored,
		 size_format(need, n, sizeof(n)),
		 (unsigned long long)clients, size_format(avail, a, sizeof(a)),
		 force ? ", forced" : "");
	if (need <= avail || force)
		return 0;
	return refuse(ENOMEM, why, "drain needs %s of memory, %s available; "
		      "--force to drain anyway", n, a);
}

/* A drain of every region of @d: a reference on each, its start noted in
 * its connection. Return: 0 or -errno, @why set. */
static int drain_take(struct drain *dr, struct uzswapd *d, size_t n,
		      char why[PROTO_MAX_ERRMSG])
{
	uint64_t stored, clients;
	size_t i;

	dr->regions = calloc(n ? n : 1, sizeof(*dr->regions));
	if (!dr->regions)
		return refuse(ENOMEM, why, "no memory for the drain");
	dr->nr = collect(&d->registry, dr->regions, n, &stored, &clients);
	for (i = 0; i < dr->nr; i++)
		if (note_drained(dr->regions[i]))
			return refuse(ENOMEM, why, "no memory for the drain");
	return 0;
}

static bool drain_step(struct work *w, struct work_ctx *wc);
static void drain_finished(struct work *w);

struct work *drain_start(struct ctl_conn *c, bool force, drain_done_fn *done,
			 char why[PROTO_MAX_ERRMSG])
{
	struct uzswapd *d = c->d;
	uint64_t stored, clients;
	struct drain *dr;
	size_t n;
	int ret;

	if (d->draining) {
		ret = refuse(EBUSY, why, "a drain is running already");
		goto out_refused;
	}
	n = collect(&d->registry, NULL, 0, &stored, &clients);
	ret = drain_fits(stored, clients, force, why);
	if (ret)
		goto out_refused;
	dr = calloc(1, sizeof(*dr));
	if (!dr) {
		ret = refuse(ENOMEM, why, "no memory for the drain");
		goto out_refused;
	}
	ret = drain_take(dr, d, n, why);
	if (ret)
		goto out_free;
	dr->d = d;
	dr->done = done;
	work_init(&dr->work, drain_step, drain_finished, c);
	d->draining = true;
	log_info_about("client", LOG_ABOUT(.pid = c->pid),
		       "pid %d (uid %u) drains %zu regions", (int)c->pid,
		       (unsigned int)c->uid, dr->nr);
	work_queue(&d->work, &dr->work, NULL);
	return &dr->work;

out_free:
	drain_free(dr);
out_refused:
	errno = -ret;
	return NULL;
}

bool drain_forget(struct ctl_conn *c, unsigned long start)
{
	unsigned int at;

	if (!drained_at(c, start, &at))
		return false;
	c->drained[at] = c->drained[--c->nr_drained];
	return true;
}

/*****************
 * The work, on a worker
 *****************/

/* @r left the drain's hands: its client unregistered it (or closed its
 * connection), or exited; its own teardown restores or drops it. */
static void left(struct drain *dr, struct region *r)
{
	log_info_about("client", LOG_REGION(r),
		       "pid %d: region %llu was unregistered, or its client "
		       "exited, during the drain", (int)r->slot->pid,
		       (unsigned long long)r->id);
	dr->res.regions_left++;
}

/* @r (all its pages restored) leaves its slot and its uffd. */
static void release(struct drain *dr, struct region *r)
{
	size_t stored = atomic_load(&r->stored);
	int ret;

	if (!mm_slot_remove_region(r->slot, r)) {
		left(dr, r);
		return;
	}
	ret = uffd_unregister(r->ctx->fd, (void *)r->start,
			      r->npages << PAGE_SHIFT);
	killpoint("drain.released");
	region_put(r);			/* the slot list's */
	if (ret && uffd_unregister_gone(ret)) {
		left(dr, r);
		return;
	}
	if (ret)
		log_err_about("client", LOG_REGION(r, .err = -ret),
			      "pid %d: drain: unregister %#lx: %s",
			      (int)r->slot->pid, r->start, strerror(-ret));
	dr->res.regions++;
	dr->res.pages += dr->stored > stored ? dr->stored - stored : 0;
	if (dr->last != r->slot)
		dr->res.clients++;
	dr->last = r->slot;
}

/* @r could not be restored whole: it stays managed, evictions resume. */
static void keep(struct drain *dr, struct region *r)
{
	size_t left = atomic_load(&r->stored);

	log_err_about("client", LOG_REGION(r),
		      "pid %d: drain: region %llu keeps %zu pages that could "
		      "not be restored; it stays managed", (int)r->slot->pid,
		      (unsigned long long)r->id, left);
	mm_slot_hold_region(r->slot, r, false);
	dr->res.regions_kept++;
	dr->res.pages_kept += left;
}

/* The region being drained is done with: on to the next. */
static void next_region(struct drain *dr)
{
	region_put(dr->regions[dr->next]);
	dr->next++;
	dr->page = 0;
	dr->held = false;
	dr->failed = false;
}

/* The connection closed: let the region being drained go and stop. */
static void stop(struct drain *dr)
{
	struct region *r = dr->regions[dr->next];

	if (dr->held)
		mm_slot_hold_region(r->slot, r, false);
	while (dr->next < dr->nr)
		next_region(dr);
}

/* One step: hold, restore WORK_STEP_PAGES pages of, or release one region.
 * Worker. */
static bool drain_step(struct work *w, struct work_ctx *wc)
{
	struct drain *dr = container_of(w, struct drain, work);
	struct region *r;
	size_t end;

	if (dr->next == dr->nr)
		return true;
	if (atomic_load(&w->cancelled)) {
		stop(dr);
		return true;
	}
	r = dr->regions[dr->next];
	if (!dr->held) {
		if (!mm_slot_hold_region(r->slot, r, true)) {
			left(dr, r);
			next_region(dr);
			return dr->next == dr->nr;
		}
		dr->held = true;
		dr->stored = atomic_load(&r->stored);
	}
	end = work_step_end(dr->page, r->npages);
	if (load_region_restore(r, dr->page, end, &wc->lc))
		dr->failed = true;
	dr->page = end;
	if (end < r->npages)
		return false;
	/* every page was seen restored (or never stored), and none can be
	 * stored again while held: the range may leave the uffd. A page that
	 * could not be restored keeps it there (the client would read a hole,
	 * zeros, in its place). (r->stored is no proof: a loader publishes
	 * a page RESIDENT before it counts it out.) */
	if (dr->failed)
		keep(dr, r);
	else
		release(dr, r);
	next_region(dr);
	return dr->next == dr->nr;
}

/* The drain is over: the reply, unless the connection closed. Loop
 * thread. */
static void drain_finished(struct work *w)
{
	struct drain *dr = container_of(w, struct drain, work);
	struct ctl_conn *c = w->arg;
	char b[16];

	dr->res.bytes = dr->res.pages << PAGE_SHIFT;
	log_info("client", "drain %s: %llu pages (%s) restored, %llu "
		 "regions of %llu clients released, %llu kept (%llu pages "
		 "stored), %llu left by their clients",
		 atomic_load(&w->cancelled) ? "stopped" : "done",
		 (unsigned long long)dr->res.pages,
		 size_format(dr->res.bytes, b, sizeof(b)),
		 (unsigned long long)dr->res.regions,
		 (unsigned long long)dr->res.clients,
		 (unsigned long long)dr->res.regions_kept,
		 (unsigned long long)dr->res.pages_kept,
		 (unsigned long long)dr->res.regions_left);
	dr->d->draining = false;
	/* the regions it released are no longer the daemon's to hand on */
	statedir_save(dr->d->statedir, &dr->d->registry);
	if (c)
		dr->done(c, &dr->res);
	drain_free(dr);
}
