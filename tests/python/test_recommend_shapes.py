"""The recommender (xsell.ml.recommend) on data shapes it was not built for, without dbt:
every receipt anonymous, members without history, a single receipt, one day, 7 and 14
days (shorter than the holdout + validation windows), one product, no anchors, every
product an anchor. It never raises and returns the declared columns and types; what
is empty and why is the module docstring's "When an output is empty".

Also: the candidate scoring against a dense full-catalogue reference, the stored-entry
top-k against a brute force, and determinism across two interpreters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from xsell.frames import to_arrow
from xsell.ml import evaluation as ev
from xsell.ml import recommend as rc
from xsell.ml import registry as rg

PRODUCTS = pd.DataFrame(
    {
        "product_id": ["B1", "L1", "L2", "L3", "S1", "T1", "T2", "T3"],
        "product_name": ["bed", "lamp", "shade", "bulb", "sofa", "tealight", "candle", "wick"],
        "category": ["BEDS", "LAMPS", "LAMPS", "LAMPS", "SOFAS", "CANDLES", "CANDLES",
                     "CANDLES"],
        "is_anchor": [True, False, False, False, True, False, False, False],
        "is_addon": [False, True, True, True, False, True, True, True],
    }
)
COLUMNS = ["receipt_id", "customer_id", "store_id", "sold_date", "product_id"]
NO_MEMBERS = pd.DataFrame({"customer_id": pd.Series([], dtype=object)})
DUCKDB_TYPES = {"str": "VARCHAR", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN",
                ev.DATE: "DATE"}


def _store(days: int = 120, members: int = 30, anonymous: float = 0.3, seed: int = 0,
           products: list[str] | None = None, start: str = "2025-01-01") -> pd.DataFrame:
    """Six receipts a day in two stores; sofa and bed receipts take lamps along, members
    rebuy 'their' candle; ``anonymous`` share of receipts without a customer."""
    rng = np.random.default_rng(seed)
    products = list(PRODUCTS.product_id) if products is None else products
    rows = []
    for day in range(days):
        for visit in range(6):
            member = None if rng.random() < anonymous else int(rng.integers(members))
            items = set(rng.choice(products, size=min(len(products), 2), replace=False))
            if member is not None and "T1" in products:
                items.add(["T1", "T2", "T3"][member % 3] if len(products) > 3 else products[0])
            if {"S1", "B1"} & items and "L1" in products:
                items.add("L1")
            items &= set(products)
            customer = None if member is None else f"c{member:03d}"
            receipt = f"r{day:03d}-{visit}"
            date = pd.Timestamp(start) + pd.Timedelta(days=day)
            rows += [(receipt, customer, f"S{visit % 2}", date, p) for p in sorted(items)]
    return pd.DataFrame(rows, columns=COLUMNS)


def _categorical(baskets: pd.DataFrame) -> pd.DataFrame:
    """As the dbt model reads them (xsell.frames.frame_of with categorical ids)."""
    out = baskets.copy()
    for column in ("receipt_id", "customer_id", "store_id", "product_id"):
        out[column] = pd.Categorical(out[column].astype(object))
    return out


def _run(tmp_path, baskets, products=PRODUCTS, members=NO_MEMBERS, **params):
    store = rg.ArtifactStore(tmp_path / "models")
    table = rc.recommendations(baskets, products, members,
                               params=rc.RecommenderParams(**params), store=store)
    by_anchor = store.output(rc.MODEL, "by_anchor", rc.ANCHOR_COLUMNS)
    metrics = store.output(rc.MODEL, "metrics", ev.METRIC_COLUMNS)
    for frame, columns in ((table, rc.RECOMMENDATION_COLUMNS), (by_anchor, rc.ANCHOR_COLUMNS),
                           (metrics, ev.METRIC_COLUMNS)):
        assert _duckdb_types(frame) == {c: DUCKDB_TYPES[t] for c, t in columns.items()}
    return table, by_anchor, metrics, store


def _duckdb_types(frame: pd.DataFrame) -> dict[str, str]:
    """Column types of the table dbt-duckdb would create from the frame."""
    with duckdb.connect() as con:
        con.register("frame", to_arrow(frame))
        return {row[0]: row[1] for row in con.execute("describe select * from frame").fetchall()}


def _segments(metrics: pd.DataFrame) -> set[str]:
    return set(metrics.segment)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("as_categorical", [False, True])
def test_every_receipt_anonymous(tmp_path, as_categorical):
    """No member: no member table and no member metrics, but complete-the-room is learnt
    from the anonymous receipts and scored on their holdout anchor receipts."""
    baskets = _store(anonymous=1.0)
    assert baskets.customer_id.isna().all()
    table, by_anchor, metrics, _ = _run(
        tmp_path, _categorical(baskets) if as_categorical else baskets
    )
    assert table.empty
    assert set(by_anchor.anchor_family) == {"BEDS", "SOFAS"}
    # the planted lamp is the first add-on of both families
    assert set(by_anchor[by_anchor.recommendation_rank == 1].product_id) == {"L1"}
    assert _segments(metrics) == {"anchor_baskets"}
    assert metrics.value.notna().all()


def test_members_without_any_purchase_get_popular_products(tmp_path):
    baskets = _store(anonymous=1.0)
    members = pd.DataFrame({"customer_id": ["m1", "m2"]})
    table, _, metrics, _ = _run(tmp_path, baskets, members=members)
    assert set(table.customer_id) == {"m1", "m2"}
    assert table.is_cold_start.all() and not table.is_repeat_purchase.any()
    counts = baskets.groupby("product_id").receipt_id.nunique().sort_values(
        ascending=False, kind="stable")
    first = table[table.recommendation_rank == 1].product_id
    assert set(first) == {counts.index[0]}  # the most bought product
    assert _segments(metrics) == {"anchor_baskets"}  # no member buys in the holdout


def test_members_whose_purchases_all_fall_in_the_holdout(tmp_path):
    """Before the cutoff every receipt is anonymous: the ranker has no member to learn
    from (popularity), and the members of the holdout are all cold starts."""
    baskets = _store()
    cutoff = baskets.sold_date.max() - pd.Timedelta(days=27)
    baskets.loc[baskets.sold_date < cutoff, "customer_id"] = None
    table, _, metrics, store = _run(tmp_path, baskets)
    assert _segments(metrics) == {"all", "members_cold", "anchor_baskets"}
    test_members = baskets.loc[baskets.sold_date >= cutoff, "customer_id"].nunique()
    assert (metrics[metrics.segment == "all"].n == test_members).all()
    ranker = store.output(rc.MODEL, "ranker", {"signal": "str", "weight": "float64"})
    assert dict(zip(ranker.signal, ranker.weight, strict=True))["pop_long"] == 1.0
    assert sorted(ranker.weight)[-2] == 0.0  # popularity alone
    # the final table uses every purchase: those members are warm there
    assert set(table.customer_id) == set(baskets.customer_id.dropna())
    assert not table.is_cold_start.any()


def test_a_single_receipt(tmp_path):
    baskets = pd.DataFrame([("r1", "c1", "S1", pd.Timestamp("2025-03-01"), p)
                            for p in ("S1", "L1")], columns=COLUMNS)
    table, by_anchor, metrics, _ = _run(tmp_path, baskets)
    assert metrics.empty  # nothing before the cutoff
    # what c1 bought is not repeatable (no evidence); the rest of the catalogue follows
    assert list(table.product_id) == ["B1", "L2", "L3", "T1", "T2", "T3"]
    assert table.is_cold_start.eq(False).all()
    # the sofa's family, with the one add-on ever sold
    pairs = zip(by_anchor.anchor_family, by_anchor.product_id, strict=True)
    assert list(pairs) == [("SOFAS", "L1")]
    assert by_anchor.together_receipts.iloc[0] == by_anchor.anchor_receipts.iloc[0] == 1


def test_complete_the_room_holds_only_add_ons_bought_with_the_family(tmp_path):
    """Tealights and candles sell, but never on a sofa receipt: no evidence that they go
    with sofas, so the sofa list holds the lamp alone (not the popular add-ons)."""
    day = pd.Timestamp("2025-03-01")
    lines = [("r1", "c1", "S1", day, "S1"), ("r1", "c1", "S1", day, "L1")]
    lines += [(f"r{i}", None, "S1", day, p) for i in range(2, 8) for p in ("T1", "T2")]
    _, by_anchor, _, _ = _run(tmp_path, pd.DataFrame(lines, columns=COLUMNS))
    assert list(zip(by_anchor.anchor_family, by_anchor.product_id, strict=True)) == [
        ("SOFAS", "L1")]
    assert (by_anchor.together_receipts > 0).all()


@pytest.mark.parametrize("days", [1, 7, 14, 40])
def test_histories_shorter_than_the_holdout_and_validation_windows(tmp_path, days):
    """28-day holdout and 28-day validation: 1, 7 and 14 days have nothing before the
    cutoff (no metrics); 40 days are evaluated. In all four nothing precedes the
    validation window, so the ranker is the popularity fallback."""
    baskets = _store(days=days, seed=days)
    table, by_anchor, metrics, store = _run(tmp_path, baskets)
    members = baskets.customer_id.nunique()
    assert table.customer_id.nunique() == members
    assert table.groupby("customer_id").size().max() <= len(PRODUCTS)
    assert set(by_anchor.anchor_family) <= {"BEDS", "SOFAS"} and len(by_anchor)
    weights = store.output(rc.MODEL, "ranker", {"signal": "str", "weight": "float64"})
    assert dict(zip(weights.signal, weights.weight, strict=True)) == {
        s: float(s == "pop_long") for s in rc.SIGNALS}
    if days < 28:
        assert metrics.empty
    else:
        assert {"all", "members_warm", "anchor_baskets"} <= _segments(metrics)
        window = metrics.window_start.min(), metrics.train_end.max()
        assert window[1] < window[0]


def test_a_single_product(tmp_path):
    products = PRODUCTS[PRODUCTS.product_id == "T1"]
    baskets = _store(products=["T1"])
    table, by_anchor, metrics, _ = _run(tmp_path, baskets, products=products)
    assert set(table.product_id) <= {"T1"}
    assert table.groupby("customer_id").size().max() == 1
    assert by_anchor.empty  # no anchor
    assert "anchor_baskets" not in _segments(metrics)


def test_no_product_is_an_anchor(tmp_path):
    products = PRODUCTS.assign(is_anchor=False, is_addon=True)
    table, by_anchor, metrics, _ = _run(tmp_path, _store(), products=products)
    assert by_anchor.empty
    assert _segments(metrics) == {"all", "members_warm"}
    assert table.groupby("customer_id").size().max() <= len(products)


def test_every_product_is_an_anchor(tmp_path):
    products = PRODUCTS.assign(is_anchor=True, is_addon=False)
    table, by_anchor, metrics, _ = _run(tmp_path, _store(), products=products)
    assert by_anchor.empty  # no add-on to complete a room with
    assert "anchor_baskets" not in _segments(metrics)
    assert len(table) and set(table.product_id) <= set(products.product_id)


@pytest.mark.parametrize("case", ["no lines", "no merchandise"])
def test_no_purchase_to_learn_from(tmp_path, case):
    baskets = _store().iloc[:0] if case == "no lines" else _store()
    products = PRODUCTS if case == "no lines" else PRODUCTS.assign(is_anchor=False,
                                                                  is_addon=False)
    members = pd.DataFrame({"customer_id": ["m1"]})
    table, by_anchor, metrics, store = _run(tmp_path, baskets, products=products,
                                            members=members)
    assert table.empty and by_anchor.empty and metrics.empty
    # score mode with that bundle: empty too
    scored = rc.recommendations(baskets, products, members, params=rc.RecommenderParams(),
                                store=store, mode="score")
    assert scored.empty and list(scored.columns) == list(rc.RECOMMENDATION_COLUMNS)


def test_score_mode_on_anonymous_receipts(tmp_path):
    baskets = _store(anonymous=1.0)
    _, _, _, store = _run(tmp_path, baskets)
    scored = rc.recommendations(_categorical(baskets), PRODUCTS, NO_MEMBERS,
                                params=rc.RecommenderParams(), store=store, mode="score")
    assert scored.empty
    assert _duckdb_types(scored) == {c: DUCKDB_TYPES[t]
                                     for c, t in rc.RECOMMENDATION_COLUMNS.items()}


# --------------------------------------------------------------------------- algorithms


def _dense_signals(state, components) -> dict[str, np.ndarray]:
    """Every signal for every member and product, densely: the definition the candidate
    scoring must reproduce."""
    home = state.home_store
    store = components.log_pop_store[np.maximum(home, 0)] if components.store_ids.size else 0
    pop_store = np.where((home >= 0)[:, None], store, components.log_pop_recent[None, :])
    shape = pop_store.shape
    return {
        "pop_store": pop_store,
        "pop_recent": np.broadcast_to(components.log_pop_recent, shape),
        "pop_long": np.broadcast_to(components.log_pop_long, shape),
        "similar": np.log1p((state.recency @ components.similarity).toarray()),
        "rules": np.log1p((state.last_day @ components.rules).toarray()),
        "room": np.asarray(state.last_families @ components.room),
        "bought_before": state.bought.toarray() * components.repeatable,
        "repeat": np.log1p(state.counts.toarray()) * components.repeatable,
    }


@pytest.mark.parametrize("seed", range(4))
def test_candidate_scoring_equals_the_full_catalogue_ranking(seed):
    """Random weights (negative ones too) on a random store: the top n computed from
    candidates is the top n of the dense score over the whole catalogue (ties: lower
    product index), with the same scores."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:02d}" for i in range(40)]
    products = pd.DataFrame({
        "product_id": ids, "product_name": ids, "category": [f"C{i % 5}" for i in range(40)],
        "is_anchor": [i % 8 == 0 for i in range(40)], "is_addon": [i % 8 != 0 for i in range(40)],
    })
    rows = []
    for r in range(400):
        customer = None if rng.random() < 0.2 else f"c{rng.integers(60):02d}"
        day = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(90)))
        for p in rng.choice(40, size=int(rng.integers(1, 6)), replace=False):
            rows.append((f"r{r}", customer, f"S{r % 3}", day, ids[p]))
    baskets = pd.DataFrame(rows, columns=COLUMNS)
    params = rc.RecommenderParams(neighbours=5, rule_min_receipts=1)
    catalogue = rc.catalogue_of(products)
    lines = rc.prepare_lines(baskets, catalogue)
    components = rc.fit_components(lines, catalogue, pd.Timestamp("2025-03-15"), params)
    members = [f"c{i:02d}" for i in range(60)] + ["new"]
    state = rc.member_state(lines, members, components, catalogue, params)
    values = _dense_signals(state, components)
    for trial in range(3):
        weights = rng.normal(size=len(rc.SIGNALS)) * (rng.random(len(rc.SIGNALS)) < 0.7)
        ranker = rc.Ranker(weights, weights, np.ones(len(rc.SIGNALS)), 0, 0, 0)
        score = 1e-6 * values["pop_long"]
        for weight, name in zip(weights, rc.SIGNALS, strict=True):
            if weight:
                score = score + weight * values[name]
        excluded = state.bought.toarray().astype(bool) & ~components.repeatable
        score[excluded] = -np.inf
        for n in (1, 10, 45):
            items, scores, _ = rc.recommend(state, components, ranker, n)
            for u in range(state.size):
                finite = np.flatnonzero(np.isfinite(score[u]))
                order = finite[np.lexsort((finite, -score[u, finite]))][:n]
                expected = np.full(n, -1)
                expected[: order.size] = order
                np.testing.assert_array_equal(items[u], expected, err_msg=f"{trial} {n} {u}")
                np.testing.assert_array_equal(scores[u, : order.size], score[u, order])


