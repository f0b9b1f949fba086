#!/usr/bin/env bash
# No label leaks into training (issue 20): every shipped Fashion-MNIST recipe, run as written
# (its encoder, views, multi-crop, optimizer and schedules) for a few steps on the real training
# split, ends with the same weights, bit for bit, whether data.labels is the real label file, all
# zeros, or the labels shifted by one image. test_trainer's test_labels_unused checks the same on
# a tiny config; this runs the recipes the README's results come from.
# usage: labels_unused.sh BYOLCTL ST_COMPARE CONFIG...
set -euo pipefail
byolctl=$1
st_compare=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

labels=/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz
if [ ! -e "$labels" ]; then
  echo "SKIP: dataset-fashion-mnist is not installed (scripts/deps.sh installs it)"; exit 0
fi

# The label file's 8-byte header (magic 0x00000801, 60000 labels), then the labels.
zcat "$labels" > "$tmp/real.idx"
head -c 8 "$tmp/real.idx" > "$tmp/header"
[ "$(od -An -tx1 "$tmp/header" | tr -d ' \n')" = "000008010000ea60" ] ||
  { echo "FAIL: $labels is not 60000 IDX labels"; exit 1; }
{ cat "$tmp/header"; head -c 60000 /dev/zero; } > "$tmp/zero.idx"
tail -c +9 "$tmp/real.idx" > "$tmp/body"
{ cat "$tmp/header"; tail -c +2 "$tmp/body"; head -c 1 "$tmp/body"; } > "$tmp/shifted.idx"
cmp -s "$tmp/real.idx" "$tmp/shifted.idx" && { echo "FAIL: the shifted labels equal the real"; exit 1; }

for cfg in "$@"; do
  name=$(basename "$cfg" .cfg)
  for l in real zero shifted; do
    # Three steps after a one-step warmup: the recipe's optimizer, views and loss, not its length.
    "$byolctl" run "$cfg" --set train.steps=3 --set train.warmup_steps=1 \
      --set "data.labels=\"$tmp/$l.idx\"" --set "train.checkpoint_dir=\"$tmp/$name-$l\"" \
      --set eval.every=0 --set eval.at_end=false --set "metrics.file=\"$tmp/$name-$l.csv\"" \
      > "$tmp/$name-$l.log" 2>&1 || { cat "$tmp/$name-$l.log"; echo "FAIL: $name with $l labels"; exit 1; }
    grep -q '^step 3/3 loss ' "$tmp/$name-$l.log" || { cat "$tmp/$name-$l.log"; echo "FAIL: $name: no step 3"; exit 1; }
  done
  for l in zero shifted; do
    "$st_compare" "$tmp/$name-real/latest.safetensors" "$tmp/$name-$l/latest.safetensors" --rtol 0 ||
      { echo "FAIL: $name: the weights depend on the label file ($l labels differ)"; exit 1; }
  done
  echo "ok: $name: real, zeroed and shifted labels give the same weights"
done
echo "labels unused: ok"
