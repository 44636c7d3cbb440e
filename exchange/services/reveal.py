"""查看明文: one personal value of one resident, shown in full to an office user who gave a
reason, for a short while, and never without a trace.

    reveal(...)  office roles only, within scope (a resident elsewhere: NotFound, as if none)
      1. the field (name, ID number, phone, full address), the reason code (上门服务联系,
         核实身份, 居民本人申请, 其他) and a note (2-200 characters) are checked, all at once;
      2. the per-user rate limit: reveals by this user in the last hour are counted in the
         database (the user's principal row is locked first, so two processes cannot both take
         the last one); over the limit the refusal is audited (`case.reveal` denied,
         `rate_limited`) and committed, then `RevealRateLimited` (429) propagates;
      3. the value is decrypted, a `case.reveal` entry appended (the resident's pseudonym with
         the field names disclosed, so her "who saw my data" report lists it; `details` the
         field and the reason code), and a `resident_reveals` row kept with the note encrypted
         under her data key. The note never goes to the audit log.

The value comes back with the time until which the page may show it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import Action, Outcome, Subject
from exchange.db import models as m
from exchange.db.ids import new_id
from exchange.db.models.reveal import REVEAL_FIELDS, REVEAL_REASONS
from exchange.identity import OFFICE_ROLES, Acting
from exchange.services.audit_access import record
from exchange.services.errors import AuditedDenial, Conflict, FieldErrors, NotPermitted
from exchange.services.residents import data_key, visible_resident
from keys.fields import FieldContext
from keys.keyring import Keyring

if TYPE_CHECKING:
    from exchange.settings import Settings

# field -> the catalogue names it discloses (what the resident's report will list)
DISCLOSES: Final = {
    "name": ("resident.name",),
    "national_id": ("resident.national_id",),
    "phone": ("resident.phone",),
    "address": ("address.compound", "address.building", "address.unit", "address.room"),
}
_COLUMNS: Final = {
    "name": ("name",),
    "national_id": ("national_id",),
    "phone": ("phone",),
    "address": ("address_compound", "address_building", "address_unit", "address_room"),
}
NOTE_MIN, NOTE_MAX = 2, 200
WINDOW: Final = timedelta(hours=1)
assert set(DISCLOSES) == set(REVEAL_FIELDS) == set(_COLUMNS)


@dataclass(frozen=True, slots=True)
class RevealPolicy:
    per_hour: int = 20  # reveals one user may make in any hour
    shown_seconds: int = 30  # how long a page shows the value


class RevealRateLimited(AuditedDenial):
    """Over the per-user limit; the refusal's audit entry commits before this propagates."""

    status = 429
    slug = "too-many-requests"
    retry_after = 600


def policy_for(settings: Settings) -> RevealPolicy:
    """The limit and the showing time from the settings: one per-user count for every door
    (the console and `POST /v1/residents/{id}/reveal` share it, counted in the database)."""
    return RevealPolicy(settings.console_reveals_per_hour, settings.console_reveal_seconds)


class RevealedView(TypedDict):
    """A revealed value as the API answers it."""

    field: str
    value: str
    shown_until: str
    audit_index: int


@dataclass(frozen=True, slots=True, repr=False)
class Revealed:
    field: str
    value: str
    shown_until: datetime
    audit_index: int

    def __repr__(self) -> str:
        return f"Revealed(field={self.field!r}, audit_index={self.audit_index})"

    def view(self) -> RevealedView:
        return {"field": self.field, "value": self.value,
                "shown_until": self.shown_until.isoformat(), "audit_index": self.audit_index}


def _check(field: str, reason: str, note: str) -> str:
    errors = FieldErrors()
    if field not in REVEAL_FIELDS:
        errors.add("field", "unknown", f"must be one of {', '.join(REVEAL_FIELDS)}")
    if reason not in REVEAL_REASONS:
        errors.add("reason", "required" if not reason else "unknown",
                   f"must be one of {', '.join(REVEAL_REASONS)}")  # fmt: skip
    text = unicodedata.normalize("NFC", note.strip())
    if not NOTE_MIN <= len(text) <= NOTE_MAX:
        errors.add("note", "required" if not text else "length",
                   f"must be {NOTE_MIN}-{NOTE_MAX} characters")  # fmt: skip
    elif any(unicodedata.category(c) == "Cc" for c in text):
        errors.add("note", "format", "must not contain control characters")
    errors.raise_any()
    return text


def used_in_window(session: Session, principal_id: str, now: datetime) -> int:
    """Reveals this user made in the hour before `now` (every process sees the same count)."""
    return session.scalar(
        select(func.count()).select_from(m.Reveal)
        .where(m.Reveal.principal_id == principal_id, m.Reveal.created_at > now - WINDOW)
    ) or 0  # fmt: skip


def reveal(
    session: Session,
    keyring: Keyring,
    acting: Acting,
    resident_id: str,
    field: str,
    reason: str,
    note: str,
    policy: RevealPolicy = RevealPolicy(),
) -> Revealed:
    """One value in full (see the module docstring)."""
    if acting.identity.role not in OFFICE_ROLES:
        raise NotPermitted(f"role {acting.identity.role} may not reveal personal values")
    text = _check(field, reason, note)
    resident = visible_resident(session, acting, resident_id)
    if resident.erased_at is not None:
        raise Conflict("the resident was erased")
    pseudonym = keyring.audit_pseudonym(resident.id)
    details = {"reveal.field": DISCLOSES[field][0], "reveal.reason": reason}
    # serialise this user's reveals across processes (SQLite serialises writers anyway)
    session.execute(select(m.Principal.id).where(m.Principal.id == acting.identity.id)
                    .with_for_update())  # fmt: skip
    if used_in_window(session, acting.identity.id, acting.now) >= policy.per_hour:
        record(session, acting, Action.REVEAL, subjects=[Subject(pseudonym)],
               outcome=Outcome("denied", "rate_limited"), details=details)  # fmt: skip
        raise RevealRateLimited(f"at most {policy.per_hour} reveals an hour")
    key = data_key(keyring, resident)
    if key is None:
        raise Conflict("the resident's data key is gone")
    sealed = {c: getattr(resident, c) for c in _COLUMNS[field] if getattr(resident, c)}
    values = keyring.decrypt_row(key, "residents", resident.id, sealed) if sealed else {}
    value = "".join(values.get(c, "") for c in _COLUMNS[field])
    index = record(session, acting, Action.REVEAL,
                   subjects=[Subject(pseudonym, disclosed=DISCLOSES[field])],
                   details=details)  # fmt: skip
    row_id = new_id()
    session.add(m.Reveal(
        id=row_id, principal_id=acting.identity.id, resident_id=resident.id, field=field,
        reason=reason, created_at=acting.now, audit_index=index,
        note=keyring.encrypt_field(key, text, FieldContext("resident_reveals", "note", row_id)),
    ))  # fmt: skip
    session.flush()
    return Revealed(field, value, acting.now + timedelta(seconds=policy.shown_seconds), index)
