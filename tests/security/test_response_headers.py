"""Issue 14, finding 6: caching, sniffing, the documentation pages and /metrics.

The attack: responses with personal data kept by a browser or proxy cache (no
`Cache-Control: no-store`); a response sniffed as another type (no `nosniff`); /docs loading
its scripts from a public CDN with no CSP; /metrics answering anyone. Each is checked with
real requests through the app.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.exchange.api.apptools import Harness, build

pytestmark = pytest.mark.db
METRICS_TOKEN = "m" * 40


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    return build(database_url, tmp_path, template=migrated_sqlite_template,
                 metrics_token=METRICS_TOKEN)


def _office(h: Harness) -> dict[str, str]:
    return {"Authorization": f"Bearer {h.tokens['office_admin']}"}


def test_every_data_response_says_no_store_and_nosniff(h: Harness) -> None:
    c = h.client
    answers = {
        "residents": c.get("/v1/residents", headers=_office(h)),
        "session": c.get("/v1/session", headers=_office(h)),
        "one resident (404)": c.get("/v1/residents/nobody", headers=_office(h)),
        "unauthenticated": c.get("/v1/residents"),
        "unmatched": c.get("/v1/nowhere"),
        "bad body": c.post("/v1/residents", json={"x": 1}, headers=_office(h)),
        "console login": c.get("/console/login"),
        "openapi": c.get("/openapi.json"),
        "healthz": c.get("/healthz"),
        "metrics": c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}),
    }
    assert answers["residents"].status_code == 200
    for what, answer in answers.items():
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("cache-control") == "no-store", what


def test_static_assets_may_be_cached_and_are_not_sniffed(h: Harness) -> None:
    for path in ("/console/static/console.css", "/docs/static/docs-init.js"):
        answer = h.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "max-age=" in answer.headers["cache-control"]
        assert "no-store" not in answer.headers["cache-control"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_documentation_pages_load_only_the_brokers_own_assets_under_a_csp(
    h: Harness, page: str
) -> None:
    answer = h.client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert "https://" not in answer.text and "http://" not in answer.text  # no CDN
    assert "<script>" not in answer.text  # no inline script (the CSP would block it)
    sources = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert sources
    for source in sources:
        asset = h.client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source


def test_metrics_need_their_token(h: Harness) -> None:
    assert h.client.get("/metrics").status_code == 401
    assert h.client.get("/metrics", headers=_office(h)).status_code == 401  # not an API token
    wrong = {"Authorization": "Bearer " + "n" * 40}
    assert h.client.get("/metrics", headers=wrong).status_code == 401
    right = h.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200 and "exchange_http_requests" in right.text


def test_metrics_are_off_unless_configured(
    database_url: str, tmp_path: Path, migrated_sqlite_template: Path
) -> None:
    h = build(database_url, tmp_path, template=migrated_sqlite_template)
    assert h.client.get("/metrics").status_code == 404
    anyone = {"Authorization": "Bearer " + "m" * 40}
    assert h.client.get("/metrics", headers=anyone).status_code == 404


def test_every_route_answers_no_store_and_nosniff(h: Harness) -> None:
    """Every GET route of the real app (path parameters filled with a dummy), as an office
    admin: the headers hold for routes added later too."""
    from fastapi.routing import iter_route_contexts

    checked = 0
    for route in iter_route_contexts(h.app.routes):
        if "GET" not in (route.methods or ()) or route.path.startswith("/docs/static"):
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        answer = h.client.get(path, headers=_office(h), follow_redirects=False)
        assert answer.headers.get("x-content-type-options") == "nosniff", path
        if not path.startswith("/console/static"):
            assert answer.headers.get("cache-control") == "no-store", path
        checked += 1
    assert checked > 30
