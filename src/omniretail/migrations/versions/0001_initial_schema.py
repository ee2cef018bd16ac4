"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 14:03:00.621079
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omniretail.core.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_customers",
        sa.Column("customer_key", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("first_seen_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_key", name=op.f("pk_analytics_customers")),
    )
    op.create_table(
        "analytics_forecast_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("freq", sa.String(length=4), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("node_kind", sa.String(length=12), nullable=False),
        sa.Column("history_start", sa.Date(), nullable=False),
        sa.Column("history_end", sa.Date(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_forecast_runs")),
    )
    op.create_table(
        "analytics_forecast_series",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("demand_class", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("adi", sa.Float(), nullable=False),
        sa.Column("cv2", sa.Float(), nullable=False),
        sa.Column("mase", sa.Float(), nullable=True),
        sa.Column("mase_seasonal_naive", sa.Float(), nullable=True),
        sa.Column("sigma", sa.Float(), nullable=True),
        sa.Column("mean_forecast", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sku", "node", name=op.f("pk_analytics_forecast_series")),
    )
    op.create_table(
        "analytics_forecast_values",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "sku", "node", "period_start", name=op.f("pk_analytics_forecast_values")
        ),
    )
    op.create_table(
        "analytics_import_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported_rows", sa.Integer(), nullable=False),
        sa.Column("rejected_rows", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_import_runs")),
    )
    op.create_table(
        "analytics_orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=True),
        sa.Column("customer_key", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.Column("service_minor", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("product_lines", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("original_order_ref", sa.String(length=64), nullable=True),
        sa.Column("session_key", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_orders")),
        sa.UniqueConstraint(
            "source", "order_ref", name=op.f("uq_analytics_orders_source_order_ref")
        ),
    )
    with op.batch_alter_table("analytics_orders", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_orders_customer", ["customer_key"], unique=False)
        batch_op.create_index("ix_analytics_orders_occurred", ["occurred_at"], unique=False)

    op.create_table(
        "analytics_products",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("line_type", sa.String(length=12), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_analytics_products")),
    )
    op.create_table(
        "analytics_replenishment_suggestions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("from_location_id", sa.String(length=40), nullable=True),
        sa.Column("to_location_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_ref", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_replenishment_suggestions")),
    )
    with op.batch_alter_table("analytics_replenishment_suggestions", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_replenishment_status", ["status", "id"], unique=False)

    op.create_table(
        "analytics_sales_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("line_type", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=True),
        sa.Column("customer_key", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("occurred_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_sales_lines")),
        sa.UniqueConstraint(
            "source",
            "order_ref",
            "line_no",
            name=op.f("uq_analytics_sales_lines_source_order_ref_line_no"),
        ),
    )
    op.create_table(
        "analytics_sessions",
        sa.Column("session_key", sa.String(length=80), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("customer_key", sa.String(length=64), nullable=True),
        sa.Column("started_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("session_key", name=op.f("pk_analytics_sessions")),
    )
    with op.batch_alter_table("analytics_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_sessions_started", ["started_at"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("location_ids", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_prefix"), ["prefix"], unique=False)

    op.create_table(
        "carts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("coupon_codes", sa.JSON(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("shipping_address", sa.JSON(), nullable=True),
        sa.Column("billing_address", sa.JSON(), nullable=True),
        sa.Column("delivery", sa.JSON(), nullable=False),
        sa.Column("holds", sa.JSON(), nullable=False),
        sa.Column("pricing", sa.JSON(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("merged_into", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index(
            "uq_carts_active_customer",
            ["customer_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active' AND customer_id IS NOT NULL"),
            postgresql_where=sa.text("status = 'active' AND customer_id IS NOT NULL"),
        )

    op.create_table(
        "categories",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["categories.id"], name=op.f("fk_categories_parent_id_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_categories_code")),
    )
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_categories_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "channel_inventory_settings",
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("buffer", sa.Integer(), nullable=False),
        sa.Column("reservation_ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_inventory_settings")),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("locale", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("publish_all", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("code", name=op.f("uq_channels_code")),
    )
    op.create_table(
        "customer_addresses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("data_enc", sa.Text(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_addresses")),
    )
    with op.batch_alter_table("customer_addresses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_addresses_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "customer_consent_changes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("proof_enc", sa.Text(), nullable=True),
        sa.Column("occurred_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_consent_changes")),
    )
    with op.batch_alter_table("customer_consent_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_consent_changes_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "customer_consents",
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("profile_id", "purpose", name=op.f("pk_customer_consents")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_customer_consents_token_hash")),
    )
    op.create_table(
        "customer_data_keys",
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("wrapped", sa.Text(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_customer_data_keys")),
    )
    op.create_table(
        "customer_erasures",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("profile_ids", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=60), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("erased_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_erasures")),
    )
    with op.batch_alter_table("customer_erasures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_erasures_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "customer_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=12), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=True),
        sa.Column("fact", sa.String(length=40), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("anonymous_id", sa.String(length=255), nullable=True),
        sa.Column("profile_id", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("occurred_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("pii_enc", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_customer_events")),
        sa.UniqueConstraint(
            "source_id", "message_id", name=op.f("uq_customer_events_source_id_message_id")
        ),
    )
    with op.batch_alter_table("customer_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_events_profile_time", ["profile_id", "occurred_at", "seq"], unique=False
        )

    op.create_table(
        "customer_identifiers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.Column("value_enc", sa.Text(), nullable=True),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_identifiers")),
        sa.UniqueConstraint("value_hash", name=op.f("uq_customer_identifiers_value_hash")),
    )
    with op.batch_alter_table("customer_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_identifiers_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "customer_identity_links",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("a_hash", sa.String(length=64), nullable=False),
        sa.Column("a_type", sa.String(length=40), nullable=False),
        sa.Column("b_hash", sa.String(length=64), nullable=False),
        sa.Column("b_type", sa.String(length=40), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=60), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_identity_links")),
        sa.UniqueConstraint(
            "a_hash", "b_hash", name=op.f("uq_customer_identity_links_a_hash_b_hash")
        ),
    )
    with op.batch_alter_table("customer_identity_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_identity_links_b_hash"), ["b_hash"], unique=False
        )

    op.create_table(
        "customer_merges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("survivor_id", sa.String(length=40), nullable=False),
        sa.Column("absorbed_id", sa.String(length=40), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("undone_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=60), nullable=True),
        sa.Column("undo_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_merges")),
    )
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_merges_absorbed_id"), ["absorbed_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_customer_merges_survivor_id"), ["survivor_id"], unique=False
        )

    op.create_table(
        "customer_profiles",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("root_id", sa.String(length=40), nullable=False),
        sa.Column("merged_into_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("email_enc", sa.Text(), nullable=True),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("first_name_enc", sa.Text(), nullable=True),
        sa.Column("last_name_enc", sa.Text(), nullable=True),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("preferred_store_id", sa.String(length=40), nullable=True),
        sa.Column("preferred_channel", sa.String(length=20), nullable=True),
        sa.Column("channels_mask", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_profiles")),
    )
    with op.batch_alter_table("customer_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_profiles_root_id"), ["root_id"], unique=False)

    op.create_table(
        "customer_sources",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_sources")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_customer_sources_key_hash")),
    )
    op.create_table(
        "customer_tracking_rejects",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("received_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("event_type", sa.String(length=20), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_tracking_rejects")),
    )
    with op.batch_alter_table("customer_tracking_rejects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_tracking_rejects_source_id"), ["source_id"], unique=False
        )

    op.create_table(
        "fulfillment_settings",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_fulfillment_settings")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "location_fulfillment_calendars",
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("cutoffs", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("handling_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_location_fulfillment_calendars")),
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("opening_hours", sa.JSON(), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("daily_pick_capacity", sa.Integer(), nullable=True),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_locations_code")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("cart_id", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.Integer(), nullable=False),
        sa.Column("discount_total", sa.Integer(), nullable=False),
        sa.Column("shipping_total", sa.Integer(), nullable=False),
        sa.Column("tax_total", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("shipping_address", sa.JSON(), nullable=True),
        sa.Column("billing_address", sa.JSON(), nullable=True),
        sa.Column("delivery", sa.JSON(), nullable=False),
        sa.Column("coupons", sa.JSON(), nullable=False),
        sa.Column("fraud_score", sa.Integer(), nullable=False),
        sa.Column("fraud_reasons", sa.JSON(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("card_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("register_id", sa.String(length=40), nullable=True),
        sa.Column("parent_return_id", sa.String(length=40), nullable=True),
        sa.Column("access_token_hash", sa.String(length=64), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("placed_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fulfilled_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("cart_id", name=op.f("uq_orders_cart_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_card_placed", ["card_fingerprint", "placed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orders_channel_id"), ["channel_id"], unique=False)
        batch_op.create_index(
            "ix_orders_customer_placed", ["customer_id", "placed_at"], unique=False
        )
        batch_op.create_index("ix_orders_ip_placed", ["client_ip", "placed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)

    op.create_table(
        "outbox_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("topic", sa.String(length=120), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_events_aggregate_id"), ["aggregate_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbox_events_topic"), ["topic"], unique=False)
        batch_op.create_index("ix_outbox_pending", ["published_at", "id"], unique=False)

    op.create_table(
        "pos_discrepancies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("register_id", sa.String(length=40), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("sale_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_discrepancies")),
    )
    with op.batch_alter_table("pos_discrepancies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pos_discrepancies_location_id"), ["location_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_pos_discrepancies_status"), ["status"], unique=False)

    op.create_table(
        "pos_registers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("contiguous_through", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_registers")),
        sa.UniqueConstraint("code", name=op.f("uq_pos_registers_code")),
    )
    with op.batch_alter_table("pos_registers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pos_registers_location_id"), ["location_id"], unique=False
        )

    op.create_table(
        "price_books",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("intended_override", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_books")),
        sa.UniqueConstraint("code", name=op.f("uq_price_books_code")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("handle", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("brand", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("handle", name=op.f("uq_products_handle")),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("stacking", sa.String(length=16), nullable=False),
        sa.Column("percent", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("buy_quantity", sa.Integer(), nullable=True),
        sa.Column("get_quantity", sa.Integer(), nullable=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("cart_wide", sa.Boolean(), nullable=False),
        sa.Column("all_channels", sa.Boolean(), nullable=False),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("customer_groups", sa.JSON(), nullable=False),
        sa.Column("requires_coupon", sa.Boolean(), nullable=False),
        sa.Column("min_subtotal", sa.Integer(), nullable=False),
        sa.Column("min_quantity", sa.Integer(), nullable=False),
        sa.Column("starts_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_promotions_active_window", ["active", "starts_at", "ends_at"], unique=False
        )

    op.create_table(
        "reservations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("order_reference", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index("ix_reservations_reference", ["reference"], unique=False)

    op.create_table(
        "return_policies",
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_return_policies")),
    )
    op.create_table(
        "shipping_rates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("free_over", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_rates")),
        sa.UniqueConstraint(
            "method",
            "channel_id",
            "country",
            name=op.f("uq_shipping_rates_method_channel_id_country"),
        ),
    )
    op.create_table(
        "sourcing_capacity_usage",
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "units >= 0", name=op.f("ck_sourcing_capacity_usage_units_not_negative")
        ),
        sa.PrimaryKeyConstraint("location_id", "day", name=op.f("pk_sourcing_capacity_usage")),
    )
    op.create_table(
        "sourcing_decisions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("solver", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("destination", sa.JSON(), nullable=True),
        sa.Column("pickup_location_id", sa.String(length=40), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("constraints", sa.JSON(), nullable=False),
        sa.Column("cost_model", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_cost", sa.Integer(), nullable=False),
        sa.Column("cost_breakdown", sa.JSON(), nullable=False),
        sa.Column("packages_count", sa.Integer(), nullable=False),
        sa.Column("unfulfilled", sa.JSON(), nullable=False),
        sa.Column("infeasibility", sa.JSON(), nullable=True),
        sa.Column("alternatives", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("input_summary", sa.JSON(), nullable=False),
        sa.Column("solve_ms", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sourcing_decisions")),
    )
    with op.batch_alter_table("sourcing_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_sourcing_decisions_reference", ["reference"], unique=False)
        batch_op.create_index("ix_sourcing_decisions_state", ["state", "created_at"], unique=False)

    op.create_table(
        "sourcing_strategies",
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("max_packages", sa.Integer(), nullable=True),
        sa.Column("split_lines", sa.Boolean(), nullable=False),
        sa.Column("allow_partial", sa.Boolean(), nullable=False),
        sa.Column("allow_transfers", sa.Boolean(), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_sourcing_strategies")),
    )
    op.create_table(
        "stored_value_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "balance >= 0", name=op.f("ck_stored_value_accounts_balance_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_value_accounts")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_stored_value_accounts_code_hash")),
    )
    with op.batch_alter_table("stored_value_accounts", schema=None) as batch_op:
        batch_op.create_index(
            "uq_stored_value_customer_credit",
            ["customer_id", "currency"],
            unique=True,
            sqlite_where=sa.text("kind = 'store_credit'"),
            postgresql_where=sa.text("kind = 'store_credit'"),
        )

    op.create_table(
        "tax_rates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("inclusive", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_rates")),
        sa.UniqueConstraint("country", "region", name=op.f("uq_tax_rates_country_region")),
    )
    op.create_table(
        "test_gateway_charges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("captured", sa.Integer(), nullable=False),
        sa.Column("refunded", sa.Integer(), nullable=False),
        sa.Column("voided", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "captured >= 0 AND voided >= 0 AND captured + voided <= amount",
            name=op.f("ck_test_gateway_charges_captured_within_amount"),
        ),
        sa.CheckConstraint(
            "refunded >= 0 AND refunded <= captured",
            name=op.f("ck_test_gateway_charges_refunded_within_captured"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_gateway_charges")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_test_gateway_charges_idempotency_key")
        ),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("location_ids", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_auth_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_auth_tokens")),
    )
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "cart_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("cart_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_cart_tokens_cart_id_carts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_cart_tokens")),
    )
    with op.batch_alter_table("cart_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cart_tokens_cart_id"), ["cart_id"], unique=False)

    op.create_table(
        "channel_price_books",
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("price_book_id", sa.String(length=40), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["price_book_id"],
            ["price_books.id"],
            name=op.f("fk_channel_price_books_price_book_id_price_books"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "price_book_id", name=op.f("pk_channel_price_books")),
    )
    with op.batch_alter_table("channel_price_books", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_channel_price_books_price_book_id"), ["price_book_id"], unique=False
        )

    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("promotion_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("expires_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "usage_limit IS NULL OR used <= usage_limit", name=op.f("ck_coupons_used_within_limit")
        ),
        sa.CheckConstraint("used >= 0", name=op.f("ck_coupons_used_not_negative")),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_coupons_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_promotion_id"), ["promotion_id"], unique=False)

    op.create_table(
        "cycle_counts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_cycle_counts_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_counts")),
    )
    op.create_table(
        "order_lines",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(length=20), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("variant_id", sa.String(length=40), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("subtotal", sa.Integer(), nullable=False),
        sa.Column("discount", sa.Integer(), nullable=False),
        sa.Column("tax", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("allocations", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_lines_order_id"), ["order_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("captured", sa.Integer(), nullable=False),
        sa.Column("refunded", sa.Integer(), nullable=False),
        sa.Column("voided", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "captured >= 0 AND voided >= 0 AND captured + voided <= amount",
            name=op.f("ck_payments_captured_within_amount"),
        ),
        sa.CheckConstraint(
            "refunded >= 0 AND refunded <= captured",
            name=op.f("ck_payments_refunded_within_captured"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_payments_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_order_id"), ["order_id"], unique=False)

    op.create_table(
        "pos_sales",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("register_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("sold_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["register_id"],
            ["pos_registers.id"],
            name=op.f("fk_pos_sales_register_id_pos_registers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_sales")),
        sa.UniqueConstraint(
            "register_id", "client_id", name=op.f("uq_pos_sales_register_id_client_id")
        ),
    )
    with op.batch_alter_table("pos_sales", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pos_sales_register_sequence", ["register_id", "sequence"], unique=False
        )

    op.create_table(
        "prices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("price_book_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("customer_group", sa.String(length=64), nullable=True),
        sa.Column("min_quantity", sa.Integer(), nullable=False),
        sa.Column("starts_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_prices_amount_not_negative")),
        sa.CheckConstraint("min_quantity >= 1", name=op.f("ck_prices_min_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["price_book_id"],
            ["price_books.id"],
            name=op.f("fk_prices_price_book_id_price_books"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
    )
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.create_index("ix_prices_book_sku", ["price_book_id", "sku"], unique=False)
        batch_op.create_index(batch_op.f("ix_prices_sku"), ["sku"], unique=False)

    op.create_table(
        "product_categories",
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("category_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_product_categories_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_categories_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "category_id", name=op.f("pk_product_categories")),
    )
    op.create_table(
        "product_publications",
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("published_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_product_publications_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_publications_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "product_id", name=op.f("pk_product_publications")),
    )
    with op.batch_alter_table("product_publications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_product_publications_product_id"), ["product_id"], unique=False
        )

    op.create_table(
        "promotion_channels",
        sa.Column("promotion_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_channels_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("promotion_id", "channel_id", name=op.f("pk_promotion_channels")),
    )
    with op.batch_alter_table("promotion_channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_promotion_channels_channel_id"), ["channel_id"], unique=False
        )

    op.create_table(
        "promotion_targets",
        sa.Column("promotion_id", sa.String(length=40), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_value", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_targets_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "promotion_id", "target_type", "target_value", name=op.f("pk_promotion_targets")
        ),
    )
    with op.batch_alter_table("promotion_targets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_promotion_targets_lookup", ["target_type", "target_value"], unique=False
        )

    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("expected_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_purchase_orders_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
    )
    op.create_table(
        "returns",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("refund_method", sa.String(length=20), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("exchanges", sa.JSON(), nullable=False),
        sa.Column("received_location_id", sa.String(length=40), nullable=True),
        sa.Column("received_lines", sa.JSON(), nullable=False),
        sa.Column("refund_total", sa.Integer(), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_returns_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
    )
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_returns_order_id"), ["order_id"], unique=False)

    op.create_table(
        "sourcing_packages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("decision_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("location_code", sa.String(length=64), nullable=False),
        sa.Column("location_type", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=False),
        sa.Column("lead_time_hours", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("shipping_cost", sa.Integer(), nullable=False),
        sa.Column("handling_cost", sa.Integer(), nullable=False),
        sa.Column("transfer_cost", sa.Integer(), nullable=False),
        sa.Column("capacity_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["sourcing_decisions.id"],
            name=op.f("fk_sourcing_packages_decision_id_sourcing_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sourcing_packages")),
    )
    with op.batch_alter_table("sourcing_packages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sourcing_packages_decision_id"), ["decision_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sourcing_packages_location_id"), ["location_id"], unique=False
        )

    op.create_table(
        "sourcing_rules",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=True),
        sa.Column("location_type", sa.String(length=20), nullable=True),
        sa.Column("capability", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_sourcing_rules_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sourcing_rules")),
    )
    with op.batch_alter_table("sourcing_rules", schema=None) as batch_op:
        batch_op.create_index("ix_sourcing_rules_channel", ["channel_id", "position"], unique=False)

    op.create_table(
        "stock_levels",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("variant_id", sa.String(length=40), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("allocated", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.Column("incoming", sa.Integer(), nullable=False),
        sa.Column("low_stock_threshold", sa.Integer(), nullable=True),
        sa.Column("updated_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("allocated >= 0", name=op.f("ck_stock_levels_allocated_not_negative")),
        sa.CheckConstraint("held >= 0", name=op.f("ck_stock_levels_held_not_negative")),
        sa.CheckConstraint("incoming >= 0", name=op.f("ck_stock_levels_incoming_not_negative")),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_levels_on_hand_not_negative")),
        sa.CheckConstraint(
            "safety_stock >= 0", name=op.f("ck_stock_levels_safety_stock_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_stock_levels_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_levels")),
        sa.UniqueConstraint("sku", "location_id", name=op.f("uq_stock_levels_sku_location_id")),
    )
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        if op.get_bind().dialect.name == "sqlite":  # covering index for availability reads
            batch_op.create_index(
                "ix_stock_levels_atp",
                ["sku", "location_id", "on_hand", "allocated", "held", "safety_stock"],
                unique=False,
            )
        batch_op.create_index("ix_stock_levels_location", ["location_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_stock_levels_variant_id"), ["variant_id"], unique=False
        )

    op.create_table(
        "stored_value_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["stored_value_accounts.id"],
            name=op.f("fk_stored_value_entries_account_id_stored_value_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_value_entries")),
    )
    with op.batch_alter_table("stored_value_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stored_value_entries_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("from_location_id", sa.String(length=40), nullable=False),
        sa.Column("to_location_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_location_id"],
            ["locations.id"],
            name=op.f("fk_transfers_from_location_id_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["to_location_id"], ["locations.id"], name=op.f("fk_transfers_to_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    op.create_table(
        "variants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("barcode", sa.String(length=14), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("option_values", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("weight_grams", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_variants_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variants")),
        sa.UniqueConstraint("barcode", name=op.f("uq_variants_barcode")),
        sa.UniqueConstraint("sku", name=op.f("uq_variants_sku")),
    )
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_variants_product_position", ["product_id", "position"], unique=False
        )

    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("coupon_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("order_ref", sa.String(length=120), nullable=False),
        sa.Column("redeemed_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_coupon_redemptions_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_redemptions")),
        sa.UniqueConstraint(
            "coupon_id", "order_ref", name=op.f("uq_coupon_redemptions_coupon_id_order_ref")
        ),
    )
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coupon_redemptions_customer", ["coupon_id", "customer_id"], unique=False
        )

    op.create_table(
        "cycle_count_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("cycle_count_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_count_id"],
            ["cycle_counts.id"],
            name=op.f("fk_cycle_count_lines_cycle_count_id_cycle_counts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_count_lines")),
    )
    with op.batch_alter_table("cycle_count_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cycle_count_lines_cycle_count_id"), ["cycle_count_id"], unique=False
        )

    op.create_table(
        "purchase_order_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("purchase_order_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity_ordered", sa.Integer(), nullable=False),
        sa.Column("quantity_received", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["purchase_order_id"],
            ["purchase_orders.id"],
            name=op.f("fk_purchase_order_lines_purchase_order_id_purchase_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_order_lines")),
    )
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_purchase_order_lines_purchase_order_id"),
            ["purchase_order_id"],
            unique=False,
        )

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("return_id", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=20), nullable=False),
        sa.Column("destination_reference", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_refunds_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False)

    op.create_table(
        "reservation_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("reservation_id", sa.String(length=40), nullable=False),
        sa.Column("stock_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservation_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_reservation_lines_reservation_id_reservations"),
        ),
        sa.ForeignKeyConstraint(
            ["stock_id"],
            ["stock_levels.id"],
            name=op.f("fk_reservation_lines_stock_id_stock_levels"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_lines")),
    )
    with op.batch_alter_table("reservation_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reservation_lines_held_expiry",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'held'"),
            sqlite_where=sa.text("status = 'held'"),
        )
        batch_op.create_index(
            "ix_reservation_lines_held_stock",
            ["stock_id", "expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'held'"),
            sqlite_where=sa.text("status = 'held'"),
        )
        batch_op.create_index(
            batch_op.f("ix_reservation_lines_reservation_id"), ["reservation_id"], unique=False
        )

    op.create_table(
        "sourcing_package_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "package_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_id", sa.String(length=120), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "quantity > 0", name=op.f("ck_sourcing_package_lines_quantity_positive")
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["sourcing_packages.id"],
            name=op.f("fk_sourcing_package_lines_package_id_sourcing_packages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sourcing_package_lines")),
    )
    with op.batch_alter_table("sourcing_package_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sourcing_package_lines_package_id"), ["package_id"], unique=False
        )

    op.create_table(
        "stock_ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("stock_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("allocated_delta", sa.Integer(), nullable=False),
        sa.Column("held_delta", sa.Integer(), nullable=False),
        sa.Column("safety_delta", sa.Integer(), nullable=False),
        sa.Column("incoming_delta", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", omniretail.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["stock_id"], ["stock_levels.id"], name=op.f("fk_stock_ledger_stock_id_stock_levels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_ledger")),
    )
    with op.batch_alter_table("stock_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_stock_ledger_stock", ["stock_id", "id"], unique=False)

    op.create_table(
        "transfer_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("transfer_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity_shipped", sa.Integer(), nullable=False),
        sa.Column("quantity_received", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_transfer_lines_transfer_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_lines")),
    )
    with op.batch_alter_table("transfer_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transfer_lines_transfer_id"), ["transfer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("transfer_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_lines_transfer_id"))

    op.drop_table("transfer_lines")
    with op.batch_alter_table("stock_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_ledger_stock")

    op.drop_table("stock_ledger")
    with op.batch_alter_table("sourcing_package_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sourcing_package_lines_package_id"))

    op.drop_table("sourcing_package_lines")
    with op.batch_alter_table("reservation_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservation_lines_reservation_id"))
        batch_op.drop_index(
            "ix_reservation_lines_held_stock",
            postgresql_where=sa.text("status = 'held'"),
            sqlite_where=sa.text("status = 'held'"),
        )
        batch_op.drop_index(
            "ix_reservation_lines_held_expiry",
            postgresql_where=sa.text("status = 'held'"),
            sqlite_where=sa.text("status = 'held'"),
        )

    op.drop_table("reservation_lines")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_order_lines_purchase_order_id"))

    op.drop_table("purchase_order_lines")
    with op.batch_alter_table("cycle_count_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cycle_count_lines_cycle_count_id"))

    op.drop_table("cycle_count_lines")
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_redemptions_customer")

    op.drop_table("coupon_redemptions")
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.drop_index("ix_variants_product_position")

    op.drop_table("variants")
    op.drop_table("transfers")
    with op.batch_alter_table("stored_value_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_value_entries_account_id"))

    op.drop_table("stored_value_entries")
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_levels_variant_id"))
        batch_op.drop_index("ix_stock_levels_location")
        if op.get_bind().dialect.name == "sqlite":
            batch_op.drop_index("ix_stock_levels_atp")

    op.drop_table("stock_levels")
    with op.batch_alter_table("sourcing_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_sourcing_rules_channel")

    op.drop_table("sourcing_rules")
    with op.batch_alter_table("sourcing_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sourcing_packages_location_id"))
        batch_op.drop_index(batch_op.f("ix_sourcing_packages_decision_id"))

    op.drop_table("sourcing_packages")
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_returns_order_id"))

    op.drop_table("returns")
    op.drop_table("purchase_orders")
    with op.batch_alter_table("promotion_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_targets_lookup")

    op.drop_table("promotion_targets")
    with op.batch_alter_table("promotion_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_channels_channel_id"))

    op.drop_table("promotion_channels")
    with op.batch_alter_table("product_publications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_publications_product_id"))

    op.drop_table("product_publications")
    op.drop_table("product_categories")
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prices_sku"))
        batch_op.drop_index("ix_prices_book_sku")

    op.drop_table("prices")
    with op.batch_alter_table("pos_sales", schema=None) as batch_op:
        batch_op.drop_index("ix_pos_sales_register_sequence")

    op.drop_table("pos_sales")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_order_id"))

    op.drop_table("payments")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_order_id"))

    op.drop_table("order_lines")
    op.drop_table("cycle_counts")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_promotion_id"))

    op.drop_table("coupons")
    with op.batch_alter_table("channel_price_books", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channel_price_books_price_book_id"))

    op.drop_table("channel_price_books")
    with op.batch_alter_table("cart_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cart_tokens_cart_id"))

    op.drop_table("cart_tokens")
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_tokens_user_id"))

    op.drop_table("auth_tokens")
    op.drop_table("users")
    op.drop_table("test_gateway_charges")
    op.drop_table("tax_rates")
    with op.batch_alter_table("stored_value_accounts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_stored_value_customer_credit",
            sqlite_where=sa.text("kind = 'store_credit'"),
            postgresql_where=sa.text("kind = 'store_credit'"),
        )

    op.drop_table("stored_value_accounts")
    op.drop_table("sourcing_strategies")
    with op.batch_alter_table("sourcing_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_sourcing_decisions_state")
        batch_op.drop_index("ix_sourcing_decisions_reference")

    op.drop_table("sourcing_decisions")
    op.drop_table("sourcing_capacity_usage")
    op.drop_table("shipping_rates")
    op.drop_table("return_policies")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_reference")

    op.drop_table("reservations")
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.drop_index("ix_promotions_active_window")

    op.drop_table("promotions")
    op.drop_table("products")
    op.drop_table("price_books")
    with op.batch_alter_table("pos_registers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pos_registers_location_id"))

    op.drop_table("pos_registers")
    with op.batch_alter_table("pos_discrepancies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pos_discrepancies_status"))
        batch_op.drop_index(batch_op.f("ix_pos_discrepancies_location_id"))

    op.drop_table("pos_discrepancies")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_outbox_events_topic"))
        batch_op.drop_index(batch_op.f("ix_outbox_events_aggregate_id"))

    op.drop_table("outbox_events")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index("ix_orders_ip_placed")
        batch_op.drop_index("ix_orders_customer_placed")
        batch_op.drop_index(batch_op.f("ix_orders_channel_id"))
        batch_op.drop_index("ix_orders_card_placed")

    op.drop_table("orders")
    op.drop_table("locations")
    op.drop_table("location_fulfillment_calendars")
    op.drop_table("idempotency_keys")
    op.drop_table("fulfillment_settings")
    with op.batch_alter_table("customer_tracking_rejects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_tracking_rejects_source_id"))

    op.drop_table("customer_tracking_rejects")
    op.drop_table("customer_sources")
    with op.batch_alter_table("customer_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_profiles_root_id"))

    op.drop_table("customer_profiles")
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_merges_survivor_id"))
        batch_op.drop_index(batch_op.f("ix_customer_merges_absorbed_id"))

    op.drop_table("customer_merges")
    with op.batch_alter_table("customer_identity_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_identity_links_b_hash"))

    op.drop_table("customer_identity_links")
    with op.batch_alter_table("customer_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_identifiers_profile_id"))

    op.drop_table("customer_identifiers")
    with op.batch_alter_table("customer_events", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_events_profile_time")

    op.drop_table("customer_events")
    with op.batch_alter_table("customer_erasures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_erasures_customer_id"))

    op.drop_table("customer_erasures")
    op.drop_table("customer_data_keys")
    op.drop_table("customer_consents")
    with op.batch_alter_table("customer_consent_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_consent_changes_profile_id"))

    op.drop_table("customer_consent_changes")
    with op.batch_alter_table("customer_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_addresses_profile_id"))

    op.drop_table("customer_addresses")
    op.drop_table("channels")
    op.drop_table("channel_inventory_settings")
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_categories_parent_id"))

    op.drop_table("categories")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_carts_active_customer",
            sqlite_where=sa.text("status = 'active' AND customer_id IS NOT NULL"),
            postgresql_where=sa.text("status = 'active' AND customer_id IS NOT NULL"),
        )

    op.drop_table("carts")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_prefix"))

    op.drop_table("api_keys")
    with op.batch_alter_table("analytics_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_sessions_started")

    op.drop_table("analytics_sessions")
    op.drop_table("analytics_sales_lines")
    with op.batch_alter_table("analytics_replenishment_suggestions", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_replenishment_status")

    op.drop_table("analytics_replenishment_suggestions")
    op.drop_table("analytics_products")
    with op.batch_alter_table("analytics_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_orders_occurred")
        batch_op.drop_index("ix_analytics_orders_customer")

    op.drop_table("analytics_orders")
    op.drop_table("analytics_import_runs")
    op.drop_table("analytics_forecast_values")
    op.drop_table("analytics_forecast_series")
    op.drop_table("analytics_forecast_runs")
    op.drop_table("analytics_customers")
