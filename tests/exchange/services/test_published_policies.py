"""An office publishes a policy version and moves an agreement to it, with no code change:
checked, compared, confirmed when it widens, stored by hash, audited, fetched by auditors,
and what the contractor's feed then cites and discloses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from audit.store import tables as audit_tables
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.services import agreement_policies
from exchange.services import published_policies as store
from exchange.services.errors import Conflict, InvalidInput
from policies import parse_policy, shipped_policy
from policies.shipped import SHIPPED_DIR
from tests.exchange.services.test_office_flows import consented_assignment, feed, new_agreement
from tests.world import NOW, Office, World, bearer

pytestmark = pytest.mark.db

SHIPPED_TEXT = (SHIPPED_DIR / "home_visit.toml").read_text(encoding="utf-8")
# v2 narrows: the masked phone is no longer sent to case lists
NARROWER = SHIPPED_TEXT.replace("version = 1", "version = 2", 1).replace(
    '[fields.phone_masked]\nsource = "resident.phone"\ntransform = "phone_masked"',
    '[fields.phone_masked]\nsource = "resident.phone"\ntransform = "drop"',
)
# v3 widens: the full phone no longer waits for a booked visit
WIDER = NARROWER.replace("version = 2", "version = 3", 1).replace(
    "when = { visit_booked_within_days = 7 }\n", "", 1
)


def _acting(session: Session, name: str) -> Acting:
    row = session.scalars(select(m.Principal).where(m.Principal.name == name)).one()
    return Acting(Identity.from_row(row), NOW)


def _entries(factory: sessionmaker[Session], action: str) -> list[dict[str, Any]]:
    with factory() as s:
        docs = [json.loads(bytes(e)) for e in s.scalars(
            select(audit_tables.entries.c.entry).order_by(audit_tables.entries.c.idx))]  # fmt: skip
    return [d for d in docs if d["action"] == action]


@pytest.fixture
def initialised(world: World, office: Office) -> World:
    with unit_of_work(world.factory) as s:  # what `exchange admin init` publishes
        assert len(store.ensure_defaults(s, NOW)) == 3
    with unit_of_work(world.factory) as s:
        assert store.ensure_defaults(s, NOW) == []  # once
    return world


def test_publish_checks_compares_confirms_and_audits(initialised: World) -> None:
    factory = initialised.factory
    with unit_of_work(factory) as s:
        shipped = store.propose(s, SHIPPED_TEXT, "home_visit.toml")
        assert shipped.already_published
        assert store.publish(s, _acting(s, "t-admin"), shipped) is None

        narrower = store.propose(s, NARROWER, "home_visit_v2.toml")
        assert narrower.in_force is not None and not narrower.widens
        assert narrower.in_force.identity == shipped_policy("home_visit").identity
        assert [str(c) for c in narrower.changes] == ["- phone_masked: no longer disclosed (drop)"]
        with pytest.raises(store.PublishForbidden):
            store.publish(s, _acting(s, "t-cadre"), narrower)
        store.publish(s, _acting(s, "t-admin"), narrower)

    with unit_of_work(factory) as s:
        wider = store.propose(s, WIDER, "home_visit_v3.toml")
        assert wider.in_force is not None and wider.in_force.version == 2 and wider.widens
        with pytest.raises(store.WideningNotConfirmed):
            store.publish(s, _acting(s, "t-admin"), wider)
        index = store.publish(s, _acting(s, "t-admin"), wider, confirm_widening=True)
        assert index is not None

    with unit_of_work(factory) as s:
        for bad, error in ((NARROWER, Conflict),  # published: a new document needs v4
                           (WIDER.replace("version = 3", "version = 2"), Conflict),
                           (WIDER.replace("version = 3", "version = 4")
                            .replace('purpose = "home_visit"', 'purpose = "online_guidance"'),
                            InvalidInput),
                           (WIDER.replace('transform = "surname_title"',
                                          'transform = "full_name"'), InvalidInput)):  # fmt: skip
            if bad == NARROWER:
                assert store.propose(s, bad).already_published  # same hash: nothing to do
                continue
            with pytest.raises(error):
                store.propose(s, bad)
        versions = sorted(p.version for p in store.published_set(s) if p.id == "cy1000.home_visit")
        assert versions == [1, 2, 3]

    published = _entries(factory, "policy.publish")
    assert [e["actor"]["role"] for e in published] == ["system"] * 3 + ["office_admin"] * 2
    assert published[-1]["policy"]["version"] == "3"
    assert published[-1]["details"] == {"policy.changes": 1, "policy.origin": "office",
                                        "policy.previous_version": 2, "policy.widens": True}


def test_published_versions_are_write_once(initialised: World) -> None:
    engine = initialised.factory.kw["bind"]
    for statement in ("UPDATE published_policies SET document = 'x'",
                      "DELETE FROM published_policies"):  # fmt: skip
        with pytest.raises(DBAPIError, match="write-once"), engine.begin() as conn:
            conn.execute(text(statement))


def test_an_agreement_moves_and_the_feed_follows(
    api: TestClient, office: Office, initialised: World
) -> None:
    world = initialised
    c = world.contractor()
    aid = new_agreement(api, office, c.id, ref="CY-PUB-1")
    consented_assignment(api, office, world.resident(phone="13900000011"), c.id, aid)
    before = [i for i in feed(api, bearer(c))["items"] if i["type"] == "case"]
    v1 = shipped_policy("home_visit").identity
    assert before and all(i["policy"]["sha256"] == v1.sha256 for i in before)
    assert all("phone_masked" in i["fields"] for i in before)

    with unit_of_work(world.factory) as s:
        store.publish(s, _acting(s, "t-admin"), store.propose(s, NARROWER))
    cursor = feed(api, bearer(c))["next_cursor"]
    assert feed(api, bearer(c), cursor)["items"] == []  # published, not applied: nothing moves

    with unit_of_work(world.factory) as s:
        proposal = agreement_policies.propose_move(s, "CY-PUB-1", "home_visit")
        assert proposal.target.version == 2 and not proposal.widens
        agreement_policies.move(s, _acting(s, "t-admin"), proposal)
    after = [i for i in feed(api, bearer(c), cursor)["items"] if i["type"] == "case"]
    v2 = parse_policy(NARROWER).identity
    assert len(after) == len(before)  # the contractor receives every case again
    assert all(i["policy"] == {"id": v2.id, "version": 2, "sha256": v2.sha256} for i in after)
    assert all("phone_masked" not in i["fields"] for i in after)

    [moved] = _entries(world.factory, "agreement.policy_move")
    assert moved["agreement"] == aid and moved["purpose"] == "home_visit"
    assert moved["policy"] == {"digest": v2.sha256, "id": v2.id, "version": "2"}
    assert moved["details"] == {"cases.announced": 1, "policy.previous_version": 1,
                                "policy.widens": False}  # fmt: skip
    with unit_of_work(world.factory) as s, pytest.raises(Conflict, match="already on"):
        agreement_policies.propose_move(s, "CY-PUB-1", "home_visit")

    # an auditor fetches exactly the version a feed item cites, and it hashes to that
    listed = api.get("/v1/policies", headers=office.auditor).json()["items"]
    assert {(p["id"], p["version"]) for p in listed} >= {(v2.id, 1), (v2.id, 2)}
    on_v2 = next(p for p in listed if p["sha256"] == v2.sha256)
    assert on_v2["agreements"] == [{"reference": "CY-PUB-1", "purpose": "home_visit"}]
    got = api.get(f"/v1/policies/{v2.sha256}", headers=office.auditor)
    assert got.status_code == 200
    assert parse_policy(got.json()["document"]).identity == v2
    assert api.get(f"/v1/policies/{'0' * 64}", headers=office.auditor).status_code == 404
    assert api.get(f"/v1/policies/{v2.sha256}", headers=office.cadre).status_code == 403


def test_a_widening_move_needs_confirming(api: TestClient, office: Office,
                                          initialised: World) -> None:  # fmt: skip
    c = initialised.contractor()
    new_agreement(api, office, c.id, ref="CY-PUB-2")
    with unit_of_work(initialised.factory) as s:
        admin = _acting(s, "t-admin")
        store.publish(s, admin, store.propose(s, NARROWER))
        store.publish(s, admin, store.propose(s, WIDER), confirm_widening=True)
    with unit_of_work(initialised.factory) as s:
        proposal = agreement_policies.propose_move(s, "CY-PUB-2", "home_visit",
                                                   "cy1000.home_visit@3")  # fmt: skip
        assert proposal.widens  # v1 -> v3: the phone no longer waits for a booked visit
        with pytest.raises(store.WideningNotConfirmed):
            agreement_policies.move(s, _acting(s, "t-admin"), proposal)
        with pytest.raises(InvalidInput):
            agreement_policies.propose_move(s, "CY-PUB-2", "home_visit",
                                            "cy1000.online_guidance")  # fmt: skip


def test_an_altered_document_is_never_served(initialised: World) -> None:
    """The owner can drop the write-once triggers; the hash still gives the change away."""
    engine = initialised.factory.kw["bind"]
    v1 = shipped_policy("home_visit").identity
    drops = (["DROP TRIGGER published_policies_write_once ON published_policies"]
             if engine.dialect.name == "postgresql"
             else ["DROP TRIGGER published_policies_no_update"])  # fmt: skip
    with engine.begin() as conn:
        for statement in drops:
            conn.execute(text(statement))
        conn.execute(text("UPDATE published_policies SET document = replace(document, "
                          "'visit_booked_within_days = 7', 'visit_booked_within_days = 70') "
                          "WHERE sha256 = :sha"), {"sha": v1.sha256})  # fmt: skip
    with unit_of_work(initialised.factory) as s, pytest.raises(store.PublishedPolicyCorrupt):
        store.by_hash(s, v1.sha256)
