"""Palette PNG encoding of rendered sweeps (PNG 1.2, ISO/IEC 15948: ``PLTE`` + ``tRNS`` chunks).

A rendered sweep is an array of palette indices, so the PNG is written in palette mode: one byte per
pixel, which compresses several times faster and smaller than RGBA. Transparency comes from the
palette's alpha channel (``tRNS``), so index 0 (no data) is fully transparent.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

#: zlib level for overlays: level 1 is ~4x faster than the default 6 and only slightly larger on radar
#: images (long runs of the transparent index).
DEFAULT_COMPRESS_LEVEL = 1


def encode_palette_png(
    indices: np.ndarray, palette: np.ndarray, compress_level: int = DEFAULT_COMPRESS_LEVEL
) -> bytes:
    """Encode a ``uint8 (height, width)`` index image with an RGBA palette as PNG bytes.

    Parameters
    ----------
    indices : numpy.ndarray
        Palette index per pixel.
    palette : numpy.ndarray
        ``uint8 (n <= 256, 4)`` RGBA colours.
    compress_level : int
        zlib level 0-9.
    """
    if indices.dtype != np.uint8 or indices.ndim != 2:
        raise ValueError("indices must be a 2-D uint8 array")
    image = Image.fromarray(np.ascontiguousarray(indices), mode="P")
    image.putpalette(np.ascontiguousarray(palette[:, :3]).tobytes(), rawmode="RGB")
    buf = io.BytesIO()
    image.save(
        buf,
        format="PNG",
        compress_level=compress_level,
        optimize=False,
        transparency=np.ascontiguousarray(palette[:, 3]).tobytes(),
    )
    return buf.getvalue()


def thumbnail(indices: np.ndarray, long_side: int = 256) -> np.ndarray:
    """Nearest-neighbour downsample of an index image to ``long_side`` pixels on its long side.

    Nearest keeps palette indices meaningful (no blending of unrelated codes); the thumbnail covers
    exactly the same extent as the full image.
    """
    h, w = indices.shape
    scale = long_side / max(h, w)
    if scale >= 1:
        return indices
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    rows = ((np.arange(th) + 0.5) * h / th).astype(np.intp)
    cols = ((np.arange(tw) + 0.5) * w / tw).astype(np.intp)
    return indices[rows[:, None], cols[None, :]]
