"""The statistics page's street and the check that a page carries no suppressed count.

The street: tests/street.py's 202 residents plus three postpartum residents in 民城路社区, the
console cadre's community, so that she too has a small cell. By community and stage the release
hides 向阳社区 preparing (2) and 民城路社区 postpartum (3) as `<5`, and 民城路社区 preparing (20),
the community totals 32 and 63 and the preparing total 72 as `*`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from sqlalchemy.orm import Session, sessionmaker

from exchange.db.engine import unit_of_work
from exchange.services import statistics
from exchange.services.auditing import MemoryAuditSink
from policies.statistics import Entry
from tests.street import Street

ISLAND = re.compile(r'<script type="application/json" id="([^"]+)">(.*?)</script>', re.S)
CELL = re.compile(r'<td class="text-end( cell-(primary|secondary))?">([^<]*)')
TOKEN = re.compile(r"[0-9a-f]{64}")  # the CSRF token, in a hidden field and hx-headers


def lay_street(factory: sessionmaker[Session]) -> Street:
    street = Street(factory)
    street.populate()
    street.residents(3, "民城路社区", "postpartum")
    return street


def _entries(release: statistics.Release) -> Iterator[Entry]:
    view = release.view
    yield from view.cells
    for margin in view.margins.values():
        yield from margin
    yield view.total


def hidden_and_shown(street: Street, table: str = "residents",
                     by: str = "community,stage") -> tuple[set[int], set[int]]:  # fmt: skip
    """The exact counts a release hides, and the counts it shows (as an office admin)."""
    with unit_of_work(street.factory) as s:
        shown = statistics.release(s, street.acting("admin"), statistics.parse(table, by),
                                   sink=MemoryAuditSink())  # fmt: skip
        exact = statistics.release(
            s, street.acting("admin"),
            statistics.parse(table, by, exact=True, reason="verification"),
            sink=MemoryAuditSink(),
        )  # fmt: skip
    counts = {e.key: e.count for e in _entries(exact)}
    hidden = {counts[e.key] for e in _entries(shown) if e.count is None}
    visible = {e.count for e in _entries(shown) if e.count is not None}
    return {n for n in hidden if n is not None}, visible


def islands(html: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {key: json.loads(body) for key, body in ISLAND.findall(html)}


def _ints(value: object) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _ints(v)
    elif isinstance(value, list):
        for v in value:
            yield from _ints(v)


def assert_no_suppressed_count(html: str, street: Street) -> None:
    """Suppressed cells show `<5` or `*`; no chart data carries a number that is not shown in
    the tables; and a hidden count of 5 or more (which, unlike 1..4, could not appear by
    chance as another figure) is nowhere in the page, attributes and scripts included."""
    hidden, visible = hidden_and_shown(street)
    marks = {"primary": "&lt;5", "secondary": "*"}
    cells = CELL.findall(html)
    assert cells, "no table cells on the page"
    for _, flag, text in cells:
        if flag:
            assert text.strip() == marks[flag], (flag, text)
    data = islands(html)
    assert data, "no chart data on the page"
    for chart in data.values():
        assert set(_ints(chart)) <= visible, chart
        for series in chart["series"]:
            for value, mark in zip(series["values"], series["marks"], strict=True):
                assert (value is None) == (mark is not None), series
                assert mark in (None, "<5", "*")
    page = TOKEN.sub("", html)
    for n in hidden - visible:
        if n >= 5:
            assert not re.search(rf"(?<![\w.:-]){n}(?![\w.:-])", page), n
