"""Serves the console: ``/console`` (single page) and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console")


@router.get("/console")
def console() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


static_files = StaticFiles(directory=STATIC)
