#!/bin/sh
# check_install.sh - `./configure --prefix=DIR && make install` writes
# nothing outside DIR (issue 15: the unit, udev, sysusers and tmpfiles
# directories used to come from pkg-config as absolute system paths):
# configures the source tree afresh with a private prefix in a temporary
# directory, installs its data (every file that is not a compiled
# program or library: units, rules, configuration, man pages, headers,
# completions, monitoring files; programs and libraries go under prefix
# by automake's own defaults) into a DESTDIR, and checks that
#  1. every file installed lies under DESTDIR/PREFIX;
#  2. the files other programs look for are there, under the prefix
#     (the unit names PREFIX/sbin/uzswapd);
#  3. `make uninstall` removes every file it installed.
# `make distcheck` covers the compiled part (its prefix is private too).
set -u
top_srcdir=${top_srcdir:-..}
top_srcdir=$(cd "$top_srcdir" && pwd)
[ -x "$top_srcdir/configure" ] ||
	{ echo "check_install: no configure in $top_srcdir"; exit 99; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
dest="$tmp/dest"
mkdir "$tmp/build" || exit 99

fail() {
	echo "check_install: FAIL: $*"
	exit 1
}

(cd "$tmp/build" && "$top_srcdir/configure" -q --prefix="$prefix" \
	>"$tmp/configure.log" 2>&1) ||
	{ cat "$tmp/configure.log"; fail "configure --prefix=$prefix failed"; }
# installdirs first: make uninstall enters the programs' directories too.
{ make -s -C "$tmp/build" installdirs DESTDIR="$dest" &&
	make -s -C "$tmp/build" install-data DESTDIR="$dest"; } \
	>"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install-data failed"; }

outside=$(cd "$dest" && find . ! -type d | sed 's|^\.||' |
	grep -v "^$prefix/")
[ -z "$outside" ] || fail "installed outside --prefix=$prefix:
$outside"

for f in lib/systemd/system/uzswapd.service lib/systemd/system/uzswapd.socket \
	lib/udev/rules.d/60-uzswap.rules lib/sysusers.d/uzswap.conf \
	lib/tmpfiles.d/uzswap.conf etc/uzswap/uzswapd.conf \
	share/man/man8/uzswapd.8 include/uzswap.h lib/pkgconfig/uzswap.pc \
	share/bash-completion/completions/uzswapctl \
	share/bash-completion/completions/uzswap-run \
	share/uzswap/monitoring/uzswap.rules.yml \
	share/uzswap/monitoring/uzswap-dashboard.json \
	share/doc/uzswap/operations.md share/man/man3/uzswap_alloc.3; do
	[ -f "$dest$prefix/$f" ] || fail "not installed: PREFIX/$f"
done
grep -qx "ExecStart=$prefix/sbin/uzswapd.*" \
	"$dest$prefix/lib/systemd/system/uzswapd.service" ||
	fail "uzswapd.service does not start $prefix/sbin/uzswapd:
$(grep ExecStart= "$dest$prefix/lib/systemd/system/uzswapd.service")"

make -s -C "$tmp/build" uninstall DESTDIR="$dest" >"$tmp/uninstall.log" 2>&1 ||
	{ cat "$tmp/uninstall.log"; fail "make uninstall failed"; }
left=$(cd "$dest" && find . ! -type d)
[ -z "$left" ] || fail "left behind by make uninstall:
$left"
echo "check_install: a --prefix install stays under its prefix"
