"""End-to-end time and memory on the Ta-Feng grocery data: `xsell import csv` with
examples/ta_feng.yml, then the whole `xsell run` (dbt build, quality gate, publish and
reports, all into a temporary folder).

A benchmark, not a test: prints each stage's wall time and peak memory, the slowest
dbt nodes, and writes bench/results/ta_feng.json.

Peak memory per stage is the largest resident set of the whole process tree (xsell, the
dbt subprocess, the gate's workers) sampled every 0.1 s while the stage runs; the run's
"largest process" is the kernel's ru_maxrss over every process of the run.

    .venv/bin/python bench/bench_ta_feng.py [PATH]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT = PROJECT.parent / "shared" / "datasets" / "ta_feng" / "ta_feng.csv.gz"
MAPPING = PROJECT / "examples" / "ta_feng.yml"
XSELL = str(Path(sys.executable).parent / "xsell")
PAGE = os.sysconf("SC_PAGE_SIZE")
# `xsell run` logs a line when each stage starts (xsell/pipeline.py).
STAGES = (("dbt build", "dbt build"), ("quality gate", "quality gate"),
          ("publish", "publish:"), ("reports", "reports:"))
SAMPLE_S = 0.1


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return found


def tree_rss(pid: int) -> int:
    """Resident bytes of pid and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except OSError:
            continue
        todo += _children(current)
    return total


class Sampler(threading.Thread):
    """Samples the process tree's resident memory until the process ends."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples = pid, []  # (seconds since start, bytes)
        self.started = time.perf_counter()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.perf_counter() - self.started, tree_rss(self.pid)))
            time.sleep(SAMPLE_S)

    def peak(self, start: float = 0.0, end: float = float("inf")) -> float:
        """Largest sample between start and end, in MiB."""
        inside = [b for t, b in self.samples if start <= t <= end]
        return max(inside, default=0) / 2**20


def command(args: list[str], env: dict[str, str]) -> dict:
    """Run one xsell command; wall time, stage start times (from its log) and memory."""
    process = subprocess.Popen([XSELL, *args], cwd=PROJECT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(process.pid)
    sampler.start()
    marks, output = [], []
    for line in process.stdout:
        output.append(line)
        for name, prefix in STAGES:
            if line.startswith(prefix) and name not in [m[0] for m in marks]:
                marks.append((name, time.perf_counter() - sampler.started))
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - sampler.started
    sampler.done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"xsell {' '.join(args)} failed:\n{''.join(output[-60:])}")
    stages = []
    for i, (name, start) in enumerate(marks):
        end = marks[i + 1][1] if i + 1 < len(marks) else seconds
        stages.append({"stage": name, "seconds": round(end - start, 2),
                       "peak_mib": round(sampler.peak(start, end))})
    return {"seconds": round(seconds, 2), "peak_tree_mib": round(sampler.peak()),
            "largest_process_mib": round(usage.ru_maxrss / 1024), "stages": stages,
            "output": "".join(output)}


def slowest_nodes(target: Path, n: int = 8) -> list[dict]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = sorted(results, key=lambda r: -r.get("execution_time", 0))[:n]
    return [{"node": r["unique_id"].split(".")[-1], "seconds": round(r["execution_time"], 1)}
            for r in nodes]


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
        imported = command(["import", "csv", str(source), "--mapping", str(MAPPING),
                            "--out", str(raw)], env)
        rows = json.loads((raw / "_import.json").read_text())["row_counts"]
        ran = command(["run", "--raw-dir", str(raw), "--build-db", str(db), "--no-generate"],
                      env)
        nodes = slowest_nodes(work / "target")
    load = os.getloadavg()[0]
    stages = [{"stage": "import", "seconds": imported["seconds"],
               "peak_mib": imported["peak_tree_mib"]}, *ran["stages"]]
    result = {
        "source": str(source), "mapping": str(MAPPING), "cpus": os.cpu_count(),
        "load_1min_after": round(load, 2), "rows": rows, "stages": stages,
        "import_s": imported["seconds"], "run_s": ran["seconds"],
        "end_to_end_s": round(imported["seconds"] + ran["seconds"], 2),
        "run_peak_tree_mib": ran["peak_tree_mib"],
        "run_largest_process_mib": ran["largest_process_mib"], "slowest_nodes": nodes,
    }
    print(f"Ta-Feng: {rows['transactions']:,} lines, {rows['products']:,} products")
    for stage in stages:
        print(f"{stage['stage']:<13} {stage['seconds']:6.1f} s  peak {stage['peak_mib']:6.0f} MiB")
    print(f"{'total':<13} {result['end_to_end_s']:6.1f} s  (run: peak {ran['peak_tree_mib']} MiB "
          f"for the process tree, {ran['largest_process_mib']} MiB for the largest process)")
    print("slowest dbt nodes: " + ", ".join(f"{n['node']} {n['seconds']} s" for n in nodes))
    print(f"(1-minute load average after: {load:.2f} on {os.cpu_count()} CPUs)")
    out = PROJECT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ta_feng.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
