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

# write_images FILE N: an IDX file of N 8x8 images; image i is horizontal stripes, vertical
# stripes or a checkerboard as i % 3 is 0, 1 or 2 (N < 256).
write_images() {
  local out="" i x y v
  printf "\\x00\\x00\\x08\\x03\\x00\\x00\\x00\\x$(printf %02x "$2")\\x00\\x00\\x00\\x08\\x00\\x00\\x00\\x08" > "$1"
  for ((i = 0; i < $2; i++)); do
    out=""
    for ((y = 0; y < 8; y++)); do
      for ((x = 0; x < 8; x++)); do
        case $((i % 3)) in
          0) v=$(((y % 2) * 200 + 20 + i)) ;;
          1) v=$(((x % 2) * 200 + 20 + i)) ;;
          *) v=$((((x + y) % 2) * 200 + 20 + i)) ;;
        esac
        out+=$(printf '\\x%02x' "$v")
      done
    done
    printf "$out" >> "$1"
  done
}
# write_labels FILE N: its IDX label file (i % 3).
write_labels() {
  local i
  printf "\\x00\\x00\\x08\\x01\\x00\\x00\\x00\\x$(printf %02x "$2")" > "$1"
  for ((i = 0; i < $2; i++)); do printf "\\x$(printf %02x $((i % 3)))" >> "$1"; done
}

# tiny_model: the config lines (seed, backend, model, augment_fn) of a tiny `layers` encoder on
# 8x8 grayscale images for the evaluation tests; a test adds its data, train and eval groups.
tiny_model() {
  cat <<'CFG'
seed = 1;
backend = { name = "blas"; threads = 2; };
model = { encoder = { name = "layers"; in_channels = 1; layers = (
  { type = "conv"; name = "conv1"; out = 8; kernel = 3; pad = 1; },
  { type = "relu"; name = "relu"; }, { type = "avgpool"; name = "avgpool"; },
  { type = "flatten"; }, { type = "linear"; name = "fc"; out = 3; } ); };
  image_size = 8; projection_size = 6; projection_hidden_size = 16; };
augment_fn = ( { op = "normalize"; mean = [0.5]; std = [0.25]; } );
CFG
}
