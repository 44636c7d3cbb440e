"""No suppressed cell can be recomputed: the onlooker's linear programme, on random tables.

For each suppressed cell we solve min and max of its value subject to everything a release of
the cube shows (every shown inner cell, margin and total, at every level), non-negativity and
what the flags tell (`primary`: 1..t-1, `secondary`: >= t). Protection means the interval holds
at least two integers, i.e. is at least one unit wide; the hypercube moves are one unit, so the
interval can be no narrower when the method is right, and a single value means a disclosure.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from policies.statistics import Flag, Rule, protect
from tests.policies.statistics.tables import cubes, intervals

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_protected(protected, **kwargs) -> None:  # noqa: ANN001
    for cell, (low, high) in intervals(protected, **kwargs).items():
        assert high - low >= 1 - 1e-6, (cell, protected.values[cell], protected.flag(cell), low,
                                         high)  # fmt: skip


@SETTINGS
@given(cubes(), st.sampled_from([3, 5, 10]), st.booleans())
def test_no_suppressed_cell_can_be_recomputed(cube, threshold, zeros) -> None:  # noqa: ANN001
    rule = Rule(threshold, zeros_disclosive=zeros)
    protected = protect(cube, rule)
    event(f"withheld={protected.withheld}")
    if protected.withheld:  # nothing shown, and no flag tells a small cell from a large one
        assert set(protected.flags) == set(protected.values)
        assert set(protected.flags.values()) == {Flag.SECONDARY}
        return
    low = 0 if zeros else 1
    small = {c for c, v in protected.values.items() if low <= v < threshold}
    assert {c for c, f in protected.flags.items() if f is Flag.PRIMARY} == small
    assert all(protected.values[c] >= threshold
               for c, f in protected.flags.items() if f is Flag.SECONDARY)  # fmt: skip
    _assert_protected(protected)
    _assert_protected(protected, flags_known=False)


@SETTINGS
@given(cubes(max_dims=2, companions=True))
def test_a_companion_measure_is_protected_by_the_same_cells(cube) -> None:  # noqa: ANN001
    protected = protect(cube)
    if not protected.withheld:
        _assert_protected(protected, measure="events")


def test_the_programme_catches_a_lone_suppressed_cell() -> None:
    """The checker can fail: one suppressed cell in a row with a shown total is exact."""
    from policies.statistics import Cube, Dimension, Suppressed

    rows, cols = Dimension("r", ("r0", "r1")), Dimension("c", ("c0", "c1"))
    cube = Cube((rows, cols), {("r0", "c0"): 2, ("r0", "c1"): 9, ("r1", "c0"): 8,
                               ("r1", "c1"): 7})  # fmt: skip
    good = protect(cube)
    naive = Suppressed(cube, good.rule, good.values, {("r0", "c0"): Flag.PRIMARY})
    low, high = intervals(naive)[("r0", "c0")]
    assert low == high == 2
    assert all(h - lo >= 1 for lo, h in intervals(good).values())
