"""End-to-end time on the UCI Online Retail data: import, then `xsell run` (dbt build,
quality gate, publish and reports, all into a temporary folder).

A benchmark, not a test: prints figures and writes bench/results/online_retail.json.

    .venv/bin/python bench/bench_online_retail.py [PATH]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT = PROJECT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
XSELL = str(Path(sys.executable).parent / "xsell")


def stage(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one xsell command."""
    started = time.perf_counter()
    process = subprocess.Popen([XSELL, *args], cwd=PROJECT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"xsell {' '.join(args)} failed:\n{process.stderr.read().decode()}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not source.exists():
        raise SystemExit(f"{source} not found")
    with tempfile.TemporaryDirectory(prefix="xsell-bench-") as folder:
        work = Path(folder)
        # everything the run writes stays in the temporary folder: the build, the
        # published file, the reports and Data Docs, dbt's target and logs
        env = dict(os.environ, DO_NOT_TRACK="1", DBT_TARGET_PATH=str(work / "target"),
                   DBT_LOG_PATH=str(work / "logs"),
                   XSELL_PUBLISHED_DB=str(work / "published.duckdb"),
                   XSELL_REPORTS_DIR=str(work / "reports"))
        raw, db = work / "raw", work / "build.duckdb"
        import_s, import_mib = stage(["import", "online-retail", str(source), "--out", str(raw)],
                                     env)
        run_args = ["run", "--raw-dir", str(raw), "--build-db", str(db), "--no-generate"]
        run_s, run_mib = stage(run_args, env)
    load = os.getloadavg()[0]
    result = {"source": str(source), "load_1min_after": round(load, 2),
              "import_s": round(import_s, 2),
              "import_peak_mib": round(import_mib), "run_s": round(run_s, 2),
              "run_peak_mib": round(run_mib), "end_to_end_s": round(import_s + run_s, 2)}
    print(f"import {import_s:6.1f} s  peak {import_mib:6.0f} MiB")
    print(f"run    {run_s:6.1f} s  peak {run_mib:6.0f} MiB  (dbt build of every model and test, "
          "quality gate, publish, reports)")
    print(f"total  {import_s + run_s:6.1f} s  (1-minute load average after: {load:.2f})")
    out = PROJECT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "online_retail.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
