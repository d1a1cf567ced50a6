"""Scale benchmark: xsell end to end at about 0.1M, 1M and 10M transaction lines.

A benchmark, not a test. For each size it generates a synthetic store (365 days, 2
stores, the visits per day that give the size), then runs the stages of `xsell run`
one by one, each in its own process: generate, `dbt build --full-refresh`, the Great
Expectations gate (`xsell validate`), publish and reports. The dbt build is one
invocation, as users run it; its time is split by layer (staging, intermediate, marts,
ml) from the node timings in run_results.json: each second of the build is shared
among the nodes running in it, so the layers add up to the build's busy time and
"other" is dbt's start-up, parsing and waits. Peak memory is each process's max RSS
(wait4); a layer's peak is the largest RSS sampled (/proc, every 0.2 s) while its nodes
ran. Then it mines association rules on the built baskets (int_basket_items) with
xsell's Eclat and with mlxtend (fpgrowth), each in its own process, and checks that
they agree. With the demo run, it also times `xsell run` on an empty raw folder (it
generates the default store). The machine's load average is recorded with every stage:
other processes slow the figures down.

Prints a table and writes JSON (default bench/results/scale.json). Every file goes to a
temporary folder (--work), removed per size unless --keep.

    .venv/bin/python bench/bench_scale.py [--sizes 0.1M,1M,10M] [--no-demo]
        [--mlxtend-max-lines 20000000] [--mlxtend-timeout 900] [--work DIR] [--keep]
        [--out FILE]

XSELL_THREADS and XSELL_MEMORY_LIMIT (profiles.yml) are passed through to dbt.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = {"0.1M": 100_000, "1M": 1_000_000, "10M": 10_000_000}
DAYS, STORES = 365, 2
# lines per store visit of the built-in store config (default store: 241,935 lines
# from 365 days x 2 stores x 120 visits), to choose visits per day for a size
LINES_PER_VISIT = 2.76
LAYERS = ("staging", "intermediate", "marts", "ml")
# rule mining: the project's dbt vars (dbt_project.yml) per item level
RULE_LEVELS = {"category": 0.01, "product": 0.003}
MIN_CONFIDENCE, MAX_LEN = 0.1, 10
MIB = 2**20


# --------------------------------------------------------------------------- processes


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


class Sampler(threading.Thread):
    """Samples a process tree's RSS every `interval` seconds: (epoch seconds, bytes)."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.loads: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.time(), tree_rss(self.pid)))
            if len(self.samples) % 25 == 1:  # the 1-minute load average, every 5 s
                self.loads.append(os.getloadavg()[0])
            self.done.wait(self.interval)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def run_stage(name: str, command: list[str], env: dict[str, str], log_dir: Path,
              timeout: float | None = None) -> dict:
    """Run one stage in its own process: wall seconds, peak RSS (MiB), load before and
    after, RSS samples. Output goes to log_dir/<name>.log; a failure stops the bench."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    load_before = load_average()
    started = time.time()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        sampler = Sampler(process.pid)
        sampler.start()
        timer = None
        if timeout:
            timer = threading.Timer(timeout, process.kill)
            timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        if timer:
            timer.cancel()
        sampler.done.set()
        sampler.join()
    seconds = time.time() - started
    code = os.waitstatus_to_exitcode(status)
    result = {
        "seconds": round(seconds, 2),
        "peak_mib": round(usage.ru_maxrss / 1024),
        "load_before": load_before,
        "load_after": load_average(),
        "load_mean": round(sum(sampler.loads) / len(sampler.loads), 2) if sampler.loads
        else load_before,
        "load_max": round(max(sampler.loads, default=load_before), 2),
        "started": started,
        "samples": sampler.samples,
        "exit_code": code,
        "log": str(log_path),
    }
    if timeout and code != 0 and seconds >= timeout:
        result["timed_out"] = True
        return result
    if code != 0:
        tail = log_path.read_text()[-3000:]
        raise SystemExit(f"stage {name} failed ({' '.join(command)}):\n{tail}")
    return result


# --------------------------------------------------------------------------- dbt layers


def layer_of(node: dict, nodes: dict) -> str:
    path = node.get("original_file_path", "")
    if node.get("resource_type") == "test":
        parent = node.get("attached_node") or next(
            (uid for uid in node.get("depends_on", {}).get("nodes", []) if uid in nodes), None
        )
        return layer_of(nodes[parent], nodes) if parent in nodes else "staging"
    if path.startswith(("models/staging", "seeds")):
        return "staging"
    if path.startswith("models/intermediate"):
        return "intermediate"
    if path.startswith(("models/marts", "python_models/marts")):
        return "marts"
    if path.startswith(("models/ml", "python_models/ml")):
        return "ml"
    return "staging"


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def split_build(target: Path, build: dict) -> dict:
    """Per layer: attributed wall seconds, node seconds (sum of node times), peak RSS
    sampled while its nodes ran; plus the nodes taking most wall time."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = {**manifest["nodes"], **manifest.get("sources", {})}
    intervals = []
    for result in results:
        timing = [t for t in result.get("timing", []) if t.get("started_at")]
        if not timing or result["unique_id"] not in nodes:
            continue
        start = min(_epoch(t["started_at"]) for t in timing)
        end = max(_epoch(t["completed_at"]) for t in timing)
        intervals.append((start, end, result["unique_id"],
                          layer_of(nodes[result["unique_id"]], nodes),
                          float(result.get("execution_time") or 0.0)))
    # sweep: every instant of the build is shared equally by the nodes running in it
    attributed = {uid: 0.0 for _, _, uid, _, _ in intervals}
    points = sorted({p for start, end, *_ in intervals for p in (start, end)})
    for left, right in zip(points, points[1:], strict=False):
        running = [uid for start, end, uid, _, _ in intervals if start <= left and end >= right]
        for uid in running:
            attributed[uid] += (right - left) / len(running)
    layers = {}
    for layer in LAYERS:
        mine = [iv for iv in intervals if iv[3] == layer]
        peak = max(
            (rss for t, rss in build["samples"]
             if any(start <= t <= end for start, end, *_ in mine)),
            default=0,
        )
        layers[layer] = {
            "seconds": round(sum(attributed[iv[2]] for iv in mine), 2),
            "node_seconds": round(sum(iv[4] for iv in mine), 2),
            "nodes": len(mine),
            "peak_mib": round(peak / MIB),
        }
    busy = sum(layer["seconds"] for layer in layers.values())
    layers["other"] = {"seconds": round(build["seconds"] - busy, 2)}
    top = sorted(intervals, key=lambda iv: attributed[iv[2]], reverse=True)[:8]
    top_nodes = []
    for start, end, uid, layer, execution in top:
        peak = max((rss for t, rss in build["samples"] if start <= t <= end), default=0)
        top_nodes.append({"node": uid.split(".")[-1] if uid.startswith("model.") else uid,
                          "layer": layer, "wall_share_s": round(attributed[uid], 1),
                          "execution_s": round(execution, 1),
                          "peak_mib_while_running": round(peak / MIB)})
    return {"layers": layers, "top_nodes": top_nodes}


