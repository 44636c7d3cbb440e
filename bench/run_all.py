"""Run every benchmark under bench/ and write bench/RESULTS.md.

Each `bench/<area>.py` exposes `main() -> list[dict]`; a row holds `name`, `unit`, `min`,
`median`, `max` (over at least three runs), `baseline_name` and `ratio` (the figure divided by
its baseline measured in the same run). Every script runs in its own process so that one
area's memory and caches cannot colour another's figures.

Full sizes (the import at 100,000 rows, the audit proofs over 1,000,000 entries) take about
6-7 minutes on a 2-core machine. `--quick` (or BENCH_QUICK=1 in the environment) asks the
heavy scripts for smaller sizes (import 20,000 rows, audit 50,000 entries, peer 2,000
records); the row names carry the sizes, so a quick table cannot pass for a full one.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AREAS = ["keys", "policies", "audit", "import", "pull", "peer", "stats", "console"]
MARKER = "@@BENCH-ROWS@@"
PACKAGES = ["cryptography", "sqlalchemy", "fastapi", "uvicorn", "psycopg", "rfc8785", "orjson"]

_CHILD = f"""
import json, runpy, sys
module = runpy.run_path(sys.argv[1], run_name="bench_child")
rows = module["main"]()
print({MARKER!r} + json.dumps(rows))
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_area(area: str, quick: bool = False) -> tuple[list[dict], str]:
    script = HERE / f"{area}.py"
    if not script.exists():
        return [], f"{area}: no bench/{area}.py"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(script)],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        env={
            **os.environ,
            "PYTHONPATH": str(HERE.parent),
            **({"BENCH_QUICK": "1"} if quick else {}),
        },
    )
    elapsed = time.perf_counter() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :]), f"{area}: ok in {elapsed:.0f}s"
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return [], f"{area}: FAILED (exit {proc.returncode}): {tail[0]}"


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return "" if value is None else str(value)


def render(results: dict[str, list[dict]], status: list[str]) -> str:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    lines = [
        "# Benchmark results",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {cpu_model()}",
        f"- python {platform.python_version()} · {', '.join(versions)}",
        f"- taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `make bench`",
        "- each figure is min / median / max over at least 3 runs; the ratio is the median",
        "  against the baseline measured in the same run (this machine is noisy: ±35–50%",
        "  between runs, so compare ratios, not absolute figures)",
        "",
    ]
    for area, rows in results.items():
        lines += [f"## {area}", ""]
        if not rows:
            lines += ["(no figures)", ""]
            continue
        lines += [
            "| figure | unit | min | median | max | baseline | ratio |",
            "| --- | --- | ---: | ---: | ---: | --- | ---: |",
        ]
        for row in rows:
            ratio = row.get("ratio")
            lines.append(
                f"| {row['name']} | {row.get('unit', '')} | {fmt(row.get('min'))} | "
                f"{fmt(row.get('median'))} | {fmt(row.get('max'))} | "
                f"{row.get('baseline_name') or ''} | "
                f"{'' if ratio is None else f'{ratio:.2f}'} |"
            )
        lines.append("")
    lines += ["## Runs", ""] + [f"- {s}" for s in status] + [""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("areas", nargs="*", default=AREAS)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (BENCH_QUICK=1)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    results: dict[str, list[dict]] = {}
    status: list[str] = []
    for area in args.areas:
        print(f"running bench/{area}.py ...", flush=True)
        rows, line = run_area(area, quick)
        results[area] = rows
        status.append(line)
        print(line, flush=True)
    report = render(results, status)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    return 0 if all("FAILED" not in s for s in status) else 1


if __name__ == "__main__":
    sys.exit(main())
