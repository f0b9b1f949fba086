#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer (BYOL_SANITIZE=ON, -O2 -g)
# and runs the whole ctest suite once under them. Left out, because they cannot run under ASan:
#   memcheck_*          valgrind and ASan both own the address space; valgrind refuses ASan
#                       programs (the same suites run here without valgrind)
#   install_out_of_tree links an uninstrumented embedder against the instrumented libbyol, which
#                       ASan refuses ("ASan runtime does not come first in initial library list")
#   byolctl_plugin_fault crashes and exits inside a plugin on purpose: ASan's own SEGV report
#                       and LeakSanitizer's check at exit (of a process cut short) replace the
#                       exit status and the one line under test
# Left out to keep CI short (they repeat, at full size and several times over, code paths the
# unit suites already run under ASan here; the plain build runs them):
#   byolctl_run_default, byolctl_kill_resume, byolctl_collapse_default (200 steps of the
#   default config), byolctl_labels_unused (the shipped recipes on the full training split;
#   test_trainer's labels case runs here), byolctl_onnx (trains and exports
#   ResNet-18/34/50; byolctl_onnx_cli runs the same export code here on a small network)
# LeakSanitizer runs with use_tls=0 and tests/fuzz/lsan.supp: see that file for why.
#   tests/run_sanitized.sh [BUILD_DIR, default build-asan] [JOBS, default 2]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-asan}
jobs=${2:-2}
start=$(date +%s)
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBYOL_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$jobs" >/dev/null
echo "sanitize: built in $(($(date +%s) - start)) s"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0:use_tls=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
ctest --test-dir "$build" -j"$jobs" --output-on-failure \
  -E '^memcheck_|^install_out_of_tree$|^byolctl_plugin_fault$|^byolctl_run_default$|^byolctl_kill_resume$|^byolctl_collapse_default$|^byolctl_labels_unused$|^byolctl_onnx$'
echo "sanitize: ok in $(($(date +%s) - start)) s"
