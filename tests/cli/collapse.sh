#!/usr/bin/env bash
# The collapse monitor end to end (README "Is my run healthy?"): a run that collapses for real
# (tests/collapse.cfg: SGD with weight decay 1.0 on Fashion-MNIST shrinks the encoder until
# every image gets the same projection, while the loss falls) warns once, within 200 steps,
# with the projection std in the metrics file and the effective rank at each kNN check; with
# train.stop_on_collapse = true it ends with exit status 1, the message and a checkpoint of the
# step it stopped at.
set -euo pipefail
byolctl=$1
cfg=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"

if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "SKIP: dataset-fashion-mnist is not installed (scripts/deps.sh installs it)"; exit 0
fi
fail() { echo "FAIL: $*"; exit 1; }

# 1. The warning: one line, once, at a step <= 200; the run goes on to its end.
"$byolctl" run "$cfg" --set train.checkpoint_dir=\""$tmp/ck"\" --set metrics.file=\""$tmp/m.csv"\" \
  > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/out" "$tmp/err"; fail "the collapsing run failed"; }
cat "$tmp/err"
n=$(grep -c 'collapse: projection std' "$tmp/err" || true)
[ "$n" -eq 1 ] || fail "expected one collapse warning, got $n"
grep -qE '^byol: warning: collapse: projection std [0-9.e+-]+ \(healthy ≈ 0\.18\) for 50 steps \(to step [0-9]+\) — lower the learning rate' "$tmp/err" ||
  fail "the warning's wording"
at=$(sed -n 's/.*(to step \([0-9]*\)).*/\1/p' "$tmp/err")
[ "$at" -le 200 ] || fail "warned at step $at, after step 200"
grep -q '^training complete$' "$tmp/out" || fail "the run did not go on to its end"
# The metrics: proj_std every step (below the threshold, 0.2 / sqrt(32), for the 50 steps up to
# the warning), eff_rank and knn_top1 at the kNN check of step 100 (eval.every = 100; the last
# step's kNN is the run's closing evaluation, which is not a metrics row).
head -1 "$tmp/m.csv" | grep -qx 'step,loss,lr,tau,images_per_s,elapsed_s,knn_top1,proj_std,eff_rank' ||
  fail "metrics header: $(head -1 "$tmp/m.csv")"
awk -F, -v at="$at" 'NR > 1 && $1 > at - 50 && $1 <= at && !($8 < 0.2 / sqrt(32)) { bad = 1 }
  NR > 1 && $8 == "" { bad = 1 }
  NR > 1 && ($1 == 100) != ($9 != "") { bad = 1 }
  NR > 1 && $9 != "" && !($9 >= 0 && $9 <= 16) { bad = 1 }
  END { exit bad }' "$tmp/m.csv" || fail "metrics rows: $(sed -n '2p;101p;201p' "$tmp/m.csv")"
echo "first rows:"; sed -n '2p;3p' "$tmp/m.csv"
echo "at the warning:"; grep "^$at," "$tmp/m.csv"
echo "kNN checks:"; awk -F, '$9 != "" && NR > 1' "$tmp/m.csv"

# 2. stop_on_collapse: exit 1, the message naming the checkpoint, which is the latest.
set +e
"$byolctl" run "$cfg" --set train.checkpoint_dir=\""$tmp/ck2"\" --set metrics.file=\""$tmp/m2.csv"\" \
  --set train.stop_on_collapse=true --set eval.every=0 > "$tmp/out2" 2> "$tmp/err2"
rc=$?
set -e
cat "$tmp/err2"
[ "$rc" -eq 1 ] || fail "stop_on_collapse: exit status $rc, not 1"
[ "$(wc -l < "$tmp/err2")" -eq 1 ] || fail "stop_on_collapse: not one line on stderr"
grep -qE "^byolctl: .*collapse.cfg: step $at: collapse: projection std .* the run stopped \(train.stop_on_collapse = true\): the last checkpoint is .*/ck2/step-$at.safetensors$" "$tmp/err2" ||
  fail "stop_on_collapse: the message"
[ -s "$tmp/ck2/step-$at.safetensors" ] && cmp -s "$tmp/ck2/step-$at.safetensors" "$tmp/ck2/latest.safetensors" ||
  fail "stop_on_collapse: no checkpoint of step $at as latest"
[ "$(tail -1 "$tmp/m2.csv" | cut -d, -f1)" = "$at" ] || fail "stop_on_collapse: the metrics' last row"
echo "collapse monitor: warned and stopped at step $at: ok"
