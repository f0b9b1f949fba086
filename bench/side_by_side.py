#!/usr/bin/env python3
"""Side-by-side throughput of one BYOL training step: byol-c (`byolctl bench --no-augment`)
against the same step in PyTorch, for the network of every shipped config and at every CPU ISA
level the machine has, each side in its own process, alternately, so both see the same machine.

Which configs: by default every configs/*.cfg and bench/*.cfg (--configs or positional paths
choose others; a bare name such as "default" means configs/default.cfg or bench/default.cfg).
Two configs whose steps cost the same (they differ only in lr, schedules, data, evaluation) are
run once and named together. A config without a PyTorch twin is listed as skipped, with why.

The PyTorch twin (Debian's python3-torch 1.13 and torchvision) is byol-pytorch's training step
with identity augmentation, built from the config:
  - encoder: model.encoder.name "resnet18" / "resnet34" / "resnet50" is torchvision's model with
    num_classes and zero_init_residual from the config; stem = "cifar" gives it a 3x3/1 conv1
    and no max pool (nn.Identity). "layers" is the layer list of core/nn/encoder_layers.c, one
    child module per entry under the entry's name: conv (nn.Conv2d, bias on unless bias =
    false), bn (nn.BatchNorm2d, affine), relu, maxpool (stride defaults to the kernel), avgpool
    (global), flatten, linear (flatten + nn.Linear) and residual (torchvision's BasicBlock with
    a 1x1 conv + BN downsample when the stride or the channels change). Tensors stay 4-d
    (flatten gives N x CHW x 1 x 1), as in byol-c, so a bn after a flatten is a BatchNorm2d over
    1x1 maps, which is BatchNorm1d's arithmetic.
  - in_channels: byol-pytorch probes its network with a 3-channel tensor; a twin of a 1-channel
    config is built with in_channels = 1 directly (its first conv is the first-channel slice of
    the 3-channel one) and probed with the config's own channels.
  - the hidden layer (model.hidden_layer, a name or a child index, default -2) through a forward
    hook, its output flattened, as byol-pytorch's NetWrapper; the whole encoder runs (ResNet's
    fc too, as in byol-pytorch; byol-c stops at the hidden layer).
  - projector MLP (Linear, BatchNorm1d, ReLU, Linear) with projection_hidden_size and
    projection_size; with use_momentum = false (SimSiam) byol-pytorch's SimSiamMLP (three
    bias-free Linears with BatchNorm1d, the last without affine) and no target network: the
    online network runs again under no_grad and its projections are the stopped-gradient target.
  - predictor MLP; both views (the same normalised noise) concatenated into one 2B batch; the
    target (a deep copy) in training mode under no_grad; loss 2 - 2 cos over both view pairs;
    the optimizer; then the per-parameter EMA with moving_average_decay (byol-pytorch's
    update_moving_average).
  - optimizer: the nearest torch.optim: adam -> Adam, adamw -> AdamW, sgd -> SGD (momentum,
    nesterov, weight_decay); lars (torch 1.13 has none) -> SGD with momentum, each >= 2-d
    tensor's gradient first replaced by trust x (g + weight_decay x p), trust = 1e-3 ||p|| /
    ||g + wd p|| (core/nn/optim.c's LARS; 1-d tensors: no decay, no trust ratio). lr schedules,
    warm-up and the tau schedule cost nothing measurable and are left out (constant lr, tau).
Not mirrored (skipped): other encoders (a user's .so), simplicial embeddings, @include.

ISA levels (--isa): by default avx2, and avx512_core when /proc/cpuinfo has avx512f; with --bf16
only avx512_core_bf16 (needs avx512_bf16), as byol-c's onednn backend refuses bf16 below it
(--isa avx512_core --bf16 then shows byol-c's refusal). Both sides get the same caps:
  byol-c:  DNNL_MAX_CPU_ISA (and ONEDNN_MAX_CPU_ISA) = AVX2 | AVX512_CORE | AVX512_CORE_BF16,
           OPENBLAS_CORETYPE = Haswell (AVX2) | SkylakeX (AVX-512)
  PyTorch: ATEN_CPU_CAPABILITY = avx2 | avx512, plus the same two
and OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = --threads (default 2), byolctl with --set
backend.threads, PyTorch with torch.set_num_threads. The script checks what took effect: oneDNN's
dnnl_get_effective_cpu_isa() under each cap, and the PyTorch worker's "CPU capability usage".
Beside byol-c's effective GFLOP/s it puts the machine's float32 GEMM ceiling at that level:
bench/sgemm_peak.c (cblas_sgemm, square 2048, best of 5), compiled on the fly with
`cc -O2 bench/sgemm_peak.c -lopenblas` into a temporary folder and run with the same
OPENBLAS_CORETYPE and --threads threads right before each (config, ISA) pair.

Usage (from the repository root, after a Release build of byolctl in build-bench/):
  python3 bench/side_by_side.py                       # every shipped config, every ISA level
  python3 bench/side_by_side.py --configs default,simsiam --isa avx512_core --rounds 5
  python3 bench/side_by_side.py --byolctl build-bench/bin/byolctl --rounds 5 \\
      bench/resnet18_64px_b32.cfg                     # the old form still works
  python3 bench/side_by_side.py --check-twins         # twins against byol-c's tensors, no timing
  ... --bf16   PyTorch under torch.autocast("cpu", dtype=torch.bfloat16), byol-c with
               backend.precision = "bf16"
--steps / --warmup default to 10 / 3, fewer for a step that costs more than ~2 s (ResNet-50 at
256 px: 2 / 1), 100 / 3 for a near-empty one (fmnist-pixels.cfg's flatten); given, they apply to
every config.

Each round runs both sides once (the order alternates between rounds) and prints both figures;
the end prints one markdown table per ISA level (medians over the rounds) and the load average
before and after. byolctl bench's GFLOP/s counts what byol-c's networks count (online forward +
2x backward and the target's forward, up to the hidden layer); the script computes the same
count for the twin and warns when the two differ. With use_momentum = false (SimSiam) the
target's forward is the online encoder and projector run again, counted as such on both sides.
"""
import argparse
import copy
import glob
import json
import os
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each ISA level: the caps given to both sides, and the /proc/cpuinfo flag it needs.
ISA_LEVELS = {
    "avx2": {"dnnl": "AVX2", "openblas": "Haswell", "aten": "avx2", "flag": "avx2"},
    "avx512_core": {"dnnl": "AVX512_CORE", "openblas": "SkylakeX", "aten": "avx512",
                    "flag": "avx512f"},
    "avx512_core_bf16": {"dnnl": "AVX512_CORE_BF16", "openblas": "SkylakeX", "aten": "avx512",
                         "flag": "avx512_bf16"},
}
# dnnl_cpu_isa_t values of oneDNN 2.x (oneapi/dnnl/dnnl_types.h).
DNNL_ISA_NAMES = {0x7: "AVX2", 0x27: "AVX512_CORE", 0x67: "AVX512_CORE_VNNI",
                  0xe7: "AVX512_CORE_BF16", 0x3e7: "AVX512_CORE_AMX", 0x407: "AVX2_VNNI"}

