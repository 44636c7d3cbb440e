"""Problem details, request ids, body limits, health, readiness and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from exchange.api.context import Context, context_for
from exchange.api.problems import MEDIA_TYPE, PROBLEM_BASE, Problem
from tests.exchange.api.apptools import Harness, build

PHONE = "13912345678"
ID_NUMBER = "370214199001011232"
METRICS_TOKEN = "metrics-" + "0" * 32

probe = APIRouter(prefix="/probe")


class Payload(BaseModel):
    count: int
    note: str


@probe.post("/echo")
def echo(
    body: Payload, _p: Annotated[Context, context_for("session.read")]
) -> dict[str, int]:
    return {"count": body.count}


@probe.get("/boom")
def boom(_p: Annotated[Context, context_for("session.read")]) -> None:
    raise RuntimeError(f"leaking {PHONE}")


@probe.get("/gone")
def gone(_p: Annotated[Context, context_for("session.read")]) -> None:
    raise Problem(404, "case-not-found", "no such case")


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    return build(
        database_url,
        tmp_path,
        template=migrated_sqlite_template,
        extra_routers=(probe,),
        max_body_bytes=2048,
        metrics_token=METRICS_TOKEN,
    )


def _auth(h: Harness, role: str = "office_admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {h.tokens[role]}"}


def _is_problem(response, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    body = response.json()
    assert body["type"] == PROBLEM_BASE + slug and body["status"] == status and body["title"]
    assert response.headers["x-request-id"] == body["request_id"]
    return body


@pytest.mark.db
def test_health_and_readiness(h: Harness) -> None:
    assert h.client.get("/healthz").json() == {"status": "ok"}
    ready = h.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    h.app.state.audit_probe = lambda: False
    not_ready = h.client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["audit"] == "not writable"


@pytest.mark.db
def test_validation_errors_name_fields_but_never_echo_values(h: Harness) -> None:
    response = h.client.post(
        "/v1/probe/echo", json={"count": PHONE + "x", "note": 5, "x": ID_NUMBER}, headers=_auth(h)
    )
    body = _is_problem(response, 422, "validation-error")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"count", "note"}  # named as in the body, like the services name them
    assert PHONE not in response.text and ID_NUMBER not in response.text

    malformed = h.client.post(
        "/v1/probe/echo",
        content=b"{not json " + PHONE.encode(),
        headers={**_auth(h), "content-type": "application/json"},
    )
    _is_problem(malformed, 422, "validation-error")
    assert PHONE not in malformed.text


@pytest.mark.db
def test_unexpected_errors_are_500_problems_without_details(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    body = _is_problem(h.client.get("/v1/probe/boom", headers=_auth(h)), 500, "internal-error")
    assert "detail" not in body
    captured = capsys.readouterr()
    assert PHONE not in captured.out + captured.err


@pytest.mark.db
def test_http_errors_are_problems(h: Harness) -> None:
    _is_problem(h.client.get("/v1/nowhere"), 404, "not-found")
    _is_problem(h.client.delete("/healthz"), 405, "method-not-allowed")
    body = _is_problem(h.client.get("/v1/probe/gone", headers=_auth(h)), 404, "case-not-found")
    assert body["detail"] == "no such case"


@pytest.mark.db
def test_request_id_is_the_servers_own(h: Harness) -> None:
    mine = "req-0123456789abcdef"
    with capture_logs(processors=[merge_contextvars]) as logs:
        answered = h.client.get("/healthz", headers={"X-Request-ID": mine}).headers["x-request-id"]
    assert answered != mine and len(answered) == 36 and answered[14] == "7"  # a UUIDv7
    line = [e for e in logs if e["event"] == "request"][-1]
    assert line["request_id"] == answered and line["client_request_id"] == mine
    with capture_logs(processors=[merge_contextvars]) as logs:
        h.client.get("/healthz", headers={"X-Request-ID": f"id {PHONE}\u0000"})
        h.client.get("/healthz", headers={"X-Request-ID": f"req-{ID_NUMBER}"})
    assert all("client_request_id" not in e for e in logs)  # refused, not kept
    a = h.client.get("/healthz").headers["x-request-id"]
    b = h.client.get("/healthz").headers["x-request-id"]
    assert a != b


@pytest.mark.db
def test_body_limit(h: Harness) -> None:
    big = {"count": 1, "note": "x" * 4096}
    _is_problem(
        h.client.post("/v1/probe/echo", json=big, headers=_auth(h)), 413, "payload-too-large"
    )

    def chunks():  # no Content-Length: the limit applies while streaming
        for _ in range(8):
            yield b" " * 1024

    streamed = h.client.post(
        "/v1/probe/echo", content=chunks(), headers={**_auth(h), "content-type": "application/json"}
    )
    _is_problem(streamed, 413, "payload-too-large")
    ok = h.client.post("/v1/probe/echo", json={"count": 3, "note": "fine"}, headers=_auth(h))
    assert ok.status_code == 200 and ok.json() == {"count": 3}


@pytest.mark.db
def test_metrics_use_route_templates_and_no_values(h: Harness) -> None:
    h.client.get(f"/v1/unknown/{PHONE}")
    h.client.get("/healthz")
    h.client.post(f"/v1/probe/echo?x={PHONE}", json={}, headers=_auth(h))
    text = h.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert 'route="/healthz"' in text and 'status="200"' in text
    assert 'route="/v1/probe/echo",status="422"' in text
    assert 'route="<unmatched>"' in text
    assert PHONE not in text


def test_openapi_is_served(tmp_path: Path) -> None:
    h = build(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    spec = h.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/healthz" in spec["paths"]


def test_unreachable_database_is_a_503_problem_with_retry_after(tmp_path: Path) -> None:
    from exchange.api.app import create_app
    from exchange.db.engine import make_engine, make_session_factory
    from exchange.settings import Settings
    from tests.exchange.factories import keyring

    url = f"sqlite:///{tmp_path / 'gone' / 'exchange.db'}"
    app = create_app(
        Settings(home=tmp_path, database_url=url),
        session_factory=make_session_factory(make_engine(url)),
        keyring=keyring(),
    )
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    response = client.get("/v1/session", headers={"Authorization": "Bearer exq_" + "a" * 43})
    _is_problem(response, 503, "unavailable")
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.db
def test_request_log_names_the_route_template_not_the_path(h: Harness) -> None:
    with capture_logs() as logs:
        h.client.get(f"/v1/probe/gone?who={PHONE}&name=李秀英", headers=_auth(h))
    requests = [e for e in logs if e["event"] == "request"]
    assert requests and requests[-1]["route"] == "/v1/probe/gone" and requests[-1]["status"] == 404
    assert PHONE not in repr(logs) and "李秀英" not in repr(logs)
