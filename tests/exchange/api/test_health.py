"""Readiness: the audit probe (a real append, rolled back; a log that refuses writes is not
ready), and /readyz naming the check that failed (keyring, migrations) without logging
Alembic's lines."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import text

from audit.store import AuditLog
from exchange.bootstrap import audit_probe
from exchange.db.engine import make_session_factory
from exchange.db.migrate import alembic_config, head_revision
from keys.keyring import Keyring
from keys.providers import FileKeyring
from tests.exchange.api.apptools import Harness, build

pytestmark = pytest.mark.db


def _size(engine: sa.Engine) -> int:
    with make_session_factory(engine)() as s:
        return AuditLog(s).size()


def test_probe_appends_for_real_and_leaves_nothing(migrated_engine: sa.Engine) -> None:
    probe = audit_probe(migrated_engine)
    assert probe() is True and probe() is True
    assert _size(migrated_engine) == 0
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_entries")).scalar() == 0


def test_probe_fails_when_the_log_refuses_appends(migrated_engine: sa.Engine) -> None:
    with migrated_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(
                "CREATE FUNCTION refuse_probe() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"))
            conn.execute(sa.text("CREATE TRIGGER refuse_probe BEFORE INSERT ON audit_entries "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse_probe()"))
        else:
            conn.execute(sa.text("CREATE TRIGGER refuse_probe BEFORE INSERT ON audit_entries "
                                 "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    with pytest.raises(Exception, match="audit append failed"):
        audit_probe(migrated_engine)()


# -- /readyz: which check failed ---------------------------------------------------------------


@pytest.fixture
def harness(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    return build(database_url, tmp_path, template=migrated_sqlite_template)


def _ready(h: Harness) -> tuple[int, dict[str, object]]:
    r = h.client.get("/readyz")
    return r.status_code, r.json()


def test_readyz_names_a_keyring_that_became_unreadable(harness: Harness, tmp_path: Path) -> None:
    """The keyring file is rewritten beside the running server (a restore, a careless copy):
    readable by others, or not a keyring at all. Readiness says so, naming only that check."""
    path = tmp_path / "keys" / "keyring.json"
    provider = FileKeyring.create(path, development=True)
    provider.REFRESH_INTERVAL = 0.0  # type: ignore[misc]  # re-read the file on every check
    harness.app.state.keyring = Keyring(provider)
    assert _ready(harness) == (200, {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "keyring": "ok", "audit": "ok"}})  # fmt: skip
    good = path.read_bytes()
    for damage in (lambda: path.chmod(0o644), lambda: path.write_bytes(b"{not json")):
        damage()
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))  # a new signature
        status, body = _ready(harness)
        assert status == 503 and body["status"] == "not ready"
        assert body["checks"] == {"database": "ok", "migrations": "ok",
                                  "keyring": "unavailable", "audit": "ok"}  # fmt: skip
        assert body["failed"] == ["keyring"]
        path.write_bytes(good)
        path.chmod(0o600)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
        assert _ready(harness)[0] == 200  # repaired: ready again, no restart
    harness.app.state.keyring = None
    status, body = _ready(harness)
    assert status == 503 and body["checks"]["keyring"] == "not loaded"  # type: ignore[index]
    assert body["failed"] == ["keyring"]


def test_readyz_names_a_database_behind_the_code(harness: Harness) -> None:
    head = head_revision()
    assert head is not None
    previous = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(head)
    assert previous is not None and isinstance(previous.down_revision, str)
    engine = harness.factory.kw["bind"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"),
                     {"v": previous.down_revision})  # fmt: skip
    status, body = _ready(harness)
    assert status == 503 and body["status"] == "not ready"
    assert body["checks"] == {
        "database": "ok", "migrations": f"database at {previous.down_revision}, code at {head}",
        "keyring": "ok", "audit": "ok"}  # fmt: skip
    assert body["failed"] == ["migrations"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    status, body = _ready(harness)
    assert status == 503 and body["checks"]["migrations"] == "not initialised"  # type: ignore[index]
    assert body["failed"] == ["migrations"]
    # several failures at once are all named, in the order of the checks
    harness.app.state.audit_probe = lambda: False
    harness.app.state.keyring = None
    status, body = _ready(harness)
    assert status == 503 and body["failed"] == ["migrations", "keyring", "audit"]


def test_readyz_writes_no_alembic_lines_to_the_log(harness: Harness) -> None:
    """Probed every few seconds, /readyz must not log Alembic's "Context impl …" INFO lines
    (issue 19): the revision is read without an Alembic MigrationContext."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(logging.DEBUG)
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.addHandler(handler)
    alembic_logger.setLevel(logging.INFO)
    try:
        for _ in range(3):
            assert harness.client.get("/readyz").status_code == 200
    finally:
        alembic_logger.removeHandler(handler)
        alembic_logger.setLevel(level)
    assert [(r.name, r.getMessage()) for r in seen] == []
