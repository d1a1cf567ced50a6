"""Time `xsell generate` and `dbt build` at the default scale and at about 1M lines.

A benchmark, not a test: it prints figures (and writes bench/results/pipeline.json).
Each stage runs in its own process so its peak memory (max RSS) is its own.

    .venv/bin/python bench/bench_pipeline.py [--lines 1000000] [--keep]
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


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def run_scale(name: str, work: Path, extra_args: list[str]) -> dict:
    raw, build_db = work / name / "raw", work / name / "build.duckdb"
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_TARGET_PATH=str(work / name / "target"),
               DBT_LOG_PATH=str(work / name / "logs"))
    gen_s, gen_mb = timed([str(BIN / "xsell"), "generate", "--out", str(raw), "--quiet",
                           *extra_args], env)
    with duckdb.connect() as con:
        lines = con.execute(f"select count(*) from '{raw}/transactions.parquet'").fetchone()[0]
    env.update(XSELL_RAW_DIR=str(raw), XSELL_BUILD_DB=str(build_db))
    build_s, build_mb = timed([str(BIN / "dbt"), "build", "--quiet"], env)
    return {"scale": name, "lines": lines, "generate_s": round(gen_s, 2),
            "generate_peak_mib": round(gen_mb), "dbt_build_s": round(build_s, 2),
            "dbt_build_peak_mib": round(build_mb), "generate_lines_per_s": round(lines / gen_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="target lines, large scale")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xsell-bench-"))
    try:
        results = [run_scale("default", work, [])]
        # Lines grow in proportion to visits per day; scale from the default's density.
        from xsell.generate import load_config

        config = load_config()
        per_visit = results[0]["lines"] / (config.days * config.stores * config.visits_per_day)
        visits = args.lines / (per_visit * config.days * config.stores)
        results.append(run_scale("1M", work, ["--visits-per-day", f"{visits:.1f}"]))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'scale':<8} {'lines':>10} {'generate s':>11} {'gen MiB':>8} "
          f"{'dbt build s':>12} {'dbt MiB':>8}")
    for r in results:
        print(f"{r['scale']:<8} {r['lines']:>10,} {r['generate_s']:>11.2f} "
              f"{r['generate_peak_mib']:>8} {r['dbt_build_s']:>12.2f} {r['dbt_build_peak_mib']:>8}")
    out = PROJECT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
