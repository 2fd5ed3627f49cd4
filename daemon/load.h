/*
 * load.h - bringing stored pages back: into the client through its uffd
 * (a fault, or WILLNEED advice), or into the region's memfd (a live
 * client's region being unregistered: every page must be back before the
 * range leaves userfaultfd, or the client would read zeros).
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_LOAD_H
#define UZSWAPD_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress.h"
#include "region.h"

/* What a caller needs: its own compressor and a page-sized buffer. */
struct load_ctx {
	struct compressor *comp;
	uint8_t *buf;
};

enum load_result {
	LOAD_DONE,	/* the page is RESIDENT (loaded now, or found so) */
	LOAD_BUSY,	/* another thread holds it (LOADING, EVICTING): later */
	LOAD_NOT_STORED,/* NEW: nothing stored to load */
	LOAD_AGAIN,	/* the kernel said EAGAIN, or the page is on an
			 * export that is away: later */
	LOAD_GONE,	/* the range or the process is gone */
	LOAD_CORRUPT,	/* the stored object cannot be read back or does
			 * not decompress: never to be served */
	LOAD_LOST,	/* LOST: nothing can bring it back */
};

/*
 * load_page() - bring page @idx of @r from the store into the client with
 * UFFDIO_COPY, without waking the faulting threads (the caller wakes a
 * whole range at once). If @retain, a page loaded from the pool keeps its
 * object and is mapped write-protected (clean-page retention: ask for it
 * unless the page is about to be written). A page its evictor has not yet
 * punched (PAGE_UNPUNCHED) is LOAD_BUSY: not even a MISSING fault proves
 * the punch, for its message may be stale (read before a read-ahead
 * brought the page in and an evictor took it again); loaded then, the
 * page would be RESIDENT over the punch that follows, a hole. The page
 * joins the LRU, marked active if its refault distance is short. Thread
 * context: a fault thread, or a worker for WILLNEED.
 */
enum load_result load_page(struct region *r, size_t idx, struct load_ctx *lc,
			   bool retain);

/*
 * load_region_restore() - write every stored page of @r in [@first, @end)
 * back into its memfd with pwrite() and mark it RESIDENT; pages other
 * threads hold are waited for. Call over the whole region before
 * unregistering the range of a live client.
 * Return: 0, or -EIO if a stored page is corrupt (it stays stored) or
 * LOST: then the range must stay registered, or the client would read
 * zeros there.
 * Cost: a look at every page whose entry may have been written
 * (region_next_entry()), and one decompression and one pwrite per
 * stored page (a pread more if written back), on the calling thread (a
 * worker: ~5 us per stored page).
 */
int load_region_restore(struct region *r, size_t first, size_t end,
			struct load_ctx *lc);

#endif /* UZSWAPD_LOAD_H */
