"""Engine, declarative base and the unit of work (one transaction per request or command).

SQLite (the embedded default) runs in WAL mode with foreign keys on. Transactions that write
start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock upgrade; read-only
transactions use a plain deferred ``BEGIN``. PostgreSQL uses READ COMMITTED; stock and
balance changes rely on conditional updates and row locks taken in a fixed order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

from omniretail.core.config import get_settings
from omniretail.core.timeutil import as_utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use omniretail.core.timeutil.utcnow()")
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions break savepoints).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    settings = get_settings()
    url = url or settings.database_url
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, Any] = {"echo": settings.database_echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        options["pool_size"] = settings.database_pool_size
        options["max_overflow"] = settings.database_pool_size
        options["pool_pre_ping"] = True
    options.update(kwargs)
    engine = create_engine(parsed, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


class Database:
    """Owns the engine and hands out sessions: read-only or writing (BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._read = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
        writer = (
            engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.dialect == "sqlite"
            else engine
        )
        self._write = sessionmaker(bind=writer, expire_on_commit=False, autoflush=True)

    @cached_property
    def autocommit(self) -> Engine:
        """PostgreSQL: a small pool of connections in autocommit mode, for work that is one
        self-contained statement (no BEGIN and COMMIT round trips), created on first use. Its
        connections never hold a transaction, so they need no reset when they go back to the
        pool. It opens at most as many connections as the main pool keeps (``pool_size``)."""
        pool = self.engine.pool
        size = pool.size() if isinstance(pool, QueuePool) else 4
        # at most as many connections as the main pool keeps open, half of them kept idle
        return create_engine(
            self.engine.url,
            isolation_level="AUTOCOMMIT",
            pool_size=max(1, size // 2),
            max_overflow=size - max(1, size // 2),
            pool_pre_ping=getattr(pool, "_pre_ping", True),  # as the main pool (no accessor)
            pool_reset_on_return=None,
        )

    @contextmanager
    def statement_connection(self) -> Iterator[Connection]:
        """A connection for work that is one self-contained statement (it writes everything or
        nothing by itself): on PostgreSQL from the autocommit pool, so the statement is its own
        transaction, with no BEGIN and COMMIT round trips."""
        with self.autocommit.connect() as connection:
            yield connection

    def dispose(self) -> None:
        """Close every pooled connection (both pools)."""
        if "autocommit" in self.__dict__:
            self.autocommit.dispose()
        self.engine.dispose()

    def session(self, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    @contextmanager
    def unit_of_work(self, write: bool = True) -> Iterator[Session]:
        """Open a session, commit if the block succeeds, roll back if it raises."""
        session = self.session(write)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


_default: Database | None = None


def get_database() -> Database:
    global _default
    if _default is None:
        _default = Database(make_engine())
    return _default


def set_database(db: Database | None) -> None:
    """Replace the process-wide database (tests and the CLI's --database option)."""
    global _default
    _default = db


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
