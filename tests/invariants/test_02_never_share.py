"""Invariant 2, never-share fields.

No policy naming a never-share field loads (the `exchange policy check` an admin runs names the
field and line); ledger columns no policy could use are not imported and the import report
says so; and nothing a contractor can open, sealed fields included, carries an ID number, an
exact birth date or anything from the refused columns.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app as cli
from exchange.ledger.synthetic import HEADER
from policies.catalogue import NEVER_SHARE
from tests.invariants.harness import (
    EXCHANGE_CLI,
    REPO,
    Home,
    LiveServer,
    ledger_rows,
    personal_values,
    pull_opened,
    scan,
    scan_bytes,
)
from tests.world import Programme

SHIPPED = REPO / "policies" / "shipped" / "home_visit.toml"
REFUSED_HEADERS = ("婚姻状况", "丈夫姓名", "丈夫身份证号", "避孕措施", "流产史", "备注")


@pytest.mark.parametrize("source", sorted(NEVER_SHARE))
@pytest.mark.parametrize("transform", ["as_is", "sha256"])
def test_policy_naming_a_never_share_field_is_refused_at_load(
    tmp_path: Path, source: str, transform: str
) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    text += f'\n[fields.smuggled]\nsource = "{source}"\ntransform = "{transform}"\n'
    bad = tmp_path / "home_visit.toml"
    bad.write_text(text, encoding="utf-8")
    line = text.splitlines().index("[fields.smuggled]") + 1
    result = CliRunner().invoke(cli, ["policy", "check", str(bad)])
    assert result.exit_code != 0
    out = result.output
    assert source in out and "never" in out.lower(), out
    # the table's line or its `source =` line
    assert any(f":{n}:" in out or f"line {n}" in out for n in (line, line + 1)), out
    # and the shipped file itself still loads: the refusal is about the smuggled field
    assert CliRunner().invoke(cli, ["policy", "check", str(SHIPPED)]).exit_code == 0


@pytest.mark.slow
def test_refused_columns_are_reported_and_stored_nowhere(private_home: Home, tmp_path: Path
                                                         ) -> None:  # fmt: skip
    rows = ledger_rows(12)
    file = tmp_path / "ledger.csv"
    with file.open("w", encoding="utf-8-sig", newline="") as fh:
        import csv

        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    done = subprocess.run([*EXCHANGE_CLI, "import", "residents", str(file), "--json", "--as",
                           "demo-office-admin"],
                          cwd=REPO, env=private_home.env(), capture_output=True, timeout=60,
                          check=False)  # fmt: skip
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    report = json.loads(out)
    flat = json.dumps(report, ensure_ascii=False)
    for header in REFUSED_HEADERS:
        assert header in flat, f"the import report does not name refused column {header}"
    col = {h: i for i, h in enumerate(HEADER)}
    refused_values = {r[col[h]]: h for r in rows for h in ("丈夫姓名", "丈夫身份证号", "备注")}
    db = Path(private_home.path / "exchange.db").read_bytes()
    wal = private_home.path / "exchange.db-wal"
    blob = db + (wal.read_bytes() if wal.exists() else b"")
    assert scan_bytes(blob, refused_values) == []
    assert scan(out + done.stderr.decode(), personal_values(rows)) == []


@pytest.mark.slow
def test_nothing_a_contractor_opens_carries_a_never_share_value(
    shared: tuple[LiveServer, Programme],
) -> None:
    server, world = shared
    values = personal_values(ledger_rows())
    forbidden = {v: k for v, k in values.items()
                 if k in ("national_id", "birth_date", "child_birth_date", "cadre_note")}
    with server.client() as api:
        for label in ("contractor", "contractor_b"):
            items = pull_opened(api, world.side(label))
            assert any(i.get("opened") for i in items), "no sealed field was opened"
            text = json.dumps(items, ensure_ascii=False)
            assert scan(text, forbidden) == []
            for item in items:
                names = set(item.get("fields", {})) | set(item.get("opened", {}))
                assert not names & {"national_id", "birth_date", "child_birth_date"}
