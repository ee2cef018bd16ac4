"""Shared pieces of the `omni` commands."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from omniretail.core.errors import AppError

err = Console(stderr=True)


def fail(error: AppError, code: int = 1) -> NoReturn:
    """Print an AppError (code, message, details) to stderr and exit with ``code``."""
    err.print(f"[red]error[/red] {error.code}: {error.message}")
    if error.details:
        err.print(error.details)
    raise typer.Exit(code)
