/*
 * uffdctx.c - a client's userfaultfd and its lifetime; see uffdctx.h.
 *
 * References: the connection that sent it holds one until its fault
 * thread released it (fault_detach(), then the released callback), and
 * every region registered on it one. The last reference closes the uffd:
 * the client keeps its own copy, so its evicted pages then block rather
 * than read zeros (DESIGN.md, "The memory model").
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "uffdctx.h"

struct uffd_ctx *uffd_ctx_alloc(int fd, int client_fd, struct mm_slot *slot,
				void (*slot_put)(struct mm_slot *slot),
				bool user_mode_only)
{
	struct uffd_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx) {
		close(fd);
		slot_put(slot);
		return NULL;
	}
	ctx->fd = fd;
	atomic_init(&ctx->refs, 1);
	ctx->slot = slot;
	ctx->slot_put = slot_put;
	ctx->user_mode_only = user_mode_only;
	ctx->client_fd = client_fd;
	list_init(&ctx->node);
	list_init(&ctx->slot_node);
	return ctx;
}

void uffd_ctx_get(struct uffd_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
}

void uffd_ctx_put(struct uffd_ctx *ctx)
{
	if (atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	close(ctx->fd);
	ctx->slot_put(ctx->slot);
	free(ctx);
}
