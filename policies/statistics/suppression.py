"""Cell suppression: which cells of a cube may be shown, and proof that the rest stay hidden.

Primary: a cell (inner, margin or total) counting 1..threshold-1 distinct residents is
suppressed and shown as `<5`. Zero is shown as 0: no dimension we publish is a sensitive
attribute, so "nobody here" discloses nobody (`Rule.zeros_disclosive` makes zeros primary for a
table where it would).

Secondary, by the hypercube method (Repsilber's, as in tau-argus' GHMITER): every suppressed
cell must be able to move. For each primary cell not yet protected we choose a *move*: a set of
cells and signs such that adding `sign` to each keeps every equation of the cube (every
margin and total is the sum of its cells) and changes nothing shown. In every dimension the
move either alternates (the primary's category +1, a sibling category -1, so every sum along
the dimension is unchanged) or lifts (one leaf below the primary's node +1 together with every
node above it, so the margins it changes move with it and must be suppressed too). Alternating
in every dimension is the classic hypercube; lifting is what protects a margin or a cell with
no usable sibling. The move is kept only if it is *feasible for an onlooker who knows the
flags*: the cube moved by +1 or by -1 still has every primary cell in 1..threshold-1, every
other suppressed cell at threshold or more, no negative count, and every companion measure
(visits behind residents) within the same bounds. Among the feasible moves we take the one
that suppresses the fewest new cells, then the smallest total.

What that proves: every suppressed cell has a second integer value consistent with every shown
number, every equation of the cube and everything the flags tell (`primary` means 1..t-1,
`secondary` means t or more), so no suppressed cell can be recomputed; the property tests solve
the linear programme for each one. Every release is a view of one cube protected as a whole,
so tables released together (community vs the whole street, month vs quarter vs year) cannot
be combined to undo it. Limits: the protection is one unit wide, not an interval of a chosen
width (tau-argus' protection levels); the choice is a heuristic, not the fewest cells an
optimiser would find; and when some primary cell has no feasible move (a tiny table whose
flags alone pin it down) the whole cube is withheld: every cell suppressed and flagged
`secondary` (`Suppressed.withheld`).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import product
from typing import Final

from policies.statistics.cube import TOTAL, Cell, Cube, Dimension
from policies.statistics.errors import RuleError

MIN_THRESHOLD: Final = 3  # below 3 a `primary` flag alone tells the value (1)
MAX_THRESHOLD: Final = 1000
CANDIDATE_BUDGET: Final = 400  # choices examined per primary cell, cheapest bound first


class Flag(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True, slots=True)
class Rule:
    threshold: int = 5
    zeros_disclosive: bool = False

    def __post_init__(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int) or not MIN_THRESHOLD <= t <= MAX_THRESHOLD:
            raise RuleError(f"threshold must be an integer {MIN_THRESHOLD}..{MAX_THRESHOLD}")

    @property
    def name(self) -> str:
        zeros = "suppressed" if self.zeros_disclosive else "shown"
        return f"threshold={self.threshold};secondary=hypercube;zeros={zeros}"


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A protected cube: every cell's value and, for the suppressed ones, their flag."""

    cube: Cube
    rule: Rule
    values: Mapping[Cell, int]
    flags: Mapping[Cell, Flag]
    companions: Mapping[str, Mapping[Cell, int]] = field(default_factory=dict)
    withheld: bool = False

    def flag(self, cell: Cell) -> Flag | None:
        return self.flags.get(cell)

    def shown(self, cell: Cell, measure: str | None = None) -> int | None:
        """The count to publish, or None when suppressed."""
        if cell in self.flags:
            return None
        return (self.values if measure is None else self.companions[measure])[cell]

    @property
    def primary(self) -> int:
        return sum(1 for f in self.flags.values() if f is Flag.PRIMARY)

    @property
    def secondary(self) -> int:
        return sum(1 for f in self.flags.values() if f is Flag.SECONDARY)


# One dimension's part of a move: (sign, node) entries.
_Option = tuple[tuple[int, str], ...]


