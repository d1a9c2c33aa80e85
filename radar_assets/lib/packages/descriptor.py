"""``datapackage.json`` of a boundary package (Frictionless Data Package v2) and its validation.

Spec: Data Package v2.0, https://datapackage.org/standard/data-package/ (profile
``https://datapackage.org/profiles/2.0/datapackage.json``) and Data Resource v2.0,
https://datapackage.org/standard/data-resource/. Every resource carries ``name``, ``path`` (relative to the
descriptor), ``format``, ``mediatype``, ``bytes``, ``hash`` as ``sha256:<hex>`` (the v2 form with the
algorithm prefix), ``licenses`` and ``sources``; the CSV resource also carries ``type: table``,
``encoding`` and a Table Schema. The package adds a ``provenance`` property (allowed by the spec's
"additional properties"): package format version, code version, the Dagster run that wrote these bytes,
the partition, and the checksums of every input.

Determinism: keys are written in a fixed order, JSON is indented by two spaces with a final newline, and
nothing time-dependent is included (the catalog row holds the publication time). A re-run with unchanged
inputs finds the same version already complete and writes nothing, so the run id recorded is the one of
the run that produced the bytes.

Validation runs ``frictionless`` (the reference implementation) on the descriptor and the files laid out
in a temporary directory: it checks the descriptor against the v2 profile, each file's byte count and
sha256, and every CSV cell against the Table Schema.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

DATAPACKAGE_PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
DATAPACKAGE_NAME = "datapackage.json"

#: NEXRAD Level II/III data are produced by NOAA's National Weather Service, a US Government agency.
RADAR_LICENSE = {
    "name": "other-pd",
    "path": "https://www.usa.gov/government-copyright",
    "title": (
        "Public domain: NOAA/NWS NEXRAD radar data are a work of the U.S. Government "
        "(17 U.S.C. 105) and are not subject to copyright in the United States"
    ),
}

#: Distribution points of the archives the scans come from (public NOAA/Unidata layouts).
ARCHIVE_SOURCES = {
    2: {"title": "NOAA NEXRAD Level II archive (NOAA Open Data Dissemination)", "path": "https://registry.opendata.aws/noaa-nexrad/"},
    3: {"title": "NOAA NEXRAD Level III products (Unidata)", "path": "https://registry.opendata.aws/noaa-nexrad/"},
}  # fmt: skip


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_resource_path(path: str) -> str:
    """A resource path is relative, ``/``-separated, without ``..``, NUL or backslash (spec: "POSIX path,
    MUST NOT start with /, MUST NOT contain ..")."""
    parts = PurePosixPath(path).parts
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(p in ("", ".", "..") for p in path.split("/"))
        or not parts
    ):
        raise ValueError(f"unsafe resource path {path!r}")
    return path


@dataclass(frozen=True)
class PackageFile:
    """One payload file of a package.

    Attributes
    ----------
    name : str
        Resource name (lowercase ``[-a-z0-9._]``), unique in the package.
    path : str
        Path relative to ``datapackage.json``.
    data : bytes
        The file's bytes.
    format, mediatype : str
        Resource ``format`` (file extension) and IANA media type.
    title : str
        Human-readable title.
    sources : tuple of dict
        Data Package ``sources`` entries (``title``, ``path``) naming the archive objects it derives from.
    schema : dict, optional
        Table Schema (tabular resources only).
    """

    name: str
    path: str
    data: bytes
    format: str
    mediatype: str
    title: str = ""
    sources: tuple = ()
    schema: dict | None = None

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    def resource(self) -> dict:
        """The resource descriptor of this file."""
        out: dict = {"name": self.name, "path": check_resource_path(self.path)}
        if self.schema is not None:
            out["type"] = "table"
        if self.title:
            out["title"] = self.title
        out["format"] = self.format
        out["mediatype"] = self.mediatype
        if self.schema is not None:
            out["encoding"] = "utf-8"
        out["bytes"] = len(self.data)
        out["hash"] = f"sha256:{self.sha256}"
        out["licenses"] = [RADAR_LICENSE]
        out["sources"] = [dict(s) for s in self.sources]
        if self.schema is not None:
            out["schema"] = self.schema
        return out


def build_descriptor(
    *,
    name: str,
    title: str,
    description: str,
    version: str,
    files: list[PackageFile],
    sources: list[dict],
    provenance: dict,
    keywords: tuple[str, ...] = (),
) -> dict:
    """The package descriptor (insertion order is the serialised order)."""
    return {
        "$schema": DATAPACKAGE_PROFILE,
        "name": name,
        "id": f"radar-assets/{name}/{version}",
        "title": title,
        "description": description,
        "version": version,
        "keywords": list(keywords),
        "licenses": [RADAR_LICENSE],
        "sources": [dict(s) for s in sources],
        "resources": [f.resource() for f in files],
        "provenance": provenance,
    }


def serialise(descriptor: dict) -> bytes:
    """Canonical bytes of a descriptor (two-space indent, UTF-8, final newline)."""
    return (json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass
class ValidationSummary:
    """Outcome of ``frictionless validate`` on a package.

    Attributes
    ----------
    valid : bool
        No errors.
    resources : int
        Resources checked.
    errors : list of str
        ``resource: message`` (at most 50).
    warnings : list of str
        Frictionless warnings.
    seconds : float
        Time frictionless took.
    """

    valid: bool
    resources: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        head = f"frictionless: {'valid' if self.valid else 'INVALID'}, {self.resources} resources"
        return "\n".join([head, *self.errors[:10]])


def validate_files(datapackage: bytes, files: dict[str, bytes]) -> ValidationSummary:
    """Validate a descriptor with ``frictionless`` against the given files (``path -> bytes``).

    The files are written under a temporary directory exactly as published; paths are checked first.
    """
    from frictionless import validate

    with tempfile.TemporaryDirectory(prefix="radar-package-") as tmp:
        root = Path(tmp)
        for path, data in files.items():
            target = root / check_resource_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (root / DATAPACKAGE_NAME).write_bytes(datapackage)
        report = validate(str(root / DATAPACKAGE_NAME))
        errors = [f"package: {e.message}" for e in report.errors]
        for task in report.tasks:
            errors.extend(f"{task.name}: {e.message}" for e in task.errors)
        warnings = list(report.warnings) + [w for t in report.tasks for w in t.warnings]
        return ValidationSummary(
            valid=bool(report.valid),
            resources=len(report.tasks),
            errors=errors[:50],
            warnings=warnings[:50],
            seconds=float(report.stats.get("seconds", 0.0)),
        )
