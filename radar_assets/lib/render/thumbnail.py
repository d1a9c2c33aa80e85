"""The materialisation thumbnail of ``rendered_sweeps``: a sweep overlay over US state lines, with a legend.

The overlay PNG is in Web Mercator and covers exactly its ``bounds`` (see :mod:`radar_assets.lib.render.sweep`),
so it is scaled onto a Mercator canvas of the same extent and the state lines (:mod:`.basemap`) are projected
with the same transform. Below the map: the colour bar of the moment's table (:mod:`.legend`) with its end
labels and units, and a caption.

Invariants
----------
- The map part of the picture is ``size`` pixels on its long side and spans exactly ``bounds``.
- Colours of the overlay are those of the PNG (nearest-neighbour scaling; no blending of palette codes).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from radar_assets.lib.render.basemap import lines_within
from radar_assets.lib.render.legend import legend, legend_rgba

BACKGROUND = (238, 240, 234, 255)
LINE = (45, 52, 64, 255)
TEXT = (29, 35, 42, 255)


def _merc_y(lat: np.ndarray | float) -> np.ndarray | float:
    lat = np.clip(lat, -85.05112878, 85.05112878)
    return np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))


def map_thumbnail(
    overlay_png: bytes,
    bounds: tuple[float, float, float, float],
    moment: str,
    caption: str,
    size: int = 512,
) -> bytes:
    """PNG: ``overlay_png`` (covering ``bounds`` = west, south, east, north) over state lines, legend, caption."""
    w, s, e, n = bounds
    x0, x1 = math.radians(w), math.radians(e)
    y0, y1 = float(_merc_y(s)), float(_merc_y(n))
    aspect = (x1 - x0) / (y1 - y0)
    width, height = (
        (size, max(1, round(size / aspect))) if aspect >= 1 else (max(1, round(size * aspect)), size)
    )

    canvas = Image.new("RGBA", (width, height), BACKGROUND)
    overlay = (
        Image.open(io.BytesIO(overlay_png)).convert("RGBA").resize((width, height), Image.Resampling.NEAREST)
    )
    canvas.alpha_composite(overlay)
    draw = ImageDraw.Draw(canvas)
    for line in lines_within(bounds):
        px = (np.radians(line[:, 0]) - x0) / (x1 - x0) * width
        py = (y1 - _merc_y(line[:, 1])) / (y1 - y0) * height
        draw.line(list(zip(px.tolist(), py.tolist(), strict=True)), fill=LINE, width=1)

    font = ImageFont.load_default()
    info = legend(moment) if moment.upper() in _known() else None
    bar_h, pad = 12, 6
    legend_h = (bar_h + 14 + pad) if info else 0
    out = Image.new("RGBA", (width, height + legend_h + 16 + pad), (255, 255, 255, 255))
    out.alpha_composite(canvas, (0, 0))
    d = ImageDraw.Draw(out)
    top = height + pad
    if info:
        bar_w = max(32, width - 2 * pad)
        bar = Image.fromarray(legend_rgba(moment, bar_w, bar_h), "RGBA")
        out.alpha_composite(bar, (pad, top))
        d.rectangle([pad - 1, top - 1, pad + bar_w, top + bar_h], outline=TEXT)
        lo, hi = info["stops"][0]["label"], info["stops"][-1]["label"]
        d.text((pad, top + bar_h + 1), lo, fill=TEXT, font=font)
        right = f"{hi}  ({info['units']})" if info["kind"] != "categorical" else hi
        d.text((pad + bar_w - d.textlength(right, font=font), top + bar_h + 1), right, fill=TEXT, font=font)
        top += bar_h + 14 + pad
    d.text((pad, top), caption, fill=TEXT, font=font)
    buf = io.BytesIO()
    out.convert("RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _known() -> set[str]:
    from radar_assets.lib.render.colors import MOMENT_UNITS

    return set(MOMENT_UNITS)
