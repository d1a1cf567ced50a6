"""An IKEA-like catalogue: anchor families (LARGE) and add-on categories (SMALL).

Categories are indexed families first, then add-ons, in store.yml order; the
products of a category are contiguous, so a category is a slice of the
product arrays. Within a category popularity is Zipf-like (a few best sellers,
a long tail) with the ranks shuffled, so product ids say nothing about sales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xsell.contract import PRODUCTS
from xsell.generate import ids
from xsell.generate.config import CatalogueConfig

_ONSETS = (
    "B", "BR", "D", "F", "FL", "G", "GR", "H", "HJ", "J", "K", "KL", "KR", "L", "M", "N",
    "P", "R", "S", "SK", "SM", "ST", "SV", "T", "TR", "V",
)  # fmt: skip
_VOWELS = ("A", "E", "I", "O", "U", "Y", "Ä", "Ö", "Å")
_CODAS = ("", "N", "NG", "LL", "PP", "RK", "ST", "M", "K", "S", "R", "T", "D", "LT", "RN")
_ENDINGS = ("", "AN", "EN", "UM", "IG", "A", "ER", "ARP", "BY", "SEN", "ARE", "ING", "OS", "Y")


@dataclass(frozen=True)
class Catalogue:
    table: pa.Table  # the products table, contract schema
    categories: tuple[str, ...]  # families first, then add-ons
    n_families: int
    category_of: np.ndarray  # (products,) category index
    price: np.ndarray  # (products,) regular unit price
    cdf: np.ndarray  # (products,) category index + cumulative popularity within it

    @property
    def product_ids(self) -> pa.Array:
        return self.table.column("product_id").combine_chunks()

    def draw_products(self, rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
        """One product per requested category, by popularity, in one searchsorted.

        Category k's cumulative popularity occupies (k, k + 1] in ``cdf``, so
        k + u (u uniform in [0, 1)) lands inside category k's slice.
        """
        target = category + rng.random(category.size)
        return np.searchsorted(self.cdf, target, side="right")


def build_catalogue(config: CatalogueConfig, rng: np.random.Generator) -> Catalogue:
    """Products with synthetic Scandinavian-style names, prices, costs and popularity."""
    specs = [*config.anchors, *config.addons]
    n_families = len(config.anchors)
    counts = np.array([s.products for s in specs])
    category_of = np.repeat(np.arange(len(specs)), counts)
    names = _unique_words(rng, int(counts.sum()))
    rows_name, rows_cat, rows_size, prices, costs, cdfs = [], [], [], [], [], []
    start = 0
    for k, spec in enumerate(specs):
        n = spec.products
        price = _prices(rng, n, spec.price)
        nouns = rng.choice(len(spec.nouns), size=n)
        rows_name += [f"{names[start + i]} {spec.nouns[j]}" for i, j in enumerate(nouns)]
        rows_cat += [spec.name] * n
        rows_size += ["LARGE" if k < n_families else "SMALL"] * n
        prices.append(price)
        costs.append(np.round(price * (1.0 - spec.margin), 2))
        cdfs.append(k + _zipf_cdf(rng, n, config.zipf_exponent))
        start += n
    total = int(counts.sum())
    table = pa.table(
        {
            "product_id": ids.compose(total, "P", ids.digits(np.arange(1, total + 1), 5)),
            "product_name": pa.array(rows_name, pa.string()),
            "category": pa.array(rows_cat, pa.string()),
            "size_class": pa.array(rows_size, pa.string()),
            "unit_cost": pa.array(np.concatenate(costs)),
            "is_merchandise": pa.array(np.ones(total, dtype=bool)),
        },
        schema=PRODUCTS.schema,
    )
    return Catalogue(
        table=table,
        categories=tuple(s.name for s in specs),
        n_families=n_families,
        category_of=category_of,
        price=np.concatenate(prices),
        cdf=np.concatenate(cdfs),
    )


def _prices(rng: np.random.Generator, n: int, bounds: tuple[float, float]) -> np.ndarray:
    """Log-normal prices inside the category range, with shop-style endings (49.99, 1299)."""
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    raw = np.exp(np.clip(rng.normal((lo + hi) / 2, (hi - lo) / 4, size=n), lo, hi))
    cheap = np.floor(raw) + 0.99
    dear = np.maximum(np.round(raw / 10) * 10 - 1, 99)
    return np.round(np.where(raw < 100, cheap, dear), 2)


def _zipf_cdf(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Cumulative popularity in (0, 1] of products in id order, ranks shuffled."""
    popularity = 1.0 / np.arange(1, n + 1) ** exponent
    popularity = popularity[rng.permutation(n)]
    cdf = np.cumsum(popularity) / popularity.sum()
    cdf[-1] = 1.0
    return cdf


def _unique_words(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct made-up words like KLIPPAN or BRÅSTEN (a loop per product, not per line)."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        parts = (_ONSETS, _VOWELS, _CODAS, _ENDINGS)
        word = "".join(p[int(rng.integers(len(p)))] for p in parts)
        if len(word) >= 4 and word not in seen:
            seen.add(word)
            words.append(word)
    return words
