"""Every key event maps to a valid audit entry that carries no free text."""

from __future__ import annotations

import pytest

from audit.entry import Subject, encode
from exchange.services.key_events import ACTIONS, CLI_ACTOR, entry_for
from keys import KeyEvent, KeyEventType
from tests.world import NOW


@pytest.mark.parametrize("kind", list(KeyEventType))
def test_each_event_becomes_an_entry_without_its_detail(kind: KeyEventType) -> None:
    event = KeyEvent(kind, "0123abcd4567ef89", 3, NOW, "agreement=A-1 rows=12 secret-ish")
    entry = entry_for(event, CLI_ACTOR, [Subject("pseudonym_AAAA")], agreement="A-1")
    action, key_type = ACTIONS[kind]
    assert (entry.action, entry.key.type if entry.key else None) == (action, key_type)
    assert entry.outcome.reason == kind.value
    data = encode(0, entry)
    assert b"secret-ish" not in data and b"rows=" not in data
    assert action.startswith("key.")


def test_every_event_type_has_an_action() -> None:
    assert set(ACTIONS) == set(KeyEventType)
    assert len({a for a, _ in ACTIONS.values()}) == len(ACTIONS)
