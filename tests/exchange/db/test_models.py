"""The schema enforces the domain's invariants itself, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.db.feed import current_feed_seq, next_feed_seq
from exchange.db.models.codes import validate_services
from tests.exchange import factories as f

pytestmark = pytest.mark.db
SERVICES = ["mid_pregnancy", "late_pregnancy", "confinement", "parenting"]


def _world(session: Session) -> dict[str, str]:
    ring = f.keyring()
    c = f.community(session)
    k = f.contractor(session)
    admin = f.principal(session, "admin")
    r = f.resident(session, ring, c)
    a = f.agreement(session, k)
    return {
        "community": c.id,
        "contractor": k.id,
        "admin": admin.id,
        "resident": r.id,
        "agreement": a.id,
    }


def _assignment(ids: dict[str, str], seq: int, **overrides: object) -> m.Assignment:
    values: dict[str, object] = {
        "resident_id": ids["resident"],
        "contractor_id": ids["contractor"],
        "agreement_id": ids["agreement"],
        "services": SERVICES,
        "change_seq": seq,
        "created_by": ids["admin"],
    }
    values.update(overrides)
    return m.Assignment(**values)


@pytest.fixture
def ids(session_factory: sessionmaker[Session]) -> dict[str, str]:
    with unit_of_work(session_factory) as session:
        return _world(session)


def _violates(
    factory: sessionmaker[Session],
    ids: dict[str, str],
    build: Callable[[Session, dict[str, str]], None],
) -> None:
    """The offending rows must fail to flush, and the rollback must leave nothing behind."""
    with factory() as session, pytest.raises(IntegrityError):
        build(session, ids)
        session.flush()


def test_valid_rows_round_trip(session_factory: sessionmaker[Session], ids: dict[str, str]) -> None:
    with unit_of_work(session_factory) as session:
        session.add(_assignment(ids, next_feed_seq(session, ids["contractor"])))
    with session_factory() as session:
        resident = session.get_one(m.Resident, ids["resident"])
        assert resident.data_key is not None and resident.name is not None
        assert "李" not in repr(resident) and "李" not in repr(resident.name)
        assignment = session.scalars(select(m.Assignment)).one()
        assert assignment.services == SERVICES and assignment.created_at.tzinfo is not None
        assert current_feed_seq(session, ids["contractor"]) == 1


def test_unit_of_work_rolls_back_on_error(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), unit_of_work(session_factory) as session:
        f.community(session, "瑞阳路社区")
        raise RuntimeError("boom")
    with session_factory() as session:
        assert session.scalars(select(m.Community)).all() == []


def test_feed_sequence_is_per_contractor_and_monotonic(
    session_factory: sessionmaker[Session],
) -> None:
    with unit_of_work(session_factory) as session:
        a = f.contractor(session, "甲").id
        b = f.contractor(session, "乙").id
    with unit_of_work(session_factory) as session:
        seqs = [next_feed_seq(session, a) for _ in range(3)] + [next_feed_seq(session, b)]
    assert seqs == [1, 2, 3, 1]


def test_principal_role_binds_contractor(
    session_factory: sessionmaker[Session], ids: dict[str, str]
) -> None:
    _violates(
        session_factory,
        ids,
        lambda s, ids: s.add(m.Principal(name="x", role="contractor", display_name="x")),
    )
    _violates(
        session_factory,
        ids,
        lambda s, ids: s.add(
            m.Principal(name="y", role="auditor", display_name="y", contractor_id=ids["contractor"])
        ),
    )
    _violates(
        session_factory,
        ids,
        lambda s, ids: s.add(m.Principal(name="z", role="root", display_name="z")),
    )


def test_assignment_constraints(
    session_factory: sessionmaker[Session], ids: dict[str, str]
) -> None:
    def second_active(s: Session, ids: dict[str, str]) -> None:
        s.add(_assignment(ids, 1))
        s.flush()
        s.add(_assignment(ids, 2))

    _violates(session_factory, ids, second_active)
    _violates(session_factory, ids, lambda s, ids: s.add(_assignment(ids, 1, status="revoked")))
    _violates(session_factory, ids, lambda s, ids: s.add(_assignment(ids, 0)))


def test_revoked_assignments_free_the_slot(
    session_factory: sessionmaker[Session], ids: dict[str, str]
) -> None:
    with unit_of_work(session_factory) as session:
        session.add(_assignment(ids, 1, status="revoked", revoked_at=datetime.now(UTC)))
        session.add(_assignment(ids, 2))
    with session_factory() as session:
        assert len(session.scalars(select(m.Assignment)).all()) == 2


@pytest.mark.parametrize(
    "services",
    [
        SERVICES[:3],
        [*SERVICES[:3], SERVICES[0]],
        [*SERVICES[:3], "massage"],
        [*SERVICES, "early_education"],
    ],
)
def test_services_are_four_distinct_codes(services: list[str]) -> None:
    with pytest.raises(ValueError):
        validate_services(services)
    with pytest.raises(ValueError):
        m.Assignment(services=services)


def test_other_checks(session_factory: sessionmaker[Session], ids: dict[str, str]) -> None:
    _violates(
        session_factory,
        ids,
        lambda s, ids: s.add(
            m.Agreement(
                contractor_id=ids["contractor"],
                reference="bad-period",
                valid_from=date(2026, 2, 1),
                valid_to=date(2026, 1, 1),
                status="active",
                retention_days=30,
                sub_processors=[],
            )
        ),
    )
    _violates(
        session_factory,
        ids,
        lambda s, ids: s.add(
            m.AgreementPurpose(
                agreement_id=ids["agreement"], purpose="marketing", policy_id="p", policy_version=1
            )
        ),
    )
    _violates(
        session_factory,
        ids,
        lambda s, ids: s.add(m.MaternalEpisode(resident_id=ids["resident"], stage="unknown")),
    )

    def duplicate_blind_index(s: Session, ids: dict[str, str]) -> None:
        first = s.get_one(m.Resident, ids["resident"])
        s.add(
            m.Resident(
                community_id=ids["community"],
                district="城阳区",
                street="城阳街道",
                national_id_index=first.national_id_index,
            )
        )

    _violates(session_factory, ids, duplicate_blind_index)

    def erased_with_ciphertext(s: Session, ids: dict[str, str]) -> None:
        s.get_one(m.Resident, ids["resident"]).erased_at = datetime.now(UTC)

    _violates(session_factory, ids, erased_with_ciphertext)

    def erased_with_a_phone_index(s: Session, ids: dict[str, str]) -> None:
        row = s.get_one(m.Resident, ids["resident"])
        assert row.phone_index is not None  # the builder stores it, as the import does
        for column in ("name", "national_id", "phone", "national_id_index"):
            setattr(row, column, None)
        row.erased_at = datetime.now(UTC)  # every ciphertext cleared but the phone's index

    _violates(session_factory, ids, erased_with_a_phone_index)

    def duplicate_idempotency_key(s: Session, ids: dict[str, str]) -> None:
        s.add(_assignment(ids, 1))
        s.flush()
        assignment = s.scalars(select(m.Assignment)).one()
        for _ in range(2):
            s.add(
                m.ServiceRecord(
                    assignment_id=assignment.id,
                    contractor_id=ids["contractor"],
                    service_code="parenting",
                    idempotency_key="k-1",
                    delivered_at=datetime.now(UTC),
                )
            )
            s.flush()

    _violates(session_factory, ids, duplicate_idempotency_key)


def test_consent_events_cannot_be_changed(
    session_factory: sessionmaker[Session], ids: dict[str, str], migrated_engine: Engine
) -> None:
    with unit_of_work(session_factory) as session:
        session.add(
            m.ConsentEvent(
                resident_id=ids["resident"],
                sequence=1,
                agreement_id=ids["agreement"],
                action="grant",
                scopes=["service_contact"],
                method="paper",
                notice_version="2026-01",
                evidence_sha256="a" * 64,
                recorded_by=ids["admin"],
            )
        )
    for statement in ("UPDATE consent_events SET method = 'phone'", "DELETE FROM consent_events"):
        with pytest.raises(DatabaseError, match="append-only"), migrated_engine.begin() as conn:
            conn.execute(text(statement))
    _violates(
        session_factory,
        ids,
        lambda s, ids: s.add(
            m.ConsentEvent(
                resident_id=ids["resident"],
                sequence=1,
                action="grant",
                scopes=[],
                method="paper",
                notice_version="v",
                evidence_sha256="a" * 64,
                recorded_by=ids["admin"],
            )
        ),
    )


def test_shredding_the_data_key_leaves_the_resident_row(
    session_factory: sessionmaker[Session], ids: dict[str, str]
) -> None:
    with unit_of_work(session_factory) as session:
        session.get_one(m.Resident, ids["resident"]).data_key = None
    with session_factory() as session:
        assert session.get(m.ResidentDataKey, ids["resident"]) is None
        assert session.get(m.Resident, ids["resident"]) is not None
