"""The offline verifier on exports built in memory (no database)."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import Future

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import verifier
from audit.checkpoint import Checkpoint, sign_checkpoint
from audit.chunk import (
    ChunkResult,
    encode_request,
    encode_result,
    read_result,
    serve,
    verify_chunk,
)
from audit.entry import encode
from audit.export import checkpoint_line, entry_line, header_line
from audit.merkle import leaf_hash, root_of
from audit.note import Signer
from audit.verifier import ChunkWorker, Problem, Verdict, verify_export
from tests.audit.conftest import ORIGIN, disclosure

ENTRIES = [encode(i, disclosure(i)) for i in range(12)]


def _cp(signer: Signer, size: int, root: bytes | None = None) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, root or root_of(ENTRIES[:size])), signer)


def _export(signer: Signer, cps: list[str], entries: list[bytes] = ENTRIES) -> list[bytes]:
    lines = [header_line(ORIGIN, len(entries))] + [checkpoint_line(c) for c in cps]
    lines += [entry_line(i, e, leaf_hash(e)) for i, e in enumerate(entries)]
    return [line.encode() for line in lines]


def _signer() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.generate())


SIGNER = _signer()


def test_clean_export_verifies_with_uncovered_tail_noted() -> None:
    s = _signer()
    verdict = verify_export(_export(s, [_cp(s, 4), _cp(s, 10)]), s.verifier, since=_cp(s, 4))
    assert verdict.ok and verdict.checkpoint is not None and verdict.checkpoint.size == 10
    assert any("2 entries after the checkpoint" in n for n in verdict.notes)


def test_checkpoint_by_another_key_is_refused() -> None:
    s, mallory = _signer(), Signer(ORIGIN, Ed25519PrivateKey.generate())
    verdict = verify_export(_export(s, [_cp(mallory, 12)]), s.verifier)
    assert not verdict.ok and "forged" in verdict.summary()
    verdict = verify_export(_export(s, [_cp(s, 12)]), s.verifier, since=_cp(mallory, 5))
    assert not verdict.ok and "--since does not verify" in verdict.summary()


def test_fork_is_reported() -> None:
    s = _signer()
    other = _cp(s, 6, root=root_of(ENTRIES[1:7]))
    verdict = verify_export(_export(s, [_cp(s, 6), _cp(s, 12)]), s.verifier, since=other)
    assert not verdict.ok and "forked" in verdict.summary()


def test_without_any_checkpoint_nothing_is_verified() -> None:
    s = _signer()
    verdict = verify_export(_export(s, []), s.verifier)
    assert not verdict.ok and "no signed checkpoint" in verdict.summary()


def test_malformed_line_is_named() -> None:
    s = _signer()
    lines = _export(s, [_cp(s, 12)])
    lines[5] = lines[5][:40] + b"\n"
    verdict = verify_export(lines, s.verifier)
    assert not verdict.ok and str(verdict.problem).startswith("entry 3: line 6")


def test_newer_since_than_checkpoint_is_refused() -> None:
    s = _signer()
    verdict = verify_export(_export(s, []), s.verifier, checkpoint=_cp(s, 5), since=_cp(s, 9))
    assert not verdict.ok and "newer" in verdict.summary()


# -- the chunked fast path (chunks of CHUNK_SIZE lines, optionally in worker processes) ------

MANY = [encode(i, disclosure(i)) for i in range(37)]


def _many(signer: Signer, sizes: list[int]) -> list[bytes]:
    cps = [_cp_of(signer, MANY, s) for s in sizes]
    return _export(signer, cps, MANY)


def _cp_of(signer: Signer, entries: list[bytes], size: int) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, root_of(entries[:size])), signer)


@pytest.fixture(autouse=True)
def _workers_even_for_small_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier, "_WORKERS_FROM_CHUNKS", 1)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk", [1, 4, 8])
def test_chunked_verification_matches_checkpoints_inside_and_at_chunk_ends(
        monkeypatch: pytest.MonkeyPatch, workers: int, chunk: int) -> None:
    monkeypatch.setattr(verifier, "CHUNK_SIZE", chunk)
    s = _signer()
    sizes = [1, 3, 4, 8, 9, 16, 30, 37]
    verdict = verify_export(_many(s, sizes), s.verifier, since=_cp_of(s, MANY, 5),
                            workers=workers)
    assert verdict.ok, verdict.summary()
    assert verdict.entries == 37 and verdict.checkpoint is not None
    bad = _cp_of(s, MANY[:20] + [MANY[21]] + MANY[21:], 24)  # a root that is not this log's
    verdict = verify_export(_many(s, [37]), s.verifier, since=bad, workers=workers)
    assert not verdict.ok and "size 24" in verdict.summary()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("k", [0, 5, 8, 19, 36])
def test_chunked_verification_names_the_edited_entry(monkeypatch: pytest.MonkeyPatch,
                                                     workers: int, k: int) -> None:
    monkeypatch.setattr(verifier, "CHUNK_SIZE", 4)
    s = _signer()
    lines = _many(s, [37])
    lines[2 + k] = lines[2 + k].replace(b'"req-', b'"REQ-')
    verdict = verify_export(lines, s.verifier, workers=workers)
    assert not verdict.ok and str(verdict.problem).startswith(f"entry {k}:"), verdict.summary()


def test_line_endings_the_fast_path_leaves_to_the_exact_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier, "CHUNK_SIZE", 4)
    s = _signer()
    lines = _many(s, [37])
    lines[-1] = lines[-1].rstrip(b"\n")  # the last line of a file without its newline
    lines[9] = lines[9].replace(b"\n", b"\r\n")
    assert verify_export(lines, s.verifier).ok
    assert verify_export(lines, s.verifier, workers=2).ok


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 37), st.sampled_from([1, 2, 4, 8, 16]), st.data())
def test_chunked_and_exact_paths_agree(n: int, chunk: int, data: st.DataObject) -> None:
    s = SIGNER
    sizes = data.draw(st.lists(st.integers(1, n), max_size=4, unique=True))
    cps = [_cp_of(s, MANY, size) for size in sizes]
    lines = _export(s, cps, MANY[:n])
    edit = data.draw(st.one_of(st.none(), st.integers(0, n - 1)))
    if edit is not None:
        lines[1 + len(cps) + edit] = lines[1 + len(cps) + edit].replace(b'"req-', b'"REQ-')
    # deep=True takes the exact line-by-line path for every line
    exact = verify_export(lines, s.verifier, checkpoint=_cp_of(s, MANY, n), deep=True)
    old = verifier.CHUNK_SIZE
    verifier.CHUNK_SIZE = chunk
    try:
        fast = verify_export(lines, s.verifier, checkpoint=_cp_of(s, MANY, n))
    finally:
        verifier.CHUNK_SIZE = old
    assert (fast.ok, str(fast.problem), fast.entries) == (
        exact.ok, str(exact.problem), exact.entries)
    assert fast.ok == (edit is None)


# -- the fast path rejects what the exact path rejects, and names the same first problem -----

def _entry_of(line: bytes) -> bytes:
    return line[line.index(b'"entry":') + 8:line.rindex(b"}")]


def _with_entry(index: int, entry: bytes) -> bytes:
    """An entry line with its stored leaf recomputed, as a careful forger writes it."""
    return entry_line(index, entry, leaf_hash(entry)).encode()


def _relabel(line: bytes, old: int, new: int) -> bytes:
    """The line with its entry's own index changed."""
    return _with_entry(old, _entry_of(line).replace(b',"index":%d,' % old,
                                                    b',"index":%d,' % new, 1))


