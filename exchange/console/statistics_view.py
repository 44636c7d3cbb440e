"""统计分析 laid out for the page: a released table (exchange.services.statistics) as tables and
bar charts, each chart with the table it draws beside it (the table is the accessible version).

Nothing is computed here but layout. Every number is the release's: a suppressed cell has no
count and shows the same mark as the workbook and the terminal (`<5` when the cell itself is
small, `*` when it is hidden to protect one); a chart's data carries it as null with that mark,
never as a number. An exact release (an office admin's, with a reason) shows every count and
still marks the cells other releases hide.

    one dimension     a chart of its categories + a table of them with the total
    two dimensions    a grouped bar chart + the cross table (row and column totals)
    three dimensions  one chart + table per dimension (its margin), then every cell in a list
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from exchange.console.i18n import N_
from exchange.db.models.codes import SERVICES, STAGES
from exchange.services.statistics import Release
from exchange.services.statistics_export import shown as mark
from exchange.services.statistics_queries import DELETION_STATUSES, NO_DUE_MONTH
from policies.statistics import Entry

Translate = Callable[[str], str]

DIMENSIONS: Final = {
    "community": N_("Community"),
    "stage": N_("Stage"),
    "due_month": N_("Due month"),
    "service": N_("Service"),
    "month": N_("Month"),
    "contractor": N_("Contractor"),
    "status": N_("Deletion status"),
}
CATEGORIES: Final[dict[str, str]] = {
    **dict(zip(STAGES, (N_("Preparing"), N_("Pregnant"), N_("Postpartum")), strict=True)),
    **dict(zip(SERVICES, (N_("Mid-pregnancy guidance"), N_("Late-pregnancy guidance"),
                          N_("Confinement guidance"), N_("Early-education guidance"),
                          N_("Postpartum-recovery guidance"), N_("Parenting guidance")),
               strict=True)),
    **dict(zip(DELETION_STATUSES, (N_("Deletion confirmed"), N_("Deletion outstanding")),
               strict=True)),
    NO_DUE_MONTH: N_("No due date"),
}  # fmt: skip
MEASURES: Final = {"residents": N_("Number of residents"), "events": N_("Person-times")}
TOTAL: Final = N_("Total")


@dataclass(frozen=True, slots=True)
class Shown:
    """One number as the page shows it."""

    text: str  # "12", "<5" or "*"
    value: int | None  # None when suppressed; the count in an exact release
    flag: str | None  # "primary" | "secondary" | None: why a release hides it


@dataclass(frozen=True, slots=True)
class Grid:
    """A table: a heading per column, then rows of a label and one number per column."""

    caption: str
    headings: tuple[str, ...]  # the first names the row labels
    rows: tuple[tuple[str, tuple[Shown, ...]], ...]
    total_rows: int = 1  # the last rows that are totals (合计)


@dataclass(frozen=True, slots=True)
class Figure:
    """A bar chart and the table it draws; `chart` is the JSON data island."""

    key: str
    title: str
    aria_label: str
    grid: Grid
    chart: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Layout:
    figures: tuple[Figure, ...]
    listing: Grid | None  # every cell, for three dimensions


def _shown(entry: Entry, threshold: int) -> Shown:
    return Shown(str(mark(entry, threshold)), entry.count, entry.flag.value if entry.flag else None)


def category(value: str, _: Translate) -> str:
    """A category as the office reads it; communities, contractors and months as they are."""
    label = CATEGORIES.get(value)
    return _(label) if label else value


def layout(release: Release, _: Translate, locale: str) -> Layout:
    view, t = release.view, release.threshold
    measure = _(MEASURES[release.request.measure])
    by = view.by
    if len(by) == 1:
        return Layout((_one(by[0], view.cells, view.total, t, measure, _, locale, "f1"),), None)
    if len(by) == 2:
        return Layout((_cross(release, measure, _, locale),), None)
    figures = tuple(_one(d, view.margins[d], view.total, t, measure, _, locale, f"f{i + 1}")
                    for i, d in enumerate(by))  # fmt: skip
    return Layout(figures, _listing(release, measure, _))


def _aria(_: Translate, measure: str, dims: Sequence[str]) -> str:
    return _("Bar chart of %(measure)s by %(dims)s; the table beside it gives every figure.") % {
        "measure": measure, "dims": _(", ").join(dims)}  # fmt: skip


def _one(dim: str, entries: Sequence[Entry], total: Entry, t: int, measure: str,
         _: Translate, locale: str, key: str) -> Figure:  # fmt: skip
    labels = [category(e.key[-1][1], _) for e in entries]
    numbers = [_shown(e, t) for e in entries]
    heading = _(DIMENSIONS[dim])
    grid = Grid(_("%(measure)s by %(dim)s") % {"measure": measure, "dim": heading},
                (heading, measure),
                (*((label, (n,)) for label, n in zip(labels, numbers, strict=True)),
                 (_(TOTAL), (_shown(total, t),))))  # fmt: skip
    chart = {"locale": locale, "categories": labels, "yName": measure,
             "series": [_series(measure, numbers)]}  # fmt: skip
    return Figure(key, grid.caption, _aria(_, measure, [heading]), _tabled(grid, _), chart)


def _cross(release: Release, measure: str, _: Translate, locale: str) -> Figure:
    """Rows: the dimension with more categories (the chart's axis); columns: the other
    (the chart's series)."""
    view, t = release.view, release.threshold
    a, b = view.by
    names = [_(DIMENSIONS[a]), _(DIMENSIONS[b])]  # in the reader's order, for the caption
    if len(view.margins[b]) > len(view.margins[a]):
        a, b = b, a
    cells = {(dict(e.key)[a], dict(e.key)[b]): e for e in view.cells}
    rows_cat = [dict(e.key)[a] for e in view.margins[a]]
    cols_cat = [dict(e.key)[b] for e in view.margins[b]]
    row_totals = [_shown(e, t) for e in view.margins[a]]
    grid_rows = [
        (category(r, _), (*(_shown(cells[r, c], t) for c in cols_cat), row_totals[i]))
        for i, r in enumerate(rows_cat)
    ]
    col_totals = tuple(_shown(e, t) for e in view.margins[b])
    grid_rows.append((_(TOTAL), (*col_totals, _shown(view.total, t))))
    ha, hb = _(DIMENSIONS[a]), _(DIMENSIONS[b])
    caption = _("%(measure)s by %(a)s and %(b)s") % {"measure": measure, "a": names[0],
                                                      "b": names[1]}  # fmt: skip
    headings = (f"{ha} \\ {hb}", *(category(c, _) for c in cols_cat), _(TOTAL))
    grid = Grid(caption, headings, tuple(grid_rows))
    series = [_series(category(c, _), [_shown(cells[r, c], t) for r in rows_cat])
              for c in cols_cat]  # fmt: skip
    chart = {"locale": locale, "categories": [category(r, _) for r in rows_cat],
             "yName": measure, "series": series}  # fmt: skip
    return Figure("f1", caption, _aria(_, measure, names), _tabled(grid, _), chart)


def _tabled(grid: Grid, _: Translate) -> Grid:
    """A chart's table: its caption says it is the table beside the chart of that title."""
    return Grid(_("%(title)s (table)") % {"title": grid.caption}, grid.headings, grid.rows,
                grid.total_rows)  # fmt: skip


def _series(name: str, numbers: Sequence[Shown]) -> dict[str, Any]:
    """A chart series: the shown count, or null and the mark of a suppressed cell."""
    return {"name": name, "values": [n.value for n in numbers],
            "marks": [None if n.flag is None or n.value is not None else n.text
                      for n in numbers]}  # fmt: skip


def _listing(release: Release, measure: str, _: Translate) -> Grid:
    view, t = release.view, release.threshold
    headings = (*(_(DIMENSIONS[d]) for d in view.by), measure)
    rows = tuple((" · ".join(category(v, _) for _d, v in e.key), (_shown(e, t),))
                 for e in view.cells)  # fmt: skip
    total = ((_(TOTAL), (_shown(view.total, t),)),)
    caption = _("Every cell: %(measure)s by %(dims)s") % {
        "measure": measure, "dims": _(", ").join(headings[:-1])}  # fmt: skip
    return Grid(caption, (" · ".join(headings[:-1]), measure), (*rows, *total))
