#!/usr/bin/env python3
"""Training on a folder of real photographs: byol-c's data pipeline and training step against
byol-pytorch fed by torchvision's ImageFolder + DataLoader (issue 18, item 5).

1. The folder (built once, cached in --folder, default /tmp/byol-photos): --count (3000) crops
   of the two photographs Debian's python3-sklearn ships (sklearn/datasets/images/china.jpg and
   flower.jpg, 640x427, CC BY 2.0, see tests/data/photos/README.md for their attribution), in
   the class folders china/ and flower/. Each crop has a random aspect ratio and covers 10-100%
   of its source's area; most are then resampled (Lanczos) so that their longer side is
   log-uniform in 64..2000 px (crops larger than the source are upscaled), a share is stored at
   its own full size. Formats: mostly baseline JPEG at quality 85-95, some progressive JPEG,
   some PNG, a few grayscale (JPEG or PNG). Deterministic from --seed (with the same Pillow).
2. For ResNet-18 (imagenet stem, hidden layer avgpool, projector 4096/256, Adam: the network of
   configs/imagefolder.cfg; here bench/photos/resnet18_photos.cfg), batch 32, onednn backend on
   2 threads, at each --sizes (96, 128) and --pipelines (byol_pytorch_default, byol_paper):
     byol-c   data-only 1T / 2T   byolctl bench CFG --data-only --set backend.threads=1|2
              compute only        byolctl bench CFG --no-augment (synthetic batch, no data)
              end to end          byolctl run CFG on the folder; images/s between the end of
                                  step --warmup and the end of the last step but one, from the
                                  metrics file's elapsed_s (the last step also writes the
                                  checkpoint)
     PyTorch  DataLoader alone    ImageFolder + DataLoader (num_workers 1 and 2, pin_memory
                                  False, persistent workers, shuffle, drop_last), two views per
                                  image with torchvision transforms on PIL images
              end to end          the same loader feeding byol-pytorch's BYOL step (the twin of
                                  bench/side_by_side.py, imported from it), torch.set_num_threads
   Each round runs every measurement once, byol-c's and PyTorch's alternating which goes first;
   the table gives medians over the rounds.

The torchvision pipelines, equivalent to byol-c's presets (core/data/augment_preset.c):
  byol_paper (both views): RandomResizedCrop(size, scale (0.08, 1), ratio (3/4, 4/3),
    bilinear, antialias) from the original, RandomHorizontalFlip, RandomApply([ColorJitter(0.4,
    0.4, 0.2, 0.1)], p 0.8), RandomGrayscale(0.2), RandomApply([GaussianBlur(k, (0.1, 2))],
    p 1.0 / 0.1), RandomSolarize(128, p 0 / 0.2), ToTensor, Normalize(ImageNet); k = size / 10
    made odd (9 at 96 px, 13 at 128 px).
  byol_pytorch_default (both views): byol-pytorch's DEFAULT_AUG ops in its order (RandomApply
    ColorJitter(0.8, 0.8, 0.8, 0.2) p 0.3, RandomGrayscale 0.2, RandomHorizontalFlip,
    RandomApply GaussianBlur(3, (1, 2)) p 0.2, Normalize) but with the RandomResizedCrop taken
    first, from the original, as byol-c does for folder data: byol-pytorch itself runs its
    DEFAULT_AUG on already resized image_size tensors and crops last; cropping first from the
    original is what byol-c does and what the comparison needs (the colour ops then run on
    size x size views on both sides).

Usage (from the repository root, after a Release build):
  python3 bench/photos.py                                  # 96 and 128 px, both pipelines, 3 rounds
  python3 bench/photos.py --sizes 96 --pipelines byol_paper --rounds 5
  python3 bench/photos.py --quick                          # a smoke test: small folder, few steps
"""
import argparse
import glob
import io
import json
import math
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import side_by_side as sbs  # noqa: E402  (the twin, the config reader, the CPU and ISA caps)

NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
CONFIG = os.path.join(HERE, "photos", "resnet18_photos.cfg")
PIPELINES = ("byol_pytorch_default", "byol_paper")
FOLDER_VERSION = 1  # bump when the recipe below changes: a cached folder is then rebuilt
STAMP = ".byol-photos.json"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---- the folder of photographs -------------------------------------------------------------


