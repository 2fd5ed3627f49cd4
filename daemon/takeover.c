/*
 * takeover.c - carrying on with a dead daemon's clients (see takeover.h).
 *
 * Order: every client's uffd is taken back and given a slot and an orphan
 * context (client.h); every region of those is mapped again over its
 * table file and recovered page by page (recover.h), naming what it has
 * stored, once its range is un-write-protected (a writer blocked by an
 * eviction cut short goes on); only then does the store free what nobody
 * named. Then each context goes to the fault threads, and each region's
 * range is woken (a reader whose fault message died with the old daemon
 * faults again, now to us). Regions of clients left behind are not
 * named: their objects are freed, their table files removed. So is a
 * region whose range is no longer registered on its uffd, found first
 * (un-write-protecting it): the dead daemon had given it back (a drain or
 * an UNREGISTER restores every page, then unregisters, then writes the
 * superblock) when it died.
 * The evictors, already running, are paused throughout (evict_pause()):
 * a region joins its slot, where they find it, while the following ones
 * are still being recovered, and an eviction then would put objects in
 * the pool that the store's recovery has not counted and may free or
 * overwrite (store_recover_end()).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adopt.h"
#include "atrest.h"
#include "client.h"
#include "evict.h"
#include "lib/common/killpoint.h"
#include "lib/uffd/uffd.h"
#include "log.h"
#include "recover.h"
#include "statedir.h"
#include "takeover.h"
#include "uffdctx.h"
#include "uzswapd.h"

/* What a log line about region record @rr is about (log.h). */
#define LOG_RR(rr, ...)							\
	LOG_ABOUT(.pid = (rr)->pid, .region = (rr)->id, .name = (rr)->name, \
		  __VA_ARGS__)

/* What was taken over of one client record: its pidfd, its context (NULL:
 * left behind). */
struct taken {
	int pidfd;
	struct uffd_ctx *ctx;
};

/* What a takeover did, for its log line. */
struct takeover_stats {
	unsigned int clients, left, regions, regions_left;
	struct recover_stats pages;
};

/* Take client @c's uffd back into @t; a client gone or changed is left. */
static void take_client(struct uzswapd *d, const struct statedir_client *c,
			struct taken *t, struct takeover_stats *ts)
{
	int uffd, pidfd;

	t->ctx = NULL;
	t->pidfd = adopt_process(c->pid, c->start_time);
	if (t->pidfd < 0) {
		log_info_about("takeover", LOG_CLIENT(c),
			       "pid %d (%s) is gone: what it stored is freed",
			       (int)c->pid, c->comm);
		ts->left++;
		return;
	}
	uffd = adopt_uffd(t->pidfd, c->uffd_fd);
	pidfd = uffd < 0 ? -1 : dup(t->pidfd);
	if (uffd < 0 || pidfd < 0) {
		int err = uffd < 0 ? -uffd : errno;

		log_err_about("takeover", LOG_CLIENT(c, .err = err),
			      "pid %d (%s): cannot take its userfaultfd back: "
			      "%s; its managed memory cannot be served",
			      (int)c->pid, c->comm, strerror(err));
		if (uffd >= 0)
			close(uffd);
		ts->left++;
		return;
	}
	t->ctx = client_adopt(d, c->pid, c->uid, pidfd, uffd, c->uffd_fd,
			      c->user_mode_only);
	if (!t->ctx) {
		log_err_about("takeover", LOG_CLIENT(c, .err = errno),
			      "pid %d: %s", (int)c->pid, strerror(errno));
		ts->left++;
		return;
	}
	atomic_store(&t->ctx->slot->limit, c->limit);
	ts->clients++;
}

/*
 * Un-write-protect the range of region @rr on @t's uffd: a writer blocked
 * by an eviction cut short goes on (the memfd decides its page, whatever
 * it writes: recover.h). Return: 0, or -EIDRM if the range is no longer
 * registered on the uffd: the dead daemon had given it back (its table
 * may be gone already), or the client unmapped it.
 */
static int unprotect_range(const struct taken *t,
			   const struct statedir_region *rr)
{
	if (uffd_writeprotect(t->ctx->fd, rr->start, rr->len, false,
			      false) != -ENOENT)
		return 0;
	log_info_about("takeover", LOG_RR(rr),
		       "pid %d: region %llu \"%s\" had been given back",
		       (int)rr->pid, (unsigned long long)rr->id, rr->name);
	return -EIDRM;
}

/* Map region @rr of client @t again, recover it and add it to its slot.
 * Return: 0, -ENOMEM (the store cannot go on), or another -errno (the
 * region is left). */
static int take_region(struct uzswapd *d, const struct statedir_region *rr,
		       struct taken *t, struct takeover_stats *ts)
{
	struct recover_stats rs;
	struct region *r;
	int memfd, ret;