def _noncanonical_b64(line: bytes) -> bytes:
    at = line.index(b'"leaf":"') + 8 + 42  # the last data character: 2 of its bits are unused
    return line[:at] + bytes([line[at] + 1]) + line[at + 1:]  # +1 in the alphabet, too


# Each takes the export lines and the position of entry 0 in them, and returns new lines.
MUTATIONS: dict[str, Callable[[list[bytes], int], list[bytes]]] = {
    "clean": lambda ls, e: ls,
    "leading zero index": lambda ls, e: ls[:e + 11] + [ls[e + 11].replace(
        b'{"index":11,', b'{"index":011,', 1)] + ls[e + 12:],
    "crlf line ending": lambda ls, e: ls[:e + 9] + [ls[e + 9][:-1] + b"\r\n"] + ls[e + 10:],
    "no newline at the end": lambda ls, e: ls[:-1] + [ls[-1][:-1]],
    "no newline in the middle": lambda ls, e: ls[:e + 6] + [ls[e + 6][:-1]] + ls[e + 7:],
    "line break inside a line": lambda ls, e: ls[:e + 6] + [ls[e + 6] + ls[e + 7]] + ls[e + 8:],
    "space before the closing brace": lambda ls, e: ls[:e + 3] + [ls[e + 3][:-2] + b" }\n"]
    + ls[e + 4:],
    "blank line": lambda ls, e: ls[:e + 12] + [b"\n"] + ls[e + 12:],
    "non-canonical base64 leaf": lambda ls, e: ls[:e + 13] + [_noncanonical_b64(ls[e + 13])]
    + ls[e + 14:],
    "leaf of another entry": lambda ls, e: ls[:e + 5] + [ls[e + 5].replace(
        ls[e + 5][19:63], ls[e + 6][19:63], 1)] + ls[e + 6:],
    "embedded index changed": lambda ls, e: ls[:e + 14] + [_relabel(ls[e + 14], 14, 15)]
    + ls[e + 15:],
    "embedded index with a leading zero": lambda ls, e: ls[:e + 14] + [_with_entry(
        14, _entry_of(ls[e + 14]).replace(b',"index":14,', b',"index":014,'))]
    + ls[e + 15:],
    "an earlier index key in the entry": lambda ls, e: ls[:e + 7] + [_with_entry(
        7, _entry_of(ls[e + 7]).replace(b'{"action"', b'{"a":{"x":1,"index":3,'
                                                   b'"y":2},"action"', 1))] + ls[e + 8:],
    "a bad then a good embedded index": lambda ls, e: ls[:e + 7] + [_with_entry(
        7, _entry_of(ls[e + 7]).replace(b'{"action"', b'{"a":{"x":1,"index":x,'
                                                   b'"y":2},"action"', 1))] + ls[e + 8:],
    "no embedded index": lambda ls, e: ls[:e + 2] + [_with_entry(
        2, _entry_of(ls[e + 2]).replace(b',"index":2,', b',"indeks":2,'))]
    + ls[e + 3:],
    "duplicated line": lambda ls, e: ls[:e + 10] + [ls[e + 9]] + ls[e + 10:],
    "missing line": lambda ls, e: ls[:e + 10] + ls[e + 11:],
    "swapped lines": lambda ls, e: ls[:e + 4] + [ls[e + 5], ls[e + 4]] + ls[e + 6:],
    "checkpoint line among entries": lambda ls, e: ls[:e + 8] + [ls[e - 1]] + ls[e + 8:],
    "bytearray lines": lambda ls, e: ls[:e] + [bytearray(x) for x in ls[e:]],
}


