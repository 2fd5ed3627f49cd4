/*
 * check_log.c - unit tests of uzswapd's logging (daemon/log.c): its rate
 * limit and its three sinks.
 *
 * ratelimit: the limiter runs on an injected clock (log_set_clock()): no
 * test sleeps. The daemon's stderr is a memfd read back after each step.
 * A site prints its burst and drops the rest; the next window starts with
 * a summary of what was dropped; sites are independent; log_flush()
 * summarizes at once; debug lines are never limited; four threads logging
 * from one site at once lose no count.
 *
 * sinks: log_open() chooses the journal only when $JOURNAL_STREAM is the
 * device and inode of stderr (a memfd's, here), a terminal for a pty, a
 * file otherwise; a file gets "<N>token: text" lines, a terminal plain
 * "uzswapd: LEVEL: token: text" lines; the journal gets one record per
 * line, its fields exactly (names, values, priority, the call site, what
 * the line is about), nothing on stderr, and a "<N>" line on stderr when
 * a record cannot be sent; a summary of the rate limit is a record too.
 * Records go to a function of the test's (log_set_sendv()), set before
 * any log_open(): no test writes to the system journal.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_log
 * (each test assumes a fresh process: run one case, CK_RUN_CASE=sinks).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "daemon/log.h"

static uint64_t fake_ms;
static int out_fd = -1;
static char out[1 << 20];

static uint64_t fake_now(void)
{
	return fake_ms;
}

/* Each test runs in its own process (CK_FORK): stderr becomes a memfd. */
static void setup(void)
{
	out_fd = memfd_create("check_log", MFD_CLOEXEC);
	ck_assert_int_ge(out_fd, 0);
	ck_assert_int_eq(dup2(out_fd, STDERR_FILENO), STDERR_FILENO);
	fake_ms = 1000000;
	log_set_clock(fake_now);
}

/* What was logged so far, NUL-terminated, in @out. */
static const char *logged(void)
{
	ssize_t n = pread(out_fd, out, sizeof(out) - 1, 0);

	ck_assert_int_ge(n, 0);
	out[n] = 0;
	return out;
}

static int count(const char *needle)
{
	const char *p = logged();
	int n = 0;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* One call site, @n times. */
static void flood(int n)
{
	int i;

	for (i = 0; i < n; i++)
		log_warn("evict", "flood %d", i);
}

START_TEST(test_burst_then_summary)
{
	flood(100);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST);
	ck_assert_int_eq(count("<4>evict: flood 9\n"), 1);
	ck_assert_int_eq(count("flood 10\n"), 0);

	/* still in the window: dropped, no summary yet */
	fake_ms += LOG_RL_INTERVAL_MS - 1;
	log_warn("evict", "flood %d", 100);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST);

	fake_ms += 1;
	log_warn("evict", "flood %d", 101);
	ck_assert_int_eq(count("<4>evict: flood 100 ... repeated 91 times\n"),
			 1);
	ck_assert_int_eq(count("<4>evict: flood 101\n"), 1);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST + 2);
}
END_TEST

START_TEST(test_sites_independent)
{
	flood(50);
	log_err("store", "another site");
	log_info("ctl", "a third one");
	ck_assert_int_eq(count("<3>store: another site\n"), 1);
	ck_assert_int_eq(count("<6>ctl: a third one\n"), 1);
	ck_assert_int_eq(count("repeated"), 0);
}
END_TEST

/* A summary is due when the window ends, whichever site logs next. */
START_TEST(test_summary_from_other_site)
{
	flood(LOG_RL_BURST + 1);
	fake_ms += LOG_RL_INTERVAL_MS;
	log_info("main", "something else");
	ck_assert_int_eq(count("<4>evict: flood 10 ... repeated 1 time\n"), 1);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST + 2);
}
END_TEST

START_TEST(test_flush)
{
	flood(LOG_RL_BURST + 5);
	log_flush();
	ck_assert_int_eq(count("<4>evict: flood 14 ... repeated 5 times\n"), 1);
	log_flush();
	ck_assert_int_eq(count("repeated"), 1);
}
END_TEST

START_TEST(test_debug_not_limited)
{
	int i;

	log_enable_debug("fault");
	for (i = 0; i < 50; i++)
		log_debug("fault", "debug %d", i);
	log_debug("evict", "not enabled");
	ck_assert_int_eq(count("<7>fault: debug"), 50);
	ck_assert_int_eq(count("\n"), 50);
}
END_TEST

#define THREADS 4
#define PER_THREAD 1000

static void *flood_thread(void *arg)
{
	(void)arg;
	flood(PER_THREAD);
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t t[THREADS];
	char want[64];
	int i;

	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, flood_thread,
						NULL), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	log_flush();
	snprintf(want, sizeof(want), " ... repeated %d times\n",
		 THREADS * PER_THREAD - LOG_RL_BURST);
	ck_assert_int_eq(count(want), 1);
	ck_assert_int_eq(count("\n"), LOG_RL_BURST + 1);
}
END_TEST

/*****************
 * Sinks
 *****************/

#define MAX_RECORDS	32
#define MAX_FIELDS	20
#define FIELD_MAX	(1024 + 64)

