"""Small builders of valid rows for exchange tests (synthetic data only)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from exchange.db import models as m
from keys.fields import EncryptedValue, FieldContext
from keys.keyring import Keyring
from keys.providers import MemoryKeyProvider
from keys.pseudonyms import BlindIndexField

NATIONAL_ID = "370214199001011232"  # synthetic, valid GB 11643 check digit


def keyring() -> Keyring:
    return Keyring(MemoryKeyProvider.generate())


def community(session: Session, name: str = "民城路社区") -> m.Community:
    row = m.Community(name=name, district="城阳区", street="城阳街道")
    session.add(row)
    session.flush()
    return row


def contractor(session: Session, name: str = "青岛母婴服务中心") -> m.Contractor:
    row = m.Contractor(name=name)
    session.add(row)
    session.flush()
    return row


def principal(
    session: Session, name: str, role: str = "office_admin", contractor_id: str | None = None
) -> m.Principal:
    row = m.Principal(name=name, role=role, display_name=name, contractor_id=contractor_id)
    session.add(row)
    session.flush()
    return row


def resident(session: Session, ring: Keyring, community_row: m.Community) -> m.Resident:
    row = m.Resident(community_id=community_row.id, district="城阳区", street="城阳街道")
    session.add(row)
    session.flush()
    key, wrapped = ring.new_data_key(row.id)

    def enc(column: str, text: str) -> EncryptedValue:
        return ring.encrypt_field(key, text, FieldContext("residents", column, row.id))

    row.name = enc("name", "李秀英")
    row.national_id = enc("national_id", NATIONAL_ID)
    row.phone = enc("phone", "13912345678")
    row.national_id_index = ring.blind_index(NATIONAL_ID)
    row.phone_index = ring.blind_index("13912345678", field=BlindIndexField.PHONE)
    header = wrapped.header
    row.data_key = m.ResidentDataKey(
        wrapped_key=wrapped.to_bytes(), kek_id=header.kek_id, kek_version=header.kek_version
    )
    session.flush()
    return row


def agreement(
    session: Session, contractor_row: m.Contractor, reference: str = "CY-2026-001"
) -> m.Agreement:
    row = m.Agreement(
        contractor_id=contractor_row.id,
        reference=reference,
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 12, 31),
        status="active",
        retention_days=365,
        sub_processors=[],
    )
    row.purposes.append(
        m.AgreementPurpose(purpose="home_visit", policy_id="home_visit", policy_version=1)
    )
    session.add(row)
    session.flush()
    return row
