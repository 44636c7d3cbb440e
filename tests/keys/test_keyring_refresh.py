"""A running server's file keyring follows a rotation made by another process (the CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keys import Keyring
from keys.errors import KeyNotFoundError, KeyringPermissionError
from keys.providers import FileKeyring, Purpose


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "keyring.json"
    FileKeyring.create(target)
    return target


def test_server_unwraps_keys_the_cli_rewrapped_under_a_new_root(path: Path) -> None:
    server = FileKeyring.load(path)
    server_ring = Keyring(server)
    cli = FileKeyring.load(path)
    assert cli.add_version(Purpose.ROOT) == 2  # `exchange keys rotate-root` in another process
    key, wrapped = Keyring(cli).new_data_key("resident-1")
    assert wrapped.header.kek_version == 2
    assert server_ring.unwrap(wrapped, "resident-1").material() == key.material()


def test_server_indexes_under_the_blind_index_version_the_cli_added(path: Path) -> None:
    """`exchange keys rotate-blind-index` in another process adds version 2 and moves the
    database's marker to it; the server, asked for version 2, finds it in the file."""
    server_ring = Keyring(FileKeyring.load(path))
    cli_ring = Keyring(cli := FileKeyring.load(path))
    assert cli.add_version(Purpose.BLIND_INDEX) == 2
    national_id = "11010519491231002X"
    assert server_ring.blind_index(national_id, version=2) == cli_ring.blind_index(national_id)
    with pytest.raises(KeyNotFoundError):
        server_ring.blind_index(national_id, version=3)


def test_server_wraps_under_the_root_that_is_current_on_disk(path: Path) -> None:
    server = FileKeyring.load(path)
    server.REFRESH_INTERVAL = 0.0
    ring = Keyring(server)
    assert ring.new_data_key("resident-1")[1].header.kek_version == 1
    FileKeyring.load(path).add_version(Purpose.ROOT)
    assert ring.new_data_key("resident-1")[1].header.kek_version == 2


def test_a_version_in_neither_memory_nor_file_is_still_refused(path: Path) -> None:
    server = FileKeyring.load(path)
    with pytest.raises(KeyNotFoundError):
        server.root_key(server.root_key(Keyring(server).suite).suite, version=9)


def test_a_refresh_checks_the_file_like_a_load_does(path: Path) -> None:
    server = FileKeyring.load(path)
    server.REFRESH_INTERVAL = 0.0
    FileKeyring.load(path).add_version(Purpose.ROOT)
    os.chmod(path, 0o644)  # changed behind our back and now readable by others: fail closed
    with pytest.raises(KeyringPermissionError):
        Keyring(server).new_data_key("resident-1")


def test_own_writes_do_not_cause_a_reload(path: Path) -> None:
    ring = FileKeyring.load(path)
    ring.add_version(Purpose.ROOT)
    assert ring.refresh() is False
