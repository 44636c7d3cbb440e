"""List pages: page number and size (10/20/50) from the query string, and what the
pagination bar needs (“共 N 条”)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

SIZES = (10, 20, 50)


@dataclass(frozen=True, slots=True)
class Paging:
    number: int
    size: int
    total: int = 0
    query: str = ""  # the list's filters, kept on every page link

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    def link(self, number: int, size: int | None = None) -> str:
        params = f"page={number}&size={size or self.size}"
        return f"?{self.query}&{params}" if self.query else f"?{params}"


def paging(request: Request, *filters: str) -> Paging:
    def number(name: str, default: int) -> int:
        raw = request.query_params.get(name, "")
        return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else default

    size = number("size", 20)
    kept = {f: request.query_params.get(f, "") for f in filters if request.query_params.get(f)}
    return Paging(max(1, number("page", 1)), size if size in SIZES else 20, 0, urlencode(kept))


def with_total(p: Paging, total: int) -> Paging:
    return Paging(p.number, p.size, total, p.query)
