"""Real browser fixtures: the console served by uvicorn on 127.0.0.1 in a thread, and Debian's
Chromium driven by Playwright (no downloaded browser). Under CI=true a missing Chromium fails
the run; elsewhere the browser tests skip and the summary says so."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import in_ci

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"
SKIPPED: list[str] = []


def browser_or_skip() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: run `make browser-deps` (as root) for the browser tests"
    if in_ci():
        pytest.fail(message + " (CI requires it)")
    SKIPPED.append(message)
    pytest.skip(message)


class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="off")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the console server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=FLAGS)  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: object, base: str, height: int = 800) -> object:
    """A page in a fresh context (its own cookies), in Chinese; CSP and other console errors
    are collected in `page.csp_errors`."""
    context = browser.new_context(base_url=base, locale="zh-CN",  # type: ignore[attr-defined]
                                  accept_downloads=True,
                                  viewport={"width": 1280, "height": height})  # fmt: skip
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.csp_errors = errors
    return page  # type: ignore[no-any-return]


def sign_in(page: object, role: str, password: str | None = None) -> None:
    from tests.exchange.console.world import NAMES, PASSWORDS

    page.goto("/console/login")  # type: ignore[attr-defined]
    page.locator("#username").fill(NAMES[role])  # type: ignore[attr-defined]
    page.locator("#password").fill(password or PASSWORDS[role])  # type: ignore[attr-defined]
    page.get_by_role("button", name="登录").click()  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


def axe_clean(page: object, name: str) -> None:
    """No axe violation on the page, and no CSP violation reported by the browser."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"
    errors = page.csp_errors  # type: ignore[attr-defined]
    assert not [e for e in errors if "Content Security Policy" in e], errors


def shot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