def test_neighbours_a_ranker_ignores_are_not_computed_and_change_nothing():
    baskets = _store(seed=9)
    catalogue = rc.catalogue_of(PRODUCTS)
    lines = rc.prepare_lines(baskets, catalogue)
    params = rc.RecommenderParams(rule_min_receipts=1)
    as_of = pd.Timestamp("2025-04-01")
    weights = np.array([0.2, 0.0, 0.1, 0.0, 0.0, 0.5, 1.0, 0.7])  # no similar, no rules
    ranker = rc.Ranker(weights, weights, np.ones(len(rc.SIGNALS)), 0, 0, 0)
    assert ranker.signals == ("pop_store", "pop_long", "room", "bought_before", "repeat")
    full = rc.fit_components(lines, catalogue, as_of, params)
    lean = rc.fit_components(lines, catalogue, as_of, params, ranker.signals)
    assert full.similarity.nnz and full.rules.nnz
    assert lean.similarity.nnz == lean.rules.nnz == 0
    members = sorted(baskets.customer_id.dropna().unique())
    got = [rc.recommend(rc.member_state(lines, members, c, catalogue, params), c, ranker, 5)
           for c in (full, lean)]
    for a, b in zip(*got, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dense_share", [0.0, 2.0])  # every block dense / entry by entry
def test_top_k_rows_keeps_the_k_largest_entries_per_row(dense_share):
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(1, 60))
        matrix = sparse.random(n, n, density=rng.random() * 0.5, random_state=trial,
                               data_rvs=lambda size: rng.integers(1, 5, size)).tocsr()
        # entries out of column order within rows, as a sparse product leaves them
        for i in range(n):
            a, b = matrix.indptr[i], matrix.indptr[i + 1]
            order = rng.permutation(b - a)
            matrix.indices[a:b], matrix.data[a:b] = matrix.indices[a:b][order], matrix.data[
                a:b][order]
        matrix.has_sorted_indices = False
        k, min_count = int(rng.integers(1, 8)), float(rng.integers(0, 3))
        rows, cols = rng.choice([0.5, 1.0], n), rng.choice([0.25, 1.0], n)
        first = int(rng.integers(0, n))  # the rows from `first` on of a larger matrix
        got = rc._top_k_rows(matrix[first:], k, rows[first:], cols, min_count=min_count,
                             block_entries=int(rng.integers(1, 50)), first_row=first,
                             dense_share=dense_share)
        assert got.has_sorted_indices
        dense = matrix.toarray().astype(np.float32)
        value = dense * (rows[:, None] * cols[None, :]).astype(np.float32)
        value[(dense < min_count) | (value <= 0)] = 0
        np.fill_diagonal(value, 0)
        expected = np.zeros_like(value)
        for i in range(n):
            positive = np.flatnonzero(value[i] > 0)
            top = positive[np.lexsort((positive, -value[i, positive]))][:k]  # ties: lower j
            expected[i, top] = value[i, top]
        np.testing.assert_array_equal(got.toarray(), expected[first:], err_msg=str(trial))


