"""``radar-assets boundaries add | list | remove``: the real command (click, in process), a real Dagster
instance and catalog under a temporary home."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from click.testing import CliRunner

from radar_assets.cli import main
from radar_assets.lib.geo.boundaries import shipped_boundaries


class _Result:
    def __init__(self, result):
        self.returncode = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr


def _run(home, *args, check=True):
    result = CliRunner().invoke(main, ["boundaries", *args], catch_exceptions=False)
    if check:
        assert result.exit_code == 0, result.output
    return _Result(result)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("RADAR_ASSETS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return home


def test_add_list_remove_through_the_command(tmp_path, home):
    illinois = shipped_boundaries()[0].path
    broken = tmp_path / "mixed.geojson"
    broken.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"code": "A", "label": "ok"},
                     "geometry": {"type": "Polygon", "coordinates": [[[-88, 41], [-87.9, 41], [-87.9, 41.1], [-88, 41]]]}},
                    {"type": "Feature", "properties": {"code": "B", "label": "line"},
                     "geometry": {"type": "LineString", "coordinates": [[-88, 41], [-87.9, 41.1]]}},
                ],
            }
        )
    )  # fmt: skip
    out = _run(home, "add", str(illinois), "--id-field", "FIPS", "--name-field", "NAME", "--prefix", "IL-")
    assert "registered 102 boundaries (102 new partitions), rejected 0" in out.stdout
    out = _run(home, "add", str(broken), "--id-field", "code", "--name-field", "label")
    assert "registered 1 boundaries" in out.stdout and "rejected 1" in out.stdout
    assert "mixed.geojson feature 1 (id 'B'): LineString is not a polygon" in out.stderr

    listed = [json.loads(line) for line in _run(home, "list", "--json").stdout.splitlines()]
    assert (
        len(listed) == 103
        and {"id": "IL-17031", "name": "Cook"}.items() <= listed[1].items()
        or any(r["id"] == "IL-17031" and r["name"] == "Cook" for r in listed)
    )
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    assert len(instance.get_dynamic_partitions("boundaries")) == 103
    # The registry change is recorded as a materialisation of the boundaries asset (for the UI and automation).
    event = instance.get_latest_materialization_event(dg.AssetKey("boundaries"))
    assert event is not None and event.asset_materialization.metadata["dagster/row_count"].value == 103

    out = _run(home, "remove", "IL-17031", "A")
    assert "removed 2 boundaries" in out.stdout
    assert len(_run(home, "list").stdout.splitlines()) == 101
    assert "IL-17031" not in instance.get_dynamic_partitions("boundaries")
    missing = _run(home, "remove", "nope", check=False)
    assert missing.returncode == 1 and "not registered: nope" in missing.stdout
    bad = _run(home, "add", str(illinois), "--id-field", "NOPE", check=False)
    assert bad.returncode == 1 and "id field 'NOPE' not found" in bad.stderr
