"""The Alembic migrations build exactly the schema the models describe."""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from omniretail.all_models import metadata
from omniretail.core.migrate import for_dialect


@pytest.mark.skipif(
    os.environ.get("OMNI_TEST_SCHEMA") == "metadata", reason="schema built without migrations"
)
def test_migrations_match_models(engine):
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": for_dialect(conn.dialect.name)}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, metadata)
    assert diff == []
