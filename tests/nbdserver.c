/*
 * nbdserver.c - a real nbdkit for the tests; see nbdserver.h.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/nbdserver.h"

#define NBDKIT		"nbdkit"
#define START_WAIT_MS	10000

/* Whether @prog is an executable in $PATH. */
static bool in_path(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

const char *nbdserver_missing(void)
{
	return in_path(NBDKIT) ? NULL : "nbdkit is not installed";
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };

	nanosleep(&ts, NULL);
}

int nbdserver_restart(struct nbdserver *s)
{
	const char *argv[NBDSERVER_MAX_ARGS + 8];
	int i, n = 0, status;
	long waited;

	argv[n++] = NBDKIT;
	argv[n++] = "-f";		/* foreground: the pid is nbdkit's */
	argv[n++] = "--exit-with-parent";
	argv[n++] = "-U";
	argv[n++] = s->sock;
	argv[n++] = "-P";
	argv[n++] = s->pidfile;
	for (i = 0; s->argv[i]; i++)
		argv[n++] = s->argv[i];
	argv[n] = NULL;
	unlink(s->sock);
	unlink(s->pidfile);
	s->pid = fork();
	if (s->pid < 0) {
		perror("fork");
		s->pid = 0;
		return -1;
	}
	if (s->pid == 0) {
		execvp(NBDKIT, (char *const *)argv);
		perror("exec nbdkit");
		_exit(127);
	}
	for (waited = 0; waited < START_WAIT_MS; waited += 10) {
		/* written once nbdkit listens */
		if (access(s->pidfile, F_OK) == 0)
			return 0;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr, "nbdkit %s exited (status %#x)\n",
				s->argv[0], status);
			s->pid = 0;
			return -1;
		}
		sleep_ms(10);
	}
	fprintf(stderr, "nbdkit did not accept on %s\n", s->sock);
	nbdserver_stop(s, SIGKILL);
	return -1;
}

int nbdserver_start(struct nbdserver *s, const char *dir, const char *name,
		    const char *const *args)
{
	size_t at = 0, n;
	int i;

	memset(s, 0, sizeof(*s));
	for (i = 0; args[i] && i < NBDSERVER_MAX_ARGS - 1; i++) {
		n = strlen(args[i]) + 1;
		if (at + n > sizeof(s->args)) {
			fprintf(stderr, "nbdserver: arguments too long\n");
			return -1;
		}
		s->argv[i] = memcpy(s->args + at, args[i], n);
		at += n;
	}
	snprintf(s->sock, sizeof(s->sock), "%s/%s", dir, name);
	snprintf(s->pidfile, sizeof(s->pidfile), "%s/%s.pid", dir, name);
	snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->sock);
	return nbdserver_restart(s);
}

void nbdserver_stop(struct nbdserver *s, int sig)
{
	if (s->pid > 0) {
		kill(s->pid, sig);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
		s->pid = 0;
	}
	unlink(s->sock);
	unlink(s->pidfile);
}
