"""`exchange keys ...` end to end through the root CLI, with a temporary EXCHANGE_HOME."""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.bootstrap import load_keyring
from exchange.cli import app
from exchange.cli.keys import remap_csv_text
from exchange.db.engine import make_engine, make_session_factory
from exchange.services import key_rotation
from exchange.settings import Settings, get_settings
from keys import Keyring, Purpose, generate_keypair
from keys.rotation import RemapRow, RotationProgress
from tests.world import World, audit_entries, clock

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    result = runner.invoke(app, ["admin", "init"])
    assert result.exit_code == 0, result.output
    yield tmp_path / "home"
    get_settings.cache_clear()


def _keyring() -> Keyring:
    return load_keyring(get_settings())


@pytest.fixture
def world(home: Path) -> Iterator[World]:
    engine = make_engine(get_settings().database_url)
    try:
        yield World(make_session_factory(engine), _keyring())
    finally:
        engine.dispose()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["keys", *args])
    return result.exit_code, result.output


def _secrets(home: Path) -> list[str]:
    document = json.loads((home / "keyring.json").read_text())
    return [v for purpose in document["keys"].values() for v in purpose["versions"].values()]


@pytest.mark.db
def test_rotate_root_status_and_retire(home: Path, world: World) -> None:
    world.add_residents(7)
    code, out = _invoke("retire-root", "1")
    assert (code, out.strip()) == (1, "error: data keys are still wrapped under root version 1")

    code, out = _invoke("rotate-root", "--batch-size", "3")
    assert code == 0, out
    assert "added root version 2; 7 data keys to examine" in out
    assert "root version 2: 7 data keys re-wrapped, 0 already current" in out
    assert stat.S_IMODE((home / "keyring.json").stat().st_mode) == 0o600

    code, out = _invoke("status")
    assert code == 0, out
    assert "root: current v2; held v1, v2" in out and "under root v2: 7" in out
    assert "unfinished" not in out
    assert not any(secret in out for secret in _secrets(home))

    code, out = _invoke("retire-root", "1")
    assert code == 0 and "retired root version 1" in out
    assert _keyring().provider.versions(Purpose.ROOT) == [2]  # type: ignore[attr-defined]
    code, out = _invoke("retire-root", "1")
    assert code == 1 and out.startswith("error: no root key version 1")
    entries = audit_entries(world.factory)  # after `admin init`'s shipped policies
    actions = [e["action"] for e in entries if e["action"] != "policy.publish"]
    assert actions == ["key.rotate_root", "key.rewrap", "key.retire_root"]


class Crash(Exception):
    pass


@pytest.mark.db
def test_rotate_root_resumes_after_a_crash(home: Path, world: World) -> None:
    world.add_residents(9)

    def crash(_state: RotationProgress) -> None:
        raise Crash()

    with pytest.raises(Crash):
        key_rotation.rotate_root(world.factory, _keyring(), clock, batch_size=4, progress=crash)
    code, out = _invoke("status")
    assert "under root v1: 5" in out and "under root v2: 4" in out
    assert "root re-wrap: unfinished (to v2)" in out
    code, out = _invoke("rotate-root", "--batch-size", "4")
    assert code == 0, out
    assert "resuming re-wrap under root version 2; 9 data keys to examine" in out
    assert "5 data keys re-wrapped" in out
    assert _keyring().provider.versions(Purpose.ROOT) == [1, 2]  # type: ignore[attr-defined]


@pytest.mark.db
def test_rotate_data_key_and_errors(home: Path, world: World) -> None:
    (rid,) = world.add_residents(1, full=True)
    code, out = _invoke("rotate-data-key", rid)
    assert code == 0, out
    assert "data key rotated to version 2; 7 fields re-encrypted" in out
    code, out = _invoke("rotate-data-key", "00000000-0000-0000-0000-000000000000")
    assert (code, out.strip()) == (1, "error: no such resident")


