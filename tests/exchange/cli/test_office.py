"""CLI: `exchange office` (consent, assignments, requests) and `exchange policy preview`, acting
as demo principals on a prepared demo home (SQLite)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audit.store import tables as audit_tables
from exchange.cli import app
from exchange.cli.dev import prepare
from exchange.db import models as m
from exchange.db.engine import make_engine, make_session_factory
from exchange.demo import AGREEMENT_A
from exchange.identity import Acting, Identity
from exchange.services import residents
from exchange.settings import Settings, get_settings

ADMIN, CADRE, AUDITOR = "demo-office-admin", "demo-cadre", "demo-auditor"
FOUR = ["mid_pregnancy", "late_pregnancy", "confinement", "postpartum_recovery"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("template") / "home"
    prepare(Settings(home=home), lambda _line: None)
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)
    target = tmp_path / "home"
    shutil.copytree(template, target)
    monkeypatch.setenv("EXCHANGE_HOME", str(target))
    get_settings.cache_clear()
    yield target
    get_settings.cache_clear()


@pytest.fixture
def db(home: Path) -> Iterator[Session]:
    engine = make_engine(Settings(home=home).database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def run(db: Session, *args: str) -> tuple[int, str, str]:
    db.rollback()  # end the test's read transaction: SQLite would report the CLI's write locked
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _agreement(db: Session) -> m.Agreement:
    return db.scalars(select(m.Agreement).where(m.Agreement.reference == AGREEMENT_A)).one()


def _unconsented_resident(db: Session) -> str:
    """A resident in the cadre's scope with no consent event yet (the demo skips some)."""
    has_consent = select(m.ConsentEvent.resident_id)
    cadre = db.scalars(select(m.Principal).where(m.Principal.name == CADRE)).one()
    scope = [c.id for c in cadre.communities]
    rid = db.scalar(
        select(m.Resident.id).where(m.Resident.id.not_in(has_consent),
                                    m.Resident.community_id.in_(scope),
                                    m.Resident.erased_at.is_(None))
        .order_by(m.Resident.created_at, m.Resident.id).limit(1)
    )  # fmt: skip
    assert rid is not None
    return rid


def _active(db: Session, agreement_id: str) -> m.Assignment:
    row = db.scalars(
        select(m.Assignment).where(m.Assignment.agreement_id == agreement_id,
                                   m.Assignment.status == "active")
        .order_by(m.Assignment.created_at, m.Assignment.id).limit(1)
    ).first()  # fmt: skip
    assert row is not None
    return row


def _entries(db: Session, action: str | None = None) -> int:
    if action is None:
        return int(db.scalar(select(func.count()).select_from(audit_tables.entries)) or 0)
    stored = db.scalars(select(audit_tables.entries.c.entry))
    actions = [json.loads(bytes(e))["action"] for e in stored]
    return actions.count(action)


def _entry_rows(db: Session, action: str) -> list[dict]:
    stored = (json.loads(bytes(e)) for e in db.scalars(select(audit_tables.entries.c.entry)))
    return [e for e in stored if e["action"] == action]


def _personal_name(db: Session, home: Path, resident_id: str) -> str:
    from exchange.bootstrap import load_keyring

    keyring = load_keyring(Settings(home=home))
    row = db.scalars(select(m.Principal).where(m.Principal.name == ADMIN)).one()
    view = residents.get(db, keyring, Acting(Identity.from_row(row), datetime.now(UTC)),
                         resident_id)  # fmt: skip
    db.rollback()  # the test's own read is not kept
    assert view.personal is not None
    return str(view.personal["name"])


