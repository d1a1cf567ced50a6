"""Days, opening hours and traffic weights of the generated period.

Store traffic is a day weight (weekday pattern times a yearly cosine, rescaled
to mean 1 over the period) times an hour-of-day distribution that is the same
every day. Because hour and day are independent, any hour multiplier with mean
1 over the hour distribution keeps its mean 1 over all visits.

The member process runs in *operational time*: one unit is an average day, and
day ``d`` covers ``[cum[d], cum[d + 1])``. A Poisson process in operational
time therefore visits busy days more, in proportion to their weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xsell.generate.config import StoreConfig

US_PER_SECOND = 1_000_000
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Calendar:
    days: int
    day_weights: np.ndarray  # (days,), mean 1
    cum: np.ndarray  # (days + 1,), operational-time boundaries; cum[-1] == days
    yyyymmdd: np.ndarray  # (days,) int64, for identifiers
    day_start_us: np.ndarray  # (days,) int64, midnight in microseconds since the epoch
    open_hour: int
    hour_weights: np.ndarray  # (hours,), sums to 1

    @property
    def hours(self) -> int:
        return len(self.hour_weights)


def build_calendar(config: StoreConfig) -> Calendar:
    """Dates and weights of every generated day."""
    cal = config.calendar
    dates = np.datetime64(config.start_date, "D") + np.arange(config.days)
    epoch_days = dates.astype(np.int64)
    weekday = (epoch_days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    season = 1.0 + cal.season_amplitude * np.cos(
        2 * np.pi * (day_of_year - cal.season_peak_day) / 365.25
    )
    weights = np.asarray(cal.weekday_weights, dtype=float)[weekday] * season
    weights = weights / weights.mean()
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    mdays = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    hour_weights = np.asarray(cal.hour_weights, dtype=float)
    return Calendar(
        days=config.days,
        day_weights=weights,
        cum=np.concatenate([[0.0], np.cumsum(weights)]),
        yyyymmdd=years * 10000 + months * 100 + mdays,
        day_start_us=epoch_days * 86400 * US_PER_SECOND,
        open_hour=cal.open_hour,
        hour_weights=hour_weights / hour_weights.sum(),
    )


def draw_time_of_day(rng: np.random.Generator, n: int, calendar: Calendar) -> np.ndarray:
    """Checkout times in seconds after midnight, following the hourly visit weights."""
    hour = rng.choice(calendar.hours, size=n, p=calendar.hour_weights)
    second = rng.integers(0, SECONDS_PER_HOUR, size=n)
    return (calendar.open_hour + hour) * SECONDS_PER_HOUR + second


def operational_to_day(calendar: Calendar, tau: np.ndarray) -> np.ndarray:
    """The day index holding each operational time."""
    day = np.searchsorted(calendar.cum, tau, side="right") - 1
    return np.clip(day, 0, calendar.days - 1)


def mean_one(raw: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Raw multipliers divided by their weighted mean, so they average exactly 1."""
    raw = np.asarray(raw, dtype=float)
    return raw / float(np.dot(raw, weights / np.sum(weights)))
