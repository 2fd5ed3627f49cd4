/*
 * uzswapd.c - the daemon's startup, main loop and shutdown.
 *
 * Startup: parse the command line; take the control socket from systemd
 * (sd_listen_fds) or bind it; lock the state directory; start the
 * workers and the fault threads
 * (a later failure stops them again); listen; install the
 * signal handlers; lock the daemon's memory and lower its OOM score (a swap
 * daemon must never be swapped or killed first); tell systemd READY=1.
 * Then the libuv loop runs until SIGTERM or SIGINT.
 *
 * Shutdown (uzswapd_shutdown) is a handover to the next daemon on the
 * state directory, in this order: STOPPING=1; stop accepting; close every
 * connection, keeping its uffd as an orphan (as after a crash: the client
 * reconnects to the successor by itself); let the work in flight end (an
 * UNREGISTER's restore finishes, a drain stops at its next step); write
 * the superblock a last time; hand every client uffd back to its fault
 * thread, and as a process's last one is released, let its regions go as
 * they are (nothing is restored or dropped: the pool's files, the page
 * tables and the backing file stay for the successor); then stop and join
 * the workers and the fault threads; close the signal handles. The loop
 * then has no handle left and returns, and uv_loop_close() must succeed.
 * `uzswapctl drain` is what gives every page back (drain.c).
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

#include "atrest.h"
#include "client.h"
#include "ctl.h"
#include "fault.h"
#include "fork.h"
#include "lib/common/clock.h"
#include "lib/common/killpoint.h"
#include "lib/common/size.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "takeover.h"
#include "uzswapd.h"

#define OOM_SCORE_ADJ "-900"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: uzswapd [OPTIONS]\n"
		"User-space compressed swap daemon. Options override the\n"
		"configuration file (uzswapd.conf(5)).\n\n"
		"  -f, --config FILE          configuration file, and FILE.d/*.conf\n"
		"                             (default " CONF_DEFAULT_FILE ")\n"
		"      --check-config         check the configuration, print it,\n"
		"                             exit\n");
	conf_print_options(out);
	fprintf(out,
		"  -h, --help                 this text\n"
		"  -V, --version              the version\n");
}

/*
 * Record option @opt (value @arg) as a command-line override of its key,
 * after checking the value on its own. -D accumulates its tokens.
 */
static int add_override(struct conf_source *src, int opt, const char *arg)
{
	static char debug[256];
	char err[CONF_ERR_MAX];
	struct conf_override *ov;

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
	if (conf_option_override(opt, arg, ov)) {
		usage(stderr);
		return UZSWAPD_EXIT_USAGE;
	}
	if (conf_check_override(ov, err)) {
		fprintf(stderr, "uzswapd: %s\n", err);
		return UZSWAPD_EXIT_USAGE;
	}
	return UZSWAPD_EXIT_OK;
}

/* The options that are not configuration keys; conf.c adds the others. */
#define OPT_CHECK_CONFIG 0x200
#define OPT_MAX 48

