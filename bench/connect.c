/*
 * connect.c - connecting a benchmark to a daemon that may still be
 * starting, advising it, and reading its counters (see connect.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connect.h"

#define ADVISE_CHUNK	(64ul << 20)	/* bytes per advice request */

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

int bench_advise(uzswap_t *c, char *region, size_t len, int advice)
{
	size_t off, n;
	int ret;

	for (off = 0; off < len; off += n) {
		n = len - off < ADVISE_CHUNK ? len - off : ADVISE_CHUNK;
		if ((ret = uzswap_advise(c, region + off, n, advice)))
			return ret;
	}
	return 0;
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

int bench_daemon_cpu_ns(pid_t pid, double *ns)
{
	unsigned long long run;
	char dir[64], file[384];
	struct dirent *e;
	DIR *d;
	FILE *f;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	d = opendir(dir);
	if (!d)
		return -errno;
	*ns = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s/schedstat", dir,
			 e->d_name);
		f = fopen(file, "re");
		if (!f)
			continue;	/* the thread ended meanwhile */
		if (fscanf(f, "%llu", &run) == 1)
			*ns += (double)run;
		fclose(f);
	}
	closedir(d);
	return 0;
}

const char *bench_step = "";

const char *bench_step_error(int err)
{
	if (!strncmp(bench_step, "data", 4))
		return "pages differ from what was written (a bug)";
	if (!strncmp(bench_step, "STATUS", 6))
		return strerror(-err);
	return uzswap_strerror(err);
}
