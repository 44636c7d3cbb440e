"""The per-test database fixture itself: fresh, usable, and isolated per backend."""

import pytest
import sqlalchemy as sa


@pytest.mark.db
def test_database_url_gives_a_fresh_writable_database(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO probe (id) VALUES (1)"))
        assert conn.execute(sa.text("SELECT count(*) FROM probe")).scalar_one() == 1
    engine.dispose()
