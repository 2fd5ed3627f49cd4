/*
 * stats.h - one place that gathers the daemon's counters, for the control
 * socket (STATUS, STATS, CLIENT, CLIENTS), the /metrics endpoint and
 * systemd's STATUS line, so that every view reads the same numbers.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_STATS_H
#define UZSWAPD_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "backing.h"
#include "compress.h"
#include "evict.h"
#include "fault.h"
#include "lib/proto/proto.h"
#include "store.h"

struct uzswapd;
struct registry;
struct mm_slot;

#define STATS_RATE_SAMPLES 10	/* the fault rate is over this many ticks */

/*
 * struct stats_rate - the fault rate, sampled once a second by the loop
 * thread (stats_tick()); loop thread only
 * @faults:  fault counts of the last STATS_RATE_SAMPLES ticks (a ring)
 * @next:    where the next sample goes
 * @nr:      samples taken, up to STATS_RATE_SAMPLES
 * @started: when the daemon started (CLOCK_MONOTONIC)
 */
struct stats_rate {
	uint64_t faults[STATS_RATE_SAMPLES];
	unsigned int next;
	unsigned int nr;
	struct timespec started;
};

/* Everything the daemon counts, read at one moment (each counter read
 * atomically; the set is not one atomic snapshot). */
struct stats_snapshot {
	unsigned int clients;
	uint64_t registered_bytes;
	uint64_t resident_bytes;
	uint64_t default_limit;		/* bytes; 0: none */
	uint64_t resident_limit;	/* bytes; 0: none */
	struct store_stats store;
	struct evict_stats evict;
	struct fault_stats fault;
	bool has_backing;
	struct backing_stats backing;	/* zero without a backing file */
	enum compress_algo algo;	/* for new pages */
	int zstd_level;
	uint64_t uptime_sec;
	double fault_rate;		/* faults/s over the last 10 s */
};

/* Start the clock of uptime and fault rate. */
void stats_rate_init(struct stats_rate *r);
/* Take one sample of the fault counter; call once a second. O(threads). */
void stats_tick(struct stats_rate *r, struct fault_pool *fp);

/* Gather every counter. O(clients). Loop thread (reads @d's rate). */
void stats_snapshot(struct uzswapd *d, struct stats_snapshot *s);

/*
 * stats_status() - every counter of COUNTERS_STATUS from @s, as STATUS
 * sends them and /metrics exports them: the one place that maps the
 * owners' counters to the list's names, and computes the derived ones
 * (pages stored, the fault rate). O(1).
 */
void stats_status(const struct stats_snapshot *s,
		  struct proto_status_reply *r);

/* The row describing @slot. O(regions of the slot). Any thread. */
void stats_client_row(struct mm_slot *slot, struct proto_client_row *row);

/*
 * stats_client_rows() - rows of the clients whose pid is above @after, in
 * pid order, at most @max of them; *@more says whether others follow.
 * Return: rows written. O(clients * log(@max)) under the registry lock.
 */
size_t stats_client_rows(struct registry *reg, pid_t after,
			 struct proto_client_row *rows, size_t max,
			 bool *more);

#endif /* UZSWAPD_STATS_H */
