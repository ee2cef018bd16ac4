"""HTTP routes of the order context."""

from __future__ import annotations

from fastapi import APIRouter

from omniretail.core.web import ERROR_RESPONSES, TransactionalRoute

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, responses=ERROR_RESPONSES)
