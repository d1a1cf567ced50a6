"""The basket model: which add-on categories a receipt contains, solved for planted lifts.

A purchase receipt has a *type*: 0 (no anchor) or family a (one LARGE line of
family a). Given its type, each add-on category c is included independently
with probability ``pi[t, c] * m[s, h, c]``, where ``m`` is a context multiplier
(s = which category is on campaign that day, h = hour): the impulse hour curve
and the campaign uplift. A receipt without anchor and without any category gets
exactly one category, drawn in proportion to its inclusion probabilities.

Lift is planted exactly in expectation. With w_t the type shares, E0_c the
effective inclusion of receipts without anchor (fallback included, averaged
over contexts) and E[m_c] the mean multiplier,

    P(c) = w_0 E0_c + sum_a w_a pi[a, c] E[m_c]
    pi[a, c] E[m_c] = L[a, c] P(c)   (the planted lift)
    =>  P(c) = w_0 E0_c / (1 - sum_a w_a L[a, c]).

Context multipliers apply to every type alike and the type does not depend on
the context, so they leave lift unchanged as long as no probability exceeds 1
(checked here).

The share of anchor receipts with >= 2 add-on lines is planted by topping up
receipts with exactly one included category: each included category has
1 + Poisson(extra_line_rate) lines, and a one-category anchor receipt whose
category has one line gets a second product with probability ``topup[a]``,
solved from the Poisson-binomial P(N = 0), P(N = 1) of the inclusion count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xsell.generate.calendar import Calendar, mean_one
from xsell.generate.config import ConfigError, StoreConfig


@dataclass(frozen=True)
class BasketModel:
    anchor_share: float
    family_weights: np.ndarray  # (F,), sums to 1
    household_multiplier: np.ndarray  # (6,), anchor probability by household size 1..6
    inclusion: np.ndarray  # (1 + F, C) base inclusion per receipt type
    multiplier: np.ndarray  # (S, H, C) context multiplier; state 0 = no campaign
    day_state: np.ndarray  # (days,) state of each day: 1 + add-on index on campaign, else 0
    topup: np.ndarray  # (F,) chance to add a second line to one-category anchor receipts
    extra_line_rate: float
    anchor_extra_line_share: float
    expected_share: np.ndarray  # (C,) planted P(c) over purchase receipts
    expected_min2_share: np.ndarray  # (F,) planted share of >= 2 add-on lines

    def receipt_probabilities(
        self, receipt_type: np.ndarray, day: np.ndarray, hour: np.ndarray
    ) -> np.ndarray:
        """(n, C) inclusion probabilities of each receipt's add-on categories."""
        return self.inclusion[receipt_type] * self.multiplier[self.day_state[day], hour]


def build_basket_model(
    config: StoreConfig, calendar: Calendar, day_campaign_category: np.ndarray
) -> BasketModel:
    """Solve inclusion probabilities and top-up rates for the planted values.

    ``day_campaign_category`` holds, per day, the add-on index on campaign or -1.
    """
    basket, addons = config.basket, config.catalogue.addons
    fam_w = np.array([f.weight for f in config.catalogue.anchors], dtype=float)
    fam_w /= fam_w.sum()
    share = basket.anchor_receipt_share
    type_w = np.concatenate([[1 - share], share * fam_w])
    day_state = np.where(day_campaign_category >= 0, day_campaign_category + 1, 0)
    mult = context_multiplier(config, calendar)
    ctx_w = context_weights(day_state, calendar, len(addons) + 1)
    pi0 = np.array([c.base_inclusion for c in addons])
    lifts = np.array(
        [[basket.lift(f.name, c.name) for c in addons] for f in config.catalogue.anchors]
    )
    share = planted_category_share(pi0, lifts, type_w, mult, ctx_w)
    mean_m = np.einsum("sh,shc->c", ctx_w, mult)
    inclusion = np.vstack([pi0, lifts * share / mean_m])
    _check_probabilities(inclusion, mult, ctx_w, config)
    topup, min2 = topup_rates(
        inclusion[1:], mult, ctx_w, basket.addon_min2_share, basket.extra_line_rate
    )
    hh_w = np.asarray(config.customers.household_weights, dtype=float)
    return BasketModel(
        anchor_share=basket.anchor_receipt_share,
        family_weights=fam_w,
        household_multiplier=mean_one(basket.household_anchor_multiplier, hh_w),
        inclusion=inclusion,
        multiplier=mult,
        day_state=day_state,
        topup=topup,
        extra_line_rate=basket.extra_line_rate,
        anchor_extra_line_share=basket.anchor_extra_line_share,
        expected_share=share,
        expected_min2_share=min2,
    )


