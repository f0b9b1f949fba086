#!/usr/bin/env python3
"""Writes the small image trees under tests/data/ and, beside them, what torchvision makes of
them (ImageFolder + Resize + CenterCrop + ToTensor) as .npy, for tests/test_dataset_formats.c.

  folder/    a 2-class ImageFolder: cat/{a.png, b.jpg}, dog/{c.png, d.jpeg} (+ a skipped .txt)
  variants/  one class of PNG and JPEG kinds: RGBA, palette + tRNS, 1-bit, 16-bit gray and RGB,
             Adam7-interlaced, gray / progressive / CMYK JPEG
  ref/       <tree>_c<channels>_s<size>.npy (N, C, S, S) float32 and <tree>_labels.npy int64

Run from anywhere with Pillow, NumPy, PyTorch and torchvision installed; the outputs are
deterministic, so rerunning leaves git clean. c.png (8x8 gray) holds (7x + 3y) % 256 so the
C test can also check it against the formula itself.
"""
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (5, 8, 12)


def pattern(h, w, c, k):
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    return ((x * (37 + k) + y * (53 + 3 * k) + ch * 91 + (x * y * k) % 29) % 256).astype(np.uint8)


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_png(path, arr, bit_depth, color_type, interlace=False):
    """A minimal PNG writer for what PIL cannot write: 16-bit RGB, Adam7. arr: (H, W[, C])."""
    h, w = arr.shape[:2]
    big = arr.astype(">u2" if bit_depth == 16 else "u1")
    big = big.reshape(h, w, -1)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2)] if interlace else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = big[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
                png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def make_folder(root):
    os.makedirs(os.path.join(root, "cat"), exist_ok=True)
    os.makedirs(os.path.join(root, "dog"), exist_ok=True)
    Image.fromarray(pattern(10, 13, 3, 1)).save(os.path.join(root, "cat", "a.png"))
    Image.fromarray(pattern(12, 16, 3, 2)).save(os.path.join(root, "cat", "b.jpg"), quality=90)
    y, x = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    Image.fromarray(((7 * x + 3 * y) % 256).astype(np.uint8)).save(os.path.join(root, "dog", "c.png"))
    Image.fromarray(pattern(11, 9, 1, 3)[:, :, 0]).save(os.path.join(root, "dog", "d.jpeg"),
                                                       quality=85)
    with open(os.path.join(root, "dog", "notes.txt"), "w") as f:
        f.write("not an image: the folder reader skips it\n")


def make_variants(root):
    d = os.path.join(root, "v")
    os.makedirs(d, exist_ok=True)
    Image.fromarray(pattern(7, 11, 4, 4), "RGBA").save(os.path.join(d, "a_rgba.png"))
    pal = Image.fromarray(pattern(9, 9, 1, 5)[:, :, 0] % 16).convert("P")
    pal.putpalette([(i * 16 + k * 5) % 256 for i in range(16) for k in range(3)])
    pal.save(os.path.join(d, "b_palette.png"), transparency=3)
    Image.fromarray(pattern(6, 7, 1, 6)[:, :, 0] > 120).save(os.path.join(d, "c_1bit.png"))
    g16 = pattern(10, 6, 1, 7)[:, :, 0].astype(np.uint16) * 257 + 11
    write_png(os.path.join(d, "d_gray16.png"), g16, 16, 0)
    rgb16 = pattern(5, 7, 3, 8).astype(np.uint16) * 256 + 200
    write_png(os.path.join(d, "e_rgb16.png"), rgb16, 16, 2)
    write_png(os.path.join(d, "f_adam7.png"), pattern(9, 10, 3, 9), 8, 2, interlace=True)
    Image.fromarray(pattern(8, 6, 1, 10)[:, :, 0]).save(os.path.join(d, "g_gray.jpg"), quality=80)
    Image.fromarray(pattern(10, 14, 3, 11)).save(os.path.join(d, "h_progressive.jpg"),
                                                 quality=75, progressive=True)
    Image.fromarray(pattern(9, 7, 4, 12), "CMYK").save(os.path.join(d, "i_cmyk.jpg"), quality=90)


def load_as_8bit(path):
    """PIL's loader, except that 16-bit PNGs become their high bytes (PIL clips 16-bit gray;
    the C reader keeps the high byte, as PIL does for 16-bit RGB)."""
    img = Image.open(path)
    if img.mode in ("I;16", "I;16B", "I"):
        return Image.fromarray((np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8))
    return img


def write_refs(tree):
    root = os.path.join(HERE, tree)
    out = os.path.join(HERE, "ref")
    os.makedirs(out, exist_ok=True)
    for size in SIZES:
        for channels in (1, 3):
            steps = [transforms.Grayscale(1)] if channels == 1 else []
            steps += [transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()]
            ds = datasets.ImageFolder(root, transform=transforms.Compose(steps),
                                      loader=lambda p: load_as_8bit(p).convert("RGB"))
            x = torch.stack([ds[i][0] for i in range(len(ds))]).numpy().astype(np.float32)
            np.save(os.path.join(out, "%s_c%d_s%d.npy" % (tree, channels, size)), x)
    labels = np.array([t for _, t in ds.samples], dtype=np.int64)
    np.save(os.path.join(out, "%s_labels.npy" % tree), labels)
    print(tree, [os.path.relpath(p, root) for p, _ in ds.samples], labels.tolist())


def main():
    make_folder(os.path.join(HERE, "folder"))
    make_variants(os.path.join(HERE, "variants"))
    write_refs("folder")
    write_refs("variants")


if __name__ == "__main__":
    main()
