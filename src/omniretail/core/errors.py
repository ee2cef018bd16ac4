"""One error type for the whole platform and its JSON shape ``{"error": {...}}``."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure the caller can act on. ``status`` is the HTTP status the API answers with."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"AppError({self.code!r}, {self.message!r}, status={self.status})"


def not_found(kind: str, key: str, /, **details: Any) -> AppError:
    return AppError(
        f"{kind}_not_found",
        f"{kind.replace('_', ' ')} {key!r} not found",
        404,
        {kind: key, **details},
    )


def conflict(code: str, message: str, /, **details: Any) -> AppError:
    return AppError(code, message, 409, details)


def invalid(code: str, message: str, /, **details: Any) -> AppError:
    return AppError(code, message, 422, details)
