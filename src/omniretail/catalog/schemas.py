"""Request and response models of the catalog API (the contract, with OpenAPI examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from omniretail.catalog.domain import MAX_WEIGHT_GRAMS, ChannelType, ProductStatus
from omniretail.core.pagination import Page

# --- categories -----------------------------------------------------------------------------


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=64,
        description="Stable lower-case code: letters, digits, '-' and '_'",
        examples=["mens-shirts"],
    )
    name: str = Field(min_length=1, max_length=200, examples=["Men's shirts"])
    parent_code: str | None = Field(
        default=None, description="Code of the parent category; omit for a root", examples=["mens"]
    )


class CategoryOut(BaseModel):
    id: str = Field(examples=["cat_01JD3Q0YB1X6V8K2M4N5P7R9ST"])
    code: str = Field(examples=["mens-shirts"])
    name: str = Field(examples=["Men's shirts"])
    parent_id: str | None = Field(default=None, examples=["cat_01JD3Q0Y9ZK3M4N5P7R9STVWXY"])
    parent_code: str | None = Field(default=None, examples=["mens"])
    path: list[str] = Field(
        default_factory=list,
        description="Codes from the root down to this category",
        examples=[["mens", "mens-shirts"]],
    )
    children: list[CategoryOut] = Field(
        default_factory=list, description="Sub-categories (tree view only)"
    )


# --- products and variants ------------------------------------------------------------------


class OptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60, examples=["Size"])
    values: list[str] = Field(default_factory=list, examples=[["S", "M", "L"]])


class OptionOut(BaseModel):
    name: str = Field(examples=["Size"])
    values: list[str] = Field(examples=[["S", "M", "L"]])


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, examples=["https://cdn.example.com/tee-black.jpg"])
    alt: str | None = Field(default=None, max_length=300, examples=["Black tee, front"])


class MediaOut(BaseModel):
    url: str = Field(examples=["https://cdn.example.com/tee-black.jpg"])
    alt: str | None = Field(default=None, examples=["Black tee, front"])


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(
        min_length=1,
        max_length=64,
        description="Unique stock-keeping unit: letters, digits, '.', '_', '-', '/', ' '",
        examples=["TEE-BLK-M"],
    )
    barcode: str | None = Field(
        default=None,
        description="GTIN-8/12/13/14 (EAN/UPC) with a valid check digit",
        examples=["4006381333931"],
    )
    title: str | None = Field(
        default=None,
        max_length=300,
        description="Defaults to the option values ('Black / M') or the product title",
        examples=["Black / M"],
    )
    option_values: dict[str, str] = Field(
        default_factory=dict, examples=[{"Color": "Black", "Size": "M"}]
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="Variant attributes; they override the product's attributes of the same name",
        examples=[{"color": "black"}],
    )
    weight_grams: int | None = Field(default=None, ge=0, le=MAX_WEIGHT_GRAMS, examples=[180])


class VariantUpdate(BaseModel):
    """Fields to change; absent fields keep their value (``barcode: null`` removes it)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=300, examples=["Black / M"])
    barcode: str | None = Field(default=None, examples=["4006381333931"])
    option_values: dict[str, str] | None = Field(
        default=None, examples=[{"Color": "Black", "Size": "M"}]
    )
    attributes: dict[str, Any] | None = Field(default=None, examples=[{"color": "black"}])
    weight_grams: int | None = Field(default=None, ge=0, le=MAX_WEIGHT_GRAMS, examples=[185])


