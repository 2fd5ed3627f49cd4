/*
 * check_limits.c - integration tests of what registrations may cost the
 * daemon: a real uzswapd, locking its memory as in production, serving
 * real clients (uzclient pager and reserve).
 *
 * Test cases of limits_suite():
 *   sparse  80 GiB of untouched regions (5 x 16 GiB; less on a machine
 *           with under 20 GiB of RAM, to stay within the caps) grow the
 *           daemon's resident and locked memory by a few MiB at most,
 *           not by their 16 bytes of state per page; pages touched
 *           afterwards, at the start, middle and end of each region,
 *           read back what was written, also after COLD and WILLNEED
 *           advice over whole regions, which walk every page's state
 *           and must not grow the daemon either
 *   caps    registered-limit and user-registered-limit, set by a reload,
 *           refuse a registration past them with ENOSPC and a message
 *           naming the key; the user cap counts all of a user's
 *           processes and leaves other users their own; regions
 *           registered earlier keep their data
 *
 * One test case: CK_RUN_CASE=caps ./check_limits. Logs kept:
 * UZSWAP_ITEST_KEEP=1.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "pager.h"

#define MIB		(1024ull * 1024)
#define TIMEOUT_CASE	600
#define RUN_MS		120000		/* one uzclient reserve */
#define NOBODY		65534
#define SPARSE_REGIONS	5
#define SPARSE_MIB	16384ull	/* each, at most */
#define GROWTH_KIB	8192		/* what the daemon may grow by */

static struct dh_daemon dmn;
static char out[4096], err[4096];

/*****************
 * Helpers
 *****************/

