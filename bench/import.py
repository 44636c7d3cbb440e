"""Benchmark: ledger import vs a raw SQLAlchemy Core insert of the same rows, same run.

Each measurement runs in a fresh subprocess on a fresh SQLite file (WAL), so peak memory
(ru_maxrss of that process) is the import's own. The import validates every row once (one
streaming pass), derives a blind index, makes and wraps a data key per resident, encrypts
every personal field and inserts into 3-4 tables; the baseline reads the same CSV and inserts
its cells as text into one table with Core executemany in batches of 500. Runs are paired
(baseline, then import) so load from other processes hits both alike; the ratio is the median
of the per-pair ratios, in wall time and in CPU time of the child (with the import's worker
processes: it validates and encrypts in two forked workers while it reads and inserts). Peak
memory is shown at 10k rows and at the full size, for the main process and for the largest
worker. A breakdown (one process, CPU time per row) shows where the time goes. The same pair
runs on PostgreSQL too (EXCHANGE_BENCH_PG_URL, default the local test server; each run in its
own schema, dropped after; skipped if unreachable), where the import writes with COPY.

    .venv/bin/python bench/import.py [--rows N] [--quick] [--runs R]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._pg import pg_schema  # noqa: E402

AS_OF = date(2025, 6, 1)
Row = tuple[str, str, float, float, float, str, float | None]


def _child_import(path: Path, url: str) -> int:
    from exchange.db.engine import make_engine, make_session_factory, unit_of_work
    from exchange.db.migrate import upgrade_engine
    from exchange.ledger.importer import ensure_communities, import_ledger
    from exchange.ledger.reader import open_source
    from keys.keyring import Keyring
    from keys.providers import MemoryKeyProvider

    engine = make_engine(url)
    upgrade_engine(engine)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as s:
        ensure_communities(s)
    keyring = Keyring(MemoryKeyProvider.generate())
    with unit_of_work(factory) as s:
        report = import_ledger(s, keyring, open_source(path), today=AS_OF)
    if not report.ok:
        raise SystemExit(report.to_text()[:2000])
    return report.inserted


def _child_raw(path: Path, url: str) -> int:
    import sqlalchemy as sa

    from exchange.db.engine import make_engine

    engine = make_engine(url)
    meta = sa.MetaData()
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    table = sa.Table(
        "raw_ledger",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        *(sa.Column(f"c{i}", sa.Text) for i in range(len(header))),
    )
    meta.create_all(engine)
    count = 0
    with engine.begin() as conn, path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        batch: list[dict[str, str]] = []
        for record in reader:
            batch.append({f"c{i}": v for i, v in enumerate(record)})
            if len(batch) == 500:
                conn.execute(table.insert(), batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
            count += len(batch)
    return count


def _child(kind: str, path: Path, db: Path | None, url: str | None = None) -> None:
    global _CPU_AT_START
    _CPU_AT_START = _cpu()
    url = url or f"sqlite:///{db}"
    started = time.perf_counter()
    rows = _child_import(path, url) if kind == "import" else _child_raw(path, url)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the import's worker processes
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_kb": usage.ru_maxrss,
                      "worker_peak_kb": workers.ru_maxrss,
                      "cpu": _cpu() - _CPU_AT_START}))  # fmt: skip


def _cpu() -> float:
    """CPU time of this process and of the worker processes it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


_CPU_AT_START = 0.0