def impulse_hour_multiplier(config: StoreConfig, calendar: Calendar) -> np.ndarray:
    """(H, C): the impulse curve (mean 1 over visit hours) for impulse categories, else 1."""
    addons = config.catalogue.addon_names
    curve = mean_one(config.impulse.hour_multiplier, calendar.hour_weights)
    is_impulse = np.array([c in config.impulse.categories for c in addons])
    return np.where(is_impulse[None, :], curve[:, None], 1.0)


def context_multiplier(config: StoreConfig, calendar: Calendar) -> np.ndarray:
    """(S, H, C): impulse curve times the campaign uplift of the category on campaign."""
    n_addons = len(config.catalogue.addons)
    campaign = np.ones((n_addons + 1, n_addons))
    campaign[np.arange(1, n_addons + 1), np.arange(n_addons)] = config.campaigns.uplift
    return campaign[:, None, :] * impulse_hour_multiplier(config, calendar)[None, :, :]


def context_weights(day_state: np.ndarray, calendar: Calendar, n_states: int) -> np.ndarray:
    """(S, H): share of visits in each (campaign state, hour); day and hour are independent."""
    day_w = calendar.day_weights / calendar.day_weights.sum()
    state_w = np.bincount(day_state, weights=day_w, minlength=n_states)
    return state_w[:, None] * calendar.hour_weights[None, :]


def count_probabilities(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(N = 0) and P(N = 1) of a Poisson-binomial count over the last axis."""
    q0 = np.ones(p.shape[:-1])
    q1 = np.zeros(p.shape[:-1])
    for c in range(p.shape[-1]):
        q0, q1 = q0 * (1 - p[..., c]), q1 * (1 - p[..., c]) + q0 * p[..., c]
    return q0, q1


def nonanchor_inclusion(pi0: np.ndarray, mult: np.ndarray, ctx_w: np.ndarray) -> np.ndarray:
    """E0_c: inclusion of receipts without anchor, counting the one-category fallback."""
    p = pi0 * mult  # (S, H, C)
    none, _ = count_probabilities(p)
    fallback = none[..., None] * p / p.sum(axis=-1, keepdims=True)
    return np.einsum("sh,shc->c", ctx_w, p + fallback)


def planted_category_share(
    pi0: np.ndarray, lifts: np.ndarray, type_w: np.ndarray, mult: np.ndarray, ctx_w: np.ndarray
) -> np.ndarray:
    """P(c) over purchase receipts that makes pi[a, c] = L[a, c] P(c) / E[m_c] consistent."""
    pull = type_w[1:] @ lifts  # sum_a w_a L[a, c]
    if np.any(pull >= 1):
        bad = np.flatnonzero(pull >= 1).tolist()
        raise ConfigError(f"lifts too high: sum_a w_a L[a, c] >= 1 for add-on index {bad}")
    return type_w[0] * nonanchor_inclusion(pi0, mult, ctx_w) / (1 - pull)


def topup_rates(
    anchor_inclusion: np.ndarray, mult: np.ndarray, ctx_w: np.ndarray, target: float, extra: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per family, the top-up chance that plants the >= 2 add-on line share, and that share."""
    p = anchor_inclusion[:, None, None, :] * mult[None]  # (F, S, H, C)
    none, one = count_probabilities(p)
    p0 = np.einsum("sh,fsh->f", ctx_w, none)
    p1 = np.einsum("sh,fsh->f", ctx_w, one)
    natural_multi = 1 - np.exp(-extra)  # a lone category has a second product anyway
    natural = 1 - p0 - p1 + p1 * natural_multi
    with np.errstate(divide="ignore", invalid="ignore"):
        topup = (target - natural) / (p1 * (1 - natural_multi))
    if np.any(topup > 1) or np.any(topup < 0):
        reachable = (natural.min(), (1 - p0).min())
        raise ConfigError(
            f"basket.addon_min2_share {target} is not reachable: with these inclusion "
            f"probabilities it lies between {reachable[0]:.3f} and {reachable[1]:.3f}"
        )
    return topup, natural + p1 * (1 - natural_multi) * topup


def _check_probabilities(
    inclusion: np.ndarray, mult: np.ndarray, ctx_w: np.ndarray, config: StoreConfig
) -> None:
    """Every inclusion probability in every occurring context must stay <= 1.

    A capped probability would bend the planted lifts and uplifts, so the
    configuration is rejected instead.
    """
    occurring = ctx_w > 0  # (S, H)
    peak = np.where(occurring[None, :, :, None], inclusion[:, None, None, :] * mult[None], 0)
    worst = peak.max(axis=(1, 2))  # (types, C)
    if worst.max() > 1:
        t, c = np.unravel_index(np.argmax(worst), worst.shape)
        receipt = "without anchor" if t == 0 else config.catalogue.anchors[t - 1].name
        raise ConfigError(
            f"inclusion of {config.catalogue.addons[c].name} in receipts {receipt} would reach "
            f"{worst.max():.2f} > 1 (lift x share x impulse x campaign uplift); lower them"
        )
