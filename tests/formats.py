"""Byte builders for the file formats the readers take (safetensors, IDX, .npy, PNG), shared by
the generators of test inputs (tests/bad-inputs/gen_bad_inputs.py, tests/fuzz/gen_corpus.py).
Each builder writes a valid file by default; its parameters break one thing at a time (a header
length, a magic number, a CRC), so a generator states only what is wrong with its input.
Standard library only, and deterministic: rerunning a generator leaves git clean.

  sys.path.insert(0, <the tests folder>); import formats
"""
import gzip
import json
import os
import struct
import zlib


def write_file(path, data):
    """Writes `data` (str or bytes) to `path`, making its folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def gz(data):
    """gzip with a fixed timestamp, so the bytes do not change from run to run."""
    return gzip.compress(data, mtime=0)


# ---- safetensors ---------------------------------------------------------------------------

def st_raw(header, data=b"", length=None):
    """A safetensors file from its header bytes as given; `length` overrides the 8-byte header
    length (the real one by default)."""
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def st(header, data=b""):
    """A safetensors file from a header dict, its JSON padded with spaces to 8 bytes as the
    format's writers do."""
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return st_raw(h, data)


def st_tensors(tensors, meta=None, extra=b""):
    """A safetensors file from a list of (name, dtype, shape, bytes), laid out in that order,
    with optional __metadata__ and `extra` bytes after the data."""
    header, blob = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    return st(header, blob + extra)


# ---- IDX -----------------------------------------------------------------------------------

def idx(dims, data, magic=None):
    """An IDX file; the magic says unsigned bytes with len(dims) dimensions unless given."""
    if magic is None:
        magic = 0x0800 | len(dims)
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data


# ---- .npy ----------------------------------------------------------------------------------

def npy(descr, shape, data, version=1, fortran=False, dict_text=None):
    """A .npy file (format version 1 or 2); `dict_text` replaces the header dict's text."""
    d = dict_text or "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", repr(tuple(shape)))
    pre = 10 if version == 1 else 12
    total = (pre + len(d) + 1 + 63) // 64 * 64
    h = (d + " " * (total - pre - len(d) - 1) + "\n").encode()
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


# ---- PNG -----------------------------------------------------------------------------------

def png_chunk(kind, body, crc_ok=True):
    crc = zlib.crc32(kind + body) ^ (0 if crc_ok else 1)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(w, h, rows, color_type=0, depth=8, interlace=0, idat_crc_ok=True):
    """A PNG of one IDAT chunk; `rows` are the scanlines without their filter byte (filter 0 is
    added), as many as wanted: fewer than `h` makes a truncated image."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace)
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(raw, 9), idat_crc_ok) + png_chunk(b"IEND", b""))
