"""One resident's page through the console (SQLite and PostgreSQL): 查看明文 with a reason
(audited as a reveal with the field and reason, the note encrypted and never in the log,
rate-limited per user in the database), consent and withdrawal, 6选4 assignments with
bookings, revoke after the confirmation, the "who saw my data" report; and a cadre reaching
none of it for a resident of another community."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services.residents import data_key
from keys.fields import FieldContext
from tests.exchange import factories as f
from tests.exchange.console.ledger_world import CADRE_COMMUNITY, entries, with_residents
from tests.exchange.console.pages import console, sign_in

pytestmark = pytest.mark.db
SERVICES4 = ["mid_pregnancy", "late_pregnancy", "confinement", "parenting"]
REVOKE_WORDS = "撤销分配后，服务机构下次同步时将删除该案例"


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template,
                             console_reveals_per_hour=3)  # fmt: skip
    ledger = with_residents(harness, residents=40)
    with unit_of_work(harness.factory) as session:
        contractor = session.scalars(select(m.Contractor)).first()
        agreement = f.agreement(session, contractor).id
    mine = ledger.of(CADRE_COMMUNITY)[0]
    other = ledger.elsewhere()[0]
    return harness, world, ledger, agreement, mine, other


def _reveal(client, csrf, rid, field="phone", reason="home_service_contact", note="上门前电话联系"):
    return client.post(f"/console/residents/{rid}/reveal",
                       data={"csrf_token": csrf, "field": field, "reason": reason, "note": note})


def _consent(client, csrf, rid, agreement, scopes=("service_contact",), **extra):
    data = {"csrf_token": csrf, "action": "grant", "basis": agreement, "scopes": list(scopes),
            "method": "paper", "notice_version": "2026.1", **extra}  # fmt: skip
    return client.post(f"/console/residents/{rid}/consent", data=data,
                       files={"evidence": ("form.jpg", b"signed form", "image/jpeg")},
                       follow_redirects=False)  # fmt: skip


def _assign(client, csrf, rid, agreement, services=SERVICES4,
            booking=("mid_pregnancy", "2026-03-10")):  # fmt: skip
    return client.post(f"/console/residents/{rid}/assignments", data={
        "csrf_token": csrf, "agreement": agreement, "services": list(services),
        "booking_service": booking[0], "booking_on": booking[1],
    }, follow_redirects=False)  # fmt: skip


def test_reveal_needs_a_reason_and_is_audited_without_the_note(app) -> None:
    harness, world, ledger, _, mine, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    rid = ledger.ids[mine.national_id]
    page = client.get(f"/console/residents/{rid}")
    assert page.status_code == 200 and mine.phone not in page.text
    assert f"{mine.phone[:3]}****{mine.phone[-4:]}" in page.text
    missing = _reveal(client, csrf, rid, reason="", note="")
    assert missing.status_code == 422 and mine.phone not in missing.text
    assert "查看事由：为必填项" in missing.text and "说明：为必填项" in missing.text
    shown = _reveal(client, csrf, rid, note="核对上门时间 13800000000")
    assert shown.status_code == 200 and mine.phone in shown.text
    assert 'data-hide-after="30"' in shown.text and shown.headers["cache-control"] == "no-store"
    with unit_of_work(harness.factory) as session:
        reveals = entries(session, "case.reveal")
        row = session.scalars(select(m.Reveal)).one()
        resident = session.get(m.Resident, rid)
        note = harness.app.state.keyring.decrypt_field(
            data_key(harness.app.state.keyring, resident), row.note,
            FieldContext("resident_reveals", "note", row.id))  # fmt: skip
    assert len(reveals) == 1 and reveals[0]["details"] == {
        "reveal.field": "resident.phone", "reveal.reason": "home_service_contact"}
    assert reveals[0]["subjects"][0]["disclosed"] == ["resident.phone"]  # type: ignore[index]
    assert reveals[0]["actor"]["id"] == world.ids["community_cadre"]  # type: ignore[index]
    assert "核对" not in repr(reveals) and mine.phone not in repr(reveals)
    assert note == "核对上门时间 13800000000" and row.reason == "home_service_contact"
    assert row.audit_index == reveals[0]["index"]
    # the resident's report lists the reveal, with its reason
    report = client.get(f"/console/residents/{rid}/report")
    assert report.status_code == 200 and "联系电话" in report.text and "上门服务联系" in report.text
    assert mine.phone not in report.text


def test_reveals_are_rate_limited_per_user_and_the_refusal_is_audited(app) -> None:
    harness, _, ledger, _, mine, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    rid = ledger.ids[mine.national_id]
    for field in ("phone", "name", "address"):
        assert _reveal(client, csrf, rid, field=field).status_code == 200
    refused = _reveal(client, csrf, rid, field="national_id")
    assert refused.status_code == 429 and mine.national_id not in refused.text
    assert "查看明文的次数已达上限" in refused.text
    with unit_of_work(harness.factory) as session:
        outcomes = [e["outcome"] for e in entries(session, "case.reveal")]
        kept = session.scalar(select(func.count()).select_from(m.Reveal))
    assert outcomes[-1] == {"result": "denied", "reason": "rate_limited"} and kept == 3
    # the limit is the user's: the office admin still may
    admin = harness.client.__class__(harness.app)
    admin_csrf = sign_in(admin, "office_admin")
    assert _reveal(admin, admin_csrf, rid, field="national_id").status_code == 200
    # an hour later the cadre may again
    from datetime import timedelta

    harness.clock.advance(timedelta(minutes=61))  # type: ignore[attr-defined]
    csrf = sign_in(client, "community_cadre")
    assert mine.national_id in _reveal(client, csrf, rid, field="national_id").text


def test_consent_then_six_choose_four_with_a_booking_then_revoke(app) -> None:
    harness, _, ledger, agreement, mine, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    rid = ledger.ids[mine.national_id]
    early = _assign(client, csrf, rid, agreement)
    assert early.status_code == 422 and "请先登记知情同意" in early.text
    sensitive = _consent(client, csrf, rid, agreement, ("service_contact", "pregnancy_health"))
    assert sensitive.status_code == 422 and "请确认已单独取得同意" in sensitive.text
    no_file = client.post(f"/console/residents/{rid}/consent", data={
        "csrf_token": csrf, "action": "grant", "basis": agreement, "scopes": ["service_contact"],
        "method": "paper", "notice_version": "2026.1"})  # fmt: skip
    assert no_file.status_code == 422 and "知情同意书：为必填项" in no_file.text
    with unit_of_work(harness.factory) as session:
        assert session.scalar(select(func.count()).select_from(m.ConsentEvent)) == 0
    ok = _consent(client, csrf, rid, agreement, ("service_contact", "pregnancy_health"),
                  separate="on")  # fmt: skip
    assert ok.status_code == 303
    three = _assign(client, csrf, rid, agreement, services=SERVICES4[:3])
    assert three.status_code == 422 and "须从6项中选择4项不同的服务" in three.text
    wrong_booking = _assign(client, csrf, rid, agreement, booking=("early_education", "2026-03-10"))
    assert wrong_booking.status_code == 422 and "须为已选择的服务项目" in wrong_booking.text
    assert _assign(client, csrf, rid, agreement).status_code == 303
    page = client.get(f"/console/residents/{rid}")
    assert "孕中期指导" in page.text and "2026-03-10" in page.text and "知情同意" in page.text
    assignment_id = re.search(r"/console/assignments/([0-9a-f-]{36})/revoke", page.text).group(1)
    booked = client.post(f"/console/assignments/{assignment_id}/bookings",
                         data={"csrf_token": csrf, "service": "parenting", "on": "2026-04-01"},
                         follow_redirects=False)  # fmt: skip
    assert booked.status_code == 303
    confirm = client.get(f"/console/assignments/{assignment_id}/revoke")
    assert confirm.status_code == 200 and REVOKE_WORDS in confirm.text
    with unit_of_work(harness.factory) as session:
        assert session.get(m.Assignment, assignment_id).status == "active"  # nothing done yet
    done = client.post(f"/console/assignments/{assignment_id}/revoke", data={"csrf_token": csrf},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    with unit_of_work(harness.factory) as session:
        row = session.get(m.Assignment, assignment_id)
        assert row.status == "revoked" and len(row.bookings) == 2
        assert session.scalar(select(func.count()).select_from(m.Tombstone)) == 1
        actions = [e["action"] for e in entries(session)]
    assert {"consent.record", "assignment.create", "case.tombstone"} <= set(actions)


def test_withdrawing_service_contact_revokes_the_assignment(app) -> None:
    harness, _, ledger, agreement, mine, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    rid = ledger.ids[mine.national_id]
    assert _consent(client, csrf, rid, agreement).status_code == 303
    assert _assign(client, csrf, rid, agreement).status_code == 303
    withdrawn = client.post(f"/console/residents/{rid}/consent", data={
        "csrf_token": csrf, "action": "withdraw", "basis": agreement,
        "scopes": ["service_contact"], "method": "phone", "notice_version": "2026.1"},
        follow_redirects=False)  # fmt: skip
    assert withdrawn.status_code == 303
    page = client.get(f"/console/residents/{rid}")
    assert "撤回同意" in page.text and "已撤销" in page.text


def test_a_cadre_reaches_nothing_of_another_communitys_resident(app) -> None:
    harness, _, ledger, agreement, _, other = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    rid = ledger.ids[other.national_id]
    nobody = "01900000-0000-7000-8000-000000000000"
    for path in (f"/console/residents/{rid}", f"/console/residents/{rid}/report"):
        assert client.get(path).status_code == 404
        assert client.get(path.replace(rid, nobody)).status_code == 404
    assert _reveal(client, csrf, rid).status_code == 404
    assert _consent(client, csrf, rid, agreement).status_code == 404
    assert _assign(client, csrf, rid, agreement).status_code == 404
    with unit_of_work(harness.factory) as session:
        assert session.scalar(select(func.count()).select_from(m.Reveal)) == 0
        assert session.scalar(select(func.count()).select_from(m.ConsentEvent)) == 0
        assert not entries(session, "case.reveal")


def test_guardian_consent_for_child_data_is_recorded_and_shown(app) -> None:
    """child_data needs the guardian's consent (PIPL Art. 31): without the box ticked the
    form names the field in Chinese and records nothing; with it the event keeps the
    guardian flag and the timeline says so."""
    harness, world, ledger, agreement, mine, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    rid = ledger.ids[mine.national_id]
    refused = _consent(client, csrf, rid, agreement, ("service_contact", "child_data"))
    assert refused.status_code == 422
    assert "监护人同意：婴幼儿信息须取得监护人同意，请确认" in refused.text
    with unit_of_work(harness.factory) as session:
        assert session.scalar(select(func.count()).select_from(m.ConsentEvent)) == 0
        assert not entries(session, "consent.record")
    # the boxes ticked on the refused form are still ticked
    assert re.search(r'id="c-scope-child_data" value="child_data" checked', refused.text)
    ok = _consent(client, csrf, rid, agreement, ("service_contact", "child_data"),
                  guardian="on")  # fmt: skip
    assert ok.status_code == 303
    with unit_of_work(harness.factory) as session:
        event = session.scalars(select(m.ConsentEvent)).one()
        recorded = entries(session, "consent.record")
    assert event.guardian and event.scopes == ["service_contact", "child_data"]
    assert event.recorded_by == world.ids["community_cadre"]
    assert len(recorded) == 1 and recorded[0]["outcome"] == {"result": "ok",
                                                              "reason": "consent.grant"}
    page = client.get(f"/console/residents/{rid}")
    timeline = page.text.split('id="consent"')[1].split("</table>")[0]
    assert "婴幼儿信息" in timeline and "· 监护人同意" in timeline
    # a consent without child data is not marked as the guardian's
    plain = _consent(client, csrf, ledger.ids[ledger.of(CADRE_COMMUNITY)[1].national_id],
                     agreement)  # fmt: skip
    assert plain.status_code == 303
    other = client.get(plain.headers["location"]).text.split('id="consent"')[1]
    assert "· 监护人同意" not in other.split("</table>")[0]


def test_the_contractors_service_records_show_on_the_resident_page(app) -> None:
    """What the contractor reports through /v1 appears on the page (service, time in Beijing,
    the note decrypted for the office), never the contractor's idempotency key or the case
    reference, with the resident's identifiers still masked; reading them is audited."""
    harness, _, ledger, _, mine, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    rid = ledger.ids[mine.national_id]
    with unit_of_work(harness.factory) as session:
        machine = session.scalars(select(m.Principal).where(m.Principal.name == "p-contractor"))
        contractor = session.get(m.Contractor, machine.one().contractor_id)
        agreement = f.agreement(session, contractor, "CY-2026-009").id
    assert _consent(client, csrf, rid, agreement).status_code == 303
    assert _assign(client, csrf, rid, agreement).status_code == 303
    before = client.get(f"/console/residents/{rid}")
    assert "服务机构报送的服务记录" not in before.text
    reference = harness.app.state.keyring.case_reference(agreement, rid)
    key = "visit-2026-0309-a"
    note = "血压正常，已讲解孕中期营养"
    sent = harness.client.post(
        f"/v1/cases/{reference}/service-records",
        json={"service": "mid_pregnancy", "delivered_at": "2026-03-01T10:30:00+08:00",
              "notes": note},
        headers={"Authorization": f"Bearer {harness.tokens['contractor']}",
                 "Idempotency-Key": key})  # fmt: skip
    assert sent.status_code == 201, sent.text
    with unit_of_work(harness.factory) as session:
        reads_before = len(entries(session, "service_record.read"))
    page = client.get(f"/console/residents/{rid}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    records = page.text.split("服务机构报送的服务记录")[1].split("</table>")[0]
    assert "孕中期指导" in records and "2026-03-01 10:30:00" in records and note in records
    assert key not in page.text and reference not in page.text
    assert mine.phone not in page.text and mine.national_id not in page.text
    assert "已完成 1/4 项服务" in page.text
    with unit_of_work(harness.factory) as session:
        reads = entries(session, "service_record.read")
    assert len(reads) == reads_before + 1 and note not in repr(reads)
    assert reads[-1]["agreement"] == agreement
