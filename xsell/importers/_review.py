"""What an import checks after mapping: product patterns, likely fees, anchors, trimming.

Every importer runs the same checks, and each finding that a person should look at
becomes a *warning*: printed by ``xsell import`` and kept in ``_import.json``
(``warnings``), with the numbers behind it in the same file.

- ``ProductPatterns``: the lists a mapping gives (``non_merchandise``,
  ``merchandise``, ``anchors``) hold product ids or glob patterns (``*`` ``?``
  ``[...]``), compared case-insensitively with the whole product id and with the
  product's name, so ``M`` also finds ``m`` and ``*postage*`` finds "DOTCOM POSTAGE".
- ``fee_candidates``: merchandise products whose id or name holds a word that
  usually marks a fee, a deposit or a stock adjustment (``FEE_WORDS``, in English,
  French, Spanish, Italian and Dutch; ``FEE_STEMS`` inside German compounds such as
  "Flaschenpfand" or "Lieferservice"), or whose whole id or name is a placeholder
  (``PLACEHOLDERS``: "NONE", "n/a", "unknown" ...).
- ``anchor_warning``: no anchors at all, or more than half of the merchandise.
- ``trimmed_text``: how many identifiers and names lost leading or trailing spaces.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from xsell.importers._base import quote

# Whole words (plural -S/-ES allowed), case-insensitive, in a product id or name.
FEE_WORDS: tuple[str, ...] = (
    "postage", "carriage", "delivery", "shipping", "freight", "fee", "charge", "surcharge",
    "deposit", "discount", "manual", "adjust", "adjustment", "voucher", "coupon", "sample",
    "bank charge", "bank fee", "commission", "refund", "gift card",
    # French, Spanish, Italian, Dutch
    "frais", "livraison", "remise", "consigne", "envio", "envío", "descuento", "recargo",
    "spedizione", "sconto", "cauzione", "bezorging", "verzendkosten", "korting", "statiegeld",
    # German words that also stand alone
    "porto", "tüte", "tuete",
)
# German builds compounds ("Flaschenpfand", "Lieferservice", "Versandkosten"): these
# stems are found anywhere in a word.
FEE_STEMS: tuple[str, ...] = (
    "gebühr", "gebuehr", "pfand", "rabatt", "versand", "lieferung", "lieferservice",
    "lieferkosten", "gutschein", "tragetasche", "tragetüte", "tragetuete", "leergut",
)
# A product whose whole id or name is one of these is a placeholder, not a product.
PLACEHOLDERS: frozenset[str] = frozenset(
    {"none", "null", "nan", "n/a", "na", "unknown", "test", "dummy", "misc", "?", "-"}
)
_FEE_PATTERN = re.compile(
    r"(?<![^\W_])(" + "|".join(re.escape(w).replace(r"\ ", r"[\s_-]+") for w in FEE_WORDS)
    + r")(e?s)?(?![^\W_])"
    + r"|(" + "|".join(re.escape(w) for w in FEE_STEMS) + r")",
    re.IGNORECASE,
)
SHOWN = 10  # candidates named in a warning; _import.json keeps all of them
ANCHOR_SHARE_MAX = 0.5


@dataclass(frozen=True)
class ProductPatterns:
    """Product ids or glob patterns, matched case-insensitively against id and name."""

    patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        compiled = tuple(
            re.compile(fnmatch.translate(p.casefold()), re.DOTALL) for p in self.patterns
        )
        object.__setattr__(self, "_compiled", compiled)

    def match(self, product_id: str | None, name: str | None) -> str | None:
        """The first pattern that matches the product's id or name, else None."""
        values = [v.casefold() for v in (product_id, name) if v]
        for pattern, regex in zip(self.patterns, self._compiled, strict=True):
            if any(regex.match(v) for v in values):
                return pattern
        return None

    def __bool__(self) -> bool:
        return bool(self.patterns)


def fee_word(product_id: str | None, name: str | None) -> str | None:
    """The fee-like word in a product's id or name (lower case), or None."""
    for value in (product_id, name):
        if value:
            if value.strip().casefold() in PLACEHOLDERS:
                return value.strip().casefold()
            found = _FEE_PATTERN.search(value)
            if found:
                return (found.group(1) or found.group(3)).lower()
    return None


