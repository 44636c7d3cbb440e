"""A released table: a view of one protected cube (cells, one margin per dimension, total).

Every number a view shows is a cell of the cube, protected with it, or (for a scope of several
communities) the sum of cube cells that are all shown; a sum with a suppressed cell in it is
itself suppressed (`secondary`). So a view can never show more than the cube it is cut from,
and two views of one cube can never be combined into more than that cube either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product

from policies.statistics.cube import TOTAL, Cell
from policies.statistics.errors import CubeError
from policies.statistics.suppression import Flag, Suppressed

# One dimension's coordinate in a view: a node of the cube, or several leaves summed.
Coordinate = str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    key: tuple[tuple[str, str], ...]  # (dimension, category), in the order of `by`
    count: int | None  # None when suppressed
    flag: Flag | None


@dataclass(frozen=True, slots=True)
class View:
    by: tuple[str, ...]
    cells: tuple[Entry, ...]
    margins: Mapping[str, tuple[Entry, ...]]
    total: Entry
    suppressed: int  # how many of the shown entries are suppressed (cells, margins, total)


def view(
    protected: Suppressed,
    by: Sequence[str],
    *,
    at: Mapping[str, str] | None = None,
    scope: Mapping[str, Sequence[str]] | None = None,
    measure: str | None = None,
    exact: bool = False,
) -> View:
    """Cut a view: `by` dimensions vary, every other is summed (TOTAL), fixed to a node by
    `at` (a period: a year, quarter or month), or limited to some leaves by `scope` (a
    cadre's communities). `exact` shows every count, still flagging what a release hides."""
    cube = protected.cube
    names = [d.name for d in cube.dims]
    at, scope = dict(at or {}), dict(scope or {})
    if len(set(by)) != len(by) or any(b not in names for b in by):
        raise CubeError("by must name distinct dimensions of the table")
    if set(at) & set(scope) or any(n not in names for n in (*at, *scope)):
        raise CubeError("at and scope must name distinct dimensions of the table")
    if measure is not None and measure not in protected.companions:
        raise CubeError(f"no measure {measure!r}")
    fixed: list[Coordinate] = []
    members: list[tuple[str, ...]] = []
    for dim in cube.dims:
        node = at.get(dim.name, TOTAL)
        if node not in dim.nodes:
            raise CubeError(f"{dim.name}: no category {node!r}")
        leaves = dim.leaves_under(node)
        coordinate: Coordinate = node
        if dim.name in scope:
            allowed = tuple(leaf for leaf in dim.leaves if leaf in set(scope[dim.name]))
            if len(allowed) != len(set(scope[dim.name])):
                raise CubeError(f"{dim.name}: the scope names an unknown category")
            leaves = allowed
            coordinate = _coordinate(allowed, dim.leaves)
        fixed.append(coordinate)
        members.append(leaves)
    index = {n: i for i, n in enumerate(names)}
    varying = [index[b] for b in by]

    def entry(coords: list[Coordinate]) -> Entry:
        key = tuple((names[i], str(coords[i])) for i in varying)
        count, flag = _value(protected, coords, measure, exact)
        return Entry(key, count, flag)

    cells = []
    for combo in product(*(members[i] for i in varying)):
        coords = list(fixed)
        for i, value in zip(varying, combo, strict=True):
            coords[i] = value
        cells.append(entry(coords))
    margins: dict[str, tuple[Entry, ...]] = {}
    for i in varying:
        row = []
        for value in members[i]:
            coords = list(fixed)
            coords[i] = value
            row.append(_only(entry(coords), names[i]))
        margins[names[i]] = tuple(row)
    total = Entry((), *_value(protected, fixed, measure, exact))
    shown = [*cells, *(e for row in margins.values() for e in row), total]
    return View(tuple(by), tuple(cells), margins, total, sum(1 for e in shown if e.flag))


def _coordinate(allowed: tuple[str, ...], leaves: tuple[str, ...]) -> Coordinate:
    if len(allowed) == len(leaves):
        return TOTAL
    if len(allowed) == 1:
        return allowed[0]
    return allowed


def _only(entry: Entry, name: str) -> Entry:
    return Entry(tuple(kv for kv in entry.key if kv[0] == name), entry.count, entry.flag)


def _value(
    protected: Suppressed, coords: Sequence[Coordinate], measure: str | None, exact: bool
) -> tuple[int | None, Flag | None]:
    choices = [(c,) if isinstance(c, str) else c for c in coords]
    parts: list[Cell] = [tuple(p) for p in product(*choices)]
    values = protected.values if measure is None else protected.companions[measure]
    if len(parts) == 1:
        count = values[parts[0]] if exact else protected.shown(parts[0], measure)
        return count, protected.flag(parts[0])
    hidden = any(protected.flag(p) is not None for p in parts)
    if hidden and not exact:
        return None, Flag.SECONDARY
    return sum(values[p] for p in parts), Flag.SECONDARY if hidden else None
