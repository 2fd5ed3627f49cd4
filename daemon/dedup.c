/*
 * dedup.c - the stable index of stored objects; see dedup.h.
 *
 * Two hash tables share one set of nodes: by hash (the first node of
 * each chain: what a new page may match; KSM keeps an rbtree ordered by
 * content, which the hash makes unnecessary) and by object (every node:
 * what a page letting go of its object finds). Both are chained through
 * 32-bit node numbers and double when the nodes outnumber their buckets
 * (an O(nodes) rehash under the lock, at each doubling only). A node
 * names its first page inline and the others through rmap records, so
 * that an object named once, the common case, costs one node.
 *
 * Lifetime: a node lives while pages name it or a lookup has it pinned
 * (@refs + @pins); the thread whose put or unpin brings both to zero
 * removes it and frees the object (dedup_put() and dedup_unpin() tell
 * it to). A first node leaving its chain hands its place in the hash
 * index to its first dup.
 *
 * Bytes: each change of a node's pages first takes its bytes out of the
 * class they were in (class_of()) and then puts them in the new one, so
 * that the store's counters hold every object exactly once.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"
#include "lib/common/failpoint.h"

#define SLAB_SHIFT	12
#define SLAB_RECORDS	(1u << SLAB_SHIFT)
#define MIN_BITS	10

/* struct dedup_node flags */
#define NODE_HASHED	0x01	/* @hash is the page's: in the hash index
				   (a first node) or in a chain (a dup) */
#define NODE_DUP	0x02	/* linked into a chain, not its first */
#define NODE_FROZEN	0x04	/* taken for write-back or migration */
#define NODE_SLOT	0x08	/* @data is a backing-file slot */
#define NODE_ZSTD	0x10	/* the object's flags: PAGE_ZSTD */
#define NODE_RAW	0x20	/* PAGE_RAW */

/*
 * struct dedup_node - one object and the pages naming it (48 bytes)
 * @next_hash: the hash bucket's chain (first nodes), or the free list
 * @next_data: the object bucket's chain
 * @hash:      the page's hash (NODE_HASHED)
 * @data:      the object: a z3fold handle, or a slot (NODE_SLOT)
 * @owner:     the first page naming it (when @refs > 0)
 * @rmap:      the others, a list of struct dedup_rmap
 * @chain:     a first node: its first dup; a dup: the next one
 * @refs:      pages naming it
 * @retained:  of those, resident pages that kept it (clean retention)
 * @size:      the object's bytes
 * @pins:      lookups comparing a page with it
 * @flags:     NODE_*
 */
struct dedup_node {
	uint32_t next_hash;
	uint32_t next_data;
	uint64_t hash;
	uint64_t data;
	uint64_t owner;
	uint32_t rmap;
	uint32_t chain;
	uint16_t refs;
	uint16_t retained;
	uint16_t size;
	uint8_t pins;
	uint8_t flags;
};
_Static_assert(sizeof(struct dedup_node) == 48, "a node is 48 bytes");

/* struct dedup_rmap - a page naming a node, past its first */
struct dedup_rmap {
	uint32_t next;
	uint32_t pad;
	uint64_t key;
};

/* Where a node's bytes are counted. */
enum byte_class { IN_NONE, IN_PAYLOAD, IN_RETAINED };

/*****************
 * Records
 *****************/

static void slab_init(struct dedup_slab *s, size_t size)
{
	memset(s, 0, sizeof(*s));
	s->size = size;
	s->free = DEDUP_NO_NODE;
}

static void slab_destroy(struct dedup_slab *s)
{
	size_t i;

	for (i = 0; i < s->nr_segs; i++)
		free(s->segs[i]);
	free(s->segs);
}

static void *slab_at(const struct dedup_slab *s, uint32_t i)
{
	return (char *)s->segs[i >> SLAB_SHIFT] +
	       (size_t)(i & (SLAB_RECORDS - 1)) * s->size;
}

