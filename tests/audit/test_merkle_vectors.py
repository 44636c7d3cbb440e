"""RFC 6962 hashing and proofs against the transparency-dev and reference vectors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import ProofError
from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    build_consistency,
    build_inclusion,
    leaf_hash,
    node_hash,
    perfect_nodes,
    root_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path("/work/shared/vectors")
TESTDATA = VECTORS / "transparency-dev-merkle" / "testdata"
REF = json.loads((VECTORS / "rfc6962_reference_roots.json").read_text())
LEAVES = [bytes.fromhex(h) for h in REF["leaf_inputs_hex"]]


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


def _files(kind: str) -> list[Path]:
    files = sorted((TESTDATA / kind).rglob("*.json"))
    assert len(files) > 90
    return files


def test_hasher_unit_vectors() -> None:
    u = REF["hasher_unit_vectors"]
    assert EMPTY_ROOT.hex() == u["empty_tree_root"]
    assert leaf_hash(b"").hex() == u["leaf_hash(b'')"]
    assert leaf_hash(b"L123456").hex() == u["leaf_hash(b'L123456')"]
    assert node_hash(b"N123", b"N456").hex() == u["node_hash(b'N123', b'N456')"]


def test_reference_leaves_and_roots() -> None:
    assert [leaf_hash(x).hex() for x in LEAVES] == REF["leaf_hashes_hex"]
    for size, root in enumerate(REF["roots_by_size_hex"]):
        assert root_of(LEAVES[:size]).hex() == root


@pytest.mark.parametrize("path", _files("inclusion"), ids=lambda p: str(p.relative_to(TESTDATA)))
def test_inclusion_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), [_b64(p) for p in v["proof"] or []],
            _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _files("consistency"),
                         ids=lambda p: str(p.relative_to(TESTDATA)))
def test_consistency_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]),
            [_b64(p) for p in v["proof"] or []])
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def _tree_reader(leaves: list[bytes]):  # type: ignore[no-untyped-def]
    hashes = [leaf_hash(x) for x in leaves]

    def read(ids: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {(lvl, j): root_of_hashes(hashes[j << lvl:(j + 1) << lvl]) for lvl, j in ids}
    return read


def root_of_hashes(hashes: list[bytes]) -> bytes:
    cr = CompactRange()
    for h in hashes:
        cr.append(h)
    return cr.root()


def test_generated_8leaf_inclusion_proofs() -> None:
    cases = json.loads((VECTORS / "generated_inclusion_proofs_8leaf.json").read_text())
    assert len(cases) == 36
    read = _tree_reader(LEAVES)
    for c in cases:
        proof = build_inclusion(c["index"], c["size"], read)
        assert [h.hex() for h in proof.hashes] == c["path"]
        root = bytes.fromhex(REF["roots_by_size_hex"][c["size"]])
        verify_inclusion(c["index"], c["size"], leaf_hash(LEAVES[c["index"]]), proof.hashes, root)


def test_generated_8leaf_consistency_proofs() -> None:
    cases = json.loads((VECTORS / "generated_consistency_proofs_8leaf.json").read_text())
    assert len(cases) == 36
    read = _tree_reader(LEAVES)
    roots = [bytes.fromhex(r) for r in REF["roots_by_size_hex"]]
    for c in cases:
        proof = build_consistency(c["size1"], c["size2"], read)
        assert [h.hex() for h in proof.hashes] == c["proof"]
        verify_consistency(c["size1"], c["size2"], roots[c["size1"]], roots[c["size2"]],
                           proof.hashes)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_built_proofs_verify_for_any_size(size: int, data: st.DataObject) -> None:
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    read = _tree_reader(leaves)
    root = root_of(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = build_inclusion(index, size, read)
    assert len(proof.hashes) <= 2 * size.bit_length()
    verify_inclusion(index, size, leaf_hash(leaves[index]), proof.hashes, root)
    first = data.draw(st.integers(1, size))
    cons = build_consistency(first, size, read)
    verify_consistency(first, size, root_of(leaves[:first]), root, cons.hashes)
    if cons.hashes:  # a wrong old root must not verify
        with pytest.raises(ProofError):
            verify_consistency(first, size, leaf_hash(b"x"), root, cons.hashes)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_perfect_nodes_tile_the_range(a: int, b: int) -> None:
    begin, end = min(a, b), max(a, b)
    covered = []
    for level, j in perfect_nodes(begin, end):
        covered += range(j << level, (j + 1) << level)
    assert covered == list(range(begin, end))
