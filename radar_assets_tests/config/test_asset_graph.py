"""A snapshot of the asset graph: a change to assets, deps, partitions, automation or checks is a visible diff.

Update after an intended change with ``pytest radar_assets_tests/config/test_asset_graph.py --snapshot-update``
and review the diff of ``__snapshots__/test_asset_graph.ambr``.
"""

from __future__ import annotations

import dagster as dg

from radar_assets.definitions import build_definitions
from radar_assets.settings import Settings


def _partitions(pd) -> str | None:
    if pd is None:
        return None
    if isinstance(pd, dg.MultiPartitionsDefinition):
        return " x ".join(f"{d.name}:{_partitions(d.partitions_def)}" for d in pd.partitions_defs)
    if isinstance(pd, dg.DynamicPartitionsDefinition):
        return f"dynamic({pd.name})"
    if isinstance(pd, dg.TimeWindowPartitionsDefinition):
        return f"time({pd.cron_schedule} from {pd.start:%Y-%m-%d %H:%M})"
    return type(pd).__name__


def _condition(c) -> str:
    label = c.get_label() or c.name
    children = [_condition(child) for child in c.children]
    return f"{label}({', '.join(children)})" if children else label


def graph(defs: dg.Definitions) -> dict:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        condition = node.automation_condition
        assets[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": _partitions(node.partitions_def),
            "automation": _condition(condition) if condition else None,
            "checks": sorted(c.name for c in graph.get_check_keys_for_assets({key})),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "pools": sorted(p for p in (node.pools or []) if p),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "sensors": sorted((s.name, str(s.default_status.value)) for s in repo.sensor_defs),
        "schedules": sorted(
            (s.name, s.cron_schedule, str(s.default_status.value)) for s in repo.schedule_defs
        ),
    }


def test_asset_graph_snapshot(snapshot, tmp_path, monkeypatch):
    for part in ("DAY", "HOUR"):  # the snapshot shows the default grid
        monkeypatch.delenv(f"RADAR_ASSETS_PARTITIONS_FIRST_{part}", raising=False)
    assert graph(build_definitions(Settings(home=tmp_path))) == snapshot
