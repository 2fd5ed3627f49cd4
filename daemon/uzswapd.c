/*
 * uzswapd.c - the daemon's startup, main loop and shutdown.
 *
 * Startup: parse the command line; take the control socket from systemd
 * (sd_listen_fds) or bind it; start the fault threads; listen; install the
 * signal handlers; lock the daemon's memory and lower its OOM score (a swap
 * daemon must never be swapped or killed first); tell systemd READY=1.
 * Then the libuv loop runs until SIGTERM or SIGINT.
 *
 * Shutdown (uzswapd_shutdown), in this order: STOPPING=1; stop accepting;
 * close every connection, which unregisters its regions (clients keep
 * their memory: every page is in its memfd) and hands its uffd back to
 * its fault thread; once the last uffd is released, stop and join the
 * fault threads; close the signal handles. The loop then has no handle
 * left and returns, and uv_loop_close() must succeed.
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
#include "uzswapd.h"

#define DEFAULT_FAULT_THREADS 2
#define DEFAULT_POOL_LIMIT "20%"
#define DEFAULT_BACKING_LIMIT (1ull << 30)
#define OOM_SCORE_ADJ "-900"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: uzswapd [OPTIONS]\n"
		"User-space compressed swap daemon.\n\n"
		"  -s, --socket PATH       control socket (default: from systemd,\n"
		"                          else " UZSWAPD_DEFAULT_SOCKET ")\n"
		"  -t, --fault-threads N   fault threads (default %d)\n"
		"  -e, --evict-threads N   evictor threads (default 1)\n"
		"  -l, --default-limit SIZE  resident budget of a client that set\n"
		"                          none (K, M, G suffixes; default: none)\n"
		"  -L, --resident-limit SIZE|N%%  budget of all clients together\n"
		"                          (bytes or %% of RAM; default: none)\n"
		"  -c, --compressor lz4|zstd  for new pages (default lz4)\n"
		"  -p, --pool-limit SIZE|N%%  compressed pool limit (default 20%%)\n"
		"  -b, --backing-file PATH  where the pool writes back when full\n"
		"                          (default " UZSWAPD_DEFAULT_BACKING ";\n"
		"                          'none': no writeback)\n"
		"      --backing-limit SIZE  cap of the backing file (default 1G)\n"
		"      --zstd-level N      1 to 19 (default 3)\n"
		"      --no-mlock          do not lock the daemon's memory\n"
		"  -D, --debug TOKEN       debug lines of a subsystem (ctl, fault,\n"
		"                          client, main) or all; repeatable\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n",
		DEFAULT_FAULT_THREADS);
}

/* A size: bytes with an optional K, M or G suffix, or (if @pct_ok) N% of
 * RAM. Return: 0 or -EINVAL. */
static int parse_size(const char *s, bool pct_ok, uint64_t *out)
{
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) *
		       (uint64_t)sysconf(_SC_PAGESIZE);
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'K': case 'k':
		v <<= 10;
		end++;
		break;
	case 'M': case 'm':
		v <<= 20;
		end++;
		break;
	case 'G': case 'g':
		v <<= 30;
		end++;
		break;
	case '%':
		if (!pct_ok || v > 100)
			return -EINVAL;
		v = ram / 100 * v;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A number in [@min, @max]; -EINVAL otherwise. */
static int parse_uint(const char *s, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *end || end == s || *out < min || *out > max ? -EINVAL
								     : 0;
}

static int bad_option(const char *opt, const char *arg, const char *want)
{
	fprintf(stderr, "uzswapd: %s takes %s, not '%s'\n", opt, want, arg);
	return UZSWAPD_EXIT_USAGE;
}

