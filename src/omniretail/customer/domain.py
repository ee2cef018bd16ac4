"""Pure rules of the customer context: identifiers, masking, identity rules, consent purposes,
tracking-event validation and the Segment e-commerce v2 mapping. No I/O here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any

from omniretail.core.money import currency_exponent
from omniretail.core.timeutil import as_utc

# --- identifiers ---------------------------------------------------------------------------

PII_IDENTIFIER_TYPES = frozenset({"email", "phone"})
BASE_IDENTIFIER_TYPES = frozenset(
    {"user_id", "anonymous_id", "device_id", "email", "phone", "loyalty_card"}
)
DEVICE_TYPES = frozenset({"anonymous_id", "device_id"})
_EXTERNAL = re.compile(r"^external:[a-z0-9][a-z0-9_.-]{0,30}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_identifier_type(kind: str) -> bool:
    return kind in BASE_IDENTIFIER_TYPES or bool(_EXTERNAL.match(kind))


def limit_key(kind: str) -> str:
    """The key of ``identity_limits`` that applies to ``kind`` (one limit per external channel)."""
    return "external" if kind.startswith("external:") else kind


def normalise_identifier(kind: str, value: Any) -> str | None:
    """The canonical form used for the blind index, or ``None`` if the value is unusable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 255:
        return None
    if kind == "email":
        text = text.lower()
        return text if _EMAIL.match(text) else None
    if kind == "phone":
        digits = re.sub(r"[^\d]", "", text)
        if len(digits) < 6 or len(digits) > 15:
            return None
        return ("+" if text.startswith("+") else "") + digits
    if kind == "loyalty_card":
        return re.sub(r"[\s-]", "", text).upper() or None
    return text


def is_blocked(normalised: str, blocked: Iterable[str]) -> bool:
    lowered = normalised.lower()
    return any(lowered == b.strip().lower() for b in blocked)


# --- masking ----------------------------------------------------------------------------


def mask_email(email: str | None) -> str | None:
    if not email:
        return email
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    keep = phone[-2:]
    prefix = "+" if phone.startswith("+") else ""
    return prefix + "*" * max(len(phone) - len(prefix) - 2, 3) + keep


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[:1] + "***"


def mask_address(address: Mapping[str, Any]) -> dict[str, Any]:
    """Only the country survives masking."""
    return {
        k: (v if k in {"country", "kind", "id", "is_default"} else "***")
        for k, v in address.items()
    }


def mask_identifier(kind: str, value: str | None) -> str | None:
    if kind == "email":
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    return value


# --- identity rules -----------------------------------------------------------------------


def merge_violation(
    counts_a: Mapping[str, int],
    counts_b: Mapping[str, int],
    limits: Mapping[str, int],
) -> str | None:
    """Why two people cannot be one (a per-type limit exceeded), or ``None`` if they can.

    ``counts_*`` count *distinct* identifiers per limit key ("external" counted per channel:
    keys like "external:shopify")."""
    for key in sorted(set(counts_a) | set(counts_b)):
        limit = limits.get(limit_key(key))
        if limit is not None and counts_a.get(key, 0) + counts_b.get(key, 0) > limit:
            return f"limit:{key}"
    return None


def attach_violation(counts: Mapping[str, int], kind: str, limits: Mapping[str, int]) -> str | None:
    """Why a new identifier of ``kind`` cannot join a person, or ``None``."""
    limit = limits.get(limit_key(kind))
    if limit is not None and counts.get(kind, 0) + 1 > limit:
        return f"limit:{kind}"
    return None


def choose_survivor(
    a: tuple[str, bool, datetime], b: tuple[str, bool, datetime]
) -> tuple[str, str]:
    """``(survivor, absorbed)`` from ``(profile_id, is_known, created_at)`` pairs: a known person
    (with a user id, email, phone or loyalty card) absorbs an anonymous one; else the older
    profile survives."""
    rank_a = (not a[1], a[2], a[0])
    rank_b = (not b[1], b[2], b[0])
    return (a[0], b[0]) if rank_a <= rank_b else (b[0], a[0])


KNOWN_TYPES = frozenset({"user_id", "email", "phone", "loyalty_card"})

# --- channels -----------------------------------------------------------------------------

CHANNEL_BITS = {
    "web": 1,
    "app": 2,
    "pos": 4,
    "server": 8,
    "store": 16,
    "marketplace": 32,
    "support": 64,
    "other": 128,
}


def channel_bit(channel: str | None) -> int:
    if not channel:
        return 0
    return CHANNEL_BITS.get(channel, CHANNEL_BITS["other"])


