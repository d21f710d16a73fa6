"""Decode a PNG into a numpy array with the standard library (zlib, struct): enough for tests.

Handles the non-interlaced 8-bit greyscale, RGB and RGBA images that browsers write.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> samples per pixel


def read_png(path: Path) -> npt.NDArray[np.uint8]:
    """The image as an array of shape (height, width, channels)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
    bpp = CHANNELS[colour]
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8)
    return _unfilter(raw.reshape(height, 1 + width * bpp), bpp).reshape(height, width, bpp)


def _unfilter(rows: npt.NDArray[np.uint8], bpp: int) -> npt.NDArray[np.uint8]:
    out = np.zeros((rows.shape[0], rows.shape[1] - 1), dtype=np.int32)
    prev = np.zeros(rows.shape[1] - 1, dtype=np.int32)
    for y in range(rows.shape[0]):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        else:
            cur = _sequential(kind, line, prev, bpp)
        out[y], prev = cur, cur
    return out.astype(np.uint8)


def _sequential(
    kind: int, line: npt.NDArray[np.int32], prev: npt.NDArray[np.int32], bpp: int
) -> npt.NDArray[np.int32]:
    """Filters 1 (sub), 3 (average) and 4 (Paeth) depend on the byte to the left."""
    raw, up = line.tolist(), prev.tolist()
    if kind == 1:  # sub: a running sum per channel
        per_channel = line.reshape(-1, bpp).cumsum(axis=0) & 0xFF
        return per_channel.reshape(-1).astype(np.int32)
    cur = [0] * len(raw)
    for i, x in enumerate(raw):
        a = cur[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            cur[i] = (x + (a + b) // 2) & 0xFF
            continue
        c = up[i - bpp] if i >= bpp else 0
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (x + pred) & 0xFF
    return np.asarray(cur, dtype=np.int32)


def write_png(path: Path, image: npt.NDArray[np.uint8]) -> None:
    """Write an (h, w, 3|4) uint8 array as a PNG (filter 0), e.g. a crop to look at."""
    height, width, channels = image.shape
    colour = {3: 2, 4: 6}[channels]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes()))
        + chunk(b"IEND", b"")
    )
