/*
 * dedup.h - the stable index of stored objects: deduplication of stored
 * pages across every client and region (the KSM seed's stable tree).
 *
 * Each pool object stored while deduplication is on has a node: the
 * seeded XXH3-64 of the page it holds, the object (a z3fold handle, or
 * its backing-file slot once written back), and its reverse map, the
 * pages naming it (KSM's rmap_items; a page is named by its store key,
 * encoded as the object's owner word is). A new page whose hash finds a
 * node is compared byte for byte with that node's object by the store
 * (a hash alone is forgeable, and pages of different clients are never
 * merged on one), and if equal it joins the node instead of making an
 * object: the object is refcounted by the pages naming it and freed
 * when the last one lets go.
 *
 * Past max_page_sharing pages a node takes no more: the next equal page
 * makes a new object, a dup, linked into the chain of the first node
 * (the seed's "chain of dups"), so that a reverse-map walk (write-back
 * and migration take every page naming an object) stays bounded. Only
 * the first node of a chain is in the hash index; a lookup that matches
 * it joins any node of the chain with room.
 *
 * A node frozen for write-back or migration takes no new page; one being
 * compared (pinned) cannot be frozen. Nodes rebuilt by a recovery carry
 * no hash (it is not in the pages' records): they keep the sharing that
 * was, and new pages never match them.
 *
 * Bytes: the node keeps the count of its pages that are retained copies
 * (clean-page retention), so that the store's counters hold each object
 * once: in the retained bytes while every page naming it is a resident
 * page that kept it, in the payload bytes otherwise, in neither once
 * written back.
 *
 * Private to uzswapd. Every function takes the index's lock: any thread.
 */
#ifndef UZSWAPD_DEDUP_H
#define UZSWAPD_DEDUP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagestate.h"

#define DEDUP_MAX_SHARING_DEFAULT 256	/* KSM's default */
#define DEDUP_MAX_SHARING_LIMIT 65535	/* a node's count is 16 bits */
#define DEDUP_NO_NODE UINT32_MAX

/*
 * struct dedup_slab - fixed-size records named by 32-bit numbers, in
 * segments that never move (a record's number stays valid while the
 * table grows); the index's lock
 */
struct dedup_slab {
	void **segs;
	size_t nr_segs;
	size_t size;
	uint32_t used;		/* records ever handed out */
	uint32_t free;		/* free list, through each record's first
				   word */
};

/*
 * struct dedup - the stable index
 * @lock:      protects everything below but the counters' targets
 * @nodes:     struct dedup_node records
 * @rmap:      struct dedup_rmap records (a node's pages past its first)
 * @hash_heads, @data_heads: the two indexes' buckets (1 << @bits each):
 *             chains of nodes through next_hash (first nodes of chains,
 *             by hash) and next_data (every node, by object)
 * @bits:      log2 of the buckets; doubled when the nodes outnumber them
 * @max_sharing: pages a node takes at most (atomic: a reload changes it)
 * @payload, @retained_bytes: the store's byte counters, kept by the
 *             index for the objects it has a node of (atomic targets)
 * @st:        counters; @lock
 */
struct dedup {
	pthread_mutex_t lock;
	struct dedup_slab nodes;
	struct dedup_slab rmap;
	uint32_t *hash_heads;
	uint32_t *data_heads;
	unsigned int bits;
	atomic_uint max_sharing;
	atomic_uint_fast64_t *payload;
	atomic_uint_fast64_t *retained_bytes;
	struct dedup_stats {
		uint64_t nodes;		/* objects with a node */
		uint64_t pages_shared;	/* of those, named by 2+ pages */
		uint64_t pages_sharing;	/* pages beyond the first of each */
		uint64_t bytes_saved;	/* pool bytes those would take */
		uint64_t chains;	/* first nodes with dups */
		uint64_t dups;		/* nodes linked into a chain */
		uint64_t merged;	/* pages that joined a node, so far */
		uint64_t collisions;	/* hash found, content differed */
		uint64_t meta_bytes;	/* memory of the index */
	} st;
};

/*
 * struct dedup_match - a node a lookup found and pinned
 * @node:  its number (DEDUP_NO_NODE: start a lookup from the first)
 * @data:  its object's handle
 * @flags: PAGE_ZSTD | PAGE_RAW, as the object was made
 * @size:  the object's bytes
 */
struct dedup_match {
	uint32_t node;
	uint64_t data;
	uint32_t flags;
	size_t size;
};

/* What a page letting go of an object leaves (dedup_put()). */
enum dedup_put {
	DEDUP_NONE,	/* no node: the object was the page's alone */
	DEDUP_KEPT,	/* other pages (or a lookup) still name it */
	DEDUP_LAST,	/* it was the last: the caller frees the object */
};

/* An empty index whose byte counters are @payload and @retained_bytes.
 * Return: 0 or -ENOMEM. */
int dedup_init(struct dedup *d, atomic_uint_fast64_t *payload,
	       atomic_uint_fast64_t *retained_bytes);
void dedup_destroy(struct dedup *d);

/* Nodes take at most @n pages from now on (2..DEDUP_MAX_SHARING_LIMIT). */
void dedup_set_max_sharing(struct dedup *d, unsigned int n);

