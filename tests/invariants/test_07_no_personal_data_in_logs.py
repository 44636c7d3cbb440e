"""Invariant 7, no personal data in logs, errors, metrics or audit entries — end to end.

One broker, logging at DEBUG, runs the whole demo flow: a ledger import on the command line
(with bad rows), contractor keys, agreements, consents, assignments, pulls by both contractors
(sealed fields opened), a service record whose notes carry a phone number, hostile requests
that put personal values in bodies and query strings, a withdrawal, a revocation, an erasure,
tombstone acknowledgements, auditor reads and proofs, the disclosure report and the audit
export and offline verification. Every log line, every error body, /metrics, every audit entry
and the export are then scanned for each synthetic personal value (raw and URL-decoded).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from exchange.ledger.synthetic import HEADER, write_ledger
from tests.invariants.harness import (
    EXCHANGE_CLI,
    METRICS_TOKEN,
    REPO,
    Home,
    LiveServer,
    audit_entries,
    build_world,
    export_and_verify,
    ledger_rows,
    personal_values,
    pull_opened,
    scan,
)
from tests.world import ALL_SCOPES, consent_body

pytestmark = pytest.mark.slow


class Recorder:
    """httpx event hook keeping every non-2xx response body (the error bodies)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, response: httpx.Response) -> None:
        if response.status_code >= 300:
            response.read()
            # the body only: the request line is the client's own input, not the broker's output
            self.errors.append(f"{response.status_code} {response.text}")


def run_cli(home: Home, *args: str) -> str:
    done = subprocess.run([*EXCHANGE_CLI, *args], cwd=REPO, env=home.env(), capture_output=True,
                          timeout=90, check=False)  # fmt: skip
    return f"$ exchange {args[0]} -> {done.returncode}\n{done.stdout.decode()}{done.stderr.decode()}"  # noqa: E501


