"""The Alembic migrations build exactly the schema the models describe."""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from omniretail.all_models import metadata


@pytest.mark.skipif(
    os.environ.get("OMNI_TEST_SCHEMA") == "metadata", reason="schema built without migrations"
)
def test_migrations_match_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []
