"""Offline verification of an export: bytes in, verdict out (no database, no network).

The verifier recomputes every leaf and the tree from the export, checks the signed checkpoint,
and checks that the log still matches an earlier checkpoint the auditor kept. It reports the
first bad index and what is wrong. Where an edit was made with every stored hash recomputed,
the tree root is the only witness; the verifier then narrows the damage to the window between
the last signed checkpoint that still matches and the first that does not.
"""

from __future__ import annotations

import gc
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import chain, islice

from audit import entry as entry_codec
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.chunk import ChunkResult, verify_chunk
from audit.errors import AuditError, CheckpointError, ExportError, NoteError
from audit.export import parse_checkpoint_line, parse_entry_line, parse_header
from audit.merkle import CompactRange, fold_right, leaf_hash
from audit.note import Verifier

_EMBEDDED_INDEX = re.compile(rb',"index":(0|[1-9][0-9]{0,17}),')


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong; `index` is the first bad entry (or the first of the window [index, end))."""

    what: str
    index: int | None = None
    end: int | None = None

    def __str__(self) -> str:
        if self.index is None:
            return self.what
        if self.end is not None and self.end - self.index > 1:
            return f"entries {self.index}..{self.end - 1}: {self.what}"
        return f"entry {self.index}: {self.what}"


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    entries: int
    checkpoint: Checkpoint | None
    problem: Problem | None = None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        if self.ok and self.checkpoint is not None:
            text = (f"OK: {self.entries} entries; checkpoint {self.checkpoint.origin} size "
                    f"{self.checkpoint.size} verified")
        else:
            text = f"FAILED: {self.problem}"
        return "\n".join([text, *self.notes])


def _misplaced(pos: int, embedded: int) -> Problem:
    if 0 <= embedded < pos:
        # Entry `embedded` moved up: every position from there on was filled by forged entries.
        return Problem(f"forged entries inserted: entry {embedded} is found at position {pos}",
                       embedded, pos)
    if embedded > pos:
        return Problem(f"this position holds entry {embedded}: entries were deleted, swapped "
                       "or moved", pos)
    return Problem("entry bytes carry no valid index: the entry was forged or changed", pos)


def _fail(problem: Problem, entries: int, notes: list[str]) -> Verdict:
    return Verdict(False, entries, None, problem, tuple(notes))


CHUNK_SIZE = 4096  # entry lines per chunk: a power of two, so each chunk is one subtree
_IN_FLIGHT_PER_WORKER = 2


class _Replay:
    """The verifier's state, and its exact line-by-line path (which names every problem)."""

    def __init__(self, log_key: Verifier, origin: str, deep: bool, pending: set[int]) -> None:
        self.log_key, self.origin, self.deep = log_key, origin, deep
        self.compact = CompactRange()
        self.roots: dict[int, bytes] = {}
        self.pending = pending
        self.exported: list[Checkpoint] = []
        if 0 in pending:
            self.roots[0] = self.compact.root()

    def line(self, line: bytes, lineno: int) -> Problem | None:
        compact = self.compact
        pos = compact.size
        if pos == 0 or not line.startswith(b'{"index"'):
            try:
                note_text = parse_checkpoint_line(line, lineno)
            except ExportError as exc:
                return Problem(str(exc), pos)
            if note_text is not None:
                if pos:
                    return Problem(f"line {lineno}: checkpoint after entries", pos)
                try:
                    cp = open_checkpoint(note_text, self.log_key, self.origin)[0]
                except (NoteError, CheckpointError) as exc:
                    return Problem(f"line {lineno}: exported checkpoint is forged or "
                                   f"malformed ({exc})")
                self.exported.append(cp)
                self.pending.add(cp.size)
                return None
        try:
            index, data, stored_leaf = parse_entry_line(line, lineno)
        except ExportError as exc:
            return Problem(str(exc), pos)
        if index != pos:
            return Problem(f"line {lineno} holds index {index}: entries are missing, reordered "
                           "or inserted here", pos)
        m = _EMBEDDED_INDEX.search(data)
        embedded = -1 if m is None else int(m.group(1))
        if embedded != pos:
            return _misplaced(pos, embedded)
        if self.deep:
            try:
                entry_codec.decode(data)
            except AuditError as exc:
                return Problem(f"entry is invalid: {exc}", pos)
        leaf = leaf_hash(data)
        if leaf != stored_leaf:
            return Problem("entry bytes do not match the stored leaf hash: the entry was "
                           "changed", pos)
        compact.append(leaf)
        if compact.size in self.pending:
            self.roots[compact.size] = compact.root()
        return None

    def chunk(self, lines: list[bytes], first_lineno: int, result: ChunkResult | None
              ) -> Problem | None:
        if result is None:  # not plainly well formed somewhere: replay it exactly
            for offset, line in enumerate(lines):
                problem = self.line(line, first_lineno + offset)
                if problem is not None:
                    return problem
            return None
        compact = self.compact
        before = compact.frontier()
        for level, h in result.nodes:
            compact.append_subtree(level, h)
        for s, hashes in result.prefixes.items():
            self.roots[s] = fold_right(before + list(hashes))
        if compact.size in self.pending:
            self.roots[compact.size] = compact.root()
        return None


def _chunks(lines: Iterator[bytes]) -> Iterator[list[bytes]]:
    while chunk := list(islice(lines, CHUNK_SIZE)):
        yield chunk


def _pending_in(pending: set[int], start: int, count: int) -> tuple[int, ...]:
    return tuple(sorted(s for s in pending if start < s < start + count))


