"""Dependencies of the routers: everything comes from ``app.state`` (set by ``create_app``).

Tests replace any of them with ``app.dependency_overrides[get_store] = ...``. They are ``async`` because
they only read attributes: FastAPI runs sync dependencies in its threadpool, which would cost a thread hop
per dependency per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Request, Response

from radar_assets.api.errors import InvalidParameterError, NotFoundError, StoreUnavailableError
from radar_assets.api.snapshot import Snapshot, SnapshotManager
from radar_assets.lib.store import InvalidKeyError, ObjectStore, StoreError
from radar_assets.settings import Settings


class ObjectReader:
    """Reads objects named by catalog rows from the store, with a bounded in-memory LRU.

    Cached entries are keyed by snapshot version and key, so a newly published snapshot rereads objects.
    """

    def __init__(self, store: ObjectStore, max_bytes: int):
        self.store = store
        self.max_bytes = max_bytes
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def read(self, key: str, *, what: str, version: str = "", cache: bool = False) -> bytes:
        """Bytes of ``key``; ``what`` names the object in error messages (never the key or store)."""
        ident = (version, key)
        if cache:
            with self._lock:
                data = self._cache.get(ident)
                if data is not None:
                    self._cache.move_to_end(ident)
                    return data
        data = self._get(key, what)
        if cache and len(data) <= self.max_bytes:
            with self._lock:
                if ident not in self._cache:
                    self._cache[ident] = data
                    self._size += len(data)
                while self._size > self.max_bytes and self._cache:
                    _, old = self._cache.popitem(last=False)
                    self._size -= len(old)
        return data

    def _get(self, key: str, what: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.store.get_bytes(key)
        except InvalidKeyError:
            raise NotFoundError(f"{what} is not available") from None
        except StoreError:
            raise NotFoundError(f"{what} is missing from the store") from None
        except FileNotFoundError:
            raise NotFoundError(f"{what} is missing from the store") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise NotFoundError(f"{what} is missing from the store") from None
            raise StoreUnavailableError(f"the object store did not return {what}") from None
        except (BotoCoreError, OSError):
            raise StoreUnavailableError(f"the object store did not return {what}") from None


async def reject_repeated_parameters(request: Request) -> None:
    """No parameter of this API takes several values: ``?site=A&site=B`` is a 422, not "the last one wins"."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            raise InvalidParameterError(("query", name), f"parameter {name!r} is given more than once")
        seen.add(name)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_snapshots(request: Request) -> SnapshotManager:
    return request.app.state.snapshots


async def get_objects(request: Request) -> ObjectReader:
    return request.app.state.objects


SettingsDep = Annotated[Settings, Depends(get_settings)]
SnapshotsDep = Annotated[SnapshotManager, Depends(get_snapshots)]
ObjectsDep = Annotated[ObjectReader, Depends(get_objects)]


class CatalogRead:
    """What a list or metadata endpoint needs: the snapshots, and conditional-GET handling on its response."""

    def __init__(self, request: Request, response: Response, snapshots: SnapshotManager, settings: Settings):
        self.request = request
        self.response = response
        self.snapshots = snapshots
        self.settings = settings

    @property
    def root(self) -> str:
        return self.request.scope.get("root_path", "")

    def not_modified(self, snapshot: Snapshot) -> Response | None:
        """Set the list cache headers; a ``304`` when the client's copy of ``snapshot`` is current."""
        from radar_assets.api.responses import conditional

        return conditional(self.request, self.response, snapshot, self.settings.api.cache_max_age)


async def get_catalog_read(
    request: Request, response: Response, snapshots: SnapshotsDep, settings: SettingsDep
) -> CatalogRead:
    return CatalogRead(request, response, snapshots, settings)


CatalogReadDep = Annotated[CatalogRead, Depends(get_catalog_read)]
