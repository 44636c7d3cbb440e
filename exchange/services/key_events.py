"""Key events into the audit log: keys.KeyEventSink over `audit.store.append`.

Each `keys.events.KeyEvent` becomes one audit entry in the caller's transaction, so a key
operation and its record commit together or not at all. The entry names the action, the key
(id, version, type) and the event code; never key material, never a resident id or value (a
resident is named by her audit pseudonym, passed in by the caller as a subject).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy.orm import Session

from audit.entry import Actor, AuditEntry, Outcome, Subject
from audit.entry import KeyEvent as AuditKey
from audit.store import append
from keys.events import KeyEvent, KeyEventType

# event -> (audit action, key type)
ACTIONS: Final[dict[KeyEventType, tuple[str, str]]] = {
    KeyEventType.KEYRING_CREATED: ("key.create", "keyring"),
    KeyEventType.ROOT_ROTATION_STARTED: ("key.rotate_root", "root"),
    KeyEventType.ROOT_ROTATION_COMPLETED: ("key.rewrap", "root"),
    KeyEventType.ROOT_KEY_RETIRED: ("key.retire_root", "root"),
    KeyEventType.DATA_KEY_ROTATED: ("key.rotate_data", "data_key"),
    KeyEventType.DATA_KEY_DESTROYED: ("key.shred", "data_key"),
    KeyEventType.PSEUDONYM_KEY_ROTATED: ("key.rotate_pseudonym", "case_pseudonym"),
    KeyEventType.PSEUDONYM_REMAP_EXPORTED: ("key.remap_export", "case_pseudonym"),
    KeyEventType.BLIND_INDEX_ROTATION_STARTED: ("key.rotate_blind_index", "blind_index"),
    KeyEventType.BLIND_INDEX_ROTATION_COMPLETED: ("key.reindex", "blind_index"),
    KeyEventType.CONTRACTOR_KEY_REGISTERED: ("key.rotate_contractor", "contractor_key"),
    KeyEventType.CONTRACTOR_KEY_RETIRED: ("key.retire_contractor", "contractor_key"),
}

# who runs the office's key operations from the command line
CLI_ACTOR: Final = Actor("exchange-cli", "system")


class AuditKeyEventSink:
    """Appends each key event as an audit entry in `session`'s current transaction.

    `subjects` (audit pseudonyms) and `agreement` give the entries their context, e.g. the
    resident whose data key rotated or the agreement whose references were re-mapped."""

    def __init__(
        self,
        session: Session,
        actor: Actor = CLI_ACTOR,
        *,
        subjects: Sequence[Subject] = (),
        agreement: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self._session = session
        self._actor = actor
        self._subjects = tuple(subjects)
        self._agreement = agreement
        self._request_id = request_id
        self.indexes: list[int] = []

    def record(self, event: KeyEvent) -> None:
        entry = entry_for(event, self._actor, self._subjects, self._agreement, self._request_id)
        self.indexes.append(append(self._session, entry))


def entry_for(
    event: KeyEvent,
    actor: Actor,
    subjects: Sequence[Subject] = (),
    agreement: str | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """The audit entry of one key event; `event.detail` (free text) is deliberately left out."""
    action, kind = ACTIONS[event.event]
    return AuditEntry(
        time=event.at,
        actor=actor,
        action=action,
        subjects=tuple(subjects),
        agreement=agreement,
        key=AuditKey(event.key_id, event.version, kind),
        request_id=request_id,
        outcome=Outcome("ok", event.event.value),
    )
