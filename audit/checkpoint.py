"""C2SP tlog-checkpoint bodies and tlog-cosignature/v1 witness cosignatures.

Body: "<origin>\n<tree size>\n<base64 root>\n" (no extension lines are emitted; they are
accepted on parse). A cosignature signs "cosignature/v1\ntime <t>\n" + body with a 0x04 key and
carries the timestamp as 8 big-endian bytes between the key id and the signature.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Final

from audit.errors import CheckpointError, NoteError
from audit.merkle import HASH_SIZE
from audit.note import (
    ALG_COSIGNATURE_V1,
    Note,
    Signature,
    Signer,
    Verifier,
    b64decode_strict,
    open_note,
    parse,
    sign,
)

_SIZE = re.compile(r"(0|[1-9][0-9]{0,19})\Z")
COSIGNATURE_LABEL: Final = "cosignature/v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or self.origin != self.origin.strip():
            raise CheckpointError("checkpoint origin must be one non-empty line")
        if self.size < 0 or len(self.root) != HASH_SIZE:
            raise CheckpointError("checkpoint needs a size >= 0 and a 32-byte root")

    def body(self) -> str:
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\n" + "".join(e + "\n" for e in self.extensions)

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not _SIZE.match(lines[1]) or any(not e for e in lines[3:]):
            raise CheckpointError("checkpoint body must be origin, size, root, extensions")
        try:
            root = b64decode_strict(lines[2])
        except NoteError:
            raise CheckpointError("checkpoint root is not base64") from None
        return cls(lines[0], int(lines[1]), root, tuple(lines[3:]))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    return sign(cp.body(), signer)


def open_checkpoint(note_text: str | bytes, log_key: Verifier, origin: str | None = None
                    ) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint by the log key; the origin must match the key name or `origin`."""
    note = open_note(note_text, [log_key])
    cp = Checkpoint.parse_body(note.text)
    if cp.origin != (origin or log_key.name):
        raise CheckpointError("checkpoint origin does not match the log")
    return cp, note


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"{COSIGNATURE_LABEL}\ntime {timestamp}\n{body}".encode()


def cosign(body: str, witness: Signer, timestamp: int) -> str:
    """A witness's cosignature line over a checkpoint body (what a witness returns)."""
    if witness.verifier.alg != ALG_COSIGNATURE_V1:
        raise CheckpointError("a witness signs with a cosignature/v1 (0x04) key")
    return witness.signature_line(cosigned_message(body, timestamp), timestamp.to_bytes(8, "big"))


@dataclass(frozen=True, slots=True)
class Cosignature:
    witness: Verifier
    timestamp: int
    line: str


def verify_cosignature(body: str, sig: Signature, witness: Verifier) -> Cosignature:
    if witness.alg != ALG_COSIGNATURE_V1:
        raise CheckpointError("witness key must be a cosignature/v1 (0x04) key")
    if (sig.name, sig.key_id) != (witness.name, witness.key_id) or len(sig.blob) != 8 + 64:
        raise CheckpointError("cosignature is not by this witness or has the wrong size")
    ts = int.from_bytes(sig.blob[:8], "big")
    if not witness.verify(cosigned_message(body, ts), sig.blob[8:]):
        raise CheckpointError("cosignature does not verify")
    return Cosignature(witness, ts, sig.line())


def find_cosignature(cosigned_note: str, witness: Verifier) -> tuple[str, Cosignature]:
    """From a checkpoint note carrying a witness's line, the body and the verified cosignature."""
    try:
        note = parse(cosigned_note)
    except NoteError as exc:
        raise CheckpointError(f"cosigned checkpoint is malformed: {exc}") from None
    Checkpoint.parse_body(note.text)
    for sig in note.signatures:
        if (sig.name, sig.key_id) == (witness.name, witness.key_id):
            return note.text, verify_cosignature(note.text, sig, witness)
    raise CheckpointError("no signature by this witness on the checkpoint")
