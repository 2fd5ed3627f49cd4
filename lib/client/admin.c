/*
 * admin.c - libuzswap's administration calls (uzswap.h, "Administration"):
 * the daemon's totals and clients, budgets, reclaim, compaction, drain,
 * reload and version. Each call is one request through uzswap__call(); the daemon
 * decides who may make it (SO_PEERCRED), not this library. The client list
 * comes in pages of PROTO_CLIENTS_PER_PAGE rows, asked for by the last pid
 * seen, so a list longer than one message needs no state in the daemon.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/proto/proto.h"
#include "uzswap-private.h"
#include "uzswap.h"

/* A request without descriptors, with the connection's timeout, whose
 * reply body the caller decodes. */
static int ask(uzswap_t *c, uint16_t type, const uint8_t *payload,
	       size_t len, uint8_t *body, size_t cap, size_t *blen)
{
	return uzswap__call(c, type, payload, len, NULL, 0, body, cap, blen, 0,
			    NULL, 0);
}

/* The public structs are ABI: struct uzswap_client's counters only ever
 * take its reserved space; struct uzswap_status grows at its end, and
 * uzswap_status_size() fills what the caller's size holds. */
/* The first release's struct uzswap_status, all uzswap_status() fills. */
#define STATUS_SIZE_V1 328
_Static_assert(offsetof(struct uzswap_status, dedup_pages_shared) ==
	       STATUS_SIZE_V1, "struct uzswap_status's first release moved");
_Static_assert(sizeof(struct uzswap_client) == 168,
	       "struct uzswap_client changed size");
_Static_assert(UZSWAP_BACKING_NONE == PROTO_BACKING_NONE &&
	       UZSWAP_BACKING_FILE == PROTO_BACKING_FILE &&
	       UZSWAP_BACKING_NBD == PROTO_BACKING_NBD,
	       "backing_backend passes as STATUS carries it");

/* Each counter of the lists into its public field; a status counter
 * only if it is within the caller's @size. */
#define ADMIN_STATUS_COUNTER(x, name, since, pub, ...)			\
	if (offsetof(struct uzswap_status, pub) + sizeof(all.pub) <= size) \
		all.pub = (__typeof__(all.pub))r.name;
#define ADMIN_CLIENT_COUNTER(x, type, name, since, pub, ...)		\
	cl->pub = row->name;

int uzswap_status_size(uzswap_t *c, struct uzswap_status *st, size_t size)
{
	struct uzswap_status all = { 0 };
	struct proto_status_reply r;
	uint8_t body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	if (!st || size < STATUS_SIZE_V1)
		return -EINVAL;
	if (size > sizeof(all))
		size = sizeof(all);
	ret = ask(c, PROTO_STATUS, NULL, 0, body, sizeof(body), &len);
	if (ret == 0)
		ret = proto_decode_status_reply(body, len, &r);
	if (ret)
		return ret;
	COUNTERS_STATUS(ADMIN_STATUS_COUNTER, _)
	memcpy(st, &all, size);
	return 0;
}

/* The first release's symbol, for programs built before the macro of
 * that name (uzswap.h) existed. */
int (uzswap_status)(uzswap_t *c, struct uzswap_status *st)
{
	return uzswap_status_size(c, st, STATUS_SIZE_V1);
}

static void client_from_row(struct uzswap_client *cl,
			    const struct proto_client_row *row)
{
	memset(cl, 0, sizeof(*cl));
	cl->pid = row->pid;
	cl->uid = row->uid;
	memcpy(cl->comm, row->comm, sizeof(cl->comm));
	COUNTERS_CLIENT(ADMIN_CLIENT_COUNTER, _)
}

int uzswap_client(uzswap_t *c, pid_t pid, struct uzswap_client *cl)
{
	struct proto_client_req q = { .pid = pid };
	struct proto_client_row row;
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	if (!cl || pid <= 0)
		return -EINVAL;
	len = proto_encode_client_req(buf, &q, c->version);
	ret = ask(c, PROTO_CLIENT, buf, len, body, sizeof(body), &len);
	if (ret == 0)
		ret = proto_decode_client_row(body, len, &row);
	if (ret == 0)
		client_from_row(cl, &row);
	return ret;
}

/* Append the rows of @r to *@list (*@n entries, room for *@cap). */
static int append_rows(struct uzswap_client **list, size_t *n, size_t *cap,
		       const struct proto_clients_reply *r)
{
	uint32_t i;

	if (*n + r->count > *cap) {
		size_t want = *cap ? *cap * 2 : PROTO_CLIENTS_PER_PAGE;
		struct uzswap_client *grown;

		while (want < *n + r->count)
			want *= 2;
		grown = realloc(*list, want * sizeof(**list));
		if (!grown)
			return -ENOMEM;
		*list = grown;
		*cap = want;
	}
	for (i = 0; i < r->count; i++)
		client_from_row(&(*list)[(*n)++], &r->rows[i]);
	return 0;
}

