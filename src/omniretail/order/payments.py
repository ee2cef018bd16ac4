"""Payments: a provider interface (authorize, capture, void, refund) and the built-in
providers, plus the order-level operations (authorise tenders, capture, void, refund).

Built-in providers, by tender type:

* ``card``: the test gateway. In-process and deterministic; it keeps its own book of charges
  (``test_gateway_charges``). Tokens ``tok_declined``, ``tok_insufficient_funds`` and
  ``tok_expired`` are declined (402 ``payment_declined``); any other ``tok_...`` token is
  approved. A real gateway plugs in with :func:`register_provider`.
* ``gift_card`` and ``store_credit``: stored value. Authorising debits the balance with one
  conditional ``UPDATE ... WHERE balance >= :amount``, so the balance can never go negative
  however many checkouts use the card at once; a void or refund credits it back.
* ``cash`` and ``card_terminal`` (stores): the money is taken at the till, so they are captured
  when authorised; refunds are paid out at the till or on the terminal.
* ``exchange_credit``: the value of returned goods applied to an exchange order; refunds of it
  go to store credit.

Invariants, enforced by conditional updates and by CHECK constraints on ``payments``:
captured + voided <= authorised, refunded <= captured, for every tender and so every order.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from omniretail.core.errors import AppError, conflict, invalid
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.timeutil import utcnow
from omniretail.order.domain import TenderRequest, TenderState, plan_refund
from omniretail.order.models import (
    GatewayCharge,
    Order,
    Payment,
    Refund,
    StoredValueAccount,
    StoredValueEntry,
)

CHARGES = cast(Table, GatewayCharge.__table__)
ACCOUNTS = cast(Table, StoredValueAccount.__table__)
ENTRIES = cast(Table, StoredValueEntry.__table__)
PAYMENTS = cast(Table, Payment.__table__)

ONLINE_TENDERS = frozenset({"card", "gift_card", "store_credit"})
STORE_TENDERS = frozenset({"cash", "card_terminal", "gift_card", "store_credit", "card"})


def declined(reason: str, message: str, **details: Any) -> AppError:
    return AppError("payment_declined", message, 402, {"decline_code": reason, **details})


@dataclass
class Authorization:
    reference: str | None
    captured: int = 0  # taken at once (cash, terminal)
    fingerprint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class PaymentProvider(Protocol):
    """What a payment method implements. Every call runs inside the order's transaction; a
    provider that talks to an outside service must make its calls idempotent with ``key``."""

    def authorize(
        self,
        session: Session,
        *,
        amount: int,
        currency: str,
        tender: TenderRequest,
        key: str,
        customer_id: str | None,
    ) -> Authorization: ...

    def capture(self, session: Session, reference: str | None, amount: int) -> None: ...

    def void(self, session: Session, reference: str | None, amount: int) -> None: ...

    def refund(self, session: Session, reference: str | None, amount: int, key: str) -> None: ...


# --- the test gateway -------------------------------------------------------------------------

DECLINES = {
    "tok_declined": ("card_declined", "the card was declined"),
    "tok_insufficient_funds": ("insufficient_funds", "the card has insufficient funds"),
    "tok_expired": ("expired_card", "the card has expired"),
}


def fingerprint(token: str) -> str:
    return "fp_" + hashlib.sha256(token.encode()).hexdigest()[:24]


class TestGateway:
    """Deterministic in-process card gateway with its own table of charges."""

    __test__ = False  # not a pytest class

    def authorize(
        self,
        session: Session,
        *,
        amount: int,
        currency: str,
        tender: TenderRequest,
        key: str,
        customer_id: str | None,
    ) -> Authorization:
        token = tender.token or ""
        if not token.startswith("tok_") or len(token) > 64:
            raise invalid("invalid_card_token", "a card tender needs a token such as 'tok_visa'")
        if token in DECLINES:
            code, message = DECLINES[token]
            raise declined(code, message, tender="card")
        charge_id = new_id("ch")
        session.execute(
            insert(CHARGES),
            {
                "id": charge_id,
                "idempotency_key": key,
                "token": token,
                "currency": currency,
                "amount": amount,
                "captured": 0,
                "refunded": 0,
                "voided": 0,
                "status": "authorized",
                "created_at": utcnow(),
            },
        )
        return Authorization(charge_id, 0, fingerprint(token), {"brand": token[4:20]})

    def capture(self, session: Session, reference: str | None, amount: int) -> None:
        c = CHARGES.c
        done = session.execute(
            update(CHARGES)
            .where(c.id == reference, c.captured + c.voided + amount <= c.amount)
            .values(captured=c.captured + amount, status="captured")
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise conflict("capture_failed", "the gateway refused the capture", charge=reference)

    def void(self, session: Session, reference: str | None, amount: int) -> None:
        c = CHARGES.c
        session.execute(
            update(CHARGES)
            .where(c.id == reference, c.captured + c.voided + amount <= c.amount)
            .values(voided=c.voided + amount)
        )

    def refund(self, session: Session, reference: str | None, amount: int, key: str) -> None:
        c = CHARGES.c
        done = session.execute(
            update(CHARGES)
            .where(c.id == reference, c.refunded + amount <= c.captured)
            .values(refunded=c.refunded + amount)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise conflict("refund_failed", "the gateway refused the refund", charge=reference)


class TakenAtTheTill:
    """Cash and card terminals: the money is in the drawer (or on the terminal's batch) when
    the sale is rung up; refunds are paid out the same way."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def authorize(
        self,
        session: Session,
        *,
        amount: int,
        currency: str,
        tender: TenderRequest,
        key: str,
        customer_id: str | None,
    ) -> Authorization:
        details: dict[str, Any] = {}
        reference = None
        if self.kind == "card_terminal":
            if not tender.token:
                raise invalid(
                    "approval_code_required", "a card-terminal tender needs the approval code"
                )
            reference = tender.token[:40]
            details["approval_code"] = reference
        return Authorization(reference, amount, None, details)

    def capture(self, session: Session, reference: str | None, amount: int) -> None:
        return None

    def void(self, session: Session, reference: str | None, amount: int) -> None:
        return None

    def refund(self, session: Session, reference: str | None, amount: int, key: str) -> None:
        return None