/* A free record's number, or DEDUP_NO_NODE if no memory. */
static uint32_t slab_alloc(struct dedup *d, struct dedup_slab *s)
{
	uint32_t i = s->free;
	void **segs, *seg;

	if (i != DEDUP_NO_NODE) {
		s->free = *(uint32_t *)slab_at(s, i);
		return i;
	}
	if (s->used == DEDUP_NO_NODE)
		return DEDUP_NO_NODE;
	if (s->used >> SLAB_SHIFT == s->nr_segs) {
		if (failpoint_hit())
			return DEDUP_NO_NODE;
		segs = realloc(s->segs, (s->nr_segs + 1) * sizeof(*segs));
		if (!segs)
			return DEDUP_NO_NODE;
		s->segs = segs;
		seg = malloc(SLAB_RECORDS * s->size);
		if (!seg)
			return DEDUP_NO_NODE;
		s->segs[s->nr_segs++] = seg;
		d->st.meta_bytes += SLAB_RECORDS * s->size;
	}
	return s->used++;
}

static void slab_free(struct dedup_slab *s, uint32_t i)
{
	*(uint32_t *)slab_at(s, i) = s->free;
	s->free = i;
}

static struct dedup_node *node_at(const struct dedup *d, uint32_t i)
{
	return slab_at(&d->nodes, i);
}

static struct dedup_rmap *rmap_at(const struct dedup *d, uint32_t i)
{
	return slab_at(&d->rmap, i);
}

/*****************
 * The two indexes
 *****************/

static size_t hash_bucket(const struct dedup *d, uint64_t hash)
{
	return (size_t)(hash >> (64 - d->bits));
}

static size_t data_bucket(const struct dedup *d, uint64_t data)
{
	return (size_t)((data * 0x9e3779b97f4a7c15ull) >> (64 - d->bits));
}

/* Buckets of 1 << @bits: both tables, empty. 0 or -ENOMEM. */
static int buckets_alloc(unsigned int bits, uint32_t **hash, uint32_t **data)
{
	size_t n = (size_t)1 << bits;

	if (failpoint_hit())
		return -ENOMEM;
	*hash = malloc(n * sizeof(**hash));
	*data = malloc(n * sizeof(**data));
	if (!*hash || !*data) {
		free(*hash);
		free(*data);
		return -ENOMEM;
	}
	memset(*hash, 0xff, n * sizeof(**hash));
	memset(*data, 0xff, n * sizeof(**data));
	return 0;
}

static void hash_link(struct dedup *d, uint32_t i)
{
	struct dedup_node *n = node_at(d, i);
	uint32_t *head = &d->hash_heads[hash_bucket(d, n->hash)];

	n->next_hash = *head;
	*head = i;
}

static void data_link(struct dedup *d, uint32_t i)
{
	struct dedup_node *n = node_at(d, i);
	uint32_t *head = &d->data_heads[data_bucket(d, n->data)];

	n->next_data = *head;
	*head = i;
}

/* The link that holds @i in the hash index. */
static uint32_t *hash_link_of(struct dedup *d, uint32_t i)
{
	uint32_t *l = &d->hash_heads[hash_bucket(d, node_at(d, i)->hash)];

	while (*l != i)
		l = &node_at(d, *l)->next_hash;
	return l;
}

static void data_unlink(struct dedup *d, uint32_t i)
{
	uint32_t *l = &d->data_heads[data_bucket(d, node_at(d, i)->data)];

	while (*l != i)
		l = &node_at(d, *l)->next_data;
	*l = node_at(d, i)->next_data;
}

/* Is node @i live and in the indexes (not on the free list)? Every
 * live node has pages or pins. */
static bool node_live(const struct dedup *d, uint32_t i)
{
	const struct dedup_node *n = node_at(d, i);

	return n->refs || n->pins;
}

/* The nodes outnumber the buckets: double both tables. Nothing changes
 * if there is no memory (the chains only grow longer). Return: whether
 * they grew. */
static bool maybe_grow(struct dedup *d)
{
	uint32_t *hash, *data, *old_hash = d->hash_heads,
			       *old_data = d->data_heads;
	uint32_t i;

	if (d->st.nodes < (1ull << d->bits) || d->bits >= 31 ||
	    buckets_alloc(d->bits + 1, &hash, &data))
		return false;
	d->hash_heads = hash;
	d->data_heads = data;
	d->bits++;
	d->st.meta_bytes += (sizeof(*hash) + sizeof(*data)) << (d->bits - 1);
	for (i = 0; i < d->nodes.used; i++) {
		struct dedup_node *n = node_at(d, i);

		if (!node_live(d, i))
			continue;
		data_link(d, i);
		if ((n->flags & (NODE_HASHED | NODE_DUP)) == NODE_HASHED)
			hash_link(d, i);
	}
	free(old_hash);
	free(old_data);
	return true;
}

