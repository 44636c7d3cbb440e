"""`POST /v1/residents/imports`: a cadre's CSV imported in her scope, and every import audited."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit.store import tables as audit_tables
from exchange.db import models as m
from exchange.ledger.importer import ensure_communities
from exchange.ledger.synthetic import HEADER, generate_rows
from tests.exchange.api.apptools import Harness, build

TODAY = date(2026, 3, 1)  # the harness clock's office date


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    harness = build(database_url, tmp_path, template=migrated_sqlite_template)
    with harness.factory.begin() as session:
        ensure_communities(session)  # the other 城阳街道 communities, outside the cadre's scope
    return harness


def _csv(rows: list[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _in_community(n: int, community: str = "民城路社区") -> list[tuple[str, ...]]:
    rows = [r for r in generate_rows(200, 7, as_of=TODAY) if r[3] == community][:n]
    assert len(rows) == n
    return rows


def _post(h: Harness, body: bytes, role: str = "community_cadre", **params: str):  # type: ignore[no-untyped-def]
    return h.client.post("/v1/residents/imports", content=body, params=params,
                         headers={"Authorization": f"Bearer {h.tokens[role]}",
                                  "Content-Type": "text/csv; charset=utf-8"})  # fmt: skip


def _entries(h: Harness) -> list[dict[str, object]]:
    with h.factory() as s:
        return [json.loads(bytes(e)) for e in s.scalars(
            select(audit_tables.entries.c.entry).order_by(audit_tables.entries.c.idx))]  # fmt: skip


def _residents(h: Harness) -> int:
    with h.factory() as s:
        return int(s.scalar(select(func.count()).select_from(m.Resident)) or 0)


def test_a_cadre_imports_her_community_and_the_import_is_audited(h: Harness) -> None:
    body = _csv(_in_community(4))
    answer = _post(h, body)
    assert answer.status_code == 201, answer.text
    report = answer.json()
    assert report["applied"] and report["inserted"] == 4 and report["rows_invalid"] == 0
    assert _residents(h) == 4
    [entry] = _entries(h)
    assert entry["action"] == "resident.import" and entry["index"] == report["audit_index"]
    assert entry["actor"]["role"] == "community_cadre"  # type: ignore[index]
    assert entry["outcome"] == {"reason": "imported", "result": "ok"}
    details = entry["details"]
    assert details["file.sha256"] == hashlib.sha256(body).hexdigest()  # type: ignore[index]
    assert details["rows.inserted"] == 4 and details["mode.partial"] is False  # type: ignore[index]
    assert "ledger.marriage" in details["columns.never_imported"]  # type: ignore[index]
    text = json.dumps(entry, ensure_ascii=False)
    for row in _in_community(4):
        assert row[0] not in text and row[1] not in text and row[2] not in text


def test_rows_outside_her_communities_are_refused_and_the_refusal_recorded(h: Harness) -> None:
    body = _csv(_in_community(2) + _in_community(1, "向阳社区"))
    answer = _post(h, body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        ("rows.4.address.community", "community_out_of_scope")]
    assert _residents(h) == 0
    [entry] = _entries(h)
    assert entry["outcome"] == {"reason": "rows_invalid", "result": "denied"}
    assert problem["detail"] == f"1 invalid row(s); nothing imported (audit entry {entry['index']})"

    partial = _post(h, body, partial="true")
    assert partial.status_code == 201 and partial.json()["inserted"] == 2
    assert _entries(h)[-1]["outcome"] == {"reason": "imported_partially", "result": "ok"}


def test_an_unreadable_upload_is_recorded_and_changes_nothing(h: Harness) -> None:
    answer = _post(h, "姓名,电话\n李,1\n".encode())
    assert answer.status_code == 422 and "header" in answer.json()["detail"]
    assert [(e["field"], e["type"]) for e in answer.json()["errors"]] == [
        ("body", "file_unusable")]
    [entry] = _entries(h)
    assert entry["outcome"] == {"reason": "file_unusable", "result": "error"}
    assert set(entry["details"]) == {"file.sha256", "file.format", "mode.partial"}  # type: ignore[arg-type]


def test_only_csv_and_only_the_cadre(h: Harness) -> None:
    body = _csv(_in_community(1))
    wrong = h.client.post("/v1/residents/imports", content=body,
                          headers={"Authorization": f"Bearer {h.tokens['community_cadre']}",
                                   "Content-Type": "application/json"})  # fmt: skip
    assert wrong.status_code == 415
    assert _post(h, body, role="auditor").status_code == 403
    # nothing imported; the refusal itself is audited (issue 14)
    assert [e["action"] for e in _entries(h)] == ["access.denied"] and _residents(h) == 0
