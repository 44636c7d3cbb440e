"""Small builders shared by the ledger tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from exchange.db.engine import unit_of_work
from exchange.ledger.idnumber import make_national_id
from exchange.ledger.importer import ensure_communities, import_ledger
from exchange.ledger.reader import open_source
from exchange.ledger.report import ImportReport
from exchange.ledger.synthetic import HEADER
from keys.keyring import Keyring

TODAY = date(2025, 6, 1)

BASE = {
    "姓名": "李秀英",
    "身份证号": make_national_id(date(1994, 3, 8), 123),
    "联系电话": "13912345678",
    "社区": "民城路社区",
    "小区": "春阳花园",
    "楼栋": "3号楼",
    "单元": "2单元",
    "户": "501",
    "孕产状态": "孕期",
    "预产期": "2025-09-15",
    "分娩日期": "",
    "孕次": "1",
    "高危因素": "",
    "婴儿出生日期": "",
    "婴儿性别": "",
    "婚姻状况": "已婚",
    "丈夫姓名": "王建国",
    "丈夫身份证号": make_national_id(date(1990, 1, 2), 77, female=False),
    "避孕措施": "上环",
    "流产史": "人流1次",
    "备注": "丈夫不愿配合随访",
}


def row(**changes: str) -> dict[str, str]:
    out = dict(BASE)
    out.update(changes)
    return out


def person(i: int) -> dict[str, str]:
    return row(
        姓名=["张丽娟", "王芳", "刘婷婷", "陈静", "杨雪梅", "赵敏"][i % 6] + "甲乙丙丁戊己"[i // 6],
        身份证号=make_national_id(date(1990, 1, 1 + i % 28), 10 + i),
        联系电话=f"1380013{i:04d}",
        小区=f"测试苑{i}期",
        户=f"{100 + i}",
    )


def to_csv(rows: Sequence[dict[str, str]], header: Sequence[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for r in rows:
        writer.writerow([r.get(h, "") for h in header])
    return out.getvalue()


def with_communities(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """The session factory of a database whose street office's communities are registered."""
    with unit_of_work(factory) as s:
        ensure_communities(s)
    return factory


def import_rows(factory: sessionmaker[Session], keyring: Keyring, directory: Path,
                rows: Sequence[dict[str, str]], **options: Any) -> ImportReport:  # fmt: skip
    """Write `rows` as a new CSV file in `directory` and import it in its own transaction."""
    path = directory / f"ledger-{len(list(directory.iterdir()))}.csv"
    path.write_text(to_csv(rows), encoding="utf-8-sig")
    with unit_of_work(factory) as s:
        return import_ledger(s, keyring, open_source(path), today=TODAY, **options)
