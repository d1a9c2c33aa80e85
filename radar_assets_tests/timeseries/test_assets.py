"""The ``boundaries`` and ``timeseries_summaries`` assets through Dagster on a real KLOT volume."""

from __future__ import annotations

from radar_assets.defs.partitions import boundaries_partitions
from radar_assets_tests.timeseries.conftest import PARTITION


def _meta(result, node):
    (mat,) = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in mat.metadata.items()}


def test_boundaries_asset_registers_shipped_counties_as_dynamic_partitions(pipeline):
    result = pipeline["registry"]
    assert result.success
    meta = _meta(result, "boundaries")
    assert meta["dagster/row_count"] == 102 + 77
    assert meta["partitions_added"] == 179
    ids = pipeline["instance"].get_dynamic_partitions(boundaries_partitions.name)
    assert len(ids) == 179 and "IL-17031" in ids and "OK-40109" in ids
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["no_rejected_features"].passed


def test_timeseries_summaries_rows_checks_plot_and_idempotent_rerun(pipeline):
    first, second = pipeline["first"], pipeline["second"]
    assert first.success and second.success
    meta = _meta(first, "timeseries_summaries")
    assert meta["sweeps_summarised"] >= 1 and meta["boundaries_covered"] > 10
    assert "data:image/png;base64," in meta["plot"]
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert checks["every_sweep_summarised"].passed and checks["statistics_consistent"].passed
    again = _meta(second, "timeseries_summaries")
    assert again["sweeps_summarised"] == 0 and again["sweeps_reused"] == meta["sweeps_summarised"]
    assert again["catalog_files_written"] == []  # the re-run changes nothing
    rows = pipeline["catalog"].read_partition("timeseries", PARTITION).to_pylist()
    assert rows and {r["product"] for r in rows} == {"REF"}
    assert not any(r["boundary"].startswith("OK-") for r in rows)  # Oklahoma is beyond KLOT's coverage
    assert any(r["cells"] > 0 for r in rows)
