/*
 * log.c - uzswapd's logging to the journal, a terminal or a file; see
 * log.h. The sink, the journal's send function and the debug token list
 * are set at startup, before any thread exists, and only read afterwards.
 *
 * A line is formatted once into a struct log_rec ("token: text", its
 * priority, call site and what it is about), then rendered by the sink:
 * a journal record (log_send_journal(): one iovec per field), a plain
 * line for a terminal, a "<N>" line for a file. A journal record that
 * cannot be sent becomes a "<N>" line on stderr, which is the journal's
 * stream then: nothing is lost.
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
 * (@pending). The lock is held across the write(2) or the journal send,
 * so that a summary comes out before the line that follows its window,
 * from any thread.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "lib/common/debug.h"
#include "lib/common/macros.h"
#include "log.h"

#define LOG_MAX_TOKENS 16
#define LOG_LINE_MAX 1024
#define LOG_RL_SITES 128	/* > the daemon's log_err/warn/info sites */
#define LOG_RL_TEXT 160		/* text kept of a site's last dropped line */
#define LOG_IDENT "uzswapd"
#define LOG_MAX_FIELDS 16	/* of a journal record */

static const char *debug_tokens[LOG_MAX_TOKENS];
static int nr_debug_tokens;

/*
 * Where lines go; set by log_open() and log_set_sendv() before any thread
 * starts, read-only afterwards.
 * @sink:  the sink
 * @sendv: sends a journal record (sd_journal_sendv())
 */
static struct {
	enum log_sink sink;
	log_sendv_fn *sendv;
} out = { LOG_SINK_FILE, sd_journal_sendv };

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
 * struct log_rec - one line, formatted, before a sink renders it
 * @prio:       its syslog priority
 * @token:      its subsystem token
 * @file, @line, @func: its call site
 * @about:      what it is about; NULL if nothing in particular
 * @suppressed: for a summary of the rate limit, the lines it stands for
 * @text:       "token: text", NUL-terminated, without a newline
 */
struct log_rec {
	int prio;
	const char *token;
	const char *file;
	int line;
	const char *func;
	const struct log_about *about;
	unsigned long suppressed;
	char text[LOG_LINE_MAX];
};

/*
 * struct log_site - one call site's window; all fields protected by rl.lock
 * @fmt:        the site's format string (its key); NULL for a free slot
 * @token:      its subsystem token
 * @prio:       its syslog priority
 * @file, @line, @func: where it is
 * @start_ms:   when the current window started
 * @printed:    lines printed in the window
 * @suppressed: lines dropped in the window
 * @last:       the last dropped line's text, after "token: "
 */
struct log_site {
	const char *fmt;
	const char *token;
	int prio;
	const char *file;
	int line;
	const char *func;
	uint64_t start_ms;
	unsigned int printed;
	unsigned long suppressed;
	char last[LOG_RL_TEXT];
};

/*
 * @lock:    protects @sites, @pending and @now; held across the output
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

/*****************
 * Sinks
 *****************/

/* Is stderr the stream systemd connected to the journal? $JOURNAL_STREAM
 * is "DEVICE:INODE" of that stream (systemd.exec(5)), in decimal. */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!v || sscanf(v, "%llu:%llu%n", &dev, &ino, &end) != 2 || v[end])
		return false;
	return fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

enum log_sink log_open(void)
{
	if (stderr_is_journal())
		out.sink = LOG_SINK_JOURNAL;
	else if (isatty(STDERR_FILENO))
		out.sink = LOG_SINK_TERMINAL;
	else
		out.sink = LOG_SINK_FILE;
	return out.sink;
}

void log_set_sendv(log_sendv_fn *sendv)
{
	out.sendv = sendv ? sendv : sd_journal_sendv;
}

/* Write @len bytes of @line, which ends in '\n'; one write(2). */
static void log_write(const char *line, size_t len)
{
	if (write(STDERR_FILENO, line, len) < 0)
		return; /* nowhere left to report it */
}

