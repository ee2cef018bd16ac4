"""`omni customers` and `omni gdpr` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Customer profiles, identity and consent.", no_args_is_help=True)
gdpr_app = typer.Typer(help="GDPR export and erasure.", no_args_is_help=True)
