"""Probabilistic customer lifetime value: BG/NBD purchases and Gamma-Gamma spend.

Implemented from the papers, fitted by maximum likelihood:

- BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
  alternative to the Pareto/NBD model", Marketing Science 24(2): likelihood, conditional
  expectation (eq. 10); P(alive) as in Fader, Hardie & Lee (2008), "Computing P(alive)
  using the BG/NBD model".
- Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for
  customer base analysis", JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma model
  of monetary value".

Inputs are the per-customer calibration summary (computed in SQL by the dbt project;
`summarise_transactions` is its pandas reference):

- ``frequency`` x: number of repeat purchase days (distinct purchase days minus 1);
- ``recency`` t_x: time from the first to the last purchase;
- ``T``: time from the first purchase to the end of calibration;
- ``monetary_value`` zbar: mean value of the repeat purchase days (0 when x = 0).

Times are in one unit of your choice (days, weeks); alpha is then in that unit (v is in
money), and `expected_discounted_value` is told how many days the unit spans.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

ArrayLike = np.ndarray | pd.Series | list[float] | float

__all__ = [
    "BgNbdParams",
    "GammaGammaParams",
    "bgnbd_expected_purchases",
    "bgnbd_log_likelihood",
    "bgnbd_probability_alive",
    "expected_discounted_value",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_expected_spend",
    "gamma_gamma_log_likelihood",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "summarise_transactions",
]

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD: purchase rate ~ Gamma(r, alpha), drop-out prob ~ Beta(a, b).

    ``se_*`` are asymptotic standard errors (inverse Hessian of the negative
    log-likelihood, delta method from the log-parameters); NaN when the Hessian is not
    positive definite. ``log_likelihood`` is the unpenalised value at the estimate.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int
    converged: bool
    se_r: float = math.nan
    se_alpha: float = math.nan
    se_a: float = math.nan
    se_b: float = math.nan
    penalizer: float = 0.0


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma: transaction value ~ Gamma(p, nu), nu ~ Gamma(q, v).

    Fitted on repeat customers only (frequency > 0); ``n_customers`` counts them.
    """

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: int
    converged: bool
    se_p: float = math.nan
    se_q: float = math.nan
    se_v: float = math.nan
    penalizer: float = 0.0


# --------------------------------------------------------------------------- helpers


def _as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has missing or infinite values")
    return array


def _check_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _as_float_array(frequency, "frequency")
    t_x = _as_float_array(recency, "recency")
    big_t = _as_float_array(T, "T")
    x, t_x, big_t = np.broadcast_arrays(x, t_x, big_t)
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative whole number")
    if np.any(t_x < 0) or np.any(t_x > big_t * (1 + 1e-12)):
        raise ValueError("recency must lie between 0 and T")
    return x, t_x, big_t


@dataclass(frozen=True)
class _Fit:
    params: np.ndarray
    log_likelihood: float
    converged: bool
    std_errors: np.ndarray


def _maximise(
    log_likelihood_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: list[np.ndarray],
    n: int,
    penalizer: float,
) -> _Fit:
    """Maximise a log-likelihood over log-parameters with L-BFGS-B, deterministically.

    The objective is the mean negative log-likelihood (so tolerances do not depend on
    the number of customers) plus ``penalizer`` times the squared norm of the
    log-parameters. Several start points guard against a poor local optimum; the best
    one wins.
    """

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = log_likelihood_and_grad(theta)
        value = -ll / n + penalizer * float(theta @ theta)
        gradient = -grad / n + 2.0 * penalizer * theta
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        return value, gradient

    best: optimize.OptimizeResult | None = None
    for start in starts:
        result = optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-20.0, 20.0)] * len(start),
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
        )
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    theta = best.x
    _, grad = objective(theta)
    converged = bool(np.all(np.isfinite(theta)) and np.max(np.abs(grad)) < 1e-4)

    # Hessian of the total penalised negative log-likelihood in log-space, by central
    # differences of the analytic gradient; delta method back to the parameters.
    step = 1e-5
    k = len(theta)
    hessian = np.empty((k, k))
    for j in range(k):
        shift = np.zeros(k)
        shift[j] = step
        hessian[:, j] = (objective(theta + shift)[1] - objective(theta - shift)[1]) / (2 * step)
    hessian = n * 0.5 * (hessian + hessian.T)
    std_errors = np.full(k, math.nan)
    try:
        np.linalg.cholesky(hessian)
        covariance = np.linalg.inv(hessian)
        std_errors = np.exp(theta) * np.sqrt(np.diag(covariance))
    except np.linalg.LinAlgError:
        converged = False
    ll_value, _ = log_likelihood_and_grad(theta)
    return _Fit(np.exp(theta), float(ll_value), converged, std_errors)


