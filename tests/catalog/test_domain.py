"""Pure catalog rules: GTIN spellings, If-Match parsing, options, shared attributes."""

from omniretail.catalog.domain import (
    derive_options,
    gtin_forms,
    option_problem,
    parse_if_match,
    search_terms,
    split_shared_attributes,
    valid_gtin,
    valid_media_url,
)


def test_gtin_check_digit():
    assert valid_gtin("4006381333931") is True
    assert valid_gtin("4006381333932") is False
    assert valid_gtin("400638133393A") is False


def test_upc_a_has_ean_13_and_gtin_14_spellings():
    assert gtin_forms("036000291452") == ["036000291452", "0036000291452", "00036000291452"]


def test_ean_13_without_leading_zero_has_only_gtin_14_spelling():
    assert gtin_forms("4006381333931") == ["4006381333931", "04006381333931"]


def test_if_match_forms():
    assert parse_if_match(None) is None
    assert parse_if_match("*") is None
    assert parse_if_match('"3"') == {3}
    assert parse_if_match('W/"3", "4"') == {3, 4}
    assert parse_if_match('"abc"') == set()


def test_derive_options_keeps_declared_order_and_appends_new_values():
    base = [{"name": "Size", "values": ["S", "M"]}]
    values = [{"Size": "L", "Color": "Red"}, {"Size": "S", "Color": "Blue"}]
    assert derive_options(values, base) == [
        {"name": "Size", "values": ["S", "M", "L"]},
        {"name": "Color", "values": ["Red", "Blue"]},
    ]


def test_option_problem_names_undeclared_value():
    options = [{"name": "Size", "values": ["S"]}]
    assert option_problem(options, {"Size": "S"}) is None
    assert option_problem(options, {"Size": "XL"}) == "'XL' is not a value of option 'Size' ['S']"


def test_shared_attributes_move_to_the_product():
    shared, rest = split_shared_attributes(
        [{"material": "cotton", "color": "red"}, {"material": "cotton", "color": "blue"}]
    )
    assert shared == {"material": "cotton"}
    assert rest == [{"color": "red"}, {"color": "blue"}]


def test_search_terms_are_lower_case_words():
    assert search_terms("  Organic  TEE ") == ["organic", "tee"]
    assert search_terms(None) == []


def test_media_url_must_be_http():
    assert valid_media_url("https://cdn.example.com/a.jpg") is True
    assert valid_media_url("ftp://cdn.example.com/a.jpg") is False
    assert valid_media_url("https:// bad") is False
