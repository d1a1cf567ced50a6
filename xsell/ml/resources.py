"""One large Python model at a time.

dbt builds XSELL_THREADS models at once, all in one process. Two Python models that each
hold a large store's frames add up: at 10M lines the recommender (9.5M basket rows) and
the add-on propensity (15.2M scored rows) together took the build to 6.6 GiB. The models
that hold row-level frames of that size (fct_frequent_itemsets, ml_recommendations,
ml_addon_propensity) therefore run inside :func:`one_large_model_at_a_time` when their
main input has at least ``ml_exclusive_rows`` rows (dbt var): they wait for each other,
while the other models (SQL, and Python models on aggregates) run alongside. Below the
threshold nothing waits, so a store of a few hundred thousand lines builds as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["one_large_model_at_a_time", "row_count"]

_LARGE_MODEL = threading.Lock()


def row_count(relation) -> int:
    """Rows of a DuckDB relation (counted by DuckDB, nothing fetched)."""
    return int(relation.aggregate("count(*)").fetchall()[0][0])


@contextmanager
def one_large_model_at_a_time(rows: int, exclusive_rows) -> Iterator[bool]:
    """Hold the process-wide large-model lock while the block runs when ``rows`` >=
    ``exclusive_rows`` (a dbt config value: a string; unset or <= 0 = never). Yields
    whether the lock is held."""
    threshold = int(float(exclusive_rows)) if exclusive_rows not in (None, "", "None") else 0
    if threshold <= 0 or rows < threshold:
        yield False
        return
    with _LARGE_MODEL:
        yield True
