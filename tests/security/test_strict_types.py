"""Issue 14, finding 8: request models are strict. `retention_days: true` was stored as 1 and
`delivered_at: 12345` became a 1970 time. Booleans are not integers, numbers are not strings,
times are ISO 8601 text with an offset, dates ISO text, a query's boolean is `true`/`false`;
every field problem at once. A walk over every route fails for a body model that is not an
`exchange.api.models.StrictModel`, or a date, time or query boolean not of its checked types,
so a new route cannot forget."""

from __future__ import annotations

import types
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, BeforeValidator, ConfigDict

from exchange.api import models
from policies import shipped_policy
from tests.exchange.api.apptools import build

_CHECKED = {models._iso_date, models._iso_datetime, models._query_bool}  # noqa: SLF001


def _loose(tp: Any, where: str, query: bool = False, seen: set[type] | None = None) -> list[str]:
    """What in the type `tp` is not strict (empty when all is)."""
    seen = set() if seen is None else seen
    if get_origin(tp) is Annotated:
        base, *meta = get_args(tp)
        checked = any(isinstance(m, BeforeValidator) and m.func in _CHECKED for m in meta)
        if checked:
            return []
        return _loose(base, where, query, seen)
    if tp in (date, datetime) or (query and tp is bool):
        return [f"{where}: {getattr(tp, '__name__', tp)} without its checked type"]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return []
        seen.add(tp)
        config = tp.model_config
        out = []
        if not (issubclass(tp, models.StrictModel) and config.get("strict") is True
                and config.get("extra") == "forbid"):  # fmt: skip
            out.append(f"{where}: {tp.__name__} is not a StrictModel (strict, extra=forbid)")
        for name, info in tp.model_fields.items():
            out += _loose(_with_metadata(info), f"{where}.{name}", False, seen)
        return out
    if get_origin(tp) in (Union, types.UnionType, list, dict, tuple, set, frozenset):
        return [p for arg in get_args(tp) for p in _loose(arg, where, query, seen)]
    return []


def _with_metadata(info: Any) -> Any:
    """A field's annotation with the metadata pydantic took out of its `Annotated`."""
    if info.metadata:
        return Annotated[(info.annotation, *info.metadata)]  # type: ignore[valid-type]
    return info.annotation


def _params(route: Any) -> list[tuple[str, Any, bool]]:
    """(name, annotation with its metadata, is a query parameter) of every body and query
    parameter of the route and its dependencies."""
    out: list[tuple[str, Any, bool]] = []
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        stack.extend(dep.dependencies)
        for field, is_query in [(f, False) for f in dep.body_params] + [
                (f, True) for f in dep.query_params]:  # fmt: skip
            out.append((field.name, _with_metadata(field.field_info), is_query))
    return out


def _api_routes(app: FastAPI) -> list[Any]:
    return [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]


def loose_parts(app: FastAPI) -> list[str]:
    problems = []
    for route in _api_routes(app):
        for name, tp, is_query in _params(route):
            where = f"{sorted(route.methods or ())} {route.path} {name}"
            problems += _loose(tp, where, is_query)
    return problems


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    home = tmp_path_factory.mktemp("strict")
    return build(f"sqlite:///{home / 'x.db'}", home).app


def test_every_route_takes_strict_models_and_checked_dates(app: FastAPI) -> None:
    assert loose_parts(app) == []
    bodies = sum(1 for r in _api_routes(app) for _, _, query in _params(r) if not query)
    assert bodies >= 10  # the walk saw the bodies (a broken walk passes nothing)


def test_the_walk_finds_a_loose_model() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int

    class Nested(models.StrictModel):
        when: datetime
        inner: list[Loose] = []

    class Fine(models.StrictModel):
        on: models.IsoDate | None = None
        at: models.IsoDateTime

    assert _loose(Loose, "x") == ["x: Loose is not a StrictModel (strict, extra=forbid)"]
    assert len(_loose(Nested, "y")) == 2
    assert _loose(Fine, "z") == []
    assert _loose(bool, "q", query=True) and not _loose(models.QueryBool, "q", query=True)


