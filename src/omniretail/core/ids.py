"""Prefixed, time-ordered identifiers (``prd_01J...``) built on ULIDs."""

from __future__ import annotations

from ulid import ULID

PREFIXES = {
    "product": "prd",
    "variant": "var",
    "category": "cat",
    "channel": "chn",
    "price_book": "pbk",
    "price": "prc",
    "promotion": "pro",
    "coupon": "cpn",
    "user": "usr",
    "api_key": "key",
    "event": "evt",
    "location": "loc",
    "reservation": "rsv",
    "cart": "crt",
    "order": "ord",
    "customer": "cus",
}


def new_id(prefix: str) -> str:
    """A new id such as ``prd_01JD3...``; lexicographic order follows creation time."""
    return f"{prefix}_{ULID()}"
