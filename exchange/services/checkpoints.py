"""Checkpoints on a schedule: sign the head whenever the log has grown since the last one.

A scheduled checkpoint is no disclosure and appends no entry (otherwise every tick would grow
the log it signs). Issuing one also brings the audit search projection up to date.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from audit.store import AuditLog, StoredCheckpoint
from exchange.services.audit_access import log_signer
from exchange.services.log_origin import require_origin
from keys.keyring import Keyring


def issue_if_grown(session: Session, keyring: Keyring, now: datetime) -> StoredCheckpoint | None:
    """A new signed checkpoint if the head moved past the latest one, else None (never commits)."""
    require_origin(session, keyring.audit_key_name)  # never sign under another origin
    log = AuditLog(session, signer=log_signer(keyring), clock=lambda: now)
    latest = log.latest_checkpoint()
    if latest is not None and latest.checkpoint.size >= log.size():
        return None
    return log.issue_checkpoint()
