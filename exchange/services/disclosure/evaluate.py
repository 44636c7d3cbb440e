"""Step 2: each readable case through the policy plan its agreement names, on one date.

The programme's date is computed once for the page (`policies.office_date`), and each case
runs its plan (`PolicySet.evaluate_on`); the decision record is the engine's, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from exchange.services.disclosure.inputs import CaseInputs
from policies.engine import PolicySet, office_date
from policies.results import Evaluation


@dataclass(frozen=True, slots=True)
class Evaluated:
    case: CaseInputs
    evaluation: Evaluation

    @property
    def seq(self) -> int:
        return self.case.seq

    @property
    def visible(self) -> bool:
        return bool(self.evaluation.view)


def evaluate(
    cases: Sequence[CaseInputs], purpose: str, now: datetime, policies: PolicySet
) -> list[Evaluated]:
    today = office_date(now)
    run = policies.evaluate_on
    return [
        Evaluated(c, run(c.record, c.consents, c.agreement, c.assignment, purpose, today))
        for c in cases
    ]
