"""The console: the resident list page against the JSON API's list of the same rows, and the
.xlsx export of the ledger (rows/s, and peak memory flat in the row count).

Set-up (a temporary directory): a SQLite database migrated to head, a memory keyring, the
synthetic demo ledger of EXPORT_ROWS residents imported by the real importer, one office admin
with an API token and a console account.

List: uvicorn serves the app in a thread on loopback; one httpx client with keep-alive asks
alternately for `GET /console/residents?size=20` (signed in: session cookie, scope, 20 rows
decrypted and masked, audited, rendered by Jinja2 with the menu and watermark) and `GET
/v1/residents?limit=20` (bearer token, the same 20 rows decrypted and masked by the same
service, audited, serialised as JSON); the ratio is the median over pairs of page time / API
time (the API is the baseline: the console should cost a page's rendering over it, no more).

Export: in this process, what the route does without HTTP: `resident_export.export` walks the
query in keyset batches (decrypt, mask, one audit entry per 1,000 rows) into a write-only
workbook saved to an anonymous temporary file. Baseline: the same rows in a plaintext table
(what a system without the privacy work would keep) read with SQLAlchemy Core and written by
the same openpyxl write-only writer. Peak memory is tracemalloc's peak of Python allocations
during the export (a separate run from the timed ones), at 5,000 rows and at EXPORT_ROWS: flat
means the ratio of the two stays near 1. Below 4,096 rows the peak grows with the rows: the
keyring keeps up to 4,096 unwrapped data keys (FIFO, keys/keyring.py), about 1.2 KiB each;
nothing else of an export is kept per row.

Phone lookup: the service's exact lookup of one phone (`resident_ledger.search`, scoped,
audited) through the phone's blind index, against the same lookup with every phone index
cleared (rows stored before migration 0011), which decrypts every resident in scope: what the
lookup did before the phone had an index. Ratio: a speed-up, the scan's median time / the
indexed time (the other rows' ratios are ours / baseline; this one would print as 0.00).

Run: .venv/bin/python bench/console.py   (prints a markdown table; `main()` returns the rows)
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import Column, MetaData, String, Table, insert, select  # noqa: E402

from bench._rows import row as _row  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
EXPORT_ROWS = 10_000  # also with --quick: the set-up is ~15 s, and flatness needs the sizes
SMALL_EXPORT = 5_000  # both sizes above the keyring's cache of 4,096 unwrapped data keys
PAIRS = 15 if QUICK else 40
LOOKUPS = 10 if QUICK else 30
RUNS = 3
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "Bench-pass-2026"


def _setup(home: Path) -> dict[str, Any]:
    from exchange.api.app import create_app
    from exchange.api.auth import issue_token
    from exchange.db import models as m
    from exchange.db.engine import make_engine, make_session_factory, unit_of_work
    from exchange.db.migrate import upgrade_engine
    from exchange.ledger.demo import load_demo
    from exchange.ledger.importer import ensure_communities
    from exchange.services.accounts import ensure_account
    from exchange.settings import Settings
    from keys.keyring import Keyring
    from keys.providers import MemoryKeyProvider
    from policies import office_date

    url = f"sqlite:///{home / 'bench.db'}"
    engine = make_engine(url)
    upgrade_engine(engine)
    factory = make_session_factory(engine)
    keyring = Keyring(MemoryKeyProvider.generate())
    with unit_of_work(factory) as session:
        ensure_communities(session)
        report = load_demo(session, keyring, residents=EXPORT_ROWS, seed=15,
                           today=office_date(NOW))  # fmt: skip
        assert report.ok and report.applied
        admin = m.Principal(name="bench-admin", role="office_admin", display_name="王主任")
        session.add(admin)
        session.flush()
        ensure_account(session, admin, PASSWORD, NOW)
        token = issue_token(admin, now=NOW, ttl=timedelta(days=1))
        admin_id = admin.id
    clock: Callable[[], datetime] = lambda: NOW  # noqa: E731
    settings = Settings(home=home, database_url=url, max_page_size=200)  # type: ignore[call-arg]
    app = create_app(settings, session_factory=factory, keyring=keyring, clock=clock,
                     audit_probe=lambda: True)  # fmt: skip
    return {"app": app, "factory": factory, "keyring": keyring, "token": token,
            "admin_id": admin_id, "engine": engine}  # fmt: skip


class _Server:
    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="off")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _sign_in(client: httpx.Client) -> None:
    import re

    form = client.get("/console/login")
    nonce = re.search(r'name="csrf_token" value="([^"]*)"', form.text)
    assert nonce is not None
    r = client.post("/console/login", data={"username": "bench-admin", "password": PASSWORD,
                                             "csrf_token": nonce.group(1)})  # fmt: skip
    assert r.status_code in (200, 303), r.status_code


def list_rows(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    with _Server(ctx["app"]) as base:
        page = httpx.Client(base_url=base, follow_redirects=False)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ctx['token']}"})
        _sign_in(page)
        for _ in range(3):  # warm both paths (templates, key cache, statements)
            assert page.get("/console/residents?size=20").status_code == 200
            assert api.get("/v1/residents?limit=20").status_code == 200
        page_ms, api_ms, ratios = [], [], []
        for _ in range(PAIRS):
            started = time.perf_counter()
            r = page.get("/console/residents?size=20")
            mid = time.perf_counter()
            a = api.get("/v1/residents?limit=20")
            done = time.perf_counter()
            assert r.status_code == 200 and a.status_code == 200
            page_ms.append((mid - started) * 1000)
            api_ms.append((done - mid) * 1000)
            ratios.append(page_ms[-1] / api_ms[-1])
        assert r.text.count('">查看<') == 20 and len(a.json()["items"]) == 20
        page.close()
        api.close()
    return [
        _row("console GET /console/residents, 20 masked rows", "ms", page_ms,
             "API GET /v1/residents?limit=20", ratios),
        _row("API GET /v1/residents?limit=20 (baseline)", "ms", api_ms),
    ]  # fmt: skip


def _acting(ctx: dict[str, Any], session: Any) -> Any:
    from exchange.db import models as m
    from exchange.identity import Acting, Identity

    principal = session.get(m.Principal, ctx["admin_id"])
    return Acting(Identity.from_row(principal), NOW, None)


def _export(ctx: dict[str, Any]) -> int:
    """The route's work: the service writing masked rows into a streamed workbook."""
    from exchange.db.engine import unit_of_work
    from exchange.exports.workbook import StreamingSheet
    from exchange.services import resident_export, resident_ledger

    with unit_of_work(ctx["factory"]) as session:
        acting = _acting(ctx, session)
        sheet = StreamingSheet("居民台账", [["导出人", "王主任"], ["导出时间", "2026-03-01"]],
                               ["姓名", "身份证号", "联系电话", "社区", "住址", "孕产状态",
                                "预产期", "分娩日期", "分配状态"])  # fmt: skip

        def write(row: Any) -> None:
            sheet.append([row["name"], row["national_id"], row["phone"], row["community"],
                          row["address"], row["stage"], row["due_date"], row["delivery_date"],
                          "已分配" if row["assigned"] else "未分配"])  # fmt: skip

        q = resident_ledger.LedgerQuery()
        receipt = resident_export.export(session, ctx["keyring"], acting, q, write)
        with tempfile.TemporaryFile() as out:
            sheet.close(out, footer=[f"共 {receipt.rows} 条"])
        session.rollback()  # leave the log as it was for the next run
    return receipt.rows