def protect(cube: Cube, rule: Rule | None = None) -> Suppressed:
    rule = rule or Rule()
    values = cube.aggregate()
    companions = {name: cube.aggregate(m) for name, m in cube.companions.items()}
    low = 0 if rule.zeros_disclosive else 1
    primary = {c for c, v in values.items() if low <= v < rule.threshold}
    flags: dict[Cell, Flag] = dict.fromkeys(primary, Flag.PRIMARY)
    state = _State(cube.dims, values, companions, primary, flags, rule, low)
    # margins first: their moves reach down into the inner cells and often protect those too
    depth = [{n: len(tree.path[tree.leaves[n][0]]) - len(dim.path(n)) for n in dim.nodes}
             for dim, tree in zip(cube.dims, state.trees, strict=True)]  # fmt: skip
    coarseness = {c: sum(d[n] for d, n in zip(depth, c, strict=True)) for c in primary}
    for cell in sorted(primary, key=lambda c: (-coarseness[c], values[c], c)):
        if cell in state.protected:
            continue
        move = state.best_move(cell)
        if move is None:
            # withheld whole, every cell `secondary`: a `primary` flag would still say 1..t-1,
            # and flags alone can pin cells down (1 and 1 under a total of 2, threshold 3)
            everything = dict.fromkeys(values, Flag.SECONDARY)
            return Suppressed(cube, rule, values, everything, companions, withheld=True)
        state.apply(move)
    return Suppressed(cube, rule, values, flags, companions)


class _Tree:
    """A dimension's paths, leaves and children, computed once per protection."""

    def __init__(self, dim: Dimension) -> None:
        self.path = {leaf: dim.path(leaf) for leaf in dim.leaves}
        self.leaves: dict[str, list[str]] = {}
        self.children: dict[str, list[str]] = {}
        for leaf, path in self.path.items():
            for node in path:
                self.leaves.setdefault(node, []).append(leaf)
            for child, parent in zip(path, path[1:], strict=False):
                kids = self.children.setdefault(parent, [])
                if child not in kids:
                    kids.append(child)
        self.parent = {child: parent for parent, kids in self.children.items() for child in kids}

    def up_to(self, leaf: str, node: str) -> tuple[str, ...]:
        path = self.path[leaf]
        return path[: path.index(node) + 1]


