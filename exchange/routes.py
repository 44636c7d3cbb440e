"""The route template of a request (`/v1/residents/{resident_id}`): what logs, metrics and
audit entries name instead of the path, which may carry a name or an ID number."""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED_ROUTE = "<unmatched>"  # no route matched: the path is never logged instead


def route_template(scope: Scope) -> str:
    """The matched route's template with its router prefix, e.g. /v1/cases/{reference}.

    FastAPI puts the route as declared (without include prefixes) in the scope; the prefix
    is the literal leading segments of the request path that the template does not cover.
    A mount (the console's static files) is named by its own path and `{path}`.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        mount = scope.get("root_path")  # a mount (static files) that took the request
        if isinstance(mount, str) and mount.startswith("/") and mount != "/":
            return mount.rstrip("/") + "/{path}"
        return UNMATCHED_ROUTE
    segments = [s for s in str(scope.get("path", "")).split("/") if s]
    covered = len([s for s in template.split("/") if s])
    prefix = segments[: max(0, len(segments) - covered)]
    return "/" + "/".join([*prefix, *(s for s in template.split("/") if s)])
