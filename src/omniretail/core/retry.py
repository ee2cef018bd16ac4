"""Retrying whole transactions on transient database errors (tenacity, not hand-made loops).

A deadlock, a serialization failure or a lock timeout (PostgreSQL SQLSTATE 40P01, 40001,
55P03; SQLite "database is locked") aborts the transaction but says nothing about the request:
repeating the whole unit of work is the correct answer, and callers never see these errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

T = TypeVar("T")

TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})  # deadlock, serialization, lock


def is_transient(exc: BaseException) -> bool:
    """Deadlock, serialization failure or lock timeout: the attempt can be repeated whole."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(orig)


def is_transient_or_race(exc: BaseException) -> bool:
    """Also a unique-key race (two writers inserting the same new key): re-reading wins."""
    return isinstance(exc, IntegrityError) or is_transient(exc)


def retrying(attempts: int = 8, when: Callable[[BaseException], bool] = is_transient) -> Retrying:
    """A tenacity ``Retrying`` with jittered exponential back-off (5 ms .. 250 ms)."""
    return Retrying(
        retry=retry_if_exception(when),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.005, max=0.25),
        reraise=True,
    )


def run_with_retries(
    fn: Callable[[], T], attempts: int = 8, when: Callable[[BaseException], bool] = is_transient
) -> T:
    """Call ``fn`` (which must open and commit its own transaction) until it succeeds or a
    non-transient error or the last attempt's error is raised."""
    return retrying(attempts, when)(fn)
