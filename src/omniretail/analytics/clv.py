"""Customer lifetime value: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
easy way") for the number of repeat purchases and P(alive), Gamma-Gamma (Fader, Hardie & Lee
2005, "RFM and CLV") for the spend per purchase, both fitted by maximum likelihood.

A small numpy/scipy implementation (``lifetimes`` is unmaintained): log-likelihoods with
``scipy.special.gammaln``/``betaln``, conditional expectations with ``hyp2f1``, and
L-BFGS-B on the log-parameters from fixed starting points, so a fit is deterministic.

Inputs per customer, in one time unit (days here): ``x`` repeat purchases (purchase days
after the first, minus one), ``t_x`` the time of the last purchase since the first, ``T`` the
time from the first purchase to the end of the calibration period; ``m`` the mean spend of the
repeat purchases. Times and money are rescaled before fitting (``alpha`` and ``gamma`` scale
linearly with their units) to keep the optimiser well conditioned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import eigh_tridiagonal
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1, roots_jacobi

Array = NDArray[np.float64]
P = TypeVar("P")


class FitError(ValueError):
    """The data cannot support a fit (too few customers or no repeat purchases)."""


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class FitResult(Generic[P]):
    params: P
    log_likelihood: float
    customers: int
    iterations: int
    converged: bool


def _arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=float) for v in values]


# --- BG/NBD ---------------------------------------------------------------------------------


def bgnbd_log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Per-customer log-likelihood (equation 6 of the BG/NBD paper)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xa, txa, Ta = _arrays(x, t_x, T)
    a1 = gammaln(r + xa) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + xa) - betaln(a, b)
    a3 = -(r + xa) * np.log(alpha + Ta)
    repeat = xa > 0
    safe_b = np.where(repeat, b + xa - 1, 1.0)
    a4 = np.where(
        repeat,
        np.log(a) - np.log(safe_b) - (r + xa) * np.log(alpha + txa),
        -np.inf,
    )
    result: Array = a1 + a2 + np.logaddexp(a3, a4)
    return result


def _bgnbd_ll_grad(theta: Array, x: Array, t_x: Array, T: Array) -> tuple[float, Array]:
    """Total log-likelihood and its gradient in (r, α, a, b)."""
    r, alpha, a, b = (float(v) for v in theta)
    with np.errstate(all="ignore"):
        a3 = -(r + x) * np.log(alpha + T)
        repeat = x > 0
        safe_b = np.where(repeat, b + x - 1, 1.0)
        a4 = np.where(repeat, np.log(a) - np.log(safe_b) - (r + x) * np.log(alpha + t_x), -np.inf)
        mix = np.logaddexp(a3, a4)
        w3 = np.exp(a3 - mix)
        w4 = np.where(repeat, np.exp(a4 - mix), 0.0)
        ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b) + mix
        d_r = digamma(r + x) - digamma(r) + np.log(alpha)
        d_r = d_r - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
        d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
        d_b = digamma(b + x) - digamma(a + b + x) - digamma(b) + digamma(a + b)
        d_b = d_b - w4 / safe_b
    grad = np.array([d_r.sum(), d_alpha.sum(), d_a.sum(), d_b.sum()])
    return float(ll.sum()), grad


def _gamma_gamma_ll_grad(theta: Array, x: Array, m: Array) -> tuple[float, Array]:
    """Total log-likelihood and its gradient in (p, q, γ)."""
    p, q, g = (float(v) for v in theta)
    with np.errstate(all="ignore"):
        px = p * x
        log_xm_g = np.log(x * m + g)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(g)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * log_xm_g
        )
        d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_xm_g)
        d_q = digamma(px + q) - digamma(q) + np.log(g) - log_xm_g
        d_g = q / g - (px + q) / (x * m + g)
    return float(ll.sum()), np.array([d_p.sum(), d_q.sum(), d_g.sum()])


def _fit(
    objective: Callable[[Array], tuple[float, Array]],
    starts: list[Array],
) -> tuple[Array, float, int, bool]:
    """Minimise ``objective`` (value and gradient in log-parameters) from each start; the best
    finite optimum wins. Fixed starts and a deterministic optimiser: the same data gives the
    same parameters."""
    best: tuple[Array, float, int, bool] | None = None
    for start in starts:
        res = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-12.0, 12.0)] * len(start),
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
        )
        if not np.isfinite(res.fun):
            continue
        if best is None or res.fun < best[1]:
            best = (np.asarray(res.x, dtype=float), float(res.fun), int(res.nit), bool(res.success))
    if best is None:
        raise FitError("the likelihood could not be evaluated at any starting point")
    return best


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    penalizer: float = 0.0,
) -> FitResult[BgNbdParams]:
    """Maximum-likelihood BG/NBD parameters. ``penalizer`` adds ``penalizer · Σ θ²`` on the
    (scaled) parameters, as in ``lifetimes``, for small or degenerate data sets."""
    xa, txa, Ta = _arrays(x, t_x, T)
    if len(xa) < 2:
        raise FitError("BG/NBD needs at least two customers")
    if not np.any(xa > 0):
        raise FitError("BG/NBD needs at least one customer with a repeat purchase")
    if np.any(xa < 0) or np.any(txa < 0) or np.any(txa > Ta):
        raise FitError("need x >= 0 and 0 <= t_x <= T")
    scale = float(np.max(Ta)) or 1.0
    txs, Ts = txa / scale, Ta / scale
    n = len(xa)

    def objective(log_params: Array) -> tuple[float, Array]:
        theta = np.exp(log_params)
        ll, grad = _bgnbd_ll_grad(theta, xa, txs, Ts)
        value = -ll / n + penalizer * float(np.sum(theta**2))
        gradient = (-grad / n + 2 * penalizer * theta) * theta
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e100, np.zeros_like(log_params)
        return value, gradient

    starts = [np.zeros(4), np.log(np.array([0.5, 0.5, 0.5, 2.0])), np.array([1.0, -1.0, 0.0, 1.0])]
    best, _, iterations, converged = _fit(objective, starts)
    r, alpha, a, b = (float(v) for v in np.exp(best))
    params = BgNbdParams(r, alpha * scale, a, b)
    ll = float(np.sum(bgnbd_log_likelihood(params, xa, txa, Ta)))
    return FitResult(params, ll, n, iterations, converged)


def _log_hyp2f1(a: Array, b: Array, c: Array, z: Array) -> Array:
    """log 2F1 with Euler's transformation where the direct series overflows."""
    with np.errstate(all="ignore"):
        direct = np.log(hyp2f1(a, b, c, z))
        alt = np.log(hyp2f1(c - a, c - b, c, z)) + (c - a - b) * np.log1p(-z)
    result: Array = np.where(np.isfinite(direct), direct, alt)
    return result


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Probability that a customer with history ``(x, t_x, T)`` is still active at ``T``."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xa, txa, Ta = _arrays(x, t_x, T)
    repeat = xa > 0
    safe_b = np.where(repeat, b + xa - 1, 1.0)
    log_term = np.log(a) - np.log(safe_b) + (r + xa) * (np.log(alpha + Ta) - np.log(alpha + txa))
    with np.errstate(over="ignore"):
        result: Array = np.where(repeat, 1.0 / (1.0 + np.exp(log_term)), 1.0)
    return result


