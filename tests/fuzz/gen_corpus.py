#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/: a few small valid inputs of each
format and a few broken ones, so the fuzzers start from files that reach deep into the readers.
Standard library only; the format builders are in tests/formats.py, the PNG / JPEG seeds are
copied from tests/data (gen_images.py). The output is deterministic. Regressions
(corpus/<target>/regress_*: inputs that once crashed or exhausted memory) are added by hand and
kept; rerunning this script does not touch them.

  /usr/bin/python3 tests/fuzz/gen_corpus.py
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
OUT = os.path.join(HERE, "corpus")
sys.path.insert(0, os.path.join(HERE, ".."))
from formats import gz, idx, npy, png, st_raw, st_tensors, write_file  # noqa: E402


def put(target, name, data):
    write_file(os.path.join(OUT, target, name), data)


# ---- safetensors ---------------------------------------------------------------------------

def gen_safetensors():
    f32 = struct.pack("<6f", *range(6))
    put("fuzz_safetensors", "two_tensors", st_tensors(
        [("fc.weight", "F32", [2, 3], f32), ("fc.bias", "F32", [2], f32[:8])], {"format": "pt"}))
    put("fuzz_safetensors", "all_dtypes", st_tensors(
        [("a", "F64", [1], b"\0" * 8), ("b", "I64", [], b"\1" + b"\0" * 7), ("c", "I32", [1], b"\2\0\0\0"),
         ("d", "U8", [3], b"\1\2\3"), ("e", "BF16", [1], b"\0\0"), ("f", "F16", [1], b"\0\0"),
         ("g", "F32", [0, 4], b"")]))
    put("fuzz_safetensors", "empty", st_tensors([]))
    # These two length fields are shorter than their headers (70 and 105 bytes), so the JSON
    # ends early; kept as the seeds were first written.
    put("fuzz_safetensors", "escapes", st_raw(
        b'{"\\u00e9\\ud83d\\ude00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x",
        length=64))
    put("fuzz_safetensors", "bad_overlap", st_raw(
        b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
        b'"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', b"abc", length=104))
    put("fuzz_safetensors", "bad_trailing", st_tensors([("t", "U8", [2], b"ab")], extra=b"zz"))
    put("fuzz_safetensors", "bad_size", st_raw(
        b'{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}'.ljust(56), b"abcd"))
    put("fuzz_safetensors", "bad_length", st_raw(b"{}", length=1 << 40))


# ---- IDX, CIFAR, npy -----------------------------------------------------------------------

def gen_idx():
    imgs = idx([3, 4, 4], bytes(range(48)))
    put("fuzz_idx", "images", imgs)
    put("fuzz_idx", "images_gz", gz(imgs))
    put("fuzz_idx", "labels", idx([3], b"\0\1\2"))
    put("fuzz_idx", "labels_gz", gz(idx([3], b"\0\1\2")))
    put("fuzz_idx", "bad_truncated", imgs[:30])
    put("fuzz_idx", "bad_gz_truncated", gz(imgs)[:-6])
    put("fuzz_idx", "bad_magic", b"\0\0\x0d\x03" + imgs[4:])
    put("fuzz_idx", "bad_huge_gz", gz(idx([60000, 1000, 1000], b"")))


def gen_cifar():
    rec = lambda label, k: bytes([label]) + bytes((i * 7 + k) % 256 for i in range(3072))
    put("fuzz_cifar", "one_record", rec(3, 0))
    put("fuzz_cifar", "two_records", rec(0, 1) + rec(9, 2))
    put("fuzz_cifar", "bad_label", rec(10, 0))
    put("fuzz_cifar", "bad_truncated", rec(1, 0)[:3000])


