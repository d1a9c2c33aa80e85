"""ASGI middleware that makes the API read-only by construction.

Only ``GET`` and ``HEAD`` reach the routers (CORS preflights are answered by the CORS middleware outside
this one), plus ``POST`` on the paths of :data:`COMPUTE_ONLY_POSTS` (computations that write nothing); any
other method is a ``405`` whatever the path. ``HEAD`` runs the ``GET`` route and drops the
body, so every route answers both without declaring ``HEAD`` twice in the OpenAPI schema.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_FLAG = "radar_assets.head"
#: POST routes that compute an answer from the catalog and write nothing (ad-hoc zonal extraction).
COMPUTE_ONLY_POSTS = frozenset({"/timeseries/extract"})


class ReadOnlyMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "GET" or (method == "POST" and scope.get("path") in COMPUTE_ONLY_POSTS):
            await self.app(scope, receive, send)
            return
        if method == "HEAD":
            scope = dict(scope, method="GET")
            scope[HEAD_FLAG] = True
            done = False

            async def send_headers_only(message: Message) -> None:
                nonlocal done
                if done:
                    return
                if message["type"] == "http.response.body":
                    done = True
                    message = {"type": "http.response.body", "body": b"", "more_body": False}
                await send(message)

            await self.app(scope, receive, send_headers_only)
            return
        body = json.dumps(
            {"detail": f"method {method} is not allowed: this API is read-only (GET, HEAD)"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"allow", b"GET, HEAD"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
