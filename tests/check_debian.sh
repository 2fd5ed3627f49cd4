#!/bin/sh
# check_debian.sh - debian/ (the Debian packages scripts/package builds)
# stays in step with the tree, checked without building a package:
#  1. debian/libuzswap0.symbols lists exactly the symbols of
#     lib/client/uzswap.map, each in its node (NAME@NODE, the nodes
#     themselves included, as dpkg-gensymbols lists them), with one version
#     per node, never lower than an older node's and never past the
#     release debian/changelog packages: a function added to the map
#     without its entry fails here, not only in the package build
#     (dpkg-gensymbols -c4);
#  2. debian/changelog packages the release configure.ac says;
#  3. every file `make install` puts under the system prefix is taken by
#     exactly one debian/PACKAGE.install line or listed in
#     debian/not-installed, and every .install line takes something: what
#     dh_install and dh_missing would say when the package is built.
#     Needs a build configured as scripts/setup does (--prefix=/usr
#     --sysconfdir=/etc); other builds skip this part.
# SKIP (77) without debian/ (a dist tarball: debian/ is not distributed).
set -u
top_srcdir=${top_srcdir:-..}
top_builddir=${top_builddir:-..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
debian=$top_srcdir/debian
[ -d "$debian" ] || { echo "check_debian: no debian/ in $top_srcdir: skipped"; exit 77; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
status=0

fail() {
	echo "check_debian: FAIL: $*"
	status=1
}

# 1. The symbols file against the version script.
map=$top_srcdir/lib/client/uzswap.map
awk '/^[A-Za-z0-9_.]+[ \t]*\{/ { node = $1; global = 0; print node "@" node; next }
	/^[ \t]*global:/ { global = 1; next }
	/^[ \t]*local:/ { global = 0; next }
	/^}/ { node = ""; next }
	node != "" && global && /;/ { gsub(/[ \t;]/, ""); print $0 "@" node }' \
	"$map" >"$tmp/map"
awk '/^ / { print $1, $2 }' "$debian/libuzswap0.symbols" >"$tmp/symbols"
cut -d' ' -f1 "$tmp/symbols" | sort >"$tmp/listed"
sort "$tmp/map" >"$tmp/exported"
missing=$(comm -23 "$tmp/exported" "$tmp/listed")
[ -z "$missing" ] || fail "in uzswap.map, not in debian/libuzswap0.symbols:
$missing"
extra=$(comm -13 "$tmp/exported" "$tmp/listed")
[ -z "$extra" ] || fail "in debian/libuzswap0.symbols, not in uzswap.map:
$extra"

release=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top_builddir/config.h")
packaged=$(sed -n '1s/^uzswap (\([^)]*\)).*/\1/p' "$debian/changelog")
[ "${packaged%-*}" = "$release" ] ||
	fail "debian/changelog packages ${packaged:-nothing} (its first line), configure.ac says release $release: add an entry (dch -v $release-1)"

previous=0
awk '/^[A-Za-z0-9_.]+[ \t]*\{/ { print $1 }' "$map" >"$tmp/nodes"
while read -r node; do
	versions=$(awk -v n="$node" '$1 ~ "@" n "$" { print $2 }' "$tmp/symbols" | sort -u)
	[ -n "$versions" ] || continue
	if [ "$(echo "$versions" | wc -l)" -gt 1 ]; then
		fail "debian/libuzswap0.symbols: $node has more than one version: $(echo "$versions" | paste -s -d ' ' -)"
		continue
	fi
	dpkg --compare-versions "$versions" ge "$previous" ||
		fail "debian/libuzswap0.symbols: $node's version $versions is lower than an older node's ($previous)"
	dpkg --compare-versions "$versions" le "$release" ||
		fail "debian/libuzswap0.symbols: $node's version $versions is past the release packaged ($release)"
	previous=$versions
done <"$tmp/nodes"

# 3. What `make install` makes against what the packages take.
setting() { sed -n "s|^$1 = ||p" "$top_builddir/Makefile"; }
if [ "$(setting prefix)" != /usr ] || [ "$(setting sysconfdir)" != /etc ]; then
	echo "check_debian: install coverage skipped: this build's prefix is $(setting prefix), sysconfdir $(setting sysconfdir), not /usr and /etc"
	[ "$status" -eq 0 ] && echo "check_debian: symbols and version agree with the tree"
	exit $status
fi
root=$tmp/root
make -s -C "$top_builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install DESTDIR=$root failed"; exit 1; }
# debian/ names the multiarch library directory; this build's is where
# libuzswap went.
libdir=$(cd "$root" && find . -name libuzswap.so.0 | sed 's|^\./||; s|/libuzswap\.so\.0$||')
(cd "$root" && find . ! -type d | sed 's|^\./||' | sort) >"$tmp/installed"

# Prints the files under $root that the first fields of the lines of
# debian/FILE name (dh_install's globs: a directory takes all under it),
# each after the package name; a line that names nothing is reported.
claimed() { # PACKAGE FILE MUST-MATCH
	sed 's/#.*//' "$debian/$2" | awk 'NF { print $1 }' |
		sed "s|usr/lib/\${DEB_HOST_MULTIARCH}|$libdir|" |
		while read -r pattern; do
			found=0
			# shellcheck disable=SC2086
			for match in $(cd "$root" && echo $pattern); do
				[ -e "$root/$match" ] || [ -L "$root/$match" ] || continue
				found=1
				(cd "$root" && find "$match" ! -type d) | sed "s|^|$1 |"
			done
			[ "$found" -eq 1 ] || [ "$3" = no ] ||
				echo "NOMATCH debian/$2: $pattern"
		done
}
for f in "$debian"/*.install; do
	pkg=$(basename "$f" .install)
	claimed "$pkg" "$pkg.install" yes
done >"$tmp/claimed"
claimed not-installed not-installed no >>"$tmp/claimed"
nomatch=$(sed -n 's/^NOMATCH //p' "$tmp/claimed")
[ -z "$nomatch" ] || fail "names nothing make install makes (dh_install would fail):
$nomatch"
twice=$(grep -v '^NOMATCH ' "$tmp/claimed" | sort -u | cut -d' ' -f2 | sort | uniq -d)
[ -z "$twice" ] || fail "taken by two packages:
$twice"
grep -v '^NOMATCH ' "$tmp/claimed" | cut -d' ' -f2 | sort -u >"$tmp/covered"
unpackaged=$(comm -23 "$tmp/installed" "$tmp/covered")
[ -z "$unpackaged" ] || fail "installed by make install, in no package (add it to a debian/PACKAGE.install, or to debian/not-installed; dh_missing would fail):
$unpackaged"

[ "$status" -eq 0 ] &&
	echo "check_debian: symbols, version and the packages' files agree with the tree ($(wc -l <"$tmp/installed") files installed)"
exit $status
