#!/usr/bin/env bash
# configs/default.cfg is a healthy run: over its first 200+ steps (of its 1000-step schedule,
# stopped with SIGTERM as a user's Ctrl-C would) the collapse monitor never warns, and the
# projection std stays well above the threshold (0.2 / sqrt(256) = 0.0125).
set -euo pipefail
byolctl=$1
cfg=$2
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "SKIP: dataset-fashion-mnist is not installed (scripts/deps.sh installs it)"; exit 0
fi
fail() { echo "FAIL: $*"; exit 1; }

"$byolctl" run "$cfg" --set train.checkpoint_dir=\""$tmp/ck"\" --set metrics.file=\""$tmp/m.csv"\" \
  --set eval.at_end=false > "$tmp/out" 2> "$tmp/err" &
pid=$!
# Header and 201 rows, then stop (the run ends after its current step, with a checkpoint).
while kill -0 "$pid" 2>/dev/null; do
  [ "$(wc -l < "$tmp/m.csv" 2>/dev/null || echo 0)" -ge 202 ] && { kill -TERM "$pid"; break; }
  sleep 1
done
wait "$pid" || true
pid=
rows=$(($(wc -l < "$tmp/m.csv") - 1))
[ "$rows" -ge 201 ] || { cat "$tmp/err"; fail "the run ended after $rows steps"; }
if grep -q 'collapse' "$tmp/err"; then cat "$tmp/err"; fail "a healthy run warned of collapse"; fi
awk -F, 'NR > 1 { if (min == "" || $7 < min) min = $7; if ($7 > max) max = $7; s += $7; n++ }
  END { printf "%d steps: projection std min %.4f, mean %.4f, max %.4f (healthy 1/sqrt(256) = 0.0625)\n",
        n, min, s / n, max; exit !(min > 0.025) }' "$tmp/m.csv" ||
  fail "the projection std came within 2x of the collapse threshold"
echo "configs/default.cfg: no collapse warning in $rows steps: ok"
