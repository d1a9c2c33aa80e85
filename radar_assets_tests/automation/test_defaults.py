"""Sensor and schedule defaults: what runs without a click, and how a deployment (or the demo) turns on the rest."""

from __future__ import annotations

import re
from pathlib import Path

from radar_assets.definitions import build_definitions
from radar_assets.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _statuses(settings: Settings) -> dict[str, str]:
    repo = build_definitions(settings).get_repository_def()
    return {
        **{s.name: s.default_status.value for s in repo.sensor_defs},
        **{s.name: s.default_status.value for s in repo.schedule_defs},
    }


def test_source_sensor_and_daily_schedule_follow_the_automation_settings(tmp_path, monkeypatch):
    off = _statuses(Settings(home=tmp_path))
    assert (off["raw_scans_source_sensor"], off["raw_scans_daily"]) == ("STOPPED", "STOPPED")
    assert off["pipeline_automation_sensor"] == off["catalog_automation_sensor"] == "RUNNING"
    monkeypatch.setenv("RADAR_ASSETS_AUTOMATION_SOURCE_SENSOR", "true")
    monkeypatch.setenv("RADAR_ASSETS_AUTOMATION_DAILY_SCHEDULE", "1")
    on = _statuses(Settings(home=tmp_path))
    assert (on["raw_scans_source_sensor"], on["raw_scans_daily"]) == ("RUNNING", "RUNNING")
    # A child process (the demo's dagster dev) gets the same choice through its environment.
    env = Settings(home=tmp_path).process_environment()
    assert env["RADAR_ASSETS_AUTOMATION_SOURCE_SENSOR"] == "True"


def test_readme_states_every_sensor_and_schedule_default(tmp_path):
    text = README.read_text()
    table = text[text.index("<!-- automation:begin -->") : text.index("<!-- automation:end -->")]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| [a-z]+ \| (RUNNING|STOPPED)", table, flags=re.M))
    # Every sensor and schedule of the definitions is in the table with its real default.
    actual = _statuses(Settings(home=tmp_path))
    assert {name: rows.get(name) for name in actual} == actual
