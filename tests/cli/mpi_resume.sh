#!/usr/bin/env bash
# Resuming data-parallel runs: a 2-process run stopped by SIGINT (sent to rank 1 only: the
# processes agree on the stop, rank 0 writes the checkpoint, both exit 0) and resumed ends
# bit-identical to an uninterrupted one; a 2-process checkpoint resumes on 1 and on 3
# processes, and their next steps agree with the 2-process one.
set -euo pipefail
. "$(dirname "$0")/mpi_lib.sh"  # arguments, skip without MPI, a scratch folder as cwd
write_small_cfg r.cfg
steps=300
set_run=(--set train.steps=$steps --set train.checkpoint_every=20 --set train.keep_checkpoints=0)

mpi 2 run r.cfg "${set_run[@]}" --set train.checkpoint_dir=\"ref\" > ref.log 2>&1 ||
  { cat ref.log; echo "FAIL: the uninterrupted run"; exit 1; }

# wait_for COND: poll (10 ms) until COND holds or 60 s have passed.
wait_for() {
  local i
  for ((i = 0; i < 6000; i++)); do eval "$1" && return 0; sleep 0.01; done
  return 1
}
# Each process writes its pid, so the signal goes to one rank and not to mpirun.
"${mpi_env[@]}" timeout 120 "$mpiexec" "${mpi_opts[@]}" -np 2 sh -c \
  'echo $$ > "pid.$OMPI_COMM_WORLD_RANK"; exec "$0" "$@"' "$byolctl" run r.cfg "${set_run[@]}" \
  --set train.checkpoint_dir=\"int\" > int.log 2>&1 &
job=$!
wait_for '[ -e int/step-20.safetensors ] && [ -s pid.1 ]' ||
  { cat int.log; echo "FAIL: the run did not start"; exit 1; }
kill -INT "$(cat pid.1)"
rc=0
wait "$job" || rc=$?
[ "$rc" -eq 0 ] || { cat int.log; echo "FAIL: SIGINT to rank 1: mpirun exit $rc"; exit 1; }
grep -q '^stopped: checkpoint written' int.log || { cat int.log; echo "FAIL: no stop message"; exit 1; }
[ ! -e "int/step-$steps.safetensors" ] || { echo "FAIL: SIGINT did not stop the run early"; exit 1; }
stopped=$(grep -a -o '"step":"[0-9]*"' int/latest.safetensors | grep -o '[0-9]*')
echo "SIGINT to rank 1 stopped both processes after step $stopped"
mpi 2 run r.cfg "${set_run[@]}" --set train.checkpoint_dir=\"int\" --resume > int2.log 2>&1 ||
  { cat int2.log; echo "FAIL: --resume after SIGINT"; exit 1; }
cmp "ref/step-$steps.safetensors" "int/step-$steps.safetensors" ||
  { echo "FAIL: the resumed run differs from the uninterrupted one"; exit 1; }
echo "2 processes, stopped and resumed: bit-identical to the uninterrupted run"

# Another process count resumes the same state: one step from ref's step 20 on 1, 2 and 3.
for np in 1 2 3; do
  mkdir "from$np"
  cp ref/step-20.safetensors "from$np/latest.safetensors"
  if [ "$np" -eq 1 ]; then
    "$byolctl" run r.cfg --set train.steps=21 --set train.checkpoint_dir=\"from1\" --resume \
      > from1.log 2>&1 || { cat from1.log; echo "FAIL: resuming on 1 process"; exit 1; }
  else
    mpi "$np" run r.cfg --set train.steps=21 --set train.checkpoint_dir=\"from$np\" --resume \
      > "from$np.log" 2>&1 || { cat "from$np.log"; echo "FAIL: resuming on $np processes"; exit 1; }
  fi
  grep -q '^step 21/21' "from$np.log" || { cat "from$np.log"; echo "FAIL: did not resume at 20"; exit 1; }
done
# As in mpi_parity.sh: biases that only feed a batch norm have no gradient but rounding noise.
noise=(--skip projector.0.bias --skip projector.3.bias --skip predictor.0.bias)
for np in 1 3; do
  echo "step 21 resumed on $np vs 2 processes:"
  "$st_compare" from2/step-21.safetensors "from$np/step-21.safetensors" --rtol 1e-5 "${noise[@]}" ||
    { echo "FAIL: the step after resuming on $np processes differs"; exit 1; }
done
echo "MPI resume: ok"
