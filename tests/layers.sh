#!/usr/bin/env bash
# The core's layers call only downward (core/README.md): each object file's layer is its
# folder, and no object may use a symbol that an object of a higher layer defines. The calls
# that still run upward are listed in tests/layers-allowed.txt ("object symbol" per line) until
# they are cut; an entry that no longer occurs fails too, so the list only shrinks.
# Usage: layers.sh <the byol target's object folder> <allowed list>
set -euo pipefail
objdir=$1
allowed=$2
layers=(runtime io nn data learner eval train host)

rank() { # layer name -> its place, bottom = 0
  for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo "layers.sh: unknown layer $1" >&2; exit 2
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Defined symbols: "symbol rank".
for l in "${layers[@]}"; do
  [ -d "$objdir/$l" ] || { echo "FAIL: no objects for layer $l in $objdir"; exit 1; }
  r=$(rank "$l")
  for o in "$objdir/$l"/*.o; do
    nm --defined-only "$o" | awk -v r="$r" '$2 ~ /^[TDBR]$/ {print $3, r}'
  done
done | sort -u > "$tmp/defined"
# Upward uses: "object symbol".
for l in "${layers[@]}"; do
  r=$(rank "$l")
  for o in "$objdir/$l"/*.o; do
    name="$l/$(basename "$o" .o)"
    nm --undefined-only "$o" | awk '{print $2}' | sort -u |
      join - "$tmp/defined" | awk -v r="$r" -v n="$name" '$2 > r {print n, $1}'
  done
done | sort -u > "$tmp/upward"
awk '!/^#/ && NF' "$allowed" | sort -u > "$tmp/allowed"
new=$(comm -23 "$tmp/upward" "$tmp/allowed")
gone=$(comm -13 "$tmp/upward" "$tmp/allowed")
[ -z "$new" ] || { echo "FAIL: calls that run up a layer:"; echo "$new"; }
[ -z "$gone" ] || { echo "FAIL: allowed upward calls that no longer occur (remove them):"; echo "$gone"; }
[ -z "$new" ] && [ -z "$gone" ] || exit 1
echo "ok: $(wc -l < "$tmp/defined") symbols in ${#layers[@]} layers; $(wc -l < "$tmp/allowed") known upward calls, no new ones"
