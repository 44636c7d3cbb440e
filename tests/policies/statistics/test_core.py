"""The statistics core on small tables worked by hand: cube, rule, suppression, views."""

from __future__ import annotations

import pytest

from policies.statistics import (
    TOTAL,
    Cube,
    CubeError,
    Dimension,
    Flag,
    Rule,
    RuleError,
    protect,
    view,
)

COMMUNITY = Dimension("community", ("A", "B", "C"))
STAGE = Dimension("stage", ("preparing", "pregnant"))
MONTH = Dimension("month", ("2025-01", "2025-02", "2025-04"),
                  {"2025-01": "2025-Q1", "2025-02": "2025-Q1", "2025-04": "2025-Q2",
                   "2025-Q1": "2025", "2025-Q2": "2025"})  # fmt: skip


def _cube(**counts: int) -> Cube:
    return Cube((COMMUNITY, STAGE), {tuple(k.split("_")): v for k, v in counts.items()})


def test_margins_and_levels_are_sums() -> None:
    cube = Cube((MONTH,), {("2025-01",): 3, ("2025-02",): 4, ("2025-04",): 10})
    values = cube.aggregate()
    assert values[("2025-Q1",)] == 7 and values[("2025",)] == 17 and values[(TOTAL,)] == 17
    assert MONTH.nodes == ("2025-01", "2025-02", "2025-04", "2025-Q1", "2025-Q2", "2025", TOTAL)


@pytest.mark.parametrize(
    ("dims", "counts", "message"),
    [
        ((COMMUNITY,), {("Z",): 1}, "not a leaf cell"),
        ((COMMUNITY,), {("A",): -1}, "non-negative"),
        ((COMMUNITY,), {("A",): True}, "non-negative"),
        ((COMMUNITY, COMMUNITY), {}, "distinct names"),
    ],
)
def test_malformed_cubes_are_refused(dims, counts, message) -> None:  # noqa: ANN001
    with pytest.raises(CubeError, match=message):
        Cube(dims, counts)


def test_a_companion_below_its_residents_is_refused() -> None:
    with pytest.raises(CubeError, match="events"):
        Cube((COMMUNITY,), {("A",): 3}, {"events": {("A",): 2}})


@pytest.mark.parametrize("threshold", [0, 1, 2, 1001, True])
def test_rules_that_cannot_protect_are_refused(threshold) -> None:  # noqa: ANN001
    with pytest.raises(RuleError):
        Rule(threshold)


def test_a_small_cell_gets_a_rectangle_and_totals_stay_exact() -> None:
    cube = _cube(A_preparing=2, A_pregnant=30, B_preparing=20, B_pregnant=40,
                 C_preparing=50, C_pregnant=60)  # fmt: skip
    protected = protect(cube)
    assert protected.flag(("A", "preparing")) is Flag.PRIMARY
    suppressed = set(protected.flags)
    assert len(suppressed) == 4  # the cheapest hypercube: a 2x2 rectangle through the cell
    assert ("A", "pregnant") in suppressed and ("B", "preparing") in suppressed
    assert ("B", "pregnant") in suppressed
    assert protected.shown((TOTAL, TOTAL)) == 202  # margins and total are exact, not reduced
    assert protected.shown(("A", TOTAL)) == 32


def test_a_small_margin_suppresses_its_row_and_a_partner() -> None:
    cube = _cube(A_preparing=1, A_pregnant=2, B_preparing=20, B_pregnant=40,
                 C_preparing=50, C_pregnant=60)  # fmt: skip
    protected = protect(cube)
    assert protected.flag(("A", TOTAL)) is Flag.PRIMARY
    assert protected.flag(("A", "preparing")) is Flag.PRIMARY
    # the community margin of A (3) must have a partner margin, or the total would tell it
    assert sum(1 for c in ("B", "C") if protected.flag((c, TOTAL))) >= 1


def test_zero_is_shown_unless_the_rule_says_otherwise() -> None:
    cube = _cube(A_preparing=0, A_pregnant=30, B_preparing=20, B_pregnant=40,
                 C_preparing=50, C_pregnant=60)  # fmt: skip
    assert protect(cube).shown(("A", "preparing")) == 0
    assert protect(cube, Rule(zeros_disclosive=True)).flag(("A", "preparing")) is Flag.PRIMARY


def test_a_view_has_cells_margins_and_total_in_the_shape_of_the_api() -> None:
    cube = _cube(A_preparing=2, A_pregnant=30, B_preparing=20, B_pregnant=40,
                 C_preparing=50, C_pregnant=60)  # fmt: skip
    v = view(protect(cube), ["stage", "community"])
    assert v.cells[0].key == (("stage", "preparing"), ("community", "A"))
    assert v.cells[0].count is None and v.cells[0].flag is Flag.PRIMARY
    assert [e.key for e in v.margins["stage"]] == [(("stage", "preparing"),),
                                                   (("stage", "pregnant"),)]  # fmt: skip
    assert v.total.count == 202
    assert v.suppressed == 4


def test_a_coarser_view_is_a_view_of_the_same_protection() -> None:
    cube = _cube(A_preparing=2, A_pregnant=30, B_preparing=20, B_pregnant=40,
                 C_preparing=50, C_pregnant=60)  # fmt: skip
    protected = protect(cube)
    street = view(protected, ["stage"])
    fine = view(protected, ["community", "stage"])
    assert street.cells == tuple(fine.margins["stage"])


def test_a_scope_of_several_communities_sums_only_shown_cells() -> None:
    cube = _cube(A_preparing=2, A_pregnant=30, B_preparing=20, B_pregnant=40,
                 C_preparing=50, C_pregnant=60)  # fmt: skip
    protected = protect(cube)
    v = view(protected, ["stage"], scope={"community": ["A", "C"]})
    by_stage = {e.key[0][1]: e for e in v.cells}
    assert by_stage["preparing"].count is None  # A's 2 is in it
    assert by_stage["preparing"].flag is Flag.SECONDARY
    assert by_stage["pregnant"].count is None  # A's 30 is a partner of the 2
    one = view(protected, ["stage"], scope={"community": ["C"]})
    assert [e.count for e in one.cells] == [50, 60] and one.total.count == 110


def test_a_period_is_a_node_of_the_time_tree() -> None:
    cube = Cube((COMMUNITY, MONTH), {("A", "2025-01"): 30, ("A", "2025-02"): 7,
                                     ("B", "2025-04"): 9, ("C", "2025-02"): 12})  # fmt: skip
    v = view(protect(cube), ["community", "month"], at={"month": "2025-Q1"})
    assert {e.key[1][1] for e in v.cells} == {"2025-01", "2025-02"}
    assert v.total.count == 49
    with pytest.raises(CubeError):
        view(protect(cube), ["community"], at={"month": "2025-03"})


def test_bad_views_are_refused() -> None:
    protected = protect(_cube(A_preparing=9))
    for by in (["nope"], ["stage", "stage"]):
        with pytest.raises(CubeError):
            view(protected, by)
    with pytest.raises(CubeError):
        view(protected, ["stage"], scope={"community": ["Z"]})
