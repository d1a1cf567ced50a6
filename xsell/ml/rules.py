"""Frequent itemsets and single-consequent association rules, exact and fast.

Input is a frame of (basket, item) pairs, e.g. receipt_id × product_id or
receipt_id × category, read from DuckDB. Semantics are the textbook ones:

- A basket is a distinct basket id; its items form a set, so duplicate pairs
  count once. Pairs whose basket id or item is null are ignored (a basket made
  only of null items is not a basket). ``n_baskets`` = number of baskets left.
- An itemset is frequent when its basket count is at least
  :func:`min_basket_count` ``(min_support, n_baskets)``, the integer
  ``ceil(min_support × n_baskets)`` computed so that a product that is an
  integer up to floating-point error (``0.07 × 100 = 7.000000000000001``)
  counts as that integer. Every support comparison is then made on integers.
- Rules are ``X → y`` for every frequent itemset ``Z`` of length ≥ 2 and every
  ``y`` in ``Z``, with ``X = Z \\ {y}``; kept when
  ``confidence = count(Z) / count(X) ≥ min_confidence``, again decided on
  integers (``count(Z) ≥ ceil(min_confidence × count(X))`` with the same
  tolerance), so a rule at exactly the threshold is kept.
- support = count / n_baskets; lift = confidence / supp(y);
  leverage = supp(Z) − supp(X)·supp(y);
  conviction = (1 − supp(y)) / (1 − confidence), and ``np.inf`` when the
  confidence is exactly 1 (then ``count(Z) == count(X)``). A table cannot hold
  infinity portably, so :func:`rules_for_storage` turns it into NULL: the mart
  ``fct_association_rules`` stores NULL conviction for confidence-1 rules.

Pruning (:class:`RulePruning`, off unless asked for): the full set above is exact
but, on real baskets, mostly near-copies of the same long itemsets near the minimum
support. A pruned set keeps a rule ``X → y`` only when all of these hold:

- ``lift > min_lift`` (decided on integers: ``count(Z)·n > min_lift·count(X)·count(y)``);
- ``rule_basket_count ≥ min_count``;
- it is not redundant: for every nonempty proper subset ``X'`` of ``X``,
  ``confidence(X → y) − confidence(X' → y) > min_confidence_gain``. The sub-rules
  ``X' → y`` are all of them, kept or not (their itemsets are frequent by downward
  closure); the empty antecedent is not one of them (``min_lift`` covers it). With
  ``min_confidence_gain = 0`` a longer antecedent must predict ``y`` strictly better
  than every shorter one inside it (the textbook "minimum improvement" of Bayardo,
  Agrawal and Gunopulos, 1999); decided on integers (cross-multiplied counts).
- its ``consequent_rank`` is at most ``top_n_per_consequent``: among the rules with
  the same consequent that pass the tests above, ranked by confidence (for one
  consequent the same order as lift), then rule_basket_count (higher first), then
  shorter antecedent, then antecedent items.

Every rule set carries ``consequent_rank`` (1 = the best rule for its consequent by
that order), pruned or not. The defaults of :class:`RulePruning` (:data:`KEEP_ALL`)
keep every rule: the unpruned set is one setting away.

Algorithm: Eclat on vertical bitsets. Only frequent single items take part,
ranked by ascending basket count. For each item ``i`` the baskets containing
it are projected out of a CSR basket × item matrix; the pair counts with the
higher-ranked items come from one ``bincount``; the frequent partners get
bitsets over *those baskets only* (packed ``uint64``, width ``count(i)/64``
words instead of ``n_baskets/64``). Deeper levels intersect these bitsets
depth-first, one numpy ``&`` + ``np.bitwise_count`` per prefix against all
remaining candidates at once (small nodes: all pairs in one k × k block).
Memory is the pairs, the CSR/CSC indexes and one projected bitset matrix per
recursion level. Rules are produced per itemset length with vectorised
antecedent look-ups (sorted byte keys + searchsorted).

Cost is dominated by the size of the answer: on Online Retail (22k baskets)
min_support 0.005 gives 13k itemsets in 0.3 s, 0.003 gives 121k in 1.3 s, and
0.002 gives 14M rules, 3.7 GB of Python lists. Pick thresholds for the output
size you can store. Thresholds may be numeric strings (dbt vars arrive so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ITEMSET_COLUMNS",
    "KEEP_ALL",
    "RULE_COLUMNS",
    "RulePruning",
    "PruningCounts",
    "frequent_itemsets",
    "itemsets_by_level",
    "itemsets_for_storage",
    "levels_at_max_length",
    "min_basket_count",
    "mine_rules",
    "rules_by_level",
    "rules_from_itemsets",
    "rules_for_storage",
    "with_item_names",
]

ITEMSET_COLUMNS = ["itemset", "itemset_length", "basket_count", "support", "n_baskets"]
RULE_COLUMNS = [
    "antecedent",
    "consequent",
    "antecedent_length",
    "rule_basket_count",
    "antecedent_basket_count",
    "consequent_basket_count",
    "n_baskets",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "antecedent_support",
    "consequent_support",
    "consequent_rank",
]

# Relative tolerance when turning a fractional threshold into an integer count:
# far below any real difference between two counts (< 1 basket for any
# n_baskets < 1e9), far above the float error of ``fraction × count`` (~1e-16).
_REL_TOL = 1e-9
# Nodes whose k × k × words pair block is at most this size get all pair
# counts in one vectorised step (a 1 MiB temporary); bigger ones loop per row.
_PAIR_BLOCK_WORDS = 1 << 17
# Projected bitsets are built through a bool matrix up to this many cells.
_DENSE_BYTES = 1 << 24


def _number(name: str, value, *, low: float, high: float | None = None,
            integer: bool = False) -> float:
    """``value`` as a float in [low, high] (a whole number if ``integer``); numeric
    strings (dbt vars) accepted."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = number >= low and (high is None or number <= high)
    if not ok or (integer and not (math.isfinite(number) and number == int(number))):
        kind = "a whole number" if integer else "a number"
        bound = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]"
        raise ValueError(f"{name} must be {kind} {bound}, got {value!r}")
    return number


