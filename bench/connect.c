/*
 * connect.c - connecting a benchmark to a daemon that may still be
 * starting, and reading its counters (see connect.h).
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "connect.h"

uzswap_t *bench_connect(const char *path)
{
	uzswap_t *c;
	int i;

	for (i = 0; i < 40; i++) {
		c = uzswap_connect(path);
		if (c || (errno != ENOENT && errno != ECONNREFUSED))
			return c;
		usleep(50000);
	}
	return NULL;
}

int bench_daemon_status(const char *path, struct uzswap_status *st)
{
	uzswap_t *c = uzswap_admin_connect(path);
	int ret;

	if (!c)
		return -errno;
	ret = uzswap_status(c, st);
	uzswap_disconnect(c);
	return ret;
}
