"""A live broker for the invariant tests: a uvicorn subprocess on a free port with its own
EXCHANGE_HOME, the synthetic demo loaded the way `exchange dev up` loads it, demo tokens, and
the shared programme (tests/world.py) built through the HTTP API with its HTTP driver.

Everything the server and the preparation step write to stdout/stderr goes to files under the
home, so the leak scan can read every log line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.world import (
    HOME_VISIT,
    ContractorHandle,
    HttpWorld,
    Programme,
    build_programme,
)

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
EXCHANGE_CLI = (PYTHON, "-c", "from exchange.cli import main; main()")
CADRE_COMMUNITIES = ("民城路社区", "瑞阳路社区")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


METRICS_TOKEN = "metrics-" + "0" * 32


def base_env(home: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(
        EXCHANGE_HOME=str(home),
        EXCHANGE_DATABASE_URL=database_url,
        EXCHANGE_LOG_LEVEL="DEBUG",
        EXCHANGE_LOG_FORMAT="json",
        EXCHANGE_METRICS_TOKEN=METRICS_TOKEN,  # /metrics is scraped (and scanned) too
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


@dataclass
class Home:
    """A prepared EXCHANGE_HOME (keyring, schema, demo ledger, principals) and its tokens."""

    path: Path
    database_url: str
    tokens: dict[str, str]

    @property
    def log_dir(self) -> Path:
        return self.path / "logs"

    def env(self, **extra: str) -> dict[str, str]:
        return base_env(self.path, self.database_url, **extra)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(encoding="utf-8", errors="replace") for p in sorted(self.log_dir.glob("*"))
        )


def prepare_home(path: Path, database_url: str | None = None) -> Home:
    path.mkdir(parents=True, exist_ok=True)
    (path / "logs").mkdir(exist_ok=True)
    url = database_url or f"sqlite:///{path / 'exchange.db'}"
    env = base_env(path, url)
    with (path / "logs" / "prepare.log").open("wb") as err:
        done = subprocess.run(
            [PYTHON, "-m", "tests.invariants._prepare"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, timeout=120, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"prepare failed ({done.returncode}): "
            + (path / "logs" / "prepare.log").read_text(errors="replace")[-2000:]
        )
    tokens = {}
    for line in done.stdout.decode().splitlines():
        if line.startswith("TOKEN "):
            _, label, token = line.split(" ", 2)
            tokens[label] = token
    return Home(path, url, tokens)


class LiveServer:
    """`exchange dev up`'s serve step in a subprocess; start, stop, kill -9, restart."""

    def __init__(self, home: Home, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.extra_env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True, timeout: float = 30.0) -> LiveServer:
        self._starts += 1
        log = (self.home.log_dir / f"server-{self.port}-{self._starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "tests.invariants._serve"],
            cwd=REPO, env=self.home.env(EXCHANGE_PORT=str(self.port), **self.extra_env),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready: " + self.output())

    def output(self) -> str:
        path = self.home.log_dir / f"server-{self.port}-{self._starts}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30.0, **kw)


@contextmanager
def running(home: Home, **env: str) -> Iterator[LiveServer]:
    server = LiveServer(home, **env).start()
    try:
        yield server
    finally:
        server.stop()


# -- a small world through the API ---------------------------------------------------------


def ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    allowed = statuses or (200, 201)
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    body: dict[str, Any] = response.json()
    return body


def build_world(
    server: LiveServer, tokens: Mapping[str, str], *, per_contractor: int = 6, unassigned: int = 3
) -> Programme:
    """The shared programme (tests/world.py) through the live broker's API: two contractors
    with keys and active agreements, `per_contractor` consenting residents of the demo ledger
    assigned to each, `unassigned` consenting residents assigned to nobody."""
    with server.client() as api:
        driver = HttpWorld(api, tokens, date.today())
        return build_programme(driver, per_contractor=per_contractor, unassigned=unassigned)


def pull_all(api: httpx.Client, headers: Mapping[str, str], purpose: str = HOME_VISIT,
             cursor: str | None = None, limit: int = 50) -> tuple[list[dict[str, Any]], str]:
    """Every feed item after `cursor`; returns (items, last cursor)."""
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"purpose": purpose, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = ok(api.get("/v1/cases", params=params, headers=dict(headers)))
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items, cursor or ""


def audit_entries(api: httpx.Client, auditor: str, **filters: Any) -> list[dict[str, Any]]:
    """Every audit entry (as the auditor API returns them), in index order."""
    out: list[dict[str, Any]] = []
    after = -1
    while True:
        page = ok(api.get("/v1/audit/entries", params={**filters, "after": after, "limit": 500},
                          headers={"Authorization": f"Bearer {auditor}"}))  # fmt: skip
        out += page["items"]
        nxt = page.get("next_after")
        if not page["items"] or nxt is None or nxt == after:
            return out
        after = nxt


def export_and_verify(server: LiveServer, out_dir: Path) -> tuple[str, Any, int]:
    """Fetch a signed checkpoint and the vkey as the auditor, export the log with the CLI, and
    verify it offline. Returns (export text, verdict, exported entry count)."""
    from audit.note import Verifier
    from audit.verifier import verify_export

    auditor = {"Authorization": f"Bearer {server.home.tokens['auditor']}"}
    with server.client() as api:
        cp = api.get("/v1/audit/checkpoint", headers=auditor)
        assert cp.status_code == 200, cp.text
        vkey = api.get("/v1/audit/vkey", headers=auditor)
        assert vkey.status_code == 200, vkey.text
    export = out_dir / "audit-export.jsonl"
    done = subprocess.run(
        [*EXCHANGE_CLI, "audit", "export", "--out", str(export),
         "--database-url", server.home.database_url],
        cwd=REPO, env=server.home.env(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    text = export.read_text(encoding="utf-8")
    verdict = verify_export(
        [line.encode() for line in text.splitlines(keepends=True)],
        Verifier.parse(vkey.text.strip()),
        checkpoint=cp.text,
        deep=True,
    )
    count = sum(1 for line in text.splitlines() if '"index"' in line)
    return text, verdict, count


# -- copies of one prepared home, and the synthetic personal values ------------------------


def copy_home(template: Home, path: Path) -> Home:
    """A private copy of a prepared SQLite home (keyring, database, tokens)."""
    import shutil

    assert template.database_url.startswith("sqlite"), "only SQLite homes can be copied"
    shutil.copytree(template.path, path, ignore=shutil.ignore_patterns("logs"))
    (path / "logs").mkdir()
    return Home(path, f"sqlite:///{path / 'exchange.db'}", dict(template.tokens))


def ledger_rows(residents: int | None = None) -> list[tuple[str, ...]]:
    """The synthetic ledger rows the prepared homes imported (same generator, seed, day)."""
    from exchange.ledger.synthetic import generate_rows

    n = residents or int(os.environ.get("INVARIANTS_RESIDENTS", "80"))
    return list(generate_rows(n, 1000, as_of=date.today()))


def _date_forms(iso: str) -> list[str]:
    y, m, d = iso.split("-")
    return [iso, f"{y}{m}{d}", f"{y}/{m}/{d}", f"{y}年{int(m)}月{int(d)}日", f"{y}.{m}.{d}"]


def personal_values(rows: list[tuple[str, ...]]) -> dict[str, str]:
    """value -> kind, for every personal value of the ledger a leak scan looks for: names, ID
    numbers, phones, address details (compound+building, building+unit+room combos), and birth
    dates in the forms they take in the ledger and in ID numbers. Today's and yesterday's dates
    are left out of the infant birth dates (every log timestamp carries them)."""
    from exchange.ledger.synthetic import HEADER

    col = {name: i for i, name in enumerate(HEADER)}
    busy = {(date.today() - timedelta(days=d)).isoformat() for d in (-1, 0, 1)}
    out: dict[str, str] = {}
    for row in rows:
        def get(header: str, r: tuple[str, ...] = row) -> str:
            return r[col[header]].strip()

        for header, kind in (("姓名", "name"), ("丈夫姓名", "name"), ("身份证号", "national_id"),
                             ("丈夫身份证号", "national_id"), ("联系电话", "phone")):
            if get(header):
                out[get(header)] = kind
        compound, building, unit, room = get("小区"), get("楼栋"), get("单元"), get("户")
        for combo in (compound + building, compound + building + unit + room,
                      building + unit + room, f"{building}{unit}{room}室",
                      f"{compound} {building} {unit} {room}"):
            out[combo] = "address"
        for nid in (get("身份证号"), get("丈夫身份证号")):
            if len(nid) == 18:
                iso = f"{nid[6:10]}-{nid[10:12]}-{nid[12:14]}"
                for form in _date_forms(iso):
                    out.setdefault(form, "birth_date")
        child = get("婴儿出生日期")
        if child and child not in busy:
            for form in _date_forms(child):
                out.setdefault(form, "child_birth_date")
        for header in ("备注",):
            if len(get(header)) >= 4:
                out[get(header)] = "cadre_note"
    return out


def scan(text: str | bytes, values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(kind, value) of every personal value found in `text` (digits only at digit bounds)."""
    import re

    data = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    hits = []
    for value, kind in values.items():
        if value.isdigit() or kind in ("birth_date", "child_birth_date"):
            if re.search(rf"(?<!\d){re.escape(value)}(?!\d)", data):
                hits.append((kind, value))
        elif value in data:
            hits.append((kind, value))
    return hits


def scan_bytes(blob: bytes, values: Mapping[str, str]) -> list[tuple[str, str]]:
    """Like `scan` for raw files (database pages): UTF-8 and UTF-16 forms, byte-exact."""
    hits = []
    for value, kind in values.items():
        for encoded in (value.encode("utf-8"), value.encode("utf-16-le")):
            if len(encoded) >= 6 and encoded in blob:
                if value.isdigit():
                    at = blob.find(encoded)
                    before = blob[at - 1 : at] if at else b""
                    after = blob[at + len(encoded) : at + len(encoded) + 1]
                    if before.isdigit() or after.isdigit():
                        continue
                hits.append((kind, value))
                break
    return hits


def pull_opened(api: httpx.Client, side: ContractorHandle, purpose: str = HOME_VISIT
                ) -> list[dict[str, Any]]:  # fmt: skip
    """Every feed item from the start with sealed fields opened by the contractor's key, the
    way the contractor client does it (exchange.client.sync.open_case)."""
    from exchange.client.sync import _openers, open_case

    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"purpose": purpose, "limit": 50}
        if cursor:
            params["cursor"] = cursor
        page = ok(api.get("/v1/cases", params=params, headers=side.headers))
        openers = _openers(side.private_key, page["envelopes"])
        out += [open_case(i, openers) if i["type"] == "case" else i for i in page["items"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return out


def parse_export(text: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, entry) of every entry line of an audit export, in file order."""
    import json

    out = []
    for line in text.splitlines():
        doc = json.loads(line)
        if "index" in doc and "entry" in doc:
            out.append((int(doc["index"]), doc["entry"]))
    return out
