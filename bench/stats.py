"""`make bench` area "stats" (run alone: `.venv/bin/python bench/stats.py`): a statistics
release against the bare GROUP BY, and the suppression core alone. (Not `statistics.py`: a
script of that name beside the others would shadow the standard library's module.)

Residents by community x stage x due month over 100,000 residents (8 communities; due months
spread over two years, thinning out at the ends so that some cells are small), on SQLite and
on PostgreSQL (EXCHANGE_BENCH_PG_URL, default the local test server; a fresh schema, dropped
after; skipped when unreachable):

- baseline: the bare query a user could write without our privacy work - the same GROUP BY
  through SQLAlchemy Core, rows serialised with orjson;
- release: `exchange.services.statistics.release` as the API runs it - the same GROUP BY, the
  cube with every margin, primary and hypercube secondary suppression, the view, one audit
  entry appended and committed, the JSON document serialised with orjson.

Target (issue 16): the release within 2x of the bare query. Then the core alone
(`policies.statistics.protect`) on a 50 x 50 table, against summing the same table's margins.
BENCH_QUICK=1 uses 20,000 residents.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import orjson  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench._pg import pg_schema  # noqa: E402
from bench._rows import row  # noqa: E402
from exchange.db import models as m  # noqa: E402
from exchange.db.engine import make_engine, make_session_factory, unit_of_work  # noqa: E402
from exchange.db.migrate import upgrade  # noqa: E402
from exchange.identity import Acting, Identity  # noqa: E402
from exchange.services import statistics as stats  # noqa: E402
from exchange.services.statistics_export import document  # noqa: E402
from exchange.services.statistics_queries import TABLES  # noqa: E402
from policies.statistics import Cube, Dimension, protect  # noqa: E402

FULL, QUICK = 100_000, 20_000
RUNS = 5
COMMUNITIES = ("向阳社区", "民城路社区", "瑞阳路社区", "城阳社区", "西城汇社区", "长城路社区",
               "古镇社区", "青大社区")  # fmt: skip
MONTHS = [f"{y}-{mo:02d}" for y in (2025, 2026) for mo in range(1, 13)]


def _populate(engine: sa.Engine, residents: int) -> None:
    rng = random.Random(16)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    with unit_of_work(make_session_factory(engine)) as s:
        ids = {}
        for name in COMMUNITIES:
            c = m.Community(name=name, district="城阳区", street="城阳街道")
            s.add(c)
            s.flush()
            ids[name] = c.id
        s.add(m.Principal(id="bench-admin", name="bench-admin", role="office_admin",
                          display_name="bench"))  # fmt: skip
    weights = [1 + 40 * min(i, len(MONTHS) - 1 - i) ** 2 for i in range(len(MONTHS))]
    batch_r: list[dict[str, Any]] = []
    batch_e: list[dict[str, Any]] = []
    resident_table, episode_table = m.Resident.__table__, m.MaternalEpisode.__table__
    for n in range(residents):
        rid, eid = f"r{n:07d}", f"e{n:07d}"
        stage = rng.choices(("preparing", "pregnant", "postpartum"), (15, 45, 40))[0]
        month = None if stage == "preparing" else rng.choices(MONTHS, weights)[0]
        community = COMMUNITIES[min(int(rng.expovariate(0.5)), len(COMMUNITIES) - 1)]
        batch_r.append({"id": rid, "community_id": ids[community], "district": "城阳区",
                        "street": "城阳街道", "created_at": now, "updated_at": now})
        batch_e.append({"id": eid, "resident_id": rid, "stage": stage, "due_month": month,
                        "created_at": now, "updated_at": now})  # fmt: skip
        if len(batch_r) == 5000 or n == residents - 1:
            with engine.begin() as conn:
                conn.execute(resident_table.insert(), batch_r)  # type: ignore[attr-defined]
                conn.execute(episode_table.insert(), batch_e)  # type: ignore[attr-defined]
            batch_r, batch_e = [], []


def _bare(factory: Any) -> float:
    started = time.perf_counter()
    with factory() as s:
        rows = s.execute(TABLES["residents"].query(s)).all()
        orjson.dumps([list(r) for r in rows])
    return time.perf_counter() - started


def _release(factory: Any) -> float:
    acting = Acting(Identity("bench-admin", "bench-admin", "office_admin", "bench"),
                    datetime.now(UTC), "bench")  # fmt: skip
    request = stats.parse("residents", "community,stage,due_month")
    started = time.perf_counter()
    with unit_of_work(factory) as s:
        release = stats.release(s, acting, request)
        orjson.dumps(document(release))
    return time.perf_counter() - started


def _pair(engine: sa.Engine, label: str, residents: int) -> list[dict[str, Any]]:
    factory = make_session_factory(engine)
    _bare(factory), _release(factory)  # warm both paths (statement cache, pages)
    bare, full = [], []
    for _ in range(RUNS):
        bare.append(_bare(factory))
        full.append(_release(factory))
    ratios = [f / b for f, b in zip(full, bare, strict=True)]
    base = f"{label}: bare GROUP BY + orjson"
    return [
        row(f"{label}: release residents x community,stage,due_month, {residents} residents",
            "ms", [t * 1000 for t in full], base, ratios),
        row(f"{label}: bare GROUP BY, {residents} residents", "ms", [t * 1000 for t in bare]),
    ]


def _database(url: str, label: str, residents: int) -> list[dict[str, Any]]:
    upgrade(url)
    engine = make_engine(url)
    try:
        _populate(engine, residents)
        return _pair(engine, label, residents)
    finally:
        engine.dispose()


def _core() -> list[dict[str, Any]]:
    rng = random.Random(50)
    rows_dim = Dimension("r", tuple(f"r{i:02d}" for i in range(50)))
    cols_dim = Dimension("c", tuple(f"c{i:02d}" for i in range(50)))
    counts = {(a, b): int(rng.lognormvariate(2.3, 1.2))
              for a in rows_dim.leaves for b in cols_dim.leaves}  # fmt: skip
    cube = Cube((rows_dim, cols_dim), counts)
    sums, full = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        cube.aggregate()
        sums.append(time.perf_counter() - started)
        started = time.perf_counter()
        protected = protect(cube)
        full.append(time.perf_counter() - started)
    small = protected.primary
    ratios = [f / s for f, s in zip(full, sums, strict=True)]
    return [row(f"core: protect 50 x 50 ({small} primary, {protected.secondary} secondary)",
                "ms", [t * 1000 for t in full], "core: margins of 50 x 50", ratios),
            row("core: margins of 50 x 50", "ms", [t * 1000 for t in sums])]  # fmt: skip


def main() -> list[dict[str, Any]]:
    residents = QUICK if os.environ.get("BENCH_QUICK") == "1" else FULL
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results += _database(f"sqlite:///{Path(tmp) / 'stats.db'}", "sqlite", residents)
    with pg_schema("bench_stats") as url:
        if url is not None:
            results += _database(url, "postgresql", residents)
    return results + _core()


if __name__ == "__main__":
    for r in main():
        ratio = "" if r["ratio"] is None else f"  x{r['ratio']:.2f} of {r['baseline_name']}"
        print(f"{r['name']}: median {r['median']:.1f} {r['unit']}{ratio}")
