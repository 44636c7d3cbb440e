"""Key events handed to the audit log: what happened to which key, when. Never key material."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

Clock = Callable[[], datetime]


class KeyEventType(enum.Enum):
    KEYRING_CREATED = "keyring_created"
    ROOT_ROTATION_STARTED = "root_rotation_started"
    ROOT_ROTATION_COMPLETED = "root_rotation_completed"
    ROOT_KEY_RETIRED = "root_key_retired"
    DATA_KEY_ROTATED = "data_key_rotated"
    DATA_KEY_DESTROYED = "data_key_destroyed"
    PSEUDONYM_KEY_ROTATED = "pseudonym_key_rotated"
    PSEUDONYM_REMAP_EXPORTED = "pseudonym_remap_exported"
    BLIND_INDEX_ROTATION_STARTED = "blind_index_rotation_started"
    BLIND_INDEX_ROTATION_COMPLETED = "blind_index_rotation_completed"
    CONTRACTOR_KEY_REGISTERED = "contractor_key_registered"
    CONTRACTOR_KEY_RETIRED = "contractor_key_retired"


@dataclass(frozen=True, slots=True)
class KeyEvent:
    event: KeyEventType
    key_id: str
    version: int
    at: datetime
    detail: str = ""  # counts and ids only

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("KeyEvent.at must be timezone-aware")


class KeyEventSink(Protocol):
    """Where key events go; the audit package implements it over the log."""

    def record(self, event: KeyEvent) -> None: ...


class InMemoryKeyEventSink:
    def __init__(self) -> None:
        self.events: list[KeyEvent] = []

    def record(self, event: KeyEvent) -> None:
        self.events.append(event)

    def of_type(self, event: KeyEventType) -> list[KeyEvent]:
        return [e for e in self.events if e.event is event]
