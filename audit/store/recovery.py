"""What an operator does when fsck finds rows the log never appended (`foreign_rows`).

The insert guard (audit.store.guard) keeps them out; only a role that can lift the triggers (the
table owner, a superuser, anyone with the SQLite file) or a database from before the guard can
hold them. While they are there every append fails. The text says how to prove the log intact,
keep the rows as evidence, remove them with the delete guard lifted for one transaction, and
check again; the statements are exact for the dialect.
"""

from __future__ import annotations

from audit.store.ddl import trigger_statements

_TABLES = (("audit_subjects", "entry_idx"), ("audit_search", "idx"), ("audit_entries", "idx"))


def foreign_rows(dialect: str, first: int, last: int) -> str:
    """One paragraph, then the statements to run as the database owner."""
    # prose that quotes SQL, with integers
    paragraph = (
        f"How to recover: entries {first}..{last} are foreign rows: the log never appended "  # noqa: S608
        f"them (its head ends at {first}), no checkpoint covers them, and while they are "
        "there every append fails, so audited requests answer 503. Stop every broker. Prove "
        "the log below them intact: `exchange audit export --out log.jsonl`, then `exchange "
        "audit verify log.jsonl --vkey <log key> --since <the latest checkpoint you kept>` (the "
        "export ends at the head, so it holds none of them). Keep the foreign rows as evidence "
        f"(`SELECT * FROM audit_entries WHERE idx >= {first}`), then, as the database owner, "
        "remove them with the statements below, which lift the delete guard for that one "
        "transaction only. Run `exchange audit fsck` again and restart the brokers. Then find "
        "out who wrote them: the broker's own role cannot, so look at whoever holds the "
        "owner's credentials or the database file."
    )
    return paragraph + "\n\n" + "\n".join(_statements(dialect, first))


def _statements(dialect: str, first: int) -> list[str]:
    # constant table and column names, an integer
    deletes = [f"DELETE FROM {t} WHERE {c} >= {first};" for t, c in _TABLES]  # noqa: S608
    if dialect == "postgresql":
        lift = [f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only;"
                for table, _ in _TABLES]
        restore = [s.replace("DISABLE", "ENABLE") for s in lift]
        return ["BEGIN;", *lift, *deletes, *restore, "COMMIT;"]
    names = {f"{table}_no_delete" for table, _ in _TABLES}
    recreate = [s + ";" for s in trigger_statements("sqlite")
                if any(f" {name} " in s for name in names)]
    drop = [f"DROP TRIGGER {table}_no_delete;" for table, _ in _TABLES]
    return ["BEGIN IMMEDIATE;", *drop, *deletes, *recreate, "COMMIT;"]
