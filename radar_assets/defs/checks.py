"""Asset checks tied to their partition: a failed check names its partition in the UI and the instance.

``AssetCheckSpec(partitions_def=...)`` is a preview feature of Dagster 1.13 that warns on every code-location
load (the daemon, the webserver and every run log it); the warning is silenced here, in one place, and the
tests in ``radar_assets_tests/automation/test_partitioned_checks.py`` pin the behaviour we rely on.
"""

from __future__ import annotations

import warnings

import dagster as dg


def partitioned_check(
    name: str, *, asset: str, description: str, partitions_def: dg.PartitionsDefinition
) -> dg.AssetCheckSpec:
    """A check spec partitioned like its asset (its results emitted in the asset's MaterializeResult)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, description=description, partitions_def=partitions_def)
