"""Project health rules on a hand-made manifest, and on the real project build."""

from __future__ import annotations

from xsell.health import check_project, load_manifest, relation_columns


def model(name, path, *, parents=(), sources=(), description="A model.", columns=None,
          schema="marts"):
    return {
        "resource_type": "model", "package_name": "xsell", "name": name,
        "original_file_path": path, "description": description, "schema": schema,
        "alias": name, "sources": [list(s) for s in sources],
        "depends_on": {"nodes": list(parents) + [f"source.xsell.{'.'.join(s)}" for s in sources]},
        "columns": columns if columns is not None else {"id": {"description": "Key."}},
    }


def data_test(kind, attached, column="id"):
    return {"resource_type": "test", "package_name": "xsell", "attached_node": attached,
            "column_name": column, "test_metadata": {"name": kind,
                                                     "kwargs": {"column_name": column}}}


def manifest(nodes: dict) -> dict:
    return {"nodes": nodes}


def keyed(uid):
    return {
        f"{uid}.unique": data_test("unique", uid),
        f"{uid}.not_null": data_test("not_null", uid),
    }


def test_a_clean_project_has_no_problems():
    nodes = {
        "model.xsell.stg_a": model("stg_a", "models/staging/stg_a.sql", sources=[("pos", "a")]),
        "model.xsell.int_a": model("int_a", "models/intermediate/int_a.sql",
                                   parents=["model.xsell.stg_a"]),
        "model.xsell.fct_a": model("fct_a", "models/marts/fct_a.sql",
                                   parents=["model.xsell.int_a"]),
    }
    for uid in list(nodes):
        nodes.update(keyed(uid))
    assert check_project(manifest(nodes)) == []


def test_each_rule_names_the_node():
    nodes = {
        "model.xsell.stg_a": model("stg_a", "models/staging/stg_a.sql", sources=[("pos", "a")]),
        "model.xsell.int_b": model("int_b", "models/intermediate/int_b.sql",
                                   sources=[("pos", "b")], description=" "),
        "model.xsell.fct_c": model("fct_c", "models/marts/fct_c.sql",
                                   parents=["model.xsell.stg_a"],
                                   columns={"id": {"description": ""}}),
    }
    nodes.update(keyed("model.xsell.stg_a"))
    nodes.update(keyed("model.xsell.int_b"))
    nodes["model.xsell.fct_c.unique"] = data_test("unique", "model.xsell.fct_c")  # no not_null
    for i in range(3):
        nodes[f"model.xsell.child_{i}"] = model(f"child_{i}", f"models/intermediate/c{i}.sql",
                                                parents=["model.xsell.stg_a"])
        nodes.update(keyed(f"model.xsell.child_{i}"))
    problems = {(p.node, p.rule) for p in check_project(
        manifest(nodes), {("marts", "fct_c"): ["id", "extra"]}, max_children=3)}
    assert problems == {
        ("int_b", "undocumented model"),
        ("int_b", "source outside staging"),
        ("fct_c", "undocumented column"),
        ("fct_c", "no primary-key test"),
        ("fct_c", "mart reads staging"),
        ("stg_a", "too many children"),
    }
    columns = {("marts", "fct_c"): ["id", "extra"]}
    details = [str(p) for p in check_project(manifest(nodes), columns)]
    assert "fct_c: undocumented column: extra (not in yml)" in details


def test_the_built_project_is_healthy(store_build):
    """Every model and column of the real build is documented and key-tested, and the
    layering rules hold."""
    problems = check_project(
        load_manifest(store_build["work"] / "target" / "manifest.json"),
        relation_columns(store_build["db"]),
    )
    assert [str(p) for p in problems] == []


def test_a_model_read_by_design_states_its_fan_out_and_why():
    nodes = {"model.xsell.stg_a": model("stg_a", "models/staging/stg_a.sql",
                                        sources=[("pos", "a")])}
    nodes.update(keyed("model.xsell.stg_a"))
    for i in range(4):
        nodes[f"model.xsell.child_{i}"] = model(f"child_{i}", f"models/intermediate/c{i}.sql",
                                                parents=["model.xsell.stg_a"])
        nodes.update(keyed(f"model.xsell.child_{i}"))

    def fan_out_problems(meta):
        nodes["model.xsell.stg_a"]["config"] = {"meta": meta}
        return [str(p) for p in check_project(manifest(nodes), max_children=3)]

    assert fan_out_problems({}) == ["stg_a: too many children: 4 direct children (threshold 3)"]
    # a limit without a reason is not taken
    assert fan_out_problems({"max_children": 4}) == [
        "stg_a: too many children: 4 direct children (threshold 3)"]
    assert fan_out_problems({"max_children": 4, "max_children_reason": "the line fact"}) == []
    assert fan_out_problems({"max_children": 3, "max_children_reason": "the line fact"}) == [
        "stg_a: too many children: 4 direct children (threshold 3)"]
