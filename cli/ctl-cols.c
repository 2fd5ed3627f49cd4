/*
 * ctl-cols.c - the columns of uzswapctl's tables and JSON, as zramctl and
 * lsblk have theirs: each has a name (its header, and what -o picks), a
 * line of help, a width hint for libsmartcols, and the JSON key under
 * which --json prints the same value.
 *
 * Two sets: the daemon's totals (`status`, one row) and its clients
 * (`clients`, `client`, `top`). Both are built once from the counter
 * lists of lib/proto/counters.h, so that every counter the daemon sends
 * is a column and a JSON member without being named here again: a
 * counter's column is its JSON key in capitals, '-' for '_', without its
 * "_bytes" ("resident_limit_bytes" is RESIDENT-LIMIT). Beside them, the
 * few columns derived from several counters (the ratios, the stored
 * bytes) and the client's identity; and the rates only `top` knows, as
 * it compares two samples.
 *
 * A value prints by its kind: a size human ("1.5 GiB", "1.5GiB" in a raw
 * table) or in bytes with -b, and always in bytes in JSON; a budget of 0
 * as "none" (0 with -b); a ratio that divides by 0 as "-" (0 in JSON).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libsmartcols.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "lib/common/macros.h"
#include "lib/proto/counters.h"

#define PAGE_BYTES	4096.0

/* How a column's value prints. */
enum cell_kind {
	CELL_NUMBER,		/* a count */
	CELL_BYTES,		/* a size */
	CELL_LIMIT,		/* a size; 0: none */
	CELL_BOOL,		/* yes or no; true or false */
	CELL_MILLI,		/* thousandths, as a decimal number */
	CELL_COMPRESSOR,	/* UZSWAP_COMPRESSOR_*: its name */
	CELL_BACKEND,		/* UZSWAP_BACKING_*: its name */
	CELL_RATIO,		/* a quotient; 0: nothing to divide, "-" */
	CELL_RATE,		/* per second; unknown before two samples */
	CELL_STRING,
};

/* One value, as a column's getter gives it. */
struct cell {
	uint64_t n;		/* NUMBER, BYTES, LIMIT, BOOL, MILLI,
				 * COMPRESSOR, BACKEND */
	double x;		/* RATIO, RATE */
	const char *s;		/* STRING */
	bool unknown;		/* RATE: not measured yet */
};

#define HELP_INDENT	25	/* where --help starts the text of an item */
#define HELP_WIDTH	79	/* and where it wraps it */

/* A column; immutable once cols_init() built it. */
struct column {
	char name[32];		/* header, and its name for -o */
	const char *json;	/* its key in JSON; NULL: top's only */
	const char *help;
	enum cell_kind kind;
	size_t off, size;	/* the field of the row it shows, or */
	void (*get)(const void *row, struct cell *c);	/* ... computes */
};

/* A set of columns; the lists of names (NULL-terminated) say which are
 * shown by default, which only `top` shows, and top's default ones. */
struct colset {
	const char *what;	/* for messages: "a client" */
	struct column *cols;
	size_t n;
	const char *const *defaults;
	const char *const *live;	/* NULL: none */
	const char *const *live_defaults;
};

static const char *const status_defaults[] = {
	"CLIENTS", "REGISTERED", "RESIDENT", "STORED", "COMPRESSED", "POOL",
	"POOL-LIMIT", "RATIO", "POOL-RATIO", "COMPRESSOR", "FAULT-RATE", NULL
};

static const char *const client_defaults[] = {
	"PID", "COMMAND", "REGIONS", "REGISTERED", "RESIDENT", "LIMIT",
	"STORED", "RATIO", "FAULTS", NULL
};

static const char *const client_live[] = { "FAULTS/S", "EVICTIONS/S", NULL };

static const char *const client_live_defaults[] = {
	"PID", "COMMAND", "RESIDENT", "LIMIT", "STORED", "COMPRESSED",
	"RATIO", "FAULTS/S", "EVICTIONS/S", NULL
};

/* The two sets; cols_init() fills in their columns before any other
 * use, and nothing changes them after (uzswapctl has one thread). */
static struct colset sets[] = {
	[COLSET_STATUS] = { "the status", NULL, 0, status_defaults, NULL,
			    NULL },
	[COLSET_CLIENT] = { "a client", NULL, 0, client_defaults,
			    client_live, client_live_defaults },
};

