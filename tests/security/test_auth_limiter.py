"""Issue 14, finding 3: the failed-authentication limiter.

The attack: rotate `X-Forwarded-For` (or `Forwarded`) to get unlimited guesses; send 35 bad
tokens under someone else's address so that her valid token answers 429; spread guesses over
several worker processes, each with its own count. Forwarded headers count only from the
configured proxy addresses (`EXCHANGE_FORWARDED_ALLOW_IPS`, the one trusted-proxy setting);
the limit applies to failures only; the count lives in the database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from exchange.api.app import create_app
from exchange.db.engine import make_engine, make_session_factory
from tests.exchange.api.apptools import Harness, build

PROXY = "192.0.2.10"  # documentation addresses (RFC 5737): never a real peer
OUTSIDER = "198.51.100.7"
VICTIM = "203.0.113.5"
LIMIT = 5
BAD = {"Authorization": "Bearer exq_not-a-token"}

pytestmark = pytest.mark.db


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    return build(database_url, tmp_path, template=migrated_sqlite_template,
                 auth_failures_per_minute=LIMIT, forwarded_allow_ips=PROXY)


def _client(h: Harness, peer: str) -> TestClient:
    return TestClient(h.app, raise_server_exceptions=False, client=(peer, 40000))


def test_rotating_forwarded_headers_from_a_non_proxy_peer_does_not_reset_the_count(
    h: Harness,
) -> None:
    outsider = _client(h, OUTSIDER)
    for i in range(LIMIT):
        spoofed = {**BAD, "X-Forwarded-For": f"203.0.113.{i + 20}",
                   "Forwarded": f"for=203.0.113.{i + 40}"}
        assert outsider.get("/v1/session", headers=spoofed).status_code == 401
    spoofed = {**BAD, "X-Forwarded-For": "203.0.113.99", "Forwarded": "for=203.0.113.98"}
    assert outsider.get("/v1/session", headers=spoofed).status_code == 429


def test_the_proxy_forwarded_address_is_counted_not_the_proxy(h: Harness) -> None:
    proxy = _client(h, PROXY)
    for _ in range(LIMIT):
        assert proxy.get("/v1/session", headers={**BAD, "X-Forwarded-For": OUTSIDER}
                         ).status_code == 401  # fmt: skip
    assert proxy.get("/v1/session", headers={**BAD, "X-Forwarded-For": OUTSIDER}
                     ).status_code == 429  # fmt: skip
    # another client behind the same proxy has its own count
    assert proxy.get("/v1/session", headers={**BAD, "X-Forwarded-For": VICTIM}
                     ).status_code == 401  # fmt: skip


def test_bad_tokens_sent_as_someone_else_do_not_lock_out_her_valid_token(h: Harness) -> None:
    proxy = _client(h, PROXY)
    as_victim = {"X-Forwarded-For": VICTIM}
    for _ in range(35):
        answer = proxy.get("/v1/session", headers={**BAD, **as_victim})
        assert answer.status_code in (401, 429)
    assert answer.status_code == 429  # the attacker's guesses are limited...
    valid = {"Authorization": f"Bearer {h.tokens['auditor']}", **as_victim}
    assert proxy.get("/v1/session", headers=valid).status_code == 200  # ...her token is not
    direct = _client(h, VICTIM)  # nor from her own address straight to the broker
    assert direct.get("/v1/session", headers={"Authorization": f"Bearer {h.tokens['auditor']}"}
                      ).status_code == 200  # fmt: skip


def test_two_app_instances_on_one_database_share_the_count(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    second: sessionmaker[Session] = make_session_factory(make_engine(database_url))
    # another instance of the same office: the same database and the same keyring file
    other = create_app(h.app.state.settings, session_factory=second,
                       keyring=h.app.state.keyring, clock=h.clock,
                       audit_probe=lambda: True)  # fmt: skip
    first_client = _client(h, OUTSIDER)
    second_client = TestClient(other, raise_server_exceptions=False, client=(OUTSIDER, 40001))
    for i in range(LIMIT):
        client = first_client if i % 2 == 0 else second_client
        assert client.get("/v1/session", headers=BAD).status_code == 401
    assert second_client.get("/v1/session", headers=BAD).status_code == 429
    assert first_client.get("/v1/session", headers=BAD).status_code == 429
    second.kw["bind"].dispose()


def test_the_count_keeps_no_address_in_clear(h: Harness) -> None:
    from sqlalchemy import text

    _client(h, OUTSIDER).get("/v1/session", headers=BAD)
    with h.factory() as session:
        rows = session.execute(text("SELECT * FROM minute_counts")).all()
    assert rows and all(OUTSIDER not in str(row) for row in rows)
    # nor a bare hash of it, which anyone holding the table could recompute for every address
    import hashlib

    stored = {str(value) for row in rows for value in row}
    for prefix in (b"", b"exchange/auth-failure-client/v1\x00"):
        bare = hashlib.sha256(prefix + OUTSIDER.encode()).hexdigest()
        assert bare not in stored and bare[:20] not in stored


def test_a_flood_past_the_limit_writes_nothing(h: Harness) -> None:
    """Answered 429 (not 401), an over-the-limit failure neither counts nor audits: the flood
    costs the database reads only."""
    from sqlalchemy import text

    outsider = _client(h, OUTSIDER)
    for _ in range(LIMIT):
        assert outsider.get("/v1/session", headers=BAD).status_code == 401

    def written() -> list[tuple[object, ...]]:
        with h.factory() as session:
            counts = session.execute(text(
                "SELECT * FROM minute_counts ORDER BY 1, 2, 3")).all()
            size = session.execute(text("SELECT size FROM audit_head")).scalar_one()
        return [*map(tuple, counts), ("audit", size)]

    before = written()
    for i in range(10):
        flood = {"Authorization": f"Bearer exq_flood-{i}"}
        assert outsider.get("/v1/session", headers=flood).status_code == 429
    assert written() == before