@dataclass(frozen=True)
class RulePruning:
    """Which rules to keep beyond min_confidence (module docstring, "Pruning").

    The defaults keep every rule: ``min_lift`` 0 (lift > 0 holds for every rule of a
    frequent itemset), ``min_count`` 1, ``min_confidence_gain`` -1 (a confidence gain
    is always above -1, so no rule is redundant) and ``top_n_per_consequent`` 0 (no
    limit). Values may be numeric strings (dbt vars arrive so).
    """

    min_lift: float = 0.0
    min_count: int = 1
    min_confidence_gain: float = -1.0
    top_n_per_consequent: int = 0

    def __post_init__(self):
        lift = _number("min_lift", self.min_lift, low=0.0)
        count = _number("min_count", self.min_count, low=1.0, integer=True)
        gain = _number("min_confidence_gain", self.min_confidence_gain, low=-1.0, high=1.0)
        top = _number("top_n_per_consequent", self.top_n_per_consequent, low=0.0, integer=True)
        object.__setattr__(self, "min_lift", lift)
        object.__setattr__(self, "min_count", int(count))
        object.__setattr__(self, "min_confidence_gain", gain)
        object.__setattr__(self, "top_n_per_consequent", int(top))

    @property
    def checks_gain(self) -> bool:
        # confidence(X -> y) - confidence(X' -> y) > -1 always: confidence(X -> y) > 0
        return self.min_confidence_gain > -1.0


KEEP_ALL = RulePruning()


@dataclass(frozen=True)
class PruningCounts:
    """Rules of one item level after each step of the pruning, in order."""

    mined: int  # confidence >= min_confidence: the unpruned rule set
    lift_and_count: int  # ... and lift > min_lift and rule_basket_count >= min_count
    not_redundant: int  # ... and confidence gain > min_confidence_gain over every sub-rule
    kept: int  # ... and consequent_rank <= top_n_per_consequent

    def describe(self, pruning: RulePruning) -> str:
        top = pruning.top_n_per_consequent
        return (
            f"{self.mined:,} rules; {self.lift_and_count:,} with lift > {pruning.min_lift:g} "
            f"and at least {pruning.min_count:,} receipts; {self.not_redundant:,} of them "
            f"not redundant (confidence gain > {pruning.min_confidence_gain:g} over every "
            f"sub-rule); {self.kept:,} kept "
            + (f"(best {top} per consequent)" if top else "(no limit per consequent)")
        )


def min_basket_count(min_support: float, n_baskets: int) -> int:
    """Smallest basket count an itemset needs to be frequent (at least 1).

    ``ceil(min_support × n_baskets)``, except that a product within a relative
    1e-9 of an integer is taken as that integer: ``0.07 × 100`` is
    ``7.000000000000001`` in binary floating point, and ceil of it would wrongly
    demand 8 baskets. Count-0 itemsets are never frequent.
    """
    x = _check_fraction("min_support", min_support, allow_zero=False) * int(n_baskets)
    return max(1, math.ceil(x - _REL_TOL * max(1.0, x)))


def frequent_itemsets(
    pairs: pd.DataFrame,
    *,
    basket_col: str = "basket_id",
    item_col: str = "item",
    min_support: float,
    max_len: int = 10,
) -> pd.DataFrame:
    """All itemsets of at most ``max_len`` items with support ≥ ``min_support``.

    Returns one row per itemset, ordered by (itemset_length, itemset):
    ``itemset`` (sorted Python list of items), ``itemset_length``,
    ``basket_count``, ``support`` (= basket_count / n_baskets), ``n_baskets``.
    """
    mined = _mine(pairs, basket_col, item_col, min_support, max_len)
    frames = []
    for length in sorted(mined.levels):
        rows, counts = mined.levels[length]
        order = np.lexsort(rows.T[::-1])
        rows, counts = rows[order], counts[order]
        frames.append(
            pd.DataFrame(
                {
                    "itemset": _as_lists(mined.labels, rows),
                    "itemset_length": np.full(len(rows), length, dtype=np.int64),
                    "basket_count": counts.astype(np.int64),
                }
            )
        )
    if not frames:
        return _empty_itemsets()
    out = pd.concat(frames, ignore_index=True)
    out["support"] = out["basket_count"] / mined.n_baskets
    out["n_baskets"] = np.int64(mined.n_baskets)
    return out[ITEMSET_COLUMNS]


def mine_rules(
    pairs: pd.DataFrame,
    *,
    min_support: float,
    min_confidence: float,
    max_len: int = 10,
    basket_col: str = "basket_id",
    item_col: str = "item",
    pruning: RulePruning = KEEP_ALL,
) -> pd.DataFrame:
    """Single-consequent association rules ``antecedent → consequent``.

    The rules come from the frequent itemsets of :func:`frequent_itemsets`
    (same ``min_support`` and ``max_len``; a rule's itemset has at most
    ``max_len`` items) and keep confidence ≥ ``min_confidence``, then what
    ``pruning`` keeps (every rule by default). Ordered by
    (antecedent_length, antecedent, consequent). ``antecedent`` is a sorted
    Python list, ``consequent`` one item of the input item dtype.
    ``conviction`` is ``np.inf`` when confidence is 1: store the frame through
    :func:`rules_for_storage`, which writes NULL instead.
    """
    min_confidence = _check_fraction("min_confidence", min_confidence, allow_zero=True)
    mined = _mine(pairs, basket_col, item_col, min_support, max_len)
    frames = [
        pd.DataFrame(
            {
                "antecedent": _as_lists(mined.labels, ante),
                "consequent": mined.labels.take(con),
                "antecedent_length": np.full(len(con), ante.shape[1], dtype=np.int64),
                "rule_basket_count": c,
                "antecedent_basket_count": a,
                "consequent_basket_count": b,
                "consequent_rank": rank,
            }
        )
        for ante, con, c, a, b, rank in _pruned_rules(mined, min_confidence, pruning)
    ]
    if not frames:
        return _empty_rules(mined.labels)
    out = pd.concat(frames, ignore_index=True)
    return _add_metrics(out, mined.n_baskets)


