"""Product recommendations per member and per anchor family, evaluated on a temporal
holdout over the full catalogue.

Inputs (dbt: int_receipt_products_listed, int_products_classified, int_customers_profiled):

- ``baskets``: one row per purchase receipt and distinct merchandise product on it:
  receipt_id, customer_id (null = anonymous), store_id, sold_date, product_id;
- ``products``: product_id, product_name, category, is_anchor, is_addon;
- ``members``: customer_id of every loyalty member (may be empty).

**Signals.** Every (member, product) pair gets eight signals, computed from purchases
before an as-of date only (:func:`fit_components`, :func:`member_state`):

=================  ======================================================================
``pop_store``      log share of receipts holding the product in the member's home store,
                   recency-weighted (half-life ``half_life_days``), shrunk to the global
                   share
``pop_recent``     the same over all stores
``pop_long``       log share of receipts over the whole period, unweighted
``similar``        item-item: the member's past products' cosine similarity to the
                   product over member purchase sets (top ``neighbours`` per product,
                   ties: lower product id), summed with recency weights
``rules``          association rules i -> p at receipt level: summed confidence over the
                   products of the member's last purchase day (pairs seen on at least
                   ``rule_min_receipts`` receipts; top ``neighbours`` per product)
``room``           "complete the room": log lift of the add-on on receipts of the anchor
                   families of the member's last purchase day
``bought_before``  1 when the member bought the product before, repeatable products only
``repeat``         log(1 + recency-weighted purchase days of the product by the member),
                   repeatable products only
=================  ======================================================================

fct_product_affinity and fct_association_rules are not used: they are computed over the
whole period, holdout included, so an evaluation on them would see the answers.

**Ranker.** A logistic regression weighs the signals: signals at the start of the
``validation_days`` window before the evaluation cutoff, label = bought in that window,
rows = up to ``ranker_members`` members x their candidates (the ``candidate_pool`` most
popular products and every product with a personal signal). The L1 penalty per row is
chosen on the same window: ``ranker_l1_penalty`` times 1, 0.4, 0.2, 0.1 (the first
``ranker_l1_choices``), the one whose ranker ranks those members' purchases in the window
best (Recall@``top_n``; ties: the larger penalty). The weights are therefore chosen
without seeing the test window; the score is the linear predictor.

**Scoring** (:func:`recommend`) ranks the whole catalogue but computes it on candidates:
a product without a personal signal scores its home-store popularity alone, so besides
the m products with a personal signal only the first ``top_n`` + m of the store's
popularity order can reach the top ``top_n``. Memory and time grow with the members'
personal signals, not with members x catalogue (Ta-Feng: 32,266 members x 23,812
products); item-item and rule neighbours are chosen among the stored co-occurrences.

**Already bought** products are excluded unless repeatable *by nature*: buyers who come
back buy it again at least ``repeat_min_lift`` times as often as chance (the product's
share of member purchase days, over the same number of later purchase days), with at
least ``repeat_min_expected`` expected re-purchases as evidence; a product with less
evidence of its own is pooled with its category's (empirical Bayes, see
:func:`repeatability`). Consumables such as tealights qualify; a product whose buyers do
not come back for it does not.

**Cold start.** A member without purchases gets the popularity signals alone (home store
unknown: global); whoever just bought an anchor gets the family's add-ons through
``room``, and :func:`anchor_recommendations` is the "complete the room" table per family.

**Evaluation** (:func:`evaluate`): signals at the cutoff; relevant = every product a member
bought from the cutoff on. Recall@k, nDCG@k, HitRate@k over the full catalogue and
catalogue coverage, for the ranker and three baselines: popularity (receipt counts before
the cutoff), recent popularity (recency-weighted) and personal repeat (the member's own
most bought products, topped up with popularity). A second task, ``anchor_baskets``,
scores the per-family table on holdout anchor receipts (relevant = the receipt's add-ons)
against the most popular add-ons.

**When an output is empty.** Never an error: an output the data cannot support is a
table of its declared columns and types without rows, for these reasons only:

- ``ml_recommendations`` (one row per member and rank): empty when there is no member
  (no customer id on any merchandise purchase and no row in the customers table: every
  receipt anonymous), or no purchase line of a merchandise product (anchor or add-on)
  at all; in ``score`` mode also when the saved bundle was trained on no purchase. A
  member without purchases gets the popular products (``is_cold_start``). A member gets
  fewer than ``top_n`` rows only when fewer products are left: the catalogue minus the
  products they bought that are not repeatable.
- ``ml_recommendations_by_anchor`` (one row per anchor family and rank): empty when no
  anchor product was ever bought (no product is an anchor, or none sold) or no add-on
  product was ever bought (every product is an anchor), or nothing was bought. A family
  lists at most as many add-ons as were ever sold.
- ``ml_recommendations_metrics``: empty when no purchase precedes the cutoff (history of
  ``holdout_days`` days or fewer, or ``cutoff_date`` on or before the first day) or none
  is on or after it. Rows of segments ``all``, ``members_warm``, ``members_cold`` only
  when a member buys from the cutoff on (warm: with purchases before it; cold: without;
  each segment only when it has members); rows of ``anchor_baskets`` only when a receipt
  from the cutoff on holds an anchor of a family bought before the cutoff and at least
  one such receipt holds an add-on.
- The ranker falls back to popularity (weight 1 on ``pop_long``, as
  ``ml_feature_importances`` then shows) when no purchase precedes the validation window (history of
  ``holdout_days`` + ``validation_days`` days or fewer), no member buys in it, or its
  candidates were all bought or none was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from xsell.ml.evaluation import (
    DATE,
    DATE_DTYPE,
    IMPORTANCE_COLUMNS,
    MetricRows,
    conform,
    empty_frame,
    ranking_metrics,
    temporal_cutoff,
    text_at,
)
from xsell.ml.registry import ArtifactStore, compute_run_id, model_mode

__all__ = [
    "ANCHOR_COLUMNS",
    "RECOMMENDATION_COLUMNS",
    "SIGNALS",
    "Catalogue",
    "Components",
    "Ranker",
    "RecommenderParams",
    "anchor_recommendations",
    "catalogue_of",
    "evaluate",
    "fit_components",
    "fit_ranker",
    "member_state",
    "prepare_lines",
    "recommend",
    "recommendations",
    "repeatability",
]

MODEL = "ml_recommendations"
SIGNALS = (
    "pop_store", "pop_recent", "pop_long", "similar", "rules", "room", "bought_before", "repeat"
)
REASONS = {
    "pop_store": "popular_in_store",
    "pop_recent": "popular_now",
    "pop_long": "popular",
    "similar": "similar_to_past_purchases",
    "rules": "bought_together",
    "room": "complete_the_room",
    "bought_before": "buy_again",
    "repeat": "buy_again",
}
L1_STEPS = (1.0, 0.4, 0.2, 0.1)  # ranker_l1_penalty times these, the first ranker_l1_choices
FAMILY_BLOCK = 256  # distinct anchor family sets scored at once (x catalogue floats)
BLOCK = 2000  # members scored at once (bounds memory at their personal signals)

RECOMMENDATION_COLUMNS = {
    "customer_id": "str",
    "recommendation_rank": "int64",
    "product_id": "str",
    "product_name": "str",
    "category": "str",
    "score": "float64",
    "reason": "str",
    "is_repeat_purchase": "bool",
    "is_cold_start": "bool",
    "as_of_date": DATE,
    "run_id": "str",
}

HOLDOUT_COLUMNS = {  # the holdout lists kept in the bundle, for inspection
    "variant": "str",
    "customer_id": "str",
    "recommendation_rank": "int64",
    "product_id": "str",
    "is_hit": "bool",
}

ANCHOR_COLUMNS = {
    "anchor_family": "str",
    "recommendation_rank": "int64",
    "product_id": "str",
    "product_name": "str",
    "category": "str",
    "attach_rate": "float64",
    "base_rate": "float64",
    "lift": "float64",
    "together_receipts": "int64",
    "anchor_receipts": "int64",
    "run_id": "str",
}

@dataclass(frozen=True)
class RecommenderParams:
    top_n: int = 10
    holdout_days: int = 28
    cutoff_date: str | None = None
    validation_days: int = 28
    half_life_days: float = 30.0
    neighbours: int = 50
    rule_min_receipts: int = 3
    store_prior_receipts: float = 200.0
    attach_prior_receipts: float = 20.0
    repeat_min_lift: float = 0.5
    repeat_min_expected: float = 2.0
    ranker_members: int = 600
    candidate_pool: int = 300
    ranker_negative_share: float = 0.25
    ranker_l1_penalty: float = 0.005
    ranker_l1_choices: int = 3
    random_state: int = 42

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- inputs


@dataclass
class Catalogue:
    """The merchandise products (anchors and add-ons) that can be recommended."""

    product_ids: np.ndarray
    names: np.ndarray
    categories: np.ndarray
    is_anchor: np.ndarray
    is_addon: np.ndarray

    @property
    def size(self) -> int:
        return self.product_ids.size

    def positions(self, product_ids) -> np.ndarray:
        """Catalogue positions of product ids (-1 = not in the catalogue)."""
        return _positions(pd.Series(product_ids), pd.Index(self.product_ids))


def catalogue_of(products: pd.DataFrame) -> Catalogue:
    anchor = products["is_anchor"].fillna(False).astype(bool)
    addon = products["is_addon"].fillna(False).astype(bool)
    merch = products[anchor | addon].sort_values("product_id", kind="stable")
    return Catalogue(
        product_ids=merch["product_id"].astype(str).to_numpy(dtype=object),
        names=merch["product_name"].fillna("").astype(str).to_numpy(dtype=object),
        categories=merch["category"].fillna("").astype(str).to_numpy(dtype=object),
        is_anchor=merch["is_anchor"].fillna(False).to_numpy(dtype=bool),
        is_addon=merch["is_addon"].fillna(False).to_numpy(dtype=bool),
    )


def _categorical(values: pd.Series) -> pd.Categorical:
    """Text ids as a categorical of the ids present, categories sorted (null stays null):
    a small code per row instead of a string, and sorting or grouping by it is by the
    ids' order. A categorical input is recoded without making a string per row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        names = np.asarray(values.cat.categories.astype(str), dtype=object)
        used = np.unique(codes[codes >= 0])
        if not used.size:  # every value null (e.g. no receipt has a customer)
            return pd.Categorical.from_codes(
                np.full(codes.size, -1), categories=pd.Index([], dtype=object)
            )
        order = np.argsort(names[used], kind="stable")
        recode = np.full(names.size, -1, dtype=np.int64)
        recode[used[order]] = np.arange(used.size)
        codes = np.where(codes >= 0, recode[np.maximum(codes, 0)], -1)
        categories = pd.Index(names[used[order]], dtype=object)
        return pd.Categorical.from_codes(codes, categories=categories)
    codes, uniques = pd.factorize(values.astype("string"), sort=True, use_na_sentinel=True)
    categories = pd.Index(np.asarray(uniques, dtype=object), dtype=object)
    return pd.Categorical.from_codes(codes, categories=categories)