# --------------------------------------------------------------------------- BG/NBD


def _bgnbd_ll_terms(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood and its gradient w.r.t. the log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    # ln A1 + ln A2 (FHL 2005, eq. 6): Gamma-Poisson part and the Beta-geometric part.
    base = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + x)
        - special.betaln(a, b)
    )
    log_a3 = -(r + x) * np.log(alpha + big_t)
    b_x1 = np.where(repeat, b + x - 1.0, 1.0)  # only used where x > 0
    log_a4 = np.where(repeat, np.log(a) - np.log(b_x1) - (r + x) * np.log(alpha + t_x), -np.inf)
    tail = np.logaddexp(log_a3, log_a4)
    ll = base + tail

    w3 = np.exp(log_a3 - tail)
    w4 = np.exp(log_a4 - tail)
    d_r = (
        special.digamma(r + x)
        - special.digamma(r)
        + np.log(alpha)
        - w3 * np.log(alpha + big_t)
        - w4 * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + big_t) + w4 / (alpha + t_x))
    d_a = special.digamma(a + b) - special.digamma(a + b + x) + w4 / a
    d_b = (
        special.digamma(a + b)
        + special.digamma(b + x)
        - special.digamma(b)
        - special.digamma(a + b + x)
        - np.where(repeat, w4 / b_x1, 0.0)
    )
    grad = np.stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
    return ll, grad