def rules_for_storage(rules: pd.DataFrame) -> pa.Table:
    """The rules as an Arrow table ready for DuckDB, with NULL for infinite conviction.

    ``mine_rules`` returns ``np.inf`` conviction for confidence-1 rules, the
    usual pandas/mlxtend convention. Warehouses and BI tools handle infinity
    badly, so the mart stores NULL there (documented on the column). Types are
    explicit, so an empty result still gets ``antecedent`` LIST and the item
    type on ``consequent``.
    """
    item_type = _arrow_item_type(rules["consequent"])
    conviction = rules["conviction"].to_numpy(dtype=np.float64)
    columns = {
        "antecedent": pa.array(list(rules["antecedent"]), type=pa.list_(item_type)),
        "consequent": pa.array(list(rules["consequent"]), type=item_type),
    }
    for name in RULE_COLUMNS[2:]:
        if name == "conviction":
            columns[name] = pa.array(conviction, mask=np.isinf(conviction), type=pa.float64())
        else:
            columns[name] = pa.array(rules[name].to_numpy(), type=_ARROW_TYPES[name])
    return pa.table(columns)


def itemsets_for_storage(itemsets: pd.DataFrame) -> pa.Table:
    """The itemsets as an Arrow table with explicit types, so an empty result still
    gets a LIST ``itemset`` column of the item type."""
    first_items = pd.Series([items[0] for items in itemsets["itemset"]], dtype=object)
    item_type = _arrow_item_type(first_items)
    columns = {"itemset": pa.array(list(itemsets["itemset"]), type=pa.list_(item_type))}
    for name in ITEMSET_COLUMNS[1:]:
        arrow_type = pa.float64() if name == "support" else pa.int64()
        columns[name] = pa.array(itemsets[name].to_numpy(), type=arrow_type)
    return pa.table(columns)


def rules_by_level(
    items: pd.DataFrame,
    *,
    min_support: float | Mapping[str, float],
    min_confidence: float,
    max_len: int = 10,
    level_col: str = "item_level",
    pruning: RulePruning = KEEP_ALL,
) -> pa.Table:
    """Rules mined separately per level (e.g. product, category) of a
    (basket_id, item_level, item) frame, stacked with the level as first column.
    ``min_support`` is one threshold, or one per level. Same rows as
    :func:`rules_for_storage` of :func:`mine_rules` per level, built straight
    into Arrow (no Python lists)."""
    min_confidence = _check_fraction("min_confidence", min_confidence, allow_zero=True)
    return _by_level(
        items,
        level_col,
        lambda pairs, support: _rules_table(
            _mine(pairs, "basket_id", "item", support, max_len), min_confidence, pruning
        ),
        min_support,
    )


def itemsets_by_level(
    items: pd.DataFrame,
    *,
    min_support: float | Mapping[str, float],
    max_len: int = 10,
    level_col: str = "item_level",
) -> pa.Table:
    """Frequent itemsets per level of a (basket_id, item_level, item) frame, stacked.
    Same rows as :func:`itemsets_for_storage` of :func:`frequent_itemsets` per level."""
    return _by_level(
        items,
        level_col,
        lambda pairs, support: _itemsets_table(_mine(pairs, "basket_id", "item", support, max_len)),
        min_support,
    )


def rules_from_itemsets(
    itemsets: pa.Table,
    *,
    min_confidence: float,
    level_col: str = "item_level",
    pruning: RulePruning = KEEP_ALL,
    counts: dict[str, PruningCounts] | None = None,
) -> pa.Table:
    """The rules of :func:`rules_by_level`, derived from its stored itemsets.

    ``itemsets`` is a table as :func:`itemsets_by_level` returns it (the mart
    ``fct_frequent_itemsets``): every frequent itemset per level, so every
    antecedent and consequent of a rule has its own row (downward closure).
    Mining once and deriving the rules from the itemsets gives exactly the rules
    of mining the baskets again, at a fraction of the cost. ``pruning`` keeps
    every rule by default; ``counts``, when given, receives per level how many
    rules each pruning step left.
    """
    min_confidence = _check_fraction("min_confidence", min_confidence, allow_zero=True)
    missing = [c for c in (level_col, *ITEMSET_COLUMNS) if c not in itemsets.column_names]
    if missing:
        raise KeyError(f"itemsets has no column(s) {missing}; columns are {itemsets.column_names}")
    levels = itemsets.column(level_col)
    tables = []
    for level in sorted(pc.unique(levels.drop_null()).to_pylist()):
        part = itemsets.filter(pc.equal(levels, level))
        steps = [] if counts is not None else None
        table = _rules_table(_mined_from_itemsets(part, level), min_confidence, pruning,
                             steps=steps)
        if counts is not None:
            counts[level] = steps[0]
        tables.append(table.add_column(0, level_col, pa.array([level] * len(table), pa.string())))
    if not tables:
        item_type = itemsets.schema.field("itemset").type.value_type
        empty = _rules_table(_Mined(0, pd.Index([]), np.zeros(0, np.int64), {}), 0.0,
                             item_type=item_type)
        return empty.add_column(0, level_col, pa.array([], type=pa.string()))
    return pa.concat_tables(tables)


def levels_at_max_length(
    itemsets: pa.Table, max_len, *, level_col: str = "item_level"
) -> list[str]:
    """The item levels whose longest frequent itemset has ``max_len`` items (or more):
    the miner stopped there, so longer frequent itemsets, and the rules with longer
    antecedents they would give, may exist but were not mined."""
    max_len = _check_max_len(max_len)
    if itemsets.num_rows == 0:
        return []
    longest = itemsets.group_by(level_col).aggregate([("itemset_length", "max")])
    return sorted(
        level
        for level, length in zip(longest[level_col].to_pylist(),
                                 longest["itemset_length_max"].to_pylist(), strict=True)
        if level is not None and length is not None and length >= max_len
    )


