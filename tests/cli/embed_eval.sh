#!/usr/bin/env bash
# byolctl embed and eval end to end on tiny IDX files and a config-defined encoder: a short run,
# the .npy files embed writes (shapes, the default checkpoint, --split test), eval's result
# line and its raw-pixel baseline, and one-line errors (exit 1) for bad settings and a missing
# test split.
set -euo pipefail
byolctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache" # the baseline's cache starts empty
. "$(dirname "$0")/lib.sh" # expect_fail, write_images, write_labels, tiny_model

write_images "$tmp/train.idx" 24
write_labels "$tmp/train-labels.idx" 24
write_images "$tmp/test.idx" 12
write_labels "$tmp/test-labels.idx" 12

{ tiny_model; cat <<EOF; } > "$tmp/base.cfg"
data = { images = "train.idx"; };
train = { steps = 3; batch_size = 4; checkpoint_dir = "$tmp/ck"; };
EOF
cp "$tmp/base.cfg" "$tmp/eval.cfg"
cat >> "$tmp/eval.cfg" <<EOF
eval = { train_images = "train.idx"; train_labels = "train-labels.idx";
         test_images = "test.idx"; test_labels = "test-labels.idx"; knn_k = 5; };
EOF

"$byolctl" run "$tmp/eval.cfg" > /dev/null
npy_header() { head -c 128 "$1" | tail -c 118; }
check_npy() { # file "shape" bytes
  npy_header "$1" | grep -qF "'shape': ($2)" || { echo "FAIL: $1: $(npy_header "$1")"; exit 1; }
  [ "$(stat -c %s "$1")" -eq "$3" ] || { echo "FAIL: $1 has $(stat -c %s "$1") bytes"; exit 1; }
}

out=$("$byolctl" embed "$tmp/eval.cfg" --checkpoint "$tmp/ck/step-3.safetensors" \
  --out "$tmp/e.npy" --projection "$tmp/p.npy" --labels "$tmp/y.npy")
echo "$out"
check_npy "$tmp/e.npy" "24, 8" $((128 + 24 * 8 * 4))
check_npy "$tmp/p.npy" "24, 6" $((128 + 24 * 6 * 4))
check_npy "$tmp/y.npy" "24," $((128 + 24 * 8))
# The default checkpoint is train.checkpoint_dir/latest.safetensors: the same weights.
"$byolctl" embed "$tmp/eval.cfg" --out "$tmp/e2.npy" > /dev/null
cmp -s "$tmp/e.npy" "$tmp/e2.npy" || { echo "FAIL: default checkpoint differs"; exit 1; }
"$byolctl" embed "$tmp/eval.cfg" --split test --out "$tmp/t.npy" > /dev/null
check_npy "$tmp/t.npy" "12, 8" $((128 + 12 * 8 * 4))
# Without an eval group, the train split is the data group's images.
"$byolctl" embed "$tmp/base.cfg" --out "$tmp/d.npy" > /dev/null
cmp -s "$tmp/e.npy" "$tmp/d.npy" || { echo "FAIL: data group's embeddings differ"; exit 1; }

# eval's result lines, without the progress lines ("eval: ...") that come first on a log.
results() { "$byolctl" eval "$@" | grep -v '^eval: '; }
out=$(results "$tmp/eval.cfg")
echo "$out"
echo "$out" | head -n 1 | grep -Eq '^kNN \(k=5\) top-1: [0-9]+\.[0-9]{2}%  linear probe top-1: [0-9]+\.[0-9]{2}%  \(24 train / 12 test, 8-d features, [0-9.]+ s\)$' ||
  { echo "FAIL: eval's result line"; exit 1; }
# Then the raw-pixel baseline (eval.baseline, on by default): the same kNN and probe on the
# 8x8 transformed images, whatever the encoder's weights; eval.baseline=false leaves it out.
pixels='^raw pixels \(64-d\):  kNN top-1: [0-9]+\.[0-9]{2}%  linear probe top-1: [0-9]+\.[0-9]{2}%  \((cached, )?[0-9.]+ s\)$'
echo "$out" | sed -n 2p | grep -Eq "$pixels" || { echo "FAIL: eval's raw-pixel line"; exit 1; }
# The second evaluation of the same pixels reads the first one's cache entry.
out2=$(results "$tmp/eval.cfg" --checkpoint none)
echo "$out2" | sed -n 2p | grep -q '(cached, [0-9.]* s)$' || { echo "FAIL: no cached baseline: $out2"; exit 1; }
out2=$(results "$tmp/eval.cfg" --checkpoint none --set eval.baseline_cache=false)
echo "$out2" | sed -n 2p | grep -Eq "${pixels/(cached, )?/}" || { echo "FAIL: eval.baseline_cache=false: $out2"; exit 1; }
[ "$(echo "$out" | sed -n 2p | sed 's/  (.*//')" = "$(echo "$out2" | sed -n 2p | sed 's/  (.*//')" ] ||
  { echo "FAIL: the raw-pixel baseline depends on the weights: $out2"; exit 1; }
out=$(results "$tmp/eval.cfg" --set eval.baseline=false)
echo "$out" | head -n 1 | grep -q '^kNN (k=5) top-1: ' && ! echo "$out" | grep -q '^raw pixels' ||
  { echo "FAIL: eval.baseline=false: $out"; exit 1; }

expect_fail "the config has no eval group: the test split is eval.test_images" \
  embed "$tmp/base.cfg" --split test --out "$tmp/x.npy"
expect_fail "evaluation needs an eval group: eval = {" eval "$tmp/base.cfg"
expect_fail "eval.knn_k (from --set): 0 is out of range [1, 1000]" \
  eval "$tmp/eval.cfg" --set eval.knn_k=0
expect_fail "eval.probe_l3 (from --set): unknown setting" eval "$tmp/eval.cfg" --set eval.probe_l3=1
expect_fail "missing 'train_labels' (evaluation needs the train split's labels)" \
  eval "$tmp/base.cfg" --set eval.train_images=train.idx --set eval.test_images=test.idx
expect_fail "nope.safetensors: No such file or directory" \
  eval "$tmp/eval.cfg" --checkpoint "$tmp/nope.safetensors"
rc=0; "$byolctl" embed "$tmp/eval.cfg" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: embed without --out exits $rc, not 2"; exit 1; }
[ ! -e "$tmp/x.npy" ] || { echo "FAIL: a failed embed left a file"; exit 1; }
echo "byolctl embed / eval: ok"