STEP_BUDGET_S = 20.0    # auto steps: about this many seconds of timed steps per side
ASSUMED_GFLOPS = 100.0  # the speed assumed for that estimate (the slower side, roughly)


# ---- libconfig ------------------------------------------------------------------------------


class ConfigError(Exception):
    pass


_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<float>[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+)
  | (?P<int>[-+]?(?:0[xX][0-9a-fA-F]+|[0-9]+)L{0,2})
  | (?P<name>[A-Za-z*][-A-Za-z0-9_*]*)
  | (?P<punct>[=:;,{}()\[\]])
  | (?P<include>@include)
""", re.X | re.S)


def _tokens(text):
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise ConfigError("line %d: cannot read '%s'" % (line, text[pos:pos + 20]))
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        if kind == "include":
            raise ConfigError("@include is not supported here")
        out.append((kind, m.group(kind)))
    return out


def _unescape(s):
    s = s[1:-1]
    return re.sub(r"\\(x[0-9a-fA-F]{2}|.)", lambda m: {
        "n": "\n", "t": "\t", "r": "\r", "f": "\f", "\\": "\\", '"': '"'}.get(
        m.group(1), chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "x" else m.group(1)),
        s)


class _Parser:
    def __init__(self, text):
        self.t = _tokens(text)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise ConfigError("expected %s, got %s" % (value or "a value", tok[1]))
        self.i += 1
        return tok

    def settings(self, end):
        group = {}
        while self.peek()[1] != end and self.peek()[0] is not None:
            kind, name = self.take()
            if kind != "name":
                raise ConfigError("expected a setting name, got %s" % name)
            if self.peek()[1] not in ("=", ":"):
                raise ConfigError("expected = after %s" % name)
            self.take()
            group[name] = self.value()
            if self.peek()[1] in (";", ","):
                self.take()
        return group

    def sequence(self, end):
        items = []
        while self.peek()[1] != end:
            items.append(self.value())
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != end:
                raise ConfigError("expected , or %s" % end)
        self.take(end)
        return items

    def value(self):
        kind, tok = self.take()
        if tok == "{":
            g = self.settings("}")
            self.take("}")
            return g
        if tok == "(":
            return self.sequence(")")
        if tok == "[":
            return self.sequence("]")
        if kind == "str":
            s = _unescape(tok)
            while self.peek()[0] == "str":  # adjacent strings concatenate
                s += _unescape(self.take()[1])
            return s
        if kind == "float":
            return float(tok)
        if kind == "int":
            return int(tok.rstrip("L"), 0)
        if kind == "name" and tok.lower() in ("true", "false"):
            return tok.lower() == "true"
        raise ConfigError("unexpected %s" % tok)


def read_libconfig(path):
    with open(path) as f:
        p = _Parser(f.read())
    root = p.settings(None)
    if p.peek()[0] is not None:
        raise ConfigError("unexpected %s" % p.peek()[1])
    return root


# ---- a config's network, as the twin and the FLOP count see it ----------------------------

RESNETS = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet34": ("basic", [3, 4, 6, 3]),
           "resnet50": ("bottleneck", [3, 4, 6, 3])}
LAYER_KEYS = {"conv": {"out", "kernel", "stride", "pad", "bias"}, "bn": {"affine"}, "relu": set(),
              "maxpool": {"kernel", "stride", "pad"}, "avgpool": set(), "flatten": set(),
              "linear": {"out", "bias"}, "residual": {"out", "stride"}}


def twin_spec(path, threads):
    """The settings that decide a step's work, or raises ConfigError with why there is no twin."""
    cfg = read_libconfig(path)
    model, train = cfg.get("model", {}), cfg.get("train", {})
    backend = cfg.get("backend", {})
    enc = dict(model.get("encoder", {}))
    name = enc.get("name", "resnet18")
    if name not in RESNETS and name != "layers":
        raise ConfigError("encoder '%s' has no PyTorch twin here (resnet18/34/50 and layers do)"
                          % name)
    if model.get("use_simplicial_embeddings", False):
        raise ConfigError("simplicial embeddings are not mirrored in the PyTorch twin")
    encoder = {"name": name, "in_channels": int(enc.get("in_channels", 3))}
    if name in RESNETS:
        encoder["stem"] = enc.get("stem", "imagenet")
        encoder["num_classes"] = int(enc.get("num_classes", 1000))
        encoder["zero_init_residual"] = bool(enc.get("zero_init_residual", False))
        if encoder["stem"] not in ("imagenet", "cifar"):
            raise ConfigError("stem '%s'" % encoder["stem"])
    else:
        layers = []
        for i, e in enumerate(enc.get("layers", [])):
            t = e.get("type")
            if t not in LAYER_KEYS:
                raise ConfigError("layer type '%s' has no PyTorch twin" % t)
            entry = {"type": t, "name": e.get("name", "%s%d" % (t, i))}
            entry.update({k: v for k, v in e.items() if k in LAYER_KEYS[t]})
            layers.append(entry)
        if not layers:
            raise ConfigError("encoder 'layers' without a layer list")
        encoder["layers"] = layers
    opt = {"kind": train.get("optimizer", "adam"), "lr": float(train.get("lr", 3e-4)),
           "momentum": float(train.get("momentum", 0.0)),
           "nesterov": bool(train.get("nesterov", False)),
           "weight_decay": float(train.get("weight_decay", 0.0))}
    if opt["kind"] not in ("adam", "adamw", "sgd", "lars"):
        raise ConfigError("optimizer '%s'" % opt["kind"])
    return {
        "config": os.path.relpath(path, ROOT) if os.path.abspath(path).startswith(ROOT) else path,
        "backend": backend.get("name", "blas") if isinstance(backend, dict) else "blas",
        "encoder": encoder,
        "image_size": int(model.get("image_size", 32)),
        "batch": int(train.get("batch_size", 64)),
        "hidden_layer": model.get("hidden_layer", -2),
        "projection_size": int(model.get("projection_size", 256)),
        "projection_hidden_size": int(model.get("projection_hidden_size", 4096)),
        "use_momentum": bool(model.get("use_momentum", True)),
        "decay": float(model.get("moving_average_decay", 0.99)),
        "optimizer": opt,
        "threads": threads,
    }


