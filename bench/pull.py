"""The contractor pull through the real HTTP stack, against the same rows served raw.

Set-up, per database and size (a temporary EXCHANGE_HOME; on PostgreSQL a throwaway schema):
the database migrated to head, a file keyring, the synthetic demo ledger of N residents, one
contractor with an X25519 key, an active home-visit agreement, full consent (child data by a
guardian) and one assignment per resident, half of them with a visit booked in two days (so
phone and address are sealed). Sizes: 300, 3,000 and 30,000 residents (BENCH_QUICK: 300 and
3,000; BENCH_PULL_SIZES=300,1000 chooses), on SQLite and, when reachable, on PostgreSQL
(EXCHANGE_BENCH_PG_URL).

Server: uvicorn in a subprocess on loopback (one worker, no access log, logging at WARNING,
stderr to a file that is shown if the server fails) built by `bench_app`, which mounts two
bench-only routes beside the normal routers, both behind the same authentication and
permission as the feed and doing no privacy work:
- `GET /v1/bench/core-cases`: the baseline, the best a user could build without our privacy
  work: SQLAlchemy Core selects of the same assignment, resident and booking rows, the stored
  columns as they are, serialised with orjson;
- `GET /v1/bench/raw-cases`: the same rows through the ORM (the older baseline).
- `GET /v1/bench/gc`: the server's time in the cyclic garbage collector so far, by generation
  (to tell a full collection from the pipeline's own cost).
Those routes are defined here and exist only in this factory; the service's app never mounts
them. The factory settles the heap after start-up as the deployment's does
(`exchange.bootstrap.settle_heap`; BENCH_PULL_SETTLE=0 leaves CPython's defaults, to compare).

Load, per size: PAGES pages of PAGE cases per run and endpoint, their starting points spread
over the whole feed (so 30,000 residents cost what 300 do to measure), one keep-alive client;
all servers run side by side and every run visits every size in turn, so the machine's noise
falls on all of them alike. Then PULLERS concurrent pullers (one client each) fetch pages of
the full pipeline and of the Core baseline: p50/p99 latency per page (503s are counted).
Then the server's peak RSS (VmHWM).

Rows: cases/s of the full pipeline (decrypt, policy, pseudonyms, seal, audit, serialise)
against the Core baseline (target ratio >= 0.4) and against the ORM one; the server's CPU per
case for both (utime + stime of the server process: steadier than wall time on a shared
machine, and it leaves out what the database server does); the full pipeline's µs per case
against its own at 300 residents (target: within 1.5x); latencies; peak RSS.
Then one case's cost split into parts, measured in this process over the SQLite database of
the smallest size, each against the bare primitive it is made of (measured in the same run).

Run: .venv/bin/python bench/pull.py   (prints a markdown table; `main()` returns the rows)
"""

from __future__ import annotations

import base64
import gc
import hashlib
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

# bench/ must not shadow the `keys` package when this file is run as a script.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from cryptography.hazmat.primitives import hashes, hmac  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from fastapi import APIRouter, FastAPI, Query  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from sqlalchemy import LargeBinary, bindparam, select, type_coerce  # noqa: E402
from sqlalchemy.orm import selectinload  # noqa: E402

from bench._pg import pg_schema  # noqa: E402
from bench._rows import row as _row  # noqa: E402
from exchange.api.context import Context, context_for  # noqa: E402
from exchange.db import models as m  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZES = tuple(int(n) for n in os.environ.get("BENCH_PULL_SIZES", "").split(",") if n) or (
    (300, 3_000) if QUICK else (300, 3_000, 30_000)
)
DATABASES = tuple(os.environ.get("BENCH_PULL_DATABASES", "sqlite,postgresql").split(","))
PAGE = 100
RUNS = 3
PAGES = 20  # sequential pages per run and endpoint
PULLERS = 4
PULLER_PAGES = 10  # pages per puller and run
PURPOSE = "home_visit"
HOME_ENV = "BENCH_PULL_HOME"
CORE_PATH = "/v1/bench/core-cases"
ORM_PATH = "/v1/bench/raw-cases"
FULL = "full pipeline GET /v1/cases"
CORE = "Core baseline GET /v1/bench/core-cases"
ORM = "ORM raw rows GET /v1/bench/raw-cases"
# the resident columns both raw endpoints serve, as stored (ciphertext)
RAW_COLUMNS = ("name", "phone", "address_building", "address_room")