/* The node of object @data, or DEDUP_NO_NODE. */
static uint32_t find_data(const struct dedup *d, uint64_t data)
{
	uint32_t i = d->data_heads[data_bucket(d, data)];

	while (i != DEDUP_NO_NODE && node_at(d, i)->data != data)
		i = node_at(d, i)->next_data;
	return i;
}

/*****************
 * Bytes and counters
 *****************/

static enum byte_class class_of(const struct dedup_node *n)
{
	if ((n->flags & NODE_SLOT) || (!n->refs && !n->pins))
		return IN_NONE;
	if (n->refs && n->retained == n->refs)
		return IN_RETAINED;
	return IN_PAYLOAD;
}

static void class_add(struct dedup *d, enum byte_class c, size_t size,
		      int sign)
{
	atomic_uint_fast64_t *to = c == IN_PAYLOAD ? d->payload :
				   c == IN_RETAINED ? d->retained_bytes : NULL;

	if (to)
		atomic_fetch_add_explicit(to, (uint_fast64_t)(sign *
							     (int64_t)size),
					  memory_order_relaxed);
}

/* Take node @n's pages out of the sharing counters (@sign -1) or put
 * them back (+1), around a change of its pages. */
static void node_stats(struct dedup *d, const struct dedup_node *n, int sign)
{
	if (n->refs < 2)
		return;
	d->st.pages_shared += sign;
	d->st.pages_sharing += sign * (n->refs - 1);
	if (!(n->flags & NODE_SLOT))
		d->st.bytes_saved += sign * (int64_t)n->size * (n->refs - 1);
}

/* Node @n's bytes and pages out of every counter (@sign -1) or back in
 * (+1), around a change of its pages. */
static void node_count(struct dedup *d, const struct dedup_node *n, int sign)
{
	class_add(d, class_of(n), n->size, sign);
	node_stats(d, n, sign);
}

/*****************
 * Reverse map
 *****************/

/* Page @key names node @n now. 0 or -ENOMEM. */
static int rmap_add(struct dedup *d, struct dedup_node *n, uint64_t key)
{
	uint32_t r;

	if (n->refs) {
		r = slab_alloc(d, &d->rmap);
		if (r == DEDUP_NO_NODE)
			return -ENOMEM;
		rmap_at(d, r)->key = key;
		rmap_at(d, r)->next = n->rmap;
		n->rmap = r;
	} else {
		n->owner = key;
	}
	n->refs++;
	return 0;
}

/* Page @key no longer names node @n; false if it did not. */
static bool rmap_remove(struct dedup *d, struct dedup_node *n, uint64_t key)
{
	uint32_t *l = &n->rmap, r;

	if (!n->refs)
		return false;
	if (n->owner == key) {
		r = n->rmap;
		if (r != DEDUP_NO_NODE) {
			n->owner = rmap_at(d, r)->key;
			n->rmap = rmap_at(d, r)->next;
			slab_free(&d->rmap, r);
		}
		n->refs--;
		return true;
	}
	while (*l != DEDUP_NO_NODE && rmap_at(d, *l)->key != key)
		l = &rmap_at(d, *l)->next;
	if (*l == DEDUP_NO_NODE)
		return false;
	r = *l;
	*l = rmap_at(d, r)->next;
	slab_free(&d->rmap, r);
	n->refs--;
	return true;
}

/*****************
 * Nodes
 *****************/

/* Node @i's place in the hash index or its chain goes to its first dup,
 * or it leaves them. */