# --------------------------------------------------------------------------- rule mining


def rules_child(args: argparse.Namespace) -> None:
    """In a child process: load the baskets of one level, mine them with one
    implementation, print the timing and write the rules for the comparison."""
    import duckdb

    with duckdb.connect(args.db, read_only=True) as con:
        pairs = con.execute(
            "select basket_id, item from intermediate.int_basket_items where item_level = ?",
            [args.level],
        ).df()
    started = time.perf_counter()
    if args.rules_child == "xsell":
        from xsell.ml.rules import frequent_itemsets, mine_rules

        rules = mine_rules(pairs, min_support=args.min_support, min_confidence=MIN_CONFIDENCE,
                           max_len=MAX_LEN)
        seconds = time.perf_counter() - started
        itemsets = frequent_itemsets(pairs, min_support=args.min_support, max_len=MAX_LEN)
        itemset_keys = set(map(frozenset, itemsets["itemset"]))
    else:
        sys.path.insert(0, str(PROJECT / "bench"))
        from bench_rules import run_mlxtend

        itemsets, rules = run_mlxtend(pairs, args.min_support, MIN_CONFIDENCE, MAX_LEN)
        seconds = time.perf_counter() - started
        itemset_keys = set(itemsets["itemsets"])
    with open(args.rules_out, "wb") as out:
        pickle.dump({"rules": rules, "itemsets": itemset_keys}, out)
    print(json.dumps({"seconds": seconds, "baskets": int(pairs["basket_id"].nunique()),
                      "itemsets": len(itemset_keys), "rules": len(rules)}))