def channels_of(mask: int) -> list[str]:
    return [name for name, bit in CHANNEL_BITS.items() if mask & bit]


SOURCE_KINDS = ("web", "app", "pos", "server")

# --- consent ------------------------------------------------------------------------------


class Purpose(StrEnum):
    MARKETING_EMAIL = "marketing_email"
    MARKETING_SMS = "marketing_sms"
    MARKETING_PUSH = "marketing_push"
    PERSONALISATION = "personalisation"
    ANALYTICS = "analytics"


DOUBLE_OPT_IN = frozenset({Purpose.MARKETING_EMAIL})


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    PENDING = "pending"  # double opt-in requested, not yet confirmed
    DENIED = "denied"


# --- tracking events ----------------------------------------------------------------------

EVENT_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})

_PII_TRAIT_KEYS = frozenset(
    {
        "email",
        "phone",
        "name",
        "firstname",
        "first_name",
        "lastname",
        "last_name",
        "address",
        "username",
        "birthday",
    }
)
_PII_PROPERTY_KEYS = frozenset({"email", "phone"})

ECOMMERCE_FACTS = {
    "Products Searched": "products_searched",
    "Product List Viewed": "product_list_viewed",
    "Product List Filtered": "product_list_filtered",
    "Promotion Viewed": "promotion_viewed",
    "Promotion Clicked": "promotion_clicked",
    "Product Clicked": "product_clicked",
    "Product Viewed": "product_viewed",
    "Product Added": "product_added",
    "Product Removed": "product_removed",
    "Cart Viewed": "cart_viewed",
    "Checkout Started": "checkout_started",
    "Checkout Step Viewed": "checkout_step_viewed",
    "Checkout Step Completed": "checkout_step_completed",
    "Payment Info Entered": "payment_info_entered",
    "Order Updated": "order_updated",
    "Order Completed": "order_completed",
    "Order Refunded": "order_refunded",
    "Order Cancelled": "order_cancelled",
    "Coupon Entered": "coupon_entered",
    "Coupon Applied": "coupon_applied",
    "Coupon Denied": "coupon_denied",
    "Coupon Removed": "coupon_removed",
    "Product Added to Wishlist": "product_added_to_wishlist",
    "Product Removed from Wishlist": "product_removed_from_wishlist",
    "Wishlist Product Added to Cart": "wishlist_product_added_to_cart",
    "Product Shared": "product_shared",
    "Cart Shared": "cart_shared",
    "Product Reviewed": "product_reviewed",
}
# Facts that are money: kept (without personal data) when a person is erased.
FINANCIAL_FACTS = frozenset(
    {
        "order_completed",
        "order_refunded",
        "order_cancelled",
        "order_updated",
        "order_placed",
        "pos_sale",
        "return_received",
        "refund_issued",
    }
)