def _plain_table(ctx: dict[str, Any]) -> Table:
    """The baseline's store: the same rows in plaintext (decrypted once, here)."""
    from exchange.db import models as m
    from exchange.db.engine import unit_of_work
    from exchange.services.residents import data_key

    meta = MetaData()
    table = Table("bench_plain_residents", meta, Column("id", String(36), primary_key=True),
                  *(Column(n, String(64)) for n in ("name", "national_id", "phone", "community",
                                                    "address", "stage", "due_date",
                                                    "delivery_date")))  # fmt: skip
    meta.create_all(ctx["engine"])
    rows = []
    with unit_of_work(ctx["factory"]) as session:
        for resident in session.scalars(select(m.Resident)):
            key = data_key(ctx["keyring"], resident)
            assert key is not None
            sealed = {c: getattr(resident, c) for c in ("name", "national_id", "phone",
                                                        "address_compound", "address_building")}
            values = ctx["keyring"].decrypt_row(key, "residents", resident.id,
                                                {k: v for k, v in sealed.items() if v})
            rows.append({"id": resident.id, "name": values.get("name"),
                         "national_id": values.get("national_id"), "phone": values.get("phone"),
                         "community": resident.community_id,
                         "address": (values.get("address_compound") or "")
                         + (values.get("address_building") or ""),
                         "stage": "", "due_date": None, "delivery_date": None})  # fmt: skip
        session.execute(insert(table), rows)
    return table


def _baseline_export(ctx: dict[str, Any], table: Table) -> int:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("residents")
    sheet.append(["name", "national_id", "phone", "community", "address", "stage", "due_date",
                  "delivery_date"])  # fmt: skip
    count = 0
    with ctx["engine"].connect() as conn:
        for r in conn.execute(select(table).order_by(table.c.id)):
            sheet.append(list(r[1:]))
            count += 1
    with tempfile.TemporaryFile() as out:
        book.save(out)
    return count


