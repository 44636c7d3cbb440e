"""The disclosure path (services/disclosure): a fixed number of queries per page whatever its
size, and audit entries byte-for-byte what a subject built field by field encodes to."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from audit.entry import AuditEntry, Subject, Withheld, encode, encode_reference
from audit.store.tables import entries
from exchange.identity import CONTRACTOR, Acting, Identity
from exchange.services import auditing, disclosure
from exchange.services.errors import AuditUnavailable
from policies import shipped_policies
from tests.world import NOW, World, bearer

pytestmark = pytest.mark.db

ALL = ("service_contact", "pregnancy_health", "birth_health", "child_data")
PARAMS = {"purpose": "home_visit"}


def statements_of_a_pull(api: TestClient, session_factory: sessionmaker[Session], c) -> int:  # type: ignore[no-untyped-def]
    engine = session_factory.kw["bind"]
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = api.get("/v1/cases", params={**PARAMS, "limit": 50}, headers=bearer(c))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    return len(seen)


def test_a_page_costs_the_same_queries_for_2_cases_as_for_12(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    counts = []
    for size in (2, 12):
        c = world.contractor()
        agreement = world.agreement(c)
        for i in range(size):
            r = world.resident(phone=f"139123456{i:02d}", child_sex="F", child_birth=NOW.date())
            world.consent(r, ALL, guardian=True)
            world.assign(r, c, agreement, booking_in_days=i % 3)
        world.revoke(world.assign(world.resident(), c, world.agreement(c)))  # a tombstone
        counts.append(statements_of_a_pull(api, session_factory, c))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 14  # token, assignments, tombstones, 6 input queries, key, audit ...


def test_audit_entries_are_the_bytes_of_subjects_built_field_by_field(
    world: World, session_factory: sessionmaker[Session]
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    for i in range(4):
        r = world.resident(phone=f"1391234567{i}")
        world.consent(r, ALL[: 1 + i % 3])
        world.assign(r, c, agreement, booking_in_days=2 if i % 2 else None)
    policies = shipped_policies()
    acting = Acting(Identity(c.principal_id, "c", CONTRACTOR, "c", c.id), NOW, "req-1")
    with session_factory() as s:
        rows = disclosure.changed_cases(s, policies, "home_visit", c.id, 0, 10)
        loaded = disclosure.load(s, world.keyring, rows, policies.reads("home_visit"))
        cases = [x for x in loaded if isinstance(x, disclosure.CaseInputs)]
        evaluated = disclosure.evaluate(cases, "home_visit", NOW, policies)
    (lean,) = disclosure.audit_entries(world.keyring, acting, "home_visit", evaluated)

    plain_subjects = tuple(
        Subject(
            world.keyring.audit_pseudonym(e.case.resident_id),
            e.case.record.case_reference,
            tuple(d.field for d in e.evaluation.decisions if d.shared),
            tuple(Withheld(d.field, d.reason.value) for d in e.evaluation.decisions
                  if not d.shared),
            e.evaluation.consent_event_ids,
        )
        for e in evaluated
    )  # fmt: skip
    plain = AuditEntry(
        lean.time, lean.actor, lean.action, plain_subjects, lean.agreement, lean.purpose,
        lean.policy, request_id=lean.request_id,
    )  # fmt: skip
    assert len({s.disclosed for s in lean.subjects}) > 1  # several decision patterns
    assert lean == plain
    assert encode(3, lean) == encode(3, plain) == encode_reference(3, lean)


def test_the_feed_and_the_lookup_record_the_same_entry_for_one_case(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    world.assign(r, c, agreement, booking_in_days=1)
    feed = api.get("/v1/cases", params=PARAMS, headers=bearer(c)).json()["items"][0]
    ref = world.case_reference(agreement, r)
    one = api.get(f"/v1/cases/{ref}", params=PARAMS, headers=bearer(c)).json()["case"]
    assert {k: v for k, v in feed.items() if k != "sealed"} == {
        k: v for k, v in one.items() if k != "sealed"
    }
    assert feed["sealed"].keys() == one["sealed"].keys()
    with session_factory() as s:
        stored = s.scalars(select(entries.c.entry).order_by(entries.c.idx))
        pulled, looked_up = (json.loads(bytes(b)) for b in stored)
    for e in (pulled, looked_up):
        e.pop("index"), e.pop("request")
    assert pulled == looked_up


def test_a_failing_audit_append_returns_nothing(
    world: World, session_factory: sessionmaker[Session]
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    world.assign(r, c, agreement)
    acting = Acting(Identity(c.principal_id, "c", CONTRACTOR, "c", c.id), NOW, "req-1")
    with session_factory() as s, pytest.raises(AuditUnavailable):
        rows = disclosure.changed_cases(s, shipped_policies(), "home_visit", c.id, 0, 10)
        disclosure.disclose(s, world.keyring, auditing.MemoryAuditSink(fail=True), acting,
                            c.id, "home_visit", rows, shipped_policies())  # fmt: skip
