/*
 * atrest.h - a handover's image at rest: what a daemon stopping with
 * nothing in flight leaves its successor beside the superblock (the
 * store's image: its pool's list heads and counters, the backing file's
 * slot map; and each region's tally), so that the takeover costs
 * O(regions + resident pages), not O(pages stored). A crash leaves none:
 * the successor then recovers page by page (recover.h).
 *
 * Private to uzswapd; loop thread (startup and the end of a handover).
 */
#ifndef UZSWAPD_ATREST_H
#define UZSWAPD_ATREST_H

#include <stdint.h>

#include "statedir.h"

struct region_index;
struct region_tally;
struct store;
struct atrest;

/*
 * atrest_save() - write the image of @s and of the regions @ix freed since
 * its hand-over, once every thread is stopped. Return: 0, -ENOMEM (a
 * tally was lost), or another -errno (the file could not be written);
 * the successor then recovers.
 */
int atrest_save(struct statedir *sd, struct store *s, struct region_index *ix);

/*
 * atrest_take() - the image the daemon of superblock @st left, if it
 * names every region of @st; the file goes in any case.
 * Return: the image, or NULL: errno ENOENT (none), else why in @err.
 */
struct atrest *atrest_take(struct statedir *sd,
			   const struct statedir_state *st,
			   char err[STATEDIR_ERR_MAX]);

/* Make store @s (just made on the files) what the image says, instead of
 * recovering it. 0; -EINVAL (*@why says why; nothing changed: recover
 * instead); -ENOMEM. */
int atrest_load_store(const struct atrest *a, struct store *s,
		      const char **why);

/* The tally of region @id (atrest_take() checked there is one). */
const struct region_tally *atrest_tally(const struct atrest *a, uint64_t id);

void atrest_free(struct atrest *a);

#endif /* UZSWAPD_ATREST_H */
