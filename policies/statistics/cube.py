"""A table of counts with every margin: the cube a release is cut from.

A `Dimension` has leaf categories (what a row of data falls into) and, optionally, a tree of
groups above them (month -> quarter -> year); every dimension has the root `TOTAL` above all.
A `Cube` holds the leaf counts and derives every aggregate: one cell per combination of nodes,
one node per dimension. Its cells are therefore the inner cells, every margin at every level
and the grand total, and every published number of every table cut from it is one of them.

Margins are sums of cells. For a dimension each resident falls into exactly one category of
(a partition: community, stage) the sum is the number of distinct residents; for one she can
fall into several of (the services she chose, the months she had visits in) the sum counts
resident-categories (人次). Keeping every margin a sum keeps the table's equations exact,
which is what the protection in `suppression` reasons about.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Final

from policies.statistics.errors import CubeError

TOTAL: Final = "*"

Cell = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dimension:
    """Leaves in display order; `parents` maps a leaf or group to its group (absent: TOTAL)."""

    name: str
    leaves: tuple[str, ...]
    parents: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.leaves:
            raise CubeError(f"dimension {self.name} has no categories")
        if len(set(self.leaves)) != len(self.leaves) or TOTAL in self.leaves:
            raise CubeError(f"dimension {self.name}: categories must be distinct, not {TOTAL!r}")
        groups = set(self.parents.values())
        if groups & set(self.leaves) or TOTAL in groups:
            raise CubeError(f"dimension {self.name}: a group cannot also be a category")
        for node in self.parents:
            seen = {node}
            while node in self.parents:
                node = self.parents[node]
                if node in seen:
                    raise CubeError(f"dimension {self.name}: groups form a cycle")
                seen.add(node)

    def parent(self, node: str) -> str:
        return TOTAL if node == TOTAL else self.parents.get(node, TOTAL)

    def path(self, leaf: str) -> tuple[str, ...]:
        """The leaf and every node above it, up to and including TOTAL."""
        nodes = [leaf]
        while nodes[-1] != TOTAL:
            nodes.append(self.parent(nodes[-1]))
        return tuple(nodes)

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node: leaves, then groups level by level (months, quarters, years), TOTAL."""
        height: dict[str, int] = {}
        for leaf in self.leaves:
            for level, node in enumerate(self.path(leaf)[1:-1], start=1):
                height.setdefault(node, level)
        groups = sorted(height, key=lambda n: height[n])  # stable: first appearance in a level
        return (*self.leaves, *groups, TOTAL)

    def leaves_under(self, node: str) -> tuple[str, ...]:
        if node == TOTAL:
            return self.leaves
        return tuple(leaf for leaf in self.leaves if node in self.path(leaf))

    def children(self, node: str) -> tuple[str, ...]:
        return tuple(n for n in self.nodes if n != TOTAL and self.parent(n) == node)


@dataclass(frozen=True, slots=True)
class Cube:
    """Leaf counts over `dims`, with every aggregate derived.

    `counts` maps a leaf cell (one leaf per dimension) to a count of distinct residents;
    missing cells are 0. `companions` are further measures over the same cells, each behind
    the residents it counts (visits delivered: never fewer than the residents visited), which
    are released with the suppression the residents' counts decide.
    """

    dims: tuple[Dimension, ...]
    counts: Mapping[Cell, int]
    companions: Mapping[str, Mapping[Cell, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [d.name for d in self.dims]
        if not names or len(set(names)) != len(names):
            raise CubeError("a cube needs one or more dimensions with distinct names")
        leaves = [frozenset(d.leaves) for d in self.dims]
        for measure in (self.counts, *self.companions.values()):
            for cell, value in measure.items():
                if len(cell) != len(self.dims) or any(
                    c not in ls for c, ls in zip(cell, leaves, strict=True)
                ):
                    raise CubeError(f"cell {cell!r} is not a leaf cell of this cube")
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise CubeError(f"cell {cell!r}: a count must be a non-negative integer")
        for name, measure in self.companions.items():
            # the protection assumes what an onlooker knows: a measure behind residents is 0
            # where they are 0 and never below their number
            for cell in {*measure, *self.counts}:
                residents, value = self.counts.get(cell, 0), measure.get(cell, 0)
                if value < residents or (value > 0) != (residents > 0):
                    raise CubeError(f"{name} at {cell!r}: must be 0 with no residents, else "
                                    "at least their number")

    def dim(self, name: str) -> Dimension:
        for d in self.dims:
            if d.name == name:
                return d
        raise CubeError(f"no dimension {name!r}")

    def index(self, name: str) -> int:
        return [d.name for d in self.dims].index(self.dim(name).name)

    def cells(self) -> Iterator[Cell]:
        """Every cell, leaves and aggregates, zero or not."""
        return product(*(d.nodes for d in self.dims))

    def aggregate(self, measure: Mapping[Cell, int] | None = None) -> dict[Cell, int]:
        """Every cell's value: each leaf count added to each of its ancestors."""
        paths = [{leaf: d.path(leaf) for leaf in d.leaves} for d in self.dims]
        values = dict.fromkeys(self.cells(), 0)
        source = self.counts if measure is None else measure
        for leaf_cell, count in source.items():
            if count:
                for cell in product(*(p[c] for p, c in zip(paths, leaf_cell, strict=True))):
                    values[cell] += count
        return values

