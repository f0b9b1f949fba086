#!/usr/bin/env python3
"""Writes tests/data/photos/, an ImageFolder tree of images "as people have them" (real photo
crops in the JPEG and PNG forms found in the wild, an EXIF-rotated JPEG, tiny images, a PNG
named .jpg), what torchvision makes of them, and tests/data/photos-broken/, one tree per kind
of broken file. For tests/test_photos.c (issue 18, item 3); photos/README.md lists the files.

The photographs are scikit-learn's two sample images (Debian: python3-sklearn; Flickr, CC BY
2.0, see photos/README.md). Run with /usr/bin/python3 (Pillow, NumPy, torch, torchvision):

  apt-get install python3-sklearn && /usr/bin/python3 tests/data/gen_photos.py

The outputs are deterministic (same Pillow / libjpeg-turbo / zlib: rerunning leaves git clean).

References, beside the images in photos/ (ImageFolder skips files at the root):
  ref_c{C}_s{S}.npy  (N, C, S, S): ImageFolder(root, default loader) + [Grayscale(1) when C = 1]
                     + Resize(S) + CenterCrop(S) + ToTensor, in ImageFolder order
  ref_labels.npy     (N,) int64, ImageFolder's targets
  rrc_s{S}.npy       (B, 3, S, S): resized_crop(img, top, left, height, width, [S, S],
                     BILINEAR) + ToTensor for the boxes of rrc_boxes.txt, in its line order
  rrc_boxes.txt      one box a line: file (relative to photos/) top left height width
Every reference is stored as uint8 (dtype '|u1'), the 0..255 values whose ToTensor is the
float32 reference: ToTensor divides uint8 by 255 in float32 and so does every reader of u8
.npy here (byol_dataset_open_npy; np.load(f).astype(np.float32) / 255), so nothing is lost,
which this script asserts; float32 would make the files four times as large.
"""
import os
import shutil
import warnings

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "photos")
BROKEN = os.path.join(HERE, "photos-broken")
SKLEARN_IMAGES = "/usr/lib/python3/dist-packages/sklearn/datasets/images"
SIZES = (32, 96)


def photo(name):
    img = Image.open(os.path.join(SKLEARN_IMAGES, name))
    img.load()
    assert img.size == (640, 427) and img.mode == "RGB", (name, img.size, img.mode)
    return img


def crop(img, left, top, w, h):
    """A crop without the photo's metadata (its ICC profile, which PIL would carry over)."""
    out = img.crop((left, top, left + w, top + h))
    out.info = {}
    return out