int uzswap_clients(uzswap_t *c, struct uzswap_client **list, size_t *n)
{
	struct proto_clients_reply *r;
	struct proto_client_req q = { .pid = 0 };
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	size_t len, cap = 0;
	int ret;

	if (!list || !n)
		return -EINVAL;
	*list = NULL;
	*n = 0;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	do {
		len = proto_encode_client_req(buf, &q, c->version);
		ret = ask(c, PROTO_CLIENTS, buf, len, body, sizeof(body), &len);
		if (ret == 0)
			ret = proto_decode_clients_reply(body, len, r,
							 c->version);
		if (ret == 0 && r->more && r->count == 0)
			ret = -EBADMSG;	/* no progress */
		if (ret == 0)
			ret = append_rows(list, n, &cap, r);
		if (ret == 0 && r->count)
			q.pid = r->rows[r->count - 1].pid;
	} while (ret == 0 && r->more);
	free(r);
	if (ret) {
		free(*list);
		*list = NULL;
		*n = 0;
	}
	return ret;
}

int uzswap_admin_set_limit(uzswap_t *c, pid_t pid, uint64_t bytes)
{
	struct proto_admin_limit l = { .bytes = bytes };
	uint8_t buf[PROTO_MAX_PAYLOAD];
	size_t len;

	if (pid == UZSWAP_LIMIT_DEFAULT) {
		l.target = PROTO_LIMIT_DEFAULT;
	} else if (pid == UZSWAP_LIMIT_GLOBAL) {
		l.target = PROTO_LIMIT_GLOBAL;
	} else if (pid > 0) {
		l.target = PROTO_LIMIT_PID;
		l.pid = pid;
	} else {
		return -EINVAL;
	}
	len = proto_encode_admin_limit(buf, &l, c->version);
	return ask(c, PROTO_ADMIN_LIMIT, buf, len, NULL, 0, &len);
}

int uzswap_reclaim(uzswap_t *c, pid_t pid, uint64_t bytes, uint64_t *evicted)
{
	struct proto_reclaim q = { .pid = pid, .bytes = bytes };
	struct proto_bytes_reply r;
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	if (pid < 0)
		return -EINVAL;
	len = proto_encode_reclaim(buf, &q, c->version);
	ret = uzswap__call(c, PROTO_RECLAIM, buf, len, NULL, 0, body,
			   sizeof(body), &len, UZSWAP_RECLAIM_TIMEOUT_MS, NULL,
			   0);
	if (ret == 0)
		ret = proto_decode_bytes_reply(body, len, &r);
	if (ret == 0 && evicted)
		*evicted = r.bytes;
	return ret;
}

int uzswap_compact(uzswap_t *c, uint64_t *pages, uint64_t *freed)
{
	struct proto_compact_reply r;
	uint8_t body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	ret = uzswap__call(c, PROTO_COMPACT, NULL, 0, NULL, 0, body,
			   sizeof(body), &len, UZSWAP_RECLAIM_TIMEOUT_MS, NULL,
			   0);
	if (ret == 0)
		ret = proto_decode_compact_reply(body, len, &r);
	if (ret)
		return ret;
	if (pages)
		*pages = r.pages;
	if (freed)
		*freed = r.pool_before > r.pool_after
				 ? r.pool_before - r.pool_after : 0;
	return 0;
}

_Static_assert(UZSWAP_DRAIN_FORCE == PROTO_DRAIN_FORCE,
	       "uzswap_admin_drain() passes its flags as DRAIN's");

int uzswap_admin_drain(uzswap_t *c, unsigned int flags,
		       struct uzswap_drain *result)
{
	struct proto_drain q = { .flags = flags };
	struct proto_drain_reply r;
	struct uzswap_drain res = { .bytes = 0 };
	uint8_t buf[PROTO_MAX_PAYLOAD], body[PROTO_MAX_PAYLOAD];
	size_t len;
	int ret;

	if (flags & ~UZSWAP_DRAIN_FORCE)
		return -EINVAL;
	ret = uzswap__usable(c);
	if (ret == 0 && c->version < PROTO_DRAIN_VERSION)
		ret = -EOPNOTSUPP;	/* a daemon older than DRAIN */
	if (ret == 0) {
		len = proto_encode_drain(buf, &q, c->version);
		ret = uzswap__call(c, PROTO_DRAIN, buf, len, NULL, 0, body,
				   sizeof(body), &len, UZSWAP_DRAIN_TIMEOUT_MS,
				   res.why, sizeof(res.why));
	}
	if (ret == 0)
		ret = proto_decode_drain_reply(body, len, &r);
	if (ret == 0)
		res = (struct uzswap_drain){
			.bytes = r.bytes,
			.pages = r.pages,
			.regions = r.regions,
			.clients = r.clients,
			.regions_kept = r.regions_kept,
			.pages_kept = r.pages_kept,
			.regions_left = r.regions_left,
		};
	if (result)
		*result = res;
	return ret;
}

int uzswap_reload(uzswap_t *c, char *why, size_t len)
{
	size_t blen;

	if (len)
		why[0] = '\0';
	return uzswap__call(c, PROTO_RELOAD, NULL, 0, NULL, 0, NULL, 0, &blen,
			    0, why, len);
}

int uzswap_daemon_version(uzswap_t *c, char *release, size_t len,
			  unsigned int *protocol)
{
	struct proto_version_reply r;
	uint8_t body[PROTO_MAX_PAYLOAD];
	size_t blen;
	int ret;

	if (!release || !len)
		return -EINVAL;
	ret = ask(c, PROTO_DAEMON_VERSION, NULL, 0, body, sizeof(body), &blen);
	if (ret == 0)
		ret = proto_decode_version_reply(body, blen, &r);
	if (ret)
		return ret;
	snprintf(release, len, "%s", r.release);
	if (protocol)
		*protocol = r.proto_max;
	return 0;
}
