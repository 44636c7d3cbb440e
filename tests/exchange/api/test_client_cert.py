"""Client certificates: RFC 9440 header parsing, RFC 8705 thumbprints, trusted proxies only,
and a bound contractor token answering 401 invalid_token with any other certificate or none."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from structlog.testing import capture_logs

from exchange.clientcert import (
    ClientCertError,
    TrustedProxies,
    header_value,
    is_thumbprint,
    load_certificate_file,
    parse_header,
    summarise,
    thumbprint_s256,
)
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services import tokens
from tests.exchange.api.apptools import build
from tests.exchange.certs import Issued, issue, make_ca


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca()


@pytest.fixture(scope="module")
def mine(ca: Issued) -> Issued:
    return issue(ca, "青岛安心母婴健康服务有限公司 数据接口", unit="信息部")


@pytest.fixture(scope="module")
def theirs(ca: Issued) -> Issued:
    return issue(ca, "青岛启航家庭健康服务中心 数据接口")


def test_thumbprint_is_rfc8705_x5t_s256(mine: Issued) -> None:
    expected = base64.urlsafe_b64encode(hashlib.sha256(mine.der).digest()).decode().rstrip("=")
    assert thumbprint_s256(mine.der) == expected and is_thumbprint(expected)
    assert not is_thumbprint(expected[:-1]) and not is_thumbprint("!" * 43)


def test_header_round_trip_and_refusals(mine: Issued) -> None:
    assert parse_header(header_value(mine.der)) == mine.der
    assert parse_header("  " + header_value(mine.der) + "\t") == mine.der
    b64 = base64.b64encode(mine.der).decode()
    for bad in (b64, f":{b64}", f":{b64}:;a=1", ":AAAA:", ":not base64!:", "::",
                ":" + "A" * 20_000 + ":"):
        with pytest.raises(ClientCertError):
            parse_header(bad)


def test_certificate_files_and_chinese_subjects(tmp_path: Path, mine: Issued,
                                                theirs: Issued) -> None:
    cert_path, _ = mine.write(tmp_path, "mine")
    assert load_certificate_file(cert_path) == mine.der
    der_path = tmp_path / "mine.der"
    der_path.write_bytes(mine.der)
    assert load_certificate_file(der_path) == mine.der
    summary = summarise(mine.der)
    assert "CN=青岛安心母婴健康服务有限公司 数据接口" in summary.subject
    assert "O=城阳区城阳街道办事处" in summary.issuer
    both = tmp_path / "both.pem"
    both.write_bytes(mine.pem + theirs.pem)
    with pytest.raises(ClientCertError, match="2 certificates"):
        load_certificate_file(both)
    with pytest.raises(ClientCertError, match="cannot read"):
        load_certificate_file(tmp_path / "missing.pem")


def test_trusted_proxies() -> None:
    trusted = TrustedProxies.parse("127.0.0.1, 10.0.0.0/30,::1")
    assert "127.0.0.1" in trusted and "10.0.0.3" in trusted and "::1" in trusted
    assert "10.0.0.4" not in trusted and "testclient" not in trusted and None not in trusted
    assert "127.0.0.1" not in TrustedProxies.parse("")
    for bad in ("*", "proxy.local"):
        with pytest.raises(ClientCertError):
            TrustedProxies.parse(bad)


def _bind(factory: object, role: str, thumbprint: str) -> str:
    with unit_of_work(factory) as session:  # type: ignore[arg-type]
        row = session.scalars(select(m.Principal).where(m.Principal.name == f"p-{role}")).one()
        return tokens.issue_token(row, now=row.created_at, ttl=timedelta(days=3650),
                                  cnf_x5t_s256=thumbprint)


@pytest.mark.db
def test_bound_token_needs_its_own_certificate(database_url: str, tmp_path: Path,
                                               mine: Issued, theirs: Issued) -> None:
    h = build(database_url, tmp_path, forwarded_allow_ips="127.0.0.1")
    token = _bind(h.factory, "contractor", thumbprint_s256(mine.der))
    proxy = TestClient(h.app, client=("127.0.0.1", 40000))
    stranger = TestClient(h.app, client=("192.0.2.7", 40000))
    auth = {"Authorization": f"Bearer {token}"}

    ok = proxy.get("/v1/session", headers={**auth, "Client-Cert": header_value(mine.der)})
    assert ok.status_code == 200 and ok.json()["role"] == "contractor"

    with capture_logs() as logs:
        other = proxy.get("/v1/session", headers={**auth, "Client-Cert": header_value(theirs.der)})
        none = proxy.get("/v1/session", headers=auth)
        # the right certificate from an address that is not the proxy is not believed
        forged = stranger.get("/v1/session",
                              headers={**auth, "Client-Cert": header_value(mine.der)})
    for answer in (other, none, forged):
        assert answer.status_code == 401
        assert answer.json()["type"].endswith("/invalid-token")
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert [e["reason"] for e in logs if e["event"] == "auth_denied"] == [
        "certificate_mismatch"] * 3
    assert any(e["event"] == "client_cert_untrusted_peer" for e in logs)
    assert token not in repr(logs)

    # an unbound token (an office admin's) works with or without a certificate
    office = {"Authorization": f"Bearer {h.tokens['office_admin']}"}
    assert proxy.get("/v1/session", headers=office).status_code == 200
    assert proxy.get("/v1/session", headers={**office, "Client-Cert": "garbage"}).status_code == 200


@pytest.mark.db
def test_without_configured_proxies_no_header_is_believed(database_url: str, tmp_path: Path,
                                                          mine: Issued) -> None:
    h = build(database_url, tmp_path)  # forwarded_allow_ips empty: trust nobody
    token = _bind(h.factory, "contractor", thumbprint_s256(mine.der))
    local = TestClient(h.app, client=("127.0.0.1", 40000))
    answer = local.get("/v1/session", headers={"Authorization": f"Bearer {token}",
                                               "Client-Cert": header_value(mine.der)})
    assert answer.status_code == 401

