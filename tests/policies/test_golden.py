"""Golden outputs of the shipped policies on fixed synthetic residents.

Regenerate after a deliberate policy change with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/policies/test_golden.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from policies import evaluate
from tests.policies.synthetic import (
    AGREEMENT,
    ALL_CONSENT,
    NOW,
    POSTPARTUM,
    POSTPARTUM_ASSIGNMENT,
    PREGNANCY_ASSIGNMENT,
    PREGNANT,
)

GOLDEN = Path(__file__).with_name("golden")
CASES = {
    "pregnant": (PREGNANT, PREGNANCY_ASSIGNMENT),
    "postpartum": (POSTPARTUM, POSTPARTUM_ASSIGNMENT),
}


def snapshot(resident: str, purpose: str) -> dict[str, object]:
    record, assignment = CASES[resident]
    result = evaluate(record, ALL_CONSENT, AGREEMENT, assignment, purpose, NOW)
    assert result.policy is not None
    return {
        "policy": {
            "id": result.policy.id,
            "version": result.policy.version,
            "sha256": result.policy.sha256,
        },
        "view": {
            k: {
                "value": list(d.value) if isinstance(d.value, tuple) else d.value,
                "sealed": d.sealed,
                "transform": d.transform,
            }
            for k, d in result.view.items()
        },
        "decisions": [[d.field, d.shared, d.reason.value, d.detail] for d in result.decisions],
        "consent_event_ids": list(result.consent_event_ids),
    }


@pytest.mark.parametrize("purpose", ["home_visit", "online_guidance", "class_invitation"])
@pytest.mark.parametrize("resident", sorted(CASES))
def test_shipped_policy_output_is_frozen(resident, purpose):
    path = GOLDEN / f"{purpose}.{resident}.json"
    actual = snapshot(resident, purpose)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))
