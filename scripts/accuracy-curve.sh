#!/usr/bin/env bash
# Accuracy against training time, after the run: scores the random init and every step-N
# checkpoint that a config's run kept (train.checkpoint_dir; train.keep_checkpoints = 0 keeps
# them all) with `byolctl eval`, writes OUT.csv (step, minutes, linear, knn; accuracies in %)
# and draws OUT.png (gnuplot; without it only the CSV is written):
#   scripts/accuracy-curve.sh CFG OUT.png [--set KEY=VALUE]...
# The minutes are the run's own training time at that step (elapsed_s in its metrics.file);
# empty when the run wrote no metrics file, and the picture is then drawn against steps. The
# extra arguments go to every `byolctl eval` (e.g. --set backend.threads=1). BYOLCTL names the
# binary (default: build/bin/byolctl). Unlike the kNN monitor (eval.every), this costs the run
# nothing, and it scores the linear probe too.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CFG OUT.png [--set KEY=VALUE]..." >&2; exit 2; }
cfg=$1 out=$2
shift 2
byolctl=${BYOLCTL:-build/bin/byolctl}
csv=${out%.png}.csv
[ "$csv" != "$out" ] || { echo "$0: $out: the picture's name must end in .png" >&2; exit 2; }

resolved=$("$byolctl" check "$cfg" "$@") || exit 1
ckdir=$(awk -F'"' '/^train = \{/ { t = 1 } t && /^  checkpoint_dir = / { print $2; exit }' <<<"$resolved")
metrics=$(awk -F'"' '/^metrics = \{/ { m = 1 } m && /^  file = / { print $2; exit }' <<<"$resolved")
steps=$([ ! -d "$ckdir" ] || find "$ckdir" -maxdepth 1 -name 'step-*.safetensors' |
  sed -n 's|.*/step-\([0-9]*\)\.safetensors$|\1|p' | sort -n)
[ -n "$steps" ] || { echo "$0: $cfg: train.checkpoint_dir \"$ckdir\" holds no step-N.safetensors (train with checkpoint_every > 0)" >&2; exit 1; }

# minutes STEP: the run's elapsed time at STEP, from its metrics file (empty if none)
minutes() {
  [ "$1" -eq 0 ] && { echo 0; return; }
  [ -n "$metrics" ] && [ -r "$metrics" ] || return 0
  awk -F, -v s="$1" 'NR > 1 && $1 == s { printf "%.2f", $6 / 60; exit }' "$metrics"
}

mkdir -p "$(dirname "$out")"
part=$csv.part
trap 'rm -f "$part"' EXIT
echo "step,minutes,linear,knn" > "$part"
for step in 0 $steps; do
  ck=none
  [ "$step" -eq 0 ] || ck=$ckdir/step-$step.safetensors
  log=$("$byolctl" eval "$cfg" --checkpoint "$ck" --set eval.baseline=false "$@" 2>&1) ||
    { echo "$log" | tail -1 >&2; exit 1; }
  line=$(grep -m1 '^kNN (k=[0-9]*) top-1: ' <<<"$log") ||
    { echo "$0: byolctl eval --checkpoint $ck printed no result line" >&2; exit 1; }
  k=$(sed 's/^kNN (k=\([0-9]*\)).*/\1/' <<<"$line")
  knn=$(sed 's/^kNN (k=[0-9]*) top-1: \([0-9.]*\)%.*/\1/' <<<"$line")
  linear=$(sed 's/.*linear probe top-1: \([0-9.]*\)%.*/\1/' <<<"$line")
  echo "$step,$(minutes "$step"),$linear,$knn" >> "$part"
  echo "step $step: linear $linear%, kNN $knn%"
done
mv "$part" "$csv"
echo "$csv"

command -v gnuplot >/dev/null || { echo "$0: gnuplot not found (apt-get install gnuplot-nox): no picture" >&2; exit 0; }
if awk -F, 'NR > 1 && $2 == "" { bad = 1 } END { exit !bad }' "$csv"; then
  xcol=1 xlabel="training step"
else
  xcol=2 xlabel="minutes of training (the run's own clock)"
fi
gnuplot <<GP
set terminal pngcairo size 800,480 font ",11"
set output "$out"
set title "accuracy on the test split against training: $(basename "$cfg")"
set datafile separator ","
set key autotitle columnhead bottom right
set xlabel "$xlabel"
set ylabel "top-1 on the test split (%)"
set grid
set offsets 0, 0, 0.5, 0.5
plot "$csv" using $xcol:3 with linespoints lw 2 pt 7 title "linear probe", \
     "$csv" using $xcol:4 with linespoints lw 2 pt 5 title "kNN (k = $k)"
GP
echo "$out"