@pytest.mark.db
def test_rotate_pseudonym_writes_a_safe_remap_file(
    home: Path, world: World, tmp_path: Path
) -> None:
    active = world.add_residents(3, full=True)
    old = {world.keyring.case_reference(world.agreement_id, r) for r in active}
    out_file = tmp_path / "remap.csv"
    code, out = _invoke(
        "rotate-pseudonym", "--agreement", world.agreement_id, "--remap-out", str(out_file)
    )
    assert code == 0, out
    assert "added case-pseudonym version 2; wrote 3 re-mappings (v1 -> v2)" in out
    assert "every agreement is re-mapped" in out
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert rows[0] == ["old_case_reference", "new_case_reference"]
    assert {r[0].removeprefix("'") for r in rows[1:]} == old
    new = _keyring()
    assert {r[1].removeprefix("'") for r in rows[1:]} == {
        new.case_reference(world.agreement_id, r) for r in active
    }
    assert not any(rid in out_file.read_text() for rid in active)

    code, out = _invoke(
        "rotate-pseudonym", "--agreement", world.agreement_id, "--remap-out", str(out_file)
    )
    assert code == 1 and "exists" in out
    code, out = _invoke(
        "rotate-pseudonym", "--agreement", "nope", "--remap-out", str(tmp_path / "other.csv")
    )
    assert (code, out.strip()) == (1, "error: no such agreement")
    assert not (tmp_path / "other.csv").exists()


def test_remap_csv_neutralises_formula_leads() -> None:
    text = remap_csv_text((RemapRow("-abc=", "+def"), RemapRow("@x", "plain_ref")))
    assert text == ("old_case_reference,new_case_reference\n'-abc=,'+def\n'@x,plain_ref\n")


@pytest.mark.db
def test_rotate_contractor_from_a_key_file(home: Path, world: World, tmp_path: Path) -> None:
    _, public = generate_keypair()
    key_file = tmp_path / "contractor.pub"
    key_file.write_text(public.to_text())
    code, out = _invoke("rotate-contractor", world.contractor_id, "--public-key", str(key_file))
    assert code == 0, out
    assert f"contractor key {public.fingerprint.hex()} (x25519) is now active" in out
    code, out = _invoke("status")
    assert "active contractor keys: 1" in out
    key_file.write_text("not a key")
    code, out = _invoke("rotate-contractor", world.contractor_id, "--public-key", str(key_file))
    assert code == 1 and out.startswith("error: ") and len(out.strip().splitlines()) == 1


@pytest.mark.db
def test_an_unmigrated_database_is_a_clear_error(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path))
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        from keys import FileKeyring

        FileKeyring.create(Settings().keyring_file, development=True)
        code, out = _invoke("status")
    finally:
        get_settings.cache_clear()
    assert code == 1
    assert out.strip() == "error: the database schema is not up to date; run `exchange admin init`"


@pytest.mark.db
def test_rotate_blind_index_resumes_and_status_shows_it(home: Path, world: World) -> None:
    world.add_residents(5)

    def crash(_done: int) -> None:
        raise Crash()

    with pytest.raises(Crash):
        key_rotation.rotate_blind_index(world.factory, _keyring(), clock, batch_size=2,
                                        progress=crash)  # fmt: skip
    code, out = _invoke("status")
    assert "blind indexes: rotation v1 -> v2 unfinished, 3 residents left" in out
    code, out = _invoke("rotate-blind-index", "--batch-size", "2")
    assert code == 0, out
    assert "resuming blind-index rotation v1 -> v2; 3 residents to re-index" in out
    assert "blind index v2: 3 residents re-indexed; v1 retired" in out
    code, out = _invoke("status")
    assert "blind_index: current v2; held v2" in out and "blind indexes: under v2" in out
    assert not any(secret in out for secret in _secrets(home))


@pytest.mark.db
def test_reindex_phones_indexes_rows_stored_before_the_phone_index(
        home: Path, world: World) -> None:
    from sqlalchemy import select, update

    from exchange.db import models as m
    from exchange.db.engine import unit_of_work

    world.add_residents(3)
    with unit_of_work(world.factory) as s:  # as rows stored before migration 0011
        s.execute(update(m.Resident).values(phone_index=None))
    code, out = _invoke("status")
    assert "phone indexes: 3 residents without one" in out and "reindex-phones" in out
    code, out = _invoke("reindex-phones", "--batch-size", "2")
    assert code == 0, out
    assert "3 residents' phones to index" in out and "phone indexes: 3 residents indexed" in out
    with world.factory() as s:
        assert None not in s.scalars(select(m.Resident.phone_index)).all()
    code, out = _invoke("status")
    assert "phone indexes" not in out
    code, out = _invoke("reindex-phones")
    assert code == 0 and "0 residents' phones to index" in out
    assert [e["action"] for e in audit_entries(world.factory)].count("key.reindex_phones") == 2
