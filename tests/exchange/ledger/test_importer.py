from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import storage
from exchange.db.engine import unit_of_work
from exchange.db.models import Child, MaternalEpisode, Resident, ResidentDataKey
from exchange.db.types import EncryptedField
from exchange.ledger.demo import load_demo
from exchange.ledger.errors import LedgerFileError
from exchange.ledger.importer import ensure_communities, import_ledger, known_communities
from exchange.ledger.reader import open_source
from exchange.ledger.synthetic import write_ledger
from keys.datakeys import WrappedKey
from keys.fields import EncryptedValue, FieldContext
from keys.keyring import Keyring
from keys.providers import MemoryKeyProvider
from tests.exchange.ledger.helpers import BASE, TODAY, person, to_csv

pytestmark = pytest.mark.db


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MemoryKeyProvider.generate())


@pytest.fixture
def factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with unit_of_work(session_factory) as s:
        ensure_communities(s)
    return session_factory


def _csv(tmp_path: Path, rows: list[dict[str, str]], name: str = "l.csv") -> Path:
    path = tmp_path / name
    path.write_text(to_csv(rows), encoding="utf-8-sig")
    return path


def _import(factory: sessionmaker[Session], keyring: Keyring, path: Path, **kw: object):  # type: ignore[no-untyped-def]
    with unit_of_work(factory) as s:
        return import_ledger(s, keyring, open_source(path), today=TODAY, **kw)  # type: ignore[arg-type]


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _decrypt_resident(s: Session, keyring: Keyring, resident: Resident) -> dict[str, str]:
    wrapped = s.scalar(select(ResidentDataKey.wrapped_key).where(
        ResidentDataKey.resident_id == resident.id))  # fmt: skip
    assert wrapped is not None
    key = keyring.unwrap(WrappedKey.from_bytes(wrapped), resident.id)
    out = {}
    for column in ("name", "national_id", "phone", "birth_date", "address_compound"):
        value = getattr(resident, column)
        context = FieldContext("residents", column, resident.id)
        out[column] = keyring.decrypt_field(key, value, context)
    return out


