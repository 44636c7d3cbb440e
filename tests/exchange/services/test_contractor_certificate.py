"""A contractor pulling with a certificate-bound token: its disclosures' audit entries carry
the certificate's RFC 8705 thumbprint (entry details), and another certificate gets nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit.entry import decode
from audit.store.tables import entries
from exchange.api.app import create_app
from exchange.clientcert import header_value, thumbprint_s256
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import CLIENT_CERT_DETAIL
from exchange.services.tokens import issue_token
from exchange.settings import Settings
from keys.keyring import Keyring
from tests.exchange.certs import issue, make_ca
from tests.world import NOW, World

pytestmark = pytest.mark.db
ALL = ("service_contact", "pregnancy_health", "birth_health")


def test_disclosures_record_the_certificate(world: World, session_factory: sessionmaker[Session],
                                            keyring: Keyring, tmp_path: Path) -> None:
    ca = make_ca()
    mine, theirs = issue(ca, "青岛安心母婴 数据接口"), issue(ca, "青岛启航 数据接口")
    c = world.contractor()
    agreement = world.agreement(c)
    resident = world.resident()
    world.consent(resident, ALL)
    world.assign(resident, c, agreement)
    with unit_of_work(session_factory) as s:
        token = issue_token(s.get_one(m.Principal, c.principal_id), now=NOW,
                            cnf_x5t_s256=thumbprint_s256(mine.der))
    app = create_app(Settings(home=tmp_path, forwarded_allow_ips="127.0.0.1"),
                     session_factory=session_factory, keyring=keyring, clock=lambda: NOW)
    proxy = TestClient(app, client=("127.0.0.1", 40000))
    auth = {"Authorization": f"Bearer {token}"}
    params = {"purpose": "home_visit"}

    refused = proxy.get("/v1/cases", params=params,
                        headers={**auth, "Client-Cert": header_value(theirs.der)})
    assert refused.status_code == 401
    pulled = proxy.get("/v1/cases", params=params,
                       headers={**auth, "Client-Cert": header_value(mine.der)})
    assert pulled.status_code == 200 and pulled.json()["items"], pulled.text

    with session_factory() as s:
        logged = [decode(bytes(e)).entry for e in s.scalars(select(entries.c.entry))]
    by_contractor = [e for e in logged if e.actor.id == c.principal_id]
    assert by_contractor and all(e.details[CLIENT_CERT_DETAIL] == thumbprint_s256(mine.der)
                                 for e in by_contractor)
    assert any(e.subjects for e in by_contractor)  # the disclosure itself, not only a read
