#!/usr/bin/env bash
# byolctl export to ONNX, its command line: the format by extension or --format, the outputs
# --with-projection adds, and one-line errors (exit 1) or usage messages (exit 2). The models
# themselves are checked by tests/onnx_check.py (onnx.checker and OpenCV).
set -euo pipefail
byolctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/lib.sh"
tiny_checkpoint "$tmp"
ckpt="$tmp/ck/latest.safetensors"

# A ModelProto starts with ir_version = 8 (field 1, varint): bytes 08 08.
is_onnx() { [ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' \n')" = "0808" ]; }
out=$("$byolctl" export "$ckpt" "$tmp/enc.onnx")
[ "$out" = "exported $tmp/enc.onnx" ] || { echo "FAIL: export said '$out'"; exit 1; }
is_onnx "$tmp/enc.onnx" || { echo "FAIL: enc.onnx is no ONNX model"; exit 1; }
grep -qa embedding "$tmp/enc.onnx" || { echo "FAIL: no embedding output"; exit 1; }
grep -qa projection "$tmp/enc.onnx" && { echo "FAIL: a projection output without --with-projection"; exit 1; }
"$byolctl" export "$ckpt" "$tmp/proj.model" --format onnx --with-projection > /dev/null
is_onnx "$tmp/proj.model" || { echo "FAIL: --format onnx wrote no ONNX model"; exit 1; }
grep -qa projection "$tmp/proj.model" || { echo "FAIL: --with-projection lacks projection"; exit 1; }
"$byolctl" export "$ckpt" "$tmp/st.onnx" --format safetensors > /dev/null
head -c 4096 "$tmp/st.onnx" | grep -qF '"conv1.weight"' || { echo "FAIL: --format safetensors"; exit 1; }
"$byolctl" export "$ckpt" "$tmp/enc.safetensors" > /dev/null

expect_exit 1 "enc.safetensors: no config in its metadata" export "$tmp/enc.safetensors" "$tmp/x.onnx"
expect_exit 1 "none.safetensors: No such file or directory" export "$tmp/none.safetensors" "$tmp/x.onnx"
printf 'garbage!' > "$tmp/junk.safetensors"
expect_exit 1 "junk.safetensors: " export "$tmp/junk.safetensors" "$tmp/x.onnx"
expect_exit 1 "--format tflite: unknown export format (onnx or safetensors)" export "$ckpt" "$tmp/x.onnx" --format tflite
expect_exit 1 "is the same file as CKPT" export "$ckpt" "$ckpt" --format onnx
expect_exit 1 "--plugin-path $tmp/nowhere: No such file or directory" export "$ckpt" "$tmp/x.onnx" --plugin-path "$tmp/nowhere"
expect_exit 2 "--with-projection is for ONNX" export "$ckpt" "$tmp/x.safetensors" --with-projection
expect_exit 2 "--drop is for safetensors" export "$ckpt" "$tmp/x.onnx" --drop fc
expect_exit 2 "--format needs a value" export "$ckpt" "$tmp/x.onnx" --format
[ ! -e "$tmp/x.onnx" ] && [ ! -e "$tmp/x.safetensors" ] || { echo "FAIL: a failed export left a file"; exit 1; }
ls "$tmp" | grep -q '\.tmp\.' && { echo "FAIL: a temporary file was left"; exit 1; }
echo "byolctl export to ONNX, command line: ok"