/* The journal records the log sent, each field NUL-terminated. */
static struct {
	int n;
	char field[MAX_FIELDS][FIELD_MAX];
} records[MAX_RECORDS];
static int nr_records;
static int send_ret;		/* what fake_sendv() returns */

static int fake_sendv(const struct iovec *iov, int n)
{
	int i;

	ck_assert_int_lt(nr_records, MAX_RECORDS);
	ck_assert_int_le(n, MAX_FIELDS);
	for (i = 0; i < n; i++) {
		ck_assert_uint_lt(iov[i].iov_len, FIELD_MAX);
		memcpy(records[nr_records].field[i], iov[i].iov_base,
		       iov[i].iov_len);
		records[nr_records].field[i][iov[i].iov_len] = 0;
	}
	records[nr_records++].n = n;
	return send_ret;
}

/* The value of field @name of record @rec, NULL if it has none. */
static const char *field(int rec, const char *name)
{
	size_t len = strlen(name);
	int i;

	for (i = 0; i < records[rec].n; i++)
		if (!strncmp(records[rec].field[i], name, len) &&
		    records[rec].field[i][len] == '=')
			return records[rec].field[i] + len + 1;
	return NULL;
}

#define ck_assert_field(rec, name, want)				\
	do {								\
		const char *v_ = field(rec, name);			\
		ck_assert_msg(v_ && !strcmp(v_, want),			\
			      "%s=%s, expected %s", name,		\
			      v_ ? v_ : "(none)", want);		\
	} while (0)

/* stderr a memfd (setup()), no journal stream, records to fake_sendv(). */
static void setup_sinks(void)
{
	setup();
	ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);
	log_set_sendv(fake_sendv);
	nr_records = 0;
	send_ret = 0;
}

/* $JOURNAL_STREAM as systemd would set it for a stream on @fd, with
 * @ino_delta added to the inode. */