def expected_purchases(
    params: BgNbdParams, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """E[Y(t) | x, t_x, T]: expected purchases in ``(T, T + t]`` (equation 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xa, txa, Ta = _arrays(x, t_x, T)
    if t <= 0:
        return np.zeros_like(xa)
    aa = r + xa
    bb = b + xa
    cc = a + b + xa - 1
    z = t / (alpha + Ta + t)
    log_hyp = _log_hyp2f1(aa, bb, cc, np.full_like(xa, z))
    first = (a + b + xa - 1) / (a - 1)
    second = 1 - np.exp(log_hyp + (r + xa) * np.log((alpha + Ta) / (alpha + Ta + t)))
    repeat = xa > 0
    safe_b = np.where(repeat, b + xa - 1, 1.0)
    log_odds = np.log(a) - np.log(safe_b) + (r + xa) * (np.log(alpha + Ta) - np.log(alpha + txa))
    with np.errstate(all="ignore"):
        denominator = 1 + np.where(repeat, np.exp(log_odds), 0.0)
        result: Array = first * second / denominator
    bad = ~np.isfinite(result) | (result < 0)
    if np.any(bad):
        result[bad] = _expected_purchases_quadrature(params, t, xa[bad], txa[bad], Ta[bad])
    return result


def _jacobi_rule(n: int, alpha: float, beta: float) -> tuple[Array, Array]:
    """Gauss–Jacobi nodes on [−1, 1] for the weight (1−u)^α (1+u)^β and weights summing to
    1. scipy's rule overflows its total mass for large α; Golub–Welsch on the recurrence of
    the Jacobi polynomials gives the same normalised weights then."""
    with np.errstate(all="ignore"):
        nodes, weights = roots_jacobi(n, alpha, beta)
    if np.all(np.isfinite(weights)) and weights.sum() > 0:
        return nodes, weights / weights.sum()
    k = np.arange(n, dtype=float)
    s = 2 * k + alpha + beta
    diag = (beta**2 - alpha**2) / (s * (s + 2))
    diag[0] = (beta - alpha) / (alpha + beta + 2)
    k1 = k[1:]
    s1 = s[1:]
    off = np.sqrt(
        4 * k1 * (k1 + alpha) * (k1 + beta) * (k1 + alpha + beta) / (s1**2 * (s1 + 1) * (s1 - 1))
    )
    nodes, vectors = eigh_tridiagonal(diag, off)
    weights = vectors[0] ** 2
    return nodes, weights / weights.sum()


def _expected_purchases_quadrature(
    params: BgNbdParams, t: float, x: Array, t_x: Array, T: Array, nodes: int = 64
) -> Array:
    """The same expectation where ``hyp2f1`` is not usable (e.g. ``b + x < 1``):
    ``P(alive) · E[(1 − ((α+T)/(α+T+p·t))^(r+x)) / p]`` over the posterior
    ``p ~ Beta(a, b + x)``, by Gauss–Jacobi quadrature (exact for the Beta weight)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.empty_like(x)
    for value in np.unique(x):
        rows = x == value
        u, w = _jacobi_rule(nodes, b + value - 1, a - 1)
        p = (1 + u) / 2
        base = (alpha + T[rows])[:, None]
        g = (1 - (base / (base + p[None, :] * t)) ** (r + value)) / p[None, :]
        out[rows] = (g * w[None, :]).sum(axis=1)
    result: Array = out * p_alive(params, x, t_x, T)
    return result


def expected_purchases_new(params: BgNbdParams, t: ArrayLike) -> Array:
    """E[X(t)] for a customer just acquired (equation 9)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    ta = np.asarray(t, dtype=float)
    z = ta / (alpha + ta)
    hyp = hyp2f1(r, b, a + b - 1, z)
    result: Array = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + ta)) ** r * hyp)
    return result


def simulate_bgnbd(
    params: BgNbdParams, customers: int, T: ArrayLike | float, seed: int
) -> tuple[Array, Array, Array]:
    """Draw ``(x, t_x, T)`` from the BG/NBD process: λ ~ Gamma(r, α), p ~ Beta(a, b); purchases
    arrive as a Poisson(λ) process and after each repeat purchase the customer leaves with
    probability p. Exact and vectorised: with ``N`` Poisson arrivals in ``(0, T]`` and
    ``K ~ Geometric(p)`` purchases before leaving, ``x = min(N, K)`` and the time of the x-th
    of N uniform arrivals is ``T · Beta(x, N − x + 1)``."""
    rng = np.random.default_rng(seed)
    Ta = np.broadcast_to(np.asarray(T, dtype=float), (customers,)).copy()
    lam = rng.gamma(params.r, 1.0 / params.alpha, customers)
    p = rng.beta(params.a, params.b, customers)
    arrivals = rng.poisson(lam * Ta)
    before_leaving = rng.geometric(p)
    x = np.minimum(arrivals, before_leaving)
    t_x = np.zeros(customers)
    repeat = x > 0
    t_x[repeat] = Ta[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    return x.astype(float), t_x, Ta


# --- Gamma-Gamma ----------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> Array:
    p, q, g = params.p, params.q, params.gamma
    xa, ma = _arrays(x, m)
    result: Array = (
        gammaln(p * xa + q)
        - gammaln(p * xa)
        - gammaln(q)
        + q * np.log(g)
        + (p * xa - 1) * np.log(ma)
        + p * xa * np.log(xa)
        - (p * xa + q) * np.log(xa * ma + g)
    )
    return result


def fit_gamma_gamma(
    x: ArrayLike, m: ArrayLike, penalizer: float = 0.0
) -> FitResult[GammaGammaParams]:
    """Maximum-likelihood Gamma-Gamma parameters on customers with ``x >= 1`` and ``m > 0``."""
    xa, ma = _arrays(x, m)
    keep = (xa >= 1) & (ma > 0)
    xa, ma = xa[keep], ma[keep]
    if len(xa) < 2:
        raise FitError("Gamma-Gamma needs at least two customers with repeat purchases")
    scale = float(np.mean(ma))
    ms = ma / scale
    n = len(xa)

    def objective(log_params: Array) -> tuple[float, Array]:
        theta = np.exp(log_params)
        ll, grad = _gamma_gamma_ll_grad(theta, xa, ms)
        value = -ll / n + penalizer * float(np.sum(theta**2))
        gradient = (-grad / n + 2 * penalizer * theta) * theta
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e100, np.zeros_like(log_params)
        return value, gradient

    starts = [np.zeros(3), np.log(np.array([2.0, 3.0, 1.0])), np.log(np.array([5.0, 5.0, 5.0]))]
    best, _, iterations, converged = _fit(objective, starts)
    p, q, g = (float(v) for v in np.exp(best))
    params = GammaGammaParams(p, q, g * scale)
    ll = float(np.sum(gamma_gamma_log_likelihood(params, xa, ma)))
    return FitResult(params, ll, n, iterations, converged)


def expected_spend(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> Array:
    """E[M | x, m_x]: a weighted mean of the population mean ``pγ/(q − 1)`` and the
    customer's own mean; customers without repeat purchases get the population mean."""
    p, q, g = params.p, params.q, params.gamma
    xa, ma = _arrays(x, m)
    population = p * g / (q - 1) if q > 1 else float("nan")
    own = (g + ma * xa) * p / (p * xa + q - 1)
    result: Array = np.where(xa > 0, own, population)
    return result


def lifetime_value(
    bgnbd: BgNbdParams,
    spend: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    months: int,
    monthly_discount: float,
    days_per_month: float = 30.0,
) -> Array:
    """Discounted value over ``months`` (time unit: days): Σ_k ΔE[Y]_k · spend / (1 + d)^k,
    where ΔE[Y]_k is the expected number of purchases in month k."""
    xa, txa, Ta = _arrays(x, t_x, T)
    spend_a = np.asarray(spend, dtype=float)
    total = np.zeros_like(xa)
    previous = np.zeros_like(xa)
    for k in range(1, months + 1):
        current = expected_purchases(bgnbd, k * days_per_month, xa, txa, Ta)
        total += (current - previous) * spend_a / (1 + monthly_discount) ** k
        previous = current
    return total