static int parse_options(int argc, char **argv, struct uzswapd_options *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "fault-threads", required_argument, NULL, 't' },
		{ "evict-threads", required_argument, NULL, 'e' },
		{ "default-limit", required_argument, NULL, 'l' },
		{ "resident-limit", required_argument, NULL, 'L' },
		{ "compressor", required_argument, NULL, 'c' },
		{ "zstd-level", required_argument, NULL, 'Z' },
		{ "pool-limit", required_argument, NULL, 'p' },
		{ "backing-file", required_argument, NULL, 'b' },
		{ "backing-limit", required_argument, NULL, 'B' },
		{ "no-mlock", no_argument, NULL, 'M' },
		{ "debug", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long n;
	int opt;

	o->fault_threads = DEFAULT_FAULT_THREADS;
	o->evict.nthreads = 1;
	o->algo = COMPRESS_LZ4;
	o->zstd_level = COMPRESS_ZSTD_DEFAULT_LEVEL;
	o->backing_limit = DEFAULT_BACKING_LIMIT;
	parse_size(DEFAULT_POOL_LIMIT, true, &o->pool_limit);
	while ((opt = getopt_long(argc, argv, "s:t:e:l:L:c:p:b:D:hV",
				  longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->socket_path = optarg;
			break;
		case 't':
			if (parse_uint(optarg, 1, 16, &n))
				return bad_option("--fault-threads", optarg,
						  "1 to 16");
			o->fault_threads = (unsigned int)n;
			break;
		case 'e':
			if (parse_uint(optarg, 1, 8, &n))
				return bad_option("--evict-threads", optarg,
						  "1 to 8");
			o->evict.nthreads = (unsigned int)n;
			break;
		case 'l':
			if (parse_size(optarg, false, &o->evict.default_limit))
				return bad_option("--default-limit", optarg,
						  "a size like 512M");
			break;
		case 'L':
			if (parse_size(optarg, true,
				       &o->evict.resident_limit))
				return bad_option("--resident-limit", optarg,
						  "a size like 4G, or 20%");
			break;
		case 'c':
			if (compress_algo_parse(optarg, &o->algo))
				return bad_option("--compressor", optarg,
						  "lz4 or zstd");
			break;
		case 'p':
			if (parse_size(optarg, true, &o->pool_limit))
				return bad_option("--pool-limit", optarg,
						  "a size like 2G, or 20%");
			break;
		case 'b':
			o->backing_path = optarg;
			break;
		case 'B':
			if (parse_size(optarg, false, &o->backing_limit))
				return bad_option("--backing-limit", optarg,
						  "a size like 4G");
			break;
		case 'Z':
			if (parse_uint(optarg, 1, 19, &n))
				return bad_option("--zstd-level", optarg,
						  "1 to 19");
			o->zstd_level = (int)n;
			break;
		case 'M':
			o->no_mlock = true;
			break;
		case 'D':
			log_enable_debug(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(UZSWAPD_EXIT_OK);
		case 'V':
			printf("uzswapd %s\n", PACKAGE_VERSION);
			exit(UZSWAPD_EXIT_OK);
		default:
			usage(stderr);
			return UZSWAPD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uzswapd: unexpected argument '%s'\n",
			argv[optind]);
		return UZSWAPD_EXIT_USAGE;
	}
	return UZSWAPD_EXIT_OK;
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
	int fd = d->opts.socket_path ? -1 : activated_socket();

	if (fd == -1) {
		d->bound_path = d->opts.socket_path ? d->opts.socket_path
						    : UZSWAPD_DEFAULT_SOCKET;
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
 * Open the backing file. One given on the command line must work (exit
 * code otherwise); the default one is best effort: without it the pool
 * simply does not write back. *@b is NULL for no backing file.
 */
static int open_backing(const struct uzswapd_options *o, struct backing **b)
{
	const char *path = o->backing_path ? o->backing_path
					   : UZSWAPD_DEFAULT_BACKING;
	struct backing_stats st;

	*b = NULL;
	if (!strcmp(path, "none"))
		return 0;
	if (!o->backing_path && mkdir(UZSWAPD_STATE_DIR, 0700) < 0 &&
	    errno != EEXIST) {
		log_warn("main", "no backing file: cannot create %s: %s",
			 UZSWAPD_STATE_DIR, strerror(errno));
		return 0;
	}
	*b = backing_open(path, o->backing_limit);
	if (!*b) {
		log_err("main", "cannot open the backing file %s: %s", path,
			strerror(errno));
		return o->backing_path ? UZSWAPD_EXIT_BACKING : 0;
	}
	backing_get_stats(*b, &st);
	if (st.in_memory)
		log_warn("main", "the backing file %s is in memory (tmpfs): "
			 "writing back saves no RAM", path);
	log_info("main", "backing file %s, cap %llu MiB, %s I/O", path,
		 (unsigned long long)(o->backing_limit >> 20),
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
	if (d->opts.no_mlock)
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

static void uzswapd_reload(struct uzswapd *d)
{
	log_info("main", "SIGHUP: nothing to reload (no configuration file)");
}

static void finish_shutdown(struct uzswapd *d)
{
	unsigned int i;

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
	sd_notify(0, "STOPPING=1");
	log_info("main", "shutting down");
	ctl_stop_listening(d);
	list_for_each_safe(pos, tmp, &d->conns)
		ctl_conn_close(container_of(pos, struct ctl_conn, all));
	if (d->nr_ctxs == 0)
		finish_shutdown(d);
}

void uzswapd_ctx_released(struct uzswapd *d)
{
	if (d->stopping && d->nr_ctxs == 0)
		finish_shutdown(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct uzswapd *d = h->data;

	if (signum == SIGHUP)
		uzswapd_reload(d);
	else
		uzswapd_shutdown(d);
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

int uzswapd_main(int argc, char **argv)
{
	static struct uzswapd d;
	struct backing *backing;
	int ret, fd;

	ret = parse_options(argc, argv, &d.opts);
	if (ret)
		return ret;
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
	ret = open_backing(&d.opts, &backing);
	if (ret)
		return ret;
	ret = store_init(&d.store, d.opts.algo, d.opts.zstd_level,
			 d.opts.pool_limit, backing);
	d.lc.comp = compressor_create(d.opts.algo, d.opts.zstd_level);
	d.lc.buf = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	d.run_buf = aligned_alloc(PAGE_SIZE, EVICT_RUN_PAGES * PAGE_SIZE);
	if (ret || !d.lc.comp || !d.lc.buf || !d.run_buf) {
		log_err("main", "cannot set up the compressed store");
		return UZSWAPD_EXIT_THREADS;
	}
	ret = fault_start(&d.loop, d.opts.fault_threads, client_ctx_released);
	if (ret == 0) {
		ret = evict_start(&d.registry, &d.store, &d.opts.evict);
		if (ret)
			fault_stop();
	}
	if (ret) {
		log_err("main", "cannot start fault and evictor threads: %s",
			strerror(-ret));
		return UZSWAPD_EXIT_THREADS;
	}
	ret = ctl_listen(&d, fd);
	if (ret == 0)
		ret = watch_signals(&d);
	if (ret) {
		log_err("main", "event loop setup failed: %s", uv_strerror(ret));
		return UZSWAPD_EXIT_LOOP;
	}
	lock_memory(&d);
	lower_oom_score();

	log_info("main", "uzswapd %s ready, %u fault threads, %u evictors, "
		 "%s, default budget %llu MiB, all clients %llu MiB",
		 PACKAGE_VERSION, fault_nr_threads(), d.opts.evict.nthreads,
		 compress_algo_name(d.opts.algo),
		 (unsigned long long)(d.opts.evict.default_limit >> 20),
		 (unsigned long long)(d.opts.evict.resident_limit >> 20));
	sd_notifyf(0, "READY=1\nSTATUS=serving, %u fault threads\nMAINPID=%d",
		   fault_nr_threads(), (int)getpid());
	uv_run(&d.loop, UV_RUN_DEFAULT);

	ret = uv_loop_close(&d.loop);
	if (ret)
		log_err("main", "handles left open at exit: %s",
			uv_strerror(ret));
	registry_destroy(&d.registry);
	store_destroy(&d.store);
	compressor_destroy(d.lc.comp);
	free(d.lc.buf);
	free(d.run_buf);
	if (d.bound_path)
		unlink(d.bound_path);
	log_info("main", "stopped");
	return ret ? UZSWAPD_EXIT_LOOP : UZSWAPD_EXIT_OK;
}
