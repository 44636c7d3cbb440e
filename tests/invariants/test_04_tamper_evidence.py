"""Invariant 4, tamper evidence, against a real uvicorn subprocess.

`kill -9` the broker in the middle of concurrent pulls, restart it: every case a client
received has its audit entry (same request id, same case reference, disclosed), indexes are
gap-free and the exported log verifies offline against a signed checkpoint. Then an attacker
with database access: the append-only triggers refuse rewrites; with the triggers dropped, a
rewritten, deleted or reordered entry is caught by the verifier against the checkpoint the
auditor kept before.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.note import Verifier
from audit.verifier import verify_export
from tests.invariants.harness import (
    EXCHANGE_CLI,
    REPO,
    Home,
    LiveServer,
    build_world,
    export_and_verify,
    parse_export,
)

pytestmark = pytest.mark.slow

PULLERS = 8


def puller(base: str, token: str, stop: threading.Event, got: list[tuple[str, str]]) -> None:
    """Pull from the start, two items a page, again and again; record (request id, case ref)
    of every case received in a complete 200 response."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as api:  # fmt: skip
        while not stop.is_set():
            cursor = None
            while not stop.is_set():
                params: dict[str, Any] = {"purpose": "home_visit", "limit": 2}
                if cursor:
                    params["cursor"] = cursor
                try:
                    r = api.get("/v1/cases", params=params)
                    body = r.json()
                except (httpx.HTTPError, ValueError):
                    return  # the server died under us
                if r.status_code != 200:
                    break
                rid = r.headers["x-request-id"]
                got.extend((rid, i["case_reference"]) for i in body["items"] if i["type"] == "case")
                cursor = body["next_cursor"]
                if not body["has_more"]:
                    break


def test_kill_9_mid_pulls_loses_no_audit_entry_and_the_log_verifies(
    private_home: Home, tmp_path: Path
) -> None:
    server = LiveServer(private_home).start()
    try:
        world = build_world(server, private_home.tokens, per_contractor=6, unassigned=0)
        stop = threading.Event()
        got: list[tuple[str, str]] = []
        threads = [
            threading.Thread(target=puller, args=(server.base, side.token, stop, got))
            for n in range(PULLERS) for side in [list(world.contractors.values())[n % 2]]
        ]
        for t in threads:
            t.start()
        time.sleep(2.0)
        server.kill9()  # mid-flight: requests are in every state
        stop.set()
        for t in threads:
            t.join(15)
        assert len(got) > 20, "too few cases were served before the kill to prove anything"

        server.start()  # same home, same database
        export, verdict, count = export_and_verify(server, tmp_path)
        assert verdict.ok, verdict
        entries = parse_export(export)
        indexes = [i for i, _ in entries]
        assert indexes == list(range(len(indexes))), "gap or duplicate in the audit indexes"
        served = {}
        for index, entry in entries:
            if entry["action"] == "case.disclose" and entry.get("request"):
                for s in entry["subjects"]:
                    if s.get("disclosed"):
                        served[(entry["request"], s["case"])] = index
        missing = [pair for pair in got if pair not in served]
        assert missing == [], f"{len(missing)} served cases have no audit entry: {missing[:5]}"

        fsck = _cli(private_home, "audit", "fsck", "--database-url", private_home.database_url)
        assert fsck.startswith("0"), fsck

        # -- the attacker with database access ------------------------------------------------
        auditor = {"Authorization": f"Bearer {private_home.tokens['auditor']}"}
        with server.client() as api:
            kept = api.get("/v1/audit/checkpoint", headers=auditor).text
            vkey = Verifier.parse(api.get("/v1/audit/vkey", headers=auditor).text.strip())
    finally:
        server.stop()
    db = private_home.path / "exchange.db"
    with sqlite3.connect(db) as conn:
        for sql in ("UPDATE audit_entries SET entry = entry WHERE idx = 1",
                    "DELETE FROM audit_entries WHERE idx = 2"):  # fmt: skip
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)
    _attack_and_verify(private_home, db, kept, vkey, tmp_path)


def _cli(home: Home, *args: str) -> str:
    import subprocess

    done = subprocess.run([*EXCHANGE_CLI, *args], cwd=REPO, env=home.env(), capture_output=True,
                          timeout=60, check=False)  # fmt: skip
    return f"{done.returncode} {done.stdout.decode()} {done.stderr.decode()}"


def _export(home: Home, out: Path) -> list[bytes]:
    result = _cli(home, "audit", "export", "--out", str(out), "--database-url",
                  home.database_url)  # fmt: skip
    assert result.startswith("0"), result
    return out.read_bytes().splitlines(keepends=True)


def _attack_and_verify(home: Home, db: Path, kept: str, vkey: Verifier, tmp: Path) -> None:
    """With the append-only triggers dropped, rewrite one stored entry (keeping the stored
    leaf hash), and separately tamper with an honest export: every change is detected."""
    honest = _export(home, tmp / "honest.jsonl")
    assert verify_export(honest, vkey, since=kept).ok

    entry_lines = [n for n, line in enumerate(honest) if b'"index"' in line]
    drills = {
        "deleted": [line for n, line in enumerate(honest) if n != entry_lines[3]],
        "reordered": _swap(honest, entry_lines[3], entry_lines[4]),
        "truncated": honest[: entry_lines[5]],
        "inserted": honest[: entry_lines[4]] + [honest[entry_lines[2]]] + honest[entry_lines[4]:],
        "rewritten": _rewrite(honest, entry_lines[1]),
    }
    for name, lines in drills.items():
        assert not verify_export(lines, vkey, checkpoint=kept).ok, f"{name} export not detected"

    with sqlite3.connect(db) as conn:
        triggers = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit_entries'")]
        for t in triggers:
            conn.execute(f'DROP TRIGGER "{t}"')
        row = conn.execute("SELECT entry FROM audit_entries WHERE idx = 1").fetchone()
        doc = json.loads(bytes(row[0]))
        doc["action"] = "case.nothing_happened"
        forged = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = 1", (forged,))
    tampered = _export(home, tmp / "tampered.jsonl")
    assert not verify_export(tampered, vkey, checkpoint=kept).ok
    assert not verify_export(tampered, vkey, since=kept).ok


def _swap(lines: list[bytes], i: int, j: int) -> list[bytes]:
    out = list(lines)
    out[i], out[j] = out[j], out[i]
    return out


def _rewrite(lines: list[bytes], n: int) -> list[bytes]:
    out = list(lines)
    out[n] = out[n].replace(b'"case.', b'"cxse.', 1) if b'"case.' in out[n] else out[n].replace(
        b'"role":"', b'"role":"x', 1)
    assert out[n] != lines[n]
    return out
