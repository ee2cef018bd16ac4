"""Rate limits for endpoints that could be used to guess secrets (gift-card codes), on the
``limits`` library: a moving window per caller (credential) and client address, in memory per
process by default or in Redis (``OMNI_RATE_LIMIT_STORAGE`` / ``OMNI_REDIS_URL``) so that every
API process shares the counters. Over the limit: 429 ``rate_limited`` with ``Retry-After``."""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from omniretail.core.config import get_settings
from omniretail.core.errors import AppError


@lru_cache(maxsize=4)
def _limiter(uri: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(uri))


def limiter() -> MovingWindowRateLimiter:
    settings = get_settings()
    return _limiter(settings.rate_limit_storage or settings.redis_url or "memory://")


def check(scope: str, rate: str, *keys: str) -> None:
    """Count one hit of ``scope`` for ``keys``; 429 when the ``rate`` (e.g. ``10/minute``) is
    exceeded."""
    item = parse(rate)
    window = limiter()
    if window.hit(item, scope, *keys):
        return
    reset = window.get_window_stats(item, scope, *keys).reset_time
    retry = max(1, math.ceil(reset - time.time()))
    raise AppError(
        "rate_limited",
        f"too many requests; try again in {retry} s",
        429,
        {"limit": rate, "retry_after": retry},
    )
