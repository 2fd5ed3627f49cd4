/*
 * ctl-top.c - `uzswapctl top`: a live view of the daemon, as top(1) is of
 * the processes.
 *
 * Every opts.delay seconds it takes a sample (STATUS, then CLIENTS, on
 * the one admin connection) and shows a frame: a summary of the pool,
 * what it stores and its ratios, the rates since the last sample (faults,
 * evictions, loads, writebacks: differences of the daemon's counters over
 * the time between the samples), deduplication and the backing file;
 * then a table of the clients (ctl-cols.c; by default PID, COMMAND,
 * RESIDENT, LIMIT, STORED, COMPRESSED, RATIO, FAULTS/S, EVICTIONS/S)
 * with the most resident memory first. A rate is "-" until there are two
 * samples to compare.
 *
 * Two modes, from what stdout is:
 *   - a terminal: each frame redraws the screen (the alternate screen,
 *     its cursor hidden; home, each line cleared to its end, the rest of
 *     the screen cleared), cut to the terminal's width (libsmartcols'
 *     termwidth) and height. With stdin a terminal too, it is put in
 *     non-canonical mode without echo, and q ends the view. SIGWINCH
 *     redraws the frame at once for the new size.
 *   - anything else (batch, as `top -b`): each frame follows the last, a
 *     blank line between them, for scripts and tests.
 * The view ends after opts.iterations frames, on q, or on SIGINT,
 * SIGTERM, SIGHUP or SIGQUIT; the terminal is given back as it was in
 * every case but a SIGKILL. These signals are blocked except while
 * ppoll() waits between frames, so that none is lost in between.
 */
#include "config.h"

#include <errno.h>
#include <libsmartcols.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "lib/common/macros.h"

#define DEFAULT_ROWS	24	/* a terminal that does not say its size */

/* One look at the daemon. */
struct sample {
	struct uzswap_status st;
	struct client_row *rows;	/* in pid order, as CLIENTS lists
					 * them */
	size_t n;
	double when;			/* CLOCK_MONOTONIC, in seconds */
};

/* The daemon's rates between two samples, per second. */
struct rates {
	bool known;		/* false on the first sample */
	double faults;
	double evictions;
	double loads;
	double writebacks;
};

/* What a frame shows: the latest sample and its rates. */
struct view {
	const char *release;		/* the daemon's */
	const struct sample *s;
	const struct rates *r;
	const struct colsel *sel;	/* the client columns */
};

/* The terminal while the view runs: what to give back at the end. */
struct term {
	bool screen;		/* stdout is a terminal: redraw it */
	bool keys;		/* stdin is one too, non-canonical: q ends */
	struct termios saved;	/* stdin's mode before, if @keys */
	sigset_t saved_mask;	/* the signal mask before */
};

/* The signals that end the view, and the one that resizes it. */
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Set by the handlers, read and cleared by the view's loop (one thread;
 * the handlers run only inside ppoll()). */
static volatile sig_atomic_t stopped, resized;

static void on_stop(int sig)
{
	stopped = sig;
}

static void on_resize(int sig)
{
	resized = sig;
}

/*****************
 * Samples and rates
 *****************/

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sample_free(struct sample *s)
{
	free(s->rows);
	*s = (struct sample){ .n = 0 };
}

/* STATUS and CLIENTS into @s. Return: 0 or -errno. */
static int sample_take(struct sample *s)
{
	struct uzswap_client *list;
	size_t i;
	int ret;

	ret = uzswap_status(conn, &s->st);
	if (ret)
		return ret;
	ret = uzswap_clients(conn, &list, &s->n);
	if (ret)
		return ret;
	s->when = now_seconds();
	s->rows = calloc(s->n ? s->n : 1, sizeof(*s->rows));
	if (!s->rows) {
		free(list);
		return -ENOMEM;
	}
	for (i = 0; i < s->n; i++)
		s->rows[i].cl = list[i];
	free(list);
	return 0;
}

