"""Benchmark: xsell.ml.rules.mine_rules vs mlxtend (fpgrowth + association_rules).

All UCI Online Retail invoices that are not cancellations (InvoiceNo not
starting with C), items = StockCode: about 22k baskets over 4k items.
Prints, per min_support: baskets, count threshold, itemsets, rules, wall time
(xsell best of 3, mlxtend one run), peak traced memory (tracemalloc: Python and
numpy allocations, measured in a separate run) and whether the two results agree
(same itemsets, same single-consequent rules, every metric within 1e-9).

    .venv/bin/python bench/bench_rules.py [--supports 0.01 0.005] [--min-confidence 0.1]

With --build-db (a file `xsell run` built, e.g. on Online Retail), it times instead what
the two dbt Python models do on it: mining marts.fct_frequent_itemsets from
intermediate.int_basket_items, then deriving fct_association_rules from the itemsets,
unpruned and with the pruning and names of the default dbt vars; it prints the rules
left after each pruning step and their Parquet size (DuckDB's default compression).

    .venv/bin/python bench/bench_rules.py --build-db /tmp/rules/build.duckdb
"""

from __future__ import annotations

import argparse
import gc
import math
import time
import tracemalloc
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from xsell.ml.rules import frequent_itemsets, min_basket_count, mine_rules

REPO_ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO_ROOT / ".." / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
METRICS = [
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "antecedent_support",
    "consequent_support",
]


def load_pairs() -> pd.DataFrame:
    return (
        duckdb.connect()
        .execute(
            """
            select InvoiceNo as basket_id, StockCode as item
            from read_csv(?, all_varchar = true)
            where not starts_with(InvoiceNo, 'C')
            """,
            [str(ONLINE_RETAIL)],
        )
        .df()
    )


def run_xsell(pairs, min_support, min_confidence, max_len):
    return mine_rules(
        pairs, min_support=min_support, min_confidence=min_confidence, max_len=max_len
    )


def run_mlxtend(pairs, min_support, min_confidence, max_len):
    """The usual mlxtend pipeline: one-hot bool frame, fpgrowth, association_rules."""
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    baskets, _ = pd.factorize(pairs["basket_id"])
    items, labels = pd.factorize(pairs["item"], sort=True)
    onehot = np.zeros((baskets.max() + 1, len(labels)), dtype=bool)
    onehot[baskets, items] = True
    frame = pd.DataFrame(onehot, columns=list(labels))
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=max_len)
    rules = association_rules(
        itemsets, num_itemsets=len(frame), metric="confidence", min_threshold=min_confidence
    )
    rules = rules[rules["consequents"].map(len) == 1]
    return itemsets, rules


def timed(fn, *args, repeat=1):
    best, result = math.inf, None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def traced_peak_mib(fn, *args) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def compare(ours: pd.DataFrame, theirs: pd.DataFrame, min_confidence: float) -> str:
    """'yes' when rules and metrics agree; otherwise what differs."""
    theirs = theirs.rename(
        columns={
            "antecedent support": "antecedent_support",
            "consequent support": "consequent_support",
        }
    )
    a = {(tuple(r.antecedent), r.consequent): r for r in ours.itertuples()}
    b = {(tuple(sorted(r.antecedents)), next(iter(r.consequents))): r for r in theirs.itertuples()}
    only = [(k, a[k].confidence) for k in a.keys() - b.keys()]
    only += [(k, b[k].confidence) for k in b.keys() - a.keys()]
    worst = 0.0
    for key in a.keys() & b.keys():
        for metric in METRICS:
            x, y = getattr(a[key], metric), getattr(b[key], metric)
            if math.isinf(x) or math.isinf(y):
                worst = worst if x == y else math.inf
            else:
                worst = max(worst, abs(x - y) / max(1.0, abs(y)))
    if not only and worst <= 1e-9:
        return f"yes (max rel. diff {worst:.1e})"
    boundary = all(abs(conf - min_confidence) < 1e-9 for _, conf in only)
    note = " (all at the confidence boundary: float rounding)" if only and boundary else ""
    return f"NO: {len(only)} rules in one only{note}, max rel. diff {worst:.1e}"


