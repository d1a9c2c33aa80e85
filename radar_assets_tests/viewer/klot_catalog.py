"""A catalog built from real KLOT Level 2 volumes by the real assets (raw_scans -> rendered_sweeps), for the
viewer's browser tests: REF at 512 px, published as the API's snapshot under a temporary home."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa

from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.partitions import sites_partitions
from radar_assets.defs.resources import RenderResource
from radar_assets.defs.scans.assets import build_raw_scans
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.defs.sweeps.assets import build_rendered_sweeps
from radar_assets.lib.render.grid import lookup_cache_dir
from radar_assets.lib.seed import seed
from radar_assets.lib.store import LocalStore
from radar_assets_tests.conftest import sample_partitions, shared_path

raw_scans = build_raw_scans(sample_partitions())
rendered_sweeps = build_rendered_sweeps(sample_partitions())

#: day -> KLOT volume in ../shared/data/level2/KLOT (one volume per day).
VOLUMES = {
    "2021-06-25": "KLOT20210625_075154_V06",
    "2021-07-29": "KLOT20210729_123848_V06",
    "2022-03-17": "KLOT20220317_000842_V06",
}
RUN_CONFIG = dg.RunConfig(ops={"rendered_sweeps": {"config": {"size": 512, "moments": ["REF"]}}})


class KlotCatalog:
    """Seeds the volumes into a source store under ``home`` and renders chosen days on demand."""

    def __init__(self, home: Path):
        self.home = Path(home)
        loose = self.home / "loose"
        loose.mkdir(parents=True, exist_ok=True)
        for name in VOLUMES.values():
            shutil.copy(shared_path("level2", "KLOT", name), loose)
        seed(loose, LocalStore(self.home / "source"), log=lambda _m: None)
        store = StoreResource(url=str(self.home / "store"))
        self.catalog_resource = CatalogResource(store=store, snapshot_dir=str(self.home / "catalog"))
        self.resources = {
            "source": RadarSourceResource(url=str(self.home / "source")),
            "store": store,
            "catalog": self.catalog_resource,
            "render": RenderResource(cache_dir=str(lookup_cache_dir())),
        }
        self.instance = dg.DagsterInstance.ephemeral()
        self.instance.add_dynamic_partitions(sites_partitions.name, ["KLOT"])

    def render(self, day: str) -> None:
        """Materialise raw_scans and rendered_sweeps of KLOT on ``day`` (not yet published)."""
        result = dg.materialize(
            [raw_scans, rendered_sweeps],
            partition_key=f"{day}|KLOT",
            instance=self.instance,
            resources=self.resources,
            run_config=RUN_CONFIG,
        )
        assert result.success

    def add_county_series(self, days: list[str]) -> None:
        """Register the shipped Illinois counties and materialise timeseries_summaries of KLOT on ``days``."""
        from radar_assets.defs.timeseries.assets import ZonalResource, build_timeseries_summaries
        from radar_assets.lib.geo.boundaries import add_file, shipped_boundaries

        (illinois,) = [b for b in shipped_boundaries() if "KLOT" in b.sites]
        add_file(
            self.catalog_resource.get_catalog(),
            illinois.path,
            illinois.id_field,
            illinois.name_field,
            illinois.prefix,
        )
        resources = {**self.resources, "zonal": ZonalResource(cache_dir=str(self.home / "zonal"))}
        for day in days:
            result = dg.materialize(
                [build_timeseries_summaries(sample_partitions())],
                partition_key=f"{day}|KLOT",
                instance=self.instance,
                resources=resources,
            )
            assert result.success

    def add_echo_scans(self, now: datetime, stations: tuple[str, ...] = ("sas", "pgr", "rkn")) -> list[dict]:
        """Per-scan SuperDARN averages in the hour before ``now`` (the viewer's echo panel reads the last day)."""
        from radar_assets.lib.feed.echoes import ECHO_SCANS_SCHEMA

        rows = []
        for k, station in enumerate(stations):
            for i in range(6):
                start = now - timedelta(minutes=60 - 10 * i)
                rows.append(
                    {
                        "station": station, "scan_start": start, "scan_end": start + timedelta(minutes=1),
                        "records": 16, "echoes": 100 * (k + 1) + 7 * i, "mean_velocity": 1.0,
                        "mean_power": 12.0, "mean_width": 40.0, "partition": start.strftime("%Y-%m-%d-%H"),
                    }
                )  # fmt: skip
        cat = self.catalog_resource.get_catalog()
        for partition in sorted({r["partition"] for r in rows}):
            part = [r for r in rows if r["partition"] == partition]
            cat.write_partition("echo_scans", partition, pa.Table.from_pylist(part, schema=ECHO_SCANS_SCHEMA))
        return rows

    def publish(self) -> None:
        self.catalog_resource.get_catalog().publish()
