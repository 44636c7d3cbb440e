"""`EncryptedField`: the only column type personal values are stored in.

It accepts nothing but `keys.EncryptedValue` on the way in, so a plaintext string can never
reach the database by accident, and it parses the stored bytes back into an `EncryptedValue`
(which checks the header) on the way out. Errors name the type, never the value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from keys.fields import EncryptedValue


class EncryptedField(TypeDecorator[EncryptedValue]):
    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, EncryptedValue):
            raise TypeError(
                f"EncryptedField stores only keys.EncryptedValue, got {type(value).__name__}"
            )
        return value.to_bytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> EncryptedValue | None:
        if value is None:
            return None
        return EncryptedValue.from_bytes(bytes(value))

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        raise TypeError("EncryptedField values are never rendered as SQL literals")

    @property
    def python_type(self) -> type[EncryptedValue]:
        return EncryptedValue


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError("UTCDateTime stores only timezone-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
