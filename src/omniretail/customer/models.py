"""Tables of the customer context."""

from __future__ import annotations