@pytest.fixture
def api(tmp_path: Path, database_url: str, migrated_sqlite_template: Path) -> Any:
    return build(database_url, tmp_path, template=migrated_sqlite_template)


def _fields(r: Any) -> set[str]:
    assert r.status_code == 422, r.text
    return {e["field"] for e in r.json()["errors"]}


@pytest.mark.db
def test_booleans_numbers_and_naive_times_are_refused_over_http(api: Any) -> None:
    client = api.client
    admin = {"Authorization": f"Bearer {api.tokens['office_admin']}"}
    contractor_id = client.get("/v1/contractors", headers=admin).json()["items"][0]["id"]
    agreement = {"contractor_id": contractor_id, "reference": "HT-2026-001",
                 "valid_from": "2026-03-01", "valid_to": "2027-02-28", "retention_days": 30,
                 "purposes": {"home_visit": shipped_policy("home_visit").id}}  # fmt: skip
    # every field problem at once: a boolean as an integer, a number as a string and a date
    r = client.post("/v1/agreements", headers=admin, json={
        **agreement, "retention_days": True, "reference": 2026, "valid_from": 20260301,
        "valid_to": "2027-02-28T00:00:00"})  # fmt: skip
    assert _fields(r) == {"retention_days", "reference", "valid_from", "valid_to"}
    assert _fields(client.post("/v1/agreements", headers=admin,
                               json={**agreement, "retention_days": "30"})) == {"retention_days"}
    assert _fields(client.post("/v1/agreements", headers=admin,
                               json={**agreement, "retention_days": 30.0})) == {"retention_days"}
    ok = client.post("/v1/agreements", headers=admin, json=agreement)
    assert ok.status_code == 201, ok.text
    assert ok.json()["retention_days"] == 30

    contractor = {"Authorization": f"Bearer {api.tokens['contractor']}",
                  "Idempotency-Key": "strict-0001"}  # fmt: skip
    url = "/v1/cases/no-such-case/service-records"
    record = {"service": "home_visit", "notes": "x"}
    for when in (12345, "12345", "2026-03-01T09:00:00", "2026-03-01", True, "1 March 2026"):
        r = client.post(url, headers=contractor, json={**record, "delivered_at": when})
        assert _fields(r) == {"delivered_at"}, when
    r = client.post(url, headers=contractor, json={**record, "delivered_at": 5, "service": 7,
                                                 "notes": False})  # fmt: skip
    assert _fields(r) == {"delivered_at", "service", "notes"}
    # ISO 8601 with an offset passes validation (the case itself does not exist)
    for when in ("2026-03-01T09:00:00+08:00", "2026-03-01T01:00:00Z",
                 "2026-03-01T01:00:00.123456Z"):
        r = client.post(url, headers=contractor, json={**record, "delivered_at": when})
        assert r.status_code == 404, (when, r.text)

    # query parameters: a time with an offset, a boolean as true or false
    auditor = {"Authorization": f"Bearer {api.tokens['auditor']}"}
    for since, reason in (("12345", "datetime_format"), ("2026-03-01T09:00", "timezone_required"),
                          ("0001-01-01T00:00:00+23:59", "datetime_range")):
        r = client.get("/v1/audit/entries", headers=auditor, params={"since": since})
        assert _fields(r) == {"since"}, since
        assert r.json()["errors"][0]["type"] == reason
    since = (api.clock() - timedelta(days=1)).isoformat()
    assert client.get("/v1/audit/entries", headers=auditor,
                      params={"since": since}).status_code == 200
    for exact in ("1", "yes", "on"):
        r = client.get("/v1/statistics/residents", headers=admin,
                       params={"exact": exact, "from": "20260301"})  # fmt: skip
        assert _fields(r) == {"exact", "from"}, exact
