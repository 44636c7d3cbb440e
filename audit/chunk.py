"""The verifier's fast path over a chunk of export entry lines (pure; runs in worker processes).

A chunk is consecutive entry lines holding indexes `start .. start + len(lines) - 1`, with
`start` a multiple of the chunk size (a power of two), so the chunk is one aligned subtree. A
line passes only if it is byte for byte the line the exporter writes for its index and entry
bytes, with the entry's own index where the sequential verifier looks for it; for such a line
the sequential verifier accepts exactly the same leaf. Any other line makes the whole chunk
return None: the caller then replays it line by line, which names the problem exactly.

Every step maps a C function over the whole chunk: per-line Python bytecode, not hashing, was
most of the cost. The end of this module runs the fast path in a worker process, over pipes.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from binascii import b2a_base64
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from operator import getitem
from typing import IO, cast

from audit.merkle import perfect_nodes

_sha256 = hashlib.sha256
_slice_of = cast(Callable[[bytes, slice], bytes], getitem)  # map() calls it without bytecode
_digest = type(_sha256()).digest
_LINE = b'{"index":%d,"leaf":"%s=","entry":%s}\n'  # as audit.export.entry_line writes it
_ENTRY_AT = len(b'{"index":,"leaf":"') + 44 + len(b'","entry":')  # plus the index digits
_INDEX = b',"index":'
_INDEX_IS = b',"index":%d,'


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The chunk's perfect subtrees, left to right, and the prefix subtrees of pending sizes."""

    nodes: tuple[tuple[int, bytes], ...]  # (level, hash) covering [start, start + count)
    prefixes: dict[int, tuple[bytes, ...]]  # size s -> hashes of perfect_nodes(start, s)


@lru_cache(maxsize=4)
def _b64_pieces(count: int) -> struct.Struct:
    return struct.Struct("43sx" * count)


def _run_leaves(lines: list[bytes], start: int) -> list[bytes] | None:
    """Leaf hashes of lines whose indexes all have the same number of digits."""
    count = len(lines)
    at = _ENTRY_AT + len(b"%d" % start)
    entries = list(map(_slice_of, lines, repeat(slice(at, -2))))
    leaves = list(map(_digest, map(_sha256, map(b"\x00".__add__, entries))))
    # Base64 of all leaves in one call: padded to 33 bytes, each leaf encodes to its own 44
    # characters, the first 43 of them as the exporter writes them (the 44th is "=" there).
    b64 = b2a_base64(b"\x00".join(leaves) + b"\x00", newline=False)
    leaf_b64 = _b64_pieces(count).unpack(b64)
    indexes = range(start, start + count)
    if list(map(_LINE.__mod__, zip(indexes, leaf_b64, entries, strict=False))) != lines:
        return None
    # The first ',"index":' inside the entry must carry the line's index, as the sequential
    # verifier's regex finds it; the sequential path diagnoses any other case.
    first = list(map(bytes.find, entries, repeat(_INDEX)))
    if -1 in first or not all(map(bytes.startswith, entries, map(_INDEX_IS.__mod__, indexes),
                                  first)):
        return None
    return leaves


def _leaves(lines: list[bytes], start: int) -> list[bytes] | None:
    leaves: list[bytes] = []
    pos, end = start, start + len(lines)
    while pos < end:
        run_end = min(end, 10 ** len(b"%d" % pos))  # where the index gains a digit
        run = _run_leaves(lines[pos - start:run_end - start], pos)
        if run is None:
            return None
        leaves += run
        pos = run_end
    return leaves


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        pairs = zip(repeat(b"\x01"), level[0::2], level[1::2],
                    strict=False)  # odd last node: no parent yet
        level = list(map(_digest, map(_sha256, map(b"".join, pairs))))
        levels.append(level)
    return levels


