"""The export file: JSON lines an auditor verifies offline.

    {"format":"exchange-audit-export/v1","origin":"<origin>","tree_size":N}     header, first
    {"checkpoint":"<signed note, with any witness cosignature lines>"}           0 or more
    {"index":I,"leaf":"<base64 leaf hash>","entry":<canonical entry JSON>}     N lines, I = 0..N-1

The canonical entry bytes stand verbatim on the line, so they are recovered exactly by slicing
between `"entry":` and the final `}` (never by re-serialising a parsed object). `leaf` is the
stored leaf hash, an untrusted hint that lets the verifier name an entry edited in place.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Final

from audit.errors import ExportError

FORMAT: Final = "exchange-audit-export/v1"
_PREFIX = b'{"index":'
_LEAF = b',"leaf":"'
_ENTRY = b'","entry":'


@dataclass(frozen=True, slots=True)
class Header:
    origin: str
    tree_size: int


def header_line(origin: str, tree_size: int) -> str:
    return json.dumps({"format": FORMAT, "origin": origin, "tree_size": tree_size},
                      ensure_ascii=False, separators=(",", ":")) + "\n"


def checkpoint_line(note: str) -> str:
    return json.dumps({"checkpoint": note}, ensure_ascii=False, separators=(",", ":")) + "\n"


def entry_line(index: int, entry: bytes, leaf: bytes) -> str:
    if b"\n" in entry or b"\r" in entry:
        raise ExportError(f"entry {index} is not canonical JSON (contains a line break)")
    h = base64.b64encode(leaf).decode()
    return f'{{"index":{index},"leaf":"{h}","entry":{entry.decode("utf-8")}}}\n'


def parse_header(line: bytes, lineno: int = 1) -> Header:
    try:
        doc = json.loads(line)
        if doc.get("format") != FORMAT:
            raise ValueError
        origin, size = doc["origin"], doc["tree_size"]
        if not isinstance(origin, str) or not isinstance(size, int) or size < 0:
            raise ValueError
    except (ValueError, KeyError, AttributeError, TypeError):
        raise ExportError(f"line {lineno}: not an {FORMAT} header") from None
    return Header(origin, size)


def parse_checkpoint_line(line: bytes, lineno: int) -> str | None:
    """The note of a checkpoint line, or None if the line is not one."""
    if not line.startswith(b'{"checkpoint":'):
        return None
    try:
        note = json.loads(line)["checkpoint"]
    except (ValueError, KeyError, TypeError):
        raise ExportError(f"line {lineno}: malformed checkpoint line") from None
    if not isinstance(note, str):
        raise ExportError(f"line {lineno}: malformed checkpoint line")
    return note


def parse_entry_line(line: bytes, lineno: int) -> tuple[int, bytes, bytes]:
    """(index, canonical entry bytes, stored leaf hash) of an entry line."""
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    comma = line.find(b",", len(_PREFIX), len(_PREFIX) + 20)
    digits = line[len(_PREFIX):comma]
    leaf_at = comma + len(_LEAF)
    if (not line.startswith(_PREFIX) or comma < 0 or not digits.isdigit()
            or (digits[:1] == b"0" and len(digits) > 1)
            or line[comma:leaf_at] != _LEAF
            or line[leaf_at + 44:leaf_at + 44 + len(_ENTRY)] != _ENTRY
            or not line.endswith(b"}")):
        raise ExportError(f"line {lineno}: not an entry line")
    try:
        leaf = binascii.a2b_base64(line[leaf_at:leaf_at + 44], strict_mode=True)
    except binascii.Error:
        raise ExportError(f"line {lineno}: leaf hash is not base64") from None
    return int(digits), line[leaf_at + 44 + len(_ENTRY):-1], leaf
