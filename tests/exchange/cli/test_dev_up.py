"""`exchange dev up` really serves: start it, read the TOKEN lines, call it over HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

LABELS = ["office_admin", "community_cadre", "contractor", "contractor_b", "auditor"]
TOKEN_LINE = re.compile(r"^TOKEN (\w+) (\S+)$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(home: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update({"EXCHANGE_HOME": str(home), "EXCHANGE_PORT": str(port)})
    exe = Path(sys.executable).with_name("exchange")
    return subprocess.Popen(
        [str(exe), "dev", "up", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _tokens(proc: subprocess.Popen[str], deadline: float) -> dict[str, str]:
    assert proc.stdout is not None
    tokens: dict[str, str] = {}
    while len(tokens) < len(LABELS) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = TOKEN_LINE.match(line.strip())
        if match:
            tokens[match.group(1)] = match.group(2)
    return tokens


def _wait_healthy(base: str, deadline: float) -> httpx.Response:
    while True:
        try:
            return httpx.get(f"{base}/healthz", timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_dev_up_serves_and_a_second_run_reuses_home(tmp_path: Path) -> None:
    home = tmp_path / "var"
    for run in (1, 2):
        port = _free_port()
        proc = _start(home, port)
        try:
            deadline = time.monotonic() + 90
            tokens = _tokens(proc, deadline)
            if len(tokens) != len(LABELS):
                _stop(proc)
                pytest.fail(
                    f"run {run}: TOKEN lines {sorted(tokens)}; stderr: {proc.stderr.read()}"
                )  # type: ignore[union-attr]
            assert list(tokens) == LABELS
            base = f"http://127.0.0.1:{port}"
            health = _wait_healthy(base, deadline)
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            who = httpx.get(
                f"{base}/v1/session",
                headers={"Authorization": f"Bearer {tokens['contractor_b']}"},
                timeout=5,
            )
            assert who.status_code == 200 and who.json()["role"] == "contractor"
            assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        finally:
            _stop(proc)
