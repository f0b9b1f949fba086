#!/usr/bin/env bash
# byolctl export end to end: a short run's checkpoint exports (whole, and --drop fc), and bad
# command lines or inputs fail with one line (exit 1) or a usage message (exit 2).
set -euo pipefail
byolctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/lib.sh"
tiny_checkpoint "$tmp"
ckpt="$tmp/ck/latest.safetensors"

out=$("$byolctl" export "$ckpt" "$tmp/enc.safetensors")
[ "$out" = "exported $tmp/enc.safetensors" ] || { echo "FAIL: export said '$out'"; exit 1; }
# The header names torchvision-style keys only: no learner prefixes, fc kept.
header=$(head -c 4096 "$tmp/enc.safetensors" | tr -c '[:print:]' ' ')
for key in '"conv1.weight"' '"bn1.running_var"' '"bn1.num_batches_tracked"' '"fc.weight"' '"format":"pt"'; do
  echo "$header" | grep -qF -- "$key" || { echo "FAIL: export lacks $key"; exit 1; }
done
echo "$header" | grep -qE 'online_|target_|projector|predictor|optim' &&
  { echo "FAIL: export holds learner tensors: $header"; exit 1; }
"$byolctl" export "$ckpt" "$tmp/nofc.safetensors" --drop fc > /dev/null
head -c 4096 "$tmp/nofc.safetensors" | grep -qF '"fc.' && { echo "FAIL: --drop fc kept fc"; exit 1; }

expect_exit 1 "$tmp/none.safetensors: No such file or directory" export "$tmp/none.safetensors" "$tmp/x.safetensors"
expect_exit 1 "enc.safetensors: not a learner checkpoint" export "$tmp/enc.safetensors" "$tmp/x.safetensors"
printf 'garbage!' > "$tmp/junk.safetensors"
expect_exit 1 "junk.safetensors: " export "$tmp/junk.safetensors" "$tmp/x.safetensors"
expect_exit 1 "has no layer 'fc9' to drop" export "$ckpt" "$tmp/x.safetensors" --drop fc9
expect_exit 2 "export needs CKPT and OUT.safetensors" export "$ckpt"
expect_exit 2 "unexpected argument '--frobnicate'" export "$ckpt" "$tmp/x.safetensors" --frobnicate
[ ! -e "$tmp/x.safetensors" ] || { echo "FAIL: a failed export left a file"; exit 1; }
echo "byolctl export end to end: ok"
