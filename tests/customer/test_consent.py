"""Consent per purpose with source, time and proof; double opt-in for marketing email."""

from sqlalchemy import select

from omniretail.core.models import OutboxEvent
from omniretail.customer import service
from tests.customer.helpers import create_customer


def _token(session):
    event = session.scalar(
        select(OutboxEvent).where(OutboxEvent.topic == "customer.consent_confirmation_requested")
    )
    return event.payload["token"]


def _topics(session):
    return session.scalars(
        select(OutboxEvent.topic)
        .where(OutboxEvent.topic.like("customer.consent%"))
        .order_by(OutboxEvent.id)
    ).all()


def test_no_consent_is_given_by_default(session):
    cid = create_customer(session, email="ada@example.org")
    assert service.has_consent(session, cid, "analytics") is False


def test_granting_sms_consent_takes_effect_and_is_an_event(client, admin, session):
    cid = create_customer(session, phone="+44 7700 900123")
    session.commit()
    response = client.post(
        f"/api/v1/customers/{cid}/consent",
        json={
            "purpose": "marketing_sms",
            "granted": True,
            "source": "pos:till-4",
            "proof": {"signature": "sig-1"},
        },
        headers=admin,
    )
    assert response.json() == {
        "customer_id": cid,
        "purpose": "marketing_sms",
        "status": "granted",
        "changed": True,
    }
    assert service.has_consent(session, cid, "marketing_sms") is True
    assert _topics(session) == ["customer.consent_changed"]


def test_marketing_email_needs_double_opt_in(client, admin, session):
    cid = create_customer(session, email="ada@example.org")
    session.commit()
    pending = client.post(
        f"/api/v1/customers/{cid}/consent",
        json={"purpose": "marketing_email", "granted": True, "source": "web:footer"},
        headers=admin,
    ).json()
    assert pending["status"] == "pending"
    assert service.has_consent(session, cid, "marketing_email") is False

    confirmed = client.post(
        "/api/v1/customers/consent/confirm", json={"token": _token(session)}, headers=admin
    )

    assert confirmed.json()["status"] == "granted"
    assert service.has_consent(session, cid, "marketing_email") is True


def test_wrong_confirmation_token_is_404_and_changes_nothing(client, admin, session):
    cid = create_customer(session, email="ada@example.org")
    service.set_consent(session, cid, "marketing_email", True, "web", "test")
    session.commit()
    response = client.post(
        "/api/v1/customers/consent/confirm", json={"token": "forged"}, headers=admin
    )
    assert response.status_code == 404
    assert service.consent_state(session, cid)["marketing_email"]["status"] == "pending"


def test_withdrawal_is_immediate_and_history_keeps_source_time_and_proof(client, admin, session):
    cid = create_customer(session, email="ada@example.org")
    service.set_consent(
        session, cid, "personalisation", True, "app:settings", "test", {"screen": "privacy-v2"}
    )
    service.set_consent(session, cid, "personalisation", False, "support:call", "test")
    session.commit()
    assert service.has_consent(session, cid, "personalisation") is False
    view = client.get(f"/api/v1/customers/{cid}/consent", headers=admin).json()
    assert [(h["status"], h["source"], h["proof"]) for h in view["history"]] == [
        ("granted", "app:settings", {"screen": "privacy-v2"}),
        ("denied", "support:call", None),
    ]
    assert view["current"]["personalisation"]["status"] == "denied"


def test_repeated_grant_changes_nothing(session):
    cid = create_customer(session, email="ada@example.org")
    service.set_consent(session, cid, "analytics", True, "web", "test")
    again = service.set_consent(session, cid, "analytics", True, "web", "test")
    assert again.changed is False
    assert _topics(session) == ["customer.consent_changed"]


def test_unknown_purpose_is_422(client, admin, session):
    cid = create_customer(session, email="ada@example.org")
    session.commit()
    response = client.post(
        f"/api/v1/customers/{cid}/consent",
        json={"purpose": "telepathy", "granted": True, "source": "web"},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_purpose"
    assert _topics(session) == []


def test_consent_follows_the_person_after_a_merge(session):
    a = create_customer(session, email="a@example.org")
    b = create_customer(session, loyalty_card="L-1")
    service.set_consent(session, b, "analytics", True, "pos", "test")
    service.merge_customers(session, a, b, "test", "same person")
    assert service.has_consent(session, a, "analytics") is True


def test_has_consent_is_false_for_unknown_customers(session):
    assert service.has_consent(session, "cus_unknown", "analytics") is False
