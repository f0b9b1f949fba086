#!/usr/bin/env bash
# Non-finite numbers never go through silently: a checkpoint or weights file holding NaN or
# infinity is refused at load, naming the file and the tensor (--resume, train.init_from,
# model.encoder.weights, eval, embed, export); a run whose loss or gradient turns non-finite
# stops before the update with a message naming the step, and its last good checkpoint stays
# the latest; train.on_nonfinite = "skip_step" skips such steps instead.
set -euo pipefail
byolctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
. "$(dirname "$0")/lib.sh"

cat > "$tmp/base.cfg" <<'CFG'
seed = 3;
backend = { name = "blas"; threads = 1; };
model = {
  encoder = { name = "layers"; in_channels = 1; layers = (
    { type = "conv"; name = "conv1"; out = 4; kernel = 3; pad = 1; },
    { type = "relu"; name = "relu"; },
    { type = "avgpool"; name = "avgpool"; },
    { type = "flatten"; } ); };
  image_size = 8;
  projection_size = 4;
  projection_hidden_size = 8;
};
data = { format = "mock"; length = 16; };
train = { steps = 4; batch_size = 4; checkpoint_every = 1; keep_checkpoints = 0;
          checkpoint_dir = "ck"; };
CFG
cd "$tmp"
"$byolctl" run base.cfg > /dev/null

# set_float FILE TENSOR BYTES: overwrite the first float of TENSOR (4 bytes, little-endian).
set_float() {
  local hlen off
  hlen=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  off=$(head -c $((8 + hlen)) "$1" | grep -ao "\"$2\":{[^}]*}" | sed 's/.*data_offsets":\[\([0-9]*\),.*/\1/')
  [ -n "$off" ] || { echo "FAIL: no tensor $2 in $1"; exit 1; }
  printf "$3" | dd of="$1" bs=1 seek=$((8 + hlen + off)) conv=notrunc status=none
}

cp ck/latest.safetensors nan.safetensors
set_float nan.safetensors online_encoder.net.conv1.weight '\x00\x00\xc0\x7f'
cp ck/latest.safetensors inf.safetensors
set_float inf.safetensors target_encoder.net.conv1.bias '\x00\x00\x80\x7f'

expect_fail "nan.safetensors: tensor 'online_encoder.net.conv1.weight' holds NaN or infinity (element 0)" \
  run base.cfg --set train.init_from=nan.safetensors --set train.checkpoint_dir=ck2
[ ! -e ck2 ] || { echo "FAIL: a refused init_from left checkpoints"; exit 1; }
expect_fail "inf.safetensors: tensor 'target_encoder.net.conv1.bias' holds NaN or infinity" \
  run base.cfg --set train.init_from=inf.safetensors --set train.checkpoint_dir=ck2
expect_fail "nan.safetensors: tensor 'online_encoder.net.conv1.weight' holds NaN or infinity" \
  embed base.cfg --checkpoint nan.safetensors --out e.npy
[ ! -e e.npy ] || { echo "FAIL: a refused embed wrote its output"; exit 1; }
expect_fail "nan.safetensors: tensor 'online_encoder.net.conv1.weight' holds NaN or infinity" \
  export nan.safetensors enc.safetensors
[ ! -e enc.safetensors ] || { echo "FAIL: a refused export wrote its output"; exit 1; }

# Encoder weights with torchvision names.
"$byolctl" export ck/latest.safetensors w.safetensors > /dev/null
set_float w.safetensors conv1.bias '\x00\x00\x80\xff'
expect_fail "w.safetensors: conv1.bias: holds NaN or infinity (element 0)" \
  run base.cfg --set model.encoder.weights=w.safetensors --set train.checkpoint_dir=ck2

# --resume from a latest that holds NaN.
mkdir -p ck3
cp nan.safetensors ck3/latest.safetensors
expect_fail "ck3/latest.safetensors: tensor 'online_encoder.net.conv1.weight' holds NaN" \
  run base.cfg --resume --set train.checkpoint_dir=ck3

# A learning rate that overflows: the run stops at the first non-finite step, names it, and
# the last checkpoint it wrote is finite and still the latest.
err=$("$byolctl" run base.cfg --set train.checkpoint_dir=ck4 --set train.optimizer=\"sgd\" \
  --set train.lr=1e30 --set train.steps=8 2>&1 >/dev/null) && { echo "FAIL: diverging run exits 0"; exit 1; }
echo "$err" | tail -n 1
echo "$err" | tail -n 1 | grep -Eq "step [0-9]+: .*(NaN|infinite|infinity).*training diverged|not written: tensor .* holds NaN or infinity" ||
  { echo "FAIL: diverging run's message: $err"; exit 1; }
if [ -e ck4/latest.safetensors ]; then
  "$byolctl" export ck4/latest.safetensors ok.safetensors > /dev/null ||
    { echo "FAIL: the diverging run's latest checkpoint is not usable"; exit 1; }
fi

# skip_step: the same run goes on, warning once per skipped step.
# The skipped steps leave no trace, batch-norm statistics included, so every checkpoint of the
# run is written and usable.
out=$("$byolctl" run base.cfg --set train.checkpoint_dir=ck5 --set train.on_nonfinite=\"skip_step\" \
  --set train.lr=1e30 --set train.optimizer=\"sgd\" --set train.steps=6 2>&1 >/dev/null) ||
  { echo "FAIL: skip_step run failed: $out"; exit 1; }
echo "$out" | grep -q 'step skipped (train.on_nonfinite = "skip_step"' ||
  { echo "FAIL: skip_step did not skip: $out"; exit 1; }
[ -e ck5/step-6.safetensors ] || { echo "FAIL: skip_step run wrote no final checkpoint"; exit 1; }
"$byolctl" export ck5/latest.safetensors ok5.safetensors > /dev/null
expect_fail 'train.on_nonfinite (from --set): must be "stop" or "skip_step", got "ignore"' \
  check base.cfg --set train.on_nonfinite=\"ignore\"
echo "non-finite: ok"
