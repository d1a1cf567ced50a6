"""Fixtures of the BI client tests (`make test-bi`): two synthetic stores, the first built
and published by `xsell run`, and Superset set up meanwhile, serving the published file.

The tests run in the project's .venv (xsell, DuckDB); Superset runs from its own virtual
environment, named by XSELL_BI_VENV (default .venv-bi), which `make test-bi` installs.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from builds import PROJECT_DIR, run_xsell
from charts import CHARTS
from superset_server import Api, Superset

from xsell.generate import generate_store

BI_VENV = Path(os.environ.get("XSELL_BI_VENV", PROJECT_DIR / ".venv-bi"))
if not BI_VENV.is_absolute():
    BI_VENV = PROJECT_DIR / BI_VENV

# Two small stores that differ in every figure the charts show (seed, length, stores).
# More than 56 days: with fewer, the recommendations are "not applicable" and the
# coverage test of the build fails on the rows the ranker still writes.
STORE_A = {"seed": 3, "days": 60, "stores": 2, "visits_per_day": 30}
STORE_B = {"seed": 4, "days": 64, "stores": 2, "visits_per_day": 30}


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bi")


@pytest.fixture(scope="session")
def superset_setup(work):
    """Superset's setup (about 2 minutes), started in a thread so that it runs while
    `xsell run` builds store A."""
    superset = Superset(BI_VENV, work / "superset")
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(superset.bootstrap)
    yield superset, future
    future.cancel()
    pool.shutdown(wait=True)
    superset.stop()


@pytest.fixture(scope="session")
def stores(work, superset_setup):
    """Stores A and B generated; A built and published by `xsell run` to the published
    file Superset reads. B is built by the republishing test."""
    published = work / "warehouse" / "xsell.duckdb"
    store = {"published": published}
    for name, config in (("a", STORE_A), ("b", STORE_B)):
        generate_store(work / f"raw_{name}", **config)
        store[f"raw_{name}"] = work / f"raw_{name}"
        store[f"build_{name}"] = work / "warehouse" / f"build_{name}.duckdb"
    done = run_xsell(["run", "--raw-dir", str(store["raw_a"]), "--build-db",
                      str(store["build_a"]), "--no-generate"], work / "run_a", published)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"Published for BI tools: {published}" in done.stdout
    return store


@pytest.fixture(scope="session")
def superset(superset_setup, stores):
    """Superset serving the published file: a read-only database, one dataset per mart
    a chart reads, and the two charts, made through the REST API as an analyst would."""
    server, setup = superset_setup
    setup.result()
    url = server.start()
    api = Api(url)
    database = api.post("/api/v1/database/", {
        "database_name": "xsell",
        "sqlalchemy_uri": f"duckdb:///{stores['published'].resolve()}?access_mode=read_only",
        "expose_in_sqllab": True,
    })["id"]
    datasets, charts = {}, {}
    for chart in CHARTS:
        if (chart.schema, chart.table) not in datasets:
            datasets[chart.schema, chart.table] = api.post("/api/v1/dataset/", {
                "database": database, "schema": chart.schema, "table_name": chart.table,
            })["id"]
        dataset = datasets[chart.schema, chart.table]
        charts[chart.key] = api.post("/api/v1/chart/", {
            "slice_name": chart.title,
            "viz_type": chart.viz_type,
            "datasource_id": dataset,
            "datasource_type": "table",
            "params": json.dumps(chart.form_data()),
            "query_context": json.dumps(chart.query_context(dataset)),
        })["id"]
    return {"url": url, "api": api, "database": database, "charts": charts,
            "seconds": server.seconds, "server": server}