def export_rows(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    table = _plain_table(ctx)
    ours, base, ratios = [], [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        n = _export(ctx)
        mid = time.perf_counter()
        b = _baseline_export(ctx, table)
        done = time.perf_counter()
        assert n == b == EXPORT_ROWS, (n, b)
        ours.append(n / (mid - started))
        base.append(b / (done - mid))
        ratios.append(ours[-1] / base[-1])
    peaks = {size: _peak_mib(ctx, size) for size in (SMALL_EXPORT, EXPORT_ROWS)}
    return [
        _row(f".xlsx export, {EXPORT_ROWS:,} masked rows", "rows/s", ours,
             "Core + openpyxl, plaintext rows", ratios),
        _row(f".xlsx export baseline, {EXPORT_ROWS:,} plaintext rows", "rows/s", base),
        _row(f".xlsx export peak Python memory, {SMALL_EXPORT:,} rows", "MiB",
             [peaks[SMALL_EXPORT]]),
        _row(f".xlsx export peak Python memory, {EXPORT_ROWS:,} rows", "MiB",
             [peaks[EXPORT_ROWS]], f"the same at {SMALL_EXPORT:,} rows",
             [peaks[EXPORT_ROWS] / peaks[SMALL_EXPORT]]),
    ]  # fmt: skip


def _peak_mib(ctx: dict[str, Any], size: int) -> float:
    """tracemalloc's peak while exporting a query of `size` rows (the first `size` ids)."""
    from exchange.db import models as m
    from exchange.services import resident_ledger

    real = resident_ledger._conditions
    with ctx["engine"].connect() as conn:
        last = conn.scalar(select(m.Resident.id).order_by(m.Resident.id).offset(size - 1)
                           .limit(1))  # fmt: skip

    def first_n(session: Any, keyring: Any, acting: Any, q: Any) -> Any:
        return [*real(session, keyring, acting, q), m.Resident.id <= last]

    resident_ledger._conditions = first_n
    try:
        tracemalloc.start()
        assert _export(ctx) == size
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        resident_ledger._conditions = real
    return peak / (1024 * 1024)


def _lookup_ms(ctx: dict[str, Any], phone: str, *, unindexed: bool) -> list[float]:
    """Milliseconds per exact phone lookup (the service, audited), over the whole ledger;
    `unindexed`: every phone index cleared first (as rows stored before migration 0011), so
    the lookup decrypts the scope, as it did before the phone had an index."""
    from sqlalchemy import update

    from exchange.db import models as m
    from exchange.db.engine import unit_of_work
    from exchange.services import resident_ledger

    times = []
    with unit_of_work(ctx["factory"]) as session:
        acting = _acting(ctx, session)
        if unindexed:
            session.execute(update(m.Resident).values(phone_index=None))
        for _ in range(3 if unindexed else LOOKUPS):
            started = time.perf_counter()
            q = resident_ledger.parse_lookup(session, phone=phone)
            total, page = resident_ledger.search(session, ctx["keyring"], acting, q)
            times.append((time.perf_counter() - started) * 1000)
            assert total >= 1 and page
        session.rollback()  # the indexes and the log as they were
    return times


def lookup_rows(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    from exchange.db import models as m
    from exchange.services.residents import data_key

    with ctx["factory"]() as session:
        resident = session.scalars(select(m.Resident).order_by(m.Resident.id.desc())
                                   .limit(1)).one()  # fmt: skip
        key = data_key(ctx["keyring"], resident)
        assert key is not None and resident.phone is not None
        phone = ctx["keyring"].decrypt_row(key, "residents", resident.id,
                                           {"phone": resident.phone})["phone"]  # fmt: skip
    indexed = _lookup_ms(ctx, phone, unindexed=False)
    scan = _lookup_ms(ctx, phone, unindexed=True)
    ratio = [statistics.median(scan) / t for t in indexed]  # a speed-up: > 1 is faster
    return [
        _row(f"phone lookup, {EXPORT_ROWS:,} residents, through the phone index", "ms", indexed,
             "decrypt scan, no index (ratio = speed-up)", ratio),
        _row(f"phone lookup, {EXPORT_ROWS:,} residents, no index: decrypt scan (baseline)",
             "ms", scan),
    ]  # fmt: skip


def main() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        ctx = _setup(Path(tmp))
        rows = list_rows(ctx)
        rows += lookup_rows(ctx)
        rows += export_rows(ctx)
        ctx["engine"].dispose()
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| name | unit | median | min | max | baseline | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['name']} | {r['unit']} | {r['median']:.3g} | {r['min']:.3g} | "
                     f"{r['max']:.3g} | {r['baseline_name'] or ''} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(main()))
