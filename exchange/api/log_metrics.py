"""Metrics read from the audit log itself, so they count what every process did (all workers,
every instance, the CLI): log size, appends by action, integer details summed by name (rows
an import counted, ...), the latest checkpoint's size and age, entries not yet signed.

Collected at scrape time. Each scrape reads the new entries since the last one, at most
`chunk` of them (a large existing log is caught up over several scrapes; the
`exchange_audit_metrics_scanned_entries` gauge says how far). Labels are action and detail
*names* (dotted lower-case, validated by audit.entry), never values.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit.store.tables import checkpoints, entries, head
from exchange.logs import get_logger

_log = get_logger("exchange.metrics")


class AuditLogCollector(Collector):
    def __init__(self, session_factory: sessionmaker[Session], clock: Callable[[], datetime],
                 chunk: int = 20_000) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.chunk = chunk
        self.scanned = 0  # entries [0, scanned) are counted
        self.appends: Counter[str] = Counter()
        self.sums: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def _scan(self, session: Session) -> None:
        rows = session.execute(
            select(entries.c.idx, entries.c.entry).where(entries.c.idx >= self.scanned)
            .order_by(entries.c.idx).limit(self.chunk)).all()
        for idx, data in rows:
            doc = json.loads(bytes(data))
            action = str(doc.get("action", "?"))
            self.appends[action] += 1
            for name, value in (doc.get("details") or {}).items():
                if type(value) is int:
                    self.sums[(action, name)] += value
            self.scanned = int(idx) + 1

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("exchange_audit_metrics_up",
                               "1 if the audit log could be read for these metrics")
        try:
            with self._lock, self.session_factory() as session:
                size = int(session.execute(select(head.c.size)).scalar() or 0)
                latest = session.execute(
                    select(checkpoints.c.tree_size, checkpoints.c.issued_at)
                    .order_by(checkpoints.c.tree_size.desc()).limit(1)).first()
                if size < self.scanned:  # a restore put an older log in place: count again
                    self.scanned, self.appends, self.sums = 0, Counter(), Counter()
                self._scan(session)
                appends, sums, scanned = dict(self.appends), dict(self.sums), self.scanned
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; readiness says why
            _log.warning("audit_metrics_failed", error_type=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("exchange_audit_entries", "Entries in the audit log", value=size)
        yield GaugeMetricFamily("exchange_audit_metrics_scanned_entries",
                                "Entries these metrics have counted so far", value=scanned)
        cp_size = int(latest.tree_size) if latest else 0
        yield GaugeMetricFamily("exchange_audit_unsigned_entries",
                                "Entries not yet covered by a signed checkpoint",
                                value=size - cp_size)
        yield GaugeMetricFamily("exchange_audit_checkpoint_size",
                                "Tree size of the latest signed checkpoint", value=cp_size)
        if latest is not None:
            issued = datetime.fromisoformat(str(latest.issued_at).replace("Z", "+00:00"))
            yield GaugeMetricFamily("exchange_audit_checkpoint_age_seconds",
                                    "Seconds since the latest checkpoint was signed",
                                    value=(self.clock() - issued).total_seconds())
        counted = CounterMetricFamily("exchange_audit_appends",
                                      "Audit entries appended, by action", labels=["action"])
        for action, n in sorted(appends.items()):
            counted.add_metric([action], n)
        yield counted
        summed = CounterMetricFamily(
            "exchange_audit_detail", "Integer entry details summed by action and name "
            "(e.g. rows an import counted)", labels=["action", "name"])
        for (action, name), n in sorted(sums.items()):
            summed.add_metric([action, name], n)
        yield summed
