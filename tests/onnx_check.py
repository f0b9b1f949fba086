#!/usr/bin/python3
"""byolctl export to ONNX, proven by consumers that share no code with byol-c (issue 19).

For each config: a few training steps on real Fashion-MNIST images, `byolctl export CKPT
OUT.onnx --with-projection`, then
  - onnx.checker.check_model(full_check=True) (python3-onnx) accepts the file: IR 8, opset 17,
    input "images" (N, C, H, W) with a symbolic N, outputs "embedding" and "projection";
  - OpenCV's DNN module (python3-opencv, cv2.dnn.readNetFromONNX) runs it on the first test
    images, prepared as the README's eval transform says (1 channel, 28 px: x / 255, then the
    config's normalize), and its embeddings and projections equal `byolctl embed`'s within
    1e-4 relative (max |a - b| / max |b| per row).
Exit 77 (ctest's skip) when python3-onnx or python3-opencv is missing.

usage: onnx_check.py BYOLCTL [CONFIG...]   (CONFIG: default, resnet18, resnet18-cifar, resnet34,
                                            resnet50, layers, simsiam, sem; default: all)
"""
import gzip
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import cv2
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e.name} is missing (scripts/deps.sh installs python3-onnx, python3-opencv)")
    sys.exit(77)

FMNIST = "/usr/share/datasets/fashion-mnist"
N_IMAGES = 16
TOL = 1e-4
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The default config's encoder is taken from configs/default.cfg itself (--set on top).
TINY = "train.steps=3", "train.warmup_steps=0", "train.batch_size=4", "backend.name=blas", "backend.threads=2"

LAYER_TYPES = """
  encoder = { name = "layers"; in_channels = 1; layers = (
    { type = "conv"; name = "conv1"; out = 8; kernel = 3; pad = 1; bias = true; },
    { type = "bn"; name = "bn1"; }, { type = "relu"; name = "relu"; },
    { type = "maxpool"; name = "pool"; kernel = 3; stride = 2; pad = 1; },
    { type = "residual"; name = "layer1"; out = 8; },
    { type = "residual"; name = "layer2"; out = 16; stride = 2; },
    { type = "bn"; name = "bn_after_add"; affine = false; },
    { type = "flatten"; name = "flat"; },
    { type = "linear"; name = "fc_on_map"; out = 32; },
    { type = "relu"; name = "relu2"; },
    { type = "bn"; name = "bn_on_features"; },
    { type = "conv"; name = "conv_on_features"; out = 12; kernel = 1; },
    { type = "avgpool"; name = "avgpool"; }, { type = "flatten"; name = "features"; },
    { type = "linear"; name = "fc"; out = 10; bias = false; } ); };
  hidden_layer = "fc";
"""


SMALL = """
  encoder = { name = "layers"; in_channels = 1; layers = (
    { type = "conv"; name = "conv1"; out = 8; kernel = 3; stride = 2; pad = 1; bias = false; },
    { type = "bn"; name = "bn1"; }, { type = "relu"; name = "relu"; },
    { type = "residual"; name = "layer1"; out = 16; stride = 2; },
    { type = "avgpool"; name = "avgpool"; } ); };
  hidden_layer = "avgpool";
"""


def resnet(name, stem):
    return f"""
  encoder = {{ name = "{name}"; in_channels = 1; stem = "{stem}"; num_classes = 10; }};
  hidden_layer = "avgpool";
"""


def small_cfg(tmp, model, extra=""):
    return f"""
seed = 1;
backend = {{ name = "blas"; threads = 2; }};
model = {{ {model}
  image_size = 28; projection_size = 16; projection_hidden_size = 32; {extra} }};
augment_fn = ( {{ op = "horizontal_flip"; p = 0.5; }},
               {{ op = "normalize"; mean = [0.25]; std = [0.5]; }} );
data = {{ format = "idx"; images = "{tmp}/images.gz"; }};
train = {{ steps = 3; batch_size = 4; checkpoint_every = 0; checkpoint_dir = "{tmp}/ck"; }};
"""


def configs(tmp):
    """name -> (config file text or None for configs/default.cfg, normalize mean, std)."""
    return {
        "default": (None, 0.286, 0.353),
        "resnet18": (small_cfg(tmp, resnet("resnet18", "imagenet")), 0.25, 0.5),
        "resnet18-cifar": (small_cfg(tmp, resnet("resnet18", "cifar")), 0.25, 0.5),
        "resnet34": (small_cfg(tmp, resnet("resnet34", "imagenet")), 0.25, 0.5),
        "resnet50": (small_cfg(tmp, resnet("resnet50", "imagenet")), 0.25, 0.5),
        "layers": (small_cfg(tmp, LAYER_TYPES), 0.25, 0.5),
        # SimSiam: bias-free linears, the projector ends in a batch norm without affine.
        "simsiam": (small_cfg(tmp, SMALL, "use_momentum = false;"), 0.25, 0.5),
        # Simplicial embeddings: a grouped softmax in the projector.
        "sem": (small_cfg(tmp, SMALL,
                          "use_simplicial_embeddings = true; sem_num_simplices = 4; "
                          "sem_simplex_dim = 4; sem_temperature = 0.5;"), 0.25, 0.5),
    }


def read_idx(path, n):
    with gzip.open(path, "rb") as f:
        magic, count = struct.unpack(">II", f.read(8))
        dims = struct.unpack(">" + "I" * ((magic & 0xFF) - 1), f.read(4 * ((magic & 0xFF) - 1)))
        size = int(np.prod(dims)) if dims else 1
        data = np.frombuffer(f.read(n * size), dtype=np.uint8)
    return magic, dims, data.reshape((n,) + tuple(dims))


