"""Tiles from the COGs the renderer really writes: integer codes with a GDAL scale/offset (Level 2)."""

import io

import numpy as np
from PIL import Image

from radar_assets.lib.render.cog import write_cog
from radar_assets.lib.render.grid import grid_for_range
from radar_assets.lib.render.tiles import render_tile


def test_tile_of_a_scaled_integer_cog_shows_the_unscaled_values():
    grid = grid_for_range(41.6, -88.08, 230_000.0, 512)
    codes = np.zeros((grid.height, grid.width), np.uint8)
    codes[:, : grid.width // 2] = 2  # -32 dBZ (code 2 -> 2 * 0.5 - 33)
    codes[:, grid.width // 2 :] = 196  # 65 dBZ
    cog = write_cog(codes, grid, scale=0.5, offset=-33.0)
    # the tile covering the radar site at zoom 6 straddles the two halves
    png = render_tile(cog, 6, 16, 23, vmin=-32.0, vmax=65.0, colormap="viridis", tilesize=256)
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    opaque = rgba[..., 3] > 0
    assert opaque.any()
    colours = {tuple(c) for c in rgba[opaque][:, :3]}
    assert len(colours) == 2  # exactly the two values, unscaled and mapped to the ramp's two ends
