"""The audit readiness probe: a real append, rolled back; a log that refuses writes is not ready."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from audit.store import AuditLog
from exchange.bootstrap import audit_probe
from exchange.db.engine import make_session_factory

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