def gen_npy():
    put("fuzz_npy", "u8_nchw", npy("|u1", (2, 1, 3, 3), bytes(range(18))))
    put("fuzz_npy", "f4_nhw", npy("<f4", (2, 2, 2), struct.pack("<8f", *[i / 8 for i in range(8)])))
    put("fuzz_npy", "labels_i8", npy("<i8", (2,), struct.pack("<2q", 0, 1)))
    put("fuzz_npy", "labels_i4", npy("<i4", (2,), struct.pack("<2i", 1, 0)))
    put("fuzz_npy", "v2_u8", npy("|u1", (1, 2, 2), b"\1\2\3\4", version=2))
    put("fuzz_npy", "bad_fortran", npy("|u1", (1, 2, 2), b"\1\2\3\4", fortran=True))
    put("fuzz_npy", "bad_truncated", npy("<f4", (2, 2, 2), b"\0" * 20))
    put("fuzz_npy", "bad_nan", npy("<f4", (1, 1, 1), struct.pack("<f", float("nan"))))
    put("fuzz_npy", "bad_dtype", npy("<f8", (1, 1, 1), b"\0" * 8))


# ---- images --------------------------------------------------------------------------------

def gen_images():
    for sub in ("folder", "variants"):
        for root, _, files in sorted(os.walk(os.path.join(DATA, sub))):
            for name in sorted(files):
                ext = os.path.splitext(name)[1].lower()
                target = "fuzz_png" if ext == ".png" else "fuzz_jpeg" if ext in (".jpg", ".jpeg") else None
                if target:
                    with open(os.path.join(root, name), "rb") as f:
                        data = f.read()
                    put(target, sub + "_" + name, data)
                    put(target, "bad_truncated_" + sub + "_" + name, data[: len(data) * 2 // 3])
    put("fuzz_png", "gray8_3x2", png(3, 2, [b"\0\x80\xff", b"\x10\x20\x30"]))
    put("fuzz_png", "rgb_2x2", png(2, 2, [bytes(range(6)), bytes(range(6, 12))], color_type=2))
    put("fuzz_png", "bad_huge_dims", png(16384, 4096, [b""], color_type=2))
    put("fuzz_png", "bad_zero_width", png(0, 4, [b""] * 4))


# ---- configs -------------------------------------------------------------------------------

CONFIGS = {
    "default": None,
    "groups": 'seed = 1;\nbackend = { name = "blas"; threads = 2; precision = "f32"; };\n'
              'model = { encoder = { name = "resnet18"; in_channels = 3; }; image_size = 32;\n'
              '  hidden_layer = -2; use_momentum = true; moving_average_decay = 0.99; };\n',
    "lists": 'augment_fn = ( { op = "random_resized_crop"; scale = [0.08, 1.0]; },\n'
             '  { op = "random_apply"; p = 0.8; ops = ( { op = "color_jitter"; brightness = 0.4; } ); },\n'
             '  { op = "normalize"; mean = [0.5, 0.5, 0.5]; std = [0.2, 0.2, 0.2]; } );\n'
             'augment_fn2 = "byol_paper";\nplugins = [ "a.so", "b.so" ];\n',
    "types": 'a = 1; b = 2.5; c = true; d = "s"; e = [1, 2, 3]; f = ( 1, "x", { g = 1L; } );\n'
             'h = 0x7fffffffffffffffL; i = -1e308; j = { k = { l = { m = []; }; }; };\n',
    "with_set": 'train = { steps = 5; lr = 3e-4; };\0train.lr=1',
    "bad_syntax": 'model = { image_size = 28 ;\n',
    "bad_types": 'train = { steps = "many"; lr = [1]; };\nmodel = 3;\n',
}


def gen_configs():
    with open(os.path.join(HERE, "..", "..", "configs", "default.cfg"), "rb") as f:
        CONFIGS["default"] = f.read()
    for target in ("fuzz_config", "fuzz_settings"):
        for name, text in CONFIGS.items():
            put(target, name, text)


if __name__ == "__main__":
    gen_safetensors()
    gen_idx()
    gen_cifar()
    gen_npy()
    gen_images()
    gen_configs()
