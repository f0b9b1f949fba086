#!/usr/bin/env bash
# scripts/accuracy-curve.sh on a short run of a tiny encoder: one CSV row per kept step-N
# checkpoint and the random init, in step order, with the run's minutes from its metrics file
# and accuracies in %, written into a folder it makes; the picture when gnuplot is there; a one-line error (exit 1) for a run
# that kept no checkpoints and for a config that does not load, and no CSV left behind.
set -euo pipefail
export BYOLCTL=$1
script=$2
byolctl=$BYOLCTL
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh" # write_images, write_labels, tiny_model
fail() { echo "FAIL: $*"; exit 1; }
cd "$tmp"
write_images train.idx 24
write_labels train-labels.idx 24
write_images test.idx 12
# test labels that only partly follow the images: accuracies below 100%
printf '\x00\x00\x08\x01\x00\x00\x00\x0c\x00\x01\x02\x00\x02\x01\x01\x00\x02\x02\x01\x00' > test-labels.idx

{ tiny_model; cat <<'CFG'; } > curve.cfg
data = { images = "train.idx"; };
train = { steps = 6; batch_size = 4; checkpoint_every = 2; keep_checkpoints = 0; checkpoint_dir = "ck"; };
eval = { train_images = "train.idx"; train_labels = "train-labels.idx";
         test_images = "test.idx"; test_labels = "test-labels.idx"; knn_k = 5; };
metrics = { file = "ck/metrics.csv"; };
CFG
"$byolctl" run curve.cfg > run.log 2>&1 || { cat run.log; fail "run"; }
"$script" curve.cfg out/curve.png > curve.log 2> curve.err || { cat curve.log curve.err; fail "script"; }
cat out/curve.csv
[ "$(head -1 out/curve.csv)" = "step,minutes,linear,knn" ] || fail "header"
[ "$(tail -n +2 out/curve.csv | cut -d, -f1 | tr '\n' ' ')" = "0 2 4 6 " ] || fail "steps"
# every row: minutes >= 0 (0 at the random init, the metrics file's elapsed time after), and
# two accuracies in [0, 100] with two decimals, as byolctl eval prints them
awk -F, 'NR > 1 {
  if ($2 !~ /^[0-9]+\.?[0-9]*$/ || $1 == 0 && $2 != 0) exit 1
  for (c = 3; c <= 4; c++) if ($c !~ /^[0-9]+\.[0-9][0-9]$/ || $c > 100) exit 1
  if (NR > 2 && $2 < prev) exit 1; prev = $2 }' out/curve.csv || fail "a row is malformed"
for s in 2 4 6; do
  want=$(awk -F, -v s=$s '$1 == s { printf "%.2f", $6 / 60 }' ck/metrics.csv)
  [ "$(awk -F, -v s=$s '$1 == s { print $2 }' out/curve.csv)" = "$want" ] || fail "minutes at step $s"
done
# the accuracies are byolctl eval's own for that checkpoint
line=$("$byolctl" eval curve.cfg --checkpoint ck/step-4.safetensors --set eval.baseline=false | grep '^kNN')
knn=$(awk -F, '$1 == 4 { print $4 }' out/curve.csv)
lin=$(awk -F, '$1 == 4 { print $3 }' out/curve.csv)
echo "$line" | grep -qF "top-1: $knn%  linear probe top-1: $lin%" || fail "step 4: '$line' is not $knn / $lin"
if command -v gnuplot > /dev/null; then
  [ "$(head -c 4 out/curve.png | tail -c 3)" = "PNG" ] || fail "no PNG"
else
  [ ! -e out/curve.png ] && grep -q "gnuplot not found" curve.err || fail "no gnuplot, yet a picture"
fi

# a run that kept no step-N checkpoints; a config that does not load
sed 's/checkpoint_dir = "ck"/checkpoint_dir = "none-here"/' curve.cfg > empty.cfg
rc=0; "$script" empty.cfg e.png > /dev/null 2> err || rc=$?
[ $rc -eq 1 ] && [ "$(wc -l < err)" -eq 1 ] && grep -q 'empty.cfg: train.checkpoint_dir "none-here" holds no step-N' err ||
  { cat err; fail "no checkpoints: exit $rc"; }
printf 'seed = ;\n' > broken.cfg
rc=0; "$script" broken.cfg b.png > /dev/null 2> err || rc=$?
[ $rc -eq 1 ] && [ "$(wc -l < err)" -eq 1 ] && grep -q 'broken.cfg' err || { cat err; fail "broken config: exit $rc"; }
[ ! -e e.csv ] && [ ! -e b.csv ] || fail "a CSV was left by a failed call"
echo "ok"
