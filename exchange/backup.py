"""Consistent online backups of the database, and restores that keep the audit log provable.

    BackupError   a one-line, user-facing refusal or failure (nothing personal in it)

A backup directory holds (never the keyring; see keys.backup for its own, sealed backup):

    manifest.json        what was taken: dialect, schema revision, audit head, file hashes
    exchange.pgdump      PostgreSQL: `pg_dump -Fc` run inside one exported snapshot
    exchange.db          SQLite: a copy made with SQLite's online backup API
    audit-export.jsonl   the audit log of the same snapshot (`exchange audit verify` format)

Restore refuses a backup whose audit log is older than the newest checkpoint an auditor may hold,
because appending to it would fork the log those auditors verify against. The broker knows
those checkpoints from (1) the database being replaced, which records every checkpoint it issued,
and (2) checkpoint notes the operator passes (`--checkpoint`, e.g. the auditor's kept copy),
each verified with the log's key. With neither, it cannot tell and refuses, unless told to.
A backup whose log does not extend a known checkpoint (a different log) is refused always.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from audit.checkpoint import Checkpoint, open_checkpoint
from audit.errors import AuditError
from audit.note import Signer, Verifier
from audit.store import AuditLog
from audit.verifier import verify_export
from exchange.db.engine import make_engine
from exchange.db.migrate import current_revision

MANIFEST = "manifest.json"
EXPORT = "audit-export.jsonl"
PG_DUMP = "exchange.pgdump"
SQLITE_COPY = "exchange.db"
FORMAT = "exchange-backup/1"


class BackupError(Exception):
    """A backup or restore that cannot proceed; the message is one line."""


@dataclass(frozen=True, slots=True)
class Manifest:
    format: str
    created_at: str
    dialect: str
    schema: str | None  # PostgreSQL schema dumped (None: the whole database)
    revision: str | None
    tree_size: int
    root: str  # base64 Merkle root of the log at tree_size
    latest_checkpoint: int | None
    files: dict[str, str]  # name -> sha256 hex

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        try:
            data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            manifest = cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise BackupError(f"{directory} is not a backup: {MANIFEST} unreadable "
                              f"({type(exc).__name__})") from None
        if manifest.format != FORMAT:
            raise BackupError(f"{directory}: unknown backup format {manifest.format!r}")
        for name, digest in manifest.files.items():
            if _sha256(directory / name) != digest:
                raise BackupError(f"{directory / name} does not match its manifest hash")
        return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()


def _private_file(path: Path) -> None:
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)


# -- PostgreSQL client tools --------------------------------------------------------------

def pg_schema(url: URL) -> str | None:
    """The schema a URL selects with `options=-csearch_path=...` (tests, multi-tenant), if any."""
    options = url.query.get("options")
    text_ = options if isinstance(options, str) else " ".join(options or ())
    found = re.search(r"search_path=([A-Za-z_][A-Za-z0-9_]*)", text_)
    return found.group(1) if found else None


def _pg_env(url: URL) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for name, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                        ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[name] = str(value)  # the password stays off the command line
    return env


def _tool(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(f"{tool} not found; install the PostgreSQL client (postgresql-client)")
    return exe


def _tool_major(tool: str) -> int:
    out = subprocess.run([_tool(tool), "--version"],  # noqa: S603 - our argv, no shell
                         capture_output=True, text=True, check=False).stdout
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    if not found:
        raise BackupError(f"cannot tell the version of {tool} ({out.strip()!r})")
    return int(found.group(1))


def _server_major(conn: Connection) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def check_client_version(tool: str, server_major: int) -> int:
    """pg_dump/pg_restore must be at least the server's major version (an older client cannot
    read a newer server's catalogue correctly)."""
    major = _tool_major(tool)
    if major < server_major:
        raise BackupError(f"{tool} {major} is older than the PostgreSQL server "
                          f"({server_major}); install postgresql-client-{server_major}")
    return major


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    """Run a PostgreSQL client tool (argv of our own making, no shell); one line on failure."""
    done = subprocess.run([_tool(args[0]), *args[1:]],  # noqa: S603
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackupError(f"{what} failed ({done.returncode}): {last[:300]}")


# -- backup -------------------------------------------------------------------------------

def _export(session: Session, signer: Signer | None, path: Path) -> tuple[int, str, int | None]:
    """Write the audit export of what `session` sees; returns (size, root b64, latest cp)."""
    log = AuditLog(session, signer=signer)
    head = log.head()
    latest = log.latest_checkpoint()
    _private_file(path)
    with path.open("w", encoding="utf-8") as fh:
        for line in log.export():
            fh.write(line)
    return head.size, base64.b64encode(head.root).decode(), (
        latest.checkpoint.size if latest else None)


def backup(url: str, out: Path, *, now: datetime, signer: Signer | None) -> Manifest:
    """Take a consistent online backup of the database at `url` into the new directory `out`."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} exists and is not empty; give a new directory")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    engine = make_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            files, state, schema = _backup_sqlite(engine, out, signer)
        else:
            files, state, schema = _backup_postgres(engine, out, signer)
    finally:
        engine.dispose()
    manifest = Manifest(FORMAT, now.isoformat(), engine.dialect.name, schema, state[3],
                        state[0], state[1], state[2],
                        {name: _sha256(out / name) for name in (*files, EXPORT)})
    _private_file(out / MANIFEST)
    (out / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
    return manifest


State = tuple[int, str, int | None, str | None]  # tree size, root, latest checkpoint, revision


def _backup_sqlite(engine: Engine, out: Path, signer: Signer | None
                   ) -> tuple[list[str], State, None]:
    source_path = engine.url.database
    if not source_path or source_path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    copy = out / SQLITE_COPY
    _private_file(copy)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)  # SQLite's online backup: one consistent snapshot
    finally:
        target.close()
        source.close()
    snapshot = make_engine(f"sqlite:///{copy}")
    try:
        revision = current_revision(snapshot)
        with Session(snapshot) as session:
            size, root, latest = _export(session, signer, out / EXPORT)
    finally:
        snapshot.dispose()
    return [SQLITE_COPY], (size, root, latest, revision), None


def _backup_postgres(engine: Engine, out: Path, signer: Signer | None
                     ) -> tuple[list[str], State, str | None]:
    url = engine.url
    schema = pg_schema(url)
    dump = out / PG_DUMP
    _private_file(dump)
    with engine.connect() as conn:
        check_client_version("pg_dump", _server_major(conn))
        conn.commit()
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # the dump and the audit export see exactly this snapshot (pg_export_snapshot)
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            with Session(bind=conn) as session:
                size, root, latest = _export(session, signer, out / EXPORT)
            args = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                    f"--snapshot={snapshot}", f"--file={dump}"]
            if schema:
                args.append(f"--schema={schema}")
            _run(args, _pg_env(url), "pg_dump")
    return [PG_DUMP], (size, root, latest, revision), schema


# -- restore ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KnownCheckpoint:
    source: str  # "database being replaced" or the file it came from
    checkpoint: Checkpoint
    note: str


def checkpoints_in_database(url: str, key: Verifier) -> Iterator[KnownCheckpoint]:
    """The newest checkpoint the database at `url` issued, if it can still be read."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            if not inspect(session.connection()).has_table("audit_checkpoints"):
                return
            latest = AuditLog(session).latest_checkpoint()
    except Exception:  # noqa: BLE001 - a damaged or missing database simply offers none
        return
    finally:
        engine.dispose()
    if latest is not None:
        yield known_checkpoint("database being replaced", latest.note, key)


def known_checkpoint(source: str, note: str, key: Verifier) -> KnownCheckpoint:
    try:
        checkpoint, _ = open_checkpoint(note, key)
    except AuditError as exc:
        raise BackupError(f"{source}: not a checkpoint of this log ({exc})") from None
    return KnownCheckpoint(source, checkpoint, note)


@dataclass(frozen=True, slots=True)
class RestorePlan:
    manifest: Manifest
    newest: KnownCheckpoint | None
    older_allowed: bool


def plan_restore(source: Path, known: list[KnownCheckpoint], key: Verifier, *,
                 allow_older_log: bool) -> RestorePlan:
    """Check the backup against every known checkpoint before anything is touched."""
    manifest = Manifest.read(source)
    if not known and not allow_older_log:
        raise BackupError("cannot tell which checkpoints auditors hold: pass --checkpoint with "
                          "the newest note an auditor kept, or --allow-older-log")
    newest = max(known, key=lambda k: k.checkpoint.size, default=None)
    for item in sorted(known, key=lambda k: k.checkpoint.size):
        if item.checkpoint.size > manifest.tree_size:
            if allow_older_log:
                continue
            raise BackupError(
                f"the backup's audit log has {manifest.tree_size} entries, but a checkpoint of "
                f"size {item.checkpoint.size} ({item.source}) may be held by an auditor: "
                "restoring would fork the log; use a newer backup or --allow-older-log")
        with (source / EXPORT).open("rb") as lines:
            verdict = verify_export(lines, key, since=item.note)
        if not verdict.ok:
            raise BackupError(f"the backup's audit log does not extend the checkpoint of size "
                              f"{item.checkpoint.size} ({item.source}): {verdict.summary()}")
    return RestorePlan(manifest, newest, allow_older_log)


def _is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return not inspect(conn).get_table_names()


def restore(url: str, source: Path, plan: RestorePlan, *, replace: bool, now: datetime) -> None:
    """Put the backup in place of the database at `url` (empty unless `replace`)."""
    manifest = plan.manifest
    engine = make_engine(url)
    try:
        if engine.dialect.name != manifest.dialect:
            raise BackupError(f"the backup is of {manifest.dialect}, the target is "
                              f"{engine.dialect.name}")
        empty = True
        try:
            empty = _is_empty(engine)
        except Exception:  # noqa: BLE001 - an unreadable (damaged) target is not empty
            empty = False
        if not empty and not replace:
            raise BackupError("the target database is not empty; pass --replace to put the "
                              "backup in its place (SQLite keeps the old file beside it)")
        if engine.dialect.name == "sqlite":
            engine.dispose()
            _restore_sqlite(engine.url, source, now)
        else:
            _restore_postgres(engine, source, manifest)
    finally:
        engine.dispose()


def _restore_sqlite(url: URL, source: Path, now: datetime) -> None:
    target = Path(url.database or "")
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{target}{suffix}")
        if old.exists():  # never deleted: the damaged file may be evidence
            old.rename(Path(f"{target}.before-restore-{stamp}{suffix}"))
    partial = target.with_name(target.name + ".restoring")
    _private_file(partial)
    source_db = sqlite3.connect(f"file:{source / SQLITE_COPY}?mode=ro", uri=True)
    target_db = sqlite3.connect(partial)
    try:
        source_db.backup(target_db)
    finally:
        target_db.close()
        source_db.close()
    partial.replace(target)


def _restore_postgres(engine: Engine, source: Path, manifest: Manifest) -> None:
    schema = pg_schema(engine.url)
    if schema != manifest.schema:
        raise BackupError(f"the backup holds schema {manifest.schema or '(whole database)'}; "
                          f"the target selects {schema or '(default)'}")
    with engine.connect() as conn:
        check_client_version("pg_restore", _server_major(conn))
    with engine.begin() as conn:  # the old objects go; one transaction
        name = schema or "public"
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        if not schema:
            conn.execute(text('CREATE SCHEMA "public"'))
    args = ["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner",
            "--no-privileges", f"--dbname={engine.url.database}", str(source / PG_DUMP)]
    _run(args, _pg_env(engine.url), "pg_restore")