def prepare_lines(baskets: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Basket rows with the product's catalogue position (``item``), dates normalised,
    in a deterministic order; products outside the catalogue are dropped.

    ``receipt_id`` becomes an integer (its rank among the receipt ids: only equality and
    order are used), ``customer_id`` and ``store_id`` categoricals of the ids: a 10M-line
    store holds 9.5M basket rows, whose strings would cost gigabytes as Python objects.
    """
    frame = pd.DataFrame(
        {
            "receipt_id": _categorical(baskets["receipt_id"]).codes.astype(np.int64),
            "customer_id": _categorical(baskets["customer_id"]),
            "store_id": _categorical(baskets["store_id"]),
            "sold_date": pd.to_datetime(baskets["sold_date"]).dt.normalize().to_numpy(),
            "item": catalogue.positions(baskets["product_id"]),
        }
    )
    frame = frame[frame["item"] >= 0].drop_duplicates(["receipt_id", "item"])
    return frame.sort_values(["sold_date", "receipt_id", "item"], kind="stable").reset_index(
        drop=True
    )


def _unique_ids(customers: pd.Series) -> np.ndarray:
    """The distinct non-null customer ids of a column, sorted, as an object array."""
    present = customers.dropna()
    if isinstance(present.dtype, pd.CategoricalDtype):
        used = np.unique(present.cat.codes.to_numpy())
        return present.cat.categories.to_numpy(dtype=object)[used]
    return np.sort(present.astype(str).unique().astype(object))


def _positions(ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Positions in ``index`` (-1 = absent or null) of a column of ids, compared as text,
    looked up once per distinct id when the column is categorical."""
    if isinstance(ids.dtype, pd.CategoricalDtype):
        found = index.get_indexer(ids.cat.categories.astype(str))
        codes = ids.cat.codes.to_numpy()
        return np.where(codes >= 0, found[np.maximum(codes, 0)], -1)
    return index.get_indexer(ids.astype(str))


def _decay(dates, as_of: pd.Timestamp, half_life: float) -> np.ndarray:
    age = (as_of - pd.to_datetime(pd.Series(dates))).dt.days.to_numpy(dtype=float)
    return np.power(0.5, age / half_life)


def _binary(rows, cols, shape) -> sparse.csr_matrix:
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    matrix = sparse.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32
    )
    matrix.data[:] = 1.0
    return matrix


def _row_blocks(indptr: np.ndarray, entries: int):
    """(start, stop) row ranges of a CSR matrix holding about ``entries`` stored entries
    each (at least one row)."""
    n_rows = indptr.size - 1
    start = 0
    while start < n_rows:
        stop = int(np.searchsorted(indptr, indptr[start] + entries, side="right")) - 1
        stop = min(max(stop, start + 1), n_rows)
        yield start, stop
        start = stop