	ret = unprotect_range(t, rr);
	if (ret)
		return ret;
	memfd = adopt_memfd(t->pidfd, rr->memfd_fd, (dev_t)rr->memfd_dev,
			    (ino_t)rr->memfd_ino);
	if (memfd < 0)
		return memfd;
	r = region_adopt(&d->regions, t->ctx->slot, t->ctx, &d->store,
			 rr->start, rr->len >> PAGE_SHIFT, memfd, rr->name,
			 rr->id);
	if (!r)
		return -errno;
	if (d->rest)
		region_set_tally(r, atrest_tally(d->rest, rr->id));
	ret = statedir_note_region(r, rr->memfd_fd, rr->flags);
	if (ret == 0)
		ret = d->rest ? recover_region_at_rest(r, &rs) :
				recover_region(r, &rs);
	if (ret == 0)
		ret = mm_slot_add_region(t->ctx->slot, r);
	if (ret) {
		region_put(r);
		return ret;
	}
	ts->regions++;
	ts->pages.resident += rs.resident;
	ts->pages.stored += rs.stored;
	ts->pages.lost += rs.lost;
	if (rs.lost)
		log_err_about("takeover", LOG_RR(rr),
			      "pid %d: region %llu \"%s\": %zu pages lost "
			      "(their copy is gone): a touch gets SIGBUS",
			      (int)rr->pid, (unsigned long long)rr->id,
			      rr->name, rs.lost);
	return 0;
}

/* Region @rr (of a client left behind) is not the daemon's any more: its
 * table goes, and so do its stored pages (recovering, the store frees
 * them as nobody names them; from an image at rest, they are dropped
 * here: the region adopted alone, its tally set, and put). */
static void leave_region(struct uzswapd *d, const struct statedir_region *rr,
			 struct takeover_stats *ts)
{
	struct region *r = NULL;

	if (d->rest)
		r = region_adopt(&d->regions, NULL, NULL, &d->store, rr->start,
				 rr->len >> PAGE_SHIFT, -1, rr->name, rr->id);
	if (r) {
		region_set_tally(r, atrest_tally(d->rest, rr->id));
		region_put(r);
	} else {
		statedir_table_remove(d->statedir, rr->id);
	}
	ts->regions_left++;
}

/* The threads that waited on the dead daemon in @r's range: on. */
static void wake_region(struct region *r)
{
	uffd_wake(r->ctx->fd, r->start, r->npages << PAGE_SHIFT);
}

/* Serve every context taken over, then wake the ranges of the regions
 * taken over (found by id, with a reference: no lock held across the
 * ioctls). */
static void serve_all(struct uzswapd *d, const struct statedir_state *st,
		      struct taken *t)
{
	struct region *r;
	uint32_t i;

	for (i = 0; i < st->nr_clients; i++)
		if (t[i].ctx && client_serve(d, t[i].ctx))
			log_err_about("takeover", LOG_CLIENT(t[i].ctx->slot),
				      "pid %d: cannot serve its faults",
				      (int)t[i].ctx->slot->pid);
	killpoint("takeover.served");
	for (i = 0; i < st->nr_regions; i++) {
		r = region_index_get(&d->regions, st->regions[i].id);
		if (!r)
			continue;
		wake_region(r);
		region_put(r);
	}
}

int takeover_run(struct uzswapd *d, const struct statedir_state *st)
{
	struct takeover_stats ts = { 0 };
	struct taken *t;
	uint32_t i;
	int ret = 0;

	t = calloc(st->nr_clients ? st->nr_clients : 1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	evict_pause(d->evictors);
	for (i = 0; i < st->nr_clients; i++)
		take_client(d, &st->clients[i], &t[i], &ts);
	for (i = 0; i < st->nr_regions && ret != -ENOMEM; i++) {
		const struct statedir_region *rr = &st->regions[i];
		struct taken *c = &t[rr->client];

		ret = c->ctx ? take_region(d, rr, c, &ts) : -ESRCH;
		if (ret && ret != -ENOMEM) {
			if (c->ctx && ret != -EIDRM)
				log_err_about("takeover",
					      LOG_RR(rr, .err = -ret),
					      "pid %d: region %llu \"%s\" "
					      "cannot be taken over: %s",
					      (int)rr->pid,
					      (unsigned long long)rr->id,
					      rr->name, strerror(-ret));
			leave_region(d, rr, &ts);
		}
	}
	if (ret == -ENOMEM) {
		evict_resume(d->evictors);
		free(t);
		return ret;
	}
	killpoint("takeover.adopted");
	if (!d->rest)
		store_recover_end(&d->store);
	serve_all(d, st, t);
	evict_resume(d->evictors);
	for (i = 0; i < st->nr_clients; i++)
		if (t[i].pidfd >= 0)
			close(t[i].pidfd);
	free(t);
	statedir_save(d->statedir, &d->registry);
	log_info("takeover", "took over %u clients, %u regions from uzswapd "
		 "%s (epoch %llu): %zu pages resident, %zu stored, %zu lost; "
		 "%u clients and %u regions left; %s", ts.clients, ts.regions,
		 st->release, (unsigned long long)st->epoch,
		 ts.pages.resident, ts.pages.stored, ts.pages.lost, ts.left,
		 ts.regions_left, d->rest ? "as its image at rest said" :
					    "recovered page by page");
	return 0;
}
