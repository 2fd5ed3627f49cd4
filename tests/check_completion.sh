#!/bin/bash
# check_completion.sh - the bash completion of uzswapctl and uzswap-run
# (cli/completion/), run by a real bash with bash-completion's helpers as
# an interactive shell has them: each case sets COMP_WORDS and COMP_CWORD
# as bash would for a line, calls the completion function, and compares
# COMPREPLY with what must be offered:
#  - the commands, the options anywhere on the line, the columns of -o
#    (after a comma, after +), all read from the --help of the uzswapctl
#    built here;
#  - the pids of the clients for client, reclaim and set-limit, asked of
#    the socket given on the line: the first word is a stand-in for
#    uzswapctl that answers `clients -n -o PID` itself (no daemon needed)
#    and runs the real one for everything else;
#  - uzswap-run's options, then the program (bash's _command_offset).
# SKIP (77) without bash-completion. Writes only into a temporary
# directory, removed at the end.
set -u
top_srcdir=${top_srcdir:-..}
top_builddir=${top_builddir:-..}
helpers=/usr/share/bash-completion/bash_completion
[ -r "$helpers" ] || { echo "check_completion: no $helpers: skipped"; exit 77; }
ctl=$(cd "$top_builddir/cli" && pwd)/uzswapctl
run=$(cd "$top_builddir/cli" && pwd)/uzswap-run
[ -x "$ctl" ] && [ -x "$run" ] ||
	{ echo "check_completion: no $ctl or $run"; exit 99; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# The stand-in: records the arguments of the pid query, lists two pids.
cat >"$tmp/uzswapctl" <<EOF
#!/bin/sh
case " \$* " in
*" clients -n -o PID "*)
	printf '%s\n' "\$*" >"$tmp/asked"
	printf '  4242\n 31337\n' ;;
*)
	exec "$ctl" "\$@" ;;
esac
EOF
chmod +x "$tmp/uzswapctl"

# shellcheck source=/dev/null
. "$helpers"
# shellcheck source=../cli/completion/uzswapctl
. "$top_srcdir/cli/completion/uzswapctl"
# shellcheck source=../cli/completion/uzswap-run
. "$top_srcdir/cli/completion/uzswap-run"

failed=0
fail() {
	echo "check_completion: FAIL: $*"
	failed=1
}

# complete FUNCTION WORD... : COMPREPLY for the line of the words, the
# cursor at the end of the last one (sorted, one line, in $got).
complete_line() {
	local fn=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" \
		"${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
	got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
	got=${got% }
}

# expect "WANT" WORD... : the completion of the line is exactly WANT.
expect() {
	local want=$1
	shift
	complete_line _uzswapctl "$@"
	[ "$got" = "$want" ] || fail "'$*': '$got', expected '$want'"
}

# offers WORD WORDS... : the completion of the line includes WORD.
offers() {
	local want=$1
	shift
	complete_line "$@"
	case " $got " in
	*" $want "*) ;;
	*) fail "'${*:2}': '$got' lacks '$want'" ;;
	esac
}

u=$tmp/uzswapctl
sock=$tmp/uzswapd.sock

# commands: every one of --help's, and only those
expect "client clients compact drain reclaim reload set-limit status top version" "$u" ""
expect "status" "$u" st
expect "set-limit" "$u" --json set
# options, before or after the command
expect "--json" "$u" status --js
expect "--output --output-all" "$u" --out
expect "--iterations" "$u" top --it
# columns: the command's, after a comma or a +
expect "PID,RATIO PID,REGIONS PID,REGISTERED PID,RESIDENT" "$u" clients -o PID,R
expect "+POOL-RATIO" "$u" status -o +POOL-R
expect "FAULTS/S" "$u" top -n --output FAULTS/
# pids of the socket given on the line, as --socket PATH or --socket=PATH
rm -f "$tmp/asked"
expect "31337 4242" "$u" --socket "$sock" client ""
grep -q -- "--socket $sock clients -n -o PID" "$tmp/asked" 2>/dev/null ||
	fail "the pids were not asked of $sock: $(cat "$tmp/asked" 2>&1)"
rm -f "$tmp/asked"
expect "4242" "$u" reclaim -s "$sock" 42
grep -q -- "$sock" "$tmp/asked" 2>/dev/null ||
	fail "reclaim: the pids were not asked of $sock"
expect "31337 4242" "$u" --socket="$sock" set-limit ""
# no pid where none goes: after --default, after the pid
expect "" "$u" set-limit --default ""
expect "" "$u" set-limit 4242 ""
expect "" "$u" status ""

# uzswap-run: its options, then the program
offers --limit _uzswap_run "$run" --li
offers --require _uzswap_run "$run" --limit 1G --re
offers true _uzswap_run "$run" --limit 1G tru
offers true _uzswap_run "$run" -- tru

[ "$failed" = 0 ] || exit 1
echo "check_completion: uzswapctl and uzswap-run complete as they should"
