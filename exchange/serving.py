"""Running the app under uvicorn: one process, or a supervisor and N worker processes.

Each worker builds the app from the settings (`exchange.bootstrap.app_factory`, the same
refusals as the parent's preflight). Two ways to share the port among workers:

- `reuseport` (default on Linux): each worker binds its own socket with SO_REUSEPORT and the
  kernel spreads new connections over them. Persistent connections then land evenly.
- `shared`: the supervisor binds one socket and every worker accepts on it (uvicorn's own
  `--workers` model); whoever wakes first wins, and with keep-alive clients one worker can end
  up with nearly all connections (see bench/serve.py for the measured difference).

SIGTERM (or SIGINT) drains: each worker stops accepting, lets in-flight requests finish for at
most `drain_seconds` (then cuts them off, abandoning a thread still blocked in the database),
runs the lifespan shutdown (the checkpoint schedule stops) and exits 0;
the supervisor waits for them and exits 0 when they all did. A worker that dies is restarted
(a few times at most); one that fails at start-up stops the whole service.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Literal

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from exchange.logs import get_logger

Balance = Literal["reuseport", "shared"]
APP_FACTORY = "exchange.bootstrap:app_factory"
MAX_RESTARTS = 5
_log = get_logger("exchange.serve")


@dataclass(frozen=True, slots=True)
class ServeSpec:
    """Everything a worker needs, picklable (workers are spawned, not forked)."""

    host: str
    port: int
    drain_seconds: float
    balance: Balance = "reuseport"


def uvicorn_config(spec: ServeSpec) -> uvicorn.Config:
    return uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=spec.host,
        port=spec.port,
        lifespan="on",  # a failing start-up (keyring, database) fails the worker
        log_config=None,  # our structlog configuration (bootstrap) owns the handlers
        access_log=False,  # our own access log names route templates, never raw paths
        proxy_headers=False,  # ClientCertMiddleware applies X-Forwarded-* from trusted proxies
        server_header=False,
        timeout_graceful_shutdown=max(1, math.ceil(spec.drain_seconds)),
    )


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class _Stop:
    """A signal handler that only records the request to stop.

    Installed before uvicorn's own: after draining, uvicorn re-raises the signal it caught
    with the previous handler, which is this one, so the process exits 0 instead of dying
    from the signal."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, _sig: int, _frame: FrameType | None) -> None:
        self.event.set()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self)


def serve_in_process(spec: ServeSpec, sock: socket.socket | None = None) -> int:
    """Serve in this process until SIGTERM/SIGINT; 0 after a clean drain."""
    _Stop().install()
    server = uvicorn.Server(uvicorn_config(spec))
    server.run(sockets=[sock] if sock is not None else None)
    code = 0 if server.started else STARTUP_FAILURE
    _abandon_stuck_threads(code)
    return code


def _abandon_stuck_threads(code: int, grace: float = 0.5) -> None:
    """End the process now if a request's thread outlived the drain.

    Past `drain_seconds` uvicorn cancels the requests' tasks, but a sync route runs in a worker
    thread, and a thread blocked in the database (a lock wait: PostgreSQL has no timeout for
    it) cannot be cancelled. Python waits for such threads at exit, so the process would
    outlive its drain bound by as long as the wait lasts, forever on PostgreSQL. Threads that
    are merely idle end within `grace`; any still running then is abandoned: the process exits
    at once. Its transaction never committed, so the database rolls it back when the
    connection drops, as if the process had been killed."""
    deadline = time.monotonic() + grace
    stuck = [t for t in threading.enumerate()
             if t is not threading.current_thread() and not t.daemon and t.is_alive()]
    for thread in stuck:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in stuck if t.is_alive()]
    if not stuck:
        return
    _log.warning("drain_cut_off", threads=len(stuck), exit_code=code)
    logging.shutdown()  # flush the log handlers: nothing runs after os._exit
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _worker(spec: ServeSpec, sock: socket.socket | None) -> None:
    if sock is None:  # reuseport: this worker's own socket on the shared port
        sock = bind_socket(spec.host, spec.port, reuse_port=True)
    raise SystemExit(serve_in_process(spec, sock))


class Supervisor:
    """Starts `workers` processes, restarts one that dies, drains them all on SIGTERM."""

    def __init__(self, spec: ServeSpec, workers: int) -> None:
        self.spec = spec
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.shared: socket.socket | None = None
        self.processes: list[BaseProcess] = []
        self.restarts = 0
        self.stop = _Stop()

    def _start(self) -> BaseProcess:
        process = self.context.Process(target=_worker, args=(self.spec, self.shared),
                                       name="exchange-worker")
        process.start()
        _log.info("worker_started", pid=process.pid)
        return process

    def run(self) -> int:
        self.stop.install()
        # workers' HTTP metrics go to shared files; any worker's /metrics sums them all
        metrics_dir = tempfile.mkdtemp(prefix="exchange-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            return self._run()
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def _run(self) -> int:
        if self.spec.balance == "shared":
            self.shared = bind_socket(self.spec.host, self.spec.port, reuse_port=False)
        self.processes = [self._start() for _ in range(self.workers)]
        failed = False
        while not self.stop.event.wait(0.5):
            failed = self._replace_dead()
            if failed:
                break
        return self._drain() if not failed else max(self._drain(), 1)

    def _replace_dead(self) -> bool:
        for i, process in enumerate(self.processes):
            if process.is_alive():
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE or self.restarts >= MAX_RESTARTS:
                _log.error("worker_failed", pid=process.pid, exit_code=process.exitcode,
                           restarts=self.restarts)
                return True
            self.restarts += 1
            _log.warning("worker_died", pid=process.pid, exit_code=process.exitcode)
            self.processes[i] = self._start()
        return False

    def _drain(self) -> int:
        started = time.monotonic()
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        worst = 0
        for process in self.processes:
            process.join(timeout=self.spec.drain_seconds + 10)
            if process.is_alive():  # drain bound exceeded by far: stop it hard
                process.kill()
                process.join()
            code = process.exitcode or 0
            # killed by our SIGTERM before it installed its handler: it was still starting
            # and had served nothing, so nothing was cut short
            worst = max(worst, 0 if code == -signal.SIGTERM else abs(code))
        if self.shared is not None:
            self.shared.close()
        _log.info("stopped", workers=len(self.processes), exit_code=worst,
                  seconds=round(time.monotonic() - started, 2))
        return worst
