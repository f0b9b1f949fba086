#!/usr/bin/env bash
# Failures in data-parallel runs end every process within seconds, never a hang: a rank whose
# dataset file is broken (found when the data is opened, while the others wait for rank 0's
# state), a rank whose image turns out corrupt during training (while the others wait inside
# a step), and a rank killed outright. The failing rank's one-line message names it. Commands
# that run in one process refuse to run under mpirun; a global batch smaller than the process
# count is refused.
set -euo pipefail
. "$(dirname "$0")/mpi_lib.sh"  # arguments, skip without MPI, a scratch folder as cwd
write_small_cfg e.cfg
data="$(cd "$(dirname "$0")/../data" && pwd)/folder"

# within SECONDS WANT LOG ARGS...: mpirun ARGS... fails (non-zero) in under SECONDS, and LOG
# holds the line WANT.
within() {
  local limit=$1 want=$2 log=$3; shift 3
  local t0=$SECONDS rc=0
  "${mpi_env[@]}" timeout 60 "$mpiexec" "${mpi_opts[@]}" "$@" > "$log" 2>&1 || rc=$?
  local took=$((SECONDS - t0))
  [ "$rc" -ne 0 ] || { cat "$log"; echo "FAIL: mpirun exited 0"; exit 1; }
  [ "$rc" -ne 124 ] || { cat "$log"; echo "FAIL: mpirun hung (killed after 60 s)"; exit 1; }
  [ "$took" -le "$limit" ] || { cat "$log"; echo "FAIL: took $took s (limit $limit s)"; exit 1; }
  grep -qF -- "$want" "$log" || { cat "$log"; echo "FAIL: no '$want'"; exit 1; }
  ! grep -q '^training complete' "$log" || { cat "$log"; echo "FAIL: a run completed"; exit 1; }
  echo "ok: exit $rc after ${took}s: $(grep -F -- "$want" "$log" | head -1)"
}

# Rank 1 reads a truncated IDX file: 24 images of 8x8 declared, 100 bytes there.
head -c 1552 /dev/zero | tr '\0' '\200' > good.idx
printf '\x00\x00\x08\x03\x00\x00\x00\x18\x00\x00\x00\x08\x00\x00\x00\x08' | dd of=good.idx conv=notrunc status=none
{ head -c 16 good.idx; head -c 100 /dev/zero; } > broken.idx
idx=(--set model.encoder.in_channels=1 --set data=\{format=\"idx\"\;images=\"good.idx\"\;\})
within 20 "byolctl: rank 1: e.cfg: ./broken.idx: truncated" open.log \
  -np 1 "$byolctl" run e.cfg "${idx[@]}" : \
  -np 1 "$byolctl" run e.cfg "${idx[@]}" --set data.images=\"broken.idx\"

# Rank 1's copy of an image is corrupt; with 4 images, a global batch of 2 and no shuffling,
# rank 1 first reads it for step 2 (on the prefetch thread during step 1), when rank 0 is
# already training.
cp -r "$data" good && cp -r "$data" bad
head -c 40 good/dog/d.jpeg > bad/dog/d.jpeg
folder=(--set data=\{format=\"folder\"\;shuffle=false\;\} --set train.batch_size=2
        --set train.steps=10)
within 20 "byolctl: rank 1: e.cfg: " train.log \
  -np 1 "$byolctl" run e.cfg "${folder[@]}" --set data.images=\"good\" : \
  -np 1 "$byolctl" run e.cfg "${folder[@]}" --set data.images=\"bad\"
grep -q 'd.jpeg' train.log || { cat train.log; echo "FAIL: the message does not name the file"; exit 1; }
grep -q '^step 1/10' train.log || { cat train.log; echo "FAIL: failed before training"; exit 1; }

# A rank killed with SIGKILL in the middle of a run.
"${mpi_env[@]}" timeout 60 "$mpiexec" "${mpi_opts[@]}" -np 2 sh -c \
  'echo $$ > "pid.$OMPI_COMM_WORLD_RANK"; exec "$0" "$@"' "$byolctl" run e.cfg \
  --set train.steps=100000 --set train.checkpoint_every=0 > kill.log 2>&1 &
job=$!
for ((i = 0; i < 3000; i++)); do grep -qs '^step 10/' kill.log && [ -s pid.1 ] && break; sleep 0.01; done
t0=$SECONDS
kill -KILL "$(cat pid.1)"
rc=0
wait "$job" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ $((SECONDS - t0)) -le 20 ] ||
  { cat kill.log; echo "FAIL: after SIGKILL of rank 1: exit $rc after $((SECONDS - t0)) s"; exit 1; }
echo "ok: SIGKILL of rank 1 ended the run (exit $rc) after $((SECONDS - t0))s"

# Commands of one process, and a batch that cannot be split.
within 20 "eval runs in one process: start it without mpirun or srun" eval.log \
  -np 2 "$byolctl" eval e.cfg
within 20 "train.batch_size (from --set): 2 is the global batch, split over the 3" batch.log \
  -np 3 "$byolctl" run e.cfg --set train.batch_size=2
echo "MPI failures: ok"
