"""`omni customers` commands."""

import re

from sqlalchemy import select
from typer.testing import CliRunner

from omniretail.cli import app as omni
from omniretail.core.db import set_database
from omniretail.customer import tracking
from omniretail.customer.models import Source


def test_create_source_prints_a_write_key_that_authenticates(live_db):
    set_database(live_db)
    try:
        result = CliRunner().invoke(
            omni, ["customers", "create-source", "--name", "Tills", "--kind", "pos"]
        )
    finally:
        set_database(None)
    assert result.exit_code == 0, result.output
    key = re.search(r"(wk_pos_\S+)", result.output).group(1)
    assert tracking.authenticate_source(live_db, key).kind == "pos"
    with live_db.unit_of_work(write=False) as s:
        assert s.scalars(select(Source.name)).all() == ["Tills"]


def test_create_source_with_unknown_kind_fails_and_creates_nothing(live_db):
    set_database(live_db)
    try:
        result = CliRunner().invoke(
            omni, ["customers", "create-source", "--name", "X", "--kind", "fax"]
        )
    finally:
        set_database(None)
    assert result.exit_code == 1
    with live_db.unit_of_work(write=False) as s:
        assert s.scalars(select(Source)).all() == []
