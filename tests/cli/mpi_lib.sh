# Shared by the MPI tests (tests/cli/mpi_*.sh), sourced first: their arguments are byolctl,
# st_compare, mpiexec and the build's BYOL_HAVE_MPI. A build without MPI skips (exit 77,
# ctest's SKIP); otherwise the test runs in a scratch folder, removed at exit.
byolctl=$1 st_compare=$2 mpiexec=$3 have_mpi=$4
if [ "$have_mpi" != "ON" ]; then
  echo "SKIP: byol-c was built without MPI (install libopenmpi-dev and openmpi-bin, reconfigure)"
  exit 77
fi
[ -x "$mpiexec" ] || { echo "FAIL: built with MPI, but no mpiexec ('$mpiexec'): install openmpi-bin"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# CI runs as root in a container; Open MPI refuses that unless told twice.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One thread per process (backend.threads = 1 in the configs); no core binding, and a process
# waiting in a collective yields its core instead of spinning: the ranks share a small machine
# with whatever else runs on it (spinning made these tests 3x slower on a busy one).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mpi_opts=(--oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
# Open MPI keeps allocations from MPI_Init that it never frees, many of them in components it
# unloads again (so no suppression can name them): under AddressSanitizer
# (tests/run_sanitized.sh) the processes mpirun starts skip the leak check at exit. The
# one-process runs here and the rest of the suite still check the core's memory.
mpi_env=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")

# mpi NP ARGS...: byolctl ARGS... on NP processes (more than the cores is fine).
mpi() {
  local np=$1; shift
  "${mpi_env[@]}" timeout 120 "$mpiexec" "${mpi_opts[@]}" -np "$np" "$byolctl" "$@"
}

# A small, well-conditioned network: two conv + BN + ReLU blocks (convolutions without bias,
# as before every batch norm in a ResNet) and the usual projector and predictor. Random crops
# and flips, shuffled mock data, Adam at 1e-4, a checkpoint after every step.
write_small_cfg() { # file
  cat > "$1" <<'CFG'
seed = 7;
backend = { name = "blas"; threads = 1; };
model = {
  encoder = { name = "layers"; in_channels = 3; layers = (
    { type = "conv"; name = "conv1"; out = 8; kernel = 3; pad = 1; bias = false; },
    { type = "bn"; name = "bn1"; }, { type = "relu"; name = "relu1"; },
    { type = "conv"; name = "conv2"; out = 16; kernel = 3; pad = 1; stride = 2; bias = false; },
    { type = "bn"; name = "bn2"; }, { type = "relu"; name = "relu2"; },
    { type = "avgpool"; name = "avgpool"; }, { type = "flatten"; } ); };
  image_size = 8; projection_size = 16; projection_hidden_size = 32;
};
augment_fn = ( { op = "random_resized_crop"; scale = [0.3, 1.0]; }, { op = "horizontal_flip"; } );
data = { format = "mock"; length = 64; };
train = { steps = 5; batch_size = 8; lr = 1e-4; checkpoint_every = 1; keep_checkpoints = 0; };
CFG
}