# --- stored value: gift cards and store credit ---------------------------------------------


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace(" ", "").encode()).hexdigest()


def _entry(account_id: str, amount: int, kind: str, reference: str | None) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "amount": amount,
        "kind": kind,
        "reference": reference,
        "created_at": utcnow(),
    }


def credit(session: Session, account_id: str, amount: int, kind: str, reference: str) -> None:
    a = ACCOUNTS.c
    session.execute(update(ACCOUNTS).where(a.id == account_id).values(balance=a.balance + amount))
    session.execute(insert(ENTRIES), _entry(account_id, amount, kind, reference))


def debit(session: Session, where: Any, amount: int, reference: str, what: str) -> tuple[str, int]:
    """Take ``amount`` from the account matched by ``where`` in one conditional update; 402
    when the balance is short, 404 when there is no such account."""
    a = ACCOUNTS.c
    row = session.execute(
        update(ACCOUNTS)
        .where(where, a.active.is_(True), a.balance >= amount)
        .values(balance=a.balance - amount)
        .returning(a.id, a.balance)
    ).first()
    if row is None:
        found = session.execute(select(a.id, a.balance, a.active).where(where)).first()
        if found is None or not found.active:
            raise AppError(f"{what}_not_found", f"no active {what.replace('_', ' ')}", 404)
        raise declined(
            "insufficient_balance",
            f"the {what.replace('_', ' ')} balance does not cover the amount",
            tender=what,
            balance=found.balance,
            requested=amount,
        )
    session.execute(insert(ENTRIES), _entry(row.id, -amount, "debit", reference))
    return row.id, row.balance


