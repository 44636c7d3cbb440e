"""The auditor's HTTP API: checkpoints, verifier key, entries, proofs checked with audit's pure
verifier against the signed checkpoint, cosignatures, role denials, and what reading leaves."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from audit.checkpoint import ALG_COSIGNATURE_V1, Checkpoint, cosign, open_checkpoint
from audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from audit.note import Signer, Verifier
from tests.exchange.services.test_office_flows import consented_assignment, feed, new_agreement
from tests.world import Office, World, bearer

pytestmark = pytest.mark.db


def _populate(api: TestClient, office: Office, world: World) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id, ref=f"CY-{c.id[-12:]}")
    for i in range(3):
        consented_assignment(api, office, world.resident(phone=f"1390000001{i}"), c.id, aid)
    feed(api, bearer(c))


def _checkpoint(api: TestClient, office: Office) -> tuple[Checkpoint, str]:
    r = api.get("/v1/audit/checkpoint", headers=office.auditor)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    vkey = api.get("/v1/audit/vkey", headers=office.auditor).text.strip()
    cp, _ = open_checkpoint(r.text, Verifier.parse(vkey))
    return cp, r.text


def test_proofs_verify_against_signed_checkpoints(
    api: TestClient, office: Office, world: World
) -> None:
    _populate(api, office, world)
    first, _ = _checkpoint(api, office)
    _populate(api, office, world)
    second, _ = _checkpoint(api, office)
    assert second.size > first.size

    for index in (0, first.size // 2, first.size - 1):
        proof = api.get("/v1/audit/proofs/inclusion", headers=office.auditor,
                        params={"index": index, "tree_size": second.size}).json()  # fmt: skip
        entry = api.get("/v1/audit/entries", headers=office.auditor,
                        params={"after": index - 1, "limit": 1}).json()["items"][0]  # fmt: skip
        canonical = base64.b64decode(entry["entry_b64"])
        assert entry["index"] == index
        verify_inclusion(
            index,
            second.size,
            leaf_hash(canonical),
            [base64.b64decode(h) for h in proof["hashes"]],
            second.root,
        )
    proof = api.get("/v1/audit/proofs/consistency", headers=office.auditor,
                    params={"first": first.size, "second": second.size}).json()  # fmt: skip
    verify_consistency(
        first.size,
        second.size,
        first.root,
        second.root,
        [base64.b64decode(h) for h in proof["hashes"]],
    )

    # bad input is a 4xx problem, never a 500
    for params in ({"index": 5, "tree_size": 3}, {"index": 0, "tree_size": 10**9}):
        r = api.get("/v1/audit/proofs/inclusion", headers=office.auditor, params=params)
        assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith(
            "application/problem+json"
        )
    r = api.get(
        "/v1/audit/proofs/consistency", headers=office.auditor, params={"first": 9, "second": 3}
    )
    assert r.status_code == 422


def test_entries_filters_and_pagination(api: TestClient, office: Office, world: World) -> None:
    _populate(api, office, world)
    page = api.get("/v1/audit/entries", headers=office.auditor, params={"limit": 2}).json()
    assert [i["index"] for i in page["items"]] == [0, 1] and page["next_after"] == 1
    nxt = api.get("/v1/audit/entries", headers=office.auditor,
                  params={"limit": 2, "after": page["next_after"]}).json()  # fmt: skip
    assert [i["index"] for i in nxt["items"]] == [2, 3]
    disclosures = api.get("/v1/audit/entries", headers=office.auditor,
                          params={"action": "case.disclose"}).json()["items"]  # fmt: skip
    assert disclosures and {i["entry"]["action"] for i in disclosures} == {"case.disclose"}
    for item in disclosures:
        assert base64.b64decode(item["entry_b64"]).startswith(b'{"action":"case.disclose"')
    r = api.get("/v1/audit/entries", headers=office.auditor,
                params={"since": "2020-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z",
                        "outcome": "ok", "limit": 1000})  # fmt: skip
    assert r.status_code == 200 and r.json()["items"]
    assert api.get("/v1/audit/entries", headers=office.auditor,
                   params={"since": "yesterday"}).status_code == 422  # fmt: skip
    assert api.get("/v1/audit/entries", headers=office.auditor,
                   params={"action": "DROP TABLE"}).status_code == 422  # fmt: skip


def test_what_reading_the_log_leaves_in_it(api: TestClient, office: Office, world: World) -> None:
    """A checkpoint, the key and proofs leave nothing; a search leaves one entry, after it."""
    _populate(api, office, world)
    cp, note = _checkpoint(api, office)
    again = api.get("/v1/audit/checkpoint", headers=office.auditor).text
    assert again == note  # fetching a checkpoint does not move the head it signs
    for path, params in (("/v1/audit/vkey", {}),
                         ("/v1/audit/proofs/inclusion", {"index": 0, "tree_size": cp.size}),
                         ("/v1/audit/proofs/consistency", {"first": 1, "second": cp.size})):
        assert api.get(path, headers=office.auditor, params=params).status_code == 200, path
    assert _checkpoint(api, office)[1] == note

    # checkpoint, then the entries: the same tree
    page = api.get("/v1/audit/entries", headers=office.auditor, params={"limit": 1000}).json()
    assert page["tree_size"] == cp.size
    assert [i["index"] for i in page["items"]] == list(range(cp.size))

    # that search is recorded after it, at the old head, naming what it read
    later, _ = _checkpoint(api, office)
    assert later.size == cp.size + 1
    proof = api.get("/v1/audit/proofs/consistency", headers=office.auditor,
                    params={"first": cp.size, "second": later.size}).json()  # fmt: skip
    verify_consistency(cp.size, later.size, cp.root, later.root,
                       [base64.b64decode(h) for h in proof["hashes"]])  # fmt: skip
    [read] = api.get("/v1/audit/entries", headers=office.auditor,
                     params={"after": cp.size - 1, "action": "audit.read"}).json()["items"]
    assert read["index"] == cp.size
    assert read["entry"]["outcome"] == {"result": "ok", "reason": "audit.entries"}
    assert read["entry"]["details"] == {"read.items": cp.size, "read.tree_size": cp.size}

    # a search as of a kept checkpoint, while the log grows: still that checkpoint's tree
    _populate(api, office, world)
    pinned = api.get("/v1/audit/entries", headers=office.auditor,
                     params={"tree_size": cp.size, "action": "case.disclose"}).json()
    assert pinned["tree_size"] == cp.size
    assert pinned["items"] and all(i["index"] < cp.size for i in pinned["items"])
    last = api.get("/v1/audit/entries", headers=office.auditor,
                   params={"action": "audit.read", "after": later.size - 1}).json()["items"]
    assert last[-1]["entry"]["details"] == {"filter.action": "case.disclose",
                                            "read.items": len(pinned["items"]),
                                            "read.tree_size": cp.size}  # fmt: skip
    beyond = api.get("/v1/audit/entries", headers=office.auditor, params={"tree_size": 10**6})
    assert beyond.status_code == 404


def test_roles_and_cosignature(api: TestClient, office: Office, world: World) -> None:
    _populate(api, office, world)
    c = world.contractor()
    for headers in (office.cadre, bearer(c)):
        assert api.get("/v1/audit/entries", headers=headers).status_code == 403
        assert api.get("/v1/audit/proofs/inclusion", headers=headers,
                       params={"index": 0, "tree_size": 1}).status_code == 403  # fmt: skip
    assert api.get("/v1/audit/entries").status_code == 401

    cp, note = _checkpoint(api, office)
    witness = Signer(
        "witness.example/auditor", Ed25519PrivateKey.generate(), alg=ALG_COSIGNATURE_V1
    )
    witness_line = cosign(cp.body(), witness, int(time.time()))
    body = {"note": note + witness_line, "witness_vkey": witness.verifier.text()}
    r = api.post("/v1/audit/cosignatures", headers=office.auditor, json=body)
    assert r.status_code == 201, r.text
    assert witness.verifier.name in r.text
    assert api.post("/v1/audit/cosignatures", headers=office.admin, json=body).status_code == 403
    forged = {**body, "note": note}  # no witness line
    assert api.post("/v1/audit/cosignatures", headers=office.auditor,
                    json=forged).status_code == 422  # fmt: skip
