"""Errors of the statistics core, one tree.

    StatisticsError      base
    ├── CubeError        the table is malformed (unknown category, negative count, ...)
    └── RuleError        the suppression rule is not one that can protect anything
"""

from __future__ import annotations


class StatisticsError(ValueError):
    """Base of the statistics core's errors; messages name categories, never a count."""


class CubeError(StatisticsError):
    pass


class RuleError(StatisticsError):
    pass