/* (@now - @then) / @dt; -1 if the counter went back (a new daemon). */
static double per_second(uint64_t now, uint64_t then, double dt)
{
	return now >= then ? (double)(now - then) / dt : -1.0;
}

/* The rates of @cur's daemon and of each of its clients that @prev
 * knew too (both in pid order). */
static void rates_compute(const struct sample *prev, struct sample *cur,
			  struct rates *r)
{
	double dt = cur->when - prev->when;
	size_t i, j = 0;

	*r = (struct rates){ .known = prev->rows && dt > 0 };
	if (!r->known)
		return;
	r->faults = per_second(cur->st.faults, prev->st.faults, dt);
	r->evictions = per_second(cur->st.evictions, prev->st.evictions, dt);
	r->loads = per_second(cur->st.loads, prev->st.loads, dt);
	r->writebacks = per_second(cur->st.writebacks, prev->st.writebacks,
				   dt);
	r->known = r->faults >= 0 && r->evictions >= 0 && r->loads >= 0 &&
		   r->writebacks >= 0;
	for (i = 0; i < cur->n; i++) {
		struct client_row *c = &cur->rows[i];
		const struct client_row *p;

		while (j < prev->n && prev->rows[j].cl.pid < c->cl.pid)
			j++;
		if (j == prev->n || prev->rows[j].cl.pid != c->cl.pid)
			continue;
		p = &prev->rows[j];
		c->fault_rate = per_second(c->cl.faults, p->cl.faults, dt);
		c->eviction_rate = per_second(c->cl.evictions,
					      p->cl.evictions, dt);
		c->rated = c->fault_rate >= 0 && c->eviction_rate >= 0;
	}
}

