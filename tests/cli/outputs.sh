#!/usr/bin/env bash
# No output destroys an input, and every output is checked before any work (issue 17, items 2
# and 3): an output that is the same file (device and inode) as an input or another output is
# refused, naming both; a place that cannot take a new file (a regular file where a folder
# goes, a path under a regular file, a folder where a file goes, a missing folder) is refused
# before the first step, naming the setting or option, and the probe leaves nothing behind. A
# fresh run's metrics file replaces the previous one only at its first row; --resume appends
# only to a metrics file that is byol-c's own. (Tests run as root, so no permission cases.)
set -euo pipefail
byolctl=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
. "$here/lib.sh"
fail() { echo "FAIL: $*"; exit 1; }
cd "$tmp"

# The bad-input catalogue's tiny model on mock data: one step, checkpoints in "checkpoints".
cp "$here/../bad-inputs/base.cfg" base.cfg
"$byolctl" run base.cfg --set 'metrics={file="m.csv";}' > /dev/null
cp "$here/../bad-inputs/files/npy_images.npy" imgs.npy
ln checkpoints/latest.safetensors hard.safetensors
ln -s checkpoints/latest.safetensors soft.safetensors
printf 'x' > plain
sums() { cksum base.cfg imgs.npy checkpoints/* m.csv; }
before=$(sums)

# ---- an output is never an input or another output
expect_fail "byolctl: OUT checkpoints/latest.safetensors is the same file as CKPT checkpoints/latest.safetensors" \
  export checkpoints/latest.safetensors checkpoints/latest.safetensors
expect_fail "byolctl: OUT hard.safetensors is the same file as CKPT checkpoints/latest.safetensors" \
  export checkpoints/latest.safetensors hard.safetensors
expect_fail "byolctl: OUT checkpoints/latest.safetensors is the same file as CKPT soft.safetensors" \
  export soft.safetensors checkpoints/latest.safetensors
expect_fail "byolctl: base.cfg: --labels x.npy is the same file as --out x.npy" \
  embed base.cfg --out x.npy --labels x.npy
expect_fail "byolctl: base.cfg: --projection ./x.npy is the same file as --out x.npy" \
  embed base.cfg --out x.npy --projection ./x.npy
expect_fail "byolctl: base.cfg: --out base.cfg is the same file as the config base.cfg" \
  embed base.cfg --out base.cfg
expect_fail "byolctl: base.cfg: --out hard.safetensors is the same file as --checkpoint checkpoints/latest.safetensors" \
  embed base.cfg --checkpoint checkpoints/latest.safetensors --out hard.safetensors
expect_fail "byolctl: base.cfg: --out checkpoints/latest.safetensors is the same file as train.checkpoint_dir checkpoints/latest.safetensors" \
  embed base.cfg --out checkpoints/latest.safetensors
expect_fail "byolctl: base.cfg: --labels imgs.npy is the same file as data.images imgs.npy" \
  embed base.cfg --set 'data={format="npy"; images="imgs.npy";}' --out e.npy --labels imgs.npy
expect_fail "byolctl: base.cfg: metrics.file base.cfg is the same file as the config base.cfg" \
  run base.cfg --set 'metrics={file="base.cfg"; format="csv";}'
expect_fail "byolctl: base.cfg: metrics.file ./imgs.npy is the same file as data.images imgs.npy" \
  run base.cfg --set 'data={format="npy"; images="imgs.npy";}' \
  --set 'metrics={file="./imgs.npy"; format="csv";}'
expect_fail "byolctl: base.cfg: train.checkpoint_dir checkpoints/latest.safetensors is the same file as train.init_from checkpoints/latest.safetensors" \
  run base.cfg --set train.init_from=checkpoints/latest.safetensors
expect_fail "byolctl: base.cfg: train.checkpoint_dir checkpoints/step-1.safetensors is the same file as train.init_from checkpoints/step-1.safetensors" \
  run base.cfg --set train.init_from=checkpoints/step-1.safetensors
[ "$(sums)" = "$before" ] || fail "a refused command changed an input"
[ ! -e x.npy ] && [ ! -e e.npy ] || fail "a refused embed wrote a file"
# From another folder, the same checkpoint starts a new run; --resume reads latest as it must.
"$byolctl" run base.cfg --set train.init_from=checkpoints/latest.safetensors --set train.checkpoint_dir=ck3 > /dev/null
"$byolctl" run base.cfg --resume > /dev/null

# ---- every output is checked before any work
# A refused checkpoint_dir stops a long run before its first step, printing no progress.
rc=0
out=$(timeout 120 "$byolctl" run base.cfg --set train.steps=1000000 \
  --set train.checkpoint_dir=plain 2> err.txt) || rc=$?
[ "$rc" -eq 1 ] && [ -z "$out" ] || fail "a run with checkpoint_dir on a file trained (exit $rc): $out"
grep -qxF "byolctl: base.cfg: train.checkpoint_dir: plain: cannot write there: Not a directory" err.txt ||
  fail "$(cat err.txt)"
expect_fail "byolctl: base.cfg: train.checkpoint_dir: plain/ck: cannot write there: Not a directory" \
  run base.cfg --set train.checkpoint_dir=plain/ck
expect_fail "byolctl: base.cfg: metrics.file (from --set): plain: cannot write there: Not a directory" \
  run base.cfg --set 'metrics={file="plain/m.csv";}'
expect_fail "byolctl: base.cfg: metrics.file (from --set): checkpoints: cannot write there: Is a directory" \
  run base.cfg --set 'metrics={file="checkpoints"; format="csv";}'
expect_fail "byolctl: base.cfg: metrics.tensorboard (from --set): plain: cannot write there: Not a directory" \
  run base.cfg --set 'metrics={tensorboard="plain";}'
expect_fail "byolctl: base.cfg: --out: plain: cannot write there: Not a directory" \
  embed base.cfg --out plain/e.npy
expect_fail "byolctl: base.cfg: --labels: nodir: cannot write there: No such file or directory" \
  embed base.cfg --set 'data={format="npy"; images="imgs.npy";}' --out e.npy --labels nodir/y.npy
expect_fail "byolctl: base.cfg: --projection: checkpoints: cannot write there: Is a directory" \
  embed base.cfg --out e.npy --projection checkpoints
expect_fail "byolctl: OUT: plain: cannot write there: Not a directory" \
  export checkpoints/latest.safetensors plain/x.safetensors
# The probe makes the folders a run would make, and removes them again.
expect_fail "byolctl: base.cfg: metrics.tensorboard (from --set): plain/runs: cannot write there: Not a directory" \
  run base.cfg --set train.checkpoint_dir=new/deep/ck --set 'metrics={file="new2/a/m.csv"; tensorboard="plain/runs";}'
[ ! -e new ] && [ ! -e new2 ] || fail "a refused run left folders behind"
[ -z "$(find . -name '.byol-probe*')" ] || fail "a probe file was left behind"
"$byolctl" run base.cfg --set train.checkpoint_dir=new/deep/ck \
  --set 'metrics={file="new2/a/m.csv"; tensorboard="new3/runs";}' > /dev/null
[ -f new/deep/ck/latest.safetensors ] && [ -f new2/a/m.csv ] && [ -d new3/runs ] ||
  fail "a run did not make its folders"

# ---- a fresh run's metrics file replaces the previous one only at its first row
cp m.csv m.before
expect_fail "c/x.png: corrupt PNG (truncated file)" run base.cfg --set train.checkpoint_dir=ck4 \
  --set "data={format=\"folder\"; images=\"$here/../bad-inputs/files/png_truncated\";}" \
  --set 'metrics={file="m.csv";}'
cmp -s m.csv m.before || fail "a run that failed before its first row cut the metrics file"
[ -z "$(ls -a | grep '^m\.csv\.tmp\.')" ] || fail "a temporary metrics file was left behind"
"$byolctl" run base.cfg --set train.checkpoint_dir=ck4 --set train.steps=3 \
  --set 'metrics={file="m.csv";}' > /dev/null
[ "$(wc -l < m.csv)" -eq 4 ] && [ "$(tail -n 1 m.csv | cut -d, -f1)" = 3 ] ||
  fail "a fresh run did not replace the metrics file: $(cat m.csv)"

# ---- --resume appends only to a metrics file of its own
printf '{"epoch":1,"acc":0.5}\n' > foreign.jsonl
cp foreign.jsonl foreign.before
expect_fail "byolctl: base.cfg: metrics.file (from --set): foreign.jsonl: line 1 is not a metrics row" \
  run base.cfg --resume --set 'metrics={file="foreign.jsonl";}'
cmp -s foreign.jsonl foreign.before || fail "--resume changed a foreign .jsonl"
head -c 4096 "$byolctl" > binary.csv
cp binary.csv binary.before
expect_fail "binary.csv: its header \"?ELF" run base.cfg --resume --set 'metrics={file="binary.csv";}'
cmp -s binary.csv binary.before || fail "--resume changed a binary file"
printf 'step,loss,lr,tau,images_per_s,elapsed_s\n1,2,3,4,5,6\nnot a row\n' > rows.csv
expect_fail "rows.csv: line 3 is not a metrics row (\"not a row\")" \
  run base.cfg --resume --set 'metrics={file="rows.csv";}'
mkfifo pipe.csv
expect_fail "pipe.csv: not a regular file: move it away to resume" \
  run base.cfg --resume --set 'metrics={file="pipe.csv";}'
# Its own file: the rows after the checkpoint's step (1) go, and a torn last line; the rest
# stays.
head -n 2 m.before > own.csv
printf '2,1,1,1,1,1,1\n3,1,1,1,1,1,1\n4,1,1' >> own.csv
want=$(head -n 2 m.before)
"$byolctl" run base.cfg --resume --set 'metrics={file="own.csv";}' > /dev/null
[ "$(cat own.csv)" = "$want" ] || fail "--resume did not keep its own rows: $(cat own.csv)"
# ---- an option without its value, or with an empty one, is a usage error (exit 2), not a
# default: --checkpoint "" once embedded the initial weights and exited 0
expect_exit 2 "byolctl: --checkpoint needs a value" embed base.cfg --checkpoint "" --out e.npy
expect_exit 2 "byolctl: --out needs a value" embed base.cfg --out ""
expect_exit 2 "byolctl: --set needs a value" check base.cfg --set
expect_exit 2 "byolctl: --plugin-path needs a value" plugins --plugin-path
expect_exit 2 "byolctl: --drop needs a value" export checkpoints/latest.safetensors e.safetensors --drop
expect_exit 2 "byolctl: export needs CKPT and OUT.safetensors" export checkpoints/latest.safetensors ""
[ ! -e e.npy ] && [ ! -e e.safetensors ] || fail "a usage error wrote a file"

# ---- a FIFO where a baseline cache entry goes is warned about and left alone, not waited on
cat > ev.cfg <<'EOF'
@include "base.cfg"
eval = { format = "npy"; train_images = "imgs.npy"; train_labels = "labels.npy";
         test_images = "imgs.npy"; test_labels = "labels.npy"; knn_k = 1; };
EOF
printf '\x93NUMPY\x01\x00\x76\x00%-117s\n' "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }" > labels.npy
printf '\0\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0' >> labels.npy
"$byolctl" eval ev.cfg --checkpoint none > /dev/null 2>&1 || fail "eval of the tiny config failed"
entry=$(ls "$XDG_CACHE_HOME"/byol-c/baseline-*.txt)
rm "$entry" && mkfifo "$entry"
timeout 60 "$byolctl" eval ev.cfg --checkpoint none > /dev/null 2> eval.err ||
  fail "eval with a FIFO in the cache failed or hung: $(cat eval.err)"
grep -q "cannot open it: not a regular file" eval.err && [ -p "$entry" ] ||
  fail "the cache FIFO: $(cat eval.err)"
echo "byolctl outputs: ok"
