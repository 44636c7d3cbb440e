"""Issue 14, finding 4: client-chosen request ids in the audit log.

The attack: a caller sends `X-Request-ID` and it became the audit entry's request id, so two
callers' entries could share one (or a caller could name an ID number as its request id: it
went into the log line unscrubbed and made every audited request fail). The server makes its
own id for every request; a caller's valid id is kept beside it, in `client_request_id`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from exchange.api.auth import issue_token
from exchange.db.engine import unit_of_work
from tests.exchange import factories as f
from tests.exchange.api.apptools import Harness, build
from tests.world import audit_entries

pytestmark = pytest.mark.db
CHOSEN = "req-2026-12-05-0001"
ID_NUMBER = "110101199003070011"


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    h = build(database_url, tmp_path, template=migrated_sqlite_template)
    with unit_of_work(h.factory) as session:  # a second caller of the same role
        row = f.principal(session, "p-auditor-2", "auditor", None)
        h.tokens["second_auditor"] = issue_token(row, now=h.clock(), ttl=timedelta(days=1))
    return h


def _search(h: Harness, role: str, request_id: str) -> str:
    answer = h.client.get("/v1/audit/entries", headers={
        "Authorization": f"Bearer {h.tokens[role]}", "X-Request-ID": request_id})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.headers["x-request-id"]


def test_two_callers_with_one_request_id_get_two_entries_ids(h: Harness) -> None:
    first = _search(h, "auditor", CHOSEN)
    second = _search(h, "second_auditor", CHOSEN)
    entries = [e for e in audit_entries(h.factory) if e.get("request") in (first, second)]
    assert len(entries) == 2
    ids = [e["request"] for e in entries]
    assert ids[0] != ids[1] and CHOSEN not in ids
    assert all(e["details"]["client_request_id"] == CHOSEN for e in entries)  # type: ignore[index]


def test_a_request_id_naming_an_id_number_is_not_kept(h: Harness) -> None:
    with capture_logs(processors=[merge_contextvars]) as logs:
        server_id = _search(h, "auditor", ID_NUMBER)  # answered, not failed closed
    entry = [e for e in audit_entries(h.factory) if e.get("request") == server_id]
    assert len(entry) == 1 and ID_NUMBER not in repr(entry)
    assert ID_NUMBER not in repr(logs)


def test_every_entry_of_an_acting_caller_carries_its_details() -> None:
    """An entry made with `acting.request_id` also takes `acting.details` (the caller's
    request id and certificate thumbprint), so no flow forgets them."""
    import ast

    import exchange

    root = Path(exchange.__file__).parent
    forgot = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AuditEntry"):
                continue
            words = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if "acting.request_id" in words.get("request_id", "") and (
                    "acting.details" not in words.get("details", "")):
                forgot.append(f"{path.relative_to(root)}:{node.lineno}")
    assert forgot == []
