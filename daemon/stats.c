/*
 * stats.c - the daemon's counters gathered for every view of them (see
 * stats.h). The counters themselves live with their owners (the store,
 * the evictors, the fault threads, each mm_slot and region); this file
 * only reads them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "stats.h"
#include "uzswapd.h"

/*****************
 * Uptime and fault rate
 *****************/

void stats_rate_init(struct stats_rate *r)
{
	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &r->started);
}

void stats_tick(struct stats_rate *r, struct fault_pool *fp)
{
	struct fault_stats fs;

	fault_get_stats(fp, &fs);
	r->faults[r->next] = fs.faults;
	r->next = (r->next + 1) % STATS_RATE_SAMPLES;
	if (r->nr < STATS_RATE_SAMPLES)
		r->nr++;
}

/* Faults per second between the oldest and the newest sample. */
static double fault_rate(const struct stats_rate *r)
{
	unsigned int newest = (r->next + STATS_RATE_SAMPLES - 1) %
			      STATS_RATE_SAMPLES;
	unsigned int oldest = r->nr < STATS_RATE_SAMPLES ? 0 : r->next;

	if (r->nr < 2)
		return 0;
	return (double)(r->faults[newest] - r->faults[oldest]) / (r->nr - 1);
}

static uint64_t uptime_sec(const struct stats_rate *r)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - r->started.tv_sec);
}

/*****************
 * Snapshots
 *****************/

void stats_snapshot(struct uzswapd *d, struct stats_snapshot *s)
{
	uint64_t faults;

	memset(s, 0, sizeof(*s));
	s->clients = registry_nr_slots(&d->registry);
	registry_totals(&d->registry, &s->registered_bytes, &faults);
	s->resident_bytes = (uint64_t)region_index_resident(&d->regions) << PAGE_SHIFT;
	registry_get_limits(&d->registry, &s->default_limit,
			    &s->resident_limit);
	store_get_stats(&d->store, &s->store);
	evict_get_stats(d->evictors, &s->evict);
	fault_get_stats(d->faults, &s->fault);
	if (d->store.backing) {
		s->has_backing = true;
		backing_get_stats(d->store.backing, &s->backing);
	}
	s->algo = (enum compress_algo)atomic_load(&d->store.algo);
	s->zstd_level = atomic_load(&d->store.level);
	s->uptime_sec = uptime_sec(&d->rate);
	s->fault_rate = fault_rate(&d->rate);
}

void stats_status(const struct stats_snapshot *s,
		  struct proto_status_reply *r)
{
	*r = (struct proto_status_reply){
		.clients = s->clients,
		.registered_bytes = s->registered_bytes,
		.resident_bytes = s->resident_bytes,
		.resident_limit = s->resident_limit,
		.default_limit = s->default_limit,
		.stored_pages = s->store.compressed + s->store.raw +
				s->store.same,
		.same_pages = s->store.same,
		.raw_pages = s->store.raw,
		.payload_bytes = s->store.payload_bytes,
		.pool_bytes = s->store.pool_bytes,
		.evictions = s->evict.evicted,
		.loads = s->store.loads,
		.faults = s->fault.faults,
		.store_failures = s->store.failures,
		.read_ahead = s->fault.read_ahead,
		.pool_limit = s->store.pool_limit,
		.pool_full = s->store.full,
		.written_back_pages = s->store.written_back,
		.writebacks = s->store.writebacks,
		.writeback_failures = s->store.writeback_failures,
		.backing_bytes = s->backing.used_bytes,
		.backing_limit = s->backing.limit_bytes,
		.uptime_sec = s->uptime_sec,
		.fault_rate_milli = (uint64_t)(s->fault_rate * 1000),
		.compressor = s->algo,
		.zstd_level = (uint64_t)s->zstd_level,
		.dedup = s->store.dedup_on,
		.dedup_pages_shared = s->store.dedup.pages_shared,
		.dedup_pages_sharing = s->store.dedup.pages_sharing,
		.dedup_bytes_saved = s->store.dedup.bytes_saved,
		.dedup_merged = s->store.dedup.merged,
		.dedup_collisions = s->store.dedup.collisions,
		.dedup_chains = s->store.dedup.chains,
		.dedup_dups = s->store.dedup.dups,
		.dedup_index_bytes = s->store.dedup.meta_bytes,
		.compacted_pages = s->store.compacted_pages,
		.migrated_objects = s->store.migrated,
		.compact_runs = s->store.compact_runs,
		.compressed_pages = s->store.compressed,
		.backing_file_bytes = s->backing.file_bytes,
		.fault_zero_pages = s->fault.zero_pages,
		.fault_loads = s->fault.loads,
		.fault_wakes = s->fault.wakes,
		.fault_wp = s->fault.wp_faults,
		.fault_retries = s->fault.retries,
		.eviction_runs = s->evict.runs,
		.eviction_store_full = s->evict.store_full,
		.lru_second_chances = s->evict.second_chances,
		.stores = s->store.stores,
		.pool_full_events = s->store.full_events,
		.backing_read_errors = s->backing.read_errors,
		.backing_write_errors = s->backing.write_errors,
		.fault_poisoned = s->fault.poisoned,
		.backing_backend = !s->has_backing ? PROTO_BACKING_NONE :
				   !strcmp(s->backing.kind, "nbd") ?
				   PROTO_BACKING_NBD : PROTO_BACKING_FILE,
		.backing_up = s->has_backing &&
			      (strcmp(s->backing.kind, "nbd") ||
			       s->backing.nbd.connected),
		.backing_read_bytes = s->backing.read_bytes,
		.backing_write_bytes = s->backing.write_bytes,
		.backing_released_bytes = s->backing.punched * 4096,
		.backing_checksum_errors = s->backing.checksum_errors,
		.backing_read_waits = s->backing.read_waits,
		.backing_read_timeouts = s->backing.timeouts,
		.backing_connects = s->backing.nbd.connects,
		.backing_disconnects = s->backing.nbd.disconnects,
		.backing_export_bytes = s->backing.nbd.size_bytes,
		.backing_read_ns = s->backing.latency_ns[0],
		.backing_reads_timed =
			s->backing.latency[0][BACKING_LATENCY_BUCKETS],
		.backing_write_ns = s->backing.latency_ns[1],
		.backing_writes_timed =
			s->backing.latency[1][BACKING_LATENCY_BUCKETS],
	};
}

