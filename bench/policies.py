"""Policy engine throughput: the home-visit policy against a hand-written dict projection.

Both sides produce the same twelve fields from the same record with the same transform
functions; the engine additionally checks agreement, assignment, consent and conditions and
builds a decision per field. Reports evaluations/s, min/median/max over RUNS runs, and the
engine's median as a fraction of the hand-written median measured in the same run.
Run: .venv/bin/python bench/policies.py
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies import (  # noqa: E402
    AgreementTerms,
    AssignmentTerms,
    Booking,
    ConsentState,
    ResidentRecord,
    shipped_policies,
)
from policies.catalogue import ADDRESS_PARTS  # noqa: E402
from policies.derivation import gestation_weeks, resident_age  # noqa: E402
from policies.transforms import (  # noqa: E402
    address_building,
    address_full,
    age_band,
    as_is,
    case_pseudonym,
    month,
    phone_full,
    phone_masked,
    service_codes,
    surname_title,
)

RUNS = 5
ITERATIONS = 20_000
TARGET_RATIO = 0.30
Row = tuple[str, str, float, float, float, str, float]
FIELDS = ("name", "unit", "min", "median", "max", "baseline_name", "ratio")

NOW = dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.UTC)
RECORD = ResidentRecord(
    {
        "resident.name": "李秀英",
        "resident.national_id": "370214198912150026",
        "resident.birth_date": dt.date(1989, 12, 15),
        "resident.phone": "13812345678",
        "address.district": "城阳区",
        "address.street": "城阳街道",
        "address.community": "民城路社区",
        "address.compound": "春阳花园",
        "address.building": "3号楼",
        "address.unit": "2单元",
        "address.room": "501",
        "episode.stage": "pregnant",
        "episode.due_date": dt.date(2025, 6, 1),
        "episode.parity": 2,
        "episode.risk_flags": ("advanced_maternal_age",),
    },
    case_reference="c1_Zk3vQ9xTbA",
)
CONSENT = ConsentState({"service_contact": "ev-1", "pregnancy_health": "ev-2"})  # type: ignore[dict-item]
AGREEMENT = AgreementTerms(
    "ag-1",
    "active",
    dt.date(2025, 1, 1),
    dt.date(2025, 12, 31),  # type: ignore[arg-type]
    {"home_visit": "cy1000.home_visit"},
)
ASSIGNMENT = AssignmentTerms(
    "as-1",
    "ag-1",
    "active",  # type: ignore[arg-type]
    ("mid_pregnancy", "late_pregnancy", "confinement", "parenting"),  # type: ignore[arg-type]
    (Booking("mid_pregnancy", dt.date(2025, 3, 4)),),  # type: ignore[arg-type]
)


def hand_written() -> dict[str, object]:
    """What a developer would write for this one purpose: no checks, no decisions."""
    v = RECORD.values
    today = dt.date(2025, 3, 1)
    address = tuple(map(v.get, ADDRESS_PARTS))
    return {
        "case_ref": case_pseudonym(RECORD.case_reference),
        "display_name": surname_title(v.get("resident.name")),
        "services": service_codes(ASSIGNMENT.services),
        "phone_masked": phone_masked(v.get("resident.phone")),
        "phone": phone_full(v.get("resident.phone")),
        "area": address_building(address),
        "address": address_full(address),
        "stage": as_is(v.get("episode.stage")),
        "gestation_weeks": as_is(gestation_weeks(v, today)),
        "due_month": month(v.get("episode.due_date")),
        "risk_flags": as_is(v.get("episode.risk_flags")),
        "age_band": age_band(resident_age(v, today)),
    }


def engine() -> object:
    return shipped_policies().evaluate(RECORD, CONSENT, AGREEMENT, ASSIGNMENT, "home_visit", NOW)


def _rate(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(ITERATIONS):
        fn()
    return ITERATIONS / (time.perf_counter() - start)


def main() -> list[dict[str, object]]:
    """The rows as dicts, the format bench/run_all.py collects."""
    return [dict(zip(FIELDS, row, strict=True)) for row in measure()]


def measure() -> list[Row]:
    evaluated = shipped_policies().evaluate(
        RECORD, CONSENT, AGREEMENT, ASSIGNMENT, "home_visit", NOW
    )
    assert set(evaluated.view) == set(hand_written()), "both sides must project the same fields"
    hand: list[float] = []
    eng: list[float] = []
    for _ in range(RUNS):  # interleaved, so drift on a noisy machine hits both alike
        hand.append(_rate(hand_written))
        eng.append(_rate(engine))
    base = statistics.median(hand)
    rows: list[Row] = [
        (
            "hand-written projection",
            "eval/s",
            min(hand),
            base,
            max(hand),
            "hand-written projection",
            1.0,
        ),
        (
            "policy engine (home_visit)",
            "eval/s",
            min(eng),
            statistics.median(eng),
            max(eng),
            "hand-written projection",
            statistics.median(eng) / base,
        ),
    ]
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"policy evaluation, {RUNS} runs x {ITERATIONS} evaluations")
    print()
    print("| case | unit | min | median | max | ratio vs baseline |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, unit, low, mid, high, _, ratio in rows:
        print(f"| {name} | {unit} | {low:,.0f} | {mid:,.0f} | {high:,.0f} | {ratio:.2f} |")
    print()
    print(f"target: engine >= {TARGET_RATIO:.0%} of the hand-written rate")


if __name__ == "__main__":
    print_table(measure())
