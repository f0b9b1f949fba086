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
