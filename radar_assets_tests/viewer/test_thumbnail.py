"""The rendered_sweeps thumbnail: overlay over shipped state lines, with the moment's legend."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from radar_assets.lib.render.basemap import decode_arcs, lines_within, state_lines
from radar_assets.lib.render.colors import REFLECTIVITY
from radar_assets.lib.render.thumbnail import map_thumbnail

# A box around KLOT (Illinois / Indiana / Lake Michigan).
BOUNDS = (-90.5, 40.0, -85.5, 43.0)


def _overlay(colour=(2, 253, 2, 255), size=64) -> bytes:
    img = np.zeros((size, size, 4), np.uint8)
    img[size // 4 : size // 2, size // 4 : size // 2] = colour  # a block in the north-west quarter
    buf = io.BytesIO()
    Image.fromarray(img, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def test_topojson_arcs_are_delta_decoded():
    topo = {
        "transform": {"scale": [0.5, 2.0], "translate": [10.0, -5.0]},
        "arcs": [[[0, 0], [2, 1], [1, -1]], [[4, 4]]],
    }
    (arc,) = decode_arcs(topo)  # single-point arcs are dropped
    assert arc.tolist() == [[10.0, -5.0], [11.0, -3.0], [11.5, -5.0]]


def test_shipped_state_lines_cover_the_conterminous_us():
    lines = state_lines()
    allpts = np.concatenate(lines)
    assert allpts[:, 0].min() < -124 and allpts[:, 0].max() > -67  # west and east coasts
    assert -180 <= allpts[:, 0].min() and allpts[:, 1].max() <= 72
    near = lines_within(BOUNDS, margin=0)
    assert 0 < len(near) < len(lines)


def test_thumbnail_draws_overlay_state_lines_and_legend():
    png = map_thumbnail(_overlay(), BOUNDS, "REF", "KLOT caption")
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    h, w, _ = img.shape
    assert w == 512 and h > 300  # 512 px on the long side of the map, legend and caption below
    map_h = h - (12 + 14 + 6) - (16 + 6)  # legend and caption strips below the map
    mapped = img[:map_h]
    # The overlay block keeps its exact colour (nearest scaling), in the north-west quarter.
    green = np.all(mapped == (2, 253, 2), axis=-1)
    ys, xs = np.nonzero(green)
    assert green.sum() > 500 and xs.max() < w // 2 + 2 and ys.max() < map_h // 2 + 2
    # Dark state lines: the Illinois-Indiana border runs north-south near lon -87.53 at 40-41 N.
    x_border = round(
        (np.radians(-87.53) - np.radians(BOUNDS[0])) / (np.radians(BOUNDS[2]) - np.radians(BOUNDS[0])) * w
    )
    band = mapped[int(map_h * 0.7) : map_h - 2, x_border - 3 : x_border + 4]
    assert (band.sum(axis=-1) < 250).any(axis=1).mean() > 0.8
    # The legend bar shows the NWS reflectivity colours.
    strip = img[map_h:]
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    nws = {
        tuple(c[:3]) for c in REFLECTIVITY.rgba(np.array([a[0] for a in REFLECTIVITY.anchors])) if c[3] == 255
    }
    assert len(nws & colours) >= 12
