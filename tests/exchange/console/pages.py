"""A console app over a migrated database for page tests, and a signed-in TestClient."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.exchange.api.apptools import Harness, build
from tests.exchange.console.world import NAMES, PASSWORDS, World, populate

_HIDDEN = re.compile(r'name="csrf_token" value="([^"]*)"')


def console(database_url: str, home: Path, template: Path | None = None,
            **settings: object) -> tuple[Harness, World]:  # fmt: skip
    harness = build(database_url, home, template=template, **settings)
    return harness, populate(harness.factory, harness.clock())


def csrf_of(html: str) -> str:
    match = _HIDDEN.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def sign_in(client: TestClient, role: str, password: str | None = None,
            name: str | None = None) -> str:  # fmt: skip
    """Signs in; returns the page's CSRF token."""
    form = client.get("/console/login")
    response = client.post("/console/login", data={
        "username": name or NAMES[role], "password": password or PASSWORDS[role],
        "csrf_token": csrf_of(form.text), "next": "/console/home",
    }, follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text[:500]
    return csrf_of(client.get("/console/home").text)
