"""Issue 14, finding 5: personal data in logs through the path.

The attack: type a resident's name or ID number into a URL (path or query string) and read the
server's log. Every line names the route template (`/v1/residents/{resident_id}`), or
`<unmatched>` when no route matched, never the raw path or query string. The events are
captured before the scrubber runs (it masks ID and phone numbers but not names), so this
holds for the name and the number alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from tests.exchange.api.apptools import Harness
from tests.exchange.console.pages import console, sign_in

pytestmark = pytest.mark.db
NAME = "李秀英"
ID_NUMBER = "110101199003070011"
QUERY = f"?q={NAME}&id_number={ID_NUMBER}"


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    harness, _world = console(database_url, tmp_path, template=migrated_sqlite_template)
    return harness


def _attack(h: Harness) -> list[int]:
    c = h.client
    admin = {"Authorization": f"Bearer {h.tokens['office_admin']}"}
    answers = [
        c.get(f"/v1/residents/{NAME}{QUERY}"),  # unauthenticated: auth_denied
        c.get(f"/v1/residents/{ID_NUMBER}{QUERY}", headers={"Authorization": "Bearer x"}),
        c.get(f"/v1/residents/{NAME}{QUERY}", headers=admin),  # matched, not found
        c.get(f"/v1/residents{QUERY}", headers=admin),
        c.get(f"/v1/{NAME}/{ID_NUMBER}{QUERY}", headers=admin),  # no route
        c.get(f"/{NAME}{QUERY}"),
        c.get(f"/console/residents/{NAME}{QUERY}"),  # not signed in
        c.get(f"/console/static/{NAME}.css{QUERY}"),
    ]
    sign_in(c, "office_admin")
    answers += [
        c.get(f"/console/residents/{NAME}{QUERY}"),
        c.get(f"/console/residents{QUERY}"),
        # a refused CSRF check
        c.post(f"/console/residents/{NAME}/reveal{QUERY}", data={"csrf_token": "forged"}),
        c.post(f"/console/users{QUERY}", data={"csrf_token": "forged"}),
    ]
    return [a.status_code for a in answers]


def test_no_path_or_query_string_reaches_any_log_line(h: Harness) -> None:
    with capture_logs(processors=[merge_contextvars]) as events:
        statuses = _attack(h)
    assert 403 in statuses and 401 in statuses and 404 in statuses  # each door was reached
    text = json.dumps(events, ensure_ascii=False, default=str)
    assert NAME not in text and ID_NUMBER not in text
    routes = {e["route"] for e in events if e["event"] == "request"}
    assert {"/v1/residents/{resident_id}", "/v1/residents", "<unmatched>"} <= routes
    denied = [e for e in events if e["event"] == "auth_denied"]
    assert denied and all(e["route"] == "/v1/residents/{resident_id}" for e in denied)
