"""Project health: structure and documentation rules read from dbt's manifest.

Fails, naming the node, when a model or one of its columns has no description, a
model has no primary-key test, source() is used outside staging, a mart reads a
source or a staging model instead of going through intermediate models, or a model
has more direct children than the threshold. Columns are taken from the built
database when one is given, so an undocumented column cannot hide by being absent
from the yml.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import duckdb

STAGING_PATHS = ("models/staging/",)
MART_PATHS = ("models/marts/", "python_models/marts/")
PRIMARY_KEY_TESTS = {"unique_combination_of_columns"}
DEFAULT_MAX_CHILDREN = 10


@dataclass(frozen=True, order=True)
class Problem:
    node: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.node}: {self.rule}: {self.detail}"


def load_manifest(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run dbt (build, parse or compile) first")
    return json.loads(path.read_text())


def relation_columns(build_db: Path) -> dict[tuple[str, str], list[str]]:
    """Columns of every table and view in the build file, by (schema, name)."""
    with duckdb.connect(str(build_db), read_only=True) as con:
        rows = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_catalog = current_database() order by table_schema, table_name, "
            "ordinal_position"
        ).fetchall()
    columns: dict[tuple[str, str], list[str]] = defaultdict(list)
    for schema, table, column in rows:
        columns[(schema, table)].append(column)
    return dict(columns)


def check_project(
    manifest: dict,
    columns: dict[tuple[str, str], list[str]] | None = None,
    *,
    max_children: int = DEFAULT_MAX_CHILDREN,
    project: str = "xsell",
) -> list[Problem]:
    nodes = manifest["nodes"]
    models = {
        uid: node
        for uid, node in nodes.items()
        if node["resource_type"] == "model" and node["package_name"] == project
    }
    tests_by_model: dict[str, list[dict]] = defaultdict(list)
    for node in nodes.values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            tests_by_model[node["attached_node"]].append(node)
    children: dict[str, set[str]] = defaultdict(set)
    for uid, node in models.items():
        for parent in node["depends_on"]["nodes"]:
            children[parent].add(uid)

    problems: list[Problem] = []
    for uid, node in sorted(models.items()):
        name, path = node["name"], node["original_file_path"]
        if not node.get("description", "").strip():
            problems.append(Problem(name, "undocumented model", "no description"))
        documented = node.get("columns", {})
        for column, spec in documented.items():
            if not spec.get("description", "").strip():
                problems.append(Problem(name, "undocumented column", column))
        if columns is not None:
            actual = columns.get((node["schema"], node["alias"]))
            for column in actual or []:
                if column not in documented:
                    problems.append(Problem(name, "undocumented column", f"{column} (not in yml)"))
        if not _has_primary_key_test(tests_by_model.get(uid, [])):
            problems.append(Problem(name, "no primary-key test",
                                    "needs unique + not_null on a column, or "
                                    "unique_combination_of_columns"))
        if node["sources"] and not path.startswith(STAGING_PATHS):
            problems.append(Problem(name, "source outside staging", f"{path} calls source()"))
        if path.startswith(MART_PATHS):
            for parent in node["depends_on"]["nodes"]:
                if parent.startswith("source."):
                    problems.append(Problem(name, "mart reads a source", parent))
                elif parent in models and models[parent]["original_file_path"].startswith(
                    STAGING_PATHS
                ):
                    problems.append(Problem(name, "mart reads staging",
                                            f"{models[parent]['name']} (go through intermediate)"))
        fan_out = len(children.get(uid, ()))
        # A model that every business area reads by design (the line fact, the analyses'
        # assessment) says so in its yml: meta {max_children: N, max_children_reason: ...}
        meta = {**(node.get("config") or {}).get("meta", {}), **(node.get("meta") or {})}
        allowed = meta.get("max_children")
        limit = int(allowed) if allowed is not None and meta.get("max_children_reason") \
            else max_children
        if fan_out > limit:
            problems.append(Problem(name, "too many children",
                                    f"{fan_out} direct children (threshold {limit})"))
    return sorted(problems)


def _has_primary_key_test(tests: list[dict]) -> bool:
    unique, not_null = set(), set()
    for test in tests:
        meta = test.get("test_metadata") or {}
        kind = meta.get("name")
        column = (meta.get("kwargs") or {}).get("column_name") or test.get("column_name")
        if kind in PRIMARY_KEY_TESTS:
            return True
        # a one-row table (e.g. a profile of the data) is its own key
        if kind == "row_count_between" and (meta.get("kwargs") or {}).get("max_value") == 1:
            return True
        if kind == "unique":
            unique.add(column)
        elif kind == "not_null":
            not_null.add(column)
    return bool(unique & not_null)