def parquet_bytes(table) -> int:
    """Size of ``table`` written as Parquet by DuckDB, as `COPY ... TO` would store it."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.parquet"
        con = duckdb.connect()
        con.register("rules", table)
        con.execute(f"copy (select * from rules) to '{path}' (format parquet)")
        return path.stat().st_size


def bench_build(build_db: Path, repeat: int) -> None:
    """The dbt Python models' work on a built file, with the dbt_project.yml defaults."""
    import yaml

    from xsell.ml.rules import (
        RulePruning,
        itemsets_by_level,
        rules_from_itemsets,
        with_item_names,
    )

    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())["vars"]
    with duckdb.connect(str(build_db), read_only=True) as con:
        baskets = con.sql("select * from intermediate.int_basket_items").df()
        products = con.sql(
            "select product_id, product_name from intermediate.int_products_classified"
        ).to_arrow_table()
    support = {"category": project["min_support"], "product": project["product_min_support"]}
    max_len, min_confidence = project["max_itemset_length"], project["min_confidence"]
    pruning = RulePruning(
        project["rules_min_lift"], project["rules_min_count"],
        project["rules_min_confidence_gain"], project["rules_top_n_per_consequent"],
    )
    print(f"{build_db}: {baskets['basket_id'].nunique():,} baskets; min_support {support}, "
          f"max_itemset_length {max_len}, min_confidence {min_confidence}; {pruning}")
    seconds, itemsets = timed(
        lambda: itemsets_by_level(baskets, min_support=support, max_len=max_len), repeat=repeat)
    print(f"mine fct_frequent_itemsets: {itemsets.num_rows:,} itemsets in {seconds:.2f} s")
    seconds, every = timed(
        lambda: rules_from_itemsets(itemsets, min_confidence=min_confidence), repeat=repeat)
    print(f"derive every rule: {every.num_rows:,} rules in {seconds:.2f} s, "
          f"{parquet_bytes(every) / 2**20:.1f} MiB Parquet")
    counts = {}

    def pruned():
        counts.clear()
        rules = rules_from_itemsets(itemsets, min_confidence=min_confidence, pruning=pruning,
                                    counts=counts)
        return with_item_names(rules, products)

    seconds, kept = timed(pruned, repeat=repeat)
    print(f"derive, prune and name (fct_association_rules): {kept.num_rows:,} rules in "
          f"{seconds:.2f} s, {parquet_bytes(kept) / 2**20:.2f} MiB Parquet")
    for level, steps in sorted(counts.items()):
        print(f"  {level}: {steps.describe(pruning)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-db", type=Path,
                        help="time the dbt models' mining, derivation and pruning on this file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--supports", type=float, nargs="+", default=[0.01, 0.005])
    parser.add_argument("--min-confidence", type=float, default=0.1)
    parser.add_argument("--max-len", type=int, default=10)
    parser.add_argument("--skip-mlxtend", action="store_true")
    args = parser.parse_args()
    if args.build_db is not None:
        bench_build(args.build_db, args.repeat)
        return
    if not ONLINE_RETAIL.exists():
        raise SystemExit(f"Online Retail data set not found at {ONLINE_RETAIL.resolve()}")

    pairs = load_pairs()
    n = pairs["basket_id"].nunique()
    print(
        f"Online Retail: {len(pairs):,} lines, {n:,} baskets, "
        f"{pairs['item'].nunique():,} items; min_confidence {args.min_confidence}, "
        f"max_len {args.max_len}"
    )
    header = (
        f"{'min_sup':>8} {'min_cnt':>7} {'impl':>8} {'itemsets':>9} {'rules':>8} "
        f"{'time s':>8} {'peak MiB':>9}  agree"
    )
    print(header)
    print("-" * len(header))
    for min_support in args.supports:
        call = (pairs, min_support, args.min_confidence, args.max_len)
        thr = min_basket_count(min_support, n)
        seconds, ours = timed(run_xsell, *call, repeat=3)
        peak = traced_peak_mib(run_xsell, *call)
        our_sets = frequent_itemsets(pairs, min_support=min_support, max_len=args.max_len)
        n_sets = len(our_sets)
        print(
            f"{min_support:>8} {thr:>7} {'xsell':>8} {n_sets:>9,} {len(ours):>8,} "
            f"{seconds:>8.2f} {peak:>9.1f}"
        )
        if args.skip_mlxtend:
            continue
        seconds_ref, (ref_sets, ref_rules) = timed(run_mlxtend, *call)
        peak_ref = traced_peak_mib(run_mlxtend, *call)
        verdict = compare(ours, ref_rules, args.min_confidence)
        if set(map(frozenset, our_sets["itemset"])) != set(ref_sets["itemsets"]):
            verdict = f"NO: itemsets differ ({n_sets} vs {len(ref_sets)}); " + verdict
        print(
            f"{'':>8} {'':>7} {'mlxtend':>8} {len(ref_sets):>9,} {len(ref_rules):>8,} "
            f"{seconds_ref:>8.2f} {peak_ref:>9.1f}  {verdict}"
        )
        print(f"{'':>17} speed-up x{seconds_ref / seconds:.0f}, memory x{peak_ref / peak:.1f}")


if __name__ == "__main__":
    main()
