"""A change of policy carries its kind and before/after, so a reader can word it itself (the
console, in Chinese) and cannot miss one the CLI prints."""

from __future__ import annotations

from policies.diff import diff_policies, introduce
from policies.document import parse_policy
from policies.shipped import shipped_paths

KINDS = {"disclosed", "dropped", "removed", "source", "transform", "unsealed", "sealed",
         "condition_removed", "condition_added", "condition_changed", "purpose",
         "scope_dropped", "scope_required"}  # fmt: skip
V1 = next(p for p in shipped_paths() if p.name == "home_visit.toml").read_text("utf-8")


def _v2(text: str) -> str:
    return V1.replace("version = 1", "version = 2").replace(*text.split(" => "))


def test_every_change_names_its_kind_and_the_facts_it_is_about() -> None:
    old = parse_policy(V1)
    looser = parse_policy(_v2("sealed = true\nwhen = { visit_booked_within_days = 7 }\n"
                              'description = "For the instructor to call before the visit."'
                              ' => sealed = true\ndescription = "x"'))  # fmt: skip
    changes = diff_policies(old, looser)
    assert [(c.field, c.kind, c.before, c.after, c.widens) for c in changes] == [
        ("phone", "condition_removed", "visit_booked_within_days=7", "", True)]
    coarser = parse_policy(_v2('transform = "address_building" => transform = "address_compound"'))
    (change,) = diff_policies(old, coarser)
    assert (change.kind, change.before, change.after, change.widens) == (
        "transform", "address_building", "address_compound", False)
    first = introduce(old)
    assert first and all(c.kind == "disclosed" and c.after and c.widens for c in first)
    assert {c.kind for c in changes + (change,) + first} <= KINDS
