/*
 * log.h - uzswapd's logging: one line per event on stderr, prefixed with a
 * "<N>" syslog priority so that journald files it at the right level.
 * Every call carries a subsystem token, one of LOG_SUBSYSTEMS (debug builds
 * assert it); debug lines are printed only for the tokens enabled with
 * log_enable_debug() (uzswapd -D TOKEN, or -D all).
 *
 * Private to uzswapd. Thread-safe: each line is written with one write(2).
 */
#ifndef UZSWAPD_LOG_H
#define UZSWAPD_LOG_H

#include <stdbool.h>

/* Every subsystem token, written once: the log calls use these, -D and
 * the "debug" key accept them (and "all"), --help lists them. */
#define LOG_SUBSYSTEMS(X) \
	X(main) X(config) X(ctl) X(client) X(fault) X(load) X(evict) \
	X(store) X(metrics)

#define LOG_TOKEN_NAME_(t) " " #t
/* "all ctl fault ...": the tokens -D accepts, for messages and --help. */
#define LOG_TOKEN_NAMES "all" LOG_SUBSYSTEMS(LOG_TOKEN_NAME_)

/* Is @token a subsystem token, or "all"? */
bool log_token_known(const char *token);

/* Enable debug lines for @token ("all" for every subsystem); the tokens
 * are kept by reference. Call before any thread starts. */
void log_enable_debug(const char *token);

bool log_debug_enabled(const char *token);

void log_err(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_warn(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_info(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_debug(const char *token, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* UZSWAPD_LOG_H */
