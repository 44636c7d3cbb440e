"""The landing page after sign-in: who you are and where to go."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from exchange.console.context import AnyPage, SignedIn
from exchange.console.templating import render

router = APIRouter()


@router.get("/")
def root(page: AnyPage) -> Response:
    return RedirectResponse("/console/home" if page.user else "/console/login", 303)


@router.get("/home")
def home(page: SignedIn) -> Response:
    return render(page, "home.html")