static void chain_unlink(struct dedup *d, uint32_t i)
{
	struct dedup_node *n = node_at(d, i), *next;
	uint32_t *l, j;

	if (!(n->flags & NODE_HASHED))
		return;
	if (!(n->flags & NODE_DUP)) {
		l = hash_link_of(d, i);
		*l = n->chain;
		if (n->chain == DEDUP_NO_NODE) {
			*l = n->next_hash;
			return;
		}
		next = node_at(d, n->chain);
		next->flags &= ~NODE_DUP;
		next->next_hash = n->next_hash;
		d->st.dups--;
		if (next->chain == DEDUP_NO_NODE)
			d->st.chains--;
		return;
	}
	/* a dup: find the link that holds it, from its chain's first */
	for (j = d->hash_heads[hash_bucket(d, n->hash)]; j != DEDUP_NO_NODE;
	     j = node_at(d, j)->next_hash) {
		for (l = &node_at(d, j)->chain; *l != DEDUP_NO_NODE;
		     l = &node_at(d, *l)->chain) {
			if (*l != i)
				continue;
			*l = n->chain;
			d->st.dups--;
			if (node_at(d, j)->chain == DEDUP_NO_NODE)
				d->st.chains--;
			return;
		}
	}
}

/* Node @i leaves: no lookup pins it, and no page names it, or none will
 * ever look (a recovered node named once). A free record is not live. */
static void node_remove(struct dedup *d, uint32_t i)
{
	struct dedup_node *n = node_at(d, i);

	chain_unlink(d, i);
	data_unlink(d, i);
	n->refs = n->pins = 0;
	n->flags = 0;
	slab_free(&d->nodes, i);
	d->st.nodes--;
}

/* Whether node @n takes another page. */
static bool node_has_room(struct dedup *d, const struct dedup_node *n)
{
	return !(n->flags & (NODE_FROZEN | NODE_SLOT)) &&
	       n->refs < atomic_load_explicit(&d->max_sharing,
					      memory_order_relaxed);
}

static uint32_t node_flags(uint32_t page_flags)
{
	return (page_flags & PAGE_ZSTD ? NODE_ZSTD : 0) |
	       (page_flags & PAGE_RAW ? NODE_RAW : 0);
}

static void match_set(const struct dedup *d, uint32_t i,
		      struct dedup_match *m)
{
	const struct dedup_node *n = node_at(d, i);

	m->node = i;
	m->data = n->data;
	m->flags = (n->flags & NODE_ZSTD ? PAGE_ZSTD : 0) |
		   (n->flags & NODE_RAW ? PAGE_RAW : 0);
	m->size = n->size;
}

/*****************
 * API
 *****************/

int dedup_init(struct dedup *d, atomic_uint_fast64_t *payload,
	       atomic_uint_fast64_t *retained_bytes)
{
	memset(d, 0, sizeof(*d));
	if (buckets_alloc(MIN_BITS, &d->hash_heads, &d->data_heads))
		return -ENOMEM;
	d->bits = MIN_BITS;
	d->st.meta_bytes = (sizeof(uint32_t) * 2) << MIN_BITS;
	slab_init(&d->nodes, sizeof(struct dedup_node));
	slab_init(&d->rmap, sizeof(struct dedup_rmap));
	atomic_init(&d->max_sharing, DEDUP_MAX_SHARING_DEFAULT);
	d->payload = payload;
	d->retained_bytes = retained_bytes;
	pthread_mutex_init(&d->lock, NULL);
	return 0;
}

void dedup_destroy(struct dedup *d)
{
	slab_destroy(&d->nodes);
	slab_destroy(&d->rmap);
	free(d->hash_heads);
	free(d->data_heads);
	pthread_mutex_destroy(&d->lock);
}

void dedup_set_max_sharing(struct dedup *d, unsigned int n)
{
	if (n < 2)
		n = 2;
	if (n > DEDUP_MAX_SHARING_LIMIT)
		n = DEDUP_MAX_SHARING_LIMIT;
	atomic_store(&d->max_sharing, n);
}

bool dedup_lookup(struct dedup *d, uint64_t hash, struct dedup_match *m)
{
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	if (m->node == DEDUP_NO_NODE || !node_live(d, m->node) ||
	    node_at(d, m->node)->hash != hash)
		i = d->hash_heads[hash_bucket(d, hash)];
	else
		i = node_at(d, m->node)->next_hash;
	for (; i != DEDUP_NO_NODE; i = node_at(d, i)->next_hash) {
		struct dedup_node *n = node_at(d, i);

		if (n->hash == hash && n->pins < UINT8_MAX &&
		    !(n->flags & (NODE_FROZEN | NODE_SLOT)))
			break;
	}
	if (i != DEDUP_NO_NODE) {
		struct dedup_node *n = node_at(d, i);

		node_count(d, n, -1);
		n->pins++;
		node_count(d, n, 1);
		match_set(d, i, m);
	}
	pthread_mutex_unlock(&d->lock);
	return i != DEDUP_NO_NODE;
}

