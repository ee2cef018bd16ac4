"""Segment-compatible tracking endpoints under /v1 (batch, track, identify, page, screen,
group, alias), usable unchanged by the Segment and RudderStack SDKs.

* Auth: HTTP Basic with the write key as user and an empty password, or ``writeKey`` in the
  body.
* The body is read raw: gunzipped when ``Content-Encoding: gzip`` or when it starts with the
  gzip magic bytes, whatever the Content-Type says; limits apply to the decoded JSON.
* ``/v1/batch``: bad events are rejected one by one (stored in ``customer_tracking_rejects``)
  and the good ones are stored; the answer is still 200. A single call with a bad event is
  a 400 and stores nothing.
* Overload: more than ``OMNI_TRACKING_MAX_INFLIGHT`` requests in progress in this process
  answer 429 with ``Retry-After``; SDKs wait and resend (same messageIds, deduplicated).
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from omniretail.core.db import Database
from omniretail.core.errors import AppError
from omniretail.core.retry import is_transient_or_race, run_with_retries
from omniretail.core.timeutil import utcnow
from omniretail.core.web import database_of, error_response
from omniretail.customer import domain, tracking
from omniretail.customer.settings import get_customer_settings

log = logging.getLogger("omniretail.customer.tracking")

router = APIRouter(prefix="/v1", tags=["tracking"])

SUCCESS = b'{"success":true}'
ATTEMPTS = 4  # a concurrent first sight of the same identifier is retried


@dataclass
class Gate:
    """Requests in progress in this process (the event loop is single-threaded)."""

    in_flight: int = 0
    shed: int = 0


def gate_of(request: Request) -> Gate:
    gate: Gate | None = getattr(request.app.state, "tracking_gate", None)
    if gate is None:
        gate = Gate()
        request.app.state.tracking_gate = gate
    return gate


class _SQLiteWriter:
    """A queue for SQLite's single writer. Without it, a write transaction that finds the
    database locked polls in SQLite's busy handler, whose sleeps grow to 100 ms: the lock is
    often free while every waiter sleeps, and a second worker process mostly waits. Threads
    of a process queue on a lock, processes on an ``flock`` of a file next to the database;
    both hand over as soon as the writer is done. Throughput only: correctness never depends
    on it (SQLite's own locking still applies, and other writers use the busy handler)."""

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database_path}.ingest-lock" if database_path else None
        self._fd: int | None = None
        self._pid = 0  # the process that opened _fd (a forked child opens its own)

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._path is not None and fcntl is not None:
                if self._fd is None or self._pid != os.getpid():
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                    self._pid = os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            self._path = None  # no lock file (read-only directory...): threads only
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._fd is not None and self._path is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_writers: dict[int, _SQLiteWriter] = {}
_writers_lock = threading.Lock()


def _writer(db: Database) -> AbstractContextManager[Any]:
    """The write queue of a SQLite database (nothing on PostgreSQL, which locks rows)."""
    if db.dialect != "sqlite":
        return nullcontext()
    with _writers_lock:
        writer = _writers.get(id(db.engine))
        if writer is None:
            path = db.engine.url.database
            in_memory = not path or path == ":memory:" or path.startswith("file::memory:")
            writer = _writers[id(db.engine)] = _SQLiteWriter(None if in_memory else path)
    return writer


