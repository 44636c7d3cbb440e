"""Invariant 5, unlinkable pseudonyms, over HTTP: case references are stable per agreement,
differ between contractors, and are not an unkeyed hash of anything we hold."""

from __future__ import annotations

import hashlib

import pytest

from tests.invariants.harness import LiveServer, ledger_rows, pull_all
from tests.world import Programme

pytestmark = pytest.mark.slow


def test_references_stable_per_agreement_distinct_across_contractors(
    shared: tuple[LiveServer, Programme],
) -> None:
    server, world = shared
    with server.client() as api:
        a1 = {i["case_reference"] for i in pull_all(api, world.side("contractor").headers)[0]}
        a2 = {i["case_reference"] for i in pull_all(api, world.side("contractor").headers)[0]}
        b = {i["case_reference"] for i in pull_all(api, world.side("contractor_b").headers)[0]}
    assert a1 and a1 == a2
    assert a1.isdisjoint(b)
    unkeyed = set()
    for row in ledger_rows():
        for value in (row[1], row[0], row[2]):
            digest = hashlib.sha256(value.encode()).digest()
            unkeyed |= {digest.hex()[:20], digest.hex(), __import__("base64").urlsafe_b64encode(
                digest).decode().rstrip("=")[:20]}
    assert not (a1 | b) & unkeyed
    assert not any(ref in rid for ref in a1 | b for rid in world.residents)