/*
 * dedup_lookup() - the next node after @m->node whose hash is @hash and
 * which takes pages (DEDUP_NO_NODE: the first), pinned: it stays until
 * dedup_join() or dedup_unpin(). Return: whether one was found (*@m set).
 */
bool dedup_lookup(struct dedup *d, uint64_t hash, struct dedup_match *m);

/*
 * dedup_join() - the object of pinned @m holds what page @key holds:
 * the page joins its node, or a dup of its chain with room (*@m then
 * names the object joined), and the pin is released.
 * Return: 0; -ENOSPC if every node of the chain is full or frozen (the
 * pin stays: make a new object, dedup_insert() it as a dup of @m, then
 * dedup_unpin()); -EBUSY if there is no memory for the page's reverse-map
 * record (the pin released: store the page alone).
 */
int dedup_join(struct dedup *d, struct dedup_match *m, uint64_t key);

/* Release @m's pin: the content @differed (counted as a collision), or
 * a dup was inserted. Return: true if no page names the object any
 * more: the caller frees it. */
bool dedup_unpin(struct dedup *d, const struct dedup_match *m,
		 bool differed);

/*
 * dedup_insert() - a new object @data (@flags, @size bytes; a backing
 * slot when PAGE_DATA_SLOT) holds page @key, whose hash is *@hash (NULL:
 * not known, as in a recovery: never matched): give it a node, the
 * first of a new chain, or a dup of pinned @dup_of (NULL: none). Its
 * bytes join the payload. Return: 0, or -ENOMEM (the object then simply
 * has no node).
 */
int dedup_insert(struct dedup *d, const uint64_t *hash, uint64_t data,
		 uint32_t flags, size_t size, uint64_t key,
		 const struct dedup_match *dup_of);

/* Page @key no longer names object @data (a handle, or a slot); it kept
 * it as a retained copy if @retained. */
enum dedup_put dedup_put(struct dedup *d, uint64_t data, uint64_t key,
			 bool retained);

/* One page naming object @data became a retained copy (@delta 1) or a
 * stored page again (-1). Return: whether the object has a node (else
 * the store's own counters apply). */
bool dedup_retain(struct dedup *d, uint64_t data, int delta);

/*
 * Write-back and migration take every page naming an object at once.
 * dedup_freeze(): the node of @data takes no new page from now on; the
 * keys of the pages naming it are copied into *@keys (grown as needed,
 * *@cap its length). Return: how many (>= 1), 0 if @data has no node,
 * -EBUSY if a lookup has it pinned or it is frozen already, -ENOMEM.
 * dedup_refs(): how many pages name the frozen @data now (some may have
 * let go since the freeze). dedup_thaw(): the move did not happen.
 * dedup_move(): it did, to @to (a backing-file slot if @written_back,
 * then never matched again; else a new handle): the node names @to and
 * is thawed.
 */
int dedup_freeze(struct dedup *d, uint64_t data, uint64_t **keys,
		 size_t *cap);
unsigned int dedup_refs(struct dedup *d, uint64_t data);
void dedup_thaw(struct dedup *d, uint64_t data);
void dedup_move(struct dedup *d, uint64_t data, uint64_t to,
		bool written_back);

/*
 * dedup_share() - page @to names object @data too (a fork's copy of page
 * @from, which names it now, as a retained copy if @from_retained): the
 * object's node counts both, made now if the object has none (no hash:
 * never matched; @flags, @size bytes; the store's own count of its bytes,
 * which the node takes over, is handed to it). A node past
 * max-page-sharing still takes it: a fork copies memory, it does not
 * look for equal pages.
 * Return: 0; -EBUSY if the node is frozen (a write-back or migration
 * takes its pages: try again once they are given back); -ENOSPC if it
 * names DEDUP_MAX_SHARING_LIMIT pages; -ENOMEM.
 */
int dedup_share(struct dedup *d, uint64_t data, uint32_t flags, size_t size,
		uint64_t from, bool from_retained, uint64_t to);

/*
 * Recovery, for each page the records name: dedup_recover_repeat() says
 * whether an earlier page named object @data: 1 (then @key joins its
 * node, and *@size is its bytes), 0 (the first: the caller checks the
 * object and gives it a node with dedup_insert(), no hash), or -ENOMEM
 * (the page cannot be named: the recovery fails). Then
 * dedup_recover_end() drops every node one page names: with no hash, it
 * shares nothing and never will (the object stays, counted as it was).
 */
int dedup_recover_repeat(struct dedup *d, uint64_t data, uint64_t key,
			 size_t *size);
void dedup_recover_end(struct dedup *d);

/*
 * The image at rest (with the store's): every node, its pages and the
 * hash seed, so that a successor on the same pool goes on sharing.
 * dedup_image_size() and dedup_save_image() with no other call in
 * flight; dedup_load_image() on an empty index: 0, or -EINVAL (*@why
 * says why) or -ENOMEM, the index left empty.
 */
size_t dedup_image_size(struct dedup *d);
/* Back to an empty index (its objects' bytes stay counted): a load that
 * failed half way, or an image the store could not take after all. */
void dedup_clear(struct dedup *d);
void dedup_save_image(struct dedup *d, uint64_t seed, void *buf);
int dedup_load_image(struct dedup *d, const void *buf, size_t len,
		     uint64_t *seed, const char **why);

void dedup_get_stats(struct dedup *d, struct dedup_stats *st);

#endif /* UZSWAPD_DEDUP_H */
