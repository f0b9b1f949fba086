#!/usr/bin/env bash
# Multi-crop through byolctl (README "Multi-crop"): local views change the run, a run resumed
# halfway ends with the checkpoint of an uninterrupted one (the local views are functions of
# seed, step, image and view like the global ones), multicrop.views = 0 is the run without the
# group, `byolctl bench` runs the local views too, and an encoder whose representation depends
# on the image size is refused with one line naming it.
set -euo pipefail
byolctl=$1
st_compare=$2
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; exit 1; }

cat > mc.cfg <<'CFG'
seed = 3;
backend = { name = "blas"; threads = 2; };
model = {
  encoder = { name = "layers"; in_channels = 1; layers = (
    { type = "conv"; name = "conv1"; out = 8; kernel = 3; pad = 1; bias = false; },
    { type = "bn"; name = "bn1"; }, { type = "relu"; name = "relu1"; },
    { type = "conv"; name = "conv2"; out = 16; kernel = 3; pad = 1; stride = 2; bias = false; },
    { type = "bn"; name = "bn2"; }, { type = "relu"; name = "relu2"; },
    { type = "avgpool"; name = "avgpool"; }, { type = "flatten"; } ); };
  image_size = 12; projection_size = 16; projection_hidden_size = 32;
};
augment_fn = ( { op = "random_resized_crop"; scale = [0.3, 1.0]; }, { op = "horizontal_flip"; } );
multicrop = { views = 3; size = 6; augment_fn = (
  { op = "random_resized_crop"; scale = [0.05, 0.3]; }, { op = "horizontal_flip"; } ); };
data = { format = "mock"; length = 40; };
train = { steps = 4; batch_size = 8; lr = 1e-3; checkpoint_every = 1; keep_checkpoints = 0; };
CFG
run() { # dir, extra args...
  local d=$1; shift
  "$byolctl" run mc.cfg --set train.checkpoint_dir=\""$d"\" "$@" > "$d.log" 2>&1 ||
    { cat "$d.log"; fail "run $d"; }
}

# 1. Resumed halfway = uninterrupted, byte for byte.
run whole
run half --set train.steps=2
run half --resume
cmp whole/step-4.safetensors half/step-4.safetensors || fail "the resumed multi-crop run differs"
echo "ok: resumed at step 2, step 4 is byte-identical"

# 2. The local views matter, and views = 0 is the run without the group (tensor for tensor:
#    the config text in the files' metadata differs).
run none --set multicrop.views=0
sed '/^multicrop/,/); };$/d' mc.cfg > plain.cfg
! grep -q multicrop plain.cfg || fail "could not cut the multicrop group"
"$byolctl" run plain.cfg --set train.checkpoint_dir=\"plain\" > plain.log 2>&1 ||
  { cat plain.log; fail "run without multicrop"; }
"$st_compare" none/step-4.safetensors plain/step-4.safetensors --rtol 0 ||
  fail "multicrop.views = 0 differs from no multicrop group"
if "$st_compare" whole/step-1.safetensors none/step-1.safetensors --rtol 1e-3 > /dev/null; then
  fail "the local views changed nothing"
fi
echo "ok: views = 0 is the plain run; 3 local views change step 1"

# 3. byolctl bench runs them: more work per step than without.
gf() { "$byolctl" bench mc.cfg --steps 1 --warmup 0 --set model.image_size=64 --set multicrop.size=32 "$@" | sed -n 's/.*(\([0-9.]*\) GFLOP\/step).*/\1/p'; }
with=$(gf) without=$(gf --set multicrop.views=0)
[ -n "$with" ] && [ -n "$without" ] || fail "bench printed no GFLOP/step"
awk -v a="$with" -v b="$without" 'BEGIN { exit !(a > b) }' ||
  fail "bench: $with GFLOP/step with local views, $without without"
echo "ok: bench counts the local views ($with against $without GFLOP/step)"

# 4. A representation whose size follows the image (a flattened map) cannot take local views.
sed 's/{ type = "avgpool"; name = "avgpool"; }, //' mc.cfg > flat.cfg
expect_fail "flat.cfg:13: multicrop.size: the encoder cannot take 6 px local views: its representation must not depend on the image size" run flat.cfg \
  --set train.checkpoint_dir=\"flat\"
echo "multi-crop runs resume exactly and are refused where they cannot work"
