"""The carrier interface: labels and tracking numbers for the packages of a shipment.

A carrier integration implements :class:`Carrier` and is registered under its code with
:func:`register_carrier`; shipments name the carrier by code. The built-in ``manual`` carrier
is for parcels booked outside omniretail (a courier's own portal, a van run between stores):
the caller gives each package's tracking number, or one is generated, and the label is a plain
text document to print or attach.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from omniretail.core.errors import invalid


@dataclass(frozen=True)
class PackageRequest:
    """One parcel: what it holds and, optionally, its weight and a tracking number the
    caller already has."""

    lines: list[tuple[str, int]]
    weight_g: int | None = None
    tracking_number: str | None = None


@dataclass(frozen=True)
class LabelRequest:
    shipment_id: str
    order_id: str
    service: str | None
    sender: dict[str, Any]
    recipient: dict[str, Any]
    packages: list[PackageRequest]


@dataclass(frozen=True)
class Label:
    tracking_number: str
    format: str  # text | zpl | pdf (base64)
    content: str
    tracking_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Carrier(Protocol):
    code: str

    def create_labels(self, request: LabelRequest) -> list[Label]:
        """One label per package, in the order of ``request.packages``."""
        ...

    def tracking_url(self, tracking_number: str) -> str | None:
        """Where a customer follows the parcel, if the carrier has such a page."""
        ...


def _address_lines(address: dict[str, Any]) -> list[str]:
    keys = ("name", "line1", "line2", "city", "postal_code", "country")
    return [str(address[k]) for k in keys if address.get(k)]


class ManualCarrier:
    """Tracking numbers given by the caller (or generated as ``M`` + 12 hex digits) and a
    plain-text label per package."""

    code = "manual"

    def create_labels(self, request: LabelRequest) -> list[Label]:
        labels = []
        count = len(request.packages)
        for n, package in enumerate(request.packages, start=1):
            number = package.tracking_number or "M" + secrets.token_hex(6).upper()
            content = "\n".join(
                [
                    f"SHIPMENT {request.shipment_id}  ORDER {request.order_id}",
                    f"PACKAGE {n} OF {count}  TRACKING {number}",
                    f"SERVICE {request.service or 'standard'}"
                    + (f"  WEIGHT {package.weight_g} g" if package.weight_g else ""),
                    "FROM:",
                    *("  " + line for line in _address_lines(request.sender)),
                    "TO:",
                    *("  " + line for line in _address_lines(request.recipient)),
                    "CONTENTS: " + ", ".join(f"{q} x {sku}" for sku, q in package.lines),
                ]
            )
            labels.append(Label(tracking_number=number, format="text", content=content))
        return labels

    def tracking_url(self, tracking_number: str) -> str | None:
        return None


_carriers: dict[str, Carrier] = {}


def register_carrier(carrier: Carrier) -> None:
    """Make a carrier available to shipments under ``carrier.code``."""
    _carriers[carrier.code] = carrier


def get_carrier(code: str) -> Carrier:
    try:
        return _carriers[code]
    except KeyError:
        raise invalid(
            "unknown_carrier", f"no carrier {code!r} is registered", allowed=sorted(_carriers)
        ) from None


def carrier_codes() -> Sequence[str]:
    return sorted(_carriers)


register_carrier(ManualCarrier())
