"""A real network's sites in one command: ``radar-assets sites add`` with 160 sites on a real Dagster instance,
SQLite (the embedded default) and Postgres (a fresh database of the machine's server per test).

The timings at this scale (status query, Materialize dialog, sensor tick) are ``bench/partition_scale.py``'s.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from radar_assets.cli import main
from radar_assets.defs.partitions import partitions_for, sites_partitions
from radar_assets.lib.sites import all_sites
from radar_assets.settings import Settings
from radar_assets_tests.conftest import PROJECT_ROOT

NETWORK = 160


@pytest.fixture(params=["sqlite", "postgres"])
def dagster_home(request, tmp_path, monkeypatch):
    """DAGSTER_HOME with the repository's dagster.yaml, on SQLite or on a new Postgres database."""
    home = tmp_path / "dagster"
    home.mkdir()
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    with ExitStack() as stack:
        if request.param == "postgres":
            from radar_assets_tests.deployment.services import postgres_database

            db = stack.enter_context(postgres_database())
            config["storage"] = {
                "postgres": {
                    "postgres_db": {"hostname": "127.0.0.1", "username": "postgres", "password": "trust",
                                    "db_name": db, "port": 5432}
                }
            }  # fmt: skip
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        monkeypatch.setenv("RADAR_ASSETS_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        yield home


def _sites_add(*ids: str) -> str:
    result = CliRunner().invoke(main, ["sites", "add", *ids], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_network_of_sites_is_added_at_once_and_again_changes_nothing(dagster_home):
    network = [s.id for s in all_sites()][:NETWORK]
    assert len(network) == NETWORK
    # Lower-case and repeated ids are the same sites: they must not become extra partitions.
    spelled = [sid.lower() if i % 3 == 0 else sid for i, sid in enumerate(network)] + network[:5]

    out = _sites_add(*spelled)
    assert out.startswith(f"added {NETWORK} site(s)"), out

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        stored = instance.get_dynamic_partitions(sites_partitions.name)
        assert sorted(stored) == network
        # The site x day grid's site dimension reads them from the instance.
        grid = partitions_for(Settings(partitions={"first_day": f"{datetime.now(UTC).year - 3}-01-01"}))
        site_dim = grid.site_day.get_partitions_def_for_dimension("site")
        assert site_dim.get_partition_keys(dynamic_partitions_store=instance) == stored

    assert _sites_add(*network).startswith("added 0 site(s)")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_dynamic_partitions(sites_partitions.name) == stored
