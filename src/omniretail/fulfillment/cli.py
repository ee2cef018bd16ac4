"""`omni sourcing` and `omni fulfillment` commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Order sourcing, delivery promise and store fulfilment.", no_args_is_help=True
)
