#!/usr/bin/env bash
# The evaluation shows its progress (issue 19): byolctl eval and the end of byolctl run name
# each phase as it goes. Not on a terminal: lines on stdout (where the training's steps go),
# one at each tenth of a phase of images or probe iterations and one at its end, in the order
# features (train, test), kNN, linear probe, then the raw-pixel baseline's pixels, kNN and
# probe, before the result lines, which stay as they were; stderr stays empty. The kNN monitor
# between steps prints none. On a terminal (script(1) gives one): one line per phase on stderr,
# redrawn in place with \r and ended with its phase.
set -euo pipefail
byolctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache" # the baseline's cache starts empty
. "$(dirname "$0")/lib.sh" # tiny_model
fail() { echo "FAIL: $*"; exit 1; }
cd "$tmp"

# npy_u8 FILE "SHAPE" BYTES...: a uint8 .npy file (format 1.0, a 128-byte header).
npy_u8() {
  printf '\x93NUMPY\x01\x00\x76\x00%-117s\n' "{'descr': '|u1', 'fortran_order': False, 'shape': ($2), }" > "$1"
  cat >> "$1"
}
# images N PHASE: N 8x8 images of class i % 3 (horizontal stripes, vertical stripes, a
# checkerboard) at a phase of i, as bytes 8..247 (never a NUL, which awk may not print).
images() {
  LC_ALL=C awk -v n="$1" -v p0="$2" 'BEGIN {
    for (i = 0; i < n; i++) for (y = 0; y < 8; y++) for (x = 0; x < 8; x++) {
      ph = 0.7 * (i + p0); c = i % 3
      v = c == 0 ? sin(1.9 * y + ph) : c == 1 ? sin(1.9 * x + ph) : sin(1.9 * x + ph) * sin(1.9 * y + ph)
      printf "%c", int(127.5 + 120 * v)
    } }'
}
labels() { LC_ALL=C awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "%c", i % 3 + 1 }'; }
images 600 0 | npy_u8 train.npy "600, 8, 8"
labels 600 | npy_u8 train-labels.npy "600,"
images 300 1000 | npy_u8 test.npy "300, 8, 8"
labels 300 | npy_u8 test-labels.npy "300,"
[ "$(stat -c %s train.npy)" -eq $((128 + 600 * 64)) ] || fail "train.npy has $(stat -c %s train.npy) bytes"

{ tiny_model; cat <<'EOF'; } > eval.cfg
data = { format = "mock"; length = 16; };
train = { steps = 3; batch_size = 4; checkpoint_every = 0; checkpoint_dir = "ck"; };
eval = { format = "npy"; train_images = "train.npy"; train_labels = "train-labels.npy";
         test_images = "test.npy"; test_labels = "test-labels.npy"; knn_k = 5; };
EOF

# The phases a full evaluation goes through, as its lines begin.
phases='eval: features of the train split
eval: features of the test split
eval: kNN on the features
eval: linear probe on the features
eval: raw pixels of the train split
eval: raw pixels of the test split
eval: kNN on the raw pixels
eval: linear probe on the raw pixels'
# phase_order FILE: the phases of FILE's progress lines, each once, in the order they come.
phase_order() {
  grep '^eval: ' "$1" | sed -E 's/ (iteration )?[0-9]+\/[0-9]+.*//' | uniq
}
results='^kNN \(k=5\) top-1: [0-9]+\.[0-9]{2}%  linear probe top-1: [0-9]+\.[0-9]{2}%  \(600 train / 300 test, 8-d features, [0-9.]+ s\)$'

# ---- a run with a kNN monitor every step: its closing evaluation reports, the monitor not
"$byolctl" run eval.cfg --set eval.every=1 > run.out 2> run.err || fail "run: $(cat run.err)"
cat run.out
[ ! -s run.err ] || fail "run wrote to stderr: $(cat run.err)"
[ "$(phase_order run.out)" = "$phases" ] || fail "run's phases: $(phase_order run.out)"
# The progress lines come after the last step and before the results and the last line.
first=$(grep -n '^eval: ' run.out | head -n 1 | cut -d: -f1)
last=$(grep -n '^eval: ' run.out | tail -n 1 | cut -d: -f1)
[ "$(grep -n '^step 3/3 ' run.out | cut -d: -f1)" -lt "$first" ] || fail "a progress line before the last step"
sed -n "$((last + 1))p" run.out | grep -Eq "$results" || fail "no result line right after the progress"
[ "$(tail -n 1 run.out)" = "training complete" ] || fail "run's last line: $(tail -n 1 run.out)"

