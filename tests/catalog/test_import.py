"""Bulk import (CSV and JSONL): per-product all-or-nothing, row-numbered errors, upsert."""

import csv
import io
import json

import pytest
from sqlalchemy import select

from omniretail.catalog import importer
from omniretail.catalog.importer import CSV_COLUMNS
from omniretail.catalog.models import Product, Variant
from omniretail.core.errors import AppError
from tests.catalog.factories import count, create_category, create_product

EAN = "4006381333931"
EAN_2 = "5901234123457"


def csv_bytes(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


def jsonl_bytes(*lines):
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()


# Rows 1-2: product "tee" (good; row 1 spans file lines 2-3 because of a line break in the
# description). Rows 3-4: "mug" (row 3 has a bad barcode). Row 5: "cap" (attributes not JSON).
# Row 6: "sock" (bad weight). Row 7: "bag" (good).
MIXED = [
    {
        "handle": "tee",
        "title": "Organic tee",
        "description": "Soft\ncotton",
        "brand": "Northwind",
        "status": "active",
        "categories": "tees",
        "sku": "TEE-M",
        "barcode": EAN,
        "option1_name": "Size",
        "option1_value": "M",
        "attributes": '{"material": "cotton", "color": "black"}',
        "media": "https://cdn.example.com/tee.jpg",
        "weight_grams": "180",
    },
    {
        "handle": "tee",
        "sku": "TEE-L",
        "option1_value": "L",
        "attributes": '{"material": "cotton", "color": "white"}',
        "weight_grams": "190",
    },
    {"handle": "mug", "title": "Mug", "categories": "kitchen", "sku": "MUG-1", "barcode": "123"},
    {"handle": "mug", "sku": "MUG-2"},
    {"handle": "cap", "title": "Cap", "sku": "CAP-1", "attributes": "{not json}"},
    {"handle": "sock", "title": "Sock", "sku": "SOCK-1", "weight_grams": "abc"},
    {"handle": "bag", "title": "Tote bag", "sku": "BAG-1", "barcode": EAN_2},
]


@pytest.fixture()
def categories(session):
    create_category(session, "tees")
    create_category(session, "kitchen")


def run(session, data, fmt="csv", **kwargs):
    report = importer.import_products(session, data, fmt, **kwargs)
    session.commit()
    return report


def skus(session):
    return set(session.scalars(select(Variant.sku)))


def test_csv_import_reports_bad_rows_and_imports_good_products(session, categories):
    # when
    report = run(session, csv_bytes(MIXED))
    # then the counts and every rejected row are reported with row and line numbers
    assert (report.rows, report.products, report.created, report.failed) == (7, 5, 2, 3)
    assert [(e.row, e.line, e.handle, e.sku, e.code) for e in report.errors] == [
        (3, 5, "mug", "MUG-1", "invalid_barcode"),
        (5, 7, "cap", "CAP-1", "invalid_attributes"),
        (6, 8, "sock", "SOCK-1", "invalid_weight"),
    ]
    assert report.errors[0].message == "barcode '123' is not a valid GTIN"
    # and the good products exist while nothing of a failed product does
    assert skus(session) >= {"TEE-M", "TEE-L", "BAG-1"}
    assert skus(session) & {"MUG-1", "MUG-2", "CAP-1", "SOCK-1"} == set()
    assert session.scalar(select(Product.id).where(Product.handle == "mug")) is None


def test_csv_rows_of_one_handle_form_one_product(session, categories):
    run(session, csv_bytes(MIXED))
    tee = session.scalar(select(Product).where(Product.handle == "tee"))
    assert (tee.title, tee.description, tee.brand, tee.status) == (
        "Organic tee",
        "Soft\ncotton",
        "Northwind",
        "active",
    )
    assert tee.options == [{"name": "Size", "values": ["M", "L"]}]
    assert tee.media == [{"url": "https://cdn.example.com/tee.jpg", "alt": None}]
    # attributes every row shares belong to the product, the rest to the variants
    assert tee.attributes == {"material": "cotton"}
    assert [(v.sku, v.title, v.attributes, v.weight_grams) for v in tee.variants] == [
        ("TEE-M", "M", {"color": "black"}, 180),
        ("TEE-L", "L", {"color": "white"}, 190),
    ]


def test_reimporting_the_same_file_creates_nothing_and_keeps_versions(session, categories):
    # given the file was imported once
    run(session, csv_bytes(MIXED))
    products, variants = count(session, Product), count(session, Variant)
    # when it is imported again
    report = run(session, csv_bytes(MIXED))
    # then
    assert (report.created, report.updated, report.unchanged, report.failed) == (0, 0, 2, 3)
    assert (count(session, Product), count(session, Variant)) == (products, variants)
    versions = session.scalars(select(Product.version).where(Product.handle.in_(["tee", "bag"])))
    assert list(versions) == [1, 1]


def test_reimport_with_changes_updates_by_sku(session, categories):
    run(session, csv_bytes(MIXED))
    changed = [dict(r) for r in MIXED]
    changed[0]["title"] = "Organic tee v2"
    changed[1]["weight_grams"] = "195"
    report = run(session, csv_bytes(changed))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    tee = session.scalar(select(Product).where(Product.handle == "tee"))
    session.refresh(tee)
    assert (tee.title, tee.version) == ("Organic tee v2", 2)
    assert [v.weight_grams for v in tee.variants] == [180, 195]


def test_new_row_for_existing_handle_adds_a_variant(session, categories):
    run(session, csv_bytes([MIXED[6]]))
    report = run(session, csv_bytes([MIXED[6], {"handle": "bag", "sku": "BAG-2"}]))
    assert (report.updated, report.failed) == (1, 0)
    bag = session.scalar(select(Product).where(Product.handle == "bag"))
    assert [v.sku for v in bag.variants] == ["BAG-1", "BAG-2"]


def test_sku_of_another_product_is_reported_on_its_row(session, categories):
    # given SKU MUG-1 belongs to product "old-mug"
    create_product(session, "MUG-1", handle="old-mug")
    rows = [{"handle": "mug", "title": "Mug", "sku": "MUG-2"}, {"handle": "mug", "sku": "MUG-1"}]
    # when a file puts it under handle "mug"
    report = run(session, csv_bytes(rows))
    # then row 2 is rejected and MUG-2 was not created
    assert [(e.row, e.line, e.code, e.message) for e in report.errors] == [
        (2, 3, "handle_mismatch", "SKU 'MUG-1' belongs to product 'old-mug', not 'mug'")
    ]
    assert "MUG-2" not in skus(session)


def test_unknown_category_is_reported_on_the_row_naming_it(session, categories):
    rows = [
        {"handle": "hat", "title": "Hat", "sku": "HAT-1"},
        {"handle": "hat", "sku": "HAT-2", "categories": "hats"},
    ]
    report = run(session, csv_bytes(rows))
    assert [(e.row, e.code, e.message) for e in report.errors] == [
        (2, "category_not_found", "unknown categories: hats")
    ]


def test_same_sku_under_two_handles_rejects_the_later_product(session, categories):
    rows = [
        {"handle": "a", "title": "A", "sku": "DUP-1"},
        {"handle": "b", "title": "B", "sku": "DUP-1"},
    ]
    report = run(session, csv_bytes(rows))
    assert (report.created, report.failed) == (1, 1)
    assert [(e.row, e.handle, e.code) for e in report.errors] == [(2, "b", "duplicate_sku")]


def test_conflicting_product_fields_within_a_handle_are_rejected(session, categories):
    rows = [
        {"handle": "a", "title": "A", "sku": "A-1"},
        {"handle": "a", "title": "Other", "sku": "A-2"},
    ]
    report = run(session, csv_bytes(rows))
    assert [(e.row, e.code) for e in report.errors] == [(2, "conflicting_product_field")]
    assert "A-1" not in skus(session)


def test_row_with_extra_cells_rejects_its_product(session):
    data = b"handle,title,sku\na,A,A-1\na,,A-2,oops\nb,B,B-1\n"
    report = run(session, data)
    assert [(e.row, e.line, e.handle, e.code) for e in report.errors] == [
        (2, 3, "a", "wrong_column_count")
    ]
    assert (report.created, report.failed) == (1, 1)
    assert skus(session) & {"A-1", "A-2"} == set()


def test_blank_lines_are_not_counted_as_rows(session):
    data = b"handle,title,sku\n\na,A,A-1\nb,B,bad sku!\n"
    report = run(session, data)
    assert [(e.row, e.line, e.code) for e in report.errors] == [(2, 4, "invalid_sku")]


def test_unknown_column_rejects_the_whole_file(session):
    with pytest.raises(AppError) as caught:
        run(session, b"handle,title,sku,price\na,A,A-1,10\n")
    assert (caught.value.code, caught.value.status) == ("unknown_columns", 422)
    assert caught.value.details["columns"] == ["price"]


def test_dry_run_reports_but_writes_nothing(session, categories):
    before = count(session, Product)
    report = run(session, csv_bytes(MIXED), dry_run=True)
    assert (report.dry_run, report.created, report.failed) == (True, 2, 3)
    assert count(session, Product) == before


# --- JSON Lines -----------------------------------------------------------------------------


def test_jsonl_import_reports_line_errors_and_imports_good_lines(session, categories):
    data = jsonl_bytes(
        {
            "title": "Tee",
            "handle": "tee",
            "categories": ["tees"],
            "attributes": {"material": "cotton"},
            "variants": [{"sku": "J-TEE-M", "option_values": {"Size": "M"}}],
        },
        '{"title": "Broken",',
        "",
        {"title": "No variants", "variants": []},
        {"title": "Bad barcode", "variants": [{"sku": "J-BAD", "barcode": "4006381333932"}]},
        {"title": "Bag", "variants": [{"sku": "J-BAG", "barcode": EAN_2}]},
    )
    report = run(session, data, "jsonl")
    assert (report.rows, report.created, report.failed) == (5, 2, 3)
    assert [(e.row, e.line, e.code) for e in report.errors] == [
        (2, 2, "malformed_json"),
        (3, 4, "validation_error"),
        (4, 5, "invalid_barcode"),
    ]
    assert (
        report.errors[1].message
        == "variants: List should have at least 1 item after validation, not 0"
    )
    tee = session.scalar(select(Product).where(Product.handle == "tee"))
    assert (tee.attributes, [v.sku for v in tee.variants]) == ({"material": "cotton"}, ["J-TEE-M"])


def test_jsonl_reimport_is_unchanged(session, categories):
    data = jsonl_bytes({"title": "Tee", "handle": "tee", "variants": [{"sku": "J-1"}]})
    run(session, data, "jsonl")
    before = count(session, Variant)
    report = run(session, data, "jsonl")
    assert (report.created, report.unchanged) == (0, 1)
    assert count(session, Variant) == before


# --- over HTTP ------------------------------------------------------------------------------


def test_import_endpoint_accepts_multipart_upload(client, make_key, session, categories):
    response = client.post(
        "/api/v1/products/import",
        files={"file": ("products.csv", csv_bytes(MIXED), "text/csv")},
        headers={**make_key("merchandiser"), "Idempotency-Key": "upload-1"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["format"], body["imported"], body["failed"]) == ("csv", 2, 3)
    assert [(e["row"], e["code"]) for e in body["errors"]] == [
        (3, "invalid_barcode"),
        (5, "invalid_attributes"),
        (6, "invalid_weight"),
    ]
    assert {"TEE-M", "TEE-L", "BAG-1"} <= skus(session)


def test_import_endpoint_accepts_raw_jsonl_body(client, admin, session):
    data = jsonl_bytes({"title": "Tee", "variants": [{"sku": "RAW-1"}]})
    response = client.post(
        "/api/v1/products/import",
        content=data,
        headers={**admin, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200
    assert (response.json()["format"], response.json()["created"]) == ("jsonl", 1)
    assert "RAW-1" in skus(session)


def test_import_endpoint_replays_with_idempotency_key(client, admin, session):
    headers = {**admin, "Content-Type": "text/csv", "Idempotency-Key": "imp-1"}
    before = count(session, Product)
    data = csv_bytes([{"handle": "a", "title": "A", "sku": "A-1"}])
    first = client.post("/api/v1/products/import", content=data, headers=headers)
    second = client.post("/api/v1/products/import", content=data, headers=headers)
    assert (first.json()["created"], second.json()["created"]) == (1, 1)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count(session, Product) == before + 1


def test_import_endpoint_dry_run_writes_nothing(client, admin, session):
    before = count(session, Product)
    data = csv_bytes([{"handle": "a", "title": "A", "sku": "A-1"}])
    response = client.post(
        "/api/v1/products/import?dry_run=true",
        content=data,
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert (response.json()["dry_run"], response.json()["created"]) == (True, 1)
    assert count(session, Product) == before


def test_import_endpoint_needs_merchandiser(client, make_key, session):
    before = count(session, Product)
    response = client.post(
        "/api/v1/products/import",
        content=csv_bytes([{"handle": "a", "title": "A", "sku": "A-1"}]),
        headers={**make_key("analyst"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 403
    assert count(session, Product) == before


def test_import_endpoint_rejects_empty_body(client, admin):
    response = client.post(
        "/api/v1/products/import", content=b"", headers={**admin, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty_file"


def test_too_long_title_and_huge_weight_are_row_errors(session):
    rows = [
        {"handle": "long", "title": "x" * 301, "sku": "LONG-1"},
        {"handle": "heavy", "title": "Heavy", "sku": "HEAVY-1", "weight_grams": "99999999999"},
    ]
    report = run(session, csv_bytes(rows))
    assert [(e.row, e.code) for e in report.errors] == [
        (1, "value_too_long"),
        (2, "invalid_weight"),
    ]
    assert report.errors[0].message == "title is longer than 300 characters"
