/*
 * counters.h - every counter uzswapd shows, listed once: the daemon's
 * totals (COUNTERS_STATUS) and each client process's (COUNTERS_CLIENT).
 *
 * This file is private to uzswap, never installed. Each view expands the
 * lists instead of naming counters itself:
 *   - proto.h: the fields of the STATUS reply and of the client row, in
 *     list order, which is their wire order (so entries are only ever
 *     appended, each with the protocol version that appended it);
 *   - the daemon: stats.c fills the STATUS reply from its snapshot,
 *     metrics.c exports every entry that names a metric;
 *   - libuzswap's admin.c copies each entry into its field of the public
 *     struct uzswap_status / uzswap_client (uzswap.h: a list entry without
 *     a public field does not compile);
 *   - uzswapctl prints each entry under its JSON key.
 *
 * COUNTERS_STATUS(C, x): C(x, name, since, pub, json, show, mtype, metric,
 *                          label, help), every value a uint64_t
 * COUNTERS_CLIENT(C, x): C(x, type, name, since, pub, json, mtype, metric,
 *                          help)
 *   @x:      passed through to C untouched (the field-list macro of
 *            proto.h, for one)
 *   @type:   the wire type of a client-row field
 *   @name:   the field of the protocol's struct
 *   @since:  the protocol version that appended the field
 *   @pub:    its field in the public struct (uzswap.h)
 *   @json:   its key in `uzswapctl --json`
 *   @show:   how uzswapctl shows it (enum counter_show)
 *   @mtype:  its Prometheus type, "gauge" or "counter"; NULL: not in
 *            /metrics (then @metric and @label are NULL too)
 *   @metric: its metric family's name; entries of one family (told apart
 *            by @label) are exported together, under the @help and
 *            @mtype of the family's first entry
 *   @label:  its labels within the family ("kind=\"raw\""), or ""
 *   @help:   what it counts, as /metrics says it
 * A per-client metric's series carry the client's pid and command name as
 * labels.
 */
#ifndef UZSWAP_COUNTERS_H
#define UZSWAP_COUNTERS_H

#include <stddef.h>

/* How uzswapctl shows a value in JSON. */
enum counter_show {
	COUNTER_NUMBER,		/* as it is */
	COUNTER_BOOL,		/* false for 0, else true */
	COUNTER_MILLI,		/* thousandths: as a decimal number */
	COUNTER_COMPRESSOR,	/* UZSWAP_COMPRESSOR_*: its name */
	COUNTER_BACKEND,	/* UZSWAP_BACKING_*: its name */
};

#define COUNTERS_STORED_PAGES_HELP					\
	"Pages evicted and kept by uzswapd, by how: compressed in the pool, " \
	"same-filled (kept as one word), raw in the pool (incompressible), " \
	"or written back to the backing file."

