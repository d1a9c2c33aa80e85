"""The API's own web pages, served from the package with no request leaving the server.

- ``/``: the map viewer (``viewer/app/index.html`` and its script and styles under ``/viewer/``).
- ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), whose scripts are served by this app instead of a CDN.
- ``/vendor/<name>/...``: the JavaScript dependencies, installed from the npm registry by ``npm ci`` into
  ``viewer/node_modules`` (``make install``; versions pinned by ``viewer/package-lock.json``) and served
  straight from there. Only the distribution folders listed in :data:`VENDOR` are exposed.

Without the npm install the pages still answer, with a ``503`` telling what to run, and the JSON API is
unaffected.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

VIEWER_DIR = Path(__file__).parent / "viewer"
APP_DIR = VIEWER_DIR / "app"
NODE_MODULES = VIEWER_DIR / "node_modules"

#: URL name under /vendor -> folder inside node_modules (the packages' built files only).
VENDOR = {
    "maplibre-gl": "maplibre-gl/dist",
    "uplot": "uplot/dist",
    "topojson-client": "topojson-client/dist",
    "us-atlas": "us-atlas",
    "swagger-ui": "swagger-ui-dist",
    "redoc": "redoc/bundles",
}

MISSING = (
    "<!doctype html><title>not installed</title><p>The {what} files are not installed: run "
    "<code>make install</code> (it runs <code>npm ci</code> in <code>radar_assets/api/viewer</code>).</p>"
)


def vendor_installed(name: str) -> bool:
    return (NODE_MODULES / VENDOR[name]).is_dir()


def install_pages(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Mount the viewer, the vendored scripts and the offline API docs on ``app``."""
    for name, rel in VENDOR.items():
        folder = NODE_MODULES / rel
        if folder.is_dir():
            app.mount(f"/vendor/{name}", StaticFiles(directory=folder), name=f"vendor-{name}")
    app.mount("/viewer", StaticFiles(directory=APP_DIR), name="viewer")

    @app.get("/", include_in_schema=False)
    def viewer_page() -> Response:
        return FileResponse(APP_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        if not vendor_installed("swagger-ui"):
            return HTMLResponse(MISSING.format(what="Swagger UI"), status_code=503)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}/vendor/swagger-ui/favicon-32x32.png",
            # No validator badge: it would send the schema URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        if not vendor_installed("redoc"):
            return HTMLResponse(MISSING.format(what="ReDoc"), status_code=503)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/vendor/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}/vendor/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