def bgnbd_log_likelihood(
    params: BgNbdParams | tuple[float, float, float, float],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood at (r, alpha, a, b)."""
    r, alpha, a, b = _bgnbd_tuple(params)
    x, t_x, big_t = _check_rfm(frequency, recency, T)
    ll, _ = _bgnbd_ll_terms(np.log([r, alpha, a, b]), x, t_x, big_t)
    return ll


def _bgnbd_tuple(
    params: BgNbdParams | tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    if isinstance(params, BgNbdParams):
        return params.r, params.alpha, params.a, params.b
    r, alpha, a, b = (float(v) for v in params)
    return r, alpha, a, b


def fit_bgnbd(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, penalizer: float = 0.0
) -> BgNbdParams:
    """Fit BG/NBD by maximum likelihood.

    ``penalizer`` > 0 adds ``penalizer * sum(log(param)**2)`` to the mean negative
    log-likelihood, shrinking the parameters towards 1 on small or degenerate data.
    """
    x, t_x, big_t = _check_rfm(frequency, recency, T)
    n = len(x)
    if n == 0:
        raise ValueError("no customers to fit")
    if penalizer < 0:
        raise ValueError("penalizer must be non-negative")

    # Customers with the same (x, t_x, T) have the same likelihood term: each distinct
    # triple is evaluated once and weighed by its customers (recency and T are counted
    # in days, so a store of 720k customers has a fraction of that many triples).
    triples, count = np.unique(np.column_stack([x, t_x, big_t]), axis=0, return_counts=True)
    ux, ut_x, ubig_t = triples.T
    weight = count.astype(float)

    def ll_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = _bgnbd_ll_terms(theta, ux, ut_x, ubig_t)
        return float(ll @ weight), grad @ weight

    # Start values: r = 1 and alpha set so the mean rate r/alpha matches the observed
    # repeat rate; the Beta starts flat and at a low drop-out rate.
    rate = max(float(x.sum()) / max(float(big_t.sum()), 1e-9), 1e-6)
    starts = [
        np.log([1.0, 1.0 / rate, 1.0, 1.0]),
        np.log([0.5, 0.5 / rate, 0.5, 5.0]),
        np.log([1.0, 1.0, 1.0, 1.0]),
    ]
    fit = _maximise(ll_and_grad, starts, n, penalizer)
    r, alpha, a, b = (float(v) for v in fit.params)
    se_r, se_alpha, se_a, se_b = (float(v) for v in fit.std_errors)
    return BgNbdParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=fit.log_likelihood,
        n_customers=n,
        converged=fit.converged,
        se_r=se_r,
        se_alpha=se_alpha,
        se_a=se_a,
        se_b=se_b,
        penalizer=float(penalizer),
    )


def _log_odds_dead_ratio(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> np.ndarray:
    """log of delta(x>0) * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x); -inf when x = 0."""
    repeat = x > 0
    b_x1 = np.where(repeat, b + x - 1.0, 1.0)
    return np.where(
        repeat,
        np.log(a) - np.log(b_x1) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x)),
        -np.inf,
    )


def bgnbd_probability_alive(
    params: BgNbdParams | tuple[float, float, float, float],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """P(customer still active at T | x, t_x, T). Exactly 1 when x = 0 under BG/NBD."""
    r, alpha, a, b = _bgnbd_tuple(params)
    x, t_x, big_t = _check_rfm(frequency, recency, T)
    return special.expit(-_log_odds_dead_ratio(r, alpha, a, b, x, t_x, big_t))


def bgnbd_expected_purchases(
    params: BgNbdParams | tuple[float, float, float, float],
    t: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (FHL 2005, eq. 10).

    ``t`` is a scalar or one value per customer, in the summary's time unit.
    """
    r, alpha, a, b = _bgnbd_tuple(params)
    x, t_x, big_t = _check_rfm(frequency, recency, T)
    horizon = np.broadcast_to(_as_float_array(t, "t"), x.shape)
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    if abs(a - 1.0) < 1e-8:
        # eq. 10 has a removable singularity at a = 1; evaluate just beside it.
        a = 1.0 + 1e-8
    z = horizon / (alpha + big_t + horizon)
    # ((alpha+T)/(alpha+T+t))^(r+x) = (1-z)^(r+x). With c = a+b+x-1, Euler's transform
    # 2F1(r+x, b+x; c; z) = (1-z)^(c-r-b-2x) 2F1(a+b-1-r, a-1; c; z) turns
    # (1-z)^(r+x) 2F1(r+x, b+x; c; z) into (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z), which avoids
    # multiplying a huge series by a tiny power for heavy buyers (large x).
    c = a + b + x - 1.0
    hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    bracket = 1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp
    numerator = c / (a - 1.0) * bracket
    denominator = 1.0 + np.exp(_log_odds_dead_ratio(r, alpha, a, b, x, t_x, big_t))
    return numerator / denominator


# --------------------------------------------------------------------------- Gamma-Gamma


def _check_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, ...]:
    x = _as_float_array(frequency, "frequency")
    zbar = _as_float_array(monetary_value, "monetary_value")
    x, zbar = np.broadcast_arrays(x, zbar)
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative whole number")
    return x, zbar