def _fast_results(chunks: Iterator[list[bytes]], pending: set[int],
                  pool: Executor | None, workers: int
                  ) -> Iterator[tuple[list[bytes], ChunkResult | None]]:
    """Each chunk with its fast-path result, in order.

    With a pool of `workers - 1` processes, this process takes every `workers`-th chunk itself
    while the pool hashes the others, with a bounded look-ahead.
    """
    queue: deque[tuple[list[bytes], Future[ChunkResult | None]]] = deque()
    start = 0
    for n, lines in enumerate(chunks):
        args = (b"".join(lines), start, len(lines), CHUNK_SIZE,
                _pending_in(pending, start, len(lines)))
        start += len(lines)
        if pool is not None and n % workers:
            queue.append((lines, pool.submit(verify_chunk, *args)))
        else:
            done: Future[ChunkResult | None] = Future()
            done.set_result(verify_chunk(*args))
            queue.append((lines, done))
        while len(queue) > (0 if pool is None else workers * _IN_FLIGHT_PER_WORKER):
            ready, future = queue.popleft()
            yield ready, future.result()
    while queue:
        ready, future = queue.popleft()
        yield ready, future.result()


def verify_export(lines: Iterable[bytes], log_key: Verifier, *, checkpoint: str | None = None,
                  since: str | None = None, deep: bool = False, workers: int = 1) -> Verdict:
    """Verify export lines against the log key.

    `checkpoint` is the signed checkpoint to verify up to (default: the newest one in the export);
    `since` is an earlier checkpoint the auditor kept, which the log must still extend.
    `deep` also parses every entry against the schema and its canonical form.
    `workers` > 1 hashes chunks of entries in that many processes, this one included (same
    verdict, faster).
    """
    notes: list[str] = []
    it = iter(lines)
    try:
        header = parse_header(next(it))
    except StopIteration:
        return _fail(Problem("export is empty"), 0, notes)
    except ExportError as exc:
        return _fail(Problem(str(exc)), 0, notes)
    origin = header.origin

    trusted: list[tuple[str, Checkpoint]] = []  # (source, checkpoint) with valid signatures
    for source, text in (("--checkpoint", checkpoint), ("--since", since)):
        if text is None:
            continue
        try:
            trusted.append((source, open_checkpoint(text, log_key, origin)[0]))
        except (NoteError, CheckpointError) as exc:
            return _fail(Problem(f"{source} does not verify: {exc}"), 0, notes)

    replay = _Replay(log_key, origin, deep, {cp.size for _, cp in trusted})
    lineno = 1
    first: bytes | None = None
    for lineno, line in enumerate(it, start=2):  # noqa: B007 - checkpoint lines come first
        if not line.startswith(b'{"checkpoint":'):
            first = line
            break
        problem = replay.line(line, lineno)
        if problem is not None:
            return _fail(problem, 0, notes)
    if first is not None:
        chunks = _chunks(chain([first], it))
        with ExitStack() as stack:
            pool = None
            if workers > 1 and not deep and header.tree_size > 2 * CHUNK_SIZE:
                # Forked workers share the caller's heap; freezing it keeps their collector
                # from walking (and copying) every inherited object.
                pool = stack.enter_context(ProcessPoolExecutor(workers - 1,
                                                               initializer=gc.freeze))
                stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            if deep:
                results: Iterator[tuple[list[bytes], ChunkResult | None]] = (
                    (c, None) for c in chunks)
            else:
                results = _fast_results(chunks, replay.pending, pool, workers)
            for chunk_lines, result in results:
                pos = replay.compact.size
                problem = replay.chunk(chunk_lines, lineno + pos, result)
                if problem is not None:
                    return _fail(problem, replay.compact.size, notes)
    compact, roots, exported = replay.compact, replay.roots, replay.exported
    size = compact.size
    if size != header.tree_size:
        notes.append(f"header announced {header.tree_size} entries, export holds {size}")

    all_cps = sorted({(cp.size, cp.root): cp for cp in
                      [cp for _, cp in trusted] + exported}.values(), key=lambda c: c.size)
    by_size: dict[int, list[Checkpoint]] = {}
    for cp in all_cps:
        by_size.setdefault(cp.size, []).append(cp)
    for s, cps in by_size.items():
        if len(cps) > 1:
            return _fail(Problem(f"two different signed roots for tree size {s}: the log "
                                 "forked"), size, notes)
    # The window between the last checkpoint that matches and the first that does not.
    matched = 0
    for cp in all_cps:
        if cp.size > size:
            return _fail(Problem(f"log truncated: a signed checkpoint covers {cp.size} entries "
                                 f"but the export holds {size}", size, cp.size), size, notes)
        if roots.get(cp.size) != cp.root:
            return _fail(Problem(f"entries differ from the signed checkpoint of size {cp.size}: "
                                 "changed, deleted, reordered or forged entries", matched,
                                 cp.size), size, notes)
        matched = cp.size

    target = next((cp for src, cp in trusted if src == "--checkpoint"), None)
    if target is None:
        target = max(exported, key=lambda c: c.size) if exported else None
    if target is None:
        return _fail(Problem("no signed checkpoint to verify against (pass --checkpoint)"),
                     size, notes)
    old = next((cp for src, cp in trusted if src == "--since"), None)
    if old is not None:
        if old.size > target.size:
            return _fail(Problem(f"--since (size {old.size}) is newer than the checkpoint "
                                 f"(size {target.size})"), size, notes)
        notes.append(f"consistent with the earlier checkpoint of size {old.size}")
    if size > target.size:
        notes.append(f"{size - target.size} entries after the checkpoint are not yet covered "
                     "by a signed checkpoint")
    return Verdict(True, size, target, None, tuple(notes))
