#!/bin/sh
# check_layers.sh - uzswapd's dependencies point down (DESIGN.md "Layers",
# docs/architecture.md): every #include "x.h" in daemon/ names a module of
# the same layer or one below, and no include cycle runs through the data
# path (layers 0 to 3). A module is a .c and its .h; every module must be
# placed in a layer below, so that a new file says where it belongs.
#
# Layers, bottom up:
#   0  libc-level parts: the page state, logging, the LRU ring,
#      compressors, the write-back tier (its slot map, the backing
#      file and the NBD export) and its private-file checks,
#      HOST:PORT addresses, starting threads, taking a client's
#      descriptors back, the stable index of stored objects (dedup)
#   1  what holds pages: regions, uffd contexts, the store
#   2  the clients: the mm_slot registry, and the state directory
#      and the image at rest that describe them to a successor
#   3  the data path's threads and protocols: fault, load, evict, and
#      a successor's recovery of a region
#   4  the control plane, on the loop thread (cycles allowed here)
set -u
srcdir=${srcdir:-.}
dir="$srcdir/../daemon"
[ -d "$dir" ] || dir="$srcdir/daemon"
[ -d "$dir" ] || { echo "check_layers: no daemon/ beside $srcdir"; exit 99; }

LAYERS='
pagestate 0
log 0
lru 0
compress 0
backing 0
backing-io 0
backing-file 0
backing-nbd 0
privfile 0
addr 0
thread 0
adopt 0
dedup 0
uffdctx 1
region 1
store 1
registry 2
statedir 2
atrest 2
fault 3
load 3
evict 3
recover 3
conf 4
stats 4
ctl 4
client 4
drain 4
fork 4
reclaim 4
metrics 4
notify 4
uzswapd 4
takeover 4
work 4
main 4
'

for f in "$dir"/*.c "$dir"/*.h; do
	m=$(basename "$f")
	m=${m%.*}
	sed -n 's/^#include "\([a-z_0-9]*\)\.h".*/\1/p' "$f" | while read -r h; do
		[ "$h" = "$m" ] || [ "$h" = config ] || echo "$m $h"
	done
done | sort -u | awk -v layers="$LAYERS" '
BEGIN {
	n = split(layers, l, "\n")
	for (i = 1; i <= n; i++)
		if (split(l[i], kv, " ") == 2)
			layer[kv[1]] = kv[2]
	bad = 0
}
{
	from = $1; to = $2
	if (!(from in layer)) { unknown[from] = 1; next }
	if (!(to in layer)) { unknown[to] = 1; next }
	if (layer[to] > layer[from]) {
		printf "upward include: %s (layer %d) includes %s.h (layer %d)\n", \
			from, layer[from], to, layer[to]
		bad = 1
	}
	if (layer[from] < 4 && layer[to] == layer[from])
		reach[from, to] = 1
	mods[from] = 1; mods[to] = 1
}
END {
	for (m in unknown) {
		printf "daemon/%s is in no layer: add it to tests/check_layers.sh\n", m
		bad = 1
	}
	for (k in mods) for (i in mods) if (reach[i, k])
		for (j in mods) if (reach[k, j]) reach[i, j] = 1
	for (m in mods) if (reach[m, m]) {
		printf "include cycle in the data path through %s\n", m
		bad = 1
	}
	exit bad
}'
