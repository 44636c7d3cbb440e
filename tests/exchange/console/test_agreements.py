"""协议管理 and 策略版本 through the console (SQLite and PostgreSQL): a new agreement names every
field problem at once in Chinese and writes nothing; activation shows what each purpose's
policy version discloses and its diff against the previous version before anything changes;
suspension and termination say what they will do (tombstones); publishing a version from an
uploaded TOML file and moving an agreement's purpose to it check, diff, refuse a widening
unless confirmed, and audit exactly as `exchange policy publish|move` do."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.services import assignments, consent, published_policies
from policies.shipped import shipped_paths
from tests.exchange.console.ledger_world import CADRE_COMMUNITY, entries, with_residents
from tests.exchange.console.pages import console, sign_in

pytestmark = pytest.mark.db
HOME_VISIT_V1 = next(p for p in shipped_paths() if p.name == "home_visit.toml").read_text("utf-8")
# v2 drops the booking condition on the sealed phone: it is sent more often, a widening
WIDER_V2 = HOME_VISIT_V1.replace("version = 1", "version = 2").replace(
    'transform = "phone_full"\nsealed = true\nwhen = { visit_booked_within_days = 7 }\n',
    'transform = "phone_full"\nsealed = true\n')
TERMINATE_WORDS = "终止后服务机构下次同步时将删除全部案例"


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    with unit_of_work(harness.factory) as session:
        published_policies.ensure_defaults(session, harness.clock())  # as `admin init` does
        contractor_id = session.scalars(select(m.Contractor.id)).first()
    assert HOME_VISIT_V1.replace("version = 1", "version = 2") != WIDER_V2
    return harness, world, contractor_id


def _form(contractor_id: str, csrf: str, **over: str) -> dict[str, str]:
    data = {"csrf_token": csrf, "contractor_id": contractor_id, "reference": "CY-2026-007",
            "valid_from": "2026-01-01", "valid_to": "2026-12-31", "retention_days": "365",
            "purpose_home_visit": "cy1000.home_visit@1", "purpose_online_guidance": "",
            "purpose_class_invitation": "", "sub_processors": "阿里云（青岛）"}  # fmt: skip
    data.update(over)
    return data


def _count(harness, model) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work(harness.factory) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _create(harness, client, csrf, contractor_id, **over) -> str:  # type: ignore[no-untyped-def]
    r = client.post("/console/agreements/new", data=_form(contractor_id, csrf, **over),
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text[:2000]
    return str(r.headers["location"].split("/")[-1].split("?")[0])


def test_a_new_agreement_names_every_problem_at_once_and_writes_nothing(app) -> None:
    harness, _, contractor_id = app
    client = harness.client
    csrf = sign_in(client, "office_admin")
    assert client.get("/console/agreements/new").status_code == 200
    bad = client.post("/console/agreements/new", data=_form(
        "", csrf, reference="CY 2026 有空格", valid_from="2026-13-01", valid_to="",
        retention_days="0", purpose_home_visit=""))  # fmt: skip
    assert bad.status_code == 422
    for words in ("服务机构：", "协议编号：格式不正确", "有效期起：", "有效期止：为必填项",
                  "保存期限（天）：超出允许范围", "用途及策略版本：为必填项"):  # fmt: skip
        assert words in bad.text, words
    assert "未做任何更改" in bad.text
    assert _count(harness, m.Agreement) == 0
    with unit_of_work(harness.factory) as session:
        assert entries(session, "agreement.create") == []
    # a purpose on another purpose's policy, and an end before the start
    wrong = client.post("/console/agreements/new", data=_form(
        contractor_id, csrf, purpose_home_visit="cy1000.online_guidance@1",
        valid_to="2025-12-31"))  # fmt: skip
    assert wrong.status_code == 422
    assert "入户指导：是其他用途的策略" in wrong.text and "有效期止：不能早于开始日期" in wrong.text

    agreement_id = _create(harness, client, csrf, contractor_id)
    page = client.get(f"/console/agreements/{agreement_id}")
    assert page.status_code == 200 and "草稿" in page.text and "CY-2026-007" in page.text
    taken = client.post("/console/agreements/new", data=_form(contractor_id, csrf))
    assert taken.status_code == 422 and "协议编号：已被使用" in taken.text
    assert _count(harness, m.Agreement) == 1
    with unit_of_work(harness.factory) as session:
        (created,) = entries(session, "agreement.create")
    assert created["agreement"] == agreement_id
    # cadres and auditors have no agreements pages
    cadre = harness.client.__class__(harness.app)
    sign_in(cadre, "community_cadre")
    assert cadre.get("/console/agreements").status_code == 403
    assert cadre.get("/console/policies").status_code == 403


def _publish(harness, text: str) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(harness.factory) as session:
        admin = session.scalars(select(m.Principal).where(
            m.Principal.role == "office_admin")).first()  # fmt: skip
        assert admin is not None
        acting = Acting(Identity.from_row(admin), harness.clock())
        proposal = published_policies.propose(session, text)
        published_policies.publish(session, acting, proposal, confirm_widening=True)


def test_activation_shows_the_policy_and_its_diff_before_anything_changes(app) -> None:
    harness, _, contractor_id = app
    _publish(harness, WIDER_V2)
    client = harness.client
    csrf = sign_in(client, "office_admin")
    agreement_id = _create(harness, client, csrf, contractor_id,
                           purpose_home_visit="cy1000.home_visit@2")  # fmt: skip
    confirm = client.get(f"/console/agreements/{agreement_id}/activate")
    assert confirm.status_code == 200
    text = confirm.text
    assert "与上一版本 cy1000.home_visit@1 相比" in text
    assert "删除条件（披露更频繁）：已预约且 7 天内上门" in text  # the widening, in words
    assert "联系电话 → 完整手机号；加密（仅指导老师设备可解密）" in text  # what v2 discloses
    with unit_of_work(harness.factory) as session:
        assert session.get_one(m.Agreement, agreement_id).status == "draft"
        assert entries(session, "agreement.active") == []
    done = client.post(f"/console/agreements/{agreement_id}/activate",
                       data={"csrf_token": csrf}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    with unit_of_work(harness.factory) as session:
        assert session.get_one(m.Agreement, agreement_id).status == "active"
        (activated,) = entries(session, "agreement.active")
    assert activated["outcome"] == {"result": "ok", "reason": "from_draft"}
    # a first version says so
    first = _create(harness, client, csrf, contractor_id, reference="CY-2026-008",
                    purpose_home_visit="", purpose_online_guidance="cy1000.online_guidance@1")
    page = client.get(f"/console/agreements/{first}/activate").text
    assert "首个版本：其披露的全部内容均为新增" in page


def test_suspend_and_terminate_say_what_they_will_do_then_tombstone(app) -> None:
    harness, world, contractor_id = app
    client = harness.client
    csrf = sign_in(client, "office_admin")
    agreement_id = _create(harness, client, csrf, contractor_id)
    client.post(f"/console/agreements/{agreement_id}/activate", data={"csrf_token": csrf})
    ledger = with_residents(harness, residents=20)
    rid = ledger.ids[ledger.of(CADRE_COMMUNITY)[0].national_id]
    with unit_of_work(harness.factory) as session:
        cadre = Acting(Identity.from_row(session.get_one(m.Principal,
                                                         world.ids["community_cadre"])),
                       harness.clock())  # fmt: skip
        keyring = harness.app.state.keyring
        consent.grant(session, keyring, cadre, rid, consent.ConsentInput(
            scopes=("service_contact",), method="paper", notice_version="2026.1",
            evidence_sha256=hashlib.sha256(b"form").hexdigest(), agreement_id=agreement_id))
        assignments.create(session, keyring, cadre, assignments.AssignmentInput(
            resident_id=rid, contractor_id=contractor_id, agreement_id=agreement_id,
            services=("mid_pregnancy", "late_pregnancy", "confinement", "parenting"),
            bookings=(assignments.BookingInput("mid_pregnancy", date(2026, 3, 10)),)))

    suspend = client.get(f"/console/agreements/{agreement_id}/suspend")
    assert "暂停后，服务机构下次同步时将删除该协议下的 1 个案例" in suspend.text
    terminate = client.get(f"/console/agreements/{agreement_id}/terminate")
    assert TERMINATE_WORDS in terminate.text and "1 项分配将全部撤销" in terminate.text
    assert _count(harness, m.Tombstone) == 0  # the pages changed nothing
    forged = client.post(f"/console/agreements/{agreement_id}/terminate", data={})
    assert forged.status_code == 403 and _count(harness, m.Tombstone) == 0
    done = client.post(f"/console/agreements/{agreement_id}/terminate",
                       data={"csrf_token": csrf}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    with unit_of_work(harness.factory) as session:
        row = session.get_one(m.Agreement, agreement_id)
        statuses = session.scalars(select(m.Assignment.status)).all()
        assert row.status == "terminated" and statuses == ["revoked"]
        assert entries(session, "agreement.terminated")
    assert _count(harness, m.Tombstone) == 1
    again = client.post(f"/console/agreements/{agreement_id}/terminate",
                        data={"csrf_token": csrf})  # fmt: skip
    assert again.status_code == 409 and "协议已终止" in again.text


def _upload(client, csrf: str, text: str, name: str = "home_visit.toml"):  # type: ignore[no-untyped-def]
    return client.post("/console/policies/check", data={"csrf_token": csrf},
                       files={"document": (name, text.encode("utf-8"), "application/toml")})


def test_publishing_and_moving_check_diff_confirm_and_audit_like_the_cli(app) -> None:
    harness, _, contractor_id = app
    client = harness.client
    csrf = sign_in(client, "office_admin")
    agreement_id = _create(harness, client, csrf, contractor_id)
    client.post(f"/console/agreements/{agreement_id}/activate", data={"csrf_token": csrf})
    published = _count(harness, m.PublishedPolicy)
    assert "cy1000.home_visit@1" in client.get("/console/policies").text

    broken = _upload(client, csrf, HOME_VISIT_V1.replace('transform = "surname_title"',
                                                         'transform = "full_name"'))
    assert broken.status_code == 422 and "策略文件无效" in broken.text
    same_version = _upload(client, csrf, HOME_VISIT_V1.replace("title = ", "title = \"x\"\n#"))
    assert same_version.status_code == 409 and "版本号不高于现行版本" in same_version.text
    assert _upload(client, csrf, "x", name="notes.txt").status_code == 422

    proposal = _upload(client, csrf, WIDER_V2)
    assert proposal.status_code == 200
    assert "与现行版本 cy1000.home_visit@1 相比" in proposal.text and "+ 披露增加" in proposal.text
    assert "CY-2026-007" in proposal.text  # the agreement on v1, until moved
    form = {"csrf_token": csrf, "document": _hidden(proposal.text, "document"),
            "sha256": _hidden(proposal.text, "sha256")}
    refused = client.post("/console/policies/publish", data=form)
    assert refused.status_code == 409 and "请勾选确认" in refused.text
    assert _count(harness, m.PublishedPolicy) == published
    tampered = client.post("/console/policies/publish",
                           data={**form, "sha256": "0" * 64, "confirm_widening": "on"})
    assert tampered.status_code == 409 and _count(harness, m.PublishedPolicy) == published
    done = client.post("/console/policies/publish", data={**form, "confirm_widening": "on"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and _count(harness, m.PublishedPolicy) == published + 1
    with unit_of_work(harness.factory) as session:
        (entry,) = [e for e in entries(session, "policy.publish")
                    if e["details"]["policy.origin"] == "office"]  # type: ignore[index]
    assert entry["details"]["policy.widens"] is True  # type: ignore[index]
    assert entry["details"]["policy.previous_version"] == 1  # type: ignore[index]

    # the agreement stays on v1 until moved; the move shows the change and wants the tick
    move_url = f"/console/agreements/{agreement_id}/move/home_visit"
    page = client.get(move_url, params={"to": "cy1000.home_visit@2"})
    assert page.status_code == 200 and "cy1000.home_visit@1 → cy1000.home_visit@2" in page.text
    assert "已预约且 7 天内上门" in page.text
    unconfirmed = client.post(move_url, data={"csrf_token": csrf, "to": "cy1000.home_visit@2"})
    assert unconfirmed.status_code == 409
    with unit_of_work(harness.factory) as session:
        pinned = session.scalars(select(m.AgreementPurpose.policy_version)).one()
    assert pinned == 1
    moved = client.post(move_url, data={"csrf_token": csrf, "to": "cy1000.home_visit@2",
                                        "confirm_widening": "on"}, follow_redirects=False)
    assert moved.status_code == 303
    with unit_of_work(harness.factory) as session:
        pinned = session.scalars(select(m.AgreementPurpose.policy_version)).one()
        (move,) = entries(session, "agreement.policy_move")
    assert pinned == 2 and move["agreement"] == agreement_id
    assert move["details"]["policy.previous_version"] == 1  # type: ignore[index]
    again = client.get(move_url, params={"to": "cy1000.home_visit@2"})
    assert again.status_code == 409 and "协议已在该版本上" in again.text
    document = client.get(f"/console/policies/{entry['policy']['digest']}")  # type: ignore[index]
    assert document.status_code == 200 and "version = 2" in document.text


def _hidden(html: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]

