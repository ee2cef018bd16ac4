"""Settings of the customer context (``OMNI_*`` variables, read once per process).

They live here rather than in ``core.config`` so the context owns its knobs; every default
works with no configuration (see docs/customers.md and docs/tracking-api.md).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CustomerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNI_", env_file=".env", extra="ignore")

    # --- encryption of personal data -------------------------------------------------------
    pii_keys: str | None = Field(
        default=None,
        description="Comma-separated Fernet master keys; the first encrypts, all decrypt "
        "(rotation: prepend a new key, run `omni customers rotate-keys`, then drop the old one)",
    )
    pii_index_key: str | None = Field(
        default=None, description="Secret of the HMAC-SHA256 blind index (not rotated)"
    )
    pii_key_file: str = Field(
        default="./omniretail-pii.keys",
        description="Development fallback: keys generated into this file when the two "
        "variables above are unset. Production sets OMNI_PII_KEYS and OMNI_PII_INDEX_KEY.",
    )

    # --- tracking API ---------------------------------------------------------------------
    tracking_max_event_bytes: int = 32 * 1024
    tracking_max_request_bytes: int = 4_000 * 1000
    tracking_max_inflight: int = Field(
        default=64, description="Requests processed at once per process before answering 429"
    )
    tracking_retry_after_s: int = 1
    tracking_key_cache_s: float = Field(
        default=30.0, description="How long a process remembers a valid write key"
    )
    tracking_session_timeout_min: float = Field(
        default=30.0,
        description="Without an SDK session id, a person's event starts a new session when "
        "their previous event is more than this many minutes older",
    )

    # --- identity resolution --------------------------------------------------------------
    identity_limits: dict[str, int] = Field(
        default_factory=lambda: {
            "user_id": 1,
            "email": 5,
            "phone": 5,
            "loyalty_card": 2,
            "external": 1,
            "anonymous_id": 1000,
            "device_id": 1000,
        },
        description="Most identifiers of a type one person may have; 'external' is per channel",
    )
    identity_blocked_values: list[str] = Field(
        default_factory=lambda: [
            "test@example.com",
            "test@test.com",
            "noreply@example.com",
            "null",
            "undefined",
            "none",
            "nil",
            "anonymous",
            "unknown",
            "0",
            "-1",
            "00000000-0000-0000-0000-000000000000",
        ],
        description="Identifier values never used to link people (shared test emails, ...)",
    )
    identity_shared_device_users: int = Field(
        default=3, description="A device or anonymous id seen with this many users is shared"
    )


@lru_cache(maxsize=1)
def get_customer_settings() -> CustomerSettings:
    return CustomerSettings()
