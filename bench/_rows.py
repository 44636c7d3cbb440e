"""The one row shape every bench script returns to bench/run_all.py."""

from __future__ import annotations

import statistics
from typing import Any


def row(
    name: str,
    unit: str,
    values: list[float],
    baseline: str | None = None,
    ratios: list[float] | None = None,
) -> dict[str, Any]:
    """min / median / max of `values`; `ratio` is the median of same-run ratios to `baseline`."""
    return {
        "name": name,
        "unit": unit,
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "baseline_name": baseline,
        "ratio": None if ratios is None else statistics.median(ratios),
    }
