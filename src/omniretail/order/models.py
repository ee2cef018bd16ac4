"""Tables of the order context."""

from __future__ import annotations
