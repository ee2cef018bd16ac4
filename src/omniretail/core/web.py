"""HTTP plumbing shared by every context: the transactional route, the session and principal
dependencies, role checks, idempotency keys and the error handlers."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from omniretail.core import auth
from omniretail.core.auth import Principal, Role
from omniretail.core.db import Database, get_database
from omniretail.core.errors import AppError
from omniretail.core.models import IdempotencyRecord

log = logging.getLogger("omniretail.api")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def database_of(request: Request) -> Database:
    db = getattr(request.app.state, "database", None)
    return db if db is not None else get_database()


class TransactionalRoute(APIRoute):
    """Runs each request in one transaction: commit when the response is a success, roll back
    on any error. The commit happens before the response is returned, so a client never sees
    success for a change that did not persist. Idempotency records commit in the same
    transaction as the change they describe."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            db = database_of(request)
            session = db.session(write=request.method not in READ_METHODS)
            request.state.session = session
            request.state.idempotency = None
            try:
                response = await original(request)
                if response.status_code >= 400:
                    await run_in_threadpool(session.rollback)
                    return response
                pending: IdempotencyPending | None = request.state.idempotency
                if pending is not None:
                    pending.store(session, response)
                try:
                    await run_in_threadpool(session.commit)
                except IntegrityError:
                    await run_in_threadpool(session.rollback)
                    if pending is None:
                        raise
                    # A concurrent request with the same key won: answer with its result.
                    replay = await run_in_threadpool(pending.lookup_in, db)
                    if replay is None:
                        raise
                    return replay
                return response
            except BaseException:
                await run_in_threadpool(session.rollback)
                raise
            finally:
                await run_in_threadpool(session.close)

        return handler


def get_session(request: Request) -> Session:
    session: Session = request.state.session
    return session


SessionDep = Annotated[Session, Depends(get_session)]


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


def get_principal(request: Request, session: SessionDep) -> Principal:
    credential = _credential(request)
    if not credential:
        raise AppError(
            "unauthenticated",
            "authentication required: send 'Authorization: Bearer <token or API key>'",
            401,
        )
    principal = auth.authenticate(session, credential)
    if principal is None:
        raise AppError("invalid_credentials", "the token or API key is not valid", 401)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """Dependency: the caller must hold one of ``roles``; admin passes every check."""
    allowed = frozenset(roles) | {Role.ADMIN}

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise AppError(
                "forbidden",
                f"role {principal.role.value!r} may not do this",
                403,
                {"required_roles": sorted(r.value for r in allowed)},
            )
        return principal

    return check


def check_locations(principal: Principal, location_ids: Iterable[str]) -> None:
    """Store associates act only at their own locations: 403 ``forbidden_location`` else."""
    denied = sorted({loc for loc in location_ids if not principal.can_act_at(loc)})
    if denied:
        raise AppError(
            "forbidden_location",
            "this caller may not act at these locations",
            403,
            {"locations": denied},
        )


def storefront(*staff_roles: Role) -> Callable[[Principal], Principal]:
    """Dependency for storefront endpoints: publishable channel keys plus the given staff roles."""
    return require(Role.CHANNEL, *staff_roles)


AnyStaff = require(*(r for r in Role if r is not Role.CHANNEL))


class IdempotencyPending:
    def __init__(self, scope: str, key: str, request_hash: str) -> None:
        self.scope, self.key, self.request_hash = scope, key, request_hash

    def store(self, session: Session, response: Response) -> None:
        session.add(
            IdempotencyRecord(
                scope=self.scope,
                key=self.key,
                request_hash=self.request_hash,
                status_code=response.status_code,
                response_body=bytes(response.body),
            )
        )

    def lookup_in(self, db: Database) -> Response | None:
        with db.unit_of_work(write=False) as session:
            record = session.get(IdempotencyRecord, (self.scope, self.key))
            return None if record is None else _replay(record, self.request_hash)


def _replay(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise AppError(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
            409,
            {"idempotency_key": record.key},
        )
    return Response(
        content=record.response_body,
        status_code=record.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


class IdempotentReplay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional. Replays with the same key and body return the first result "
            "without a second effect; the same key with another body gives 409.",
            max_length=255,
        ),
    ] = None,
) -> None:
    """Reusable dependency for POSTs that create things or move money or stock."""
    if not idempotency_key:
        return
    body = await request.body()
    # The scope covers every credential of the request: the API key or token and, for
    # storefront carts, the cart token, so a replay never answers someone without them.
    principal_scope = "|".join(
        [_credential(request) or "anonymous", request.headers.get("x-cart-token", "")]
    )
    scope_hash = hashlib.sha256(principal_scope.encode()).hexdigest()[:16]
    scope = f"{scope_hash}:{request.method}:{request.url.path}"
    request_hash = hashlib.sha256(body).hexdigest()
    session: Session = request.state.session
    record = await run_in_threadpool(session.get, IdempotencyRecord, (scope, idempotency_key))
    if record is not None:
        raise IdempotentReplay(_replay(record, request_hash))
    request.state.idempotency = IdempotencyPending(scope, idempotency_key, request_hash)


Idempotent = Depends(idempotency)


def error_response(error: AppError) -> JSONResponse:
    headers = None
    if error.status == 429 and "retry_after" in error.details:
        headers = {"Retry-After": str(error.details["retry_after"])}
    return JSONResponse(error.to_dict(), status_code=error.status, headers=headers)


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(IdempotentReplay)
    async def _replayed(_request: Request, exc: IdempotentReplay) -> Response:
        return exc.response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return error_response(
            AppError("validation_error", "the request is not valid", 422, {"errors": errors})
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(AppError(code, str(exc.detail), exc.status_code))

    @app.exception_handler(json.JSONDecodeError)
    async def _json(_request: Request, exc: json.JSONDecodeError) -> JSONResponse:
        return error_response(AppError("malformed_json", f"malformed JSON: {exc.msg}", 400))


def error_doc(code: str, text: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI response entry whose example is the error shape."""
    example = {"error": {"code": code, "message": text, "details": details or {}}}
    return {"description": text, "content": {"application/json": {"example": example}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error_doc("unauthenticated", "Missing or invalid credentials"),
    403: error_doc("forbidden", "The caller's role may not do this"),
    422: error_doc("validation_error", "The request is not valid"),
}
