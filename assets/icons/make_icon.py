"""Draws the app icon (a head-and-shoulders silhouette on a violet disc) as an RGBA PNG.

Pure standard library, so it runs anywhere: python3 assets/icons/make_icon.py
"""
import math
import struct
import zlib
from pathlib import Path

SIZE = 512


def pixel(x: float, y: float) -> tuple[int, int, int, int]:
    cx = cy = SIZE / 2
    r = math.hypot(x - cx, y - cy)
    if r > SIZE * 0.47:
        return (0, 0, 0, 0)
    t = y / SIZE
    base = (int(124 + 40 * t), int(58 + 20 * t), int(237 - 60 * t), 255)
    head = math.hypot(x - cx, y - SIZE * 0.38) < SIZE * 0.13
    shoulders = ((x - cx) / (SIZE * 0.26)) ** 2 + ((y - SIZE * 0.78) / (SIZE * 0.2)) ** 2 < 1
    if head or shoulders:
        return (250, 247, 255, 255)
    return base


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


rows = [b"".join(bytes(pixel(x + 0.5, y + 0.5)) for x in range(SIZE)) for y in range(SIZE)]
Path(__file__).with_name("icon.png").write_bytes(png(SIZE, SIZE, rows))
