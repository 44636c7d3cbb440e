"""接口令牌 and 服务机构 through the console (SQLite and PostgreSQL): a contractor system's token
is shown once and only its hash kept, listed with expiry and last use (after the system has
used it), bound to a certificate when a thumbprint is given, revoked behind a confirmation;
the users page shows token last use; contractors are created with their errors named, and a
public key is registered or rotated only after its fingerprint was shown. Every change is
audited without a secret."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from exchange.api.auth import issue_token
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.services import system_tokens
from exchange.services.errors import InvalidInput
from exchange.services.tokens import hash_token
from keys import generate_keypair
from tests.exchange.console.ledger_world import entries
from tests.exchange.console.pages import console, sign_in

pytestmark = pytest.mark.db
_TOKEN = re.compile(r'id="token" readonly value="(exq_[A-Za-z0-9_-]+)"')
THUMBPRINT = base64.urlsafe_b64encode(hashlib.sha256(b"a certificate").digest()).rstrip(
    b"=").decode()


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    with unit_of_work(harness.factory) as session:
        contractor_id = session.scalars(select(m.Contractor.id).where(
            m.Contractor.name == "青岛安心母婴健康服务有限公司")).one()  # fmt: skip
    return harness, world, contractor_id


def _count(harness, model) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work(harness.factory) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _row(html: str, name: str) -> str:
    """The table row of the system account `name`."""
    (row,) = [r for r in html.split("<tr>") if f'<td class="mono">{name}</td>' in r]
    return row


def _issue(client, csrf: str, contractor_id: str, **over: str):  # type: ignore[no-untyped-def]
    data = {"csrf_token": csrf, "contractor_id": contractor_id, "principal": "anxin-sync",
            "ttl_days": "30", "cert_thumbprint": "", **over}  # fmt: skip
    return client.post("/console/tokens", data=data)


def test_a_token_is_shown_once_listed_with_last_use_and_revoked(app) -> None:
    harness, _, contractor_id = app
    client = harness.client
    csrf = sign_in(client, "office_admin")
    tokens_before = _count(harness, m.ApiToken)
    bad = _issue(client, csrf, contractor_id, principal="A", ttl_days="0", cert_thumbprint="abc")
    assert bad.status_code == 422
    for words in ("系统账号：格式不正确", "有效天数：超出允许范围",
                  "证书指纹：须为证书的 SHA-256 指纹"):  # fmt: skip
        assert words in bad.text, words
    assert _count(harness, m.ApiToken) == tokens_before
    # another role's account name is not a contractor system's
    taken = _issue(client, csrf, contractor_id, principal="cadre-01")
    assert taken.status_code == 422 and "系统账号：已被使用" in taken.text

    shown = _issue(client, csrf, contractor_id)
    assert shown.status_code == 200 and "仅显示这一次" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    token = _TOKEN.search(shown.text).group(1)  # type: ignore[union-attr]
    listing = client.get("/console/tokens")
    assert token not in listing.text and "从未使用" in _row(listing.text, "anxin-sync")
    with unit_of_work(harness.factory) as session:
        row = session.scalars(select(m.ApiToken).where(
            m.ApiToken.token_hash == hash_token(token))).one()  # fmt: skip
        principal = session.get_one(m.Principal, row.principal_id)
        assert (principal.role, principal.contractor_id) == ("contractor", contractor_id)
        assert row.expires_at - row.created_at == timedelta(days=30)
        (issued,) = entries(session, "token.issue")
    assert issued["details"]["token.id"] == row.id  # type: ignore[index]
    assert token not in repr(issued) and hash_token(token) not in repr(issued)

    # the contractor system pulls; its last use shows
    bearer = {"Authorization": f"Bearer {token}"}
    assert harness.client.get("/v1/session", headers=bearer).json()["role"] == "contractor"
    used = _row(client.get("/console/tokens").text, "anxin-sync")
    assert "从未使用" not in used and "2026-03-01 17:00:00" in used  # 09:00 UTC, Beijing time

    token_id = row.id
    confirm = client.get(f"/console/tokens/{token_id}/revoke")
    assert "吊销后，使用该令牌的服务机构系统将立即被拒绝访问" in confirm.text
    assert harness.client.get("/v1/session", headers=bearer).status_code == 200
    done = client.post(f"/console/tokens/{token_id}/revoke", data={"csrf_token": csrf},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert harness.client.get("/v1/session", headers=bearer).status_code == 401
    assert "已吊销" in _row(client.get("/console/tokens").text, "anxin-sync")
    with unit_of_work(harness.factory) as session:
        assert entries(session, "token.revoke")[0]["details"]["token.id"] == token_id  # type: ignore[index]
    # a cadre has no tokens page
    cadre = harness.client.__class__(harness.app)
    sign_in(cadre, "community_cadre")
    assert cadre.get("/console/tokens").status_code == 403


def test_a_bound_token_works_only_with_its_certificate(app) -> None:
    harness, world, contractor_id = app
    client = harness.client
    csrf = sign_in(client, "office_admin")
    shown = _issue(client, csrf, contractor_id, cert_thumbprint=THUMBPRINT)
    assert shown.status_code == 200
    token = _TOKEN.search(shown.text).group(1)  # type: ignore[union-attr]
    assert THUMBPRINT[:12] in client.get("/console/tokens").text
    # no certificate presented: refused
    assert harness.client.get("/v1/session", headers={
        "Authorization": f"Bearer {token}"}).status_code == 401
    # production wants the binding (as `exchange admin principal create` without --unbound)
    with unit_of_work(harness.factory) as session:
        admin = Acting(Identity.from_row(session.get_one(m.Principal,
                                                         world.ids["office_admin"])),
                       harness.clock())  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            system_tokens.issue(session, admin, contractor_id, principal_name="anxin-2",
                                ttl_days=30, require_binding=True)  # fmt: skip
    assert [p.field for p in refused.value.errors] == ["cert_thumbprint"]


def test_the_users_page_shows_token_last_use(app) -> None:
    harness, world, _ = app
    with unit_of_work(harness.factory) as session:
        row = session.get_one(m.Principal, world.ids["office_admin"])
        token = issue_token(row, now=harness.clock(), ttl=timedelta(days=1))
    client = harness.client
    sign_in(client, "office_admin")
    before = client.get("/console/users").text
    assert "最近使用接口" in before
    harness.client.get("/v1/session", headers={"Authorization": f"Bearer {token}"})
    after = client.get("/console/users").text
    assert after.count("2026-03-01 17:00:00") == before.count("2026-03-01 17:00:00") + 1


def test_contractors_and_their_keys_registered_after_the_fingerprint_is_shown(app) -> None:
    harness, _, _ = app
    client = harness.client
    csrf = sign_in(client, "office_admin")
    empty = client.post("/console/contractors", data={"csrf_token": csrf, "name": " "})
    assert empty.status_code == 422 and "机构名称：格式不正确" in empty.text
    twice = client.post("/console/contractors", data={"csrf_token": csrf,
                                                      "name": "青岛安心母婴健康服务有限公司"})
    assert twice.status_code == 409 and "已存在同名服务机构" in twice.text
    made = client.post("/console/contractors", data={"csrf_token": csrf,
                                                     "name": "青岛启航家庭健康服务中心"},
                       follow_redirects=False)  # fmt: skip
    assert made.status_code == 303
    url = made.headers["location"].split("?")[0]
    assert "未登记公钥" in client.get(url).text
    with unit_of_work(harness.factory) as session:
        assert len(entries(session, "contractor.create")) == 1

    garbage = client.post(f"{url}/keys/check", data={"csrf_token": csrf, "public_key": "x"})
    assert garbage.status_code == 422 and "公钥：不是服务机构公钥的文本格式" in garbage.text
    _, first = generate_keypair()
    fp1 = first.fingerprint.hex()
    check = client.post(f"{url}/keys/check", data={"csrf_token": csrf,
                                                   "public_key": first.to_text()})
    assert check.status_code == 200 and f"所粘贴公钥的指纹：{fp1}" in check.text
    assert _count(harness, m.ContractorKey) == 0  # shown, not registered
    # a browser sends the hidden field with CRLF line ends
    crlf = first.to_text().replace("\n", "\r\n")
    tampered = client.post(f"{url}/keys", data={"csrf_token": csrf, "public_key": crlf,
                                                "fingerprint": "0" * 16})
    assert tampered.status_code == 409 and _count(harness, m.ContractorKey) == 0
    done = client.post(f"{url}/keys", data={"csrf_token": csrf, "public_key": crlf,
                                            "fingerprint": fp1}, follow_redirects=False)
    assert done.status_code == 303
    page = client.get(url).text
    assert fp1 in page and "使用中" in page

    _, second = generate_keypair()
    rotate = client.post(f"{url}/keys/check", data={"csrf_token": csrf,
                                                    "public_key": second.to_text()})
    assert f"登记后将停用当前公钥（{fp1}）" in rotate.text
    client.post(f"{url}/keys", data={"csrf_token": csrf, "public_key": second.to_text(),
                                     "fingerprint": second.fingerprint.hex()})
    with unit_of_work(harness.factory) as session:
        keys = dict(session.execute(select(m.ContractorKey.key_id, m.ContractorKey.status)).all())
        actions = [e["action"] for e in entries(session) if str(e["action"]).startswith("key.")]
    assert keys == {fp1: "retired", second.fingerprint.hex(): "active"}
    assert sorted(actions) == ["key.create", "key.create", "key.retire"]
    again = client.post(f"{url}/keys/check", data={"csrf_token": csrf,
                                                   "public_key": second.to_text()})
    assert again.status_code == 409 and "该公钥已登记" in again.text