#define COUNTERS_STATUS(C, x)						\
	C(x, clients, 1, clients, "clients", COUNTER_NUMBER,		\
	  "gauge", "uzswap_clients", "",				\
	  "Client processes connected.")				\
	C(x, registered_bytes, 1, registered_bytes, "registered_bytes",	\
	  COUNTER_NUMBER, "gauge", "uzswap_registered_bytes", "",	\
	  "Bytes of memory the clients registered with uzswapd.")	\
	C(x, resident_bytes, 1, resident_bytes, "resident_bytes",	\
	  COUNTER_NUMBER, "gauge", "uzswap_resident_bytes", "",		\
	  "Bytes of the clients' registered memory resident in RAM "	\
	  "uncompressed.")						\
	C(x, resident_limit, 1, resident_limit, "resident_limit_bytes",	\
	  COUNTER_NUMBER, "gauge", "uzswap_resident_limit_bytes", "",	\
	  "Budget of resident bytes of all clients together (0: none).") \
	C(x, default_limit, 1, default_limit, "default_limit_bytes",	\
	  COUNTER_NUMBER, "gauge", "uzswap_default_limit_bytes", "",	\
	  "Budget of resident bytes of each client without a budget of " \
	  "its own (0: none).")						\
	C(x, stored_pages, 1, stored_pages, "stored_pages",		\
	  COUNTER_NUMBER, NULL, NULL, NULL,				\
	  "Pages kept in memory: compressed, raw and same-filled.")	\
	C(x, same_pages, 1, same_pages, "same_pages", COUNTER_NUMBER,	\
	  "gauge", "uzswap_stored_pages", "kind=\"same\"",		\
	  COUNTERS_STORED_PAGES_HELP)					\
	C(x, raw_pages, 1, raw_pages, "raw_pages", COUNTER_NUMBER,	\
	  "gauge", "uzswap_stored_pages", "kind=\"raw\"",		\
	  COUNTERS_STORED_PAGES_HELP)					\
	C(x, payload_bytes, 1, compressed_bytes, "compressed_bytes",	\
	  COUNTER_NUMBER, "gauge", "uzswap_pool_payload_bytes", "",	\
	  "Bytes of the objects stored in the pool.")			\
	C(x, pool_bytes, 1, pool_bytes, "pool_bytes", COUNTER_NUMBER,	\
	  "gauge", "uzswap_pool_bytes", "",				\
	  "Bytes of the pool's pages (objects and fragmentation).")	\
	C(x, evictions, 1, evictions, "evictions", COUNTER_NUMBER,	\
	  "counter", "uzswap_evicted_pages_total", "",			\
	  "Pages evicted from the clients' memory into the store.")	\
	C(x, loads, 1, loads, "loads", COUNTER_NUMBER,			\
	  "counter", "uzswap_loaded_pages_total", "",			\
	  "Stored pages brought back (by faults, read-ahead, advice or " \
	  "shutdown).")							\
	C(x, faults, 1, faults, "faults", COUNTER_NUMBER,		\
	  "counter", "uzswap_faults_total", "",				\
	  "Page faults on managed memory served by uzswapd.")		\
	C(x, store_failures, 1, store_failures, "store_failures",	\
	  COUNTER_NUMBER, "counter",					\
	  "uzswap_store_rejected_pages_total", "",			\
	  "Pages the store refused (pool at its cap, no memory).")	\
	C(x, read_ahead, 1, read_ahead, "read_ahead", COUNTER_NUMBER,	\
	  "counter", "uzswap_fault_read_ahead_pages_total", "",		\
	  "Stored pages brought back ahead of a sequential stream of "	\
	  "faults.")							\
	C(x, pool_limit, 1, pool_limit, "pool_limit_bytes",		\
	  COUNTER_NUMBER, "gauge", "uzswap_pool_limit_bytes", "",	\
	  "Cap of the pool in bytes (0: none).")			\
	C(x, pool_full, 1, pool_full, "pool_full", COUNTER_BOOL,	\
	  "gauge", "uzswap_pool_full", "",				\
	  "1 while the pool is at its cap and refuses pages.")		\
	C(x, written_back_pages, 1, written_back_pages,			\
	  "written_back_pages", COUNTER_NUMBER,				\
	  "gauge", "uzswap_stored_pages", "kind=\"written_back\"",	\
	  COUNTERS_STORED_PAGES_HELP)					\
	C(x, writebacks, 1, writebacks, "writebacks", COUNTER_NUMBER,	\
	  "counter", "uzswap_writeback_pages_total", "",		\
	  "Pages written back from the pool to the backing file.")	\
	C(x, writeback_failures, 1, writeback_failures,			\
	  "writeback_failures", COUNTER_NUMBER,				\
	  "counter", "uzswap_writeback_failed_objects_total", "",	\
	  "Pool objects the backing file did not take (an object holds " \
	  "one page, or one that several pages share).")		\
	C(x, backing_bytes, 1, backing_bytes, "backing_bytes",		\
	  COUNTER_NUMBER, "gauge", "uzswap_backing_bytes", "",		\
	  "Bytes stored in the backing file (0: no backing file).")	\
	C(x, backing_limit, 1, backing_limit, "backing_limit_bytes",	\
	  COUNTER_NUMBER, "gauge", "uzswap_backing_limit_bytes", "",	\
	  "Cap of the backing file in bytes (0: no backing file).")	\
	C(x, uptime_sec, 1, uptime_sec, "uptime_seconds",		\
	  COUNTER_NUMBER, NULL, NULL, NULL,				\
	  "Seconds since uzswapd started.")				\
	C(x, fault_rate_milli, 1, fault_rate_milli, "fault_rate",	\
	  COUNTER_MILLI, NULL, NULL, NULL,				\
	  "Faults per second over the last 10 s (sent x1000).")		\
	C(x, compressor, 1, compressor, "compressor",			\
	  COUNTER_COMPRESSOR, NULL, NULL, NULL,				\
	  "The compressor of new pages: lz4 or zstd (sent as 0 or 1).")		\
	C(x, zstd_level, 1, zstd_level, "zstd_level", COUNTER_NUMBER,	\
	  NULL, NULL, NULL,						\
	  "The zstd level of new pages.")				\
	C(x, compressed_pages, 3, compressed_pages, "compressed_pages",	\
	  COUNTER_NUMBER, "gauge", "uzswap_stored_pages",		\
	  "kind=\"compressed\"", COUNTERS_STORED_PAGES_HELP)		\
	C(x, backing_file_bytes, 3, backing_file_bytes,			\
	  "backing_file_bytes", COUNTER_NUMBER,				\
	  "gauge", "uzswap_backing_file_bytes", "",			\
	  "Disk space the backing file takes, in bytes.")		\
	C(x, fault_zero_pages, 3, fault_zero_pages, "fault_zero_pages",	\
	  COUNTER_NUMBER, "counter",					\
	  "uzswap_fault_zero_fill_pages_total", "",			\
	  "Pages touched for the first time, filled with zeros.")	\
	C(x, fault_loads, 3, fault_loads, "fault_loads",		\
	  COUNTER_NUMBER, "counter",					\
	  "uzswap_fault_loaded_pages_total", "",			\
	  "Stored pages brought back by the fault that needed them.")	\
	C(x, fault_wakes, 3, fault_wakes, "fault_wakes",		\
	  COUNTER_NUMBER, "counter", "uzswap_fault_wakes_total", "",	\
	  "Faults already resolved by another thread's: only woken.")	\
	C(x, fault_wp, 3, fault_wp, "fault_wp", COUNTER_NUMBER,		\
	  "counter", "uzswap_fault_wp_total", "",			\
	  "Write-protect faults resolved.")				\
	C(x, fault_retries, 3, fault_retries, "fault_retries",		\
	  COUNTER_NUMBER, "counter", "uzswap_fault_retries_total", "",	\
	  "Faults retried because their page was busy.")		\
	C(x, eviction_runs, 3, eviction_runs, "eviction_runs",		\
	  COUNTER_NUMBER, "counter", "uzswap_eviction_runs_total", "",	\
	  "Eviction runs (up to 64 pages each).")			\
	C(x, eviction_store_full, 3, eviction_store_full,		\
	  "eviction_store_full", COUNTER_NUMBER,			\
	  "counter", "uzswap_eviction_store_full_total", "",		\
	  "Eviction runs cut short because the store took no more.")	\
	C(x, lru_second_chances, 3, lru_second_chances,			\
	  "lru_second_chances", COUNTER_NUMBER,				\
	  "counter", "uzswap_lru_second_chance_pages_total", "",	\
	  "Recently used pages given another trip on the LRU instead of " \
	  "being evicted.")						\
	C(x, stores, 3, stores, "stores", COUNTER_NUMBER,		\
	  "counter", "uzswap_store_accepted_pages_total", "",		\
	  "Pages the store took: compressed, kept raw, same-filled, or " \
	  "sharing an equal object (its refusals are "			\
	  "uzswap_store_rejected_pages_total).")			\
	C(x, pool_full_events, 3, pool_full_events, "pool_full_events",	\
	  COUNTER_NUMBER, "counter", "uzswap_pool_full_events_total", "", \
	  "Times the pool reached its cap.")				\
	C(x, backing_read_errors, 3, backing_read_errors,		\
	  "backing_read_errors", COUNTER_NUMBER,			\
	  "counter", "uzswap_backing_read_errors_total", "",		\
	  "Reads of the backing file that failed.")			\
	C(x, backing_write_errors, 3, backing_write_errors,		\
	  "backing_write_errors", COUNTER_NUMBER,			\
	  "counter", "uzswap_backing_write_errors_total", "",		\
	  "Writes to the backing file that failed with an I/O error.")	\
	C(x, fault_poisoned, 3, fault_poisoned, "fault_poisoned",	\
	  COUNTER_NUMBER, "counter", "uzswap_fault_poisoned_total", "",	\
	  "Faults on pages whose content is lost (a takeover found their " \
	  "copy gone) or cannot be read back (a corrupt copy, an NBD "	\
	  "export's that does not verify or stayed away past "		\
	  "backing-timeout), answered with SIGBUS, never with zeros.")	\
	C(x, dedup, 5, dedup, "dedup", COUNTER_BOOL,			\
	  "gauge", "uzswap_dedup_enabled", "",				\
	  "1 while new pages are deduplicated (dedup = on).")		\
	C(x, dedup_pages_shared, 5, dedup_pages_shared,			\
	  "dedup_pages_shared", COUNTER_NUMBER,				\
	  "gauge", "uzswap_dedup_shared_objects", "",			\
	  "Stored objects that two pages or more name (KSM's "		\
	  "pages_shared).")						\
	C(x, dedup_pages_sharing, 5, dedup_pages_sharing,		\
	  "dedup_pages_sharing", COUNTER_NUMBER,			\
	  "gauge", "uzswap_dedup_sharing_pages", "",			\
	  "Pages naming a shared object beyond its first: the copies "	\
	  "deduplication saves (KSM's pages_sharing).")			\
	C(x, dedup_bytes_saved, 5, dedup_bytes_saved,			\
	  "dedup_saved_bytes", COUNTER_NUMBER,				\
	  "gauge", "uzswap_dedup_saved_bytes", "",			\
	  "Pool bytes those pages would take with a copy each.")	\
	C(x, dedup_merged, 5, dedup_merged, "dedup_merged_pages",	\
	  COUNTER_NUMBER, "counter", "uzswap_dedup_merged_pages_total", "", \
	  "Pages stored by naming an equal object instead of a new one.") \
	C(x, dedup_collisions, 5, dedup_collisions, "dedup_collisions",	\
	  COUNTER_NUMBER, "counter",					\
	  "uzswap_dedup_collision_pages_total", "",			\
	  "Pages whose hash found an object of other content: the byte " \
	  "compare kept them apart.")					\
	C(x, dedup_chains, 5, dedup_chains, "dedup_chains",		\
	  COUNTER_NUMBER, "gauge", "uzswap_dedup_chains", "",		\
	  "Shared objects that reached max-page-sharing and have dups "	\
	  "(KSM's stable_node_chains).")				\
	C(x, dedup_dups, 5, dedup_dups, "dedup_dups", COUNTER_NUMBER,	\
	  "gauge", "uzswap_dedup_dups", "",				\
	  "Copies of those objects, linked into their chains (KSM's "	\
	  "stable_node_dups).")						\
	C(x, dedup_index_bytes, 5, dedup_index_bytes,			\
	  "dedup_index_bytes", COUNTER_NUMBER,				\
	  "gauge", "uzswap_dedup_index_bytes", "",			\
	  "Memory of the deduplication index: a node per stored object, " \
	  "a record per page sharing one, the hash buckets.")		\
	C(x, compacted_pages, 5, compacted_pages, "compacted_pages",	\
	  COUNTER_NUMBER, "counter", "uzswap_pool_compacted_pages_total", \
	  "", "Pool pages freed by compaction: their objects moved into " \
	  "fuller pages.")						\
	C(x, migrated_objects, 5, migrated_objects, "migrated_objects",	\
	  COUNTER_NUMBER, "counter", "uzswap_pool_migrated_objects_total", \
	  "", "Pool objects compaction moved, with every page naming "	\
	  "them.")							\
	C(x, compact_runs, 5, compact_runs, "compact_runs",		\
	  COUNTER_NUMBER, "counter", "uzswap_pool_compact_runs_total", "", \
	  "Times the writer thread found the pool looser than "		\
	  "compact-ratio and compacted it.")				\
	C(x, backing_backend, 7, backing_backend, "backing_backend",	\
	  COUNTER_BACKEND, NULL, NULL, NULL,				\
	  "Where the pool writes back: none, a file, an NBD export.")	\
	C(x, backing_up, 7, backing_up, "backing_up", COUNTER_BOOL,	\
	  "gauge", "uzswap_backing_up", "",				\
	  "1 while the write-back tier can take writes: a file always, " \
	  "an NBD export while it is connected.")			\
	C(x, backing_read_bytes, 7, backing_read_bytes,			\
	  "backing_read_bytes", COUNTER_NUMBER,				\
	  "counter", "uzswap_backing_io_bytes_total", "op=\"read\"",	\
	  "Bytes moved by the write-back tier, by operation: read "	\
	  "(objects with their frames), write (whole 512-byte units).") \
	C(x, backing_write_bytes, 7, backing_write_bytes,		\
	  "backing_written_bytes", COUNTER_NUMBER,			\
	  "counter", "uzswap_backing_io_bytes_total", "op=\"write\"",	\
	  "Bytes written to the write-back tier.")			\
	C(x, backing_released_bytes, 7, backing_released_bytes,		\
	  "backing_released_bytes", COUNTER_NUMBER,			\
	  "counter", "uzswap_backing_released_bytes_total", "",		\
	  "Bytes given back as their last object went: holes punched in " \
	  "the file, 1 MiB segments trimmed on an NBD export.")		\
	C(x, backing_checksum_errors, 7, backing_checksum_errors,	\
	  "backing_checksum_errors", COUNTER_NUMBER,			\
	  "counter", "uzswap_backing_checksum_errors_total", "",	\
	  "Objects an NBD export returned that did not verify (frame or " \
	  "checksum): never served; their pages get SIGBUS.")		\
	C(x, backing_read_waits, 7, backing_read_waits,			\
	  "backing_read_waits", COUNTER_NUMBER,				\
	  "counter", "uzswap_backing_read_waits_total", "",		\
	  "Reads put off because the NBD export was away (a fault "	\
	  "retried while it waits counts each time).")			\
	C(x, backing_read_timeouts, 7, backing_read_timeouts,		\
	  "backing_read_timeouts", COUNTER_NUMBER,			\
	  "counter", "uzswap_backing_read_timeouts_total", "",		\
	  "Reads failed because the NBD export stayed away past "	\
	  "backing-timeout (their pages get SIGBUS).")			\
	C(x, backing_connects, 7, backing_connects, "backing_connects",	\
	  COUNTER_NUMBER, "counter", "uzswap_backing_connects_total", "", \
	  "Connections made to the NBD export: the first, and one per "	\
	  "return after it went away.")					\
	C(x, backing_disconnects, 7, backing_disconnects,		\
	  "backing_disconnects", COUNTER_NUMBER,			\
	  "counter", "uzswap_backing_disconnects_total", "",		\
	  "Connections to the NBD export lost (closed, failed, or cut "	\
	  "after a request got no answer for 15 s).")			\
	C(x, backing_export_bytes, 7, backing_export_bytes,		\
	  "backing_export_bytes", COUNTER_NUMBER,			\
	  "gauge", "uzswap_backing_export_size_bytes", "",		\
	  "Size of the NBD export (0: the tier is a file).")		\
	C(x, backing_read_ns, 7, backing_read_ns, "backing_read_ns",	\
	  COUNTER_NUMBER, NULL, NULL, NULL,				\
	  "Time spent in reads of the write-back tier, ns.")		\
	C(x, backing_reads_timed, 7, backing_reads_timed,		\
	  "backing_reads_timed", COUNTER_NUMBER, NULL, NULL, NULL,	\
	  "Reads of the write-back tier timed (answered or failed).")	\
	C(x, backing_write_ns, 7, backing_write_ns, "backing_write_ns",	\
	  COUNTER_NUMBER, NULL, NULL, NULL,				\
	  "Time spent in writes to the write-back tier, ns.")		\
	C(x, backing_writes_timed, 7, backing_writes_timed,		\
	  "backing_writes_timed", COUNTER_NUMBER, NULL, NULL, NULL,	\
	  "Writes to the write-back tier timed (each a batch or an "	\
	  "object).")

