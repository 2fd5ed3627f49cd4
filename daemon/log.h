/*
 * log.h - uzswapd's logging: one line per event on stderr, prefixed with a
 * "<N>" syslog priority so that journald files it at the right level.
 * Every call carries a subsystem token, one of LOG_SUBSYSTEMS (debug builds
 * assert it); debug lines are printed only for the tokens enabled with
 * log_enable_debug() (uzswapd -D TOKEN, or -D all).
 *
 * Error, warning and info lines are rate-limited per call site: at most
 * LOG_RL_BURST lines per LOG_RL_INTERVAL_MS, then one summary line
 * ("... repeated N times") when the window is over; see log.c.
 *
 * Private to uzswapd. Thread-safe: each line is written with one write(2).
 */
#ifndef UZSWAPD_LOG_H
#define UZSWAPD_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* The kernel's printk_ratelimit() defaults: 10 lines per 5 s per site. */
#define LOG_RL_BURST		10
#define LOG_RL_INTERVAL_MS	5000

/*
 * Every subsystem token, written once. Those with debug lines: -D and the
 * "debug" key accept them (and "all"), --help lists them
 * (tests/check_debug_tokens checks them against the log_debug() calls).
 * The others log errors, warnings and information only. Debug builds
 * assert that every log call carries one of them.
 */
#define LOG_DEBUG_SUBSYSTEMS(X) \
	X(main) X(ctl) X(client) X(fault) X(evict) X(metrics)
#define LOG_QUIET_SUBSYSTEMS(X) X(config) X(load) X(store) X(work) X(fork) \
	X(takeover)

#define LOG_TOKEN_NAME_(t) " " #t
/* "all main ctl ...": the tokens -D accepts, for messages and --help. */
#define LOG_TOKEN_NAMES "all" LOG_DEBUG_SUBSYSTEMS(LOG_TOKEN_NAME_)

/* Does -D accept @token (a subsystem with debug lines, or "all")? */
bool log_debug_token_known(const char *token);

/* Enable debug lines for @token ("all" for every subsystem); the tokens
 * are kept by reference. Call before any thread starts. */
void log_enable_debug(const char *token);

bool log_debug_enabled(const char *token);

/* Print the summaries of lines dropped by the rate limit now, without
 * waiting for their windows to end (at exit). */
void log_flush(void);

/* The rate limit's clock, in milliseconds (tests); NULL restores
 * CLOCK_MONOTONIC. */
void log_set_clock(uint64_t (*now_ms)(void));

void log_err(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_warn(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_info(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_debug(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* UZSWAPD_LOG_H */