def test_import_writes_encrypted_residents_episodes_children(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    rows = [person(0), person(1) | {"孕产状态": "产后", "预产期": "", "分娩日期": "2025-03-01",
                                    "婴儿出生日期": "2025-03-01", "婴儿性别": "女"}]  # fmt: skip
    report = _import(factory, keyring, _csv(tmp_path, rows))
    assert report.ok and report.applied and (report.inserted, report.updated) == (2, 0)
    assert [r.header for r in report.refused_columns] == [
        "婚姻状况", "丈夫姓名", "丈夫身份证号", "避孕措施", "流产史", "备注"]  # fmt: skip
    assert (_count(factory, Resident), _count(factory, MaternalEpisode),
            _count(factory, Child), _count(factory, ResidentDataKey)) == (2, 2, 1, 2)  # fmt: skip
    with factory() as s:
        index = keyring.blind_index(person(1)["身份证号"])
        resident = s.scalars(select(Resident).where(Resident.national_id_index == index)).one()
        plain = _decrypt_resident(s, keyring, resident)
        assert plain["name"] == person(1)["姓名"]
        assert plain["national_id"] == person(1)["身份证号"]
        assert storage.decode_date(plain["birth_date"]).year == 1990
        assert resident.district == "城阳区" and resident.street == "城阳街道"
        episode = s.scalars(select(MaternalEpisode).where(
            MaternalEpisode.resident_id == resident.id)).one()  # fmt: skip
        assert episode.stage == "postpartum"


def test_one_bad_row_changes_nothing_and_every_error_is_named(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    rows = [person(0), person(1) | {"联系电话": "12345"}, person(2),
            person(3) | {"身份证号": person(0)["身份证号"]}]  # fmt: skip
    report = _import(factory, keyring, _csv(tmp_path, rows))
    assert not report.applied and report.inserted == 0
    assert [(e.row, e.field, e.reason) for e in report.errors] == [
        (3, "resident.phone", "phone_format"),
        (5, "resident.national_id", "duplicate_in_file"),
    ]
    assert _count(factory, Resident) == 0 and _count(factory, ResidentDataKey) == 0
    rendered = report.to_text() + report.to_json()
    assert "12345" not in rendered and person(0)["身份证号"] not in rendered


def test_partial_imports_the_valid_rows_and_reports_the_rest(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    rows = [person(0), person(1) | {"社区": "无此社区"}, person(2)]
    report = _import(factory, keyring, _csv(tmp_path, rows), partial=True)
    assert report.applied and report.inserted == 2 and report.invalid_rows == 1
    assert report.errors[0].row == 3 and report.errors[0].field == "address.community"
    assert _count(factory, Resident) == 2


def test_reimport_updates_never_duplicates(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    first = [person(i) for i in range(5)]
    assert _import(factory, keyring, _csv(tmp_path, first)).inserted == 5
    again = _import(factory, keyring, _csv(tmp_path, first))
    assert (again.inserted, again.updated) == (0, 5)
    changed = [person(0) | {"联系电话": "13700000000", "孕产状态": "产后", "预产期": "",
                            "分娩日期": "2025-05-01", "婴儿性别": "男"}, person(9)]  # fmt: skip
    third = _import(factory, keyring, _csv(tmp_path, changed), batch_size=1)
    assert (third.inserted, third.updated) == (1, 1)
    assert _count(factory, Resident) == 6 and _count(factory, MaternalEpisode) == 6
    assert _count(factory, Child) == 1
    with factory() as s:
        index = keyring.blind_index(person(0)["身份证号"])
        resident = s.scalars(select(Resident).where(Resident.national_id_index == index)).one()
        assert _decrypt_resident(s, keyring, resident)["phone"] == "13700000000"
        stages = s.scalars(select(MaternalEpisode.stage).where(
            MaternalEpisode.resident_id == resident.id)).all()  # fmt: skip
        assert stages == ["postpartum"]


def _history(factory: sessionmaker[Session], keyring: Keyring, national_id: str
             ) -> tuple[list[tuple[str, str | None]], list[str | None]]:  # fmt: skip
    """(stage, due date) of each episode and the birth date of each child, oldest first."""
    with factory() as s:
        index = keyring.blind_index(national_id)
        resident = s.scalars(select(Resident).where(Resident.national_id_index == index)).one()
        wrapped = s.scalar(select(ResidentDataKey.wrapped_key).where(
            ResidentDataKey.resident_id == resident.id))  # fmt: skip
        assert wrapped is not None
        key = keyring.unwrap(WrappedKey.from_bytes(wrapped), resident.id)

        def opened(table: str, row_id: str, value: EncryptedValue | None) -> str | None:
            if value is None:
                return None
            return keyring.decrypt_field(key, value, FieldContext(table, "due_date"
                                         if table == "maternal_episodes" else "birth_date",
                                         row_id))  # fmt: skip

        episodes = s.scalars(select(MaternalEpisode).where(
            MaternalEpisode.resident_id == resident.id).order_by(
            MaternalEpisode.created_at, MaternalEpisode.id)).all()  # fmt: skip
        children = s.scalars(select(Child).where(Child.resident_id == resident.id).order_by(
            Child.created_at, Child.id)).all()  # fmt: skip
        return ([(e.stage, opened("maternal_episodes", e.id, e.due_date)) for e in episodes],
                [opened("children", c.id, c.birth_date) for c in children])  # fmt: skip


def test_a_new_pregnancy_after_a_delivery_is_a_new_episode_and_keeps_the_old_one(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    delivered = person(0) | {"孕产状态": "产后", "预产期": "", "分娩日期": "2024-06-18",
                             "婴儿出生日期": "2024-06-18", "婴儿性别": "女"}  # fmt: skip
    # the cadre's row keeps naming the first child while the mother is pregnant again
    pregnant_again = person(0) | {"孕产状态": "孕期", "预产期": "2025-09-15",
                                  "婴儿出生日期": "2024-06-18", "婴儿性别": "女"}  # fmt: skip
    second_birth = person(0) | {"孕产状态": "产后", "预产期": "2025-09-15",
                                "分娩日期": "2025-05-20", "婴儿出生日期": "2025-05-20",
                                "婴儿性别": "男"}  # fmt: skip
    nid = person(0)["身份证号"]
    steps = [
        (delivered, [("postpartum", None)], ["2024-06-18"]),
        (delivered, [("postpartum", None)], ["2024-06-18"]),  # same file: no change
        (pregnant_again, [("postpartum", None), ("pregnant", "2025-09-15")],
         ["2024-06-18"]),
        (pregnant_again, [("postpartum", None), ("pregnant", "2025-09-15")],
         ["2024-06-18"]),
        (second_birth, [("postpartum", None), ("postpartum", "2025-09-15")],
         ["2024-06-18", "2025-05-20"]),
        (second_birth, [("postpartum", None), ("postpartum", "2025-09-15")],
         ["2024-06-18", "2025-05-20"]),
    ]  # fmt: skip
    for number, (row, episodes, children) in enumerate(steps):
        report = _import(factory, keyring, _csv(tmp_path, [row], f"step{number}.csv"))
        assert report.applied, report.to_text()
        assert _history(factory, keyring, nid) == (episodes, children), f"step {number}"
    assert _count(factory, Resident) == 1


def test_database_file_holds_no_plaintext(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("file bytes are checked on the SQLite file")
    rows = [person(i) for i in range(20)]
    report = _import(factory, keyring, _csv(tmp_path, rows))
    assert report.inserted == 20
    db = Path(database_url.removeprefix("sqlite:///"))
    blob = db.read_bytes()
    wal = db.with_name(db.name + "-wal")
    if wal.exists():
        blob += wal.read_bytes()
    assert len(blob) > 0
    secrets = ["丈夫不愿配合随访", "王建国", "人流1次", BASE["丈夫身份证号"]]
    for r in rows:
        secrets += [r["姓名"], r["身份证号"], r["联系电话"], r["小区"], r["身份证号"][6:14]]
    for value in secrets:
        assert value.encode("utf-8") not in blob, "plaintext found in the database file"
        assert value.encode("gb18030") not in blob


def test_refused_columns_are_stored_nowhere(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring, database_url: str
) -> None:
    report = _import(factory, keyring, _csv(tmp_path, [person(0)]))
    assert {r.catalogue_field for r in report.refused_columns} >= {
        "ledger.marriage", "ledger.husband", "ledger.contraception", "ledger.terminations",
        "ledger.cadre_notes"}  # fmt: skip
    # decrypt every ciphertext the import wrote: none holds a refused value
    with factory() as s:
        resident = s.scalars(select(Resident)).one()
        plain = set(_decrypt_resident(s, keyring, resident).values())
    refused = {"已婚", "王建国", BASE["丈夫身份证号"], "上环", "人流1次", "丈夫不愿配合随访"}
    assert not plain & refused


def test_synthetic_file_with_bad_rows_round_trip(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    path = tmp_path / "demo.xlsx"
    write_ledger(path, 60, seed=5, bad_rows=8, as_of=TODAY)
    strict = _import(factory, keyring, path)
    assert not strict.applied and strict.invalid_rows == 8
    assert _count(factory, Resident) == 0
    partial = _import(factory, keyring, path, partial=True)
    assert partial.inserted == 52 and _count(factory, Resident) == 52


def test_load_demo_is_repeatable(factory: sessionmaker[Session], keyring: Keyring) -> None:
    with unit_of_work(factory) as s:
        first = load_demo(s, keyring, residents=30, seed=3, today=TODAY)
    with unit_of_work(factory) as s:
        second = load_demo(s, keyring, residents=30, seed=3, today=TODAY)
    assert first.inserted == 30 and (second.inserted, second.updated) == (0, 30)
    assert _count(factory, Resident) == 30


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.binary(max_size=400))
def test_random_bytes_give_a_clear_error_or_a_report_and_change_nothing(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring, data: bytes
) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        report = _import(factory, keyring, path)
    except LedgerFileError as exc:
        assert str(exc).startswith("fuzz.csv")
    else:
        assert report.inserted == 0
    assert _count(factory, Resident) == 0


def test_an_exception_mid_write_rolls_everything_back(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    path = _csv(tmp_path, [person(i) for i in range(6)])

    class Boom(Exception):
        pass

    def explode(phase: str, rows: int) -> None:
        if phase == "write":
            raise Boom

    with pytest.raises(Boom), unit_of_work(factory) as s:
        import_ledger(s, keyring, open_source(path), today=TODAY, progress=explode, batch_size=2)
    assert _count(factory, Resident) == 0
    with factory() as s:
        assert s.execute(text("SELECT count(*) FROM resident_data_keys")).scalar_one() == 0


def test_a_constraint_the_bulk_insert_breaks_is_sqlalchemys_integrity_error_without_values(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if another import had written the same residents since this one looked them up
    (COPY on PostgreSQL, executemany on SQLite): one error type for the API's handlers, no
    bound value in its text, nothing written."""
    from sqlalchemy.exc import IntegrityError

    from exchange.ledger import importer

    rows = [person(i) for i in range(3)]
    assert _import(factory, keyring, _csv(tmp_path, rows)).inserted == 3
    monkeypatch.setattr(importer, "_existing", lambda session, indexes: {})
    with pytest.raises(IntegrityError) as caught:
        _import(factory, keyring, _csv(tmp_path, rows[:1] + [person(7)], "again.csv"))
    message = str(caught.value)
    assert "national_id_index" in message
    for plain in (rows[0]["身份证号"], rows[0]["姓名"], rows[0]["联系电话"]):
        assert plain not in message
    assert "parameters hidden" in message or "parameters:" not in message
    assert _count(factory, Resident) == 3  # person(7) was not written either


def test_a_bad_row_after_written_batches_leaves_nothing_but_keeps_the_callers_work(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    # batches of 2 are written before row 7 turns out bad: the savepoint takes them back,
    # while what the caller did earlier in the same transaction stays
    rows = [person(i) for i in range(6)] + [person(6) | {"联系电话": "12345"}]
    with unit_of_work(factory) as s:
        added = ensure_communities(s, ["测试社区"])
        report = import_ledger(s, keyring, open_source(_csv(tmp_path, rows)), today=TODAY,
                               batch_size=2)  # fmt: skip
    assert added == 1 and not report.applied and (report.inserted, report.updated) == (0, 0)
    assert [(e.row, e.reason) for e in report.errors] == [(8, "phone_format")]
    assert _count(factory, Resident) == 0 and _count(factory, ResidentDataKey) == 0
    assert _count(factory, MaternalEpisode) == 0
    with factory() as s:
        assert "测试社区" in known_communities(s)


def test_every_stored_value_is_a_valid_encrypted_value_of_its_own_row(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring
) -> None:
    rows = [person(0), person(1) | {"孕产状态": "产后", "预产期": "", "分娩日期": "2025-03-01",
                                    "婴儿出生日期": "2025-03-01", "婴儿性别": "女",
                                    "孕次": "2", "高危因素": "高龄、贫血"}]  # fmt: skip
    assert _import(factory, keyring, _csv(tmp_path, rows)).inserted == 2
    with factory() as s:
        keys = {k.resident_id: keyring.unwrap(WrappedKey.from_bytes(k.wrapped_key), k.resident_id)
                for k in s.scalars(select(ResidentDataKey))}  # fmt: skip
        checked = 0
        for model, owner in ((Resident, "id"), (MaternalEpisode, "resident_id"),
                             (Child, "resident_id")):  # fmt: skip
            table = model.__table__
            for obj in s.scalars(select(model)):
                key = keys[getattr(obj, owner)]
                for column in table.columns:  # type: ignore[attr-defined]
                    value = getattr(obj, column.key)
                    if isinstance(value, EncryptedValue):
                        ctx = FieldContext(table.name, column.key, obj.id)  # type: ignore[attr-defined]
                        assert isinstance(keyring.decrypt_field(key, value, ctx), str)
                        checked += 1
        assert checked == 2 * 8 + 2 * 4 - 3 + 2  # optional fields left empty are NULL
        child = s.scalars(select(Child)).one()
        ctx = FieldContext("children", "sex", child.id)
        assert child.sex is not None and keyring.decrypt_field(keys[child.resident_id],
                                                               child.sex, ctx) == "F"  # fmt: skip
        with_flags = select(MaternalEpisode).where(MaternalEpisode.risk_flags.is_not(None))
        risky = s.scalars(with_flags).one()
        ctx = FieldContext("maternal_episodes", "risk_flags", risky.id)
        assert risky.risk_flags is not None
        flags = keyring.decrypt_field(keys[risky.resident_id], risky.risk_flags, ctx)
        assert storage.decode_flags(flags) == tuple(sorted(storage.decode_flags(flags)))
        assert len(storage.decode_flags(flags)) == 2


def test_insert_column_lists_cover_every_required_column() -> None:
    from exchange.ledger import importer, prepare

    for name, columns in prepare.INSERT_COLUMNS.items():
        table = importer._TABLES[name]
        assert set(columns) <= set(table.c.keys())
        required = {c.name for c in table.columns if not c.nullable}
        assert required <= set(columns), name
        sealed = {c.name for c in table.columns if isinstance(c.type, EncryptedField)}
        assert sealed <= set(columns), name


def _spy_on_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the chunks prepared in worker processes (to know the pool was really used)."""
    from exchange.ledger import prepare

    chunks: list[int] = []
    real = prepare._in_workers

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        for outcomes in real(*args, **kwargs):
            chunks.append(len(outcomes))
            yield outcomes

    monkeypatch.setattr(prepare, "_in_workers", counting)
    return chunks


def _outcome(report) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    return (report.rows_read, report.rows_valid, report.applied, report.inserted,
            report.updated, [(e.row, e.field, e.reason) for e in report.errors])  # fmt: skip


def test_worker_processes_report_exactly_what_one_process_does(
    tmp_path: Path,
    factory: sessionmaker[Session],
    keyring: Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [person(i) for i in range(30)]
    rows[17] = rows[17] | {"联系电话": "12345"}  # an invalid row in a chunk a worker prepares
    rows[26] = rows[26] | {"身份证号": rows[3]["身份证号"]}  # a repeat of a row from chunk 1
    path = _csv(tmp_path, rows)
    chunks = _spy_on_workers(monkeypatch)
    one = _import(factory, keyring, path, workers=0, chunk_size=4)
    assert not chunks
    pooled = _import(factory, keyring, path, workers=2, chunk_size=4, batch_size=3)
    assert sum(chunks) == 30 - 4  # all but the first chunk went to the workers
    assert _outcome(pooled) == _outcome(one)
    assert [(e.row, e.reason) for e in pooled.errors] == [(19, "phone_format"),
                                                          (28, "duplicate_in_file")]  # fmt: skip
    assert not pooled.applied and _count(factory, Resident) == 0  # all-or-nothing

    partial = _import(factory, keyring, path, workers=2, chunk_size=4, batch_size=3, partial=True)
    assert partial.applied and (partial.inserted, partial.updated) == (28, 0)
    assert (_count(factory, Resident), _count(factory, MaternalEpisode),
            _count(factory, ResidentDataKey)) == (28, 28, 28)  # fmt: skip
    with factory() as s:
        index = keyring.blind_index(rows[29]["身份证号"])
        resident = s.scalars(select(Resident).where(Resident.national_id_index == index)).one()
        assert _decrypt_resident(s, keyring, resident)["name"] == rows[29]["姓名"]

    # a re-import through the workers updates the residents in place (the row that was
    # invalid now has a valid phone number: it is the one new resident)
    changed = [r | {"联系电话": "13700000000"} for r in rows]
    again = _import(factory, keyring, _csv(tmp_path, changed, "again.csv"), workers=2,
                    chunk_size=4, partial=True)  # fmt: skip
    assert (again.inserted, again.updated) == (1, 28)
    assert _count(factory, Resident) == 29 and _count(factory, MaternalEpisode) == 29
    with factory() as s:
        resident = s.scalars(select(Resident).where(Resident.national_id_index == index)).one()
        assert _decrypt_resident(s, keyring, resident)["phone"] == "13700000000"


def test_a_failure_in_a_worker_stops_the_import_and_writes_nothing(
    tmp_path: Path,
    factory: sessionmaker[Session],
    keyring: Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from exchange.ledger import prepare

    real = prepare.validate_row

    def failing_late(raw, headers, rules):  # type: ignore[no-untyped-def]
        if raw.number > 20:  # a chunk only a worker prepares (the workers inherit the patch)
            raise RuntimeError("worker failed")
        return real(raw, headers, rules)

    monkeypatch.setattr(prepare, "validate_row", failing_late)
    chunks = _spy_on_workers(monkeypatch)
    path = _csv(tmp_path, [person(i) for i in range(30)])
    with pytest.raises(RuntimeError, match="worker failed"):
        _import(factory, keyring, path, workers=2, chunk_size=4, batch_size=2)
    assert chunks  # the earlier chunks did come back from the workers
    assert _count(factory, Resident) == 0 and _count(factory, ResidentDataKey) == 0


def test_the_import_enlarges_the_sqlite_page_cache_only_while_it_runs(
    tmp_path: Path, factory: sessionmaker[Session], keyring: Keyring, database_url: str
) -> None:
    from exchange.db.engine import SQLITE_BULK_CACHE_KIB

    if not database_url.startswith("sqlite"):
        pytest.skip("a SQLite pragma")
    path = _csv(tmp_path, [person(i) for i in range(3)])
    with unit_of_work(factory) as s:

        def cache_size() -> int:
            return int(s.connection().exec_driver_sql("PRAGMA cache_size").scalar_one())

        before = cache_size()
        during: list[int] = []
        report = import_ledger(s, keyring, open_source(path), today=TODAY,
                               progress=lambda _phase, _n: during.append(cache_size()))  # fmt: skip
        assert report.inserted == 3
        assert during and set(during) == {-SQLITE_BULK_CACHE_KIB} != {before}
        assert cache_size() == before
        foreign_keys = s.connection().exec_driver_sql("PRAGMA foreign_keys").scalar_one()
        journal = s.connection().exec_driver_sql("PRAGMA journal_mode").scalar_one()
        assert (foreign_keys, str(journal).lower()) == (1, "wal")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.text(alphabet=["a", "李", "\x1f", "\x1e", " "], max_size=4),
                min_size=1,
                max_size=4,
            ),
            st.frozensets(st.integers(0, 3), max_size=2),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_a_chunk_reaches_a_worker_exactly_as_read(
    rows: list[tuple[list[str], frozenset[int]]],
) -> None:
    import pickle

    from exchange.ledger.prepare import pack_chunk, unpack_chunk
    from exchange.ledger.reader import RawRow

    chunk = [RawRow(n, tuple(cells), numeric) for n, (cells, numeric) in enumerate(rows, start=2)]
    assert unpack_chunk(pickle.loads(pickle.dumps(pack_chunk(chunk)))) == chunk
