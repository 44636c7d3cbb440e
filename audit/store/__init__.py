"""SQL storage of the audit log (the only part of audit/ that imports SQLAlchemy)."""

from audit.store.ddl import (
    create_schema,
    install_append_only,
    pg_writer_role_sql,
    trigger_statements,
)
from audit.store.log import (
    AuditLog,
    EntryFilter,
    EntryPage,
    FsckReport,
    StoredCheckpoint,
    TreeHead,
    append,
    append_many,
)
from audit.store.tables import metadata

__all__ = [
    "AuditLog", "EntryFilter", "EntryPage", "FsckReport", "StoredCheckpoint", "TreeHead",
    "append", "append_many", "create_schema", "install_append_only", "metadata",
    "pg_writer_role_sql", "trigger_statements",
]
