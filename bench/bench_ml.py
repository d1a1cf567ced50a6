"""Time the ML steps of the DAG at the default scale and print their holdout figures.

A benchmark, not a test. It generates the default synthetic store (365 days, 2 stores,
120 visits a day), builds everything the ML models read (without tests), then runs the
ML nodes alone with `dbt run` and reports each node's time (dbt's run_results.json),
the wall time of that run, and the model-vs-baseline metrics of ml_model_metrics.
With --online-retail it does the same on the UCI Online Retail file when it is there.
Results also go to bench/results/ml.json.

    .venv/bin/python bench/bench_ml.py [--online-retail] [--threads 2] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ONLINE_RETAIL = PROJECT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"

# every node the ML issue adds (training nodes first); ml_model_metrics also reads the
# customer-value model ml_clv_metrics, which is built with the upstream, not timed here
ML_NODES = [
    "ml_restaurant_propensity", "ml_addon_propensity", "ml_recommendations",
    "ml_revenue_forecast", "ml_restaurant_calibration", "ml_restaurant_propensity_metrics",
    "ml_addon_recommendations_by_family", "ml_addon_propensity_metrics",
    "ml_recommendations_by_anchor", "ml_recommendations_metrics", "ml_revenue_backtest",
    "ml_revenue_forecast_metrics", "ml_feature_importances", "ml_model_registry",
    "ml_model_metrics",
]
HEADLINE = {
    "ml_restaurant_propensity": ("all", "test", ["roc_auc", "pr_auc", "brier"]),
    "ml_recommendations": ("all", "test", ["recall_at_10", "ndcg_at_10", "hit_rate_at_10",
                                           "catalogue_coverage"]),
    "ml_revenue_forecast": ("all", "backtest", ["mape", "smape", "mae"]),
}


def run(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - started


def bench(name: str, raw: Path, work: Path, threads: int, nodes: list[str]) -> dict:
    target = work / name / "target"
    db = work / name / "build.duckdb"
    env = dict(os.environ, DO_NOT_TRACK="1", XSELL_RAW_DIR=str(raw), XSELL_BUILD_DB=str(db),
               DBT_TARGET_PATH=str(target), DBT_LOG_PATH=str(work / name / "logs"),
               XSELL_THREADS=str(threads))
    upstream = [f"+{node}" for node in nodes]
    setup_s = run([str(BIN / "dbt"), "build", "--quiet", "--select", *upstream, "--exclude",
                   *nodes, "--exclude-resource-type", "test", "unit_test"], env)
    wall_s = run([str(BIN / "dbt"), "run", "--quiet", "--select", *nodes], env)
    results = json.loads((target / "run_results.json").read_text())["results"]
    node_s = {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in results}
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select model, variant, segment, split, metric, value from ml.ml_model_metrics "
            "order by model, segment, split, metric, variant"
        ).fetchall()
    return {"dataset": name, "threads": threads, "upstream_build_s": round(setup_s, 1),
            "ml_run_wall_s": round(wall_s, 1), "ml_node_s": node_s,
            "metrics": [dict(zip(["model", "variant", "segment", "split", "metric", "value"],
                                 row, strict=True)) for row in rows]}


def report(result: dict) -> None:
    print(f"\n== {result['dataset']}: ML nodes with {result['threads']} dbt threads")
    print(f"   upstream build (not timed as ML): {result['upstream_build_s']} s")
    print(f"   dbt run of the ML nodes, wall:     {result['ml_run_wall_s']} s "
          "(includes dbt start-up, ~4 s)")
    for node, seconds in sorted(result["ml_node_s"].items(), key=lambda kv: -kv[1]):
        print(f"     {node:<38} {seconds:>6.2f} s")
    print(f"     {'sum of node times':<38} {sum(result['ml_node_s'].values()):>6.2f} s")
    metrics = result["metrics"]
    for model, (segment, split, names) in HEADLINE.items():
        rows = [m for m in metrics if m["model"] == model and m["segment"] == segment
                and m["split"] == split and m["metric"] in names]
        if rows:
            print(f"   {model} ({split}, {segment})")
            for variant in sorted({m["variant"] for m in rows}):
                values = {m["metric"]: m["value"] for m in rows if m["variant"] == variant}
                shown = "  ".join(f"{n}={values[n]:.4f}" for n in names if n in values)
                print(f"     {variant:<30} {shown}")
    addon = [m for m in metrics if m["model"] == "ml_addon_propensity" and m["split"] == "test"
             and m["metric"] == "roc_auc"]
    if addon:
        for variant in sorted({m["variant"] for m in addon}):
            values = [m["value"] for m in addon if m["variant"] == variant]
            print(f"   ml_addon_propensity mean test roc_auc over {len(values)} categories, "
                  f"{variant}: {sum(values) / len(values):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online-retail", action="store_true", help="also the UCI file")
    parser.add_argument("--threads", type=int, default=2, help="dbt threads (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xsell-bench-ml-"))
    results = []
    try:
        raw = work / "synthetic" / "raw"
        run([str(BIN / "xsell"), "generate", "--out", str(raw), "--quiet"], dict(os.environ))
        results.append(bench("synthetic", raw, work, args.threads, ML_NODES))
        report(results[-1])
        if args.online_retail and ONLINE_RETAIL.exists():
            raw = work / "online_retail" / "raw"
            run([str(BIN / "xsell"), "import", "online-retail", str(ONLINE_RETAIL), "--out",
                 str(raw)], dict(os.environ))
            results.append(bench("online_retail", raw, work, args.threads, ML_NODES))
            report(results[-1])
        out = PROJECT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "ml.json").write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwritten: {out / 'ml.json'}")
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