class StoredValue:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def authorize(
        self,
        session: Session,
        *,
        amount: int,
        currency: str,
        tender: TenderRequest,
        key: str,
        customer_id: str | None,
    ) -> Authorization:
        a = ACCOUNTS.c
        if self.kind == "gift_card":
            if not tender.token:
                raise invalid("gift_card_code_required", "a gift-card tender needs the code")
            where = (
                (a.kind == "gift_card")
                & (a.code_hash == code_hash(tender.token))
                & (a.currency == currency)
            )
        else:
            if not customer_id:
                raise invalid("customer_required", "store credit belongs to a known customer")
            where = (
                (a.kind == "store_credit")
                & (a.customer_id == customer_id)
                & (a.currency == currency)
            )
        account_id, balance = debit(session, where, amount, key, self.kind)
        return Authorization(account_id, 0, None, {"balance_after": balance})

    def capture(self, session: Session, reference: str | None, amount: int) -> None:
        return None  # the balance was debited when authorised

    def void(self, session: Session, reference: str | None, amount: int) -> None:
        if reference and amount:
            credit(session, reference, amount, "void", reference)

    def refund(self, session: Session, reference: str | None, amount: int, key: str) -> None:
        if reference:
            credit(session, reference, amount, "refund", key)


PROVIDERS: dict[str, PaymentProvider] = {
    "card": TestGateway(),
    "gift_card": StoredValue("gift_card"),
    "store_credit": StoredValue("store_credit"),
    "cash": TakenAtTheTill("cash"),
    "card_terminal": TakenAtTheTill("card_terminal"),
    "exchange_credit": TakenAtTheTill("exchange_credit"),
}


def register_provider(tender_type: str, provider: PaymentProvider) -> None:
    """Plug a payment method in (or replace the test gateway with a real one)."""
    PROVIDERS[tender_type] = provider


def provider_for(tender_type: str, allowed: frozenset[str]) -> PaymentProvider:
    if tender_type not in allowed or tender_type not in PROVIDERS:
        raise invalid(
            "invalid_tender_type",
            f"tender type {tender_type!r} is not accepted here",
            allowed=sorted(allowed),
        )
    return PROVIDERS[tender_type]


def issue_gift_card(
    session: Session,
    *,
    amount: int,
    currency: str,
    code: str | None = None,
    reference: str | None = None,
) -> tuple[str, StoredValueAccount]:
    """A new gift card with ``amount`` on it; returns ``(code, account)`` (the code is shown
    once; only its hash is kept)."""
    if amount < 0:
        raise invalid("invalid_amount", "a gift card cannot start below zero")
    code = (code or "GC-" + "-".join(secrets.token_hex(2).upper() for _ in range(4))).upper()
    if not 8 <= len(code) <= 40:
        raise invalid("invalid_gift_card_code", "gift-card codes are 8-40 characters")
    hashed = code_hash(code)
    if session.scalar(select(ACCOUNTS.c.id).where(ACCOUNTS.c.code_hash == hashed)):
        raise conflict("gift_card_exists", "this gift-card code is taken")
    account = StoredValueAccount(
        id=new_id("gc"),
        kind="gift_card",
        code_hash=hashed,
        last4=code.replace("-", "")[-4:],
        currency=currency,
        balance=amount,
        active=True,
    )
    session.add(account)
    session.flush()
    session.execute(insert(ENTRIES), _entry(account.id, amount, "issue", reference))
    return code, account


def gift_card_by_code(session: Session, code: str) -> StoredValueAccount:
    account = session.scalar(
        select(StoredValueAccount)
        .where(
            StoredValueAccount.kind == "gift_card",
            StoredValueAccount.code_hash == code_hash(code),
        )
        .execution_options(populate_existing=True)
    )
    if account is None:
        raise AppError("gift_card_not_found", "no such gift card", 404)
    return account


def store_credit_account(session: Session, customer_id: str, currency: str) -> str:
    """The customer's store-credit account in ``currency`` (created on first use)."""
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        dialect_insert(ACCOUNTS)
        .values(
            id=new_id("sc"),
            kind="store_credit",
            customer_id=customer_id,
            currency=currency,
            balance=0,
            active=True,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=["customer_id", "currency"],
            index_where=ACCOUNTS.c.kind == "store_credit",
        )
    )
    a = ACCOUNTS.c
    return cast(
        str,
        session.scalar(
            select(a.id).where(
                a.kind == "store_credit", a.customer_id == customer_id, a.currency == currency
            )
        ),
    )


def store_credit_balance(session: Session, customer_id: str, currency: str) -> int:
    a = ACCOUNTS.c
    return int(
        session.scalar(
            select(a.balance).where(
                a.kind == "store_credit", a.customer_id == customer_id, a.currency == currency
            )
        )
        or 0
    )


# --- order-level operations -----------------------------------------------------------------


