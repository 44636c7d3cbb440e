"""A wholly synthetic ledger in the cadres' format, deterministic for (seed, as_of).

Names come from Faker's zh_CN provider; ID numbers are built for 城阳区 (370214) with correct
GB 11643 check digits and unique within a ledger; mobile numbers are 1[3-9] + 9 digits;
addresses are 城阳区/城阳街道/<community>/<compound>/<building>/<unit>/<room>, communities of
different sizes (one small: its statistics cells are 1-4), pregnancies from about week 6 (when
they are registered) to term, children under two. The sensitive
columns a real ledger carries (婚姻状况, 丈夫姓名, 避孕措施, 流产史, 备注 …) are filled too, so
the import's refusal of them can be seen. `bad_rows` injects invalid rows of several kinds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

from exchange.exports import write_csv, write_xlsx
from exchange.ledger.idnumber import corrupt_check_digit, make_national_id
from exchange.ledger.vocabulary import CHENGYANG_COMMUNITIES

HEADER: tuple[str, ...] = (
    "姓名", "身份证号", "联系电话", "社区", "小区", "楼栋", "单元", "户", "孕产状态", "预产期",
    "分娩日期", "孕次", "高危因素", "婴儿出生日期", "婴儿性别",
    "婚姻状况", "丈夫姓名", "丈夫身份证号", "避孕措施", "流产史", "备注",
)  # fmt: skip

COMPOUNDS = (
    "春阳花园", "和悦家园", "锦绣华庭", "书香苑", "青盛小区", "海润花园", "正阳嘉苑",
    "丽景新城", "翠湖雅居", "明阳里", "康城小区", "悦澜湾",
)  # fmt: skip
_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "147", "150", "151",
    "152", "155", "156", "157", "158", "159", "166", "176", "177", "178", "180", "181",
    "182", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip
_MARRIAGE = ("已婚", "初婚", "再婚")
_CONTRACEPTION = ("无", "避孕套", "上环", "药具", "皮埋")
_TERMINATIONS = ("无", "无", "无", "人流1次", "药流1次", "人流2次")
_NOTES = (
    "已上门随访", "需关注产后情绪", "电话随访，无异常", "丈夫在外地务工", "-已建档-",
    "=待核实", "孕早期反应重，已转介",
)  # fmt: skip
# Communities differ in size; 古庙头社区 is small, so its statistics have cells of 1-4 residents
# and the office sees them suppressed (`<5`) in `make run`.
COMMUNITY_WEIGHTS = (18, 16, 14, 14, 12, 11, 11, 3)
REGISTERED_BY_DAYS = 239  # a pregnancy is on the ledger from about week 6 (due in <= 238 days)
BAD_KINDS = (
    "check_digit",
    "phone",
    "impossible_date",
    "unknown_community",
    "id_birth_date",
    "duplicate_id",
    "missing_name",
    "stage",
)


class _Generator:
    def __init__(self, seed: int, as_of: date) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.as_of = as_of
        self.used_ids: set[tuple[date, int, bool]] = set()

    def national_id(self, age: int, *, female: bool) -> str:
        while True:
            born = self.as_of - timedelta(days=age * 365 + self.rng.randrange(365))
            sequence = self.rng.randrange(500)
            if (born, sequence, female) not in self.used_ids:
                self.used_ids.add((born, sequence, female))
                return make_national_id(born, sequence, female=female)

    def phone(self) -> str:
        return self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def row(self) -> list[str]:
        rng = self.rng
        age = rng.choice((22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 38, 41))
        stage = rng.choices(("备孕", "孕期", "产后"), weights=(15, 45, 40))[0]
        due = delivered = child_born = child_sex = ""
        flags: list[str] = ["高龄"] if age >= 35 else []
        if stage == "孕期":
            # registered (建档) from about week 6: due in 0..238 days, never at week 0
            due = (self.as_of + timedelta(days=rng.randrange(0, REGISTERED_BY_DAYS))).isoformat()
            if rng.random() < 0.1:
                flags.append(rng.choice(("妊娠期糖尿病", "妊娠期高血压", "贫血")))
        elif stage == "产后":
            born = self.as_of - timedelta(days=rng.randrange(3, 700))
            delivered = child_born = born.isoformat()
            child_sex = rng.choice(("男", "女"))
        floor = rng.randrange(1, 19)
        return [
            self.fake.name_female(),
            self.national_id(age, female=True),
            self.phone(),
            rng.choices(CHENGYANG_COMMUNITIES, weights=COMMUNITY_WEIGHTS)[0],
            rng.choice(COMPOUNDS),
            f"{rng.randrange(1, 31)}号楼",
            f"{rng.randrange(1, 5)}单元",
            f"{floor}{rng.randrange(1, 5):02d}",
            stage,
            due,
            delivered,
            str(rng.choice((1, 1, 2, 2, 3))),
            "、".join(flags),
            child_born,
            child_sex,
            rng.choice(_MARRIAGE),
            self.fake.name_male(),
            self.national_id(age + rng.randrange(0, 6), female=False),
            rng.choice(_CONTRACEPTION),
            rng.choice(_TERMINATIONS),
            rng.choice(_NOTES),
        ]

    def spoil(self, row: list[str], kind: str, previous_id: str | None) -> None:
        """Make one row invalid in the given way (each kind breaks exactly one rule)."""
        if kind == "check_digit":
            row[1] = corrupt_check_digit(row[1])
        elif kind == "phone":
            row[2] = "12" + row[2][2:]
        elif kind == "impossible_date":
            row[8], row[9] = "孕期", f"{self.as_of.year + 1}-02-30"
        elif kind == "unknown_community":
            row[3] = "东方红社区"
        elif kind == "id_birth_date":
            body = row[1][:10] + "13" + row[1][12:17]
            row[1] = body + "0"
        elif kind == "duplicate_id" and previous_id is not None:
            row[1] = previous_id
        elif kind == "missing_name":
            row[0] = ""
        else:  # "stage", and "duplicate_id" on the very first row
            row[8] = "待定"


def generate_rows(
    residents: int, seed: int, *, bad_rows: int = 0, as_of: date
) -> Iterator[tuple[str, ...]]:
    """The data rows (no header), streamed. Same arguments, same rows."""
    if residents < 0 or not 0 <= bad_rows <= residents:
        raise ValueError("need 0 <= bad_rows <= residents")
    gen = _Generator(seed, as_of)
    spoiled = sorted(random.Random(seed ^ 0x5EED).sample(range(residents), bad_rows))
    kinds = {position: BAD_KINDS[i % len(BAD_KINDS)] for i, position in enumerate(spoiled)}
    previous_id: str | None = None
    for position in range(residents):
        row = gen.row()
        kind = kinds.get(position)
        if kind is not None:
            gen.spoil(row, kind, previous_id)
        else:
            previous_id = row[1]
        yield tuple(row)


def write_ledger(
    path: Path,
    residents: int,
    seed: int,
    *,
    bad_rows: int = 0,
    as_of: date,
    encoding: str = "utf-8-sig",
) -> int:
    """Write the ledger as .csv (UTF-8 with BOM by default, as Excel likes) or .xlsx."""
    rows = generate_rows(residents, seed, bad_rows=bad_rows, as_of=as_of)
    if path.suffix.lower() == ".xlsx":
        # strings stay text cells, so ID numbers keep all 18 digits
        return write_xlsx(path, HEADER, rows, sheet="台账")
    return write_csv(path, HEADER, rows, encoding=encoding)