def save(img, rel, **kw):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kw)
    return path


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_tree(china, flower):
    # jpeg/: the two photos as people have them.
    c = crop(china, 50, 100, 320, 213)  # the pagoda, landscape
    f = crop(flower, 200, 50, 240, 320)  # the dahlia, portrait
    # The baseline china keeps the photo's ICC profile (an APP2 segment, as cameras write).
    save(c, "jpeg/china_baseline.jpg", quality=90, icc_profile=china.info["icc_profile"])
    save(c, "jpeg/china_progressive.jpg", quality=90, progressive=True)
    save(f, "jpeg/flower_baseline.jpg", quality=90)
    save(f, "jpeg/flower_progressive.jpg", quality=90, progressive=True)
    save(crop(china, 20, 200, 150, 120).convert("CMYK"), "jpeg/cmyk.jpg", quality=90)
    save(crop(flower, 250, 120, 120, 160).convert("L"), "jpeg/gray.jpg", quality=90)
    # Stored 200 wide x 120 high, tagged "rotate 90 CW to display" (Orientation = 6): not
    # applied, like torchvision's loader, so the stored 200x120 pixel order is the reference.
    exif = Image.Exif()
    exif[0x0112] = 6
    save(crop(china, 330, 200, 200, 120), "jpeg/exif_orientation6.jpg", quality=90,
         exif=exif.tobytes())

    # png/: the PNG forms, from photo crops with the shorter side just above 96 (so S = 96
    # still shrinks, by a little).
    p = crop(flower, 300, 150, 128, 100).quantize(colors=64, method=Image.Quantize.MEDIANCUT,
                                                  dither=Image.Dither.NONE)
    save(p, "png/palette.png")
    pt = crop(china, 240, 250, 100, 128).quantize(colors=32, method=Image.Quantize.MEDIANCUT,
                                                 dither=Image.Dither.NONE)
    # A tRNS chunk with an alpha per palette entry (as pngquant writes): entry k has 8k.
    pt.save(os.path.join(OUT, "png/palette_trns.png"), transparency=bytes(8 * k for k in range(32)))
    y, x = np.meshgrid(np.arange(100), np.arange(112), indexing="ij")
    alpha = Image.fromarray(((x * 255) // 111).astype(np.uint8))
    la = crop(flower, 180, 250, 112, 100).convert("L")
    la.putalpha(alpha)
    save(la, "png/gray_alpha.png")
    # 16-bit gray: the luminance in full 16-bit precision (low bytes not a copy of the high).
    rgb = np.asarray(crop(china, 60, 240, 104, 120), dtype=np.float64)
    lum = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) * (65535.0 / 255.0)
    g16 = Image.fromarray(np.round(lum).astype(np.uint16))
    assert g16.mode == "I;16"
    save(g16, "png/gray16.png")
    rgba = crop(flower, 300, 320, 120, 100).convert("RGBA")
    y, x = np.meshgrid(np.arange(100), np.arange(120), indexing="ij")
    rgba.putalpha(Image.fromarray(((x + y) * 255 // 218).astype(np.uint8)))
    save(rgba, "png/rgba.png")
    # With the photo's ICC profile (an iCCP chunk), which the default loader ignores.
    save(crop(china, 480, 300, 128, 100), "png/rgb.png", icc_profile=china.info["icc_profile"])
    # A PNG named .jpg: the content decides the decoder.
    save(crop(china, 200, 30, 100, 110), "png/really_png.jpg", format="PNG")

    # tiny/: smaller than either output size, upsampled (1x1, 3x2, 7x5 thumbnails).
    for w, h in ((1, 1), (3, 2), (7, 5)):
        small = crop(china, 250, 150, 70, 50).resize((w, h), Image.Resampling.BOX)
        save(small, "tiny/t%dx%d.jpg" % (w, h), quality=90)
        save(small, "tiny/t%dx%d.png" % (w, h))
    return c.size, f.size


def load_as_8bit(path):
    """The default loader, except that 16-bit PNGs become their high bytes (PIL clips 16-bit
    gray; the C reader keeps the high byte), as tests/data/gen_images.py."""
    img = Image.open(path)
    if img.mode in ("I;16", "I;16B", "I"):
        return Image.fromarray((np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8))
    return img


def as_u8(x):
    """A ToTensor result (float32, u8 / 255) as its uint8 values; asserts it is exactly that."""
    x = x.numpy()
    u = np.round(x * 255.0).astype(np.uint8)
    back = torch.from_numpy(u).to(torch.float32).div(255).numpy()
    assert x.dtype == np.float32 and np.array_equal(back, x)
    return u


def write_refs():
    for size in SIZES:
        for channels in (1, 3):
            steps = [transforms.Grayscale(1)] if channels == 1 else []
            steps += [transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()]
            ds = datasets.ImageFolder(OUT, transform=transforms.Compose(steps),
                                      loader=lambda p: load_as_8bit(p).convert("RGB"))
            x = torch.stack([ds[i][0] for i in range(len(ds))])
            np.save(os.path.join(OUT, "ref_c%d_s%d.npy" % (channels, size)), as_u8(x))
    np.save(os.path.join(OUT, "ref_labels.npy"), np.array(ds.targets, dtype=np.int64))
    for i, (p, t) in enumerate(ds.samples):
        print("%2d %d %s" % (i, t, os.path.relpath(p, OUT)))


def rrc_boxes(china_size, flower_size):
    """About 6 fixed RandomResizedCrop regions (top, left, height, width) per photo: ~10% of
    the area inside, the whole image, thin tall, wide, and boxes touching each border."""
    cw, ch = china_size  # 320 x 213
    fw, fh = flower_size  # 240 x 320
    china = [
        (70, 111, 67, 101),  # ~10% of the area, inside
        (0, 0, ch, cw),  # the whole image
        (0, 5, ch, 40),  # thin and tall, top to bottom
        (150, 0, 60, cw),  # wide, left to right
        (113, 180, 100, 140),  # the bottom right corner
        (0, 0, 120, 150),  # the top left corner
    ]
    flower = [
        (130, 70, 88, 87),  # ~10% of the area, inside
        (0, 0, fh, fw),  # the whole image
        (10, 200, 300, 40),  # thin and tall, on the right border
        (0, 0, 50, fw),  # wide, along the top
        (220, 30, 100, 130),  # on the bottom border
        (60, 0, 150, 110),  # on the left border
    ]
    return [("jpeg/china_baseline.jpg", b) for b in china] + \
           [("jpeg/flower_baseline.jpg", b) for b in flower]


def write_rrc(boxes):
    lines = []
    for size in SIZES:
        out = []
        for rel, (top, left, h, w) in boxes:
            img = Image.open(os.path.join(OUT, rel)).convert("RGB")
            assert top >= 0 and left >= 0 and top + h <= img.height and left + w <= img.width
            v = TF.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BILINEAR)
            out.append(TF.to_tensor(v))
        np.save(os.path.join(OUT, "rrc_s%d.npy" % size), as_u8(torch.stack(out)))
    for rel, (top, left, h, w) in boxes:
        lines.append("%s %d %d %d %d\n" % (rel, top, left, h, w))
    with open(os.path.join(OUT, "rrc_boxes.txt"), "w") as f:
        f.writelines(lines)


def make_broken():
    """photos-broken/<case>/cls/: a good tiny PNG (a_ok.png, image 0) then the broken file
    (image 1). A broken file fails the whole dataset, so none of these is in photos/."""
    with open(os.path.join(OUT, "tiny/t3x2.png"), "rb") as f:
        ok = f.read()
    with open(os.path.join(OUT, "jpeg/china_baseline.jpg"), "rb") as f:
        jpg = f.read()
    with open(os.path.join(OUT, "png/rgb.png"), "rb") as f:
        png = f.read()
    cases = {
        "truncated_jpeg": ("b_cut.jpg", jpg[:len(jpg) * 6 // 10]),
        "truncated_png": ("b_cut.png", png[:len(png) * 6 // 10]),
        "zero_byte": ("b_empty.jpg", b""),
        "text_jpeg": ("b_notes.jpeg", b"not an image: a text file named .jpeg\n"),
    }
    for case, (name, data) in sorted(cases.items()):
        d = os.path.join(BROKEN, case, "cls")
        write_file(os.path.join(d, "a_ok.png"), ok)
        write_file(os.path.join(d, name), data)
        # Each must fail in torchvision too (PIL: truncated or unidentified image).
        try:
            Image.open(os.path.join(d, name)).convert("RGB")
            raise AssertionError(case + " opens in PIL")
        except (OSError, SyntaxError) as e:
            print("%-15s %-13s PIL: %s" % (case, name, e))


def main():
    # PIL's convert("RGB") of palette_trns.png drops its alpha, as the C reader does.
    warnings.filterwarnings("ignore", "Palette images with Transparency expressed in bytes")
    for sub in ("jpeg", "png", "tiny"):
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    shutil.rmtree(BROKEN, ignore_errors=True)
    china, flower = photo("china.jpg"), photo("flower.jpg")
    sizes = make_tree(china, flower)
    write_refs()
    write_rrc(rrc_boxes(*sizes))
    make_broken()


if __name__ == "__main__":
    main()
