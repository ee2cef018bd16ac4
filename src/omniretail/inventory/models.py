"""Tables of the inventory context."""

from __future__ import annotations
