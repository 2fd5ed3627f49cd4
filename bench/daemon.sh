# daemon.sh - the process handling the bench/run-* shell scripts share,
# sourced by them (". DIR/daemon.sh"): whether a child still runs, a
# bounded wait for it to come up, and stopping it by its pid. Messages
# start with "$me: " (the sourcing script sets me to its name). POSIX sh.
#
# Every wait is bounded: a server that is not up after 10 s, or not gone
# 5 s after SIGTERM, is reported (and killed).
# shellcheck shell=sh

: "${me:?set me to the name of the script before sourcing daemon.sh}"

# alive PID: PID runs (a zombie child still answers kill -0: not alive).
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) ||
		return 0
	[ "$state" != Z ]
}

# wait_up TEST PATH PID LOG WHAT: wait until [ TEST PATH ] holds (-S: a
# socket is bound; -s: a pidfile is written), at most 10 s, while PID
# runs. On failure, say that WHAT did not come up, show LOG, return 1.
wait_up() {
	i=0
	while ! test "$1" "$2"; do
		if ! alive "$3" || [ "$i" -ge 100 ]; then
			echo "$me: $5 did not come up; its log:" >&2
			cat "$4" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# stop PID WHAT: SIGTERM, SIGKILL after 5 s (saying so), and reap it.
stop() {
	kill -TERM "$1" 2>/dev/null
	i=0
	while alive "$1" && [ "$i" -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if alive "$1"; then
		echo "$me: $2 ($1) ignored SIGTERM, killing it" >&2
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
}

# need PROG...: each is an executable file; else say where to run from.
need() {
	for prog in "$@"; do
		if [ ! -x "$prog" ]; then
			echo "$me: $prog not found; run me from the build" \
				"tree's bench/ directory after make" >&2
			exit 1
		fi
	done
}
