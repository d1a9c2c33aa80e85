"""Domain errors of the API and the one table that maps them to HTTP status codes.

This module never imports FastAPI: routers and helpers raise these errors, and
:func:`radar_assets.api.app.create_app` registers one exception handler per entry of :data:`ERROR_STATUS`.
Only the messages of :class:`ApiError` subclasses reach clients; errors raised by ``lib`` (whose messages
may name server paths or buckets) are answered with the fixed message of :data:`PUBLIC_MESSAGES`.
"""

from __future__ import annotations

from collections.abc import Sequence

from radar_assets.lib.catalog import CatalogError
from radar_assets.lib.store import StoreError


class ApiError(Exception):
    """Base class of the errors the API answers with a status code and this message."""


class NotFoundError(ApiError):
    """An id that is well formed but not in the catalog (or whose file is missing from the store)."""


class InvalidParameterError(ApiError):
    """A parameter that passed type validation but is still unusable (e.g. a tile column outside the zoom)."""

    def __init__(self, loc: Sequence[str | int], message: str):
        super().__init__(message)
        self.loc = tuple(loc)


class CatalogUnavailableError(ApiError):
    """No catalog snapshot is published yet, or it cannot be opened."""


class StoreUnavailableError(ApiError):
    """The object store did not answer."""


#: The single mapping of domain errors to status codes (most specific class wins).
ERROR_STATUS: dict[type[Exception], int] = {
    NotFoundError: 404,
    InvalidParameterError: 422,
    CatalogUnavailableError: 503,
    StoreUnavailableError: 503,
    CatalogError: 503,
    StoreError: 503,
}

#: Messages for errors whose own text is not meant for clients.
PUBLIC_MESSAGES: dict[type[Exception], str] = {
    CatalogError: "the catalog snapshot is not available",
    StoreError: "the object store is not available",
}


def status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    raise LookupError(f"{type(exc).__name__} is not in ERROR_STATUS")


def error_body(exc: Exception) -> dict:
    """The JSON body of an error response.

    422 bodies have the same shape as FastAPI's request-validation errors, so clients (and the OpenAPI
    schema) see one format for every bad parameter.
    """
    if isinstance(exc, InvalidParameterError):
        return {"detail": [{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}]}
    if isinstance(exc, ApiError):
        return {"detail": str(exc)}
    for cls in type(exc).__mro__:
        if cls in PUBLIC_MESSAGES:
            return {"detail": PUBLIC_MESSAGES[cls]}
    return {"detail": "error"}
