from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli.policy import EXIT_INVALID, EXIT_WIDENS, app
from policies.shipped import SHIPPED_DIR, shipped_paths

runner = CliRunner()
HOME = SHIPPED_DIR / "home_visit.toml"


@pytest.fixture
def edited(tmp_path: Path):
    def write(old: str, new: str) -> Path:
        text = HOME.read_text(encoding="utf-8")
        assert old in text
        path = tmp_path / "home_visit.toml"
        path.write_text(text.replace(old, new), encoding="utf-8")
        return path

    return write


def test_check_shipped_policies_ok():
    result = runner.invoke(app, ["check", *map(str, shipped_paths())])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 3


def test_check_reports_one_line_per_error_and_fails(edited):
    path = edited('source = "resident.name"', 'source = "resident.national_id"')
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == EXIT_INVALID
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    line_no = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "national_id" in t)
    assert (
        f"{path}:{line_no}: display_name: source 'resident.national_id' is never-share" in lines[0]
    )


def test_check_refuses_duplicate_ids(tmp_path):
    copy = tmp_path / "copy.toml"
    copy.write_text(HOME.read_text(encoding="utf-8"), encoding="utf-8")
    result = runner.invoke(app, ["check", str(HOME), str(copy)])
    assert result.exit_code == EXIT_INVALID
    assert "also in" in result.output


def test_diff_shows_newly_disclosed_fields(edited):
    path = edited(
        'transform = "address_building"',
        'transform = "address_building"\n\n'
        '[fields.parity]\nsource = "episode.parity"\ntransform = "as_is"',
    )
    result = runner.invoke(app, ["diff", str(HOME), str(path), "--fail-on-widen"])
    assert result.exit_code == EXIT_WIDENS
    assert "+ parity: newly disclosed: episode.parity via as_is" in result.output


def test_diff_condition_loosened_and_transform_finer(edited):
    path = edited(
        'visit_booked_within_days = 7 }\ndescription = "Unit',
        'visit_booked_within_days = 30 }\ndescription = "Unit',
    )
    result = runner.invoke(app, ["diff", str(HOME), str(path)])
    assert result.exit_code == 0
    assert (
        "+ address: condition visit_booked_within_days=7 -> visit_booked_within_days=30"
        in result.output
    )


def test_diff_narrowing_is_not_a_widening(edited):
    path = edited('transform = "address_building"', 'transform = "address_community"')
    result = runner.invoke(app, ["diff", str(HOME), str(path), "--fail-on-widen"])
    assert result.exit_code == 0
    assert "- area: transform address_building -> address_community" in result.output


def test_diff_unsealing_is_flagged(edited, tmp_path):
    # Unsealing phone_full is refused at load; unsealing a masked field is a widening.
    path = edited('transform = "phone_masked"\n', 'transform = "phone_masked"\nsealed = true\n')
    result = runner.invoke(app, ["diff", str(path), str(HOME)])
    assert "+ phone_masked: no longer sealed" in result.output


def test_diff_identical_and_invalid(edited):
    result = runner.invoke(app, ["diff", str(HOME), str(HOME)])
    assert result.exit_code == 0 and "no change" in result.output
    bad = edited('transform = "as_is"', 'transform = "raw"')
    result = runner.invoke(app, ["diff", str(HOME), str(bad)])
    assert result.exit_code == EXIT_INVALID
    assert "unknown transform 'raw'" in result.output
