"""Raw timestamps are local store time; the rule for values that carry a time zone.

A timestamp with a UTC offset or zone ("2025-01-31 10:15+05:00", "...Z", a Parquet
TIMESTAMPTZ column) is an instant. It is converted to the stores' local time in the
zone named by XSELL_TIMEZONE (an IANA name such as Europe/Berlin; the dbt var
`timezone` overrides it in the build). Without a zone such values are refused (the
importer) or quarantined as `<column>_needs_timezone` (staging): the build machine's
TZ never decides what hour a sale happened. Text without an offset is read as it is.

This module gives the importers the SQL for that rule (DuckDB); staging has the same
rule in macros/staging/checks.sql.
"""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZONE_ENV = "XSELL_TIMEZONE"
# A time of day followed by an offset or zone: Z, UTC, GMT, +05:00, +0530, -05, Area/City.
OFFSET_PATTERN = (
    r"[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?[ ]*"
    r"([zZ]|UTC|GMT|[+-][0-9]{2}(:?[0-9]{2})?|[A-Za-z]+/[A-Za-z_]+(/[A-Za-z_]+)?)$"
)


def store_timezone() -> str | None:
    """The stores' zone from XSELL_TIMEZONE, None when unset; ValueError when unknown."""
    zone = os.environ.get(ZONE_ENV, "").strip()
    if not zone:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"{ZONE_ENV}={zone!r} is not a time zone name; give an IANA name such as "
            "Europe/Berlin or America/New_York."
        ) from error
    return zone


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def column_sql(column_sql: str, dtype: str, zone: str | None = None) -> str | None:
    """Local time from a typed column: a TIMESTAMPTZ column converted to zone (None when
    no zone is given: the caller refuses the column); other time types cast."""
    if dtype.upper().startswith("TIMESTAMP WITH TIME ZONE"):
        return None if zone is None else f"timezone({_literal(zone)}, {column_sql})"
    return f"cast({column_sql} as timestamp)"


def text_sql(raw_sql: str, fmt: str | None = None, zone: str | None = None) -> str:
    """Local time from timestamp text: null when it does not parse, and when it carries
    an offset but no zone is given (the caller reports those values)."""
    if fmt:
        if "%z" in fmt or "%Z" in fmt:  # try_strptime gives an instant
            return "null" if zone is None else (
                f"timezone({_literal(zone)}, try_strptime({raw_sql}, {_literal(fmt)}))"
            )
        return f"try_strptime({raw_sql}, {_literal(fmt)})"
    aware = "null" if zone is None else (
        f"timezone({_literal(zone)}, try_cast({raw_sql} as timestamptz))"
    )
    return (
        f"(case when regexp_matches({raw_sql}, {_literal(OFFSET_PATTERN)}) then {aware} "
        f"else try_cast({raw_sql} as timestamp) end)"
    )


def offset_hint(values: list) -> str:
    """A sentence for an import error when some of the values carry an offset."""
    import re

    pattern = re.compile(OFFSET_PATTERN)
    if store_timezone() is None and any(isinstance(v, str) and pattern.search(v) for v in values):
        return (
            f". Values with a UTC offset are instants: set {ZONE_ENV} to the stores' time "
            "zone (e.g. Europe/Berlin) to import them as local store time"
        )
    return ""
