"""Helpers for tests that run the real `exchange` command: environment, CLI calls, a server
process started and stopped with real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

EXE = str(Path(sys.executable).with_name("exchange"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


METRICS_TOKEN = "metrics-" + "0" * 32
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def environment(home: Path, database_url: str, **extra: str) -> dict[str, str]:
    """A clean EXCHANGE_* environment: production mode on `database_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update({"EXCHANGE_HOME": str(home), "EXCHANGE_DATABASE_URL": database_url,
                "EXCHANGE_MODE": "production", "EXCHANGE_ALLOW_SQLITE_IN_PRODUCTION": "true",
                # production names its log (fixed at `admin init`; C2SP origin)
                "EXCHANGE_AUDIT_ORIGIN": "chengyang.exchange/audit",
                "EXCHANGE_METRICS_TOKEN": METRICS_TOKEN})
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def token_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("TOKEN "), result.stdout
    return line.split()[2]


@dataclass
class Server:
    process: subprocess.Popen[str]
    base: str
    log: Path
    stopped_in: float | None = field(default=None)

    def wait_ready(self, timeout: float = 90) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.output()}")
            try:
                answer = httpx.get(f"{self.base}/readyz", timeout=5)
                if answer.status_code == 200:
                    return answer
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready: {self.output()}")
            time.sleep(0.2)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code; the time it took is in `stopped_in`."""
        begin = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"no exit {timeout} s after SIGTERM: {self.output()}") from None
        self.stopped_in = time.monotonic() - begin
        return code

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start(env: dict[str, str], log: Path, *args: str) -> Server:
    port = free_port()
    out = log.open("w", encoding="utf-8")
    process = subprocess.Popen([EXE, "serve", "--port", str(port), *args], env=env,
                               stdout=out, stderr=subprocess.STDOUT, text=True)
    return Server(process, f"http://127.0.0.1:{port}", log)