/* Release the pin on node @i; whether that was the last hold on it (it
 * is gone, its object the caller's to free). Lock held. */
static bool unpin_locked(struct dedup *d, uint32_t i)
{
	struct dedup_node *n = node_at(d, i);

	node_count(d, n, -1);
	n->pins--;
	node_count(d, n, 1);
	if (n->refs || n->pins)
		return false;
	node_remove(d, i);
	return true;
}

int dedup_join(struct dedup *d, struct dedup_match *m, uint64_t key)
{
	struct dedup_node *n;
	uint32_t i;
	int ret = -ENOSPC;

	/* the first node is pinned: never frozen (dedup_freeze()), never
	 * gone; a dup of its chain may be frozen (node_has_room()) */
	pthread_mutex_lock(&d->lock);
	for (i = m->node; i != DEDUP_NO_NODE; i = n->chain) {
		n = node_at(d, i);
		if (!node_has_room(d, n))
			continue;
		node_count(d, n, -1);
		ret = rmap_add(d, n, key);
		node_count(d, n, 1);
		if (ret)
			break;
		d->st.merged++;
		unpin_locked(d, m->node);
		match_set(d, i, m);
		break;
	}
	if (ret == -ENOMEM) {
		/* no record for it: the caller stores the page alone; the
		 * node keeps its pages (a record is needed only past the
		 * first), so the pin is not its last hold */
		ret = -EBUSY;
		unpin_locked(d, m->node);
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

bool dedup_unpin(struct dedup *d, const struct dedup_match *m,
		 bool differed)
{
	bool last;

	pthread_mutex_lock(&d->lock);
	d->st.collisions += differed;
	last = unpin_locked(d, m->node);
	pthread_mutex_unlock(&d->lock);
	return last;
}

/* A node for object @data (@flags, @size bytes, a backing slot when
 * PAGE_DATA_SLOT) named by page @key alone, hashed if @hash, linked by
 * object only, its bytes not counted yet. @d's lock held. Return: its
 * number, or DEDUP_NO_NODE (no memory). */
static uint32_t node_new(struct dedup *d, const uint64_t *hash,
			 uint64_t data, uint32_t flags, size_t size,
			 uint64_t key)
{
	uint32_t i = slab_alloc(d, &d->nodes);

	if (i == DEDUP_NO_NODE)
		return i;
	*node_at(d, i) = (struct dedup_node){
		.hash = hash ? *hash : 0,
		.data = data,
		.owner = key,
		.rmap = DEDUP_NO_NODE,
		.chain = DEDUP_NO_NODE,
		.refs = 1,
		.size = (uint16_t)size,
		.flags = (uint8_t)(node_flags(flags) |
				   (hash ? NODE_HASHED : 0) |
				   (data & PAGE_DATA_SLOT ? NODE_SLOT : 0)),
	};
	d->st.nodes++;
	data_link(d, i);
	return i;
}

int dedup_insert(struct dedup *d, const uint64_t *hash, uint64_t data,
		 uint32_t flags, size_t size, uint64_t key,
		 const struct dedup_match *dup_of)
{
	struct dedup_node *n, *first;
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	i = node_new(d, hash, data, flags, size, key);
	if (i == DEDUP_NO_NODE) {
		pthread_mutex_unlock(&d->lock);
		return -ENOMEM;
	}
	n = node_at(d, i);
	if (hash && dup_of) {
		first = node_at(d, dup_of->node);
		n->flags |= NODE_DUP;
		if (first->chain == DEDUP_NO_NODE)
			d->st.chains++;
		n->chain = first->chain;
		first->chain = i;
		d->st.dups++;
	} else if (hash) {
		hash_link(d, i);
	}
	node_count(d, n, 1);
	maybe_grow(d);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

enum dedup_put dedup_put(struct dedup *d, uint64_t data, uint64_t key,
			 bool retained)
{
	enum dedup_put ret = DEDUP_NONE;
	struct dedup_node *n;
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i == DEDUP_NO_NODE)
		goto out_unlock;
	n = node_at(d, i);
	node_count(d, n, -1);
	if (!rmap_remove(d, n, key)) {
		/* not a page of the node (a successor dropping a page its
		 * records no longer name): the node is as it was */
		node_count(d, n, 1);
		ret = DEDUP_KEPT;
		goto out_unlock;
	}
	if (retained && n->retained)
		n->retained--;
	node_count(d, n, 1);
	ret = DEDUP_KEPT;
	if (!n->refs && !n->pins) {
		node_remove(d, i);
		ret = DEDUP_LAST;
	}
out_unlock:
	pthread_mutex_unlock(&d->lock);
	return ret;
}

bool dedup_retain(struct dedup *d, uint64_t data, int delta)
{
	struct dedup_node *n;
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i != DEDUP_NO_NODE) {
		n = node_at(d, i);
		node_count(d, n, -1);
		n->retained = (uint16_t)(n->retained + delta);
		node_count(d, n, 1);
	}
	pthread_mutex_unlock(&d->lock);
	return i != DEDUP_NO_NODE;
}

/* Room for @n keys in *@keys. 0 or -ENOMEM. */
static int keys_reserve(uint64_t **keys, size_t *cap, size_t n)
{
	uint64_t *grown;

	if (n <= *cap)
		return 0;
	grown = realloc(*keys, n * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	*keys = grown;
	*cap = n;
	return 0;
}

int dedup_freeze(struct dedup *d, uint64_t data, uint64_t **keys,
		 size_t *cap)
{
	struct dedup_node *n;
	uint32_t i, r;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i == DEDUP_NO_NODE)
		goto out_unlock;
	n = node_at(d, i);
	ret = -EBUSY;
	if (n->pins || (n->flags & NODE_FROZEN) || !n->refs)
		goto out_unlock;
	ret = keys_reserve(keys, cap, n->refs);
	if (ret)
		goto out_unlock;
	n->flags |= NODE_FROZEN;
	(*keys)[0] = n->owner;
	ret = 1;
	for (r = n->rmap; r != DEDUP_NO_NODE; r = rmap_at(d, r)->next)
		(*keys)[ret++] = rmap_at(d, r)->key;
out_unlock:
	pthread_mutex_unlock(&d->lock);
	return ret;
}

unsigned int dedup_refs(struct dedup *d, uint64_t data)
{
	unsigned int refs = 0;
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i != DEDUP_NO_NODE)
		refs = node_at(d, i)->refs;
	pthread_mutex_unlock(&d->lock);
	return refs;
}