/*****************
 * Derived values
 *****************/

/* @pages of 4 KiB per byte of @bytes; 0 when @bytes is. */
static double pages_per_byte(uint64_t pages, uint64_t bytes)
{
	return bytes ? (double)pages * PAGE_BYTES / (double)bytes : 0.0;
}

double status_compression_ratio(const struct uzswap_status *st)
{
	return pages_per_byte(st->stored_pages - st->same_pages,
			      st->compressed_bytes);
}

double status_pool_ratio(const struct uzswap_status *st)
{
	return pages_per_byte(st->stored_pages, st->pool_bytes);
}

double client_ratio(const struct uzswap_client *cl)
{
	return pages_per_byte(cl->pool_pages, cl->compressed_bytes);
}

static void get_status_stored(const void *row, struct cell *c)
{
	c->n = ((const struct uzswap_status *)row)->stored_pages * 4096;
}

static void get_status_ratio(const void *row, struct cell *c)
{
	c->x = status_compression_ratio(row);
}

static void get_status_pool_ratio(const void *row, struct cell *c)
{
	c->x = status_pool_ratio(row);
}

static void get_client_pid(const void *row, struct cell *c)
{
	c->n = (uint64_t)((const struct client_row *)row)->cl.pid;
}

static void get_client_uid(const void *row, struct cell *c)
{
	c->n = ((const struct client_row *)row)->cl.uid;
}

static void get_client_command(const void *row, struct cell *c)
{
	c->s = ((const struct client_row *)row)->cl.comm;
}

static void get_client_stored(const void *row, struct cell *c)
{
	c->n = ((const struct client_row *)row)->cl.stored_pages * 4096;
}

static void get_client_ratio(const void *row, struct cell *c)
{
	c->x = client_ratio(&((const struct client_row *)row)->cl);
}

static void get_client_fault_rate(const void *row, struct cell *c)
{
	const struct client_row *r = row;

	c->x = r->fault_rate;
	c->unknown = !r->rated;
}

static void get_client_eviction_rate(const void *row, struct cell *c)
{
	const struct client_row *r = row;

	c->x = r->eviction_rate;
	c->unknown = !r->rated;
}

/* The value of @col for @row. */
static void cell_of(const struct column *col, const void *row,
		    struct cell *c)
{
	const unsigned char *p = (const unsigned char *)row + col->off;

	*c = (struct cell){ .n = 0 };
	if (col->get) {
		col->get(row, c);
	} else if (col->size == sizeof(uint32_t)) {
		uint32_t v;

		memcpy(&v, p, sizeof(v));
		c->n = v;
	} else {
		memcpy(&c->n, p, sizeof(c->n));
	}
}

/*****************
 * Building the sets
 *****************/

/* Derived columns: name, JSON key, kind, getter, help. */
#define DERIVED(nm, key, k, fn, h)					\
	{ .name = nm, .json = key, .kind = k, .get = fn, .help = h }

static const struct column status_derived[] = {
	DERIVED("STORED", "stored_bytes", CELL_BYTES, get_status_stored,
		"Bytes of the pages kept in memory, uncompressed."),
	DERIVED("RATIO", "compression_ratio", CELL_RATIO, get_status_ratio,
		"Bytes of the pages compressed or kept raw in the pool per "
		"byte of their objects."),
	DERIVED("POOL-RATIO", "pool_ratio", CELL_RATIO,
		get_status_pool_ratio,
		"Bytes of every page kept in memory (same-filled ones too) "
		"per byte of the pool."),
};

static const struct column client_identity[] = {
	DERIVED("PID", "pid", CELL_NUMBER, get_client_pid,
		"The client's process id."),
	DERIVED("UID", "uid", CELL_NUMBER, get_client_uid,
		"Its user id."),
	DERIVED("COMMAND", "command", CELL_STRING, get_client_command,
		"Its command name."),
};

static const struct column client_derived[] = {
	DERIVED("STORED", "stored_bytes", CELL_BYTES, get_client_stored,
		"Bytes of its pages kept by uzswapd, uncompressed."),
	DERIVED("RATIO", "compression_ratio", CELL_RATIO, get_client_ratio,
		"Bytes of its pages compressed in the pool per byte they "
		"take there."),
	DERIVED("FAULTS/S", NULL, CELL_RATE, get_client_fault_rate,
		"Its faults per second since the last refresh (top)."),
	DERIVED("EVICTIONS/S", NULL, CELL_RATE, get_client_eviction_rate,
		"Its pages evicted per second since the last refresh (top)."),
};

