"""Operational metrics: the audit log's own figures (size, appends by action, summed details,
checkpoint age, unsigned entries) and HTTP metrics by route template, with no personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from audit.entry import Action, Actor, AuditEntry, Subject
from audit.store import AuditLog, append
from exchange.api.log_metrics import AuditLogCollector
from exchange.db.engine import unit_of_work
from exchange.services.audit_access import log_signer
from tests.exchange import factories as f
from tests.exchange.api.apptools import build
from tests.exchange.serving import METRICS, METRICS_TOKEN

pytestmark = pytest.mark.db


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_from_the_audit_log(database_url: str, tmp_path: Path) -> None:
    h = build(database_url, tmp_path, metrics_token=METRICS_TOKEN)
    when = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with unit_of_work(h.factory) as session:
        for i in range(3):
            append(session, AuditEntry(time=when, actor=Actor("p-c", "contractor"),
                                       action=Action.DISCLOSE, subjects=(Subject(f"ap_{i}"),)))
        append(session, AuditEntry(time=when, actor=Actor("cli", "system"),
                                   action="resident.import",
                                   details={"rows.inserted": 120, "rows.rejected": 3,
                                            "dry_run": False}))
    with unit_of_work(h.factory) as session:
        AuditLog(session, signer=log_signer(f.keyring()), clock=lambda: when).issue_checkpoint()
    with unit_of_work(h.factory) as session:
        append(session, AuditEntry(time=when, actor=Actor("cli", "system"), action="key.rotate"))
    h.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]

    assert h.client.get("/v1/session", headers={"Authorization": "Bearer exq_x"}).status_code == 401
    body = h.client.get("/metrics", headers=METRICS).text
    got = _samples(body)
    assert got[("exchange_audit_entries", ())] == 6  # the 401 is audited too (issue 14)
    assert got[("exchange_audit_checkpoint_size", ())] == 4
    assert got[("exchange_audit_unsigned_entries", ())] == 2
    assert got[("exchange_audit_appends_total", (("action", "auth.denied"),))] == 1
    assert got[("exchange_audit_checkpoint_age_seconds", ())] == 300
    assert got[("exchange_audit_appends_total", (("action", "case.disclose"),))] == 3
    assert got[("exchange_audit_appends_total", (("action", "key.rotate"),))] == 1
    assert got[("exchange_audit_detail_total", (("action", "resident.import"),
                                                 ("name", "rows.inserted")))] == 120
    assert ("exchange_audit_detail_total", (("action", "resident.import"),
                                            ("name", "dry_run"))) not in got  # only integers
    assert got[("exchange_http_requests_total", (("method", "GET"), ("route", "/v1/session"),
                                                 ("status", "401")))] == 1
    assert "ap_0" not in body and "p-c" not in body  # names only, never subjects or actors


def test_scans_in_chunks_and_restarts_after_a_restore(database_url: str, tmp_path: Path) -> None:
    h = build(database_url, tmp_path, metrics_token=METRICS_TOKEN)
    when = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with unit_of_work(h.factory) as session:
        for _ in range(5):
            append(session, AuditEntry(time=when, actor=Actor("cli", "system"), action="x.y"))
    collector = AuditLogCollector(h.factory, lambda: when, chunk=2)
    scanned = []
    for _ in range(4):
        families = {m.name: m for m in collector.collect()}
        scanned.append(families["exchange_audit_metrics_scanned_entries"].samples[0].value)
    assert scanned == [2, 4, 5, 5]
    collector.scanned = 50  # as if the log had been longer before a restore
    families = {m.name: m for m in collector.collect()}
    assert families["exchange_audit_metrics_scanned_entries"].samples[0].value == 2


def test_the_sample_dashboard_queries_metrics_that_exist(database_url: str,
                                                         tmp_path: Path) -> None:
    import json
    import re

    h = build(database_url, tmp_path, metrics_token=METRICS_TOKEN)
    when = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with unit_of_work(h.factory) as session:
        append(session, AuditEntry(time=when, actor=Actor("cli", "system"), action="key.rotate",
                                   details={"rows.inserted": 1}))
    with unit_of_work(h.factory) as session:
        AuditLog(session, signer=log_signer(f.keyring()), clock=lambda: when).issue_checkpoint()
    h.client.get("/v1/session", headers={"Authorization": "Bearer exq_x"})
    h.client.get("/healthz")
    exposed = {name for name, _ in _samples(h.client.get("/metrics", headers=METRICS).text)}
    dashboard = json.loads((Path(__file__).resolve().parents[3] / "docs" / "grafana" /
                            "exchange-dashboard.json").read_text(encoding="utf-8"))
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bexchange_[a-z_]+", target["expr"])}
    assert queried and queried <= exposed, sorted(queried - exposed)
