"""Contractors (the entrusted parties) and their HPKE public keys.

Registering a key is a rotation (keys.rotation.rotate_contractor_key over a database adapter):
the new key becomes the one fields are sealed to and every older key is retired; the contractor
keeps its old private keys until it has opened what was sealed to them. Key events are audited.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from typing_extensions import TypedDict

from audit.entry import KeyEvent as AuditKeyEvent
from exchange.db import models as m
from exchange.identity import Acting
from exchange.services.audit_access import record
from exchange.services.errors import Conflict, InvalidInput, NotFound
from keys.contractor_keys import ContractorPublicKey
from keys.errors import KeysError, RotationError
from keys.events import KeyEvent, KeyEventType
from keys.rotation import ContractorKeyRecord, rotate_contractor_key

MAX_NAME = 128


def create(session: Session, acting: Acting, name: str) -> m.Contractor:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME or not name.isprintable():
        raise InvalidInput.field("name", "format", f"must be 1-{MAX_NAME} printable characters")
    if session.scalar(select(m.Contractor.id).where(m.Contractor.name == name)):
        raise Conflict("a contractor with this name exists")
    row = m.Contractor(name=name, status="active", created_at=acting.now)
    session.add(row)
    session.flush()
    session.add(m.FeedCounter(contractor_id=row.id, last_seq=0))
    session.flush()
    record(session, acting, "contractor.create", outcome=None)
    return row


def get_contractor(session: Session, contractor_id: str) -> m.Contractor:
    row = session.get(m.Contractor, contractor_id) if len(contractor_id) <= 36 else None
    if row is None:
        raise NotFound("no such contractor")
    return row


class _DbKeyStore:
    """keys.rotation.ContractorKeyStore over the contractor_keys table."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _rows(self, contractor_id: str) -> list[m.ContractorKey]:
        return list(self._session.scalars(
            select(m.ContractorKey).where(m.ContractorKey.contractor_id == contractor_id)
            .order_by(m.ContractorKey.created_at, m.ContractorKey.id)
        ))  # fmt: skip

    def keys(self, contractor_id: str) -> Sequence[ContractorKeyRecord]:
        return tuple(
            ContractorKeyRecord(ContractorPublicKey.from_text(r.public_key), r.created_at,
                                r.retired_at)  # fmt: skip
            for r in self._rows(contractor_id)
        )

    def put(self, contractor_id: str, keys: Sequence[ContractorKeyRecord]) -> None:
        rows = {r.key_id: r for r in self._rows(contractor_id)}
        for record_ in keys:  # retire first: at most one key may be active
            row = rows.get(record_.public_key.fingerprint.hex())
            if row is not None and record_.retired_at is not None and row.status == "active":
                row.status, row.retired_at = "retired", record_.retired_at
        self._session.flush()
        for record_ in keys:
            key_id = record_.public_key.fingerprint.hex()
            if key_id not in rows:
                self._session.add(m.ContractorKey(
                    contractor_id=contractor_id, key_id=key_id,
                    kem_id=record_.public_key.kem.wire_id, public_key=record_.public_key.to_text(),
                    status="retired" if record_.retired_at else "active",
                    created_at=record_.registered_at, retired_at=record_.retired_at,
                ))  # fmt: skip
        self._session.flush()


class _Events:
    def __init__(self) -> None:
        self.events: list[KeyEvent] = []

    def record(self, event: KeyEvent) -> None:
        self.events.append(event)


_AUDIT_KEY_ACTIONS = {
    KeyEventType.CONTRACTOR_KEY_REGISTERED: ("key.create", "contractor_key"),
    KeyEventType.CONTRACTOR_KEY_RETIRED: ("key.retire", "contractor_key"),
}


def parse_key(text: str) -> ContractorPublicKey:
    """A contractor public key from its text form (`exchange contractor keygen` writes it;
    the fingerprint in it is checked); refused by field, never echoing the text."""
    try:
        return ContractorPublicKey.from_text(text)
    except (KeysError, ValueError):
        raise InvalidInput.field("public_key", "key_invalid",
                                 "must be a contractor public key in its text form") from None


class KeyCheck(TypedDict):
    """What registering a key would register: the office reads the fingerprint back to the
    contractor before confirming."""

    fingerprint: str
    kem: str
    replaces: str | None  # the active key it would retire


def check_key(session: Session, contractor_id: str, text: str) -> KeyCheck:
    contractor = get_contractor(session, contractor_id)
    public = parse_key(text)
    if session.scalar(select(m.ContractorKey.id).where(
            m.ContractorKey.key_id == public.fingerprint.hex())):  # fmt: skip
        raise Conflict("this public key is already registered")
    active = next((k.key_id for k in contractor.keys if k.status == "active"), None)
    return {"fingerprint": public.fingerprint.hex(), "kem": public.kem.value, "replaces": active}


def register_key(
    session: Session, acting: Acting, contractor_id: str, text: str
) -> m.ContractorKey:
    contractor = get_contractor(session, contractor_id)
    public = parse_key(text)
    if session.scalar(select(m.ContractorKey.id).where(
            m.ContractorKey.key_id == public.fingerprint.hex())):  # fmt: skip
        raise Conflict("this public key is already registered")
    sink = _Events()
    try:
        rotate_contractor_key(_DbKeyStore(session), contractor.id, public, sink, lambda: acting.now)
    except RotationError:
        raise Conflict("this public key is already registered") from None
    for event in sink.events:
        action, kind = _AUDIT_KEY_ACTIONS[event.event]
        record(session, acting, action, key=AuditKeyEvent(event.key_id, event.version, kind))
    row = session.scalar(select(m.ContractorKey).where(
        m.ContractorKey.key_id == public.fingerprint.hex()))  # fmt: skip
    assert row is not None
    return row


class KeyView(TypedDict):
    key_id: str
    kem_id: int
    status: str
    public_key: str
    created_at: str
    retired_at: str | None


class ContractorView(TypedDict):
    id: str
    name: str
    status: str
    created_at: str
    keys: list[KeyView]


def key_view(row: m.ContractorKey) -> KeyView:
    return {
        "key_id": row.key_id, "kem_id": row.kem_id, "status": row.status,
        "public_key": row.public_key, "created_at": row.created_at.isoformat(),
        "retired_at": row.retired_at.isoformat() if row.retired_at else None,
    }  # fmt: skip


def view(row: m.Contractor) -> ContractorView:
    keys = sorted(row.keys, key=lambda k: (k.created_at, k.status == "active", k.id))
    return {"id": row.id, "name": row.name, "status": row.status,
            "created_at": row.created_at.isoformat(),
            "keys": [key_view(k) for k in keys]}  # fmt: skip


def list_contractors(session: Session) -> list[ContractorView]:
    rows = session.scalars(
        select(m.Contractor).order_by(m.Contractor.name).options(selectinload(m.Contractor.keys))
    ).all()
    return [view(r) for r in rows]