void dedup_thaw(struct dedup *d, uint64_t data)
{
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i != DEDUP_NO_NODE)
		node_at(d, i)->flags &= ~NODE_FROZEN;
	pthread_mutex_unlock(&d->lock);
}

void dedup_move(struct dedup *d, uint64_t data, uint64_t to,
		bool written_back)
{
	struct dedup_node *n;
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i != DEDUP_NO_NODE) {
		n = node_at(d, i);
		node_count(d, n, -1);
		data_unlink(d, i);
		if (written_back) {
			/* no compare against the file: out of the index */
			chain_unlink(d, i);
			n->flags &= ~(NODE_HASHED | NODE_DUP);
			n->flags |= NODE_SLOT;
			n->chain = DEDUP_NO_NODE;
		}
		n->data = to;
		n->flags &= ~NODE_FROZEN;
		data_link(d, i);
		node_count(d, n, 1);
	}
	pthread_mutex_unlock(&d->lock);
}

/* A node for object @data, which only page @from names yet and which
 * the store counted: the node counts it from now on. @d's lock held.
 * Return: the node, or DEDUP_NO_NODE (no memory). */
static uint32_t node_for_object(struct dedup *d, uint64_t data,
				uint32_t flags, size_t size, uint64_t from,
				bool from_retained)
{
	struct dedup_node *n;
	uint32_t i = node_new(d, NULL, data, flags, size, from);

	if (i == DEDUP_NO_NODE)
		return i;
	n = node_at(d, i);
	n->retained = from_retained;
	class_add(d, class_of(n), n->size, -1);	/* the store's count */
	node_count(d, n, 1);
	maybe_grow(d);
	return i;
}

