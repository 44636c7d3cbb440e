"""SQL storage of the audit log (the only part of audit/ that imports SQLAlchemy)."""

from audit.store.ddl import create_schema, install_append_only, trigger_statements
from audit.store.guard import APPENDER_ROLE, broker_role_sql, register_sqlite_functions
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
    "APPENDER_ROLE", "AuditLog", "EntryFilter", "EntryPage", "FsckReport", "StoredCheckpoint",
    "TreeHead", "append", "append_many", "broker_role_sql", "create_schema",
    "install_append_only", "metadata", "register_sqlite_functions", "trigger_statements",
]