def _top_k_rows(
    matrix, k: int, rows: np.ndarray, cols: np.ndarray, *, min_count: float = 0.0,
    block_entries: int = 1 << 22, first_row: int = 0, dense_share: float = 0.1,
) -> sparse.csr_matrix:
    """The k largest entries of every row of ``matrix[i, j] * rows[i] * cols[j]`` (ties:
    lower column first), without the diagonal, entries whose raw value is below
    ``min_count`` and entries that are not positive. ``matrix`` (no duplicate entries,
    e.g. a product of sparse matrices) may be the rows from ``first_row`` on of a larger
    square matrix (the diagonal is then shifted).

    Rows are read ``block_entries`` stored entries at a time: a block holding at least
    ``dense_share`` of its cells (Online Retail's co-purchases: half) is made dense, a
    sparser one (Ta-Feng's: 4 %, 26M entries of 567M cells) is read entry by entry."""
    matrix = sparse.csr_matrix(matrix)
    n_rows, n_cols = matrix.shape
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    indptr = matrix.indptr
    out_rows, out_cols, out_vals = [], [], []
    for start, stop in _row_blocks(indptr, block_entries) if k > 0 else ():
        if indptr[stop] - indptr[start] >= dense_share * (stop - start) * n_cols:
            step = max(1, (1 << 22) // max(n_cols, 1))  # 4M cells at a time
            parts = [_top_k_dense(matrix[a : min(a + step, stop)], k, rows, cols, min_count,
                                  a, first_row) for a in range(start, stop, step)]
        else:
            parts = [_top_k_stored(matrix, k, rows, cols, min_count, start, stop, first_row)]
        for row, col, value in parts:
            out_rows.append(row)
            out_cols.append(col)
            out_vals.append(value)
    if not out_vals:
        return sparse.csr_matrix(matrix.shape, dtype=np.float32)
    kept_rows = np.concatenate(out_rows)
    pointer = np.concatenate([[0], np.cumsum(np.bincount(kept_rows, minlength=n_rows))])
    result = sparse.csr_matrix(
        (np.concatenate(out_vals), np.concatenate(out_cols), pointer),
        shape=matrix.shape, dtype=np.float32,
    )
    result.sort_indices()
    return result


def _top_k_dense(block, k, rows, cols, min_count, start, first_row):
    """:func:`_top_k_rows` on a few rows (from ``start``) made dense."""
    raw = block.toarray().astype(np.float32, copy=False)
    height, n_cols = raw.shape
    # the factor in double, rounded once to float32, as the scores are stored
    value = raw * (rows[start : start + height, None] * cols[None, :]).astype(np.float32)
    if min_count > 0:
        value[raw < min_count] = 0
    diagonal = np.arange(start, start + height) + first_row
    inside = diagonal < n_cols
    value[np.flatnonzero(inside), diagonal[inside]] = 0
    keep = value > 0
    if k < n_cols:
        kth = np.partition(value, n_cols - k, axis=1)[:, n_cols - k : n_cols - k + 1]
        keep &= value >= kth
        # rows with more than k at or above their k-th value: the lower tied columns
        over = np.flatnonzero(keep.sum(axis=1) > k)
        tied = keep[over] & (value[over] == kth[over])
        room = k - (keep[over] & ~tied).sum(axis=1, keepdims=True)
        keep[over] &= ~tied | (np.cumsum(tied, axis=1, dtype=np.int32) <= room)
    row, col = np.nonzero(keep)
    return row + start, col, value[row, col]


def _top_k_stored(matrix, k, rows, cols, min_count, start, stop, first_row):
    """:func:`_top_k_rows` on rows ``start:stop``, entry by entry."""
    indptr = matrix.indptr
    lo, hi = indptr[start], indptr[stop]
    row = np.repeat(np.arange(start, stop), np.diff(indptr[start : stop + 1]))
    col = matrix.indices[lo:hi].astype(np.int64)
    raw = matrix.data[lo:hi].astype(np.float32, copy=False)
    # the factor in double, rounded once to float32, as the scores are stored
    value = raw * (rows[row] * cols[col]).astype(np.float32)
    ok = (value > 0) & (row + first_row != col)
    if min_count > 0:
        ok &= raw >= min_count
    row, col, value = row[ok], col[ok], value[ok]
    bounds = np.searchsorted(row, np.arange(start, stop + 1))
    keep = np.ones(row.size, dtype=bool)
    for r in np.flatnonzero(np.diff(bounds) > k):
        segment = value[bounds[r] : bounds[r + 1]]
        kth = np.partition(segment, segment.size - k)[segment.size - k]
        chosen = segment > kth
        ties = np.flatnonzero(segment == kth)
        ties = ties[np.argsort(col[bounds[r] + ties], kind="stable")]  # lower columns
        chosen[ties[: k - np.count_nonzero(chosen)]] = True
        keep[bounds[r] : bounds[r + 1]] = chosen
    return row[keep], col[keep], value[keep]


# --------------------------------------------------------------------------- components


@dataclass
class Components:
    """What is learnt from purchases before ``as_of`` that does not depend on a member."""

    as_of: pd.Timestamp
    store_ids: np.ndarray
    log_pop_store: np.ndarray  # (S, P)
    log_pop_recent: np.ndarray  # (P,)
    log_pop_long: np.ndarray  # (P,)
    pop_count: np.ndarray  # (P,) receipts holding the product (the popularity baseline)
    similarity: sparse.csr_matrix  # (P, P)
    rules: sparse.csr_matrix  # (P, P) confidence i -> p
    families: np.ndarray  # (F,) anchor families (categories of anchor products)
    anchor_receipts: np.ndarray  # (F,)
    together: np.ndarray  # (F, P) receipts with family f and product p
    attach_rate: np.ndarray  # (F, P) smoothed P(p on the receipt | family f on it)
    base_rate: np.ndarray  # (P,) P(p on a receipt)
    room: np.ndarray  # (F, P) max(0, log(attach_rate / base_rate)) for add-ons
    repeat_lift: np.ndarray  # (P,) observed / chance re-purchases; NaN without evidence
    repeatable: np.ndarray  # (P,) bool
    receipts: int


def fit_components(
    lines: pd.DataFrame, catalogue: Catalogue, as_of: pd.Timestamp, params: RecommenderParams,
    signals=SIGNALS,
) -> Components:
    """What is learnt from purchases before ``as_of``. The item-item and rule neighbours
    only when ``signals`` holds ``similar`` and ``rules`` (a ranker that gives one no
    weight never reads it; left out, it is an empty matrix)."""
    P = catalogue.size
    past = lines[lines["sold_date"] < as_of]
    receipt_codes, receipt_ids = pd.factorize(past["receipt_id"], sort=True)
    n = receipt_ids.size
    receipts = past.drop_duplicates("receipt_id").set_index("receipt_id").loc[receipt_ids]
    basket = _binary(receipt_codes, past["item"], (n, P))

    # popularity: long (counts), recent (decayed), and per store (decayed, shrunk)
    pop_count = np.asarray(basket.sum(axis=0)).ravel()
    weight = _decay(receipts["sold_date"], as_of, params.half_life_days)
    pop_long = (pop_count + 0.1) / (n + 0.1 * P)
    pop_recent = (np.asarray(basket.T @ weight).ravel() + 0.1) / (weight.sum() + 0.1 * P)
    store_codes, stores = pd.factorize(receipts["store_id"], sort=True)
    by_store = sparse.csr_matrix((weight, (store_codes, np.arange(n))), shape=(len(stores), n))
    store_counts = np.asarray((by_store @ basket).todense())
    store_weight = np.asarray(by_store.sum(axis=1)).ravel()
    m = params.store_prior_receipts
    pop_store = (store_counts + m * pop_recent) / (store_weight[:, None] + m)

    # item-item cosine over member purchase sets
    members = past[past["customer_id"].notna()]
    member_codes, member_ids = pd.factorize(members["customer_id"], sort=True)
    owned = _binary(member_codes, members["item"], (member_ids.size, P))
    similarity = sparse.csr_matrix((P, P), dtype=np.float32)
    if "similar" in signals:
        similarity = _cosine(owned, params.neighbours)

    # receipt-level rules i -> p
    rules = sparse.csr_matrix((P, P), dtype=np.float32)
    if "rules" in signals:
        rules = _co_occurrence_top_k(
            basket, params.neighbours, 1 / np.maximum(pop_count.astype(np.float64), 1),
            np.ones(P), min_count=params.rule_min_receipts,
        )

    # anchor family -> products on the same receipt
    anchor_rows = past[catalogue.is_anchor[past["item"].to_numpy()]]
    family_of_line = catalogue.categories[anchor_rows["item"].to_numpy()]
    families = np.unique(family_of_line).astype(object)
    has_family = _binary(
        np.searchsorted(families, family_of_line),
        receipt_ids.get_indexer(anchor_rows["receipt_id"]),
        (families.size, n),
    )
    together = np.asarray((has_family @ basket).todense())
    anchor_receipts = np.asarray(has_family.sum(axis=1)).ravel()
    base_rate = pop_count / max(n, 1)
    k = params.attach_prior_receipts
    attach_rate = (together + k * base_rate) / (anchor_receipts[:, None] + k)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lift = np.log(attach_rate / base_rate)
    room = np.where(catalogue.is_addon & (base_rate > 0), np.nan_to_num(log_lift), 0.0)

    repeat_lift, repeatable = repeatability(members, P, params, catalogue.categories)
    return Components(
        as_of=as_of,
        store_ids=np.asarray(stores, dtype=object),
        log_pop_store=np.log(pop_store),
        log_pop_recent=np.log(pop_recent),
        log_pop_long=np.log(pop_long),
        pop_count=pop_count,
        similarity=similarity,
        rules=rules,
        families=families,
        anchor_receipts=anchor_receipts,
        together=together,
        attach_rate=attach_rate,
        base_rate=base_rate,
        room=np.maximum(room, 0.0),
        repeat_lift=repeat_lift,
        repeatable=repeatable,
        receipts=n,
    )


def _co_occurrence_top_k(
    sets: sparse.csr_matrix, k: int, rows: np.ndarray, cols: np.ndarray, *,
    min_count: float = 0.0, block: int = 2048,
) -> sparse.csr_matrix:
    """:func:`_top_k_rows` of the co-occurrences ``sets.T @ sets`` of products over
    binary sets (receipts, members' purchases), ``block`` products at a time: Ta-Feng's
    member co-purchases of 23,812 products hold 26M entries at once, a block 2M."""
    n_products = sets.shape[1]
    by_product = sparse.csr_matrix(sets.T)
    parts = [
        _top_k_rows(by_product[start : start + block] @ sets, k, rows[start : start + block],
                    cols, min_count=min_count, first_row=start)
        for start in range(0, n_products, block)
    ]
    if not parts:
        return sparse.csr_matrix((n_products, n_products), dtype=np.float32)
    return sparse.vstack(parts, format="csr", dtype=np.float32)


def _cosine(owned: sparse.csr_matrix, neighbours: int) -> sparse.csr_matrix:
    degree = np.asarray(owned.sum(axis=0), dtype=np.float64).ravel()
    inverse = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    return _co_occurrence_top_k(owned, neighbours, inverse, inverse)


def repeatability(
    member_lines: pd.DataFrame, n_items: int, params: RecommenderParams,
    categories: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per product: re-purchase lift and whether it is repeatable by nature.

    For every member who bought the product and had later purchase days, observed = 1 if
    they bought it again on one of them; chance = 1 - (1 - q)^later_days with q the
    product's share of all member purchase days. Summed per product, lift = observed /
    chance. A product's own evidence is thin (a few expected re-purchases), so with
    ``categories`` (category per product) it is pooled with its category's: lift =
    (observed + m L_c) / (chance + m), m = ``repeat_min_expected`` and L_c the category's
    observed / chance, the product's own lift once its evidence outweighs m. NaN where
    neither has ``repeat_min_expected`` expected re-purchases; repeatable = lift >=
    ``repeat_min_lift``.
    """
    lift = np.full(n_items, np.nan)
    member_lines = member_lines[member_lines["customer_id"].notna()]
    if member_lines.empty:
        return lift, np.zeros(n_items, dtype=bool)
    # integer keys instead of frames: a 10M-line store has 6M member lines
    customers = member_lines["customer_id"]
    if isinstance(customers.dtype, pd.CategoricalDtype):
        user = customers.cat.codes.to_numpy().astype(np.int64)
    else:
        user = pd.factorize(customers)[0].astype(np.int64)
    day = pd.to_datetime(member_lines["sold_date"]).to_numpy().astype("datetime64[D]")
    day = (day - day.min()).astype(np.int64)
    n_days = int(day.max()) + 1
    # distinct (member, day, product), sorted by member, day, product
    days = np.unique((user * n_days + day) * n_items + member_lines["item"].to_numpy())
    day_user, item = np.divmod(days, n_items)
    # distinct (member, day) visits, sorted; later = the member's visits after this one
    visits = np.unique(day_user)
    visit_user = visits // n_days
    _, first, count = np.unique(visit_user, return_index=True, return_counts=True)
    later = np.repeat(first + count, count) - np.arange(visits.size) - 1
    q = np.bincount(item, minlength=n_items) / visits.size
    # per (member, product): first day and number of days bought
    pair = (day_user // n_days) * n_items + item
    order = np.argsort(pair, kind="stable")  # days are sorted by day within a pair
    pairs, start, days_bought = np.unique(pair[order], return_index=True, return_counts=True)
    first_visit = day_user[order][start]
    later_of_pair = later[np.searchsorted(visits, first_visit)]
    keep = later_of_pair > 0
    items = (pairs % n_items)[keep]
    chance = 1 - np.power(1 - q[items], later_of_pair[keep])
    expected = np.bincount(items, weights=chance, minlength=n_items)
    observed = np.bincount(items, weights=(days_bought[keep] >= 2), minlength=n_items)
    m = params.repeat_min_expected
    enough = expected >= m
    lift[enough] = observed[enough] / expected[enough]
    if categories is not None:
        codes, _ = pd.factorize(np.asarray(categories, dtype=object))
        cat_expected = np.bincount(codes, weights=expected)
        cat_observed = np.bincount(codes, weights=observed)
        pooled = (cat_expected >= m)[codes]
        cat_lift = np.divide(cat_observed, cat_expected, out=np.zeros_like(cat_expected),
                             where=cat_expected > 0)[codes]
        lift[pooled] = (observed[pooled] + m * cat_lift[pooled]) / (expected[pooled] + m)
    return lift, np.nan_to_num(lift, nan=0.0) >= params.repeat_min_lift


# --------------------------------------------------------------------------- members


@dataclass
class MemberState:
    """Members' purchases before ``components.as_of`` as members x products matrices."""

    customer_ids: np.ndarray
    recency: sparse.csr_matrix  # decay weight of the last purchase day of the product
    counts: sparse.csr_matrix  # recency-weighted purchase days of the product
    last_day: sparse.csr_matrix  # products of the member's last purchase day
    last_families: sparse.csr_matrix  # (U, F) anchor families of the last purchase day
    bought: sparse.csr_matrix
    home_store: np.ndarray  # index into components.store_ids; -1 = no purchase yet
    has_history: np.ndarray

    @property
    def size(self) -> int:
        return self.customer_ids.size


def member_state(
    lines: pd.DataFrame, customer_ids, components: Components, catalogue: Catalogue,
    params: RecommenderParams,
) -> MemberState:
    ids = np.asarray(sorted({str(c) for c in customer_ids}), dtype=object)
    index = pd.Index(ids)
    U, P = ids.size, catalogue.size
    past = lines[(lines["sold_date"] < components.as_of) & lines["customer_id"].notna()]
    user = _positions(past["customer_id"], index)
    past, user = past[user >= 0], user[user >= 0]
    days = pd.DataFrame(
        {"u": user, "i": past["item"].to_numpy(), "d": past["sold_date"].to_numpy()}
    ).drop_duplicates()
    weight = _decay(days["d"], components.as_of, params.half_life_days).astype(np.float32)
    counts = sparse.csr_matrix((weight, (days["u"], days["i"])), shape=(U, P))
    latest = days.groupby(["u", "i"], as_index=False)["d"].max()
    recency = sparse.csr_matrix(
        (
            _decay(latest["d"], components.as_of, params.half_life_days).astype(np.float32),
            (latest["u"], latest["i"]),
        ),
        shape=(U, P),
    )
    last = days[days["d"] == days.groupby("u")["d"].transform("max")]
    last_day = _binary(last["u"], last["i"], (U, P))
    last_anchor = last[catalogue.is_anchor[last["i"].to_numpy()]]
    family = pd.Index(components.families).get_indexer(
        catalogue.categories[last_anchor["i"].to_numpy()]
    )
    last_families = _binary(
        last_anchor["u"].to_numpy()[family >= 0], family[family >= 0],
        (U, components.families.size),
    )
    # the store of most of the member's receipts (ties: the first store id), as its
    # position in components.store_ids (-1: a store the components do not know)
    store = past["store_id"]
    if isinstance(store.dtype, pd.CategoricalDtype):
        known = pd.Index(components.store_ids).get_indexer(store.cat.categories)
        codes = store.cat.codes.to_numpy()
        position = np.where(codes >= 0, known[np.maximum(codes, 0)], -1)
    else:
        position = pd.Index(components.store_ids).get_indexer(store)
    stores = (
        pd.DataFrame({"u": user, "s": position, "r": past["receipt_id"].to_numpy()})
        .drop_duplicates(["u", "r"])
        .groupby(["u", "s"], as_index=False)
        .size()
        .sort_values(["u", "size", "s"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("u")
    )
    home = np.full(U, -1)
    home[stores["u"].to_numpy()] = stores["s"].to_numpy()
    has_history = np.zeros(U, dtype=bool)
    has_history[np.unique(user)] = True
    return MemberState(
        customer_ids=ids,
        recency=recency,
        counts=counts,
        last_day=last_day,
        last_families=last_families,
        bought=_binary(days["u"], days["i"], (U, P)),
        home_store=home,
        has_history=has_history,
    )


POPULARITY = SIGNALS[:3]  # one value per product (per home store for pop_store)
PERSONAL = SIGNALS[3:]  # 0 for a product the member has no such signal for


def _canonical(matrix) -> sparse.csr_matrix:
    """CSR with sorted column indices, no duplicates and no stored zeros."""
    matrix = sparse.csr_matrix(matrix)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def _log1p(matrix) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix(matrix, copy=True)
    matrix.data = np.log1p(matrix.data)
    return matrix


def _in_columns(matrix, keep: np.ndarray) -> sparse.csr_matrix:
    """The stored entries of ``matrix`` whose column is in ``keep`` (bool per column)."""
    matrix = _canonical(matrix)
    row = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    ok = keep[matrix.indices]
    pointer = np.concatenate([[0], np.cumsum(np.bincount(row[ok], minlength=matrix.shape[0]))])
    return sparse.csr_matrix(
        (matrix.data[ok], matrix.indices[ok], pointer), shape=matrix.shape, dtype=matrix.dtype
    )


def _entries(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every stored entry of a canonical CSR matrix, row-major."""
    row = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return row, matrix.indices.astype(np.int64)


def _keys(row: np.ndarray, col: np.ndarray, width: int) -> np.ndarray:
    return row * width + col


def _values_at(matrix: sparse.csr_matrix, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """``matrix[row, col]`` of a canonical CSR matrix for many pairs (0 where nothing is
    stored), in the matrix's dtype, by binary search over its row-major entry keys."""
    out = np.zeros(row.size, dtype=matrix.dtype)
    if not matrix.nnz or not row.size:
        return out
    keys = _keys(*_entries(matrix), matrix.shape[1])
    wanted = _keys(row, col, matrix.shape[1])
    at = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    found = keys[at] == wanted
    out[found] = matrix.data[at[found]]
    return out


def _aligned(matrix: sparse.csr_matrix, pattern: sparse.csr_matrix) -> np.ndarray:
    """The values of ``matrix`` at every stored entry of ``pattern`` (row-major; 0 where
    ``matrix`` stores nothing), both canonical and every entry of ``matrix`` also in
    ``pattern``: one merge of the two (an element-wise product of entry numbers), linear
    in their entries where :func:`_values_at` searches."""
    out = np.zeros(pattern.nnz, dtype=matrix.dtype)
    if not matrix.nnz:
        return out
    number = sparse.csr_matrix(
        (np.arange(1, pattern.nnz + 1, dtype=np.float64), pattern.indices, pattern.indptr),
        shape=pattern.shape,
    )
    ones = sparse.csr_matrix(
        (np.ones(matrix.nnz), matrix.indices, matrix.indptr), shape=matrix.shape
    )
    at = number.multiply(ones).tocsr()  # canonical inputs: the entries of matrix, in order
    if at.nnz != matrix.nnz:
        raise ValueError("matrix has entries outside the pattern")
    out[at.data.astype(np.int64) - 1] = matrix.data
    return out


def _union(matrices: list, shape: tuple[int, int]) -> sparse.csr_matrix:
    """The pattern (entries = 1) of every entry stored in any of ``matrices``."""
    pattern = sparse.csr_matrix(shape, dtype=np.float32)
    for matrix in matrices:
        ones = sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
        ones.data[:] = 1.0
        pattern = pattern + ones
    return _canonical(pattern)


@dataclass
class BlockSignals:
    """The signals of a block of members (``rows`` of a :class:`MemberState`): the
    popularity signals are per product and home store (:func:`popularity_at`), the
    personal ones sparse (members x products) matrices without stored zeros; products
    ``excluded`` (bought before and not repeatable) are never recommended."""

    rows: np.ndarray
    home: np.ndarray  # home store per row, index into components.store_ids; -1 = none
    personal: dict[str, sparse.csr_matrix]
    excluded: sparse.csr_matrix


def block_signals(
    state: MemberState, components: Components, rows: np.ndarray,
    room: sparse.csr_matrix | None = None,
) -> BlockSignals:
    """The signals of members ``rows``: cost grows with the products each member has a
    personal signal for, not with the catalogue. ``room``: ``components.room`` as CSR
    (made once by the caller for many blocks)."""
    room = sparse.csr_matrix(components.room) if room is None else room
    repeatable = components.repeatable
    bought = state.bought[rows]
    personal = {
        "similar": _log1p(state.recency[rows] @ components.similarity),
        "rules": _log1p(state.last_day[rows] @ components.rules),
        "room": state.last_families[rows] @ room,
        "bought_before": _in_columns(bought, repeatable),
        "repeat": _in_columns(_log1p(state.counts[rows]), repeatable),
    }
    return BlockSignals(
        rows=rows,
        home=state.home_store[rows],
        personal={name: _canonical(matrix) for name, matrix in personal.items()},
        excluded=_in_columns(bought, ~repeatable),
    )


def popularity_at(components: Components, home: np.ndarray, cols: np.ndarray) -> dict:
    """The popularity signals of products ``cols`` for members of home store ``home``
    (-1: no home store, the recent popularity over all stores)."""
    pop_store = components.log_pop_recent[cols]
    known = home >= 0
    if known.any():
        pop_store = pop_store.copy()
        pop_store[known] = components.log_pop_store[home[known], cols[known]]
    return {
        "pop_store": pop_store,
        "pop_recent": components.log_pop_recent[cols],
        "pop_long": components.log_pop_long[cols],
    }


def signals_at(block: BlockSignals, components: Components, row, col, names=SIGNALS) -> dict:
    """Every signal in ``names`` at (block row, product) pairs."""
    values = popularity_at(components, block.home[row], col)
    for name in PERSONAL:
        if name in names:
            values[name] = _values_at(block.personal[name], row, col)
    return values


def _score(weights: np.ndarray, values: dict) -> np.ndarray:
    """The ranker's score; a signal missing from ``values`` is 0 there. A tiny popularity
    term orders what the weights leave tied (e.g. cold members when L1 drops every
    popularity signal). Summed in signal order, so a product's score is the same float
    whether it is computed among candidates or over the whole catalogue."""
    score = 1e-6 * values["pop_long"]
    for weight, name in zip(weights, SIGNALS, strict=True):
        if weight and name in values:
            score = score + weight * values[name]
    return score



# --------------------------------------------------------------------------- ranker


@dataclass
class Ranker:
    weights: np.ndarray  # per signal, in signal units (coefficient / scale)
    coefficients: np.ndarray  # on standardised signals
    scales: np.ndarray
    members: int
    rows: int
    positives: int

    @property
    def signals(self) -> tuple[str, ...]:
        """The signals with a weight."""
        return tuple(name for name, weight in zip(SIGNALS, self.weights, strict=True) if weight)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"signal": SIGNALS, "coefficient": self.coefficients, "weight": self.weights}
        )


def popularity_ranker() -> Ranker:
    """Fallback when there is nothing to learn from: long-run popularity."""
    weights = np.array([1.0 if s == "pop_long" else 0.0 for s in SIGNALS])
    return Ranker(weights, weights.copy(), np.ones(len(SIGNALS)), 0, 0, 0)


def fit_ranker(
    lines: pd.DataFrame, catalogue: Catalogue, start: pd.Timestamp, end: pd.Timestamp,
    params: RecommenderParams,
) -> Ranker:
    """Logistic regression of 'bought in [start, end)' on the signals at ``start``, over
    sampled members x their candidates (popular products + personal-signal products)."""
    components = fit_components(lines, catalogue, start, params)
    window = lines[(lines["sold_date"] >= start) & (lines["sold_date"] < end)]
    window = window[window["customer_id"].notna()]
    if window.empty or components.receipts == 0:
        return popularity_ranker()
    rng = np.random.default_rng(params.random_state)
    buyers = _unique_ids(window["customer_id"])
    if buyers.size > params.ranker_members:
        buyers = np.sort(rng.choice(buyers, params.ranker_members, replace=False))
    state = member_state(lines, buyers, components, catalogue, params)
    window = window[window["customer_id"].isin(buyers)]
    labels = _binary(
        _positions(window["customer_id"], pd.Index(state.customer_ids)), window["item"],
        (state.size, catalogue.size),
    )
    pool = np.zeros(catalogue.size, dtype=bool)
    for popularity in (components.log_pop_recent, components.log_pop_long):
        pool[np.argsort(-popularity, kind="stable")[: params.candidate_pool]] = True
    pool_items = np.flatnonzero(pool)
    room = sparse.csr_matrix(components.room)
    X, y = [], []
    for start_row in range(0, state.size, BLOCK):
        rows = np.arange(start_row, min(start_row + BLOCK, state.size))
        block = block_signals(state, components, rows, room)
        shape = (rows.size, catalogue.size)
        popular = sparse.csr_matrix(
            (np.ones(rows.size * pool_items.size, dtype=np.float32),
             np.tile(pool_items, rows.size), np.arange(rows.size + 1) * pool_items.size),
            shape=shape,
        )
        # candidates: the pool and every product with a personal signal, not excluded,
        # row-major (the order the negatives are sampled in)
        candidates = _union(
            [popular] + [block.personal[s] for s in ("similar", "rules", "room", "bought_before")],
            shape,
        )
        r, c = _entries(candidates)
        allowed = _values_at(block.excluded, r, c) == 0
        r, c = r[allowed], c[allowed]
        bought = _values_at(_canonical(labels[rows]), r, c) > 0
        # every positive and a random share of the negatives
        keep = bought | (rng.random(r.size) < params.ranker_negative_share)
        r, c = r[keep], c[keep]
        values = signals_at(block, components, r, c)
        X.append(np.column_stack([values[s] for s in SIGNALS]))
        y.append(bought[keep])
    X, y = np.vstack(X), np.concatenate(y)
    if y.all() or not y.any():
        return popularity_ranker()
    # L1 penalties from ranker_l1_penalty down: the ranker that ranks the validation
    # purchases of its members best (Recall@k; ties: the larger penalty)
    best, best_recall = None, -np.inf
    for step in L1_STEPS[: max(params.ranker_l1_choices, 1)]:
        ranker = _fit_logistic(X, y, params.ranker_l1_penalty * step, state.size, params)
        lists = recommend(state, components, ranker, params.top_n)[0]
        recall = ranking_metrics(lists, labels, params.top_n, catalogue.size)[
            f"recall_at_{params.top_n}"]
        if recall > best_recall:
            best, best_recall = ranker, recall
    return best


def _fit_logistic(X, y, penalty: float, members: int, params: RecommenderParams) -> Ranker:
    scaler = StandardScaler().fit(X)
    scales = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    with threadpool_limits(1):
        # sampled negatives weigh 1 / share, so the loss is the full candidate set's; L1
        # per row: liblinear minimises |w|_1 + C * sum(weight * loss), C = 1 / (penalty * rows)
        weight = np.where(y, 1.0, 1.0 / params.ranker_negative_share)
        fitted = LogisticRegression(
            C=1.0 / (penalty * weight.sum()), l1_ratio=1.0,
            solver="liblinear", max_iter=1000, random_state=params.random_state,
        ).fit((X - scaler.mean_) / scales, y, sample_weight=weight)
    coefficients = np.where(scaler.scale_ > 0, fitted.coef_.ravel(), 0.0)
    return Ranker(coefficients / scales, coefficients, scales, members, y.size, int(y.sum()))


# --------------------------------------------------------------------------- recommend


def _top_n(score: np.ndarray, n: int) -> np.ndarray:
    """Column indices of the n highest finite scores per row, best first (ties: lower
    index first); -1 where fewer than n are finite."""
    width = score.shape[1]
    n = min(n, width)
    if n == 0 or not score.shape[0]:
        return np.zeros((score.shape[0], n), dtype=np.int64)
    # everything above the row's n-th score, then the lowest columns tied with it
    kth = np.partition(score, width - n, axis=1)[:, width - n : width - n + 1]
    chosen = score > kth
    tied = score == kth
    room = n - chosen.sum(axis=1, keepdims=True)
    chosen |= tied & (np.cumsum(tied, axis=1) <= room)
    part = np.nonzero(chosen)[1].reshape(-1, n)
    order = np.lexsort((part, -np.take_along_axis(score, part, axis=1)), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    finite = np.isfinite(np.take_along_axis(score, top, axis=1))
    return np.where(finite, top, -1)


def _rank_in_row(row: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a row-sorted array of rows."""
    if not row.size:
        return np.zeros(0, dtype=np.int64)
    start = np.flatnonzero(np.concatenate([[True], row[1:] != row[:-1]]))
    return np.arange(row.size) - np.repeat(start, np.diff(np.append(start, row.size)))


def _first_per_row(row: np.ndarray, n: int) -> np.ndarray:
    """Mask of the first ``n`` entries of every row of a row-sorted array of rows."""
    return _rank_in_row(row) < n


def recommend(
    state: MemberState, components: Components, ranker: Ranker, top_n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-n product positions per member (-1 = empty), scores, and the index of the
    signal contributing most above its catalogue average (the reason).

    Exactly the top n of the score over the whole catalogue (ties: lower product index),
    computed on candidates: a product without a personal signal scores its popularity
    alone (the same float), so beyond the m products with a personal signal only the
    first n + m of the home store's popularity order can reach the top n. The cost grows
    with the personal signals, not with members x catalogue (on Online Retail, where
    members have personal signals for a fifth of the catalogue, it is as fast as scoring
    every product)."""
    n_products = components.log_pop_long.size
    n = min(top_n, n_products)
    items = np.full((state.size, top_n), -1, dtype=np.int64)
    scores = np.full((state.size, top_n), np.nan)
    reasons = np.zeros((state.size, top_n), dtype=np.int64)
    if state.size == 0 or n == 0:
        return items, scores, reasons
    weights = ranker.weights
    used = [name for weight, name in zip(weights, SIGNALS, strict=True)
            if weight and name in PERSONAL]
    everything = np.arange(n_products)
    # per home store (-1: none): every product's score without personal signals, its
    # order (ties: lower index first) and the catalogue mean of each popularity signal
    homes = np.unique(state.home_store)
    base, order, means = [], [], []
    for home in homes:
        values = popularity_at(components, np.full(n_products, home), everything)
        base.append(_score(weights, values))
        order.append(np.lexsort((everything, -base[-1])))
        means.append([values[name].mean() for name in POPULARITY])
    base, order, means = np.stack(base), np.stack(order), np.array(means)
    place = np.empty_like(order)
    np.put_along_axis(place, order, everything[None, :], axis=1)
    room = sparse.csr_matrix(components.room)
    for start in range(0, state.size, BLOCK):
        rows = np.arange(start, min(start + BLOCK, state.size))
        block = block_signals(state, components, rows, room)
        home = np.searchsorted(homes, block.home)
        pattern = _union([block.personal[s] for s in used] + [block.excluded],
                         (rows.size, n_products))
        row, col, score, at = _top_candidates(block, weights, used, n, pattern, base, order,
                                              place, home)
        rank = _rank_in_row(row)
        items[rows[row], rank] = col
        scores[rows[row], rank] = score
        # the reason: the signal whose weighted value is furthest above its row mean
        at |= popularity_at(components, block.home[row], col)
        contribution = np.zeros((len(SIGNALS), row.size))
        for s, (weight, name) in enumerate(zip(weights, SIGNALS, strict=True)):
            if not weight:
                continue
            if name in POPULARITY:
                mean = means[home[row], POPULARITY.index(name)]
            else:
                sums = np.asarray(block.personal[name].sum(axis=1)).ravel()
                mean = (sums / n_products).astype(at[name].dtype)[row]
            contribution[s] = weight * (at[name] - mean)
        reasons[rows[row], rank] = np.argmax(contribution, axis=0)
    return items, scores, reasons


def _top_candidates(block, weights, used, n, pattern, base, order, place_of, home):
    """(row, product, score, personal signals ``used`` there) of the top n of a block's
    members, best first, from the products with a personal signal and the first of their
    store's popularity order (``base``, ``order``, ``place_of``: per store, the score
    without personal signals, the order and each product's place in it; ``home``: the
    store of each block row)."""
    n_products = base.shape[1]
    prow, pcol = _entries(pattern)
    # the popularity part of the score, then the personal signals in signal order: the
    # same float as _score over every signal
    pscore = base[home[prow], pcol]
    personal = {}
    for weight, name in zip(weights, SIGNALS, strict=True):
        if name in used:
            personal[name] = _aligned(block.personal[name], pattern)
            pscore = pscore + weight * personal[name]
    allowed = _aligned(block.excluded, pattern) == 0
    # candidates without one: the first n of the store's order outside the pattern, from
    # the first n + m positions of that order (m: the row's products in the pattern)
    length = np.minimum(n + np.diff(pattern.indptr), n_products)
    offset = np.cumsum(length) - length
    brow = np.repeat(np.arange(length.size), length)
    position = np.arange(brow.size) - np.repeat(offset, length)
    bcol = order[home[brow], position]
    # the candidate positions taken by a pattern product, found from its place in the order
    place = place_of[home[prow], pcol]
    taken = place < length[prow]
    outside = np.ones(brow.size, dtype=bool)
    outside[offset[prow[taken]] + place[taken]] = False
    brow, bcol = brow[outside], bcol[outside]
    first = _first_per_row(brow, n)
    brow, bcol = brow[first], bcol[first]
    bscore = base[home[brow], bcol]
    # a personal candidate below the row's n-th popularity candidate cannot make it
    counted = np.bincount(brow, minlength=length.size)
    last = np.searchsorted(brow, np.arange(length.size), side="right") - 1
    floor = np.full(length.size, -np.inf)
    floor[counted >= n] = bscore[last[counted >= n]]
    allowed &= pscore >= floor[prow]
    row = np.concatenate([prow[allowed], brow])
    col = np.concatenate([pcol[allowed], bcol])
    score = np.concatenate([pscore[allowed], bscore])
    chosen = np.lexsort((col, -score, row))
    chosen = chosen[_first_per_row(row[chosen], n)]
    # the personal signals of the chosen products (none for a popularity candidate)
    values = {
        name: np.concatenate([value[allowed], np.zeros(brow.size, dtype=value.dtype)])[chosen]
        for name, value in personal.items()
    }
    return row[chosen], col[chosen], score[chosen], values


def _popularity_lists(popularity: np.ndarray, n: int, users: int) -> np.ndarray:
    return np.tile(_top_n(popularity[None, :].astype(float), n), (users, 1))


def _repeat_lists(state: MemberState, fallback: np.ndarray, n: int) -> np.ndarray:
    """The member's most bought products (recency-weighted days), then ``fallback``."""
    counts = state.counts.tocsr()
    lists = np.full((state.size, n), -1, dtype=np.int64)
    for u in range(state.size):
        own_items = counts.indices[counts.indptr[u] : counts.indptr[u + 1]]
        own_counts = counts.data[counts.indptr[u] : counts.indptr[u + 1]]
        own = own_items[np.lexsort((own_items, -own_counts))][:n]
        rest = fallback[~np.isin(fallback, own)][: n - own.size]
        chosen = np.concatenate([own, rest])
        lists[u, : chosen.size] = chosen
    return lists


# --------------------------------------------------------------------------- evaluate


def evaluate(
    lines: pd.DataFrame, catalogue: Catalogue, cutoff: pd.Timestamp, ranker: Ranker,
    params: RecommenderParams, metrics: MetricRows,
) -> pd.DataFrame:
    """Holdout metrics of the ranker and the baselines, added to ``metrics``; returns the
    holdout lists (variant, customer_id, rank, product_id, is_hit) for inspection."""
    k = params.top_n
    components = fit_components(lines, catalogue, cutoff, params, ranker.signals)
    if components.receipts == 0 or lines["sold_date"].max() < cutoff:
        return empty_frame(HOLDOUT_COLUMNS)  # nothing before the cutoff, or nothing after
    window = (cutoff, lines["sold_date"].max())
    train = (lines["sold_date"].min(), cutoff - pd.Timedelta(days=1))
    _evaluate_anchor_baskets(lines, catalogue, components, cutoff, params, metrics, window, train)
    test = lines[(lines["sold_date"] >= cutoff) & lines["customer_id"].notna()]
    if test.empty:
        return empty_frame(HOLDOUT_COLUMNS)
    state = member_state(lines, _unique_ids(test["customer_id"]), components, catalogue, params)
    relevant = _binary(
        _positions(test["customer_id"], pd.Index(state.customer_ids)), test["item"],
        (state.size, catalogue.size),
    )
    popular = _popularity_lists(components.pop_count, k, 1)[0]
    variants = {
        "hybrid_ranker": recommend(state, components, ranker, k)[0],
        "baseline_popularity": np.tile(popular, (state.size, 1)),
        "baseline_recent_popularity": _popularity_lists(components.log_pop_recent, k, state.size),
        "baseline_personal_repeat": _repeat_lists(state, popular, k),
    }
    groups = {
        "all": np.ones(state.size, dtype=bool),
        "members_warm": state.has_history,
        "members_cold": ~state.has_history,
    }
    catalogue_sold = int((components.pop_count > 0).sum())
    for variant, lists in variants.items():
        for segment, mask in groups.items():
            if mask.any():
                metrics.add(
                    variant, ranking_metrics(lists[mask], relevant[mask], k, catalogue_sold),
                    split="test", n=int(mask.sum()), window=window, train=train,
                    segment=segment, is_baseline=variant.startswith("baseline"),
                )
    frames = []
    for variant, lists in variants.items():
        users, ranks = np.nonzero(lists >= 0)
        items = lists[users, ranks]
        frames.append(
            pd.DataFrame(
                {
                    "variant": variant,
                    "customer_id": state.customer_ids[users],
                    "recommendation_rank": ranks + 1,
                    "product_id": catalogue.product_ids[items],
                    "is_hit": np.asarray(relevant[users, items]).ravel() > 0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _family_lists(
    has_family: sparse.csr_matrix, attach_rate: np.ndarray, addon_score: np.ndarray, n: int
) -> np.ndarray:
    """Top-n add-ons per receipt by the summed attach rates of its anchor families: once
    per distinct set of families, ``FAMILY_BLOCK`` sets at a time (a dense receipts x
    catalogue score would be 218 MB for 1,147 Ta-Feng anchor receipts)."""
    has_family = _canonical(has_family)
    pointer, families = has_family.indptr, has_family.indices
    keys = [families[a:b].tobytes() for a, b in zip(pointer[:-1], pointer[1:], strict=True)]
    codes, _ = pd.factorize(pd.Series(keys, dtype=object))
    first = np.unique(codes, return_index=True)[1]
    lists = np.full((first.size, min(n, addon_score.size)), -1, dtype=np.int64)
    for start in range(0, first.size, FAMILY_BLOCK):
        rows = first[start : start + FAMILY_BLOCK]
        score = np.asarray(has_family[rows] @ attach_rate) + addon_score
        lists[start : start + rows.size] = _top_n(score, n)
    return lists[codes]


def _evaluate_anchor_baskets(lines, catalogue, components, cutoff, params, metrics, window, train):
    """The per-family add-on lists on holdout anchor receipts vs the most popular add-ons."""
    test = lines[lines["sold_date"] >= cutoff]
    anchor_lines = test[catalogue.is_anchor[test["item"].to_numpy()]]
    family = pd.Index(components.families).get_indexer(
        catalogue.categories[anchor_lines["item"].to_numpy()]
    )
    anchor_lines, family = anchor_lines[family >= 0], family[family >= 0]
    if anchor_lines.empty:
        return
    receipts = pd.Index(np.sort(anchor_lines["receipt_id"].unique()))
    has_family = _binary(
        receipts.get_indexer(anchor_lines["receipt_id"]), family,
        (receipts.size, components.families.size),
    )
    addons = test[catalogue.is_addon[test["item"].to_numpy()] & test["receipt_id"].isin(receipts)]
    relevant = _binary(
        receipts.get_indexer(addons["receipt_id"]), addons["item"], (receipts.size, catalogue.size)
    )
    addon_score = np.where(catalogue.is_addon, 0.0, -np.inf)
    variants = {
        "anchor_attach_rate": _family_lists(has_family, components.attach_rate, addon_score,
                                            params.top_n),
        "baseline_popularity": _popularity_lists(
            components.pop_count + addon_score, params.top_n, receipts.size
        ),
    }
    n_addons = int(((components.pop_count > 0) & catalogue.is_addon).sum())
    with_addons = int((np.asarray(relevant.sum(axis=1)).ravel() > 0).sum())
    if not with_addons:  # no holdout anchor receipt took an add-on: nothing to score
        return
    for variant, lists in variants.items():
        metrics.add(
            variant, ranking_metrics(lists, relevant, params.top_n, n_addons),
            split="test", n=with_addons, window=window, train=train, segment="anchor_baskets",
            is_baseline=variant.startswith("baseline"),
        )


# --------------------------------------------------------------------------- tables


def anchor_recommendations(
    components: Components, catalogue: Catalogue, top_n: int
) -> pd.DataFrame:
    """Per anchor family, the add-ons its buyers most often take along on the same receipt
    (attach rate shrunk towards the base rate), with the lift over the base rate. An add-on
    never bought on a receipt of the family is left out: the shrunk rate would rank it on
    its popularity alone, with no evidence that it goes with the family."""
    frames = []
    sold_addons = catalogue.is_addon & (components.pop_count > 0)
    for f, family in enumerate(components.families):
        taken = sold_addons & (components.together[f] > 0)
        top = _top_n(np.where(taken, components.attach_rate[f], -np.inf)[None, :], top_n)[0]
        top = top[top >= 0]
        frames.append(
            pd.DataFrame(
                {
                    "anchor_family": family,
                    "recommendation_rank": np.arange(1, top.size + 1),
                    "product_id": catalogue.product_ids[top],
                    "product_name": catalogue.names[top],
                    "category": catalogue.categories[top],
                    "attach_rate": components.attach_rate[f, top],
                    "base_rate": components.base_rate[top],
                    "lift": components.attach_rate[f, top] / components.base_rate[top],
                    "together_receipts": components.together[f, top],
                    "anchor_receipts": components.anchor_receipts[f],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else empty_frame(ANCHOR_COLUMNS)


def _member_table(state, components, catalogue, ranker, params) -> pd.DataFrame:
    items, scores, reasons = recommend(state, components, ranker, params.top_n)
    users, ranks = np.nonzero(items >= 0)
    chosen = items[users, ranks]
    as_of = (components.as_of - pd.Timedelta(days=1)).date()
    # text as categoricals: ten rows per member repeat its id and a catalogue's names
    return pd.DataFrame(
        {
            "customer_id": text_at(state.customer_ids, users),
            "recommendation_rank": ranks + 1,
            "product_id": text_at(catalogue.product_ids, chosen),
            "product_name": text_at(catalogue.names, chosen),
            "category": text_at(catalogue.categories, chosen),
            "score": scores[users, ranks],
            "reason": text_at([REASONS[s] for s in SIGNALS], reasons[users, ranks]),
            "is_repeat_purchase": _values_at(_canonical(state.bought), users, chosen) > 0,
            "is_cold_start": ~state.has_history[users],
            "as_of_date": pd.array([as_of], dtype=DATE_DTYPE).take(np.zeros_like(users)),
        }
    )


def _importances(ranker: Ranker, run_id: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "model": MODEL,
            "variant": "hybrid_ranker",
            "segment": "all",
            "feature": SIGNALS,
            "importance": np.abs(ranker.coefficients),
            "importance_std": np.nan,
            "signed_value": ranker.coefficients,
            "method": "abs_standardised_logistic_coefficient",
        }
    )
    return conform(frame, IMPORTANCE_COLUMNS)


def recommendations(
    baskets: pd.DataFrame,
    products: pd.DataFrame,
    members: pd.DataFrame,
    *,
    params: RecommenderParams,
    store: ArtifactStore,
    mode: str = "train",
) -> pd.DataFrame:
    """The ml_recommendations node. ``train``: learn the ranker before the cutoff, evaluate
    it on the holdout, refit the signals on all purchases, save the bundle and recommend.
    ``score``: recommend with the saved signals and ranker from the members' current
    purchases. Returns the top ``top_n`` per member."""
    mode = model_mode(mode)
    member_ids = set()
    if len(members):
        member_ids = set(members["customer_id"].dropna().astype(str).unique())
    if mode == "score":
        bundle, meta = store.current(MODEL)
        if bundle.get("components") is None:
            return empty_frame(RECOMMENDATION_COLUMNS)
        catalogue, ranker = bundle["catalogue"], bundle["ranker"]
        lines = prepare_lines(baskets, catalogue)
        as_of = lines["sold_date"].max() + pd.Timedelta(days=1) if len(lines) else (
            bundle["components"].as_of
        )
        components = replace(bundle["components"], as_of=as_of)
        member_ids |= set(_unique_ids(lines["customer_id"]))
        table = _member_table(
            member_state(lines, member_ids, components, catalogue, params),
            components, catalogue, ranker, params,
        )
        table["run_id"] = meta["run_id"]
        return conform(table, RECOMMENDATION_COLUMNS)

    run_id = compute_run_id(MODEL, params.as_dict(), baskets, products, members)
    catalogue = catalogue_of(products)
    lines = prepare_lines(baskets, catalogue)
    member_ids |= set(_unique_ids(lines["customer_id"]))
    if lines.empty:
        store.save(MODEL, run_id, {"outputs": {}, "components": None}, {"status": "no purchases"})
        return empty_frame(RECOMMENDATION_COLUMNS)
    cutoff = pd.Timestamp(
        temporal_cutoff(lines["sold_date"], params.holdout_days, params.cutoff_date)
    )
    ranker = fit_ranker(
        lines, catalogue, cutoff - pd.Timedelta(days=params.validation_days), cutoff, params
    )
    metrics = MetricRows(MODEL)
    holdout_lists = evaluate(lines, catalogue, cutoff, ranker, params, metrics)
    as_of = lines["sold_date"].max() + pd.Timedelta(days=1)
    components = fit_components(lines, catalogue, as_of, params, ranker.signals)
    table = _member_table(
        member_state(lines, member_ids, components, catalogue, params),
        components, catalogue, ranker, params,
    )
    table["run_id"] = text_at([run_id], np.zeros(len(table), dtype=np.int64))
    anchors = anchor_recommendations(components, catalogue, params.top_n)
    anchors["run_id"] = run_id
    outputs = {
        "by_anchor": conform(anchors, ANCHOR_COLUMNS),
        "metrics": metrics.frame(run_id),
        "importances": _importances(ranker, run_id),
        "holdout_lists": holdout_lists,
        "ranker": ranker.frame(),
    }
    train_rows = int((lines["sold_date"] < cutoff).sum())
    store.save(
        MODEL,
        run_id,
        {"outputs": outputs, "components": components, "ranker": ranker, "catalogue": catalogue},
        {
            "status": "trained",
            "estimator": "LogisticRegression ranker over popularity, item-item, rules, "
            "complete-the-room and repeat signals",
            "features": list(SIGNALS),
            "params": params.as_dict(),
            "train_start": lines["sold_date"].min(),
            "train_end": cutoff - pd.Timedelta(days=1),
            "test_start": cutoff,
            "test_end": lines["sold_date"].max(),
            "train_rows": train_rows,
            "test_rows": len(lines) - train_rows,
        },
    )
    return conform(table, RECOMMENDATION_COLUMNS)