def _process(
    db: Database,
    body: bytes,
    content_encoding: str | None,
    authorization: str | None,
    forced_type: str | None,
) -> tracking.IngestResult:
    settings = get_customer_settings()
    received_at = utcnow()
    header_key = tracking.basic_auth_user(authorization)
    source = tracking.authenticate_source(db, header_key) if header_key else None
    decoded = tracking.decode_body(body, content_encoding, settings.tracking_max_request_bytes)
    payload, total = decoded.value, decoded.size
    if source is None:
        key = payload.get("writeKey") if isinstance(payload, dict) else None
        source = tracking.authenticate_source(db, key if isinstance(key, str) else None)
    if not isinstance(payload, dict):
        raise AppError("invalid_body", "the body must be a JSON object", 400)
    try:
        sent_at = domain.parse_timestamp(payload.get("sentAt"), "sentAt")
    except domain.EventRejected:
        sent_at = None
    if forced_type is None:
        raws = payload.get("batch")
        if not isinstance(raws, list):
            raise AppError("invalid_batch", "the body needs a 'batch' array of events", 400)
        defaults = (
            {"context": payload["context"]} if isinstance(payload.get("context"), dict) else None
        )
        good, rejects, duplicates = tracking.validate_events(
            raws,
            received_at=received_at,
            sent_at=sent_at,
            forced_type=None,
            total_bytes=total,
            defaults=defaults,
            spans=decoded.spans,
            ascii_body=decoded.ascii,
        )
    else:
        good, rejects, duplicates = tracking.validate_events(
            [payload],
            received_at=received_at,
            sent_at=sent_at,
            forced_type=forced_type,
            total_bytes=total,
        )
        if rejects:
            r = rejects[0]
            raise AppError(r.code, r.message, 400, {"messageId": r.message_id})

    prepared = tracking.prepare(good)

    def store() -> tracking.IngestResult:
        with _writer(db), db.unit_of_work() as session:
            return tracking.ingest(session, source, good, rejects, received_at, prepared)

    result = run_with_retries(store, ATTEMPTS, is_transient_or_race)
    result.duplicates += duplicates
    if rejects:
        log.warning(
            "tracking batch: %d stored, %d rejected",
            result.stored,
            len(rejects),
            extra={"source_id": source.id, "codes": sorted({r.code for r in rejects})},
        )
    return result


async def _handle(request: Request, forced_type: str | None) -> Response:
    settings = get_customer_settings()
    gate = gate_of(request)
    if gate.in_flight >= settings.tracking_max_inflight:
        gate.shed += 1
        response = error_response(
            AppError(
                "overloaded",
                "too many requests in progress; retry after the given delay",
                429,
                {"retry_after_s": settings.tracking_retry_after_s},
            )
        )
        response.headers["Retry-After"] = str(settings.tracking_retry_after_s)
        return response
    gate.in_flight += 1
    try:
        body = await request.body()
        await run_in_threadpool(
            _process,
            database_of(request),
            body,
            request.headers.get("content-encoding"),
            request.headers.get("authorization"),
            forced_type,
        )
    except AppError as exc:
        return error_response(exc)
    finally:
        gate.in_flight -= 1
    return Response(content=SUCCESS, media_type="application/json")


_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored", "content": {"application/json": {"example": {"success": True}}}},
    400: {"description": "Malformed JSON, too large, or (single calls) an invalid event"},
    401: {"description": "Missing or unknown write key"},
    429: {"description": "Overloaded; resend after Retry-After seconds"},
}


def _body_doc(example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}, "example": example}},
        }
    }


@router.post(
    "/batch",
    summary="A batch of calls (what the server SDKs send)",
    responses=_DOC,
    openapi_extra=_body_doc(
        {
            "batch": [
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": "a-1",
                    "messageId": "m-1",
                    "properties": {"product_id": "prd_1"},
                }
            ]
        }
    ),
)
async def batch(request: Request) -> Response:
    return await _handle(request, None)


def _single(kind: str, example: dict[str, Any]) -> None:
    async def endpoint(request: Request) -> Response:
        return await _handle(request, kind)

    endpoint.__name__ = f"tracking_{kind}"
    router.add_api_route(
        f"/{kind}",
        endpoint,
        methods=["POST"],
        summary=f"A single {kind} call",
        responses=_DOC,
        openapi_extra=_body_doc(example),
    )


_single("track", {"userId": "u-1", "event": "Order Completed", "properties": {"order_id": "o-1"}})
_single("identify", {"userId": "u-1", "traits": {"email": "ada@example.org", "plan": "gold"}})
_single("page", {"anonymousId": "a-1", "name": "Home", "properties": {"path": "/"}})
_single("screen", {"anonymousId": "a-1", "name": "Basket"})
_single("group", {"userId": "u-1", "groupId": "g-1", "traits": {"name": "Acme"}})
_single("alias", {"userId": "u-1", "previousId": "a-1"})
