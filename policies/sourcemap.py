"""Line numbers for keys and tables of a TOML text.

tomllib reports lines only for syntax errors, so semantic errors find their line here by
scanning the text: `[table]` headers and `key =` lines, including dotted keys and inline
tables (which resolve to the line of the enclosing key).
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]#]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_SYNTAX_LINE = re.compile(r"at line (\d+)")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("\"'") for p in dotted.split("."))


class SourceMap:
    """Where each table header and key first appears in a document."""

    def __init__(self, text: str) -> None:
        self._headers: dict[tuple[str, ...], int] = {}
        self._keys: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _parts(header.group(1))
                self._headers.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                self._keys.setdefault((table, _parts(key.group(1))), number)

    def line_of(self, *path: str) -> int:
        """The line of the most specific known prefix of `path`; 0 if none is found."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._headers:
                return self._headers[path[:end]]
            for split in range(end - 1, -1, -1):
                found = self._keys.get((path[:split], path[split:end]))
                if found is not None:
                    return found
        return 0


def syntax_error_line(message: str) -> int:
    """The line tomllib names in a syntax error message, or 0."""
    match = _SYNTAX_LINE.search(message)
    return int(match.group(1)) if match else 0
