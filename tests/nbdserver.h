/*
 * nbdserver.h - a real nbdkit serving an export on a unix socket, for the
 * tests and the benchmark of the NBD write-back tier: started in a
 * directory of the caller's, stopped (killed) and started again by pid,
 * its socket removed.
 *
 * Private to uzswap's tests. One struct nbdserver per server; not thread
 * safe (the test's main thread only).
 */
#ifndef UZSWAP_TESTS_NBDSERVER_H
#define UZSWAP_TESTS_NBDSERVER_H

#include <stdbool.h>
#include <sys/types.h>

#define NBDSERVER_MAX_ARGS	16

/*
 * struct nbdserver - one nbdkit
 * @pid:  the running nbdkit, 0 when stopped
 * @sock: its unix socket (in the caller's directory)
 * @uri:  the export's URI: nbd+unix:///?socket=@sock
 * @pidfile: where nbdkit writes its pid once it listens
 * @argv: the plugin, its filters and parameters, as started (copies, in
 *        @args)
 */
struct nbdserver {
	pid_t pid;
	char sock[256];
	char pidfile[256];
	char uri[300];
	char *argv[NBDSERVER_MAX_ARGS];
	char args[2048];
};

/* Why nbdkit cannot be run here (static text), or NULL if it can. */
const char *nbdserver_missing(void);

/*
 * nbdserver_start() - start nbdkit on socket @dir/@name with @args (a
 * NULL-terminated list: --filter=F options, the plugin, its key=value
 * parameters; kept, for nbdserver_restart()) and wait until it accepts.
 * Return: 0, or -1 with a line on stderr.
 */
int nbdserver_start(struct nbdserver *s, const char *dir, const char *name,
		    const char *const *args);

/* Kill it with @sig (SIGKILL: as a crash) and reap it; remove the
 * socket. Nothing if it is not running. */
void nbdserver_stop(struct nbdserver *s, int sig);

/* Start it again with the same arguments on the same socket. */
int nbdserver_restart(struct nbdserver *s);

#endif /* UZSWAP_TESTS_NBDSERVER_H */
