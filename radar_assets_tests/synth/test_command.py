"""``synth`` command: keys in the public Level 2 layout, progress output, idempotent re-runs.

Invariants checked: every written key parses with :func:`radar_assets.lib.keys.parse_key` as a Level 2
volume of the requested site inside the requested window; a second run writes nothing; the store holds
exactly the planned keys, and their bytes equal a direct call of the generator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from radar_assets.cli.synth import parse_start, synth
from radar_assets.lib.keys import parse_key
from radar_assets.lib.store import store_from_url
from radar_assets.lib.synth import archive2 as a2


def test_command_writes_public_layout(tmp_path):
    args = ["--sites", "KTLX", "--start", "2024-05-01T06:00Z", "--hours", "0.25", "--to", str(tmp_path)]
    args += ["--vcp", "35", "--seed", "4", "--workers", "1"]
    res = CliRunner().invoke(synth, args)
    assert res.exit_code == 0, res.output
    store = store_from_url(str(tmp_path))
    keys = sorted(store.list_keys(""))
    assert 2 <= len(keys) <= 4
    assert f"{len(keys)}/{len(keys)} volumes written" in res.output
    t0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    for key in keys:
        parsed = parse_key(key)
        assert parsed.level == 2 and parsed.site == "KTLX"
        assert t0 <= parsed.time < t0 + timedelta(minutes=15)
    jobs = a2.plan(["KTLX"], a2.to_epoch_ms(t0), a2.to_epoch_ms(t0 + timedelta(minutes=15)), 35, 4)
    assert [j.key for j in jobs] == keys
    assert store.get_bytes(keys[0]) == a2.run_job(jobs[0])[1]
    again = CliRunner().invoke(synth, args)
    assert again.exit_code == 0 and "0 written" in again.output and f"{len(keys)} skipped" in again.output


def test_start_parsing_and_bad_site(tmp_path):
    assert parse_start("2024-05-01T00:00Z") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_start("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    res = CliRunner().invoke(synth, ["--sites", "KXXX", "--start", "2024-05-01", "--to", str(tmp_path)])
    assert res.exit_code != 0 and "unknown radar site" in res.output