def with_item_names(
    rules: pa.Table,
    products: pa.Table,
    *,
    level_col: str = "item_level",
    product_level: str = "product",
) -> pa.Table:
    """The rules with names beside the ids, for people and BI tools.

    ``products`` has ``product_id`` and ``product_name`` (int_products_classified).
    At ``product_level`` an item's name is its product's name, NULL when the product
    has none (or is not in ``products``); at every other level (categories) the item
    is its own name. Adds ``antecedent_names`` (a list in the order of ``antecedent``),
    ``consequent_name`` and ``rule_label`` ("name + name → name"; an item without a
    name is shown by its id, a name that several products share as "name (id)"),
    placed after ``consequent``.
    """
    missing = [c for c in ("product_id", "product_name") if c not in products.column_names]
    if missing:
        raise KeyError(f"products has no column(s) {missing}; columns are {products.column_names}")
    ids = pc.cast(products.column("product_id"), pa.string()).combine_chunks()
    names = pc.cast(products.column("product_name"), pa.string()).combine_chunks()
    if len(pc.unique(ids.drop_null())) != len(ids.drop_null()):
        raise ValueError("products has more than one row for a product_id")

    antecedent = rules.column("antecedent").combine_chunks()
    offsets = pc.subtract(antecedent.offsets, antecedent.offsets[0])  # a slice starts at 0
    flat_items = pc.cast(antecedent.flatten(), pa.string())
    flat_levels = pc.list_parent_indices(antecedent)
    is_product = pc.equal(rules.column(level_col), product_level).combine_chunks()

    # the label of a product whose name another product shares carries its id
    name_counts = pc.value_counts(names.drop_null())
    shared = name_counts.field("values").filter(pc.greater(name_counts.field("counts"), 1))
    tagged = pc.if_else(
        pc.is_in(names, value_set=shared),
        pc.binary_join_element_wise(names, pc.binary_join_element_wise("(", ids, ")", ""), " "),
        names,
    )

    def named(items: pa.Array, product_rows: pa.Array, by: pa.Array) -> pa.Array:
        looked_up = pc.take(by, pc.index_in(items, value_set=ids))
        return pc.if_else(product_rows, looked_up, items)

    flat_products = pc.take(is_product, flat_levels)
    flat_names = named(flat_items, flat_products, names)
    antecedent_names = pa.ListArray.from_arrays(offsets, flat_names)
    consequent = pc.cast(rules.column("consequent"), pa.string()).combine_chunks()
    consequent_name = named(consequent, is_product, names)

    shown = pc.coalesce(named(flat_items, flat_products, tagged), flat_items)
    label = pc.binary_join_element_wise(
        pc.binary_join(pa.ListArray.from_arrays(offsets, shown), " + "),
        pc.coalesce(named(consequent, is_product, tagged), consequent),
        " → ",
    )
    out = rules.add_column(rules.column_names.index("antecedent") + 1, "antecedent_names",
                           antecedent_names)
    at = out.column_names.index("consequent") + 1
    out = out.add_column(at, "consequent_name", consequent_name)
    return out.add_column(at + 1, "rule_label", label)


def _by_level(items: pd.DataFrame, level_col: str, mine, min_support) -> pa.Table:
    def support_of(level: str) -> float:
        if isinstance(min_support, Mapping):
            if level not in min_support:
                raise KeyError(f"no min_support for item level {level!r}")
            return float(min_support[level])
        return float(min_support)

    tables = []
    for level in sorted(items[level_col].dropna().unique()):
        pairs = items.loc[items[level_col] == level].drop(columns=level_col)
        table = mine(pairs, support_of(level))
        levels = pa.array([level] * len(table), type=pa.string())
        tables.append(table.add_column(0, level_col, levels))
    if not tables:
        empty = mine(items.drop(columns=level_col).iloc[:0], 0.5)
        return empty.add_column(0, level_col, pa.array([], type=pa.string()))
    return pa.concat_tables(tables)


# --------------------------------------------------------------------------- #
# internals


_INT_COLUMNS = [
    "antecedent_length",
    "rule_basket_count",
    "antecedent_basket_count",
    "consequent_basket_count",
    "n_baskets",
    "consequent_rank",
]
_ARROW_TYPES = {
    **{c: pa.int64() for c in _INT_COLUMNS},
    **{c: pa.float64() for c in RULE_COLUMNS if c not in _INT_COLUMNS},
}


class _Mined:
    """Result of the mining pass, in integer codes.

    ``labels``: the distinct items, sorted, so code order is item order.
    ``item_counts[code]``: basket count of each item.
    ``levels[length] = (rows, counts)``: rows is (m, length) int64 codes, each
    row ascending; counts is (m,) int64.
    """

    def __init__(self, n_baskets, labels, item_counts, levels):
        self.n_baskets = n_baskets
        self.labels = labels
        self.item_counts = item_counts
        self.levels = levels


