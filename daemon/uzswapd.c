/*
 * uzswapd.c - the daemon's startup, main loop and shutdown.
 *
 * Startup: parse the command line; take the control socket from systemd
 * (sd_listen_fds) or bind it; start the workers and the fault threads
 * (a later failure stops them again); listen; install the
 * signal handlers; lock the daemon's memory and lower its OOM score (a swap
 * daemon must never be swapped or killed first); tell systemd READY=1.
 * Then the libuv loop runs until SIGTERM or SIGINT.
 *
 * Shutdown (uzswapd_shutdown), in this order: STOPPING=1; stop accepting;
 * close every connection, which has the workers unregister its regions
 * (clients keep their memory: every page is put back in its memfd) and
 * then hands its uffd back to its fault thread; once the workers are idle
 * and the last uffd is released, stop and join the workers and the fault
 * threads; close the signal handles. The loop then has no handle left and
 * returns, and uv_loop_close() must succeed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "fault.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "uzswapd.h"

#define OOM_SCORE_ADJ "-900"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: uzswapd [OPTIONS]\n"
		"User-space compressed swap daemon. Options override the\n"
		"configuration file (uzswapd.conf(5)).\n\n"
		"  -f, --config FILE       configuration file (default\n"
		"                          " CONF_DEFAULT_FILE "),\n"
		"                          and FILE.d/*.conf\n"
		"      --check-config      check the configuration, print it, exit\n"
		"  -s, --socket PATH       control socket, unless systemd passes\n"
		"                          one (default " UZSWAPD_DEFAULT_SOCKET ")\n"
		"  -g, --admin-group GROUP  may use admin commands (default: only\n"
		"                          root and the daemon's user)\n"
		"  -t, --fault-threads N   fault threads (default 2)\n"
		"  -e, --evict-threads N   evictor threads (default 2)\n"
		"      --fault-spin US     poll for faults this long after each\n"
		"                          one before sleeping (default 50)\n"
		"  -l, --default-limit SIZE  resident budget of a client that set\n"
		"                          none (K, M, G suffixes; default: none)\n"
		"  -L, --resident-limit SIZE|N%%  budget of all clients together\n"
		"                          (bytes or %% of RAM; default: none)\n"
		"  -c, --compressor lz4|zstd  for new pages (default lz4)\n"
		"      --zstd-level N      1 to 19 (default 3)\n"
		"  -p, --pool-limit SIZE|N%%  compressed pool limit (default 20%%)\n"
		"  -b, --backing-file PATH  where the pool writes back when full\n"
		"                          (default " UZSWAPD_DEFAULT_BACKING ";\n"
		"                          'none': no writeback)\n"
		"      --backing-limit SIZE  cap of the backing file (default 1G)\n"
		"      --no-mlock          do not lock the daemon's memory\n"
		"  -m, --metrics HOST:PORT|off  Prometheus endpoint (default\n"
		"                          " METRICS_DEFAULT_LISTEN ")\n"
		"      --metrics-clients N  per-client series, at most (default 64)\n"
		"  -D, --debug TOKEN       debug lines of a subsystem (ctl, fault,\n"
		"                          client, main, evict, store, metrics,\n"
		"                          config) or all; repeatable\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n");
}

/* The options that set a configuration key, and the key. */
static const struct opt_key {
	int opt;
	const char *section;
	const char *key;
	const char *name;
} opt_keys[] = {
	{ 's', "daemon", "socket", "--socket" },
	{ 'g', "daemon", "admin-group", "--admin-group" },
	{ 't', "daemon", "fault-threads", "--fault-threads" },
	{ 'e', "daemon", "evict-threads", "--evict-threads" },
	{ 'S', "daemon", "fault-spin", "--fault-spin" },
	{ 'M', "daemon", "lock-memory", "--no-mlock" },
	{ 'D', "daemon", "debug", "--debug" },
	{ 'm', "daemon", "metrics", "--metrics" },
	{ 'N', "daemon", "metrics-clients", "--metrics-clients" },
	{ 'l', "budget", "default-limit", "--default-limit" },
	{ 'L', "budget", "resident-limit", "--resident-limit" },
	{ 'c', "store", "compressor", "--compressor" },
	{ 'Z', "store", "zstd-level", "--zstd-level" },
	{ 'p', "store", "pool-limit", "--pool-limit" },
	{ 'b', "store", "backing-file", "--backing-file" },
	{ 'B', "store", "backing-limit", "--backing-limit" },
};

