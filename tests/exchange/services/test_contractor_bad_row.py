"""One bad row does not block a page (issue 14, finding 10).

A case whose stored data no longer decrypts (a ciphertext changed in the database) or no longer
decodes (a stored text the codecs refuse) is withheld: the rest of the page is served, the case
is audited as an error with its reason in the same response's entries, the operator gets a
structured log line (ids and reason, no personal data) and a Prometheus counter. A page on
which no case can be read is refused instead (a keyring fault), and the cursor does not move.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import LargeBinary, select, type_coerce, update
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from audit.store.tables import entries
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from keys import FieldContext
from keys.datakeys import WrappedKey
from tests.world import World, bearer

pytestmark = pytest.mark.db

ALL = ("service_contact", "pregnancy_health", "birth_health")
PARAMS = {"purpose": "home_visit"}
METRIC = "exchange_disclosure_withheld_on_error_total"


def audit_rows(factory: sessionmaker[Session]) -> list[dict]:
    with factory() as s:
        return [
            json.loads(bytes(b)) for b in s.scalars(select(entries.c.entry).order_by(entries.c.idx))
        ]


def counted(api: TestClient, reason: str) -> float:
    """The counter as the app's /metrics renders it."""
    text = api.app.state.metrics.render().decode()  # type: ignore[attr-defined]
    for line in text.splitlines():
        if line.startswith(f'{METRIC}{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def corrupt_name(world: World, resident_id: str) -> None:
    """Flip one bit of the resident's stored name ciphertext (past its 28-byte header)."""
    table = m.Resident.__table__
    raw = type_coerce(table.c.name, LargeBinary)
    with unit_of_work(world.factory) as s:
        stored = bytearray(s.execute(select(raw).where(table.c.id == resident_id)).scalar_one())
        stored[30] ^= 0x01
        s.execute(
            update(table)
            .where(table.c.id == resident_id)
            .values({table.c.name: type_coerce(bytes(stored), LargeBinary)})
        )


def store_bad_due_date(world: World, resident_id: str) -> None:
    """A due date that decrypts but is not a date: encrypted with the right key and context."""
    with unit_of_work(world.factory) as s:
        wrapped = s.get_one(m.ResidentDataKey, resident_id).wrapped_key
        key = world.keyring.unwrap(WrappedKey.from_bytes(bytes(wrapped)), resident_id)
        episode = s.scalars(
            select(m.MaternalEpisode).where(m.MaternalEpisode.resident_id == resident_id)
        ).one()
        episode.due_date = world.keyring.encrypt_field(
            key, "not a date", FieldContext("maternal_episodes", "due_date", episode.id)
        )


def three_cases(world: World) -> tuple[object, str, list[str]]:
    c = world.contractor()
    agreement = world.agreement(c)
    residents = [world.resident(phone=f"1391234567{i}") for i in range(3)]
    for r in residents:
        world.consent(r, ALL)
        world.assign(r, c, agreement)
    return c, agreement, residents


def test_a_case_that_no_longer_decrypts_is_withheld_and_the_page_served(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c, agreement, residents = three_cases(world)
    bad = residents[1]
    corrupt_name(world, bad)
    before = counted(api, "stored_data_undecryptable")

    with capture_logs() as logs:
        response = api.get("/v1/cases", params=PARAMS, headers=bearer(c))

    assert response.status_code == 200, response.text
    page = response.json()
    refs = [item["case_reference"] for item in page["items"]]
    good = [r for r in residents if r != bad]
    assert refs == [world.case_reference(agreement, r) for r in good]
    assert page["has_more"] is False  # the cursor moved past the withheld case

    disclosed, error = audit_rows(session_factory)
    assert [s["pseudonym"] for s in disclosed["subjects"]] == [
        world.keyring.audit_pseudonym(r) for r in good
    ]
    assert disclosed["outcome"] == {"result": "ok", "reason": None}
    assert error["action"] == "case.disclose" and error["agreement"] == agreement
    assert error["request"] == disclosed["request"]  # the same response's entries
    assert error["outcome"] == {"result": "error", "reason": "stored_data_undecryptable"}
    assert error["subjects"] == [
        {
            "pseudonym": world.keyring.audit_pseudonym(bad),
            "case": world.case_reference(agreement, bad),
            "disclosed": [],
            "withheld": [],
            "consents": [],
        }
    ]

    (line,) = [e for e in logs if e["event"] == "case_withheld_unreadable"]
    assert line["log_level"] == "error" and line["reason"] == "stored_data_undecryptable"
    with session_factory() as s:
        assignment_id = s.scalars(
            select(m.Assignment.id).where(m.Assignment.resident_id == bad)
        ).one()
    assert line["assignment_id"] == assignment_id and line["agreement_id"] == agreement
    text = json.dumps(logs, ensure_ascii=False, default=str)
    for value in ("李秀英", "13912345671", "370214199001011232", bad):
        assert value not in text
    assert counted(api, "stored_data_undecryptable") == before + 1


def test_a_stored_value_the_codecs_refuse_is_withheld_with_its_reason(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c, agreement, residents = three_cases(world)
    store_bad_due_date(world, residents[0])
    before = counted(api, "stored_data_invalid")

    response = api.get("/v1/cases", params=PARAMS, headers=bearer(c))

    assert response.status_code == 200, response.text
    refs = [item["case_reference"] for item in response.json()["items"]]
    assert refs == [world.case_reference(agreement, r) for r in residents[1:]]
    _, error = audit_rows(session_factory)
    assert error["outcome"] == {"result": "error", "reason": "stored_data_invalid"}
    assert [s["pseudonym"] for s in error["subjects"]] == [
        world.keyring.audit_pseudonym(residents[0])
    ]
    assert counted(api, "stored_data_invalid") == before + 1


def test_the_single_case_lookup_withholds_and_audits_it_too(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c, agreement, residents = three_cases(world)
    corrupt_name(world, residents[2])
    ref = world.case_reference(agreement, residents[2])

    response = api.get(f"/v1/cases/{ref}", params=PARAMS, headers=bearer(c))

    assert response.status_code == 404
    (entry,) = audit_rows(session_factory)
    assert entry["outcome"] == {"result": "error", "reason": "stored_data_undecryptable"}
    assert [s["case"] for s in entry["subjects"]] == [ref]
    other = world.case_reference(agreement, residents[0])
    assert api.get(f"/v1/cases/{other}", params=PARAMS, headers=bearer(c)).status_code == 200


def test_a_page_of_which_nothing_can_be_read_is_refused_and_the_cursor_stays(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c, agreement, residents = three_cases(world)
    for r in residents:
        corrupt_name(world, r)

    with capture_logs() as logs:
        response = api.get("/v1/cases", params=PARAMS, headers=bearer(c))

    assert response.status_code == 503
    assert audit_rows(session_factory) == []  # nothing disclosed, nothing committed
    assert len([e for e in logs if e["event"] == "case_withheld_unreadable"]) == 3