def fee_candidates(
    products: pa.Table, lines_by_product: dict[str, int], reviewed: ProductPatterns
) -> list[dict]:
    """Merchandise products that look like fees, most lines first, unless ``reviewed``."""
    found = []
    for pid, name, merch in zip(
        products.column("product_id").to_pylist(),
        products.column("product_name").to_pylist(),
        products.column("is_merchandise").to_pylist(),
        strict=True,
    ):
        if not merch or reviewed.match(pid, name):
            continue
        word = fee_word(pid, name)
        if word:
            found.append({"product_id": pid, "product_name": name, "word": word,
                          "lines": lines_by_product.get(pid, 0)})
    found.sort(key=lambda c: (-c["lines"], c["product_id"]))
    return found


def fee_warning(candidates: list[dict], advice: str) -> str | None:
    if not candidates:
        return None
    shown = ", ".join(
        f"{c['product_id']!r}"
        + (f" {c['product_name']!r}" if c["product_name"] and c["product_name"] != c["product_id"]
           else "")
        + f" ({c['lines']:,} line{'s' if c['lines'] != 1 else ''})"
        for c in candidates[:SHOWN]
    )
    more = f" and {len(candidates) - SHOWN:,} more" if len(candidates) > SHOWN else ""
    n = len(candidates)
    return (
        f"{n:,} product{'s' if n != 1 else ''} look{'s' if n == 1 else ''} like fees, deposits, "
        f"adjustments or placeholders but count as merchandise: {shown}{more}. {advice}"
    )


def anchor_warning(n_merchandise: int, n_anchors: int, advice: str) -> str | None:
    """A warning when no merchandise product, or more than half of them, is an anchor."""
    if not n_merchandise:
        return None
    share = n_anchors / n_merchandise
    if n_anchors == 0:
        return (
            f"no product is an anchor (LARGE) among {n_merchandise:,} merchandise products: "
            "the anchor analyses (attach rates, add-on lift, revenue by anchor) will be "
            f"empty. {advice}"
        )
    if share > ANCHOR_SHARE_MAX:
        return (
            f"{n_anchors:,} of {n_merchandise:,} merchandise products ({share:.0%}) are anchors "
            "(LARGE): anchors are meant to be the few big purchases that pull add-ons along, "
            f"so attach rates and lift would mean little. {advice}"
        )
    return None


@dataclass(frozen=True)
class TrimCount:
    target: str
    column: str
    values: int  # cells that had leading or trailing spaces
    merged: int  # distinct values that became equal to another one after trimming


def trimmed_text(
    con: duckdb.DuckDBPyConnection,
    columns: dict[str, str],
    types: dict[str, str],
    id_targets: Iterable[str] = ("product_id", "customer_id", "receipt_id", "store_id"),
) -> list[TrimCount]:
    """For each text column of ``src`` (target -> column), the cells that trimming changed."""
    text = {t: c for t, c in columns.items() if types.get(c, "").upper() == "VARCHAR"}
    if not text:
        return []
    id_targets = set(id_targets)
    selects = []
    for target, column in text.items():
        col = quote(column)
        selects.append(f"count(*) filter (where {col} <> trim({col}))")
        selects.append(
            f"count(distinct {col}) filter (where trim({col}) <> '') "
            f"- count(distinct nullif(trim({col}), ''))"
            if target in id_targets else "0"
        )
    row = con.execute(f"select {', '.join(selects)} from src").fetchall()[0]
    counts = [
        TrimCount(target, column, row[2 * i], max(row[2 * i + 1], 0))
        for i, (target, column) in enumerate(text.items())
    ]
    return [c for c in counts if c.values]


def trim_warning(counts: list[TrimCount]) -> str | None:
    if not counts:
        return None
    parts = []
    for c in counts:
        part = f"{c.values:,} {c.target} value{'s' if c.values != 1 else ''} (column {c.column!r})"
        if c.merged:
            part += f", of which {c.merged:,} then equal another {c.target}"
        parts.append(part)
    return (
        "trimmed leading and trailing spaces: " + "; ".join(parts)
        + ". Identifiers and names are compared trimmed (\"cream cheese \" is \"cream cheese\")."
    )


def pattern_list(value) -> tuple[str, ...]:
    """A mapping list as text patterns (YAML turns 23444 into a number)."""
    return tuple(str(v) for v in value)
