"""Row-for-row comparison of two builds of one mart, read into pandas.

Doubles are equal within a relative tolerance of 1e-9 (absolute 1e-12 near zero):
the engines add floating-point numbers in different orders, so sums can differ in
their last bits. Everything else (text, integers, booleans, dates and timestamps
compared as their ISO text) must be equal exactly, nulls included.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

RTOL = 1e-9
ATOL = 1e-12


class MartMismatch(AssertionError):
    pass


def _text(value) -> object:
    """A value both engines' drivers agree on: None for any null, floats as is."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def assert_marts_match(
    name: str,
    left: pd.DataFrame,
    right: pd.DataFrame,
    keys: list[str],
    float_columns: set[str],
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
    labels: tuple[str, str] = ("duckdb", "spark"),
) -> None:
    """Raise MartMismatch naming the first differing rows, unless left equals right row
    for row once both are sorted on `keys` (which must identify a row in each)."""
    if list(left.columns) != list(right.columns):
        raise MartMismatch(
            f"{name}: columns differ: {labels[0]} {list(left.columns)} vs "
            f"{labels[1]} {list(right.columns)}"
        )
    if len(left) != len(right):
        raise MartMismatch(f"{name}: {labels[0]} has {len(left)} rows, {labels[1]} {len(right)}")
    for label, frame in zip(labels, (left, right), strict=True):
        duplicated = frame.duplicated(subset=keys, keep=False)
        if duplicated.any():
            raise MartMismatch(f"{name}: key {keys} repeats in {label}: {frame[duplicated].head()}")
    left = left.sort_values(keys, na_position="first", kind="mergesort").reset_index(drop=True)
    right = right.sort_values(keys, na_position="first", kind="mergesort").reset_index(drop=True)

    problems = []
    for column in left.columns:
        if column in float_columns:
            a = pd.to_numeric(left[column], errors="raise").to_numpy(dtype=float)
            b = pd.to_numeric(right[column], errors="raise").to_numpy(dtype=float)
            both_null = np.isnan(a) & np.isnan(b)
            close = np.isclose(a, b, rtol=rtol, atol=atol) & ~np.isnan(a) & ~np.isnan(b)
            bad = ~(both_null | close)
        else:
            a_values = [_text(v) for v in left[column].tolist()]
            b_values = [_text(v) for v in right[column].tolist()]
            bad = np.array([x != y for x, y in zip(a_values, b_values, strict=True)], dtype=bool)
        if bad.any():
            rows = np.flatnonzero(bad)[:3]
            examples = [
                f"{dict(left.loc[i, keys])}: {labels[0]}={left.loc[i, column]!r} "
                f"{labels[1]}={right.loc[i, column]!r}"
                for i in rows
            ]
            problems.append(
                f"{column} differs in {int(bad.sum())} rows, e.g. " + "; ".join(examples)
            )
    if problems:
        raise MartMismatch(f"{name}: " + " | ".join(problems))
