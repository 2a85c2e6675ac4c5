"""Particle thumbnails as small grey PNGs, written without an imaging library."""

from __future__ import annotations

import struct
import zlib

import numpy as np

#: Largest thumbnail side, px: enough to recognise a particle, small enough to fetch on hover.
THUMB_MAX_PX = 128


def png_gray8(img: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of ``img: (H, W)`` uint8, first row at the top."""
    img = np.ascontiguousarray(img, np.uint8)
    if img.ndim != 2 or 0 in img.shape:
        raise ValueError(f"png_gray8 needs a non-empty 2D image, got shape {img.shape}")
    h, w = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img], axis=1).tobytes()  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def thumbnail(img: np.ndarray, max_px: int = THUMB_MAX_PX) -> np.ndarray:
    """``img: (D, D)`` [y, x] -> uint8 ``(d, d)`` for display: mildly low-passed (raw particles
    are mostly noise), binned to at most ``max_px``, 1st-99th percentile stretched, and flipped
    so +y points up as in RELION's and cryoSPARC's viewers."""
    from scipy.ndimage import gaussian_filter

    img = np.asarray(img, np.float64)
    D = img.shape[0]
    f = int(np.ceil(D / max_px))
    img = gaussian_filter(img, sigma=max(1.0, 0.5 * f))
    if f > 1:
        n = D // f
        img = img[: n * f, : n * f].reshape(n, f, n, f).mean(axis=(1, 3))
    lo, hi = np.percentile(img, [1, 99])
    scaled = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)[::-1]
