#!/usr/bin/env bash
# Crash safety end to end: a run killed with SIGKILL at several points (checkpoint writes
# included: one is written after every step) always leaves a latest checkpoint that loads, and
# resuming until done ends bit-identical to a run that was never interrupted. SIGINT stops
# cleanly (exit 0, a checkpoint) and a resumed run again matches.
set -euo pipefail
byolctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
steps=60

# ~2M parameters, so each checkpoint (weights, target, Adam moments: ~28 MB) takes long enough
# to be killed in the middle of.
cat > "$tmp/kill.cfg" <<CFG
seed = 5;
backend = { name = "blas"; threads = 2; };
model = {
  encoder = { name = "layers"; in_channels = 3; layers = (
    { type = "conv"; name = "conv1"; out = 32; kernel = 3; pad = 1; },
    { type = "bn"; name = "bn1"; }, { type = "relu"; name = "relu"; },
    { type = "conv"; name = "conv2"; out = 128; kernel = 3; pad = 1; stride = 2; },
    { type = "bn"; name = "bn2"; }, { type = "relu"; name = "relu2"; },
    { type = "avgpool"; name = "avgpool"; }, { type = "flatten"; } ); };
  image_size = 16; projection_size = 256; projection_hidden_size = 2048;
};
augment_fn = ( { op = "random_resized_crop"; scale = [0.3, 1.0]; }, { op = "horizontal_flip"; } );
data = { format = "mock"; length = 256; };
train = { steps = $steps; batch_size = 16; checkpoint_every = 1; keep_checkpoints = 2; };
CFG

run() { # run CKDIR [extra args]: byolctl run into CKDIR
  local ck=$1; shift
  "$byolctl" run "$tmp/kill.cfg" --set train.checkpoint_dir="$ck" "$@"
}

run "$tmp/ref" > "$tmp/ref.log" 2>&1 || { cat "$tmp/ref.log"; echo "FAIL: reference run"; exit 1; }
ref="$tmp/ref/step-$steps.safetensors"
[ -s "$ref" ] || { echo "FAIL: no reference checkpoint"; exit 1; }

# wait_for COND: poll (5 ms) until COND holds or 60 s have passed.
wait_for() {
  local i
  for ((i = 0; i < 12000; i++)); do eval "$1" && return 0; sleep 0.005; done
  return 1
}
# A checkpoint is being written while its temporary file exists (curves.png and the metrics
# file have temporaries of their own, which do not count).
writing() { compgen -G "$1/*.safetensors.tmp.*" > /dev/null; }

# Odd rounds kill while a checkpoint is being written (its temporary file exists); even
# rounds between writes, a little after a step finished.
kills=0 midwrite=0
for round in 1 2 3 4 5 6 7 8; do
  resume=()
  [ -e "$tmp/ck/latest.safetensors" ] && resume=(--resume)
  # byolctl itself in the background (not a subshell), so the signal reaches it.
  "$byolctl" run "$tmp/kill.cfg" --set train.checkpoint_dir="$tmp/ck" "${resume[@]}" \
    > "$tmp/part.log" 2>&1 &
  pid=$!
  if ((round % 2)); then
    wait_for 'writing "$tmp/ck"' || true
  else
    wait_for 'grep -qs "^checkpoint" "$tmp/part.log"' || true
    sleep "0.0$((round * 3))"
  fi
  writing "$tmp/ck" && w=1 || w=0
  if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); midwrite=$((midwrite + w)); fi
  wait "$pid" 2>/dev/null || true
  if [ -e "$tmp/ck/latest.safetensors" ]; then
    # The newest checkpoint must load: check reads it as init_from, tensor by tensor.
    "$byolctl" check "$tmp/kill.cfg" --set train.checkpoint_dir="$tmp/ck" \
      --set train.init_from="$tmp/ck/latest.safetensors" > /dev/null 2> "$tmp/check.err" ||
      { echo "FAIL: after kill $round latest does not load: $(cat "$tmp/check.err")"; exit 1; }
  fi