def authorize_tenders(
    session: Session,
    *,
    order_id: str,
    currency: str,
    allocations: Sequence[tuple[TenderRequest, int]],
    customer_id: str | None,
    allowed: frozenset[str],
    now: datetime,
    first_position: int = 0,
) -> list[Payment]:
    """Authorise each tender for its share; the first refusal (402) stops everything (the
    caller's transaction rolls back, including the tenders authorised before it). The
    provider's idempotency key is ``<order id>:<position>``, so a retried attempt can never
    charge a tender twice."""
    payments: list[Payment] = []
    for position, (tender, amount) in enumerate(allocations, start=first_position):
        provider = provider_for(tender.type, allowed)
        auth = provider.authorize(
            session,
            amount=amount,
            currency=currency,
            tender=tender,
            key=f"{order_id}:{position}",
            customer_id=customer_id,
        )
        payments.append(
            Payment(
                id=new_id("pay"),
                order_id=order_id,
                position=position,
                type=tender.type,
                reference=auth.reference,
                fingerprint=auth.fingerprint,
                currency=currency,
                amount=amount,
                captured=auth.captured,
                refunded=0,
                voided=0,
                status="captured" if auth.captured == amount else "authorized",
                details=auth.details,
                created_at=now,
                updated_at=now,
            )
        )
    return payments


def order_payments(session: Session, order_id: str) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.order_id == order_id)
            .order_by(Payment.position)
            .execution_options(populate_existing=True)
        )
    )


def payment_status(amount: int, captured: int, voided: int, refunded: int) -> str:
    if refunded and refunded == captured:
        return "refunded"
    if refunded:
        return "partially_refunded"
    if captured and captured + voided == amount:
        return "captured"
    if captured:
        return "partially_captured"
    if voided == amount:
        return "voided"
    return "authorized"


