/*
 * log.c - uzswapd's logging to stderr with syslog priority prefixes; see
 * log.h. The debug token list is written once at startup, before any
 * thread exists, and only read afterwards.
 *
 * Rate limiting. A call site that fires in a loop (an evictor meeting a
 * full backing file, a fault thread meeting a dead client) must not flood
 * the journal: measured before the limiter, 148 lines a second. As the
 * kernel's printk_ratelimit() does (DEFAULT_RATELIMIT_BURST 10 per
 * DEFAULT_RATELIMIT_INTERVAL 5 s, per call site), each call site prints at
 * most LOG_RL_BURST lines per LOG_RL_INTERVAL_MS window; the rest are
 * counted, and the first log call after the window ends (or log_flush())
 * prints one summary line with the last dropped text:
 *
 *   <4>evict: the pool is at its limit ... ... repeated 61 times
 *
 * A call site is its format string (the pointer: a literal is one per
 * site, and identical literals merged by the compiler are the same
 * message). Per site rather than per text: lines of one site differ in
 * their pid or address, and a flood of them is one event to an operator;
 * one site flooding never silences another. Debug lines are not limited:
 * the operator asked for them (-D).
 *
 * Cost: a log call takes rl.lock, hashes the format pointer into a table
 * of LOG_RL_SITES slots (LOG_RL_SITES * ~200 bytes, static, locked with
 * the daemon), and scans the table only when some site has dropped lines
 * (@pending). The lock is held across write(2), so that a summary comes
 * out before the line that follows its window, from any thread.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/common/debug.h"
#include "lib/common/macros.h"
#include "log.h"

#define LOG_MAX_TOKENS 16
#define LOG_LINE_MAX 1024
#define LOG_RL_SITES 128	/* > the daemon's log_err/warn/info sites */
#define LOG_RL_TEXT 160		/* text kept of a site's last dropped line */

static const char *debug_tokens[LOG_MAX_TOKENS];
static int nr_debug_tokens;

#define LOG_TOKEN_STRING_(t) #t,
static const char *const debug_subsystems[] = {
	LOG_DEBUG_SUBSYSTEMS(LOG_TOKEN_STRING_)
};
static const char *const quiet_subsystems[] = {
	LOG_QUIET_SUBSYSTEMS(LOG_TOKEN_STRING_)
};

static bool token_in(const char *token, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(token, list[i]))
			return true;
	return false;
}

bool log_debug_token_known(const char *token)
{
	return !strcmp(token, "all") ||
	       token_in(token, debug_subsystems, ARRAY_SIZE(debug_subsystems));
}

/* Is @token a subsystem's, one a log call may carry? Only debug builds
 * ask (DEBUG_CHECK()); a production build only type-checks the call. */
__attribute__((unused))
static bool log_token_known(const char *token)
{
	return token_in(token, debug_subsystems,
			ARRAY_SIZE(debug_subsystems)) ||
	       token_in(token, quiet_subsystems, ARRAY_SIZE(quiet_subsystems));
}

/*
 * struct log_site - one call site's window; all fields protected by rl.lock
 * @fmt:        the site's format string (its key); NULL for a free slot
 * @token:      its subsystem token
 * @prio:       its syslog priority
 * @start_ms:   when the current window started
 * @printed:    lines printed in the window
 * @suppressed: lines dropped in the window
 * @last:       the last dropped line, without its prefix
 */
struct log_site {
	const char *fmt;
	const char *token;
	int prio;
	uint64_t start_ms;
	unsigned int printed;
	unsigned long suppressed;
	char last[LOG_RL_TEXT];
};

/*
 * @lock:    protects @sites, @pending and @now; held across the write(2)
 *           of a limited line
 * @sites:   open-addressed by the format pointer
 * @pending: sites with dropped lines not yet summarized
 * @now:     the clock (log_set_clock()), NULL for CLOCK_MONOTONIC
 */
static struct {
	pthread_mutex_t lock;
	struct log_site sites[LOG_RL_SITES];
	unsigned int pending;
	uint64_t (*now)(void);
} rl = { .lock = PTHREAD_MUTEX_INITIALIZER };

void log_enable_debug(const char *token)
{
	if (nr_debug_tokens < LOG_MAX_TOKENS)
		debug_tokens[nr_debug_tokens++] = token;
}

bool log_debug_enabled(const char *token)
{
	int i;

	for (i = 0; i < nr_debug_tokens; i++)
		if (!strcmp(debug_tokens[i], "all") ||
		    !strcmp(debug_tokens[i], token))
			return true;
	return false;
}

void log_set_clock(uint64_t (*now_ms)(void))
{
	pthread_mutex_lock(&rl.lock);
	rl.now = now_ms;
	pthread_mutex_unlock(&rl.lock);
}

/* Write @len bytes of @line, which ends in '\n'; one write(2). */
static void log_write(const char *line, size_t len)
{
	if (write(STDERR_FILENO, line, len) < 0)
		return; /* nowhere left to report it */
}