void stats_client_row(struct mm_slot *slot, struct proto_client_row *row)
{
	struct list_node *pos;

	memset(row, 0, sizeof(*row));
	row->pid = slot->pid;
	row->uid = slot->uid;
	memcpy(row->comm, slot->comm, sizeof(row->comm));
	row->comm[sizeof(row->comm) - 1] = '\0';
	pthread_mutex_lock(&slot->lock);
	list_for_each(pos, &slot->regions) {
		struct region *r = container_of(pos, struct region, node);

		row->stored_pages += atomic_load(&r->stored);
		row->pooled_pages += atomic_load(&r->pooled);
		row->compressed_bytes += atomic_load(&r->compressed_bytes);
	}
	row->regions = slot->nr_regions;
	row->registered_bytes = slot->registered;
	pthread_mutex_unlock(&slot->lock);
	row->resident_bytes = (uint64_t)atomic_load(&slot->resident)
			      << PAGE_SHIFT;
	row->limit_bytes = mm_slot_limit(slot);
	row->own_limit_bytes = atomic_load(&slot->limit);
	row->faults = atomic_load(&slot->faults);
	row->evictions = atomic_load(&slot->evictions);
	row->direct_evictions = atomic_load(&slot->direct_evictions);
	row->budget_waits = atomic_load(&slot->budget_waits);
	row->over_budget = atomic_load(&slot->over_budget);
}

/*
 * Keep the @max lowest pids above @after in @pick, a max-heap on pid of
 * @n entries: the root is the highest pid kept, replaced by any lower one.
 */
static void heap_sift_down(struct mm_slot **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, top = i;
		struct mm_slot *t;

		if (l < n && h[l]->pid > h[top]->pid)
			top = l;
		if (r < n && h[r]->pid > h[top]->pid)
			top = r;
		if (top == i)
			return;
		t = h[i];
		h[i] = h[top];
		h[top] = t;
		i = top;
	}
}

static void heap_sift_up(struct mm_slot **h, size_t i)
{
	while (i && h[(i - 1) / 2]->pid < h[i]->pid) {
		struct mm_slot *t = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = (*(struct mm_slot *const *)a)->pid;
	pid_t y = (*(struct mm_slot *const *)b)->pid;

	return (x > y) - (x < y);
}

size_t stats_client_rows(struct registry *reg, pid_t after,
			 struct proto_client_row *rows, size_t max,
			 bool *more)
{
	struct mm_slot *pick[PROTO_CLIENTS_PER_PAGE];
	struct list_node *pos;
	size_t n = 0, i;

	if (max > PROTO_CLIENTS_PER_PAGE)
		max = PROTO_CLIENTS_PER_PAGE;
	*more = false;
	pthread_mutex_lock(&reg->lock);
	list_for_each(pos, &reg->mm_head) {
		struct mm_slot *s = container_of(pos, struct mm_slot, mm_node);

		if (s->pid <= after)
			continue;
		if (n < max) {
			pick[n] = s;
			heap_sift_up(pick, n++);
			continue;
		}
		*more = true;
		if (max && s->pid < pick[0]->pid) {
			pick[0] = s;
			heap_sift_down(pick, n, 0);
		}
	}
	qsort(pick, n, sizeof(pick[0]), by_pid);
	for (i = 0; i < n; i++)
		stats_client_row(pick[i], &rows[i]);
	pthread_mutex_unlock(&reg->lock);
	return n;
}
