"""Fixed synthetic residents and terms for the policy tests (no real person's data)."""

from __future__ import annotations

import datetime as dt

from policies import (
    AgreementTerms,
    AssignmentTerms,
    Booking,
    ConsentState,
    ResidentRecord,
)

NOW = dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Qingdao
TODAY = dt.date(2025, 3, 1)

SHIPPED_PURPOSES = {
    "home_visit": "cy1000.home_visit",
    "online_guidance": "cy1000.online_guidance",
    "class_invitation": "cy1000.class_invitation",
}

ADDRESS = {
    "address.district": "城阳区",
    "address.street": "城阳街道",
    "address.community": "民城路社区",
    "address.compound": "春阳花园",
    "address.building": "3号楼",
    "address.unit": "2单元",
    "address.room": "501",
}

# 26 weeks pregnant, 35 years old, advanced maternal age.
PREGNANT = ResidentRecord(
    {
        "resident.name": "李秀英",
        "resident.national_id": "370214198912150026",
        "resident.birth_date": dt.date(1989, 12, 15),
        "resident.phone": "13812345678",
        **ADDRESS,
        "episode.stage": "pregnant",
        "episode.due_date": dt.date(2025, 6, 1),
        "episode.parity": 2,
        "episode.risk_flags": ("advanced_maternal_age",),
    },
    case_reference="c1_Zk3vQ9xTbA",
)

# Delivered on 2024-11-20; the baby is 3 months old.
POSTPARTUM = ResidentRecord(
    {
        "resident.name": "欧阳娜娜",
        "resident.national_id": "370214199405061229",
        "resident.birth_date": dt.date(1994, 5, 6),
        "resident.phone": "15966001234",
        "address.district": "城阳区",
        "address.street": "城阳街道",
        "address.community": "瑞阳路社区",
        "address.compound": "瑞阳佳苑",
        "address.building": "12号楼",
        "address.unit": "1单元",
        "address.room": "302",
        "episode.stage": "postpartum",
        "episode.due_date": dt.date(2024, 11, 25),
        "episode.delivery_date": dt.date(2024, 11, 20),
        "episode.parity": 1,
        "episode.risk_flags": (),
        "child.birth_date": dt.date(2024, 11, 20),
        "child.sex": "F",
    },
    case_reference="c1_Pq8wRt2YuI",
)

ALL_CONSENT = ConsentState(
    {
        "service_contact": "ev-contact",
        "pregnancy_health": "ev-pregnancy",
        "birth_health": "ev-birth",
        "child_data": "ev-child",
    }
)

AGREEMENT = AgreementTerms(
    id="ag-2025-001",
    status="active",  # type: ignore[arg-type]
    valid_from=dt.date(2025, 1, 1),
    valid_to=dt.date(2025, 12, 31),
    purposes=SHIPPED_PURPOSES,
)

PREGNANCY_ASSIGNMENT = AssignmentTerms(
    id="as-1",
    agreement_id="ag-2025-001",
    status="active",  # type: ignore[arg-type]
    services=("mid_pregnancy", "late_pregnancy", "confinement", "parenting"),  # type: ignore[arg-type]
    bookings=(Booking("mid_pregnancy", dt.date(2025, 3, 4)),),  # type: ignore[arg-type]
)

POSTPARTUM_ASSIGNMENT = AssignmentTerms(
    id="as-2",
    agreement_id="ag-2025-001",
    status="active",  # type: ignore[arg-type]
    services=("confinement", "early_education", "postpartum_recovery", "parenting"),  # type: ignore[arg-type]
    bookings=(Booking("parenting", dt.date(2025, 4, 20)),),  # type: ignore[arg-type]
)