PRODUCT_EXAMPLE: dict[str, Any] = {
    "title": "Organic cotton tee",
    "handle": "organic-cotton-tee",
    "description": "Heavyweight organic cotton T-shirt.",
    "brand": "Northwind",
    "status": "active",
    "categories": ["mens-shirts"],
    "attributes": {"material": "cotton", "fit": "regular"},
    "options": [{"name": "Color", "values": ["Black"]}, {"name": "Size", "values": ["M", "L"]}],
    "media": ["https://cdn.example.com/tee-black.jpg"],
    "variants": [
        {
            "sku": "TEE-BLK-M",
            "barcode": "4006381333931",
            "option_values": {"Color": "Black", "Size": "M"},
            "attributes": {"color": "black"},
            "weight_grams": 180,
        },
        {
            "sku": "TEE-BLK-L",
            "option_values": {"Color": "Black", "Size": "L"},
            "attributes": {"color": "black"},
            "weight_grams": 190,
        },
    ],
}


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PRODUCT_EXAMPLE]})

    title: str = Field(min_length=1, max_length=300, examples=["Organic cotton tee"])
    handle: str | None = Field(
        default=None,
        max_length=120,
        description="URL key, lower-case; derived from the title when omitted",
        examples=["organic-cotton-tee"],
    )
    description: str = Field(default="", examples=["Heavyweight organic cotton T-shirt."])
    brand: str | None = Field(default=None, max_length=120, examples=["Northwind"])
    status: ProductStatus = Field(default=ProductStatus.ACTIVE, examples=["active"])
    categories: list[str] = Field(
        default_factory=list, description="Category codes", examples=[["mens-shirts"]]
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, examples=[{"material": "cotton", "fit": "regular"}]
    )
    options: list[OptionIn] = Field(
        default_factory=list,
        description="Declared options; derived from the variants' option values when omitted",
    )
    media: list[str | MediaIn] = Field(
        default_factory=list,
        description="Image URLs, or objects with url and alt text",
        examples=[["https://cdn.example.com/tee-black.jpg"]],
    )
    variants: list[VariantIn] = Field(min_length=1, max_length=500)

    def service_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``service.create_product``."""
        data = self.model_dump(mode="json")
        data["category_codes"] = data.pop("categories")
        return data


class ProductUpdate(BaseModel):
    """Product-level fields to change; absent fields keep their value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"title": "Organic cotton tee (2025)", "status": "active"}]
        },
    )

    title: str | None = Field(default=None, min_length=1, max_length=300)
    handle: str | None = Field(default=None, max_length=120)
    description: str | None = None
    brand: str | None = Field(default=None, max_length=120)
    status: ProductStatus | None = None
    categories: list[str] | None = Field(default=None, description="Replaces the category codes")
    attributes: dict[str, Any] | None = Field(default=None, description="Replaces the attributes")
    options: list[OptionIn] | None = None
    media: list[str | MediaIn] | None = None


class VariantOut(BaseModel):
    id: str = Field(examples=["var_01JD3Q2C5W7Y9A1B3C5D7E9F1G"])
    product_id: str = Field(examples=["prd_01JD3Q2C5V6X8Z0A2B4C6D8E0F"])
    sku: str = Field(examples=["TEE-BLK-M"])
    barcode: str | None = Field(examples=["4006381333931"])
    title: str = Field(examples=["Black / M"])
    option_values: dict[str, Any] = Field(examples=[{"Color": "Black", "Size": "M"}])
    attributes: dict[str, Any] = Field(examples=[{"color": "black"}])
    weight_grams: int | None = Field(examples=[180])
    position: int = Field(examples=[0])


class ProductSummary(BaseModel):
    id: str = Field(examples=["prd_01JD3Q2C5V6X8Z0A2B4C6D8E0F"])
    handle: str = Field(examples=["organic-cotton-tee"])
    title: str = Field(examples=["Organic cotton tee"])
    brand: str | None = Field(examples=["Northwind"])
    status: str = Field(examples=["active"])
    attributes: dict[str, Any] = Field(examples=[{"material": "cotton"}])


class VariantDetail(VariantOut):
    """A variant with its product, as a POS scan or a SKU lookup needs it."""

    product: ProductSummary


class VariantList(BaseModel):
    items: list[VariantDetail]


