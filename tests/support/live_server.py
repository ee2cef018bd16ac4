"""A real uvicorn server on 127.0.0.1 over a committed database, for SDK and browser tests."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from omniretail.all_models import metadata
from omniretail.api import create_app
from omniretail.core.db import Database, make_engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temp_sqlite_database() -> Database:
    """A fresh SQLite file with the whole schema (data is committed, not rolled back)."""
    path = Path(tempfile.mkdtemp(prefix="omni-live-")) / "live.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    return Database(engine)


class LiveServer:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.app = create_app(database)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
