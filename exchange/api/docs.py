"""The API's documentation pages, served from assets vendored in the package: `/docs` (Swagger
UI 5.35.0) and `/redoc` (Redoc 2.5.4), each under a CSP that allows scripts from the broker
only. The office network need not reach a CDN, and no page loads code from one.

Vendored files (exchange/api/static/vendor, licences beside them): `swagger-ui-bundle-5.35.0.js`
and `swagger-ui-5.35.0.css` from the npm package swagger-ui-dist 5.35.0 (Apache-2.0), and
`redoc-2.5.4.standalone.js` from redoc 2.5.4 (`bundles/redoc.standalone.js`, MIT); only the
source-map comment lines were removed. To update: `npm pack` the new versions, copy the same
files under their new version names, change the names below.

    sha256 of the npm tarballs:   swagger-ui-dist-5.35.0.tgz 1b8e8918…a391a6ea6
                                  redoc-2.5.4.tgz            44922df4…9d911a56e
    sha256 of the vendored files: swagger-ui-bundle-5.35.0.js e6a89869…3de180af2
                                  swagger-ui-5.35.0.css      a6a4cf68…973847d10
                                  redoc-2.5.4.standalone.js  fa4bf581…6ca41aa29
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/docs/static"
SWAGGER_JS = "vendor/swagger-ui-bundle-5.35.0.js"
SWAGGER_CSS = "vendor/swagger-ui-5.35.0.css"
REDOC_JS = "vendor/redoc-2.5.4.standalone.js"

# Swagger UI and Redoc style their elements inline (React, styled-components) and Redoc runs its
# search in a worker made from a blob; scripts come from the broker only, nothing is framed
CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src blob:",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
))  # fmt: skip

_SWAGGER = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}} - API</title>
<link rel="stylesheet" href="{STATIC_PREFIX}/{SWAGGER_CSS}"></head>
<body><div id="swagger-ui"></div>
<script src="{STATIC_PREFIX}/{SWAGGER_JS}"></script>
<script src="{STATIC_PREFIX}/docs-init.js"></script></body></html>
"""

_REDOC = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}} - API</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{STATIC_PREFIX}/{REDOC_JS}"></script></body></html>
"""


def _page(template: str, title: str) -> HTMLResponse:
    return HTMLResponse(template.replace("{title}", title),
                        headers={"Content-Security-Policy": CSP})


def install_docs(app: FastAPI) -> None:
    """/docs and /redoc (FastAPI's own, which load from a CDN, are turned off in create_app)."""
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _page(_SWAGGER, title)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _page(_REDOC, title)

    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC), name="docs-static")
