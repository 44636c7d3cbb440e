"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification (pure).

Nodes are addressed as (level, index): node (k, j) is the perfect subtree over leaves
[j * 2**k, (j + 1) * 2**k). Proof builders return the *node ids* they need, so a store can fetch
O(log n) stored hashes in one read and never recompute from all leaves.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from audit.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
NodeId = tuple[int, int]
Range = tuple[int, int]

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(begin: int, end: int) -> list[NodeId]:
    """The aligned perfect subtrees covering [begin, end), left to right."""
    out: list[NodeId] = []
    while begin < end:
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while begin + (1 << level) > end:
            level -= 1
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def node_row(node: NodeId) -> int:
    """Index of the last leaf under a node: the leaf whose append completed it."""
    level, index = node
    return ((index + 1) << level) - 1


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash of a range from its perfect decomposition (right-heavy, as RFC 6962 splits)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Leaf ranges whose hashes form PATH(index, D[0:size]), bottom-up (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    out: list[Range] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _largest_power_of_two_below(end - begin)
        if index - begin < k:
            out.append((begin + k, end))
            end = begin + k
        else:
            out.append((begin, begin + k))
            begin = begin + k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[Range]:
    """Leaf ranges whose hashes form PROOF(first, D[0:second]) (RFC 9162 2.1.4.1)."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    out: list[Range] = []
    begin, end, m, complete = 0, second, first, True
    while m != end - begin:
        k = _largest_power_of_two_below(end - begin)
        if m <= k:
            out.append((begin + k, end))
            end = begin + k
        else:
            out.append((begin, begin + k))
            begin, m, complete = begin + k, m - k, False
    if not complete:
        out.append((begin, end))
    out.reverse()
    return out


def nodes_for(ranges: Iterable[Range]) -> set[NodeId]:
    needed: set[NodeId] = set()
    for begin, end in ranges:
        needed.update(perfect_nodes(begin, end))
    return needed


def hashes_for(ranges: Sequence[Range], nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """The proof hashes for `ranges`, given every node `nodes_for(ranges)` named."""
    try:
        return [fold_right([nodes[n] for n in perfect_nodes(b, e)]) for b, e in ranges]
    except KeyError as exc:
        raise ProofError(f"stored tree lacks node {exc.args[0]}") from None


def root_from_nodes(size: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    return fold_right([nodes[n] for n in perfect_nodes(0, size)])


class CompactRange:
    """The right edge of a tree of `size` leaves: append leaves, get the root, in O(log n)."""

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        expected = len(perfect_nodes(0, size))
        if len(frontier) != expected:
            raise ProofError(f"a tree of size {size} has {expected} frontier nodes")
        self.size = size
        levels = [lvl for lvl, _ in perfect_nodes(0, size)]
        self._stack: list[tuple[int, bytes]] = list(zip(levels, frontier, strict=True))

    def append(self, leaf: bytes) -> list[bytes]:
        """Add a leaf hash; return the interior hashes it completed, lowest level first."""
        stack = self._stack
        completed: list[bytes] = []
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
            completed.append(h)
        stack.append((level, h))
        self.size += 1
        return completed

    def append_subtree(self, level: int, h: bytes) -> None:
        """Add the hash of a perfect subtree of 2**level leaves that starts at `size`."""
        if self.size & ((1 << level) - 1):
            raise ProofError(f"a subtree of 2**{level} leaves cannot start at {self.size}")
        self.size += 1 << level
        stack = self._stack
        while stack and stack[-1][0] == level:  # binary addition, carrying upwards
            h = node_hash(stack.pop()[1], h)
            level += 1
        stack.append((level, h))

    def frontier(self) -> list[bytes]:
        """The hashes of perfect_nodes(0, size), left to right."""
        return [h for _, h in self._stack]

    def root(self) -> bytes:
        return fold_right([h for _, h in self._stack])


def root_of(entries: Iterable[bytes]) -> bytes:
    """MTH of raw entries (tests and small trees; the verifier streams with CompactRange)."""
    cr = CompactRange()
    for e in entries:
        cr.append(leaf_hash(e))
    return cr.root()


def _b64(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size,
                "hashes": _b64(self.hashes)}


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {"first": self.first, "second": self.second, "hashes": _b64(self.hashes)}


def build_inclusion(index: int, size: int, read: Callable[[set[NodeId]], Mapping[NodeId, bytes]]
                    ) -> InclusionProof:
    ranges = inclusion_ranges(index, size)
    return InclusionProof(index, size, tuple(hashes_for(ranges, read(nodes_for(ranges)))))


def build_consistency(first: int, second: int,
                      read: Callable[[set[NodeId]], Mapping[NodeId, bytes]]) -> ConsistencyProof:
    ranges = [] if first == second else consistency_ranges(first, second)
    return ConsistencyProof(first, second, tuple(hashes_for(ranges, read(nodes_for(ranges)))))


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 2.1.3.2); raises ProofError if malformed."""
    if index >= size or index < 0:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("proof hash must be 32 bytes")
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise ProofError unless `leaf` is at `index` in the tree of `size` with `root`."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise ProofError unless the tree of `second` extends the tree of `first` (RFC 9162 2.1.4.2).

    A proof from the empty tree is refused: it proves nothing and auditors never hold one.
    """
    if first > second:
        raise ProofError(f"first size {first} is greater than second size {second}")
    if first == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if first == second:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty")
        if first_root != second_root:
            raise ProofError("roots differ for the same tree size")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("proof hash must be 32 bytes")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root or sr != second_root:
        raise ProofError("consistency proof does not match the roots")