def same_step_key(spec):
    """What decides the cost of a step: two configs with the same key are benchmarked once."""
    s = copy.deepcopy(spec)
    for k in ("config", "decay"):
        s.pop(k)
    s["optimizer"].pop("lr")
    return json.dumps(s, sort_keys=True)


def _window(h, k, s, p, what):
    if h + 2 * p < k:
        raise ConfigError("%s: kernel %d larger than the %d px input plus padding" % (what, k, h))
    return (h + 2 * p - k) // s + 1


def encoder_children(enc, size):
    """[(name, multiply-adds per image, (c, h, w) out)] for each top-level child, in order."""
    c, h, out = enc["in_channels"], size, []
    if enc["name"] in RESNETS:
        block, counts = RESNETS[enc["name"]]
        if enc["stem"] == "cifar":
            out.append(("conv1", h * h * 64 * c * 9, (64, h, h)))
        else:
            h = _window(h, 7, 2, 3, "conv1")
            out.append(("conv1", h * h * 64 * c * 49, (64, h, h)))
        out += [("bn1", 0, (64, h, h)), ("relu", 0, (64, h, h))]
        if enc["stem"] != "cifar":
            h = _window(h, 3, 2, 1, "maxpool")
            out.append(("maxpool", 0, (64, h, h)))
        c = 64
        for li, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
            macs = 0
            for b in range(n):
                s = 2 if li > 0 and b == 0 else 1
                ho = _window(h, 3, s, 1, "layer%d" % (li + 1))
                if block == "basic":
                    co = planes
                    macs += ho * ho * planes * (c * 9 + planes * 9)
                else:
                    co = 4 * planes
                    macs += h * h * planes * c + ho * ho * (planes * planes * 9 + co * planes)
                if s != 1 or c != co:
                    macs += ho * ho * co * c
                c, h = co, ho
            out.append(("layer%d" % (li + 1), macs, (c, h, h)))
        out.append(("avgpool", 0, (c, 1, 1)))
        out.append(("fc", enc["num_classes"] * c, (enc["num_classes"], 1, 1)))
        return out
    w = h
    for e in enc["layers"]:
        t, macs = e["type"], 0
        if t == "conv":
            k, s, p = e["kernel"], e.get("stride", 1), e.get("pad", 0)
            h, w = _window(h, k, s, p, e["name"]), _window(w, k, s, p, e["name"])
            macs, c = h * w * e["out"] * c * k * k, e["out"]
        elif t == "maxpool":
            k = e["kernel"]
            s, p = e.get("stride", k), e.get("pad", 0)
            h, w = _window(h, k, s, p, e["name"]), _window(w, k, s, p, e["name"])
        elif t == "avgpool":
            h = w = 1
        elif t == "flatten":
            c, h, w = c * h * w, 1, 1
        elif t == "linear":
            macs, c, h, w = e["out"] * c * h * w, e["out"], 1, 1
        elif t == "residual":
            s, co = e.get("stride", 1), e["out"]
            h, w = _window(h, 3, s, 1, e["name"]), _window(w, 3, s, 1, e["name"])
            macs = h * w * co * (c * 9 + co * 9) + (h * w * co * c if s != 1 or c != co else 0)
            c = co
        out.append((e["name"], macs, (c, h, w)))
    return out


