"""A release as the office reads it: Chinese labels with English beside, and as a workbook.

The same released table the API answers in JSON, laid out for people: the cells, then one
合计 (total) block per dimension, then the grand total. A suppressed count is `<5` when the
cell itself is small (primary) and `*` when it is hidden to protect a small one (secondary),
and a note under the table says so (数据已做小数抑制处理). Text cells are neutralised against
formula injection like every workbook the broker writes.
"""

from __future__ import annotations

from typing import Final, Literal

from typing_extensions import TypedDict

from exchange.db.models.codes import SERVICES, STAGES
from exchange.exports import FormattedSheet
from exchange.services.statistics import Release
from exchange.services.statistics_queries import NO_DUE_MONTH
from policies.statistics import Entry, Flag

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

DIMENSIONS: Final = {
    "community": "社区 community",
    "stage": "孕产状态 stage",
    "due_month": "预产月 due month",
    "service": "服务项目 service",
    "month": "月份 month",
    "contractor": "服务机构 contractor",
    "status": "确认状态 status",
}
CATEGORIES: Final[dict[str, str]] = {
    **dict(zip(STAGES, ("备孕", "孕期", "产后"), strict=True)),
    **dict(zip(SERVICES, ("孕中期指导", "孕晚期指导", "月子指导", "早教指导", "产后修复指导",
                          "育儿指导"), strict=True)),  # fmt: skip
    "acknowledged": "已确认删除",
    "outstanding": "待确认删除",
    NO_DUE_MONTH: "无预产期",
}
MEASURE_LABELS: Final = {"residents": "人数 residents", "events": "人次 visits/bookings"}
TOTAL_LABEL: Final = "合计 total"


def label(value: str) -> str:
    """A category as the office reads it: 孕期 pregnant; a community or month as it is."""
    zh = CATEGORIES.get(value)
    return f"{zh} {value}" if zh else value


def shown(entry: Entry, threshold: int) -> str | int:
    """The count, `<5` for a small cell, `*` for a cell hidden to protect one."""
    if entry.count is not None:
        return entry.count
    return f"<{threshold}" if entry.flag is Flag.PRIMARY else "*"


def note(release: Release) -> tuple[str, str]:
    t = release.threshold
    if release.request.exact:
        zh = (f"精确数据，仅供结算等用途（事由：{release.request.reason}）；"
              f"标记的单元格对外发布时将隐去（小于{t}）。")  # fmt: skip
        en = (f"Exact figures (reason: {release.request.reason}); flagged cells are hidden "
              f"in every other release.")  # fmt: skip
        return zh, en
    zh = (f"数据已做小数抑制处理：“<{t}”表示1至{t - 1}人；“*”为保护小数单元格而隐去的数字；"
          "0表示没有。")  # fmt: skip
    en = (f"Small numbers suppressed: <{t} means 1 to {t - 1} residents; * hides a number "
          "so that a small one cannot be worked out; 0 means none.")  # fmt: skip
    if release.withheld:
        zh += "本表无法逐格保护，已整体隐去。"
        en += " This table could not be protected cell by cell and is withheld whole."
    return zh, en


def rows(release: Release) -> list[list[str | int]]:
    """Header, cells, one total block per dimension, grand total."""
    v, t = release.view, release.threshold
    header: list[str | int] = [DIMENSIONS.get(d, d) for d in v.by]
    header.append(MEASURE_LABELS[release.request.measure])
    out: list[list[str | int]] = [header]
    for e in v.cells:
        out.append([*(label(value) for _, value in e.key), shown(e, t)])
    if len(v.by) > 1:
        for dim, margin in v.margins.items():
            for e in margin:
                line: list[str | int] = [TOTAL_LABEL] * len(v.by)
                line[v.by.index(dim)] = label(e.key[0][1])
                out.append([*line, shown(e, t)])
    out.append([*([TOTAL_LABEL] * len(v.by)), shown(v.total, t)])
    return out


def workbook(release: Release) -> bytes:
    sheet = FormattedSheet(release.table)
    zh, en = note(release)
    sheet.bold(sheet.append([f"{release.title}  {release.table}"]))
    sheet.append([f"期间 period: {release.request.period or '全部 all'}"])
    lines = rows(release)
    start = sheet.append(lines[0])
    for line in lines[1:]:
        sheet.append(line)
    sheet.bold(start)
    last_col = len(release.view.by) + 1
    sheet.comment(start, last_col, f"{zh}\n{en}")
    sheet.align_right(last_col, start + 1)
    sheet.append([])
    sheet.append([f"注：{zh}"])
    sheet.append([f"Note: {en}"])
    sheet.append([f"规则 rule: {release.rule.name}"])
    sheet.widths((22, 22, 22, 22, 12))
    return sheet.to_bytes()


def rule_text(release: Release) -> str:
    if release.request.exact:
        return f"exact;reason={release.request.reason};{release.rule.name}"
    return release.rule.name


FlagName = Literal["primary", "secondary"]


class StatisticsTotal(TypedDict):
    count: int | None  # None: suppressed
    flag: FlagName | None


class StatisticsCell(StatisticsTotal):
    key: dict[str, str]  # dimension -> category


class StatisticsDocument(TypedDict):
    """The API's answer (issue 16): a suppressed count is null, its flag says why."""

    table: str
    by: list[str]
    threshold: int
    rule: str
    cells: list[StatisticsCell]
    margins: dict[str, list[StatisticsCell]]
    total: StatisticsTotal


def _flag(entry: Entry) -> FlagName | None:
    return None if entry.flag is None else entry.flag.value


def _entry(entry: Entry) -> StatisticsCell:
    return {"key": dict(entry.key), "count": entry.count, "flag": _flag(entry)}


def document(release: Release) -> StatisticsDocument:
    """The API's JSON answer, exactly: table, by, threshold, rule, cells, margins, total."""
    v = release.view
    return {
        "table": release.table,
        "by": list(v.by),
        "threshold": release.threshold,
        "rule": rule_text(release),
        "cells": [_entry(e) for e in v.cells],
        "margins": {dim: [_entry(e) for e in margin] for dim, margin in v.margins.items()},
        "total": {"count": v.total.count, "flag": _flag(v.total)},
    }