# -- the bench-only server ------------------------------------------------------------------


def _orm_router() -> APIRouter:
    router = APIRouter()

    @router.get("/bench/raw-cases")
    def raw_cases(
        ctx: Annotated[Context, context_for("cases.read")],
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = PAGE,
    ) -> Response:
        """The same assignment and resident rows as the feed, serialised as stored."""
        rows = ctx.session.execute(
            select(m.Assignment, m.Resident)
            .join(m.Resident, m.Resident.id == m.Assignment.resident_id)
            .where(
                m.Assignment.contractor_id == ctx.identity.contractor_id,
                m.Assignment.status == "active",
                m.Assignment.change_seq > after,
            )
            .order_by(m.Assignment.change_seq)
            .limit(limit)
            .options(selectinload(m.Assignment.bookings))
        ).all()
        b64 = base64.b64encode
        items = [
            {
                "seq": a.change_seq,
                "assignment": a.id,
                "resident": r.id,
                "services": a.services,
                "bookings": [[b.service_code, b.scheduled_on.isoformat()] for b in a.bookings],
                "columns": {
                    c: None if getattr(r, c) is None else b64(getattr(r, c).data).decode()
                    for c in RAW_COLUMNS
                },
            }
            for a, r in rows
        ]
        nxt = items[-1]["seq"] if items else after
        return Response(orjson.dumps({"items": items, "next": nxt}), media_type="application/json")

    return router


def _core_queries() -> tuple[Any, Any]:
    a, r, b = (t.__table__ for t in (m.Assignment, m.Resident, m.Booking))
    page_query = (
        select(
            a.c.change_seq,
            a.c.id,
            a.c.resident_id,
            a.c.services,
            *(type_coerce(r.c[c], LargeBinary) for c in RAW_COLUMNS),
        )
        .join(r, r.c.id == a.c.resident_id)
        .where(
            a.c.contractor_id == bindparam("contractor"),
            a.c.status == "active",
            a.c.change_seq > bindparam("after"),
        )
        .order_by(a.c.change_seq)
        .limit(bindparam("limit"))
    )
    bookings_query = (
        select(b.c.assignment_id, b.c.service_code, b.c.scheduled_on)
        .where(b.c.assignment_id.in_(bindparam("ids", expanding=True)))
        .order_by(b.c.scheduled_on, b.c.id)
    )
    return page_query, bookings_query


_CORE_QUERIES = _core_queries()


def core_page(conn: sa.Connection, contractor_id: str | None, after: int, limit: int) -> bytes:
    """The baseline's body: two Core selects (the page, its bookings), stored bytes, orjson
    (the route below, and its part measured in process)."""
    page_query, bookings_query = _CORE_QUERIES
    rows = conn.execute(
        page_query, {"contractor": contractor_id, "after": after, "limit": limit}
    ).all()
    bookings: dict[str, list[list[str]]] = {}
    if rows:
        for aid, code, on in conn.execute(bookings_query, {"ids": [x[1] for x in rows]}):
            bookings.setdefault(aid, []).append([code, on.isoformat()])
    b64 = base64.b64encode
    items = [
        {
            "seq": seq,
            "assignment": aid,
            "resident": rid,
            "services": services,
            "bookings": bookings.get(aid, []),
            "columns": {
                c: None if v is None else b64(v).decode()
                for c, v in zip(RAW_COLUMNS, stored, strict=True)
            },
        }
        for seq, aid, rid, services, *stored in rows
    ]
    nxt = items[-1]["seq"] if items else after
    return orjson.dumps({"items": items, "next": nxt})


