"""The keyring document: the JSON form local providers keep their keys in.

    {"format": "exchange-keyring/1", "development": false, "audit_key_name": "...",
     "keys": {"root": {"current": 2, "versions": {"1": "<base64>", "2": "<base64>"}},
              "blind_index": {...}, "case_pseudonym": {...}, "audit_pseudonym": {...},
              "audit_signing": {...}}}

Parsing errors name the offending entry, never its material.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keys.errors import KeyringFormatError

DOCUMENT_FORMAT = "exchange-keyring/1"
DEFAULT_AUDIT_KEY_NAME = "exchange-audit"
SECRET_LENGTH = 32


class Purpose(enum.Enum):
    ROOT = "root"
    BLIND_INDEX = "blind_index"
    CASE_PSEUDONYM = "case_pseudonym"
    AUDIT_PSEUDONYM = "audit_pseudonym"
    AUDIT_SIGNING = "audit_signing"


@dataclass(slots=True)
class Versions:
    current: int
    versions: dict[int, bytes]


def fresh_keys() -> dict[Purpose, Versions]:
    return {p: Versions(1, {1: secrets.token_bytes(SECRET_LENGTH)}) for p in Purpose}


def check_key_name(name: str) -> None:
    # C2SP signed-note key names: non-empty, no spaces or '+'.
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise KeyringFormatError("audit key name must be non-empty, printable, no space or '+'")


def load_json(text: str, source: str) -> Mapping[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # position only: the document holds key material, never echo it
        raise KeyringFormatError(f"{source}: not JSON (line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise KeyringFormatError(f"{source}: keyring document must be a JSON object")
    return document


def to_document(
    keys: Mapping[Purpose, Versions], development: bool, audit_key_name: str
) -> dict[str, Any]:
    return {
        "format": DOCUMENT_FORMAT,
        "development": development,
        "audit_key_name": audit_key_name,
        "keys": {
            purpose.value: {
                "current": entry.current,
                "versions": {
                    str(v): base64.b64encode(m).decode("ascii")
                    for v, m in sorted(entry.versions.items())
                },
            }
            for purpose, entry in keys.items()
        },
    }


def parse_document(document: Mapping[str, Any]) -> tuple[dict[Purpose, Versions], bool, str]:
    """Validate a keyring document; errors name the offending entry, never its material."""
    if document.get("format") != DOCUMENT_FORMAT:
        raise KeyringFormatError(f"keyring format must be {DOCUMENT_FORMAT!r}")
    development = document.get("development")
    if not isinstance(development, bool):
        raise KeyringFormatError("keyring 'development' must be true or false")
    name = document.get("audit_key_name", DEFAULT_AUDIT_KEY_NAME)
    if not isinstance(name, str):
        raise KeyringFormatError("keyring 'audit_key_name' must be a string")
    check_key_name(name)
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, dict):
        raise KeyringFormatError("keyring 'keys' must be an object")
    keys: dict[Purpose, Versions] = {}
    for purpose in Purpose:
        entry = raw_keys.get(purpose.value)
        where = f"keys.{purpose.value}"
        if not isinstance(entry, dict):
            raise KeyringFormatError(f"keyring lacks {where}")
        current, versions = entry.get("current"), entry.get("versions")
        if not isinstance(current, int) or not isinstance(versions, dict):
            raise KeyringFormatError(f"{where} needs 'current' (int) and 'versions' (object)")
        parsed: dict[int, bytes] = {}
        for label, encoded in versions.items():
            if not (isinstance(label, str) and label.isdigit() and int(label) > 0):
                raise KeyringFormatError(f"{where}.versions has a non-numeric version")
            try:
                material = base64.b64decode(str(encoded), validate=True)
            except binascii.Error:
                raise KeyringFormatError(f"{where}.versions.{label} is not base64") from None
            if len(material) != SECRET_LENGTH:
                raise KeyringFormatError(f"{where}.versions.{label} must be 32 bytes")
            parsed[int(label)] = material
        if current not in parsed:
            raise KeyringFormatError(f"{where}.current names a version that is not present")
        keys[purpose] = Versions(current, parsed)
    return keys, development, name
