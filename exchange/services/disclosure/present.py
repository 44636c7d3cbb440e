"""Step 3: present and seal: the case views a contractor receives.

Sealed fields are sealed under ONE HPKE encapsulation per response and agreement
(`keys.ResponseSealer`), each value bound to agreement, case reference and field; the others
are sent as the policy transformed them. The view's format is the feed's wire format.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from exchange.db import models as m
from exchange.services.disclosure.evaluate import Evaluated
from exchange.services.errors import Conflict
from keys.contractor_keys import ContractorPublicKey
from keys.errors import KeysError
from keys.sealing import ResponseSealer
from policies.results import PolicyIdentity

_keys = m.ContractorKey.__table__
_ACTIVE_KEY = select(_keys.c.public_key).where(
    _keys.c.contractor_id == bindparam("contractor"), _keys.c.status == "active"
)


@lru_cache(maxsize=256)
def _public_key(text: str) -> ContractorPublicKey:
    """A registered key parsed once per process (a key's text names it: a rotation registers
    another text), not once per response."""
    return ContractorPublicKey.from_text(text)


def active_public_key(session: Session, contractor_id: str) -> ContractorPublicKey | None:
    """The contractor's active public key, or None if it has none."""
    text = session.connection().execute(_ACTIVE_KEY, {"contractor": contractor_id}).scalar()
    if text is None:
        return None
    try:
        return _public_key(text)
    except KeysError:
        raise Conflict("the contractor's registered public key is unusable") from None


def needs_sealing(evaluated: list[Evaluated]) -> bool:
    return any(d.sealed for e in evaluated for d in e.evaluation.view.values())


class Presenter:
    """Builds case views for one response; one `ResponseSealer` per agreement, made lazily
    (usually a response has one agreement, so one HPKE encapsulation)."""

    def __init__(self, public_key: ContractorPublicKey | None) -> None:
        self._public_key = public_key
        self._sealers: dict[str, ResponseSealer] = {}
        self._policies: dict[PolicyIdentity, dict[str, Any]] = {}

    @property
    def envelopes(self) -> dict[str, str]:
        return {agreement: s.envelope for agreement, s in self._sealers.items()}

    def _sealer(self, agreement_id: str) -> ResponseSealer:
        sealer = self._sealers.get(agreement_id)
        if sealer is None:
            if self._public_key is None:
                raise Conflict("the contractor has no active public key to seal fields to")
            sealer = self._sealers[agreement_id] = ResponseSealer(self._public_key, agreement_id)
        return sealer

    def _policy(self, identity: PolicyIdentity | None) -> dict[str, Any] | None:
        if identity is None:
            return None
        out = self._policies.get(identity)
        if out is None:
            out = self._policies[identity] = {
                "id": identity.id, "version": identity.version, "sha256": identity.sha256
            }  # fmt: skip
        return out

    def present(self, item: Evaluated) -> dict[str, Any]:
        case, evaluation = item.case, item.evaluation
        ref = case.record.case_reference
        agreement_id = case.agreement_id
        fields: dict[str, Any] = {}
        sealed: dict[str, str] = {}
        for name, disclosed in evaluation.view.items():
            value = disclosed.value
            if disclosed.sealed:
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                sealed[name] = self._sealer(agreement_id).seal(ref, name, text)
            else:
                fields[name] = list(value) if isinstance(value, tuple) else value
        return {
            "type": "case",
            "seq": case.seq,
            "case_reference": ref,
            "agreement": agreement_id,
            "purpose": evaluation.purpose,
            "policy": self._policy(evaluation.policy),
            "services": fields.get("services"),
            "bookings": [
                {"service": b.service.value, "on": b.on.isoformat()}
                for b in case.assignment.bookings
            ],
            "fields": fields,
            "sealed": sealed,
        }
