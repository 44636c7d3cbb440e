"""/openapi.json is the contract with the contractor and the office's tools: every operation's
success has a typed body, required headers are required, and each operation lists the problems
it can answer (not the same list on every route)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.exchange.api.apptools import build

COMMON = {"401", "403", "429", "503"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("openapi")
    document: dict[str, Any] = build(f"sqlite:///{home / 'x.db'}", home).app.openapi()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in spec["paths"].items()
            for method, op in ops.items()]  # fmt: skip


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_every_success_has_a_typed_body(spec: dict[str, Any]) -> None:
    untyped = []
    for method, path, op in _operations(spec):
        for status, response in op["responses"].items():
            if not status.startswith("2"):
                continue
            content = response.get("content") or {}
            for media, body in content.items():
                schema = _resolve(spec, body.get("schema", {}))
                typed = bool(schema.get("properties") or schema.get("items")) if media.endswith(
                    "json") else schema.get("type") == "string"  # fmt: skip
                if not typed:
                    untyped.append(f"{method} {path} {status} {media}")
            if not content:
                untyped.append(f"{method} {path} {status}: no body declared")
    assert untyped == []
    feed = spec["paths"]["/v1/cases"]["get"]["responses"]["200"]["content"]["application/json"]
    items = _resolve(spec, feed["schema"])["properties"]["items"]["items"]
    assert {_resolve(spec, s)["title"] for s in items["oneOf"]} == {"CaseItem", "TombstoneItem"}


def test_operation_ids_are_the_handler_names(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert spec["paths"]["/v1/cases"]["get"]["operationId"] == "list_cases"


def test_required_headers_are_required(spec: dict[str, Any]) -> None:
    post = spec["paths"]["/v1/cases/{reference}/service-records"]["post"]
    (key,) = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header" and key["required"] is True


def test_each_operation_lists_the_problems_it_can_answer(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        if not path.startswith("/v1/"):
            continue
        errors = {s for s in op["responses"] if s[0] in "45"}
        assert errors >= COMMON, (method, path)
        takes_input = bool(op.get("parameters") or op.get("requestBody"))
        assert ("422" in errors) is takes_input, (method, path)
        assert ("413" in errors) is ("requestBody" in op), (method, path)
        # a body that is not JSON is refused by media type (415), and the contract says so
        raw_body = "requestBody" in op and "application/json" not in op["requestBody"]["content"]
        assert ("415" in errors) is raw_body, (method, path)
        for status in errors:
            body = op["responses"][status]["content"]["application/problem+json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    responses = {path: {m: set(op["responses"]) for m, op in ops.items()}
                 for path, ops in spec["paths"].items()}  # fmt: skip
    assert responses["/v1/session"]["get"] == {"200"} | COMMON
    assert responses["/v1/contractors"]["get"] == {"200"} | COMMON
    assert responses["/v1/cases/{reference}"]["get"] == {"200", "404", "409", "422", "500"} | COMMON
    assert "404" not in responses["/v1/agreements"]["post"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_the_document_is_stable(spec: dict[str, Any], tmp_path: Path) -> None:
    # two apps give the same document: nothing in it depends on the process or the order
    again = build(f"sqlite:///{tmp_path / 'y.db'}", tmp_path).app.openapi()
    assert again == spec