done
echo "killed $kills runs with SIGKILL, $midwrite of them while writing a checkpoint"
[ "$kills" -ge 6 ] || { echo "FAIL: the runs finished before they could be killed"; exit 1; }
[ "$midwrite" -ge 2 ] || { echo "FAIL: too few kills landed inside a checkpoint write"; exit 1; }

run "$tmp/ck" --resume > "$tmp/last.log" 2>&1 || { cat "$tmp/last.log"; echo "FAIL: final resume"; exit 1; }
cmp "$ref" "$tmp/ck/step-$steps.safetensors" ||
  { echo "FAIL: the resumed run differs from the uninterrupted one"; exit 1; }
left=$(compgen -G "$tmp/ck/*.tmp.*" | wc -l || true)
[ "$left" -eq 0 ] || { echo "FAIL: $left stale temporary files after the final run"; exit 1; }
echo "SIGKILL + --resume: bit-identical to the uninterrupted run"

# SIGINT: finish the step, write a checkpoint, exit 0; then resume to the end.
"$byolctl" run "$tmp/kill.cfg" --set train.checkpoint_dir="$tmp/int" > "$tmp/int.log" 2>&1 &
pid=$!
wait_for 'grep -qs "^checkpoint" "$tmp/int.log"' || true
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$tmp/int.log"; echo "FAIL: SIGINT exit status $rc"; exit 1; }
grep -q '^stopped: checkpoint written' "$tmp/int.log" ||
  { cat "$tmp/int.log"; echo "FAIL: no stop message"; exit 1; }
[ ! -e "$tmp/int/step-$steps.safetensors" ] || { echo "FAIL: SIGINT did not stop early"; exit 1; }
run "$tmp/int" --resume > "$tmp/int2.log" 2>&1 || { cat "$tmp/int2.log"; echo "FAIL: resume after SIGINT"; exit 1; }
cmp "$ref" "$tmp/int/step-$steps.safetensors" ||
  { echo "FAIL: the run resumed after SIGINT differs"; exit 1; }
echo "SIGINT + --resume: bit-identical"

# A second SIGINT while a checkpoint is being written quits at once (killed by the signal);
# the newest complete checkpoint still loads. The second signal goes only after byolctl has
# answered the first (two signals sent before it runs again arrive as one); when the write
# and the exit beat it, the round proves nothing and is tried again, up to 5 times.
quit=0
for try in 1 2 3 4 5; do
  rm -rf "$tmp/ck2"
  "$byolctl" run "$tmp/kill.cfg" --set train.checkpoint_dir="$tmp/ck2" > "$tmp/int3.log" 2>&1 &
  pid=$!
  wait_for 'writing "$tmp/ck2"' || true
  kill -INT "$pid"
  wait_for 'grep -qs "again to quit now" "$tmp/int3.log" || ! kill -0 "$pid" 2>/dev/null' || true
  kill -INT "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" -eq 130 ]; then quit=1; break; fi
  [ "$rc" -eq 0 ] && grep -q '^stopped: checkpoint written' "$tmp/int3.log" ||
    { cat "$tmp/int3.log"; echo "FAIL: SIGINT twice: exit $rc, neither 130 nor a clean stop"; exit 1; }
done
[ "$quit" -eq 1 ] || { cat "$tmp/int3.log"; echo "FAIL: a second SIGINT never quit at once (5 tries, exit 0 each)"; exit 1; }
if [ -e "$tmp/ck2/latest.safetensors" ]; then
  "$byolctl" check "$tmp/kill.cfg" --set train.checkpoint_dir="$tmp/ck2" \
    --set train.init_from="$tmp/ck2/latest.safetensors" > /dev/null 2> "$tmp/check.err" ||
    { echo "FAIL: after a second SIGINT latest does not load: $(cat "$tmp/check.err")"; exit 1; }
fi
echo "a second SIGINT quits at once (try $try), nothing corrupt; kill and resume: ok"
