"""The policies shipped for the 生命之初1000天 programme (policies/shipped/*.toml)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from policies.document import Policy, load_policy
from policies.engine import PolicySet

SHIPPED_DIR = Path(__file__).with_name("shipped")


def shipped_paths() -> tuple[Path, ...]:
    return tuple(sorted(SHIPPED_DIR.glob("*.toml")))


def load_policies(paths: tuple[Path | str, ...] | list[Path | str]) -> PolicySet:
    """Load and compile several policy files into one set (PolicyLoadError on the first bad)."""
    return PolicySet(load_policy(p) for p in paths)


@cache
def shipped_policies() -> PolicySet:
    """The shipped policy set, loaded and compiled once per process."""
    return load_policies(shipped_paths())


def shipped_policy(purpose: str) -> Policy:
    """The shipped policy for a purpose."""
    for policy in shipped_policies():
        if policy.purpose == purpose:
            return policy
    raise KeyError(purpose)