def test_consent_assign_revoke_cycle_is_attributed_and_audited(
    home: Path, db: Session, tmp_path: Path
) -> None:
    rid, agreement = _unconsented_resident(db), _agreement(db)
    base = ["--contractor", agreement.contractor_id, "--agreement", agreement.id]
    services = [a for s in FOUR for a in ("--service", s)]

    code, _, err = run(db, "office", "assign", rid, *base, *services, "--as", CADRE)
    assert code == 1 and err.startswith("error: ") and "service_contact" in err
    assert err.count("\n") == 1

    evidence = tmp_path / "form.pdf"
    evidence.write_bytes(b"%PDF signed consent form")
    code, out, err = run(db, "office", "consent", "grant", rid, "--scope", "service_contact",
                         "--method", "paper", "--notice-version", "v2026.1",
                         "--evidence", str(evidence), "--agreement", agreement.id,
                         "--as", CADRE)  # fmt: skip
    assert code == 0, err
    assert "granted service_contact" in out

    code, out, err = run(db, "office", "assign", rid, *base, *services, "--as", CADRE)
    assert code == 0, err
    assignment_id = out.split()[1]

    db.expire_all()
    cadre = db.scalars(select(m.Principal).where(m.Principal.name == CADRE)).one()
    event = db.scalars(select(m.ConsentEvent).where(m.ConsentEvent.resident_id == rid)).one()
    assert event.evidence_sha256 == hashlib.sha256(evidence.read_bytes()).hexdigest()
    assert event.recorded_by == cadre.id and event.method == "paper"
    row = db.get(m.Assignment, assignment_id)
    assert row is not None and row.created_by == cadre.id and row.status == "active"
    assert sorted(row.services) == sorted(FOUR)

    code, out, err = run(db, "office", "revoke", assignment_id, "--as", ADMIN)
    assert code == 0, err
    code, _, err = run(db, "office", "revoke", assignment_id, "--as", ADMIN)
    assert code == 1 and "already revoked" in err
    db.expire_all()
    assert db.get(m.Assignment, assignment_id).status == "revoked"  # type: ignore[union-attr]


def test_withdrawal_revokes_and_the_report_lists_the_deletion(home: Path, db: Session) -> None:
    agreement = _agreement(db)
    assignment = _active(db, agreement.id)
    rid, aid = assignment.resident_id, assignment.id
    before = _entries(db, "resident.disclosure_report")

    code, out, err = run(
        db,
        "office",
        "consent",
        "withdraw",
        rid,
        "--scope",
        "service_contact",
        "--agreement",
        agreement.id,
        "--method",
        "phone",
        "--as",
        CADRE,
    )
    assert code == 0, err
    assert "withdrew service_contact" in out
    db.expire_all()
    assert db.get(m.Assignment, aid).status == "revoked"  # type: ignore[union-attr]

    code, out, err = run(db, "office", "disclosures", rid, "--as", CADRE)
    assert code == 0, err
    assert "deletion #" in out and "case.tombstone" in out and "consent_withdrawn" in out

    code, out, err = run(db, "office", "disclosures", rid, "--json", "--as", ADMIN)
    assert code == 0, err
    report = json.loads(out)
    assert report["resident_id"] == rid
    assert any(d["reason"] == "consent_withdrawn" for d in report["deletions"])
    assert _personal_name(db, home, rid) not in out
    db.expire_all()
    assert _entries(db, "resident.disclosure_report") == before + 2


def test_erase_needs_yes_then_shreds_once(home: Path, db: Session) -> None:
    rid = _active(db, _agreement(db).id).resident_id
    held = len(set(db.scalars(select(m.Assignment.contractor_id).where(
        m.Assignment.resident_id == rid))))  # fmt: skip
    assert held >= 1
    code, _, err = run(db, "office", "erase", rid, "--as", ADMIN)
    assert code == 1 and "--yes" in err
    assert db.get(m.Resident, rid).erased_at is None  # type: ignore[union-attr]

    code, out, err = run(db, "office", "erase", rid, "--yes", "--as", ADMIN)
    assert code == 0, err
    assert "data key destroyed" in out and f"{held} contractors told to delete" in out
    db.expire_all()
    row = db.get(m.Resident, rid)
    assert row is not None and row.erased_at is not None and row.name is None
    assert db.get(m.ResidentDataKey, rid) is None

    code, _, err = run(db, "office", "erase", rid, "--yes", "--as", ADMIN)
    assert code == 1 and "already erased" in err


