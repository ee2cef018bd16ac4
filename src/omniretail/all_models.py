"""Imports every context's tables so ``Base.metadata`` is complete (Alembic, tests)."""

from omniretail.analytics import models as analytics_models
from omniretail.catalog import models as catalog_models
from omniretail.core import models as core_models
from omniretail.core.db import Base
from omniretail.customer import models as customer_models
from omniretail.fulfillment import models as fulfillment_models
from omniretail.inventory import models as inventory_models
from omniretail.order import models as order_models
from omniretail.pricing import models as pricing_models

metadata = Base.metadata

__all__ = [
    "analytics_models",
    "catalog_models",
    "core_models",
    "customer_models",
    "fulfillment_models",
    "inventory_models",
    "metadata",
    "order_models",
    "pricing_models",
]
