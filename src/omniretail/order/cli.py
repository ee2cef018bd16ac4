"""`omni orders` and `omni pos` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Carts, orders, payments and returns.", no_args_is_help=True)
pos_app = typer.Typer(
    help="Store registers (POS), including offline selling.", no_args_is_help=True
)
