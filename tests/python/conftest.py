"""Session fixtures shared by the test modules (each dbt build costs seconds)."""

from __future__ import annotations

import pytest
from support import run_xsell

from xsell.generate import generate_store

# A clean synthetic store of about 45k receipts: big enough that a planted lift is
# measured to about +-0.1, small enough to build in well under a minute.
STORE = {"seed": 11, "days": 180, "stores": 2, "visits_per_day": 120}


@pytest.fixture(scope="session")
def store_build(tmp_path_factory):
    """The STORE generated and built once by `xsell run`: {"raw": folder, "db": file}."""
    work = tmp_path_factory.mktemp("store_build")
    raw = work / "raw"
    generate_store(raw, **STORE)
    build_db = work / "build.duckdb"
    done = run_xsell(
        ["run", "--raw-dir", str(raw), "--build-db", str(build_db), "--no-generate"], work
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"raw": raw, "db": build_db, "work": work}
