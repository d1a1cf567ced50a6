"""Latency and throughput of `xsell serve` on the demo store and on UCI Online Retail.

A benchmark, not a test. For each data set it builds and publishes the store (or takes
an already published file with --db NAME=PATH), starts `xsell serve` on a free local port,
and drives each endpoint from 127.0.0.1 with CLIENTS concurrent clients (processes, each
with one keep-alive connection) for a fixed number of requests, ids drawn with a fixed
seed from the published marts. It prints requests per second and p50/p99 latency per
endpoint, and the machine's load average before and after, and writes
bench/results/serve.json.

    .venv/bin/python bench/bench_serve.py [--requests 2000] [--clients 8]
        [--stores demo,online-retail] [--db demo=warehouse/xsell.duckdb]

Target on a 2-core machine: p99 under 20 ms for the single-customer and single-product
lookups at 8 concurrent clients.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import duckdb

PROJECT = Path(__file__).resolve().parents[1]
XSELL = str(Path(sys.executable).parent / "xsell")
ONLINE_RETAIL = PROJECT.parent / "shared" / "datasets" / "online_retail" / "online_retail.csv.gz"
SINGLE = ("customer", "recommendations", "bundles", "similar")  # the 20 ms target


def build(name: str, work: Path) -> Path:
    """Generate or import the store and `xsell run` it; the published file."""
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_TARGET_PATH=str(work / "target"),
               DBT_LOG_PATH=str(work / "logs"), XSELL_PUBLISHED_DB=str(work / "published.duckdb"),
               XSELL_REPORTS_DIR=str(work / "reports"))
    raw = work / "raw"
    if name == "demo":
        steps = [["generate", "--out", str(raw), "--quiet"]]
    else:
        if not ONLINE_RETAIL.exists():
            raise SystemExit(f"{ONLINE_RETAIL} not found")
        steps = [["import", "online-retail", str(ONLINE_RETAIL), "--out", str(raw)]]
    steps.append(["run", "--raw-dir", str(raw), "--build-db", str(work / "build.duckdb"),
                  "--no-generate"])
    for args in steps:
        print(f"[{name}] xsell {' '.join(args[:2])} ...", flush=True)
        done = subprocess.run([XSELL, *args], cwd=PROJECT, env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode:
            raise SystemExit(f"xsell {' '.join(args)} failed:\n{done.stdout[-2000:]}"
                             f"{done.stderr[-2000:]}")
    return work / "published.duckdb"


def sample_paths(db: Path, per_kind: int, seed: int) -> dict[str, list[str]]:
    """Request paths per endpoint, ids drawn from the published marts."""
    rng = random.Random(seed)
    with duckdb.connect(str(db), read_only=True) as con:
        customers = [r[0] for r in con.execute(
            "select customer_id from marts.dim_customers order by 1").fetchall()]
        products = [r[0] for r in con.execute(
            "select distinct product_id from marts.fct_product_affinity order by 1").fetchall()]
        segments = [r[0] for r in con.execute(
            "select rfm_segment from marts.dim_customers where rfm_segment is not null "
            "group by 1 order by 1").fetchall()]

    def draw(values: list[str]) -> list[str]:
        return [urllib.parse.quote(rng.choice(values), safe="") for _ in range(per_kind)]

    return {
        "customer": [f"/customers/{c}" for c in draw(customers)],
        "recommendations": [f"/customers/{c}/recommendations?limit=10"
                            for c in draw(customers)],
        "bundles": [f"/products/{p}/bundles?limit=10" for p in draw(products)],
        "similar": [f"/products/{p}/similar?limit=10" for p in draw(products)],
        "segment_page": [f"/segments/{s}/customers?limit=100&offset={rng.randrange(0, 200)}"
                         for s in draw(segments)],
        "segments": ["/segments"] * per_kind,
        "health": ["/health"] * per_kind,
    }


def _client(port: int, paths: list[str], start, out) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times, errors = [], 0
    start.wait()
    for path in paths:
        began = time.perf_counter()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status >= 500 or response.status == 422:
                errors += 1
        except OSError:
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        times.append(time.perf_counter() - began)
    connection.close()
    out.put((times, errors))


def drive(port: int, paths: list[str], clients: int) -> dict:
    """All of paths, split over `clients` processes started together."""
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    workers = [context.Process(target=_client, args=(port, paths[i::clients], start, out))
               for i in range(clients)]
    for worker in workers:
        worker.start()
    time.sleep(0.2)
    began = time.perf_counter()
    start.set()
    results = [out.get() for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    times = sorted(t for result, _ in results for t in result)
    return {
        "requests": len(times),
        "errors": sum(e for _, e in results),
        "rps": len(times) / elapsed,
        "p50_ms": 1000 * times[len(times) // 2],
        "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))],
        "max_ms": 1000 * times[-1],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(db: Path, log: Path, workers: int):
    port = free_port()
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [XSELL, "serve", "--db", str(db), "--port", str(port), "--workers", str(workers)],
            cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT)
        try:
            deadline, ready = time.monotonic() + 120, 0
            while ready < 20:  # answers from memory, new connections (any worker)
                if process.poll() is not None:
                    raise SystemExit(f"xsell serve stopped:\n{log.read_text()[-2000:]}")
                with contextlib.suppress(OSError):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    connection.request("GET", "/health")
                    response = connection.getresponse()
                    connection.close()
                    memory = response.getheader("X-Xsell-Answered-From") == "memory"
                    ready = ready + 1 if response.status == 200 and memory else 0
                    if ready:
                        continue
                if time.monotonic() > deadline:
                    raise SystemExit("xsell serve did not start in 120 s")
                time.sleep(0.2)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="demo,online-retail")
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="xsell serve --workers")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--endpoints", default=None,
                        help="comma-separated subset, e.g. customer,bundles [default: all]")
    parser.add_argument("--db", action="append", default=[], metavar="NAME=PATH",
                        help="use this published file for store NAME instead of building")
    args = parser.parse_args()
    given = dict(item.split("=", 1) for item in args.db)
    results = {"clients": args.clients, "workers": args.workers,
               "requests_per_endpoint": args.requests, "stores": {}}
    with tempfile.TemporaryDirectory(prefix="xsell-bench-serve-") as folder:
        for name in args.stores.split(","):
            work = Path(folder) / name
            work.mkdir()
            db = Path(given[name]).resolve() if name in given else build(name, work)
            paths = sample_paths(db, args.requests, args.seed)
            if args.endpoints:
                paths = {k: v for k, v in paths.items() if k in args.endpoints.split(",")}
            with server(db, work / "serve.log", args.workers) as port:
                drive(port, [p for v in paths.values() for p in v[:50]], args.clients)  # warm
                load_before = os.getloadavg()
                rows = {kind: drive(port, kind_paths, args.clients)
                        for kind, kind_paths in paths.items()}
                load_after = os.getloadavg()
            results["stores"][name] = {
                "published_mb": round(db.stat().st_size / 1e6, 1),
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in load_after],
                "endpoints": {k: {m: round(v, 2) for m, v in r.items()} for k, r in rows.items()},
            }
            print(f"\n{name}: {db.stat().st_size / 1e6:.1f} MB published; {args.clients} "
                  f"clients, {args.workers} server process(es), {args.requests} requests per "
                  f"endpoint; load average "
                  f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
            print(f"  {'endpoint':<16}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
                  f"{'errors':>8}")
            for kind, row in rows.items():
                flag = "  (target p99 < 20 ms)" if kind in SINGLE else ""
                print(f"  {kind:<16}{row['rps']:>8.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
                      f"{row['max_ms']:>9.2f}{row['errors']:>8}{flag}")
    out = PROJECT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "serve.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