def _check_fraction(name: str, value, *, allow_zero: bool) -> float:
    """``value`` as a float in (0, 1] or [0, 1]; numeric strings (dbt vars) accepted."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and number <= 1):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must be a number in {bound}, got {value!r}")
    return number


def _check_max_len(value) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (number >= 1 and number == int(number)):
        raise ValueError(f"max_len must be an integer >= 1, got {value!r}")
    return int(number)


def _ceil_tol(x: np.ndarray) -> np.ndarray:
    """Vectorised ceil with the same integer-snapping tolerance as min_basket_count."""
    x = np.asarray(x, dtype=np.float64)
    return np.ceil(x - _REL_TOL * np.maximum(1.0, x))


def _prepare(pairs: pd.DataFrame, basket_col: str, item_col: str):
    """Distinct (basket code, item code) pairs; item codes follow sorted item order."""
    missing = [c for c in (basket_col, item_col) if c not in pairs.columns]
    if missing:
        raise KeyError(f"pairs has no column(s) {missing}; columns are {list(pairs.columns)}")
    frame = pairs[[basket_col, item_col]].dropna()
    basket_codes, _ = pd.factorize(frame[basket_col])
    item_codes, labels = pd.factorize(frame[item_col], sort=True)
    n_baskets = int(basket_codes.max()) + 1 if len(basket_codes) else 0
    n_items = len(labels)
    key = np.sort(basket_codes.astype(np.int64) * max(n_items, 1) + item_codes)
    key = key[np.concatenate(([True], key[1:] != key[:-1]))] if len(key) else key
    if n_items:
        return n_baskets, labels, key // n_items, key % n_items
    return n_baskets, labels, key, key


def _mine(pairs, basket_col, item_col, min_support, max_len) -> _Mined:
    max_len = _check_max_len(max_len)
    min_support = _check_fraction("min_support", min_support, allow_zero=False)
    n, labels, baskets, items = _prepare(pairs, basket_col, item_col)
    item_counts = np.bincount(items, minlength=len(labels)).astype(np.int64)
    levels: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if n == 0:
        return _Mined(0, labels, item_counts, levels)
    thr = min_basket_count(min_support, n)

    frequent = np.flatnonzero(item_counts >= thr)
    if len(frequent) == 0:
        return _Mined(n, labels, item_counts, levels)
    levels[1] = (frequent[:, None].astype(np.int64), item_counts[frequent])
    if max_len >= 2 and len(frequent) >= 2:
        # rank = position in ascending-count order (ties by item order)
        rank_to_code = frequent[np.lexsort((frequent, item_counts[frequent]))]
        code_to_rank = np.full(len(labels), -1, dtype=np.int64)
        code_to_rank[rank_to_code] = np.arange(len(rank_to_code))
        ranks = code_to_rank[items]
        keep = ranks >= 0
        found = _EclatRun(baskets[keep], ranks[keep], n, len(rank_to_code), thr, max_len).run()
        for length, (rows, counts) in found.items():
            rows = np.sort(rank_to_code[rows], axis=1)
            levels[length] = (rows, counts)
    return _Mined(n, labels, item_counts, levels)


class _EclatRun:
    """Depth-first Eclat over per-item projected bitsets, in rank space."""

    def __init__(self, baskets, ranks, n_baskets, n_ranks, thr, max_len):
        self.thr = thr
        self.max_len = max_len
        self.n_ranks = n_ranks
        # CSR: pairs sorted by (basket, rank), so the partners of rank r above r
        # in a basket are the rest of its row. For each rank, ``col_at`` lists
        # where it sits in the CSR (baskets ascending).
        by_basket = np.argsort(baskets * n_ranks + ranks)
        baskets, ranks = baskets[by_basket], ranks[by_basket]
        self.row_ptr = _indptr(baskets, n_baskets)
        self.row_items = ranks
        self.col_at = np.argsort(ranks, kind="stable")
        self.col_ptr = _indptr(ranks[self.col_at], n_ranks)
        self.col_baskets = baskets[self.col_at]
        # per length: lists of prefixes (tuples), last items, counts
        self.found: dict[int, tuple[list, list, list]] = {}

    def _emit(self, prefix: tuple, last: np.ndarray, counts: np.ndarray) -> None:
        bucket = self.found.setdefault(len(prefix) + 1, ([], [], []))
        bucket[0].append(prefix)
        bucket[1].append(last)
        bucket[2].append(counts)

    def run(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        slot = np.full(self.n_ranks, -1, dtype=np.int64)  # rank -> candidate slot
        for r in range(self.n_ranks - 1):
            seg = slice(self.col_ptr[r], self.col_ptr[r + 1])
            rows = self.col_baskets[seg]
            # pos: index of the basket among r's baskets; cols: its ranks above r
            pos, cols = _gather(self.col_at[seg] + 1, self.row_ptr[rows + 1], self.row_items)
            pair_counts = np.bincount(cols - (r + 1), minlength=self.n_ranks - r - 1)
            partners = np.flatnonzero(pair_counts >= self.thr)
            if len(partners) == 0:
                continue
            cand = partners + (r + 1)
            self._emit((r,), cand, pair_counts[partners])
            if self.max_len < 3 or len(cand) < 2:
                continue
            # bitsets of {r, c} for each partner c, over the baskets of r only
            slot[cand] = np.arange(len(cand))
            sel = slot[cols] >= 0
            bits = _bitsets(slot[cols[sel]], pos[sel], len(cand), len(rows))
            slot[cand] = -1
            self._dfs((r,), cand, bits)
        return self._collect()

    def _dfs(self, prefix: tuple, cand: np.ndarray, bits: np.ndarray) -> None:
        """``bits[a]`` = baskets holding prefix ∪ {cand[a]}; emit prefix ∪ {cand[a], cand[b]}."""
        k, width = bits.shape
        if k * k * width <= _PAIR_BLOCK_WORDS:
            # small node: all pair counts in one shot, Python only where something is frequent
            counts = np.bitwise_count(bits[:, None, :] & bits[None, :, :]).sum(
                axis=2, dtype=np.int64
            )
            ok = np.triu(counts >= self.thr, 1)
            for a in np.flatnonzero(ok.any(axis=1)):
                keep = np.flatnonzero(ok[a])
                self._extend(prefix, cand, bits, a, keep, counts[a, keep])
            return
        for a in range(k - 1):
            inter = bits[a] & bits[a + 1 :]
            counts = np.bitwise_count(inter).sum(axis=1, dtype=np.int64)
            keep = np.flatnonzero(counts >= self.thr)
            if len(keep):
                self._extend(prefix, cand, bits, a, keep + (a + 1), counts[keep])

    def _extend(self, prefix, cand, bits, a, keep, counts) -> None:
        """Emit prefix ∪ {cand[a], cand[b]} for b in keep and recurse on prefix ∪ {cand[a]}."""
        new_prefix = (*prefix, int(cand[a]))
        new_cand = cand[keep]
        self._emit(new_prefix, new_cand, counts)
        if len(new_prefix) + 1 < self.max_len and len(keep) > 1:
            self._dfs(new_prefix, new_cand, bits[a] & bits[keep])

    def _collect(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for length, (prefixes, lasts, counts) in self.found.items():
            sizes = np.fromiter((len(x) for x in lasts), dtype=np.int64, count=len(lasts))
            head = np.repeat(np.array(prefixes, dtype=np.int64), sizes, axis=0)
            rows = np.column_stack([head, np.concatenate(lasts)])
            out[length] = (rows, np.concatenate(counts).astype(np.int64))
        return out


def _above(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``lhs > rhs`` for integer ``lhs`` and a float ``rhs`` that stands for an exact
    product: ``rhs`` within a relative 1e-9 of an integer is taken as that integer
    (``0.1 × 70`` is ``7.000000000000001``), and the comparison is made on integers
    (``lhs > floor(rhs)``). Exact while a product of two basket counts is below 2**53
    (fewer than 9e7 baskets), the range in which ``rhs`` itself is exact."""
    rhs = np.asarray(rhs, dtype=np.float64)
    nearest = np.round(rhs)
    snapped = np.where(np.abs(rhs - nearest) <= _REL_TOL * np.maximum(1.0, np.abs(rhs)),
                       nearest, rhs)
    return lhs > np.floor(snapped).astype(np.int64)


