"""GDPR: a machine-readable export of everything, and erasure that leaves no personal data."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from omniretail.cli import app as omni
from omniretail.core.db import set_database
from omniretail.core.models import OutboxEvent
from omniretail.customer import service, tracking
from omniretail.customer.models import (
    CustomerEvent,
    DataKey,
    Erasure,
    Identifier,
    Profile,
    Suppression,
)
from tests.customer.helpers import create_customer

PII = [
    "ada.lovelace@example.org",
    "7700900123",
    "Lovelace",
    "12 Analytical Row",
    "grace.h@example.org",
    "2025550177",
]


def _person(session):
    """A customer with personal data in a profile, tracked events, an order and consent."""
    cid = create_customer(
        session,
        email="ada.lovelace@example.org",
        phone="+44 7700 900123",
        first_name="Ada",
        last_name="Lovelace",
        user_id="u-ada",
        addresses=[{"line1": "12 Analytical Row", "city": "London", "country": "GB"}],
    )
    _, source = tracking.create_source(session, "web", "web")
    events, rejects, _ = tracking.validate_events(
        [
            {
                "type": "identify",
                "userId": "u-ada",
                "anonymousId": "anon-ada",
                "messageId": "m1",
                "traits": {"email": "grace.h@example.org", "phone": "+1 202 555 0177"},
                "context": {"ip": "203.0.113.9"},
            },
            {
                "type": "track",
                "event": "Order Completed",
                "userId": "u-ada",
                "messageId": "m2",
                "properties": {"order_id": "o-1", "total": 99.5, "currency": "GBP"},
            },
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": "u-ada",
                "messageId": "m3",
                "properties": {"product_id": "p-1"},
            },
        ],
        received_at=service.utcnow(),
        sent_at=None,
        forced_type=None,
        total_bytes=0,
    )
    tracking.ingest(session, tracking.SourceInfo(source.id, "web"), events, rejects)
    service.set_consent(session, cid, "marketing_sms", True, "pos", "test", {"sig": "x"})
    session.flush()
    return cid


def test_export_bundle_holds_all_data_about_the_person(client, session, admin):
    cid = _person(session)
    session.commit()
    bundle = client.get(f"/api/v1/customers/{cid}/export", headers=admin).json()
    assert bundle["format"] == "omniretail.customer-export/1"
    assert bundle["customer"]["email"] == "grace.h@example.org"  # the latest identify wins
    assert sorted(
        i["value"] for i in bundle["customer"]["identifiers"] if i["type"] == "email"
    ) == ["ada.lovelace@example.org", "grace.h@example.org"]
    assert bundle["profiles"][0]["last_name"] == "Lovelace"
    assert [e["message_id"] for e in bundle["events"] if e["type"] != "consent"] == [
        "m1",
        "m2",
        "m3",
    ]
    assert bundle["events"][0]["personal_data"]["context.ip"] == "203.0.113.9"
    assert bundle["consent_history"][0]["proof"] == {"sig": "x"}


def test_analyst_may_not_export(client, session, make_key):
    cid = _person(session)
    session.commit()
    assert (
        client.get(f"/api/v1/customers/{cid}/export", headers=make_key("analyst")).status_code
        == 403
    )


def test_cli_export_by_email_prints_the_bundle(live_db):
    with live_db.unit_of_work() as s:
        cid = _person(s)
    set_database(live_db)
    try:
        result = CliRunner().invoke(omni, ["gdpr", "export", "ada.lovelace@example.org"])
    finally:
        set_database(None)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["customer_id"] == cid


def test_erase_shreds_keys_keeps_the_order_and_writes_an_audit(client, session, admin):
    cid = _person(session)
    session.commit()
    response = client.post(
        f"/api/v1/customers/{cid}/erase", json={"reason": "art. 17 #1"}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["counts"]["financial_facts_kept"] == 1
    assert session.scalar(select(func.count()).select_from(DataKey)) == 0
    assert session.scalar(select(func.count()).select_from(Identifier)) == 0
    kept = session.execute(
        select(
            CustomerEvent.fact,
            CustomerEvent.amount_minor,
            CustomerEvent.user_id,
            CustomerEvent.pii_enc,
        ).where(CustomerEvent.profile_id == cid)
    ).all()
    assert kept == [("order_completed", 9950, None, None)]
    assert session.scalar(select(Erasure.reason)) == "art. 17 #1"
    assert session.scalar(select(Profile.status).where(Profile.id == cid)) == "erased"
    assert session.scalar(
        select(OutboxEvent.payload).where(OutboxEvent.topic == "customer.erased")
    ) == {"customer_id": cid, "profile_ids": [cid]}
    assert client.get(f"/api/v1/customers?email={PII[0]}", headers=admin).json()["items"] == []


def test_erase_puts_the_identifiers_hashes_on_the_suppression_list(session):
    # given a person with several identifiers (email, phone, user id, anonymous id, ...)
    cid = _person(session)
    identifiers = set(session.execute(select(Identifier.value_hash, Identifier.type)).all())
    # when the person is erased
    erasure = service.erase_customer(session, cid, actor="test", reason="art. 17 #2")
    # then every identifier's blind-index hash and type is suppressed, and nothing else is kept
    rows = session.execute(
        select(Suppression.value_hash, Suppression.type, Suppression.erasure_id)
    ).all()
    assert {(h, t) for h, t, _ in rows} == identifiers
    assert {e for _, _, e in rows} == {erasure.id}
    assert erasure.counts["suppressed"] == len(identifiers)
    assert [c.name for c in Suppression.__table__.columns] == [
        "value_hash",
        "type",
        "erasure_id",
        "created_at",
    ]


def test_erase_needs_admin_and_changes_nothing_otherwise(client, session, make_key):
    cid = _person(session)
    session.commit()
    response = client.post(
        f"/api/v1/customers/{cid}/erase", json={"reason": "x"}, headers=make_key("support_agent")
    )
    assert response.status_code == 403
    assert session.scalar(select(func.count()).select_from(DataKey)) == 1


def _dump(live_db) -> bytes:
    if live_db.dialect == "sqlite":
        path = Path(live_db.engine.url.database)
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    url = live_db.engine.url
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    return subprocess.run(
        [
            "pg_dump",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            url.database or "postgres",
        ],
        check=True,
        capture_output=True,
        env=env,
    ).stdout


def test_database_dump_after_erase_holds_none_of_the_persons_pii(live_db):
    with live_db.unit_of_work() as s:
        cid = _person(s)
    with live_db.unit_of_work() as s:
        service.erase_customer(s, cid, "test", "art. 17")
    service.scrub_storage(live_db)
    dump = _dump(live_db)
    assert b"customer_events" in dump or live_db.dialect == "sqlite"
    for secret in [*PII, "u-ada", "anon-ada", "203.0.113.9"]:
        assert secret.encode() not in dump, secret
