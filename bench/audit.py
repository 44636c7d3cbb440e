"""Audit log benchmark: appends, offline verification and proof latency, with same-run baselines.

    .venv/bin/python bench/audit.py [--quick]

Rows: durable appends/s one transaction each and in batches of 100 (against a raw INSERT of the
same bytes into a plain table), full export verification in entries/s (against one bare
hashlib.sha256 per entry), and inclusion/consistency proof latency on a 1,000,000-entry SQLite
store built by bulk-inserting precomputed leaves and interior hashes (against a single-row
primary-key SELECT). PostgreSQL rows are skipped if the server is unreachable.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from audit.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from audit.entry import (  # noqa: E402
    Action,
    Actor,
    AuditEntry,
    PolicyRef,
    Subject,
    Withheld,
    _halves,  # noqa: E402  (timed on its own: the encoder's real work)
    encode,
    encode_reference,
)
from audit.export import checkpoint_line, entry_line, header_line, parse_entry_line  # noqa: E402
from audit.merkle import CompactRange, leaf_hash  # noqa: E402
from audit.note import Signer  # noqa: E402
from audit.store import AuditLog, append, append_many, create_schema  # noqa: E402
from audit.store.search import refresh_search  # noqa: E402
from audit.store.tables import entries as entries_table  # noqa: E402
from audit.verifier import verify_export  # noqa: E402
from exchange.db.engine import make_engine, make_session_factory  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2025, 3, 1, tzinfo=UTC)
Row = tuple[str, str, float, float, float, str, float]


def sample(i: int) -> AuditEntry:
    return AuditEntry(
        time=T0 + timedelta(seconds=i),
        actor=Actor(f"contractor-{i % 5}", "contractor"),
        action=Action.DISCLOSE,
        agreement="agr-1",
        purpose="home_visit",
        policy=PolicyRef("home_visit", "1", "sha256-3f2a"),
        request_id=f"req-{i}",
        subjects=(
            Subject(
                f"ap_{i:08d}",
                f"cr_{i:08d}",
                ("address.room", "resident.name"),
                (Withheld("episode.due_date", "no_consent"),),
                (f"ce-{i}",),
            ),
        ),
    )


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[sa.Engine | None]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}")
        # durable: fsync on every commit
        sa.event.listen(
            engine, "connect", lambda c, _r: c.cursor().execute("PRAGMA synchronous=FULL")
        )
        yield engine
        engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # unreachable server: skip the PostgreSQL rows
        print(f"# PostgreSQL unreachable ({type(exc).__name__}); skipping its rows")
        yield None
        return
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fresh(engine: sa.Engine) -> None:
    md = sa.MetaData()
    for name in (
        "audit_cosignatures",
        "audit_checkpoints",
        "audit_subjects",
        "audit_search",
        "audit_entries",
        "audit_head",
        "raw_baseline",
    ):
        sa.Table(name, md)
    with engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(
                sa.text(
                    "DROP TABLE IF EXISTS audit_cosignatures, audit_checkpoints, "
                    "audit_subjects, audit_search, audit_entries, audit_head, raw_baseline CASCADE"
                )
            )
        else:
            for name in (
                "audit_cosignatures",
                "audit_checkpoints",
                "audit_subjects",
                "audit_search",
                "audit_entries",
                "audit_head",
                "raw_baseline",
            ):
                c.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        create_schema(c)
        c.execute(
            sa.text(
                "CREATE TABLE raw_baseline (idx BIGINT PRIMARY KEY, entry "
                + ("BYTEA" if c.dialect.name == "postgresql" else "BLOB")
                + ")"
            )
        )


def timed(fn: Callable[..., Any], *args: Any) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def bench_appends(
    kind: str, engine: sa.Engine, n_single: int, n_batches: int, runs: int
) -> list[Row]:
    factory = make_session_factory(engine)
    items = [sample(i) for i in range(max(n_single, 100))]
    encoded = [encode(i, e) for i, e in enumerate(items)]
    ours_1, raw_1, ours_b, raw_b, built_b, refresh = [], [], [], [], [], []
    raw_insert = sa.text("INSERT INTO raw_baseline (idx, entry) VALUES (:i, :e)")
    for run in range(runs):
        fresh(engine)

        def ours_single() -> None:
            for e in items[:n_single]:
                with factory.begin() as s:
                    append(s, e)

        def raw_single() -> None:
            for i in range(n_single):
                with factory.begin() as s:
                    s.execute(raw_insert, {"i": i, "e": encoded[i]})

        # alternate which goes first: the disk and the machine drift within a run
        if run % 2:
            raw_1.append(n_single / timed(raw_single))
            ours_1.append(n_single / timed(ours_single))
        else:
            ours_1.append(n_single / timed(ours_single))
            raw_1.append(n_single / timed(raw_single))
        fresh(engine)

        def ours_batch() -> None:
            for _b in range(n_batches):
                with factory.begin() as s:
                    append_many(s, items[:100])

        def raw_batch() -> None:
            for b in range(n_batches):
                with factory.begin() as s:
                    s.execute(raw_insert, [{"i": b * 100 + i, "e": encoded[i]} for i in range(100)])

        def built_batch() -> None:
            # the caller's share too: each entry constructed (validated, canonical body
            # computed) in the loop, as a request does before it appends
            for b in range(n_batches):
                fresh_items = [sample(b * 100 + i) for i in range(100)]
                with factory.begin() as s:
                    append_many(s, fresh_items)

        def refresh_all() -> None:
            with factory.begin() as s:
                refresh_search(s)

        if run % 2:
            raw_b.append(n_batches * 100 / timed(raw_batch))
            ours_b.append(n_batches * 100 / timed(ours_batch))
        else:
            ours_b.append(n_batches * 100 / timed(ours_batch))
            raw_b.append(n_batches * 100 / timed(raw_batch))
        built_b.append(n_batches * 100 / timed(built_batch))
        refresh.append(2 * n_batches * 100 / timed(refresh_all))
    m1, mr1 = statistics.median(ours_1), statistics.median(raw_1)
    mb, mrb = statistics.median(ours_b), statistics.median(raw_b)
    return [
        (f"{kind}: append, 1 per tx", "entries/s", *stats(ours_1), "raw INSERT 1 per tx", m1 / mr1),
        (f"{kind}: raw INSERT, 1 per tx", "rows/s", *stats(raw_1), "-", 1.0),
        (
            f"{kind}: append, 100 per tx",
            "entries/s",
            *stats(ours_b),
            "raw INSERT 100 per tx",
            mb / mrb,
        ),
        (f"{kind}: raw INSERT, 100 per tx", "rows/s", *stats(raw_b), "-", 1.0),
        (
            f"{kind}: append, 100 per tx, entries built in the loop",
            "entries/s",
            *stats(built_b),
            "raw INSERT 100 per tx",
            statistics.median(built_b) / mrb,
        ),
        (
            f"{kind}: search projection refresh (off the append path)",
            "entries/s",
            *stats(refresh),
            "raw INSERT 100 per tx",
            statistics.median(refresh) / mrb,
        ),
    ]


def bench_encoders(runs: int, append_rows: list[Row]) -> list[Row]:
    """The hand-written canonical encoder against the rfc8785 package, and what the package
    would add to one durable append (one per transaction) measured in this run."""
    items = [sample(i) for i in range(2000)]
    fast, ref = [], []
    for _ in range(runs):
        # the whole encoding: the canonical body (computed when an entry is built) and the
        # index spliced in (at append)
        fast.append(timed(lambda: [(_halves(e), encode(i, e)) for i, e in enumerate(items)])
                    / 2000 * 1e6)
        ref.append(
            timed(lambda: [encode_reference(i, e) for i, e in enumerate(items)]) / 2000 * 1e6
        )
    extra = statistics.median(ref) - statistics.median(fast)
    rows: list[Row] = [
        (
            "encode entry, hand-written",
            "µs",
            *stats(fast),
            "rfc8785.dumps",
            statistics.median(fast) / statistics.median(ref),
        ),
        ("encode entry, rfc8785.dumps", "µs", *stats(ref), "-", 1.0),
    ]
    for name, _unit, _lo, med, _hi, _base, _ratio in append_rows:
        if name.endswith(("append, 1 per tx", "append, 100 per tx")):
            per_entry_us = 1e6 / med
            rows.append(
                (
                    f"rfc8785 extra / {name}",
                    "µs",
                    extra,
                    extra,
                    extra,
                    f"{per_entry_us:,.0f} µs per entry",
                    extra / per_entry_us,
                )
            )
    return rows


def build_export(n: int) -> tuple[list[bytes], Signer]:
    signer = Signer("bench.example/audit", Ed25519PrivateKey.generate())
    template = encode(0, sample(0))
    tree = CompactRange()
    lines = []
    for i in range(n):
        data = template.replace(b'"index":0,', b'"index":%d,' % i, 1)
        leaf = leaf_hash(data)
        tree.append(leaf)
        lines.append(entry_line(i, data, leaf).encode())
    note = sign_checkpoint(Checkpoint(signer.name, n, tree.root()), signer)
    head = [header_line(signer.name, n).encode(), checkpoint_line(note).encode()]
    return head + lines, signer


def bench_verify(n: int, runs: int) -> list[Row]:
    """Offline verification of an export in memory (1 and N processes) and read from a file as
    the CLI does. Each ratio pairs a variant with a bare-hash pass timed just before it, and the
    order rotates per run: other processes on the machine come and go within a run."""
    lines, signer = build_export(n)
    datas = [entry_line_bytes(line) for line in lines[2:]]
    workers = os.cpu_count() or 1
    key = signer.verifier
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        path.write_bytes(b"".join(lines))

        def from_file() -> None:
            with path.open("rb") as fh:
                verify_export(fh, key, workers=workers)

        variants: dict[str, Callable[[], object]] = {
            f"verify export (offline), {workers} processes": lambda: verify_export(
                lines, key, workers=workers
            ),
            "verify export (offline), 1 process": lambda: verify_export(lines, key),
            f"verify export file (CLI path), {workers} processes": from_file,
        }
        speeds: dict[str, list[float]] = {name: [] for name in variants}
        ratios: dict[str, list[float]] = {name: [] for name in variants}
        bare: list[float] = []
        names = list(variants)
        for run in range(runs):
            for name in names[run % len(names) :] + names[: run % len(names)]:
                bare.append(n / timed(bare_hashes, datas))
                speeds[name].append(n / timed(variants[name]))
                ratios[name].append(speeds[name][-1] / bare[-1])
        assert verify_export(lines, key, workers=workers).ok
        with path.open("rb") as fh:
            assert verify_export(fh, key, workers=workers).ok
    rows: list[Row] = [
        (
            name,
            "entries/s",
            *stats(speeds[name]),
            "bare sha256 per entry",
            statistics.median(ratios[name]),
        )
        for name in names
    ]
    return [*rows, ("bare sha256 per entry", "entries/s", *stats(bare), "-", 1.0)]


def bare_hashes(datas: list[bytes]) -> None:
    sha = hashlib.sha256
    for d in datas:
        sha(d).digest()


def inclusion_all(log: AuditLog, picks: list[tuple[int, int]], n: int) -> None:
    for i, _ in picks:
        log.inclusion_proof(i, n)


def consistency_all(log: AuditLog, picks: list[tuple[int, int]], n: int) -> None:
    for _, f in picks:
        log.consistency_proof(f, n)


def pk_all(s: Any, picks: list[tuple[int, int]]) -> None:
    q = sa.select(entries_table.c.leaf_hash).where(entries_table.c.idx == sa.bindparam("i"))
    for i, _ in picks:
        s.execute(q, {"i": i}).scalar()


def entry_line_bytes(line: bytes) -> bytes:
    return parse_entry_line(line, 0)[1]


def build_big_store(engine: sa.Engine, n: int) -> None:
    """n entries written in bulk, the way the log's append does it: the head moves first
    (reserving the indexes, as the insert guard requires), then the rows go in under it."""
    fresh(engine)
    template = encode(0, sample(0))
    tree = CompactRange()
    chunk: list[dict[str, Any]] = []

    def flush(c: sa.Connection) -> None:
        c.execute(
            sa.text("UPDATE audit_head SET size = :n, frontier = :f WHERE id = 1"),
            {"n": chunk[-1]["idx"] + 1, "f": b"".join(tree.frontier())},
        )
        c.execute(sa.insert(entries_table), chunk)
        chunk.clear()

    with engine.begin() as c:
        for i in range(n):
            data = template.replace(b'"index":0,', b'"index":%d,' % i, 1)
            leaf = leaf_hash(data)
            chunk.append(
                {
                    "idx": i,
                    "entry": data,
                    "leaf_hash": leaf,
                    "nodes": b"".join(tree.append(leaf)),
                }
            )
            if len(chunk) == 20_000:
                flush(c)
        if chunk:
            flush(c)


def bench_proofs(engine: sa.Engine, n: int, runs: int, samples: int) -> list[Row]:
    build_big_store(engine, n)
    factory = make_session_factory(engine)
    rng = random.Random(7)
    inc, con, pk = [], [], []
    for _ in range(runs):
        with factory() as s:
            log = AuditLog(s)
            picks = [(rng.randrange(n), rng.randrange(1, n)) for _ in range(samples)]
            inc.append(timed(inclusion_all, log, picks, n) / samples * 1000)
            con.append(timed(consistency_all, log, picks, n) / samples * 1000)
            pk.append(timed(pk_all, s, picks) / samples * 1000)
    mpk = statistics.median(pk)
    label = f"{n:,} entries"
    return [
        (
            f"sqlite: inclusion proof, {label}",
            "ms",
            *stats(inc),
            "1-row PK select",
            statistics.median(inc) / mpk,
        ),
        (
            f"sqlite: consistency proof, {label}",
            "ms",
            *stats(con),
            "1-row PK select",
            statistics.median(con) / mpk,
        ),
        ("sqlite: 1-row PK select", "ms", *stats(pk), "-", 1.0),
    ]


def table(rows: list[Row]) -> str:
    out = [
        "| benchmark | unit | min | median | max | baseline | ratio |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, unit, lo, med, hi, base, ratio in rows:
        out.append(
            f"| {name} | {unit} | {lo:,.3g} | {med:,.3g} | {hi:,.3g} | {base} | {ratio:.2f} |"
        )
    return "\n".join(out)


FIELDS = ("name", "unit", "min", "median", "max", "baseline_name", "ratio")


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    """The rows as dicts (the format bench/run_all.py collects); `--quick` or BENCH_QUICK=1
    for small sizes. argv defaults to none, not sys.argv: run_all calls main() in a child."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args([] if argv is None else argv)
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    rows = measure(quick)
    print(table(rows))
    return [dict(zip(FIELDS, row, strict=True)) for row in rows]


def measure(quick: bool) -> list[Row]:
    runs = 5
    n_single, n_batches = (60, 5) if quick else (300, 20)
    n_verify = 20_000 if quick else 200_000
    n_proof = 50_000 if quick else 1_000_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgresql"):
            with database(kind, Path(tmp)) as engine:
                if engine is not None:
                    rows += bench_appends(kind, engine, n_single, n_batches, runs)
        rows += bench_encoders(runs, list(rows))
        rows += bench_verify(n_verify, runs)
        with database("sqlite", Path(tmp)) as engine:
            assert engine is not None
            rows += bench_proofs(engine, n_proof, runs, 200)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
