"""The same input gives the same marts: two full builds of the test store, in different
folders, hold identical rows in every table of the schemas marts and ml (doubles bit for
bit), so identical run ids and artifact names too."""

from __future__ import annotations

import duckdb
import pytest
from support import run_xsell

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def second_build(store_build, tmp_path_factory):
    work = tmp_path_factory.mktemp("second_build")
    db = work / "build.duckdb"
    done = run_xsell(["run", "--raw-dir", str(store_build["raw"]), "--build-db", str(db),
                      "--no-generate", "--no-publish"], work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return db


def test_two_builds_of_the_same_input_are_identical(store_build, second_build):
    con = duckdb.connect()
    con.execute(f"attach '{store_build['db']}' as first (read_only)")
    con.execute(f"attach '{second_build}' as second (read_only)")
    tables = [
        f"{schema}.{name}" for schema, name in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'first' "
            "and schema_name in ('marts', 'ml') order by 1, 2"
        ).fetchall()
    ]
    assert len(tables) > 30
    differing = {}
    for table in tables:
        first, second = f"first.{table}", f"second.{table}"
        rows = con.execute(f"select count(*) from {first}").fetchone()[0]
        if rows != con.execute(f"select count(*) from {second}").fetchone()[0]:
            differing[table] = "row counts differ"
            continue
        only = con.execute(
            f"select count(*) from (select * from {first} except all select * from {second})"
        ).fetchone()[0]
        if only:
            differing[table] = f"{only} of {rows} rows differ"
    assert differing == {}
    run_ids = con.execute(
        "select model, run_id, artifact_file from first.ml.ml_model_registry where is_current "
        "order by model"
    ).fetchall()
    assert len(run_ids) == 4 and all(file.endswith(f"{run_id}.joblib")
                                     for _, run_id, file in run_ids)
    clv = con.execute("select distinct run_id from first.ml.ml_clv_parameters").fetchall()
    assert len(clv) == 1 and len(clv[0][0]) == 12