def _exact_only(monkeypatch: pytest.MonkeyPatch, lines: list[bytes], cp: str) -> Verdict:
    """The verdict of the exact line-by-line path alone (the fast path declines every chunk)."""
    with monkeypatch.context() as m:
        m.setattr(verifier, "verify_chunk", lambda *args: None)
        return verify_export(lines, SIGNER.verifier, checkpoint=cp)


@pytest.mark.parametrize("chunk", [4, 16])
@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=str)
def test_fast_path_agrees_with_the_exact_path_on_tampered_lines(
        monkeypatch: pytest.MonkeyPatch, mutation: str, chunk: int) -> None:
    monkeypatch.setattr(verifier, "CHUNK_SIZE", chunk)
    cp = _cp_of(SIGNER, MANY, 37)
    clean = _export(SIGNER, [cp], MANY)
    lines = MUTATIONS[mutation](clean, 2)
    expected = _exact_only(monkeypatch, lines, cp)
    harmless = {"clean", "crlf line ending", "no newline at the end", "no newline in the middle",
                "non-canonical base64 leaf", "bytearray lines"}
    assert expected.ok == (mutation in harmless), expected.summary()
    for workers in (1, 2) if chunk == 4 else (1,):  # worker processes take ~0.1 s to start
        for source in (lines, iter(lines)):  # in memory, or read as from a file
            fast = verify_export(source, SIGNER.verifier, checkpoint=cp, workers=workers)
            assert (fast.ok, str(fast.problem), fast.entries) == (
                expected.ok, str(expected.problem), expected.entries), (workers, fast.summary())