def counted_gflop(spec):
    """byolctl bench's count of one step for this network: 2 FLOP per multiply-add of the
    online forward x 3 (forward, backward) and of the target's forward, both views, the encoder
    up to the hidden layer (SimSiam: the online encoder and projector run again), and the hidden
    layer's width. None when the hidden layer is nested."""
    kids = encoder_children(spec["encoder"], spec["image_size"])
    hid = spec["hidden_layer"]
    names = [k[0] for k in kids]
    if isinstance(hid, int):
        if not -len(kids) <= hid < len(kids):
            raise ConfigError("hidden_layer %d: the encoder has %d children" % (hid, len(kids)))
        last = hid % len(kids)
    elif hid in names:
        last = names.index(hid)
    else:
        return None
    c, h, w = kids[last][2]
    dim, hs, ps = c * h * w, spec["projection_hidden_size"], spec["projection_size"]
    encoder = sum(k[1] for k in kids[:last + 1])
    projector = dim * hs + (hs * hs if not spec["use_momentum"] else 0) + hs * ps
    predictor = ps * hs + hs * ps
    images = 2 * spec["batch"]
    online, target = encoder + projector + predictor, encoder + projector
    counted = 2.0 * images * (3 * online + target) * 1e-9
    return {"counted": counted, "hidden_dim": dim}


def describe(spec):
    e = spec["encoder"]
    if e["name"] in RESNETS:
        net = "ResNet-%s %s stem" % (e["name"][6:], e["stem"])
    else:
        parts = []
        for x in e["layers"]:
            t = x["type"]
            if t == "conv":
                parts.append("conv%dx%d/%d %d" % (x["kernel"], x["kernel"], x.get("stride", 1),
                                                  x["out"]))
            elif t == "residual":
                parts.append("res %d/%d" % (x["out"], x.get("stride", 1)))
            elif t in ("linear",):
                parts.append("linear %d" % x["out"])
            elif t == "maxpool":
                parts.append("maxpool %d" % x["kernel"])
            else:
                parts.append(t)
        net = "layers [%s]" % ", ".join(parts)
    opt = spec["optimizer"]["kind"]
    return "%s, %d ch, %d px, batch %d, MLP %d/%d, %s%s" % (
        net, e["in_channels"], spec["image_size"], spec["batch"], spec["projection_hidden_size"],
        spec["projection_size"], {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD",
                                  "lars": "LARS"}[opt],
        "" if spec["use_momentum"] else ", SimSiam (no target)")


# ---- the PyTorch worker (runs in its own process) ------------------------------------------


def build_twin(spec):
    """The twin of byol-pytorch's BYOL learner: (learner module, online_encoder, predictor)."""
    import torch
    import torchvision
    from torch import nn
    from torchvision.models.resnet import BasicBlock

    e = spec["encoder"]
    if e["name"] in RESNETS:
        net = getattr(torchvision.models, e["name"])(num_classes=e["num_classes"],
                                                     zero_init_residual=e["zero_init_residual"])
        if e["stem"] == "cifar":
            net.conv1 = nn.Conv2d(e["in_channels"], 64, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        elif e["in_channels"] != 3:
            net.conv1 = nn.Conv2d(e["in_channels"], 64, 7, 2, 3, bias=False)
    else:
        class Flatten4d(nn.Module):
            def forward(self, x):
                return x.reshape(x.shape[0], -1, 1, 1)

        class Linear4d(nn.Linear):
            def forward(self, x):
                return super().forward(x.flatten(1)).reshape(x.shape[0], -1, 1, 1)

        class Layers(nn.Sequential):
            pass

        net, c = Layers(), e["in_channels"]
        for x in e["layers"]:
            t = x["type"]
            if t == "conv":
                m = nn.Conv2d(c, x["out"], x["kernel"], x.get("stride", 1), x.get("pad", 0),
                              bias=bool(x.get("bias", True)))
                c = x["out"]
            elif t == "bn":
                m = nn.BatchNorm2d(c, affine=bool(x.get("affine", True)))
            elif t == "relu":
                m = nn.ReLU(inplace=False)
            elif t == "maxpool":
                m = nn.MaxPool2d(x["kernel"], x.get("stride", x["kernel"]), x.get("pad", 0))
            elif t == "avgpool":
                m = nn.AdaptiveAvgPool2d(1)
            elif t == "flatten":
                m = Flatten4d()
            elif t == "linear":
                m = Linear4d(1, x["out"], bias=bool(x.get("bias", True)))  # in set below
            else:  # residual
                s, co = x.get("stride", 1), x["out"]
                down = None
                if s != 1 or c != co:
                    down = nn.Sequential(nn.Conv2d(c, co, 1, s, bias=False), nn.BatchNorm2d(co))
                m, c = BasicBlock(c, co, s, down), co
            net.add_module(x["name"], m)
        # Linear layers' input widths come from a probe (they depend on the image size).
        probe = torch.zeros(2, e["in_channels"], spec["image_size"], spec["image_size"])
        with torch.no_grad():
            for name, m in net.named_children():
                if isinstance(m, Linear4d):
                    fresh = Linear4d(probe[0].numel(), m.out_features, bias=m.bias is not None)
                    setattr(net, name, fresh)
                    m = fresh
                probe = m.eval()(probe)

    hid = spec["hidden_layer"]
    if isinstance(hid, int):
        hidden_module = list(net.children())[hid]
    else:
        hidden_module = dict(net.named_modules()).get(hid)
        if hidden_module is None:
            raise SystemExit("twin: no layer '%s'" % hid)

    def mlp(dim, out, hidden):
        return nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                             nn.Linear(hidden, out))

    def simsiam_mlp(dim, out, hidden):
        return nn.Sequential(
            nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out, bias=False), nn.BatchNorm1d(out, affine=False))

    class NetWrapper(nn.Module):
        """byol-pytorch's NetWrapper: the hidden layer through a hook, then the projector."""

        def __init__(self):
            super().__init__()
            self.net = net
            self.hidden = None
            hidden_module.register_forward_hook(self._hook)
            with torch.no_grad():  # the projector's input width, from the config's channels
                self.net.eval()(torch.zeros(2, e["in_channels"], spec["image_size"],
                                            spec["image_size"]))
            dim = self.hidden.shape[1]
            make = mlp if spec["use_momentum"] else simsiam_mlp
            self.projector = make(dim, spec["projection_size"], spec["projection_hidden_size"])

        def _hook(self, module, inp, out):
            self.hidden = out.flatten(1)

        def forward(self, x):
            self.net(x)
            return self.projector(self.hidden)

    class Learner(nn.Module):
        def __init__(self):
            super().__init__()
            self.online_encoder = NetWrapper()
            self.online_predictor = mlp(spec["projection_size"], spec["projection_size"],
                                        spec["projection_hidden_size"])

    learner = Learner()
    learner.train()
    return learner