def _core_router() -> APIRouter:
    """The baseline: two Core selects (the page, its bookings), stored bytes, orjson."""
    router = APIRouter()

    @router.get("/bench/core-cases")
    def core_cases(
        ctx: Annotated[Context, context_for("cases.read")],
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = PAGE,
    ) -> Response:
        body = core_page(ctx.session.connection(), ctx.contractor_id, after, limit)
        return Response(body, media_type="application/json")

    return router


class _GcClock:
    """The server's time in the cyclic garbage collector, by generation (a gc callback)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.perf_counter() - self._start
            self.count[generation] += 1


def _gc_router(clock: _GcClock) -> APIRouter:
    router = APIRouter()

    @router.get("/bench/gc")
    def gc_stats() -> Response:
        return Response(orjson.dumps({"seconds": clock.seconds, "count": clock.count}))

    return router


def bench_app() -> FastAPI:
    """uvicorn --factory bench.pull:bench_app (reads BENCH_PULL_HOME, EXCHANGE_DATABASE_URL)."""
    from exchange.api.app import create_app
    from exchange.bootstrap import load_keyring, settle_heap
    from exchange.db.engine import make_engine, make_session_factory
    from exchange.logs import configure_logging
    from exchange.settings import Settings

    settings = Settings(home=Path(os.environ[HOME_ENV]), max_page_size=PAGE)
    # as a deployment configures it, at WARNING: no per-request line for either endpoint
    configure_logging("json", "WARNING")
    engine = make_engine(settings.database_url)
    clock = _GcClock()
    gc.callbacks.append(clock)
    app = create_app(
        settings,
        session_factory=make_session_factory(engine),
        keyring=load_keyring(settings),
        extra_routers=(_core_router(), _orm_router(), _gc_router(clock)),
    )
    if os.environ.get("BENCH_PULL_SETTLE", "1") == "1":  # as exchange.bootstrap.app_factory
        settle_heap()
    return app


# -- set-up ---------------------------------------------------------------------------------


def prepare(home: Path, database_url: str, residents: int) -> str:
    """Build the database and keyring under `home`; returns the contractor's bearer token."""
    from exchange.api.auth import issue_token
    from exchange.db.engine import make_engine, make_session_factory, unit_of_work
    from exchange.db.ids import new_ids
    from exchange.db.migrate import upgrade
    from exchange.ledger.demo import load_demo
    from exchange.settings import Settings
    from keys.contractor_keys import generate_keypair
    from keys.keyring import Keyring
    from keys.providers import FileKeyring
    from policies.shipped import shipped_policy

    settings = Settings(home=home, database_url=database_url)
    FileKeyring.create(settings.keyring_file, development=True)
    keyring = Keyring(FileKeyring.load(settings.keyring_file))
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    today = date.today()
    now = datetime.now(UTC)
    with unit_of_work(make_session_factory(engine)) as s:
        load_demo(s, keyring, residents=residents, seed=7, today=today)
        office = m.Principal(name="bench-office", role="office_admin", display_name="o")
        contractor = m.Contractor(name="bench contractor")
        s.add_all([office, contractor])
        s.flush()
        _, public = generate_keypair()
        s.add(
            m.ContractorKey(
                contractor_id=contractor.id,
                key_id=public.fingerprint.hex(),
                kem_id=public.kem.wire_id,
                public_key=public.to_text(),
            )
        )
        principal = m.Principal(
            name="bench-contractor",
            role="contractor",
            display_name="c",
            contractor_id=contractor.id,
        )
        policy = shipped_policy(PURPOSE)
        agreement = m.Agreement(
            contractor_id=contractor.id,
            reference="BENCH-1",
            valid_from=today - timedelta(days=30),
            valid_to=today + timedelta(days=300),
            status="active",
            retention_days=365,
            sub_processors=[],
        )
        agreement.purposes.append(
            m.AgreementPurpose(purpose=PURPOSE, policy_id=policy.id, policy_version=policy.version)
        )
        s.add_all([principal, agreement])
        s.flush()
        token = issue_token(principal, now=now)
        services = ["mid_pregnancy", "late_pregnancy", "early_education", "parenting"]
        resident_ids = list(s.scalars(select(m.Resident.id).order_by(m.Resident.id)))
        n = len(resident_ids)
        # bulk inserts (executemany): 30,000 ORM objects would dominate the set-up
        consent_ids, assignment_ids = new_ids(n), new_ids(n)
        s.execute(
            sa.insert(m.ConsentEvent),
            [
                {
                    "id": consent_ids[i], "resident_id": rid, "sequence": 1,
                    "programme": "cy1000", "action": "grant",
                    "scopes": ["service_contact", "pregnancy_health", "birth_health",
                               "child_data"],
                    "method": "paper", "notice_version": "1", "evidence_sha256": "ab" * 32,
                    "guardian": True, "recorded_at": now, "recorded_by": office.id,
                }
                for i, rid in enumerate(resident_ids)
            ],
        )  # fmt: skip
        s.execute(
            sa.insert(m.Assignment),
            [
                {
                    "id": assignment_ids[i], "resident_id": rid, "contractor_id": contractor.id,
                    "agreement_id": agreement.id, "services": services, "status": "active",
                    "change_seq": i + 1, "created_at": now, "updated_at": now,
                    "created_by": office.id,
                }
                for i, rid in enumerate(resident_ids)
            ],
        )  # fmt: skip
        booked = assignment_ids[::2]
        s.execute(
            sa.insert(m.Booking),
            [
                {"id": bid, "assignment_id": aid, "service_code": services[0],
                 "scheduled_on": today + timedelta(days=2), "created_at": now}
                for bid, aid in zip(new_ids(len(booked)), booked, strict=True)
            ],
        )  # fmt: skip
        s.add(m.FeedCounter(contractor_id=contractor.id, last_seq=n))
    if engine.dialect.name == "postgresql":
        # the statistics autovacuum would have gathered a minute after such a load: without
        # them the planner joins 30,000 residents by hash for a page of 100
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE")
    engine.dispose()
    return token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        HOME_ENV: str(home),
        "EXCHANGE_DATABASE_URL": database_url,
        "PYTHONPATH": str(_ROOT),
        "EXCHANGE_LOG_LEVEL": "WARNING",
    }
    # stderr to a file, never to a pipe nobody reads (a full pipe would block the server)
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "bench.pull:bench_app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning",
        ],
        cwd=_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    tail = (home / "server.log").read_text(errors="replace")[-500:]
    raise RuntimeError("bench server did not start: " + tail)


