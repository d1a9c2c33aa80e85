"""Boundary data packages: rasters clipped by a polygon mask, the boundary's time series, a preview and a
Frictionless ``datapackage.json`` with sha256 hashes, licences, sources and provenance, published atomically
under content-derived versions.

Modules
-------
- :mod:`~radar_assets.lib.packages.clip`: clip a value COG to a polygon (a real cell-centre mask).
- :mod:`~radar_assets.lib.packages.tabular`: the time-series CSV and its Table Schema.
- :mod:`~radar_assets.lib.packages.preview`: the preview PNG (day's maximum reflectivity under the outline).
- :mod:`~radar_assets.lib.packages.descriptor`: ``datapackage.json`` (Data Package v2) and frictionless validation.
- :mod:`~radar_assets.lib.packages.build`: assemble one boundary x day package in memory (and its version).
- :mod:`~radar_assets.lib.packages.publish`: atomic versioned publication, the ``packages`` catalog table.
- :mod:`~radar_assets.lib.packages.verify`: re-check a stored package; stream it as a zip.

No Dagster here: ``radar_assets.defs.packages`` wires these functions to partitions.
"""

from radar_assets.lib.packages.build import Boundary, BuiltPackage, build_package, package_prefix
from radar_assets.lib.packages.descriptor import ValidationSummary, validate_files
from radar_assets.lib.packages.publish import (
    PACKAGES_SCHEMA,
    PACKAGES_TABLE,
    PublishResult,
    complete_versions,
    current_package,
    publish_package,
)
from radar_assets.lib.packages.verify import Verification, verify_package, zip_stream

__all__ = [
    "PACKAGES_SCHEMA",
    "PACKAGES_TABLE",
    "Boundary",
    "BuiltPackage",
    "PublishResult",
    "ValidationSummary",
    "Verification",
    "build_package",
    "complete_versions",
    "current_package",
    "package_prefix",
    "publish_package",
    "validate_files",
    "verify_package",
    "zip_stream",
]