/* The kind of a counter from its JSON key: sizes end in _bytes. */
static enum cell_kind kind_of_key(const char *json)
{
	size_t len = strlen(json);

	if (len > 12 && !strcmp(json + len - 12, "_limit_bytes"))
		return CELL_LIMIT;
	if (!strcmp(json, "limit_bytes"))
		return CELL_LIMIT;
	if (len > 6 && !strcmp(json + len - 6, "_bytes"))
		return CELL_BYTES;
	return CELL_NUMBER;
}

static enum cell_kind kind_of_show(enum counter_show show, const char *json)
{
	switch (show) {
	case COUNTER_BOOL:
		return CELL_BOOL;
	case COUNTER_MILLI:
		return CELL_MILLI;
	case COUNTER_COMPRESSOR:
		return CELL_COMPRESSOR;
	case COUNTER_BACKEND:
		return CELL_BACKEND;
	case COUNTER_NUMBER:
		break;
	}
	return kind_of_key(json);
}

/* A counter's column: @json in capitals, '-' for '_', without _bytes. */
static void counter_column(struct column *col, const char *json,
			   const char *help, enum cell_kind kind, size_t off,
			   size_t size)
{
	size_t len = strlen(json), i;

	if (len > 6 && !strcmp(json + len - 6, "_bytes"))
		len -= 6;
	if (len >= sizeof(col->name))
		len = sizeof(col->name) - 1;
	for (i = 0; i < len; i++)
		col->name[i] = json[i] == '_' ? '-' : (char)toupper(json[i]);
	col->name[len] = '\0';
	col->json = json;
	col->help = help;
	col->kind = kind;
	col->off = off;
	col->size = size;
	col->get = NULL;
}

#define STATUS_COLUMN(x, name, since, pub, json, show, mtype, metric,	\
		      label, help)					\
	counter_column(&cols[n++], json, help, kind_of_show(show, json), \
		       offsetof(struct uzswap_status, pub),		\
		       sizeof(((struct uzswap_status *)0)->pub));
#define CLIENT_COLUMN(x, type, name, since, pub, json, mtype, metric,	\
		      help)						\
	counter_column(&cols[n++], json, help, kind_of_key(json),	\
		       offsetof(struct uzswap_client, pub),		\
		       sizeof(((struct uzswap_client *)0)->pub));
#define COUNT_ONE(...)	+ 1

_Static_assert(offsetof(struct client_row, cl) == 0,
	       "a client column's offset is its uzswap_client field's");

static int build_status(struct colset *set)
{
	const size_t total = 0 COUNTERS_STATUS(COUNT_ONE, _) +
			     ARRAY_SIZE(status_derived);
	struct column *cols = calloc(total, sizeof(*cols));
	size_t n = 0;

	if (!cols)
		return -ENOMEM;
	COUNTERS_STATUS(STATUS_COLUMN, _)
	memcpy(cols + n, status_derived, sizeof(status_derived));
	set->cols = cols;
	set->n = total;
	return 0;
}

static int build_client(struct colset *set)
{
	const size_t total = ARRAY_SIZE(client_identity) +
			     0 COUNTERS_CLIENT(COUNT_ONE, _) +
			     ARRAY_SIZE(client_derived);
	struct column *cols = calloc(total, sizeof(*cols));
	size_t n = ARRAY_SIZE(client_identity);

	if (!cols)
		return -ENOMEM;
	memcpy(cols, client_identity, sizeof(client_identity));
	COUNTERS_CLIENT(CLIENT_COLUMN, _)
	memcpy(cols + n, client_derived, sizeof(client_derived));
	set->cols = cols;
	set->n = total;
	return 0;
}

int cols_init(void)
{
	int ret = build_status(&sets[COLSET_STATUS]);

	return ret ? ret : build_client(&sets[COLSET_CLIENT]);
}

/*****************
 * Picking columns (-o)
 *****************/

static bool in_list(const char *const *list, const char *name)
{
	for (; list && *list; list++)
		if (!strcmp(*list, name))
			return true;
	return false;
}