def test_top_n_breaks_ties_by_the_lower_index_and_marks_what_is_not_finite():
    score = np.array([[1.0, 3.0, 2.0, 2.0, 2.0, 2.0],
                      [-np.inf, 1.0, -np.inf, 1.0, -np.inf, -np.inf]])
    np.testing.assert_array_equal(rc._top_n(score, 3), [[1, 2, 3], [1, 3, -1]])
    rng = np.random.default_rng(0)
    for _ in range(50):
        score = rng.integers(0, 4, size=(5, 30)).astype(float)
        n = int(rng.integers(1, 31))
        expected = np.array([np.lexsort((np.arange(30), -row))[:n] for row in score])
        np.testing.assert_array_equal(rc._top_n(score, n), expected)


# --------------------------------------------------------------------------- determinism

_ONE_RUN = """
import sys
from pathlib import Path
import pandas as pd
from xsell.ml import recommend as rc
from xsell.ml import registry as rg
folder = Path(sys.argv[1])
store = rg.ArtifactStore(folder / "models")
table = rc.recommendations(pd.read_pickle(folder.parent / "baskets.pkl"),
                           pd.read_pickle(folder.parent / "products.pkl"),
                           pd.DataFrame({"customer_id": ["new"]}),
                           params=rc.RecommenderParams(), store=store)
table.to_pickle(folder / "table.pkl")
for name in ("by_anchor", "metrics", "ranker", "holdout_lists"):
    store.current(rc.MODEL)[0]["outputs"][name].to_pickle(folder / f"{name}.pkl")
"""