def _gg_ll_terms(
    log_params: np.ndarray, x: np.ndarray, zbar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log density of zbar given x (Fader & Hardie 2013) and its gradient."""
    p, q, v = np.exp(log_params)
    px = p * x
    log_v_xz = np.log(v + x * zbar)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(zbar)
        + px * np.log(x)
        - (px + q) * log_v_xz
    )
    d_p = x * (special.digamma(px + q) - special.digamma(px) + np.log(zbar) + np.log(x) - log_v_xz)
    d_q = special.digamma(px + q) - special.digamma(q) + np.log(v) - log_v_xz
    d_v = q / v - (px + q) / (v + x * zbar)
    return ll, np.stack([p * d_p, q * d_q, v * d_v])


def gamma_gamma_log_likelihood(
    params: GammaGammaParams | tuple[float, float, float],
    frequency: ArrayLike,
    monetary_value: ArrayLike,
) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood of zbar (repeat customers only)."""
    p, q, v = _gg_tuple(params)
    x, zbar = _check_spend(frequency, monetary_value)
    if np.any(x <= 0) or np.any(zbar <= 0):
        raise ValueError("the Gamma-Gamma likelihood needs frequency > 0 and monetary_value > 0")
    ll, _ = _gg_ll_terms(np.log([p, q, v]), x, zbar)
    return ll


def _gg_tuple(params: GammaGammaParams | tuple[float, float, float]) -> tuple[float, ...]:
    if isinstance(params, GammaGammaParams):
        return params.p, params.q, params.v
    return tuple(float(v) for v in params)


def fit_gamma_gamma(
    frequency: ArrayLike, monetary_value: ArrayLike, *, penalizer: float = 0.0
) -> GammaGammaParams:
    """Fit Gamma-Gamma spend by maximum likelihood on customers with frequency > 0.

    Customers with no repeat purchase (or a non-positive mean value, e.g. net returns)
    carry no information on repeat spend and are left out, as in the papers.
    """
    x, zbar = _check_spend(frequency, monetary_value)
    keep = (x > 0) & (zbar > 0)
    x, zbar = x[keep], zbar[keep]
    n = len(x)
    if n == 0:
        raise ValueError("no repeat customers with positive spend to fit")
    if penalizer < 0:
        raise ValueError("penalizer must be non-negative")

    def ll_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = _gg_ll_terms(theta, x, zbar)
        return float(ll.sum()), grad.sum(axis=1)

    # Start values: q = 2 gives a finite population mean p*v/(q-1) = p*v; pick v so it
    # equals the observed mean spend for two values of p.
    mean_spend = float(np.average(zbar, weights=x))
    starts = [np.log([p0, 2.0, mean_spend / p0]) for p0 in (1.0, 5.0)] + [np.log([1.0, 1.0, 1.0])]
    fit = _maximise(ll_and_grad, starts, n, penalizer)
    p, q, v = (float(val) for val in fit.params)
    se_p, se_q, se_v = (float(val) for val in fit.std_errors)
    return GammaGammaParams(
        p=p,
        q=q,
        v=v,
        log_likelihood=fit.log_likelihood,
        n_customers=n,
        converged=fit.converged,
        se_p=se_p,
        se_q=se_q,
        se_v=se_v,
        penalizer=float(penalizer),
    )


def gamma_gamma_expected_spend(
    params: GammaGammaParams | tuple[float, float, float],
    frequency: ArrayLike,
    monetary_value: ArrayLike,
) -> np.ndarray:
    """E[value of a transaction | x, zbar]: a weighted mean of population and own mean.

    E = (q-1)/(px+q-1) * p*v/(q-1) + px/(px+q-1) * zbar. With x = 0 it is the population
    mean p*v/(q-1), whatever ``monetary_value`` holds. Needs q > 1.
    """
    p, q, v = _gg_tuple(params)
    if q <= 1.0:
        raise ValueError("q <= 1: the Gamma-Gamma population mean spend is infinite")
    x, zbar = _check_spend(frequency, monetary_value)
    zbar = np.where(x > 0, zbar, 0.0)
    weight_own = p * x / (p * x + q - 1.0)
    return (1.0 - weight_own) * p * v / (q - 1.0) + weight_own * zbar


# --------------------------------------------------------------------------- CLV


def expected_discounted_value(
    bg: BgNbdParams,
    gg: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    horizon_days: float,
    discount_rate_annual: float,
    step_days: float = 30.0,
    time_unit_days: float = 1.0,
) -> np.ndarray:
    """Expected discounted spend over the next ``horizon_days`` for each customer.

    The horizon is cut into steps of ``step_days`` (the last one may be shorter); the
    BG/NBD expected purchases in each step are valued at the Gamma-Gamma expected spend
    and discounted to today at ``(1 + discount_rate_annual) ** -(step_end_days / 365.25)``.
    ``time_unit_days`` is the length of the summary's time unit in days (7 for weeks).
    Purchases and spend are treated as independent, as in Fader, Hardie & Lee (2005).
    """
    if horizon_days < 0 or step_days <= 0 or time_unit_days <= 0:
        raise ValueError("horizon_days must be >= 0, step_days and time_unit_days > 0")
    if discount_rate_annual <= -1:
        raise ValueError("discount_rate_annual must be greater than -1")
    x, t_x, big_t = _check_rfm(frequency, recency, T)
    spend = gamma_gamma_expected_spend(gg, x, monetary_value)
    n_steps = math.ceil(horizon_days / step_days - 1e-9)
    ends = np.minimum(np.arange(1, n_steps + 1) * step_days, horizon_days)
    value = np.zeros_like(x)
    previous = np.zeros_like(x)
    for end in ends:
        cumulative = bgnbd_expected_purchases(bg, end / time_unit_days, x, t_x, big_t)
        discount = (1.0 + discount_rate_annual) ** (-end / DAYS_PER_YEAR)
        value += (cumulative - previous) * discount
        previous = cumulative
    return value * spend


# --------------------------------------------------------------------------- simulation


def simulate_bgnbd(
    n_customers: int,
    T: ArrayLike,
    r: float,
    alpha: float,
    a: float,
    b: float,
    seed: int,
    *,
    holdout: float = 0.0,
) -> pd.DataFrame:
    """Draw customers from the BG/NBD generative story (first purchase at time 0).

    Each customer has a Poisson purchase rate lambda ~ Gamma(r, rate alpha) and, after
    each repeat purchase, drops out for good with probability p ~ Beta(a, b). ``T`` is a
    scalar or one value per customer. Returns frequency, recency, T, is_alive (still
    active at T) and, when ``holdout`` > 0, holdout_purchases in (T, T + holdout].
    """
    rng = np.random.default_rng(seed)
    big_t = np.broadcast_to(np.asarray(T, dtype=float), (n_customers,)).copy()
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n_customers)
    p_drop = rng.beta(a, b, size=n_customers)
    end = big_t + holdout
    frequency = np.zeros(n_customers)
    recency = np.zeros(n_customers)
    holdout_purchases = np.zeros(n_customers)
    death = np.full(n_customers, np.inf)
    now = np.zeros(n_customers)
    active = np.ones(n_customers, dtype=bool)
    # Advance all still-active customers one purchase at a time, vectorised.
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, size=idx.size) / lam[idx]
        in_window = now[idx] <= end[idx]
        buyers = idx[in_window]
        active[idx[~in_window]] = False
        in_calibration = now[buyers] <= big_t[buyers]
        cal = buyers[in_calibration]
        frequency[cal] += 1
        recency[cal] = now[cal]
        holdout_purchases[buyers[~in_calibration]] += 1
        drops = rng.random(buyers.size) < p_drop[buyers]
        death[buyers[drops]] = now[buyers[drops]]
        active[buyers[drops]] = False
    frame = pd.DataFrame(
        {
            "frequency": frequency.astype(np.int64),
            "recency": recency,
            "T": big_t,
            "is_alive": death > big_t,
        }
    )
    if holdout > 0:
        frame["holdout_purchases"] = holdout_purchases.astype(np.int64)
    return frame


