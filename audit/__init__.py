"""Append-only, tamper-evident audit log: RFC 8785 entries, RFC 6962 Merkle tree, C2SP checkpoints.

Everything here except `audit.store` is pure (no I/O, no database, no web code).
"""
