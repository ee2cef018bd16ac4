"""BG/NBD and Gamma-Gamma: parameter recovery on simulated data, determinism, predictions."""

from datetime import date

import numpy as np
import pytest

from omniretail.analytics import clv, service
from omniretail.core.errors import AppError
from tests.analytics.factories import csv_text, generated_rows

TRUE = clv.BgNbdParams(r=0.8, alpha=40.0, a=0.6, b=2.5)


def _simulated(customers=20_000, seed=2):
    T = np.random.default_rng(seed).uniform(180, 540, customers)
    return clv.simulate_bgnbd(TRUE, customers, T, seed=seed)


def test_bgnbd_recovers_the_parameters_it_was_simulated_from():
    # given 20,000 customers drawn from r=0.8, alpha=40 (days), a=0.6, b=2.5
    x, t_x, T = _simulated()
    # when
    fit = clv.fit_bgnbd(x, t_x, T)
    # then every parameter is within 10 %
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fit.params, name) == pytest.approx(getattr(TRUE, name), rel=0.10), name
    assert fit.converged


def test_bgnbd_fit_is_deterministic():
    x, t_x, T = _simulated(customers=3_000, seed=9)
    assert clv.fit_bgnbd(x, t_x, T) == clv.fit_bgnbd(x, t_x, T)


def test_simulation_is_deterministic_given_a_seed():
    first, second = _simulated(100, seed=1), _simulated(100, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_gamma_gamma_recovers_the_spend_parameters():
    # given spend per purchase z ~ Gamma(p, ν) with ν ~ Gamma(q, γ) per customer
    rng = np.random.default_rng(11)
    p, q, gamma = 6.0, 4.0, 15.0
    n = 8_000
    nu = rng.gamma(q, 1 / gamma, n)
    x = rng.integers(1, 12, n)
    m = np.array([rng.gamma(p, 1 / nu_i, k).mean() for nu_i, k in zip(nu, x, strict=True)])
    # when
    fit = clv.fit_gamma_gamma(x, m)
    # then
    assert fit.params.p == pytest.approx(p, rel=0.10)
    assert fit.params.q == pytest.approx(q, rel=0.10)
    assert fit.params.gamma == pytest.approx(gamma, rel=0.10)


def test_customers_without_repeat_purchases_are_alive_by_definition():
    assert clv.p_alive(TRUE, [0, 0], [0, 0], [10, 300]).tolist() == [1.0, 1.0]


def test_a_long_silence_after_many_purchases_lowers_p_alive():
    recent, silent = clv.p_alive(TRUE, [10, 10], [290, 100], [300, 300])
    assert recent > 0.9 > silent


def test_expected_purchases_formula_agrees_with_quadrature():
    x, t_x, T = _simulated(customers=50, seed=4)
    formula = clv.expected_purchases(TRUE, 90.0, x, t_x, T)
    quadrature = clv._expected_purchases_quadrature(TRUE, 90.0, x, t_x, T)
    assert formula == pytest.approx(quadrature, rel=1e-6)


def test_expected_purchases_are_finite_when_hyp2f1_is_not_usable():
    # b + x − 1 < 0 for x = 0: the closed form breaks down, the quadrature takes over
    params = clv.BgNbdParams(r=0.7, alpha=66.0, a=1e-5, b=0.04)
    values = clv.expected_purchases(params, 360.0, [0, 1, 5], [0, 100, 200], [200, 200, 250])
    # with almost no dropout this is the NBD expectation (r + x)·t / (α + T)
    assert values == pytest.approx([0.7 * 360 / 266, 1.7 * 360 / 266, 5.7 * 360 / 316], rel=1e-3)


def test_bgnbd_needs_repeat_purchases():
    with pytest.raises(clv.FitError):
        clv.fit_bgnbd([0, 0, 0], [0, 0, 0], [10, 20, 30])


@pytest.fixture()
def history(session):
    service.import_online_retail(session, csv_text(generated_rows(invoices=1500, seed=3)))
    session.commit()
    return session


def test_clv_report_predicts_purchases_and_value_per_customer(history):
    # when
    report = service.customer_lifetime_value(
        history, calibration_end=date(2011, 9, 1), holdout_end=date(2011, 12, 10), top=5
    )
    # then
    assert report.customers > 200
    assert report.holdout is not None
    assert report.holdout.holdout_days == 100
    assert report.holdout.actual_purchases > 0
    assert [c.clv_minor for c in report.top] == sorted((c.clv_minor for c in report.top),
                                                       reverse=True)  # fmt: skip
    assert all(0 <= c.p_alive <= 1 for c in report.top)


def test_clv_report_is_deterministic(history):
    first = service.customer_lifetime_value(history, calibration_end=date(2011, 9, 1))
    second = service.customer_lifetime_value(history, calibration_end=date(2011, 9, 1))
    assert first == second


def test_clv_needs_customers(session):
    with pytest.raises(AppError) as caught:
        service.customer_lifetime_value(session)
    assert caught.value.code == "not_enough_customers"
