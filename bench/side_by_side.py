#!/usr/bin/env python3
"""Side-by-side throughput of one BYOL training step: byol-c (`byolctl bench`) against an
equivalent step in PyTorch, run alternately in separate processes so both see the same machine.

The PyTorch step mirrors byol-pytorch's training step with identity augmentation: torchvision
resnet18 (its fc is computed and thrown away, as byol-pytorch's hidden-layer hook does), the
flattened avgpool output into an MLP projector (Linear, BatchNorm1d, ReLU, Linear), an MLP
predictor, both views concatenated into one 2B batch, the target (a deep copy) run in training
mode under no_grad, loss 2 - 2 cos summed over both view pairs and averaged, Adam, then the
per-parameter EMA of the target. Image size, batch and projector sizes come from the byol-c
config, so the two sides run the same model.

Usage (from the repository root, after building byolctl):
  python3 bench/side_by_side.py --byolctl BUILD/bin/byolctl bench/resnet18_64px_b32.cfg
  python3 bench/side_by_side.py --byolctl BUILD/bin/byolctl --rounds 5 --steps 10 \\
      bench/resnet18_32px_b64.cfg
  ... --bf16   compares PyTorch under torch.autocast("cpu", dtype=torch.bfloat16) with byol-c
               at backend.precision = "bf16" (passed to byolctl as --set)

Each round runs both sides once (the order alternates between rounds), prints both figures and
the ratio, and the end prints the medians and the load average before and after.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time

NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def config_int(text, key, default):
    m = re.search(r"\b" + key + r"\s*=\s*(-?[0-9]+)\s*;", text)
    return int(m.group(1)) if m else default


def read_config(path):
    text = re.sub(r"#[^\n]*", "", open(path).read())
    return {
        "image_size": config_int(text, "image_size", 32),
        "batch_size": config_int(text, "batch_size", 64),
        "in_channels": config_int(text, "in_channels", 3),
        "projection_size": config_int(text, "projection_size", 256),
        "projection_hidden_size": config_int(text, "projection_hidden_size", 4096),
        "threads": config_int(text, "threads", 2),
    }


# ---- the PyTorch worker (runs in its own process) ------------------------------------------


def torch_worker(a):
    import copy

    import torch
    import torch.nn.functional as F
    import torchvision
    from torch import nn

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    def mlp(dim, out, hidden):
        return nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                             nn.Linear(hidden, out))

    class Online(nn.Module):
        """resnet18 with a forward hook on avgpool feeding the projector."""

        def __init__(self):
            super().__init__()
            self.net = torchvision.models.resnet18()
            if a.in_channels != 3:
                self.net.conv1 = nn.Conv2d(a.in_channels, 64, 7, 2, 3, bias=False)
            self.projector = mlp(512, a.projection_size, a.projection_hidden_size)
            self.hidden = None
            self.net.avgpool.register_forward_hook(self._hook)

        def _hook(self, module, inp, out):
            self.hidden = out.flatten(1)

        def forward(self, x):
            self.net(x)
            return self.projector(self.hidden)

    online = Online()
    predictor = mlp(a.projection_size, a.projection_size, a.projection_hidden_size)
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad = False
    online.train(), predictor.train(), target.train()
    opt = torch.optim.Adam(list(online.parameters()) + list(predictor.parameters()), lr=3e-4)

    def loss_fn(x, y):
        x = F.normalize(x, dim=-1, p=2)
        y = F.normalize(y, dim=-1, p=2)
        return 2 - 2 * (x * y).sum(dim=-1)

    view = torch.randn(a.batch, a.in_channels, a.size, a.size)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else None

    def forward():
        images = torch.cat((view, view), dim=0)  # identity augmentation, both views
        pred = predictor(online(images))
        with torch.no_grad():
            proj = target(images).detach()
        p1, p2 = pred.chunk(2)
        t1, t2 = proj.chunk(2)
        return (loss_fn(p1, t2) + loss_fn(p2, t1)).mean()

    def step():
        if autocast:
            with autocast():
                loss = forward()
        else:
            loss = forward()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for tp, op in zip(target.parameters(), online.parameters()):
                tp.data = tp.data * 0.99 + (1 - 0.99) * op.data
        return float(loss)

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    total = sum(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("%.1f img/s  %.1f ms/step (median %.1f, min %.1f)  peak RSS %.0f MiB  loss %.4f" %
          (a.batch * a.steps / total, 1e3 * total / a.steps, 1e3 * statistics.median(times),
           1e3 * min(times), peak, loss))


# ---- the driver ----------------------------------------------------------------------------


def parse_figures(out, who):
    ips = re.search(NUMBER + r" img/s", out)
    rss = re.search(r"peak RSS " + NUMBER + r" MiB", out)
    if not ips:
        sys.exit("side_by_side: no '<N> img/s' in the output of %s:\n%s" % (who, out))
    return float(ips.group(1)), float(rss.group(1)) if rss else float("nan")


def run(cmd, who):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit("side_by_side: %s failed (%d):\n%s" % (who, p.returncode, p.stdout))
    return parse_figures(p.stdout, who)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", help="byol-c config (image size, batch, sizes)")
    ap.add_argument("--byolctl", default="build/bin/byolctl")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="PyTorch under bf16 autocast")
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3")
                    else sys.executable, help="the Python that has Debian's torch")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    for k in ("size", "batch", "in-channels", "projection-size", "projection-hidden-size",
              "threads"):
        ap.add_argument("--" + k, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a)
    if not a.config:
        ap.error("a byol-c config is required")
    c = read_config(a.config)
    worker = [a.python, os.path.abspath(__file__), "--torch-worker",
              "--size", str(c["image_size"]), "--batch", str(c["batch_size"]),
              "--in-channels", str(c["in_channels"]),
              "--projection-size", str(c["projection_size"]),
              "--projection-hidden-size", str(c["projection_hidden_size"]),
              "--threads", str(c["threads"]), "--steps", str(a.steps), "--warmup", str(a.warmup)]
    if a.bf16:
        worker.append("--bf16")
    byol = [a.byolctl, "bench", a.config, "--no-augment", "--steps", str(a.steps),
            "--warmup", str(a.warmup)]
    if a.bf16:
        byol += ["--set", "backend.precision=bf16"]
    load0 = os.getloadavg()
    print("config %s: %d px, batch %d, projector %d/%d, %d threads, %d warm-up + %d timed steps%s"
          % (a.config, c["image_size"], c["batch_size"], c["projection_hidden_size"],
             c["projection_size"], c["threads"], a.warmup, a.steps, ", bf16" if a.bf16 else ""))
    print("load average at start: %.2f %.2f %.2f" % load0)
    print("%-6s %12s %12s %7s %14s %14s" % ("round", "pytorch", "byol-c", "ratio",
                                             "pytorch MiB", "byol-c MiB"), flush=True)
    rows = []
    for r in range(a.rounds):
        if r % 2 == 0:
            t = run(worker, "the PyTorch step")
            b = run(byol, "byolctl bench")
        else:
            b = run(byol, "byolctl bench")
            t = run(worker, "the PyTorch step")
        rows.append((t, b))
        print("%-6d %12.1f %12.1f %6.2fx %14.0f %14.0f" % (r + 1, t[0], b[0], b[0] / t[0], t[1],
                                                           b[1]), flush=True)
    med = lambda xs: statistics.median(xs)
    tm, bm = med([t[0] for t, _ in rows]), med([b[0] for _, b in rows])
    print("%-6s %12.1f %12.1f %6.2fx %14.0f %14.0f" % (
        "median", tm, bm, med([b[0] / t[0] for t, b in rows]), med([t[1] for t, _ in rows]),
        med([b[1] for _, b in rows])))
    print("img/s: images per second, one view per image (byol-pytorch's batch size); ratio = "
          "byol-c / pytorch")
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
