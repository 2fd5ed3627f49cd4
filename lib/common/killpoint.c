/*
 * killpoint.c - crash injection for tests; see killpoint.h.
 *
 * The armed name and count are written before the daemon starts any
 * thread and only read afterwards; the countdown is atomic, so that of
 * several threads passing the point at once exactly one kills. The kill
 * uses nothing but snprintf(3), write(2) and raise(3): a point may sit where locks are
 * held, and must not wait for any of them.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fullio.h"
#include "killpoint.h"

#define KILLPOINT_NAME_MAX	64

atomic_bool killpoint_armed;

static char armed_name[KILLPOINT_NAME_MAX];	/* written before threads */
static unsigned long armed_nth;			/* the same */
static atomic_ulong killpoint_hits;

int killpoint_arm(const char *spec)
{
	const char *colon = spec ? strchr(spec, ':') : NULL;
	size_t len = colon ? (size_t)(colon - spec) : spec ? strlen(spec) : 0;
	unsigned long nth = 1;
	char *end;

	atomic_store(&killpoint_armed, false);
	if (!spec || !*spec)
		return 0;
	if (len == 0 || len >= sizeof(armed_name))
		return -EINVAL;
	if (colon) {
		errno = 0;
		nth = strtoul(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end || nth == 0 ||
		    colon[1] == '-')
			return -EINVAL;
	}
	memcpy(armed_name, spec, len);
	armed_name[len] = '\0';
	armed_nth = nth;
	atomic_store(&killpoint_hits, 0);
	atomic_store(&killpoint_armed, true);
	return 0;
}

int killpoint_arm_from_env(const char *var)
{
	const char *spec = getenv(var);
	int ret = killpoint_arm(spec);

	if (ret)
		fprintf(stderr, "%s=%s: not NAME or NAME:N (N >= 1)\n", var,
			spec);
	return ret;
}

void killpoint_hit(const char *name)
{
	char msg[KILLPOINT_NAME_MAX + 64];

	if (strcmp(name, armed_name) ||
	    atomic_fetch_add(&killpoint_hits, 1) + 1 != armed_nth)
		return;
	snprintf(msg, sizeof(msg), "killpoint %s: hit %lu, SIGKILL\n", name,
		 armed_nth);
	/* a failed write changes nothing: the kill proves the point too */
	(void)fullio_write(STDERR_FILENO, msg, strlen(msg));
	raise(SIGKILL);
}
