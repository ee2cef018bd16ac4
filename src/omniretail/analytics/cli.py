"""`omni analytics`, `omni forecast` and `omni import` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="KPIs, cohorts, RFM and customer lifetime value.", no_args_is_help=True)
forecast_app = typer.Typer(help="Demand forecasting and replenishment.", no_args_is_help=True)
import_app = typer.Typer(help="Import sales history.", no_args_is_help=True)
