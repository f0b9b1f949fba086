#!/usr/bin/env bash
# Walks the bad-input catalogue (catalogue.txt): runs each entry's byolctl command from a
# scratch copy of this folder and checks that it exits 1 with exactly one line on stderr that
# matches the expected message (* matches any text). Also checks that the catalogue keeps at
# least 30 entries with distinct names and distinct messages.
#   tests/bad-inputs/walk.sh BYOLCTL [NAME...]     (names: run only those entries)
set -uo pipefail
BYOLCTL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
only=" $* "
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$here/." "$tmp/"
cd "$tmp"

# The catalogue's commands say `byolctl`; an environment prefix (VAR=x byolctl ...) reaches
# the program through the function call.
byolctl() { "$BYOLCTL" "$@"; }

# A shell pattern for a message: its text quoted, each * left as a wildcard.
pattern() {
  local msg=$1 pat="" part
  while :; do
    part=${msg%%\**}
    pat+=$(printf '%q' "$part")
    [ "$part" = "$msg" ] && break
    pat+='*'
    msg=${msg#*\*}
  done
  printf '%s' "$pat"
}

declare -A names messages
total=0 failed=0
while IFS= read -r line; do
  [[ -z $line || $line == \#* ]] && continue
  name=${line%% | *}
  rest=${line#* | }
  cmd=${rest%% | *}
  want=${rest#* | }
  total=$((total + 1))
  if [ -n "${names[$name]:-}" ] || [ -n "${messages[$want]:-}" ]; then
    echo "FAIL $name: the name or the message repeats an earlier entry"
    failed=$((failed + 1))
  fi
  names[$name]=1
  messages[$want]=1
  [ "$only" != "  " ] && [[ $only != *" $name "* ]] && continue
  err=$(eval "$cmd" 2>&1 >/dev/null)
  rc=$?
  lines=$(printf '%s\n' "$err" | wc -l)
  if [ "$rc" -ne 1 ] || [ "$lines" -ne 1 ] || ! eval "[[ \$err == $(pattern "$want") ]]"; then
    printf 'FAIL %s (exit %s, %s lines)\n  command:  %s\n  expected: %s\n  got:      %s\n' \
      "$name" "$rc" "$lines" "$cmd" "$want" "$err"
    failed=$((failed + 1))
  else
    echo "ok   $name"
  fi
done <catalogue.txt

if [ "$total" -lt 30 ]; then
  echo "FAIL: the catalogue holds $total entries, fewer than 30"
  failed=$((failed + 1))
fi
echo "bad inputs: $total entries, $failed failed"
[ "$failed" -eq 0 ]