class EventRejected(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class TrackedEvent:
    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    event: str | None
    occurred_at: datetime
    data: dict[str, Any]
    pii: dict[str, Any] | None
    traits: dict[str, Any] = field(default_factory=dict)  # identify: non-personal traits
    pii_traits: dict[str, Any] = field(default_factory=dict)  # identify: personal traits
    previous_id: str | None = None
    device_id: str | None = None
    fact: str | None = None
    order_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None


def parse_timestamp(value: Any, field_name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise EventRejected("invalid_timestamp", f"{field_name} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventRejected(
            "invalid_timestamp", f"{field_name} {value[:40]!r} is not ISO 8601"
        ) from None
    return as_utc(parsed)


def _id_value(raw: Any, field_name: str) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise EventRejected("invalid_id", f"{field_name} must be a string or a number")
    text = str(raw).strip()
    if len(text) > 255:
        raise EventRejected("invalid_id", f"{field_name} is longer than 255 characters")
    return text or None


def _object(raw: Any, field_name: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise EventRejected("invalid_field", f"{field_name} must be an object or null")
    return raw


def split_pii_traits(traits: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    plain: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for key, value in traits.items():
        (personal if key.lower() in _PII_TRAIT_KEYS else plain)[key] = value
    return plain, personal


def _split_keys(
    obj: Mapping[str, Any], keys: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    plain: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for key, value in obj.items():
        (personal if key.lower() in keys else plain)[key] = value
    return plain, personal


def to_minor(amount: Any, currency: str) -> int | None:
    if amount is None or isinstance(amount, bool):
        return None
    if isinstance(amount, int | float | str):
        return _to_minor_cached(amount, currency)  # prices repeat across a batch
    return _to_minor(amount, currency)


@lru_cache(maxsize=4096)
def _to_minor_cached(amount: int | float | str, currency: str) -> int | None:
    return _to_minor(amount, currency)


def _to_minor(amount: Any, currency: str) -> int | None:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    scaled = value.scaleb(currency_exponent(currency))
    return int(scaled.to_integral_value(rounding="ROUND_HALF_UP"))


def normalise_event(
    raw: Any,
    received_at: datetime,
    sent_at: datetime | None,
    forced_type: str | None = None,
    new_message_id: Any = None,
) -> TrackedEvent:
    """Validate one Segment-spec message and split off its personal data.

    Raises ``EventRejected`` with a code and a message that names the problem."""
    if not isinstance(raw, dict):
        raise EventRejected("invalid_event", "an event must be a JSON object")
    kind = forced_type or raw.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        shown = kind if isinstance(kind, str) else type(kind).__name__
        raise EventRejected(
            "unknown_type",
            f"unknown event type {str(shown)[:40]!r}; expected one of {sorted(EVENT_TYPES)}",
        )
    user_id = _id_value(raw.get("userId"), "userId")
    anonymous_id = _id_value(raw.get("anonymousId"), "anonymousId")
    if user_id is None and anonymous_id is None:
        raise EventRejected("missing_identity", "an event needs a userId or an anonymousId")
    message_id = _id_value(raw.get("messageId"), "messageId")
    if message_id is None:
        message_id = f"srv-{new_message_id() if new_message_id else 'missing'}"
    if len(message_id) > 128:
        raise EventRejected("invalid_id", "messageId is longer than 128 characters")

    properties = _object(raw.get("properties"), "properties")
    traits = _object(raw.get("traits"), "traits")
    context = _object(raw.get("context"), "context")
    _object(raw.get("integrations"), "integrations")

    timestamp = parse_timestamp(raw.get("timestamp"), "timestamp")
    original = parse_timestamp(raw.get("originalTimestamp"), "originalTimestamp")
    event_sent_at = parse_timestamp(raw.get("sentAt"), "sentAt") or sent_at
    if timestamp is not None:
        occurred_at = timestamp
    elif original is not None and event_sent_at is not None:
        occurred_at = received_at - (event_sent_at - original)  # corrects device clock skew
    elif original is not None:
        occurred_at = original
    else:
        occurred_at = received_at
    if occurred_at > received_at + timedelta(days=1):
        occurred_at = received_at

    name: str | None = None
    previous_id: str | None = None
    data: dict[str, Any] = {}
    if kind == "track":
        name = raw.get("event")
        if not isinstance(name, str) or not name.strip():
            raise EventRejected("missing_event", "a track call needs an event name")
        name = name.strip()[:200]
    elif kind in {"page", "screen"}:
        raw_name = raw.get("name")
        if raw_name is not None and not isinstance(raw_name, str):
            raise EventRejected("invalid_field", "name must be a string or null")
        name = raw_name[:200] if raw_name else None
        if raw.get("category") is not None:
            data["category"] = raw.get("category")
    elif kind == "group":
        group_id = _id_value(raw.get("groupId"), "groupId")
        if group_id is None:
            raise EventRejected("missing_group", "a group call needs a groupId")
        data["groupId"] = group_id
    elif kind == "alias":
        previous_id = _id_value(raw.get("previousId"), "previousId")
        if previous_id is None or user_id is None:
            raise EventRejected("missing_alias", "an alias call needs a userId and a previousId")
        data["previousId"] = previous_id

    pii: dict[str, Any] = {}
    plain_props, pii_props = _split_keys(properties, _PII_PROPERTY_KEYS)
    plain_traits, pii_traits = split_pii_traits(traits)
    ctx = dict(context)
    if "ip" in ctx:
        pii["context.ip"] = ctx.pop("ip")
    ctx_traits = ctx.get("traits")
    if isinstance(ctx_traits, dict):
        plain_ctx_traits, pii_ctx_traits = split_pii_traits(ctx_traits)
        ctx["traits"] = plain_ctx_traits
        if pii_ctx_traits:
            pii["context.traits"] = pii_ctx_traits
    if pii_props:
        pii["properties"] = pii_props
    if pii_traits:
        pii["traits"] = pii_traits
    if plain_props:
        data["properties"] = plain_props
    if plain_traits:
        data["traits"] = plain_traits
    if ctx:
        data["context"] = ctx

    device = ctx.get("device")
    device_id = (
        _id_value(device.get("id"), "context.device.id") if isinstance(device, dict) else None
    )

    # identify traits and context.traits (where RudderStack puts identify traits) describe
    # the person; other calls only contribute the identifiers in context.traits
    ctx_plain: dict[str, Any] = ctx["traits"] if isinstance(ctx.get("traits"), dict) else {}
    ctx_pii = dict(pii.get("context.traits", {}))
    if kind == "identify":
        person_traits = {**ctx_plain, **plain_traits}
        person_pii = {**ctx_pii, **pii_traits}
    else:
        person_traits, person_pii = {}, ctx_pii

    tracked = TrackedEvent(
        type=kind,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=name,
        occurred_at=occurred_at,
        data=data,
        pii=pii or None,
        traits=person_traits,
        pii_traits=person_pii,
        previous_id=previous_id,
        device_id=device_id,
    )
    if kind == "track" and name in ECOMMERCE_FACTS:
        tracked.fact = ECOMMERCE_FACTS[name]
        order_id = plain_props.get("order_id") or plain_props.get("orderId")
        tracked.order_id = str(order_id)[:100] if order_id not in (None, "") else None
        currency = plain_props.get("currency")
        if isinstance(currency, str) and len(currency) == 3:
            tracked.currency = currency.upper()
            amount = plain_props.get("total", plain_props.get("revenue", plain_props.get("value")))
            if tracked.fact.startswith("product_") and amount is None:
                amount = plain_props.get("price")
            tracked.amount_minor = to_minor(amount, tracked.currency)
    return tracked


# --- sessions -----------------------------------------------------------------------------


def session_starts(
    events: Sequence[tuple[datetime, str | None, bool]],
    last_seen: datetime | None,
    timeout: timedelta,
) -> list[int]:
    """Which of a person's new events start a session (indexes; events in time order).

    ``events`` are ``(occurred_at, SDK session id or None, SDK session-start flag)``;
    ``last_seen`` is the person's latest event before them (``None``: never seen). An event
    starts a session when the person had no event for more than ``timeout`` before it. An
    event with an SDK session id (RudderStack's ``context.sessionId``) also starts one when
    the SDK flags it as the session's first (``context.sessionStart``) or when its id differs
    from the previous event's; a session id starts at most one session per batch. Late
    events (older than the person's latest) never start one."""
    starts: list[int] = []
    previous = last_seen
    previous_sdk: str | None = None
    started: set[str] = set()
    for i, (at, sdk, flagged) in enumerate(events):
        idle = previous is None or at - previous > timeout
        if sdk is None:
            begins = idle
        else:
            switched = previous_sdk is not None and sdk != previous_sdk
            begins = sdk not in started and (idle or flagged or switched)
            if begins:
                started.add(sdk)
            previous_sdk = sdk
        if begins:
            starts.append(i)
        if previous is None or at > previous:
            previous = at
    return starts


# --- person data --------------------------------------------------------------------------

PERSON_FIELDS = ("email", "phone", "first_name", "last_name")
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "region", "country")


def person_fields_from_traits(traits: Mapping[str, Any]) -> dict[str, str]:
    """Map Segment traits (email, phone, firstName, lastName, name) to profile fields."""
    out: dict[str, str] = {}
    lowered = {k.lower(): v for k, v in traits.items()}
    for key, target in (
        ("email", "email"),
        ("phone", "phone"),
        ("firstname", "first_name"),
        ("first_name", "first_name"),
        ("lastname", "last_name"),
        ("last_name", "last_name"),
    ):
        value = lowered.get(key)
        if isinstance(value, str) and value.strip():
            out[target] = value.strip()
    name = lowered.get("name")
    if isinstance(name, str) and name.strip() and "first_name" not in out:
        first, _, last = name.strip().partition(" ")
        out["first_name"] = first
        if last:
            out.setdefault("last_name", last)
    return out


def address_from_trait(value: Any) -> dict[str, str] | None:
    """A Segment ``address`` trait ({street, city, postalCode, state, country}) as our fields."""
    if not isinstance(value, dict):
        return None
    mapping = {
        "street": "line1",
        "line1": "line1",
        "line2": "line2",
        "city": "city",
        "postalcode": "postal_code",
        "postal_code": "postal_code",
        "state": "region",
        "region": "region",
        "country": "country",
    }
    out: dict[str, str] = {}
    for key, raw in value.items():
        target = mapping.get(key.lower())
        if target and isinstance(raw, str) and raw.strip():
            out[target] = raw.strip()
    return out or None
