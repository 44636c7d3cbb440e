"""Our pseudonymise-and-encrypt path against presidio-anonymizer's, on the same synthetic records.

Per record: one pseudonym and two encrypted fields (phone, address detail).

- ours: `Keyring.case_reference(agreement, resident_id)` (HMAC-SHA-256 under a per-agreement
  key) and `Keyring.encrypt_field(data_key, value, FieldContext(...))` (AES-256-GCM with the
  table, column and row bound as associated data), over `MemoryKeyProvider.generate()`.
- presidio engine: one `AnonymizerEngine().anonymize()` per record over the text
  "national_id|phone|address" with three `RecognizerResult`s: `hash` (salted SHA-256, fixed
  salt so the pseudonym is stable) on the ID, `encrypt` (AES-CBC, random IV) on the others.
- presidio operators: the same `Hash` and `Encrypt` operators called directly per field,
  without the engine's span bookkeeping (the fairer comparison of the primitives' wrappers).

The pseudonym inputs differ by design: ours keys on the internal resident id, presidio hashes
the national ID (what it would see in text). One data key serves all records on both sides
(our import makes one per resident; that cost is in bench/import.py). Timed in CPU time of
this process; each run times the baseline right before the candidate, ratio = ours / presidio
(> 1 means ours is faster).

Run: .venv/bin/python bench/peer.py   (prints a markdown table; `main()` returns the rows)
Env: BENCH_QUICK=1 halves the record count.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

# bench/ must not shadow the `keys` package when this file is run as a script.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from presidio_anonymizer import AnonymizerEngine  # noqa: E402
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult  # noqa: E402
from presidio_anonymizer.operators import Encrypt, Hash  # noqa: E402

from bench._rows import row as bench_row  # noqa: E402
from exchange.ledger.synthetic import generate_rows  # noqa: E402
from keys import FieldContext, Keyring, MemoryKeyProvider  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = 5
RECORDS = 2000 if QUICK else 4000
AGREEMENT = "agr-2026-home-visit"
Record = tuple[str, str, str, str, str]  # resident id, name, national id, phone, address


def records(n: int) -> list[Record]:
    out = []
    for i, row in enumerate(generate_rows(n, seed=7, as_of=date(2026, 1, 1))):
        address = "/".join(row[3:8])  # community / compound / building / unit / room
        out.append((f"res-{i:06d}", row[0], row[1], row[2], address))
    return out


class Ours:
    def __init__(self) -> None:
        self.ring = Keyring(MemoryKeyProvider.generate())
        self.data_key, _wrapped = self.ring.new_data_key("resident-1")

    def __call__(self, batch: list[Record]) -> None:
        ring, key = self.ring, self.data_key
        for rid, _name, _nid, phone, address in batch:
            ring.case_reference(AGREEMENT, rid)
            ring.encrypt_field(key, phone, FieldContext("residents", "phone", rid))
            ring.encrypt_field(key, address, FieldContext("residents", "address", rid))


class PresidioEngine:
    def __init__(self) -> None:
        self.engine = AnonymizerEngine()
        self.operators = {
            "CN_ID": OperatorConfig("hash", {"hash_type": "sha256", "salt": os.urandom(32)}),
            "PHONE_NUMBER": OperatorConfig("encrypt", {"key": os.urandom(32)}),
            "LOCATION": OperatorConfig("encrypt", {"key": os.urandom(32)}),
        }

    def __call__(self, batch: list[Record]) -> None:
        for _rid, _name, nid, phone, address in batch:
            text = f"{nid}|{phone}|{address}"
            a = len(nid)
            b = a + 1 + len(phone)
            spans = [
                RecognizerResult("CN_ID", 0, a, 1.0),
                RecognizerResult("PHONE_NUMBER", a + 1, b, 1.0),
                RecognizerResult("LOCATION", b + 1, len(text), 1.0),
            ]
            self.engine.anonymize(text=text, analyzer_results=spans, operators=self.operators)


class PresidioOperators:
    def __init__(self) -> None:
        self.hash, self.encrypt = Hash(), Encrypt()
        self.hash_params = {"hash_type": "sha256", "salt": os.urandom(32)}
        self.key_params = {"key": os.urandom(32)}
        self.hash.validate(self.hash_params)
        self.encrypt.validate(self.key_params)

    def __call__(self, batch: list[Record]) -> None:
        h, e, hp, kp = self.hash.operate, self.encrypt.operate, self.hash_params, self.key_params
        for _rid, _name, nid, phone, address in batch:
            h(nid, hp)
            e(phone, kp)
            e(address, kp)


def _rate(fn: Callable[[list[Record]], None], batch: list[Record]) -> float:
    start = time.process_time()
    fn(batch)
    return len(batch) / (time.process_time() - start)


def _paired(
    base: Callable[[list[Record]], None], fn: Callable[[list[Record]], None], batch: list[Record]
) -> tuple[list[float], list[float], list[float]]:
    base(batch[:50])
    fn(batch[:50])
    base_rates, rates, ratios = [], [], []
    for _ in range(RUNS):
        b = _rate(base, batch)
        r = _rate(fn, batch)
        base_rates.append(b)
        rates.append(r)
        ratios.append(r / b)
    return base_rates, rates, ratios


def _row(
    name: str, values: list[float], baseline: str | None = None, ratios: list[float] | None = None
) -> dict[str, Any]:
    return bench_row(name, "records/s", values, baseline, ratios)


ENGINE = "presidio AnonymizerEngine (hash + 2 x encrypt)"
OPERATORS = "presidio operators direct (Hash + 2 x Encrypt)"
OURS = "ours: case_reference + 2 x encrypt_field"


def main() -> list[dict[str, Any]]:
    batch = records(RECORDS)
    ours, engine, operators = Ours(), PresidioEngine(), PresidioOperators()
    engine_rates, ours_vs_engine, r_engine = _paired(engine, ours, batch)
    op_rates, ours_vs_ops, r_ops = _paired(operators, ours, batch)
    return [
        _row(f"{ENGINE}, {RECORDS} records", engine_rates),
        _row(f"{OPERATORS}, {RECORDS} records", op_rates),
        _row(f"{OURS} vs engine", ours_vs_engine, ENGINE, r_engine),
        _row(f"{OURS} vs operators", ours_vs_ops, OPERATORS, r_ops),
    ]


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | unit | min | median | max | baseline | ratio |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        ratio = r["ratio"]
        lines.append(
            f"| {r['name']} | {r['unit']} | {r['min']:,.0f} | {r['median']:,.0f} | "
            f"{r['max']:,.0f} | {r['baseline_name'] or ''} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(main()))