def _rule_levels(mined: _Mined, min_confidence: float, pruning: RulePruning = KEEP_ALL):
    """Per itemset length ≥ 2, the rules as code arrays, ordered by (antecedent,
    consequent): antecedent rows (m, length-1), consequent codes, the basket counts
    of X∪y, X and y, and which of them pass pruning's per-rule tests: lift and count,
    and confidence gain (the top N per consequent needs every level and is applied by
    :func:`_pruned_rules`). Only rules with confidence ≥ min_confidence are returned.

    For the confidence gain, ``best[(Z, p)]`` holds, for the itemset Z with the
    consequent at position p, the highest confidence (as counts c / a) of the rules
    ``X' → Z[p]`` over every nonempty ``X' ⊆ Z \\ {Z[p]}``: the rule itself or the best of
    its immediate sub-itemsets, one level down. A rule's best sub-rule is the best of
    its immediate sub-itemsets.
    """
    item_counts = mined.item_counts
    n = np.int64(mined.n_baskets)
    best = None  # (best_c, best_a) of the previous length, shape (m, length)
    for length in sorted(mined.levels):
        if length < 2:
            continue
        rows, counts = mined.levels[length]
        m = len(rows)
        lookup = _KeyIndex(*mined.levels[length - 1]) if length > 2 else None
        # antecedent count of the rule whose consequent sits at position p (column p)
        a = np.empty((m, length), dtype=np.int64)
        sub_c = np.zeros((m, length), dtype=np.int64)
        sub_a = np.ones((m, length), dtype=np.int64)
        for j in range(length):
            ante = np.delete(rows, j, axis=1)
            if lookup is None:
                a[:, j] = item_counts[ante[:, 0]]
                continue
            at = lookup.positions_of(ante)
            a[:, j] = lookup.counts[at]
            if pruning.checks_gain:
                # rows minus item j is an immediate sub-itemset of the rules with any
                # other consequent p; there the consequent sits at q
                for p in range(length):
                    if p != j:
                        q = p if p < j else p - 1
                        _keep_higher(sub_c[:, p], sub_a[:, p], best[0][at, q], best[1][at, q])
        c = np.broadcast_to(counts[:, None], (m, length))
        if pruning.checks_gain:
            best = (c.copy(), a.copy())
            if length > 2:
                _keep_higher(best[0], best[1], sub_c, sub_a)
        keep_conf = c >= _ceil_tol(min_confidence * a)
        b = item_counts[rows]
        lift_and_count = (c >= pruning.min_count) & _above(c * n, pruning.min_lift * (a * b))
        if pruning.checks_gain and length > 2:
            # c/a - sub_c/sub_a > gain, cross-multiplied (a, sub_a > 0)
            gains = _above(c * sub_a - sub_c * a, pruning.min_confidence_gain * (a * sub_a))
        else:
            gains = np.ones((m, length), dtype=bool)
        antes, cons, c_rule, c_ante, ok_basic, ok_gain = [], [], [], [], [], []
        for p in range(length):
            keep = keep_conf[:, p]
            antes.append(np.delete(rows[keep], p, axis=1))
            cons.append(rows[keep, p])
            c_rule.append(counts[keep])
            c_ante.append(a[keep, p])
            ok_basic.append(lift_and_count[keep, p])
            ok_gain.append(gains[keep, p])
        ante = np.concatenate(antes)
        if len(ante) == 0:
            continue
        con = np.concatenate(cons)
        order = np.lexsort((con, *ante.T[::-1]))
        ante, con = ante[order], con[order]
        c_out = np.concatenate(c_rule)[order].astype(np.int64)
        a_out = np.concatenate(c_ante)[order].astype(np.int64)
        b_out = item_counts[con].astype(np.int64)
        yield (ante, con, c_out, a_out, b_out, np.concatenate(ok_basic)[order],
               np.concatenate(ok_gain)[order])


def _keep_higher(best_c, best_a, c, a) -> None:
    """In place: (best_c, best_a) becomes (c, a) where c/a is the higher confidence."""
    higher = c * best_a > best_c * a
    best_c[higher] = c[higher]
    best_a[higher] = a[higher]


def _pruned_rules(mined: _Mined, min_confidence: float, pruning: RulePruning,
                  steps: list | None = None):
    """The rules of :func:`_rule_levels` that pruning keeps, with their
    consequent_rank: (ante, con, c, a, b, rank) per antecedent length, in the same
    order. ``steps``, when given, receives the :class:`PruningCounts`."""
    parts = list(_rule_levels(mined, min_confidence, pruning))
    mined_count = sum(len(part[1]) for part in parts)
    lift_and_count = sum(int(part[5].sum()) for part in parts)
    parts = [(ante, con, c, a, b, basic & gain) for ante, con, c, a, b, basic, gain in parts]
    not_redundant = sum(int(part[5].sum()) for part in parts)
    parts = [(ante[ok], con[ok], c[ok], a[ok], b[ok]) for ante, con, c, a, b, ok in parts]
    parts = [part for part in parts if len(part[1])]
    ranks = _consequent_ranks(parts)
    top = pruning.top_n_per_consequent
    out = []
    for (ante, con, c, a, b), rank in zip(parts, ranks, strict=True):
        keep = rank <= top if top else np.ones(len(rank), dtype=bool)
        if keep.any():
            out.append((ante[keep], con[keep], c[keep], a[keep], b[keep], rank[keep]))
    if steps is not None:
        steps.append(PruningCounts(mined_count, lift_and_count, not_redundant,
                                   sum(len(part[1]) for part in out)))
    return out


