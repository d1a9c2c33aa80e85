"""One object-store interface, two implementations: a local directory and S3 (any endpoint).

Invariants
----------
- Keys are ``/``-separated relative names; a key never starts with ``/`` and never contains ``..``,
  so nothing outside the store root can be addressed.
- Writes are atomic: a reader sees the previous object or the new one, never a partial one
  (temp file + ``os.replace`` locally; a single PUT on S3).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse


class StoreError(Exception):
    """A store operation failed; the message names the store and the key."""


class InvalidKeyError(StoreError, ValueError):
    """A key that could escape the store root or is otherwise malformed."""


def check_key(key: str) -> str:
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKeyError(f"invalid store key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKeyError(f"invalid store key {key!r}")
    return key


class ObjectStore:
    """Interface shared by :class:`LocalStore` and :class:`S3Store`."""

    url: str

    def put_bytes(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def size(self, key: str) -> int:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def list_objects(self, prefix: str = "", start_after: str | None = None) -> Iterator[tuple[str, int]]:
        """Yield ``(key, size)`` for every key starting with ``prefix``, in lexical order.

        ``start_after`` skips keys up to and including it (S3's ``StartAfter``): a lister that remembers
        the last key it saw resumes there without listing the prefix again.
        """
        raise NotImplementedError

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        return (key for key, _size in self.list_objects(prefix))

    def list_versions(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        """Yield ``(key, version)``; the version changes whenever the object is rewritten."""
        raise NotImplementedError

    def uri(self, key: str) -> str:
        """A URI for the object that DuckDB/readers understand (a path locally, ``s3://`` on S3)."""
        raise NotImplementedError


#: A concurrent delete may prune the folder a put has just made; the put makes it again this many times.
_MKDIR_ATTEMPTS = 8


@dataclass
class LocalStore(ObjectStore):
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        for attempt in range(_MKDIR_ATTEMPTS):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
                break
            except (FileNotFoundError, FileExistsError):  # a delete pruned a folder while we made it
                if attempt == _MKDIR_ATTEMPTS - 1:
                    raise
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"no object {key!r} in store {self.url}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Prune the folders this leaves empty (retention would otherwise leave one per site and day behind
        # for every listing to walk); a folder another writer fills meanwhile is not empty and stays.
        for folder in path.parents:
            if folder == self.root:
                break
            try:
                folder.rmdir()
            except OSError:
                break

    def list_objects(self, prefix: str = "", start_after: str | None = None) -> Iterator[tuple[str, int]]:
        # Read only what the prefix can name: the entries of its deepest directory that start with its last
        # part, and below those only the matching folders. A flat prefix (Level 3 names have no folder)
        # must not walk the whole store: at 160 sites x 15 streams that made one sensor pass minutes long.
        base, _, stem = prefix.rpartition("/")
        start = self.root / base if base else self.root
        try:
            entries = [e for e in os.scandir(start) if e.name.startswith(stem)]
        except (FileNotFoundError, NotADirectoryError):
            return iter(())
        keys = []

        def add(path: str) -> None:
            key = os.path.relpath(path, self.root).replace(os.sep, "/")
            if start_after is None or key > start_after:
                try:
                    keys.append((key, os.path.getsize(path)))
                except FileNotFoundError:  # replaced or deleted while listing
                    pass

        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                for dirpath, _dirs, files in os.walk(entry.path):
                    for name in files:
                        if not name.startswith(".tmp-"):
                            add(os.path.join(dirpath, name))
            elif not entry.name.startswith(".tmp-"):
                add(entry.path)
        return iter(sorted(keys))

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def list_versions(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        for key, size in self.list_objects(prefix):
            try:
                yield key, f"{size}-{self._path(key).stat().st_mtime_ns}"
            except FileNotFoundError:  # replaced or deleted between listing and stat
                continue


@dataclass
class S3Store(ObjectStore):
    """S3 or any S3-compatible endpoint (SeaweedFS, MinIO). ``anonymous`` for public archives."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    anonymous: bool = False
    _client: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.prefix = self.prefix.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            config = (
                Config(signature_version=UNSIGNED) if self.anonymous else Config(retries={"max_attempts": 5})
            )
            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region or "us-east-1",
                aws_access_key_id=None if self.anonymous else self.access_key_id,
                aws_secret_access_key=None if self.anonymous else self.secret_access_key,
                config=config,
            )
        return self._client

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey as exc:
            raise StoreError(f"no object {key!r} in store {self.url}") from exc

    def _head(self, key: str):
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise StoreError(f"no object {key!r} in store {self.url}")
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list_objects(self, prefix: str = "", start_after: str | None = None) -> Iterator[tuple[str, int]]:
        # Prefixes may end in "/" or mid-name, so they are not checked as keys.
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        extra = {"StartAfter": self._key(start_after)} if start_after else {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full, **extra):
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:], int(obj["Size"])

    def list_versions(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                yield (
                    obj["Key"][strip:],
                    f"{obj['Size']}-{obj.get('ETag', '').strip(chr(34))}-{obj['LastModified'].timestamp()}",
                )

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


def store_from_url(
    url: str,
    *,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    anonymous: bool = False,
    region: str | None = None,
) -> ObjectStore:
    """Open ``s3://bucket/prefix`` or a local folder (plain path or ``file://``).

    Unset S3 credentials and endpoint fall back to boto3's own chain (``AWS_*`` variables, profiles);
    :func:`radar_assets.settings.open_store` is how the platform opens its store from its settings.
    """
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return S3Store(
            bucket=parsed.netloc,
            prefix=parsed.path.lstrip("/"),
            endpoint_url=endpoint_url,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            anonymous=anonymous,
            region=region,
        )
    if parsed.scheme == "file":
        return LocalStore(Path(parsed.path))
    if parsed.scheme in ("",) or len(parsed.scheme) == 1:  # plain path (or a Windows drive letter)
        return LocalStore(Path(url))
    raise StoreError(f"unsupported store URL {url!r}: use a folder path, file://PATH or s3://BUCKET/PREFIX")
