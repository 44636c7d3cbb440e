"""`exchange serve`: requests per second on the contractor feed with 1 worker, 2 workers sharing
one socket (uvicorn's model) and 2 workers with one SO_REUSEPORT socket each; and the time from
SIGTERM to exit of an idle server.

Each configuration runs as a real `exchange serve` process over the demo data (`dev up`'s), on
PostgreSQL when reachable (several workers only pay off there: SQLite serialises the audit
appends), else SQLite. Load: `wrk` when installed (keep-alive connections, the case where a
shared socket can leave one worker with every connection), else a thread pool of keep-alive
httpx clients. Baseline: 1 worker, measured in the same run; ratio = config / baseline.

Run: .venv/bin/python bench/serve.py   (BENCH_QUICK=1: shorter runs)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = 4 if QUICK else 8
RUNS = 3
CONNECTIONS = 8
PG = os.environ.get("EXCHANGE_TEST_DATABASE_URL",
                    "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EXE = str(Path(sys.executable).with_name("exchange"))
CONFIGS = [("1 worker", ["--workers", "1"]),
           ("2 workers, shared socket", ["--workers", "2", "--balance", "shared"]),
           ("2 workers, SO_REUSEPORT", ["--workers", "2", "--balance", "reuseport"])]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database() -> tuple[str, str | None]:
    """(url, PostgreSQL schema to drop afterwards, or None for SQLite)."""
    try:
        engine = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
        schema = f"bench_serve_{uuid.uuid4().hex[:8]}"
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        url = sa.engine.make_url(PG).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False), schema
    except Exception:  # noqa: BLE001 - no PostgreSQL here: SQLite
        return "", None


def _drop(schema: str) -> None:
    engine = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _prepare(home: Path, url: str) -> tuple[dict[str, str], str]:
    from exchange.cli.dev import prepare
    from exchange.settings import Settings

    settings = Settings(home=home, **({"database_url": url} if url else {}))
    tokens = dict(prepare(settings, lambda _line: None))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update({"EXCHANGE_HOME": str(home), "EXCHANGE_CHECKPOINT_INTERVAL": "0",
                "EXCHANGE_LOG_LEVEL": "WARNING"})
    if url:
        env["EXCHANGE_DATABASE_URL"] = url
    return env, tokens["contractor"]


def _start(env: dict[str, str], args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen([EXE, "serve", "--port", str(port), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> float:
    begin = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    return time.perf_counter() - begin


def _wrk(url: str, token: str) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-H", f"Authorization: Bearer {token}",
         url], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found or "Non-2xx" in out:
        raise RuntimeError(f"wrk: {out}")
    return float(found.group(1))


def _threads(url: str, token: str) -> float:
    done = [0] * CONNECTIONS
    stop = time.monotonic() + SECONDS

    def worker(i: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while time.monotonic() < stop:
                client.get(url).raise_for_status()
                done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / SECONDS


def main() -> list[dict[str, object]]:
    load = _wrk if shutil.which("wrk") else _threads
    url, schema = _database()
    rows: list[dict[str, object]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env, token = _prepare(Path(tmp) / "home", url)
            backend = "PostgreSQL" if url else "SQLite"
            results: dict[str, list[float]] = {name: [] for name, _ in CONFIGS}
            drains: list[float] = []
            for _ in range(RUNS):
                for name, args in CONFIGS:  # interleaved, so drift hits every config alike
                    proc, base = _start(env, args)
                    try:
                        load(f"{base}/v1/cases?purpose=home_visit&limit=20", token)  # warm up
                        results[name].append(load(f"{base}/v1/cases?purpose=home_visit&limit=20",
                                                  token))
                    finally:
                        drains.append(_stop(proc))
            base_median = statistics.median(results[CONFIGS[0][0]])
            for name, values in results.items():
                rows.append({"name": f"feed page of 20, {name} ({backend}, "
                                     f"{CONNECTIONS} keep-alive connections, "
                                     f"{'wrk' if load is _wrk else 'httpx threads'})",
                             "unit": "req/s", "min": min(values),
                             "median": statistics.median(values), "max": max(values),
                             "baseline_name": CONFIGS[0][0],
                             "ratio": statistics.median(values) / base_median})
            rows.append({"name": "SIGTERM to exit, idle server", "unit": "s", "min": min(drains),
                         "median": statistics.median(drains), "max": max(drains),
                         "baseline_name": "-", "ratio": None})
    finally:
        if schema:
            _drop(schema)
    return rows


if __name__ == "__main__":
    for row in main():
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        print(f"| {row['name']} | {row['median']:.2f} {row['unit']} "
              f"(min {row['min']:.2f}, max {row['max']:.2f}) | {ratio} |")
