"""Cursor pagination over time-ordered ids (ULID-based ids sort by creation)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from omniretail.core.config import get_settings
from omniretail.core.errors import AppError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except Exception:
        raise AppError(
            "invalid_cursor", "the cursor is not valid", 400, {"cursor": cursor}
        ) from None


def clamp_limit(limit: int | None) -> int:
    settings = get_settings()
    if limit is None:
        return settings.default_page_size
    if limit < 1 or limit > settings.max_page_size:
        raise AppError(
            "invalid_limit", f"limit must be between 1 and {settings.max_page_size}", 400
        )
    return limit


def paginate(
    session: Session,
    query: Select[Any],
    key: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int | None,
) -> tuple[Sequence[Any], str | None]:
    """Rows after ``cursor`` ordered by ``key`` plus the cursor of the next page (or None)."""
    size = clamp_limit(limit)
    if cursor:
        query = query.where(key > decode_cursor(cursor))
    rows = list(session.scalars(query.order_by(key).limit(size + 1)))
    if len(rows) > size:
        rows = rows[:size]
        return rows, encode_cursor(getattr(rows[-1], key.key))
    return rows, None
