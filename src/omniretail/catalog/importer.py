"""Bulk product import from CSV or JSON Lines, shared by the API and the CLI.

* CSV: one row per variant; rows with the same ``handle`` form one product (see
  ``CSV_COLUMNS``). JSONL: one product per line, the same object as ``POST /products``.
* All-or-nothing per product: each product is written in its own savepoint, so a bad row
  leaves nothing of its product behind while the other products import.
* Upsert by SKU: a product whose SKUs (or, failing that, handle) already exist is updated in
  place; unchanged products are counted as ``unchanged`` and keep their version, so running
  the same file twice creates nothing new.
* Errors name the 1-based data row, the line where it starts in the file, the handle, the SKU,
  a code and a message.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from omniretail.catalog import service
from omniretail.catalog.domain import (
    MAX_WEIGHT_GRAMS,
    gtin14,
    split_shared_attributes,
    valid_gtin,
    valid_media_url,
    valid_sku,
)
from omniretail.catalog.schemas import ImportReport, ImportRowError, ProductCreate
from omniretail.core.errors import AppError, invalid

CSV_COLUMNS = (
    "handle",
    "title",
    "description",
    "brand",
    "status",
    "categories",
    "sku",
    "barcode",
    "variant_title",
    "option1_name",
    "option1_value",
    "option2_name",
    "option2_value",
    "attributes",
    "media",
    "weight_grams",
)
REQUIRED_COLUMNS = ("handle", "title", "sku")
SCALAR_PRODUCT_FIELDS = ("title", "description", "brand", "status")
FORMATS = ("csv", "jsonl")
Progress = Callable[[int, int], None]


@dataclass
class SourceRow:
    row: int
    line: int | None
    handle: str | None = None
    sku: str | None = None
    categories: list[str] = field(default_factory=list)
    barcode: str | None = None


@dataclass
class Batch:
    """The rows of one product and the payload built from them."""

    key: str
    rows: list[SourceRow] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)
    errors: list[ImportRowError] = field(default_factory=list)

    def fail(self, source: SourceRow, code: str, message: str) -> None:
        self.errors.append(
            ImportRowError(
                row=source.row,
                line=source.line,
                handle=source.handle,
                sku=source.sku,
                code=code,
                message=message,
            )
        )


def detect_format(
    explicit: str | None = None,
    filename: str | None = None,
    content_type: str | None = None,
    data: bytes = b"",
) -> str:
    """csv or jsonl: as asked, else from the file name, the content type or the first byte."""
    if explicit:
        fmt = explicit.lower()
        fmt = "jsonl" if fmt in ("ndjson", "jsonlines") else fmt
        if fmt not in FORMATS:
            raise invalid(
                "invalid_format", f"unknown import format {explicit!r}", allowed=list(FORMATS)
            )
        return fmt
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        return "csv"
    if ctype in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
        return "jsonl"
    return "jsonl" if data.lstrip()[:1] == b"{" else "csv"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise invalid(
            "invalid_encoding", f"the file is not UTF-8 (byte {e.start} cannot be decoded)"
        ) from None


# --- CSV ------------------------------------------------------------------------------------


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split("|") if part.strip()]


def _csv_header(reader: Any) -> list[str]:
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise invalid("empty_file", "the file has no header row")
    columns = [h.strip().lower() for h in header]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        raise invalid(
            "unknown_columns",
            f"unknown columns: {', '.join(unknown)}",
            columns=unknown,
            allowed=list(CSV_COLUMNS),
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise invalid(
            "missing_columns", f"required columns missing: {', '.join(missing)}", columns=missing
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise invalid("duplicate_columns", f"columns given twice: {', '.join(repeated)}")
    return columns


class _CsvProduct:
    """Accumulates the rows of one handle into a product payload."""

    def __init__(self, batch: Batch, columns: list[str]) -> None:
        self.batch = batch
        self.columns = columns
        self.fields: dict[str, Any] = {}
        self.categories: list[str] = []
        self.media: list[str] = []
        self.option_names: list[str | None] = [None, None]
        self.variants: list[dict[str, Any]] = []
        self.variant_attributes: list[dict[str, Any]] = []
        self.sku_rows: dict[str, int] = {}
        self.first_row: int | None = None

    def add(self, source: SourceRow, rec: dict[str, str]) -> None:
        problems: list[tuple[str, str]] = []
        first = self.first_row is None
        self.first_row = self.first_row or source.row
        self.batch.rows.append(source)
        for name in SCALAR_PRODUCT_FIELDS:
            if name not in rec:
                continue
            value = rec[name]
            if name == "status" and value and value not in service.STATUSES:
                problems.append(("invalid_status", f"unknown status {value!r}"))
            elif first:
                self.fields[name] = value
            elif value and value != self.fields.get(name):
                problems.append(
                    (
                        "conflicting_product_field",
                        f"{name} {value!r} differs from {self.fields.get(name)!r} given in "
                        f"row {self.first_row} for the same handle",
                    )
                )
        if first and not rec.get("title"):
            problems.append(("missing_title", "the first row of a product needs a title"))
        source.categories = _split(rec.get("categories", ""))
        self.categories += [c for c in source.categories if c not in self.categories]
        for url in _split(rec.get("media", "")):
            if not valid_media_url(url):
                problems.append(("invalid_media_url", f"media URL {url!r} is not an http(s) URL"))
            elif url not in self.media:
                self.media.append(url)
        variant, attributes, variant_problems = self._variant(source, rec)
        problems += variant_problems
        for code, message in problems:
            self.batch.fail(source, code, message)
        if not problems:
            self.variants.append(variant)
            self.variant_attributes.append(attributes)

    def _variant(
        self, source: SourceRow, rec: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]]:
        problems: list[tuple[str, str]] = []
        sku = rec.get("sku", "")
        if not sku:
            problems.append(("missing_sku", "every row needs a SKU"))
        elif not valid_sku(sku):
            problems.append(("invalid_sku", f"SKU {sku!r} is not valid"))
        elif sku in self.sku_rows:
            problems.append(
                ("duplicate_sku", f"SKU {sku!r} already appears in row {self.sku_rows[sku]}")
            )
        else:
            self.sku_rows[sku] = source.row
        variant: dict[str, Any] = {"sku": sku}
        if "barcode" in rec:
            barcode = rec["barcode"] or None
            if barcode is not None and not valid_gtin(barcode):
                problems.append(("invalid_barcode", f"barcode {barcode!r} is not a valid GTIN"))
            variant["barcode"] = barcode
            source.barcode = barcode
        if "variant_title" in rec:
            variant["title"] = rec["variant_title"]
        option_values: dict[str, str] = {}
        for i in (1, 2):
            name, value = rec.get(f"option{i}_name", ""), rec.get(f"option{i}_value", "")
            known = self.option_names[i - 1]
            if name and known and name != known:
                problems.append(
                    (
                        "conflicting_option_names",
                        f"option{i}_name {name!r} differs from {known!r} in an earlier row",
                    )
                )
                continue
            name = name or known or ""
            if value and not name:
                problems.append(("invalid_option", f"option{i}_value given without option{i}_name"))
            elif name:
                self.option_names[i - 1] = name
                if value:
                    option_values[name] = value
        if any(c.startswith("option") for c in rec):
            variant["option_values"] = option_values
        if "weight_grams" in rec:
            raw = rec["weight_grams"]
            number = int(raw) if raw.isascii() and raw.isdigit() else None
            if raw and (number is None or number > MAX_WEIGHT_GRAMS):
                problems.append(
                    (
                        "invalid_weight",
                        f"weight_grams must be a whole number from 0 to {MAX_WEIGHT_GRAMS}, "
                        f"not {raw!r}",
                    )
                )
            variant["weight_grams"] = number
        attributes: dict[str, Any] = {}
        if rec.get("attributes"):
            try:
                attributes = json.loads(rec["attributes"])
            except json.JSONDecodeError as e:
                problems.append(("invalid_attributes", f"attributes is not JSON: {e.msg}"))
            if not isinstance(attributes, dict):
                problems.append(("invalid_attributes", "attributes must be a JSON object"))
                attributes = {}
        return variant, attributes, problems

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"handle": self.batch.key, **self.fields}
        if not data.get("status"):
            data.pop("status", None)  # blank: keep the current status (new products: active)
        if "categories" in self.columns:
            data["categories"] = self.categories
        if "media" in self.columns:
            data["media"] = self.media
        variants = [dict(v) for v in self.variants]
        if "attributes" in self.columns:
            shared, rest = split_shared_attributes(self.variant_attributes)
            data["attributes"] = shared
            for v, attrs in zip(variants, rest, strict=True):
                v["attributes"] = attrs
        data["variants"] = variants
        return data


def read_csv(text: str) -> list[Batch]:
    """Group CSV rows into products; parse problems are recorded on the batches."""
    reader = csv.reader(io.StringIO(text, newline=""))
    columns = _csv_header(reader)
    products: dict[str, _CsvProduct] = {}
    order: list[Batch] = []
    row, last_line = 0, reader.line_num
    for values in reader:
        line, last_line = last_line + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue
        row += 1
        rec = {c: v.strip() for c, v in zip(columns, values, strict=False)}
        handle = rec.get("handle") or None
        source = SourceRow(row=row, line=line, handle=handle, sku=rec.get("sku") or None)
        if handle is None:
            batch = Batch(key=f"row {row}", rows=[source])
            batch.fail(source, "missing_handle", "every row needs a handle")
            order.append(batch)
            continue
        if handle not in products:
            products[handle] = _CsvProduct(Batch(key=handle), columns)
            order.append(products[handle].batch)
        if len(values) != len(columns):
            # the row still belongs to its product, which is then rejected as a whole
            products[handle].batch.rows.append(source)
            products[handle].batch.fail(
                source,
                "wrong_column_count",
                f"expected {len(columns)} columns, found {len(values)}",
            )
            continue
        products[handle].add(source, rec)
    for product in products.values():
        product.batch.payload = product.payload()
    return order


# --- JSON Lines -----------------------------------------------------------------------------


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def read_jsonl(text: str) -> list[Batch]:
    batches: list[Batch] = []
    row = 0
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        row += 1
        source = SourceRow(row=row, line=line)
        batch = Batch(key=f"row {row}", rows=[source])
        batches.append(batch)
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            batch.fail(source, "malformed_json", f"not valid JSON: {e.msg} (column {e.colno})")
            continue
        if not isinstance(obj, dict):
            batch.fail(source, "invalid_row", "each line must be a JSON object")
            continue
        source.handle = obj.get("handle") if isinstance(obj.get("handle"), str) else None
        variants = obj.get("variants")
        if isinstance(variants, list) and variants and isinstance(variants[0], dict):
            source.sku = str(variants[0].get("sku") or "") or None
        try:
            model = ProductCreate.model_validate(obj)
        except ValidationError as e:
            batch.fail(source, "validation_error", _validation_message(e))
            continue
        batch.key = model.handle or batch.key
        batch.payload = model.model_dump(mode="json", exclude_unset=True)
        source.categories = list(model.categories)
    return batches


# --- import ---------------------------------------------------------------------------------


def _mark_duplicates_across_products(batches: list[Batch]) -> None:
    """A SKU or barcode may belong to one product of the file only; later ones fail."""
    first_sku: dict[str, Batch] = {}
    first_barcode: dict[str, Batch] = {}
    for batch in batches:
        rows = {r.sku: r for r in batch.rows}
        for variant in batch.payload.get("variants", []):
            sku = variant.get("sku")
            source = rows.get(sku, batch.rows[0])
            owner = first_sku.setdefault(sku, batch)
            if owner is not batch:
                batch.fail(
                    source,
                    "duplicate_sku",
                    f"SKU {sku!r} also belongs to the product of row {owner.rows[0].row}",
                )
            barcode = variant.get("barcode")
            if barcode:
                owner = first_barcode.setdefault(gtin14(barcode), batch)
                if owner is not batch:
                    batch.fail(
                        source,
                        "duplicate_barcode",
                        f"barcode {barcode!r} is also given to the product of row "
                        f"{owner.rows[0].row}",
                    )


def _row_for(batch: Batch, error: AppError) -> SourceRow:
    """The row an error from the service is about (by SKU, barcode or category)."""
    details = error.details
    sku = details.get("sku") or next(iter(details.get("skus") or []), None)
    barcode = details.get("barcode")
    categories = set(details.get("categories") or [])
    for source in batch.rows:
        if sku is not None and source.sku == sku:
            return source
    for source in batch.rows:
        if barcode is not None and source.barcode == barcode:
            return source
        if categories & set(source.categories):
            return source
    return batch.rows[0]


def import_products(
    session: Session,
    data: bytes,
    fmt: str,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import products from ``data``; flushes, never commits. With ``dry_run`` everything is
    checked and written inside a savepoint that is rolled back, so the report is exact and
    the database is unchanged. A file that cannot be read at all is a 422 ``AppError``."""
    fmt = detect_format(fmt, data=data)
    text = _decode(data)
    batches = read_csv(text) if fmt == "csv" else read_jsonl(text)
    _mark_duplicates_across_products(batches)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    errors: list[ImportRowError] = []
    failed = 0
    outer = session.begin_nested() if dry_run else None
    try:
        for done, batch in enumerate(batches, start=1):
            if not batch.errors:
                try:
                    with session.begin_nested():
                        _, outcome = service.upsert_product(session, batch.payload)
                    counts[outcome] += 1
                except AppError as e:
                    batch.fail(_row_for(batch, e), e.code, e.message)
                except IntegrityError:
                    batch.fail(
                        batch.rows[0],
                        "concurrent_update",
                        "a SKU, barcode or handle of this product was taken meanwhile; retry",
                    )
                except DataError as e:
                    batch.fail(
                        batch.rows[0], "invalid_value", f"the database refused a value: {e.orig}"
                    )
            if batch.errors:
                failed += 1
                errors += batch.errors
            if progress is not None:
                progress(done, len(batches))
    finally:
        if outer is not None:
            outer.rollback()
    errors.sort(key=lambda e: (e.row, e.code))
    return ImportReport(
        format=fmt,
        dry_run=dry_run,
        rows=sum(len(b.rows) for b in batches),
        products=len(batches),
        imported=sum(counts.values()),
        failed=failed,
        errors=errors,
        **counts,
    )
