"""Legends of the colour tables in :mod:`radar_assets.lib.render.colors`: JSON stops and a PNG bar.

A legend is derived from the very table the sweep PNGs and tiles are coloured with, so a legend can never
disagree with an image.

Invariants
----------
- ``legend(moment)["stops"]`` lists the table's anchors in increasing value; each stop's colour is the
  colour the renderer paints at that value (``ColourTable.rgba``).
- ``legend_png`` is a transparent RGBA PNG whose columns run from the first stop to the last.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np

from radar_assets.lib.render.colors import HYDROMETEOR_CLASSES, MOMENT_UNITS, ColourTable, table_for


class UnknownMoment(KeyError):
    """A moment without a colour table of its own."""


def _css(rgba) -> str:
    r, g, b, _a = (int(v) for v in rgba)
    return f"#{r:02x}{g:02x}{b:02x}"


def _label(table: ColourTable, value: float, units: str) -> str:
    if table.kind == "categorical":
        code, name, _ = HYDROMETEOR_CLASSES[int(value)]
        return f"{code}: {name}"
    text = f"{value:g}"
    return f"{text} {units}".strip()


def legend(moment: str) -> dict:
    """The legend of ``moment``'s colour table.

    Returns
    -------
    dict
        ``moment``, ``table`` (name), ``kind`` (``steps``/``linear``/``categorical``), ``units``,
        ``vmin``/``vmax`` and ``stops``: ``[{"value", "color" ("#rrggbb"), "alpha" (0..1), "label"}]``
        in increasing value, and ``text``: the legend as one sentence (a text alternative for images).

    Raises
    ------
    UnknownMoment
        ``moment`` is not a moment the renderer knows.
    """
    name = moment.upper()
    if name not in MOMENT_UNITS:
        raise UnknownMoment(moment)
    table = table_for(name)
    units = MOMENT_UNITS[name]
    values = np.array([a[0] for a in table.anchors], dtype=np.float64)
    colours = table.rgba(values)
    stops = [
        {
            "value": float(v),
            "color": _css(c),
            "alpha": round(int(c[3]) / 255.0, 3),
            "label": _label(table, float(v), units),
        }
        for v, c in zip(values, colours, strict=True)
    ]
    if table.kind == "categorical":
        text = f"{name} classes: " + "; ".join(s["label"] for s in stops) + "."
    elif table.kind == "steps":
        text = (
            f"{name} in {units}: each colour holds from its value to the next, "
            f"from {stops[0]['label']} ({stops[0]['color']}) to {stops[-1]['label']} ({stops[-1]['color']}); "
            "lower values are transparent."
        )
    else:
        text = (
            f"{name} in {units}: a continuous ramp from {stops[0]['label']} ({stops[0]['color']}) "
            f"to {stops[-1]['label']} ({stops[-1]['color']}); values outside are clamped."
        )
    return {
        "moment": name,
        "table": table.name,
        "kind": table.kind,
        "units": units,
        "vmin": table.vmin,
        "vmax": table.vmax,
        "stops": stops,
        "text": text,
    }


def legend_rgba(moment: str, width: int = 256, height: int = 16) -> np.ndarray:
    """``uint8 (height, width, 4)`` colour bar of ``moment``'s table (categorical: one block per class)."""
    name = moment.upper()
    if name not in MOMENT_UNITS:
        raise UnknownMoment(moment)
    table = table_for(name)
    pts = np.array([a[0] for a in table.anchors], dtype=np.float64)
    if table.kind == "categorical":
        idx = np.minimum((np.arange(width) * len(pts)) // width, len(pts) - 1)
        values = pts[idx]
    else:
        lo, hi = float(pts[0]), float(pts[-1]) + (pts[-1] - pts[-2] if table.kind == "steps" else 0.0)
        values = lo + (np.arange(width) + 0.5) * (hi - lo) / width
    row = table.rgba(values)
    return np.repeat(row[np.newaxis], height, axis=0)


@lru_cache(maxsize=64)
def legend_png(moment: str, width: int = 256, height: int = 16) -> bytes:
    """PNG of :func:`legend_rgba`."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(legend_rgba(moment, width, height), "RGBA").save(buf, format="PNG", optimize=True)
    return buf.getvalue()
