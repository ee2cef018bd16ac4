"""Background jobs on huey: SQLite storage on the embedded default, Redis when configured.

``omni worker`` runs the consumer. Jobs: outbox dispatch (every minute as a safety net and on
demand via ``dispatch_outbox()``, which the API server queues after each commit that emitted
events when ``OMNI_DISPATCH_ON_COMMIT`` is on), plus each context's periodic maintenance (inventory:
cleanup of expired reservation holds every minute).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey
from sqlalchemy.orm import Session

from omniretail.analytics import subscribers as analytics_subscribers
from omniretail.core import events
from omniretail.core.config import get_settings
from omniretail.core.db import get_database
from omniretail.core.events import NatsPublisher, dispatch_pending
from omniretail.core.logs import configure_logging
from omniretail.customer import subscribers as customer_subscribers
from omniretail.fulfillment import subscribers as fulfillment_subscribers
from omniretail.order import subscribers as order_subscribers

log = logging.getLogger("omniretail.jobs")


def _make_huey() -> Huey:
    settings = get_settings()
    if settings.redis_url:
        return RedisHuey("omniretail", url=settings.redis_url)
    return SqliteHuey("omniretail", filename=settings.jobs_sqlite_path)


huey = _make_huey()


def _publisher() -> NatsPublisher | None:
    settings = get_settings()
    return NatsPublisher(settings.nats_url, settings.nats_stream) if settings.nats_url else None


def register_subscribers() -> None:
    """Every context's outbox subscribers (the API registers them when its routers load)."""
    for module in (
        customer_subscribers,
        order_subscribers,
        fulfillment_subscribers,
        analytics_subscribers,
    ):
        module.register()


def run_dispatch() -> int:
    register_subscribers()
    total = 0
    publisher = _publisher()
    while True:
        with get_database().unit_of_work() as session:
            count = dispatch_pending(session, publisher=publisher)
        total += count
        if count == 0:
            return total


@huey.task()
def dispatch_outbox() -> int:
    return run_dispatch()


def dispatch_soon() -> None:
    """Queue one outbox dispatch for the worker (called after a commit that emitted events)."""
    dispatch_outbox()


def enable_dispatch_on_commit() -> None:
    """From now on every commit that emitted events queues a dispatch (the API server with
    ``OMNI_DISPATCH_ON_COMMIT``): subscribers see events within moments, not at the minute."""
    events.after_commit_with_events(dispatch_soon)


@huey.periodic_task(crontab(minute="*"))
def dispatch_outbox_periodic() -> int:
    return run_dispatch()


def _in_batches(step: Callable[[Session, int], int], batch: int) -> int:
    """Run ``step(session, batch)`` in one transaction each until a batch comes back short."""
    total = 0
    while True:
        with get_database().unit_of_work() as session:
            count = step(session, batch)
        total += count
        if count < batch:
            return total


def run_expire_reservations(batch: int = 1000) -> int:
    """Clean up expired reservation holds in batches (one transaction each)."""
    from omniretail.inventory.service import expire_reservations

    return _in_batches(lambda s, n: expire_reservations(s, limit=n), batch)


@huey.periodic_task(crontab(minute="*"))
def expire_reservations_periodic() -> int:
    """Expired holds stop counting at their deadline; this only tidies the rows up."""
    return run_expire_reservations()


def run_sweep_carts(older_than_days: int = 30, batch: int = 500) -> int:
    """Delete abandoned guest carts in batches (one transaction each)."""
    from omniretail.order.service import sweep_abandoned_carts

    return _in_batches(
        lambda s, n: sweep_abandoned_carts(s, older_than_days=older_than_days, limit=n), batch
    )


@huey.periodic_task(crontab(minute="17", hour="3"))
def sweep_carts_periodic() -> int:
    return run_sweep_carts()


def run_fulfillment_timers() -> dict[str, int]:
    """Late picks, pickup reminders and uncollected orders (one transaction)."""
    from omniretail.fulfillment.tasks import check_timers

    with get_database().unit_of_work() as session:
        report = check_timers(session)
    return {
        "overdue": len(report.overdue),
        "reminded": len(report.reminded),
        "expired": len(report.expired),
    }


@huey.periodic_task(crontab(minute="*/5"))
def fulfillment_timers_periodic() -> dict[str, int]:
    return run_fulfillment_timers()


def run_worker(workers: int = 2) -> None:
    from huey.consumer import Consumer

    settings = get_settings()
    configure_logging(settings.log_json, settings.log_level)
    register_subscribers()
    log.info("worker starting (%s)", type(huey).__name__)
    Consumer(huey, workers=workers, worker_type="thread", periodic=True).run()