def test_fast_path_is_taken_for_clean_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the speed: a clean export must not fall back to the exact path."""
    monkeypatch.setattr(verifier, "CHUNK_SIZE", 4)
    replayed: list[int] = []
    original = verifier._Replay.line

    def counting(self: verifier._Replay, line: bytes, lineno: int) -> Problem | None:
        replayed.append(lineno)
        return original(self, line, lineno)

    monkeypatch.setattr(verifier._Replay, "line", counting)
    cp = _cp_of(SIGNER, MANY, 37)
    assert verify_export(_export(SIGNER, [cp], MANY), SIGNER.verifier).ok
    assert replayed == [2]  # the checkpoint line only


def test_worker_processes_take_chunks_and_a_dead_one_costs_only_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier, "CHUNK_SIZE", 4)
    sent: list[Future[ChunkResult | None]] = []

    class Counting(ChunkWorker):
        def submit(self, block: bytes, start: int, count: int, chunk_size: int,
                   pending: tuple[int, ...]) -> Future[ChunkResult | None]:
            sent.append(super().submit(block, start, count, chunk_size, pending))
            return sent[-1]

    class Dead(ChunkWorker):
        def __init__(self) -> None:
            super().__init__()
            self._proc.kill()

    lines = _many(SIGNER, [9, 37])
    edited = list(lines)
    edited[3 + 20] = edited[3 + 20].replace(b'"req-', b'"REQ-')
    for worker in (Counting, Dead):
        monkeypatch.setattr(verifier, "ChunkWorker", worker)
        assert verify_export(lines, SIGNER.verifier, workers=2).ok
        verdict = verify_export(iter(edited), SIGNER.verifier, workers=2)
        assert not verdict.ok and str(verdict.problem).startswith("entry 20:"), verdict.summary()
    # the live worker really hashed chunks (a failing one would only have cost time)
    assert sent and all(f.exception() is None for f in sent if f.done())
    assert any(f.done() and f.result() is not None for f in sent)


def test_worker_result_encoding_round_trips() -> None:
    result = ChunkResult(((3, b"a" * 32), (0, b"b" * 32)), {5: (b"c" * 32,), 6: ()})
    for value in (result, None):
        assert read_result(io.BytesIO(encode_result(value))) == value
    with pytest.raises(ChildProcessError):
        read_result(io.BytesIO(encode_result(result)[:-1]))


def test_worker_loop_answers_each_request_in_order() -> None:
    lines = _export(SIGNER, [], MANY)[1:]  # entry lines 0..36
    requests = [(lines[0:16], 0, (3, 16)), (lines[16:32], 16, ()), (lines[32:], 32, (35,))]
    sink = io.BytesIO()
    serve(io.BytesIO(b"".join(encode_request(b"".join(ls), start, len(ls), 16, pending)
                              + b"".join(ls) for ls, start, pending in requests)), sink)
    sink.seek(0)
    for ls, start, pending in requests:
        assert read_result(sink) == verify_chunk(ls, start, 16, pending) is not None
    assert sink.read() == b""


def test_entries_with_details_take_the_fast_path_and_agree_with_the_exact_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    monkeypatch.setattr(verifier, "CHUNK_SIZE", 4)
    mixed = [encode(i, replace(disclosure(i), details={"rows_total": i, "ok": True})
                    if i % 3 == 0 else disclosure(i)) for i in range(13)]
    assert b'"v":2' in mixed[0] and b'"v":1' in mixed[1]
    replayed: list[int] = []
    original = verifier._Replay.line

    def counting(self: verifier._Replay, line: bytes, lineno: int) -> Problem | None:
        replayed.append(lineno)
        return original(self, line, lineno)

    monkeypatch.setattr(verifier._Replay, "line", counting)
    cp = _cp_of(SIGNER, mixed, 13)
    assert verify_export(_export(SIGNER, [cp], mixed), SIGNER.verifier).ok
    assert replayed == [2]  # only the checkpoint line went the exact way
    lines = _export(SIGNER, [cp], mixed)  # header, checkpoint, then entry 0 ...
    lines[8] = lines[8].replace(b'"rows_total":6', b'"rows_total":7')  # the stored leaf stays
    for deep in (False, True):
        verdict = verify_export(lines, SIGNER.verifier, deep=deep)
        assert not verdict.ok and verdict.problem is not None and verdict.problem.index == 6
