"""xsell.ml.resources: large Python models wait for each other, small ones do not."""

from __future__ import annotations

import threading
import time

import duckdb

from xsell.ml.resources import one_large_model_at_a_time, row_count


def _overlap(rows_a: int, rows_b: int, threshold) -> bool:
    """Run two 'models' on threads; True when their bodies overlapped in time."""
    inside, overlapped = [], []
    guard = threading.Lock()

    def model(rows):
        with one_large_model_at_a_time(rows, threshold):
            with guard:
                inside.append(1)
                if len(inside) > 1:
                    overlapped.append(True)
            time.sleep(0.2)
            with guard:
                inside.pop()

    threads = [threading.Thread(target=model, args=(r,)) for r in (rows_a, rows_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return bool(overlapped)


def test_large_models_run_one_at_a_time_and_small_ones_alongside():
    assert not _overlap(5_000, 7_000, "1000")  # both large: they wait for each other
    assert _overlap(5_000, 10, "1000")  # a small one does not wait
    assert _overlap(5_000, 7_000, "0")  # 0 (or unset) switches the lock off
    assert _overlap(5_000, 7_000, None)


def test_row_count_counts_in_duckdb():
    con = duckdb.connect()
    assert row_count(con.sql("select * from range(1234)")) == 1234
