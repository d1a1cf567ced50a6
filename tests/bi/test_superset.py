"""Apache Superset, a real BI client, on the published DuckDB file.

Superset (from .venv-bi, with duckdb-engine and DuckDB 2.0.0) registers
`warehouse/xsell.duckdb` read-only, and two charts made through its REST API (charts.py)
must show the figures of the marts read directly with DuckDB: on a published build, and
while `xsell run` and `xsell publish` replace the file under it, when every answer must be
the old build's or the new one's and the charts must follow each republish.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import duckdb
import pytest
from builds import run_xsell
from charts import CHARTS, read_direct, same
from charts import from_superset as figures_of
from superset_server import Api


def chart_data(api: Api, chart_id: int) -> dict:
    """The saved chart's query, run by Superset now (force: no cache)."""
    answer = api.get(f"/api/v1/chart/{chart_id}/data/?format=json&force=true")
    (result,) = answer["result"]
    assert result["status"] == "success", result
    return result


def test_the_database_is_the_published_file_read_only_through_duckdb_2(superset, stores):
    api = superset["api"]
    database = api.get(f"/api/v1/database/{superset['database']}")["result"]
    assert database["backend"] == "duckdb"
    answer = api.post("/api/v1/sqllab/execute/", {
        "database_id": superset["database"],
        "sql": "select current_setting('access_mode') as access_mode, "
               "version() as duckdb_version, "
               "(select count(*) from duckdb_tables() where schema_name = 'marts') as marts",
        "runAsync": False,
    })
    assert answer["status"] == "success", answer
    (row,) = answer["data"]
    assert row["access_mode"] == "read_only"
    assert row["duckdb_version"] == "v2.0.0"
    with duckdb.connect(str(stores["published"]), read_only=True) as con:
        marts = con.execute("select count(*) from duckdb_tables() "
                            "where schema_name = 'marts'").fetchone()[0]
    assert row["marts"] == marts > 0
    print("Superset set up and started in "
          + ", ".join(f"{step} {s:.0f} s" for step, s in superset["seconds"].items()))


@pytest.mark.parametrize("chart", CHARTS, ids=lambda chart: chart.key)
def test_each_chart_shows_the_figures_of_the_mart(superset, stores, chart):
    result = chart_data(superset["api"], superset["charts"][chart.key])
    shown = figures_of(chart, result)
    direct = read_direct(chart, stores["published"])
    assert len(direct) >= 2, direct  # several stores and months, several families
    assert same(shown, direct), {"superset": shown, "duckdb": direct}
    assert f"{chart.schema}.{chart.table}".lower() in result["query"].lower()
    print(f"{chart.title}: {len(shown)} rows; Superset ran:\n{result['query'].strip()}")


class Poller(threading.Thread):
    """Asks Superset for one chart's data, again and again, until stopped; records each
    answer's figures or its error, in order."""

    def __init__(self, url: str, chart, chart_id: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.api = Api(url)  # its own login and cookies
        self.chart, self.chart_id, self.stop = chart, chart_id, stop
        self.answers: list[tuple[float, dict | None, str | None]] = []

    def run(self) -> None:
        deadline = time.monotonic() + 1800
        while not self.stop.is_set() and time.monotonic() < deadline and len(self.answers) < 20_000:
            try:
                figures = figures_of(self.chart, chart_data(self.api, self.chart_id))
                self.answers.append((time.monotonic(), figures, None))
            except Exception as error:  # recorded, and the test fails on it
                self.answers.append((time.monotonic(), None, f"{type(error).__name__}: {error}"))
            self.stop.wait(0.5)  # leaves the cores to the build it runs beside

    def wait_for(self, figures: dict, after: float, timeout: float = 120) -> float:
        """Seconds from `after` until this chart answered `figures`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, shown, _ in self.answers[::-1]:
                if at < after:
                    break
                if shown is not None and same(shown, figures):
                    return at - after
            time.sleep(0.1)
        raise AssertionError(f"{self.chart.title}: Superset did not show the republished "
                             f"build within {timeout:.0f} s")


def test_charts_show_the_old_or_the_new_build_while_xsell_run_republishes(superset, stores):
    published = stores["published"]
    old = {chart.key: read_direct(chart, stores["build_a"]) for chart in CHARTS}
    assert all(same(old[chart.key], read_direct(chart, published)) for chart in CHARTS)

    stop = threading.Event()
    pollers = [Poller(superset["url"], chart, superset["charts"][chart.key], stop)
               for chart in CHARTS]
    for poller in pollers:
        poller.start()
    follow: list[tuple[str, float]] = []  # (what was published, seconds until charts showed it)
    try:
        while min(len(p.answers) for p in pollers) < 3:  # the pollers are under way
            time.sleep(0.1)
        started = time.monotonic()
        done = run_xsell(["run", "--raw-dir", str(stores["raw_b"]), "--build-db",
                          str(stores["build_b"]), "--no-generate"],
                         published.parent / "run_b", published)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"Published for BI tools: {published}" in done.stdout
        new = {chart.key: read_direct(chart, stores["build_b"]) for chart in CHARTS}
        builds = {"A": old, "B": new}
        follow.append(("B (xsell run)", max(
            p.wait_for(new[p.chart.key], started) for p in pollers)))
        # Then republish the two builds in turn, as repeated runs would.
        for name in ("A", "B", "A", "B"):
            started = time.monotonic()
            done = run_xsell(["publish", "--build-db", str(stores[f"build_{name.lower()}"])],
                             published.parent / "publish", published)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            follow.append((f"{name} (xsell publish)", max(
                p.wait_for(builds[name][p.chart.key], started) for p in pollers)))
    finally:
        stop.set()
        for poller in pollers:
            poller.join(timeout=300)

    for chart in CHARTS:  # the test can tell the two builds apart
        assert not same(old[chart.key], new[chart.key]), chart.title
    for poller in pollers:
        errors = [error for _, _, error in poller.answers if error]
        assert not errors, f"{poller.chart.title}: {len(errors)} failed: {errors[:3]}"
        seen = Counter()
        for _, shown, _ in poller.answers:
            matches = [name for name, build in builds.items()
                       if same(shown, build[poller.chart.key])]
            assert matches, f"{poller.chart.title} showed neither build: {shown}"
            seen[matches[0]] += 1
        assert seen["A"] and seen["B"], seen
        # The last answer is the last build published.
        assert same(poller.answers[-1][1], new[poller.chart.key]), poller.chart.title
        print(f"{poller.chart.title}: {len(poller.answers)} answers, all succeeded "
              f"(build A {seen['A']}, build B {seen['B']})")
    print("republished, then shown by both charts after: "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in follow))