def _child_breakdown(path: Path) -> None:
    """CPU time per row of each stage of the import, each timed on its own over the file."""
    from exchange.db.engine import make_engine, make_session_factory, unit_of_work
    from exchange.db.migrate import upgrade_engine
    from exchange.ledger import importer, prepare
    from exchange.ledger.reader import open_source
    from exchange.ledger.validate import LedgerRow, Rules, validate_row
    from exchange.ledger.vocabulary import CHENGYANG_COMMUNITIES
    from keys.datakeys import DataKey
    from keys.keyring import Keyring
    from keys.providers import MemoryKeyProvider

    keyring = Keyring(MemoryKeyProvider.generate())
    source = open_source(path)
    headers = importer.read_header(source)
    rules = Rules(AS_OF, frozenset(CHENGYANG_COMMUNITIES))
    stages: dict[str, float] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        started = time.process_time()
        out = fn()
        stages[name] = time.process_time() - started
        return out

    raws = timed("read + clean CSV", lambda: list(source.rows()))
    checked = timed("validate rows", lambda: [validate_row(r, headers, rules) for r in raws])
    rows = [r for r in checked if isinstance(r, LedgerRow)]
    timed("blind index", lambda: [keyring.blind_index(r.national_id.value) for r in rows])
    root = keyring.current_root()

    def make_keys() -> list[tuple[DataKey, bytes]]:
        made: list[tuple[DataKey, bytes]] = []
        for i, _row in enumerate(rows):
            key = DataKey.generate(keyring.suite)
            made.append((key, keyring.wrap_bytes(key, f"resident-{i}", root)))
        return made

    keys = timed("data key + wrap", make_keys)

    def seal_all() -> None:
        seal = keyring.encrypt_row_bytes
        for row, (key, _) in zip(rows, keys, strict=True):
            # the stored bytes, as the import's inserts take them (no EncryptedValue per field)
            seal(key, "residents", "r", prepare.RESIDENT_SEALED, prepare.resident_texts(row))
            seal(key, "maternal_episodes", "e", prepare.EPISODE_SEALED,
                 prepare.episode_texts(row))  # fmt: skip
            if prepare.has_child(row):
                seal(key, "children", "c", prepare.CHILD_SEALED, prepare.child_texts(row))

    timed("field encryption", seal_all)
    for workers, name in ((0, "whole import"), (None, "whole import, with workers")):
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'b.db'}")
            upgrade_engine(engine)
            factory = make_session_factory(engine)
            with unit_of_work(factory) as s:
                importer.ensure_communities(s)
            with unit_of_work(factory) as s:
                # CPU time of this process only: the workers' share is not in it
                report = timed(name, lambda s=s, w=workers: importer.import_ledger(
                    s, keyring, open_source(path), today=AS_OF, workers=w))  # fmt: skip
    print(json.dumps({"rows": report.rows_read, "stages": stages}))


