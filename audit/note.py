"""C2SP signed notes with Ed25519: parse, sign, verify; verifier keys in `name+keyid+base64` form.

Follows c2sp.org/signed-note. A note is UTF-8 text ending in a newline, an empty line, then one
or more signature lines "— <name> <base64(key id || signature)>". Signatures by unknown keys are
ignored; a known key with a bad signature, or no known key at all, rejects the note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.errors import NoteError

ALG_ED25519: Final = 0x01
ALG_COSIGNATURE_V1: Final = 0x04
SIG_PREFIX: Final = "\u2014 "
MAX_SIGNATURES: Final = 100
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


def b64decode_strict(text: str) -> bytes:
    if not _B64.match(text) or len(text) % 4:
        raise NoteError("not standard padded base64")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise NoteError("not standard padded base64") from None


def _check_name(name: str) -> str:
    if not name or "+" in name or any(c.isspace() or _is_control(c) for c in name):
        raise NoteError("key name must be non-empty without spaces, '+' or control characters")
    return name


def _is_control(c: str) -> bool:
    return unicodedata.category(c) == "Cc"


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """First 4 bytes of SHA-256(name || 0x0A || alg || public key), big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named public key of one signature type (0x01 note signature, 0x04 cosignature)."""

    name: str
    key_id: int
    alg: int
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse `name+keyid+base64(alg || key)`; the key id must re-derive."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise NoteError("verifier key must look like name+8hexdigits+base64")
        name = _check_name(parts[0])
        raw = b64decode_strict(parts[2])
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError("verifier key must be an Ed25519 (0x01) or cosignature (0x04) key")
        v = cls(name, int(parts[1], 16), raw[0], raw[1:])
        if key_id(name, v.alg, v.public_key) != v.key_id:
            raise NoteError("verifier key id does not match its name and key")
        return v

    def text(self) -> str:
        blob = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{blob}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class Signer:
    """An Ed25519 note signer; the private key never leaves this object."""

    __slots__ = ("_key", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey,
                 alg: int = ALG_ED25519) -> None:
        public = _raw(private_key.public_key())
        self._key = private_key
        self.verifier = Verifier(_check_name(name), key_id(name, alg, public), alg, public)

    @property
    def name(self) -> str:
        return self.verifier.name

    @classmethod
    def parse_skey(cls, skey: str) -> Signer:
        """Parse `PRIVATE+KEY+name+keyid+base64(0x01 || seed)` (x/mod note format)."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key must look like PRIVATE+KEY+name+keyid+base64")
        raw = b64decode_strict(parts[4])
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("signer key must be an Ed25519 seed")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if f"{signer.verifier.key_id:08x}" != parts[3]:
            raise NoteError("signer key id does not match its name and key")
        return signer

    def __repr__(self) -> str:
        return f"Signer({self.verifier.text()!r})"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def signature_line(self, message: bytes, prefix: bytes = b"") -> str:
        """`— name base64(keyid || prefix || signature)`, newline-terminated."""
        blob = self.verifier.key_id.to_bytes(4, "big") + prefix + self.sign(message)
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: int
    blob: bytes  # everything after the 4-byte key id

    def line(self) -> str:
        raw = self.key_id.to_bytes(4, "big") + self.blob
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(_is_control(c) and c != "\n" for c in text):
        raise NoteError("note text contains a control character")


def parse_signature_line(line: str) -> Signature:
    if not line.startswith(SIG_PREFIX):
        raise NoteError("signature line must start with an em dash and a space")
    rest = line[len(SIG_PREFIX):]
    name, sep, blob = rest.partition(" ")
    if not sep:
        raise NoteError("signature line must be '— name signature'")
    raw = b64decode_strict(blob)
    if len(raw) < 5:
        raise NoteError("signature is too short")
    return Signature(_check_name(name), int.from_bytes(raw[:4], "big"), raw[4:])


def parse(data: bytes | str) -> Note:
    """Split a signed note into text and signatures, refusing every malformed shape."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    text, block = data[: split + 1], data[split + 2:]
    check_text(text)
    if not block or not block.endswith("\n"):
        raise NoteError("note has no signatures or its last line is unterminated")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("note has too many signatures")
    return Note(text, tuple(parse_signature_line(line) for line in lines))


def open_note(data: bytes | str, verifiers: list[Verifier]) -> Note:
    """Parse and verify a note; at least one signature must be by a known Ed25519 key.

    Returns the note with only the verified signatures.
    """
    note = parse(data)
    known = {(v.name, v.key_id): v for v in verifiers if v.alg == ALG_ED25519}
    verified = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify(note.text.encode(), sig.blob):
            raise NoteError(f"invalid signature by {sig.name}")
        verified.append(sig)
    if not verified:
        raise NoteError("note has no verifiable signature by a known key")
    return Note(note.text, tuple(verified))


def sign(text: str, signer: Signer) -> str:
    """The signed note for `text`."""
    check_text(text)
    return text + "\n" + signer.signature_line(text.encode())
