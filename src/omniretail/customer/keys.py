"""Per-person data keys: created on first use, unwrapped per transaction, destroyed on erase."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from cryptography.fernet import Fernet
from sqlalchemy import Table, bindparam, delete, event, select
from sqlalchemy.orm import Session

from omniretail.core.bulk import insert_rows
from omniretail.core.timeutil import utcnow
from omniretail.customer.crypto import key_ring
from omniretail.customer.models import DataKey

_SESSION_CACHE = "customer_data_keys"
_keys_table = cast(Table, DataKey.__table__)
_SELECT_KEYS = select(DataKey.profile_id, DataKey.wrapped).where(
    DataKey.profile_id.in_(bindparam("pids", expanding=True))
)


def data_keys(
    session: Session,
    profile_ids: Iterable[str],
    create: bool,
    new: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Fernet]:
    """The data keys of these profiles (created when missing and ``create``). Unwrapped keys
    are cached on the session only, so they never outlive the transaction. ``new``: profiles
    created in this transaction, which cannot have a stored key yet (no query for them).
    Created keys are written in one multi-row insert."""
    cache: dict[str, Fernet] = session.info.setdefault(_SESSION_CACHE, {})
    profile_ids = list(profile_ids)
    wanted = [pid for pid in dict.fromkeys(profile_ids) if pid not in cache]
    ring = key_ring()
    created: list[tuple[str, str, datetime]] = []
    now = utcnow()

    def make(pid: str) -> None:
        key, wrapped = ring.new_data_key()
        created.append((pid, wrapped, now))
        cache[pid] = key

    if create and new:
        for pid in wanted:
            if pid in new:
                make(pid)
        wanted = [pid for pid in wanted if pid not in cache]
    if wanted:
        rows = session.connection().execute(_SELECT_KEYS, {"pids": wanted}).all()
        for pid, wrapped in rows:
            cache[pid] = ring.unwrap(wrapped)
        if create:
            for pid in wanted:
                if pid not in cache:
                    make(pid)
    if created:
        insert_rows(
            session.connection(), _keys_table, ("profile_id", "wrapped", "created_at"), created
        )
    return {pid: cache[pid] for pid in profile_ids if pid in cache}


def forget_cached_keys(session: Session) -> None:
    session.info.pop(_SESSION_CACHE, None)


def destroy_data_keys(session: Session, profile_ids: list[str]) -> int:
    """Crypto-shred: delete the keys; every ciphertext under them is now unreadable."""
    forget_cached_keys(session)
    result = session.execute(delete(DataKey).where(DataKey.profile_id.in_(profile_ids)))
    return int(getattr(result, "rowcount", 0) or 0)


def rotate_master_keys(session: Session) -> int:
    """Re-wrap every data key with the first (newest) master key."""
    ring = key_ring()
    count = 0
    for row in session.scalars(select(DataKey).with_for_update()):
        row.wrapped = ring.rotate_wrapped(row.wrapped)
        row.rotated_at = utcnow()
        count += 1
    session.flush()
    return count


@event.listens_for(Session, "after_transaction_end")
def _drop_cache(session: Session, _transaction: object) -> None:
    # Unwrapped keys never outlive a transaction (a rolled-back key must not be reused).
    session.info.pop(_SESSION_CACHE, None)
