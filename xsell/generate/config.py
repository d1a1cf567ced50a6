"""The planted parameters of the synthetic store, read from ``store.yml``.

Every number the generator plants (anchor share, lifts, restaurant rates, BG/NBD
parameters, ...) lives in the YAML file shipped with the package, so tests and
mart tests read the same values the generator used instead of repeating
literals. ``load_config()`` turns the YAML into frozen dataclasses; a user YAML
only needs the keys it changes (it is merged over the packaged file).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A store configuration that is malformed or cannot plant what it asks for."""


@dataclass(frozen=True)
class CalendarConfig:
    """Opening hours and the shape of traffic over hours, weekdays and the year."""

    open_hour: int
    close_hour: int
    hour_weights: tuple[float, ...]  # one per opening hour, open_hour .. close_hour - 1
    weekday_weights: tuple[float, ...]  # Monday .. Sunday, rescaled to mean 1
    season_amplitude: float  # relative swing of a yearly cosine
    season_peak_day: int  # day of the year where the cosine peaks


@dataclass(frozen=True)
class AnchorFamily:
    """A LARGE product family whose purchase pulls add-ons along."""

    name: str
    weight: float  # share of anchor receipts (rescaled to sum 1)
    products: int
    price: tuple[float, float]
    margin: float  # gross margin share; unit_cost = price * (1 - margin)
    nouns: tuple[str, ...]


@dataclass(frozen=True)
class AddonCategory:
    """A SMALL category; base_inclusion is its chance to be in a receipt without anchor."""

    name: str
    base_inclusion: float
    products: int
    price: tuple[float, float]
    margin: float
    quantity_mean: float  # mean units on a line (>= 1)
    nouns: tuple[str, ...]


@dataclass(frozen=True)
class CatalogueConfig:
    zipf_exponent: float  # popularity of the k-th product in a category ~ 1 / k**s
    anchors: tuple[AnchorFamily, ...]
    addons: tuple[AddonCategory, ...]

    @property
    def family_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.anchors)

    @property
    def addon_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.addons)


@dataclass(frozen=True)
class BasketConfig:
    anchor_receipt_share: float  # share of purchase receipts with an anchor
    addon_min2_share: float  # share of anchor receipts with >= 2 add-on lines
    extra_line_rate: float  # mean further products per included add-on category
    anchor_extra_line_share: float  # anchor receipts with a second product of the family
    household_anchor_multiplier: tuple[float, ...]  # sizes 1..6, rescaled to mean 1
    default_lift: float  # lift of every (family, category) pair not listed
    lifts: dict[str, dict[str, float]] = field(default_factory=dict)

    def lift(self, family: str, category: str) -> float:
        """The planted lift of category given family (the default when not listed)."""
        return self.lifts.get(family, {}).get(category, self.default_lift)


@dataclass(frozen=True)
class ImpulseConfig:
    categories: tuple[str, ...]
    hour_multiplier: tuple[float, ...]  # one per opening hour, rescaled to mean 1 over visits


