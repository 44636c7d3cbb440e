"""Each table's GROUP BY on the live data (SQLite and PostgreSQL): distinct residents, the
latest episode, CST months, JSON services, events behind residents."""

from __future__ import annotations

from datetime import UTC, date, datetime

from exchange.db.engine import unit_of_work
from exchange.services.statistics_queries import TABLES, fetch_cube, month_dimension
from tests.exchange.statistics.conftest import Street


def _counts(street: Street, table: str, period: str | None = None):  # noqa: ANN202
    with unit_of_work(street.factory) as s:
        return fetch_cube(s, TABLES[table], period)


def test_residents_counts_each_once_in_her_latest_stage(street: Street) -> None:
    street.residents(3, "向阳社区", "pregnant", "2026-06")
    street.resident("向阳社区", "pregnant", "2026-06", earlier=("postpartum", "2024-03"))
    street.resident("向阳社区", "pregnant", "2026-06", erased=True)
    street.residents(2, "民城路社区", "preparing")
    cube = _counts(street, "residents")
    assert cube.counts == {("向阳社区", "pregnant", "2026-06"): 4,
                           ("民城路社区", "preparing", "none"): 2}  # fmt: skip
    assert cube.dim("community").leaves == ("向阳社区", "民城路社区", "瑞阳路社区")
    assert cube.dim("due_month").leaves == ("2026-06", "none")


def test_assignments_count_residents_per_chosen_service(street: Street) -> None:
    first = street.resident("向阳社区", "pregnant", "2026-06")
    second = street.resident("向阳社区", "pregnant", "2026-06")
    street.assignment(first)
    street.assignment(second, ["mid_pregnancy", "late_pregnancy", "early_education",
                               "postpartum_recovery"])  # fmt: skip
    street.assignment(second, at=datetime(2026, 5, 31, 17, tzinfo=UTC), status="revoked")
    cube = _counts(street, "assignments")
    assert cube.counts[("向阳社区", "mid_pregnancy", "2026-05")] == 2
    assert cube.counts[("向阳社区", "parenting", "2026-05")] == 1
    assert cube.counts[("向阳社区", "early_education", "2026-05")] == 1
    assert sum(cube.counts.values()) == 8  # the revoked assignment is not counted


def test_bookings_and_deliveries_carry_events_behind_residents(street: Street) -> None:
    rid = street.resident("向阳社区", "postpartum", "2026-03")
    other = street.resident("向阳社区", "postpartum", "2026-03")
    a, b = street.assignment(rid), street.assignment(other)
    for day in (3, 10, 17):
        street.booking(a, "confinement", date(2026, 4, day))
    street.booking(b, "confinement", date(2026, 4, 30))
    street.delivery(a, "confinement", datetime(2026, 3, 31, 16, 30, tzinfo=UTC))  # 00:30 CST
    street.delivery(a, "confinement", datetime(2026, 4, 2, 1, tzinfo=UTC))
    bookings = _counts(street, "bookings")
    assert bookings.counts == {("向阳社区", "confinement", "2026-04"): 2}
    assert bookings.companions["events"] == {("向阳社区", "confinement", "2026-04"): 4}
    deliveries = _counts(street, "deliveries")
    assert deliveries.counts == {("向阳社区", "confinement", "2026-04"): 1}  # April in Qingdao
    assert deliveries.companions["events"] == {("向阳社区", "confinement", "2026-04"): 2}


def test_deletions_count_cases_by_contractor_and_status(street: Street) -> None:
    street.tombstone("ref-a", datetime(2026, 2, 1, tzinfo=UTC), acknowledged=True)
    street.tombstone("ref-a", datetime(2026, 2, 2, tzinfo=UTC), acknowledged=True)  # same case
    street.tombstone("ref-b", datetime(2026, 2, 3, tzinfo=UTC), acknowledged=False)
    cube = _counts(street, "deletions")
    assert cube.counts == {("青岛母婴服务中心", "acknowledged", "2026-02"): 1,
                           ("青岛母婴服务中心", "outstanding", "2026-02"): 1}  # fmt: skip


def test_a_period_without_data_still_has_its_months(street: Street) -> None:
    street.residents(6, "向阳社区", "pregnant", "2026-06")
    cube = _counts(street, "residents", "2027-Q1")
    assert {"2027-01", "2027-02", "2027-03", "2027-Q1", "2027"} <= set(cube.dim("due_month").nodes)


def test_months_run_without_gaps_under_quarters_and_years() -> None:
    dim = month_dimension("month", {"2025-11", "2026-02", "none"})
    assert dim.leaves == ("2025-11", "2025-12", "2026-01", "2026-02", "none")
    assert dim.path("2025-12") == ("2025-12", "2025-Q4", "2025", "*")
    assert dim.path("none") == ("none", "*")
