"""Import of sales history in the UCI Online Retail format into the analytics store.

Columns: ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
Country`` (all required, any order), plus two optional extensions: ``Channel`` and
``Location`` (codes; default from the command line). Any other column rejects the whole file
before anything is read further or written.

Rules (docs/analytics.md has the full table):

* ``InvoiceDate`` is ``YYYY-MM-DD HH:MM:SS`` in UK local time; it is converted to UTC with
  ``zoneinfo`` Europe/London (an ambiguous autumn hour is read as summer time, a missing
  spring hour moves forward; both are reported).
* Invoices starting with ``C`` are returns (credits); rows without CustomerID are guest orders.
* ``UnitPrice`` becomes integer pence, rounded half-up (sub-penny prices are reported).
* A row that fails (bad invoice, code, quantity, date, price, customer, negative price,
  a positive quantity on a credit, a priced negative quantity on a sale) is rejected and so is
  every other row of its invoice: an order is never imported with lines missing.
* Service codes (POST, M, D, BANK CHARGES, AMAZONFEE, ...) are imported as ``service`` lines,
  zero-price lines as ``adjustment`` (guest or negative quantity) or as free product lines;
  each is reported as reinterpreted, never dropped silently.
* Idempotent: lines are keyed ``(source, InvoiceNo, line number within the invoice)`` and an
  invoice already in the store is skipped as a whole; inserts use ``ON CONFLICT DO NOTHING``.

Optionally the history also goes to the contexts that serve it (off by default, the fast path
writes the analytics store only):

* ``create_customers``: one customer profile per CustomerID (identifier
  ``external:<source>``, trait ``country``) through ``customer.history.import_customers``;
* ``create_orders`` (implies customers): sales as completed orders, credits as returns of their
  original order (or credit notes), with the customers' timeline facts, through
  ``order.history.import_order_history``; stock adjustments are not orders. No outbox event is
  emitted for them, so the analytics subscribers never see these orders a second time.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from omniretail.analytics.domain import SERVICE_CODES, VOUCHER_PATTERN, Kind, LineType
from omniretail.analytics.models import CustomerDim, ImportRun, OrderFact, ProductDim
from omniretail.core.errors import AppError, invalid
from omniretail.core.ids import new_id
from omniretail.customer import history as customer_history
from omniretail.order import history as order_history

REQUIRED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
OPTIONAL_COLUMNS = ("Channel", "Location")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
SOURCE_TIMEZONE = "Europe/London"
CHUNK_ROWS = 50_000
Progress = Callable[[str, int, int], None]

REJECT_MESSAGES = {
    "invalid_invoice": "InvoiceNo must be digits with an optional letter prefix (C = credit)",
    "invalid_stock_code": "StockCode must be 1–64 characters",
    "invalid_quantity": "Quantity must be a non-zero whole number",
    "invalid_date": f"InvoiceDate must be YYYY-MM-DD HH:MM:SS ({DATE_FORMAT})",
    "invalid_price": "UnitPrice must be a decimal number such as 2.55",
    "negative_price": "UnitPrice cannot be negative",
    "invalid_customer": "CustomerID must be letters, digits, '_' or '-' (at most 64)",
    "invalid_country": "Country is longer than 64 characters",
    "invalid_channel": "Channel must be a lower-case code [a-z0-9_-] (at most 40)",
    "invalid_location": "Location must be a lower-case code [a-z0-9_-] (at most 64)",
    "positive_quantity_on_return": "a credit invoice (C...) must have negative quantities",
    "negative_quantity_on_sale": "a negative quantity on a sale needs UnitPrice 0 (adjustment)",
    "inconsistent_invoice": "the rows of this invoice name different customers or channels",
    "invoice_rejected": "another row of the same invoice was rejected",
}
REINTERPRET_MESSAGES = {
    "service_code": "service code (postage, fee, manual line, discount, voucher): service line",
    "zero_price_adjustment": "zero price without customer or with negative quantity: "
    "stock adjustment (no revenue)",
    "zero_price_line": "zero price on a customer invoice: free product line",
    "sub_penny_price": "price below a penny of precision: rounded half-up to whole pence",
    "local_time_adjusted": "ambiguous or missing local time at a clock change: adjusted",
    "customer_id_normalized": "CustomerID written as a decimal (17850.0): read as 17850",
    "duplicate_row": "identical to an earlier row of the same invoice: kept as its own line",
}


@dataclass(frozen=True)
class RowIssue:
    row: int  # 1-based data row (the header is line 1, so the file line is row + 1)
    invoice: str
    stock_code: str
    code: str
    message: str
    value: str | None = None


@dataclass
class ImportReport:
    file: str
    source: str
    dry_run: bool
    rows: int = 0
    invoices: int = 0
    imported_rows: int = 0
    imported_orders: int = 0
    imported_returns: int = 0
    skipped_rows: int = 0  # rows of invoices already in the store
    skipped_invoices: int = 0
    rejected_rows: int = 0
    rejected_invoices: int = 0
    new_customers: int = 0
    new_products: int = 0
    catalog_products: int = 0
    # with create_customers / create_orders (customer and order contexts)
    customer_profiles_created: int = 0
    customer_profiles_existing: int = 0
    customer_ids_refused: int = 0  # blocked values ("0", "null"): their invoices stay guest
    customer_ids_suppressed: int = 0  # numbers of erased people: their invoices stay guest
    orders_created: int = 0
    returns_created: int = 0  # credits linked to their original order
    credit_notes_created: int = 0  # credits without a known original order
    order_lines_created: int = 0
    invoices_already_ordered: int = 0  # in the order context since an earlier run
    invoices_without_order_lines: int = 0  # stock adjustments only: not an order
    timeline_facts_created: int = 0
    facts_rekeyed: int = 0  # analytics orders moved from the CustomerID to the profile id
    amount_minor_imported: int = 0
    amount_minor_rejected: int = 0
    currency: str = "GBP"
    rejected: dict[str, int] = field(default_factory=dict)
    reinterpreted: dict[str, int] = field(default_factory=dict)
    file_figures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    issues: list[RowIssue] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self, issues: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not issues:
            data.pop("issues")
        data["rows_per_s"] = round(self.rows_per_s, 1)
        return data


@dataclass
class Prepared:
    """The checked file: accepted lines ready to write, orders, dimensions and the issues."""

    lines: pd.DataFrame
    orders: pd.DataFrame
    customers: pd.DataFrame
    products: pd.DataFrame
    issues: list[RowIssue]
    rows: int
    invoices: int
    rejected_rows: int
    rejected_invoices: int
    amount_minor_rejected: int
    rejected: dict[str, int]
    reinterpreted: dict[str, int]
    file_figures: dict[str, int]


# --- reading --------------------------------------------------------------------------------


def check_columns(columns: list[str]) -> None:
    """Unknown, missing or repeated columns reject the whole file (nothing is written)."""
    names = [c.strip() for c in columns]
    allowed = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    unknown = [c for c in names if c not in allowed]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if unknown:
        raise invalid(
            "unknown_columns",
            f"unknown column(s) {', '.join(map(repr, unknown))}; the Online Retail format has "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)}). "
            "Nothing was imported.",
            unknown=unknown,
            expected=list(REQUIRED_COLUMNS),
            optional=list(OPTIONAL_COLUMNS),
        )
    if missing:
        raise invalid(
            "missing_columns",
            f"missing column(s) {', '.join(missing)}. Nothing was imported.",
            missing=missing,
        )
    if repeated:
        raise invalid("repeated_columns", f"repeated column(s) {', '.join(repeated)}")


def read_frame(data: bytes) -> pd.DataFrame:
    """The file as a frame of strings (gzip is detected from its magic bytes). Values are
    stripped later, once per distinct value."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    if not raw.strip():
        raise invalid("empty_file", "the file is empty")
    options: dict[str, Any] = {"encoding": "utf-8-sig", "skipinitialspace": False}
    try:
        header = pd.read_csv(io.BytesIO(raw), nrows=0, **options)
        check_columns([str(c) for c in header.columns])
        frame = pd.read_csv(
            io.BytesIO(raw), dtype=str, keep_default_na=False, na_filter=False, **options
        )
    except UnicodeDecodeError:
        raise invalid("invalid_encoding", "the file is not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise invalid("unreadable_csv", f"the file is not readable CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


@dataclass
class _Column:
    """A column factorised once: ``codes`` per row into the stripped distinct ``values``, so
    every check runs on the few thousand distinct values instead of every row."""

    codes: NDArray[np.intp]
    values: pd.Series

    @classmethod
    def of(cls, series: pd.Series) -> _Column:
        codes, uniques = pd.factorize(series, sort=False)
        stripped = pd.Series(uniques, dtype=object).str.strip()
        # values that differ only by surrounding spaces become one
        again, values = pd.factorize(stripped, sort=False)
        return cls(again[codes], pd.Series(values, dtype=object))

    def rows(self, per_value: pd.Series | NDArray[Any]) -> NDArray[Any]:
        return np.asarray(per_value)[self.codes]

    def strings(self) -> NDArray[Any]:
        return self.rows(self.values)


def _pence(price: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(valid, pence rounded half-up, has sub-penny digits) of decimal strings."""
    valid = price.str.fullmatch(r"[+-]?\d{1,12}(\.\d{0,12})?").astype(bool)
    unsigned = price.where(valid, "0").str.lstrip("+-")
    parts = unsigned.str.split(".", n=1, expand=True)
    whole = parts[0].replace("", "0").astype("int64")
    fraction = (parts[1] if parts.shape[1] > 1 else pd.Series("", index=price.index)).fillna("")
    fraction = fraction.str.ljust(3, "0")
    pence = whole * 100 + fraction.str[:2].astype("int64") + (fraction.str[2] >= "5")
    sub_penny = (fraction.str[2:].str.strip("0") != "") & valid
    negative = price.str.startswith("-") & (pence > 0)
    return valid, pence.where(~negative, -pence), sub_penny


def _local_to_utc(stamps: pd.Series, zone: ZoneInfo) -> tuple[list[datetime | None], list[bool]]:
    """UTC instants of naive local times with ``zoneinfo``; ambiguous times (autumn) take
    the first (summer-time) instant, missing times (spring) move forward. Also whether each
    was one of those."""
    out: list[datetime | None] = []
    adjusted: list[bool] = []
    for value in stamps:
        if value is pd.NaT or value is None:
            out.append(None)
            adjusted.append(False)
            continue
        naive = value.to_pydatetime()
        first = naive.replace(tzinfo=zone, fold=0)
        second = naive.replace(tzinfo=zone, fold=1)
        at = first.astimezone(UTC)
        missing = at.astimezone(zone).replace(tzinfo=None) != naive
        out.append(at)
        adjusted.append(missing or first.utcoffset() != second.utcoffset())
    return out, adjusted


def _issues(
    frame: pd.DataFrame, mask: NDArray[np.bool_], code: str, message: str, column: str | None
) -> list[RowIssue]:
    rows = np.flatnonzero(mask)
    if not len(rows):
        return []
    invoices = frame["InvoiceNo"].to_numpy()[rows]
    codes = frame["StockCode"].to_numpy()[rows]
    values = frame[column].to_numpy()[rows] if column else [None] * len(rows)
    return [
        RowIssue(int(i) + 1, str(inv).strip(), str(sku).strip(), code, message, value)
        for i, inv, sku, value in zip(rows, invoices, codes, values, strict=True)
    ]


def prepare(
    frame: pd.DataFrame,
    *,
    channel: str = "web",
    location: str | None = None,
    currency: str = "GBP",
    timezone: str = SOURCE_TIMEZONE,
) -> Prepared:
    """Check every row and build what would be written; touches no database."""
    n = len(frame)
    inv = _Column.of(frame["InvoiceNo"])
    code = _Column.of(frame["StockCode"])
    qty_col = _Column.of(frame["Quantity"])
    date_col = _Column.of(frame["InvoiceDate"])
    price_col = _Column.of(frame["UnitPrice"])
    customer_col = _Column.of(frame["CustomerID"])
    country_col = _Column.of(frame["Country"])
    reasons: dict[str, NDArray[np.bool_]] = {}

    reasons["invalid_invoice"] = inv.rows(~inv.values.str.fullmatch(r"[A-Za-z]?\d{1,20}"))
    code_len = code.values.str.len()
    reasons["invalid_stock_code"] = code.rows((code_len == 0) | (code_len > 64))

    qty_ok_v = qty_col.values.str.fullmatch(r"[+-]?\d{1,9}").astype(bool)
    qty_v = qty_col.values.where(qty_ok_v, "0").astype("int64")
    qty = qty_col.rows(qty_v)
    reasons["invalid_quantity"] = qty_col.rows(~qty_ok_v | (qty_v == 0))

    stamps_v = pd.to_datetime(date_col.values, format=DATE_FORMAT, errors="coerce")
    bad_date_v = stamps_v.isna().to_numpy()
    if n and bool(bad_date_v.all()):
        sample = str(date_col.values.iloc[0])
        raise invalid(
            "invalid_date_format",
            f"no InvoiceDate matches YYYY-MM-DD HH:MM:SS (first value: {sample!r}). "
            "Nothing was imported.",
            expected="YYYY-MM-DD HH:MM:SS",
            example=sample,
        )
    reasons["invalid_date"] = date_col.rows(bad_date_v)

    price_ok_v, pence_v, sub_penny_v = _pence(price_col.values)
    price_ok = price_col.rows(price_ok_v)
    pence = price_col.rows(pence_v).astype("int64")
    reasons["invalid_price"] = ~price_ok
    reasons["negative_price"] = price_ok & (pence < 0)

    customer_v = customer_col.values.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    normalized_v = (customer_v != customer_col.values).to_numpy()
    customer_ok_v = (customer_v == "") | customer_v.str.fullmatch(r"[A-Za-z0-9_-]{1,64}")
    reasons["invalid_customer"] = customer_col.rows(~customer_ok_v.astype(bool))
    customer = customer_col.rows(customer_v)
    reasons["invalid_country"] = country_col.rows(country_col.values.str.len() > 64)

    channel_v = pd.Series([channel], dtype=object)
    channel_col = _Column(np.zeros(n, dtype=np.intp), channel_v)
    if "Channel" in frame:
        channel_col = _Column.of(frame["Channel"])
        channel_col.values = channel_col.values.replace("", channel)
    location_col = _Column(np.zeros(n, dtype=np.intp), pd.Series([location or ""], dtype=object))
    if "Location" in frame:
        location_col = _Column.of(frame["Location"])
        location_col.values = location_col.values.replace("", location or "")
    reasons["invalid_channel"] = channel_col.rows(
        ~channel_col.values.str.fullmatch(r"[a-z0-9_-]{1,40}").astype(bool)
    )
    location_bad_v = (location_col.values != "") & ~location_col.values.str.fullmatch(
        r"[a-z0-9_-]{1,64}"
    ).astype(bool)
    reasons["invalid_location"] = location_col.rows(location_bad_v)

    is_return = inv.rows(inv.values.str[:1].str.upper() == "C")
    reasons["positive_quantity_on_return"] = is_return & (qty > 0)
    reasons["negative_quantity_on_sale"] = ~is_return & (qty < 0) & (pence > 0)

    row_bad = np.zeros(n, dtype=bool)
    for mask in reasons.values():
        row_bad |= mask
    keys = pd.DataFrame(
        {"inv": inv.codes, "customer": customer_col.codes, "channel": channel_col.codes}
    )
    per_invoice = keys.groupby("inv", sort=False).nunique()
    inconsistent = per_invoice.index[(per_invoice["customer"] > 1) | (per_invoice["channel"] > 1)]
    reasons["inconsistent_invoice"] = np.isin(inv.codes, inconsistent) & ~row_bad
    row_bad |= reasons["inconsistent_invoice"]
    bad_invoices = np.unique(inv.codes[row_bad])
    reasons["invoice_rejected"] = np.isin(inv.codes, bad_invoices) & ~row_bad
    rejected_mask = row_bad | reasons["invoice_rejected"]

    issues: list[RowIssue] = []
    rejected: dict[str, int] = {}
    value_of = {
        "invalid_invoice": "InvoiceNo",
        "invalid_stock_code": "StockCode",
        "invalid_quantity": "Quantity",
        "invalid_date": "InvoiceDate",
        "invalid_price": "UnitPrice",
        "negative_price": "UnitPrice",
        "invalid_customer": "CustomerID",
        "invalid_country": "Country",
        "invalid_channel": "Channel" if "Channel" in frame else None,
        "invalid_location": "Location" if "Location" in frame else None,
        "positive_quantity_on_return": "Quantity",
        "negative_quantity_on_sale": "Quantity",
        "inconsistent_invoice": "CustomerID",
        "invoice_rejected": None,
    }
    for reason, mask in reasons.items():
        count = int(mask.sum())
        if count:
            rejected[reason] = count
            issues += _issues(frame, mask, reason, REJECT_MESSAGES[reason], value_of[reason])

    # Accepted rows: line type, local time → UTC, reinterpretations.
    ok = ~rejected_mask
    utc_v, adjusted_v = _local_to_utc(pd.Series(stamps_v), ZoneInfo(timezone))
    utc_index = pd.DatetimeIndex(
        [pd.NaT if v is None else pd.Timestamp(v) for v in utc_v], dtype="datetime64[ns, UTC]"
    )
    code_upper = code.values.str.upper()
    service_v = code_upper.isin(SERVICE_CODES) | code.values.str.fullmatch(
        VOUCHER_PATTERN, case=False
    ).astype(bool)
    service = code.rows(service_v)
    guest = customer == ""
    adjustment = ~service & (pence == 0) & ((~is_return & (qty < 0)) | guest)
    free_line = ~service & (pence == 0) & ~adjustment
    line_type = np.where(
        service,
        LineType.SERVICE.value,
        np.where(adjustment, LineType.ADJUSTMENT.value, LineType.PRODUCT.value),
    )
    line_no = pd.Series(inv.codes).groupby(inv.codes, sort=False).cumcount().to_numpy() + 1
    all_codes = pd.DataFrame(
        {
            "i": inv.codes,
            "s": code.codes,
            "d": _Column.of(frame["Description"]).codes,
            "q": qty_col.codes,
            "t": date_col.codes,
            "p": price_col.codes,
            "c": customer_col.codes,
            "k": country_col.codes,
        }
    )
    duplicate = all_codes.duplicated(keep="first").to_numpy()

    reinterpretations = {
        "service_code": ok & service,
        "zero_price_adjustment": ok & adjustment,
        "zero_price_line": ok & free_line,
        "sub_penny_price": ok & price_col.rows(sub_penny_v).astype(bool),
        "local_time_adjusted": ok & date_col.rows(np.asarray(adjusted_v, dtype=bool)),
        "customer_id_normalized": ok & customer_col.rows(normalized_v),
        "duplicate_row": ok & duplicate,
    }
    reinterpreted: dict[str, int] = {}
    reinterpreted_value = {
        "service_code": "StockCode",
        "zero_price_adjustment": "UnitPrice",
        "zero_price_line": "UnitPrice",
        "sub_penny_price": "UnitPrice",
        "local_time_adjusted": "InvoiceDate",
        "customer_id_normalized": "CustomerID",
        "duplicate_row": None,
    }
    for reason, mask in reinterpretations.items():
        count = int(mask.sum())
        if count:
            reinterpreted[reason] = count
            issues += _issues(
                frame, mask, reason, REINTERPRET_MESSAGES[reason], reinterpreted_value[reason]
            )

    amount = qty * pence
    keep = np.flatnonzero(ok)
    customers_rows = customer[keep]
    locations_rows = location_col.strings()[keep]
    lines = pd.DataFrame(
        {
            "order_ref": inv.strings()[keep],
            "line_no": line_no[keep].astype("int64"),
            "kind": np.where(is_return, Kind.RETURN.value, Kind.SALE.value)[keep],
            "line_type": line_type[keep],
            "channel": channel_col.strings()[keep],
            "location": pd.Series(locations_rows, dtype=object).replace("", None).to_numpy(),
            "customer_key": pd.Series(customers_rows, dtype=object).replace("", None).to_numpy(),
            "sku": code.strings()[keep],
            "description": _Column.of(frame["Description"]).strings()[keep],
            "country": country_col.strings()[keep],
            "quantity": qty[keep],
            "unit_price_minor": pence[keep],
            "amount_minor": amount[keep],
            "currency": currency,
            "occurred_at": utc_index[date_col.codes[keep]],
        }
    )
    countries = country_col.values[country_col.values != ""]
    figures = {
        "rows": n,
        "invoices": len(inv.values),
        "credit_rows": int(is_return.sum()),
        "negative_quantity_rows": int((qty < 0).sum()),
        "customers": int((customer_v[customer_v != ""]).nunique()),
        "stock_codes": len(code.values),
        "countries": int(countries.nunique()),
    }
    return Prepared(
        lines=lines,
        orders=_orders(lines),
        customers=_customers(lines),
        products=_products(lines),
        issues=issues,
        rows=n,
        invoices=figures["invoices"],
        rejected_rows=int(rejected_mask.sum()),
        rejected_invoices=len(bad_invoices),
        amount_minor_rejected=int(amount[rejected_mask & price_ok & (qty != 0)].sum()),
        rejected=rejected,
        reinterpreted=reinterpreted,
        file_figures=figures,
    )


def _orders(lines: pd.DataFrame) -> pd.DataFrame:
    product = lines["line_type"] == LineType.PRODUCT.value
    service = lines["line_type"] == LineType.SERVICE.value
    work = lines.assign(
        revenue_minor=lines["amount_minor"].where(product, 0),
        service_minor=lines["amount_minor"].where(service, 0),
        units=lines["quantity"].where(product, 0),
        product_lines=product.astype("int64"),
    )
    orders = work.groupby("order_ref", sort=False).agg(
        kind=("kind", "first"),
        channel=("channel", "first"),
        location=("location", "first"),
        customer_key=("customer_key", "first"),
        occurred_at=("occurred_at", "min"),
        currency=("currency", "first"),
        revenue_minor=("revenue_minor", "sum"),
        service_minor=("service_minor", "sum"),
        units=("units", "sum"),
        product_lines=("product_lines", "sum"),
    )
    return orders.reset_index()


def _customers(lines: pd.DataFrame) -> pd.DataFrame:
    """Each customer's first-seen time and the country of their first row."""
    known = lines[lines["customer_key"].notna()]
    ordered = known.sort_values("occurred_at", kind="stable")
    firsts = ordered.drop_duplicates("customer_key")
    return pd.DataFrame(
        {
            "customer_key": firsts["customer_key"].to_numpy(),
            "country": firsts["country"].replace("", None).to_numpy(),
            "first_seen_at": firsts["occurred_at"].to_numpy(),
        }
    )


def _products(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per SKU: the most frequent non-empty description (ties: alphabetical)."""
    counts = lines.groupby(["sku", "description"], sort=False).size().rename("n").reset_index()
    counts["has"] = counts["description"] != ""
    counts = counts.sort_values(
        ["sku", "has", "n", "description"], ascending=[True, False, False, True]
    )
    best = counts.drop_duplicates("sku")[["sku", "description"]]
    service = lines["line_type"].eq(LineType.SERVICE.value).groupby(lines["sku"]).any()
    return pd.DataFrame(
        {
            "sku": best["sku"].to_numpy(),
            "description": best["description"].str.slice(0, 300).to_numpy(),
            "line_type": np.where(
                best["sku"].map(service).to_numpy(dtype=bool), "service", "product"
            ),
        }
    )


# --- writing --------------------------------------------------------------------------------

LINE_COLUMNS = [
    "source",
    "order_ref",
    "line_no",
    "kind",
    "line_type",
    "channel",
    "location",
    "customer_key",
    "sku",
    "quantity",
    "unit_price_minor",
    "amount_minor",
    "currency",
    "occurred_at",
]
NULLABLE = frozenset({"location", "customer_key", "country"})
ORDER_COLUMNS = [
    "source",
    "order_ref",
    "kind",
    "channel",
    "location",
    "customer_key",
    "occurred_at",
    "currency",
    "revenue_minor",
    "service_minor",
    "units",
    "product_lines",
    "cancelled",
]


def _timestamps(values: pd.Series, dialect: str) -> list[Any]:
    """Driver values for a UTC timestamp column, formatted once per distinct value: SQLite
    gets the text SQLAlchemy itself stores, PostgreSQL aware datetimes."""
    codes, uniques = pd.factorize(values, sort=False)
    if dialect == "sqlite":
        formatted = np.asarray(uniques.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S.%f"))
    else:
        formatted = np.asarray(uniques.to_pydatetime(), dtype=object)
    return list(formatted[codes])


def _column_values(frame: pd.DataFrame, column: str, dialect: str) -> list[Any]:
    series = frame[column]
    if column in ("occurred_at", "first_seen_at"):
        return _timestamps(series, dialect)
    if series.dtype == object:
        return [None if v is None or v is np.nan else v for v in series.tolist()]
    return list(series.tolist())


def _bulk_insert(
    session: Session,
    table: str,
    frame: pd.DataFrame,
    columns: list[str],
    conflict: list[str],
    constants: dict[str, Any],
    progress: Callable[[int], None] | None = None,
) -> None:
    """``INSERT ... ON CONFLICT (...) DO NOTHING`` in chunks, the fast path of the importer:
    SQLite through the driver's ``executemany``; PostgreSQL through ``COPY`` into a temporary
    table and one ``INSERT ... SELECT`` per chunk."""
    if frame.empty:
        return
    conn = session.connection()
    dialect = conn.dialect.name
    names = ", ".join(columns)
    on_conflict = f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    if dialect == "postgresql":
        staging = f"_import_{table}"
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DROP AS "
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join([mark] * len(columns))}) {on_conflict}"
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS]
        values = [
            [constants[c]] * len(part) if c in constants else _column_values(part, c, dialect)
            for c in columns
        ]
        rows = zip(*values, strict=True)
        if dialect == "postgresql":
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows)
            # an empty unquoted field is NULL in nullable columns, '' in the others
            not_null = ", ".join(c for c in columns if c not in NULLABLE)
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            statement = (
                f"COPY {staging} ({names}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL ({not_null}))"
            )
            with cursor.copy(statement) as copy:
                copy.write(buffer.getvalue())
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {on_conflict}"
            )
            conn.exec_driver_sql(f"TRUNCATE {staging}")
        else:
            conn.exec_driver_sql(sql, list(rows))
        if progress is not None:
            progress(start + len(part))


def import_online_retail(
    session: Session,
    data: bytes,
    *,
    file_name: str = "online_retail.csv",
    source: str = "online_retail",
    channel: str = "web",
    location: str | None = None,
    currency: str = "GBP",
    dry_run: bool = False,
    create_catalog_products: bool = False,
    create_customers: bool = False,
    create_orders: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Check and import an Online Retail file in the caller's transaction (flush, no commit).

    File-level problems (unknown or missing columns, no parsable date at all, not UTF-8
    CSV; with ``create_orders`` a channel the catalog does not know) raise ``AppError``
    before anything is written; row problems are reported. ``create_customers`` also makes
    customer profiles, ``create_orders`` (which implies it) orders and returns."""
    started = time.perf_counter()
    notify = progress or (lambda _stage, _done, _total: None)
    if not source or len(source) > 32:
        raise invalid("invalid_source", "source must be 1–32 characters")
    notify("reading", 0, 1)
    frame = read_frame(data)
    create_customers = create_customers or create_orders
    if create_customers:
        customer_history.external_type(source)  # 422 before reading when it cannot be one
    notify("checking", 0, len(frame))
    prepared = prepare(frame, channel=channel, location=location, currency=currency)
    if create_orders:  # every channel must be a catalog channel, before anything is written
        order_history.channel_ids(session, prepared.lines["channel"].unique().tolist())
    report = ImportReport(
        file=file_name,
        source=source,
        dry_run=dry_run,
        rows=prepared.rows,
        invoices=prepared.invoices,
        rejected_rows=prepared.rejected_rows,
        rejected_invoices=prepared.rejected_invoices,
        amount_minor_rejected=prepared.amount_minor_rejected,
        currency=currency,
        rejected=prepared.rejected,
        reinterpreted=prepared.reinterpreted,
        file_figures=prepared.file_figures,
        issues=sorted(prepared.issues, key=lambda i: (i.row, i.code)),
    )
    lines, orders = prepared.lines, prepared.orders
    existing = set(session.scalars(select(OrderFact.order_ref).where(OrderFact.source == source)))
    if existing:
        seen_lines = lines["order_ref"].isin(existing)
        seen_orders = orders["order_ref"].isin(existing)
        report.skipped_rows = int(seen_lines.sum())
        report.skipped_invoices = int(seen_orders.sum())
        lines = lines[~seen_lines]
        orders = orders[~seen_orders]
    report.imported_rows = len(lines)
    report.imported_orders = int((orders["kind"] == Kind.SALE.value).sum())
    report.imported_returns = int((orders["kind"] == Kind.RETURN.value).sum())
    report.amount_minor_imported = int(lines["amount_minor"].sum())

    known_customers = set(session.scalars(select(CustomerDim.customer_key)))
    customers = prepared.customers[~prepared.customers["customer_key"].isin(known_customers)]
    known_products = set(session.scalars(select(ProductDim.sku)))
    products = prepared.products[~prepared.products["sku"].isin(known_products)]
    report.new_customers = len(customers)
    report.new_products = len(products)
    if dry_run:
        report.seconds = time.perf_counter() - started
        return report

    _bulk_insert(
        session, "analytics_products", products, ["sku", "description", "line_type"], ["sku"], {}
    )
    _bulk_insert(
        session,
        "analytics_customers",
        customers,
        ["customer_key", "country", "first_seen_at"],
        ["customer_key"],
        {},
    )
    _bulk_insert(
        session,
        "analytics_orders",
        orders,
        ORDER_COLUMNS,
        ["source", "order_ref"],
        {"source": source, "cancelled": False},
    )
    total = len(lines)
    notify("writing", 0, total)
    _bulk_insert(
        session,
        "analytics_sales_lines",
        lines,
        LINE_COLUMNS,
        ["source", "order_ref", "line_no"],
        {"source": source},
        progress=lambda done: notify("writing", done, total),
    )
    if create_catalog_products:
        notify("catalog", 0, len(products))
        report.catalog_products = _create_catalog_products(session, products)
    if create_customers:
        _write_history(session, prepared, report, source, create_orders, notify)
    session.add(
        ImportRun(
            id=new_id("imp"),
            source=source,
            file_name=file_name[:300],
            sha256=hashlib.sha256(data).hexdigest(),
            rows=report.rows,
            imported_rows=report.imported_rows,
            rejected_rows=report.rejected_rows,
            summary=report.to_dict(issues=False),
        )
    )
    session.flush()
    report.seconds = time.perf_counter() - started
    return report


def _write_history(
    session: Session,
    prepared: Prepared,
    report: ImportReport,
    source: str,
    create_orders: bool,
    notify: Progress,
) -> None:
    """Customer profiles (and orders, returns, timeline facts) for every accepted invoice,
    whether or not the analytics store had it already: each context skips what it has."""
    people = prepared.customers
    customers = customer_history.import_customers(
        session,
        source,
        [
            customer_history.HistoricCustomer(key, {"country": country} if country else {})
            for key, country in zip(
                people["customer_key"].tolist(), people["country"].tolist(), strict=True
            )
        ],
        progress=notify,
    )
    report.customer_profiles_created = customers.created
    report.customer_profiles_existing = customers.existing
    report.customer_ids_refused = len(customers.refused)
    report.customer_ids_suppressed = len(customers.suppressed)
    notify("profile keys", 0, 1)
    report.facts_rekeyed = key_facts_by_profile(
        session, source, customers.ids, customers.suppressed
    )
    notify("profile keys", 1, 1)
    if not create_orders:
        return
    invoices, adjustments_only = history_invoices(prepared, customers.ids)
    done = order_history.import_order_history(session, source, invoices, progress=notify)
    report.orders_created = done.orders
    report.returns_created = done.returns
    report.credit_notes_created = done.credit_notes
    report.order_lines_created = done.lines
    report.invoices_already_ordered = done.skipped
    report.invoices_without_order_lines = adjustments_only + done.empty
    report.timeline_facts_created = done.timeline_facts


_REKEY_ORDERS = text(
    "UPDATE analytics_orders SET customer_key = :new WHERE customer_key = :old AND source = :source"
)
_GUEST_ORDERS = text(
    "UPDATE analytics_orders SET customer_key = NULL WHERE customer_key = :old AND source = :source"
)
# A line takes its order's key (``analytics_orders`` is unique on (source, order_ref)).
_REKEY_LINES = text(
    """
    UPDATE analytics_sales_lines SET customer_key = (
        SELECT o.customer_key FROM analytics_orders AS o
        WHERE o.source = analytics_sales_lines.source
          AND o.order_ref = analytics_sales_lines.order_ref)
    WHERE source = :source AND customer_key IS NOT NULL
      AND EXISTS (
        SELECT 1 FROM analytics_orders AS o
        WHERE o.source = analytics_sales_lines.source
          AND o.order_ref = analytics_sales_lines.order_ref
          AND (o.customer_key IS NULL OR o.customer_key <> analytics_sales_lines.customer_key))
    """
)
# The profile's dimension row: the earliest first sighting, the country it had if any.
_REKEY_DIM = text(
    """
    INSERT INTO analytics_customers (customer_key, country, first_seen_at)
    SELECT :new, country, first_seen_at FROM analytics_customers WHERE customer_key = :old
    ON CONFLICT (customer_key) DO UPDATE SET
        country = coalesce(analytics_customers.country, excluded.country),
        first_seen_at = CASE WHEN excluded.first_seen_at < analytics_customers.first_seen_at
                             THEN excluded.first_seen_at
                             ELSE analytics_customers.first_seen_at END
    """
)
# (Tracked sessions never carry a raw CustomerID: only orders can still use it.)
_DROP_UNUSED_DIM = text(
    """
    DELETE FROM analytics_customers WHERE customer_key = :old
      AND NOT EXISTS (SELECT 1 FROM analytics_orders WHERE customer_key = :old)
    """
)


def key_facts_by_profile(
    session: Session, source: str, profile_ids: dict[str, str], erased: Sequence[str] = ()
) -> int:
    """Re-key this source's analytics facts from the file's CustomerID to the customer
    profile id (what live orders record), so a historic customer who also buys online is
    one customer in every KPI, and the order context, the customer 360 and the analytics
    store agree. Facts imported earlier without ``--customers`` are re-keyed too. The numbers
    of erased people (``erased``) become guests; CustomerIDs the customer context refused
    keep their raw key. Returns the orders re-keyed."""
    pairs = [{"old": old, "new": new, "source": source} for old, new in profile_ids.items()]
    guests = [{"old": old, "source": source} for old in erased]
    if not pairs and not guests:
        return 0
    connection = session.connection()
    rekeyed = connection.execute(_REKEY_ORDERS, pairs).rowcount if pairs else 0
    if guests:
        connection.execute(_GUEST_ORDERS, guests)
    connection.execute(_REKEY_LINES, {"source": source})
    if pairs:
        connection.execute(_REKEY_DIM, pairs)
    connection.execute(_DROP_UNUSED_DIM, [{"old": p["old"]} for p in pairs + guests])
    return max(0, rekeyed)


def history_invoices(
    prepared: Prepared, customer_ids: dict[str, str]
) -> tuple[list[order_history.HistoricInvoice], int]:
    """The accepted invoices as order-context invoices (stock adjustment lines left out; an
    invoice of adjustments only is not an order) and how many were adjustments only.
    Quantities are units (positive, also on credits); the time of an invoice is its earliest
    row's, as in the analytics store."""
    lines = prepared.lines
    kept = lines[lines["line_type"] != LineType.ADJUSTMENT.value]
    codes, refs = pd.factorize(kept["order_ref"], sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    starts = np.concatenate(([0], bounds)).tolist()
    ends = np.concatenate((bounds, [len(order)])).tolist()
    items = list(
        map(
            order_history.HistoricLine._make,
            zip(
                kept["sku"].to_numpy()[order].tolist(),
                kept["description"].to_numpy()[order].tolist(),
                np.abs(kept["quantity"].to_numpy()[order]).tolist(),
                kept["unit_price_minor"].to_numpy()[order].tolist(),
                (kept["line_type"].to_numpy()[order] == LineType.PRODUCT.value).tolist(),
                strict=True,
            ),
        )
    )
    heads = prepared.orders.set_index("order_ref").loc[list(refs)]
    times = [stamp.to_pydatetime() for stamp in heads["occurred_at"]]
    invoices = [
        order_history.HistoricInvoice(
            reference=ref,
            credit=kind == Kind.RETURN.value,
            customer_id=customer_ids.get(customer) if customer else None,
            channel=channel,
            currency=currency,
            occurred_at=at,
            lines=items[start:end] if len(refs) else [],
        )
        for ref, kind, customer, channel, currency, at, start, end in zip(
            refs.tolist(),
            heads["kind"].tolist(),
            heads["customer_key"].tolist(),
            heads["channel"].tolist(),
            heads["currency"].tolist(),
            times,
            starts if len(refs) else [],
            ends if len(refs) else [],
            strict=True,
        )
    ]
    return invoices, len(prepared.orders) - len(invoices)


def _create_catalog_products(session: Session, products: pd.DataFrame) -> int:
    """Catalog products (one variant each) for new merchandise StockCodes, through
    ``catalog.service``; codes the catalog already knows or refuses are left alone."""
    from omniretail.catalog import service as catalog
    from omniretail.catalog.domain import valid_sku

    wanted = [
        (sku, desc)
        for sku, desc, kind in products[["sku", "description", "line_type"]].itertuples(index=False)
        if kind == "product" and valid_sku(sku)
    ]
    known = catalog.variant_facts(session, [sku for sku, _ in wanted])
    created = 0
    for sku, desc in wanted:
        if sku in known:
            continue
        try:
            with session.begin_nested():
                catalog.create_product(
                    session,
                    title=(desc or sku).title()[:200],
                    variants=[{"sku": sku}],
                    attributes={"source": "online_retail"},
                )
            created += 1
        except AppError:
            continue
    return created


def read_file(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AppError("file_unreadable", f"cannot read {path}: {exc.strerror}", 400) from None
