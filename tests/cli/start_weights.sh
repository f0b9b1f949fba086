#!/usr/bin/env bash
# What a run or an evaluation takes from a checkpoint (issue 17): train.init_from starts a new
# run at step 0 from the checkpoint's weights with a fresh optimizer, so a checkpoint written
# under another optimizer (SGD here, Adam after) is accepted; eval and embed read only the
# weights too; every model tensor is still checked (one-line errors, exit 1). And a plugin op
# that takes a standard op's name is refused, naming both files, unless asked for by its path.
set -euo pipefail
byolctl=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(cd "$(mktemp -d)" && pwd -P) # real: messages name real paths
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
. "$here/lib.sh"

cat > "$tmp/base.cfg" <<CFG
seed = 5;
backend = { name = "blas"; threads = 1; };
model = {
  encoder = { name = "layers"; in_channels = 1; layers = (
    { type = "conv"; name = "conv1"; out = 4; kernel = 3; pad = 1; },
    { type = "bn"; name = "bn1"; }, { type = "relu"; name = "relu"; },
    { type = "avgpool"; name = "avgpool"; }, { type = "flatten"; } ); };
  image_size = 8; projection_size = 4; projection_hidden_size = 8;
};
augment_fn = ( { op = "resize"; size = 8; } );
data = { format = "mock"; length = 16; };
train = { steps = 3; batch_size = 4; checkpoint_every = 0; checkpoint_dir = "ck"; };
eval = { format = "folder"; train_images = "$here/../data/folder";
         test_images = "$here/../data/folder"; knn_k = 1; baseline = false; };
CFG
cd "$tmp"
"$byolctl" run base.cfg --set train.optimizer=sgd > /dev/null

# optim_step FILE: the I64 scalar optim.step of a checkpoint.
optim_step() {
  local hlen off
  hlen=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  off=$(head -c $((8 + hlen)) "$1" | grep -ao '"optim.step":{[^}]*}' | sed 's/.*data_offsets":\[\([0-9]*\),.*/\1/')
  od -An -td8 -j $((8 + hlen + off)) -N8 "$1" | tr -d ' '
}
[ "$(optim_step ck/latest.safetensors)" = 3 ] || { echo "FAIL: the first run did not take 3 steps"; exit 1; }

# train.init_from (Adam, the default optimizer): steps 1 to 3 of a new run, from the weights.
out=$("$byolctl" run base.cfg --set train.init_from=ck/latest.safetensors --set train.checkpoint_dir=ck2)
echo "$out"
echo "$out" | grep -q '^step 1/3 ' || { echo "FAIL: init_from did not start at step 1"; exit 1; }
[ "$(optim_step ck2/latest.safetensors)" = 3 ] || { echo "FAIL: init_from's run is not 3 steps"; exit 1; }
"$byolctl" run base.cfg --set train.checkpoint_dir=ck3 > /dev/null
! cmp -s ck2/latest.safetensors ck3/latest.safetensors ||
  { echo "FAIL: init_from's run equals one from scratch"; exit 1; }
# The same config from the same weights is the same run (nothing else carried over).
"$byolctl" run base.cfg --set train.init_from=ck/latest.safetensors --set train.checkpoint_dir=ck4 > /dev/null
cmp -s ck2/latest.safetensors ck4/latest.safetensors || { echo "FAIL: init_from is not repeatable"; exit 1; }

# eval and embed (Adam config) read the SGD checkpoint's weights.
out=$("$byolctl" eval base.cfg --checkpoint ck/latest.safetensors)
echo "$out" | grep -q '^kNN (k=1) top-1: ' || { echo "FAIL: eval: $out"; exit 1; }
"$byolctl" embed base.cfg --checkpoint ck/latest.safetensors --out e.npy > /dev/null
[ -s e.npy ] || { echo "FAIL: embed wrote no e.npy"; exit 1; }
# --resume still takes the whole state, under the same config only.
expect_fail "ck/latest.safetensors: written by another config" run base.cfg --resume

# Broken input: weights of another model (projection_size 6) are still refused, tensor named.
"$byolctl" run base.cfg --set model.projection_size=6 --set train.checkpoint_dir=ck6 > /dev/null
shape="ck6/latest.safetensors: tensor 'online_encoder.projector.3.weight' has shape [6, 8] in the file, the learner's is [4, 8]"
expect_fail "$shape" run base.cfg --set train.init_from=ck6/latest.safetensors --set train.checkpoint_dir=ck7
[ ! -e ck7 ] || { echo "FAIL: a refused init_from left checkpoints"; exit 1; }
expect_fail "$shape" eval base.cfg --checkpoint ck6/latest.safetensors
expect_fail "$shape" embed base.cfg --checkpoint ck6/latest.safetensors --out x.npy
[ ! -e x.npy ] || { echo "FAIL: a refused embed wrote its output"; exit 1; }

# A plugin whose op takes the name "normalize" (the example op, renamed).
sed 's/\.name = "invert"/.name = "normalize"/' "$here/../../plugins/examples/augment-invert/invert.c" > mynorm.c
${CC:-cc} -shared -fPIC -I"$here/../../include" -o byol-augment-mynorm.so mynorm.c
std_norm='augment_fn=( { op = "normalize"; mean = [0.5]; std = [0.25]; } )'
both="augment 'normalize' is registered by $tmp/byol-augment-mynorm.so and by "
expect_fail "$both" check base.cfg --set 'plugins=["byol-augment-mynorm.so"]' --set "$std_norm"
expect_fail "$both" check base.cfg --set 'plugin_path=["."]' --set "$std_norm"
# Another standard op cannot load beside it either: the standard plugin's file is named.
expect_fail "byol-augment-std.so: augment 'normalize' is already registered by $tmp/byol-augment-mynorm.so" \
  check base.cfg --set 'plugins=["byol-augment-mynorm.so"]'
# Asked for by its path, the plugin's op runs where it is named, the standard one elsewhere.
"$byolctl" run base.cfg --set train.steps=1 --set train.checkpoint_dir=ck8 --set \
  'augment_fn=( { op = "./byol-augment-mynorm.so"; p = 0.5; }, { op = "normalize"; mean = [0.5]; std = [0.25]; } )' > /dev/null
echo "start weights and op names: ok"
