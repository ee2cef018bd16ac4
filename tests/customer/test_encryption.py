"""Personal data is encrypted at rest with per-person keys; lookups use a blind index."""

import hashlib
import hmac

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from omniretail.customer import crypto
from omniretail.customer.keys import rotate_master_keys
from omniretail.customer.models import DataKey
from tests.customer.helpers import create_customer, customer_of, identify, send


def _raw_rows(session, table):
    return [tuple(r) for r in session.execute(text(f"SELECT * FROM {table}")).all()]


def test_raw_rows_contain_no_plaintext_email_or_phone(client, make_source, session):
    create_customer(
        session,
        email="ada@example.org",
        phone="+44 7700 900123",
        first_name="Ada",
        addresses=[{"line1": "12 High Street", "country": "GB"}],
    )
    session.commit()
    key, _ = make_source()
    send(
        client,
        key,
        identify(
            "u-1", "a-1", email="grace@example.org", phone="+1 202 555 0101", firstName="Grace"
        ),
    )
    dump = repr(
        [
            _raw_rows(session, t)
            for t in (
                "customer_profiles",
                "customer_identifiers",
                "customer_events",
                "customer_addresses",
                "outbox_events",
            )
        ]
    )
    for secret in (
        "ada@example.org",
        "7700900123",
        "12 High Street",
        "grace@example.org",
        "2025550101",
        "Grace",
        "Ada",
    ):
        assert secret not in dump


def test_blind_index_is_keyed_and_normalised(session):
    ring = crypto.key_ring()
    create_customer(session, email="ada@example.org")
    assert customer_of(session, "email", "  ADA@example.ORG ") is not None
    other = crypto.KeyRing(ring.master, b"another-index-key")
    assert other.blind_index("email", "ada@example.org") != ring.blind_index(
        "email", "ada@example.org"
    )


def test_master_key_rotation_rewraps_data_keys_and_data_stays_readable(session, settings):
    from omniretail.customer import service

    cid = create_customer(session, email="ada@example.org")
    old_wrapped = session.get(DataKey, cid).wrapped
    settings.pii_keys = f"{Fernet.generate_key().decode()},{settings.pii_keys}"
    try:
        assert rotate_master_keys(session) == 1
        settings.pii_keys = settings.pii_keys.split(",")[0]  # the old key is retired
        session.expire_all()
        assert session.get(DataKey, cid).wrapped != old_wrapped
        assert service.customer_view(session, cid, pii=True)["email"] == "ada@example.org"
    finally:
        crypto._ring.cache_clear()


@pytest.mark.parametrize("index_key", [b"short-key", b"k" * 100])
def test_blind_index_is_hmac_sha256_of_type_and_value(index_key):
    # given a key shorter and one longer than the SHA-256 block
    ring = crypto.KeyRing(crypto.key_ring().master, index_key)
    # when / then
    assert (
        ring.blind_index("email", "ada@example.org")
        == hmac.new(index_key, b"email\x1fada@example.org", hashlib.sha256).hexdigest()
    )