/*
 * Record option @opt (value @arg) as a command-line override of its key,
 * after checking the value on its own. -D accumulates its tokens.
 */
static int add_override(struct conf_source *src, int opt, const char *arg)
{
	static char debug[256];
	char err[CONF_ERR_MAX];
	struct conf_override *ov;
	unsigned int i;

	for (i = 0; opt_keys[i].opt != opt; i++)
		;
	if (opt == 'M')
		arg = "no";
	if (opt == 'D') {
		if (strlen(debug) + strlen(arg) + 2 > sizeof(debug)) {
			fprintf(stderr, "uzswapd: too many --debug tokens\n");
			return UZSWAPD_EXIT_USAGE;
		}
		if (debug[0])
			strcat(debug, ",");
		arg = strcat(debug, arg);
	}
	if (src->nr_ov == CONF_MAX_OVERRIDES) {
		fprintf(stderr, "uzswapd: too many options\n");
		return UZSWAPD_EXIT_USAGE;
	}
	ov = &src->ov[src->nr_ov++];
	*ov = (struct conf_override){ opt_keys[i].section, opt_keys[i].key,
				      arg, opt_keys[i].name };
	if (conf_check_override(ov, err)) {
		fprintf(stderr, "uzswapd: %s\n", err);
		return UZSWAPD_EXIT_USAGE;
	}
	return UZSWAPD_EXIT_OK;
}

static int parse_options(int argc, char **argv, struct conf_source *src,
			 bool *check_only)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "socket", required_argument, NULL, 's' },
		{ "admin-group", required_argument, NULL, 'g' },
		{ "fault-threads", required_argument, NULL, 't' },
		{ "evict-threads", required_argument, NULL, 'e' },
		{ "fault-spin", required_argument, NULL, 'S' },
		{ "default-limit", required_argument, NULL, 'l' },
		{ "resident-limit", required_argument, NULL, 'L' },
		{ "compressor", required_argument, NULL, 'c' },
		{ "zstd-level", required_argument, NULL, 'Z' },
		{ "pool-limit", required_argument, NULL, 'p' },
		{ "backing-file", required_argument, NULL, 'b' },
		{ "backing-limit", required_argument, NULL, 'B' },
		{ "no-mlock", no_argument, NULL, 'M' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "metrics-clients", required_argument, NULL, 'N' },
		{ "debug", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "f:s:g:t:e:l:L:c:p:b:m:D:hV",
				  longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			src->path = optarg;
			src->path_given = true;
			break;
		case 'C':
			*check_only = true;
			break;
		case 'h':
			usage(stdout);
			exit(UZSWAPD_EXIT_OK);
		case 'V':
			printf("uzswapd %s\n", PACKAGE_VERSION);
			exit(UZSWAPD_EXIT_OK);
		case '?':
			usage(stderr);
			return UZSWAPD_EXIT_USAGE;
		default:
			ret = add_override(src, opt, optarg);
			if (ret)
				return ret;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uzswapd: unexpected argument '%s'\n",
			argv[optind]);
		return UZSWAPD_EXIT_USAGE;
	}
	return UZSWAPD_EXIT_OK;
}

/* Turn on the debug tokens of @c (kept for the life of the process). */
static void enable_debug(const struct conf *c)
{
	char *tokens, *tok, *save;

	if (!c->debug)
		return;
	tokens = strdup(c->debug);
	if (!tokens)
		return;
	for (tok = strtok_r(tokens, " ,", &save); tok;
	     tok = strtok_r(NULL, " ,", &save))
		log_enable_debug(tok);
}

/*****************
 * The control socket
 *****************/

/* Is a daemon answering on @path? */
static bool socket_in_use(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return used;
}

static void make_parent_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		log_warn("main", "cannot create %s: %s", dir, strerror(errno));
}

/* Bind and listen on @path; returns the fd or a negative exit code. */
static int bind_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("main", "socket path too long: %s", path);
		return -UZSWAPD_EXIT_SOCKET;
	}
	strcpy(sa.sun_path, path);
	if (socket_in_use(&sa)) {
		log_err("main", "another uzswapd is serving %s", path);
		return -UZSWAPD_EXIT_RUNNING;
	}
	make_parent_dir(path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0660) < 0 || listen(fd, 128) < 0) {
		log_err("main", "cannot listen on %s: %s", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -UZSWAPD_EXIT_SOCKET;
	}
	return fd;
}