static void set_journal_stream(int fd, long ino_delta)
{
	struct stat st;
	char v[64];

	ck_assert_int_eq(fstat(fd, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
	ck_assert_int_eq(setenv("JOURNAL_STREAM", v, 1), 0);
}

START_TEST(test_sink_choice)
{
	static const char *const not_it[] = { "", "12", "12:", ":12", "x:y",
					      "1:2:3" };
	size_t i;

	ck_assert_int_eq(log_open(), LOG_SINK_FILE);
	set_journal_stream(STDERR_FILENO, 1);	/* another stream */
	ck_assert_int_eq(log_open(), LOG_SINK_FILE);
	for (i = 0; i < sizeof(not_it) / sizeof(not_it[0]); i++) {
		ck_assert_int_eq(setenv("JOURNAL_STREAM", not_it[i], 1), 0);
		ck_assert_msg(log_open() == LOG_SINK_FILE,
			      "JOURNAL_STREAM=%s taken for the journal",
			      not_it[i]);
	}
	set_journal_stream(STDERR_FILENO, 0);
	ck_assert_int_eq(log_open(), LOG_SINK_JOURNAL);
}
END_TEST

START_TEST(test_file_sink)
{
	ck_assert_int_eq(log_open(), LOG_SINK_FILE);
	log_err_about("fault", LOG_ABOUT(.pid = 12, .err = EIO),
		      "pid %d: %s", 12, "lost");
	log_info("main", "ready");
	ck_assert_str_eq(logged(), "<3>fault: pid 12: lost\n<6>main: ready\n");
	ck_assert_int_eq(nr_records, 0);
}
END_TEST

/* What the pty's other end @master has received, within @ms. */
static const char *read_pty(int master, int ms)
{
	struct pollfd p = { .fd = master, .events = POLLIN };
	size_t n = 0;
	ssize_t got;

	while (n < sizeof(out) - 1 && poll(&p, 1, ms) == 1) {
		got = read(master, out + n, sizeof(out) - 1 - n);
		if (got <= 0)
			break;
		n += (size_t)got;
		ms = 100;	/* the rest follows at once, if any */
	}
	out[n] = 0;
	return out;
}

START_TEST(test_terminal_sink)
{
	struct termios tio;
	int master, slave;

	master = posix_openpt(O_RDWR | O_NOCTTY);
	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	ck_assert_int_ge(slave, 0);
	ck_assert_int_eq(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);		/* "\n" stays "\n" */
	ck_assert_int_eq(tcsetattr(slave, TCSANOW, &tio), 0);
	ck_assert_int_eq(dup2(slave, STDERR_FILENO), STDERR_FILENO);

	ck_assert_int_eq(log_open(), LOG_SINK_TERMINAL);
	log_enable_debug("fault");
	log_err("store", "e %d", 1);
	log_warn_about("evict", LOG_ABOUT(.pid = 3), "w %d", 2);
	log_info("main", "i %d", 3);
	log_debug("fault", "d %d", 4);
	ck_assert_str_eq(read_pty(master, 10000),
			 "uzswapd: error: store: e 1\n"
			 "uzswapd: warning: evict: w 2\n"
			 "uzswapd: main: i 3\n"
			 "uzswapd: debug: fault: d 4\n");
	ck_assert_int_eq(nr_records, 0);
	close(slave);
	close(master);
}
END_TEST

/* A fake region as LOG_REGION() sees one. */
struct fake_slot {
	pid_t pid;
	char comm[16];
};

struct fake_region {
	struct fake_slot *slot;
	uint64_t id;
	char name[64];
};

START_TEST(test_journal_fields)
{
	struct fake_slot slot = { .pid = 4321, .comm = "redis-server" };
	struct fake_region r = { .slot = &slot, .id = 77, .name = "cache" };
	char line[16];
	int at;

	set_journal_stream(STDERR_FILENO, 0);
	ck_assert_int_eq(log_open(), LOG_SINK_JOURNAL);
	at = __LINE__; log_err_about("fault", LOG_REGION(&r, .err = EFAULT),
				     "pid %d: UFFDIO_COPY: %s", 4321, "bad");
	ck_assert_int_eq(nr_records, 1);
	ck_assert_int_eq(records[0].n, 12);
	ck_assert_field(0, "MESSAGE", "fault: pid 4321: UFFDIO_COPY: bad");
	ck_assert_field(0, "PRIORITY", "3");
	ck_assert_field(0, "SYSLOG_IDENTIFIER", "uzswapd");
	ck_assert_field(0, "UZSWAP_SUBSYSTEM", "fault");
	snprintf(line, sizeof(line), "%d", at);
	ck_assert_field(0, "CODE_LINE", line);
	ck_assert_field(0, "CODE_FUNC", __func__);
	ck_assert_field(0, "CLIENT_PID", "4321");
	ck_assert_field(0, "CLIENT_COMM", "redis-server");
	ck_assert_field(0, "REGION", "77");
	ck_assert_field(0, "REGION_NAME", "cache");
	ck_assert_field(0, "ERRNO", "14");
	/* the source path, without a VPATH build's "../../" */
	ck_assert_ptr_nonnull(field(0, "CODE_FILE"));
	ck_assert_msg(strncmp(field(0, "CODE_FILE"), "../", 3) &&
		      strstr(field(0, "CODE_FILE"), "check_log.c"),
		      "CODE_FILE=%s", field(0, "CODE_FILE"));

	/* a client, and a line about nothing in particular */
	log_info_about("client", LOG_CLIENT(&slot), "pid %d (%s) connected",
		       4321, slot.comm);
	log_warn("main", "plain");
	ck_assert_int_eq(nr_records, 3);
	ck_assert_int_eq(records[1].n, 9);
	ck_assert_field(1, "PRIORITY", "6");
	ck_assert_field(1, "CLIENT_PID", "4321");
	ck_assert_field(1, "CLIENT_COMM", "redis-server");
	ck_assert_ptr_null(field(1, "REGION"));
	ck_assert_ptr_null(field(1, "ERRNO"));
	ck_assert_int_eq(records[2].n, 7);
	ck_assert_field(2, "MESSAGE", "main: plain");
	ck_assert_field(2, "PRIORITY", "4");
	ck_assert_ptr_null(field(2, "CLIENT_PID"));
	ck_assert_str_eq(logged(), "");		/* nothing on stderr */
}
END_TEST

/* A record the journal does not take goes to the stream as a "<N>" line. */
START_TEST(test_journal_unsent)
{
	set_journal_stream(STDERR_FILENO, 0);
	ck_assert_int_eq(log_open(), LOG_SINK_JOURNAL);
	send_ret = -ECONNREFUSED;
	log_err("store", "not lost");
	ck_assert_int_eq(nr_records, 1);
	ck_assert_str_eq(logged(), "<3>store: not lost\n");
}
END_TEST

START_TEST(test_journal_summary)
{
	set_journal_stream(STDERR_FILENO, 0);
	ck_assert_int_eq(log_open(), LOG_SINK_JOURNAL);
	flood(LOG_RL_BURST + 3);
	ck_assert_int_eq(nr_records, LOG_RL_BURST);
	log_flush();
	ck_assert_int_eq(nr_records, LOG_RL_BURST + 1);
	ck_assert_field(LOG_RL_BURST, "MESSAGE",
			"evict: flood 12 ... repeated 3 times");
	ck_assert_field(LOG_RL_BURST, "PRIORITY", "4");
	ck_assert_field(LOG_RL_BURST, "UZSWAP_SUPPRESSED", "3");
	ck_assert_field(LOG_RL_BURST, "CODE_FUNC", "flood");
	ck_assert_str_eq(logged(), "");
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("ratelimit");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_burst_then_summary);
	tcase_add_test(tc, test_sites_independent);
	tcase_add_test(tc, test_summary_from_other_site);
	tcase_add_test(tc, test_flush);
	tcase_add_test(tc, test_debug_not_limited);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("sinks");
	tcase_add_checked_fixture(tc, setup_sinks, NULL);
	tcase_add_test(tc, test_sink_choice);
	tcase_add_test(tc, test_file_sink);
	tcase_add_test(tc, test_terminal_sink);
	tcase_add_test(tc, test_journal_fields);
	tcase_add_test(tc, test_journal_unsent);
	tcase_add_test(tc, test_journal_summary);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