def _bump(session: Session, p: Payment, now: datetime, **deltas: int) -> None:
    """Apply deltas to a payment with a conditional update that keeps the invariants."""
    c = PAYMENTS.c
    after = {name: getattr(p, name) + delta for name, delta in deltas.items()}
    status = payment_status(
        p.amount,
        after.get("captured", p.captured),
        after.get("voided", p.voided),
        after.get("refunded", p.refunded),
    )
    d_captured = deltas.get("captured", 0)
    done = session.execute(
        update(PAYMENTS)
        .where(
            c.id == p.id,
            c.captured + c.voided + d_captured + deltas.get("voided", 0) <= c.amount,
            c.refunded + deltas.get("refunded", 0) <= c.captured + d_captured,
        )
        .values(
            updated_at=now,
            status=status,
            **{name: getattr(c, name) + delta for name, delta in deltas.items()},
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise conflict("payment_changed", "the payment changed meanwhile; try again", payment=p.id)
    for name, value in {**after, "status": status, "updated_at": now}.items():
        set_committed_value(p, name, value)


def capture(
    session: Session, order: Order, amount: int | None = None, now: datetime | None = None
) -> int:
    """Capture up to ``amount`` (default: everything still authorised) over the tenders in
    order. Returns what was captured; emits ``payment.captured`` per tender."""
    now = now or utcnow()
    payments = order_payments(session, order.id)
    open_amount = sum(p.amount - p.captured - p.voided for p in payments)
    wanted = open_amount if amount is None else amount
    if wanted < 0 or wanted > open_amount:
        raise conflict(
            "capture_exceeds_authorized",
            "cannot capture more than is authorised and not yet captured",
            requested=wanted,
            capturable=open_amount,
        )
    left = wanted
    for p in payments:
        take = min(left, p.amount - p.captured - p.voided)
        if take <= 0:
            continue
        PROVIDERS[p.type].capture(session, p.reference, take)
        _bump(session, p, now, captured=take)
        left -= take
        emit(
            session,
            "payment.captured",
            {
                "order_id": order.id,
                "customer_id": order.customer_id,
                "payment_id": p.id,
                "type": p.type,
                "amount_minor": take,
                "captured_minor": p.captured,
                "currency": p.currency,
            },
            aggregate_id=order.id,
        )
    return wanted


def void_open(session: Session, order: Order, now: datetime | None = None) -> int:
    """Void whatever is authorised and not captured (cancellation)."""
    now = now or utcnow()
    total = 0
    for p in order_payments(session, order.id):
        open_amount = p.amount - p.captured - p.voided
        if open_amount <= 0:
            continue
        PROVIDERS[p.type].void(session, p.reference, open_amount)
        _bump(session, p, now, voided=open_amount)
        total += open_amount
        emit(
            session,
            "payment.voided",
            {
                "order_id": order.id,
                "payment_id": p.id,
                "type": p.type,
                "amount_minor": open_amount,
                "currency": p.currency,
            },
            aggregate_id=order.id,
        )
    return total


def void_amount(session: Session, order: Order, amount: int, now: datetime) -> None:
    """Void ``amount`` of the open authorisations, last tender first (a smaller order)."""
    left = amount
    for p in reversed(order_payments(session, order.id)):
        take = min(left, p.amount - p.captured - p.voided)
        if take <= 0:
            continue
        PROVIDERS[p.type].void(session, p.reference, take)
        _bump(session, p, now, voided=take)
        left -= take
        if left == 0:
            return
    if left:
        raise conflict("void_exceeds_open", "not enough open authorisation to reduce", left=left)


@dataclass
class RefundResult:
    amount: int
    refunds: list[Refund]
    gift_card_code: str | None = None  # when store credit went to a new gift card


def refund(
    session: Session,
    order: Order,
    amount: int,
    *,
    destination: str = "original",
    reason: str | None = None,
    return_id: str | None = None,
    now: datetime | None = None,
) -> RefundResult:
    """Refund ``amount`` over the captured tenders (last tender first), never more than was
    captured and not yet refunded (409 ``refund_exceeds_captured``). ``destination``:
    ``original`` (back to each tender) or ``store_credit`` (the customer's account, or a new
    gift card for an anonymous order). Exchange credit is always refunded as store credit."""
    now = now or utcnow()
    if destination not in ("original", "store_credit"):
        raise invalid("invalid_refund_method", "refund to 'original' or 'store_credit'")
    payments = order_payments(session, order.id)
    plan = plan_refund(
        amount, [TenderState(p.id, p.amount, p.captured, p.refunded) for p in payments]
    )
    by_id = {p.id: p for p in payments}
    refunds: list[Refund] = []
    credit_account: str | None = None
    gift_code: str | None = None
    for payment_id, part in plan:
        p = by_id[payment_id]
        to_credit = destination == "store_credit" or p.type == "exchange_credit"
        refund_id = new_id("rfd")
        if to_credit:
            if credit_account is None:
                if order.customer_id:
                    credit_account = store_credit_account(session, order.customer_id, p.currency)
                else:
                    gift_code, account = issue_gift_card(
                        session, amount=0, currency=p.currency, reference=order.id
                    )
                    credit_account = account.id
            credit(session, credit_account, part, "refund", refund_id)
            where = "gift_card" if gift_code else "store_credit"
        else:
            PROVIDERS[p.type].refund(session, p.reference, part, refund_id)
            where = "original"
        _bump(session, p, now, refunded=part)
        refunds.append(
            Refund(
                id=refund_id,
                order_id=order.id,
                payment_id=p.id,
                return_id=return_id,
                amount=part,
                destination=where,
                destination_reference=credit_account if to_credit else p.reference,
                reason=reason,
                created_at=now,
            )
        )
    session.add_all(refunds)
    payload = {
        "id": refunds[0].id if refunds else None,
        "order_id": order.id,
        "customer_id": order.customer_id,
        "channel_id": order.channel_id,
        "return_id": return_id,
        "amount_minor": amount,
        "currency": order.currency,
        "destination": destination,
        "reason": reason,
        "refunds": [
            {"payment_id": r.payment_id, "amount_minor": r.amount, "destination": r.destination}
            for r in refunds
        ],
        "occurred_at": now.isoformat(),
    }
    emit(session, "order.refunded", payload, aggregate_id=order.id)
    return RefundResult(amount, refunds, gift_code)


def totals(payments: Sequence[Payment]) -> dict[str, int]:
    return {
        "authorized": sum(p.amount for p in payments),
        "captured": sum(p.captured for p in payments),
        "voided": sum(p.voided for p in payments),
        "refunded": sum(p.refunded for p in payments),
    }
