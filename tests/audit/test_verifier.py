"""The offline verifier on exports built in memory (no database)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import verifier
from audit.checkpoint import Checkpoint, sign_checkpoint
from audit.entry import encode
from audit.export import checkpoint_line, entry_line, header_line
from audit.merkle import leaf_hash, root_of
from audit.note import Signer
from audit.verifier import verify_export
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