/* The column of @set named @name (@len bytes, any case), or NULL. */
static const struct column *column_named(const struct colset *set,
					 const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (!strncasecmp(set->cols[i].name, name, len) &&
		    !set->cols[i].name[len])
			return &set->cols[i];
	return NULL;
}

/* Append @col to @sel, which has room. */
static void pick(struct colsel *sel, const struct column *col)
{
	sel->cols[sel->n++] = col;
}

/* Append the columns of the comma-separated @list; EXIT_USAGE for a
 * name that is none of @set's (or only top's, unless @live). */
static int pick_list(const struct colset *set, const char *list, bool live,
		     struct colsel *sel)
{
	const char *p = list, *end;
	const struct column *col;
	size_t len;

	for (;; p = end + 1) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		if (!len)
			return usage_error("an empty column name in '%s'",
					   list);
		col = column_named(set, p, len);
		if (!col)
			return usage_error("unknown column '%.*s' for %s",
					   (int)len, p, set->what);
		if (!live && in_list(set->live, col->name))
			return usage_error("column '%s' is top's only",
					   col->name);
		pick(sel, col);
		if (!end)
			return EXIT_OK;
	}
}

/* The default columns of @set, top's if @live. */
static const char *const *defaults_of(const struct colset *set, bool live)
{
	return live && set->live_defaults ? set->live_defaults
					  : set->defaults;
}

static void pick_defaults(const struct colset *set, bool live,
			  struct colsel *sel)
{
	const char *const *name;

	for (name = defaults_of(set, live); *name; name++)
		pick(sel, column_named(set, *name, strlen(*name)));
}

int cols_select(enum colset_id id, const char *list, bool all, bool live,
		struct colsel *sel)
{
	const struct colset *set = &sets[id];
	size_t room = set->n + 1, i;
	const char *p;
	int ret = EXIT_OK;

	for (p = list; p && *p; p++)
		room += *p == ',';
	sel->n = 0;
	sel->cols = calloc(room, sizeof(*sel->cols));
	if (!sel->cols)
		return -ENOMEM;
	if (all) {
		for (i = 0; i < set->n; i++)
			if (live || !in_list(set->live, set->cols[i].name))
				pick(sel, &set->cols[i]);
		return EXIT_OK;
	}
	if (!list || *list == '+')
		pick_defaults(set, live, sel);
	if (list)
		ret = pick_list(set, list + (*list == '+'), live, sel);
	if (ret)
		cols_free(sel);
	return ret;
}

int cols_select_all(enum colset_id id, struct colsel *sel)
{
	return cols_select(id, NULL, true, false, sel);
}

void cols_free(struct colsel *sel)
{
	free(sel->cols);
	sel->cols = NULL;
	sel->n = 0;
}

void help_item(const char *term, const char *text)
{
	int col = printf("  %s", term);
	bool first = true;
	const char *end;
	int len;

	while (*text) {
		while (*text == ' ')
			text++;
		if (!*text)
			break;
		for (end = text; *end && *end != ' '; end++)
			;
		len = (int)(end - text);
		if (first && col >= HELP_INDENT - 1) {
			printf("\n%*s", HELP_INDENT, "");
		} else if (first) {
			printf("%*s", HELP_INDENT - col, "");
		} else if (col + 1 + len > HELP_WIDTH) {
			printf("\n%*s", HELP_INDENT, "");
			col = HELP_INDENT;
		} else {
			putchar(' ');
			col++;
		}
		if (first)
			col = HELP_INDENT;
		printf("%.*s", len, text);
		col += len;
		first = false;
		text = end;
	}
	putchar('\n');
}

void cols_help(enum colset_id id, bool live)
{
	const struct colset *set = &sets[id];
	const char *const *first = defaults_of(set, live), *const *name;
	size_t i;

	printf("\nColumns (-o); by default:");
	for (name = first; *name; name++)
		printf("%s%s", name == first ? " " : ",", *name);
	printf("\n");
	for (i = 0; i < set->n; i++) {
		if (!live && in_list(set->live, set->cols[i].name))
			continue;
		help_item(set->cols[i].name, set->cols[i].help);
	}
}

/*****************
 * Output
 *****************/

static const char *compressor_name(uint64_t compressor)
{
	return compressor == UZSWAP_COMPRESSOR_ZSTD ? "zstd" : "lz4";
}

/* A size in a table: as ctl_size() prints it, without its space in a
 * raw table ("1.5GiB"), where a space would be escaped. */
