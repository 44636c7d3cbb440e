"""The attack set's short run: every /v1 route of the real app, as nobody, with a forged token
and as each role, with a junk body and a reference that exists nowhere.

What must hold for every cell of that matrix (issue 14): nobody and a forged token get 401; a
role the permission table does not admit gets 403 and leaves an `access.denied` entry; a role it
admits is never answered 401, 403-by-role or a 5xx; no answer carries a token; every answer
says `nosniff` and `no-store`. A new route joins the run by existing.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import delete, select

from audit.store.tables import entries
from exchange.api.permissions import Requirement, allowed
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from tests.exchange.api.apptools import Harness, build

pytestmark = pytest.mark.db
ROLES = ("office_admin", "community_cadre", "contractor", "auditor")
NOWHERE = str(uuid.UUID(int=0x0123_4567_89AB_7DEF_8123_4567_89AB_CDEF))
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _operation(dependant: Any) -> str | None:
    for dep in dependant.dependencies:
        if isinstance(dep.call, Requirement):
            return dep.call.operation
        found = _operation(dep)
        if found is not None:
            return found
    return None


def _routes(h: Harness) -> list[tuple[str, str, str]]:
    """(method, path with every parameter filled by a reference that exists nowhere, operation)"""
    out = []
    for route in iter_route_contexts(h.app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.path.startswith("/v1/"):
            continue
        operation = _operation(route.dependant)
        if operation is None:  # /v1/session and the like: any signed-in role
            continue
        path = _PARAM.sub(NOWHERE, route.path)
        out.extend((method, path, operation) for method in sorted(route.methods or ()))
    return out


def _send(h: Harness, method: str, path: str, token: str | None) -> Any:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = None if method in ("GET", "DELETE") else {"junk": "=HYPERLINK(\"x\")", "n": True}
    return h.client.request(method, path, headers=headers, json=body)


def _forget_failures(h: Harness) -> None:
    """The failed-authentication limiter would answer 429 after a few refusals from the test
    client's one address; that limiter has its own tests (test_auth_limiter)."""
    with unit_of_work(h.factory) as session:
        session.execute(delete(m.MinuteCount).where(m.MinuteCount.counter == "auth.failure"))


def _denied_entries(h: Harness) -> int:
    with h.factory() as session:
        stored = session.scalars(select(entries.c.entry)).all()
    return sum(json.loads(bytes(e))["action"] == "access.denied" for e in stored)


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    return build(database_url, tmp_path, template=migrated_sqlite_template)


def test_every_route_as_every_caller(h: Harness) -> None:
    routes = _routes(h)
    assert len(routes) >= 30, "the route walk found too few routes to mean anything"
    forged = "x" * 43
    wrong: list[str] = []
    refusals = 0
    for method, path, operation in routes:
        for who, token in (("nobody", None), ("forged", forged)):
            r = _send(h, method, path, token)
            _forget_failures(h)
            if r.status_code != 401:
                wrong.append(f"{who} {method} {path}: {r.status_code}")
        for role in ROLES:
            r = _send(h, method, path, h.tokens[role])
            cell = f"{role} {method} {path}: {r.status_code}"
            if allowed(role, operation):
                refused_by_role = r.status_code == 403 and "may not" in r.text
                if r.status_code >= 500 or r.status_code == 401 or refused_by_role:
                    wrong.append(cell)
            elif r.status_code != 403:
                wrong.append(cell)
            else:
                refusals += 1
            if any(t in r.text for t in h.tokens.values()):
                wrong.append(cell + " (a token in the answer)")
            if r.headers.get("x-content-type-options") != "nosniff" or (
                    "no-store" not in r.headers.get("cache-control", "")):  # fmt: skip
                wrong.append(cell + " (cacheable or sniffable)")
    assert wrong == []
    assert refusals > 0 and _denied_entries(h) >= refusals