def simulate_gamma_gamma(
    frequency: ArrayLike, p: float, q: float, v: float, seed: int
) -> np.ndarray:
    """Mean repeat-purchase value per customer under Gamma-Gamma (NaN where x = 0).

    nu ~ Gamma(q, rate v) per customer; each of the x values ~ Gamma(p, rate nu), so
    their sum ~ Gamma(p x, rate nu).
    """
    rng = np.random.default_rng(seed)
    x = _as_float_array(frequency, "frequency")
    nu = rng.gamma(shape=q, scale=1.0 / v, size=x.size)
    repeat = x > 0
    total = np.full(x.size, np.nan)
    total[repeat] = rng.gamma(shape=p * x[repeat], scale=1.0 / nu[repeat])
    return total / np.where(repeat, x, 1.0)


# --------------------------------------------------------------------------- summary


def summarise_transactions(
    frame: pd.DataFrame,
    customer_col: str,
    date_col: str,
    value_col: str,
    calibration_end: str | pd.Timestamp,
    observation_start: str | pd.Timestamp | None = None,
    holdout_end: str | pd.Timestamp | None = None,
    time_unit_days: float = 1.0,
) -> pd.DataFrame:
    """Per-customer calibration summary: the pandas reference for the SQL model.

    Every row is a purchase (pass sales only; filter returns upstream, as zero-value
    rows still count, like CDNOW's free items). Rows are collapsed to calendar days
    (value summed per day), so several receipts on one day are one purchase. Rows with
    no customer are dropped. Transactions in
    [observation_start, calibration_end] (both dates inclusive; no lower bound when
    observation_start is None) form the calibration period; a customer enters at their
    first purchase day inside it. Durations are whole days divided by ``time_unit_days``:

    - frequency = purchase days - 1; recency = last day - first day;
    - T = calibration_end - first day;
    - monetary_value = mean daily value over the repeat days (first day excluded),
      0 when frequency = 0.

    With ``holdout_end``, also holdout_purchases (purchase days in
    (calibration_end, holdout_end]), holdout_spend (their total value) and
    holdout_duration, for calibration customers only. Indexed by customer.
    """
    cal_end = pd.Timestamp(calibration_end).normalize()
    days = pd.DataFrame(
        {
            "customer": frame[customer_col].to_numpy(),
            "day": pd.to_datetime(frame[date_col]).dt.normalize().to_numpy(),
            "value": frame[value_col].astype(float).to_numpy(),
        }
    )
    days = days[days["customer"].notna()]
    daily = days.groupby(["customer", "day"], sort=True, as_index=False)["value"].sum()

    in_cal = daily["day"] <= cal_end
    if observation_start is not None:
        in_cal &= daily["day"] >= pd.Timestamp(observation_start).normalize()
    cal = daily[in_cal].copy()
    first_day = cal.groupby("customer")["day"].transform("min")
    cal["is_repeat"] = cal["day"] > first_day
    grouped = cal.groupby("customer", sort=True)
    first = grouped["day"].min()
    last = grouped["day"].max()
    n_days = grouped["day"].count()
    repeat_value = cal[cal["is_repeat"]].groupby("customer")["value"].sum()
    unit = pd.Timedelta(days=1)
    summary = pd.DataFrame(
        {
            "frequency": (n_days - 1).astype(np.int64),
            "recency": ((last - first) / unit) / time_unit_days,
            "T": ((cal_end - first) / unit) / time_unit_days,
        }
    )
    repeat_value = repeat_value.reindex(summary.index, fill_value=0.0)
    summary["monetary_value"] = np.where(
        summary["frequency"] > 0,
        repeat_value / summary["frequency"].clip(lower=1),
        0.0,
    )
    summary.index.name = customer_col

    if holdout_end is not None:
        hold_end = pd.Timestamp(holdout_end).normalize()
        if hold_end <= cal_end:
            raise ValueError("holdout_end must be after calibration_end")
        hold = daily[(daily["day"] > cal_end) & (daily["day"] <= hold_end)]
        hold = hold[hold["customer"].isin(summary.index)]
        by_customer = hold.groupby("customer")
        summary["holdout_purchases"] = (
            by_customer["day"].count().reindex(summary.index, fill_value=0).astype(np.int64)
        )
        summary["holdout_spend"] = (
            by_customer["value"].sum().reindex(summary.index, fill_value=0.0).astype(float)
        )
        summary["holdout_duration"] = ((hold_end - cal_end) / unit) / time_unit_days
    return summary
