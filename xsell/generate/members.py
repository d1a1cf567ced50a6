"""Loyalty members and their visits: a BG/NBD process started at the programme launch.

Each member joins with a first visit (joined_at), then makes repeat visits as a
Poisson process with rate lambda ~ Gamma(r, rate alpha) while alive, and after
each repeat visit drops out with probability p ~ Beta(a, b) (Fader, Hardie &
Lee 2005). Time runs in operational days (see calendar.py), so visits follow
the weekday and seasonal traffic pattern while a lifetime-value model fitted on
calendar days still sees the planted (r, alpha, a, b) up to that weekly wobble.

Joins are front-loaded: the join rate J(t) solves
    rho = J(t) + integral_0^t J(s) g(t - s) ds,
with g the expected repeat rate at a given membership age and rho the planted
member receipts per day, so the member share of receipts is about constant over
the whole period instead of ramping up from zero.

All member visits (and their checkout times) are drawn before the chunked
generation starts, so the chunk size cannot change them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy import stats

from xsell.contract import CUSTOMERS
from xsell.generate import ids
from xsell.generate.calendar import US_PER_SECOND, Calendar, draw_time_of_day, operational_to_day
from xsell.generate.config import BgNbdConfig, StoreConfig

_QUANTILES = 2000


@dataclass(frozen=True)
class Members:
    table: pa.Table  # the customers table, ordered by customer_id (= join order)
    household: np.ndarray  # (members,) household size 1..6
    distance: np.ndarray  # (members,) km, unrounded (the restaurant model uses it)
    visit_customer: np.ndarray  # (visits,) member index; visits sorted by day, store, time
    visit_day: np.ndarray
    visit_store: np.ndarray
    visit_tod: np.ndarray  # seconds after midnight
    expected_visits: float  # planted member receipts over the period

    @property
    def customer_ids(self) -> pa.Array:
        return self.table.column("customer_id").combine_chunks()


def expected_repeats(ages: np.ndarray, bg: BgNbdConfig) -> np.ndarray:
    """E[X(t)], the BG/NBD expected repeat visits by membership age t.

    Exact in lambda, E[X(t) | p] = (1 - (alpha / (alpha + p t))^r) / p, then
    averaged over Beta quantiles of p (finite also for a <= 1).
    """
    p = stats.beta.ppf((np.arange(_QUANTILES) + 0.5) / _QUANTILES, bg.a, bg.b)
    p = np.maximum(p, 1e-12)
    t = np.asarray(ages, dtype=float)[:, None]
    return np.mean(-np.expm1(-bg.r * np.log1p(p * t / bg.alpha)) / p, axis=1)


def join_intensity(days: int, rho: float, bg: BgNbdConfig) -> np.ndarray:
    """Expected joins per operational day that keep member visits at rho per day."""
    ex = expected_repeats(np.arange(days + 1) + 0.5, bg)
    repeat_rate = np.concatenate([[ex[0]], np.diff(ex)])  # visits at age j of a day-0 joiner
    joins = np.zeros(days)
    for k in range(days):  # one step per day, not per visit
        owed = rho - np.dot(joins[:k], repeat_rate[k:0:-1])
        joins[k] = max(owed, 0.0) / (1.0 + repeat_rate[0])
    return joins


def simulate_members(config: StoreConfig, calendar: Calendar, rng: np.random.Generator) -> Members:
    """Members, their attributes and every member visit of the period."""
    cust, bg = config.customers, config.customers.bgnbd
    rho = cust.member_receipt_share * config.stores * config.visits_per_day
    joins = join_intensity(calendar.days, rho, bg)
    n = int(round(joins.sum()))
    join_tau = rng.choice(calendar.days, size=n, p=joins / joins.sum()) + rng.random(n)
    owner, offset = _repeat_visits(rng, calendar.days - join_tau, bg)
    visit_owner = np.concatenate([np.arange(n), owner])
    tau = np.concatenate([join_tau, join_tau[owner] + offset])
    day = operational_to_day(calendar, tau)
    tod = draw_time_of_day(rng, tau.size, calendar)
    stamp = calendar.day_start_us[day] + tod * US_PER_SECOND
    # The earliest visit is the join: order members by it and give it the home store.
    by_time = np.lexsort((stamp, visit_owner))
    first = np.ones(by_time.size, dtype=bool)
    first[1:] = visit_owner[by_time][1:] != visit_owner[by_time][:-1]
    joined_at = np.empty(n, dtype=np.int64)
    joined_at[visit_owner[by_time][first]] = stamp[by_time][first]
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), joined_at))] = np.arange(n)
    home = rng.integers(0, config.stores, size=n)
    store = np.empty(by_time.size, dtype=np.int64)
    store[by_time] = _visit_stores(rng, home[visit_owner[by_time]], first, config)
    household = rng.choice(6, size=n, p=_normalised(cust.household_weights)) + 1
    distance = np.exp(rng.normal(np.log(cust.distance_median_km), cust.distance_sigma, size=n))
    order = np.argsort(rank)
    table = pa.table(
        {
            "customer_id": ids.compose(n, "C", ids.digits(np.arange(1, n + 1), 7)),
            "household_size": pa.array(household[order], pa.int32()),
            "distance_km": pa.array(np.maximum(np.round(distance[order], 1), 0.1)),
            "joined_at": ids.timestamps(joined_at[order]),
        },
        schema=CUSTOMERS.schema,
    )
    visit_customer = rank[visit_owner]
    sort = np.lexsort((visit_customer, tod, store, day))
    return Members(
        table=table,
        household=household[order],
        distance=distance[order],
        visit_customer=visit_customer[sort],
        visit_day=day[sort],
        visit_store=store[sort],
        visit_tod=tod[sort],
        expected_visits=rho * calendar.days,
    )


def _repeat_visits(
    rng: np.random.Generator, remaining: np.ndarray, bg: BgNbdConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Owner and time after joining of every repeat visit inside the remaining horizon.

    While alive a member's visits are a Poisson process, so given N visits in
    the horizon their times are sorted uniforms; the member survives the first
    K ~ Geometric(p) repeat visits, so the first min(K, N) are kept.
    """
    n = remaining.size
    lam = rng.gamma(bg.r, 1.0 / bg.alpha, size=n)
    dropout = np.clip(rng.beta(bg.a, bg.b, size=n), 1e-9, 1.0)
    alive_for = rng.geometric(dropout)
    in_horizon = rng.poisson(lam * remaining)
    kept = np.minimum(alive_for, in_horizon)
    owner = np.repeat(np.arange(n), in_horizon)
    offset = rng.random(owner.size) * remaining[owner]
    order = np.lexsort((offset, owner))
    owner, offset = owner[order], offset[order]
    starts = np.cumsum(in_horizon) - in_horizon
    position = np.arange(owner.size) - starts[owner]
    keep = position < kept[owner]
    return owner[keep], offset[keep]


def _visit_stores(
    rng: np.random.Generator, home: np.ndarray, is_first: np.ndarray, config: StoreConfig
) -> np.ndarray:
    """Home store for the join visit and most repeats; another store for the rest."""
    if config.stores == 1:
        return home
    away = (~is_first) & (rng.random(home.size) >= config.customers.home_store_share)
    other = (home + 1 + rng.integers(0, config.stores - 1, size=home.size)) % config.stores
    return np.where(away, other, home)


def _normalised(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()