def test_identical_outputs_and_run_id_in_two_interpreters(tmp_path):
    _categorical(_store(seed=5)).to_pickle(tmp_path / "baskets.pkl")
    PRODUCTS.to_pickle(tmp_path / "products.pkl")
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        # different string hashes in each interpreter
        seed = {"a": "1", "b": "2"}[run]
        subprocess.run([sys.executable, "-c", _ONE_RUN, str(tmp_path / run)], check=True,
                       env=dict(os.environ, PYTHONHASHSEED=seed))
    pointer = {run: json.loads((tmp_path / run / "models" / f"{rc.MODEL}.current.json")
                               .read_text()) for run in ("a", "b")}
    assert pointer["a"] == pointer["b"]
    for name in ("table", "by_anchor", "metrics", "ranker", "holdout_lists"):
        a = pd.read_pickle(tmp_path / "a" / f"{name}.pkl")
        b = pd.read_pickle(tmp_path / "b" / f"{name}.pkl")
        assert len(a), name
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    table = pd.read_pickle(tmp_path / "a" / "table.pkl")
    assert table.run_id.astype(str).eq(pointer["a"]["run_id"]).all()
    metrics = pd.read_pickle(tmp_path / "a" / "metrics.pkl")
    assert metrics.run_id.eq(pointer["a"]["run_id"]).all()
    sidecar = Path(tmp_path / "a" / "models" / pointer["a"]["artifact_file"]).with_suffix(
        ".json")
    other = Path(tmp_path / "b" / "models" / pointer["b"]["artifact_file"]).with_suffix(
        ".json")
    assert json.loads(sidecar.read_text())["artifact_sha256"] == json.loads(
        other.read_text())["artifact_sha256"]

