"""Fixtures of the customer tests: fixed test keys, tracking sources, a live server."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine, text

os.environ.setdefault("OMNI_PII_KEYS", "JhM0nDTN7n6vJ4Yt1r0t3cBm3zj0G3yW1m4Ck4v6b5E=")
os.environ.setdefault("OMNI_PII_INDEX_KEY", "test-blind-index-key-0123456789")
os.environ.setdefault("OMNI_PII_KEY_FILE", str(Path(tempfile.gettempdir()) / "omni-test-pii.keys"))

from omniretail.all_models import metadata
from omniretail.api import create_app
from omniretail.core.db import Database, make_engine
from omniretail.customer import tracking
from omniretail.customer.settings import get_customer_settings


@pytest.fixture()
def settings():
    """The customer settings; changes made by a test are undone after it."""
    current = get_customer_settings()
    saved = current.model_dump()
    yield current
    for name, value in saved.items():
        setattr(current, name, value)


@pytest.fixture()
def make_source(session):
    def make(kind: str = "web", name: str | None = None) -> tuple[str, str]:
        key, source = tracking.create_source(session, name or f"test {kind}", kind)
        session.commit()
        return key, source.id

    return make


def basic(key: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


# --- a live server on a committed database --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.app = create_app(database)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _truncate(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture()
def live_db(engine: Engine) -> Iterator[Database]:
    """A database whose data is committed: a fresh SQLite file, or the PostgreSQL test
    database (truncated afterwards) on PostgreSQL runs."""
    if engine.dialect.name == "postgresql":
        database = Database(engine)
        try:
            yield database
        finally:
            _truncate(engine)
        return
    path = Path(tempfile.mkdtemp(prefix="omni-live-")) / "live.db"
    own = make_engine(f"sqlite:///{path}")
    metadata.create_all(own)
    try:
        yield Database(own)
    finally:
        own.dispose()


@pytest.fixture()
def live(live_db: Database) -> Iterator[LiveServer]:
    server = LiveServer(live_db)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def live_source(live_db: Database):
    def make(kind: str = "server") -> str:
        with live_db.unit_of_work() as s:
            key, _ = tracking.create_source(s, f"live {kind}", kind)
        return key

    return make
