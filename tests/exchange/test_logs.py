"""No personal data in logs: keys at any depth, ID and phone numbers anywhere."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from exchange.logs import REDACTED, ScrubFilter, configure_logging, redact, scrub_text

ID_NUMBER = "370214199001011232"
PHONE = "13912345678"


def _run(**event: object) -> dict[str, object]:
    return redact(None, "info", {"event": "x", **event})


def test_personal_keys_are_removed_at_any_depth() -> None:
    out = _run(
        name="李秀英",
        resident={"phone": PHONE, "address": {"room": "501"}, "community": "民城路社区"},
        rows=[{"national_id": ID_NUMBER, "row": 3}],
        birth_date="1990-01-01",
    )
    assert out["name"] == REDACTED and out["birth_date"] == REDACTED
    assert out["resident"] == {"phone": REDACTED, "address": REDACTED, "community": "民城路社区"}
    assert out["rows"] == [{"national_id": REDACTED, "row": 3}]


def test_values_looking_like_ids_or_phones_are_masked_wherever_they_appear() -> None:
    out = _run(event=f"imported {ID_NUMBER} ok", detail=f"call {PHONE}", nested=[{"x": PHONE}])
    text = json.dumps(out, ensure_ascii=False)
    assert ID_NUMBER not in text and PHONE not in text
    assert out["event"] == f"imported {REDACTED} ok"


def test_longer_digit_runs_and_case_references_are_left_alone() -> None:
    assert scrub_text("seq 1391234567890") == "seq 1391234567890"
    assert scrub_text("resident 3f2a-uuid") == "resident 3f2a-uuid"
    assert scrub_text("Authorization: Bearer exq_abc") == "Authorization: Bearer " + REDACTED


def test_configured_pipeline_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("json", "INFO")
    try:
        structlog.get_logger("t").info("resident_saved", phone=PHONE, note=f"id {ID_NUMBER}")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = json.loads(line)
        assert record["phone"] == REDACTED and ID_NUMBER not in line
        assert record["level"] == "info" and "timestamp" in record
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_capture_logs_sees_redacted_values_through_the_shared_processors() -> None:
    structlog.configure(processors=[redact])
    try:
        with capture_logs(processors=[redact]) as logs:
            structlog.get_logger().warning("lookup", national_id=ID_NUMBER, community="后田社区")
        assert logs == [
            {
                "event": "lookup",
                "national_id": REDACTED,
                "community": "后田社区",
                "log_level": "warning",
            }
        ]
    finally:
        structlog.reset_defaults()


def test_stdlib_records_are_scrubbed() -> None:
    record = logging.LogRecord("uvicorn", logging.INFO, __file__, 1, "GET /x?p=%s", (PHONE,), None)
    assert ScrubFilter().filter(record)
    assert PHONE not in record.getMessage()
