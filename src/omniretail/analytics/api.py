"""HTTP routes of the analytics context (role ``analyst``; ``admin`` passes every check)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from omniretail.analytics import charts, service, subscribers
from omniretail.analytics.schemas import (
    AcceptRequest,
    ChannelMixOut,
    ClvOut,
    CohortOut,
    ForecastRequest,
    ForecastRunOut,
    KpiOut,
    ReplenishmentOut,
    ReplenishmentRequest,
    RfmCustomerOut,
    RfmOut,
    SeriesForecastOut,
    SuggestionOut,
)
from omniretail.core.auth import Principal, Role
from omniretail.core.errors import invalid
from omniretail.core.web import (
    ERROR_RESPONSES,
    Idempotent,
    SessionDep,
    TransactionalRoute,
    require,
)

router = APIRouter(
    prefix="/api/v1", route_class=TransactionalRoute, responses=ERROR_RESPONSES, tags=["analytics"]
)
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
subscribers.register()

Start = Annotated[date | None, Query(description="First day (UTC), default: first fact")]
End = Annotated[date | None, Query(description="Day after the last (exclusive)")]
Channel = Annotated[str | None, Query(description="Only this channel code")]


@router.get(
    "/analytics/kpis",
    summary="Revenue, orders, AOV, units per order, conversion, repeat rate, churn, returns",
)
def get_kpis(
    session: SessionDep,
    _: Analyst,
    start: Start = None,
    end: End = None,
    channel: Channel = None,
    segment: Annotated[
        str | None, Query(description="guest, registered or an RFM segment (e.g. champions)")
    ] = None,
    country: Annotated[str | None, Query(description="Customers of this country")] = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
) -> KpiOut:
    report = service.kpis(
        session,
        start=start,
        end=end,
        channel=channel,
        segment=segment,
        country=country,
        currency=currency,
    )
    return KpiOut.model_validate(report)


@router.get("/analytics/cohorts", summary="Monthly cohort retention triangle")
def get_cohorts(
    session: SessionDep,
    _: Analyst,
    start: Start = None,
    end: End = None,
    channel: Channel = None,
    segment: str | None = None,
    country: str | None = None,
) -> CohortOut:
    report = service.cohorts(
        session, start=start, end=end, channel=channel, segment=segment, country=country
    )
    return CohortOut.model_validate(report)


@router.get(
    "/analytics/channel-mix",
    summary="Customers on 1, 2, 3+ channels: AOV, frequency, retention",
)
def get_channel_mix(
    session: SessionDep,
    _: Analyst,
    start: Start = None,
    end: End = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
) -> ChannelMixOut:
    return ChannelMixOut.model_validate(
        service.channel_mix(session, start=start, end=end, currency=currency)
    )


@router.get("/analytics/rfm", summary="RFM scores, cells and named segments")
def get_rfm(
    session: SessionDep,
    _: Analyst,
    start: Start = None,
    end: End = None,
    channel: Channel = None,
    segment: Annotated[str | None, Query(description="Only customers of this segment")] = None,
    limit: Annotated[int, Query(ge=0, le=5000)] = 100,
) -> RfmOut:
    report = service.rfm(session, start=start, end=end, channel=channel)
    table = report.table
    if segment:
        table = table[table["segment"] == segment]
    table = table.sort_values(["monetary_minor", "customer_key"], ascending=[False, True])
    items = [
        RfmCustomerOut.model_validate(row) for row in table.head(limit).to_dict(orient="records")
    ]
    return RfmOut(
        start=report.start,
        end=report.end,
        channel=report.channel,
        customers=report.customers,
        segments=report.segments,
        cells=report.cells,
        items=items,
    )


@router.get(
    "/analytics/clv",
    summary="BG/NBD × Gamma-Gamma customer lifetime value, with an optional holdout check",
)
def get_clv(
    session: SessionDep,
    _: Analyst,
    start: Start = None,
    calibration_end: Annotated[
        date | None, Query(description="End of the fitting period (exclusive)")
    ] = None,
    holdout_end: Annotated[
        date | None, Query(description="Compare predictions with actual purchases up to here")
    ] = None,
    horizon_months: Annotated[int, Query(ge=1, le=120)] = 12,
    monthly_discount: Annotated[float, Query(ge=0, lt=1)] = 0.01,
    channel: Channel = None,
    top: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> ClvOut:
    report = service.customer_lifetime_value(
        session,
        start=start,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        horizon_months=horizon_months,
        monthly_discount=monthly_discount,
        channel=channel,
        top=top,
    )
    return ClvOut.model_validate(report)


@router.post(
    "/analytics/forecasts",
    status_code=201,
    summary="Backtest and forecast demand per SKU × channel or location; store the run",
    dependencies=[Idempotent],
)
def create_forecast(body: ForecastRequest, session: SessionDep, _: Analyst) -> ForecastRunOut:
    run = service.run_forecast(
        session,
        by=body.by,
        freq=body.freq,
        horizon=body.horizon,
        windows=body.windows,
        top=body.top,
        skus=body.skus,
        min_nonzero=body.min_nonzero,
        max_series=service.MAX_API_SERIES,
    )
    return ForecastRunOut.model_validate(run)


@router.get("/analytics/forecasts/latest", summary="The latest forecast run")
def get_latest_forecast(
    session: SessionDep,
    _: Analyst,
    by: Annotated[str | None, Query(description="channel or location")] = None,
) -> ForecastRunOut:
    return ForecastRunOut.model_validate(service.latest_run(session, by))


@router.get("/analytics/forecasts/{run_id}", summary="A forecast run and its metrics")
def get_forecast(run_id: str, session: SessionDep, _: Analyst) -> ForecastRunOut:
    return ForecastRunOut.model_validate(service.get_run(session, run_id))


@router.get(
    "/analytics/forecasts/{run_id}/series",
    summary="Series of a run: class, model, MASE, σ and the forecast values",
)
def get_forecast_series(
    run_id: str,
    session: SessionDep,
    _: Analyst,
    sku: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SeriesForecastOut]:
    return [
        SeriesForecastOut.model_validate(s)
        for s in service.run_series(session, run_id, sku=sku, limit=limit)
    ]


@router.post(
    "/analytics/replenishment/suggestions",
    status_code=201,
    summary="Compute transfer and purchase suggestions from a location forecast and stock",
)
def create_suggestions(
    body: ReplenishmentRequest, session: SessionDep, _: Analyst
) -> ReplenishmentOut:
    result = service.suggest_replenishment(
        session,
        run_id=body.run_id,
        service_level=body.service_level,
        lead_time=body.lead_time,
        review_period=body.review_period,
        pack_size=body.pack_size,
        min_transfer=body.min_transfer,
        skus=body.skus,
    )
    return ReplenishmentOut.model_validate(result)


@router.get("/analytics/replenishment/suggestions", summary="Replenishment suggestions")
def get_suggestions(
    session: SessionDep,
    _: Analyst,
    status: Annotated[
        str | None, Query(description="open, accepted, dismissed, superseded")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SuggestionOut]:
    return [
        SuggestionOut.model_validate(s)
        for s in service.list_suggestions(session, status=status, limit=limit)
    ]


@router.post(
    "/analytics/replenishment/suggestions/{suggestion_id}/accept",
    summary="Turn a suggestion into an inventory transfer or purchase order",
    dependencies=[Idempotent],
)
def accept(
    suggestion_id: str, body: AcceptRequest, session: SessionDep, _: Analyst
) -> SuggestionOut:
    view = service.accept_suggestion(
        session, suggestion_id, supplier=body.supplier, quantity=body.quantity
    )
    return SuggestionOut.model_validate(view)


@router.post(
    "/analytics/replenishment/suggestions/{suggestion_id}/dismiss",
    summary="Dismiss a suggestion",
)
def dismiss(suggestion_id: str, session: SessionDep, _: Analyst) -> SuggestionOut:
    return SuggestionOut.model_validate(service.dismiss_suggestion(session, suggestion_id))


@router.get(
    "/analytics/charts/{name}.{fmt}",
    summary="A chart as PNG or SVG: cohort-retention, channel-mix, forecast, rfm-segments, "
    "clv-holdout",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def get_chart(
    name: str,
    fmt: str,
    session: SessionDep,
    _: Analyst,
    start: Start = None,
    end: End = None,
    channel: Channel = None,
    sku: Annotated[
        str | None, Query(description="forecast: the SKU (default: best seller)")
    ] = None,
    by: Annotated[str, Query(description="forecast: channel or location")] = "channel",
    node: Annotated[str | None, Query(description="forecast: the channel/location")] = None,
    calibration_end: Annotated[date | None, Query(description="clv-holdout")] = None,
) -> Response:
    if fmt not in charts.FORMATS:
        raise invalid("invalid_format", "format must be png or svg", allowed=list(charts.FORMATS))
    body = service.render_chart(
        session,
        name,
        fmt,
        start=start,
        end=end,
        channel=channel,
        sku=sku,
        by=by,
        node=node,
        calibration_end=calibration_end,
    )
    return Response(
        content=body,
        media_type=charts.MEDIA_TYPES[fmt],
        headers={"Cache-Control": "private, max-age=60"},
    )
