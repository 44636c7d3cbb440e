"""Pull the feed until it is drained, apply it to the local store, acknowledge deletions.

Sealed fields are opened with the contractor's private key (`keys.ResponseOpener`: one HPKE
decapsulation per response and agreement) and stored opened; a token that does not open is
an error, never silently dropped. Tombstones delete the local case first, then the deletion
is acknowledged (`POST /v1/tombstones/{ref}/ack`), retried on the next sync if it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from exchange.client.store import LocalStore
from keys.contractor_keys import ContractorPrivateKey
from keys.errors import DecryptionError
from keys.sealing import ResponseOpener

DEFAULT_PAGE = 100
MAX_PAGES = 100_000


class SyncError(Exception):
    """The broker answered with an error, or a response could not be opened."""


@dataclass
class SyncResult:
    pages: int = 0
    cases: int = 0
    tombstones: int = 0
    acknowledged: int = 0


def _get_json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("title")
        except ValueError:
            detail = response.reason_phrase
        raise SyncError(f"broker answered {response.status_code}: {detail}")
    body = response.json()
    if not isinstance(body, dict):
        raise SyncError("broker answered with an unexpected body")
    return body


def open_case(item: dict[str, Any], openers: dict[str, ResponseOpener]) -> dict[str, Any]:
    """The case view with every sealed token replaced by its plaintext."""
    sealed = item.get("sealed") or {}
    if not sealed:
        return {**item, "sealed": {}}
    opener = openers.get(item["agreement"])
    if opener is None:
        raise SyncError(f"case {item['case_reference']}: sealed fields but no envelope")
    opened = {}
    for name, token in sealed.items():
        try:
            opened[name] = opener.open(item["case_reference"], name, token)
        except DecryptionError:
            raise SyncError(f"case {item['case_reference']}: field {name} does not open") from None
    return {**item, "sealed": {}, "opened": opened}


def _openers(
    private_key: ContractorPrivateKey, envelopes: dict[str, str]
) -> dict[str, ResponseOpener]:
    try:
        return {a: ResponseOpener(private_key, env, a) for a, env in envelopes.items()}
    except DecryptionError:
        raise SyncError("the response envelope does not open with this private key") from None


def _acknowledge(client: httpx.Client, store: LocalStore, result: SyncResult) -> None:
    for reference in store.pending_acks():
        response = client.post(f"/v1/tombstones/{quote(reference, safe='')}/ack")
        if response.status_code in (200, 404):  # 404: nothing left to acknowledge
            store.acked(reference)
            result.acknowledged += response.status_code == 200
        else:
            _get_json(response)


def sync(
    client: httpx.Client,
    private_key: ContractorPrivateKey,
    store: LocalStore,
    purpose: str,
    *,
    page_size: int = DEFAULT_PAGE,
) -> SyncResult:
    """Drain the feed for `purpose` from the saved cursor; `client` carries base URL and token."""
    result = SyncResult()
    _acknowledge(client, store, result)  # left over from an interrupted run
    for _ in range(MAX_PAGES):
        params: dict[str, str | int] = {"purpose": purpose, "limit": page_size}
        cursor = store.cursor(purpose)
        if cursor:
            params["cursor"] = cursor
        page = _get_json(client.get("/v1/cases", params=params))
        openers = _openers(private_key, page.get("envelopes") or {})
        with store.transaction():
            for item in page["items"]:
                if item["type"] == "tombstone":
                    store.delete_case(item["case_reference"], item["reason"])
                    result.tombstones += 1
                elif item["type"] == "case":
                    store.upsert_case(open_case(item, openers))
                    result.cases += 1
            store.set_cursor(purpose, page["next_cursor"])
        result.pages += 1
        _acknowledge(client, store, result)
        if not page["has_more"]:
            break
    return result


def http_client(url: str, token: str, *, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