def stop_server(proc: subprocess.Popen[bytes], home: Path) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    errors = (home / "server.log").read_text(errors="replace")
    if "Traceback" in errors or '"level": "error"' in errors:
        print("bench server logged errors:\n" + errors[-800:], file=sys.stderr)


def cpu_seconds(pid: int) -> float:
    """CPU time of the whole server process, every thread it ever ran included (the work of a
    sync endpoint runs on threadpool threads, which come and go): utime + stime of
    /proc/<pid>/stat, in clock ticks (10 ms; a measured run takes seconds). Less disturbed
    than wall time by other work on the machine, since it leaves out the waits."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- load -----------------------------------------------------------------------------------


def _starts(residents: int, count: int, seed: int) -> list[int]:
    """`count` feed positions after which a full page of PAGE cases follows, spread evenly
    over the feed, in a shuffled order."""
    last = max(0, residents - PAGE)
    starts = [round(i * last / max(1, count - 1)) for i in range(count)]
    random.Random(seed).shuffle(starts)
    return starts


class Refused(Exception):
    """The server answered 503 (the database stayed locked, the audit append timed out)."""


def _fetch(client: httpx.Client, endpoint: str, after: int) -> float:
    """One page after feed position `after`; its latency in seconds."""
    from exchange.services.feed import encode_cursor

    if endpoint == FULL:
        path = "/v1/cases"
        params: dict[str, Any] = {"purpose": PURPOSE, "limit": PAGE}
        if after:
            params["cursor"] = encode_cursor(after, PURPOSE)
    else:
        path = CORE_PATH if endpoint == CORE else ORM_PATH
        params = {"after": after, "limit": PAGE}
    t = time.perf_counter()
    r = client.get(path, params=params)
    elapsed = time.perf_counter() - t
    if r.status_code == 503:
        raise Refused(elapsed)
    r.raise_for_status()
    items = orjson.loads(r.content)["items"]
    if len(items) != PAGE:
        raise RuntimeError(f"{endpoint}: {len(items)} cases in a page, expected {PAGE}")
    return elapsed


def _client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)


@dataclass
class Setup:
    """One database of one size with its server."""

    db: str
    residents: int
    base: str
    token: str
    pid: int
    rates: dict[str, list[float]] = field(default_factory=lambda: {CORE: [], ORM: [], FULL: []})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {CORE: [], ORM: [], FULL: []})
    gc: dict[str, list[float]] = field(default_factory=lambda: {CORE: [], ORM: [], FULL: []})
    latencies: dict[str, list[float]] = field(default_factory=lambda: {FULL: [], CORE: []})
    refused: dict[str, int] = field(default_factory=lambda: {FULL: 0, CORE: 0})

    @property
    def label(self) -> str:
        return f"{self.db} {self.residents:,} residents"


def warm_up(setup: Setup) -> None:
    """Every path once (imports, caches, prepared statements)."""
    with _client(setup.base, setup.token) as client:
        for endpoint in setup.rates:
            for after in _starts(setup.residents, 3, 0):
                _fetch(client, endpoint, after)


def sequential(setup: Setup, run: int) -> None:
    """One run: PAGES pages per endpoint, one client; appends cases/s per endpoint."""
    starts = _starts(setup.residents, PAGES, run + 1)
    with _client(setup.base, setup.token) as client:
        for endpoint, out in setup.rates.items():
            collected = _gc_seconds(client)
            cpu = cpu_seconds(setup.pid)
            begin = time.perf_counter()
            for after in starts:
                _fetch(client, endpoint, after)
            out.append(len(starts) * PAGE / (time.perf_counter() - begin))
            setup.cpu[endpoint].append((cpu_seconds(setup.pid) - cpu) / (len(starts) * PAGE) * 1e6)
            collected = _gc_seconds(client) - collected
            setup.gc[endpoint].append(collected / (len(starts) * PAGE) * 1e6)


def _gc_seconds(client: httpx.Client) -> float:
    """The server's time in the cyclic garbage collector so far (all generations)."""
    r = client.get("/v1/bench/gc")
    r.raise_for_status()
    return float(sum(orjson.loads(r.content)["seconds"]))