/* Format "<prio>token: text\n" into @line (LOG_LINE_MAX); its length. @text
 * starts at *@text_off. */
static size_t log_format(char *line, int prio, const char *token,
			 size_t *text_off, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static size_t log_format(char *line, int prio, const char *token,
			 size_t *text_off, const char *fmt, va_list ap)
{
	int n, m;

	DEBUG_CHECK(log_token_known(token), "a known log token");
	n = snprintf(line, LOG_LINE_MAX, "<%d>%s: ", prio, token);
	*text_off = (size_t)n;
	m = vsnprintf(line + n, LOG_LINE_MAX - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > LOG_LINE_MAX - 2)
		n = LOG_LINE_MAX - 2;
	line[n++] = '\n';
	return (size_t)n;
}

/* rl.lock held. */
static uint64_t log_now_locked(void)
{
	struct timespec ts;

	assert_held(&rl.lock);
	if (rl.now)
		return rl.now();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The slot of call site @fmt, claimed if new; NULL if the table is full
 * (then the site is not limited). rl.lock held. */
static struct log_site *log_site_locked(const char *fmt)
{
	size_t h = ((uintptr_t)fmt >> 3) * 0x9e3779b97f4a7c15ull >> 32;
	unsigned int i;

	assert_held(&rl.lock);
	for (i = 0; i < LOG_RL_SITES; i++) {
		struct log_site *s = &rl.sites[(h + i) % LOG_RL_SITES];

		if (s->fmt == fmt)
			return s;
		if (!s->fmt) {
			s->fmt = fmt;
			return s;
		}
	}
	return NULL;
}

/* Print the summary of @s's dropped lines, if any, and forget them.
 * rl.lock held. */
static void log_summarize_locked(struct log_site *s)
{
	char line[LOG_LINE_MAX];
	int n;

	assert_held(&rl.lock);
	if (!s->suppressed)
		return;
	n = snprintf(line, sizeof(line), "<%d>%s: %s ... repeated %lu %s\n",
		     s->prio, s->token, s->last, s->suppressed,
		     s->suppressed == 1 ? "time" : "times");
	log_write(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	s->suppressed = 0;
	rl.pending--;
}

/* Summarize every site whose window is over at @now (or every site, if
 * @all). Cost: one pass over the table, only when some site has dropped
 * lines. rl.lock held. */
static void log_summarize_due_locked(uint64_t now, bool all)
{
	unsigned int i;

	assert_held(&rl.lock);
	for (i = 0; rl.pending && i < LOG_RL_SITES; i++) {
		struct log_site *s = &rl.sites[i];

		if (s->suppressed &&
		    (all || now - s->start_ms >= LOG_RL_INTERVAL_MS))
			log_summarize_locked(s);
	}
}

void log_flush(void)
{
	pthread_mutex_lock(&rl.lock);
	log_summarize_due_locked(0, true);
	pthread_mutex_unlock(&rl.lock);
}

/* Print the line, or count it if its site is over its burst. */
static void log_limited(int prio, const char *token, const char *fmt,
			va_list ap) __attribute__((format(printf, 3, 0)));

static void log_limited(int prio, const char *token, const char *fmt,
			va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len, text_off;
	struct log_site *s;
	uint64_t now;

	len = log_format(line, prio, token, &text_off, fmt, ap);
	pthread_mutex_lock(&rl.lock);
	now = log_now_locked();
	log_summarize_due_locked(now, false);
	s = log_site_locked(fmt);
	if (s && (!s->printed || now - s->start_ms >= LOG_RL_INTERVAL_MS)) {
		s->start_ms = now;
		s->printed = 0;
	}
	if (!s || s->printed < LOG_RL_BURST) {
		if (s)
			s->printed++;
		log_write(line, len);
	} else {
		if (!s->suppressed++)
			rl.pending++;
		s->token = token;
		s->prio = prio;
		snprintf(s->last, sizeof(s->last), "%.*s",
			 (int)(len - text_off - 1), line + text_off);
	}
	pthread_mutex_unlock(&rl.lock);
}

#define LOG_FN(name, prio)                                              \
	void name(const char *token, const char *fmt, ...)              \
	{                                                               \
		va_list ap;                                             \
									\
		va_start(ap, fmt);                                      \
		log_limited(prio, token, fmt, ap);                      \
		va_end(ap);                                             \
	}

LOG_FN(log_err, LOG_ERR)
LOG_FN(log_warn, LOG_WARNING)
LOG_FN(log_info, LOG_INFO)

void log_debug(const char *token, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t len, text_off;
	va_list ap;

	if (!log_debug_enabled(token))
		return;
	va_start(ap, fmt);
	len = log_format(line, LOG_DEBUG, token, &text_off, fmt, ap);
	va_end(ap);
	log_write(line, len);
}