def _measure(kind: str, path: Path, url: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        target = ["--url", url] if url else ["--db", str(Path(tmp) / "bench.db")]
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--file", str(path), *target],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


PG_RUNS = 2


def _pg_schema() -> AbstractContextManager[str | None]:
    return pg_schema("bench_import")


def _measure_pg(kind: str, path: Path) -> dict[str, float] | None:
    with _pg_schema() as url:
        return None if url is None else _measure(kind, path, url)


def measure_pg(path: Path, rows: int, runs: int = PG_RUNS) -> list[Row]:
    """The same pair on PostgreSQL (the import writes with COPY there), each run in a new
    schema; no rows when the server is unreachable."""
    imp: list[dict[str, float]] = []
    raw: list[dict[str, float]] = []
    for _ in range(runs):
        r = _measure_pg("raw", path)
        i = _measure_pg("import", path)
        if r is None or i is None:
            return []
        raw.append(r)
        imp.append(i)
    wall = [(i["rows"] / i["seconds"]) / (r["rows"] / r["seconds"])
            for i, r in zip(imp, raw, strict=True)]  # fmt: skip
    return [
        (f"postgresql: ledger import, {rows} rows (wall)", "rows/s",
         *_stats([m["rows"] / m["seconds"] for m in imp]),
         "postgresql: raw Core executemany (wall)", statistics.median(wall)),
        (f"postgresql: raw Core insert, {rows} rows (wall)", "rows/s",
         *_stats([m["rows"] / m["seconds"] for m in raw]), "", None),
    ]  # fmt: skip


def _ledger(directory: Path, rows: int) -> Path:
    from exchange.ledger.synthetic import write_ledger

    path = directory / f"ledger-{rows}.csv"
    write_ledger(path, rows, seed=42, as_of=AS_OF)
    return path


def _stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


FIELDS = ("name", "unit", "min", "median", "max", "baseline_name", "ratio")
FULL_ROWS = 100_000  # the figure
QUICK_ROWS = 20_000


def main(rows: int | None = None, runs: int = 3) -> list[dict[str, object]]:
    """The rows as dicts (the format bench/run_all.py collects). Size: `rows`, else
    BENCH_IMPORT_ROWS, else 20,000 with BENCH_QUICK=1, else 100,000."""
    if rows is None:
        quick = os.environ.get("BENCH_QUICK") == "1"
        rows = int(os.environ.get("BENCH_IMPORT_ROWS") or (QUICK_ROWS if quick else FULL_ROWS))
    return [dict(zip(FIELDS, row, strict=True)) for row in measure(rows, runs)]


def measure(rows: int = FULL_ROWS, runs: int = 3) -> list[Row]:
    results: list[Row] = []
    imp: list[dict[str, float]] = []
    raw: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        big = _ledger(Path(tmp), rows)
        small = _ledger(Path(tmp), min(10_000, rows))
        for _ in range(runs):  # paired: the baseline right before the import
            raw.append(_measure("raw", big))
            imp.append(_measure("import", big))
        imp_small = [_measure("import", small) for _ in range(runs)]
        pg_rows = measure_pg(big, rows)
    wall = [
        (i["rows"] / i["seconds"]) / (r["rows"] / r["seconds"])
        for i, r in zip(imp, raw, strict=True)
    ]
    cpu = [(i["rows"] / i["cpu"]) / (r["rows"] / r["cpu"]) for i, r in zip(imp, raw, strict=True)]
    imp_rate = _stats([m["rows"] / m["seconds"] for m in imp])
    raw_rate = _stats([m["rows"] / m["seconds"] for m in raw])
    results.append((f"ledger import, {rows} rows (wall)", "rows/s", *imp_rate,
                    "raw Core executemany (wall)", statistics.median(wall)))  # fmt: skip
    results.append((f"raw Core insert, {rows} rows (wall)", "rows/s", *raw_rate, "", None))
    results.append((f"ledger import, {rows} rows (CPU)", "rows/s",
                    *_stats([m["rows"] / m["cpu"] for m in imp]),
                    "raw Core executemany (CPU)", statistics.median(cpu)))  # fmt: skip
    results.append((f"raw Core insert, {rows} rows (CPU)", "rows/s",
                    *_stats([m["rows"] / m["cpu"] for m in raw]), "", None))  # fmt: skip
    big_mem = _stats([m["peak_kb"] / 1024 for m in imp])
    small_mem = _stats([m["peak_kb"] / 1024 for m in imp_small])
    results.append((f"import peak RSS, {min(10_000, rows)} rows", "MiB", *small_mem, "", None))
    baseline = f"peak RSS at {min(10_000, rows)} rows"
    ratio = big_mem[1] / small_mem[1]
    results.append((f"import peak RSS, {rows} rows", "MiB", *big_mem, baseline, ratio))
    worker_mem = _stats([m.get("worker_peak_kb", 0) / 1024 for m in imp])
    results.append((f"import worker peak RSS (each), {rows} rows", "MiB", *worker_mem, "", None))
    return results + pg_rows


def breakdown(rows: int) -> str:
    """Where an import's CPU time goes, per row, in one process (not a timed test)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _ledger(Path(tmp), rows)
        out = subprocess.run(
            [sys.executable, __file__, "--child", "breakdown", "--file", str(path)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    stages: dict[str, float] = data["stages"]
    total = stages.pop("whole import")
    main_share = stages.pop("whole import, with workers")
    lines = ["| stage (each timed alone) | µs/row | share of the import |", "| --- | ---: | ---: |"]
    for name, seconds in stages.items():
        lines.append(f"| {name} | {seconds / rows * 1e6:.1f} | {seconds / total:.0%} |")
    rest = total - sum(stages.values())
    lines.append(
        f"| SQL inserts, batching, the rest | {rest / rows * 1e6:.1f} | {rest / total:.0%} |"
    )
    lines.append(f"| whole import (one process) | {total / rows * 1e6:.1f} | 100% |")
    lines.append(f"| with workers: the main process's share | {main_share / rows * 1e6:.1f} | "
                 f"{main_share / total:.0%} |")  # fmt: skip
    return "\n".join(lines)


def _table(results: list[Row]) -> str:
    lines = ["| benchmark | unit | min | median | max | baseline | ratio |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: |"]  # fmt: skip
    for name, unit, lo, mid, hi, base, ratio in results:
        shown = "" if ratio is None else f"{ratio:.2f}"
        lines.append(f"| {name} | {unit} | {lo:,.0f} | {mid:,.0f} | {hi:,.0f} | {base} | {shown} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 rows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--child", choices=("import", "raw", "breakdown"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "breakdown":
        _child_breakdown(args.file)
    elif args.child:
        _child(args.child, args.file, args.db, args.url)
    else:
        size = 10_000 if args.quick else args.rows
        print(_table(measure(size, args.runs)))
        if not args.no_breakdown:
            print()
            print(breakdown(min(size, 20_000)))
