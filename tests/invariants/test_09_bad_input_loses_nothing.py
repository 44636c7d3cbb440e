"""Invariant 9, bad input loses nothing.

- Schemathesis against /openapi.json, every operation, with each role's token and none:
  schema-valid and schema-violating requests never get a 5xx, schema-violating ones are
  refused with 4xx, and every response body matches the documented schema.
- Hypothesis fuzzing of ledger files: random bytes, GBK versus UTF-8 with a BOM, huge cells,
  cells beginning with = + - @ (formula injection): a clear error naming the row and field (or
  the file), nothing changed; and every CSV the broker writes neutralises formula cells.
- Oversized bodies (with and without Content-Length) and pages are refused or capped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
)
from sqlalchemy import text

from exchange.bootstrap import build_app, load_keyring
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.ledger.errors import LedgerError
from exchange.ledger.importer import import_ledger
from exchange.ledger.reader import open_source
from exchange.ledger.synthetic import HEADER, generate_rows
from exchange.settings import Settings
from tests.invariants.harness import Home, LiveServer, copy_home
from tests.world import Programme

ROLES = ["office_admin", "community_cadre", "contractor", "auditor", None]
EXAMPLES = 4
FORMULA_LEADS = ("=", "+", "-", "@")
TABLES = ("residents", "maternal_episodes", "children", "consent_events", "assignments",
          "resident_data_keys")  # fmt: skip


# -- Schemathesis -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_home(template_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Home:
    return copy_home(template_home, tmp_path_factory.mktemp("fuzz") / "home")


@pytest.fixture(scope="module")
def api_schema(fuzz_home: Home) -> Any:
    app = build_app(Settings(home=fuzz_home.path, database_url=fuzz_home.database_url))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_no_5xx_and_every_response_matches_the_schema(
    api_schema: Any, fuzz_home: Home, role: str | None
) -> None:
    headers = {"Authorization": f"Bearer {fuzz_home.tokens[role]}"} if role else {}
    failures: list[str] = []
    calls = 0
    for operation in _operations(api_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            current = [not_a_server_error, response_schema_conformance]
            if mode is GenerationMode.NEGATIVE:
                current.append(negative_data_rejection)

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                response = case.call(headers=headers)
                try:
                    case.validate_response(response, checks=current)  # noqa: B023
                except BaseException as exc:  # noqa: BLE001 - collected and reported below
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    failures.append(f"{operation.label} [{mode.value}] -> "  # noqa: B023
                                    f"{response.status_code}: {type(exc).__name__} {first}")

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to generate in this mode (e.g. no parameters to break)
    assert calls > 100
    assert failures == [], "\n".join(sorted(set(failures))[:30])


# -- ledger files ---------------------------------------------------------------------------


@pytest.fixture
def ledger_db(template_home: Home, tmp_path: Path) -> Iterator[tuple[Any, Any, Home]]:
    home = copy_home(template_home, tmp_path / "home")
    engine = make_engine(home.database_url)
    keyring = load_keyring(Settings(home=home.path, database_url=home.database_url))
    yield make_session_factory(engine), keyring, home
    engine.dispose()


def fingerprint(factory: Any) -> dict[str, str]:
    """A digest per resident table of all its rows: any change shows, and where."""
    out = {}
    with factory() as s:
        for table in TABLES:
            digest = hashlib.sha256()
            for row in s.execute(text(f"SELECT * FROM {table} ORDER BY 1")):  # noqa: S608
                digest.update(repr(tuple(row)).encode())
            out[table] = digest.hexdigest()[:16]
    return out


def try_import(factory: Any, keyring: Any, path: Path) -> tuple[Any, str | None]:
    """(report, None) or (None, the clear error message)."""
    try:
        with unit_of_work(factory) as s:
            return import_ledger(s, keyring, open_source(path), today=date.today()), None
    except LedgerError as exc:
        return None, str(exc)


def write_csv(path: Path, rows: list[tuple[str, ...]], encoding: str = "utf-8-sig",
              header: tuple[str, ...] = HEADER) -> Path:  # fmt: skip
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def fresh_rows(n: int, seed: int) -> list[tuple[str, ...]]:
    return list(generate_rows(n, seed, as_of=date.today()))


FUZZ = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))  # fmt: skip


def test_random_bytes_get_a_clear_error_and_change_nothing(ledger_db: Any, tmp_path: Path
                                                           ) -> None:  # fmt: skip
    factory, keyring, _ = ledger_db
    before = fingerprint(factory)

    @FUZZ
    @given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".xlsx"]))
    def run(data: bytes, suffix: str) -> None:
        path = tmp_path / f"fuzz{suffix}"
        path.write_bytes(data)
        report, error = try_import(factory, keyring, path)
        if error is not None:
            assert error.strip() and "Traceback" not in error
            assert path.name in error or "ledger" in error.lower() or "file" in error.lower()
        else:
            assert report.inserted == 0 and report.updated == 0
        assert fingerprint(factory) == before

    run()


def test_gbk_and_utf8_bom_read_alike_and_a_mixed_file_is_refused(ledger_db: Any, tmp_path: Path
                                                                ) -> None:  # fmt: skip
    factory, keyring, _ = ledger_db
    rows = fresh_rows(80, 1000)[:6]  # residents already imported: re-imports insert nothing
    reports = []
    for encoding in ("gbk", "utf-8-sig", "utf-8"):
        report, error = try_import(factory, keyring,
                                   write_csv(tmp_path / f"{encoding}.csv", rows, encoding))
        assert error is None, (encoding, error)
        assert report.ok and report.inserted == 0 and report.rows_read == 6, report.to_text()
        reports.append((report.rows_valid, report.inserted))
    assert len(set(reports)) == 1
    before = fingerprint(factory)  # (a re-import re-encrypts: fresh nonces)
    # a UTF-8 file with one GBK-encoded row: refused as a whole, nothing changes
    good = write_csv(tmp_path / "mixed.csv", rows[:3], "utf-8-sig").read_bytes()
    bad_row = ",".join(fresh_rows(3, 777)[0]).encode("gbk") + b"\r\n"
    (tmp_path / "mixed.csv").write_bytes(good + bad_row)
    report, error = try_import(factory, keyring, tmp_path / "mixed.csv")
    assert error is not None or not report.ok
    assert fingerprint(factory) == before


ROW_FIELDS = list(HEADER[:15])


@pytest.mark.slow
def test_hostile_cells_are_named_and_change_nothing(ledger_db: Any, tmp_path: Path) -> None:
    factory, keyring, _ = ledger_db
    base = fresh_rows(3, 4242)

    @FUZZ
    @given(
        column=st.sampled_from(range(15)),
        row=st.sampled_from(range(3)),
        cell=st.one_of(
            st.tuples(st.sampled_from(FORMULA_LEADS), st.text(max_size=30)).map("".join),
            st.text(min_size=5000, max_size=5001).map(lambda t: t * 20),  # ~100 000 chars
            st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
        ),
    )
    def run(column: int, row: int, cell: str) -> None:
        rows = [list(r) for r in base]
        rows[row][column] = cell
        path = write_csv(tmp_path / "hostile.csv", [tuple(r) for r in rows])
        before = fingerprint(factory)
        report, error = try_import(factory, keyring, path)
        if error is not None:
            assert "Traceback" not in error
            changed = False
        elif not report.ok:
            named = [e for e in report.errors if e.row == row + 2 or e.row == row + 1]
            assert named, f"no error names row {row + 2}: {report.to_text()}"
            assert all(e.field for e in report.errors)
            changed = False
        else:
            changed = True  # a valid (if odd) value: imported
        if not changed:
            assert fingerprint(factory) == before
            if report is not None:
                assert report.inserted == 0 and report.updated == 0
                assert_neutralised(report.errors_csv())
        if report is not None:
            assert cell not in report.to_text() or len(cell) < 3 or cell.strip() == ""

    run()


def assert_neutralised(written: str) -> None:
    for cells in csv.reader(io.StringIO(written)):
        for cell in cells:
            assert not cell.startswith((*FORMULA_LEADS, "\t", "\r")), cell


def test_every_csv_the_broker_writes_neutralises_formula_cells(tmp_path: Path) -> None:
    """The import error report and the synthetic ledger writer, fed formula-looking text."""
    from exchange.exports import safe_row
    from exchange.ledger.report import ImportReport, RowError

    @FUZZ
    @given(cells=st.lists(st.tuples(st.sampled_from(FORMULA_LEADS + ("\t", "")),
                                    st.text(max_size=20)).map("".join), min_size=5, max_size=5))
    def run(cells: list[str]) -> None:
        report = ImportReport(source="x.csv", partial=False)
        report.add_errors([RowError(2, cells[0], "required", cells[1])])
        assert_neutralised(report.errors_csv())
        out = io.StringIO()
        csv.writer(out).writerow(safe_row(cells))
        assert_neutralised(out.getvalue())

    run()


# -- oversized bodies and pages --------------------------------------------------------------


@pytest.mark.slow
def test_oversized_bodies_and_pages_are_refused_or_capped(shared: tuple[LiveServer, Programme]
                                                          ) -> None:  # fmt: skip
    server, world = shared
    cadre = {"Authorization": f"Bearer {server.home.tokens['community_cadre']}"}
    auditor = {"Authorization": f"Bearer {server.home.tokens['auditor']}"}
    side = world.side("contractor")
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    with server.client() as api:
        before = api.get("/v1/residents", params={"limit": 1}, headers=cadre).json()["total"]
        r = api.post("/v1/residents", headers={**cadre, "Content-Type": "application/json"},
                     content=huge)  # fmt: skip
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith("application/problem+json")

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must still hold
            for i in range(0, len(huge), 65536):
                yield huge[i : i + 65536]

        r = api.post("/v1/residents", headers={**cadre, "Content-Type": "application/json"},
                     content=chunks())  # fmt: skip
        assert r.status_code == 413, r.text
        assert api.get("/v1/residents", params={"limit": 1},
                       headers=cadre).json()["total"] == before  # fmt: skip

        page = api.get("/v1/cases", params={"purpose": "home_visit", "limit": 10**9},
                       headers=side.headers)  # fmt: skip
        assert page.status_code in (200, 422)
        if page.status_code == 200:
            assert len(page.json()["items"]) <= 200
        for path, params, headers in (
            ("/v1/residents", {"limit": 10**6}, cadre),
            ("/v1/audit/entries", {"limit": 10**6}, auditor),
            ("/v1/residents", {"offset": -1}, cadre),
            ("/v1/cases", {"purpose": "home_visit", "limit": 0}, side.headers),
            ("/v1/cases", {"purpose": "home_visit", "cursor": "x" * 5000}, side.headers),
        ):
            r = api.get(path, params=params, headers=headers)
            assert r.status_code == 422, (path, params, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