def test_full_flow_leaks_nothing(private_home: Home, tmp_path: Path) -> None:
    from datetime import date

    home = private_home
    rows = ledger_rows()
    # a second, CLI-imported ledger with bad rows (their values must not be echoed either)
    extra = tmp_path / "ledger.csv"
    write_ledger(extra, 30, 4242, bad_rows=8, as_of=date.today())
    import csv

    with extra.open(encoding="utf-8-sig") as fh:
        extra_rows = [tuple(r) for r in list(csv.reader(fh))[1:]]
    assert len(extra_rows[0]) == len(HEADER)
    values = personal_values(rows + extra_rows)
    outputs = [run_cli(home, "import", "residents", str(extra), "--partial", "--as",
                       "demo-office-admin")]
    # all-or-nothing, as a cadre (rows of other communities are refused too)
    outputs.append(run_cli(home, "import", "residents", str(extra), "--as", "demo-cadre"))

    recorder = Recorder()
    server = LiveServer(home).start()
    try:
        world = build_world(server, home.tokens, per_contractor=5, unassigned=2)
        t = home.tokens
        h = {k: {"Authorization": f"Bearer {v}"} for k, v in t.items()}
        a, b = world.side("contractor"), world.side("contractor_b")
        name, nid, phone = rows[0][0], rows[0][1], rows[0][2]
        with httpx.Client(base_url=server.base, timeout=30,
                          event_hooks={"response": [recorder]}) as api:  # fmt: skip
            opened = pull_opened(api, a) + pull_opened(api, b)
            assert any(i.get("opened") for i in opened)
            first = next(i for i in opened if i["type"] == "case")
            ref = first["case_reference"]
            assert api.get(f"/v1/cases/{ref}", params={"purpose": "home_visit"},
                           headers=a.headers).status_code == 200  # fmt: skip
            api.get(f"/v1/cases/{ref}", params={"purpose": "home_visit"}, headers=b.headers)
            r = api.post(f"/v1/cases/{ref}/service-records", headers={**a.headers,
                         "Idempotency-Key": "leak-scan-0001"}, json={
                "service": "mid_pregnancy", "delivered_at": "2026-03-11T02:00:00Z",
                "notes": f"called {phone}, {name} was out"})  # fmt: skip
            assert r.status_code in (200, 201), r.text
            # hostile requests carrying personal values in bodies, paths and query strings
            api.post("/v1/residents", headers=h["community_cadre"], json={
                "name": name, "national_id": nid, "phone": "12" + phone[2:],
                "community": "民城路社区", "stage": "pregnant"})
            api.post("/v1/residents", headers=h["community_cadre"], json={
                "name": name, "national_id": nid[:-1] + ("0" if nid[-1] != "0" else "1"),
                "phone": phone, "community": "民城路社区", "stage": "孕期"})
            api.post("/v1/residents", headers=h["community_cadre"], content=f'{{"name": "{name}"')
            api.get(f"/v1/residents/{nid}", headers=h["community_cadre"])
            api.get(f"/v1/cases/{phone}", params={"purpose": "home_visit"}, headers=a.headers)
            api.get("/v1/audit/entries", params={"pseudonym": phone}, headers=h["auditor"])
            api.get("/v1/cases", params={"purpose": "home_visit", "cursor": nid},
                    headers=a.headers)  # fmt: skip
            api.get("/v1/session", headers={"Authorization": f"Bearer {nid}"})
            api.post(f"/v1/residents/{world.unassigned[0]}/consents", headers=h["community_cadre"],
                     json={**consent_body(ALL_SCOPES, a.agreement_id), "method": name})
            # withdrawal, revocation, erasure; contractors sync and acknowledge
            rid_w, rid_r = list(a.assigned)[1], list(a.assigned)[2]
            r = api.post(f"/v1/residents/{rid_w}/consents/withdraw", headers=h["community_cadre"],
                         json=consent_body(["service_contact"], a.agreement_id))
            assert r.status_code == 201, r.text
            assert api.post(f"/v1/assignments/{a.assigned[rid_r]}/revoke",
                            headers=h["community_cadre"]).status_code == 200  # fmt: skip
            rid_e = list(b.assigned)[0]
            r = api.post(f"/v1/residents/{rid_e}/erase", headers=h["office_admin"])
            assert r.status_code == 200, r.text
            for side in (a, b):
                for item in pull_opened(api, side):
                    if item["type"] == "tombstone":
                        api.post(f"/v1/tombstones/{item['case_reference']}/ack",
                                 headers=side.headers)  # fmt: skip
            # office reads and the auditor
            api.get(f"/v1/residents/{rid_w}/disclosures", headers=h["office_admin"])
            api.get(f"/v1/assignments/{a.assigned[list(a.assigned)[0]]}/service-records",
                    headers=h["community_cadre"])  # fmt: skip
            entries = audit_entries(api, t["auditor"])
            cp = api.get("/v1/audit/checkpoint", headers=h["auditor"]).text
            api.get("/v1/audit/proofs/inclusion", params={"index": 0, "tree_size": 2},
                    headers=h["auditor"])  # fmt: skip
            api.get("/v1/audit/proofs/consistency", params={"first": 1, "second": 2},
                    headers=h["auditor"])  # fmt: skip
            metrics = api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert metrics.status_code == 200
            metrics = metrics.text
            ready = api.get("/readyz").text
        export, verdict, count = export_and_verify(server, tmp_path)
        assert verdict.ok, verdict
        assert count >= len(entries)
        outputs.append(run_cli(home, "audit", "fsck", "--database-url", home.database_url))
    finally:
        server.stop()

    assert "http_requests" in metrics or "request" in metrics
    assert recorder.errors, "the hostile requests produced no error bodies to scan"
    corpus: dict[str, str] = {
        "logs": home.logs(),
        "cli": "\n".join(outputs),
        "error bodies": "\n".join(recorder.errors),
        "metrics": metrics + ready,
        "audit entries (API)": json.dumps(entries, ensure_ascii=False),
        "audit entries (decoded)": "\n".join(_decoded(e) for e in entries),
        "audit export": export,
        "checkpoint": cp,
    }
    assert len(corpus["logs"].splitlines()) > 50, "DEBUG logging produced almost nothing"
    leaks = {}
    for where, text in corpus.items():
        hits = scan(text, values) + scan(unquote_plus(text), values)
        if hits:
            leaks[where] = [(k, _context(text, v)) for k, v in sorted(set(hits))[:5]]
    assert leaks == {}, f"personal data found: {leaks}"


def _decoded(entry: dict[str, Any]) -> str:
    import base64

    raw = entry.get("entry_b64") or ""
    try:
        return base64.b64decode(raw).decode("utf-8", errors="replace") if raw else ""
    except ValueError:
        return ""


def _context(text: str, value: str) -> str:
    """Where a synthetic value was found (for the failure message)."""
    for candidate in (text, unquote_plus(text)):
        at = candidate.find(value)
        if at >= 0:
            return candidate[max(0, at - 100) : at + len(value) + 40].replace("\n", " | ")
    return value


def test_access_log_never_records_personal_values_sent_in_a_query_string(
    shared: tuple[LiveServer, Any],
) -> None:
    """A client may put a name in a free-text query parameter (a mistake, or a probe); the
    broker must not write it to its logs. The log scrubber masks ID and phone numbers in
    uvicorn's access line, but not names or address parts."""
    server, _ = shared
    rows = ledger_rows()
    name, compound = rows[3][0], rows[3][4] + rows[3][5]
    auditor = {"Authorization": f"Bearer {server.home.tokens['auditor']}"}
    cadre = {"Authorization": f"Bearer {server.home.tokens['community_cadre']}"}
    with server.client() as api:
        api.get("/v1/audit/entries", params={"actor": name}, headers=auditor)
        api.get("/v1/residents", params={"community": compound}, headers=cadre)
        api.get("/v1/cases", params={"purpose": name}, headers=auditor)
    logs = server.home.logs()
    values = {name: "name", compound: "address"}
    hits = scan(logs, values) + scan(unquote_plus(logs), values)
    assert hits == [], [(k, _context(logs, v)) for k, v in hits]
