/*
 * atrest.c - a handover's image at rest (see atrest.h).
 *
 * The caller's part of DIR/at-rest (statedir.h has the header):
 * struct rest_body, then the store's image (@store_len bytes), then
 * @nr_tallies struct region_tally sorted by id.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest.h"
#include "region.h"
#include "store.h"

struct rest_body {
	uint64_t store_len;
	uint64_t nr_tallies;
};

/*
 * struct atrest - an image taken from the directory
 * @buf, @len:        the caller's part of the file (owned)
 * @store, @store_len: the store's image in it
 * @tallies, @nr_tallies: the regions', by rising id
 */
struct atrest {
	void *buf;
	size_t len;
	const void *store;
	size_t store_len;
	const struct region_tally *tallies;
	size_t nr_tallies;
};

static int tally_cmp(const void *a, const void *b)
{
	const struct region_tally *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

int atrest_save(struct statedir *sd, struct store *s, struct region_index *ix)
{
	const size_t head = STATEDIR_REST_HEADER + sizeof(struct rest_body);
	const struct region_tally *t;
	struct region_tally *tallies;
	struct rest_body *body;
	size_t n, store_len, len;
	uint8_t *buf;
	int ret;

	if (!region_index_tallies(ix, &t, &n))
		return -ENOMEM;
	store_len = store_image_size(s);
	len = head + store_len + n * sizeof(*t);
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	body = (struct rest_body *)(buf + STATEDIR_REST_HEADER);
	*body = (struct rest_body){ store_len, n };
	store_save_image(s, buf + head);
	tallies = (struct region_tally *)(buf + head + store_len);
	if (n) {
		memcpy(tallies, t, n * sizeof(*t));
		qsort(tallies, n, sizeof(*t), tally_cmp);
	}
	ret = statedir_rest_write(sd, buf, len);
	free(buf);
	return ret;
}

/* Whether the caller's part @a->buf holds a body, a store image and
 * tallies, sorted and unique; points @a at them. */
static bool parse(struct atrest *a)
{
	const struct rest_body *body = a->buf;
	size_t i;

	if (a->len < sizeof(*body) ||
	    body->store_len > a->len - sizeof(*body) ||
	    body->nr_tallies != (a->len - sizeof(*body) - body->store_len) /
					sizeof(struct region_tally) ||
	    (a->len - sizeof(*body) - body->store_len) %
		    sizeof(struct region_tally))
		return false;
	a->store = body + 1;
	a->store_len = body->store_len;
	a->tallies = (const struct region_tally *)((const char *)a->store +
						   a->store_len);
	a->nr_tallies = body->nr_tallies;
	for (i = 1; i < a->nr_tallies; i++)
		if (a->tallies[i - 1].id >= a->tallies[i].id)
			return false;
	return true;
}

const struct region_tally *atrest_tally(const struct atrest *a, uint64_t id)
{
	struct region_tally key = { .id = id };

	return bsearch(&key, a->tallies, a->nr_tallies, sizeof(key),
		       tally_cmp);
}

struct atrest *atrest_take(struct statedir *sd,
			   const struct statedir_state *st,
			   char err[STATEDIR_ERR_MAX])
{
	struct atrest *a = calloc(1, sizeof(*a));
	uint32_t i;
	int ret;

	if (!a) {
		snprintf(err, STATEDIR_ERR_MAX, "out of memory");
		return NULL;
	}
	ret = statedir_rest_take(sd, st->epoch, &a->buf, &a->len, err);
	if (ret == 0 && !parse(a)) {
		snprintf(err, STATEDIR_ERR_MAX, "%s/at-rest: not laid out as "
			 "this release lays it out", statedir_path(sd));
		ret = -EINVAL;
	}
	for (i = 0; ret == 0 && i < st->nr_regions; i++)
		if (!atrest_tally(a, st->regions[i].id)) {
			snprintf(err, STATEDIR_ERR_MAX, "%s/at-rest: region "
				 "%llu has no tally", statedir_path(sd),
				 (unsigned long long)st->regions[i].id);
			ret = -EINVAL;
		}
	if (ret) {
		atrest_free(a);
		errno = -ret;
		return NULL;
	}
	return a;
}

int atrest_load_store(const struct atrest *a, struct store *s,
		      const char **why)
{
	return store_load_image(s, a->store, a->store_len, why);
}

void atrest_free(struct atrest *a)
{
	if (!a)
		return;
	free(a->buf);
	free(a);
}
