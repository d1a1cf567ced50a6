"""Time the UCI Online Retail import and print what it produced.

    .venv/bin/python bench/bench_import.py [PATH] [--repeat N]

PATH defaults to ../shared/datasets/online_retail/online_retail.csv.gz (relative
to the repository root). Writes into a temporary folder; prints the best and
median wall time, row counts, the size-class threshold and the category
distribution (products and lines per category).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from xsell.importers import import_online_retail  # noqa: E402

DEFAULT = REPO_ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.path.is_file():
        print(f"{args.path}: not found (the shared datasets folder is not here)")
        return 1

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            start = time.perf_counter()
            summary = import_online_retail(args.path, Path(tmp) / "raw")
            times.append(time.perf_counter() - start)

    print(f"import_online_retail({args.path.name}): best {min(times):.2f} s, "
          f"median {statistics.median(times):.2f} s over {len(times)} run(s)")
    print(summary.describe())
    categories = summary.metadata["product_categories"]
    total_products = sum(c["products"] for c in categories.values())
    total_lines = sum(c["lines"] for c in categories.values())
    print(f"\n{'category':<16}{'products':>9}{'%':>7}{'lines':>10}{'%':>7}")
    for name, c in categories.items():
        print(
            f"{name:<16}{c['products']:>9,}{100 * c['products'] / total_products:>6.1f}%"
            f"{c['lines']:>10,}{100 * c['lines'] / total_lines:>6.1f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
