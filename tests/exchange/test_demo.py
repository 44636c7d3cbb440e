"""The demo looks like the programme: visits fit each stage, and some statistics are small."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from exchange.demo import SERVICES_BY_STAGE, first_visit, pregnancy_week
from exchange.ledger.synthetic import generate_rows

TODAY = date(2026, 12, 5)


def test_pregnancy_weeks() -> None:
    assert pregnancy_week(TODAY + timedelta(days=280), TODAY) == 0
    assert pregnancy_week(TODAY, TODAY) == 40
    assert pregnancy_week(TODAY + timedelta(days=238), TODAY) == 6


@pytest.mark.parametrize("i", range(7))
def test_pregnancy_visits_fit_the_week_they_fall_in(i: int) -> None:
    for days_to_due in range(239):
        due = TODAY + timedelta(days=days_to_due)
        booking = first_visit("pregnant", due, None, TODAY, i)
        assert booking is not None and booking.on >= TODAY
        assert booking.service in SERVICES_BY_STAGE["pregnant"]
        week = pregnancy_week(due, booking.on)
        if booking.service == "mid_pregnancy":
            assert 14 <= week < 28, (days_to_due, week)
        else:
            assert booking.service == "late_pregnancy" and week >= 28 and booking.on < due or (
                due == TODAY and booking.on == TODAY)
    early = first_visit("pregnant", TODAY + timedelta(days=273), None, TODAY, i)  # week 1
    assert early is not None and early.service == "mid_pregnancy"
    assert pregnancy_week(TODAY + timedelta(days=273), early.on) == 16


@pytest.mark.parametrize("i", range(7))
def test_postpartum_visits_follow_the_childs_age(i: int) -> None:
    seen = {}
    for age in range(700):
        booking = first_visit("postpartum", None, TODAY - timedelta(days=age), TODAY, i)
        assert booking is not None and booking.service in SERVICES_BY_STAGE["postpartum"]
        seen.setdefault(booking.service, []).append(age)
    assert max(seen["confinement"]) == 42 and min(seen["postpartum_recovery"]) == 43
    assert max(seen["postpartum_recovery"]) == 180
    assert first_visit("preparing", None, None, TODAY, i) is None


@pytest.mark.parametrize("as_of", [TODAY, date(2028, 2, 29), date(2031, 1, 1)], ids=str)
def test_the_demo_ledger_has_small_cells_to_suppress(as_of: date) -> None:
    rows = list(generate_rows(200, 1000, as_of=as_of))  # what `make run` loads
    cells = Counter((r[3], r[8]) for r in rows)
    small = {k: v for k, v in cells.items() if 1 <= v <= 4}
    assert any(k[0] == "古庙头社区" for k in small), cells
    assert any(v >= 5 for v in cells.values())
    for r in rows:  # no pregnancy on the ledger before about week 6
        if r[8] == "孕期":
            assert pregnancy_week(date.fromisoformat(r[9]), as_of) >= 6
