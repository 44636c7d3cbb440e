"""Errors of the audit package, one tree.

    AuditError
    ├── EntryError          an audit entry value or its encoding is invalid (names the field)
    ├── ProofError          a Merkle proof is malformed, does not verify, or cannot be built
    ├── NoteError           a signed note, verifier key or signature is malformed or unverified
    ├── CheckpointError     a checkpoint body or cosignature is malformed or does not match
    ├── ExportError         an export line is malformed (names the line)
    └── StoreError          the database adapter (audit.store) failed
        ├── AppendError     an entry could not be appended (the caller's transaction must roll back)
        ├── NotFoundError   no such index, tree size or checkpoint
        └── IntegrityError  stored rows disagree with what they should be (fsck)

Messages never carry personal data: entries hold only pseudonyms, names of fields and codes.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base class of every error raised by audit/."""


class EntryError(AuditError):
    """An audit entry value or its canonical encoding is invalid."""


class ProofError(AuditError):
    """A Merkle proof is malformed or does not verify."""


class NoteError(AuditError):
    """A signed note, key or signature is malformed or does not verify."""


class CheckpointError(AuditError):
    """A checkpoint body or cosignature is malformed or does not match."""


class ExportError(AuditError):
    """An export line is malformed."""


class StoreError(AuditError):
    """The audit store failed."""


class AppendError(StoreError):
    """An entry could not be appended; the surrounding transaction must be rolled back."""


class NotFoundError(StoreError):
    """No such index, tree size or checkpoint."""


class IntegrityError(StoreError):
    """Stored audit rows disagree with their recomputation."""
