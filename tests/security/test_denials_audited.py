"""Issue 14, finding 9: refusals leave a trace in the audit log, not only in the app log
(SQLite and PostgreSQL).

- a 401 is `auth.denied`, keyed by the token's keyed reference (never the token or its hash),
  at most one entry per presented token per minute and `AUDITED_PER_MINUTE` in all, counted in
  the database so every process shares the bound: 100 sprayed tokens leave a bounded number;
- a 403 is `access.denied` with the principal, the route template and a reason code, whether
  the permission gate or a flow refused; the entry commits although the request fails;
- a refused service-record post is a denied `service.record` with its reason.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from exchange.api.app import create_app
from exchange.api.auth import TOKEN_PREFIX, hash_token
from exchange.db import models as m
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.services.denials import AUDITED_PER_MINUTE, token_reference
from tests.exchange.api.apptools import build
from tests.exchange.console.ledger_world import entries
from tests.exchange.console.pages import console, sign_in

pytestmark = pytest.mark.db


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Any:
    # the failure limiter (per client address) must not hide what the audit bound does
    return build(database_url, tmp_path, template=migrated_sqlite_template,
                 auth_failures_per_minute=10_000)  # fmt: skip


def _entries(h: Any, action: str) -> list[dict[str, Any]]:
    with unit_of_work(h.factory) as session:
        return entries(session, action)  # type: ignore[return-value]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_spray_of_bad_tokens_leaves_a_bounded_number_of_entries(h: Any) -> None:
    sprayed = [TOKEN_PREFIX + secrets.token_urlsafe(32) for _ in range(100)]
    for token in sprayed:
        assert h.client.get("/v1/residents", headers=_bearer(token)).status_code == 401
    denied = _entries(h, "auth.denied")
    assert len(denied) == AUDITED_PER_MINUTE < len(sprayed)
    keyring = h.app.state.keyring
    assert [e["details"]["token.ref"] for e in denied] == [
        token_reference(keyring, t) for t in sprayed[:AUDITED_PER_MINUTE]]
    first = denied[0]
    assert first["actor"] == {"id": "unauthenticated", "role": "system"}
    assert first["outcome"] == {"result": "denied", "reason": "unknown"}
    assert first["details"]["route"] == "v1/residents"
    assert [e["details"]["window.denials"] for e in denied] == list(
        range(1, AUDITED_PER_MINUTE + 1))
    blob = json.dumps(denied)
    for token in sprayed:  # neither the token nor its stored hash
        assert token not in blob and hash_token(token) not in blob
        assert token[len(TOKEN_PREFIX):][:16] not in blob

    # the next minute: one token sent 20 times is one entry; no header at all is one more
    h.clock.advance(timedelta(minutes=1))
    for _ in range(20):
        assert h.client.get("/v1/residents", headers=_bearer(sprayed[0])).status_code == 401
        assert h.client.get("/v1/residents").status_code == 401
    later = _entries(h, "auth.denied")[AUDITED_PER_MINUTE:]
    assert [e["outcome"]["reason"] for e in later] == ["unknown", "missing"]
    assert "token.ref" not in later[1]["details"]


def test_the_bound_is_shared_through_the_database(h: Any, database_url: str) -> None:
    """Two processes (two apps over one database) share the per-token bound."""
    settings = h.app.state.settings
    other = create_app(settings, session_factory=make_session_factory(make_engine(database_url)),
                       keyring=h.app.state.keyring, clock=h.clock, audit_probe=lambda: True)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    for app in (h.app, other, h.app, other):
        with TestClient(app) as client:
            assert client.get("/v1/session", headers=_bearer(token)).status_code == 401
    assert len(_entries(h, "auth.denied")) == 1


def test_a_cadre_on_an_admin_route_leaves_a_403_entry(h: Any) -> None:
    cadre = _bearer(h.tokens["community_cadre"])
    r = h.client.post("/v1/contractors", headers=cadre, json={"name": "某服务机构"})
    assert r.status_code == 403
    r = h.client.get("/v1/audit/entries", headers=cadre)
    assert r.status_code == 403
    # a flow's refusal (exact figures are the office admin's): audited by the error mapping
    r = h.client.get("/v1/statistics/residents", headers=cadre,
                     params={"exact": "true", "reason": "settlement", "by": "community"})
    assert r.status_code == 403, r.text
    denied = _entries(h, "access.denied")
    assert [(e["details"]["route"], e["outcome"]["reason"]) for e in denied] == [
        ("v1/contractors", "role_not_permitted"),
        ("v1/audit/entries", "role_not_permitted"),
        ("v1/statistics/:table", "not_permitted")]
    with unit_of_work(h.factory) as session:
        cadre_id = session.query(m.Principal.id).filter_by(name="p-community_cadre").scalar()
    assert {e["actor"]["id"] for e in denied} == {cadre_id}
    assert {e["actor"]["role"] for e in denied} == {"community_cadre"}
    assert h.tokens["community_cadre"] not in json.dumps(denied)


def test_refused_service_record_posts_are_audited(h: Any) -> None:
    contractor = {**_bearer(h.tokens["contractor"]), "Idempotency-Key": "refused-0001"}
    url = "/v1/cases/no-such-case/service-records"
    body = {"service": "home_visit", "delivered_at": "2026-03-01T08:00:00+08:00"}
    assert h.client.post(url, headers=contractor, json=body).status_code == 404
    future = {**body, "delivered_at": "2027-03-01T08:00:00+08:00"}
    assert h.client.post(url, headers=contractor, json=future).status_code == 422
    refused = [e for e in _entries(h, "service.record")
               if e["outcome"]["result"] == "denied"]  # fmt: skip
    assert [e["outcome"]["reason"] for e in refused] == ["case_not_found", "invalid_input"]
    assert refused[1]["details"]["refused.fields"] == ["delivered_at"]


def test_the_consoles_refusals_are_audited_too(database_url: str, tmp_path: Path,
                                               migrated_sqlite_template: Path) -> None:  # fmt: skip
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    assert client.get("/console/contractors").status_code == 403  # the office admin's page
    refused = client.post("/console/residents/lookup", data={"csrf_token": csrf + "x",
                                                             "national_id": "1"})
    assert refused.status_code == 403
    denied = _entries(harness, "access.denied")
    assert [(e["details"]["route"], e["outcome"]["reason"]) for e in denied] == [
        ("console/contractors", "role_not_permitted"),
        ("console/residents/lookup", "csrf_refused")]
    assert {e["actor"]["id"] for e in denied} == {world.ids["community_cadre"]}


def test_the_demo_seed_is_audited_as_an_import_by_the_system(h: Any) -> None:
    """`exchange dev` seeds an empty database with the demo ledger: an import like any other,
    audited under the CLI's system actor (CLI imports name their principal with --as)."""
    from exchange.cli.dev import load_demo_if_empty

    with unit_of_work(h.factory) as session:
        load_demo_if_empty(session, h.app.state.keyring, lambda _: None)
    (entry,) = _entries(h, "resident.import")
    assert entry["actor"] == {"id": "exchange-cli", "role": "system"}
    assert entry["details"]["file.format"] == "synthetic"
    assert entry["details"]["rows.inserted"] == 200
