/*
 * notify.c - the sd_notify() side of uzswapd (see notify.h). systemd
 * learns that the daemon is ready once the control socket and the fault
 * threads are up, sees live counts in `systemctl status`, follows reloads,
 * and restarts the daemon if a fault thread stops answering: the watchdog
 * is pinged from the loop thread only when every fault thread answered
 * the heartbeat sent one tick before (fault_heartbeat()), so a stuck
 * fault path, the one thing clients cannot live without, is noticed even
 * while the loop itself runs fine.
 *
 * STATUS= is sent when its text changes, not every tick: each message
 * wakes the service manager. It carries the live counts, and also what an
 * operator must see in `systemctl status`: a reload that failed (until the
 * next one succeeds) and a fault thread that does not answer.
 *
 * Every function runs on the loop thread; each costs one datagram at most
 * and notify_tick() one stats_snapshot() (O(clients)).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "notify.h"
#include "stats.h"
#include "uzswapd.h"

/* The tick that pings the watchdog runs once a second: a watchdog timeout
 * shorter than two ticks would fire between two pings. */
#define NOTIFY_TICK_USEC	1000000ull

/* Loop thread only. */
static struct {
	char status[512];	/* the last STATUS= text sent */
	char reload_error[256];	/* the last reload's error; "" if it worked */
	bool stuck;		/* a fault thread missed a heartbeat */
} ns;

/* Send STATUS= with the live counts, if its text changed. */
static void notify_status(struct uzswapd *d)
{
	struct proto_status_reply r;
	struct stats_snapshot s;
	char text[sizeof(ns.status)];
	int n;

	if (!getenv("NOTIFY_SOCKET"))
		return;
	stats_snapshot(d, &s);
	stats_status(&s, &r);
	n = snprintf(text, sizeof(text),
		     "%llu clients, %llu MiB resident, %llu pages stored in "
		     "%llu MiB, %.0f faults/s",
		     (unsigned long long)r.clients,
		     (unsigned long long)(r.resident_bytes >> 20),
		     (unsigned long long)r.stored_pages,
		     (unsigned long long)(r.pool_bytes >> 20),
		     (double)r.fault_rate_milli / 1000.0);
	if (n > 0 && (size_t)n < sizeof(text) && ns.stuck)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "; a fault thread does not answer");
	if (n > 0 && (size_t)n < sizeof(text) && ns.reload_error[0])
		snprintf(text + n, sizeof(text) - (size_t)n,
			 "; reload failed, old configuration kept: %s",
			 ns.reload_error);
	if (!strcmp(text, ns.status))
		return;
	memcpy(ns.status, text, sizeof(text));
	sd_notifyf(0, "STATUS=%s", text);
}

void notify_ready(struct uzswapd *d)
{
	uint64_t usec;

	sd_notifyf(0, "READY=1\nMAINPID=%d", (int)getpid());
	notify_status(d);
	if (sd_watchdog_enabled(0, &usec) > 0) {
		if (usec < 2 * NOTIFY_TICK_USEC)
			log_warn("main", "the systemd watchdog timeout "
				 "(%llu ms) is shorter than two ticks of the "
				 "loop (2 s): set WatchdogSec=2s or more",
				 (unsigned long long)(usec / 1000));
		else
			log_debug("main", "systemd watchdog: %llu ms, pinged "
				  "while the fault threads answer",
				  (unsigned long long)(usec / 1000));
	}
}

void notify_reloading(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now.tv_sec * 1000000ull +
			   (unsigned long long)now.tv_nsec / 1000u);
}

void notify_reloaded(struct uzswapd *d, const char *error)
{
	snprintf(ns.reload_error, sizeof(ns.reload_error), "%s",
		 error ? error : "");
	sd_notify(0, "READY=1");
	notify_status(d);
}

void notify_stopping(void)
{
	snprintf(ns.status, sizeof(ns.status), "stopping");
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void notify_tick(struct uzswapd *d)
{
	bool watchdog = sd_watchdog_enabled(0, NULL) > 0;

	if (watchdog) {
		if (fault_threads_alive(d->faults)) {
			sd_notify(0, "WATCHDOG=1");
			if (ns.stuck)
				log_info("main", "every fault thread answers "
					 "again: the watchdog is pinged");
			ns.stuck = false;
		} else if (!ns.stuck) {
			log_err("main", "a fault thread does not answer: the "
				"watchdog is no longer pinged");
			ns.stuck = true;
		}
	}
	notify_status(d);
	if (watchdog)
		fault_heartbeat(d->faults);
}