def verify_chunk(lines: list[bytes], start: int, chunk_size: int, pending: tuple[int, ...]
                 ) -> ChunkResult | None:
    """Check and hash the entry lines (each with its newline) at `start`.

    `pending` lists tree sizes in (start, start + len(lines)) whose roots the caller needs.
    """
    count = len(lines)
    if count < 1 or count > chunk_size or start % chunk_size or chunk_size & (chunk_size - 1):
        raise ValueError("a chunk must be an aligned part of a power-of-two chunk size")
    try:
        leaves = _leaves(lines, start)
    except TypeError:  # lines that are not all bytes: the exact path copes or names them
        leaves = None
    if leaves is None:
        return None
    levels = _levels(leaves)

    def hashes(end: int) -> tuple[tuple[int, bytes], ...]:
        return tuple((lvl, levels[lvl][j - (start >> lvl)]) for lvl, j in
                     perfect_nodes(start, end))

    return ChunkResult(hashes(start + count),
                       {s: tuple(h for _, h in hashes(s)) for s in pending})


def verify_block(block: bytes, start: int, count: int, chunk_size: int,
                 pending: tuple[int, ...]) -> ChunkResult | None:
    """verify_chunk on `count` lines joined into one block (cheaper to send to a process)."""
    lines = block.splitlines(keepends=True)
    if len(lines) != count:
        return None  # a line break inside a line: the exact path, on the lines as read
    return verify_chunk(lines, start, chunk_size, pending)


# -- a worker process: a fresh interpreter reading chunks from stdin, writing results ---------
#
# It is started, not forked: a forked child shares the caller's heap (the export lines, if they
# are in memory), and every reference count either process then bumps copies a page (that cost
# ~20% more CPU). A request is a header, the pending sizes, then the block of lines; a reply is
# the result, as encode_result writes it.

_REQUEST = struct.Struct("<qqqqq")  # start, count, chunk_size, number of pending sizes, block size
_LENGTH = struct.Struct("<q")
_NODE = struct.Struct("<B32s")
_PREFIX = struct.Struct("<qq")  # size, number of hashes
# Run as `python -S -I -c WORKER_CODE <directory holding the audit package>`: this module
# imports only the standard library and audit.merkle, so the worker starts in ~0.03 s. Ctrl-C
# is for the verifier, which stops its workers itself.
WORKER_CODE = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
               "sys.path.insert(0, sys.argv[1]); from audit.chunk import serve; serve()")


def encode_request(block: bytes, start: int, count: int, chunk_size: int,
                   pending: tuple[int, ...]) -> bytes:
    """The request header (the block itself follows it)."""
    return (_REQUEST.pack(start, count, chunk_size, len(pending), len(block))
            + struct.pack(f"<{len(pending)}q", *pending))


def encode_result(result: ChunkResult | None) -> bytes:
    if result is None:
        return _LENGTH.pack(-1)
    parts = [_LENGTH.pack(len(result.nodes)), *(_NODE.pack(lvl, h) for lvl, h in result.nodes),
             _LENGTH.pack(len(result.prefixes))]
    for size, hashes in result.prefixes.items():
        parts += [_PREFIX.pack(size, len(hashes)), *hashes]
    return b"".join(parts)


def read_result(source: IO[bytes]) -> ChunkResult | None:
    def read(n: int) -> bytes:
        data = source.read(n)
        if len(data) != n:
            raise ChildProcessError("the chunk worker stopped")
        return data

    (n_nodes,) = _LENGTH.unpack(read(_LENGTH.size))
    if n_nodes < 0:
        return None
    nodes = tuple(_NODE.unpack(read(_NODE.size)) for _ in range(n_nodes))
    prefixes: dict[int, tuple[bytes, ...]] = {}
    for _ in range(_LENGTH.unpack(read(_LENGTH.size))[0]):
        size, n_hashes = _PREFIX.unpack(read(_PREFIX.size))
        prefixes[size] = tuple(read(32) for _ in range(n_hashes))
    return ChunkResult(nodes, prefixes)


def serve(source: IO[bytes] | None = None, sink: IO[bytes] | None = None) -> None:
    """The worker's loop, until its input ends."""
    source = source or sys.stdin.buffer
    sink = sink or sys.stdout.buffer
    while head := source.read(_REQUEST.size):
        start, count, chunk_size, n_pending, size = _REQUEST.unpack(head)
        pending = struct.unpack(f"<{n_pending}q", source.read(8 * n_pending))
        sink.write(encode_result(verify_block(source.read(size), start, count, chunk_size,
                                              pending)))
        sink.flush()
