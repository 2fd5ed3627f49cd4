/*
 * log.h - uzswapd's logging: one record per event, sent where the
 * daemon's stderr leads (log_open() looks once, at startup):
 *  - the systemd journal, when stderr is the stream systemd connected to
 *    it ($JOURNAL_STREAM names that stream's device and inode): each line
 *    is a record of its own, sent with sd_journal_sendv(): PRIORITY=,
 *    MESSAGE= ("token: text"), SYSLOG_IDENTIFIER=uzswapd, CODE_FILE=,
 *    CODE_LINE=, CODE_FUNC=, UZSWAP_SUBSYSTEM= (the token), and what the
 *    line is about (struct log_about): CLIENT_PID=, CLIENT_COMM=, REGION=,
 *    REGION_NAME=, ERRNO=; a summary of the rate limit also carries
 *    UZSWAP_SUPPRESSED= (the lines it stands for);
 *  - a terminal: plain lines, "uzswapd: warning: evict: text";
 *  - anything else (a file, a pipe, a StandardError= stream): lines
 *    prefixed with their syslog priority, "<4>evict: text", which journald
 *    files at that level when it reads them from a stream.
 *
 * Every call carries a subsystem token, one of LOG_SUBSYSTEMS (debug
 * builds assert it); debug lines are printed only for the tokens enabled
 * with log_enable_debug() (uzswapd -D TOKEN, or -D all). A line about a
 * client or a region says so with the _about variants:
 *
 *	log_err_about("fault", LOG_CLIENT(ctx->slot, .err = -ret),
 *		      "pid %d: UFFDIO_COPY at %#lx: %s", ...);
 *
 * Error, warning and info lines are rate-limited per call site: at most
 * LOG_RL_BURST lines per LOG_RL_INTERVAL_MS, then one summary line
 * ("... repeated N times") when the window is over; see log.c.
 *
 * Private to uzswapd. Thread-safe: each line is one write(2) or one
 * journal record.
 */
#ifndef UZSWAPD_LOG_H
#define UZSWAPD_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <syslog.h>

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
	X(takeover) X(backing)

#define LOG_TOKEN_NAME_(t) " " #t
/* "all main ctl ...": the tokens -D accepts, for messages and --help. */
#define LOG_TOKEN_NAMES "all" LOG_DEBUG_SUBSYSTEMS(LOG_TOKEN_NAME_)

/* Where lines go; log_open() chooses. */
enum log_sink {
	LOG_SINK_FILE,		/* "<4>evict: text" (also before log_open()) */
	LOG_SINK_TERMINAL,	/* "uzswapd: warning: evict: text" */
	LOG_SINK_JOURNAL,	/* sd_journal_sendv() records */
};

/*
 * log_open() - choose the sink from what stderr is: the journal if
 * $JOURNAL_STREAM is "DEVICE:INODE" of stderr (a child whose stderr was
 * redirected inherits the variable, not the stream), else a terminal if
 * it is one, else a file. Call before any thread starts; lines logged
 * before go to the file sink. Return: the sink chosen.
 */
enum log_sink log_open(void);

/* How journal records are sent: sd_journal_sendv() unless a test puts
 * another function in its place (NULL restores it). Call before any
 * thread starts. */
typedef int log_sendv_fn(const struct iovec *iov, int n);
void log_set_sendv(log_sendv_fn *sendv);

/*
 * struct log_about - what a line is about, as journal fields; a member
 * left zero (NULL) is not sent. The strings must live until the call
 * returns.
 * @pid:    the client (or control peer) process: CLIENT_PID=
 * @comm:   its command name: CLIENT_COMM=
 * @region: the region's id (ids count from 1), as the text names it
 *          ("region 12"): REGION=
 * @name:   the region's name: REGION_NAME=
 * @err:    the errno value the line reports (positive): ERRNO=
 */
struct log_about {
	pid_t pid;
	const char *comm;
	uint64_t region;
	const char *name;
	int err;
};

/*
 * What a line is about, as the last-but-one argument of the _about calls.
 * The optional arguments add members (".err = -ret"):
 * LOG_ABOUT(...)        the members given;
 * LOG_CLIENT(slot, ...) a client: anything with ->pid and ->comm (struct
 *                       mm_slot, a client of the state directory);
 * LOG_REGION(r, ...)    a struct region: its client, id and name.
 */
#define LOG_ABOUT(...) (&(const struct log_about){ __VA_ARGS__ })
#define LOG_CLIENT(slot, ...) \
	LOG_ABOUT(.pid = (slot)->pid, .comm = (slot)->comm, __VA_ARGS__)
#define LOG_REGION(r, ...) \
	LOG_ABOUT(.pid = (r)->slot->pid, .comm = (r)->slot->comm, \
		  .region = (r)->id, .name = (r)->name, __VA_ARGS__)

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

/*
 * log_print() - what the calls below expand to: a line of priority @prio
 * (syslog's LOG_ERR...) from the call site @file:@line in @func, about
 * @about (may be NULL), in subsystem @token.
 */
void log_print(int prio, const char *file, int line, const char *func,
	       const struct log_about *about, const char *token,
	       const char *fmt, ...) __attribute__((format(printf, 7, 8)));

#define LOG_PRINT_(prio, token, about, ...) \
	log_print(prio, __FILE__, __LINE__, __func__, about, token, \
		  __VA_ARGS__)

#define log_err(token, ...)	LOG_PRINT_(LOG_ERR, token, NULL, __VA_ARGS__)
#define log_warn(token, ...)	LOG_PRINT_(LOG_WARNING, token, NULL, \
					   __VA_ARGS__)
#define log_info(token, ...)	LOG_PRINT_(LOG_INFO, token, NULL, __VA_ARGS__)
#define log_debug(token, ...)	LOG_PRINT_(LOG_DEBUG, token, NULL, \
					   __VA_ARGS__)

#define log_err_about(token, about, ...) \
	LOG_PRINT_(LOG_ERR, token, about, __VA_ARGS__)
#define log_warn_about(token, about, ...) \
	LOG_PRINT_(LOG_WARNING, token, about, __VA_ARGS__)
#define log_info_about(token, about, ...) \
	LOG_PRINT_(LOG_INFO, token, about, __VA_ARGS__)
#define log_debug_about(token, about, ...) \
	LOG_PRINT_(LOG_DEBUG, token, about, __VA_ARGS__)

#endif /* UZSWAPD_LOG_H */
