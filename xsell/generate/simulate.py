"""One chunk of store life, vectorised: receipts, their lines, returns, restaurant orders.

Everything here works on whole arrays (one row per receipt or per line); no
Python loop runs per receipt or per line. The functions are pure given their
random generator, which store.py derives from the seed and the chunk number.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import stats

from xsell.generate.calendar import SECONDS_PER_HOUR, Calendar, draw_time_of_day, mean_one
from xsell.generate.campaigns import Campaigns
from xsell.generate.catalogue import Catalogue
from xsell.generate.config import ConfigError, StoreConfig
from xsell.generate.members import Members
from xsell.generate.model import BasketModel


@dataclass(frozen=True)
class Receipts:
    """Purchase receipts of a chunk, sorted by day, store, checkout time."""

    store: np.ndarray
    day: np.ndarray
    tod: np.ndarray  # seconds after midnight
    customer: np.ndarray  # member index, -1 for anonymous
    household: np.ndarray
    distance: np.ndarray
    family: np.ndarray  # anchor family index, -1 without anchor

    @property
    def size(self) -> int:
        return self.day.size


@dataclass(frozen=True)
class Lines:
    """Receipt lines; the lines of a receipt are contiguous and numbered from 1."""

    receipt: np.ndarray  # index into the receipts
    line_number: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    campaign: np.ndarray  # campaign index, -1 when none applied


@dataclass(frozen=True)
class ReturnLines:
    """Returned lines waiting for their return day; ``key`` groups one return receipt."""

    key: np.ndarray
    store: np.ndarray
    day: np.ndarray
    tod: np.ndarray
    customer: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    campaign: np.ndarray

    @classmethod
    def empty(cls) -> ReturnLines:
        return cls(**{f.name: np.zeros(0, dtype=np.int64) for f in fields(cls)})

    def select(self, mask: np.ndarray) -> ReturnLines:
        return ReturnLines(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    def concat(self, other: ReturnLines) -> ReturnLines:
        return ReturnLines(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )


@dataclass(frozen=True)
class RestaurantModel:
    """Restaurant visit probability = rate(anchor?) x distance multiplier x hour multiplier."""

    anchor_rate: float
    other_rate: float
    band_edges: np.ndarray
    distance_multiplier: np.ndarray  # mean 1 over the member distance distribution
    hour_multiplier: np.ndarray  # mean 1 over visit hours


@dataclass(frozen=True)
class RestaurantOrders:
    store: np.ndarray
    day: np.ndarray
    tod: np.ndarray
    customer: np.ndarray
    amount: np.ndarray


def build_restaurant_model(config: StoreConfig, calendar: Calendar) -> RestaurantModel:
    """Normalise the multipliers analytically so the planted rates hold on average."""
    rest, cust = config.restaurant, config.customers
    z = (np.log(rest.distance_band_km) - np.log(cust.distance_median_km)) / cust.distance_sigma
    band_share = np.diff(np.concatenate([[0.0], stats.norm.cdf(z), [1.0]]))
    model = RestaurantModel(
        anchor_rate=rest.anchor_rate,
        other_rate=rest.other_rate,
        band_edges=np.asarray(rest.distance_band_km, dtype=float),
        distance_multiplier=mean_one(rest.distance_multiplier, band_share),
        hour_multiplier=mean_one(rest.hour_multiplier, calendar.hour_weights),
    )
    peak = max(rest.anchor_rate, rest.other_rate) * model.distance_multiplier.max()
    if peak * model.hour_multiplier.max() > 1:
        raise ConfigError("restaurant rate x distance x hour multipliers exceeds 1; lower them")
    return model


def draw_receipts(
    rng: np.random.Generator,
    first_day: int,
    end_day: int,
    anonymous_counts: np.ndarray,
    members: Members,
    model: BasketModel,
    config: StoreConfig,
    calendar: Calendar,
) -> Receipts:
    """Member visits from the schedule plus anonymous visits, then each receipt's type."""
    lo, hi = np.searchsorted(members.visit_day, [first_day, end_day])
    member = members.visit_customer[lo:hi]
    counts = anonymous_counts[:, first_day:end_day].T.ravel()  # day-major, then store
    n_stores = anonymous_counts.shape[0]
    cells = np.arange(counts.size)
    anon_day = np.repeat(first_day + cells // n_stores, counts)
    anon_store = np.repeat(cells % n_stores, counts)
    n_anon = anon_day.size
    cust = config.customers
    hh_w = np.asarray(cust.household_weights) / np.sum(cust.household_weights)
    anon_hh = rng.choice(6, size=n_anon, p=hh_w) + 1
    anon_distance = np.exp(rng.normal(np.log(cust.distance_median_km), cust.distance_sigma, n_anon))
    day = np.concatenate([members.visit_day[lo:hi], anon_day])
    store = np.concatenate([members.visit_store[lo:hi], anon_store])
    tod = np.concatenate([members.visit_tod[lo:hi], draw_time_of_day(rng, n_anon, calendar)])
    customer = np.concatenate([member, np.full(n_anon, -1)])
    household = np.concatenate([members.household[member], anon_hh])
    distance = np.concatenate([members.distance[member], anon_distance])
    order = np.lexsort((np.arange(day.size), tod, store, day))
    household = household[order]
    p_anchor = model.anchor_share * model.household_multiplier[household - 1]
    is_anchor = rng.random(day.size) < p_anchor
    family = rng.choice(model.family_weights.size, size=day.size, p=model.family_weights)
    return Receipts(
        store=store[order],
        day=day[order],
        tod=tod[order],
        customer=customer[order],
        household=household,
        distance=distance[order],
        family=np.where(is_anchor, family, -1),
    )


def draw_lines(
    rng: np.random.Generator,
    receipts: Receipts,
    model: BasketModel,
    catalogue: Catalogue,
    campaigns: Campaigns,
    config: StoreConfig,
    favourites: np.ndarray | None = None,
    taste_rng: np.random.Generator | None = None,
) -> Lines:
    """Lines of every receipt: anchor line(s) first, then add-on categories in order.

    ``favourites`` (members x add-on categories) holds each member's own product per
    add-on category; a member's add-on line takes it with probability
    ``customers.taste_share`` (coin from ``taste_rng``, so ``rng``'s stream is the same
    with or without taste)."""
    n, n_fam = receipts.size, catalogue.n_families
    hour = receipts.tod // SECONDS_PER_HOUR - config.calendar.open_hour
    is_anchor = receipts.family >= 0
    prob = model.receipt_probabilities(receipts.family + 1, receipts.day, hour)
    included = rng.random(prob.shape) < prob
    _force_one_category(rng, included, prob, ~is_anchor)
    per_category = included * (1 + rng.poisson(model.extra_line_rate, size=prob.shape))
    _top_up(rng, per_category, included, receipts.family, model.topup)
    counts = np.zeros((n, n_fam + prob.shape[1]), dtype=np.int64)
    second = rng.random(n) < model.anchor_extra_line_share
    counts[np.flatnonzero(is_anchor), receipts.family[is_anchor]] = 1 + second[is_anchor]
    counts[:, n_fam:] = per_category
    flat = counts.ravel()
    cells = np.flatnonzero(flat)
    line_receipt = np.repeat(cells // counts.shape[1], flat[cells])
    category = np.repeat(cells % counts.shape[1], flat[cells])
    per_receipt = counts.sum(axis=1)
    starts = np.cumsum(per_receipt) - per_receipt
    line_number = np.arange(line_receipt.size) - starts[line_receipt] + 1
    product = catalogue.draw_products(rng, category)
    if favourites is not None and config.customers.taste_share > 0:
        member = receipts.customer[line_receipt]
        addon = category - n_fam
        loyal = (member >= 0) & (addon >= 0)
        loyal &= taste_rng.random(line_receipt.size) < config.customers.taste_share
        product[loyal] = favourites[member[loyal], addon[loyal]]
    qty_mean = np.concatenate([np.ones(n_fam), [c.quantity_mean for c in config.catalogue.addons]])
    quantity = 1 + rng.poisson(qty_mean[category] - 1)
    line_day = receipts.day[line_receipt]
    on_campaign = category == campaigns.day_category[line_day] + n_fam
    campaign = np.where(on_campaign, campaigns.day_campaign[line_day], -1)
    discount = np.where(on_campaign, campaigns.day_discount[line_day], 0.0)
    price = np.round(catalogue.price[product] * (1 - discount), 2)
    return Lines(line_receipt, line_number, product, quantity, price, campaign)


def _force_one_category(
    rng: np.random.Generator, included: np.ndarray, prob: np.ndarray, eligible: np.ndarray
) -> None:
    """A receipt without anchor and without any category gets one, in proportion to prob."""
    empty = np.flatnonzero(eligible & ~included.any(axis=1))
    if empty.size == 0:
        return
    cum = np.cumsum(prob[empty], axis=1)
    u = rng.random(empty.size) * cum[:, -1]
    pick = np.minimum((cum <= u[:, None]).sum(axis=1), prob.shape[1] - 1)
    included[empty, pick] = True


def _top_up(
    rng: np.random.Generator,
    per_category: np.ndarray,
    included: np.ndarray,
    family: np.ndarray,
    topup: np.ndarray,
) -> None:
    """Second product for one-line, one-category anchor receipts (plants the >= 2 share)."""
    lone = (family >= 0) & (included.sum(axis=1) == 1) & (per_category.sum(axis=1) == 1)
    rows = np.flatnonzero(lone & (rng.random(family.size) < topup[np.maximum(family, 0)]))
    per_category[rows, np.argmax(included[rows], axis=1)] += 1


def draw_returns(
    rng: np.random.Generator,
    receipts: Receipts,
    lines: Lines,
    key_offset: int,
    config: StoreConfig,
    calendar: Calendar,
) -> ReturnLines:
    """Returned lines: one return trip per receipt, 1..max_days later, within the period."""
    returned = rng.random(lines.receipt.size) < config.returns.line_share
    trip = np.unique(lines.receipt[returned])
    delay = np.zeros(receipts.size, dtype=np.int64)
    delay[trip] = rng.integers(1, config.returns.max_days + 1, size=trip.size)
    tod = np.zeros(receipts.size, dtype=np.int64)
    tod[trip] = draw_time_of_day(rng, trip.size, calendar)
    r = lines.receipt
    day = receipts.day[r] + delay[r]
    keep = returned & (day < calendar.days)
    r = r[keep]
    return ReturnLines(
        key=key_offset + r,
        store=receipts.store[r],
        day=day[keep],
        tod=tod[r],
        customer=receipts.customer[r],
        product=lines.product[keep],
        quantity=-lines.quantity[keep],
        price=lines.price[keep],
        campaign=lines.campaign[keep],
    )


def draw_restaurant(
    rng: np.random.Generator, receipts: Receipts, model: RestaurantModel, config: StoreConfig
) -> RestaurantOrders:
    """Restaurant orders of the same visit, 30-180 minutes before or after checkout."""
    rest = config.restaurant
    hour = receipts.tod // SECONDS_PER_HOUR - config.calendar.open_hour
    band = np.searchsorted(model.band_edges, receipts.distance, side="right")
    rate = np.where(receipts.family >= 0, model.anchor_rate, model.other_rate)
    prob = rate * model.distance_multiplier[band] * model.hour_multiplier[hour]
    eats = np.flatnonzero(rng.random(receipts.size) < prob)
    offset = rng.integers(rest.offset_minutes[0] * 60, rest.offset_minutes[1] * 60 + 1, eats.size)
    checkout = receipts.tod[eats]
    before_ok = checkout - offset >= rest.open_hour * SECONDS_PER_HOUR
    after_ok = checkout + offset < rest.close_hour * SECONDS_PER_HOUR
    before = (rng.random(eats.size) < rest.before_share) & before_ok | ~after_ok
    party = 1 + rng.binomial(receipts.household[eats] - 1, rest.party_share)
    per_person = np.exp(rng.normal(np.log(rest.amount_median), rest.amount_sigma, eats.size))
    return RestaurantOrders(
        store=receipts.store[eats],
        day=receipts.day[eats],
        tod=np.where(before, checkout - offset, checkout + offset),
        customer=receipts.customer[eats],
        amount=np.maximum(np.round(party * per_person, 2), 0.5),
    )