def sklearn_images():
    """{class name: path} of china.jpg and flower.jpg from Debian's python3-sklearn(-lib)."""
    found = {}
    for pkg in ("python3-sklearn", "python3-sklearn-lib"):
        p = subprocess.run(["dpkg", "-L", pkg], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        for line in p.stdout.splitlines():
            base = os.path.basename(line)
            if base in ("china.jpg", "flower.jpg") and os.path.isfile(line):
                found.setdefault(base[:-4], line)
    if len(found) != 2:
        sys.exit("photos: no china.jpg / flower.jpg from python3-sklearn (apt-get install "
                 "python3-sklearn; dpkg -L python3-sklearn-lib lists them)")
    return found


def plan_image(rng, i, src_size):
    """What image i is: its source, crop box, stored size and format (only rng draws)."""
    cls = "china" if rng.random() < 0.5 else "flower"
    sw, sh = src_size[cls]
    if rng.random() < 0.6:
        ratio = rng.choice((4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 2 / 3, 9 / 16))
    else:
        ratio = math.exp(rng.uniform(math.log(0.4), math.log(2.5)))  # width / height
    area = rng.uniform(0.1, 1.0) * sw * sh
    cw, ch = math.sqrt(area * ratio), math.sqrt(area / ratio)
    shrink = min(1.0, sw / cw, sh / ch)
    cw, ch = max(8, int(round(cw * shrink))), max(8, int(round(ch * shrink)))
    left, top = rng.randint(0, sw - cw), rng.randint(0, sh - ch)
    full = rng.random() < 0.15  # stored at the crop's own size, not resampled
    if full:
        w, h = cw, ch
    else:
        longer = int(round(math.exp(rng.uniform(math.log(64), math.log(2000)))))
        s = longer / max(cw, ch)
        w, h = max(8, int(round(cw * s))), max(8, int(round(ch * s)))
    u = rng.random()
    fmt = "jpeg" if u < 0.80 else "progressive" if u < 0.92 else "png"
    gray = rng.random() < 0.04
    quality = rng.randint(85, 95)
    ext = ".png" if fmt == "png" else ".jpeg" if rng.random() < 0.1 else ".jpg"
    return {"cls": cls, "box": (left, top, left + cw, top + ch), "size": (w, h), "full": full,
            "format": fmt, "gray": gray, "quality": quality,
            "name": os.path.join(cls, "%05d%s" % (i, ext))}


def write_image(src, plan, folder):
    from PIL import Image
    im = src.crop(plan["box"])
    if not plan["full"]:
        im = im.resize(plan["size"], Image.LANCZOS)
    if plan["gray"]:
        im = im.convert("L")
    path = os.path.join(folder, plan["name"])
    if plan["format"] == "png":
        im.save(path, "PNG", compress_level=6)
    else:
        im.save(path, "JPEG", quality=plan["quality"], progressive=plan["format"] == "progressive",
                optimize=False)
    return os.path.getsize(path)


def build_folder(folder, count, seed):
    """Make (or reuse) the folder; returns the list of plans with file sizes."""
    from PIL import Image
    import PIL
    key = {"version": FOLDER_VERSION, "count": count, "seed": seed, "pillow": PIL.__version__}
    stamp = os.path.join(folder, STAMP)
    if os.path.exists(stamp):
        with open(stamp) as f:
            old = json.load(f)
        if old.get("key") == key and all(os.path.exists(os.path.join(folder, p["name"]))
                                         for p in old["images"]):
            print("photos: using the folder in %s (seed %d, %d images)" % (folder, seed, count))
            return old["images"]
        print("photos: %s holds another build (%s): rebuilding" % (folder, old.get("key")))
        for cls in ("china", "flower"):
            shutil.rmtree(os.path.join(folder, cls), ignore_errors=True)
        os.remove(stamp)
    elif os.path.isdir(folder) and os.listdir(folder):
        sys.exit("photos: %s exists and is not a folder photos.py made (no %s): give another "
                 "--folder" % (folder, STAMP))
    srcs = {cls: Image.open(p).convert("RGB") for cls, p in sklearn_images().items()}
    for im in srcs.values():
        im.load()
    for cls in srcs:
        os.makedirs(os.path.join(folder, cls), exist_ok=True)
    rng = random.Random(seed)
    plans = [plan_image(rng, i, {c: im.size for c, im in srcs.items()}) for i in range(count)]
    t0 = time.time()
    for i, p in enumerate(plans):
        p["bytes"] = write_image(srcs[p["cls"]], p, folder)
        if (i + 1) % 500 == 0 or i + 1 == count:
            print("photos: %d/%d images written (%.0f s)" % (i + 1, count, time.time() - t0),
                  flush=True)
    with open(stamp, "w") as f:
        json.dump({"key": key, "sources": sklearn_images(), "images": plans}, f)
    return plans


def describe_folder(plans):
    """The folder's size distribution, as printed lines."""
    bins = [(64, 128), (128, 256), (256, 512), (512, 1024), (1024, 2001)]
    lines = ["| longer side px | images | of which full-size crops | mean Mpx | MiB |",
             "|---|---|---|---|---|"]
    for lo, hi in bins:
        sel = [p for p in plans if lo <= max(p["size"]) < hi]
        if not sel:
            continue
        lines.append("| %d-%d | %d | %d | %.2f | %.1f |" % (
            lo, hi - 1, len(sel), sum(p["full"] for p in sel),
            statistics.mean(p["size"][0] * p["size"][1] for p in sel) / 1e6,
            sum(p["bytes"] for p in sel) / 2 ** 20))
    other = [p for p in plans if not 64 <= max(p["size"]) < 2001]
    if other:
        lines.append("| other | %d | | | |" % len(other))
    fmts = {}
    for p in plans:
        k = p["format"] + (" gray" if p["gray"] else "")
        fmts[k] = fmts.get(k, 0) + 1
    longer = sorted(max(p["size"]) for p in plans)
    ratios = [p["size"][0] / p["size"][1] for p in plans]
    lines.append("")
    lines.append("%d images (%s), %.0f MiB; longer side min %d, median %d, max %d px; mean %.2f "
                 "Mpx; aspect ratio (w/h) %.2f..%.2f; classes: %s" % (
                     len(plans), ", ".join("%s %d" % kv for kv in sorted(fmts.items())),
                     sum(p["bytes"] for p in plans) / 2 ** 20, longer[0],
                     longer[len(longer) // 2], longer[-1],
                     statistics.mean(p["size"][0] * p["size"][1] for p in plans) / 1e6,
                     min(ratios), max(ratios),
                     ", ".join("%s %d" % (c, sum(p["cls"] == c for p in plans))
                               for c in ("china", "flower"))))
    return lines


# ---- PyTorch: torchvision's loader and the twin's step (run in its own process) ------------


def view_transforms(pipeline, size):
    """torchvision's two view transforms equivalent to byol-c's preset (see the top)."""
    from torchvision import transforms as T
    rrc = T.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                              interpolation=T.InterpolationMode.BILINEAR, antialias=True)
    tail = [T.ToTensor(), T.Normalize(MEAN, STD)]
    if pipeline == "byol_pytorch_default":
        ops = [rrc,
               T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.3),
               T.RandomGrayscale(p=0.2),
               T.RandomHorizontalFlip(),
               T.RandomApply([T.GaussianBlur((3, 3), (1.0, 2.0))], p=0.2)]
        one = T.Compose(ops + tail)
        return one, one
    k = max(3, (size // 10) | 1)

    def paper(blur_p, solarize_p):
        ops = [rrc, T.RandomHorizontalFlip(),
               T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
               T.RandomGrayscale(p=0.2),
               T.RandomApply([T.GaussianBlur(k, (0.1, 2.0))], p=blur_p)]
        if solarize_p > 0:
            ops.append(T.RandomSolarize(128, p=solarize_p))
        return T.Compose(ops + tail)

    return paper(1.0, 0.0), paper(0.1, 0.2)


class TwoViews:
    def __init__(self, t1, t2):
        self.t1, self.t2 = t1, t2

    def __call__(self, img):
        return self.t1(img), self.t2(img)


def torch_worker(a):
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from torchvision import datasets

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    spec = twin(a.size, a.threads)
    size, batch = spec["image_size"], spec["batch"]
    t1, t2 = view_transforms(a.pipeline, size)
    ds = datasets.ImageFolder(a.folder, transform=TwoViews(t1, t2))
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=a.workers,
                        pin_memory=False, persistent_workers=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))

    def batches():
        while True:  # epochs
            for (v1, v2), _ in loader:
                yield v1, v2

    it = batches()
    if a.loader_only:
        for _ in range(a.warmup):
            next(it)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            next(it)
        dt = time.perf_counter() - t0
        print("%.2f img/s  %.1f ms/batch  loader only, %d workers" % (
            batch * a.steps / dt, 1e3 * dt / a.steps, a.workers))
        return

    learner = sbs.build_twin(spec)
    online, predictor = learner.online_encoder, learner.online_predictor
    import copy
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad = False
    target.train()
    params = list(online.parameters()) + list(predictor.parameters())
    opt = sbs.make_optimizer(spec, params)
    decay = spec["decay"]

    def loss_fn(x, y):
        x = F.normalize(x, dim=-1, p=2)
        y = F.normalize(y, dim=-1, p=2)
        return 2 - 2 * (x * y).sum(dim=-1)

    def step(v1, v2):  # side_by_side.py's twin step, with the loader's two views
        images = torch.cat((v1, v2), dim=0)
        pred = predictor(online(images))
        with torch.no_grad():
            proj = target(images).detach()
        p1, p2 = pred.chunk(2)
        q1, q2 = proj.chunk(2)
        loss = (loss_fn(p1, q2) + loss_fn(p2, q1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for tp, op in zip(target.parameters(), online.parameters()):
                tp.data = tp.data * decay + (1 - decay) * op.data
        return float(loss)

    for _ in range(a.warmup):
        step(*next(it))
    t0 = time.perf_counter()
    wait = 0.0
    for _ in range(a.steps):
        w0 = time.perf_counter()
        v1, v2 = next(it)
        wait += time.perf_counter() - w0
        loss = step(v1, v2)
    dt = time.perf_counter() - t0
    print("%.2f img/s  %.1f ms/step  waiting for data %.1f ms/step  loss %.4f  %d workers  "
          "aten %s" % (batch * a.steps / dt, 1e3 * dt / a.steps, 1e3 * wait / a.steps, loss,
                       a.workers, sbs.torch_capability()))


# ---- the driver ----------------------------------------------------------------------------


def default_byolctl():
    for d in ("build-h3", "build-bench", "build"):
        p = os.path.join(ROOT, d, "bin", "byolctl")
        if os.path.exists(p):
            return p
    return os.path.join(ROOT, "build", "bin", "byolctl")


def sets(a, size, pipeline, threads=None):
    out = ["--set", "data.images=" + os.path.abspath(a.folder),
           "--set", "model.image_size=%d" % size, "--set", "augment_fn=" + pipeline,
           "--set", "train.batch_size=%d" % a.batch]
    if threads is not None:
        out += ["--set", "backend.threads=%d" % threads]
    return out


def show(cmd, env=None):
    keys = ("DNNL_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS")
    pre = " ".join("%s=%s" % (k, env[k]) for k in keys if env and k in env)
    rel = [os.path.relpath(c, ROOT) if os.path.isabs(c) and c.startswith(ROOT + os.sep) else c
           for c in cmd]
    return (pre + " " if pre else "") + shlex.join(rel)


class Fail(Exception):
    pass


def call(cmd, env, timeout=3600):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       cwd=ROOT, timeout=timeout)
    if p.returncode != 0:
        raise Fail("exit %d: %s" % (p.returncode, " / ".join(p.stdout.strip().splitlines()[-3:])
                                    [-500:]))
    return p.stdout


def byolc_data(a, env, size, pipeline, threads):
    cmd = [a.byolctl, "bench", CONFIG, "--data-only", "--steps", str(a.data_steps),
           "--warmup", str(a.data_warmup)] + sets(a, size, pipeline, threads)
    out = call(cmd, env)
    m = re.search(r"data pipeline: " + NUMBER + r" img/s[^\n]*", out)
    if not m:
        raise Fail("no 'data pipeline: N img/s' line in: " + out.strip()[-300:])
    return {"ips": float(m.group(1)), "line": m.group(0).strip()}, cmd


def byolc_compute(a, env, size):
    cmd = [a.byolctl, "bench", CONFIG, "--no-augment", "--steps", str(a.steps), "--warmup",
           str(a.bench_warmup)] + sets(a, size, PIPELINES[0], a.threads)
    out = call(cmd, env)
    ips, ms = re.search(NUMBER + r" img/s", out), re.search(NUMBER + r" ms/step", out)
    if not ips:
        raise Fail("no img/s in: " + out.strip()[-300:])
    # as side_by_side.py: the mean ms/step has more digits than img/s for slow steps
    got = {"ips": a.batch * 1e3 / float(ms.group(1)) if ms else float(ips.group(1))}
    got["line"] = [l for l in out.strip().splitlines() if "img/s" in l][-1].strip()
    return got, cmd


def byolc_run(a, env, size, pipeline, tmp):
    """byolctl run for warmup + steps + 1 steps; img/s over the steps after --warmup, the
    last (which writes the checkpoint) left out."""
    d = tempfile.mkdtemp(dir=tmp)
    metrics = os.path.join(d, "metrics.csv")
    total = a.warmup + a.steps + 1
    cmd = [a.byolctl, "run", CONFIG] + sets(a, size, pipeline, a.threads) + [
        "--set", "train.steps=%d" % total, "--set", "train.checkpoint_every=0",
        "--set", "train.checkpoint_dir=" + os.path.join(d, "checkpoints"),
        "--set", "metrics.file=" + metrics]
    try:
        call(cmd, env)
        with open(metrics) as f:
            head = f.readline().strip().split(",")
            rows = [dict(zip(head, line.strip().split(","))) for line in f if line.strip()]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    el = {int(r["step"]): float(r["elapsed_s"]) for r in rows}
    first, last = a.warmup, total - 1
    if first not in el or last not in el:
        raise Fail("metrics file without steps %d and %d" % (first, last))
    if first == 0:
        el[0] = 0.0
    ips = a.batch * (last - first) / (el[last] - el[first])
    return {"ips": ips, "line": "%.1f img/s over steps %d-%d (%.0f ms/step), loss %s" % (
        ips, first + 1, last, 1e3 * (el[last] - el[first]) / (last - first),
        rows[-1].get("loss"))}, cmd


def twin(size, threads):
    """side_by_side.py's twin spec of CONFIG at this size, batch 32."""
    spec = sbs.twin_spec(CONFIG, threads)
    spec["image_size"], spec["batch"] = size, 32
    return spec


def torch_cmd(a, size, pipeline, workers, loader_only):
    cmd = [a.python, os.path.abspath(__file__), "--torch-worker", "--size", str(size),
           "--pipeline", pipeline, "--workers", str(workers), "--folder",
           os.path.abspath(a.folder), "--threads", str(a.threads)]
    if loader_only:
        return cmd + ["--loader-only", "--steps", str(a.data_steps), "--warmup",
                      str(a.data_warmup)]
    return cmd + ["--steps", str(a.steps), "--warmup", str(a.warmup)]


def torch_measure(a, env, size, pipeline, workers, loader_only):
    cmd = torch_cmd(a, size, pipeline, workers, loader_only)
    out = call(cmd, env)
    m = re.search(NUMBER + r" img/s[^\n]*", out)
    if not m:
        raise Fail("no img/s in: " + out.strip()[-300:])
    return {"ips": float(m.group(1)), "line": m.group(0).strip()}, cmd


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f1(x, spec="%.1f"):
    return "-" if x is None else spec % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", help="where the photographs are built and cached (default "
                    "/tmp/byol-photos; with --quick /tmp/byol-photos-quick)")
    ap.add_argument("--count", type=int, help="images in the folder (default 3000)")
    ap.add_argument("--seed", type=int, default=0, help="the folder's seed (default 0)")
    ap.add_argument("--sizes", default=None, help="comma-separated image sizes (default 96,128)")
    ap.add_argument("--pipelines", default=None,
                    help="comma-separated presets (default byol_pytorch_default,byol_paper)")
    ap.add_argument("--steps", type=int, help="timed training steps: compute-only and end to "
                    "end, both sides (default 10)")
    ap.add_argument("--warmup", type=int, help="untimed end-to-end steps first (default 3)")
    ap.add_argument("--data-steps", type=int, help="timed batches of the data pipelines alone "
                    "(default 20)")
    ap.add_argument("--data-warmup", type=int, help="untimed batches first (default 3)")
    ap.add_argument("--rounds", type=int, help="rounds (default 3)")
    ap.add_argument("--workers", default="1,2", help="PyTorch DataLoader num_workers to try "
                    "(default 1,2)")
    ap.add_argument("--isa", choices=("avx2", "avx512_core"), default=None,
                    help="the ISA cap of both sides (default: the highest f32 level the CPU has)")
    ap.add_argument("--threads", type=int, default=2, help="compute threads a side (default 2)")
    ap.add_argument("--byolctl", default=default_byolctl(),
                    help="byolctl of a Release build (default build-h3/, else build-bench/, "
                    "else build/)")
    ap.add_argument("--quick", action="store_true", help="a smoke test: 300 images, 96 px, "
                    "1 round, few steps")
    ap.add_argument("--build-only", action="store_true", help="build the folder and stop")
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3")
                    else sys.executable, help="the Python that has Debian's torch")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--loader-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pipeline", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        a.workers = int(a.workers)
        return torch_worker(a)

    q = a.quick
    defaults = {"folder": "/tmp/byol-photos-quick" if q else "/tmp/byol-photos",
                "count": 300 if q else 3000, "sizes": "96" if q else "96,128",
                "pipelines": ",".join(PIPELINES), "steps": 3 if q else 10,
                "warmup": 1 if q else 3, "data_steps": 4 if q else 20,
                "data_warmup": 1 if q else 3, "rounds": 1 if q else 3}
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.batch = 32
    a.bench_warmup = min(3, a.warmup)
    sizes = [int(s) for s in a.sizes.split(",") if s]
    pipelines = [p for p in a.pipelines.split(",") if p]
    workers = [int(w) for w in a.workers.split(",") if w]
    for p in pipelines:
        if p not in PIPELINES:
            ap.error("unknown pipeline '%s' (%s)" % (p, ", ".join(PIPELINES)))
    if min([a.count, a.steps, a.data_steps, a.rounds, a.threads] + sizes + workers) < 1 or \
            a.warmup < 1 or a.data_warmup < 0 or a.count < 2 * a.batch:
        ap.error("--count >= 64, --warmup >= 1, the other numbers >= 1")

    plans = build_folder(a.folder, a.count, a.seed)
    print("\nThe folder %s:\n" % a.folder)
    print("\n".join(describe_folder(plans)))
    if a.build_only:
        return
    if not os.path.exists(a.byolctl):
        ap.error("no byolctl at %s (build it, or pass --byolctl)" % a.byolctl)

    model, flags = sbs.cpu_info()
    level = a.isa or ("avx512_core" if "avx512f" in flags else "avx2")
    env = sbs.isa_env(level, a.threads)
    tv = subprocess.run([a.python, "-c", "import torch, torchvision; print(torch.__version__, "
                         "torchvision.__version__)"], stdout=subprocess.PIPE, text=True)
    versions = tv.stdout.strip().split()
    isa_flags = ", ".join("%s %s" % (f, "yes" if f in flags else "no")
                          for f in ("avx2", "avx512f", "avx512_bf16"))
    load0 = os.getloadavg()
    print("\nCPU: %s (%d CPUs; %s); ISA cap %s for both sides (DNNL_MAX_CPU_ISA=%s, "
          "OPENBLAS_CORETYPE=%s, ATEN_CPU_CAPABILITY=%s); torch %s, torchvision %s; byolctl %s"
          % (model, os.cpu_count(), isa_flags, level.upper(), env["DNNL_MAX_CPU_ISA"],
             env["OPENBLAS_CORETYPE"], env["ATEN_CPU_CAPABILITY"],
             versions[0] if versions else "?", versions[1] if len(versions) > 1 else "?",
             a.byolctl))
    print("load average at start: %.2f %.2f %.2f" % load0, flush=True)

    # results[(size, pipeline)][what] = [per-round figures]; compute is per size.
    res, loads, commands, errors = {}, {}, {}, []
    tmp = tempfile.mkdtemp(prefix="byol-photos.")
    t_start = time.time()

    def record(key, what, fn, *args):
        load = os.getloadavg()[0]
        try:
            got, cmd = fn(*args)
        except (Fail, subprocess.TimeoutExpired, OSError) as e:
            errors.append("%s %s: %s" % (key, what, e))
            print("   %-28s FAILED: %s" % (what, e), flush=True)
            got, cmd = None, None
        res.setdefault(key, {}).setdefault(what, []).append(got["ips"] if got else None)
        loads.setdefault(key, {}).setdefault(what, []).append(load)
        if cmd:
            commands.setdefault(what, show(cmd, env).replace(tmp, "$TMP"))
        if got:
            print("   %-28s %s  (load %.2f)" % (what, got["line"], load), flush=True)
        return got

    try:
        for r in range(a.rounds):
            for size in sizes:
                twin(size, a.threads)  # fails here, once, if the config has no twin
                print("\n== round %d/%d, %d px (load %.2f, %.0f s so far)" % (
                    r + 1, a.rounds, size, os.getloadavg()[0], time.time() - t_start),
                    flush=True)
                record((size,), "byol-c compute only", byolc_compute, a, env, size)
                for pipeline in pipelines:
                    key = (size, pipeline)
                    print("-- %s" % pipeline, flush=True)

                    def byolc_side():
                        for t in (1, 2):
                            record(key, "byol-c data-only %dT" % t, byolc_data, a, env, size,
                                   pipeline, t)
                        record(key, "byol-c end to end", byolc_run, a, env, size, pipeline, tmp)

                    def torch_side():
                        for w in workers:
                            record(key, "PyTorch loader %dw" % w, torch_measure, a, env, size,
                                   pipeline, w, True)
                        for w in workers:
                            record(key, "PyTorch end to end %dw" % w, torch_measure, a, env,
                                   size, pipeline, w, False)

                    sides = [byolc_side, torch_side]
                    if r % 2:
                        sides.reverse()
                    for side in sides:
                        side()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # ---- the table ----
    print("\n\nResNet-18 (imagenet stem, projector 4096/256, Adam), batch 32, %d threads a side, "
          "f32, %s; %s; medians of %d round(s); img/s = images (two views each) per second"
          % (a.threads, level.upper(), model, a.rounds))
    print("\n| size | pipeline | byol-c data-only 1T | byol-c data-only 2T | byol-c compute only "
          "| byol-c end to end | PyTorch DataLoader alone | PyTorch end to end | "
          "byol-c e2e / compute | byol-c e2e / PyTorch e2e | byol-c data 2T / compute |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        comp = med(res.get((size,), {}).get("byol-c compute only", []))
        for pipeline in pipelines:
            m = {k: med(v) for k, v in res.get((size, pipeline), {}).items()}
            d1, d2 = m.get("byol-c data-only 1T"), m.get("byol-c data-only 2T")
            e2e = m.get("byol-c end to end")
            best = lambda prefix: max(((v, k) for k, v in m.items() if k.startswith(prefix)
                                       and v is not None), default=(None, None))
            tl, tlk = best("PyTorch loader")
            te, tek = best("PyTorch end to end")
            ratio = lambda x, y: "%.2fx" % (x / y) if x and y else "-"
            print("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                size, pipeline, f1(d1), f1(d2), f1(comp), f1(e2e),
                "%s (%s)" % (f1(tl), tlk.split()[-1]) if tl else "-",
                "%s (%s)" % (f1(te), tek.split()[-1]) if te else "-",
                ratio(e2e, comp), ratio(e2e, te), ratio(d2, comp)))
    print("\nTargets (issue 18): byol-c e2e / compute >= 0.90 at 96 px; byol-c e2e / PyTorch e2e "
          ">= 1.5x; byol-c data 2T / compute >= 3x at 96 px. PyTorch columns: the better of "
          "num_workers %s (in brackets); every measured figure:" % ",".join(map(str, workers)))
    for key in sorted(res, key=str):
        for what, v in res[key].items():
            print("  %s %s: %s" % ("/".join(map(str, key)), what, ", ".join(
                "%s (load %.1f)" % (f1(x), l) for x, l in zip(v, loads[key][what]))))
    print("\nCommands (one size and pipeline shown; --set model.image_size and augment_fn vary; "
          "run from %s):" % ROOT)
    for what, cmd in commands.items():
        print("  %s:\n    %s" % (what, cmd))
    if errors:
        print("\nErrors:")
        for e in errors:
            print("  " + e)
    print("\nload average at start: %.2f %.2f %.2f; at end: %.2f %.2f %.2f; %.0f s"
          % (load0 + os.getloadavg() + (time.time() - t_start,)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
