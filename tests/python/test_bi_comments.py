"""Comments persisted for BI tools are plain text, short and correct: a tool shows them
in a tooltip, where Markdown stays raw. Every table and column of the schemas a BI tool
reads (marts, ml, seeds) has one; none carries Markdown or runs past 400 characters; and
where a comment lists values of its column, they are values the column has."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

pytestmark = pytest.mark.dbt

# A list of identifiers in a comment: ALL_CAPS or snake_case words joined by "/", "," or
# "or", e.g. "ALL / ANY_ANCHOR / NO_ANCHOR" or "ran, no_result, not_applicable or not_built"
_WORD = r"(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*|[a-z][a-z0-9]*(?:_[a-z0-9]+)+)"
_LIST = re.compile(rf"\b{_WORD}(?:\s*(?:/|,|\bor\b|,\s*or\b)\s*{_WORD})+\b")


def _comments(db):
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name, comment from duckdb_tables() "
            "where schema_name in ('marts', 'ml', 'seeds') order by 1, 2").fetchall()
        columns = con.execute(
            "select schema_name, table_name, column_name, data_type, comment "
            "from duckdb_columns() where schema_name in ('marts', 'ml', 'seeds') "
            "order by 1, 2, column_index").fetchall()
    return tables, columns


def _accepted_values(manifest) -> dict[tuple[str, str], set[str]]:
    values = {}
    for node in manifest["nodes"].values():
        meta = node.get("test_metadata") or {}
        if node["resource_type"] != "test" or meta.get("name") != "accepted_values":
            continue
        tested = [manifest["nodes"][d] for d in node["depends_on"]["nodes"]
                  if d.startswith(("model.", "seed."))]
        if tested:
            key = (f"{tested[0]['schema']}.{tested[0]['name']}", meta["kwargs"]["column_name"])
            values.setdefault(key, set()).update(map(str, meta["kwargs"]["values"]))
    return values


def test_comments_are_short_plain_text_on_every_table_and_column(store_build):
    tables, columns = _comments(store_build["db"])
    assert {schema for schema, _, _ in tables} == {"marts", "ml", "seeds"}
    for schema, table, comment in tables:
        assert comment, f"{schema}.{table} has no comment"
        assert "`" not in comment and "**" not in comment and "{{" not in comment, comment
        assert len(comment) <= 400, (f"{schema}.{table}", len(comment))
    for schema, table, column, _, comment in columns:
        where = f"{schema}.{table}.{column}"
        assert comment, f"{where} has no comment"
        assert "`" not in comment and "**" not in comment and "{{" not in comment, (where, comment)
        assert len(comment) <= 400, (where, len(comment))


def test_values_a_comment_lists_are_values_of_its_column(store_build):
    manifest = json.loads((store_build["work"] / "target" / "manifest.json").read_text())
    allowed = _accepted_values(manifest)
    _, columns = _comments(store_build["db"])
    checked = 0
    with duckdb.connect(str(store_build["db"]), read_only=True) as con:
        for schema, table, column, data_type, comment in columns:
            if data_type != "VARCHAR" or not comment:
                continue
            listed = {word for found in _LIST.findall(comment)
                      for word in re.findall(_WORD, found)}
            if not listed:
                continue
            actual = {str(v) for (v,) in con.execute(
                f'select distinct "{column}" from {schema}.{table} where "{column}" is not null '
                "limit 51").fetchall()}
            if not actual or len(actual) > 50:  # empty here, or not a column of codes
                continue
            values = actual | allowed.get((f"{schema}.{table}", column), set())
            assert listed <= values, (f"{schema}.{table}.{column}", comment, listed - values)
            checked += 1
    assert checked >= 5
