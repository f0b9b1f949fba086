# Shared by the byolctl CLI tests (source it after setting $byolctl).

# expect_exit EXIT "message part" args...: byolctl args... exits EXIT with exactly one line on
# stderr that contains the message part.
expect_exit() {
  local want_rc=$1 want=$2; shift 2
  local err rc=0
  err=$("$byolctl" "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq "$want_rc" ] || { echo "FAIL: exit $rc (not $want_rc) for: $*"; exit 1; }
  [ "$(echo "$err" | wc -l)" -eq 1 ] || { echo "FAIL: not one line: $err"; exit 1; }
  echo "$err" | grep -qF -- "$want" || { echo "FAIL: '$err' lacks '$want'"; exit 1; }
  echo "ok: $err"
}

# expect_fail "message part" args...: a failure (exit 1) with that one-line message.
expect_fail() {
  expect_exit 1 "$@"
}

# tiny_checkpoint DIR: a 2-step run of a tiny `layers` encoder (conv, bn, relu, avgpool, flatten,
# fc) on mock data; its checkpoint is DIR/ck/latest.safetensors. The export tests use it.
tiny_checkpoint() {
  local dir=$1
  cat > "$dir/tiny.cfg" <<CFG
backend = { name = "blas"; threads = 1; };
model = {
  encoder = { name = "layers"; in_channels = 1; layers = (
    { type = "conv"; name = "conv1"; out = 4; kernel = 3; pad = 1; },
    { type = "bn"; name = "bn1"; }, { type = "relu"; name = "relu"; },
    { type = "avgpool"; name = "avgpool"; }, { type = "flatten"; },
    { type = "linear"; name = "fc"; out = 3; } ); };
  image_size = 8; hidden_layer = "avgpool"; projection_size = 8; projection_hidden_size = 16;
};
data = { format = "mock"; length = 16; };
train = { steps = 2; batch_size = 4; checkpoint_every = 0; checkpoint_dir = "$dir/ck"; };
CFG
  "$byolctl" run "$dir/tiny.cfg" > "$dir/run.log" 2>&1 || { cat "$dir/run.log"; echo "FAIL: run"; exit 1; }
}