def lars_trust_ratio(params, weight_decay, eta=1e-3):
    """Replace each >= 2-d gradient g by trust x (g + wd p) (core/nn/optim.c's LARS); torch.optim.SGD
    with momentum then takes the step."""
    import torch
    with torch.no_grad():
        for p in params:
            if p.grad is None or p.dim() <= 1:
                continue
            d = p.grad.add(p, alpha=weight_decay) if weight_decay else p.grad
            pn, dn = float(p.norm()), float(d.norm())
            trust = eta * pn / dn if pn > 0 and dn > 0 else 1.0
            p.grad.copy_(d * trust)


def make_optimizer(spec, params):
    import torch
    o = spec["optimizer"]
    if o["kind"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"], weight_decay=o["weight_decay"])
    if o["kind"] == "adamw":
        return torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"])
    nesterov = o["nesterov"] and o["momentum"] > 0
    if o["kind"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                               weight_decay=o["weight_decay"], nesterov=nesterov)
    return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], nesterov=nesterov)


def torch_capability():
    import torch
    m = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    return m.group(1) if m else "?"


def torch_worker(a):
    import torch
    import torch.nn.functional as F

    spec = json.loads(a.spec)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    learner = build_twin(spec)
    if a.twin_tensors:  # names, shapes and kinds of the online tensors, for --check-twins
        params = {n for n, _ in learner.named_parameters()}
        print(json.dumps({n: [list(t.shape), n in params] for n, t in
                          learner.state_dict().items()}))
        return
    online, predictor = learner.online_encoder, learner.online_predictor
    target = None
    if spec["use_momentum"]:
        target = copy.deepcopy(online)
        for p in target.parameters():
            p.requires_grad = False
        target.train()
    params = list(online.parameters()) + list(predictor.parameters())
    opt = make_optimizer(spec, params)
    lars = spec["optimizer"]["kind"] == "lars"
    decay = spec["decay"]

    def loss_fn(x, y):
        x = F.normalize(x, dim=-1, p=2)
        y = F.normalize(y, dim=-1, p=2)
        return 2 - 2 * (x * y).sum(dim=-1)

    size, batch = spec["image_size"], spec["batch"]
    view = torch.randn(batch, spec["encoder"]["in_channels"], size, size)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else None

    def forward():
        images = torch.cat((view, view), dim=0)  # identity augmentation, both views
        pred = predictor(online(images))
        with torch.no_grad():
            proj = (target if target is not None else online)(images).detach()
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
        if lars:
            lars_trust_ratio(params, spec["optimizer"]["weight_decay"])
        opt.step()
        if target is not None:
            with torch.no_grad():
                for tp, op in zip(target.parameters(), online.parameters()):
                    tp.data = tp.data * decay + (1 - decay) * op.data
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
    print("%.1f img/s  %.1f ms/step (median %.1f, min %.1f)  peak RSS %.0f MiB  loss %.4f  "
          "aten %s" % (batch * a.steps / total, 1e3 * total / a.steps,
                       1e3 * statistics.median(times), 1e3 * min(times), peak, loss,
                       torch_capability()))


# ---- the driver ----------------------------------------------------------------------------


def cpu_info():
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = val.strip()
                elif key == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    return model, flags


