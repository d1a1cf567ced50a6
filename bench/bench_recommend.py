"""Time the recommender (xsell.ml.recommend.recommendations) outside dbt on a built store.

A benchmark, not a test. It reads the recommender's three inputs from a build file the
way the dbt model does (int_receipt_products_listed with categorical ids,
int_products_classified, int_customers_profiled), runs the training path once in this
process (fit the ranker on the validation window, evaluate on the holdout, refit and
recommend for every member), and prints wall and CPU time, the peak memory it added
(max RSS after minus before, which includes the input frames' share), the table's size,
the ranker's weights and the holdout figures of the ranker and its baselines. The
artifacts go to a temporary folder, never beside the build file.

    .venv/bin/python bench/bench_recommend.py path/to/build.duckdb [--cprofile 30]

Any store built by `xsell run` (or `dbt build --select +ml_recommendations`) will do:
the synthetic store, UCI Online Retail, or a grocery of tens of thousands of products.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from xsell.frames import frame_of
from xsell.ml.evaluation import METRIC_COLUMNS
from xsell.ml.recommend import MODEL, RecommenderParams, recommendations
from xsell.ml.registry import ArtifactStore

IDS = ["receipt_id", "customer_id", "store_id", "product_id"]
SHOWN = ["recall_at_10", "ndcg_at_10", "hit_rate_at_10", "catalogue_coverage"]


def max_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_db", type=Path)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="also print the N most expensive calls (cumulative)")
    args = parser.parse_args()
    with duckdb.connect(str(args.build_db), read_only=True) as con:
        baskets = frame_of(con.table("intermediate.int_receipt_products_listed"),
                           categorical=IDS)
        products = frame_of(con.table("intermediate.int_products_classified"))
        members = frame_of(con.table("intermediate.int_customers_profiled")
                           .project("customer_id"))
    print(f"{args.build_db}: {len(baskets):,} receipt-product rows, {len(products):,} "
          f"products, {len(members):,} members in the customers table")
    folder = Path(tempfile.mkdtemp(prefix="xsell-bench-rec-"))
    try:
        store = ArtifactStore(folder)
        before = max_rss_gib()
        profile = cProfile.Profile() if args.cprofile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profile:
            profile.enable()
        table = recommendations(baskets, products, members, params=RecommenderParams(),
                                store=store)
        if profile:
            profile.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"recommendations(): {wall:.1f} s wall, {cpu:.1f} s CPU; max RSS "
              f"{before:.2f} -> {max_rss_gib():.2f} GiB; {len(table):,} rows for "
              f"{table.customer_id.nunique():,} members")
        bundle, _ = store.current(MODEL)
        ranker = bundle["outputs"]["ranker"]
        print("ranker weights: " + ", ".join(
            f"{s}={w:.3f}" for s, w in zip(ranker.signal, ranker.weight, strict=True)))
        metrics = store.output(MODEL, "metrics", METRIC_COLUMNS)
        for segment, rows in metrics.groupby("segment", sort=True):
            print(f"holdout, {segment} (n = {rows.n.max():,}):")
            for variant, values in rows.groupby("variant", sort=True):
                shown = dict(zip(values.metric, values.value, strict=True))
                print(f"  {variant:<28} " + "  ".join(
                    f"{name}={shown[name]:.4f}" for name in SHOWN if name in shown))
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(args.cprofile)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
