"""C2SP signed notes, checkpoints and cosignatures against published vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.checkpoint import (
    Checkpoint,
    cosign,
    find_cosignature,
    open_checkpoint,
    sign_checkpoint,
)
from audit.errors import CheckpointError, NoteError
from audit.note import (
    ALG_COSIGNATURE_V1,
    Signature,
    Signer,
    Verifier,
    key_id,
    open_note,
    parse,
    sign,
)

DIR = Path("/work/shared/vectors/signed-note")
DOC = json.loads((DIR / "signed_note_vectors.json").read_text())
VEC = {v["id"]: v for v in DOC["vectors"]}
NEGATIVE = json.loads((DIR / "negative" / "negative_vectors.json").read_text())["vectors"]


@pytest.mark.parametrize("vid", ["xmod_peterneumann", "c2sp_example_foo", "sumdb_checkpoint"])
def test_valid_notes_open(vid: str) -> None:
    v = VEC[vid]
    note = open_note(v["signed_note"], [Verifier.parse(v["vkey"])])
    assert note.text == v["signed_note"].split("\n\n")[0] + "\n"
    assert len(note.signatures) == 1
    path = DIR / f"{vid}.note"
    assert open_note(path.read_bytes(), [Verifier.parse(v["vkey"])]).text == note.text


def test_unknown_signatures_are_ignored() -> None:
    v = VEC["xmod_enochroot_second_sig"]
    note = open_note(v["signed_note"], [Verifier.parse(v["vkey"])])
    assert [s.name for s in note.signatures] == ["EnochRoot"]


def test_tampered_text_is_rejected() -> None:
    v = VEC["xmod_peterneumann_tampered_text"]
    with pytest.raises(NoteError):
        open_note(v["signed_note"], [Verifier.parse(v["vkey"])])


def test_skey_signs_exactly_like_xmod() -> None:
    v = VEC["xmod_peterneumann"]
    signer = Signer.parse_skey(v["skey"])
    assert signer.verifier.text() == v["vkey"]
    assert sign(v["text"], signer) == v["signed_note"]  # Ed25519 is deterministic
    assert "AYEKF" not in repr(signer)


def test_sumdb_checkpoint_parses() -> None:
    v = VEC["sumdb_checkpoint"]
    key = Verifier.parse(v["vkey"])
    cp, _ = open_checkpoint(v["signed_note"], key, origin="go.sum database tree")
    assert (cp.origin, cp.size) == ("go.sum database tree", 6476701)
    with pytest.raises(CheckpointError):  # origin must match the expected log
        open_checkpoint(v["signed_note"], key)


@pytest.mark.parametrize("pair", VEC["formats_test_keys"]["pairs"], ids=lambda p: p[0][:8])
def test_key_ids_rederive(pair: list[str]) -> None:
    vkey, skey = pair
    v = Verifier.parse(vkey)
    assert key_id(v.name, v.alg, v.public_key) == v.key_id
    assert Signer.parse_skey(skey).verifier == v


def test_vkey_with_wrong_key_id_is_refused() -> None:
    vkey = VEC["c2sp_example_foo"]["vkey"].replace("+530d903a+", "+530d903b+")
    with pytest.raises(NoteError):
        Verifier.parse(vkey)


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda c: c["id"])
def test_negative_notes_are_rejected(case: dict[str, str]) -> None:
    data = (DIR / case["file"]).read_bytes()
    with pytest.raises(NoteError):
        open_note(data, [Verifier.parse(case["vkey"])])


def _signer(name: str, alg: int = 1) -> Signer:
    return Signer(name, Ed25519PrivateKey.generate(), alg)


def test_checkpoint_round_trip_and_golden_body() -> None:
    cp = Checkpoint("chengyang.exchange/audit", 3, bytes(range(32)))
    assert cp.body() == ("chengyang.exchange/audit\n3\n"
                         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    signer = _signer("chengyang.exchange/audit")
    note = sign_checkpoint(cp, signer)
    got, _ = open_checkpoint(note, Verifier.parse(signer.verifier.text()))
    assert got == cp
    with pytest.raises(NoteError):
        open_checkpoint(note.replace("\n3\n", "\n4\n"), signer.verifier)
    assert Checkpoint.parse_body(cp.body()) == cp


def test_cosignature_verifies_and_binds_body() -> None:
    log, witness = _signer("log.example"), _signer("witness.example", ALG_COSIGNATURE_V1)
    cp = Checkpoint("log.example", 10, bytes(32))
    note = sign_checkpoint(cp, log) + cosign(cp.body(), witness, 1_700_000_000)
    wkey = Verifier.parse(witness.verifier.text())
    body, cosig = find_cosignature(note, wkey)
    assert body == cp.body() and cosig.timestamp == 1_700_000_000
    # the cosignature is over "cosignature/v1\ntime <t>\n" + body, so a changed time fails
    sig = next(s for s in parse(note).signatures if s.name == "witness.example")
    moved = Signature(sig.name, sig.key_id, (1_700_000_001).to_bytes(8, "big") + sig.blob[8:])
    with pytest.raises(CheckpointError):
        find_cosignature(note.replace(sig.line(), moved.line()), wkey)
    other_body = Checkpoint("log.example", 11, bytes(32)).body()
    with pytest.raises(CheckpointError):
        find_cosignature(sign_checkpoint(Checkpoint.parse_body(other_body), log) + sig.line(),
                         wkey)
    with pytest.raises(CheckpointError):  # a note-signing key cannot stand in for a witness key
        find_cosignature(note, log.verifier)