def test_refusals_are_one_line_and_change_nothing(home: Path, db: Session, tmp_path: Path) -> None:
    rid = _unconsented_resident(db)
    agreement = _agreement(db)
    entries = _entries(db)
    grant = ["office", "consent", "grant", rid, "--scope", "service_contact", "--method",
             "paper", "--notice-version", "v1", "--agreement", agreement.id]  # fmt: skip
    cases = [
        ([*grant, "--evidence", str(tmp_path / "missing.pdf"), "--as", CADRE], "missing.pdf"),
        ([*grant, "--evidence", str(tmp_path), "--as", CADRE], "must be a file"),
        ([*grant, "--evidence", __file__, "--as", AUDITOR], "auditor"),
        ([*grant, "--evidence", __file__, "--as", "nobody"],
         "names no active office principal; choose one of: demo-cadre (community_cadre), "
         "demo-office-admin (office_admin)"),
        (["office", "revoke", "no-such-id", "--as", ADMIN], "no such assignment"),
        (["office", "disclosures", "no-such-id", "--as", ADMIN], "no such resident"),
        (["office", "consent", "grant", rid, "--scope", "pregnancy_health", "--method", "paper",
          "--notice-version", "v1", "--agreement", agreement.id, "--evidence", __file__,
          "--as", CADRE], "separate"),
    ]  # fmt: skip
    for args, expected in cases:
        code, out, err = run(db, *args)
        assert code == 1, args
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert expected in err, err
        assert "Traceback" not in out + err
    db.expire_all()
    assert _entries(db) == entries
    assert db.scalar(select(m.ConsentEvent.id).where(m.ConsentEvent.resident_id == rid)) is None


def _booked_soon(db: Session, agreement_id: str) -> m.Assignment:
    """An active case with a visit booked this week: its phone and address are shared (sealed)
    under the home-visit policy, whatever the demo's order of residents."""
    today = datetime.now(UTC).date()
    row = db.scalars(
        select(m.Assignment).join(m.Booking, m.Booking.assignment_id == m.Assignment.id)
        .where(m.Assignment.agreement_id == agreement_id, m.Assignment.status == "active",
               m.Booking.scheduled_on.between(today, today + timedelta(days=7)))
        .order_by(m.Assignment.created_at, m.Assignment.id).limit(1)
    ).first()  # fmt: skip
    assert row is not None, "the demo books some visits within the week"
    return row


def test_policy_preview_shows_sealed_and_withheld_and_is_audited(home: Path, db: Session) -> None:
    agreement = _agreement(db)
    rid = _booked_soon(db, agreement.id).resident_id
    before = _entries(db, "policy.preview")

    code, out, err = run(db, "policy", "preview", "--resident", rid, "--agreement", agreement.id,
                         "--purpose", "home_visit", "--as", CADRE)  # fmt: skip
    assert code == 0, err
    assert out.startswith("purpose: home_visit\npolicy:  ")
    assert "«sealed»" in out, out
    assert "withheld:" in out
    db.expire_all()
    assert _entries(db, "policy.preview") == before + 1

    # without --as: the only office_admin acts
    code, out, err = run(db, "policy", "preview", "--resident", rid, "--agreement", agreement.id,
                         "--purpose", "home_visit")  # fmt: skip
    assert code == 0, err

    code, _, err = run(db, "policy", "preview", "--resident", rid, "--agreement", agreement.id,
                       "--purpose", "astrology", "--as", CADRE)  # fmt: skip
    assert code == 1 and "purpose" in err
    code, _, err = run(db, "policy", "preview", "--resident", rid, "--agreement", "nope",
                       "--purpose", "home_visit", "--as", AUDITOR)  # fmt: skip
    assert code == 1 and "auditor" in err


def _contractor_pulls(db: Session, home: Path, contractor_id: str) -> None:
    """The contractor's feed sync, as the API runs it (audited disclosures)."""
    from exchange.bootstrap import load_keyring
    from exchange.services import feed
    from exchange.services.auditing import SqlAuditSink
    from policies import shipped_policies

    principal = db.scalars(
        select(m.Principal).where(
            m.Principal.role == "contractor", m.Principal.contractor_id == contractor_id
        )
    ).one()
    acting = Acting(Identity.from_row(principal), datetime.now(UTC))
    feed.pull(db, load_keyring(Settings(home=home)), SqlAuditSink(), acting, contractor_id,
              "home_visit", None, 200, shipped_policies())  # fmt: skip
    db.commit()


