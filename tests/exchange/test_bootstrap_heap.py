"""A serving process settles its heap after start-up (issue 18: a full collection walked all
of start-up's objects every few thousand cases)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from exchange import bootstrap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_heap_freezes_start_up_and_collects_the_young_less_often() -> None:
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    bootstrap.settle_heap()
    assert gc.get_freeze_count() > 10_000  # the test process's modules, at least
    assert gc.get_threshold() == (bootstrap.YOUNG_THRESHOLD, middle, old)
    assert gc.isenabled()  # cycles are still collected


@pytest.mark.usefixtures("restored_gc")
def test_the_deployment_factory_settles_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    app = FastAPI()
    monkeypatch.setattr(bootstrap, "build_app", lambda: app)
    assert bootstrap.app_factory() is app
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == bootstrap.YOUNG_THRESHOLD
