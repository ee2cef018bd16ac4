"""Users, API keys, bearer tokens and roles.

* API keys (server-to-server) look like ``ok_<prefix>_<secret>``; only their SHA-256 is stored
  (they are long random secrets, so a fast hash is safe) and the full key is shown once.
* Publishable channel keys (``pk_...``) belong to one sales channel and open only the
  storefront endpoints (catalog reads, availability, carts, checkout, tracking).
* Console users sign in with an argon2-hashed password and get a bearer token (stored hashed,
  expiring after ``OMNI_TOKEN_TTL_HOURS``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from omniretail.core.config import get_settings
from omniretail.core.errors import AppError, conflict, invalid
from omniretail.core.ids import new_id
from omniretail.core.models import ApiKey, AuthToken, User
from omniretail.core.timeutil import as_utc, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    MERCHANDISER = "merchandiser"
    STORE_ASSOCIATE = "store_associate"
    SUPPORT_AGENT = "support_agent"
    ANALYST = "analyst"
    CHANNEL = "channel"


STAFF_ROLES = frozenset(r for r in Role if r is not Role.CHANNEL)
_hasher = PasswordHash.recommended()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a console user, a secret API key or a publishable channel key."""

    kind: str  # "user" | "api_key"
    id: str
    role: Role
    channel_id: str | None = None
    location_ids: tuple[str, ...] = field(default_factory=tuple)

    def can_act_at(self, location_id: str) -> bool:
        """Store associates are bound to their stores; other staff roles are not."""
        if self.role is Role.STORE_ASSOCIATE:
            return location_id in self.location_ids
        return self.role is not Role.CHANNEL


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


def _parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise invalid(
            "invalid_role", f"unknown role {role!r}", allowed=[r.value for r in Role]
        ) from None


def create_user(
    session: Session, email: str, password: str, role: str, location_ids: list[str] | None = None
) -> User:
    parsed = _parse_role(role)
    if parsed is Role.CHANNEL:
        raise invalid("invalid_role", "console users cannot have the channel role")
    email = email.strip().lower()
    if "@" not in email:
        raise invalid("invalid_email", f"{email!r} is not an email address")
    if len(password) < 10:
        raise invalid("weak_password", "passwords need at least 10 characters")
    if session.scalar(select(User.id).where(User.email == email)):
        raise conflict("user_exists", f"a user with email {email!r} already exists")
    if parsed is Role.STORE_ASSOCIATE and not location_ids:
        raise invalid("locations_required", "a store associate must be bound to a location")
    user = User(
        id=new_id("usr"),
        email=email,
        password_hash=hash_password(password),
        role=parsed.value,
        location_ids=list(location_ids or []),
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def login(session: Session, email: str, password: str) -> tuple[str, User]:
    """Check a password and issue a bearer token; the same error for any wrong credential."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active or not verify_password(password, user.password_hash):
        raise AppError("invalid_credentials", "email or password is wrong", 401)
    token = "ot_" + secrets.token_urlsafe(32)
    session.add(
        AuthToken(
            token_hash=_sha256(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(hours=get_settings().token_ttl_hours),
        )
    )
    session.flush()
    return token, user


def create_api_key(
    session: Session,
    name: str,
    role: str,
    channel_id: str | None = None,
    location_ids: list[str] | None = None,
) -> tuple[str, ApiKey]:
    """Create a key and return ``(plaintext, row)``; the plaintext is never stored."""
    parsed = _parse_role(role)
    if parsed is Role.CHANNEL and not channel_id:
        raise invalid("channel_required", "a publishable key belongs to one channel")
    if parsed is not Role.CHANNEL and channel_id:
        raise invalid("channel_not_allowed", "only channel keys are bound to a channel")
    prefix = secrets.token_hex(4)
    kind = "pk" if parsed is Role.CHANNEL else "ok"
    plaintext = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=new_id("key"),
        name=name,
        prefix=f"{kind}_{prefix}",
        key_hash=_sha256(plaintext),
        role=parsed.value,
        channel_id=channel_id,
        location_ids=list(location_ids or []),
        active=True,
    )
    session.add(row)
    session.flush()
    return plaintext, row


def revoke_api_key(session: Session, key_id: str) -> None:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise AppError("api_key_not_found", f"API key {key_id!r} not found", 404)
    row.active = False
    session.flush()


def authenticate(session: Session, credential: str) -> Principal | None:
    """Resolve an API key or bearer token to a principal, or ``None`` if it is not valid."""
    digest = _sha256(credential)
    if credential.startswith(("ok_", "pk_")):
        key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        if key is None or not key.active:
            return None
        return Principal(
            kind="api_key",
            id=key.id,
            role=Role(key.role),
            channel_id=key.channel_id,
            location_ids=tuple(key.location_ids or ()),
        )
    if credential.startswith("ot_"):
        token = session.get(AuthToken, digest)
        if token is None or as_utc(token.expires_at) <= utcnow():
            return None
        user = session.get(User, token.user_id)
        if user is None or not user.active:
            return None
        return Principal(
            kind="user",
            id=user.id,
            role=Role(user.role),
            location_ids=tuple(user.location_ids or ()),
        )
    return None
