"""Seeded generator of giftware products and invoice history in the UCI Online Retail format.

The real Online Retail file (../shared/data/online_retail) is never copied into the
repository; the demo and small test fixtures come from here instead. The output has the same
columns, formats and quirks (cancellations with a leading ``C``, guest rows without
CustomerID, service codes such as ``POST``), so every importer can be tested on it.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

COLOURS = [
    "WHITE",
    "RED",
    "PINK",
    "BLUE",
    "GREEN",
    "IVORY",
    "CREAM",
    "SILVER",
    "GOLD",
    "BLACK",
    "PASTEL",
    "VINTAGE",
    "RETRO",
    "NATURAL",
    "LILAC",
    "TURQUOISE",
]
MOTIFS = [
    "HEART",
    "STAR",
    "SPOTTY",
    "FLORAL",
    "PAISLEY",
    "BIRD",
    "OWL",
    "ROSE",
    "CHRISTMAS",
    "SNOWFLAKE",
    "BUNTING",
    "POLKADOT",
    "STRIPE",
    "DOILY",
    "BUTTERFLY",
    "REGENCY",
    "ANGEL",
]
ITEMS = [
    ("T-LIGHT HOLDER", 295),
    ("LANTERN", 375),
    ("CAKE CASES", 55),
    ("LUNCH BAG", 165),
    ("JUMBO BAG", 208),
    ("TEA CUP AND SAUCER", 295),
    ("MUG", 125),
    ("NOTEBOOK", 85),
    ("CUSHION COVER", 375),
    ("DOORMAT", 795),
    ("PHOTO FRAME", 255),
    ("WALL CLOCK", 850),
    ("PARTY BUNTING", 495),
    ("GIFT WRAP", 42),
    ("CANDLE", 125),
    ("HOT WATER BOTTLE", 495),
    ("CHILDRENS APRON", 195),
    ("BAKING SET", 495),
    ("STORAGE TIN", 250),
    ("GARDEN MARKER", 85),
    ("KEY RING", 65),
    ("HAND WARMER", 210),
    ("PAPER CHAIN KIT", 295),
    ("SHOPPER BAG", 125),
    ("PLATE", 165),
    ("BOWL", 125),
    ("TRINKET BOX", 125),
    ("COAT RACK", 595),
]
MATERIALS = ["", "", "", "GLASS ", "CERAMIC ", "ENAMEL ", "WOODEN ", "METAL ", "ZINC ", "FELT "]
SIZES = ["SMALL", "MEDIUM", "LARGE"]
COUNTRIES = [
    ("United Kingdom", 0.88),
    ("Germany", 0.02),
    ("France", 0.02),
    ("EIRE", 0.015),
    ("Spain", 0.01),
    ("Netherlands", 0.01),
    ("Belgium", 0.01),
    ("Switzerland", 0.01),
    ("Portugal", 0.005),
    ("Norway", 0.005),
    ("Australia", 0.005),
]
SERVICE_CODES = [("POST", "POSTAGE", 1800), ("M", "Manual", 0), ("D", "Discount", 0)]


@dataclass(frozen=True)
class GeneratedProduct:
    stock_code: str
    description: str
    unit_price: int  # minor units (pence)
    category: str


def generate_products(count: int, seed: int = 7) -> list[GeneratedProduct]:
    """``count`` distinct giftware products with Online-Retail-style codes and names."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[GeneratedProduct] = []
    code = 20000
    while len(out) < count:
        item, base = rng.choice(ITEMS)
        name = f"{rng.choice(COLOURS)} {rng.choice(MOTIFS)} {rng.choice(MATERIALS)}{item}"
        name = " ".join(name.split())
        if name in seen:
            continue
        seen.add(name)
        code += rng.randint(1, 40)
        suffix = rng.choice(["", "", "", "A", "B", "C"])
        price = max(10, int(base * rng.uniform(0.6, 1.8)) // 5 * 5)
        out.append(GeneratedProduct(f"{code}{suffix}", name, price, item.split()[-1].lower()))
    return out


HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def generate_invoice_rows(
    products: list[GeneratedProduct],
    invoices: int = 2000,
    customers: int = 300,
    start: datetime = datetime(2010, 12, 1, 8, 0),
    days: int = 373,
    seed: int = 11,
    guest_share: float = 0.2,
    cancel_share: float = 0.02,
) -> Iterator[list[str]]:
    """Rows (lists of strings) of invoice lines, in the column order of ``HEADER``."""
    rng = random.Random(seed)
    customer_ids = [str(12346 + i * 3) for i in range(customers)]
    home = {
        c: rng.choices([n for n, _ in COUNTRIES], [w for _, w in COUNTRIES])[0]
        for c in customer_ids
    }
    weights = [1 / (i + 1) ** 0.8 for i in range(len(products))]  # a long tail of popularity
    number = 536365
    past: list[tuple[str, list[list[str]]]] = []
    for _ in range(invoices):
        when = start + timedelta(days=rng.randrange(days), minutes=rng.randrange(10 * 60))
        stamp = when.strftime("%Y-%m-%d %H:%M:%S")
        guest = rng.random() < guest_share
        cust = "" if guest else rng.choice(customer_ids)
        country = "United Kingdom" if guest else home[cust]
        number += 1
        lines: list[list[str]] = []
        for product in rng.choices(products, weights, k=rng.randint(1, 12)):
            qty = rng.choice([1, 1, 2, 3, 4, 6, 12, 24])
            lines.append(
                [
                    str(number),
                    product.stock_code,
                    product.description,
                    str(qty),
                    stamp,
                    f"{product.unit_price / 100:.2f}",
                    cust,
                    country,
                ]
            )
        if rng.random() < 0.05:
            code, desc, price = rng.choice(SERVICE_CODES)
            lines.append([str(number), code, desc, "1", stamp, f"{price / 100:.2f}", cust, country])
        past.append((cust, lines))
        yield from lines
        if cust and rng.random() < cancel_share:
            original = rng.choice(lines)
            when_c = when + timedelta(days=rng.randint(1, 20))
            yield [
                f"C{number}",
                original[1],
                original[2],
                f"-{original[3]}",
                when_c.strftime("%Y-%m-%d %H:%M:%S"),
                original[5],
                cust,
                country,
            ]


def write_online_retail_csv(
    path: str, products: int = 600, invoices: int = 2000, seed: int = 7
) -> int:
    """Write a generated file in the Online Retail format; returns the number of data rows."""
    items = generate_products(products, seed)
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for row in generate_invoice_rows(items, invoices=invoices, seed=seed + 4):
            writer.writerow(row)
            count += 1
    return count


def online_retail_csv_text(products: int = 50, invoices: int = 100, seed: int = 7) -> str:
    """The same as ``write_online_retail_csv`` into a string (small test fixtures)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADER)
    for row in generate_invoice_rows(
        generate_products(products, seed), invoices=invoices, seed=seed + 4
    ):
        writer.writerow(row)
    return buf.getvalue()