def mine_and_compare(db: Path, work: Path, env: dict, lines: int, args) -> list[dict]:
    sys.path.insert(0, str(PROJECT / "bench"))
    from bench_rules import compare

    rows = []
    for level, support in RULE_LEVELS.items():
        row = {"level": level, "min_support": support}
        for impl in ("xsell", "mlxtend"):
            if impl == "mlxtend" and lines > args.mlxtend_max_lines:
                row[impl] = {"skipped": f"more than {args.mlxtend_max_lines:,} lines"}
                continue
            out = work / f"rules_{impl}_{level}.pkl"
            stage = run_stage(
                f"rules_{impl}_{level}",
                [sys.executable, __file__, "--rules-child", impl, "--db", str(db),
                 "--level", level, "--min-support", str(support), "--rules-out", str(out)],
                env, work / "logs", timeout=args.mlxtend_timeout if impl == "mlxtend" else None,
            )
            if stage.get("timed_out"):
                row[impl] = {"timed_out_after_s": args.mlxtend_timeout,
                             "peak_mib": stage["peak_mib"]}
                continue
            printed = json.loads(Path(stage["log"]).read_text().strip().splitlines()[-1])
            row[impl] = {"seconds": round(printed["seconds"], 2), "peak_mib": stage["peak_mib"],
                         "itemsets": printed["itemsets"], "rules": printed["rules"],
                         "baskets": printed["baskets"], "load": stage["load_mean"]}
        if "seconds" in row.get("xsell", {}) and "seconds" in row.get("mlxtend", {}):
            ours = pickle.loads((work / f"rules_xsell_{level}.pkl").read_bytes())
            theirs = pickle.loads((work / f"rules_mlxtend_{level}.pkl").read_bytes())
            verdict = compare(ours["rules"], theirs["rules"], MIN_CONFIDENCE)
            if ours["itemsets"] != theirs["itemsets"]:
                verdict = "NO: itemsets differ; " + verdict
            row["agree"] = verdict
            row["speedup"] = round(row["mlxtend"]["seconds"] / max(row["xsell"]["seconds"],
                                                                   1e-9), 1)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- one size


def stage_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        GX_ANALYTICS_ENABLED="false",
        XSELL_RAW_DIR=str(folder / "raw"),
        XSELL_RAW_FORMAT="parquet",
        XSELL_BUILD_DB=str(folder / "build.duckdb"),
        XSELL_PUBLISHED_DB=str(folder / "published.duckdb"),
        XSELL_REPORTS_DIR=str(folder / "reports"),
        DBT_TARGET_PATH=str(folder / "target"),
        DBT_LOG_PATH=str(folder / "logs" / "dbt"),
    )
    return env


def visits_for(lines: int) -> float:
    return round(lines / (LINES_PER_VISIT * DAYS * STORES), 1)


