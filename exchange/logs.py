"""Structured logging: JSON in production, console in development, never personal data.

`redact` runs on every event before rendering: keys that name personal fields are replaced at
any depth, and any string value containing an 18-digit ID number or a mobile number is masked,
so a careless `log.info("x", row=row_dict)` still cannot leak.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

PERSONAL_KEYS = frozenset(
    {
        "name",
        "full_name",
        "resident_name",
        "national_id",
        "id_number",
        "phone",
        "mobile",
        "address",
        "compound",
        "building",
        "unit",
        "room",
        "birth_date",
        "date_of_birth",
        "due_date",
        "delivery_date",
        "parity",
        "risk_flags",
        "sex",
        "notes",
        "token",
        "authorization",
        "password",
        "plaintext",
        "姓名",
        "身份证号",
        "联系电话",
    }
)

# 18-digit ID (GB 11643) and mainland mobile numbers, not embedded in longer digit runs
_ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_BEARER = re.compile(r"(?i)bearer\s+\S+")
_KEEP = frozenset({"event", "level", "timestamp", "logger", "request_id"})


def _is_personal_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lowered = key.lower().replace("-", "_")
    leaf = lowered.rsplit(".", 1)[-1]
    return lowered in PERSONAL_KEYS or leaf in PERSONAL_KEYS


def scrub_text(text: str) -> str:
    text = _ID_NUMBER.sub(REDACTED, text)
    text = _MOBILE.sub(REDACTED, text)
    return _BEARER.sub("Bearer " + REDACTED, text)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _is_personal_key(k) else _scrub(v, depth + 1)) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor removing personal data wherever it appears."""
    for key in list(event_dict):
        if key in _KEEP and key != "event":
            continue
        if _is_personal_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _drop_exception_locals(
    _logger: WrappedLogger, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # tracebacks are rendered as text and then scrubbed; never with local variables
    exc = event_dict.get("exception")
    if isinstance(exc, str):
        event_dict["exception"] = scrub_text(exc)
    return event_dict


def shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def configure_logging(log_format: str = "console", level: str = "INFO") -> None:
    """Configure structlog (and route stdlib logging through the same level)."""
    renderer: Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.processors.format_exc_info,
            _drop_exception_locals,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubFilter())
    handler.setFormatter(_stdlib_formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


def _stdlib_formatter(log_format: str) -> logging.Formatter:
    """Third-party (stdlib) records, e.g. uvicorn's and Alembic's: one JSON object per line in
    production, like our own events, so a log shipper parses every line the same way."""
    if log_format != "json":
        return logging.Formatter("%(levelname)s %(name)s %(message)s")
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()],
    )


class ScrubFilter(logging.Filter):
    """Masks ID and phone numbers in third-party (stdlib) log records, e.g. uvicorn's."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub_text(record.getMessage())
        record.args = None
        return True


def bind_request_id(request_id: str, client_request_id: str | None = None) -> None:
    """The server's request id on every line of this request, and the caller's own beside it."""
    if client_request_id is None:
        structlog.contextvars.bind_contextvars(request_id=request_id)
    else:
        structlog.contextvars.bind_contextvars(request_id=request_id,
                                               client_request_id=client_request_id)


def clear_request_context() -> None:
    structlog.contextvars.clear_contextvars()


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
