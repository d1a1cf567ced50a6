"""Category campaigns: a few weeks of discount on one add-on category.

Campaigns never overlap (each sits in its own slot of the period), so on any
day at most one category is promoted; the basket model treats "which category
is on campaign" as a day state. ends_at is exclusive (midnight after the last
day), as staging documents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xsell.contract import CAMPAIGNS
from xsell.generate import ids
from xsell.generate.calendar import US_PER_SECOND, Calendar
from xsell.generate.config import CampaignConfig

US_PER_DAY = 86400 * US_PER_SECOND


@dataclass(frozen=True)
class Campaigns:
    table: pa.Table
    start_day: np.ndarray  # first day index
    end_day: np.ndarray  # day index after the last day
    category: np.ndarray  # add-on index (position in catalogue.addons)
    discount: np.ndarray  # fraction off the regular price
    day_campaign: np.ndarray  # (days,) campaign index running that day, or -1
    day_category: np.ndarray  # (days,) add-on index on campaign that day, or -1
    day_discount: np.ndarray  # (days,) discount fraction of that day's campaign, or 0

    @property
    def campaign_ids(self) -> pa.Array:
        return self.table.column("campaign_id").combine_chunks()


def campaign_count(config: CampaignConfig, days: int) -> int:
    """About per_year a year, at least one when campaigns are on at all."""
    if config.per_year <= 0:
        return 0
    return max(1, round(config.per_year * days / 365))


def build_campaigns(
    config: CampaignConfig,
    addon_names: tuple[str, ...],
    calendar: Calendar,
    rng: np.random.Generator,
) -> Campaigns:
    """Campaign calendar, one per equal slot of the period, targets without repeats."""
    n = campaign_count(config, calendar.days)
    edges = np.floor(np.arange(n + 1) * calendar.days / max(n, 1)).astype(np.int64)
    slot = np.diff(edges)
    duration = np.minimum(
        rng.integers(config.duration_days[0], config.duration_days[1] + 1, size=n), slot
    )
    start = edges[:-1] + rng.integers(0, slot - duration + 1)
    end = start + duration
    order = rng.permutation(len(config.target_categories))
    targets = [config.target_categories[order[i % len(order)]] for i in range(n)]
    category = np.array([addon_names.index(t) for t in targets], dtype=np.int64)
    discount_pct = rng.integers(
        int(config.discount_pct[0]), int(config.discount_pct[1]) + 1, size=n
    ).astype(float)
    day_campaign = np.full(calendar.days, -1, dtype=np.int64)
    for i in range(n):  # one step per campaign
        day_campaign[start[i] : end[i]] = i
    running = day_campaign >= 0
    day_category = np.where(running, np.append(category, -1)[day_campaign], -1)
    day_discount = np.where(running, np.append(discount_pct / 100.0, 0.0)[day_campaign], 0.0)
    base = int(calendar.day_start_us[0])
    months = np.datetime_as_string((base // US_PER_DAY + start).astype("datetime64[D]"), unit="M")
    table = pa.table(
        {
            "campaign_id": ids.compose(n, "CMP", ids.digits(np.arange(1, n + 1), 3)),
            "campaign_name": pa.array(
                [f"{t.capitalize()} weeks {m}" for t, m in zip(targets, months, strict=True)],
                pa.string(),
            ),
            "starts_at": ids.timestamps(base + start * US_PER_DAY),
            "ends_at": ids.timestamps(base + end * US_PER_DAY),
            "target_category": pa.array(targets, pa.string()),
            "target_product_id": pa.nulls(n, pa.string()),
            "discount_pct": pa.array(discount_pct),
        },
        schema=CAMPAIGNS.schema,
    )
    return Campaigns(
        table=table,
        start_day=start,
        end_day=end,
        category=category,
        discount=discount_pct / 100.0,
        day_campaign=day_campaign,
        day_category=day_category,
        day_discount=day_discount,
    )
