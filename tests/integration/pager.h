/*
 * pager.h - helpers that drive uzclient's "pager" subcommand (a client of
 * uzswapd whose regions, budget and checks are commanded line by line on
 * its stdin) from the integration suites. Each helper fails the running
 * Check test, with the daemon's logs, when something goes wrong.
 */
#ifndef UZSWAP_ITEST_PAGER_H
#define UZSWAP_ITEST_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dh_daemon;
struct dh_client;

#define PAGER_MS	300000	/* one pager command, at most */
#define SETTLE_MS	60000	/* eviction to reach a budget, at most */

/* The pager's "stats" reply: its uzswap_stats(). */
struct pstats {
	uint64_t resident, limit, registered, stored, compressed, faults,
		evictions, regions;
};

/* Start uzclient pager against @d and wait for its "ready". */
void pager_start(const struct dh_daemon *d, struct dh_client *c);

/* The same with the uzclient program at @path (another build of it). */
void pager_start_prog(const struct dh_daemon *d, struct dh_client *c,
		      const char *path);

/* The same through a symlink made at @path: the process's command name is
 * the link's name. */
void pager_start_as(const struct dh_daemon *d, struct dh_client *c,
		    const char *path);

/* Send a command, read its reply line into @reply. */
void pager_do(struct dh_client *c, char *reply, size_t size, const char *fmt,
	      ...) __attribute__((format(printf, 4, 5)));

/* A command that must answer "ok..."; returns the rest of the line (a
 * static buffer, valid until the next call). */
const char *pager_ok(struct dh_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A new region of @kind ("text", "random", "zero", ...) of @mib MiB:
 * its number. */
unsigned int pager_alloc(struct dh_client *c, const char *kind,
			 unsigned int mib);

/* Three text regions of @mib MiB evicted page by page in turn, so that
 * each pool page holds a page of each (text pages make objects of about
 * 400 bytes: three to a pool page), then the second and third freed:
 * each pool page keeps one object of three. Returns the region kept. */
unsigned int pager_fragment(struct dh_client *c, unsigned int mib);

void pager_stats(struct dh_client *c, struct pstats *s);

/* "quit": the client disconnects and must exit 0 (all its data checks
 * passed). */
void pager_quit(struct dh_client *c);

/* Poll until the pager's resident bytes are at most @bytes (SETTLE_MS). */
void pager_wait_resident(struct dh_client *c, uint64_t bytes,
			 struct pstats *s);

/* Start a pager holding every kind of stored page under a 4 MiB budget:
 * regions "same" (4 MiB of zeros), "text" (24 MiB, compressible) and
 * "random" (8 MiB, kept raw), pressed until within 5 MiB resident. */
void pager_start_every_kind(const struct dh_daemon *d, struct dh_client *c,
			    struct pstats *s);

/* "verify all" while no daemon runs: a thread of the pager must block on
 * a stored page (DH_SETTLE_MS at most). pager_verify_goes_on() reads the
 * verify's reply once a daemon serves again: it must be "ok". */
void pager_verify_blocked(struct dh_client *c);
void pager_verify_goes_on(struct dh_client *c);

/* What uzclient rmw reports at its end: read-modify-writes done, bad
 * pages found (lost, stale, torn or zeroed writes: must be 0), and its
 * last uzswap_stats() if it could take them. */
struct rmw_result {
	uint64_t ops, bad;
	bool have_stats;
	uint64_t resident, limit, evictions, faults, stored;
};

/* Start uzclient rmw against @d: @threads writers over a region of @mib
 * MiB under a @limit_mib budget for @secs seconds (0: until told to
 * stop), and wait for its "ready". */
void rmw_start(const struct dh_daemon *d, struct dh_client *c,
	       unsigned int threads, unsigned int mib, unsigned int limit_mib,
	       unsigned int secs);

/* Read the rmw client's results and reap it: it must exit 0, with no bad
 * page. */
void rmw_finish(struct dh_client *c, unsigned int secs,
		struct rmw_result *res);

#endif /* UZSWAP_ITEST_PAGER_H */
