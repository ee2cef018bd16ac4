"""Settings read from ``OMNI_*`` environment variables; every default works with no config."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNI_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./omniretail.db",
        description="SQLAlchemy URL; sqlite:///file (embedded default) or postgresql://...",
    )
    database_pool_size: int = 10
    database_echo: bool = False
    log_json: bool = False
    log_level: str = "INFO"
    nats_url: str | None = Field(
        default=None, description="When set (nats://127.0.0.1:4222), outbox events go to JetStream"
    )
    nats_stream: str = "OMNI_EVENTS"
    redis_url: str | None = Field(
        default=None, description="When set, background jobs use Redis instead of SQLite storage"
    )
    jobs_sqlite_path: str = "./omniretail-jobs.db"
    dispatch_on_commit: bool = Field(
        default=False,
        description="The API server asks the worker to dispatch the outbox as soon as a request "
        "committed events (else the worker's minute tick does); on when a worker runs",
    )
    rate_limit_storage: str | None = Field(
        default=None,
        description="Where rate-limit counters live (memory:// per process by default; "
        "redis://... to share them between processes; defaults to redis_url when that is set)",
    )
    gift_card_lookup_rate: str = Field(
        default="10/minute", description="Gift-card balance lookups per caller and client address"
    )
    token_ttl_hours: int = 12
    idempotency_ttl_hours: int = 24
    default_page_size: int = 50
    max_page_size: int = 500


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
