#!/usr/bin/env python3
"""Writes the broken inputs of the bad-input catalogue (catalogue.txt) under files/: configs,
plugins, safetensors checkpoints, IDX, CIFAR-10, .npy files and ImageFolder trees with broken
PNG / JPEG images. Standard library only; deterministic, so rerunning leaves git clean. The
format builders are in tests/formats.py; the JPEG seeds come from tests/data/folder
(gen_images.py).

  /usr/bin/python3 tests/bad-inputs/gen_bad_inputs.py
"""
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")
sys.path.insert(0, os.path.join(HERE, ".."))
from formats import gz, idx, npy, png, st, st_raw, write_file  # noqa: E402


def put(name, data):
    write_file(os.path.join(OUT, name), data)


# ---- configs and plugins -------------------------------------------------------------------

def gen_configs():
    put("syntax.cfg", "# an unclosed group\nmodel = { image_size = 28 ;\n")
    put("binary.cfg", b"seed = 0;\n\x00\x01\x02\xff\xfe = 3;\n")
    put("unknown_key.cfg", "seed = 0;\nmodle = { image_size = 28; };\n")
    put("wrong_type.cfg", 'seed = 0;\ndata = { format = "mock"; length = 4; };\n'
        'train = { steps = "many"; };\n')
    put("missing_include.cfg", '@include "no-such-file.cfg"\nseed = 0;\n')
    put("include_loop.cfg", '@include "include_loop.cfg"\n')
    put("include_dot.cfg", 'seed = 0;\n@include "."\n')
    # An include inside an include is resolved against its own file's folder.
    put("include_nested.cfg", '@include "nested/a.cfg"\n')
    put("nested/a.cfg", 'seed = 0;\n@include "missing.cfg"\n')
    put("duplicate.cfg", "seed = 0;\nseed = 1;\n")
    # Augmentation settings: each file is base.cfg plus one broken augment_fn.
    for name, aug in (("augment_unknown_op", '( { op = "sharpen"; } )'),
                      ("augment_probability", '( { op = "horizontal_flip"; p = 1.5; } )'),
                      ("augment_unknown_key", '( { op = "horizontal_flip"; prob = 0.5; } )'),
                      ("augment_preset", '"simclr"'),
                      ("augment_gray", '( { op = "color_jitter"; saturation = 0.4; } )'),
                      ("augment_kernel", '( { op = "gaussian_blur"; kernel_size = 4; } )'),
                      ("augment_not_list", "3")):
        put(name + ".cfg", '@include "../base.cfg"\naugment_fn = %s;\n' % aug)
    # A config in two files, for outputs that are the included one.
    put("include_top.cfg", '@include "../base.cfg"\n@include "include_part.cfg"\n')
    put("include_part.cfg", 'metrics = { format = "csv"; };\n')
    # base.cfg with one setting changed, so that the message names this file and line.
    with open(os.path.join(HERE, "base.cfg")) as f:
        base = f.read()
    put("mock_huge.cfg", base.replace("length = 4;", "length = 1000000000000000L;"))
    put("decay_inf.cfg", base.replace("projection_size = 4;",
                                      "projection_size = 4; moving_average_decay = -1e309;"))
    put("notelf.plugin", "this is a text file, not a shared object.\n" * 4)
    put("empty.plugin", b"")
    # A truncated ELF header: the magic, then nothing.
    put("truncated.plugin", b"\x7fELF\x02\x01\x01" + b"\0" * 9)


# ---- safetensors ---------------------------------------------------------------------------

def u8(begin, end, shape=None):
    return {"dtype": "U8", "shape": [end - begin] if shape is None else shape,
            "data_offsets": [begin, end]}