/* The socket systemd passed, -1 if none, or a negative exit code. */
static int activated_socket(void)
{
	int n = sd_listen_fds(1);

	if (n <= 0)
		return -1;
	if (n > 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1,
				       NULL, 0) <= 0) {
		log_err("main", "systemd passed %d sockets; expected one "
			"listening unix stream socket", n);
		return -UZSWAPD_EXIT_SOCKET;
	}
	return SD_LISTEN_FDS_START;
}

static int open_socket(struct uzswapd *d)
{
	int fd = activated_socket();

	if (fd == -1) {
		d->bound_path = strdup(d->conf.socket);
		if (!d->bound_path)
			return -UZSWAPD_EXIT_SOCKET;
		fd = bind_socket(d->bound_path);
	} else if (fd >= 0) {
		log_info("main", "using the socket passed by systemd");
	}
	return fd;
}

/*****************
 * The backing file
 *****************/

/*
 * Open the backing file. One configured elsewhere than the default must
 * work (exit code otherwise); the default one is best effort: without it
 * the pool simply does not write back. *@b is NULL for no backing file.
 */
static int open_backing(const struct conf *c, struct backing **b)
{
	const char *path = c->backing_file;
	bool is_default = !strcmp(path, UZSWAPD_DEFAULT_BACKING);
	struct backing_stats st;

	*b = NULL;
	if (!strcmp(path, "none"))
		return 0;
	if (is_default && mkdir(UZSWAPD_STATE_DIR, 0700) < 0 &&
	    errno != EEXIST) {
		log_warn("main", "no backing file: cannot create %s: %s",
			 UZSWAPD_STATE_DIR, strerror(errno));
		return 0;
	}
	*b = backing_open(path, c->backing_limit);
	if (!*b && errno == EEXIST) {
		log_err("main", "the backing file %s holds data and is not a "
			"uzswap backing file: it is left alone; name another "
			"file (or remove this one)", path);
		return is_default ? 0 : UZSWAPD_EXIT_BACKING;
	}
	if (!*b) {
		log_err("main", "cannot open the backing file %s: %s", path,
			strerror(errno));
		return is_default ? 0 : UZSWAPD_EXIT_BACKING;
	}
	backing_get_stats(*b, &st);
	if (st.in_memory)
		log_warn("main", "the backing file %s is in memory (tmpfs): "
			 "writing back saves no RAM", path);
	log_info("main", "backing file %s, cap %llu MiB, %s I/O", path,
		 (unsigned long long)(c->backing_limit >> 20),
		 st.direct ? "direct" : "buffered");
	return 0;
}

/*****************
 * Memory locking and OOM score
 *****************/

static void lock_memory(const struct uzswapd *d)
{
#ifdef UZSWAP_SANITIZED
	log_info("main", "sanitizer build: memory not locked");
#else
	if (!d->conf.lock_memory)
		return;
	if (mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
		return;
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0) {
		log_warn("main", "memory locked on fault only (RLIMIT_MEMLOCK?)");
		return;
	}
	log_warn("main", "cannot lock memory (%s): uzswapd may itself be "
		 "swapped; give it CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK",
		 strerror(errno));
#endif
}

