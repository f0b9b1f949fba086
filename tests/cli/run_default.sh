#!/usr/bin/env bash
# byolctl end to end: the README's default run, shortened with --set, trains and writes its
# checkpoint; bad command lines fail with one line naming the setting and exit 1.
set -euo pipefail
byolctl=$1
cfg=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache" # the baseline's cache starts empty

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "SKIP: dataset-fashion-mnist is not installed (scripts/deps.sh installs it)"; exit 0
fi

# 20 steps: the default's warmup (100 steps) and cosine schedule would not fit, and a cosine
# schedule forbids growing train.steps on --resume; a constant rate keeps both runs short.
short=(--set train.lr_schedule=\"constant\" --set train.warmup_steps=0)
# The evaluation's lines are what is checked here, not its accuracy: a short probe.
out=$("$byolctl" run "$cfg" "${short[@]}" --set train.steps=20 --set train.checkpoint_dir="$tmp/ck" \
  --set eval.probe_iterations=30 2>&1) ||
  { echo "$out"; echo "FAIL: the shortened default run"; exit 1; }
echo "$out" | tail -n 5
echo "$out" | grep -q '^step 20/20 loss ' || { echo "FAIL: no final step line"; exit 1; }
echo "$out" | grep -q '^training complete$' || { echo "FAIL: no completion line"; exit 1; }
# The run ends with its evaluation on the test split (the config's eval group).
echo "$out" | grep -qE '^kNN \(k=20\) top-1: [0-9.]+%  linear probe top-1: [0-9.]+%  \(60000 train / 10000 test' ||
  { echo "FAIL: no evaluation line"; exit 1; }
# Right after it, the raw-pixel baseline on the same 28x28 images (eval.baseline).
echo "$out" | grep -A1 -E '^kNN \(k=20\) top-1: ' | sed -n 2p |
  grep -qE '^raw pixels \(784-d\):  kNN top-1: [0-9.]+%  linear probe top-1: [0-9.]+%  \([0-9.]+ s\)$' ||
  { echo "FAIL: no raw-pixel baseline line"; exit 1; }
[ -s "$tmp/ck/latest.safetensors" ] && [ -s "$tmp/ck/step-20.safetensors" ] ||
  { echo "FAIL: checkpoints missing"; exit 1; }

# --resume continues from latest (step 20) for the two steps a longer run has left.
out=$("$byolctl" run "$cfg" --resume "${short[@]}" --set train.steps=22 --set train.checkpoint_dir="$tmp/ck" \
  --set eval.at_end=false 2>&1) || { echo "$out"; echo "FAIL: --resume"; exit 1; }
echo "$out" | grep -q '^step 21/22 loss ' && echo "$out" | grep -q '^step 22/22 loss ' ||
  { echo "FAIL: --resume did not continue at step 21: $out"; exit 1; }
echo "$out" | grep -q '^step 1/22 ' && { echo "FAIL: --resume restarted"; exit 1; }

. "$(dirname "$0")/lib.sh"
expect_fail "train.stepz (from --set): unknown setting" run "$cfg" --set train.stepz=3
expect_fail "train.steps (from --set): expected an integer" check "$cfg" --set train.steps=many
expect_fail "threads = 0: must be between 1" check "$cfg" --set backend.threads=0
expect_fail "data.format (from --set): unknown format 'tiff'" run "$cfg" --set data.format=tiff
printf 'model = { image_size = 28 ;\n' > "$tmp/broken.cfg"
expect_fail "broken.cfg:2: " check "$tmp/broken.cfg"
echo "byolctl end to end: ok"