/* The word a terminal line gives priority @prio ("" for information). */
static const char *log_level_word(int prio)
{
	switch (prio) {
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

/* @r as a line: "<N>token: text" for a file, "uzswapd: LEVEL: token:
 * text" for a terminal; one write(2). */
static void log_write_line(const struct log_rec *r, bool terminal)
{
	char line[LOG_LINE_MAX + 32];
	int n;

	if (terminal)
		n = snprintf(line, sizeof(line), LOG_IDENT ": %s%s\n",
			     log_level_word(r->prio), r->text);
	else
		n = snprintf(line, sizeof(line), "<%d>%s\n", r->prio, r->text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	log_write(line, (size_t)n);
}

/*
 * struct journal_rec - a journal record being built: @iov point into @buf
 * @n:    fields so far
 * @used: bytes of @buf used
 */
struct journal_rec {
	struct iovec iov[LOG_MAX_FIELDS];
	int n;
	size_t used;
	char buf[LOG_LINE_MAX + 512];
};

/* Add the field "NAME=value" that @fmt makes to @f; a value cut short
 * if @f->buf is full, a field dropped if there is no room at all. */
static void log_field(struct journal_rec *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_field(struct journal_rec *f, const char *fmt, ...)
{
	size_t room = sizeof(f->buf) - f->used;
	va_list ap;
	int n;

	if (f->n == LOG_MAX_FIELDS || room < 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(f->buf + f->used, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room)
		n = (int)room - 1;
	f->iov[f->n].iov_base = f->buf + f->used;
	f->iov[f->n++].iov_len = (size_t)n;
	f->used += (size_t)n + 1;
}

/* The source path of a call site as the tree names it, "daemon/fault.c",
 * whatever the build gave the compiler: "../../daemon/fault.c" in a VPATH
 * build, "/abs/src/daemon/fault.c" when configure was run by its full
 * path, "./daemon/fault.c" under -ffile-prefix-map; a file of another
 * directory (a test's) loses its leading "../" and "./". */
static const char *log_source_path(const char *file)
{
	const char *p, *last = NULL;

	for (p = file; (p = strstr(p, "daemon/")); p++)
		if (p == file || p[-1] == '/')
			last = p;
	if (last)
		return last;
	while (!strncmp(file, "../", 3) || !strncmp(file, "./", 2))
		file += file[1] == '/' ? 2 : 3;
	return file;
}

/* Send @r as a journal record. Return: 0 or -errno. */
static int log_send_journal(const struct log_rec *r)
{
	const struct log_about *a = r->about;
	struct journal_rec f;

	f.n = 0;
	f.used = 0;
	log_field(&f, "MESSAGE=%s", r->text);
	log_field(&f, "PRIORITY=%d", r->prio);
	log_field(&f, "SYSLOG_IDENTIFIER=" LOG_IDENT);
	log_field(&f, "UZSWAP_SUBSYSTEM=%s", r->token);
	log_field(&f, "CODE_FILE=%s", log_source_path(r->file));
	log_field(&f, "CODE_LINE=%d", r->line);
	log_field(&f, "CODE_FUNC=%s", r->func);
	if (r->suppressed)
		log_field(&f, "UZSWAP_SUPPRESSED=%lu", r->suppressed);
	if (a && a->pid)
		log_field(&f, "CLIENT_PID=%d", (int)a->pid);
	if (a && a->comm)
		log_field(&f, "CLIENT_COMM=%s", a->comm);
	if (a && a->region)
		log_field(&f, "REGION=%llu", (unsigned long long)a->region);
	if (a && a->name)
		log_field(&f, "REGION_NAME=%s", a->name);
	if (a && a->err)
		log_field(&f, "ERRNO=%d", a->err);
	return out.sendv(f.iov, f.n);
}

/* Output @r where the sink says. */
static void log_emit(const struct log_rec *r)
{
	switch (out.sink) {
	case LOG_SINK_JOURNAL:
		if (log_send_journal(r) < 0)
			log_write_line(r, false);	/* to the stream */
		return;
	case LOG_SINK_TERMINAL:
		log_write_line(r, true);
		return;
	case LOG_SINK_FILE:
		log_write_line(r, false);
		return;
	}
}

/*****************
 * Formatting and the rate limit
 *****************/

/* Format "token: text" into @r->text; returns the offset of the text. */
static size_t log_format(struct log_rec *r, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static size_t log_format(struct log_rec *r, const char *fmt, va_list ap)
{
	int n;

	DEBUG_CHECK(log_token_known(r->token), "a known log token");
	n = snprintf(r->text, sizeof(r->text), "%s: ", r->token);
	if (n < 0 || (size_t)n >= sizeof(r->text))
		n = 0;
	if (vsnprintf(r->text + n, sizeof(r->text) - (size_t)n, fmt, ap) < 0)
		r->text[n] = '\0';
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
	struct log_rec r = {
		.prio = s->prio, .token = s->token, .file = s->file,
		.line = s->line, .func = s->func, .suppressed = s->suppressed,
	};

	assert_held(&rl.lock);
	if (!s->suppressed)
		return;
	snprintf(r.text, sizeof(r.text), "%s: %s ... repeated %lu %s",
		 s->token, s->last, s->suppressed,
		 s->suppressed == 1 ? "time" : "times");
	log_emit(&r);
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

/* Output @r, or count it if its site (@fmt) is over its burst; the text
 * of @r starts at @text_off. */
static void log_limited(const struct log_rec *r, const char *fmt,
			size_t text_off)
{
	struct log_site *s;
	uint64_t now;

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
		log_emit(r);
	} else {
		if (!s->suppressed++)
			rl.pending++;
		s->token = r->token;
		s->prio = r->prio;
		s->file = r->file;
		s->line = r->line;
		s->func = r->func;
		snprintf(s->last, sizeof(s->last), "%.*s",
			 (int)sizeof(s->last) - 1, r->text + text_off);
	}
	pthread_mutex_unlock(&rl.lock);
}

void log_print(int prio, const char *file, int line, const char *func,
	       const struct log_about *about, const char *token,
	       const char *fmt, ...)
{
	struct log_rec r = {
		.prio = prio, .token = token, .file = file, .line = line,
		.func = func, .about = about,
	};
	size_t text_off;
	va_list ap;

	if (prio == LOG_DEBUG && !log_debug_enabled(token))
		return;
	va_start(ap, fmt);
	text_off = log_format(&r, fmt, ap);
	va_end(ap);
	if (prio == LOG_DEBUG)
		log_emit(&r);
	else
		log_limited(&r, fmt, text_off);
}