def _consequent_ranks(parts) -> list[np.ndarray]:
    """Rank (1 = best) of each rule among the rules of ``parts`` with its consequent:
    by confidence (higher first), rule count (higher first), antecedent length, then
    the order of ``parts`` (antecedent items). Confidence is compared as c / a in
    float64, exact as long as antecedent counts stay below 2**26 receipts (two
    different fractions with smaller denominators never round to the same double)."""
    if not parts:
        return []
    sizes = [len(part[1]) for part in parts]
    con = np.concatenate([part[1] for part in parts])
    c = np.concatenate([part[2] for part in parts])
    a = np.concatenate([part[3] for part in parts])
    # stable sorts from the last key to the first: ties keep the order of parts, which
    # come by antecedent length, then antecedent
    order = np.argsort(-c, kind="stable")
    order = order[np.argsort(-(c / a)[order], kind="stable")]
    order = order[np.argsort(con[order], kind="stable")]
    sorted_con = con[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_con[1:] != sorted_con[:-1])))
    group_start = np.repeat(starts, np.diff(np.append(starts, len(order))))
    rank = np.empty(len(con), dtype=np.int64)
    rank[order] = np.arange(len(order)) - group_start + 1
    return np.split(rank, np.cumsum(sizes)[:-1])


def _metrics(c: np.ndarray, a: np.ndarray, b: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Rule metrics from the basket counts of X∪y (c), X (a) and y (b) among n."""
    n_f = float(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        conviction = (a * (n - b)).astype(np.float64) / (n_f * (a - c))
    return {
        "support": c / n_f,
        "confidence": c / a,
        "lift": (c * n_f) / (a.astype(np.float64) * b),
        # integer numerators: exact for n_baskets < 3e9, so independence gives 0.0
        "leverage": (c * n - a * b) / (n_f * n_f),
        "conviction": np.where(c == a, np.inf, conviction),
        "antecedent_support": a / n_f,
        "consequent_support": b / n_f,
    }


def _label_array(labels: pd.Index, item_type: pa.DataType | None = None) -> pa.Array:
    if item_type is None:
        item_type = _arrow_item_type(pd.Series(np.asarray(labels, dtype=object)))
    return pa.array(np.asarray(labels, dtype=object), type=item_type)


def _list_array(rows_by_level: list[np.ndarray], labels: pa.Array) -> pa.Array:
    """One Arrow list per row of the code matrices, items taken from ``labels``."""
    widths = np.concatenate([np.full(len(r), r.shape[1], dtype=np.int64) for r in rows_by_level])
    offsets = np.zeros(len(widths) + 1, dtype=np.int32)
    np.cumsum(widths, out=offsets[1:])
    flat = np.concatenate([r.ravel() for r in rows_by_level]) if rows_by_level else []
    values = labels.take(pa.array(flat, type=pa.int64()))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _rules_table(mined: _Mined, min_confidence: float, pruning: RulePruning = KEEP_ALL, *,
                 item_type=None, steps: list | None = None) -> pa.Table:
    """The rules of ``mined`` as the stored Arrow table (NULL for infinite conviction)."""
    labels = _label_array(mined.labels, item_type)
    parts = _pruned_rules(mined, min_confidence, pruning, steps)
    if not parts:
        fields = [pa.field("antecedent", pa.list_(labels.type))]
        fields += [pa.field("consequent", labels.type)]
        fields += [pa.field(c, _ARROW_TYPES[c]) for c in RULE_COLUMNS[2:]]
        return pa.schema(fields).empty_table()
    ante, con, c, a, b, rank = (list(x) for x in zip(*parts, strict=True))
    c, a, b = np.concatenate(c), np.concatenate(a), np.concatenate(b)
    metrics = _metrics(c, a, b, mined.n_baskets)
    conviction = metrics["conviction"]
    columns = {
        "antecedent": _list_array(ante, labels),
        "consequent": labels.take(pa.array(np.concatenate(con), type=pa.int64())),
        "antecedent_length": pa.array(np.concatenate([np.full(len(x), x.shape[1]) for x in ante]),
                                      type=pa.int64()),
        "rule_basket_count": pa.array(c, type=pa.int64()),
        "antecedent_basket_count": pa.array(a, type=pa.int64()),
        "consequent_basket_count": pa.array(b, type=pa.int64()),
        "n_baskets": pa.array(np.full(len(c), mined.n_baskets), type=pa.int64()),
    }
    for name in ("support", "confidence", "lift", "leverage"):
        columns[name] = pa.array(metrics[name], type=pa.float64())
    columns["conviction"] = pa.array(conviction, mask=np.isinf(conviction), type=pa.float64())
    for name in ("antecedent_support", "consequent_support"):
        columns[name] = pa.array(metrics[name], type=pa.float64())
    columns["consequent_rank"] = pa.array(np.concatenate(rank), type=pa.int64())
    return pa.table(columns)


def _itemsets_table(mined: _Mined) -> pa.Table:
    """The frequent itemsets of ``mined`` as the stored Arrow table, ordered by
    (itemset_length, itemset)."""
    labels = _label_array(mined.labels)
    rows_by_level, counts = [], []
    for length in sorted(mined.levels):
        rows, cnt = mined.levels[length]
        order = np.lexsort(rows.T[::-1])
        rows_by_level.append(rows[order])
        counts.append(cnt[order].astype(np.int64))
    basket_count = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    lengths = (np.concatenate([np.full(len(r), r.shape[1]) for r in rows_by_level])
               if rows_by_level else np.zeros(0, np.int64))
    itemset = (_list_array(rows_by_level, labels) if rows_by_level
               else pa.array([], type=pa.list_(labels.type)))
    return pa.table(
        {
            "itemset": itemset,
            "itemset_length": pa.array(lengths, type=pa.int64()),
            "basket_count": pa.array(basket_count, type=pa.int64()),
            "support": pa.array(basket_count / max(mined.n_baskets, 1), type=pa.float64()),
            "n_baskets": pa.array(np.full(len(basket_count), mined.n_baskets), type=pa.int64()),
        }
    )


def _mined_from_itemsets(table: pa.Table, level: str) -> _Mined:
    """Decode stored frequent itemsets of one level back into integer codes."""
    n_baskets = pc.unique(table.column("n_baskets")).to_pylist()
    if len(n_baskets) != 1:
        raise ValueError(f"item level {level!r}: itemsets disagree on n_baskets {n_baskets}")
    itemsets = table.column("itemset").combine_chunks()
    values = itemsets.flatten().to_numpy(zero_copy_only=False)
    codes, labels = pd.factorize(values, sort=True)
    starts = itemsets.offsets.to_numpy()[:-1].astype(np.int64)
    widths = pc.list_value_length(itemsets).to_numpy().astype(np.int64)
    basket_count = table.column("basket_count").to_numpy().astype(np.int64)
    levels = {}
    for length in np.unique(widths).tolist():
        at = np.flatnonzero(widths == length)
        rows = np.sort(codes[starts[at, None] + np.arange(length)], axis=1).astype(np.int64)
        levels[length] = (rows, basket_count[at])
    item_counts = np.zeros(len(labels), dtype=np.int64)
    if 1 in levels:
        item_counts[levels[1][0][:, 0]] = levels[1][1]
    if (item_counts == 0).any():
        absent = labels[np.flatnonzero(item_counts == 0)[:3]].tolist()
        raise ValueError(
            f"item level {level!r}: items {absent} appear in itemsets but have no "
            "single-item row; the itemsets must be every frequent itemset"
        )
    return _Mined(int(n_baskets[0]), pd.Index(labels), item_counts, levels)


def _indptr(sorted_keys: np.ndarray, n: int) -> np.ndarray:
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sorted_keys, minlength=n), out=ptr[1:])
    return ptr


def _gather(starts: np.ndarray, ends: np.ndarray, values: np.ndarray):
    """Concatenated slices ``values[starts[j]:ends[j]]``, with the slice number j of each."""
    lens = ends - starts
    pos = np.repeat(np.arange(len(starts)), lens)
    offsets = np.cumsum(lens) - lens
    idx = np.arange(int(lens.sum())) + np.repeat(starts - offsets, lens)
    return pos, values[idx]


def _bitsets(row: np.ndarray, bit: np.ndarray, n_rows: int, n_bits: int) -> np.ndarray:
    """(n_rows, ceil(n_bits/64)) uint64 bitsets with bit ``bit[j]`` set in row ``row[j]``."""
    words = -(-n_bits // 64)
    if n_rows * n_bits <= _DENSE_BYTES:  # fastest: a bool matrix, packed
        dense = np.zeros((n_rows, words * 64), dtype=bool)
        dense[row, bit] = True
        return np.packbits(dense, axis=1, bitorder="little").view(np.uint64)
    # large projections: 8x less memory, about 2x slower
    out = np.zeros((n_rows, words), dtype=np.uint64)
    masks = np.left_shift(np.uint64(1), (bit & 63).astype(np.uint64))
    np.bitwise_or.at(out, (row, bit >> 6), masks)
    return out


class _KeyIndex:
    """Exact look-up of itemset rows (ascending codes) among the rows of one length."""

    def __init__(self, rows: np.ndarray, counts: np.ndarray):
        keys = _row_keys(rows)
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]
        self.counts = counts

    def positions_of(self, rows: np.ndarray) -> np.ndarray:
        """Where each row sits among the rows the index was built from."""
        keys = _row_keys(rows)
        idx = np.searchsorted(self.keys, keys)
        idx = np.minimum(idx, len(self.keys) - 1)
        if not np.array_equal(self.keys[idx], keys):  # downward closure guarantees a hit
            raise AssertionError("antecedent itemset missing from the frequent itemsets")
        return self.order[idx]


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """Each row as one fixed-width byte string (big-endian, so byte order = row order)."""
    be = np.ascontiguousarray(rows, dtype=">u4")
    return be.view(np.dtype((np.void, 4 * rows.shape[1]))).ravel()


def _as_lists(labels: pd.Index, rows: np.ndarray) -> list:
    return np.asarray(labels, dtype=object)[rows].tolist()


def _add_metrics(out: pd.DataFrame, n: int) -> pd.DataFrame:
    metrics = _metrics(
        out["rule_basket_count"].to_numpy(),
        out["antecedent_basket_count"].to_numpy(),
        out["consequent_basket_count"].to_numpy(),
        n,
    )
    out["n_baskets"] = np.int64(n)
    for name, values in metrics.items():
        out[name] = values
    return out[RULE_COLUMNS]


def _empty_itemsets() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "itemset": pd.Series([], dtype=object),
            "itemset_length": pd.Series([], dtype=np.int64),
            "basket_count": pd.Series([], dtype=np.int64),
            "support": pd.Series([], dtype=np.float64),
            "n_baskets": pd.Series([], dtype=np.int64),
        }
    )


def _empty_rules(labels: pd.Index) -> pd.DataFrame:
    columns = {
        "antecedent": pd.Series([], dtype=object),
        "consequent": pd.Series(labels[:0]),
    }
    for name in RULE_COLUMNS[2:]:
        columns[name] = pd.Series([], dtype=_ARROW_TYPES[name].to_pandas_dtype())
    return pd.DataFrame(columns)


def _arrow_item_type(consequent: pd.Series) -> pa.DataType:
    """Arrow type of the items; text of any flavour becomes plain string (DuckDB VARCHAR)."""
    item_type = pa.array(consequent).type
    if pa.types.is_null(item_type) or pa.types.is_large_string(item_type):
        return pa.string()
    if pa.types.is_string_view(item_type):
        return pa.string()
    return item_type