static int parse_options(int argc, char **argv, struct conf_source *src,
			 bool *check_only)
{
	struct option longopts[OPT_MAX] = {
		{ "config", required_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
	};
	char shortopts[2 * OPT_MAX] = "f:hV";
	int opt, ret;

	conf_getopt_tables(longopts, OPT_MAX, shortopts, sizeof(shortopts));
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'f':
			src->path = optarg;
			src->path_given = true;
			break;
		case OPT_CHECK_CONFIG:
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

/*
 * Remove the socket file this daemon bound, if @d->bound_path still names
 * that file (same device and inode): never one this daemon did not
 * create. A daemon stopping has stopped listening long before it exits,
 * and a successor may have bound the path anew meanwhile (then the file
 * is the successor's). The check and the unlink are two steps: a file
 * replaced between them is removed; nothing replaces it that fast but a
 * second daemon started in that very instant.
 */
static void unbind_socket(const struct uzswapd *d)
{
	struct stat st;

	if (!d->bound_ino || lstat(d->bound_path, &st) < 0)
		return;
	if (st.st_dev == d->bound_dev && st.st_ino == d->bound_ino)
		unlink(d->bound_path);
}

/*
 * Bind and listen on @d->bound_path, recording the identity of the socket
 * file made (unbind_socket()). A stale file (no daemon answers there) is
 * replaced; a served one is left alone. Return: the fd, or a negative
 * exit code, with nothing left behind.
 */
static int bind_socket(struct uzswapd *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = d->bound_path;
	struct stat st;
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
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out_fail;
	if (lstat(path, &st) == 0) {
		d->bound_dev = st.st_dev;
		d->bound_ino = st.st_ino;
	}
	if (chmod(path, 0660) < 0 || listen(fd, 128) < 0)
		goto out_fail;
	return fd;

out_fail:
	log_err("main", "cannot listen on %s: %s", path, strerror(errno));
	unbind_socket(d);	/* if bound */
	if (fd >= 0)
		close(fd);
	return -UZSWAPD_EXIT_SOCKET;
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
		fd = bind_socket(d);
	} else if (fd >= 0) {
		log_info("main", "using the socket passed by systemd");
	}
	return fd;
}

/*****************
 * The state directory
 *****************/

/* The predecessor's state, taken over or refused: freed. */
static void state_forget(struct uzswapd *d)
{
	atrest_free(d->rest);
	d->rest = NULL;
	if (!d->taking)
		return;
	statedir_state_free(d->taking);
	free(d->taking);
	d->taking = NULL;
}

/*
 * Lock the state directory, before anything else in it is touched, and
 * look at what an earlier daemon left there: a valid superblock is kept
 * in d->taking, for the takeover, and this daemon counts the next epoch
 * (its superblock is written once it took over: until then a crash leaves
 * the predecessor's for the next one); an invalid one stops the startup
 * with its reason, and nothing in the directory changes. Without one, an
 * empty superblock says that this daemon owns the directory. Region
 * tables live there from now on. Return: 0 or an exit code.
 */
/* The image the predecessor left at rest, if it left one that goes with
 * its superblock (else the takeover recovers page by page). */
static void take_rest(struct uzswapd *d)
{
	char err[STATEDIR_ERR_MAX];

	d->rest = atrest_take(d->statedir, d->taking, err);
	if (!d->rest && errno != ENOENT)
		log_warn("main", "%s: recovering page by page", err);
}

static int open_state(struct uzswapd *d)
{
	char err[STATEDIR_ERR_MAX];
	uint64_t epoch = 1;
	int ret;

	if (!strcmp(d->conf.state_dir, UZSWAPD_DEFAULT_STATE_DIR))
		make_parent_dir(d->conf.state_dir);
	d->statedir = statedir_open(d->conf.state_dir, err);
	if (!d->statedir) {
		log_err("main", "%s", err);
		return UZSWAPD_EXIT_STATE;
	}
	d->taking = calloc(1, sizeof(*d->taking));
	if (!d->taking) {
		log_err("main", "out of memory");
		goto out_close;
	}
	ret = statedir_load(d->statedir, d->taking, err);
	if (ret == 0) {
		epoch = d->taking->epoch + 1;
		log_info("main", "found state of %u clients, %u regions from "
			 "uzswapd %s (epoch %llu): taking over",
			 d->taking->nr_clients, d->taking->nr_regions,
			 d->taking->release,
			 (unsigned long long)d->taking->epoch);
	} else if (ret == -ENOENT) {
		free(d->taking);
		d->taking = NULL;
	} else {
		log_err("main", "%s", err);
		goto out_close;
	}
	statedir_set_epoch(d->statedir, epoch);
	d->regions.files = (struct region_files){
		statedir_table_open, statedir_table_remove, d->statedir,
	};
	if (d->taking) {
		take_rest(d);
		return 0;
	}
	ret = statedir_rest_remove(d->statedir);
	if (ret == 0)
		ret = statedir_write(d->statedir, NULL, 0, NULL, 0);
	if (ret) {
		log_err("main", "state directory %s: cannot write its "
			"superblock: %s", d->conf.state_dir, strerror(-ret));
		goto out_close;
	}
	return 0;

out_close:
	state_forget(d);
	statedir_close(d->statedir);
	d->statedir = NULL;
	return UZSWAPD_EXIT_STATE;
}

/*
 * The backing file @b (NULL: none) must be the predecessor's, if it named
 * one and left regions: written-back pages are read from it by slot
 * number, and another file would give them wrong data. On a mismatch @b
 * is closed untouched. From now on the superblock names @b. Return: 0 or
 * an exit code.
 */
static int check_backing(struct uzswapd *d, struct backing *b)
{
	struct statedir_backing id = { 0, 0 };
	const struct statedir_backing *was;

	if (b)
		backing_identity(b, &id.dev, &id.ino);
	was = d->taking && d->taking->backing_known && d->taking->nr_regions ?
	      &d->taking->backing : NULL;
	if (was && (was->dev || was->ino) &&
	    (was->dev != id.dev || was->ino != id.ino)) {
		log_err("main", "%s/superblock: its clients' written-back "
			"pages are in another backing file (device %llu, "
			"inode %llu) than backing-file %s: configure that file "
			"again (drain with it before changing it)",
			d->conf.state_dir, (unsigned long long)was->dev,
			(unsigned long long)was->ino, d->conf.backing_file);
		if (b) {
			backing_hand_over(b);
			backing_close(b);
		}
		return UZSWAPD_EXIT_STATE;
	}
	statedir_set_backing(d->statedir, &id);
	return 0;
}

/* The predecessor's store on its files: as its image at rest says, or
 * recovering (takeover_run() ends it). 0 or -errno. */
static int take_store(struct uzswapd *d)
{
	const char *why;
	int ret;

	if (d->rest) {
		ret = atrest_load_store(d->rest, &d->store, &why);
		if (ret != -EINVAL)
			return ret;
		log_warn("main", "%s/at-rest: %s: recovering page by page",
			 statedir_path(d->statedir), why);
		atrest_free(d->rest);
		d->rest = NULL;
	}
	return store_recover_begin(&d->store);
}

/*
 * The store, its pool on the state directory's files: the predecessor's
 * (then recovering: takeover_run() ends it), or new ones. Return: 0 or an
 * exit code.
 */
static int open_store(struct uzswapd *d, struct backing *backing)
{
	struct store_owner owner = { .take = evict_wb_take,
				     .settle = evict_wb_settle,
				     .give_up = evict_give_up,
				     .ctx = &d->regions };
	bool fresh = !d->taking;
	struct z3fold_mem mem;
	int pages, frames, owners, ret;

	pages = statedir_pool_open(d->statedir, STATEDIR_POOL_PAGES, fresh);
	frames = statedir_pool_open(d->statedir, STATEDIR_POOL_FRAMES, fresh);
	owners = statedir_pool_open(d->statedir, STATEDIR_POOL_OWNERS, fresh);
	ret = pages < 0 ? pages : frames < 0 ? frames : owners < 0 ? owners : 0;
	if (ret == 0) {
		mem = (struct z3fold_mem){ { PAGEMEM_FILE, pages },
					   { PAGEMEM_FILE, frames },
					   { PAGEMEM_FILE, owners } };
		ret = store_init(&d->store, d->conf.compressor,
				 (int)d->conf.zstd_level, d->conf.pool_limit,
				 backing, &owner, &mem);
		backing = NULL;		/* the store's, or closed */
		if (ret == 0) {
			store_set_dedup(&d->store, d->conf.dedup,
					d->conf.max_page_sharing);
			store_set_compact_ratio(&d->store,
						d->conf.compact_ratio);
		}
		if (ret == 0 && d->taking) {
			ret = take_store(d);
			if (ret)
				store_destroy(&d->store);
		}
	}
	if (backing)
		backing_close(backing);
	if (pages >= 0)
		close(pages);
	if (frames >= 0)
		close(frames);
	if (owners >= 0)
		close(owners);
	if (ret) {
		log_err("main", "cannot set up the compressed store in %s: %s",
			statedir_path(d->statedir), strerror(-ret));
		return UZSWAPD_EXIT_STORE;
	}
	return 0;
}

/*****************
 * The backing file
 *****************/

/* Why backing_open() refused a path (its errno), and what to do; for an
 * NBD export (@nbd) the reason was logged as it was found. */
static const char *backing_open_why(int err, bool nbd)
{
	if (nbd)
		return err == EEXIST ? "it holds data that is not uzswap's" :
				       strerror(err);
	switch (err) {
	case EEXIST:
		return "it holds data and is not a uzswap backing file: it is "
		       "left alone; name another file (or remove this one)";
	case ELOOP:
		return "it or its directory is a symbolic link: name the real "
		       "path (links are never followed)";
	case EMLINK:
		return "it has other hard links: remove them or name another "
		       "file";
	case EPERM:
		return "it is owned by another user: remove it or name "
		       "another file";
	case EINVAL:
		return "it is not a regular file";
	case EBUSY:
		return "another process holds it (another uzswapd?)";
	default:
		return strerror(err);
	}
}

/*
 * Open the backing file. One configured elsewhere than the default must
 * work (exit code otherwise); the default one is best effort: without it
 * the pool simply does not write back. *@b is NULL for no backing file.
 */
static int open_backing(const struct conf *c, bool keep,
			struct backing **b)
{
	const char *path = c->backing_file;
	bool is_default = !strcmp(path, UZSWAPD_DEFAULT_BACKING);
	struct backing_stats st;
	char cap[32], size[32];

	*b = NULL;
	if (!strcmp(path, "none"))
		return 0;
	if (is_default && mkdir(UZSWAPD_STATE_DIR, 0700) < 0 &&
	    errno != EEXIST) {
		log_warn("main", "no backing file: cannot create %s: %s",
			 UZSWAPD_STATE_DIR, strerror(errno));
		return 0;
	}
	*b = backing_open(path, c->backing_limit, keep);
	if (!*b) {
		log_err("main", "cannot use the backing file %s: %s", path,
			backing_open_why(errno, backing_target_is_nbd(path)));
		return is_default ? 0 : UZSWAPD_EXIT_BACKING;
	}
	backing_set_timeout(*b, c->backing_timeout);
	backing_get_stats(*b, &st);
	if (st.in_memory)
		log_warn("main", "the backing file %s is in memory (tmpfs): "
			 "writing back saves no RAM", path);
	if (!strcmp(st.kind, "nbd"))
		log_info("main", "writing back to NBD export %s (%s), cap %s%s",
			 path, size_format(st.nbd.size_bytes, size,
					   sizeof(size)),
			 size_format(c->backing_limit, cap, sizeof(cap)),
			 st.nbd.trim ? "" : ", no TRIM: space is not given "
					    "back to the server");
	else
		log_info("main", "backing file %s, cap %s, %s I/O", path,
			 size_format(c->backing_limit, cap, sizeof(cap)),
			 st.direct ? "direct" : "buffered");
	return 0;
}

/*****************
 * Memory locking and OOM score
 *****************/

/*
 * Lock the daemon's memory, once its threads run: everything mapped now
 * (code, thread stacks, the store's tables) is populated and locked, so
 * that serving a fault never faults on it. What is mapped later is locked
 * as it is touched (MCL_ONFAULT), not populated when mapped: the regions'
 * page-state tables span 16 bytes per registered page, and only their
 * touched parts may cost memory (region.c). A later allocation costs its
 * page when first written, as it would anyway, and never leaves RAM.
 * The second call also locks (on fault) what the running threads mapped
 * between the two; pages locked by the first stay locked.
 * The kernel's VmLck counts such mappings whole; their locked memory is
 * what was touched ("Locked:" in /proc/PID/smaps_rollup).
 */
static void lock_memory(const struct uzswapd *d)
{
#ifdef UZSWAP_SANITIZED
	log_info("main", "sanitizer build: memory not locked");
#else
	bool populated;

	if (!d->conf.lock_memory)
		return;
	populated = mlockall(MCL_CURRENT) == 0;
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0) {
		if (!populated)
			log_warn("main", "memory locked on fault only "
				 "(RLIMIT_MEMLOCK?)");
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

/* "default budget 512.0 MiB, all clients none, pool limit 1.6 GiB": the
 * budgets and the pool limit of @c for a log line, into @buf. */
static const char *limits_text(const struct conf *c, char *buf, size_t len)
{
	char def[32], all[32], pool[32];

	snprintf(buf, len, "default budget %s, all clients %s, pool limit %s",
		 c->default_limit ? size_format(c->default_limit, def,
						sizeof(def)) : "none",
		 c->resident_limit ? size_format(c->resident_limit, all,
						 sizeof(all)) : "none",
		 c->pool_limit ? size_format(c->pool_limit, pool,
					     sizeof(pool)) : "none");
	return buf;
}

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
	evict_set_limits(d->evictors, c->default_limit, c->resident_limit);
	fault_set_spin(d->faults, c->fault_spin);
	store_set_pool_limit(&d->store, c->pool_limit);
	store_set_compressor(&d->store, c->compressor, (int)c->zstd_level);
	store_set_dedup(&d->store, c->dedup, c->max_page_sharing);
	store_set_compact_ratio(&d->store, c->compact_ratio);
	if (d->store.backing)
		backing_set_timeout(d->store.backing, c->backing_timeout);
}

int uzswapd_reload(struct uzswapd *d, char err[CONF_ERR_MAX])
{
	char limits[128];
	struct conf next;
	int ret;

	assert_owner_thread(&d->thread);
	notify_reloading();
	ret = conf_load(&next, &d->src, err);
	if (ret == 0) {
		conf_keep_restart_keys(&next, &d->conf);
		ret = reload_metrics(d, &next, err);
		if (ret)
			conf_free(&next);
	}
	d->reload_ok = ret == 0;
	if (ret) {
		log_err("config", "reload failed, the running configuration "
			"stays: %s", err);
		notify_reloaded(d, err);
		return ret;
	}
	apply_live_keys(d, &next);
	conf_free(&d->conf);
	d->conf = next;
	d->conf_time = clock_unix_s();
	log_info("config", "configuration reloaded: %s, %s",
		 compress_algo_name(d->conf.compressor),
		 limits_text(&d->conf, limits, sizeof(limits)));
	notify_reloaded(d, NULL);
	return 0;
}

static void finish_shutdown(struct uzswapd *d)
{
	unsigned int i;

	fault_stop(d->faults);
	d->faults = NULL;
	work_stop(&d->work);
	evict_stop(d->evictors);
	d->evictors = NULL;
	for (i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&d->signals[i], NULL);
	/* a second SIGTERM must not cut the orderly exit short */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
}

/* What this daemon stores outlives it, for the next one on its state
 * directory: pool files, page tables and backing file stay as they are. */
static void keep_state(struct uzswapd *d)
{
	store_hand_over(&d->store);
	region_index_hand_over(&d->regions);
}

void uzswapd_shutdown(struct uzswapd *d)
{
	struct list_node *pos, *tmp;

	assert_owner_thread(&d->thread);
	if (d->stopping)
		return;
	d->stopping = true;
	fork_expire(d, true);
	notify_stopping();
	log_info("main", "handing over %u clients to the next uzswapd on %s",
		 registry_nr_slots(&d->registry), d->conf.state_dir);
	keep_state(d);
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
	if (!d->stopping || !work_idle(&d->work))
		return;
	if (!d->released) {
		/* the last word on the clients, then they are let go */
		d->released = true;
		statedir_save(d->statedir, &d->registry);
		killpoint("stop.saved");
		client_release_all(d);
	}
	if (d->nr_ctxs == 0)
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

	stats_tick(&d->rate, d->faults);
	notify_tick(d);
	fork_expire(d, false);
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
	d->reload_ok = true;
	d->conf_time = clock_unix_s();
	if (check_only) {
		conf_print(&d->conf, stdout);
		conf_free(&d->conf);
		*done = true;
	}
	return UZSWAPD_EXIT_OK;
}

/* The handover is done, every thread stopped: the image at rest, so that
 * the successor need not recover page by page. */
static void leave_at_rest(struct uzswapd *d)
{
	int ret = atrest_save(d->statedir, &d->store, &d->regions);

	if (ret)
		log_warn("main", "cannot leave the image at rest in %s: %s; "
			 "the next uzswapd recovers page by page",
			 statedir_path(d->statedir), strerror(-ret));
}

/* A startup step failed after loop handles were set up: close those left
 * open (signals, the tick); the parts that own handles close their own. */
static void close_handle(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/*
 * The daemon is built in this order, and taken down in the reverse one: on
 * a startup failure by the labels of uzswapd_main(), at the end by the
 * shutdown (uzswapd_shutdown(): stop accepting, close the connections,
 * /metrics and the tick; once the last client uffd is released and the
 * workers are idle, finish_shutdown(): fault threads, workers, evictors,
 * signals) and then by the same labels from the store on:
 *   1. the configuration, the registry (with the budgets) and the region
 *      index
 *   2. the event loop
 *   3. the control socket (bound, or passed by systemd)
 *   4. the state directory: locked, what an earlier daemon left there
 *      checked and set aside (open_state())
 *   5. the backing file and the store; the loop thread's compressor
 *   6. the evictor threads (the workers and fault threads wake them)
 *   7. the workers
 *   8. the fault threads
 *   9. the loop handles: the listening socket, signals, the tick
 *  10. /metrics
 */
int uzswapd_main(int argc, char **argv)
{
	bool check_only = false, done = false;
	struct backing *backing;
	char limits[128];
	struct uzswapd *d;
	int ret, fd;

	log_open();
	d = calloc(1, sizeof(*d));
	if (!d) {
		fprintf(stderr, "uzswapd: out of memory\n");
		return UZSWAPD_EXIT_LOOP;
	}
	owner_thread_set(&d->thread);
	ret = parse_options(argc, argv, &d->src, &check_only);
	if (ret == 0)
		ret = load_config(d, check_only, &done);
	if (ret || done)
		goto out_free;
	enable_debug(&d->conf);
	signal(SIGPIPE, SIG_IGN);
	d->listen_fd = -1;
	d->spare_fd = -1;
	d->max_registered = 4 * phys_bytes();
	list_init(&d->conns);
	list_init(&d->forks);
	registry_init(&d->registry);
	registry_set_limits(&d->registry, d->conf.default_limit,
			    d->conf.resident_limit);
	region_index_init(&d->regions);
	if (uv_loop_init(&d->loop)) {
		log_err("main", "cannot set up the event loop");
		ret = UZSWAPD_EXIT_LOOP;
		goto out_free_conf;
	}

	fd = open_socket(d);
	if (fd < 0) {
		ret = -fd;
		goto out_free_path;	/* not ours to unlink */
	}
	ret = open_state(d);
	if (ret)
		goto out_close_socket;
	ret = open_backing(&d->conf, d->taking != NULL, &backing);
	if (ret == 0)
		ret = check_backing(d, backing);
	if (ret == 0)
		ret = open_store(d, backing);
	if (ret)
		goto out_close_state;
	d->comp = compressor_create(d->conf.compressor,
				    (int)d->conf.zstd_level);
	d->run_buf = aligned_alloc(PAGE_SIZE, EVICT_RUN_PAGES * PAGE_SIZE);
	if (!d->comp || !d->run_buf) {
		log_err("main", "cannot set up the compressed store");
		ret = UZSWAPD_EXIT_STORE;
		goto out_destroy_store;
	}
	ret = UZSWAPD_EXIT_THREADS;
	d->evictors = evict_start(&d->registry, &d->regions, &d->store,
				  d->conf.evict_threads);
	if (!d->evictors) {
		log_err("main", "cannot start the evictor threads: %s",
			strerror(errno));
		goto out_destroy_store;
	}
	if (work_start(&d->work, &d->loop, &d->store, d->evictors,
		       work_went_idle, d))
		goto out_stop_evictors;
	d->faults = fault_start(&d->loop, d->conf.fault_threads,
				d->conf.fault_spin, d->evictors,
				client_ctx_released, d);
	if (!d->faults) {
		log_err("main", "cannot start the fault threads: %s",
			strerror(errno));
		goto out_stop_work;
	}
	if (d->taking) {
		if (takeover_run(d, d->taking)) {
			log_err("main", "cannot take over: out of memory");
			ret = UZSWAPD_EXIT_STATE;
			goto out_stop_faults;
		}
		state_forget(d);
	}
	stats_rate_init(&d->rate);
	ret = ctl_listen(d, fd);
	if (d->listen_fd == fd)
		fd = -1;	/* the daemon's now */
	if (ret == 0)
		ret = watch_signals(d);
	if (ret == 0)
		ret = start_tick(d);
	if (ret) {
		log_err("main", "event loop setup failed: %s", uv_strerror(ret));
		ret = UZSWAPD_EXIT_LOOP;
		goto out_close_handles;
	}
	if (d->conf.metrics) {
		d->metrics = metrics_start(d, d->conf.metrics,
					   d->conf.metrics_clients);
		if (!d->metrics) {
			ret = UZSWAPD_EXIT_METRICS;
			goto out_close_handles;
		}
	}
	lock_memory(d);
	lower_oom_score();

	log_info("main", "uzswapd %s ready, %u fault threads, %u evictors, "
		 "%s, %s", PACKAGE_VERSION, fault_nr_threads(d->faults),
		 d->conf.evict_threads, compress_algo_name(d->conf.compressor),
		 limits_text(&d->conf, limits, sizeof(limits)));
	notify_ready(d);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	leave_at_rest(d);
	ret = UZSWAPD_EXIT_OK;
	goto out_destroy_store;

out_close_handles:
	ctl_stop_listening(d);
out_stop_faults:
	fault_stop(d->faults);
out_stop_work:
	work_stop(&d->work);
out_stop_evictors:
	evict_stop(d->evictors);
out_destroy_store:
	if (d->taking)		/* a failed takeover touches nothing */
		keep_state(d);
	compressor_destroy(d->comp);
	free(d->run_buf);
	store_destroy(&d->store);
out_close_state:
	state_forget(d);
	statedir_close(d->statedir);
out_close_socket:
	if (fd >= 0)
		close(fd);
	unbind_socket(d);
out_free_path:
	free(d->bound_path);
	uv_walk(&d->loop, close_handle, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d->loop)) {
		log_err("main", "handles left open at exit");
		if (ret == UZSWAPD_EXIT_OK)
			ret = UZSWAPD_EXIT_LOOP;
	}
out_free_conf:
	region_index_destroy(&d->regions);
	registry_destroy(&d->registry);
	conf_free(&d->conf);
	log_flush();
	if (ret == UZSWAPD_EXIT_OK)
		log_info("main", "stopped; the clients wait for the next "
			 "uzswapd");
out_free:
	free(d);
	return ret;
}