/* Most resident first; then by pid. */
static int by_resident(const void *a, const void *b)
{
	const struct uzswap_client *x = &((const struct client_row *)a)->cl;
	const struct uzswap_client *y = &((const struct client_row *)b)->cl;

	if (x->resident_bytes != y->resident_bytes)
		return x->resident_bytes > y->resident_bytes ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/*****************
 * A frame
 *****************/

/* @v per second as "12.5", or "-" if not known. */
static const char *rate_text(bool known, double v, char *buf, size_t len)
{
	if (!known)
		return "-";
	snprintf(buf, len, "%.1f", v);
	return buf;
}

/* The summary above the table, into @f. */
static void print_summary(FILE *f, const struct view *v)
{
	const struct uzswap_status *st = &v->s->st;
	const struct rates *r = v->r;
	char a[32], b[32], c[32], d[32];

	fprintf(f, "uzswapd %s, up %llud %02llu:%02llu:%02llu, %llu client%s, "
		"%s", v->release, (unsigned long long)st->uptime_sec / 86400,
		(unsigned long long)st->uptime_sec / 3600 % 24,
		(unsigned long long)st->uptime_sec / 60 % 60,
		(unsigned long long)st->uptime_sec % 60,
		(unsigned long long)st->clients, st->clients == 1 ? "" : "s",
		st->compressor == UZSWAP_COMPRESSOR_ZSTD ? "zstd" : "lz4");
	if (st->compressor == UZSWAP_COMPRESSOR_ZSTD)
		fprintf(f, " level %u", st->zstd_level);
	fprintf(f, ", every %g s\n", opts.delay);
	fprintf(f, "%-12s %s of %s%s, full %llu times\n", "pool",
		ctl_size(st->pool_bytes, a, 32),
		ctl_limit(st->pool_limit, b, 32),
		st->pool_full ? " (FULL)" : "",
		(unsigned long long)st->pool_full_events);
	fprintf(f, "%-12s %s of pages in memory, %s written back\n", "stored",
		ctl_size(st->stored_pages * 4096, a, 32),
		ctl_size(st->written_back_pages * 4096, b, 32));
	fprintf(f, "%-12s %s: %s of pages in %s of objects\n", "compression",
		ctl_ratio(status_compression_ratio(st), a, 32),
		ctl_size((st->stored_pages - st->same_pages) * 4096, b, 32),
		ctl_size(st->compressed_bytes, c, 32));
	fprintf(f, "%-12s %s: %s of pages in %s of pool\n", "pool ratio",
		ctl_ratio(status_pool_ratio(st), a, 32),
		ctl_size(st->stored_pages * 4096, b, 32),
		ctl_size(st->pool_bytes, c, 32));
	fprintf(f, "%-12s %s, all clients' limit %s, default %s\n",
		"resident", ctl_size(st->resident_bytes, a, 32),
		ctl_limit(st->resident_limit, b, 32),
		ctl_limit(st->default_limit, c, 32));
	fprintf(f, "%-12s faults %s, evictions %s, loads %s, writebacks %s\n",
		"per second", rate_text(r->known, r->faults, a, 32),
		rate_text(r->known, r->evictions, b, 32),
		rate_text(r->known, r->loads, c, 32),
		rate_text(r->known, r->writebacks, d, 32));
	fprintf(f, "%-12s %s, %s saved\n", "dedup", st->dedup ? "on" : "off",
		ctl_size(st->dedup_bytes_saved, a, 32));
	if (st->backing_backend == UZSWAP_BACKING_NBD)
		fprintf(f, "%-12s %s of %s, %s\n", "backing nbd",
			ctl_size(st->backing_bytes, a, 32),
			ctl_size(st->backing_limit, b, 32),
			st->backing_up ? "connected" : "AWAY");
	else if (st->backing_limit)
		fprintf(f, "%-12s %s of %s\n", "backing file",
			ctl_size(st->backing_bytes, a, 32),
			ctl_size(st->backing_limit, b, 32));
	else
		fprintf(f, "%-12s none\n", "backing file");
}

/*
 * frame_text() - the frame of @v: the summary, a blank line, the clients
 * @width: set to the terminal's width, as libsmartcols sees it
 * Return: the text (free() it), or NULL with errno set.
 */
static char *frame_text(const struct view *v, size_t *width)
{
	struct libscols_table *tb;
	struct client_row *sorted;
	char *text = NULL, *table = NULL;
	size_t len = 0;
	FILE *f;

	sorted = malloc((v->s->n ? v->s->n : 1) * sizeof(*sorted));
	if (!sorted)
		return NULL;
	memcpy(sorted, v->s->rows, v->s->n * sizeof(*sorted));
	qsort(sorted, v->s->n, sizeof(*sorted), by_resident);
	tb = cols_table(v->sel, sorted, v->s->n, sizeof(*sorted));
	free(sorted);
	if (!tb)
		return NULL;
	*width = scols_table_get_termwidth(tb);
	if (scols_print_table_to_string(tb, &table))
		table = NULL;
	scols_unref_table(tb);
	f = table ? open_memstream(&text, &len) : NULL;
	if (f) {
		print_summary(f, v);
		/* libsmartcols prints nothing of a table without lines */
		fprintf(f, "\n%s\n", v->s->n ? table : "no clients");
		fclose(f);
	}
	free(table);
	if (!text)
		errno = ENOMEM;
	return text;
}

/* The rows of the terminal on stdout. */
static size_t term_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) || !ws.ws_row)
		return DEFAULT_ROWS;
	return ws.ws_row;
}

/* Redraw the screen with @text, each line cut to @width, as many lines
 * as the terminal has. */
static void redraw(const char *text, size_t width)
{
	size_t rows = term_rows(), row, len;
	const char *end;

	fputs("\033[H", stdout);
	for (row = 0; *text && row < rows; row++, text = end + !!*end) {
		end = strchr(text, '\n');
		if (!end)
			end = text + strlen(text);
		len = (size_t)(end - text);
		printf("%s%.*s\033[K", row ? "\n" : "",
		       (int)(len < width ? len : width), text);
	}
	fputs("\033[J", stdout);
	fflush(stdout);
}

