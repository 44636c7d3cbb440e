"""The single source of truth for what a resident record may hold and what may leave it.

Every source field the engine knows is listed here with its value kind, its category, the
consent scope that covers it and whether it is never-share. `exchange/` imports this module
to decide what to import, what to decrypt and what to hand the engine; policy documents are
validated against it.

Derived fields (`derived.*`) are computed by the engine from the record and the injected
clock in a fixed step owned by this catalogue (see `policies.derivation`). Two of them read a
never-share date internally (`resident.birth_date`, `child.birth_date`); their kinds admit
only banding transforms, so the raw date can never reach a view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Purpose(StrEnum):
    HOME_VISIT = "home_visit"
    ONLINE_GUIDANCE = "online_guidance"
    CLASS_INVITATION = "class_invitation"


class ConsentScope(StrEnum):
    SERVICE_CONTACT = "service_contact"
    PREGNANCY_HEALTH = "pregnancy_health"  # sensitive: separate consent, PIPL Art. 29
    BIRTH_HEALTH = "birth_health"  # sensitive: separate consent
    CHILD_DATA = "child_data"  # a minor's data: guardian consent, PIPL Art. 31


SENSITIVE_SCOPES: frozenset[ConsentScope] = frozenset(
    {ConsentScope.PREGNANCY_HEALTH, ConsentScope.BIRTH_HEALTH, ConsentScope.CHILD_DATA}
)


class Service(StrEnum):
    """The six programme services, in the order the programme lists them."""

    MID_PREGNANCY = "mid_pregnancy"  # 孕中期指导
    LATE_PREGNANCY = "late_pregnancy"  # 孕晚期指导
    CONFINEMENT = "confinement"  # 月子指导
    EARLY_EDUCATION = "early_education"  # 早教指导
    POSTPARTUM_RECOVERY = "postpartum_recovery"  # 产后修复指导
    PARENTING = "parenting"  # 育儿指导


SERVICE_ORDER: Mapping[str, int] = MappingProxyType({s.value: i for i, s in enumerate(Service)})


class Stage(StrEnum):
    PREPARING = "preparing"
    PREGNANT = "pregnant"
    POSTPARTUM = "postpartum"


class LegalBasis(StrEnum):
    ENTRUSTED_PROCESSING = "entrusted_processing"  # PIPL Art. 21, the 信息保密协议


class Kind(StrEnum):
    """What a source value is; transforms declare which kinds they accept."""

    CASE_REF = "case_ref"
    NAME = "name"
    PHONE = "phone"
    ADDRESS = "address"  # the composite `address` source
    ADDRESS_PART = "address_part"  # one part; only usable through the composite
    DATE = "date"
    MONTH = "month"  # "YYYY-MM"
    STAGE = "stage"
    COUNT = "count"
    FLAGS = "flags"
    SEX = "sex"
    WEEKS = "weeks"
    AGE_YEARS = "age_years"  # exact age: only leaves as a band
    AGE_MONTHS = "age_months"  # exact infant age: only leaves as a band
    SERVICES = "services"
    FORBIDDEN = "forbidden"  # never-share: no transform accepts it


class Category(StrEnum):
    PSEUDONYM = "pseudonym"
    IDENTITY = "identity"
    CONTACT = "contact"
    ADDRESS = "address"
    PREGNANCY = "pregnancy"  # sensitive health information
    BIRTH = "birth"  # sensitive health information
    CHILD = "child"  # a minor's data
    PROGRAMME = "programme"
    LEDGER_PRIVATE = "ledger_private"  # never imported at all


@dataclass(frozen=True, slots=True)
class SourceField:
    name: str
    kind: Kind
    category: Category
    scope: ConsentScope | None  # None: covered by the agreement itself (the pseudonym)
    never_share: bool = False
    importable: bool = True  # exchange/ may store it and put it in a ResidentRecord
    derived: bool = False
    supplied: bool = False  # not from the ledger: handed in by exchange/ (pseudonym, services)

    @property
    def sensitive(self) -> bool:
        return self.scope in SENSITIVE_SCOPES


_C = ConsentScope
_K = Kind
_G = Category

ADDRESS_PARTS: tuple[str, ...] = (
    "address.district",
    "address.street",
    "address.community",
    "address.compound",
    "address.building",
    "address.unit",
    "address.room",
)

_FIELDS: tuple[SourceField, ...] = (
    SourceField("case.reference", _K.CASE_REF, _G.PSEUDONYM, None, supplied=True),
    SourceField(
        "assignment.services", _K.SERVICES, _G.PROGRAMME, _C.SERVICE_CONTACT, supplied=True
    ),
    SourceField("resident.name", _K.NAME, _G.CONTACT, _C.SERVICE_CONTACT),
    SourceField("resident.national_id", _K.FORBIDDEN, _G.IDENTITY, None, never_share=True),
    SourceField("resident.birth_date", _K.FORBIDDEN, _G.IDENTITY, None, never_share=True),
    SourceField("resident.phone", _K.PHONE, _G.CONTACT, _C.SERVICE_CONTACT),
    *(SourceField(p, _K.ADDRESS_PART, _G.ADDRESS, _C.SERVICE_CONTACT) for p in ADDRESS_PARTS),
    SourceField("address", _K.ADDRESS, _G.ADDRESS, _C.SERVICE_CONTACT, importable=False),
    SourceField("episode.stage", _K.STAGE, _G.PREGNANCY, _C.PREGNANCY_HEALTH),
    SourceField("episode.due_date", _K.DATE, _G.PREGNANCY, _C.PREGNANCY_HEALTH),
    SourceField("episode.delivery_date", _K.DATE, _G.BIRTH, _C.BIRTH_HEALTH),
    SourceField("episode.parity", _K.COUNT, _G.PREGNANCY, _C.PREGNANCY_HEALTH),
    SourceField("episode.risk_flags", _K.FLAGS, _G.PREGNANCY, _C.PREGNANCY_HEALTH),
    SourceField("child.birth_date", _K.FORBIDDEN, _G.CHILD, None, never_share=True),
    SourceField("child.sex", _K.SEX, _G.CHILD, _C.CHILD_DATA),
    *(
        SourceField(n, _K.FORBIDDEN, _G.LEDGER_PRIVATE, None, never_share=True, importable=False)
        for n in (
            "ledger.marriage",
            "ledger.husband",
            "ledger.contraception",
            "ledger.terminations",
            "ledger.cadre_notes",
        )
    ),
    # Derived: computed by policies.derivation; the scope is that of the data it reveals.
    SourceField(
        "derived.resident_age_band",
        _K.AGE_YEARS,
        _G.PREGNANCY,
        _C.PREGNANCY_HEALTH,
        importable=False,
        derived=True,
    ),
    SourceField(
        "derived.gestation_weeks",
        _K.WEEKS,
        _G.PREGNANCY,
        _C.PREGNANCY_HEALTH,
        importable=False,
        derived=True,
    ),
    SourceField(
        "derived.delivery_month",
        _K.MONTH,
        _G.BIRTH,
        _C.BIRTH_HEALTH,
        importable=False,
        derived=True,
    ),
    SourceField(
        "derived.infant_age_months_band",
        _K.AGE_MONTHS,
        _G.CHILD,
        _C.CHILD_DATA,
        importable=False,
        derived=True,
    ),
)

SOURCE_FIELDS: Mapping[str, SourceField] = MappingProxyType({f.name: f for f in _FIELDS})

NEVER_SHARE: frozenset[str] = frozenset(f.name for f in _FIELDS if f.never_share)
"""Refused in any policy, whatever the transform."""

NOT_IMPORTED: frozenset[str] = frozenset(
    f.name for f in _FIELDS if f.never_share and not f.importable
)
"""Never stored at all (the import report says so)."""

RECORD_FIELDS: frozenset[str] = frozenset(
    f.name for f in _FIELDS if f.importable and not f.supplied
)
"""The keys a ResidentRecord may carry (decrypted ledger values)."""

DERIVED: frozenset[str] = frozenset(f.name for f in _FIELDS if f.derived)


def scope_of(field: str) -> ConsentScope | None:
    """The consent scope covering a source field (KeyError for unknown names)."""
    return SOURCE_FIELDS[field].scope


def fields_in_scope(scope: ConsentScope) -> frozenset[str]:
    """Every source field a scope covers (for consent notices and withdrawal)."""
    return frozenset(f.name for f in _FIELDS if f.scope is scope)
