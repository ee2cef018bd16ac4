"""The price-consistency audit: unintended differences between channels of one currency are
problems; differences from an intended-override price book are reported as intended."""

import json

from typer.testing import CliRunner

from omniretail.cli import app as cli
from omniretail.pricing import service
from tests.pricing.helpers import make_book, make_channel, make_product, set_price


def given_three_eur_channels(session):
    """web, app and outlet (EUR) and uk (GBP). A shared 'base' book backs the EUR channels
    with TEE-M 1000, MUG 500 and CAP 800. 'app-eur' (a channel book, not flagged) charges
    1100 for TEE-M; 'outlet-eur' (flagged intended_override) charges 700 for MUG."""
    for code in ("web", "app", "outlet"):
        make_channel(session, code)
    make_channel(session, "uk", currency="GBP")
    for sku in ("TEE-M", "MUG", "CAP"):
        make_product(session, sku)
    base = make_book(session, "base")
    for code in ("web", "app", "outlet"):
        service.assign_price_book(session, base, code, 0)
    for sku, amount in (("TEE-M", 1000), ("MUG", 500), ("CAP", 800)):
        set_price(session, base, sku, amount)
    app_book = make_book(session, "app-eur", kind="channel")
    service.assign_price_book(session, app_book, "app", 0)
    set_price(session, app_book, "TEE-M", 1100)
    outlet_book = make_book(session, "outlet-eur", kind="channel", intended_override=True)
    service.assign_price_book(session, outlet_book, "outlet", 0)
    set_price(session, outlet_book, "MUG", 700)


def summary(report):
    return [(f.sku, f.aspect, f.status) for f in report.findings]


def test_audit_finds_the_unintended_difference_and_marks_the_intended_one(session):
    given_three_eur_channels(session)
    report = service.audit_consistency(session)
    assert summary(report) == [("MUG", "price", "intended"), ("TEE-M", "price", "unintended")]
    tee = report.findings[1]
    assert [(o.channel_code, o.amount, o.price_book) for o in tee.offers] == [
        ("app", 1100, "app-eur"),
        ("outlet", 1000, "base"),
        ("web", 1000, "base"),
    ]
    assert (report.skus_compared, report.groups) == (3, {"EUR": ["app", "outlet", "web"]})


def test_channels_of_another_currency_are_not_compared(session):
    given_three_eur_channels(session)
    gbp = make_book(session, "base-gbp", currency="GBP")
    service.assign_price_book(session, gbp, "uk", 0)
    set_price(session, gbp, "TEE-M", 900)
    report = service.audit_consistency(session)
    assert "GBP" not in report.groups
    assert summary(report) == [("MUG", "price", "intended"), ("TEE-M", "price", "unintended")]


def test_a_promotion_on_one_channel_only_is_a_difference(session):
    given_three_eur_channels(session)
    web = service.catalog.get_channel(session, "web").id
    promo = service.create_promotion(
        session,
        service.PromotionSpec(
            name="Caps", kind="percent_off", percent="10", skus=["CAP"], channels=[web]
        ),
    )
    report = service.audit_consistency(session)
    assert ("CAP", "promotions", "unintended") in summary(report)
    cap = next(f for f in report.findings if f.sku == "CAP")
    assert [(o.channel_code, o.promotion_ids) for o in cap.offers] == [
        ("app", ()),
        ("outlet", ()),
        ("web", (promo.id,)),
    ]


def test_consistency_endpoint_filters_by_status(client, make_key, session):
    given_three_eur_channels(session)
    session.commit()
    response = client.get(
        "/api/v1/pricing/consistency", params={"status": "unintended"}, headers=make_key("analyst")
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["unintended"], body["intended"], body["skus_compared"]) == (1, 1, 3)
    assert [(f["sku"], f["status"]) for f in body["findings"]] == [("TEE-M", "unintended")]


def test_consistency_endpoint_is_closed_to_channel_keys(client, make_key, session):
    given_three_eur_channels(session)
    web = service.catalog.get_channel(session, "web").id
    session.commit()
    response = client.get(
        "/api/v1/pricing/consistency", headers=make_key("channel", channel_id=web)
    )
    assert response.status_code == 403


def test_cli_audit_prints_json_and_fails_on_problems(session):
    given_three_eur_channels(session)
    session.commit()
    result = CliRunner().invoke(cli, ["pricing", "audit", "--json", "--fail-on-problems"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert [(f["sku"], f["status"]) for f in body["findings"]] == [
        ("MUG", "intended"),
        ("TEE-M", "unintended"),
    ]


def test_cli_audit_prints_a_table(session):
    given_three_eur_channels(session)
    session.commit()
    result = CliRunner().invoke(cli, ["pricing", "audit", "--no-intended"])
    assert result.exit_code == 0
    assert "1 unintended" in result.stdout
    assert "TEE-M" in result.stdout and "MUG" not in result.stdout


def test_cli_resolve_prints_the_winner(session):
    given_three_eur_channels(session)
    session.commit()
    result = CliRunner().invoke(
        cli, ["pricing", "resolve", "--sku", "TEE-M", "--channel", "app", "--json"]
    )
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert (body["amount"], body["price_book"], body["rule"]) == (1100, "app-eur", "public")
    assert [e["status"] for e in body["explanation"]] == ["won", "lost"]


def test_cli_resolve_unknown_channel_fails_with_the_error_code(session):
    result = CliRunner().invoke(
        cli, ["pricing", "resolve", "--sku", "TEE-M", "--channel", "nope", "--json"]
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "channel_not_found"


def test_every_pricing_command_has_help():
    for command in (["pricing"], ["pricing", "audit"], ["pricing", "resolve"]):
        result = CliRunner().invoke(cli, [*command, "--help"])
        assert result.exit_code == 0
        assert "Usage" in result.stdout