/* Show the frame of @v: redrawn on a terminal, else after the last. */
static int frame_show(const struct term *t, const struct view *v,
		      bool first)
{
	size_t width;
	char *text = frame_text(v, &width);

	if (!text)
		return -errno;
	if (t->screen) {
		redraw(text, width);
	} else {
		printf("%s%s", first ? "" : "\n", text);
		fflush(stdout);
	}
	free(text);
	return 0;
}

/*****************
 * The terminal and the signals
 *****************/

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa = { .sa_handler = fn };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* Catch and block the signals of the view; on a terminal, take the
 * screen over, and the keys if stdin is one too. */
static void term_enter(struct term *t)
{
	sigset_t block;
	unsigned int i;

	*t = (struct term){ .screen = isatty(STDOUT_FILENO) };
	stopped = 0;
	resized = 0;
	sigemptyset(&block);
	for (i = 0; i < ARRAY_SIZE(stop_signals); i++) {
		sigaddset(&block, stop_signals[i]);
		set_handler(stop_signals[i], on_stop);
	}
	sigaddset(&block, SIGWINCH);
	set_handler(SIGWINCH, on_resize);
	sigprocmask(SIG_BLOCK, &block, &t->saved_mask);
	if (!t->screen)
		return;
	if (isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &t->saved)) {
		struct termios raw = t->saved;

		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		t->keys = !tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
	}
	fputs("\033[?1049h\033[?25l", stdout);	/* alternate screen, no
						 * cursor */
	fflush(stdout);
}

/* Give back what term_enter() took, in reverse order. */
static void term_leave(struct term *t)
{
	unsigned int i;

	if (t->screen) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
	}
	if (t->keys)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
	set_handler(SIGWINCH, SIG_DFL);
	for (i = 0; i < ARRAY_SIZE(stop_signals); i++)
		set_handler(stop_signals[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, &t->saved_mask, NULL);
}

/* Read the keys waiting on stdin: true if one of them is q. */
static bool quit_key(void)
{
	char keys[16];
	ssize_t n, i;

	n = read(STDIN_FILENO, keys, sizeof(keys));
	for (i = 0; i < n; i++)
		if (keys[i] == 'q' || keys[i] == 'Q')
			return true;
	return false;
}

/*
 * wait_next() - wait opts.delay seconds from @since for the next frame,
 * redrawing @v's frame if the terminal is resized meanwhile
 * Return: true to go on, false to stop (q, a signal, the terminal gone).
 */
static bool wait_next(const struct term *t, const struct view *v,
		      double since)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	double left;
	struct timespec ts;
	int n;

	for (;;) {
		left = since + opts.delay - now_seconds();
		if (left <= 0)
			return true;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		n = ppoll(&pfd, t->keys ? 1 : 0, &ts, &t->saved_mask);
		if (stopped)
			return false;
		if (resized) {
			resized = 0;
			if (t->screen && frame_show(t, v, false))
				return false;
		}
		if (n > 0 && (pfd.revents & (POLLHUP | POLLERR)))
			return false;
		if (n > 0 && quit_key())
			return false;
	}
}

/*****************
 * The view
 *****************/

int top_run(const struct colsel *sel)
{
	struct sample prev = { .n = 0 }, cur = { .n = 0 };
	struct rates rates;
	struct view v = { .sel = sel, .s = &prev, .r = &rates };
	char release[64];
	unsigned int protocol;
	unsigned long i;
	struct term t;
	int ret;

	ret = uzswap_daemon_version(conn, release, sizeof(release), &protocol);
	if (ret)
		return ret;
	v.release = release;
	term_enter(&t);
	for (i = 0; !stopped; i++) {
		ret = sample_take(&cur);
		if (ret)
			break;
		rates_compute(&prev, &cur, &rates);
		sample_free(&prev);
		prev = cur;
		cur = (struct sample){ .n = 0 };
		ret = frame_show(&t, &v, i == 0);
		if (ret || (opts.iterations && i + 1 >= opts.iterations) ||
		    !wait_next(&t, &v, prev.when))
			break;
	}
	sample_free(&cur);
	sample_free(&prev);
	term_leave(&t);
	return ret;
}
