"""Health, readiness and authentication endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from omniretail import __version__
from omniretail.core import auth
from omniretail.core.auth import Principal, Role
from omniretail.core.web import (
    ERROR_RESPONSES,
    Idempotent,
    PrincipalDep,
    SessionDep,
    TransactionalRoute,
    database_of,
    require,
)

router = APIRouter(route_class=TransactionalRoute)


@router.get("/healthz", tags=["system"], summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", tags=["system"], summary="Readiness: the database answers")
def readyz(request: Request) -> dict[str, str]:
    db = database_of(request)
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ready", "database": db.dialect}


class LoginRequest(BaseModel):
    email: str = Field(examples=["admin@example.com"])
    password: str = Field(examples=["correct horse battery"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str
    user_id: str


@router.post(
    "/api/v1/auth/token",
    tags=["auth"],
    summary="Sign in a console user and get a bearer token",
    responses=ERROR_RESPONSES,
)
def create_token(body: LoginRequest, session: SessionDep) -> TokenResponse:
    token, user = auth.login(session, body.email, body.password)
    return TokenResponse(access_token=token, role=user.role, user_id=user.id)


class MeResponse(BaseModel):
    kind: str
    id: str
    role: str
    channel_id: str | None
    location_ids: list[str]


@router.get("/api/v1/auth/me", tags=["auth"], summary="Who am I", responses=ERROR_RESPONSES)
def me(principal: PrincipalDep) -> MeResponse:
    return MeResponse(
        kind=principal.kind,
        id=principal.id,
        role=principal.role.value,
        channel_id=principal.channel_id,
        location_ids=list(principal.location_ids),
    )


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["ERP integration"])
    role: str = Field(examples=["merchandiser"])
    channel_id: str | None = Field(default=None, description="Required for role 'channel'")
    location_ids: list[str] = Field(default_factory=list)


class ApiKeyCreated(BaseModel):
    id: str
    name: str
    role: str
    prefix: str
    channel_id: str | None
    key: str = Field(description="Shown once; only its hash is stored")


class UserCreate(BaseModel):
    email: str = Field(examples=["ana@example.com"])
    password: str = Field(min_length=10)
    role: str = Field(examples=["store_associate"])
    location_ids: list[str] = Field(default_factory=list)


class UserOut(BaseModel):
    id: str
    email: str
    role: str
    location_ids: list[str]


AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


@router.post(
    "/api/v1/api-keys",
    tags=["auth"],
    status_code=201,
    summary="Create an API key (admin); the key is shown once",
    responses=ERROR_RESPONSES,
    dependencies=[Idempotent],
)
def create_api_key(body: ApiKeyCreate, session: SessionDep, _: AdminDep) -> ApiKeyCreated:
    plaintext, row = auth.create_api_key(
        session, body.name, body.role, body.channel_id, body.location_ids
    )
    return ApiKeyCreated(
        id=row.id,
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        channel_id=row.channel_id,
        key=plaintext,
    )


@router.delete(
    "/api/v1/api-keys/{key_id}", tags=["auth"], status_code=204, summary="Revoke an API key"
)
def revoke_api_key(key_id: str, session: SessionDep, _: AdminDep) -> None:
    auth.revoke_api_key(session, key_id)


@router.post(
    "/api/v1/users",
    tags=["auth"],
    status_code=201,
    summary="Create a console user (admin)",
    responses=ERROR_RESPONSES,
)
def create_user(body: UserCreate, session: SessionDep, _: AdminDep) -> UserOut:
    user = auth.create_user(session, body.email, body.password, body.role, body.location_ids)
    return UserOut(id=user.id, email=user.email, role=user.role, location_ids=user.location_ids)
