"""Tables of the pricing context."""

from __future__ import annotations
