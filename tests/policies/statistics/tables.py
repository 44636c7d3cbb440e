"""Random tables for the statistics property tests, and the onlooker's linear programme."""

from __future__ import annotations

from itertools import product

import numpy as np
from hypothesis import strategies as st
from scipy.optimize import linprog

from policies.statistics import TOTAL, Cube, Dimension, Flag, Suppressed

# Mostly small counts, so that primary cells are common and meet each other.
COUNTS = st.sampled_from([0, 0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20, 40])


@st.composite
def dimensions(draw: st.DrawFn, name: str) -> Dimension:
    size = draw(st.integers(1, 5))
    leaves = tuple(f"{name}{i}" for i in range(size))
    if size >= 4 and draw(st.booleans()):
        # a time-like tree: leaves in groups of two (quarters), every group under TOTAL
        parents = {leaf: f"{name}-g{i // 2}" for i, leaf in enumerate(leaves)}
        return Dimension(name, leaves, parents)
    return Dimension(name, leaves)


@st.composite
def cubes(draw: st.DrawFn, max_dims: int = 3, companions: bool = False) -> Cube:
    count = draw(st.integers(1, max_dims))
    dims = tuple(draw(dimensions(n)) for n in "abc"[:count])
    leaf_cells = list(product(*(d.leaves for d in dims)))
    counts = {c: draw(COUNTS) for c in leaf_cells}
    extra: dict[str, dict[tuple[str, ...], int]] = {}
    if companions:
        extra["events"] = {c: v * draw(st.integers(1, 3)) + (draw(st.integers(0, 2)) if v else 0)
                           for c, v in counts.items()}  # fmt: skip
    return Cube(dims, counts, extra)


def intervals(
    protected: Suppressed, *, flags_known: bool = True, measure: str | None = None
) -> dict[tuple[str, ...], tuple[float, float]]:
    """For each suppressed cell, the least and greatest value it can take given everything
    published: every shown cell (inner, margin, total), every equation of the cube, counts
    >= 0, and (flags_known) what the flags say: primary 1..t-1, secondary >= t."""
    cube, rule = protected.cube, protected.rule
    values = protected.values if measure is None else protected.companions[measure]
    leaves = list(product(*(d.leaves for d in cube.dims)))
    column = {c: i for i, c in enumerate(leaves)}
    paths = [{leaf: d.path(leaf) for leaf in d.leaves} for d in cube.dims]
    rows: dict[tuple[str, ...], np.ndarray] = {}
    for cell in cube.cells():
        rows[cell] = np.zeros(len(leaves))
    for leaf in leaves:
        for cell in product(*(p[c] for p, c in zip(paths, leaf, strict=True))):
            rows[cell][column[leaf]] = 1.0
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    low = 0 if rule.zeros_disclosive else 1
    for cell, row in rows.items():
        flag = protected.flag(cell)
        if flag is None:
            a_eq.append(row)
            b_eq.append(values[cell])
        elif flags_known:
            floor = rule.threshold if flag is Flag.SECONDARY else low
            a_ub.append(-row)
            b_ub.append(-floor)
            if flag is Flag.PRIMARY and measure is None:
                a_ub.append(row)
                b_ub.append(rule.threshold - 1)
    out = {}
    for cell, flag in protected.flags.items():
        assert flag in (Flag.PRIMARY, Flag.SECONDARY)
        bounds = []
        for sense in (1.0, -1.0):
            result = linprog(
                sense * rows[cell],
                A_ub=np.array(a_ub) if a_ub else None, b_ub=b_ub or None,
                A_eq=np.array(a_eq) if a_eq else None, b_eq=b_eq or None,
                bounds=(0, None), method="highs",
            )  # fmt: skip
            if result.status == 3:  # unbounded above
                bounds.append(float("inf") * -sense)
                continue
            assert result.status == 0, result.message
            bounds.append(sense * result.fun)
        out[cell] = (bounds[0], bounds[1])
    return out


def total_cell(cube: Cube) -> tuple[str, ...]:
    return (TOTAL,) * len(cube.dims)