static const char *size_text(uint64_t v, char *buf, size_t len)
{
	char *space;

	ctl_size(v, buf, len);
	space = opts.raw ? strchr(buf, ' ') : NULL;
	if (space)
		memmove(space, space + 1, strlen(space));
	return buf;
}

/* @c of @kind as a table shows it, in @buf (32 bytes). */
static const char *cell_text(enum cell_kind kind, const struct cell *c,
			     char *buf, size_t len)
{
	switch (kind) {
	case CELL_NUMBER:
		snprintf(buf, len, "%" PRIu64, c->n);
		return buf;
	case CELL_BYTES:
		return size_text(c->n, buf, len);
	case CELL_LIMIT:
		return c->n || opts.bytes ? size_text(c->n, buf, len) : "none";
	case CELL_BOOL:
		return c->n ? "yes" : "no";
	case CELL_MILLI:
		snprintf(buf, len, "%.1f", (double)c->n / 1000.0);
		return buf;
	case CELL_COMPRESSOR:
		return compressor_name(c->n);
	case CELL_BACKEND:
		return ctl_backend_name(c->n);
	case CELL_RATIO:
		if (c->x == 0.0)
			return "-";
		snprintf(buf, len, "%.2f", c->x);
		return buf;
	case CELL_RATE:
		if (c->unknown)
			return "-";
		snprintf(buf, len, "%.1f", c->x);
		return buf;
	case CELL_STRING:
		return c->s;
	}
	return "";
}

/* Sizes, counts and rates align right; names left, cut to fit. */
static int column_flags(enum cell_kind kind)
{
	return kind == CELL_STRING ? SCOLS_FL_TRUNC : SCOLS_FL_RIGHT;
}

static double column_whint(enum cell_kind kind)
{
	return kind == CELL_STRING ? 16 : 5;
}

struct libscols_table *cols_table(const struct colsel *sel, const void *rows,
				  size_t n, size_t stride)
{
	struct libscols_table *tb = scols_new_table();
	struct libscols_line *ln;
	const void *row;
	struct cell c;
	char buf[32];
	size_t r, i;

	if (!tb)
		return NULL;
	scols_table_enable_raw(tb, opts.raw);
	scols_table_enable_noheadings(tb, opts.noheadings);
	for (i = 0; i < sel->n; i++)
		if (!scols_table_new_column(tb, sel->cols[i]->name,
					    column_whint(sel->cols[i]->kind),
					    column_flags(sel->cols[i]->kind)))
			goto out_unref;
	for (r = 0; r < n; r++) {
		row = (const unsigned char *)rows + r * stride;
		ln = scols_table_new_line(tb, NULL);
		if (!ln)
			goto out_unref;
		for (i = 0; i < sel->n; i++) {
			cell_of(sel->cols[i], row, &c);
			if (scols_line_set_data(ln, i,
						cell_text(sel->cols[i]->kind,
							  &c, buf,
							  sizeof(buf))))
				goto out_unref;
		}
	}
	return tb;
out_unref:
	scols_unref_table(tb);
	errno = ENOMEM;
	return NULL;
}

/* @c of @kind as a JSON value. */
static void cell_json(enum cell_kind kind, const struct cell *c)
{
	switch (kind) {
	case CELL_NUMBER:
	case CELL_BYTES:
	case CELL_LIMIT:
		printf("%" PRIu64, c->n);
		break;
	case CELL_BOOL:
		printf("%s", c->n ? "true" : "false");
		break;
	case CELL_MILLI:
		printf("%.3f", (double)c->n / 1000.0);
		break;
	case CELL_COMPRESSOR:
		json_string(compressor_name(c->n));
		break;
	case CELL_BACKEND:
		json_string(ctl_backend_name(c->n));
		break;
	case CELL_RATIO:
	case CELL_RATE:
		printf("%.3f", c->x);
		break;
	case CELL_STRING:
		json_string(c->s);
		break;
	}
}

void cols_json(const struct colsel *sel, const void *obj)
{
	struct cell c;
	size_t i;

	putchar('{');
	for (i = 0; i < sel->n; i++) {
		cell_of(sel->cols[i], obj, &c);
		printf("%s\"%s\":", i ? "," : "", sel->cols[i]->json);
		cell_json(sel->cols[i]->kind, &c);
	}
	putchar('}');
}