static void lower_oom_score(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, OOM_SCORE_ADJ, strlen(OOM_SCORE_ADJ)) < 0)
		log_warn("main", "cannot lower the OOM score (%s); give "
			 "uzswapd CAP_SYS_RESOURCE", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*****************
 * Signals and shutdown
 *****************/

/* Serve /metrics as @next says; the old server stays if the new one
 * cannot start. Return: 0 or -errno (@err set). */
static int reload_metrics(struct uzswapd *d, const struct conf *next,
			  char err[CONF_ERR_MAX])
{
	const char *cur = d->conf.metrics ? d->conf.metrics : "off";
	const char *want = next->metrics ? next->metrics : "off";
	struct metrics *m = NULL;

	if (!strcmp(cur, want)) {
		if (d->metrics)
			metrics_set_max_clients(d->metrics,
						next->metrics_clients);
		return 0;
	}
	if (next->metrics) {
		m = metrics_start(d, next->metrics, next->metrics_clients);
		if (!m) {
			snprintf(err, CONF_ERR_MAX, "metrics: cannot serve %s: "
				 "%s", next->metrics, strerror(errno));
			return -errno;
		}
	}
	metrics_stop(d->metrics);
	d->metrics = m;
	return 0;
}

/* Put @c's live keys in force. */
static void apply_live_keys(struct uzswapd *d, const struct conf *c)
{
	evict_set_limits(c->default_limit, c->resident_limit);
	fault_set_spin(c->fault_spin);
	store_set_pool_limit(&d->store, c->pool_limit);
	store_set_compressor(&d->store, c->compressor, (int)c->zstd_level);
}

int uzswapd_reload(struct uzswapd *d, char err[CONF_ERR_MAX])
{
	struct conf next;
	int ret;

	notify_reloading();
	ret = conf_load(&next, &d->src, err);
	if (ret == 0) {
		conf_keep_restart_keys(&next, &d->conf);
		ret = reload_metrics(d, &next, err);
		if (ret)
			conf_free(&next);
	}
	if (ret) {
		log_err("config", "reload failed, the running configuration "
			"stays: %s", err);
		notify_reloaded(d, err);
		return ret;
	}
	apply_live_keys(d, &next);
	conf_free(&d->conf);
	d->conf = next;
	log_info("config", "configuration reloaded: %s, default budget %llu "
		 "MiB, all clients %llu MiB, pool limit %llu MiB",
		 compress_algo_name(d->conf.compressor),
		 (unsigned long long)(d->conf.default_limit >> 20),
		 (unsigned long long)(d->conf.resident_limit >> 20),
		 (unsigned long long)(d->conf.pool_limit >> 20));
	notify_reloaded(d, NULL);
	return 0;
}

static void finish_shutdown(struct uzswapd *d)
{
	unsigned int i;

	work_stop(&d->work);
	fault_stop();
	evict_stop();
	for (i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&d->signals[i], NULL);
	/* a second SIGTERM must not cut the orderly exit short */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
}

void uzswapd_shutdown(struct uzswapd *d)
{
	struct list_node *pos, *tmp;

	if (d->stopping)
		return;
	d->stopping = true;
	notify_stopping();
	log_info("main", "shutting down");
	ctl_stop_listening(d);
	metrics_stop(d->metrics);
	d->metrics = NULL;
	uv_close((uv_handle_t *)&d->tick, NULL);
	list_for_each_safe(pos, tmp, &d->conns)
		ctl_conn_close(container_of(pos, struct ctl_conn, all));
	uzswapd_ctx_released(d);
}

void uzswapd_ctx_released(struct uzswapd *d)
{
	if (d->stopping && d->nr_ctxs == 0 && work_idle(&d->work))
		finish_shutdown(d);
}

/* The workers have nothing left: finishes a shutdown waiting for them. */
static void work_went_idle(void *arg)
{
	uzswapd_ctx_released(arg);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct uzswapd *d = h->data;

	char err[CONF_ERR_MAX];

	if (signum == SIGHUP)
		uzswapd_reload(d, err);
	else
		uzswapd_shutdown(d);
}

static void on_tick(uv_timer_t *t)
{
	struct uzswapd *d = t->data;

	stats_tick(&d->rate);
	notify_tick(d);
}

static int start_tick(struct uzswapd *d)
{
	int ret = uv_timer_init(&d->loop, &d->tick);

	if (ret)
		return ret;
	d->tick.data = d;
	return uv_timer_start(&d->tick, on_tick, 1000, 1000);
}

static int watch_signals(struct uzswapd *d)
{
	static const int signums[3] = { SIGTERM, SIGINT, SIGHUP };
	unsigned int i;
	int ret;

	for (i = 0; i < 3; i++) {
		ret = uv_signal_init(&d->loop, &d->signals[i]);
		if (ret)
			return ret;
		d->signals[i].data = d;
		ret = uv_signal_start(&d->signals[i], on_signal, signums[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/*****************
 * Entry point
 *****************/

static uint64_t phys_bytes(void)
{
	return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Load the configuration; --check-config prints it. Returns an exit code
 * (UZSWAPD_EXIT_OK to go on), with *@done set when there is nothing more
 * to do. */
static int load_config(struct uzswapd *d, bool check_only, bool *done)
{
	char err[CONF_ERR_MAX];

	*done = false;
	if (conf_load(&d->conf, &d->src, err)) {
		fprintf(stderr, "uzswapd: %s\n", err);
		return UZSWAPD_EXIT_CONFIG;
	}
	if (check_only) {
		conf_print(&d->conf, stdout);
		conf_free(&d->conf);
		*done = true;
	}
	return UZSWAPD_EXIT_OK;
}

static void free_daemon(struct uzswapd *d)
{
	registry_destroy(&d->registry);
	store_destroy(&d->store);
	compressor_destroy(d->comp);
	free(d->run_buf);
	if (d->bound_path)
		unlink(d->bound_path);
	free(d->bound_path);
	conf_free(&d->conf);
}

int uzswapd_main(int argc, char **argv)
{
	static struct uzswapd d;
	struct evict_config ec;
	struct backing *backing;
	bool check_only = false, done;
	int ret, fd;

	ret = parse_options(argc, argv, &d.src, &check_only);
	if (ret == 0)
		ret = load_config(&d, check_only, &done);
	if (ret || done)
		return ret;
	enable_debug(&d.conf);
	signal(SIGPIPE, SIG_IGN);
	d.listen_fd = -1;
	d.spare_fd = -1;
	d.max_registered = 4 * phys_bytes();
	list_init(&d.conns);
	registry_init(&d.registry);
	if (uv_loop_init(&d.loop)) {
		log_err("main", "cannot set up the event loop");
		return UZSWAPD_EXIT_LOOP;
	}

	fd = open_socket(&d);
	if (fd < 0)
		return -fd;
	ret = open_backing(&d.conf, &backing);
	if (ret)
		return ret;
	ret = store_init(&d.store, d.conf.compressor, (int)d.conf.zstd_level,
			 d.conf.pool_limit, backing);
	d.comp = compressor_create(d.conf.compressor, (int)d.conf.zstd_level);
	d.run_buf = aligned_alloc(PAGE_SIZE, EVICT_RUN_PAGES * PAGE_SIZE);
	if (ret || !d.comp || !d.run_buf) {
		log_err("main", "cannot set up the compressed store");
		return UZSWAPD_EXIT_THREADS;
	}
	if (work_start(&d.work, &d.loop, &d.store, work_went_idle, &d))
		return UZSWAPD_EXIT_THREADS;
	ec = (struct evict_config){ .default_limit = d.conf.default_limit,
				    .resident_limit = d.conf.resident_limit,
				    .nthreads = d.conf.evict_threads };
	fault_set_spin(d.conf.fault_spin);
	ret = fault_start(&d.loop, d.conf.fault_threads, client_ctx_released);
	if (ret == 0) {
		ret = evict_start(&d.registry, &d.store, &ec);
		if (ret)
			fault_stop();
	}
	if (ret) {
		log_err("main", "cannot start fault and evictor threads: %s",
			strerror(-ret));
		work_stop(&d.work);
		return UZSWAPD_EXIT_THREADS;
	}
	stats_rate_init(&d.rate);
	ret = ctl_listen(&d, fd);
	if (ret == 0)
		ret = watch_signals(&d);
	if (ret == 0)
		ret = start_tick(&d);
	if (ret) {
		log_err("main", "event loop setup failed: %s", uv_strerror(ret));
		work_stop(&d.work);
		return UZSWAPD_EXIT_LOOP;
	}
	if (d.conf.metrics) {
		d.metrics = metrics_start(&d, d.conf.metrics,
					  d.conf.metrics_clients);
		if (!d.metrics) {
			work_stop(&d.work);
			return UZSWAPD_EXIT_METRICS;
		}
	}
	lock_memory(&d);
	lower_oom_score();

	log_info("main", "uzswapd %s ready, %u fault threads, %u evictors, "
		 "%s, default budget %llu MiB, all clients %llu MiB",
		 PACKAGE_VERSION, fault_nr_threads(), d.conf.evict_threads,
		 compress_algo_name(d.conf.compressor),
		 (unsigned long long)(d.conf.default_limit >> 20),
		 (unsigned long long)(d.conf.resident_limit >> 20));
	notify_ready(&d);
	uv_run(&d.loop, UV_RUN_DEFAULT);

	ret = uv_loop_close(&d.loop);
	if (ret)
		log_err("main", "handles left open at exit: %s",
			uv_strerror(ret));
	free_daemon(&d);
	log_info("main", "stopped");
	return ret ? UZSWAPD_EXIT_LOOP : UZSWAPD_EXIT_OK;
}
