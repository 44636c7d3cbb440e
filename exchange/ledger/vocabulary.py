"""Closed vocabularies of the ledger: communities, stages, risk flags, sex.

Each maps what a cadre types to the code the broker stores. Risk-flag codes are snake_case
English so they survive every encoding; the Chinese terms are what the ledger uses.
"""

from __future__ import annotations

from typing import Final

DISTRICT: Final = "城阳区"
STREET: Final = "城阳街道"

# The eight communities of 城阳街道 in the 生命之初1000天 programme (helpers' DOMAIN).
CHENGYANG_COMMUNITIES: Final = (
    "民城路社区",
    "瑞阳路社区",
    "顺德居社区",
    "城阳村社区",
    "西城汇社区",
    "向阳社区",
    "后田社区",
    "古庙头社区",
)

STAGES: Final[dict[str, str]] = {
    "备孕": "preparing",
    "备孕期": "preparing",
    "孕期": "pregnant",
    "孕中": "pregnant",
    "怀孕": "pregnant",
    "妊娠期": "pregnant",
    "现孕": "pregnant",
    "产后": "postpartum",
    "已分娩": "postpartum",
    "产褥期": "postpartum",
    "preparing": "preparing",
    "pregnant": "pregnant",
    "postpartum": "postpartum",
}

RISK_FLAGS: Final[dict[str, str]] = {
    "高龄": "advanced_maternal_age",
    "高龄产妇": "advanced_maternal_age",
    "妊娠期高血压": "gestational_hypertension",
    "妊娠高血压": "gestational_hypertension",
    "妊娠期糖尿病": "gestational_diabetes",
    "妊娠糖尿病": "gestational_diabetes",
    "瘢痕子宫": "scarred_uterus",
    "疤痕子宫": "scarred_uterus",
    "多胎": "multiple_pregnancy",
    "双胎": "multiple_pregnancy",
    "前置胎盘": "placenta_praevia",
    "贫血": "anaemia",
    "甲状腺疾病": "thyroid_disorder",
    "产后抑郁": "postpartum_depression_risk",
}
RISK_FLAG_CODES: Final = frozenset(RISK_FLAGS.values())

SEXES: Final[dict[str, str]] = {"女": "F", "男": "M", "F": "F", "M": "M", "f": "F", "m": "M"}
