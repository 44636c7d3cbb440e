"""Invariant 10, isolation, over HTTP: a contractor can never see, guess or infer another
contractor's cases or any unassigned resident — a foreign reference answers exactly like a
nonexistent one (status, problem type, title, detail, members), on every contractor endpoint."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from exchange.bootstrap import load_keyring
from exchange.settings import Settings
from tests.invariants.harness import LiveServer, pull_all
from tests.world import ContractorHandle, Programme

pytestmark = pytest.mark.slow

VOLATILE = {"instance", "request_id"}


def shape(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return response.status_code, response.headers.get("content-type", ""), body


def probes(api: httpx.Client, side: ContractorHandle, ref: str) -> list[tuple[int, str, Any]]:
    """Every contractor endpoint that takes a case reference, called with `ref`."""
    from urllib.parse import quote

    q = quote(ref, safe="")
    return [
        shape(api.get(f"/v1/cases/{q}", params={"purpose": p}, headers=side.headers))
        for p in ("home_visit", "online_guidance")
    ] + [
        shape(api.post(f"/v1/cases/{q}/service-records",
                       headers={**side.headers, "Idempotency-Key": "iso-" + secrets.token_hex(6)},
                       json={"service": "mid_pregnancy", "delivered_at": "2026-03-11T02:00:00Z"})),
        shape(api.post(f"/v1/tombstones/{q}/ack", headers=side.headers)),
    ]  # fmt: skip


def test_foreign_random_and_unassigned_references_look_nonexistent(
    shared: tuple[LiveServer, Programme],
) -> None:
    server, world = shared
    keyring = load_keyring(Settings(home=Path(server.home.path)))
    a, b = world.side("contractor"), world.side("contractor_b")
    foreign = [keyring.case_reference(b.agreement_id, rid) for rid in b.assigned]
    cross = [keyring.case_reference(b.agreement_id, rid) for rid in a.assigned]  # A's residents
    mine_elsewhere = [keyring.case_reference(a.agreement_id, rid) for rid in b.assigned]
    unassigned = [keyring.case_reference(a.agreement_id, rid) for rid in world.unassigned]
    unassigned += [keyring.case_reference(a.agreement_id, rid)
                   for rid in world.residents[-3:]]  # never consented either  # fmt: skip
    random_refs = [secrets.token_urlsafe(15) for _ in range(3)] + ["x", "0" * 128, "%00"]
    with server.client() as api:
        baseline = probes(api, a, "no-such-case-" + secrets.token_hex(4))
        assert all(status == 404 for status, _, _ in baseline), baseline
        for label, refs in (("foreign", foreign), ("cross", cross),
                            ("other agreement", mine_elsewhere), ("unassigned", unassigned),
                            ("random", random_refs)):  # fmt: skip
            for ref in refs:
                assert probes(api, a, ref) == baseline, (label, ref)
        # and from the other side
        baseline_b = probes(api, b, "no-such-case-" + secrets.token_hex(4))
        for ref in [keyring.case_reference(a.agreement_id, rid) for rid in a.assigned]:
            assert probes(api, b, ref) == baseline_b
        # a's own case does answer (so the probes above would have seen a leak)
        own = keyring.case_reference(a.agreement_id, next(iter(a.assigned)))
        assert api.get(f"/v1/cases/{own}", params={"purpose": "home_visit"},
                       headers=a.headers).status_code == 200  # fmt: skip


def test_feed_holds_only_own_references(shared: tuple[LiveServer, Programme]) -> None:
    server, world = shared
    keyring = load_keyring(Settings(home=Path(server.home.path)))
    with server.client() as api:
        for me, other in (("contractor", "contractor_b"), ("contractor_b", "contractor")):
            items, _ = pull_all(api, world.side(me).headers)
            seen = {i["case_reference"] for i in items}
            assert seen, me
            mine = world.side(me)
            allowed = {keyring.case_reference(mine.agreement_id, rid) for rid in mine.assigned}
            assert seen <= allowed
            assert {i["agreement"] for i in items} == {mine.agreement_id}
            theirs = world.side(other)
            assert seen.isdisjoint(
                keyring.case_reference(theirs.agreement_id, rid) for rid in theirs.assigned
            )


def test_cursor_of_another_contractor_reveals_nothing(shared: tuple[LiveServer, Programme]) -> None:
    """A cursor is only a position: B replaying A's cursor still gets only B's cases."""
    server, world = shared
    a, b = world.side("contractor"), world.side("contractor_b")
    with server.client() as api:
        _, a_cursor = pull_all(api, a.headers)
        items, _ = pull_all(api, b.headers, cursor=None)
        replay = api.get("/v1/cases", params={"purpose": "home_visit", "cursor": a_cursor},
                         headers=b.headers)  # fmt: skip
        assert replay.status_code == 200
        refs = {i["case_reference"] for i in replay.json()["items"]}
        assert refs <= {i["case_reference"] for i in items}