int dedup_share(struct dedup *d, uint64_t data, uint32_t flags, size_t size,
		uint64_t from, bool from_retained, uint64_t to)
{
	struct dedup_node *n;
	uint32_t i;
	int ret = -ENOMEM;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i == DEDUP_NO_NODE)
		i = node_for_object(d, data, flags, size, from, from_retained);
	if (i == DEDUP_NO_NODE)
		goto out_unlock;
	n = node_at(d, i);
	ret = n->flags & NODE_FROZEN ? -EBUSY :
	      n->refs >= DEDUP_MAX_SHARING_LIMIT ? -ENOSPC : 0;
	if (ret)
		goto out_unlock;
	node_count(d, n, -1);
	ret = rmap_add(d, n, to);
	node_count(d, n, 1);
out_unlock:
	pthread_mutex_unlock(&d->lock);
	return ret;
}

int dedup_recover_repeat(struct dedup *d, uint64_t data, uint64_t key,
			 size_t *size)
{
	struct dedup_node *n;
	uint32_t i;
	int repeat = 0;

	pthread_mutex_lock(&d->lock);
	i = find_data(d, data);
	if (i != DEDUP_NO_NODE) {
		n = node_at(d, i);
		node_count(d, n, -1);
		repeat = rmap_add(d, n, key) ? -ENOMEM : 1;
		node_count(d, n, 1);
		*size = n->size;
	}
	pthread_mutex_unlock(&d->lock);
	return repeat;
}

void dedup_recover_end(struct dedup *d)
{
	uint32_t i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nodes.used; i++) {
		struct dedup_node *n = node_at(d, i);

		if (!node_live(d, i) || n->refs != 1 ||
		    (n->flags & NODE_HASHED))
			continue;
		/* the object keeps its bytes where they are counted */
		node_remove(d, i);
	}
	pthread_mutex_unlock(&d->lock);
}

/*****************
 * The image at rest
 *****************/

#define DEDUP_IMAGE_MAGIC	0x757a646564757031ull	/* "uzdedup1" */

/* struct dedup_image - its head; then @nr_nodes struct image_node, each
 * chain's first before its dups; then the nodes' page keys in the same
 * order, @refs for each */
struct dedup_image {
	uint64_t magic;
	uint64_t seed;
	uint64_t nr_nodes;
	uint64_t nr_keys;
};

struct image_node {
	uint64_t hash;
	uint64_t data;
	uint16_t refs;
	uint16_t retained;
	uint16_t size;
	uint8_t flags;
	uint8_t pad;
};

/* Call @fn for every live node, each chain's first before its dups. */
static void for_each_saved(struct dedup *d,
			   void (*fn)(struct dedup *, uint32_t, void *),
			   void *arg)
{
	uint32_t i, j;

	for (i = 0; i < d->nodes.used; i++) {
		if (!node_live(d, i) || (node_at(d, i)->flags & NODE_DUP))
			continue;
		for (j = i; j != DEDUP_NO_NODE; j = node_at(d, j)->chain)
			fn(d, j, arg);
	}
}

/* struct image_cursor - where dedup_save_image() writes */
struct image_cursor {
	struct image_node *node;
	uint64_t *key;
	uint64_t keys;
};

static void count_keys(struct dedup *d, uint32_t i, void *arg)
{
	*(uint64_t *)arg += node_at(d, i)->refs;
}

static void save_node(struct dedup *d, uint32_t i, void *arg)
{
	struct image_cursor *c = arg;
	const struct dedup_node *n = node_at(d, i);
	uint32_t r;

	*c->node++ = (struct image_node){
		.hash = n->hash, .data = n->data, .refs = n->refs,
		.retained = n->retained, .size = n->size,
		.flags = (uint8_t)(n->flags & ~NODE_FROZEN),
	};
	if (!n->refs)
		return;
	*c->key++ = n->owner;
	for (r = n->rmap; r != DEDUP_NO_NODE; r = rmap_at(d, r)->next)
		*c->key++ = rmap_at(d, r)->key;
}

size_t dedup_image_size(struct dedup *d)
{
	uint64_t keys = 0;

	for_each_saved(d, count_keys, &keys);
	return sizeof(struct dedup_image) +
	       d->st.nodes * sizeof(struct image_node) +
	       keys * sizeof(uint64_t);
}

