/*
 * log.c - uzswapd's logging to stderr with syslog priority prefixes; see
 * log.h. The debug token list is written once at startup, before any
 * thread exists, and only read afterwards.
 */
#include "config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

#define LOG_MAX_TOKENS 16
#define LOG_LINE_MAX 1024

static const char *debug_tokens[LOG_MAX_TOKENS];
static int nr_debug_tokens;

#define LOG_TOKEN_STRING_(t) #t,
static const char *const subsystems[] = { LOG_SUBSYSTEMS(LOG_TOKEN_STRING_) };

bool log_token_known(const char *token)
{
	size_t i;

	if (!strcmp(token, "all"))
		return true;
	for (i = 0; i < sizeof(subsystems) / sizeof(subsystems[0]); i++)
		if (!strcmp(token, subsystems[i]))
			return true;
	return false;
}

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

static void log_vline(int prio, const char *token, const char *fmt,
		      va_list ap) __attribute__((format(printf, 3, 0)));

static void log_vline(int prio, const char *token, const char *fmt,
		      va_list ap)
{
	char line[LOG_LINE_MAX];
	int n, m;

	assert(log_token_known(token) && strcmp(token, "all"));
	n = snprintf(line, sizeof(line), "<%d>%s: ", prio, token);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return; /* nowhere left to report it */
}

#define LOG_FN(name, prio, guard)                                       \
	void name(const char *token, const char *fmt, ...)              \
	{                                                               \
		va_list ap;                                             \
									\
		if (!(guard))                                           \
			return;                                         \
		va_start(ap, fmt);                                      \
		log_vline(prio, token, fmt, ap);                        \
		va_end(ap);                                             \
	}

LOG_FN(log_err, LOG_ERR, true)
LOG_FN(log_warn, LOG_WARNING, true)
LOG_FN(log_info, LOG_INFO, true)
LOG_FN(log_debug, LOG_DEBUG, log_debug_enabled(token))
