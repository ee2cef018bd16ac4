"""`omni analytics`, `omni forecast` through typer's CliRunner against the test database."""

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from omniretail.analytics import cli as analytics_cli
from omniretail.cli import app
from tests.analytics.factories import csv_text, generated_rows, handmade

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(analytics_cli, "console", Console(width=200))


@pytest.fixture()
def shop(session, db):
    handmade(session)
    session.commit()
    return session


def test_kpis_as_json(shop):
    result = runner.invoke(
        app, ["analytics", "kpis", "--start", "2024-01-01", "--end", "2024-04-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["aov_minor"], data["repeat_purchase_rate"]) == (1031, 0.5)


def test_kpis_table(shop):
    result = runner.invoke(
        app, ["analytics", "kpis", "--start", "2024-01-01", "--end", "2024-04-01"]
    )
    assert result.exit_code == 0, result.output
    assert "82.50 GBP" in result.output  # revenue
    assert "10.31 GBP" in result.output  # AOV


def test_bad_date_option_is_a_clear_error(shop):
    result = runner.invoke(app, ["analytics", "kpis", "--start", "1/1/2024"])
    assert result.exit_code == 2
    assert "--start must be YYYY-MM-DD" in result.output


def test_cohorts_counts(shop):
    result = runner.invoke(
        app, ["analytics", "cohorts", "--start", "2024-01-01", "--end", "2024-04-01", "--counts"]
    )
    assert result.exit_code == 0, result.output
    assert "2024-01" in result.output


def test_rfm_segments(shop):
    result = runner.invoke(
        app, ["analytics", "rfm", "--start", "2024-01-01", "--end", "2024-04-01"]
    )
    assert result.exit_code == 0, result.output
    assert "at_risk" in result.output


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_chart_command_writes_the_file(shop, tmp_path, suffix):
    out = tmp_path / f"cohorts.{suffix}"
    result = runner.invoke(app, ["analytics", "chart", "cohort-retention", "--out", str(out)])
    assert result.exit_code == 0, result.output
    head = out.read_bytes()[:8]
    assert head == b"\x89PNG\r\n\x1a\n" if suffix == "png" else head.startswith(b"<?xml")


def test_forecast_backtest_command(session, db):
    from omniretail.analytics import service

    service.import_online_retail(session, csv_text(generated_rows(invoices=1500, seed=3)))
    session.commit()
    result = runner.invoke(app, ["forecast", "backtest", "--top", "20", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["series"] == 20


@pytest.mark.parametrize(
    "command",
    [
        ["import", "online-retail", "--help"],
        ["analytics", "kpis", "--help"],
        ["analytics", "clv", "--help"],
        ["analytics", "chart", "--help"],
        ["forecast", "run", "--help"],
        ["forecast", "backtest", "--help"],
        ["forecast", "replenish", "--help"],
    ],
)
def test_every_command_has_help(command):
    result = runner.invoke(app, command)
    assert result.exit_code == 0
    assert "Usage" in result.output
