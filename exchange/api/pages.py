"""The two list shapes every /v1 list answers with, typed by what they list.

Name each use (`class AgreementList(Items[AgreementView])`): a schema's title names the
model a client generator writes, and two untitled uses would both be called `Items`.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from typing_extensions import TypedDict

T = TypeVar("T")


class Items(TypedDict, Generic[T]):
    """A whole list."""

    items: list[T]


class Page(TypedDict, Generic[T]):
    """One page of a list: `total` matches in the caller's scope, `limit` from `offset`."""

    total: int
    limit: int
    offset: int
    items: list[T]