# ---- byolctl eval (the baseline now comes from the cache: pixels, no kNN or probe on them)
"$byolctl" eval eval.cfg > eval.out 2> eval.err || fail "eval: $(cat eval.err)"
cat eval.out
[ "$(phase_order eval.out)" = "$(echo "$phases" | head -n 6)" ] || fail "cached eval's phases: $(phase_order eval.out)"
grep -q '^raw pixels (64-d): .*(cached, ' eval.out || fail "the baseline was not cached"
grep -q "eval: raw-pixel baseline from .*/baseline-" eval.err && [ "$(wc -l < eval.err)" -eq 1 ] ||
  fail "eval's stderr: $(cat eval.err)"

"$byolctl" eval eval.cfg --set eval.baseline_cache=false > eval.out 2> eval.err || fail "eval: $(cat eval.err)"
[ ! -s eval.err ] || fail "eval wrote to stderr: $(cat eval.err)"
[ "$(phase_order eval.out)" = "$phases" ] || fail "eval's phases: $(phase_order eval.out)"
# The result lines as before, after every progress line.
grep -v '^eval: ' eval.out > results.out
[ "$(wc -l < results.out)" -eq 3 ] || fail "result lines: $(cat results.out)"
sed -n 1p results.out | grep -Eq "$results" || fail "eval's result line"
sed -n 2p results.out | grep -Eq '^raw pixels \(64-d\):  kNN top-1: [0-9.]+%  linear probe top-1: [0-9.]+%  \([0-9.]+ s\)$' ||
  fail "eval's raw-pixel line"
sed -n 3p results.out | grep -Eq '^time: features [0-9.]+ s, kNN [0-9.]+ s, linear probe [0-9.]+ s \([0-9]+ L-BFGS iterations\)$' ||
  fail "eval's time line"
[ "$(grep -n '^eval: ' eval.out | tail -n 1 | cut -d: -f1)" -eq "$(($(wc -l < eval.out) - 3))" ] ||
  fail "a progress line among the results"

# Each phase ends at its total; the train split's 600 images (chunks of 256) pass 4 and 8
# tenths on the way; the probe's lines count up to the iterations the time line states.
got=$(grep '^eval: features of the train split' eval.out | sed -E 's/  [0-9.]+ s$//')
want='eval: features of the train split 256/600 images
eval: features of the train split 512/600 images
eval: features of the train split 600/600 images'
[ "$got" = "$want" ] || fail "train split lines: $got"
grep -Eq '^eval: features of the test split 300/300 images  [0-9.]+ s$' eval.out || fail "test split's end"
grep -Eq '^eval: kNN on the features 300/300 test images  [0-9.]+ s$' eval.out || fail "kNN's end"
its=$(sed -n 's/.*(\([0-9]*\) L-BFGS iterations)$/\1/p' results.out)
grep -Eq "^eval: linear probe on the features iteration $its/300 loss [0-9]+\.[0-9]{4}  [0-9.]+ s\$" eval.out ||
  fail "the probe's last line does not say $its iterations: $(grep '^eval: linear probe on the features' eval.out)"
# Result lines without their times, to compare two evaluations' numbers.
strip() { sed -E 's/, [0-9.]+ s\)$/)/; s/  \([0-9.]+ s\)$//; s/^time: .*//' "$1"; }

# ---- on a terminal: the phases on stderr, each line redrawn with \r and ended with \n
if script -qec true /dev/null > /dev/null 2>&1; then
  # stdout to a file, stderr the terminal.
  script -qec "'$byolctl' eval eval.cfg --set eval.baseline_cache=false > tty.out" /dev/null > tty.log ||
    fail "eval on a terminal"
  grep -q $'\r''eval: features of the train split 256/600 images' tty.log || fail "no redrawn line on the terminal"
  [ "$(tr '\r' '\n' < tty.log | grep '^eval: ' | sed -E 's/ (iteration )?[0-9]+\/[0-9]+.*//' | uniq)" = "$phases" ] ||
    fail "terminal phases: $(tr '\r' '\n' < tty.log | grep '^eval: ' | sed -E 's/ (iteration )?[0-9]+\/[0-9]+.*//' | uniq)"
  # Eight phases, eight lines.
  [ "$(grep -c 'eval: ' tty.log)" -eq 8 ] || fail "terminal lines: $(grep -c 'eval: ' tty.log)"
  ! grep -q '^eval: ' tty.out || fail "progress lines on stdout with a terminal on stderr"
  [ "$(strip tty.out)" = "$(strip results.out)" ] || fail "other results on a terminal: $(cat tty.out)"
else
  echo "(no script(1) pseudo-terminal here: the terminal case is not checked)"
fi
echo "evaluation progress: ok"