class ProductOut(BaseModel):
    id: str = Field(examples=["prd_01JD3Q2C5V6X8Z0A2B4C6D8E0F"])
    handle: str = Field(examples=["organic-cotton-tee"])
    title: str = Field(examples=["Organic cotton tee"])
    description: str = Field(examples=["Heavyweight organic cotton T-shirt."])
    brand: str | None = Field(examples=["Northwind"])
    status: str = Field(examples=["active"])
    categories: list[str] = Field(description="Category codes", examples=[["mens-shirts"]])
    attributes: dict[str, Any] = Field(examples=[{"material": "cotton"}])
    options: list[OptionOut]
    media: list[MediaOut]
    variants: list[VariantOut]
    version: int = Field(description="Goes up by one on every change; the ETag", examples=[1])
    created_at: datetime
    updated_at: datetime


class ProductPage(Page[ProductOut]):
    """A page of products; pass ``next_cursor`` as ``cursor`` for the next one."""


# --- channels -------------------------------------------------------------------------------


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, examples=["web-uk"])
    name: str = Field(min_length=1, max_length=200, examples=["UK web shop"])
    type: ChannelType = Field(examples=["web"])
    currency: str = Field(description="ISO 4217", examples=["GBP"])
    country: str = Field(description="ISO 3166-1 alpha-2", examples=["GB"])
    locale: str = Field(max_length=20, examples=["en-GB"])
    publish_all: bool = Field(
        default=False,
        description="Every product is visible on this channel without publishing it",
        examples=[False],
    )


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, examples=["UK shop"])
    active: bool | None = Field(default=None, examples=[True])
    publish_all: bool | None = Field(default=None, examples=[False])


class ChannelOut(BaseModel):
    id: str = Field(examples=["chn_01JD3Q4M2N4P6R8T0V2X4Z6B8D"])
    code: str = Field(examples=["web-uk"])
    name: str = Field(examples=["UK web shop"])
    type: str = Field(examples=["web"])
    currency: str = Field(examples=["GBP"])
    country: str = Field(examples=["GB"])
    locale: str = Field(examples=["en-GB"])
    active: bool = Field(examples=[True])
    publish_all: bool = Field(examples=[False])


class ChannelList(BaseModel):
    items: list[ChannelOut]


class PublicationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_ids: list[str] = Field(
        min_length=1, max_length=1000, examples=[["prd_01JD3Q2C5V6X8Z0A2B4C6D8E0F"]]
    )


class PublicationResult(BaseModel):
    channel_id: str = Field(examples=["chn_01JD3Q4M2N4P6R8T0V2X4Z6B8D"])
    published: int = Field(description="Products newly published by this call", examples=[1])
    product_ids: list[str] = Field(examples=[["prd_01JD3Q2C5V6X8Z0A2B4C6D8E0F"]])


# --- import ---------------------------------------------------------------------------------


class ImportRowError(BaseModel):
    row: int = Field(description="1-based data row (CSV: after the header)", examples=[3])
    line: int | None = Field(
        default=None, description="Line in the file where the row starts", examples=[4]
    )
    handle: str | None = Field(default=None, examples=["organic-cotton-tee"])
    sku: str | None = Field(default=None, examples=["TEE-BLK-M"])
    code: str = Field(examples=["invalid_barcode"])
    message: str = Field(examples=["barcode '4006381333932' is not a valid GTIN"])


class ImportReport(BaseModel):
    format: str = Field(examples=["csv"])
    dry_run: bool = Field(examples=[False])
    rows: int = Field(description="Data rows read", examples=[5])
    products: int = Field(description="Products found in the file", examples=[3])
    imported: int = Field(description="Products created, updated or unchanged", examples=[2])
    created: int = Field(examples=[1])
    updated: int = Field(examples=[0])
    unchanged: int = Field(description="Already up to date (a re-run)", examples=[1])
    failed: int = Field(description="Products not imported because a row failed", examples=[1])
    errors: list[ImportRowError]