void dedup_save_image(struct dedup *d, uint64_t seed, void *buf)
{
	struct dedup_image *im = buf;
	struct image_cursor c = { (struct image_node *)(im + 1), NULL, 0 };

	for_each_saved(d, count_keys, &c.keys);
	*im = (struct dedup_image){ DEDUP_IMAGE_MAGIC, seed, d->st.nodes,
				    c.keys };
	c.key = (uint64_t *)(c.node + d->st.nodes);
	for_each_saved(d, save_node, &c);
}

/* Node @rec of an image, with its @keys, into the index (which has
 * buckets enough); @first: the chain's first node so far. 0 or
 * -ENOMEM. */
static int load_node(struct dedup *d, const struct image_node *rec,
		     const uint64_t *keys, uint32_t *first)
{
	uint32_t i = slab_alloc(d, &d->nodes), k;
	struct dedup_node *n;

	if (i == DEDUP_NO_NODE)
		return -ENOMEM;
	n = node_at(d, i);
	*n = (struct dedup_node){
		.hash = rec->hash, .data = rec->data,
		.rmap = DEDUP_NO_NODE, .chain = DEDUP_NO_NODE,
		.retained = rec->retained, .size = rec->size,
		.flags = rec->flags,
	};
	d->st.nodes++;
	for (k = 0; k < rec->refs; k++)
		if (rmap_add(d, n, keys[k]))
			return -ENOMEM;
	data_link(d, i);
	if ((n->flags & NODE_DUP) && *first != DEDUP_NO_NODE) {
		struct dedup_node *f = node_at(d, *first);

		if (f->chain == DEDUP_NO_NODE)
			d->st.chains++;
		n->chain = f->chain;
		f->chain = i;
		d->st.dups++;
	} else if (n->flags & NODE_HASHED) {
		n->flags &= ~NODE_DUP;
		hash_link(d, i);
		*first = i;
	}
	node_stats(d, n, 1);
	return 0;
}

void dedup_clear(struct dedup *d)
{
	size_t n = (size_t)1 << d->bits;

	pthread_mutex_lock(&d->lock);
	slab_destroy(&d->nodes);
	slab_destroy(&d->rmap);
	slab_init(&d->nodes, sizeof(struct dedup_node));
	slab_init(&d->rmap, sizeof(struct dedup_rmap));
	memset(d->hash_heads, 0xff, n * sizeof(*d->hash_heads));
	memset(d->data_heads, 0xff, n * sizeof(*d->data_heads));
	memset(&d->st, 0, sizeof(d->st));
	d->st.meta_bytes = (sizeof(uint32_t) * 2) << d->bits;
	pthread_mutex_unlock(&d->lock);
}

int dedup_load_image(struct dedup *d, const void *buf, size_t len,
		     uint64_t *seed, const char **why)
{
	const struct dedup_image *im = buf;
	const struct image_node *rec = (const void *)(im + 1);
	const uint64_t *keys;
	uint64_t i, nk = 0;
	uint32_t first = DEDUP_NO_NODE;
	bool grew;
	int ret = 0;

	*why = "not a deduplication index";
	if (len < sizeof(*im) || im->magic != DEDUP_IMAGE_MAGIC ||
	    im->nr_nodes > (len - sizeof(*im)) / sizeof(*rec) ||
	    im->nr_keys * sizeof(*keys) !=
		    len - sizeof(*im) - im->nr_nodes * sizeof(*rec))
		return -EINVAL;
	keys = (const uint64_t *)(rec + im->nr_nodes);
	for (i = 0; i < im->nr_nodes; i++)
		nk += rec[i].refs;
	if (nk != im->nr_keys)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	for (grew = true; grew;) {
		/* as many buckets as nodes, before any is linked */
		d->st.nodes += im->nr_nodes;
		grew = maybe_grow(d);
		d->st.nodes -= im->nr_nodes;
	}
	for (i = 0; i < im->nr_nodes && ret == 0; i++) {
		ret = load_node(d, &rec[i], keys, &first);
		keys += rec[i].refs;
	}
	pthread_mutex_unlock(&d->lock);
	*why = "no memory for the deduplication index";
	if (ret) {
		dedup_clear(d);
		return ret;
	}
	*seed = im->seed;
	*why = NULL;
	return 0;
}

void dedup_get_stats(struct dedup *d, struct dedup_stats *st)
{
	pthread_mutex_lock(&d->lock);
	*st = d->st;
	pthread_mutex_unlock(&d->lock);
}