#define COUNTERS_CLIENT(C, x)						\
	C(x, uint32_t, regions, 1, regions, "regions", NULL, NULL,	\
	  "Managed regions of the client.")				\
	C(x, uint64_t, registered_bytes, 1, registered_bytes,		\
	  "registered_bytes", "gauge", "uzswap_client_registered_bytes", \
	  "Bytes of memory the client registered.")			\
	C(x, uint64_t, resident_bytes, 1, resident_bytes,		\
	  "resident_bytes", "gauge", "uzswap_client_resident_bytes",	\
	  "Bytes of the client's registered memory resident in RAM.")	\
	C(x, uint64_t, limit_bytes, 1, limit_bytes, "limit_bytes",	\
	  "gauge", "uzswap_client_limit_bytes",				\
	  "The client's budget of resident bytes in force (0: none).")	\
	C(x, uint64_t, own_limit_bytes, 1, own_limit_bytes,		\
	  "own_limit_bytes", NULL, NULL,				\
	  "The client's own budget (0: it follows the default).")	\
	C(x, uint64_t, stored_pages, 1, stored_pages, "stored_pages",	\
	  "gauge", "uzswap_client_stored_pages",			\
	  "Pages of the client kept by uzswapd.")			\
	C(x, uint64_t, pooled_pages, 1, pool_pages, "pool_pages",	\
	  NULL, NULL,							\
	  "Pages of the client compressed in the pool.")		\
	C(x, uint64_t, compressed_bytes, 1, compressed_bytes,		\
	  "compressed_bytes", "gauge", "uzswap_client_compressed_bytes", \
	  "Pool bytes the client's stored pages take.")			\
	C(x, uint64_t, faults, 1, faults, "faults",			\
	  "counter", "uzswap_client_faults_total",			\
	  "Page faults of the client served.")				\
	C(x, uint64_t, evictions, 1, evictions, "evictions",		\
	  "counter", "uzswap_client_evicted_pages_total",		\
	  "Pages of the client evicted.")				\
	C(x, uint64_t, direct_evictions, 4, direct_evictions,		\
	  "direct_evictions", "counter",				\
	  "uzswap_client_direct_evicted_pages_total",			\
	  "Pages of the client evicted by its own faults, to make room "	\
	  "under its budget (direct reclaim).")				\
	C(x, uint64_t, budget_waits, 4, budget_waits, "budget_waits",	\
	  "counter", "uzswap_client_budget_waits_total",		\
	  "Times a fault of the client was put off for a moment, at its " \
	  "budget with no room made yet.")				\
	C(x, uint64_t, over_budget, 4, over_budget_pages,		\
	  "over_budget_pages", "counter",				\
	  "uzswap_client_over_budget_pages_total",			\
	  "Pages brought into the client past its budget because nothing " \
	  "could make room (the pool and the backing file took no more).")

#endif /* UZSWAP_COUNTERS_H */
