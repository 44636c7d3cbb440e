"""SQLite under concurrent CLI and server writes: a server request that meets a write lock held
by another process (a CLI command) waits for it (busy timeout) and succeeds; held past the
busy timeout it answers 503 with Retry-After, never 500."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from exchange.db.engine import SQLITE_BUSY_TIMEOUT_MS
from tests.exchange.serving import cli, environment, start, token_of

pytestmark = pytest.mark.slow


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # what any CLI write transaction takes
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _read_checkpoints(base: str, auth: dict[str, str], n: int) -> list[httpx.Response]:
    """Auditor reads: each appends an audit entry, so each needs the write lock."""
    with httpx.Client(timeout=30) as client:
        return [client.get(f"{base}/v1/audit/checkpoint", headers=auth) for _ in range(n)]


def test_server_waits_for_a_cli_write_then_503_past_the_busy_timeout(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = home / "exchange.db"
    env = environment(home, f"sqlite:///{db}", EXCHANGE_MODE="development",
                      EXCHANGE_CHECKPOINT_INTERVAL="0")
    assert cli(env, "admin", "init").returncode == 0
    auth = {"Authorization": "Bearer " + token_of(
        cli(env, "admin", "principal", "create", "aud", "--role", "auditor"))}
    server = start(env, tmp_path / "serve.log")
    try:
        server.wait_ready()
        assert _read_checkpoints(server.base, auth, 1)[0].status_code == 200

        # a CLI write holding the lock for 1.5 s: the server's requests wait, then succeed
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(db, 1.5, held))
        holder.start()
        assert held.wait(5)
        begin = time.monotonic()
        answers = _read_checkpoints(server.base, auth, 3)
        waited = time.monotonic() - begin
        holder.join()
        assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
        assert waited >= 1.0  # they did wait for the lock

        # and real CLI writes interleaved with server writes: nobody fails
        results: list[int] = []
        threads = [threading.Thread(target=lambda i=i: results.append(cli(
            env, "admin", "principal", "create", f"aud-{i}", "--role", "auditor").returncode))
            for i in range(3)]
        for t in threads:
            t.start()
        served = _read_checkpoints(server.base, auth, 20)
        for t in threads:
            t.join()
        assert results == [0, 0, 0]
        assert {a.status_code for a in served} == {200}

        # a lock held past the busy timeout: 503 with Retry-After, never 500
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock,
                                  args=(db, SQLITE_BUSY_TIMEOUT_MS / 1000 + 3, held))
        holder.start()
        assert held.wait(5)
        locked = _read_checkpoints(server.base, auth, 1)[0]
        holder.join()
        assert locked.status_code == 503, locked.text
        assert locked.headers.get("retry-after")
        assert "Traceback" not in server.output()
    finally:
        assert server.terminate() == 0
        server.kill()
