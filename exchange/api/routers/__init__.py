"""Domain routers, one module per domain, each exposing `router: APIRouter`.

Every module in this package that defines `router` is mounted under /v1 automatically, so
adding a domain is adding a module. Each route takes its context with the operation it performs,
`Annotated[Context, context_for("...")]` (docs/api-pattern.md); a test walks the app
(tests/exchange/api/test_auth_permissions.py).
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

API_PREFIX = "/v1"


def domain_routers() -> list[APIRouter]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found