def write_idx(path, magic, dims, data):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", magic, len(data)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(np.ascontiguousarray(data).tobytes())


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def rel_diff(a, b):
    """max over rows of max |a - b| / max |b| (b the reference row)."""
    scale = np.maximum(np.abs(b).max(axis=1, keepdims=True), 1e-12)
    return float((np.abs(a - b) / scale).max())


def check_model(path, c, hw, outputs):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    assert m.ir_version == 8, m.ir_version
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)], m.opset_import
    (inp,) = m.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "images" and dims == ["N", c, hw, hw], (inp.name, dims)
    assert [o.name for o in m.graph.output] == outputs, [o.name for o in m.graph.output]
    for o in m.graph.output:
        assert o.type.tensor_type.shape.dim[0].dim_param == "N"
    return sorted({n.op_type for n in m.graph.node})


def opencv_forward(path, x, outputs):
    net = cv2.dnn.readNetFromONNX(path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(x, "images")
    got = net.forward(outputs)
    return [np.asarray(g, dtype=np.float64).reshape(len(x), -1) for g in got]


def check_config(byolctl, tmp, name, text, mean, std, x_raw):
    work = os.path.join(tmp, name)
    os.makedirs(work)
    if text is None:
        cfg = os.path.join(ROOT, "configs", "default.cfg")
        sets = [*TINY, f"train.checkpoint_dir={work}/ck", "train.checkpoint_every=0",
                f"data.images={tmp}/images.gz", "data.labels=" + f"{tmp}/labels.gz"]
    else:
        cfg = os.path.join(work, "model.cfg")
        with open(cfg, "w") as f:
            f.write(text.replace(f"{tmp}/ck", f"{work}/ck"))
        sets = []
    # embed's test split: the same real test images as OpenCV gets.
    sets += ['eval={format="idx"; train_images="%s/images.gz"; train_labels="%s/labels.gz"; '
             'test_images="%s/test.gz"; test_labels="%s/test-labels.gz";}' % ((tmp,) * 4)]
    setargs = [a for s in sets for a in ("--set", s)]
    run([byolctl, "run", cfg, *setargs], cwd=work)
    ckpt = os.path.join(work, "ck", "latest.safetensors")
    model = os.path.join(work, "encoder.onnx")
    run([byolctl, "export", ckpt, model, "--with-projection"], cwd=work)
    ops = check_model(model, 1, 28, ["embedding", "projection"])
    # Without --with-projection: the embedding alone.
    run([byolctl, "export", ckpt, os.path.join(work, "emb.onnx")], cwd=work)
    check_model(os.path.join(work, "emb.onnx"), 1, 28, ["embedding"])
    emb, proj = os.path.join(work, "emb.npy"), os.path.join(work, "proj.npy")
    run([byolctl, "embed", cfg, *setargs, "--split", "test", "--checkpoint", ckpt,
         "--out", emb, "--projection", proj], cwd=work)
    want = [np.load(emb).astype(np.float64), np.load(proj).astype(np.float64)]
    x = ((x_raw.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)
    x = x.reshape(len(x_raw), 1, 28, 28)
    got = opencv_forward(model, x, ["embedding", "projection"])
    diffs = []
    for what, g, w in zip(("embedding", "projection"), got, want):
        assert g.shape == w.shape, (what, g.shape, w.shape)
        d = rel_diff(g, w)
        diffs.append(d)
        if not d <= TOL:
            sys.exit(f"FAIL: {name}: OpenCV's {what} differs from byolctl embed's by {d:.3g} "
                     f"relative (tolerance {TOL})")
    print(f"ok: {name}: checker accepts IR 8 / opset 17 ({', '.join(ops)}); OpenCV "
          f"{cv2.__version__} vs byolctl embed on {len(x)} Fashion-MNIST test images: max "
          f"relative difference embedding {diffs[0]:.2e} (D={want[0].shape[1]}), projection "
          f"{diffs[1]:.2e}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    byolctl = os.path.abspath(sys.argv[1])
    if not os.path.exists(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz")):
        print(f"SKIP: {FMNIST} is missing (scripts/deps.sh installs dataset-fashion-mnist)")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")
        # 64 training images for the few steps, the first N_IMAGES test images for the check.
        magic, dims, train = read_idx(os.path.join(FMNIST, "train-images-idx3-ubyte.gz"), 64)
        write_idx(f"{tmp}/images.gz", magic, dims, train)
        lm, ld, labels = read_idx(os.path.join(FMNIST, "train-labels-idx1-ubyte.gz"), 64)
        write_idx(f"{tmp}/labels.gz", lm, ld, labels)
        magic, dims, test = read_idx(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"), N_IMAGES)
        write_idx(f"{tmp}/test.gz", magic, dims, test)
        lm, ld, tl = read_idx(os.path.join(FMNIST, "t10k-labels-idx1-ubyte.gz"), N_IMAGES)
        write_idx(f"{tmp}/test-labels.gz", lm, ld, tl)
        all_cfgs = configs(tmp)
        names = sys.argv[2:] or list(all_cfgs)
        for name in names:
            text, mean, std = all_cfgs[name]
            check_config(byolctl, tmp, name, text, mean, std, test)
    print("onnx export checked by onnx.checker and OpenCV DNN: ok")


if __name__ == "__main__":
    main()
