/*
 * notify.h - uzswapd and systemd: the sd_notify() messages of a
 * Type=notify service (READY, STATUS with live counts, RELOADING,
 * STOPPING) and the watchdog, pinged only while every fault thread answers
 * its heartbeat. Without $NOTIFY_SOCKET every call is a cheap no-op.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_NOTIFY_H
#define UZSWAPD_NOTIFY_H

struct uzswapd;

/* Startup is complete: READY=1, MAINPID, and a first STATUS; warns if
 * the watchdog timeout is too short for the one-second tick. */
void notify_ready(struct uzswapd *d);

/* A reload begins (RELOADING=1 with MONOTONIC_USEC) / ends (READY=1; a
 * failed one, @error, stays in STATUS until a reload succeeds). */
void notify_reloading(void);
void notify_reloaded(struct uzswapd *d, const char *error);

/* Shutdown begins: STOPPING=1. */
void notify_stopping(void);

/*
 * notify_tick() - once a second from the loop thread: when systemd set a
 * watchdog, WATCHDOG=1 if every fault thread answered the previous
 * heartbeat (else an error line, once, and a note in STATUS); STATUS with
 * live counts if it changed; then a new heartbeat. O(clients).
 */
void notify_tick(struct uzswapd *d);

#endif /* UZSWAPD_NOTIFY_H */
