#!/usr/bin/env bash
# Every shipped config passes `byolctl check` (settings, data, pipelines, networks). mock.cfg is
# checked at a small size: at full size (ResNet-50, 256 px, batch 20) check alone needs 10 GB.
set -euo pipefail
byolctl=$1
configs=$2
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "SKIP: dataset-fashion-mnist is not installed (scripts/deps.sh installs it)"; exit 0
fi
for cfg in "$configs"/*.cfg; do
  extra=()
  [ "$(basename "$cfg")" = mock.cfg ] &&
    extra=(--set model.image_size=32 --set train.batch_size=2 --set model.encoder.name=resnet18)
  err=$("$byolctl" check "$cfg" "${extra[@]}" 2>&1 >/dev/null) ||
    { echo "FAIL: $cfg: $err"; exit 1; }
  echo "ok: $(basename "$cfg")"
done

# An unset backend.name means onednn where its plugin is installed, else blas.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/nobackend.cfg" <<'CFG'
backend = { threads = 1; };
model = { encoder = { name = "layers"; in_channels = 1; layers = (
  { type = "conv"; name = "c"; out = 4; kernel = 3; }, { type = "flatten"; name = "f"; } ); };
  image_size = 8; hidden_layer = "f"; projection_size = 8; projection_hidden_size = 16; };
data = { format = "mock"; length = 8; };
train = { steps = 1; batch_size = 4; };
CFG
want=blas
"$byolctl" plugins | grep -q '^backend  *onednn ' && want=onednn
out=$("$byolctl" bench "$tmp/nobackend.cfg" --steps 1 --warmup 0 2>&1)
echo "$out" | head -n 1 | grep -q "^backend $want," ||
  { echo "FAIL: unset backend.name should mean $want: $out"; exit 1; }
echo "ok: an unset backend.name is $want"