@dataclass
class _State:
    dims: tuple[Dimension, ...]
    values: Mapping[Cell, int]
    companions: Mapping[str, Mapping[Cell, int]]
    primary: set[Cell]
    flags: dict[Cell, Flag]
    rule: Rule
    low: int
    protected: set[Cell] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.trees = [_Tree(d) for d in self.dims]

    def apply(self, move: dict[Cell, int]) -> None:
        for cell in move:
            self.flags.setdefault(cell, Flag.SECONDARY)
        self.protected.update(move)

    def best_move(self, cell: Cell) -> dict[Cell, int] | None:
        """The cheapest feasible move through `cell`, by best-first branch and bound over the
        choices of one option per dimension: a choice's bound (the new cells it shares with
        `cell`'s own lines) never exceeds its cost, so the search stops when the next bound
        reaches the best cost found. At most `CANDIDATE_BUDGET` choices are examined."""
        per_dim = [self._options(cell, i) for i in range(len(self.dims))]
        if any(not options for options in per_dim):
            return None

        def bound(at: tuple[int, ...]) -> tuple[int, int]:
            new = value = 0
            for options, k in zip(per_dim, at, strict=True):
                new, value = new + options[k][0][0], value + options[k][0][1]
            return new, value

        start = (0,) * len(per_dim)
        heap = [(bound(start), start)]
        seen = {start}
        best: tuple[tuple[int, int], dict[Cell, int]] | None = None
        for _ in range(CANDIDATE_BUDGET):
            if not heap:
                break
            low, at = heapq.heappop(heap)
            if best is not None and low >= best[0]:
                break
            for i in range(len(at)):
                if at[i] + 1 < len(per_dim[i]):
                    nxt = (*at[:i], at[i] + 1, *at[i + 1 :])
                    if nxt not in seen:
                        seen.add(nxt)
                        heapq.heappush(heap, (bound(nxt), nxt))
            move = _support(tuple(options[k][1] for options, k in zip(per_dim, at, strict=True)))
            if move is None:
                continue
            cost = self._cost(move)
            if (best is None or cost < best[0]) and self._feasible(move):
                best = (cost, move)
        if best is None:
            return self._lift_only(cell, per_dim)
        return best[1]

    def _lift_only(
        self, cell: Cell, per_dim: list[list[tuple[tuple[int, int], _Option]]]
    ) -> dict[Cell, int] | None:
        """Past the budget: lift in every dimension (the cell with all its margins), the
        move that exists whenever those margins have room."""
        lifts = [next((o for _, o in options if all(s > 0 for s, _ in o)), None)
                 for options in per_dim]  # fmt: skip
        if any(o is None for o in lifts):
            return None
        move = _support(tuple(o for o in lifts if o is not None))
        return move if move is not None and self._feasible(move) else None

    def _options(self, cell: Cell, i: int) -> list[tuple[tuple[int, int], _Option]]:
        """The ways the move may treat dimension i, cheapest first, with their share of the
        cost: alternate with a sibling (+1 here, -1 there) or lift (+1 here and above)."""
        tree, node = self.trees[i], cell[i]
        options = [tuple((1, n) for n in tree.path[leaf]) for leaf in tree.leaves[node]]
        if node != TOTAL:
            siblings = [n for n in tree.children[tree.parent[node]] if n != node]
            for other in siblings:
                for a, b in product(tree.leaves[node], tree.leaves[other]):
                    plus = tuple((1, n) for n in tree.up_to(a, node))
                    options.append(plus + tuple((-1, n) for n in tree.up_to(b, other)))
        return self._ranked(cell, i, options)

    def _ranked(
        self, cell: Cell, i: int, options: list[_Option]
    ) -> list[tuple[tuple[int, int], _Option]]:
        scored = []
        for option in options:
            new = value = tight = 0
            for sign, node in option:
                here = (*cell[:i], node, *cell[i + 1 :])
                if here in self.flags:
                    continue
                if not self._may_join(here):
                    break
                new, value = new + 1, value + self.values[here]
                tight += sign < 0 and self.values[here] <= self.rule.threshold
            else:
                scored.append(((new, value), tight, option))
        # fewest new cells, then the smallest, then partners with room to go down
        scored.sort(key=lambda s: (s[0], s[1]))
        return [(score, option) for score, _, option in scored]

    def _may_join(self, cell: Cell) -> bool:
        # a non-primary zero cannot move: one more would make it primary, one less negative
        return cell in self.primary or self.values[cell] > 0

    def _cost(self, move: dict[Cell, int]) -> tuple[int, int]:
        new = [c for c in move if c not in self.flags]
        return len(new), sum(self.values[c] for c in new)

    def _feasible(self, move: dict[Cell, int]) -> bool:
        if not all(self._may_join(c) for c in move):
            return False
        t, low = self.rule.threshold, self.low
        measures = [(self.values, t - 1), *((m, None) for m in self.companions.values())]
        for measure, primary_cap in measures:
            if not any(
                all(
                    _within(measure[c] + direction * sign, c in self.primary, low, t, primary_cap)
                    for c, sign in move.items()
                )
                for direction in (1, -1)
            ):
                return False
        return True


def _within(value: int, primary: bool, low: int, t: int, cap: int | None) -> bool:
    if primary:
        return value >= low and (cap is None or value <= cap)
    return value >= t


def _support(choice: tuple[_Option, ...]) -> dict[Cell, int] | None:
    move: dict[Cell, int] = {}
    for entries in product(*choice):
        cell = tuple(node for _, node in entries)
        sign = 1
        for s, _ in entries:
            sign *= s
        if cell in move:  # two entries on one cell: not a move of this shape
            return None
        move[cell] = sign
    return move

