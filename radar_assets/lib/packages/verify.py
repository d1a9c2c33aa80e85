"""Checks of a published package and its zip stream.

:func:`verify_package` re-reads a package from the store and checks, independently of how it was written,
that every resource ``datapackage.json`` lists exists, has the listed ``bytes`` and the listed
``sha256:<hex>`` hash, and that ``frictionless`` validates the whole package (descriptor profile, byte
counts, hashes, CSV cells against the Table Schema). The asset check calls it.

:func:`zip_stream` yields a ZIP (PKWARE APPNOTE 6.3.x, written by :mod:`zipfile` in streaming mode with
data descriptors) of ``datapackage.json`` and every resource, chunk by chunk, without holding the archive
in memory. Entry times are fixed (1980-01-01), so the same package always zips to the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from radar_assets.lib.packages.descriptor import (
    DATAPACKAGE_NAME,
    ValidationSummary,
    check_resource_path,
    validate_files,
)
from radar_assets.lib.store import ObjectStore, StoreError

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Already-compressed payloads are stored as is; text is deflated.
_STORED_FORMATS = {"tif", "tiff", "png", "zip", "gz"}


@dataclass
class Verification:
    """Outcome of :func:`verify_package`.

    Attributes
    ----------
    ok : bool
        Every hash and size matches and frictionless validates.
    problems : list of str
        Missing files and hash/size mismatches, one line each.
    validation : ValidationSummary or None
        The frictionless report (None when the descriptor itself could not be read).
    resources : int
        Resources listed.
    """

    ok: bool
    problems: list[str] = field(default_factory=list)
    validation: ValidationSummary | None = None
    resources: int = 0


def _base(datapackage_key: str) -> str:
    if not datapackage_key.endswith("/" + DATAPACKAGE_NAME):
        raise ValueError(f"{datapackage_key!r} is not a datapackage.json key")
    return datapackage_key[: -len(DATAPACKAGE_NAME)]


def verify_package(store: ObjectStore, datapackage_key: str, *, frictionless: bool = True) -> Verification:
    """Check a stored package: listed sizes and sha256 hashes against the stored bytes, then frictionless."""
    base = _base(datapackage_key)
    try:
        raw = store.get_bytes(datapackage_key)
        descriptor = json.loads(raw)
    except (StoreError, ValueError) as exc:
        return Verification(False, [f"{datapackage_key}: unreadable descriptor: {exc}"])
    problems: list[str] = []
    missing = False
    files: dict[str, bytes] = {}
    resources = descriptor.get("resources", [])
    for res in resources:
        name, path = res.get("name", "?"), res.get("path", "")
        try:
            data = store.get_bytes(base + check_resource_path(path))
        except (StoreError, ValueError) as exc:
            problems.append(f"{name}: {path} missing or unsafe ({exc})")
            missing = True
            continue
        files[path] = data
        algo, _, listed = str(res.get("hash", "")).partition(":")
        if algo != "sha256" or hashlib.sha256(data).hexdigest() != listed:
            problems.append(f"{name}: sha256 of {path} does not match the listed hash {res.get('hash')!r}")
        if res.get("bytes") != len(data):
            problems.append(f"{name}: {path} has {len(data)} bytes, {res.get('bytes')} listed")
    validation = None
    # Frictionless needs every file; with one missing the report above already says what is wrong.
    if frictionless and not missing:
        validation = validate_files(raw, files)
    ok = not problems and (validation is None or validation.valid)
    return Verification(ok, problems, validation, len(resources))


class _Sink:
    """A write-only, unseekable file that hands what it receives to the generator."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def zip_stream(
    store: ObjectStore, datapackage_key: str, folder: str = "", chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """Yield a ZIP of a package: ``datapackage.json`` then every resource at its path (under ``folder/``).

    Objects are read from the store one at a time; at most one resource plus a chunk is held in memory.
    """
    base = _base(datapackage_key)
    raw = store.get_bytes(datapackage_key)
    descriptor = json.loads(raw)
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    entries = [(DATAPACKAGE_NAME, "json", None)]
    entries += [
        (check_resource_path(r["path"]), r.get("format", ""), r["path"]) for r in descriptor["resources"]
    ]
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as zf:
        for arcname, fmt, path in entries:
            data = raw if path is None else store.get_bytes(base + path)
            info = zipfile.ZipInfo(prefix + arcname, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED if fmt in _STORED_FORMATS else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=len(data) > 0x7FFFFFFF) as entry:
                for start in range(0, len(data), chunk_size):
                    entry.write(data[start : start + chunk_size])
                    chunk = sink.take()
                    if chunk:
                        yield chunk
            chunk = sink.take()
            if chunk:
                yield chunk
    tail = sink.take()
    if tail:
        yield tail
