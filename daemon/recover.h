/*
 * recover.h - a successor makes a dead daemon's region true again, from
 * its page table and the client's memfd alone (the rules:
 * docs/architecture.md, "Restart without loss").
 *
 * Private to uzswapd. Runs during a takeover, before the region's range
 * is served: no other thread touches the region meanwhile.
 */
#ifndef UZSWAPD_RECOVER_H
#define UZSWAPD_RECOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "pagestate.h"

struct region;

/* What a page becomes. */
enum recover_verdict {
	RECOVER_NEW,		/* no content: zeros are right */
	RECOVER_RESIDENT,	/* its memfd holds it */
	RECOVER_STORED,		/* its stored copy is what it holds */
	RECOVER_LOST,		/* its content cannot be had again */
};

/*
 * recover_entry() - decide page entry @e, whose page's memfd holds data
 * (@has_data) or not, and rewrite it in its stable state: RESIDENT or NEW
 * without stamp, stored without PAGE_UNPUNCHED or stamp (LOADING back to
 * what it was taken from), or LOST. A stored verdict must still be named
 * to the store, which may find the copy gone (then the page is LOST).
 */
enum recover_verdict recover_entry(struct page_entry *e, bool has_data);

/* What recover_region() found, in pages. */
struct recover_stats {
	size_t resident;
	size_t stored;
	size_t lost;
};

/*
 * recover_region() - recover every page of @r (its table and memfd those
 * the dead daemon used; its slot set): decide each entry, name each stored
 * copy to the store (store_recover_ref(), between store_recover_begin()
 * and store_recover_end()), count what @r holds, and put its resident
 * pages on the slot's LRU. Cost: a look at each entry that may have been
 * written (region_next_entry()) and at each page the memfd holds.
 * Return: 0, or -errno if the memfd failed (the region cannot be trusted
 * then), in which case *@st is partial.
 */
int recover_region(struct region *r, struct recover_stats *st);

/*
 * recover_region_at_rest() - the same for a region a daemon left at rest
 * (atrest.h): its entries are all stable and its counters set from its
 * tally (region_set_tally()), so only the pages the memfd holds are
 * looked at: each is RESIDENT and on the LRU, and a stored copy its entry
 * still names (the client wrote into its memfd meanwhile) is dropped.
 * Cost: O(pages the memfd holds). Return as recover_region().
 */
int recover_region_at_rest(struct region *r, struct recover_stats *st);

#endif /* UZSWAPD_RECOVER_H */