def test_disclosures_table_names_recipient_and_fields_never_values(home: Path, db: Session) -> None:
    agreement = _agreement(db)
    rid = _active(db, agreement.id).resident_id
    _contractor_pulls(db, home, agreement.contractor_id)

    code, out, err = run(db, "office", "disclosures", rid, "--as", CADRE)
    assert code == 0, err
    header, first = out.splitlines()[:2]
    assert header.split() == ["#", "time", "recipient", "agreement", "purpose", "fields"]
    assert AGREEMENT_A in first and "home_visit" in first and "display_name" in first
    contractor = db.get(m.Contractor, agreement.contractor_id)
    assert contractor is not None and contractor.name in first
    assert _personal_name(db, home, rid) not in out
    # the display name the contractor received (surname + title) is not shown either
    assert "女士" not in out


def test_demo_visits_fit_each_residents_stage(home: Path, db: Session) -> None:
    from exchange.bootstrap import load_keyring
    from exchange.demo import SERVICES_BY_STAGE, pregnancy_week

    keyring = load_keyring(Settings(home=home))
    admin = db.scalars(select(m.Principal).where(m.Principal.name == ADMIN)).one()
    acting = Acting(Identity.from_row(admin), datetime.now(UTC))
    checked = 0
    for assignment in db.scalars(select(m.Assignment)).all():
        episode = residents.get(db, keyring, acting, assignment.resident_id).episode
        stage = episode["stage"]
        assert tuple(assignment.services) == SERVICES_BY_STAGE[stage]
        for booking in assignment.bookings:
            checked += 1
            if booking.service_code in ("mid_pregnancy", "late_pregnancy"):
                week = pregnancy_week(date.fromisoformat(episode["due_date"]), booking.scheduled_on)
                assert (14 <= week < 28) if booking.service_code == "mid_pregnancy" else week >= 28
            else:
                assert stage == "postpartum", (stage, booking.service_code)
        if stage == "preparing":
            assert not assignment.bookings
    db.rollback()
    assert checked > 10


def test_policy_publish_and_move_from_the_command_line(
    home: Path, db: Session, tmp_path: Path
) -> None:
    from policies.shipped import SHIPPED_DIR

    shipped = (SHIPPED_DIR / "home_visit.toml").read_text(encoding="utf-8")
    code, out, err = run(db, "policy", "list")
    assert code == 0 and out.count("\tshipped\t") == 3 and AGREEMENT_A in out, err

    v2 = tmp_path / "home_visit_v2.toml"  # the full phone without waiting for a visit: wider
    v2.write_text(shipped.replace("version = 1", "version = 2", 1)
                  .replace("when = { visit_booked_within_days = 7 }\n", "", 1))  # fmt: skip
    entries = _entries(db, "policy.publish")
    code, out, err = run(db, "policy", "publish", str(v2))
    assert code == 3 and "+ phone: condition visit_booked_within_days" in out, out + err
    assert f"on v1, until moved: {AGREEMENT_A} (home_visit)" in out
    assert "refused" in err and "--yes" in err
    db.expire_all()
    assert _entries(db, "policy.publish") == entries  # nothing written

    code, out, err = run(db, "policy", "publish", str(v2), "--yes", "--as", CADRE)
    assert code == 1 and "may not publish" in err
    code, out, err = run(db, "policy", "publish", str(v2), "--yes")
    assert code == 0 and "published cy1000.home_visit@2" in out, out + err
    code, out, _ = run(db, "policy", "publish", str(v2))
    assert code == 0 and "already published" in out

    code, out, err = run(db, "policy", "move", AGREEMENT_A, "--purpose", "home_visit")
    assert code == 3 and "cy1000.home_visit@1#" in out and "-> cy1000.home_visit@2#" in out
    code, out, err = run(db, "policy", "move", AGREEMENT_A, "--purpose", "home_visit", "--yes")
    assert code == 0 and f"moved {AGREEMENT_A} home_visit to cy1000.home_visit@2" in out, err
    db.expire_all()
    assert _entries(db, "agreement.policy_move") == 1

    sha = next(line for line in run(db, "policy", "list")[1].splitlines()
               if line.startswith("cy1000.home_visit@2")).split("sha256:")[1].split("\t")[0]
    code, out, _ = run(db, "policy", "show", sha)
    assert code == 0 and out == v2.read_text(encoding="utf-8")
    code, _, err = run(db, "policy", "show", "0" * 64)
    assert code == 1 and err == "error: no published policy has that hash\n"


