/*
 * run-exit.h - the exit statuses of a program run under uzswap that are
 * uzswap's, not the program's: those of uzswap-run(1), and the one the
 * preload library (libuzswap-preload.so) exits with when UZSWAP_REQUIRE=1
 * and the daemon cannot be reached. Listed in uzswap-run(1).
 *
 * Private to uzswap: uzswap-run and the preload library include it, so
 * that each status is written once. UZSWAP_RUN_NO_DAEMON is also
 * libuzswap's UZSWAP_FORK_EXIT (uzswap.h), the status of a fork()'s child
 * that cannot have its copy of the heap: one status for "uzswapd was
 * needed and could not be had". They sit just below the shell's
 * 126 and 127 (found but not executable, not found: uzswap-run uses them
 * as env(1) does), where programs seldom put their own statuses.
 */
#ifndef UZSWAP_RUN_EXIT_H
#define UZSWAP_RUN_EXIT_H

enum uzswap_run_exit {
	UZSWAP_RUN_NO_DAEMON = 121,	/* UZSWAP_REQUIRE=1 (--require) and
					 * uzswapd cannot be reached */
	UZSWAP_RUN_UNREACHABLE = 122,	/* the preload library cannot reach
					 * the program: static, setuid,
					 * file capabilities, Go, 32-bit or
					 * another machine */
	UZSWAP_RUN_ERROR = 125,		/* uzswap-run's own error: usage, a
					 * bad size, no preload library */
	UZSWAP_RUN_CANNOT_EXEC = 126,	/* the program was found but cannot
					 * be executed */
	UZSWAP_RUN_NOT_FOUND = 127,	/* the program was not found */
};

#endif /* UZSWAP_RUN_EXIT_H */
