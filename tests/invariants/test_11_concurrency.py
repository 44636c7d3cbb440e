"""Invariant 8 under concurrency (and the audit log's total order, invariant 4).

16 contractor clients pull (and read single cases) while the office revokes assignments and
residents withdraw consent, for a bounded time, on SQLite and PostgreSQL. Afterwards:

- no case was served by a request that started after its revocation had committed (the
  office's HTTP answer returned), judged on the clients' own clocks;
- the server's order agrees: every disclosure of a case logged at an audit index after the
  case's tombstone entry belongs to a request that was already running before the revocation
  answered (a read that raced the revocation, never a later one);
- audit indexes are gap-free with no duplicates, and the exported log verifies.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from exchange.bootstrap import load_keyring
from exchange.settings import Settings
from tests.invariants.harness import (
    Home,
    LiveServer,
    build_world,
    copy_home,
    export_and_verify,
    parse_export,
    prepare_home,
)
from tests.world import ContractorHandle, consent_body

pytestmark = [pytest.mark.db, pytest.mark.slow]

CLIENTS = 16
MIN_REVOCATIONS = 6
SECONDS = 8.0


@dataclass
class Served:
    request_id: str
    started: float
    refs: list[str]


@dataclass
class Log:
    served: list[Served] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, started: float, response: httpx.Response, refs: list[str]) -> None:
        with self.lock:
            self.statuses.append(response.status_code)
            if response.status_code == 200 and refs:
                self.served.append(Served(response.headers["x-request-id"], started, refs))


def client_loop(base: str, side: ContractorHandle, refs: list[str], stop: threading.Event,
                log: Log) -> None:  # fmt: skip
    with httpx.Client(base_url=base, headers=side.headers, timeout=30) as api:
        n = 0
        while not stop.is_set():
            cursor = None
            while not stop.is_set():
                params: dict[str, Any] = {"purpose": "home_visit", "limit": 4}
                if cursor:
                    params["cursor"] = cursor
                started = time.monotonic()
                r = api.get("/v1/cases", params=params)
                body = r.json() if r.status_code == 200 else {}
                log.add(started, r, [i["case_reference"] for i in body.get("items", [])
                                     if i["type"] == "case"])  # fmt: skip
                if r.status_code != 200 or not body["has_more"]:
                    break
                cursor = body["next_cursor"]
            ref = refs[n % len(refs)]
            n += 1
            started = time.monotonic()
            r = api.get(f"/v1/cases/{ref}", params={"purpose": "home_visit"})
            log.add(started, r, [ref] if r.status_code == 200 else [])


def test_no_case_served_after_its_revocation_committed(
    database_url: str, template_home: Home, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        home = copy_home(template_home, tmp_path / "home")
    else:
        home = prepare_home(tmp_path / "home", database_url)
    server = LiveServer(home).start()
    try:
        world = build_world(server, home.tokens, per_contractor=8, unassigned=0)
        keyring = load_keyring(Settings(home=home.path, database_url=home.database_url))
        ref_of = {}
        for side in world.contractors.values():
            for rid, aid in side.assigned.items():
                ref_of[aid] = (rid, side, keyring.case_reference(side.agreement_id, rid))
        stop, log = threading.Event(), Log()
        threads = []
        for n in range(CLIENTS):
            side = list(world.contractors.values())[n % 2]
            refs = [ref for (_, s, ref) in ref_of.values() if s is side]
            threads.append(threading.Thread(target=client_loop,
                                            args=(server.base, side, refs, stop, log)))
        for t in threads:
            t.start()
        revoked_at: dict[str, float] = {}  # case reference -> when the office's answer came back
        cadre = {"Authorization": f"Bearer {home.tokens['community_cadre']}"}
        deadline = time.monotonic() + SECONDS
        victims = list(ref_of.items())[::2] + list(ref_of.items())[1::4]  # most, both sides
        with server.client() as office:
            time.sleep(0.5)
            for k, (aid, (rid, side, ref)) in enumerate(victims):
                # at least MIN_REVOCATIONS however slow a loaded machine is; more while time lasts
                if time.monotonic() > deadline and len(revoked_at) >= MIN_REVOCATIONS:
                    break
                if k % 2:
                    r = office.post(f"/v1/residents/{rid}/consents/withdraw", headers=cadre,
                                    json=consent_body(["service_contact"], side.agreement_id))
                else:
                    r = office.post(f"/v1/assignments/{aid}/revoke", headers=cadre)
                assert r.status_code in (200, 201), r.text
                revoked_at[ref] = time.monotonic()
                time.sleep(max(0.0, min(0.6, deadline - time.monotonic())))
        time.sleep(max(0.0, deadline - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(60)
        assert len(revoked_at) >= MIN_REVOCATIONS, "too few revocations to prove anything"
        assert sum(len(s.refs) for s in log.served) > 100, "too few cases served"
        assert 500 not in log.statuses, "a 500 under concurrency"

        late = [(s.request_id, ref) for s in log.served for ref in s.refs
                if ref in revoked_at and s.started > revoked_at[ref]]  # fmt: skip
        assert late == [], f"served after revocation committed: {late[:5]}"

        export, verdict, _ = export_and_verify(server, tmp_path)
        assert verdict.ok, verdict
    finally:
        server.stop()

    entries = parse_export(export)
    indexes = [i for i, _ in entries]
    assert indexes == list(range(len(indexes))), "gap or duplicate in the audit indexes"
    tombstone_index = {}
    for index, entry in entries:
        if entry["action"] == "case.tombstone":
            for s in entry["subjects"]:
                tombstone_index.setdefault(s["case"], index)
    started_by_request = {s.request_id: s.started for s in log.served}
    raced = 0
    for index, entry in entries:
        if entry["action"] != "case.disclose":
            continue
        for s in entry["subjects"]:
            ref = s["case"]
            if s.get("disclosed") and ref in tombstone_index and index > tombstone_index[ref]:
                # logged after the revocation: only a request already running may do that
                started = started_by_request.get(entry["request"])
                assert started is not None and started < revoked_at[ref], (
                    f"case {ref} disclosed at index {index} after its tombstone at "
                    f"{tombstone_index[ref]} by a request that started after the revocation"
                )
                raced += 1
    print(f"\n{len(log.served)} responses with cases, {len(revoked_at)} revocations, "
          f"{raced} disclosures raced a revocation, statuses {sorted(set(log.statuses))}")