def test_a_brand_new_policy_id_is_published_listed_served_and_moved_to(
    home: Path, db: Session, tmp_path: Path
) -> None:
    """Not a new version: a policy under an id nothing published yet (issue 19's "or a new
    policy"). The CLI publishes it; `policy list` and GET /v1/policies show it, with its hash,
    on no agreement; an agreement's purpose moves to it."""
    from fastapi.testclient import TestClient

    from exchange.api.app import create_app
    from exchange.bootstrap import load_keyring
    from exchange.services.tokens import issue_token
    from policies.document import parse_policy
    from policies.shipped import SHIPPED_DIR

    new_id = "cy1000.home_visit_evening"
    text = (SHIPPED_DIR / "home_visit.toml").read_text(encoding="utf-8").replace(
        'id = "cy1000.home_visit"', f'id = "{new_id}"', 1).replace(
        'title = "生命之初1000天 home visit"', 'title = "生命之初1000天 evening home visit"', 1)
    assert f'id = "{new_id}"' in text
    path = tmp_path / "home_visit_evening.toml"
    path.write_text(text, encoding="utf-8")
    sha = parse_policy(text).identity.sha256  # the digest `policy check` prints
    code, out, _ = run(db, "policy", "list")
    assert new_id not in out

    before = _entries(db, "policy.publish")
    code, out, err = run(db, "policy", "publish", str(path))  # everything in it is new
    assert code == 3 and "a new policy:" in out and "+ phone: newly disclosed" in out, out + err
    db.expire_all()
    assert _entries(db, "policy.publish") == before  # nothing written
    code, out, err = run(db, "policy", "publish", str(path), "--yes")
    assert code == 0 and f"published {new_id}@1" in out, out + err
    db.expire_all()
    published = [e for e in _entry_rows(db, "policy.publish") if new_id in json.dumps(e)]
    assert len(published) == 1, _entry_rows(db, "policy.publish")[-1]
    assert published[0]["policy"] == {"id": new_id, "version": "1", "digest": sha}
    assert published[0]["actor"]["role"] == "office_admin"

    code, out, err = run(db, "policy", "list")
    line = next(x for x in out.splitlines() if x.startswith(f"{new_id}@1"))
    assert f"sha256:{sha}" in line and "home_visit" in line and "shipped" not in line, line
    assert AGREEMENT_A not in line  # published, applied to nothing yet

    settings = Settings(home=home)
    with db.begin():
        auditor = db.scalars(select(m.Principal).where(m.Principal.name == AUDITOR)).one()
        token = issue_token(auditor, now=datetime.now(UTC), ttl=timedelta(hours=1))
    engine = make_engine(settings.database_url)
    try:
        api = TestClient(create_app(settings, session_factory=make_session_factory(engine),
                                    keyring=load_keyring(settings)))  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        listing = api.get("/v1/policies", headers=auth)
        assert listing.status_code == 200, listing.text
        served = [p for p in listing.json()["items"] if p["id"] == new_id]
        assert [(p["version"], p["purpose"], p["sha256"], p["agreements"]) for p in served] == [
            (1, "home_visit", sha, [])]
        document = api.get(f"/v1/policies/{sha}", headers=auth)
        assert document.status_code == 200 and document.json()["document"] == text

        code, out, err = run(db, "policy", "move", AGREEMENT_A, "--purpose", "home_visit",
                             "--to", f"{new_id}@1", "--yes")  # fmt: skip
        assert code == 0 and f"moved {AGREEMENT_A} home_visit to {new_id}@1" in out, out + err
        served = [p for p in api.get("/v1/policies", headers=auth).json()["items"]
                  if p["id"] == new_id]  # fmt: skip
        assert served[0]["agreements"] == [{"reference": AGREEMENT_A, "purpose": "home_visit"}]
    finally:
        engine.dispose()