def gen_safetensors():
    put("st_short.safetensors", b"\x10\0\0\0")
    put("st_header_past_end.safetensors", st_raw(b"{}", length=4096))
    put("st_header_limit.safetensors", st_raw(b"{}", length=200_000_000))
    put("st_bad_json.safetensors", st_raw(b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},}', b"x"))
    put("st_not_object.safetensors", st_raw(b"[1, 2, 3]"))
    put("st_overlap.safetensors", st({"a": u8(0, 4), "b": u8(2, 6)}, b"abcdef"))
    put("st_gap.safetensors", st({"a": u8(0, 4), "b": u8(6, 8)}, b"abcdefgh"))
    put("st_trailing.safetensors", st({"a": u8(0, 4)}, b"abcdEXTRA"))
    put("st_size.safetensors", st({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 12]}}, b"\0" * 12))
    put("st_overflow.safetensors", st({"w": {"dtype": "F64", "shape": [4294967296, 4294967296],
                                             "data_offsets": [0, 0]}}))
    put("st_duplicate.safetensors", st_raw(
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
        b'"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"xy"))
    put("st_dtype.safetensors", st({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"x"))
    put("st_negative.safetensors", st({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}))
    # Valid files whose tensors are not a BYOL state / not this encoder's weights.
    put("st_wrong_state.safetensors", st({"something.else": u8(0, 4)}, b"abcd"))
    put("st_wrong_shape.safetensors", st({
        "conv1.weight": {"dtype": "F32", "shape": [3, 1, 3, 3], "data_offsets": [0, 108]},
        "conv1.bias": {"dtype": "F32", "shape": [2], "data_offsets": [108, 116]}}, b"\0" * 116))
    put("st_valid.safetensors", st({"a": u8(0, 4096)}, b"\0" * 4096))


# ---- IDX -----------------------------------------------------------------------------------

def gen_idx():
    img = idx([3, 4, 4], bytes(range(48)))
    put("idx_magic.idx", idx([3, 4, 4], bytes(48), magic=0x80d))
    put("idx_truncated.idx", img[:40])
    put("idx_trailing.idx", img + b"\0\0\0")
    put("idx_zero_dim.idx", idx([0, 4, 4], b""))
    put("idx_too_big.idx", idx([70000, 10000, 10000], b""))
    img_gz = gz(img)
    put("idx_gz_truncated.idx.gz", img_gz[:-6])
    bad = bytearray(img_gz)
    bad[len(bad) // 2] ^= 0xff
    put("idx_gz_corrupt.idx.gz", bytes(bad))
    put("idx_gz_bomb.idx.gz", gz(idx([4000, 1000, 1000], b"")))
    put("idx_images.idx", img)
    put("idx_labels_count.idx", idx([2], b"\0\1"))
    put("idx_labels_magic.idx", img)


# ---- CIFAR-10 ------------------------------------------------------------------------------

def gen_cifar():
    rec = bytes([1]) + bytes(3072)
    put("cifar_partial.bin", rec + rec[:1000])
    put("cifar_label.bin", rec + bytes([12]) + bytes(3072))
    put("cifar_empty.bin", b"")
    put("cifar_no_batches/README", "a CIFAR folder without data_batch_*.bin files\n")


# ---- .npy ----------------------------------------------------------------------------------

def gen_npy():
    put("npy_magic.npy", b"\x93NUMPZ\x01\x00" + npy("|u1", (1, 2, 2), bytes(4))[8:])
    put("npy_version.npy", b"\x93NUMPY\x03\x00" + npy("|u1", (1, 2, 2), bytes(4))[8:])
    put("npy_fortran.npy", npy("|u1", (1, 2, 2), bytes(4), fortran=True))
    put("npy_dtype.npy", npy("<f8", (1, 2, 2), bytes(32)))
    put("npy_truncated.npy", npy("<f4", (2, 2, 2), bytes(20)))
    put("npy_trailing.npy", npy("|u1", (1, 2, 2), bytes(6)))
    put("npy_nan.npy", npy("<f4", (1, 1, 2), struct.pack("<2f", 0.5, float("nan"))))
    put("npy_rank.npy", npy("|u1", (4,), bytes(4)))
    put("npy_overflow.npy", npy("|u1", (17179869184, 1073741824), b""))
    put("npy_dict.npy", npy(None, None, bytes(4), dict_text="{'descr': '|u1', 'shape': (1, 2, 2) }"))
    put("npy_images.npy", npy("|u1", (2, 1, 2, 2), bytes(8)))
    put("npy_labels_negative.npy", npy("<i8", (2,), struct.pack("<2q", 0, -3)))
    put("npy_labels_count.npy", npy("<i8", (3,), struct.pack("<3q", 0, 1, 2)))


# ---- images (ImageFolder trees: files/<tree>/c/<image>) ------------------------------------

def gray(w, h, rows, crc_ok=True):
    """An 8-bit grayscale PNG of `rows` black scanlines (fewer than h: truncated data)."""
    return png(w, h, [bytes(w)] * rows, idat_crc_ok=crc_ok)


def gen_images():
    good = gray(8, 8, 8)
    put("png_truncated/c/x.png", good[: len(good) - 20])
    put("png_crc/c/x.png", gray(8, 8, 8, crc_ok=False))
    put("png_huge/c/x.png", gray(100000, 2, 0))
    put("png_bomb/c/x.png", gray(16000, 4000, 1))
    put("png_not_image/c/x.png", "not a picture\n")
    with open(os.path.join(HERE, "..", "data", "folder", "cat", "b.jpg"), "rb") as f:
        jpg = f.read()
    put("jpeg_truncated/c/x.jpg", jpg[: len(jpg) * 9 // 10])  # inside the scan data
    put("jpeg_no_scan/c/x.jpg", jpg[:200])  # inside the headers
    sof = next(i for i in range(2, len(jpg) - 9) if jpg[i] == 0xFF and jpg[i + 1] in (0xC0, 0xC2))
    huge = bytearray(jpg)
    huge[sof + 5:sof + 9] = b"\x80\x00\x80\x00"  # 32768 x 32768
    put("jpeg_huge/c/x.jpg", bytes(huge))
    # A batch holds two images: each broken one shares its class folder with a good one.
    for tree in ("png_truncated", "png_crc", "png_huge", "png_bomb", "png_not_image",
                 "jpeg_truncated", "jpeg_no_scan", "jpeg_huge"):
        put(tree + "/c/a.png", good)
    put("folder_empty_class/a/x.png", good)
    put("folder_empty_class/b/README", "a class folder without images\n")
    put("folder_no_classes/README", "an ImageFolder root without class folders\n")


# ---- metrics files that --resume must not append to -----------------------------------------

def gen_metrics():
    put("metrics_foreign.jsonl", '{"epoch":1,"accuracy":0.5}\n{"epoch":2,"accuracy":0.6}\n')
    put("metrics_binary.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    gen_configs()
    gen_safetensors()
    gen_idx()
    gen_cifar()
    gen_npy()
    gen_images()
    gen_metrics()
