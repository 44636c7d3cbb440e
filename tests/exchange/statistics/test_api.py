"""GET /v1/statistics/{table}: the JSON shape, the workbook, 422s naming the parameter, 403s,
and one audit entry per release (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from exchange.api.app import create_app
from exchange.api.auth import issue_token
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services.auditing import MemoryAuditSink
from exchange.services.statistics_export import XLSX_MEDIA_TYPE
from exchange.settings import Settings
from keys.keyring import Keyring
from keys.providers import MemoryKeyProvider
from tests.exchange.statistics.conftest import NOW, Street
from tests.exchange.statistics.test_release import _populate


@pytest.fixture
def client(street: Street, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]],
                                                                  MemoryAuditSink]]:
    app = create_app(Settings(home=tmp_path), session_factory=street.factory,
                     keyring=Keyring(MemoryKeyProvider.generate()), clock=lambda: NOW)
    sink = MemoryAuditSink()
    app.state.audit_sink = sink
    headers = {}
    with unit_of_work(street.factory) as s:
        for name in ("admin", "cadre", "auditor"):
            row = s.get_one(m.Principal, street.principals[name].id)
            headers[name] = {"Authorization": f"Bearer {issue_token(row, now=NOW)}"}
    with TestClient(app) as test_client:
        yield test_client, headers, sink


def test_the_answer_has_exactly_the_issue_shape(street: Street, client) -> None:  # noqa: ANN001
    _populate(street)
    api, headers, sink = client
    r = api.get("/v1/statistics/residents", params={"by": "community,stage"},
                headers=headers["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["table", "by", "threshold", "rule", "cells", "margins", "total"]
    assert body["table"] == "residents" and body["by"] == ["community", "stage"]
    assert body["threshold"] == 5 and "hypercube" in body["rule"]
    first = body["cells"][0]
    assert first == {"key": {"community": "向阳社区", "stage": "preparing"}, "count": None,
                     "flag": "primary"}  # fmt: skip
    assert set(body["margins"]) == {"community", "stage"}
    assert body["margins"]["stage"][0]["key"] == {"stage": "preparing"}
    assert body["total"] == {"count": 202, "flag": None}
    assert len(sink.entries) == 1 and sink.entries[0].action == "statistics.release"


@pytest.mark.parametrize("how", ["accept", "format"])
def test_the_workbook_shows_small_cells_as_under_five(street: Street, client, how) -> None:  # noqa: ANN001
    _populate(street)
    api, headers, _ = client
    extra = ({"Accept": XLSX_MEDIA_TYPE} if how == "accept" else {})
    params = {"by": "community,stage", **({"format": "xlsx"} if how == "format" else {})}
    r = api.get("/v1/statistics/residents", params=params, headers={**headers["admin"], **extra})
    assert r.status_code == 200 and r.headers["content-type"] == XLSX_MEDIA_TYPE
    sheet = load_workbook(io.BytesIO(r.content)).active
    values = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert "<5" in values and "*" in values
    assert "社区 community" in values and "孕产状态 stage" in values and "备孕 preparing" in values
    assert any(isinstance(v, str) and "数据已做小数抑制处理" in v for v in values)
    assert 202 in values


@pytest.mark.parametrize(
    ("params", "field"),
    [({"by": "colour"}, "by"), ({"by": "community", "from": "2026-01-01", "to": "2026-02-28"},
     "from"), ({"by": "community", "from": "not-a-date", "to": "2026-01-31"}, "from"),
     ({"by": "community", "exact": "true"}, "reason")],
)
def test_bad_parameters_are_422_naming_them(street: Street, client, params, field) -> None:  # noqa: ANN001
    api, headers, sink = client
    r = api.get("/v1/statistics/residents", params=params, headers=headers["admin"])
    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]]
    assert sink.entries == []


def test_an_unknown_table_is_422_naming_it(client) -> None:  # noqa: ANN001
    api, headers, _ = client
    r = api.get("/v1/statistics/everyone", params={"by": "community"}, headers=headers["admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "table"


def test_who_may_have_what(street: Street, client) -> None:  # noqa: ANN001
    _populate(street)
    api, headers, sink = client
    exact = {"by": "community", "exact": "true", "reason": "settlement"}
    assert api.get("/v1/statistics/residents", params=exact,
                   headers=headers["auditor"]).status_code == 403  # fmt: skip
    assert api.get("/v1/statistics/deletions", params={"by": "status"},
                   headers=headers["cadre"]).status_code == 403  # fmt: skip
    r = api.get("/v1/statistics/residents", params=exact, headers=headers["admin"])
    assert r.status_code == 200 and r.json()["rule"].startswith("exact;reason=settlement")
    mine = api.get("/v1/statistics/residents", params={"by": "community"},
                   headers=headers["cadre"]).json()  # fmt: skip
    assert [c["key"]["community"] for c in mine["cells"]] == ["向阳社区"]
    assert [e.action for e in sink.entries] == ["statistics.release_exact", "statistics.release"]
