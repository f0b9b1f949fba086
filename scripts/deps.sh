#!/usr/bin/env bash
# Installs the Debian 12 packages byol-c builds, tests and runs with (needs root or sudo).
# Skips apt entirely when everything is already there, so repeated runs cost nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-dev libdnnl-dev libconfig-dev libcunit1-dev zlib1g-dev
  libpng-dev libjpeg62-turbo-dev
  libopenmpi-dev openmpi-bin            # data-parallel training (mpirun -np N byolctl run)
  valgrind
  clang-14 libclang-rt-14-dev llvm-14   # libFuzzer targets, sanitizer runtimes, llvm-symbolizer
  dataset-fashion-mnist
  python3-onnx python3-opencv          # the ONNX export's tests: onnx.checker, OpenCV's DNN
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps.sh: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
