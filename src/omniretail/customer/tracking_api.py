"""Segment-compatible tracking endpoints under /v1 (batch, track, identify, page, ...)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["tracking"])
