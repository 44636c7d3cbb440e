"""The contract between the broker and a contractor is /openapi.json: a client generated from
it with openapi-python-client (pinned in requirements-codegen.lock, installed by `make install`
in .venv/codegen) walks the feed of a live broker, opens the sealed fields, and acknowledges a
deletion, with no model written by hand."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exchange.client.sync import _openers, open_case
from tests.invariants.harness import LiveServer, build_world, ok, prepare_home
from tests.world import Programme

REPO = Path(__file__).resolve().parents[3]
GENERATOR = REPO / ".venv" / "codegen" / "bin" / "openapi-python-client"
PACKAGE = "generated_exchange_client"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Programme, str]]:
    home = prepare_home(tmp_path_factory.mktemp("client") / "home")
    server = LiveServer(home).start()
    try:
        yield server, build_world(server, home.tokens), home.tokens["community_cadre"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client_package(live: tuple[LiveServer, Programme, str],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # fmt: skip
    assert GENERATOR.exists(), "run `make install`: it installs the generator in .venv/codegen"
    server, _, _ = live
    out = tmp_path_factory.mktemp("generated")
    spec = out / "openapi.json"
    spec.write_bytes(httpx.get(server.base + "/openapi.json").content)
    config = out / "config.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none", "--config",
         str(config), "--output-path", str(out / PACKAGE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # the generator names what it could not model; a contract it half-reads is no contract
    assert "Unable to parse" not in done.stdout and "Cannot parse" not in done.stdout, done.stdout
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n.startswith(PACKAGE)]:
            del sys.modules[name]


def _api(package: Any, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.contractor.{name}")


def test_a_generated_client_walks_the_feed_and_acknowledges_a_deletion(
    live: tuple[LiveServer, Programme, str], client_package: Any
) -> None:
    server, world, cadre = live
    side = world.side("contractor")
    models = importlib.import_module(f"{PACKAGE}.models")
    list_cases, acknowledge = _api(client_package, "list_cases"), _api(client_package,
                                                                        "acknowledge")
    client = client_package.AuthenticatedClient(base_url=server.base, token=side.token)

    opened: list[dict[str, Any]] = []

    def walk(cursor: Any) -> tuple[list[Any], Any]:
        seen: list[Any] = []
        while True:
            page = list_cases.sync(client=client, purpose="home_visit", cursor=cursor, limit=2)
            assert isinstance(page, models.FeedPage), page
            openers = _openers(side.private_key, page.envelopes.to_dict())
            for item in page.items:
                if isinstance(item, models.CaseItem):  # every sealed token opens
                    opened.append(open_case(item.to_dict(), openers))
                seen.append(item)
            cursor = page.next_cursor
            if not page.has_more:
                return seen, cursor

    items, cursor = walk(None)
    assert {type(i) for i in items} == {models.CaseItem}
    assert len(items) == len(side.assigned)
    assert any(case.get("opened") for case in opened), "no sealed field was opened"
    assert all(case["fields"]["display_name"].endswith("女士") for case in opened)

    # the cadre revokes one case: the next walk brings its tombstone, acknowledged typed
    rid, assignment_id = next(iter(side.assigned.items()))
    with server.client() as office:
        ok(office.post(f"/v1/assignments/{assignment_id}/revoke",
                       headers={"Authorization": f"Bearer {cadre}"}))  # fmt: skip
    items, _ = walk(cursor)
    (tombstone,) = items
    assert isinstance(tombstone, models.TombstoneItem) and tombstone.reason == "assignment_revoked"
    ack = acknowledge.sync(client=client, reference=tombstone.case_reference)
    assert isinstance(ack, models.Acknowledgement) and ack.tombstones == 1


def test_problems_reach_the_generated_client_typed(
    live: tuple[LiveServer, Programme, str], client_package: Any
) -> None:
    server, world, _ = live
    models = importlib.import_module(f"{PACKAGE}.models")
    client = client_package.AuthenticatedClient(base_url=server.base,
                                                token=world.side("contractor").token)  # fmt: skip
    bad = _api(client_package, "list_cases").sync_detailed(client=client, purpose="nonsense")
    assert bad.status_code == 422 and isinstance(bad.parsed, models.Problem)
    assert [e.field for e in bad.parsed.errors] == ["purpose"]
    missing = _api(client_package, "get_case").sync_detailed(client=client, reference="A" * 43,
                                                            purpose="home_visit")  # fmt: skip
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
