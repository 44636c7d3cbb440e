"""The contractor pull through the real HTTP stack, against the same rows served raw.

Set-up (a temporary EXCHANGE_HOME): a SQLite database migrated to head, a file keyring, the
synthetic demo ledger of RESIDENTS residents, one contractor with an X25519 key, an active
home-visit agreement, full consent (child data by a guardian) and one assignment per resident,
half of them with a visit booked in two days (so phone and address are sealed).

Server: uvicorn in a subprocess on loopback (one worker, no access log) built by `bench_app`,
which mounts a bench-only `GET /v1/bench/raw-cases` beside the normal routers. That route is
defined here and exists only in this factory; the service's own app never mounts it.
Load: this process, one httpx client with keep-alive, walking the feed at page size PAGE.

Rows: cases/s of the full pipeline (decrypt, policy, pseudonyms, seal, audit, serialise) with
the raw endpoint as baseline (target ratio >= 0.25); p50/p99 latency per request; the server's
peak RSS (VmHWM). Then one case's cost split into parts, measured in this process over the same
database, each against the bare primitive it is made of (measured in the same run).

Run: .venv/bin/python bench/pull.py   (prints a markdown table; `main()` returns the rows)
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

# bench/ must not shadow the `keys` package when this file is run as a script.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
from cryptography.hazmat.primitives import hashes, hmac  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from fastapi import APIRouter, FastAPI, Query  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import selectinload  # noqa: E402

from bench._rows import row as _row  # noqa: E402
from exchange.api.context import Context, context_for  # noqa: E402
from exchange.db import models as m  # noqa: E402

RESIDENTS = 300
PAGE = 100
RUNS = 3
WALKS = 4  # feed walks per run and endpoint (RESIDENTS / PAGE requests each)
HOME_ENV = "BENCH_PULL_HOME"
RAW_PATH = "/v1/bench/raw-cases"
FULL = "full pipeline GET /v1/cases"
RAW = "raw rows GET /v1/bench/raw-cases"


# -- the bench-only server ------------------------------------------------------------------


def _raw_router() -> APIRouter:
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
                    for c in ("name", "phone", "address_building", "address_room")
                },
            }
            for a, r in rows
        ]
        nxt = items[-1]["seq"] if items else after
        return Response(orjson.dumps({"items": items, "next": nxt}), media_type="application/json")

    return router


def bench_app() -> FastAPI:
    """uvicorn --factory bench.pull:bench_app (reads BENCH_PULL_HOME)."""
    from exchange.api.app import create_app
    from exchange.bootstrap import load_keyring
    from exchange.db.engine import make_engine, make_session_factory
    from exchange.settings import Settings

    settings = Settings(home=Path(os.environ[HOME_ENV]), max_page_size=PAGE)
    engine = make_engine(settings.database_url)
    return create_app(
        settings,
        session_factory=make_session_factory(engine),
        keyring=load_keyring(settings),
        extra_routers=(_raw_router(),),
    )


# -- set-up ---------------------------------------------------------------------------------


def prepare(home: Path) -> str:
    """Build the database and keyring under `home`; returns the contractor's bearer token."""
    from exchange.api.auth import issue_token
    from exchange.db.engine import make_engine, make_session_factory, unit_of_work
    from exchange.db.feed import next_feed_seq
    from exchange.db.migrate import upgrade
    from exchange.ledger.demo import load_demo
    from exchange.settings import Settings
    from keys.contractor_keys import generate_keypair
    from keys.keyring import Keyring
    from keys.providers import FileKeyring
    from policies.shipped import shipped_policy

    settings = Settings(home=home)
    FileKeyring.create(settings.keyring_file, development=True)
    keyring = Keyring(FileKeyring.load(settings.keyring_file))
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    today = date.today()
    now = datetime.now(UTC)
    with unit_of_work(make_session_factory(engine)) as s:
        load_demo(s, keyring, residents=RESIDENTS, seed=7, today=today)
        office = m.Principal(name="bench-office", role="office_admin", display_name="o")
        contractor = m.Contractor(name="bench contractor")
        s.add_all([office, contractor])
        s.flush()
        s.add(m.FeedCounter(contractor_id=contractor.id, last_seq=0))
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
        policy = shipped_policy("home_visit")
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
            m.AgreementPurpose(
                purpose="home_visit", policy_id=policy.id, policy_version=policy.version
            )
        )
        s.add_all([principal, agreement])
        s.flush()
        token = issue_token(principal, now=now)
        services = ["mid_pregnancy", "late_pregnancy", "early_education", "parenting"]
        for i, rid in enumerate(s.scalars(select(m.Resident.id).order_by(m.Resident.id))):
            s.add(
                m.ConsentEvent(
                    resident_id=rid,
                    sequence=1,
                    programme="cy1000",
                    action="grant",
                    scopes=["service_contact", "pregnancy_health", "birth_health", "child_data"],
                    method="paper",
                    notice_version="1",
                    evidence_sha256="ab" * 32,
                    guardian=True,
                    recorded_by=office.id,
                )
            )
            a = m.Assignment(
                resident_id=rid,
                contractor_id=contractor.id,
                agreement_id=agreement.id,
                services=services,
                change_seq=next_feed_seq(s, contractor.id),
                created_by=office.id,
            )
            if i % 2 == 0:
                a.bookings.append(
                    m.Booking(service_code=services[0], scheduled_on=today + timedelta(days=2))
                )
            s.add(a)
    engine.dispose()
    return token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        HOME_ENV: str(home),
        "PYTHONPATH": str(_ROOT),
        "EXCHANGE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.pull:bench_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                "bench server exited: " + (proc.stderr.read() or b"").decode()[-300:]
            )  # type: ignore[union-attr]
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("bench server did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- load -----------------------------------------------------------------------------------


def walk_full(client: httpx.Client, latencies: list[float]) -> int:
    cases, cursor = 0, None
    while True:
        params: dict[str, Any] = {"purpose": "home_visit", "limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        t = time.perf_counter()
        r = client.get("/v1/cases", params=params)
        latencies.append(time.perf_counter() - t)
        r.raise_for_status()
        page = r.json()
        cases += len(page["items"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return cases


def walk_raw(client: httpx.Client, latencies: list[float]) -> int:
    cases, after = 0, 0
    while True:
        t = time.perf_counter()
        r = client.get(RAW_PATH, params={"after": after, "limit": PAGE})
        latencies.append(time.perf_counter() - t)
        r.raise_for_status()
        page = r.json()
        if not page["items"]:
            return cases
        cases += len(page["items"])
        after = page["next"]


def http_rows(base: str, token: str, pid: int) -> list[dict[str, Any]]:
    rates: dict[str, list[float]] = {FULL: [], RAW: []}
    lat: dict[str, list[float]] = {FULL: [], RAW: []}
    p50: dict[str, list[float]] = {FULL: [], RAW: []}
    p99: dict[str, list[float]] = {FULL: [], RAW: []}
    walkers: dict[str, Callable[[httpx.Client, list[float]], int]] = {
        FULL: walk_full,
        RAW: walk_raw,
    }
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for walk in walkers.values():  # warm up both paths (imports, caches, pages)
            walk(client, [])
        for _ in range(RUNS):
            for name, walk in walkers.items():
                run_lat: list[float] = []
                start = time.perf_counter()
                cases = sum(walk(client, run_lat) for _ in range(WALKS))
                rates[name].append(cases / (time.perf_counter() - start))
                lat[name] += run_lat
                qs = statistics.quantiles(run_lat, n=100)
                p50[name].append(statistics.median(run_lat) * 1000)
                p99[name].append(qs[98] * 1000)
    ratios = [f / r for f, r in zip(rates[FULL], rates[RAW], strict=True)]
    rows = [_row(RAW, "cases/s", rates[RAW]), _row(FULL, "cases/s", rates[FULL], RAW, ratios)]
    for name in (RAW, FULL):
        rows.append(_row(f"{name}: p50 latency, page {PAGE}", "ms", p50[name]))
        rows.append(_row(f"{name}: p99 latency, page {PAGE}", "ms", p99[name]))
    mem = peak_rss_mb(pid)
    rows.append(_row("server peak RSS (VmHWM) after the load", "MB", [mem]))
    return rows


# -- one case's cost, in parts ------------------------------------------------------------------


def _per_case(fn: Callable[[], object], cases: int, repeat: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / (repeat * cases) * 1e6


def part_rows(home: Path) -> list[dict[str, Any]]:
    from audit import entry as codec
    from audit.merkle import leaf_hash
    from exchange.db.engine import make_engine, make_session_factory
    from exchange.identity import CONTRACTOR, Acting, Identity
    from exchange.services import feed, records
    from exchange.settings import Settings
    from keys.keyring import Keyring
    from keys.providers import FileKeyring
    from policies.shipped import shipped_policies

    settings = Settings(home=home)
    keyring = Keyring(FileKeyring.load(settings.keyring_file))
    engine = make_engine(settings.database_url)
    policies = shipped_policies()
    fields = records.fields_needed(feed.policies_for(policies, "home_visit"))
    versions = feed.policy_versions(policies)
    who = Identity("bench", "bench", CONTRACTOR, "bench")
    acting = Acting(who, datetime.now(UTC), "bench-request")
    results: dict[str, list[float]] = {}
    with make_session_factory(engine)() as s:
        contractor_id = s.scalars(select(m.Contractor.id)).one()
        assignments = feed._changed_assignments(s, contractor_id, 0, PAGE)
        cases = records.load_cases(s, keyring, assignments, fields, policy_versions=versions)
        rows = records._load_rows(s, assignments, fields)
        public = feed.active_public_key(s, contractor_id)
        n = len(cases)
        evaluated = feed.evaluate_all(
            cases, [a.change_seq for a in assignments], "home_visit", acting, policies
        )
        sealed_fields = sum(d.sealed for e in evaluated for d in e.evaluation.view.values())
        decrypted = sum(
            1 for c in cases for f in fields if f in records._ENCRYPTED and c.record.values.get(f)
        )
        presenter = feed.Presenter(public)
        items = [presenter.present(e.case, e.evaluation, e.seq) for e in evaluated]
        page = {"purpose": "home_visit", "envelopes": presenter.envelopes, "items": items}

        def decrypt() -> None:
            for a in assignments:
                r = rows.residents[a.resident_id]
                key = keyring.unwrap_stored(rows.keys[r.id], r.id)
                records.build_record(
                    keyring,
                    key,
                    "c",
                    r,
                    rows.communities[r.community_id],
                    rows.episodes.get(r.id),
                    rows.children.get(r.id),
                    fields,
                    stored=rows.stored,  # as load_cases does: the stored bytes, not lazy loads
                )

        def load() -> None:
            records.load_cases(s, keyring, assignments, fields, policy_versions=versions)

        def policy() -> None:
            for c in cases:
                policies.evaluate(
                    c.record, c.consents, c.agreement, c.assignment, "home_visit", acting.now
                )

        def pseudonyms() -> None:
            for c in cases:
                keyring.case_reference(c.agreement.id, c.resident_id)
                keyring.audit_pseudonym(c.resident_id)

        def sealing() -> None:
            p = feed.Presenter(public)
            for e in evaluated:
                p.present(e.case, e.evaluation, e.seq)

        def audit_build() -> None:
            for index, entry in enumerate(
                feed.audit_entries(keyring, acting, "home_visit", evaluated)
            ):
                leaf_hash(codec.encode(index, entry))

        def serialise() -> None:
            orjson.dumps(page)

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
                "part: decrypt needed fields (key cached)",
                decrypt,
                f"bare AES-GCM decrypt x{decrypted / n:.1f}/case",
                bare_decrypt,
            ),
            (
                "part: load + decrypt (batched queries)",
                load,
                f"bare AES-GCM decrypt x{decrypted / n:.1f}/case",
                bare_decrypt,
            ),
            ("part: policy evaluate", policy, "bare HMAC-SHA-256 x2/case", bare_hmac),
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
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        home = Path(tmp)
        token = prepare(home)
        proc, base = start_server(home)
        try:
            rows = http_rows(base, token, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        rows += part_rows(home)
    return rows


if __name__ == "__main__":
    print(render(main()))
