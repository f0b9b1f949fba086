#!/usr/bin/env bash
# A user's encoder .so (tests/plugins/fused_encoder.c) and `byolctl export CKPT OUT.onnx`
# (issue 19). Every op kind the host takes has an ONNX mapping: byol_net_add_layer, the only
# way into a network, refuses any other kind, so the export's refusal "op '...' has no ONNX
# mapping" guards kinds appended later. What a .so can still bring:
#  - batch norms whose op fuses the relu (bn.fuse_relu) with no relu layer after them: the
#    export writes their Relu nodes (it once dropped them: the model then disagreed with
#    byolctl embed), and a network with relu layers of its own gets no second Relu;
#  - an op kind the host does not know (a .so built against a newer header, here one that
#    replaced the .so the checkpoint was trained with): the export fails, exit 1, with one line
#    naming the layer and the kind, and writes nothing: no new file, an old one untouched.
set -euo pipefail
byolctl=$1
plugin=$2
tmp=$(cd "$(mktemp -d)" && pwd -P)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $*"; exit 1; }
cd "$tmp"
ops() { grep -ao "$1" "$2" | wc -l; } # op_type strings in an ONNX file (names are lowercase)

# 16 images of 1x8x8 as float32 .npy (values i*j/1024, i image, j pixel), so that OpenCV can
# take the same ones below.
{
  printf '\x93NUMPY\x01\x00\x76\x00%-117s\n' "{'descr': '<f4', 'fortran_order': False, 'shape': (16, 8, 8), }"
  LC_ALL=C awk 'BEGIN { for (i = 0; i < 16; i++) for (j = 0; j < 64; j++) print (i * j + 1) / 1024.0 }' |
    perl -ne 'print pack("f<", $_)'
} > imgs.npy
[ "$(stat -c %s imgs.npy)" -eq $((128 + 16 * 64 * 4)) ] || fail "imgs.npy has $(stat -c %s imgs.npy) bytes"
cat > fused.cfg <<CFG
backend = { name = "blas"; threads = 1; };
model = { encoder = { name = "$plugin"; in_channels = 1; };
  image_size = 8; hidden_layer = "bn2"; projection_size = 8; projection_hidden_size = 16; };
data = { format = "npy"; images = "imgs.npy"; };
train = { steps = 2; batch_size = 4; checkpoint_every = 0; checkpoint_dir = "ck"; };
CFG
"$byolctl" run fused.cfg > run.log 2>&1 || { cat run.log; fail "run with the fused encoder"; }
ckpt=ck/latest.safetensors

# ---- fused relus: one Relu node each (conv1 -> bn1 is folded into the Conv, bn2 is not)
"$byolctl" export "$ckpt" fused.onnx > /dev/null
[ "$(ops Relu fused.onnx)" -eq 2 ] || fail "fused.onnx has $(ops Relu fused.onnx) Relu nodes, not 2"
[ "$(ops BatchNormalization fused.onnx)" -eq 1 ] && [ "$(ops Conv fused.onnx)" -eq 1 ] ||
  fail "fused.onnx: $(ops BatchNormalization fused.onnx) BatchNormalization, $(ops Conv fused.onnx) Conv"
# The engine's own fusion (bn1 -> relu layer): the relu layer's node alone.
mkdir tiny
tiny_checkpoint "$tmp/tiny"
"$byolctl" export tiny/ck/latest.safetensors tiny.onnx > /dev/null
[ "$(ops Relu tiny.onnx)" -eq 1 ] || fail "tiny.onnx has $(ops Relu tiny.onnx) Relu nodes, not 1"
# The model computes what byolctl embed does (OpenCV's DNN, when /usr/bin/python3 has it).
"$byolctl" embed fused.cfg --checkpoint "$ckpt" --out e.npy > /dev/null
if /usr/bin/python3 -c 'import cv2, numpy' 2> /dev/null; then
  /usr/bin/python3 - <<'PY' || fail "OpenCV's outputs differ from byolctl embed's"
import cv2, numpy as np
x, e = np.load("imgs.npy"), np.load("e.npy")
net = cv2.dnn.readNetFromONNX("fused.onnx")
net.setInput(x.reshape(16, 1, 8, 8))
y = net.forward()
d = float(np.abs(y - e).max())
print(f"OpenCV vs byolctl embed: max abs diff {d:.3g}, {int((e == 0).sum())} of {e.size} zeros")
assert y.shape == e.shape and (e == 0).any() and d <= 1e-4 * max(1.0, float(np.abs(e).max()))
PY
else
  echo "(no OpenCV for /usr/bin/python3: the outputs are not compared)"
fi

# ---- an op kind the host does not know: one line, exit 1, nothing written
cp fused.onnx before.onnx
msg="encoder '$plugin': net: layer 'future1' has an unknown op kind 10"
export BYOL_TEST_FUSED_OP_KIND=10
expect_fail "byolctl: $ckpt: rebuilding its network: $msg" export "$ckpt" fused.onnx
cmp -s fused.onnx before.onnx || fail "a refused export changed the file it would replace"
expect_fail "byolctl: $ckpt: rebuilding its network: $msg" export "$ckpt" new.onnx
[ ! -e new.onnx ] || fail "a refused export wrote new.onnx"
# Training with it fails the same way, before the first step.
expect_fail "byolctl: fused.cfg: $msg" run fused.cfg --set train.checkpoint_dir=\"ck2\"
[ ! -e ck2 ] || fail "a refused run left checkpoints"
unset BYOL_TEST_FUSED_OP_KIND
ls | grep -q '\.tmp\.' && fail "a temporary file was left"
echo "byolctl export to ONNX of a user's encoder: ok"
