"""Cohort triangle, channel mix and RFM on the hand-made quarter (values worked by hand)."""

from datetime import date

import pytest

from omniretail.analytics import service
from tests.analytics.factories import (
    MULTICHANNEL_HEADER,
    Q1,
    csv_text,
    handmade,
    multichannel_rows,
)


@pytest.fixture()
def shop(session):
    handmade(session)
    session.commit()
    return session


def test_cohort_triangle_counts_customers_by_first_order_month(shop):
    # when A and B start in January (A orders again in February and March), C in February
    # (again in March), D in March; B's March order was cancelled and A's return is no order
    report = service.cohorts(shop, **Q1)
    # then
    assert [(r.cohort, r.customers, r.active) for r in report.rows] == [
        ("2024-01", 2, [2, 1, 1]),
        ("2024-02", 1, [1, 1]),
        ("2024-03", 1, [1]),
    ]


def test_cohort_retention_is_the_share_of_the_cohort(shop):
    # when
    report = service.cohorts(shop, **Q1)
    # then
    assert report.rows[0].retention == [1.0, 0.5, 0.5]


def test_cohorts_start_at_the_first_order_ever(shop):
    # when the window starts in February, A and B are not a February cohort
    report = service.cohorts(shop, start=date(2024, 2, 1), end=date(2024, 4, 1))
    # then
    assert [(r.cohort, r.active) for r in report.rows] == [("2024-02", [1, 1]), ("2024-03", [1])]


def test_channel_mix_groups_customers_by_channels_used(shop):
    # when A used web, app and store; B store; C web; D web
    report = service.channel_mix(shop, **Q1)
    # then 1 channel: B, C, D with 4 orders worth 3750 (AOV 937.5 → 938); 3+: A
    one, two, three = report.groups
    assert (one.customers, one.orders, one.revenue_minor, one.aov_minor, one.frequency) == (
        3,
        4,
        3750,
        938,
        1.3333,
    )
    assert (two.customers, two.aov_minor) == (0, None)
    assert (three.customers, three.orders, three.aov_minor, three.frequency) == (1, 3, 1333, 3.0)


def test_channel_mix_retention_needs_the_following_window_in_the_data(shop):
    # when the quarter's following quarter has no data yet
    report = service.channel_mix(shop, **Q1)
    # then
    assert report.retention_observed is False
    assert [g.retention_rate for g in report.groups] == [None, None, None]


def test_channel_mix_retention_is_the_share_ordering_in_the_following_window(shop):
    # when January's customers A (web) and B (store) are followed into February: only A returns
    report = service.channel_mix(shop, start=date(2024, 1, 1), end=date(2024, 2, 1))
    # then
    one = report.groups[0]
    assert (one.customers, one.retained, one.retention_rate) == (2, 1, 0.5)


def test_rfm_cells(shop):
    # when, as of 1 April: recency A 31 days, B 72, C 20, D 12; orders A 3, B 1, C 2, D 1;
    # revenue A 4000, B 500, C 2250, D 1000 — ranks become quintile scores 1 + ⌊5(r−1)/4⌋
    report = service.rfm(shop, **Q1)
    # then
    table = report.table.set_index("customer_key")
    assert table["recency_days"].to_dict() == {"A": 31, "B": 72, "C": 20, "D": 12}
    assert table["cell"].to_dict() == {"A": "244", "B": "111", "C": "333", "D": "412"}


def test_rfm_named_segments(shop):
    # when
    report = service.rfm(shop, **Q1)
    # then R/F: A 2/4 at risk, B 1/1 hibernating, C 3/3 needs attention, D 4/1 promising
    assert report.table.set_index("customer_key")["segment"].to_dict() == {
        "A": "at_risk",
        "B": "hibernating",
        "C": "need_attention",
        "D": "promising",
    }
    assert report.segments["at_risk"] == 1
    assert report.segments["champions"] == 0


def test_channel_mix_on_a_generated_multichannel_file(session):
    # given a seeded Online Retail file with a Channel column
    rows = multichannel_rows(invoices=1500)
    service.import_online_retail(session, csv_text(rows, header=MULTICHANNEL_HEADER))
    window = {"start": date(2010, 12, 1), "end": date(2011, 6, 1)}
    # when
    report = service.channel_mix(session, **window)
    # then every identified customer of the window is in exactly one group
    customers = {
        r[6] for r in rows if r[6] and "2010-12-01" <= r[4][:10] < "2011-06-01" and r[0][0] != "C"
    }
    assert sum(g.customers for g in report.groups) == len(customers)
    assert all(g.customers > 0 for g in report.groups)
    assert set(report.channels) == {"web", "app", "store"}
    assert report.retention_observed is True
