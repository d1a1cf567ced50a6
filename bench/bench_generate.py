"""Throughput and peak memory of the synthetic store generator (prints figures; not a test).

Each scale runs in a fresh Python process so its peak resident memory is its own:

    .venv/bin/python bench/bench_generate.py                 # default scale and ~1M lines
    .venv/bin/python bench/bench_generate.py --lines 10000000 --fmt csv
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(out: Path, visits_per_day: float | None, fmt: str) -> dict:
    """Generate once in this process and measure it."""
    from xsell.generate import generate_store

    started = time.perf_counter()
    summary = generate_store(out, visits_per_day=visits_per_day, fmt=fmt)
    seconds = time.perf_counter() - started
    lines = summary.row_counts["transactions"]
    size = sum(p.stat().st_size for p in out.iterdir())
    return {
        "lines": lines,
        "receipts_per_store_day": summary.config.visits_per_day,
        "seconds": round(seconds, 2),
        "lines_per_s": round(lines / seconds),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "files_mib": round(size / 2**20, 1),
        "row_counts": summary.row_counts,
    }


def in_subprocess(out: Path, visits_per_day: float | None, fmt: str) -> dict:
    args = [sys.executable, __file__, "--one", str(out), "--fmt", fmt]
    if visits_per_day is not None:
        args += ["--visits-per-day", f"{visits_per_day:.2f}"]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="target lines, large scale")
    parser.add_argument("--fmt", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--visits-per-day", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.visits_per_day, args.fmt)))
        return
    work = Path(tempfile.mkdtemp(prefix="xsell-bench-generate-"))
    try:
        default = in_subprocess(work / "default", None, args.fmt)
        # Lines grow in proportion to visits; scale from the default's lines per visit.
        visits = default["receipts_per_store_day"] * args.lines / default["lines"]
        large = in_subprocess(work / "large", visits, args.fmt)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = ("scale", "lines", "seconds", "lines/s", "peak MiB", "files MiB")
    print("{:<8} {:>11} {:>8} {:>10} {:>9} {:>10}".format(*header))
    for name, r in (("default", default), ("large", large)):
        print(
            f"{name:<8} {r['lines']:>11,} {r['seconds']:>8.2f} {r['lines_per_s']:>10,} "
            f"{r['peak_mib']:>9,} {r['files_mib']:>10}"
        )
    print("default row counts:", default["row_counts"])


if __name__ == "__main__":
    main()
