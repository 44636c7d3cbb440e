"""The demo scenario `exchange dev up` (`make run`) loads after the synthetic ledger, through
the same office flows the API uses (so it is audited and feeds the contractors):

- a public key per demo contractor; the private keys go to $EXCHANGE_HOME/contractor-keys/
  (mode 0600) so the curl and sync examples can open sealed fields;
- the 生命之初1000天 agreement with the first contractor (all three purposes, shipped policies)
  and a second agreement with contractor_b (home visits and online guidance);
- consent for most residents of the cadre's communities (sensitive scopes separately, child
  data by the guardian), assignments to both contractors (some to contractor_b only) with the
  four services that fit each one's stage and a first visit booked when it is due (none while
  preparing; mid-pregnancy guidance from week 14, late from week 28, confinement in the first
  six weeks after the birth: `first_visit`), and a few withdrawals, which reach the contractors
  as tombstones.

Idempotent: a second run finds the agreements, keys and consents and adds nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db import models as m
from exchange.identity import Acting, Identity
from exchange.services import agreements, assignments, consent, contractors, residents
from keys.contractor_keys import generate_keypair
from keys.keyring import Keyring
from policies import office_date, shipped_policy

AGREEMENT_A = "CY-1000-2026-A"
AGREEMENT_B = "CY-1000-2026-B"
NOTICE = "cy1000-notice-2026.1"
MAX_RESIDENTS = 40
# "6选4": the four services each resident picks, by where she is in the 1000 days
SERVICES_BY_STAGE = {
    "preparing": ("mid_pregnancy", "late_pregnancy", "confinement", "parenting"),
    "pregnant": ("mid_pregnancy", "late_pregnancy", "confinement", "postpartum_recovery"),
    "postpartum": ("confinement", "postpartum_recovery", "early_education", "parenting"),
}
PREGNANCY_DAYS = 280  # a due date is 40 weeks after the last period
MID_PREGNANCY_FROM_WEEK, LATE_PREGNANCY_FROM_WEEK = 14, 28
FIRST_MID_VISIT_WEEK = 16
CONFINEMENT_DAYS, RECOVERY_DAYS = 42, 180


def pregnancy_week(due: date, today: date) -> int:
    """Completed weeks of pregnancy on `today` for a due date (week 40 on the due date)."""
    return (PREGNANCY_DAYS - (due - today).days) // 7


def first_visit(
    stage: str, due: date | None, delivered: date | None, today: date, i: int
) -> assignments.BookingInput | None:
    """The home visit a cadre books first, fitting the stage: none while preparing; the
    mid-pregnancy visit from week 14 (booked for week 16 if she is earlier), the late one from
    week 28 and never past the due date; confinement in the first 42 days after the birth,
    recovery to six months, then early education or parenting. `i` spreads the visits over
    the coming week."""
    soon = today + timedelta(days=i % 7)
    if stage == "pregnant" and due is not None:
        week = pregnancy_week(due, today)
        if week < MID_PREGNANCY_FROM_WEEK:
            on = due - timedelta(days=PREGNANCY_DAYS - 7 * FIRST_MID_VISIT_WEEK)
            return assignments.BookingInput("mid_pregnancy", max(on, soon))
        if week < LATE_PREGNANCY_FROM_WEEK:
            late_from = due - timedelta(days=PREGNANCY_DAYS - 7 * LATE_PREGNANCY_FROM_WEEK)
            return assignments.BookingInput("mid_pregnancy",
                                            min(soon, late_from - timedelta(days=1)))
        return assignments.BookingInput("late_pregnancy",
                                        max(today, min(soon, due - timedelta(days=1))))
    if stage == "postpartum" and delivered is not None:
        age = (today - delivered).days
        if age <= CONFINEMENT_DAYS:
            return assignments.BookingInput("confinement", soon)
        if age <= RECOVERY_DAYS:
            return assignments.BookingInput("postpartum_recovery", soon)
        return assignments.BookingInput("early_education" if i % 2 else "parenting", soon)
    return None


def _identity(session: Session, name: str) -> Identity:
    row = session.scalars(select(m.Principal).where(m.Principal.name == name)).one()
    return Identity.from_row(row)


def key_path(home: Path, label: str) -> Path:
    return home / "contractor-keys" / f"{label}.key"


def _ensure_key(session: Session, acting: Acting, contractor: m.Contractor, path: Path) -> bool:
    active = session.scalar(select(m.ContractorKey.id).where(
        m.ContractorKey.contractor_id == contractor.id, m.ContractorKey.status == "active"))
    if active is not None and path.exists():
        return False
    private, public = generate_keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(private.to_text())
    contractors.register_key(session, acting, contractor.id, public.to_text())
    return True


def _agreement(
    session: Session, acting: Acting, contractor_id: str, reference: str, purposes: tuple[str, ...],
    today: date,
) -> m.Agreement:  # fmt: skip
    row = session.scalars(select(m.Agreement).where(m.Agreement.reference == reference)).first()
    if row is not None:
        return row
    row = agreements.create(session, acting, agreements.AgreementInput(
        contractor_id=contractor_id, reference=reference, valid_from=today - timedelta(days=60),
        valid_to=today + timedelta(days=305), retention_days=180,
        purposes={p: shipped_policy(p).id for p in purposes},
        sub_processors=("青岛政务云（数据中心托管）",),
    ))  # fmt: skip
    return agreements.activate(session, acting, row.id)


def _evidence(resident_id: str, what: str) -> str:
    # stands in for the SHA-256 of the scanned form; synthetic, per resident and event
    return hashlib.sha256(f"demo-consent-form/{resident_id}/{what}".encode()).hexdigest()


def _consent_and_assign(
    session: Session, keyring: Keyring, cadre: Acting, resident: m.Resident, i: int,
    a: m.Agreement, b: m.Agreement,
) -> tuple[int, int]:  # fmt: skip
    """Consent, assignments and (for a few) withdrawal of one resident: (assigned, withdrawn).
    The cadre opens her record first (audited) to book a visit that fits her stage."""
    episode = residents.get(session, keyring, cadre, resident.id).episode
    stage = str(episode.get("stage") or "pregnant")
    due, delivered = (date.fromisoformat(v) if v else None
                      for v in (episode.get("due_date"), episode.get("delivery_date")))  # fmt: skip
    booking = first_visit(stage, due, delivered, office_date(cadre.now), i)
    targets = [b] if i % 4 == 3 else ([a, b] if i % 4 == 0 else [a])
    assigned = withdrawn = 0
    for agreement in targets:
        def event(
            scopes: tuple[str, ...], *, separate: bool = False, guardian: bool = False,
            agreement_id: str = agreement.id,
        ) -> consent.ConsentInput:  # fmt: skip
            return consent.ConsentInput(
                scopes=scopes, method=("paper", "phone", "wechat")[i % 3], notice_version=NOTICE,
                evidence_sha256=_evidence(resident.id, f"{agreement_id}/{'+'.join(scopes)}"),
                agreement_id=agreement_id, separate=separate, guardian=guardian)  # fmt: skip

        consent.grant(session, keyring, cadre, resident.id, event(("service_contact",)))
        if i % 3 != 2:
            consent.grant(session, keyring, cadre, resident.id,
                          event(("pregnancy_health", "birth_health"), separate=True))
        if stage == "postpartum":
            consent.grant(session, keyring, cadre, resident.id,
                          event(("child_data",), guardian=True))  # fmt: skip
        services = SERVICES_BY_STAGE.get(stage, SERVICES_BY_STAGE["pregnant"])
        assignments.create(session, keyring, cadre, assignments.AssignmentInput(
            resident.id, agreement.contractor_id, agreement.id, services,
            () if booking is None else (booking,)))  # fmt: skip
        assigned += 1
        if i % 10 == 8:  # a few residents change their mind: withdrawal is immediate
            consent.withdraw(session, keyring, cadre, resident.id, event(("service_contact",)))
            withdrawn += 1
    return assigned, withdrawn


def load_scenario(
    session: Session,
    keyring: Keyring,
    *,
    home: Path,
    now: datetime,
    contractor_labels: dict[str, str],
    say: Callable[[str], None],
    admin_name: str = "demo-office-admin",
    cadre_name: str = "demo-cadre",
) -> None:
    """Load the scenario (see the module docstring). Never commits.

    `contractor_labels` maps a demo contractor's name to the label its key file is named by.
    """
    admin = Acting(_identity(session, admin_name), now)
    cadre = Acting(_identity(session, cadre_name), now)
    rows = {c.name: c for c in session.scalars(
        select(m.Contractor).where(m.Contractor.name.in_(contractor_labels)))}  # fmt: skip
    for name, label in contractor_labels.items():
        if _ensure_key(session, admin, rows[name], key_path(home, label)):
            say(f"demo: public key registered for {label}; private key in "
                f"{key_path(home, label)}")  # fmt: skip
    first, second = (rows[n] for n in contractor_labels)
    today = office_date(now)
    a = _agreement(session, admin, first.id, AGREEMENT_A,
                   ("home_visit", "online_guidance", "class_invitation"), today)  # fmt: skip
    b = _agreement(session, admin, second.id, AGREEMENT_B, ("home_visit", "online_guidance"),
                   today)  # fmt: skip
    if session.scalar(select(m.ConsentEvent.id).limit(1)) is not None:
        return  # consents and assignments were loaded by an earlier run
    residents = session.scalars(
        select(m.Resident).where(m.Resident.community_id.in_(cadre.identity.community_ids),
                                 m.Resident.erased_at.is_(None))
        .order_by(m.Resident.created_at, m.Resident.id).limit(MAX_RESIDENTS)
    ).all()  # fmt: skip
    assigned = withdrawn = 0
    for i, resident in enumerate(residents):
        if i % 10 == 9:
            continue  # no consent asked yet: never shared
        got, lost = _consent_and_assign(session, keyring, cadre, resident, i, a, b)
        assigned, withdrawn = assigned + got, withdrawn + lost
    session.flush()
    say(f"demo: agreements {AGREEMENT_A} and {AGREEMENT_B} active; {assigned} assignments, "
        f"{withdrawn} withdrawn (tombstoned) over {len(residents)} residents")  # fmt: skip
