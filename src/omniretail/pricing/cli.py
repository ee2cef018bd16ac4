"""`omni pricing` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="pricing commands", no_args_is_help=True)