/* The value in kB of the line "@key: N kB" of @path, or -1. */
static long long proc_kib(const char *path, const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':' &&
		    sscanf(line + klen + 1, "%lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* The daemon's memory, in KiB: resident, resident and locked, and what
 * the kernel counts as locked (VmLck: on-fault mappings whole). */
struct dmem {
	long long rss, locked, vmlck;
};

static void daemon_mem(struct dmem *m)
{
	char status[64], rollup[64];

	snprintf(status, sizeof(status), "/proc/%d/status", (int)dmn.pid);
	snprintf(rollup, sizeof(rollup), "/proc/%d/smaps_rollup",
		 (int)dmn.pid);
	m->rss = proc_kib(status, "VmRSS");
	m->vmlck = proc_kib(status, "VmLck");
	m->locked = proc_kib(rollup, "Locked");
	DH_ASSERT(m->rss >= 0 && m->vmlck >= 0 && m->locked >= 0,
		  "cannot read the daemon's memory in /proc");
}

/* The size of each region of the sparse case: SPARSE_MIB, or less if
 * SPARSE_REGIONS of them would pass the caps of four times RAM (per
 * process, and by default per user: 400% of RAM, a little less). */
static unsigned int sparse_mib(void)
{
	unsigned long long ram_mib = (unsigned long long)
		sysconf(_SC_PHYS_PAGES) * (unsigned long long)
		sysconf(_SC_PAGESIZE) / MIB;
	unsigned long long mib = (4 * ram_mib - 1) / SPARSE_REGIONS;

	return (unsigned int)(mib < SPARSE_MIB ? mib : SPARSE_MIB);
}

/* Replace the daemon's configuration file with @text and reload it. */
static void reload_with(const char *text, int nth)
{
	FILE *f = fopen(dmn.conf, "w");

	DH_ASSERT(f && fputs(text, f) >= 0 && fclose(f) == 0, "%s: %s",
		  dmn.conf, strerror(errno));
	dh_hup_and_wait(&dmn, "configuration reloaded", nth);
}

/* Run "uzclient reserve @mib @n" as @cred (NULL: root); its output lands
 * in out. */
static void reserve_as(const struct dh_cred *cred, unsigned int mib,
		       unsigned int n)
{
	char smib[16], sn[16];
	const char *argv[] = { UZCLIENT_PATH, "reserve", smib, sn, NULL };
	int status;

	snprintf(smib, sizeof(smib), "%u", mib);
	snprintf(sn, sizeof(sn), "%u", n);
	DH_ASSERT(setenv("UZSWAP_SOCKET", dmn.sock, 1) == 0, "setenv");
	status = dh_run(argv, cred, NULL, out, sizeof(out), err, sizeof(err),
			RUN_MS);
	DH_ASSERT(dh_exited_ok(status), "uzclient reserve: %s: %s",
		  dh_status_str(status), err);
}

/* The pager's "alloc none @mib" must be refused for lack of room. */
static void alloc_refused(struct dh_client *c, unsigned int mib)
{
	char reply[256];

	pager_do(c, reply, sizeof(reply), "alloc none %u", mib);
	DH_ASSERT(strstr(reply, "fail alloc") &&
		  strstr(reply, strerror(ENOSPC)), "alloc %u MiB: %s", mib,
		  reply);
}

/*****************
 * sparse
 *****************/

START_TEST(test_untouched_regions_cost_nothing)
{
	unsigned int mib = sparse_mib(), k[SPARSE_REGIONS], i;
	unsigned long long npages = mib * MIB / 4096;
	struct dmem before, after, touched;
	struct dh_client c;
	struct pstats st;

	dh_up_locked(&dmn, NULL);
	pager_start(&dmn, &c);
	daemon_mem(&before);
	for (i = 0; i < SPARSE_REGIONS; i++)
		k[i] = pager_alloc(&c, "none", mib);
	daemon_mem(&after);
	fprintf(stderr, "limits: %u x %u MiB registered: daemon VmRSS %lld -> "
		"%lld KiB, Locked %lld -> %lld KiB, VmLck %lld -> %lld KiB\n",
		SPARSE_REGIONS, mib, before.rss, after.rss, before.locked,
		after.locked, before.vmlck, after.vmlck);
	DH_ASSERT(after.rss - before.rss < GROWTH_KIB, "daemon VmRSS grew "
		  "by %lld KiB", after.rss - before.rss);
	DH_ASSERT(after.locked - before.locked < GROWTH_KIB, "daemon Locked "
		  "grew by %lld KiB", after.locked - before.locked);

	for (i = 0; i < SPARSE_REGIONS; i++) {
		pager_ok(&c, "touch %u 0 64", k[i]);
		pager_ok(&c, "touch %u %llu 64", k[i], npages / 2);
		pager_ok(&c, "touch %u %llu 1", k[i], npages - 1);
	}
	pager_stats(&c, &st);
	DH_ASSERT_EQ(st.regions, SPARSE_REGIONS);
	DH_ASSERT(st.resident >= SPARSE_REGIONS * 129 * 4096ull,
		  "resident %llu", (unsigned long long)st.resident);
	pager_ok(&c, "cold %u", k[0]);
	pager_stats(&c, &st);
	DH_ASSERT(st.stored >= 129, "stored %llu after COLD",
		  (unsigned long long)st.stored);
	pager_ok(&c, "willneed %u", k[0]);
	for (i = 0; i < SPARSE_REGIONS; i++) {
		pager_ok(&c, "touched %u 0 64", k[i]);
		pager_ok(&c, "touched %u %llu 64", k[i], npages / 2);
		pager_ok(&c, "touched %u %llu 1", k[i], npages - 1);
	}
	daemon_mem(&touched);
	DH_ASSERT(touched.rss - before.rss < GROWTH_KIB, "daemon VmRSS grew "
		  "by %lld KiB", touched.rss - before.rss);
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

/*****************
 * caps
 *****************/

START_TEST(test_registered_limit)
{
	struct dh_client c;
	char line[512];

	dh_up(&dmn, NULL);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 8);
	reload_with("[budget]\nregistered-limit = 64M\n", 1);
	pager_alloc(&c, "none", 48);
	alloc_refused(&c, 16);
	DH_ASSERT(dh_log_find(&dmn, "REGISTER refused", line, sizeof(line)) &&
		  strstr(line, "would exceed registered-limit"), "log: %s",
		  line);
	/* the cap counts every client */
	reserve_as(NULL, 8, 2);
	DH_ASSERT(!strcmp(out, "allocated 1\nrefused: No space left on "
			  "device\n"), "reserve: %s", out);
	pager_ok(&c, "verify all");
	/* a reload lifts it */
	reload_with("[budget]\nregistered-limit = none\n", 2);
	pager_alloc(&c, "none", 16);
	pager_ok(&c, "verify 0");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

START_TEST(test_user_registered_limit)
{
	struct dh_cred nobody = { NOBODY, NOBODY, NULL, 0 };
	struct dh_client c;
	char line[512];

	dh_up(&dmn, NULL);
	dh_open_socket(&dmn, 0666);
	pager_start(&dmn, &c);
	pager_alloc(&c, "text", 24);
	reload_with("[budget]\nuser-registered-limit = 32M\n", 1);
	alloc_refused(&c, 16);
	DH_ASSERT(dh_log_find(&dmn, "REGISTER refused", line, sizeof(line)) &&
		  strstr(line, "would exceed user-registered-limit"),
		  "log: %s", line);
	/* another process of the same user shares the cap */
	reserve_as(NULL, 16, 1);
	DH_ASSERT(!strcmp(out, "allocated 0\nrefused: No space left on "
			  "device\n"), "reserve as root: %s", out);
	/* another user has a cap of its own */
	reserve_as(&nobody, 16, 3);
	DH_ASSERT(!strcmp(out, "allocated 2\nrefused: No space left on "
			  "device\n"), "reserve as nobody: %s", out);
	pager_ok(&c, "verify all");
	pager_quit(&c);
	dh_down(&dmn, NULL);
}
END_TEST

static Suite *limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc;

	/* a part of its own (check_limits_sparse): it measures the daemon's
	 * memory, which a ThreadSanitizer build cannot show */
	tc = ckpart_tcase(s, "sparse");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_untouched_regions_cost_nothing);

	tc = tcase_create("caps");
	tcase_set_timeout(tc, TIMEOUT_CASE);
	tcase_add_test(tc, test_registered_limit);
	tcase_add_test(tc, test_user_registered_limit);
	suite_add_tcase(s, tc);
	return s;
}

static const char *cannot_run(const char *part)
{
#ifdef __SANITIZE_THREAD__
	/* every read of a page table writes shadow memory: its RSS grows
	 * with what the daemon reads, untouched or not */
	return "ThreadSanitizer's shadow memory hides what the daemon's "
	       "tables cost";
#else
	return NULL;
#endif
}

int main(void)
{
	return dh_main_part("limits", limits_suite(), CKPART, cannot_run);
}
