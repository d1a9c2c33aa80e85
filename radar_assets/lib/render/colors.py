"""Colour tables for radar moments and their 256-entry palettes.

Every table maps a physical value to RGBA. Rendering never evaluates a table per pixel: a moment's
codes are few (256 for 8-bit data), so the table is evaluated once per code and the rendered image is
the code array itself with that palette (PNG palette mode, transparency in ``tRNS``).

Tables
------
* ``reflectivity``: the NWS reflectivity colours at their 5 dBZ thresholds over -20..60 dBZ (the
  range common NEXRAD overlay services label), translucent greys below 5 dBZ, NWS hail colours kept
  above 60 dBZ.
* ``velocity``: the NWS diverging velocity table (``NWSVel``: greens toward the radar, reds away) over
  -30..30 m/s.
* ``hydrometeor``: categorical NEXRAD hydrometeor classes (Level 3 products 165/177, ICD 2620001
  Table for HHC/DHC: 10 biological ... 140 unknown, 150 range folded).
* ``precipitation``: NWS-style stepped accumulation table in inches (0.01 .. 15 in), also used for rates.
* ``generic``: a perceptually ordered blue-green-yellow ramp for the remaining moments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ColourTable:
    """A value -> RGBA mapping.

    Attributes
    ----------
    name : str
        Table id.
    vmin, vmax : float
        Value range of the ramp (continuous tables) or of the steps (stepped/categorical tables).
    anchors : tuple
        ``(value, (r, g, b, a))`` pairs, sorted by value.
    kind : str
        ``"linear"`` (interpolate between anchors, clamp outside), ``"steps"`` (each anchor's colour
        holds from its value up to the next anchor; below the first is transparent) or
        ``"categorical"`` (exact values only; anything else transparent).
    """

    name: str
    vmin: float
    vmax: float
    anchors: tuple
    kind: str = "linear"

    def rgba(self, values: np.ndarray) -> np.ndarray:
        """RGBA ``uint8`` of shape ``values.shape + (4,)``; NaN is transparent."""
        v = np.asarray(values, dtype=np.float64)
        pts = np.array([a[0] for a in self.anchors], dtype=np.float64)
        cols = np.array([a[1] for a in self.anchors], dtype=np.float64)
        out = np.zeros(v.shape + (4,), dtype=np.float64)
        finite = np.isfinite(v)
        if self.kind == "linear":
            vc = np.clip(v, pts[0], pts[-1])
            for ch in range(4):
                out[..., ch] = np.interp(vc, pts, cols[:, ch])
        elif self.kind == "steps":
            idx = np.searchsorted(pts, v, side="right") - 1
            ok = finite & (idx >= 0)
            out[ok] = cols[idx[ok]]
        else:  # categorical
            for p, c in zip(pts, cols, strict=True):
                out[np.isclose(v, p)] = c
        out[~finite] = 0
        return np.rint(out).astype(np.uint8)


def _hex(h: str, a: int = 255) -> tuple[int, int, int, int]:
    h = h.lstrip("#")
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), a)


def _spread(vmin: float, vmax: float, colours: list[str]) -> tuple:
    step = (vmax - vmin) / (len(colours) - 1)
    return tuple((vmin + i * step, _hex(c)) for i, c in enumerate(colours))


# NWS reflectivity colours at their official 5 dBZ thresholds (NOAA/NWS radar imagery legend), with
# translucent greys for the weak echoes between -20 and 5 dBZ that clear-air scans show. Each colour
# holds from its threshold to the next; values below -20 dBZ are transparent. The labelled range is
# -20..60 dBZ; the NWS colours for 65, 70 and 75+ dBZ are kept so that hail cores stay visible.
_NWS_REF_STEPS = (
    (-20.0, (100, 100, 100, 70)), (-10.0, (140, 140, 140, 100)), (0.0, (190, 190, 190, 130)),
    (5.0, _hex("#04e9e7")), (10.0, _hex("#019ff4")), (15.0, _hex("#0300f4")), (20.0, _hex("#02fd02")),
    (25.0, _hex("#01c501")), (30.0, _hex("#008e00")), (35.0, _hex("#fdf802")), (40.0, _hex("#e5bc00")),
    (45.0, _hex("#fd9500")), (50.0, _hex("#fd0000")), (55.0, _hex("#d40000")), (60.0, _hex("#bc0000")),
    (65.0, _hex("#f800fd")), (70.0, _hex("#9854c6")), (75.0, _hex("#fdfdfd")),
)  # fmt: skip
# NWSVel anchors (cmweather/Py-ART ``_NWSVel_data``).
_NWS_VEL = [
    "#90009f", "#00ff00", "#00e800", "#00c800", "#00b000", "#009000", "#007000", "#779777",
    "#977777", "#800000", "#a00000", "#b80000", "#d80000", "#ee0000", "#ff0000",
]  # fmt: skip

REFLECTIVITY = ColourTable("reflectivity", -20.0, 60.0, _NWS_REF_STEPS, kind="steps")
VELOCITY = ColourTable("velocity", -30.0, 30.0, _spread(-30.0, 30.0, _NWS_VEL))
GENERIC_RAMP = [
    "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
    "#b5de2b", "#fde725",
]  # fmt: skip

#: Hydrometeor classes of Level 3 products 165 (DHC) and 177 (HHC), value -> (code, colour).
HYDROMETEOR_CLASSES = {
    10: ("BI", "biological", "#9c9c9c"),
    20: ("GC", "ground clutter / anomalous propagation", "#767676"),
    30: ("IC", "ice crystals", "#f0c8ff"),
    40: ("DS", "dry snow", "#6e9bff"),
    50: ("WS", "wet snow", "#0000c8"),
    60: ("RA", "light/moderate rain", "#00ff00"),
    70: ("HR", "heavy rain", "#008c00"),
    80: ("BD", "big drops", "#ffff00"),
    90: ("GR", "graupel", "#e6b400"),
    100: ("HA", "hail, possibly with rain", "#ff0000"),
    110: ("LH", "large hail", "#b40000"),
    120: ("GH", "giant hail", "#ff00ff"),
    140: ("UK", "unknown", "#e0e0e0"),
    150: ("RF", "range folded", "#7700aa"),
}
HYDROMETEOR = ColourTable(
    "hydrometeor",
    10.0,
    150.0,
    tuple((float(v), _hex(c[2])) for v, c in HYDROMETEOR_CLASSES.items()),
    kind="categorical",
)
PRECIPITATION = ColourTable(
    "precipitation",
    0.01,
    15.0,
    tuple(
        (v, _hex(c))
        for v, c in [
            (0.01, "#c0e8ff"), (0.1, "#7fb2ff"), (0.25, "#3f7fff"), (0.5, "#00d000"),
            (0.75, "#00a000"), (1.0, "#007000"), (1.25, "#ffff00"), (1.5, "#ffd000"),
            (1.75, "#ffa000"), (2.0, "#ff6000"), (2.5, "#ff0000"), (3.0, "#d00000"),
            (4.0, "#a00000"), (5.0, "#ff00ff"), (6.0, "#c000ff"), (8.0, "#8000ff"),
            (10.0, "#ffffff"),
        ]
    ),
    kind="steps",
)  # fmt: skip

_GENERIC_RANGES = {
    "SW": (0.0, 15.0),
    "ZDR": (-2.0, 6.0),
    "PHI": (0.0, 360.0),
    "RHO": (0.7, 1.05),
    "CFP": (0.0, 10.0),
    "KDP": (-2.0, 7.0),
}

#: Moment name -> table; Level 3 moments use the same names (``HCA`` for hydrometeor classes,
#: ``PRECIP`` for accumulations, ``RATE`` for precipitation rate).
_TABLES = {
    "REF": REFLECTIVITY,
    "VEL": VELOCITY,
    "HCA": HYDROMETEOR,
    "PRECIP": PRECIPITATION,
    "RATE": PRECIPITATION,
}


def _moment_units() -> dict[str, str]:
    # The readers own the units; legends repeat them so that a legend names what the image shows.
    from radar_assets.lib.readers.nexrad_level2 import MOMENT_UNITS as LEVEL2_UNITS
    from radar_assets.lib.readers.nexrad_level3 import PRODUCTS

    units = {moment: unit for moment, unit, _title in PRODUCTS.values()}
    units.update(LEVEL2_UNITS)
    return units


#: Units of every moment the readers produce (Level 2 names win over Level 3 ones).
MOMENT_UNITS: dict[str, str] = _moment_units()


def table_for(moment: str) -> ColourTable:
    """The colour table used for a moment name (generic ramp for unlisted moments)."""
    name = moment.upper()
    if name in _TABLES:
        return _TABLES[name]
    lo, hi = _GENERIC_RANGES.get(name, (0.0, 1.0))
    return ColourTable(name.lower(), lo, hi, _spread(lo, hi, GENERIC_RAMP))


def palette_for_codes(value_lut: np.ndarray, table: ColourTable) -> tuple[np.ndarray | None, np.ndarray]:
    """Palette (and code remapping) that renders a moment's codes with a colour table.

    Parameters
    ----------
    value_lut : numpy.ndarray
        Float value of every code (NaN where masked); 256 or 65536 entries.
    table : ColourTable
        The colour table.

    Returns
    -------
    index_lut : numpy.ndarray or None
        None for 8-bit codes (the codes are palette indices already); for 16-bit codes a ``uint8`` map
        from code to palette index, quantising values into 255 steps over the table range.
    palette : numpy.ndarray
        ``uint8 (256, 4)`` RGBA; index 0 is always fully transparent (masked / no data).
    """
    if value_lut.size <= 256:
        palette = np.zeros((256, 4), np.uint8)
        palette[: value_lut.size] = table.rgba(value_lut)
        palette[0] = 0
        return None, palette
    # 16-bit codes: quantise values to palette entries 1..255 across the colour table range.
    lo, hi = table.vmin, table.vmax
    centres = lo + (np.arange(255) + 0.5) * (hi - lo) / 255.0
    palette = np.zeros((256, 4), np.uint8)
    palette[1:] = table.rgba(centres)
    with np.errstate(invalid="ignore"):
        idx = np.floor((value_lut - lo) / (hi - lo) * 255.0)
    idx = np.clip(idx, 0, 254) + 1
    index_lut = np.where(np.isfinite(value_lut), idx, 0).astype(np.uint8)
    return index_lut, palette
