"""The verifier's fast path over a chunk of export entry lines (pure; runs in worker processes).

A chunk is `count` consecutive entry lines holding indexes `start .. start + count - 1`, with
`start` a multiple of the chunk size (a power of two), so the chunk is one aligned subtree. For
each line this checks exactly what the sequential verifier checks on a well-formed line (the
line's index, the index inside the entry bytes, the stored leaf hash), hashes the leaves, and
builds the subtree level by level. Any line that is not plainly well formed makes the whole
chunk return None: the caller then replays it line by line, which names the problem exactly.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass

from audit.merkle import perfect_nodes


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The chunk's perfect subtrees, left to right, and the prefix subtrees of pending sizes."""

    nodes: tuple[tuple[int, bytes], ...]  # (level, hash) covering [start, start + count)
    prefixes: dict[int, tuple[bytes, ...]]  # size s -> hashes of perfect_nodes(start, s)


# One whole line each (re.M): index, stored leaf hash, entry bytes.
_LINE = re.compile(rb'^\{"index":(\d+),"leaf":"([^\n]{44})","entry":([^\n]*)\}$', re.M)
_INDEX = b',"index":'


def _leaves(block: bytes, start: int, count: int) -> list[bytes] | None:
    if not block.endswith(b"\n") or block.count(b"\n") != count:
        return None  # a line without its newline, or a line break inside a line
    lines = _LINE.findall(block)
    if len(lines) != count:
        return None  # some line is not plainly well formed
    expected = [b"%d" % i for i in range(start, start + count)]
    if [m[0] for m in lines] != expected:
        return None
    # The first ',"index":' inside the entry must carry the same index (as the sequential
    # verifier's regex finds it); the sequential path diagnoses any other case.
    at = [m[2].find(_INDEX) + 9 for m in lines]
    if 8 in at or [m[2][i:i + len(e) + 1] for m, i, e in zip(lines, at, expected, strict=True)
                   ] != [e + b"," for e in expected]:
        return None
    sha, b2a = hashlib.sha256, binascii.b2a_base64
    leaves = [sha(b"\x00" + m[2]).digest() for m in lines]
    if [b2a(leaf, newline=False) for leaf in leaves] != [m[1] for m in lines]:
        return None
    return leaves


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    sha = hashlib.sha256
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        level = [sha(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2],
                                                              strict=False)]
        levels.append(level)
    return levels


def verify_chunk(block: bytes, start: int, count: int, chunk_size: int,
                 pending: tuple[int, ...]) -> ChunkResult | None:
    """Check and hash `count` entry lines (joined, each ending in a newline) at `start`.

    `pending` lists tree sizes in (start, start + count) whose roots the caller needs.
    """
    if count < 1 or count > chunk_size or start % chunk_size or chunk_size & (chunk_size - 1):
        raise ValueError("a chunk must be an aligned part of a power-of-two chunk size")
    leaves = _leaves(block, start, count)
    if leaves is None:
        return None
    levels = _levels(leaves)

    def hashes(end: int) -> tuple[tuple[int, bytes], ...]:
        return tuple((lvl, levels[lvl][j - (start >> lvl)]) for lvl, j in
                     perfect_nodes(start, end))

    return ChunkResult(hashes(start + count),
                       {s: tuple(h for _, h in hashes(s)) for s in pending})
