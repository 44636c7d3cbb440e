"""Statistics safe to publish: small counts suppressed, and none of them recoverable.

Pure: no database, no web. `cube` holds a table of counts of distinct residents with all its
margins; `suppression.protect` flags the cells to hide (primary: 1..threshold-1; secondary:
the hypercube method, so that no hidden cell can be recomputed from what is shown); `view`
cuts the released table (cells, margins, total) from the protected cube.
"""

from policies.statistics.cube import TOTAL, Cell, Cube, Dimension
from policies.statistics.errors import CubeError, RuleError, StatisticsError
from policies.statistics.suppression import Flag, Rule, Suppressed, protect
from policies.statistics.view import Entry, View, view

__all__ = [
    "TOTAL",
    "Cell",
    "Cube",
    "CubeError",
    "Dimension",
    "Entry",
    "Flag",
    "Rule",
    "RuleError",
    "StatisticsError",
    "Suppressed",
    "View",
    "protect",
    "view",
]
