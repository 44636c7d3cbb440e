"""The release service: scope, exact figures, one audit entry per release, bad parameters,
and the due-month backfill (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services import residents, statistics
from exchange.services.auditing import MemoryAuditSink
from exchange.services.errors import Conflict, InvalidInput, NotPermitted
from exchange.services.statistics_backfill import backfill_due_months
from keys.keyring import Keyring
from keys.providers import MemoryKeyProvider
from policies.statistics import Flag
from tests.exchange.statistics.conftest import Street


def _populate(street: Street) -> None:
    street.residents(2, "向阳社区", "preparing")
    street.residents(30, "向阳社区", "pregnant", "2026-06")
    street.residents(20, "民城路社区", "preparing")
    street.residents(40, "民城路社区", "pregnant", "2026-06")
    street.residents(50, "瑞阳路社区", "preparing")
    street.residents(60, "瑞阳路社区", "pregnant", "2026-07")


def _release(street: Street, who: str, table: str = "residents", by: str = "community,stage",
             sink: MemoryAuditSink | None = None, **kw):  # noqa: ANN003, ANN202
    request = statistics.parse(table, by, **kw)
    with unit_of_work(street.factory) as s:
        return statistics.release(s, street.acting(who), request, sink=sink or MemoryAuditSink())


def _cells(release) -> dict[tuple[str, ...], tuple[int | None, Flag | None]]:  # noqa: ANN001
    return {tuple(v for _, v in e.key): (e.count, e.flag) for e in release.view.cells}


def test_a_small_cell_is_suppressed_with_partners_and_totals_stay_exact(street: Street) -> None:
    _populate(street)
    release = _release(street, "admin")
    cells = _cells(release)
    assert cells[("向阳社区", "preparing")] == (None, Flag.PRIMARY)
    # a partner in its column, and (every preparing resident has no due month, every pregnant
    # one has one, so no rectangle exists in the cube) the two community totals
    assert cells[("民城路社区", "preparing")] == (None, Flag.SECONDARY)
    assert [e.count for e in release.view.margins["community"]] == [None, None, 110]
    assert cells[("向阳社区", "postpartum")] == (0, None)  # zero shown
    assert release.view.total.count == 202
    assert release.view.suppressed == 4


def test_a_cadre_sees_her_community_cut_from_the_street_table(street: Street) -> None:
    _populate(street)
    whole = _release(street, "admin")
    street_cells = _cells(whole)
    mine = _release(street, "cadre")
    assert {k[0] for k in _cells(mine)} == {"向阳社区"}
    for key, value in _cells(mine).items():
        assert street_cells[key] == value  # the same protection: views of one cube
    stage_only = _release(street, "cadre", by="stage")
    xiangyang = whole.view.margins["community"][0]
    assert (stage_only.view.total.count, stage_only.view.total.flag) == (xiangyang.count,
                                                                         xiangyang.flag)


def test_sums_over_a_cadres_communities_use_shown_cells_only(street: Street) -> None:
    _populate(street)
    two = _release(street, "cadre2", by="stage")
    by_stage = {e.key[0][1]: e for e in two.view.cells}
    assert by_stage["preparing"].count is None  # 向阳's 2 is in it
    assert by_stage["preparing"].flag is Flag.SECONDARY
    assert by_stage["postpartum"].count == 0


def test_exact_figures_only_for_an_office_admin_with_a_reason(street: Street) -> None:
    _populate(street)
    for who in ("cadre", "auditor"):
        with pytest.raises(NotPermitted):
            _release(street, who, exact=True, reason="settlement")
    with pytest.raises(InvalidInput) as missing:
        statistics.parse("residents", "community", exact=True)
    assert [p.field for p in missing.value.errors] == ["reason"]
    with pytest.raises(InvalidInput):
        statistics.parse("residents", "community", exact=True, reason="my neighbour asked")
    sink = MemoryAuditSink()
    exact = _release(street, "admin", exact=True, reason="settlement", sink=sink)
    assert _cells(exact)[("向阳社区", "preparing")] == (2, Flag.PRIMARY)  # exact, still flagged
    (entry,) = sink.entries
    assert entry.action == "statistics.release_exact"
    assert dict(entry.details)["reason"] == "settlement"


def test_every_release_is_one_audit_entry_without_a_count(street: Street) -> None:
    _populate(street)
    sink = MemoryAuditSink()
    release = _release(street, "cadre", sink=sink, start=date(2026, 6, 1), end=date(2026, 6, 30))
    (entry,) = sink.entries
    details = dict(entry.details)
    assert entry.action == "statistics.release"
    assert details == {
        "table": "residents", "by": ("community", "stage"), "period": "2026-06",
        "measure": "residents", "scope": "communities", "scope.communities": 1,
        "rule.threshold": 5, "rule.secondary": "hypercube", "rule.zeros_suppressed": False,
        "cells.released": 3 + 1 + 3 + 1, "cells.suppressed": release.view.suppressed,
        "withheld": False, "exact": False,
    }  # fmt: skip
    assert entry.subjects == ()


def test_a_cadre_gets_no_street_only_table(street: Street) -> None:
    with pytest.raises(NotPermitted):
        _release(street, "cadre", table="deletions", by="contractor")
    whole = _release(street, "admin", table="deletions", by="contractor,status")
    assert whole.view.total.count == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "fields"),
    [
        (("nope", "community"), {}, ["table"]),
        (("residents", "community,colour"), {}, ["by"]),
        (("residents", ""), {}, ["by"]),
        (("residents", "community"), {"start": date(2026, 1, 1), "end": date(2026, 2, 28)},
         ["from"]),
        (("residents", "community"), {"start": date(2026, 1, 2), "end": date(2026, 1, 31)},
         ["from"]),
        (("residents", "community"), {"start": date(2026, 1, 1)}, ["to"]),
        (("residents", "community"), {"measure": "events"}, ["measure"]),
        (("residents", "colour"), {"measure": "x", "reason": "settlement"},
         ["by", "measure", "reason"]),
    ],
)
def test_bad_parameters_name_themselves(args, kwargs, fields) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInput) as caught:
        statistics.parse(*args, **kwargs)
    assert [p.field for p in caught.value.errors] == fields


@pytest.mark.parametrize(
    ("start", "end", "period"),
    [(date(2026, 3, 1), date(2026, 3, 31), "2026-03"), (date(2026, 4, 1), date(2026, 6, 30),
     "2026-Q2"), (date(2026, 1, 1), date(2026, 12, 31), "2026")],
)
def test_periods_are_whole_months_quarters_or_years(start, end, period) -> None:  # noqa: ANN001
    assert statistics.parse("bookings", "service", start, end).period == period


def test_the_import_writes_due_months_and_the_backfill_fills_old_rows(street: Street) -> None:
    keyring = Keyring(MemoryKeyProvider.generate())
    with unit_of_work(street.factory) as s:
        data = residents.ResidentInput(name="李秀英", national_id="370214199001011232",
                                       phone="13912345678", community="向阳社区",
                                       stage="pregnant", due_date=date(2026, 6, 20))  # fmt: skip
        residents.register(s, keyring, street.acting("cadre"), data)
    with unit_of_work(street.factory) as s:
        assert s.scalars(select(m.MaternalEpisode.due_month)).all() == ["2026-06"]
        s.execute(update(m.MaternalEpisode).values(due_month=None))  # as before migration 0008
    with pytest.raises(Conflict, match="backfill"):
        _release(street, "admin")
    with unit_of_work(street.factory) as s:
        assert backfill_due_months(s, keyring, street.acting("admin")) == 1
    with unit_of_work(street.factory) as s:
        assert s.scalars(select(m.MaternalEpisode.due_month)).all() == ["2026-06"]
    release = _release(street, "admin", by="due_month")
    assert [e.key for e in release.view.cells] == [(("due_month", "2026-06"),)]
