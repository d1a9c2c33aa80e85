"""The ``render`` click command renders a local file outside Dagster."""

from __future__ import annotations

import json

from click.testing import CliRunner

from radar_assets.cli.render import render
from radar_assets_tests.conftest import shared_path


def test_render_command_writes_png_json_tif(tmp_path):
    volume = shared_path("level2", "other", "KTLX20100501_000444_V03.gz")
    result = CliRunner().invoke(
        render, [str(volume), "--out", str(tmp_path), "--moments", "REF", "--size", "256"]
    )
    assert result.exit_code == 0, result.output
    pngs = sorted(tmp_path.glob("KTLX20100501_000444_V03_REF_*.png"))
    assert [p.name for p in pngs][:2] == [
        "KTLX20100501_000444_V03_REF_00.png",
        "KTLX20100501_000444_V03_REF_01.png",
    ]
    for png in pngs:
        assert png.with_suffix(".tif").stat().st_size > 0
        bounds = json.loads(png.with_suffix(".json").read_text())
        assert bounds["moment"] == "REF" and len(bounds["coordinates"]) == 4
        assert f"wrote {png}" in result.output
    assert not list(tmp_path.glob(".*.tmp"))


def test_render_command_level3_and_errors(tmp_path):
    product = shared_path("level3", "KLOT", "LOT_N0H_2021_01_31_11_06_30")
    result = CliRunner().invoke(render, [str(product), "--out", str(tmp_path), "--size", "128", "--no-cog"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "LOT_N0H_2021_01_31_11_06_30_HCA_00.png").exists()
    assert not (tmp_path / "LOT_N0H_2021_01_31_11_06_30_HCA_00.tif").exists()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"AR2V0006.123" + bytes(30))
    result = CliRunner().invoke(render, [str(bad), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "bad.bin" in result.output
