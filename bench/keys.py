"""Per-record cost of the key work a pull does, against bare primitives measured in the same run.

A pull record: unwrap the resident's data key (cached after the first use), decrypt 4 at-rest
fields (from the stored column bytes, as disclosure/inputs.py does; other rows parse each value
into an EncryptedValue as the column type does), compute the case reference, and
seal 2 contact fields to the contractor, either one HPKE message per field (per-case) or under
one HPKE envelope per response page (per-response). Baselines: one reused `AESGCM` decrypt per
field with precomputed associated data, one HMAC-SHA-256 with a pre-keyed object, one reused
`AESGCM` encrypt per sealed field.

The key work of a ledger import, per resident: generate and wrap a data key (against one
CSPRNG read, one `AESGCM` object built and one `AESGCM` encrypt of the key), and encrypt its 11
fields to stored bytes with `encrypt_row_bytes` (against 11 `AESGCM` encrypts, each with a fresh
`os.urandom` nonce).

Run: .venv/bin/python bench/keys.py   (prints a markdown table; `main()` returns the rows)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# bench/ must not shadow the `keys` package when this file is run as a script.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from cryptography.hazmat.primitives import hashes, hmac  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from bench._rows import row as bench_row  # noqa: E402
from keys import (  # noqa: E402
    DataKey,
    EncryptedValue,
    FieldContext,
    Kem,
    Keyring,
    MemoryKeyProvider,
    ResponseSealer,
    Suite,
    WrappedKey,
    generate_keypair,
    seal_field,
)

RUNS = 7
RECORDS = 2000
SEAL_RECORDS = 200  # per-case HPKE is ~1000x slower; fewer records keep the run short
PAGE = 100  # records per response (one envelope per page)
COLUMNS = ("name", "phone", "address_building", "address_room")
# the 11 fields an import encrypts per resident, by table (exchange/ledger/prepare.py)
IMPORT_ROWS = (
    ("residents", {"name": "李秀英", "national_id": "110101199003077777", "phone": "13812345678",
                   "birth_date": "1990-03-07", "address_room": "301"}),
    ("maternal_episodes", {"due_date": "2026-12-01", "delivery_date": "2026-12-03",
                           "parity": "2", "risk_flags": "anemia,gdm"}),
    ("children", {"birth_date": "2026-12-03", "sex": "F"}),
)  # fmt: skip
IMPORT_AAD = b"a" * 80  # about the length of a field's associated data
SEALED = ("resident.name", "resident.phone")
AGREEMENT = "agr-2026-home-visit"


def _time(fn: Callable[[int], None], n: int) -> float:
    # CPU time of this process: other processes on the shared 2-vCPU box then disturb less
    start = time.process_time()
    fn(n)
    return n / (time.process_time() - start)


def _rate(fn: Callable[[int], None], n: int) -> list[float]:
    fn(n)  # warm every record's caches, so the first run measures what the others do
    return [_time(fn, n) for _ in range(RUNS)]


def _paired(
    base: Callable[[int], None], fn: Callable[[int], None], n: int
) -> tuple[list[float], list[float]]:
    """Candidate rates and per-run ratios, each run timing the baseline right before the
    candidate, so load from other processes on this noisy machine hits both alike."""
    # warm every record's caches (a "key cached" row's first run filled 1,950 keys' caches)
    base(n)
    fn(n)
    rates, ratios = [], []
    for _ in range(RUNS):
        base_rate = _time(base, n)
        rate = _time(fn, n)
        rates.append(rate)
        ratios.append(rate / base_rate)
    return rates, ratios


class Fixture:
    def __init__(self, suite: Suite = Suite.INTL) -> None:
        self.ring = Keyring(MemoryKeyProvider.generate(), suite)
        self.rows = []
        for i in range(RECORDS):
            rid = f"res-{i:06d}"
            key, wrapped = self.ring.new_data_key(rid)
            stored = [
                self.ring.encrypt_field(
                    key, f"值-{c}-{i:05d}", FieldContext("residents", c, rid)
                ).to_bytes()
                for c in COLUMNS
            ]
            self.rows.append((rid, wrapped, stored))
        # bare: the same ciphertexts, opened with one reused AESGCM and precomputed AAD
        self.bare_key = AESGCM(os.urandom(32))
        self.bare_rows = []
        self.bare_objects = []
        self.bare_own_rows: list[list[tuple[bytes, bytes, bytes]]] = []
        for i in range(RECORDS):
            items = []
            own = AESGCM(os.urandom(32))
            for c in COLUMNS:
                nonce, aad = os.urandom(12), f"residents|{c}|{i}".encode()
                items.append(
                    (nonce, self.bare_key.encrypt(nonce, f"值-{c}-{i:05d}".encode(), aad), aad)
                )
            self.bare_rows.append(items)
            self.bare_objects.append(own)
            self.bare_own_rows.append(
                [
                    (nonce, own.encrypt(nonce, f"值-{c}-{i:05d}".encode(), aad), aad)
                    for (nonce, _ct, aad), c in zip(items, COLUMNS, strict=True)
                ]
            )
        self.stored_keys = [wrapped.to_bytes() for _rid, wrapped, _stored in self.rows]
        self.import_keys = [DataKey.generate(suite) for _ in range(RECORDS)]
        self.hmac_key = hmac.HMAC(os.urandom(32), hashes.SHA256())
        self.parsed = [
            {c: EncryptedValue.from_bytes(raw) for c, raw in zip(COLUMNS, stored, strict=True)}
            for _rid, _w, stored in self.rows
        ]

    # -- bare primitives ------------------------------------------------------------------
    def bare_decrypt(self, n: int) -> None:
        aead = self.bare_key
        for items in self.bare_rows[:n]:
            for nonce, ct, aad in items:
                aead.decrypt(nonce, ct, aad)

    def bare_decrypt_per_resident(self, n: int) -> None:
        """The floor with per-resident keys: one AESGCM object per record, arguments ready."""
        for aead, items in zip(self.bare_objects[:n], self.bare_own_rows[:n], strict=True):
            for nonce, ct, aad in items:
                aead.decrypt(nonce, ct, aad)

    def bare_hmac(self, n: int) -> None:
        for rid, _w, _s in self.rows[:n]:
            mac = self.hmac_key.copy()
            mac.update(rid.encode())
            mac.finalize()

    def bare_record(self, n: int) -> None:
        """4 decrypts + 1 HMAC + 2 AES-GCM encryptions: the floor of a per-response pull."""
        aead = self.bare_key
        for (rid, _w, _s), items in zip(self.rows[:n], self.bare_rows[:n], strict=True):
            for nonce, ct, aad in items:
                aead.decrypt(nonce, ct, aad)
            mac = self.hmac_key.copy()
            mac.update(rid.encode())
            mac.finalize()
            for field in SEALED:
                aead.encrypt(os.urandom(12), b"13812345678", field.encode())

    def bare_new_key(self, n: int) -> None:
        """Per imported resident: 40 random bytes, an AESGCM object, the key encrypted."""
        kek = self.bare_key
        for _ in range(n):
            fresh = os.urandom(40)
            AESGCM(fresh[8:])
            kek.encrypt(os.urandom(12), fresh[8:], IMPORT_AAD)

    def bare_encrypt_fields(self, n: int) -> None:
        """Per imported resident: 11 AESGCM encrypts under its own key, fresh nonces."""
        for aead in self.bare_objects[:n]:
            encrypt = aead.encrypt
            for _table, texts in IMPORT_ROWS:
                for text in texts.values():
                    encrypt(os.urandom(12), text.encode(), IMPORT_AAD)

    # -- our path -------------------------------------------------------------------------
    def new_keys(self, n: int) -> None:
        """As the import does per resident (ledger/prepare.py): generate, wrap under a held root
        straight to the stored bytes."""
        wrap, root, suite = self.ring.wrap_bytes, self.ring.current_root(), self.ring.suite
        for rid, _w, _s in self.rows[:n]:
            wrap(DataKey.generate(suite), rid, root)

    def encrypt_fields(self, n: int) -> None:
        """As the import does per resident (ledger/prepare.py): one encrypt_row_bytes per
        table, 11 fields in all, straight to the stored bytes."""
        encrypt = self.ring.encrypt_row_bytes
        tables = [(table, tuple(texts), tuple(texts.values())) for table, texts in IMPORT_ROWS]
        for key, (rid, _w, _s) in zip(self.import_keys[:n], self.rows, strict=False):
            for table, columns, plaintexts in tables:
                encrypt(key, table, rid, columns, plaintexts)

    def decrypt_fields(self, n: int) -> None:
        """Per-field API: parse each stored value, build its context, decrypt."""
        ring = self.ring
        for rid, wrapped, stored in self.rows[:n]:
            key = ring.unwrap(wrapped, rid)
            for column, raw in zip(COLUMNS, stored, strict=True):
                ctx = FieldContext("residents", column, rid)
                ring.decrypt_field(key, EncryptedValue.from_bytes(raw), ctx)

    def decrypt_parsed_rows(self, n: int) -> None:
        """Row API on values the column type has already turned into EncryptedValue."""
        ring = self.ring
        for (rid, wrapped, _stored), values in zip(self.rows[:n], self.parsed[:n], strict=True):
            ring.decrypt_row(ring.unwrap(wrapped, rid), "residents", rid, values)

    def decrypt_rows(self, n: int, *, cold: bool = False) -> None:
        """Row API: parse each stored value (as the column type does), decrypt the row."""
        ring = self.ring
        if cold:
            ring.clear_cache()
        parse = EncryptedValue.from_bytes
        for rid, wrapped, stored in self.rows[:n]:
            # built as the services build it (a loop over the row's columns, disclosure/inputs.py);
            # a dict comprehension adds a function frame per row on CPython 3.11
            values = {}
            for column, raw in zip(COLUMNS, stored, strict=True):
                values[column] = parse(raw)
            ring.decrypt_row(ring.unwrap(wrapped, rid), "residents", rid, values)

    def decrypt_stored_rows(self, n: int) -> None:
        """What a pull does per record (disclosure/inputs.py): parse the stored wrapped key,
        find its unwrapped key in the cache, parse each stored value, decrypt the row."""
        ring = self.ring
        parse = EncryptedValue.from_bytes
        parse_wrapped = WrappedKey.from_bytes
        for (rid, _wrapped, stored), raw_wrapped in zip(
            self.rows[:n], self.stored_keys, strict=False
        ):
            values = {}
            for column, raw in zip(COLUMNS, stored, strict=True):
                values[column] = parse(raw)
            ring.decrypt_row(ring.unwrap(parse_wrapped(raw_wrapped), rid), "residents", rid,
                            values)

    def decrypt_stored(self, n: int) -> None:
        """What a pull does per record (disclosure/inputs.py): find the stored wrapped key's
        unwrapped key in the cache, decrypt the row's stored column bytes (no EncryptedValue)
        into {column: str}. The column plan is made once per page there, once here."""
        ring = self.ring
        unwrap_stored = ring.unwrap_stored
        decrypt = ring.decrypt_stored_row
        plan = ring.stored_columns("residents", COLUMNS)
        for (rid, _wrapped, stored), raw_wrapped in zip(
            self.rows[:n], self.stored_keys, strict=False
        ):
            decrypt(unwrap_stored(raw_wrapped, rid), plan, rid, stored)

    def pseudonyms(self, n: int) -> None:
        case_key = self.ring.case_key(AGREEMENT)
        from keys.pseudonyms import case_reference

        for rid, _w, _s in self.rows[:n]:
            case_reference(case_key, rid)

    def pseudonyms_api(self, n: int) -> None:
        ring = self.ring
        for rid, _w, _s in self.rows[:n]:
            ring.case_reference(AGREEMENT, rid)

    def pull_per_response(self, n: int, public: object) -> None:
        ring = self.ring
        sealer = None
        for index, (rid, wrapped, stored) in enumerate(self.rows[:n]):
            if index % PAGE == 0:
                sealer = ResponseSealer(public, AGREEMENT)  # type: ignore[arg-type]
            parsed = {
                c: EncryptedValue.from_bytes(raw) for c, raw in zip(COLUMNS, stored, strict=True)
            }
            values = list(ring.decrypt_row(ring.unwrap(wrapped, rid), "residents", rid,
                                           parsed).values())
            ref = ring.case_reference(AGREEMENT, rid)
            assert sealer is not None
            for field, value in zip(SEALED, values, strict=False):
                sealer.seal(ref, field, value)

    def pull_per_case(self, n: int, public: object) -> None:
        ring = self.ring
        for rid, wrapped, stored in self.rows[:n]:
            parsed = {
                c: EncryptedValue.from_bytes(raw) for c, raw in zip(COLUMNS, stored, strict=True)
            }
            values = list(ring.decrypt_row(ring.unwrap(wrapped, rid), "residents", rid,
                                           parsed).values())
            ref = ring.case_reference(AGREEMENT, rid)
            for field, value in zip(SEALED, values, strict=False):
                seal_field(public, AGREEMENT, ref, field, value)  # type: ignore[arg-type]


def _row(
    name: str, values: list[float], baseline: str | None = None, ratios: list[float] | None = None
) -> dict[str, Any]:
    return bench_row(name, "records/s", values, baseline, ratios)


PULL_PATH = "at-rest decrypt, 4 fields, pull path: stored bytes -> decrypt_stored_row (key cached)"
BARE_DEC = "bare: 4 x AESGCM decrypt (reused object)"
BARE_OWN = "bare: 4 x AESGCM decrypt (one object per resident)"
BARE_MAC = "bare: 1 x HMAC-SHA-256 (pre-keyed)"
BARE_REC = "bare: 4 decrypt + 1 HMAC + 2 AESGCM encrypt"
BARE_KEY = "bare: 40 random bytes + AESGCM object + 1 AESGCM encrypt"
BARE_ENC = "bare: 11 x AESGCM encrypt, fresh nonce (one object per resident)"


def main() -> list[dict[str, object]]:
    fx = Fixture()
    gm = Fixture(Suite.GM)
    own_rates, own_ratios = _paired(fx.bare_decrypt, fx.bare_decrypt_per_resident, RECORDS)
    rows = [
        _row(BARE_DEC, _rate(fx.bare_decrypt, RECORDS)),
        _row(BARE_OWN, own_rates, BARE_DEC, own_ratios),
        _row(BARE_MAC, _rate(fx.bare_hmac, RECORDS)),
        _row(BARE_REC, _rate(fx.bare_record, RECORDS)),
    ]
    cases: list[tuple[str, Callable[[int], None], Callable[[int], None], str, int]] = [
        (
            "at-rest decrypt, 4 fields, decrypt_row (key cached, values parsed)",
            fx.decrypt_parsed_rows,
            fx.bare_decrypt,
            BARE_DEC,
            RECORDS,
        ),
        (
            "at-rest decrypt, 4 fields, parse + decrypt_row (key cached)",
            fx.decrypt_rows,
            fx.bare_decrypt,
            BARE_DEC,
            RECORDS,
        ),
        (
            PULL_PATH,
            fx.decrypt_stored,
            fx.bare_decrypt,
            BARE_DEC,
            RECORDS,
        ),
        (
            "at-rest decrypt, 4 fields, before: WrappedKey.from_bytes + parse + decrypt_row",
            fx.decrypt_stored_rows,
            fx.bare_decrypt,
            BARE_DEC,
            RECORDS,
        ),
        (
            "at-rest decrypt, 4 fields, decrypt_field each (data key cached)",
            fx.decrypt_fields,
            fx.bare_decrypt,
            BARE_DEC,
            RECORDS,
        ),
        (
            "at-rest decrypt, 4 fields, decrypt_row + unwrap (cold cache)",
            lambda n: fx.decrypt_rows(n, cold=True),
            fx.bare_decrypt,
            BARE_DEC,
            RECORDS,
        ),
        (
            "at-rest decrypt, 4 fields, gm suite (SM4-GCM)",
            gm.decrypt_rows,
            fx.bare_decrypt,
            BARE_DEC,
            RECORDS,
        ),
        (
            "case reference (Keyring.case_reference)",
            fx.pseudonyms_api,
            fx.bare_hmac,
            BARE_MAC,
            RECORDS,
        ),
        ("case reference (held agreement key)", fx.pseudonyms, fx.bare_hmac, BARE_MAC, RECORDS),
    ]
    for kem in Kem:
        _, public = generate_keypair(kem)
        cases.append(
            (
                f"full pull record, per-response seal ({kem.value})",
                lambda n, p=public: fx.pull_per_response(n, p),
                fx.bare_record,
                BARE_REC,
                RECORDS,
            )
        )
        cases.append(
            (
                f"full pull record, per-case HPKE seal ({kem.value})",
                lambda n, p=public: fx.pull_per_case(n, p),
                fx.bare_record,
                BARE_REC,
                SEAL_RECORDS,
            )
        )
    # the at-rest rows again, against the per-resident-key floor
    cases.append(
        (
            PULL_PATH,
            fx.decrypt_stored,
            fx.bare_decrypt_per_resident,
            BARE_OWN,
            RECORDS,
        )
    )
    cases.append(
        (
            "at-rest decrypt, 4 fields, decrypt_row (key cached, values parsed)",
            fx.decrypt_parsed_rows,
            fx.bare_decrypt_per_resident,
            BARE_OWN,
            RECORDS,
        )
    )
    cases.append(
        (
            "at-rest decrypt, 4 fields, parse + decrypt_row (key cached)",
            fx.decrypt_rows,
            fx.bare_decrypt_per_resident,
            BARE_OWN,
            RECORDS,
        )
    )
    cases.append(
        (
            "import: DataKey.generate + Keyring.wrap_bytes",
            fx.new_keys,
            fx.bare_new_key,
            BARE_KEY,
            RECORDS,
        )
    )
    cases.append(
        (
            "import: encrypt_row_bytes x 3 tables, 11 fields",
            fx.encrypt_fields,
            fx.bare_encrypt_fields,
            BARE_ENC,
            RECORDS,
        )
    )
    for name, fn, base, base_name, n in cases:
        rates, ratios = _paired(base, fn, n)
        rows.append(_row(name, rates, base_name, ratios))
    return rows


def _table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| figure | unit | min | median | max | baseline | ratio |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        ratio = r["ratio"]
        lines.append(
            f"| {r['name']} | {r['unit']} | {r['min']:,.0f} | {r['median']:,.0f} | {r['max']:,.0f}"
            f" | {r['baseline_name'] or ''} | {'' if ratio is None else f'{ratio:.2f}'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(main()))