def concurrent(setup: Setup, run: int, endpoint: str) -> None:
    """One run: PULLERS clients each fetching PULLER_PAGES pages at once; appends the
    latencies (ms)."""
    latencies = setup.latencies[endpoint]
    lock = threading.Lock()
    done: list[int] = []

    def puller(seed: int) -> None:
        mine, refused = [], 0
        with _client(setup.base, setup.token) as client:
            for after in _starts(setup.residents, PULLER_PAGES, seed):
                try:
                    mine.append(_fetch(client, endpoint, after) * 1000)
                except Refused as exc:  # counted, and its wait counts as its latency
                    mine.append(float(exc.args[0]) * 1000)
                    refused += 1
        with lock:
            latencies.extend(mine)
            setup.refused[endpoint] += refused
            done.append(seed)

    threads = [threading.Thread(target=puller, args=(100 * run + i,)) for i in range(PULLERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(done) != PULLERS:
        raise RuntimeError(f"{setup.label}, {endpoint}: a puller failed")


def measure(setups: list[Setup]) -> None:
    """Every run visits every size and database in turn, so that the machine's noise (other
    work on it) falls on all of them alike and the same-run ratios compare like with like."""
    for setup in setups:
        warm_up(setup)
    for run in range(RUNS):
        for setup in setups:
            sequential(setup, run)
        for setup in setups:
            for endpoint in setup.latencies:
                concurrent(setup, run, endpoint)


def http_rows(setups: list[Setup]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    smallest = {}
    for setup in setups:
        smallest.setdefault(setup.db, setup)
    for setup in setups:
        label, rates = setup.label, setup.rates
        rows += [
            _row(f"{label}: {CORE}", "cases/s", rates[CORE]),
            _row(f"{label}: {ORM}", "cases/s", rates[ORM]),
        ]
        for baseline in (CORE, ORM):
            ratios = [f / b for f, b in zip(rates[FULL], rates[baseline], strict=True)]
            rows.append(
                _row(f"{label}: {FULL} (vs {baseline.split()[0]})", "cases/s", rates[FULL],
                     f"{label}: {baseline}", ratios)
            )  # fmt: skip
        cpu = setup.cpu
        rows.append(_row(f"{label}: {CORE}, server CPU per case", "µs/case", cpu[CORE]))
        for endpoint in (CORE, FULL):
            rows.append(_row(f"{label}: {endpoint}, server GC per case (part of its CPU)",
                             "µs/case", setup.gc[endpoint]))  # fmt: skip
        rows.append(
            _row(f"{label}: {FULL}, server CPU per case", "µs/case", cpu[FULL],
                 f"{label}: {CORE}, server CPU per case (ratio: Core / full, as for cases/s)",
                 [c / f for c, f in zip(cpu[CORE], cpu[FULL], strict=True)])
        )  # fmt: skip
        per_case = [1e6 / r for r in rates[FULL]]
        first = smallest[setup.db]
        first_per_case = [1e6 / r for r in first.rates[FULL]]
        rows.append(
            _row(f"{label}: full pipeline per case", "µs/case", per_case,
                 f"{first.label}: full pipeline per case",
                 [p / f for p, f in zip(per_case, first_per_case, strict=True)])
        )  # fmt: skip
        for endpoint, lat in setup.latencies.items():
            qs = statistics.quantiles(lat, n=100)
            name = endpoint.split(" GET")[0]
            rows.append(_row(f"{label}: {name}, p50 of a {PAGE}-case page, {PULLERS} pullers",
                             "ms", [statistics.median(lat)]))  # fmt: skip
            rows.append(_row(f"{label}: {name}, p99 of a {PAGE}-case page, {PULLERS} pullers",
                             "ms", [qs[98]]))  # fmt: skip
            if setup.refused[endpoint]:
                rows.append(_row(f"{label}: {name}, pages refused (503) of {len(lat)}, "
                                 f"{PULLERS} pullers", "pages",
                                 [float(setup.refused[endpoint])]))  # fmt: skip
        rows.append(_row(f"{label}: server peak RSS (VmHWM)", "MB", [peak_rss_mb(setup.pid)]))
    return rows


# -- one case's cost, in parts ------------------------------------------------------------------


def _per_case(fn: Callable[[], object], cases: int, repeat: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / (repeat * cases) * 1e6


def part_rows(home: Path) -> list[dict[str, Any]]:
    """One page's cost split into the disclosure path's steps, through its public interface
    (`exchange.services.disclosure`), each against the bare primitive it is made of."""
    from audit import entry as codec
    from audit.merkle import leaf_hash
    from exchange.db.engine import make_engine, make_session_factory
    from exchange.identity import CONTRACTOR, Acting, Identity
    from exchange.services import auditing, disclosure
    from exchange.services.auditing import SqlAuditSink
    from exchange.settings import Settings
    from keys.keyring import Keyring
    from keys.providers import FileKeyring
    from policies.shipped import shipped_policies

    settings = Settings(home=home, database_url=f"sqlite:///{home / 'exchange.db'}")
    keyring = Keyring(FileKeyring.load(settings.keyring_file))
    engine = make_engine(settings.database_url)
    policies = shipped_policies()
    fields = policies.reads(PURPOSE)
    versions = disclosure.policy_versions(policies)
    who = Identity("bench", "bench", CONTRACTOR, "bench")
    acting = Acting(who, datetime.now(UTC), "bench-request")
    results: dict[str, list[float]] = {}
    with make_session_factory(engine)() as s:
        contractor_id = s.scalars(select(m.Contractor.id)).one()
        assignments = disclosure.changed_cases(s, policies, PURPOSE, contractor_id, 0, PAGE)
        loaded = disclosure.load(s, keyring, assignments, fields, policy_versions=versions)
        cases = [c for c in loaded if isinstance(c, disclosure.CaseInputs)]
        public = disclosure.active_public_key(s, contractor_id)
        n = len(cases)
        evaluated = disclosure.evaluate(cases, PURPOSE, acting.now, policies)
        sealed_fields = sum(d.sealed for e in evaluated for d in e.evaluation.view.values())
        decrypted = sum(
            1 for c in cases for f in fields if f in disclosure.ENCRYPTED and c.record.values.get(f)
        )
        presenter = disclosure.Presenter(public)
        items = [presenter.present(e) for e in evaluated]
        page = {"purpose": PURPOSE, "envelopes": presenter.envelopes, "items": items}

        def rows() -> None:
            disclosure.changed_cases(s, policies, PURPOSE, contractor_id, 0, PAGE)
            disclosure.page_rows(s.connection(), assignments)

        def load() -> None:
            disclosure.load(s, keyring, assignments, fields, policy_versions=versions)

        def policy() -> None:
            disclosure.evaluate(cases, PURPOSE, acting.now, policies)

        def pseudonyms() -> None:
            for c in cases:
                keyring.case_reference(c.agreement_id, c.resident_id)
                keyring.audit_pseudonym(c.resident_id)

        def sealing() -> None:
            p = disclosure.Presenter(public)
            for e in evaluated:
                p.present(e)

        def audit_build() -> None:
            for index, entry in enumerate(
                disclosure.audit_entries(keyring, acting, PURPOSE, evaluated)
            ):
                leaf_hash(codec.encode(index, entry))

        def serialise() -> None:
            orjson.dumps(page)

        entries = disclosure.audit_entries(keyring, acting, PURPOSE, evaluated)
        sink = SqlAuditSink()

        def append_commit() -> None:
            # the page's entry appended (head read, entry row, leaf and nodes) and committed
            auditing.append(s, sink, entries)
            s.commit()

        def core_body() -> None:
            core_page(s.connection(), contractor_id, 0, PAGE)

        ciphertext = AESGCM(secrets.token_bytes(32))
        nonce = secrets.token_bytes(12)
        blob = ciphertext.encrypt(nonce, b"x" * 32, b"aad")
        mac = hmac.HMAC(secrets.token_bytes(32), hashes.SHA256())
        entry_bytes = b"e" * 200

        def bare_decrypt() -> None:
            for _ in range(decrypted):
                ciphertext.decrypt(nonce, blob, b"aad")

        def bare_hmac() -> None:
            for c in cases:
                for _ in range(2):
                    m2 = mac.copy()
                    m2.update(c.resident_id.encode())
                    m2.finalize()

        def bare_aead() -> None:
            for _ in range(sealed_fields):
                ciphertext.encrypt(secrets.token_bytes(12), b"x" * 24, b"aad")

        def bare_sha() -> None:
            for _ in range(n):
                hashlib.sha256(b"\x00" + entry_bytes).digest()

        flat = [{"case_reference": i["case_reference"], "seq": i["seq"]} for i in items]

        def bare_json() -> None:
            orjson.dumps(flat)

        parts: list[tuple[str, Callable[[], None], str, Callable[[], None]]] = [
            (
                "part: stored rows of the page (Core, 4 queries)",
                rows,
                "Core baseline's whole body (2 queries, orjson), in process",
                core_body,
            ),
            (
                "part: inputs of the case rows (3 queries, decrypt, typed inputs)",
                load,
                f"bare AES-GCM decrypt x{decrypted / n:.1f}/case",
                bare_decrypt,
            ),
            ("part: policy evaluate (plans)", policy, "bare HMAC-SHA-256 x2/case", bare_hmac),
            (
                "part: pseudonyms (case ref + audit)",
                pseudonyms,
                "bare HMAC-SHA-256 x2/case",
                bare_hmac,
            ),
            (
                "part: seal + present (1 envelope/page)",
                sealing,
                f"bare AES-GCM encrypt x{sealed_fields / n:.1f}/case",
                bare_aead,
            ),
            (
                "part: audit entry build + encode + leaf hash",
                audit_build,
                "bare SHA-256 of 200 B /case",
                bare_sha,
            ),
            ("part: serialise page (orjson)", serialise, "orjson of ref+seq only", bare_json),
            (
                "part: audit append + commit (SQLite, 1 entry/page)",
                append_commit,
                "bare SHA-256 of 200 B /case",
                bare_sha,
            ),
        ]
        for _ in range(RUNS):
            measured: set[str] = set()
            for name, fn, base_name, base_fn in parts:
                if base_name not in measured:
                    measured.add(base_name)
                    results.setdefault(base_name, []).append(_per_case(base_fn, n))
                results.setdefault(name, []).append(_per_case(fn, n))
        out = []
        seen: set[str] = set()
        for name, _, base_name, _ in parts:
            if base_name not in seen:
                seen.add(base_name)
                out.append(_row(base_name, "µs/case", results[base_name]))
            ratios = [a / b for a, b in zip(results[name], results[base_name], strict=True)]
            out.append(_row(name, "µs/case", results[name], base_name, ratios))
    engine.dispose()
    return out


# -- output -----------------------------------------------------------------------------------


def render(rows: list[dict[str, Any]]) -> str:
    def f(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return "" if v is None else str(v)

    lines = [
        "| name | unit | min | median | max | baseline | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['name']} | {r['unit']} | {f(r['min'])} | {f(r['median'])} | {f(r['max'])} | "
        f"{f(r['baseline_name'])} | {f(r['ratio'])} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> list[dict[str, Any]]:
    setups: list[Setup] = []
    parts: list[dict[str, Any]] = []
    parts_home: Path | None = None
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp, ExitStack() as stack:
        for db in DATABASES:
            for residents in SIZES:
                home = Path(tmp) / f"{db}-{residents}"
                home.mkdir()
                if db == "sqlite":
                    url: str | None = f"sqlite:///{home / 'exchange.db'}"
                else:
                    url = stack.enter_context(pg_schema("bench_pull"))
                    if url is None:
                        print("PostgreSQL unreachable: no PostgreSQL rows", file=sys.stderr)
                        break
                token = prepare(home, url, residents)
                proc, base = start_server(home, url)
                stack.callback(stop_server, proc, home)
                setups.append(Setup(db, residents, base, token, proc.pid))
                if db == "sqlite" and residents == SIZES[0]:
                    parts_home = home
        measure(setups)
        rows = http_rows(setups)
        stack.close()  # the servers stop before the in-process parts are timed
        if parts_home is not None:
            parts = part_rows(parts_home)
    return rows + parts


if __name__ == "__main__":
    print(render(main()))
