"""A resident's requests: the disclosure report, the audit-pseudonym lookup, and erasure by
crypto-shredding (checked on the SQLite file and WAL bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from keys import DecryptionError, FieldContext, WrappedKey
from tests.exchange.services.test_office_flows import consented_assignment, feed, new_agreement
from tests.world import HOME_VISIT, Office, World, bearer

pytestmark = pytest.mark.db


def test_disclosure_report(api: TestClient, office: Office, world: World) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    rid = world.resident()
    bystander = world.resident(phone="13900000009")
    consented_assignment(api, office, rid, c.id, aid)
    consented_assignment(api, office, bystander, c.id, aid)
    feed(api, bearer(c))

    r = api.get(f"/v1/residents/{rid}/disclosures", headers=office.cadre)
    assert r.status_code == 200
    report = r.json()
    assert len(report["disclosures"]) == 1
    d = report["disclosures"][0]
    assert d["recipient"]["contractor"] is not None and d["recipient"]["role"] == "contractor"
    assert d["purpose"] == HOME_VISIT and d["policy"]["id"] == "cy1000.home_visit"
    assert d["case_reference"] == world.case_reference(aid, rid)
    assert "services" in d["fields"] and d["consents"]
    assert all(w["field"] not in d["fields"] for w in d["withheld"])

    # the lookup itself is audited, under her pseudonym; the pseudonym lookup is admin-only
    pseudonym = api.get(f"/v1/residents/{rid}/audit-pseudonym", headers=office.admin).json()
    assert pseudonym["audit_pseudonym"] == report["audit_pseudonym"]
    assert api.get(f"/v1/residents/{rid}/audit-pseudonym",
                   headers=office.cadre).status_code == 403  # fmt: skip
    entries = api.get(
        "/v1/audit/entries",
        headers=office.auditor,
        params={"pseudonym": pseudonym["audit_pseudonym"]},
    ).json()["items"]
    actions = [e["entry"]["action"] for e in entries]
    assert "resident.disclosure_report" in actions and "resident.pseudonym_lookup" in actions
    assert api.get(f"/v1/residents/{rid}/disclosures",
                   headers=office.other_cadre).status_code == 404  # fmt: skip
    assert api.get(f"/v1/residents/{rid}/disclosures", headers=bearer(c)).status_code == 403


def _db_bytes(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_erasure_crypto_shreds(
    api: TestClient, office: Office, world: World, database_url: str
) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    rid = world.resident(name="赵雨桐", phone="13712345678")
    consented_assignment(api, office, rid, c.id, aid)
    page = feed(api, bearer(c))
    with unit_of_work(world.factory) as s:
        row = s.get_one(m.Resident, rid)
        wrapped = bytes(s.get_one(m.ResidentDataKey, rid).wrapped_key)
        name_ct = row.name
        assert name_ct is not None

    r = api.post(f"/v1/residents/{rid}/erase", headers=office.cadre)
    assert r.status_code == 200, r.text
    assert r.json()["data_key_destroyed"] is True
    assert api.post(f"/v1/residents/{rid}/erase", headers=office.cadre).status_code == 409

    with unit_of_work(world.factory) as s:
        row = s.get_one(m.Resident, rid)
        assert row.erased_at is not None and row.name is None and row.phone is None
        assert s.get(m.ResidentDataKey, rid) is None
        assert not s.scalars(select(m.MaternalEpisode).where(
            m.MaternalEpisode.resident_id == rid)).all()  # fmt: skip
    view = api.get(f"/v1/residents/{rid}", headers=office.cadre).json()
    assert view["erased"] is True and view["name"] is None and view["phone"] is None

    # the contractor is told to delete; her case is gone
    after = feed(api, bearer(c), page["next_cursor"])
    assert [(i["type"], i.get("reason")) for i in after["items"]] == [("tombstone", "erased")]

    # the key destruction is in the audit log
    actions = [e["entry"]["action"] for e in api.get(
        "/v1/audit/entries", headers=office.auditor, params={"action": "key.destroy"}
    ).json()["items"]]  # fmt: skip
    assert actions == ["key.destroy"]

    # even with every key of the office, her fields cannot be recovered: the ciphertext needs
    # the wrapped data key, and neither survives in the database file or its WAL
    with pytest.raises(DecryptionError):  # sanity: the ciphertext alone is useless
        other, _ = world.keyring.new_data_key(rid)
        world.keyring.decrypt_field(other, name_ct, FieldContext("residents", "name", rid))
    if not database_url.startswith("sqlite"):
        return  # PostgreSQL keeps dead tuples until VACUUM; the file test is SQLite's
    raw = _db_bytes(database_url)
    assert wrapped not in raw
    assert WrappedKey.from_bytes(wrapped).header.data_key_id not in raw
    assert name_ct.to_bytes() not in raw
    assert "赵雨桐".encode() not in raw and b"13712345678" not in raw
