"""The base of every request body, and the typed values a body or a query may hold (issue 14,
finding 8: `retention_days: true` was stored as 1, `delivered_at: 12345` became a 1970 time).

`StrictModel` is strict: a boolean is not an integer, a number is not a string, a string is not
a number, and unknown fields are refused (`extra="forbid"`); values never appear in errors.
FastAPI validates a body in Python mode (the parsed JSON), where strict mode would also refuse
the ISO text of a date, so a date or a time is one of the types below: text only, in ISO 8601
(`IsoDate` YYYY-MM-DD; `IsoDateTime` with seconds optional and an offset required, `Z` or
`+08:00`), parsed by pydantic after the check. Never a number (a Unix time), never naive.
A boolean in a query is `QueryBool`: `true` or `false`, nothing else.
`tests/security/test_strict_types.py` walks every route and fails for a body model that
is not a `StrictModel`, or a date, time, boolean or integer that is not one of these.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Strict
from pydantic_core import PydanticCustomError

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:\d{2})")


class StrictModel(BaseModel):
    """Every request body's base: strict types, no unknown fields, no values in errors."""

    model_config = ConfigDict(strict=True, extra="forbid", hide_input_in_errors=True)


def _iso_date(value: object) -> object:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise PydanticCustomError("date_format", "must be a date as text, YYYY-MM-DD")
    return value


def _iso_datetime(value: object) -> object:
    if isinstance(value, str) and _NAIVE.fullmatch(value):
        raise PydanticCustomError("timezone_required", "must have an offset, Z or +08:00")
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise PydanticCustomError(
            "datetime_format",
            "must be an ISO 8601 time as text with an offset, e.g. 2026-03-01T09:30:00+08:00",
        )
    return value


def _in_utc(value: datetime) -> datetime:
    try:  # 0001-01-01T00:00+23:59 is no time in UTC
        value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_range", "is out of range") from None
    return value


def _query_bool(value: object) -> object:
    if value not in ("true", "false"):
        raise PydanticCustomError("bool_format", "must be true or false")
    return value == "true"


# lax only after the check (Strict(False)), so pydantic parses the checked text
IsoDate = Annotated[date, Strict(False), BeforeValidator(_iso_date)]
IsoDateTime = Annotated[AwareDatetime, Strict(False), BeforeValidator(_iso_datetime),
                        AfterValidator(_in_utc)]
# a query parameter's boolean: the text true or false (not 1, yes, on)
QueryBool = Annotated[bool, Strict(False), BeforeValidator(_query_bool)]
