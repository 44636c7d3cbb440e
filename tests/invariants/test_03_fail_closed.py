"""Invariant 3, fail closed, against a real uvicorn subprocess.

- the audit append fails (a database trigger that raises on insert into the audit table):
  every read and write answers 503 problem details, returns no data and changes nothing;
- the database is unreachable (a PostgreSQL URL on a closed local port; a SQLite file in a
  directory that does not exist): 503 problem details, never a partial body;
- the keyring is missing, unreadable, corrupt or readable by others: the server refuses to
  start with one clear line (no traceback, no key material).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.invariants.harness import (
    Home,
    LiveServer,
    build_world,
    export_and_verify,
    free_port,
    pull_all,
)
from tests.world import ALL_SCOPES, consent_body

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
TRIGGER = ("CREATE TRIGGER inject_audit_failure BEFORE INSERT ON audit_entries "
           "BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END")  # fmt: skip


def audit_size(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("SELECT count(*) FROM audit_entries").fetchone()
    return int(n)


def assert_refused(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in (statuses or (503,)), (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == response.status_code
    assert not {"items", "case", "envelopes", "fields", "sealed", "id"} & set(body), body


def test_failed_audit_append_returns_nothing_and_changes_nothing(
    private_home: Home, tmp_path: Path
) -> None:
    db = private_home.path / "exchange.db"
    server = LiveServer(private_home).start()
    try:
        world = build_world(server, private_home.tokens, per_contractor=3, unassigned=1)
        a = world.side("contractor")
        cadre = {"Authorization": f"Bearer {private_home.tokens['community_cadre']}"}
        rid = next(iter(a.assigned))
        with server.client() as api:
            ref = pull_all(api, a.headers)[0][0]["case_reference"]
            with sqlite3.connect(db) as conn:
                conn.execute(TRIGGER)
            before = audit_size(db)
            assert_refused(api.get("/v1/cases", params={"purpose": "home_visit"},
                                   headers=a.headers))  # fmt: skip
            assert_refused(api.get(f"/v1/cases/{ref}", params={"purpose": "home_visit"},
                                   headers=a.headers))  # fmt: skip
            assert_refused(api.post(f"/v1/cases/{ref}/service-records",
                                    headers={**a.headers, "Idempotency-Key": "fail-closed-01"},
                                    json={"service": "mid_pregnancy",
                                          "delivered_at": "2026-03-11T02:00:00Z"}))  # fmt: skip
            assert_refused(api.post(f"/v1/residents/{rid}/consents/withdraw", headers=cadre,
                                    json=consent_body(["service_contact"], a.agreement_id)))
            assert_refused(api.post(f"/v1/assignments/{a.assigned[rid]}/revoke", headers=cadre))
            assert_refused(api.get("/v1/audit/entries", headers={
                "Authorization": f"Bearer {private_home.tokens['auditor']}"}))  # fmt: skip
            assert audit_size(db) == before
            with sqlite3.connect(db) as conn:
                conn.execute("DROP TRIGGER inject_audit_failure")
            # nothing changed: the case is still there, with no service record and no tombstone
            items, _ = pull_all(api, a.headers)
            assert ref in {i["case_reference"] for i in items if i["type"] == "case"}
            assert not [i for i in items if i["type"] == "tombstone"]
            history = api.get(f"/v1/residents/{rid}/consents", headers=cadre).json()
            assert "withdraw" not in str(history)
            records = api.get(f"/v1/assignments/{a.assigned[rid]}/service-records",
                              headers=cadre).json()  # fmt: skip
            assert not records.get("items"), records
            # the log is intact and verifies
            _, verdict, _ = export_and_verify(server, tmp_path)
            assert verdict.ok, verdict
    finally:
        server.stop()
    assert ALL_SCOPES  # the world above consented to every scope


@pytest.mark.parametrize("where", ["postgresql-closed-port", "sqlite-missing-directory"])
def test_unreachable_database_answers_503_problem_details(
    private_home: Home, tmp_path: Path, where: str
) -> None:
    if where == "postgresql-closed-port":
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"
    else:
        url = f"sqlite:///{tmp_path / 'gone' / 'exchange.db'}"
    server = LiveServer(private_home, EXCHANGE_DATABASE_URL=url).start()
    tokens = private_home.tokens
    try:
        with server.client() as api:
            assert api.get("/healthz").status_code == 200  # alive, not ready
            ready = api.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] != "ok"
            calls = [
                ("GET", "/v1/cases", {"purpose": "home_visit"}, "contractor"),
                ("GET", "/v1/cases/abc", {"purpose": "home_visit"}, "contractor"),
                ("GET", "/v1/residents", {}, "community_cadre"),
                ("GET", "/v1/audit/entries", {}, "auditor"),
                ("GET", "/v1/session", {}, "office_admin"),
                ("GET", "/v1/session", {}, None),
            ]
            for method, path, params, role in calls:
                headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
                r = api.request(method, path, params=params, headers=headers)
                if role is None:
                    assert r.status_code in (401, 503), r.text  # no credentials: either is fine
                    continue
                assert_refused(r)
                assert r.headers.get("retry-after"), "a 503 should say when to retry"
    finally:
        server.stop()


def _start_refused(home: Home, **env: str) -> str:
    server = LiveServer(home, **env).start(wait=False)
    code = server.wait_exit(30)
    out = server.output()
    assert code != 0, out
    assert "Traceback" not in out, out
    return out


KEYRING_FAULTS = ["readable-by-others", "corrupt", "a-directory", "missing", "dev-in-production"]


@pytest.mark.parametrize("fault", KEYRING_FAULTS)
def test_bad_keyring_refuses_start_with_one_clear_line(private_home: Home, fault: str) -> None:
    keyring = private_home.path / "keyring.json"
    secret = keyring.read_text()
    key_material = [v for v in secret.split('"') if len(v) >= 40][:3]
    env: dict[str, str] = {}
    expect = ["keyring"]
    if fault == "readable-by-others":
        os.chmod(keyring, 0o644)
        expect.append("chmod 600")
    elif fault == "corrupt":
        keyring.write_text("{ not json", encoding="utf-8")
    elif fault == "a-directory":  # unreadable as a file, even for root
        keyring.unlink()
        keyring.mkdir()
    elif fault == "missing":
        keyring.unlink()
        expect.append("does not exist")
    else:
        env = {"EXCHANGE_MODE": "production", "EXCHANGE_ALLOW_SQLITE_IN_PRODUCTION": "true"}
        expect = ["development keys"]
    out = _start_refused(private_home, **env)
    for word in expect:
        assert word in out, out
    for fragment in key_material:
        assert fragment not in out
