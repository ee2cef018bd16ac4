"""Tables of the fulfillment context."""

from __future__ import annotations
