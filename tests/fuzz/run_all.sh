#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, BYOL_FUZZ=ON) and runs each for a bounded time, JOBS at
# a time, starting from its committed seed corpus (crash regressions included). Fails when any
# target crashes, leaks, trips UBSan, times out on one input or runs out of memory.
#   tests/fuzz/run_all.sh [SECONDS per target, default 30] [JOBS, default 2]
# Environment: BYOL_FUZZ_BUILD (build folder, default build-fuzz), CC (default clang-14),
# BYOL_FUZZ_TARGETS (a space-separated subset). New inputs go to a scratch folder, so the
# committed corpus only changes by hand; crashes are left in $BYOL_FUZZ_BUILD/fuzz-out.
set -euo pipefail
seconds=${1:-30}
jobs=${2:-2}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BYOL_FUZZ_BUILD:-$src/build-fuzz}
targets=${BYOL_FUZZ_TARGETS:-fuzz_config fuzz_settings fuzz_safetensors fuzz_idx fuzz_cifar fuzz_npy fuzz_png fuzz_jpeg}

start=$(date +%s)
cc=${CC:-$(command -v clang-14 || command -v clang || echo clang)}
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBYOL_FUZZ=ON -DBYOL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz_targets -j"$jobs" >/dev/null
echo "fuzz: built the targets in $(($(date +%s) - start)) s"

[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ] &&
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-14/bin/llvm-symbolizer}
# Known leaks in system libraries (see the file); everything else fails the run.
export LSAN_OPTIONS="suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
out=$build/fuzz-out
rm -rf "$out"
mkdir -p "$out"
# One target: its corpus copied to a scratch folder, then -max_total_time seconds of fuzzing.
# -timeout: one input may take at most 25 s (the largest images allowed decode in ~1 s);
# -rss_limit_mb: above every reader's own bounds, below the machine.
fuzz_one() {
  local t=$1 work=$out/$1
  mkdir -p "$work/corpus"
  cp "$src/tests/fuzz/corpus/$t/"* "$work/corpus/"
  if "$build/bin/$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 \
      -artifact_prefix="$work/" -print_final_stats=1 "$work/corpus" >"$work/log" 2>&1; then
    echo "fuzz: $t ok: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" |
      grep -o '[0-9]*$') runs, $(ls "$work/corpus" | wc -l) corpus files"
  else
    echo "fuzz: $t FAILED; the input is in $work/, the report:"
    grep -E -A25 'ERROR: |runtime error|==ERROR|Test unit written' "$work/log" | head -60
    return 1
  fi
}

status=0
pids=()
names=()
for t in $targets; do
  fuzz_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for p in "${pids[@]}"; do
  wait "$p" || status=1
done
echo "fuzz: $( [ $status -eq 0 ] && echo ok || echo FAILED ) in $(($(date +%s) - start)) s"
exit $status