def run_size(name: str, lines_target: int, work: Path, args) -> dict:
    import duckdb

    folder = work / name
    env = stage_env(folder)
    logs = folder / "logs"
    visits = visits_for(lines_target)
    print(f"\n== {name}: {DAYS} days, {STORES} stores, {visits} visits per day "
          f"(load {load_average()})", flush=True)
    stages = {}
    stages["generate"] = run_stage("generate", [
        str(BIN / "xsell"), "generate", "--out", str(folder / "raw"), "--days", str(DAYS),
        "--stores", str(STORES), "--visits-per-day", str(visits), "--quiet"], env, logs)
    with duckdb.connect() as con:
        lines = con.execute(
            f"select count(*) from read_parquet('{folder / 'raw' / 'transactions.parquet'}')"
        ).fetchone()[0]
    print(f"   generate {stages['generate']['seconds']:.1f} s: {lines:,} lines", flush=True)
    stages["dbt_build"] = run_stage(
        "dbt_build", [str(BIN / "dbt"), "build", "--full-refresh"], env, logs)
    print(f"   dbt build {stages['dbt_build']['seconds']:.1f} s", flush=True)
    split = split_build(folder / "target", stages["dbt_build"])
    stages["gate"] = run_stage("gate", [str(BIN / "xsell"), "validate", "--build-db",
                                        env["XSELL_BUILD_DB"]], env, logs)
    # the stages run one by one (no `xsell run` records the build as passed): both ran
    # and succeeded above, so the publish is forced
    stages["publish"] = run_stage("publish", [str(BIN / "xsell"), "publish", "--force",
                                              "--build-db", env["XSELL_BUILD_DB"]], env, logs)
    stages["reports"] = run_stage("reports", [
        str(BIN / "xsell"), "report", "--db", env["XSELL_PUBLISHED_DB"], "--out",
        env["XSELL_REPORTS_DIR"]], env, logs)
    total = sum(stage["seconds"] for stage in stages.values())
    print(f"   gate {stages['gate']['seconds']:.1f} s, publish {stages['publish']['seconds']:.1f}"
          f" s, reports {stages['reports']['seconds']:.1f} s; end to end {total:.1f} s",
          flush=True)
    # the baskets (intermediate.int_basket_items) stay in the build file
    rules = mine_and_compare(Path(env["XSELL_BUILD_DB"]), folder, env, lines, args)
    for stage in stages.values():
        del stage["samples"], stage["started"]
    result = {
        "size": name, "lines": lines, "visits_per_day": visits,
        "stages": stages, "dbt_layers": split["layers"], "top_nodes": split["top_nodes"],
        "end_to_end_s": round(total, 2),
        "peak_mib": max(stage["peak_mib"] for stage in stages.values()),
        # 1-minute load average sampled during the stages, weighted by their time
        "load_mean": round(sum(s["load_mean"] * s["seconds"] for s in stages.values())
                           / max(total, 1e-9), 2),
        "load_max": max(s["load_max"] for s in stages.values()),
        "rules": rules,
    }
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def run_demo(work: Path) -> dict:
    """`xsell run` on an empty raw folder: generates the default store and does it all."""
    folder = work / "demo"
    env = stage_env(folder)
    print(f"\n== demo: xsell run on an empty raw folder (load {load_average()})", flush=True)
    stage = run_stage("xsell_run", [str(BIN / "xsell"), "run", "--generate", "--raw-dir",
                                    str(folder / "raw"), "--build-db", env["XSELL_BUILD_DB"]],
                      env, folder / "logs")
    del stage["samples"], stage["started"]
    print(f"   xsell run {stage['seconds']:.1f} s, peak {stage['peak_mib']} MiB", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return stage


# --------------------------------------------------------------------------- report


def print_tables(report: dict) -> None:
    sizes = report["sizes"]
    if sizes:
        header = (f"{'size':>5} {'lines':>11} {'gen':>6} {'stg':>6} {'int':>6} {'marts':>6} "
                  f"{'ml':>6} {'dbt*':>5} {'build':>6} {'gate':>5} {'pub':>5} {'rep':>5} "
                  f"{'total':>7} {'peak MiB':>8} {'load avg/max':>12}")
        print("\nSeconds per stage (dbt build split by layer; dbt* = start-up, parsing, waits;"
              " load = 1-minute load average during the stages, mean/max)")
        print(header)
        print("-" * len(header))
        for r in sizes:
            layers, stages = r["dbt_layers"], r["stages"]
            print(
                f"{r['size']:>5} {r['lines']:>11,} {stages['generate']['seconds']:>6.1f} "
                + " ".join(f"{layers[layer]['seconds']:>6.1f}" for layer in LAYERS)
                + f" {layers['other']['seconds']:>5.1f} {stages['dbt_build']['seconds']:>6.1f}"
                f" {stages['gate']['seconds']:>5.1f} {stages['publish']['seconds']:>5.1f}"
                f" {stages['reports']['seconds']:>5.1f} {r['end_to_end_s']:>7.1f}"
                f" {r['peak_mib']:>8,} {r['load_mean']:>4.1f}/{r['load_max']:<4.1f}"
            )
        print("\nPeak MiB per stage / dbt layer")
        for r in sizes:
            stages, layers = r["stages"], r["dbt_layers"]
            print(f"{r['size']:>5} " + ", ".join(f"{k} {v['peak_mib']:,}" for k, v in
                                                stages.items())
                  + " | " + ", ".join(f"{k} {layers[k]['peak_mib']:,}" for k in LAYERS))
        for r in sizes:
            print(f"\nSlowest dbt nodes at {r['size']} (wall share s / node s / peak MiB):")
            for node in r["top_nodes"]:
                print(f"   {node['node']:<60} {node['layer']:<12} {node['wall_share_s']:>7.1f}"
                      f" {node['execution_s']:>7.1f} {node['peak_mib_while_running']:>7,}")
        print("\nRule mining on int_basket_items (xsell Eclat vs mlxtend fpgrowth; seconds of "
              "mining, peak MiB of the process)")
        for r in sizes:
            for row in r["rules"]:
                ours, theirs = row.get("xsell", {}), row.get("mlxtend", {})
                theirs_text = (f"{theirs['seconds']:.2f} s {theirs['peak_mib']:,} MiB"
                               if "seconds" in theirs else json.dumps(theirs))
                print(f"{r['size']:>5} {row['level']:<9} min_support {row['min_support']:<6} "
                      f"baskets {ours.get('baskets', 0):>10,} "
                      f"itemsets {ours.get('itemsets', 0):>6,}"
                      f" rules {ours.get('rules', 0):>6,} | xsell {ours.get('seconds', 0):.2f} s "
                      f"{ours.get('peak_mib', 0):,} MiB | mlxtend {theirs_text}"
                      + (f" | x{row['speedup']}, agree: {row['agree']}" if "agree" in row else ""))
    if report.get("demo"):
        demo = report["demo"]
        print(f"\ndemo: xsell run (generate default store, build, gate, publish, reports) "
              f"{demo['seconds']:.1f} s, peak {demo['peak_mib']:,} MiB, "
              f"load {demo['load_mean']} mean, {demo['load_max']} max")
    checks = report["targets"]
    if checks:
        print("\nTargets:")
        for name, check in checks.items():
            print(f"   {name}: {check['value']} ({'met' if check['met'] else 'NOT met'})")


def targets(report: dict) -> dict:
    by_size = {r["size"]: r for r in report["sizes"]}
    checks = {}
    if "10M" in by_size:
        big = by_size["10M"]
        checks["10M end to end < 600 s"] = {"value": big["end_to_end_s"],
                                            "met": big["end_to_end_s"] < 600}
        checks["10M peak < 6 GiB (6144 MiB)"] = {"value": big["peak_mib"],
                                                 "met": big["peak_mib"] < 6144}
        if "1M" in by_size:
            ratio = big["end_to_end_s"] / by_size["1M"]["end_to_end_s"]
            checks["time(10M) / time(1M) <= 11"] = {"value": round(ratio, 2), "met": ratio <= 11}
    if report.get("demo"):
        seconds = report["demo"]["seconds"]
        checks["demo xsell run < 60 s"] = {"value": seconds, "met": seconds < 60}
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.1M,1M,10M",
                        help=f"comma-separated, of {', '.join(SIZES)} [default: all]")
    parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True,
                        help="also time `xsell run` on the demo store [default: yes]")
    parser.add_argument("--mlxtend-max-lines", type=int, default=20_000_000,
                        help="skip mlxtend above this many lines (its one-hot frame is "
                             "baskets x items: 6 GiB at 10M lines) [default: 20,000,000]")
    parser.add_argument("--mlxtend-timeout", type=float, default=900)
    parser.add_argument("--work", type=Path, default=None, help="folder for the data")
    parser.add_argument("--keep", action="store_true", help="keep the data of every size")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "results" / "scale.json")
    # internal: one rule-mining run in a child process
    parser.add_argument("--rules-child", choices=["xsell", "mlxtend"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--level", help=argparse.SUPPRESS)
    parser.add_argument("--min-support", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--rules-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rules_child:
        rules_child(args)
        return

    names = [name.strip() for name in args.sizes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {', '.join(SIZES)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="xsell-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "uptime_start": subprocess.run(["uptime"], capture_output=True, text=True,
                                           check=False).stdout.strip()},
        "settings": {"XSELL_THREADS": os.environ.get("XSELL_THREADS", "2 (profiles.yml)"),
                     "XSELL_MEMORY_LIMIT": os.environ.get("XSELL_MEMORY_LIMIT",
                                                          "2GB (profiles.yml)")},
        "started": datetime.now().isoformat(timespec="seconds"),
        "sizes": [],
    }
    try:
        if args.demo:
            report["demo"] = run_demo(work)
        for name in names:
            report["sizes"].append(run_size(name, SIZES[name], work, args))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["uptime_end"] = subprocess.run(
        ["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    report["targets"] = targets(report)
    print_tables(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
