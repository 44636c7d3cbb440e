"""`make bench` area "statistics": see bench/statistics_release.py for what is measured.

This file's name is the standard library's `statistics`: a sibling script run directly from
bench/ (`python bench/pull.py`, whose sys.path starts with bench/) that imports `statistics`
finds this file first, so under that name it hands over the real module and does nothing else.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "statistics":  # imported as the standard library's module by mistake
    import importlib.util
    import sysconfig

    _spec = importlib.util.spec_from_file_location(
        "statistics", Path(sysconfig.get_paths()["stdlib"]) / "statistics.py"
    )
    assert _spec is not None and _spec.loader is not None
    _real = importlib.util.module_from_spec(_spec)
    sys.modules["statistics"] = _real
    _spec.loader.exec_module(_real)
    globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
else:
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
    sys.path.insert(0, str(_ROOT))
    from bench.statistics_release import main

    __all__ = ["main"]

    if __name__ == "__main__":
        for r in main():
            ratio = "" if r["ratio"] is None else f"  x{r['ratio']:.2f} of {r['baseline_name']}"
            print(f"{r['name']}: median {r['median']:.1f} {r['unit']}{ratio}")
