"""The contractor client and CLI against a real uvicorn server over HTTP."""

from __future__ import annotations

import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from exchange.api.app import create_app
from exchange.cli.contractor import PRIVATE_NAME, PUBLIC_NAME
from exchange.cli.contractor import app as contractor_cli
from exchange.client import LocalStore
from exchange.client.store import DB_NAME
from exchange.db import models as m
from exchange.settings import Settings
from keys.contractor_keys import ContractorPrivateKey, ContractorPublicKey
from tests.world import NOW, World

pytestmark = pytest.mark.db

ALL = ("service_contact", "pregnancy_health", "birth_health")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(session_factory: sessionmaker[Session], world: World, tmp_path: Path) -> Iterator[str]:
    settings = Settings(home=tmp_path / "home", max_page_size=2)
    app = create_app(
        settings, session_factory=session_factory, keyring=world.keyring, clock=lambda: NOW
    )
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def test_keygen_writes_a_private_key_only_the_owner_can_read(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    result = CliRunner().invoke(
        contractor_cli, ["keygen", "--out", str(out), "--kem", "mlkem768-x25519"]
    )
    assert result.exit_code == 0, result.output
    private_path = out / PRIVATE_NAME
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private = ContractorPrivateKey.from_text(private_path.read_text())
    public = ContractorPublicKey.from_text((out / PUBLIC_NAME).read_text())
    assert private.public_key() == public and public.kem.value == "mlkem768-x25519"
    again = CliRunner().invoke(contractor_cli, ["keygen", "--out", str(out)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    bad = CliRunner().invoke(
        contractor_cli, ["keygen", "--out", str(tmp_path / "x"), "--kem", "rsa"]
    )
    assert bad.exit_code == 1


def test_sync_pulls_opens_deletes_acknowledges_and_resumes(
    world: World, server: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    keys_dir = tmp_path / "keys"
    assert CliRunner().invoke(contractor_cli, ["keygen", "--out", str(keys_dir)]).exit_code == 0
    private = ContractorPrivateKey.from_text((keys_dir / PRIVATE_NAME).read_text())
    c = world.contractor(private_key=private)
    agreement = world.agreement(c)
    residents = [world.resident(phone=f"1391234567{i}") for i in range(3)]
    assignments = []
    for r in residents:
        world.consent(r, ALL)
        assignments.append(world.assign(r, c, agreement, booking_in_days=2))
    store_dir = tmp_path / "store"
    args = [
        "sync",
        "--url",
        server,
        "--token",
        c.token,
        "--key",
        str(keys_dir / PRIVATE_NAME),
        "--store",
        str(store_dir),
        "--purpose",
        "home_visit",
    ]

    first = CliRunner().invoke(contractor_cli, args)
    assert first.exit_code == 0, first.output
    assert "2 pages, 3 cases, 0 deletions" in first.output  # server caps pages at 2
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((store_dir / DB_NAME).stat().st_mode) == 0o600
    refs = [world.case_reference(agreement, r) for r in residents]
    with LocalStore(store_dir) as store:
        assert store.references() == refs
        case = store.case(refs[0])
        assert case is not None
        assert case["opened"]["phone"] == "13912345670"
        assert case["fields"]["display_name"] == "李女士"

    world.revoke(assignments[1])
    second = CliRunner().invoke(contractor_cli, args)
    assert second.exit_code == 0, second.output
    assert "0 cases, 1 deletions, 1 acknowledged" in second.output  # resumed from the cursor
    with LocalStore(store_dir) as store:
        assert store.references() == [refs[0], refs[2]]
        assert store.pending_acks() == []
    assert refs[1].encode() not in (store_dir / DB_NAME).read_bytes()
    with session_factory() as s:
        (tomb,) = s.scalars(select(m.Tombstone)).all()
        assert tomb.acknowledged_at is not None

    third = CliRunner().invoke(contractor_cli, args)
    assert "1 pages, 0 cases, 0 deletions" in third.output


def test_sync_refuses_a_wrong_key_and_a_bad_token(
    world: World, server: str, tmp_path: Path
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    world.assign(r, c, agreement, booking_in_days=1)
    keys_dir = tmp_path / "other"
    CliRunner().invoke(contractor_cli, ["keygen", "--out", str(keys_dir)])
    base = [
        "sync",
        "--url",
        server,
        "--key",
        str(keys_dir / PRIVATE_NAME),
        "--store",
        str(tmp_path / "s"),
        "--purpose",
        "home_visit",
    ]
    wrong_key = CliRunner().invoke(contractor_cli, [*base, "--token", c.token])
    assert wrong_key.exit_code == 1 and "does not open" in wrong_key.output
    with LocalStore(tmp_path / "s") as store:
        assert store.references() == [] and store.cursor("home_visit") is None
    bad_token = CliRunner().invoke(contractor_cli, [*base, "--token", "exq_nope"])
    assert bad_token.exit_code == 1 and "401" in bad_token.output
    assert httpx.get(f"{server}/healthz").status_code == 200
