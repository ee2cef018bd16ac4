"""Fixtures of the fulfilment tests: the order tests' small shop (for store tasks and
shipments, which start from real orders)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMNI_PII_KEYS", "JhM0nDTN7n6vJ4Yt1r0t3cBm3zj0G3yW1m4Ck4v6b5E=")
os.environ.setdefault("OMNI_PII_INDEX_KEY", "test-blind-index-key-0123456789")
os.environ.setdefault("OMNI_PII_KEY_FILE", str(Path(tempfile.gettempdir()) / "omni-test-pii.keys"))

import pytest

from tests.order.helpers import Shop, build_shop


@pytest.fixture()
def shop(session, make_key) -> Shop:  # type: ignore[no-untyped-def]
    return build_shop(session, make_key)
