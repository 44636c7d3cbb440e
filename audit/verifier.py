"""Offline verification of an export: bytes in, verdict out (no database, no network).

The verifier recomputes every leaf and the tree from the export, checks the signed checkpoint,
and checks that the log still matches an earlier checkpoint the auditor kept. It reports the
first bad index and what is wrong. Where an edit was made with every stored hash recomputed,
the tree root is the only witness; the verifier then narrows the damage to the window between
the last signed checkpoint that still matches and the first that does not.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from audit import entry as entry_codec
from audit.checkpoint import Checkpoint, open_checkpoint
from audit.errors import AuditError, CheckpointError, ExportError, NoteError
from audit.export import parse_checkpoint_line, parse_entry_line, parse_header
from audit.merkle import CompactRange, leaf_hash
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


def verify_export(lines: Iterable[bytes], log_key: Verifier, *, checkpoint: str | None = None,
                  since: str | None = None, deep: bool = False) -> Verdict:
    """Verify export lines against the log key.

    `checkpoint` is the signed checkpoint to verify up to (default: the newest one in the export);
    `since` is an earlier checkpoint the auditor kept, which the log must still extend.
    `deep` also parses every entry against the schema and its canonical form.
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

    exported: list[Checkpoint] = []
    compact = CompactRange()
    roots: dict[int, bytes] = {}
    pending: set[int] = {cp.size for _, cp in trusted}
    lineno = 1
    if 0 in pending:
        roots[0] = compact.root()
    search, sha, b2a, append = _EMBEDDED_INDEX.search, hashlib.sha256, binascii.b2a_base64, \
        compact.append
    for lineno, line in enumerate(it, start=2):  # noqa: B007 - lineno used after the loop
        pos = compact.size
        # Fast path for a well-formed line at its place; anything else takes the slow path below,
        # which diagnoses exactly.
        digits = b"%d" % pos
        k = len(digits) + 18  # len('{"index":' + digits + ',"leaf":"')
        if (not deep and line[k + 44:k + 54] == b'","entry":' and line.endswith(b"}\n")
                and line.startswith(b'{"index":' + digits + b',"leaf":"')):
            data = line[k + 54:-2]
            m = search(data)
            if m is not None and m.group(1) == digits:
                leaf = sha(b"\x00" + data).digest()
                if b2a(leaf, newline=False) == line[k:k + 44]:
                    append(leaf)
                    if pos + 1 in pending:
                        roots[pos + 1] = compact.root()
                    continue
        if pos == 0 or not line.startswith(b'{"index"'):
            try:
                note_text = parse_checkpoint_line(line, lineno)
            except ExportError as exc:
                return _fail(Problem(str(exc), pos), pos, notes)
            if note_text is not None:
                if pos:
                    return _fail(Problem(f"line {lineno}: checkpoint after entries", pos),
                                 pos, notes)
                try:
                    cp = open_checkpoint(note_text, log_key, origin)[0]
                except (NoteError, CheckpointError) as exc:
                    return _fail(Problem(f"line {lineno}: exported checkpoint is forged or "
                                         f"malformed ({exc})"), 0, notes)
                exported.append(cp)
                pending.add(cp.size)
                continue
        try:
            index, data, stored_leaf = parse_entry_line(line, lineno)
        except ExportError as exc:
            return _fail(Problem(str(exc), pos), pos, notes)
        if index != pos:
            what = (f"line {lineno} holds index {index}: entries are missing, reordered or "
                    f"inserted here")
            return _fail(Problem(what, pos), pos, notes)
        m = _EMBEDDED_INDEX.search(data)
        embedded = -1 if m is None else int(m.group(1))
        if embedded != pos:
            return _fail(_misplaced(pos, embedded), pos, notes)
        if deep:
            try:
                entry_codec.decode(data)
            except AuditError as exc:
                return _fail(Problem(f"entry is invalid: {exc}", pos), pos, notes)
        leaf = leaf_hash(data)
        if leaf != stored_leaf:
            return _fail(Problem("entry bytes do not match the stored leaf hash: the entry "
                                 "was changed", pos), pos, notes)
        compact.append(leaf)
        if compact.size in pending:
            roots[compact.size] = compact.root()
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
