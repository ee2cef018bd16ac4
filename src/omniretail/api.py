"""The FastAPI application: mounts each context's router, the error handlers and middleware."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from ulid import ULID

from omniretail import __version__
from omniretail.analytics.api import router as analytics_router
from omniretail.catalog.api import router as catalog_router
from omniretail.console.api import router as console_router
from omniretail.console.api import static_files
from omniretail.core.config import get_settings
from omniretail.core.db import Database
from omniretail.core.logs import configure_logging, request_id_var
from omniretail.core.system_api import router as system_router
from omniretail.core.web import install_error_handlers
from omniretail.customer.api import router as customer_router
from omniretail.customer.tracking_api import router as tracking_router
from omniretail.fulfillment.api import router as fulfillment_router
from omniretail.inventory.api import router as inventory_router
from omniretail.order.api import router as order_router
from omniretail.pricing.api import router as pricing_router

log = logging.getLogger("omniretail.http")

DESCRIPTION = """
One headless retail platform behind every channel: catalog, prices and promotions, inventory,
orders, customers. REST under `/api/v1`.

* **Auth**: `Authorization: Bearer <token>` with a console token (`POST /api/v1/auth/token`),
  a secret API key (`ok_...`) or a publishable channel key (`pk_...`, storefront endpoints only).
* **Errors**: every failure is `{"error": {"code", "message", "details"}}` with a 4xx/5xx status.
* **Pagination**: list endpoints take `cursor` and `limit` and return `next_cursor`.
* **Idempotency**: POSTs that create things or move money or stock accept `Idempotency-Key`.
"""

TAGS = [
    {"name": "system", "description": "Health and readiness"},
    {"name": "auth", "description": "Tokens, API keys and users"},
    {"name": "catalog", "description": "Products, variants, categories"},
    {"name": "channels", "description": "Sales channels and product publication"},
    {"name": "pricing", "description": "Price books, prices and price resolution"},
    {"name": "promotions", "description": "Promotions, coupons and cart evaluation"},
    {"name": "inventory", "description": "Locations, stock, reservations, availability"},
    {"name": "customers", "description": "Customer 360, identity graph, consent, GDPR"},
    {"name": "tracking", "description": "Segment-compatible tracking API (/v1/batch, ...)"},
    {"name": "orders", "description": "Carts, checkout, orders, payments, returns"},
    {"name": "pos", "description": "Store registers, offline sales and sync"},
    {"name": "fulfillment", "description": "Order sourcing, delivery promise, store tasks"},
    {"name": "analytics", "description": "KPIs, cohorts, RFM, CLV, forecasts, replenishment"},
]


class RequestContext:
    """Pure ASGI middleware: the request id (``X-Request-ID`` in, or a new ULID; echoed on the
    response and in every log line of the request) and one access log line with the duration.
    Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task and body stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id") or str(ULID())
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 2)},
            )
            request_id_var.reset(token)


def create_app(database: Database | None = None) -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_json, settings.log_level)
    app = FastAPI(
        title="omniretail",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    app.state.database = database
    install_error_handlers(app)

    app.add_middleware(RequestContext)

    app.include_router(system_router)
    app.include_router(console_router)
    app.mount("/console/static", static_files, name="console-static")
    for router in (
        catalog_router,
        pricing_router,
        inventory_router,
        customer_router,
        order_router,
        fulfillment_router,
        analytics_router,
    ):
        app.include_router(router)
    app.include_router(tracking_router)
    return app
