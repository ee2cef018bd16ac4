"""Test database: SQLite file by default, PostgreSQL when OMNI_TEST_DATABASE_URL is set.

The schema is built once per run by the real Alembic migrations. Each test runs inside an
outer transaction that is rolled back at the end; the code under test commits to savepoints.
Tests marked ``postgres`` get a committed-data database instead (see ``pg_db``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from omniretail.all_models import metadata
from omniretail.api import create_app
from omniretail.core import auth
from omniretail.core.db import Database, make_engine, set_database
from omniretail.core.migrate import upgrade

# Shared, noisy 2-core machines: tests assert correctness, never speed.
hypothesis_settings.register_profile("omni", deadline=None)
hypothesis_settings.load_profile("omni")

TEST_URL = os.environ.get("OMNI_TEST_DATABASE_URL")


def _reset_postgres(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if TEST_URL:
        eng = make_engine(TEST_URL)
        _reset_postgres(eng)
    else:
        path = Path(tempfile.mkdtemp(prefix="omni-test-")) / "test.db"
        eng = make_engine(f"sqlite:///{path}")
    if os.environ.get("OMNI_TEST_SCHEMA") == "metadata":
        metadata.create_all(eng)  # quick schema while a migration is being written
    else:
        upgrade(eng)
    yield eng
    eng.dispose()


def is_postgres_run() -> bool:
    return bool(TEST_URL) and TEST_URL.startswith("postgresql")


class RolledBackDatabase(Database):
    """A Database whose sessions join one outer transaction via savepoints."""

    def __init__(self, engine: Engine, connection: object) -> None:
        super().__init__(engine)
        factory = sessionmaker(
            bind=connection,  # type: ignore[arg-type]
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        self._read = factory
        self._write = factory
        self._connection = connection

    @contextmanager
    def statement_connection(self) -> Iterator[Connection]:
        # The one-statement path joins the outer transaction too, in a savepoint of its own.
        with self._connection.begin_nested():  # type: ignore[attr-defined]
            yield self._connection  # type: ignore[misc]


@pytest.fixture()
def db(engine: Engine) -> Iterator[Database]:
    connection = engine.connect()
    if engine.dialect.name == "sqlite":
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
    outer = connection.begin()
    database = RolledBackDatabase(engine, connection)
    set_database(database)
    try:
        yield database
    finally:
        set_database(None)
        outer.rollback()
        connection.close()


@pytest.fixture()
def session(db: Database) -> Iterator[Session]:
    s = db.session()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture()
def client(db: Database) -> Iterator[TestClient]:
    app = create_app(db)
    with TestClient(app) as c:
        yield c


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def make_key(session: Session):  # type: ignore[no-untyped-def]
    """``make_key(role, channel_id=None, location_ids=None)`` -> auth headers for a new API key."""

    def make(role: str, channel_id: str | None = None, location_ids: list[str] | None = None):  # type: ignore[no-untyped-def]
        plaintext, _ = auth.create_api_key(session, f"test {role}", role, channel_id, location_ids)
        session.commit()
        return auth_header(plaintext)

    return make


@pytest.fixture()
def admin(make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_key("admin")


# --- PostgreSQL with committed data, for concurrency tests ---------------------------------


@pytest.fixture()
def pg_db(engine: Engine) -> Iterator[Database]:
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrency tests need PostgreSQL (set OMNI_TEST_DATABASE_URL)")
    database = Database(engine)
    set_database(database)
    try:
        yield database
    finally:
        set_database(None)
        tables = ", ".join(
            f'"{t.name}"' for t in metadata.sorted_tables if t.name != "alembic_version"
        )
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} CASCADE"))
