"""The offline verifier on exports built in memory (no database)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