def isa_env(level, threads):
    caps = ISA_LEVELS[level]
    env = dict(os.environ)
    env.update({"DNNL_MAX_CPU_ISA": caps["dnnl"], "ONEDNN_MAX_CPU_ISA": caps["dnnl"],
                "OPENBLAS_CORETYPE": caps["openblas"], "ATEN_CPU_CAPABILITY": caps["aten"],
                "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)})
    return env


def dnnl_effective_isa(python, env):
    code = ("import ctypes\ntry:\n print(ctypes.CDLL('libdnnl.so.2').dnnl_get_effective_cpu_isa())"
            "\nexcept OSError:\n print(-1)")
    p = subprocess.run([python, "-c", code], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    try:
        v = int(p.stdout.strip())
    except ValueError:
        return "?"
    return "no libdnnl.so.2" if v < 0 else DNNL_ISA_NAMES.get(v, hex(v))


def build_sgemm_peak(tmp):
    exe = os.path.join(tmp, "sgemm_peak")
    src = os.path.join(ROOT, "bench", "sgemm_peak.c")
    p = subprocess.run(["cc", "-O2", src, "-lopenblas", "-o", exe], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print("side_by_side: cannot build %s (no sgemm peak):\n%s" % (src, p.stdout))
        return None
    return exe


def sgemm_peak(exe, env):
    if not exe:
        return float("nan"), "?"
    p = subprocess.run([exe], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    m = re.search(NUMBER + r" GFLOP/s.*core (\S+),", p.stdout)
    return (float(m.group(1)), m.group(2)) if m else (float("nan"), "?")


def run(cmd, env, batch):
    """(figures, None) or (None, why it failed)."""
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout
    ips = re.search(NUMBER + r" img/s", out)
    if p.returncode != 0 or not ips:
        tail = " / ".join(out.strip().splitlines()[-3:])
        return None, "exit %d: %s" % (p.returncode, tail[-400:])
    # Both sides print img/s and the mean ms/step with one decimal: take whichever has more
    # digits (ms/step for slow steps, img/s for fast ones).
    ms = re.search(NUMBER + r" ms/step", out)
    ips = float(ips.group(1))
    if ms and float(ms.group(1)) > ips:
        ips = batch * 1e3 / float(ms.group(1))
    rss = re.search(r"peak RSS " + NUMBER + r" MiB", out)
    gf = re.search(NUMBER + r" GFLOP/s \(" + NUMBER + r" GFLOP/step\)", out)
    aten = re.search(r"aten (\S+)", out)
    return {"ips": ips, "rss": float(rss.group(1)) if rss else float("nan"),
            "gflops": float(gf.group(1)) if gf else float("nan"),
            "gflop_step": float(gf.group(2)) if gf else float("nan"),
            "aten": aten.group(1) if aten else None}, None


def resolve_config(name):
    if os.path.exists(name):
        return name
    for d in ("configs", "bench"):
        for cand in (os.path.join(ROOT, d, name), os.path.join(ROOT, d, name + ".cfg")):
            if os.path.exists(cand):
                return cand
    sys.exit("side_by_side: no config '%s' (a path, or a name in configs/ or bench/)" % name)


def shipped_configs():
    return sorted(glob.glob(os.path.join(ROOT, "configs", "*.cfg"))) + \
        sorted(glob.glob(os.path.join(ROOT, "bench", "*.cfg")))


def auto_counts(a, est):
    """--steps / --warmup as given, else from the estimated cost of a step."""
    steps, warmup = a.steps, a.warmup
    if steps is None:
        steps = 10
        if est and est["counted"] < 1.0:  # a near-empty step (fmnist-pixels): milliseconds
            steps = 100
        elif est:
            steps = max(2, min(10, int(STEP_BUDGET_S * ASSUMED_GFLOPS / est["counted"])))
    if warmup is None:
        warmup = 3 if steps >= 10 else max(1, steps // 3)
    return steps, warmup


def safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


def check_twin(a, spec, cfg_path, tmp):
    """Compare the twin's online tensors with a byol-c checkpoint after one step of the config
    (mock data, batch 2): same names, same shapes. Returns a line to print."""
    ck = tempfile.mkdtemp(dir=tmp)
    cmd = [a.byolctl, "run", os.path.abspath(cfg_path), "--set", "train.steps=1",
           "--set", "train.warmup_steps=0", "--set", "train.batch_size=2",
           "--set", "train.checkpoint_every=0", "--set", "train.checkpoint_dir=" + ck,
           "--set", 'data={format="mock"; length=8;}', "--set", "backend.threads=%d" % a.threads]
    if "eval" in read_libconfig(cfg_path):
        cmd += ["--set", "eval.at_end=false", "--set", "eval.every=0"]
    if "metrics" in read_libconfig(cfg_path):
        cmd += ["--set", "metrics.file=" + os.path.join(ck, "metrics.csv")]
    p = subprocess.run(cmd, cwd=ck, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    latest = os.path.join(ck, "latest.safetensors")
    if p.returncode != 0 or not os.path.exists(latest):
        return "byolctl run failed: " + " / ".join(p.stdout.strip().splitlines()[-2:])
    header = safetensors_header(latest)
    shutil.rmtree(ck, ignore_errors=True)
    byolc = {k: v["shape"] for k, v in header.items() if k.startswith("online_")}
    w = subprocess.run([a.python, os.path.abspath(__file__), "--torch-worker", "--twin-tensors",
                        "--spec", json.dumps(spec), "--threads", str(a.threads)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if w.returncode != 0:
        return "twin failed: " + w.stdout.strip()[-400:]
    twin = json.loads(w.stdout.strip().splitlines()[-1])

    def numel(shape):
        n = 1
        for d in shape:
            n *= d
        return n

    def count(tensors, prefix, is_param):
        return sum(numel(s) for k, s in tensors.items() if k.startswith(prefix) and is_param(k))

    byolc_param = lambda k: not re.search(r"running_(mean|var)$|num_batches_tracked$", k)
    twin_param = lambda k: twin[k][1]
    tshapes = {k: v[0] for k, v in twin.items()}
    missing = sorted(set(tshapes) - set(byolc))
    extra = sorted(set(byolc) - set(tshapes))
    shape = sorted(k for k in set(tshapes) & set(byolc) if list(tshapes[k]) != list(byolc[k]))
    parts = []
    for label, prefix in (("encoder", "online_encoder.net."),
                          ("projector", "online_encoder.projector."),
                          ("predictor", "online_predictor.")):
        b, t = count(byolc, prefix, byolc_param), count(tshapes, prefix, twin_param)
        parts.append("%s %s" % (label, "%d" % b if b == t else "byol-c %d, twin %d" % (b, t)))
    verdict = "same %d tensors" % len(byolc) if not (missing or extra or shape) else \
        "DIFFERENT: only in twin %s; only in byol-c %s; shapes differ %s" % (
            missing[:5], extra[:5], [(k, tshapes[k], byolc[k]) for k in shape[:5]])
    return "%s; parameters: %s" % (verdict, ", ".join(parts))


def fmt(x, spec="%.1f"):
    return "-" if x is None or x != x else spec % x


def fmt_ips(x):
    return "%.1f" % x if x >= 10 else "%.2f" % x if x >= 1 else "%.3f" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="*", help="byol-c configs (default: every shipped one)")
    ap.add_argument("--configs", action="append", default=[],
                    help="comma-separated configs (paths, or names in configs/ or bench/)")
    ap.add_argument("--isa", action="append", default=[],
                    help="comma-separated ISA levels (%s; default: avx2 and avx512_core as "
                    "the CPU has them, with --bf16 avx512_core_bf16)" % ", ".join(ISA_LEVELS))
    default_ctl = os.path.join(ROOT, "build-bench", "bin", "byolctl")
    if not os.path.exists(default_ctl):
        default_ctl = os.path.join(ROOT, "build", "bin", "byolctl")
    ap.add_argument("--byolctl", default=default_ctl,
                    help="byolctl of a Release build (default: build-bench/, else build/)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per config and ISA (default 3)")
    ap.add_argument("--steps", type=int, help="timed steps (default: 10, fewer for costly steps, "
                    "100 for near-empty ones)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (default: 3, or 1 with fewer "
                    "steps)")
    ap.add_argument("--threads", type=int, default=2, help="threads on both sides (default 2)")
    ap.add_argument("--bf16", action="store_true",
                    help="PyTorch under bf16 autocast, byol-c with backend.precision = bf16")
    ap.add_argument("--check-twins", action="store_true",
                    help="compare each twin's tensors with byol-c's after one step; no timing")
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3")
                    else sys.executable, help="the Python that has Debian's torch")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--twin-tensors", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a)
    if a.rounds < 1 or (a.steps is not None and a.steps < 1) or \
            (a.warmup is not None and a.warmup < 0) or a.threads < 1:
        ap.error("--rounds, --steps and --threads must be >= 1, --warmup >= 0")
    if not os.path.exists(a.byolctl):
        ap.error("no byolctl at %s (build it, or pass --byolctl)" % a.byolctl)

    names = list(a.config) + [n for c in a.configs for n in c.split(",") if n]
    paths = [resolve_config(n) for n in names] if names else shipped_configs()
    model, flags = cpu_info()
    if a.isa:
        levels = [x for s in a.isa for x in s.split(",") if x]
        for x in levels:
            if x not in ISA_LEVELS:
                ap.error("unknown ISA level '%s' (known: %s)" % (x, ", ".join(ISA_LEVELS)))
            if ISA_LEVELS[x]["flag"] not in flags:
                ap.error("this CPU (%s) has no %s" % (model, ISA_LEVELS[x]["flag"]))
    else:
        # byol-c's bf16 needs AVX512-BF16 (the onednn backend refuses it below), and f32 at
        # that level is the avx512_core one.
        levels = [x for x in ISA_LEVELS if ISA_LEVELS[x]["flag"] in flags and
                  (x == "avx512_core_bf16") == a.bf16]
    if not levels:
        sys.exit("side_by_side: no ISA level to run on this CPU (%s)%s" % (
            model, ": byol-c's bf16 needs avx512_bf16" if a.bf16 else ""))

    # Configs -> benchmarks (one per distinct step), or skipped with the reason.
    benches, skipped, by_key = [], [], {}
    for p in paths:
        rel = os.path.relpath(p, ROOT) if os.path.abspath(p).startswith(ROOT) else p
        try:
            spec = twin_spec(p, a.threads)
            est = counted_gflop(spec)
        except (ConfigError, KeyError, TypeError, ValueError) as e:
            skipped.append((rel, str(e)))
            continue
        except OSError as e:
            skipped.append((rel, "cannot read: %s" % e))
            continue
        if a.bf16 and spec["backend"] != "onednn":
            skipped.append((rel, "backend %s computes f32 only (--bf16)" % spec["backend"]))
            continue
        key = same_step_key(spec)
        if key in by_key and not a.check_twins:
            by_key[key]["also"].append(rel)
            continue
        b = {"path": p, "name": rel, "also": [], "spec": spec, "est": est, "rows": {}}
        by_key[key] = b
        benches.append(b)

    tmp = tempfile.mkdtemp(prefix="side_by_side.")
    try:
        if a.check_twins:
            print("CPU: %s; byolctl %s; twins against byol-c's online tensors after one step"
                  % (model, a.byolctl))
            for b in benches:
                print("%-34s %s" % (b["name"], check_twin(a, b["spec"], b["path"], tmp)),
                      flush=True)
            for name, why in skipped:
                print("%-34s skipped: %s" % (name, why))
            return
        bench_all(a, benches, skipped, levels, model, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_all(a, benches, skipped, levels, model, tmp):
    precision = "bf16" if a.bf16 else "f32"
    exe = build_sgemm_peak(tmp)
    load0 = os.getloadavg()
    print("CPU: %s, %d threads a side, %s, no augmentation, %d round(s), byolctl %s"
          % (model, a.threads, precision, a.rounds, a.byolctl))
    print("load average at start: %.2f %.2f %.2f" % load0)
    for lv in levels:
        env = isa_env(lv, a.threads)
        print("ISA %s: DNNL_MAX_CPU_ISA=%s OPENBLAS_CORETYPE=%s ATEN_CPU_CAPABILITY=%s -> oneDNN "
              "runs at %s" % (lv.upper(), env["DNNL_MAX_CPU_ISA"], env["OPENBLAS_CORETYPE"],
                              env["ATEN_CPU_CAPABILITY"], dnnl_effective_isa(a.python, env)))
    for name, why in skipped:
        print("skipped %s: %s" % (name, why))
    sys.stdout.flush()

    for b in benches:
        spec, est = b["spec"], b["est"]
        steps, warmup = auto_counts(a, est)
        print("\n== %s%s: %s" % (b["name"], " (also %s)" % ", ".join(b["also"]) if b["also"]
                                 else "", describe(spec)))
        print("   backend %s, %d warm-up + %d timed steps; twin's counted work %s GFLOP/step"
              % (spec["backend"], warmup, steps, fmt(est["counted"] if est else None, "%.2f")))
        worker = [a.python, os.path.abspath(__file__), "--torch-worker", "--spec",
                  json.dumps(spec), "--threads", str(a.threads), "--steps", str(steps),
                  "--warmup", str(warmup)] + (["--bf16"] if a.bf16 else [])
        byol = [a.byolctl, "bench", b["path"], "--no-augment", "--steps", str(steps), "--warmup",
                str(warmup), "--set", "backend.threads=%d" % a.threads]
        if a.bf16:
            byol += ["--set", "backend.precision=bf16"]
        for lv in levels:
            env = isa_env(lv, a.threads)
            load = os.getloadavg()[0]
            peak, core = sgemm_peak(exe, env)
            rows = []
            for r in range(a.rounds):
                sides = [("pytorch", worker), ("byol-c", byol)]
                if r % 2:
                    sides.reverse()
                got = {}
                for who, cmd in sides:
                    got[who] = run(cmd, env, spec["batch"])
                t, terr = got["pytorch"]
                c, cerr = got["byol-c"]
                if terr or cerr:
                    for who, err in (("PyTorch", terr), ("byol-c", cerr)):
                        if err:
                            print("   %s on %s, %s, round %d: %s failed: %s"
                                  % (b["name"], model, lv.upper(), r + 1, who, err))
                    continue
                rows.append((t, c))
                print("   %s on %s, %s, round %d: PyTorch %s img/s (%.0f MiB)  byol-c %s "
                      "img/s (%.0f MiB)  ratio %.2fx  byol-c %.1f GFLOP/s (%.2f/step), sgemm "
                      "peak %.1f (%s) = %s%%" % (
                          b["name"], model, lv.upper(), r + 1, fmt_ips(t["ips"]), t["rss"],
                          fmt_ips(c["ips"]),
                          c["rss"], c["ips"] / t["ips"], c["gflops"], c["gflop_step"], peak,
                          core, fmt(100 * c["gflops"] / peak, "%.0f")), flush=True)
                if t["aten"] and t["aten"].lower() != ISA_LEVELS[lv]["aten"]:
                    print("   WARNING: PyTorch ran at %s, not %s" % (t["aten"],
                                                                    ISA_LEVELS[lv]["aten"]))
                if est and abs(c["gflop_step"] - est["counted"]) > 0.005 * est["counted"] + 0.01:
                    print("   WARNING: byol-c counts %.2f GFLOP/step, the twin %.2f: not the same "
                          "network?" % (c["gflop_step"], est["counted"]))
            if rows:
                med = statistics.median
                b["rows"][lv] = {
                    "t": med([t["ips"] for t, _ in rows]), "c": med([c["ips"] for _, c in rows]),
                    "ratio": med([c["ips"] / t["ips"] for t, c in rows]),
                    "gflops": med([c["gflops"] for _, c in rows]), "peak": peak,
                    "trss": med([t["rss"] for t, _ in rows]),
                    "crss": med([c["rss"] for _, c in rows]), "load": load}

    print("\nimg/s: images per second, one view per image (byol-pytorch's batch size); ratio = "
          "byol-c / PyTorch; GFLOP/s: byolctl bench's effective figure; sgemm peak: "
          "bench/sgemm_peak.c at the same level and threads; medians of %d round(s)" % a.rounds)
    for lv in levels:
        caps = ISA_LEVELS[lv]
        print("\n%s, %s (DNNL_MAX_CPU_ISA=%s, OPENBLAS_CORETYPE=%s, ATEN_CPU_CAPABILITY=%s), "
              "%d threads, %s:\n" % (model, lv.upper(), caps["dnnl"], caps["openblas"],
                                     caps["aten"], a.threads, precision))
        print("| config | network | PyTorch img/s | byol-c img/s | ratio | byol-c GFLOP/s | "
              "sgemm peak GFLOP/s | % of peak | PyTorch peak MiB | byol-c peak MiB | load at start |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for b in benches:
            name = ", ".join(["`%s`" % os.path.basename(n) for n in [b["name"]] + b["also"]])
            row = b["rows"].get(lv)
            if not row:
                print("| %s | %s | failed | | | | | | | | |" % (name, describe(b["spec"])))
                continue
            print("| %s | %s | %s | %s | %.2fx | %.1f | %s | %s | %.0f | %.0f | %.2f |" % (
                name, describe(b["spec"]), fmt_ips(row["t"]), fmt_ips(row["c"]), row["ratio"],
                row["gflops"],
                fmt(row["peak"]), fmt(100 * row["gflops"] / row["peak"], "%.0f%%"), row["trss"],
                row["crss"], row["load"]))
    if skipped:
        print("\nskipped: " + "; ".join("`%s` (%s)" % (os.path.basename(n), why)
                                        for n, why in skipped))
    print("\nload average at start: %.2f %.2f %.2f; at end: %.2f %.2f %.2f"
          % (load0 + os.getloadavg()))


if __name__ == "__main__":
    main()
