"""Prometheus metrics: request counts and latencies by route template and status.

Labels are the route *template* (`/v1/cases/{case_reference}`), never the concrete path, so no
identifier or personal value can reach a label. Each app gets its own registry.

Under `exchange serve --workers N` the supervisor sets PROMETHEUS_MULTIPROC_DIR: each worker
then writes its counters to shared files and every /metrics answer (whichever worker takes
it) sums all workers (prometheus-client's multiprocess mode). Collectors added with `add`
(e.g. the audit log's, exchange.api.log_metrics) are read at scrape time in either mode.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from exchange.services.disclosure import WITHHELD_ON_ERROR


class HttpMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._extra: list[Collector] = []
        self.requests = Counter(
            "exchange_http_requests",
            "HTTP requests by method, route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "exchange_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ("method", "route"),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "exchange_auth_failures",
            "Failed authentications by reason",
            ("reason",),
            registry=self.registry,
        )
        # the services' own counters (process-wide), exposed on this app's /metrics too
        self.registry.register(WITHHELD_ON_ERROR)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._extra.append(collector)

    def render(self) -> bytes:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        for collector in self._extra:
            merged.register(collector)
        return generate_latest(merged)
