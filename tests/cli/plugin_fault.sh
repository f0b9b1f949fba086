#!/usr/bin/env bash
# A fault inside a plugin names the plugin: a segfault, an abort or an exit() in an augment
# op's apply (on a worker thread) or in a plugin's init ends byolctl with one line naming the
# plugin file, the op and the call, and the process still ends as it would have (the signal's
# exit status 128 + N, or the plugin's exit status).
set -euo pipefail
byolctl=$1
plugin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
cat > "$tmp/crash.cfg" <<CFG
seed = 0;
plugins = [ "$plugin" ];
backend = { name = "blas"; threads = 2; };
model = {
  encoder = { name = "layers"; in_channels = 1; layers = (
    { type = "conv"; name = "conv1"; out = 2; kernel = 3; pad = 1; },
    { type = "avgpool"; name = "avgpool"; }, { type = "flatten"; } ); };
  image_size = 4; projection_size = 4; projection_hidden_size = 8;
};
data = { format = "mock"; length = 4; };
train = { steps = 1; batch_size = 2; checkpoint_every = 0; checkpoint_dir = "$tmp/ck"; };
augment_fn = ( { op = "crash"; mode = "segv"; } );
CFG

expect() { # status "stderr part" args...
  local want_rc=$1 want=$2 err rc=0
  shift 2
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq "$want_rc" ] || { echo "FAIL: exit $rc, not $want_rc: $err"; exit 1; }
  echo "$err" | grep -qF -- "$want" || { echo "FAIL: '$err' lacks '$want'"; exit 1; }
  echo "ok ($rc): $(echo "$err" | grep -F -- "$want")"
}
expect 139 "byolctl: SIGSEGV in plugin $plugin: augment op 'crash' (apply)" \
  "$byolctl" run "$tmp/crash.cfg"
expect 134 "byolctl: SIGABRT in plugin $plugin: augment op 'crash' (apply)" \
  "$byolctl" run "$tmp/crash.cfg" --set 'augment_fn=({op="crash"; mode="abort";})'
expect 3 "byolctl: exit() called by plugin $plugin: augment op 'crash' (apply)" \
  "$byolctl" run "$tmp/crash.cfg" --set 'augment_fn=({op="crash"; mode="exit";})'
expect 139 "byolctl: SIGSEGV in plugin $plugin: entry point (init)" \
  env BYOL_TEST_CRASH_INIT=segv "$byolctl" check "$tmp/crash.cfg"
expect 3 "byolctl: exit() called by plugin $plugin: entry point (init)" \
  env BYOL_TEST_CRASH_INIT=exit "$byolctl" check "$tmp/crash.cfg"
# A crash outside plugin code gets no plugin line.
err=$("$byolctl" check "$tmp/crash.cfg" 2>&1) || { echo "FAIL: check failed: $err"; exit 1; }
echo "byolctl plugin faults: ok"