@dataclass(frozen=True)
class BgNbdConfig:
    """BG/NBD parameters, time unit one (average) day: lambda ~ Gamma(r, rate alpha)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class CustomerConfig:
    member_receipt_share: float
    household_weights: tuple[float, ...]  # sizes 1..6
    distance_median_km: float
    distance_sigma: float  # of log distance
    home_store_share: float  # repeat visits at the home store (with more than one store)
    bgnbd: BgNbdConfig
    # a member's add-on line is their own favourite product of the category this often
    taste_share: float = 0.0


@dataclass(frozen=True)
class RestaurantConfig:
    anchor_rate: float  # share of anchor receipts with a restaurant order the same visit
    other_rate: float  # the same for the other purchase receipts
    offset_minutes: tuple[int, int]  # |ordered_at - sold_at|
    before_share: float  # orders placed before checkout (when the hours allow)
    open_hour: int
    close_hour: int
    distance_band_km: tuple[float, ...]  # band edges
    distance_multiplier: tuple[float, ...]  # one per band, rescaled to mean 1
    hour_multiplier: tuple[float, ...]  # one per opening hour of the store, mean 1
    party_share: float  # chance each further household member joins the meal
    amount_median: float  # per person
    amount_sigma: float


@dataclass(frozen=True)
class CampaignConfig:
    per_year: float
    duration_days: tuple[int, int]
    discount_pct: tuple[float, float]
    uplift: float  # multiplier on the target category's inclusion while it runs
    target_categories: tuple[str, ...]


@dataclass(frozen=True)
class ReturnsConfig:
    line_share: float
    max_days: int


@dataclass(frozen=True)
class StoreConfig:
    """Everything the generator plants. None of the fields is derived at load time."""

    start_date: str
    days: int
    stores: int
    visits_per_day: float  # purchase receipts per store on an average day
    chunk_days: int
    calendar: CalendarConfig
    catalogue: CatalogueConfig
    basket: BasketConfig
    impulse: ImpulseConfig
    customers: CustomerConfig
    restaurant: RestaurantConfig
    campaigns: CampaignConfig
    returns: ReturnsConfig

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


DEFAULT_CONFIG_PATH = resources.files("xsell.generate").joinpath("store.yml")


def load_config(path: str | Path | None = None) -> StoreConfig:
    """The packaged store.yml, with a user YAML's keys merged over it when given."""
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    if path is not None:
        user = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(user, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data = _merge(data, user)
    config = _build(StoreConfig, data, "store")
    validate_config(config)
    return config


def with_overrides(config: StoreConfig, **overrides: Any) -> StoreConfig:
    """A copy with the non-None top-level overrides applied, validated."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    updated = dataclasses.replace(config, **changes) if changes else config
    validate_config(updated)
    return updated


def validate_config(config: StoreConfig) -> None:
    """Shape and range checks that need no simulation; raises ConfigError."""
    cal, cat, basket = config.calendar, config.catalogue, config.basket
    try:
        dt.date.fromisoformat(config.start_date)
    except ValueError as exc:
        raise ConfigError(f"start_date {config.start_date!r} is not YYYY-MM-DD") from exc
    _check(config.days >= 1, "days must be >= 1")
    _check(1 <= config.stores <= 99, "stores must be within 1..99 (ids are S01..S99)")
    _check(config.visits_per_day > 0, "visits_per_day must be > 0")
    _check(1 <= config.chunk_days <= 366, "chunk_days must be within 1..366")
    hours = cal.close_hour - cal.open_hour
    _check(0 <= cal.open_hour < cal.close_hour <= 24, "calendar: open_hour < close_hour <= 24")
    _check(len(cal.hour_weights) == hours, f"calendar.hour_weights needs {hours} values")
    _check(len(cal.weekday_weights) == 7, "calendar.weekday_weights needs 7 values")
    _check(0 <= cal.season_amplitude < 1, "calendar.season_amplitude must be in [0, 1)")
    _check(len(config.impulse.hour_multiplier) == hours, f"impulse.hour_multiplier: {hours}")
    _check(len(config.restaurant.hour_multiplier) == hours, f"restaurant.hour_multiplier: {hours}")
    _check(cat.anchors and cat.addons, "catalogue needs anchors and addons")
    names = cat.family_names + cat.addon_names
    _check(len(set(names)) == len(names), "catalogue category names must be unique")
    for c in (*cat.anchors, *cat.addons):
        _check(c.products >= 1 and 0 < c.price[0] <= c.price[1], f"{c.name}: products, price")
        _check(0 <= c.margin < 1 and c.nouns, f"{c.name}: margin in [0, 1) and nouns")
    for c in cat.addons:
        _check(0 < c.base_inclusion < 1 and c.quantity_mean >= 1, f"{c.name}: inclusion, qty")
    _check(0 < basket.anchor_receipt_share < 1, "basket.anchor_receipt_share in (0, 1)")
    _check(0 < basket.addon_min2_share < 1, "basket.addon_min2_share in (0, 1)")
    _check(len(basket.household_anchor_multiplier) == 6, "household_anchor_multiplier: 6")
    for family, row in basket.lifts.items():
        _check(family in cat.family_names, f"basket.lifts: unknown family {family}")
        for category, lift in row.items():
            _check(category in cat.addon_names, f"basket.lifts.{family}: unknown {category}")
            _check(lift > 0, f"basket.lifts.{family}.{category} must be > 0")
    for category in (*config.impulse.categories, *config.campaigns.target_categories):
        _check(category in cat.addon_names, f"{category} is not an add-on category")
    cust = config.customers
    _check(0 < cust.member_receipt_share < 1, "customers.member_receipt_share in (0, 1)")
    _check(len(cust.household_weights) == 6, "customers.household_weights: 6 values")
    _check(cust.bgnbd.a > 0 and cust.bgnbd.b > 0, "bgnbd a, b > 0")
    _check(cust.bgnbd.r > 0 and cust.bgnbd.alpha > 0, "bgnbd r, alpha > 0")
    _check(0 <= cust.taste_share <= 1, "customers.taste_share in [0, 1]")
    rest = config.restaurant
    _check(0 < rest.other_rate < 1 and 0 < rest.anchor_rate < 1, "restaurant rates in (0, 1)")
    _check(0 < rest.offset_minutes[0] <= rest.offset_minutes[1], "restaurant.offset_minutes")
    _check(
        len(rest.distance_multiplier) == len(rest.distance_band_km) + 1,
        "restaurant.distance_multiplier needs one value more than distance_band_km",
    )
    _check(
        rest.open_hour <= cal.open_hour and rest.close_hour >= cal.close_hour,
        "the restaurant must be open whenever the store is",
    )
    _check(
        rest.offset_minutes[1] <= 60 * (cal.close_hour - cal.open_hour),
        "restaurant.offset_minutes too long for the opening hours",
    )
    camp = config.campaigns
    _check(camp.per_year >= 0 and camp.uplift > 0, "campaigns: per_year >= 0, uplift > 0")
    _check(1 <= camp.duration_days[0] <= camp.duration_days[1], "campaigns.duration_days")
    _check(0 < camp.discount_pct[0] <= camp.discount_pct[1] < 100, "campaigns.discount_pct")
    _check(camp.per_year == 0 or camp.target_categories, "campaigns.target_categories empty")
    _check(0 <= config.returns.line_share < 1, "returns.line_share in [0, 1)")
    _check(config.returns.max_days >= 1, "returns.max_days >= 1")


def _check(ok: Any, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _merge(base: Any, override: Any) -> Any:
    """Recursive dict merge: mappings merge key by key, anything else replaces."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def _build(cls: type, data: Any, where: str) -> Any:
    """A dataclass from a YAML mapping, rejecting unknown and missing keys (typos)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    _check(not unknown, f"{where}: unknown keys {unknown}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key {f.name!r}")
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        if isinstance(value, Mapping) and dataclasses.is_dataclass(args[0]):
            # A mapping name -> spec in YAML becomes a tuple of named records.
            value = [{"name": name, **(spec or {})} for name, spec in value.items()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        _check(len(value) == len(args), f"{where}: expected {len(args)} values")
        return tuple(
            _convert(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, types.UnionType):
        raise ConfigError(f"{where}: unsupported type {tp}")
    return _scalar(tp, value, where)


def _scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is bool:
        _check(isinstance(value, bool), f"{where}: expected true/false")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{where}: expected int")
        return int(value)
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _check(ok, f"{where}: expected a number")
        return float(value)
    if tp is str:
        if isinstance(value, dt.date):
            return value.isoformat()
        _check(isinstance(value, str), f"{where}: expected text")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
