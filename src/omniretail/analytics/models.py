"""Tables of the analytics context."""

from __future__ import annotations
