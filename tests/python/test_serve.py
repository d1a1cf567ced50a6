"""`xsell serve` over HTTP: a real server on a free local port, its answers compared with
the marts of the published file, its error codes, injection attempts in every parameter,
and a full `xsell run` publishing while a load loop runs against it."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from support import PROJECT_DIR, XSELL, run_xsell

from xsell.generate import generate_store
from xsell.serve import models, queries
from xsell.serve.queries import NotFound, Warehouse

pytestmark = pytest.mark.dbt

STORE = {"days": 60, "stores": 2, "visits_per_day": 80}
INJECTIONS = [
    "' OR '1'='1",
    "x'; drop table marts.dim_customers; --",
    "%' --",
    "1 union select * from marts.dim_customers",
    '"; select 1; --',
    "\\'",
    "Champions' or rfm_segment <> '",
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small store built and published once for the module."""
    work = tmp_path_factory.mktemp("serve")
    generate_store(work / "raw", seed=7, **STORE)
    done = run_xsell(["run", "--raw-dir", str(work / "raw"), "--build-db",
                      str(work / "build.duckdb"), "--no-generate"], work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"work": work, "db": work / "published.duckdb", "build": work / "build.duckdb"}


@pytest.fixture(scope="module")
def server(built):
    with running_server(built["db"], built["work"]) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(db: Path, work: Path):
    """`xsell serve` in a subprocess on a free port until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / f"serve-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [XSELL, "serve", "--db", str(db), "--port", str(port)],
            cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "DO_NOT_TRACK": "1"},
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, log_path.read_text()[-3000:]
                with contextlib.suppress(OSError):
                    if get(url, "/health")[0] == 200:
                        break
                assert time.monotonic() < deadline, "xsell serve did not start in 120 s"
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def get(url: str, path: str, timeout: float = 30):
    """(status, headers, parsed JSON body) of GET url+path."""
    try:
        with urllib.request.urlopen(url + path, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        return error.code, dict(error.headers), parsed


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def normal(value):
    """A DuckDB value as the API's JSON carries it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def rows(db: Path, sql: str, params=()) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        result = con.execute(sql, list(params))
        names = [c[0] for c in result.description]
        return [dict(zip(names, map(normal, row), strict=True)) for row in result.fetchall()]


def one(db: Path, sql: str, params=()):
    found = rows(db, sql, params)
    return found[0] if found else None


# --------------------------------------------------------------------------- health


def test_health_names_the_published_build_and_its_coverage(built, server):
    status, headers, body = get(server, "/health")
    assert status == 200
    models.Health.model_validate(body)
    sha = hashlib.sha256(built["db"].read_bytes()).hexdigest()
    assert body["sha256"] == sha and body["run_id"] == sha[:12]
    assert headers["x-xsell-run-id"] == sha[:12]
    record = json.loads(built["db"].with_name("published.duckdb.publish.json").read_text())
    assert body["identified_by"] == "publish record"
    assert body["products_from"] == "marts.dim_products"
    assert body["published_at"] == record["published_at"]
    coverage = rows(built["db"], "select analysis, store_id, status, row_count, reason "
                    "from marts.fct_analysis_coverage order by analysis_order, store_id")
    assert [{k: r[k] for k in ("analysis", "store_id", "status", "row_count", "reason")}
            for r in body["coverage"]["rows"]] == coverage
    assert body["coverage"]["ran"] == sum(r["status"] == "ran" for r in coverage)


def test_docs_and_openapi_work_offline(server):
    with urllib.request.urlopen(server + "/docs") as response:
        page = response.read().decode()
    assert "swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page  # no CDN
    status, _, spec = get(server, "/openapi.json")
    assert status == 200
    assert set(spec["paths"]) == {
        "/health", "/customers/{customer_id}", "/customers/{customer_id}/recommendations",
        "/products/{product_id}/bundles", "/products/{product_id}/similar", "/segments",
        "/segments/{name}/customers",
    }
    with urllib.request.urlopen(server + "/static-offline-docs/swagger-ui-bundle.js") as r:
        assert r.status == 200 and len(r.read()) > 100_000


# --------------------------------------------------------------------------- customers


def sample_customers(db: Path) -> list[str]:
    """The highest CLV, the lowest, a lapsing one, one without a scored receipt."""
    picks = [
        "select customer_id from marts.dim_customers "
        "order by lifetime_value desc nulls last, customer_id limit 1",
        "select customer_id from marts.dim_customers "
        "order by lifetime_value asc nulls last, customer_id limit 1",
        "select customer_id from marts.fct_customer_rfm where is_lapsing "
        "order by customer_id limit 1",
        "select customer_id from marts.dim_customers where customer_id not in "
        "(select customer_id from ml.ml_restaurant_propensity where customer_id is not null) "
        "order by customer_id limit 1",
    ]
    found = [one(db, sql) for sql in picks]
    return sorted({row["customer_id"] for row in found if row})


def test_customer_figures_equal_the_marts(built, server):
    db = built["db"]
    customers = sample_customers(db)
    assert len(customers) >= 3
    for customer_id in customers:
        status, _, body = get(server, f"/customers/{q(customer_id)}")
        assert status == 200, body
        models.Customer.model_validate(body)
        dim = one(db, "select * from marts.dim_customers where customer_id = ?", [customer_id])
        rfm = one(db, "select * from marts.fct_customer_rfm where customer_id = ?",
                  [customer_id])
        clv = one(db, "select * from ml.ml_customer_lifetime_value where customer_id = ?",
                  [customer_id])
        seg = one(db, "select * from ml.ml_customer_segments where customer_id = ?",
                  [customer_id])
        assert body["purchases"]["revenue"] == dim["revenue"]
        assert body["purchases"]["purchase_receipts"] == dim["purchase_receipts"]
        assert body["profile"]["household_size"] == dim["household_size"]
        assert body["rfm"]["segment"] == dim["rfm_segment"] == rfm["rfm_segment"]
        assert body["rfm"]["rfm_cell"] == rfm["rfm_cell"]
        assert (body["rfm"]["recency_days"], body["rfm"]["frequency"],
                body["rfm"]["monetary"]) == (rfm["recency_days"], rfm["frequency"],
                                             rfm["monetary"])
        assert body["rfm"]["is_lapsing"] == rfm["is_lapsing"]
        assert body["lifetime_value"]["lifetime_value"] == dim["lifetime_value"] \
            == clv["expected_discounted_value"]
        assert body["lifetime_value"]["expected_purchases"] == clv["expected_purchases"]
        assert body["ml_segment"]["segment_name"] == dim["ml_segment_name"] \
            == seg["segment_name"]
        latest = rows(db, "select * from ml.ml_restaurant_propensity where customer_id = ?",
                      [customer_id])
        if latest:
            last = max(latest, key=lambda r: (r["sold_date"], r["store_id"], r["receipt_id"]))
            assert body["restaurant_propensity"]["probability"] == \
                last["restaurant_probability"]
            assert body["restaurant_propensity"]["receipt_id"] == last["receipt_id"]
        else:
            assert body["restaurant_propensity"] is None
        assert body["not_available"] == {}


def test_recommendations_equal_the_mart_with_a_reason_and_name_per_item(built, server):
    db = built["db"]
    names = {r["product_id"]: r["product_name"] for r in rows(
        db, "select product_id, product_name from marts.dim_products")}
    for customer_id in sample_customers(db):
        expected = rows(db, "select * from ml.ml_recommendations where customer_id = ? "
                            "order by recommendation_rank", [customer_id])
        assert expected, customer_id
        status, headers, body = get(server, f"/customers/{q(customer_id)}/recommendations")
        assert status == 200
        models.Recommendations.model_validate(body)
        assert [i["product_id"] for i in body["items"]] == \
            [r["product_id"] for r in expected][:10]
        assert [i["reason"] for i in body["items"]] == [r["reason"] for r in expected][:10]
        assert [i["score"] for i in body["items"]] == [r["score"] for r in expected][:10]
        assert all(i["product_name"] for i in body["items"])
        assert [i["product_name"] for i in body["items"]] == \
            [names[i["product_id"]] for i in body["items"]]
        assert body["is_cold_start"] == expected[0]["is_cold_start"]
        assert body["fallback"] is None
        _, _, three = get(server, f"/customers/{q(customer_id)}/recommendations?limit=3")
        assert three["items"] == body["items"][:3]


# --------------------------------------------------------------------------- products


def test_bundles_equal_the_rules_and_the_complete_the_room_lists(built, server):
    db = built["db"]
    anchor = one(db, "select anchor_family, product_id from ml.ml_recommendations_by_anchor "
                     "order by anchor_family limit 1")
    anchor_product = one(
        db, "select product_id from marts.fct_product_affinity where category = ? "
            "order by product_id limit 1", [anchor["anchor_family"]])["product_id"]
    ruled = one(db, "select antecedent[1] as product_id from marts.fct_association_rules "
                    "where item_level = 'product' order by lift desc limit 1")
    for product_id in {anchor_product, anchor["product_id"],
                       *([ruled["product_id"]] if ruled else [])}:
        status, _, body = get(server, f"/products/{q(product_id)}/bundles?limit=50")
        assert status == 200, body
        models.Bundles.model_validate(body)
        product = body["product"]
        assert product == one(db, "select product_id, product_name, category, size_class, "
                                  "is_anchor, is_addon, is_impulse, is_merchandise, "
                                  "median_unit_price, price_band from marts.dim_products "
                                  "where product_id = ?", [product_id])
        expected = rows(
            db, "select * from marts.fct_association_rules where item_level = 'product' "
                "and list_contains(antecedent, ?) order by lift desc, confidence desc, "
                "consequent, antecedent limit 50", [product_id])
        assert [([a["product_id"] for a in r["antecedent"]], r["consequent"]["product_id"],
                 r["support"], r["confidence"], r["lift"]) for r in body["rules"]] == [
            (r["antecedent"], r["consequent"], r["support"], r["confidence"], r["lift"])
            for r in expected]
        categories = rows(
            db, "select * from marts.fct_association_rules where item_level = 'category' "
                "and list_contains(antecedent, ?) order by lift desc, confidence desc, "
                "consequent, antecedent limit 50", [product["category"]])
        assert [(r["consequent"]["category"], r["lift"]) for r in body["category_rules"]] == \
            [(r["consequent"], r["lift"]) for r in categories]
        room = rows(db, "select * from ml.ml_recommendations_by_anchor where anchor_family = ? "
                        "order by recommendation_rank", [product["category"]])
        if product_id == anchor_product:
            assert product["is_anchor"] and room
            assert [(r["product_id"], r["product_name"], r["lift"], r["attach_rate"])
                    for r in body["complete_the_room"]] == [
                (r["product_id"], r["product_name"], r["lift"], r["attach_rate"])
                for r in room]
        completes = rows(db, "select anchor_family from ml.ml_recommendations_by_anchor "
                             "where product_id = ? order by lift desc, anchor_family",
                         [product_id])
        assert [r["anchor_family"] for r in body["completes_rooms"]] == \
            [r["anchor_family"] for r in completes]
        names = {r["product_id"]: r["product_name"] for r in rows(
            db, "select product_id, product_name from marts.dim_products")}
        for rule in body["rules"]:
            for item in [*rule["antecedent"], rule["consequent"]]:
                assert item["product_name"] == names[item["product_id"]]


def test_similar_equals_the_affinity_mart(built, server):
    db = built["db"]
    product_id = one(db, "select product_id from marts.fct_product_affinity "
                         "where relation = 'upsell' order by product_id limit 1")["product_id"]
    status, _, body = get(server, f"/products/{q(product_id)}/similar?limit=5")
    assert status == 200
    models.Similar.model_validate(body)
    for relation, key in (("co_purchase", "similar"), ("upsell", "upsell")):
        expected = rows(db, "select * from marts.fct_product_affinity where product_id = ? "
                            "and relation = ? and affinity_rank <= 5 order by affinity_rank",
                        [product_id, relation])
        assert [(n["rank"], n["product_id"], n["product_name"], n["cosine_similarity"])
                for n in body[key]] == [
            (r["affinity_rank"], r["related_product_id"], r["related_product_name"],
             r["cosine_similarity"]) for r in expected]
    assert body["upsell"]
    assert body["product"]["product_name"] == one(
        db, "select product_name from marts.dim_products where product_id = ?",
        [product_id])["product_name"]


# --------------------------------------------------------------------------- segments


def test_segments_and_their_pages_equal_the_marts(built, server):
    db = built["db"]
    status, _, body = get(server, "/segments")
    assert status == 200
    models.Segments.model_validate(body)
    at_risk = rows(db, "select rfm_segment, customers, revenue_at_risk from "
                       "marts.fct_revenue_at_risk order by segment_priority nulls last, "
                       "rfm_segment")
    assert [(s["name"], s["customers"], s["revenue_at_risk"]) for s in body["rfm"]] == \
        [(r["rfm_segment"], r["customers"], r["revenue_at_risk"]) for r in at_risk]
    ml = rows(db, "select segment_name, count(*) as n from ml.ml_customer_segments "
                  "group by all order by min(segment_id)")
    assert [(s["name"], s["customers"]) for s in body["ml"]] == \
        [(r["segment_name"], r["n"]) for r in ml]

    name = max(at_risk, key=lambda r: r["customers"])["rfm_segment"]
    expected = [r["customer_id"] for r in rows(
        db, "select customer_id from marts.dim_customers where rfm_segment = ? "
            "order by lifetime_value desc nulls last, customer_id", [name])]
    pages, offset = [], 0
    while offset is not None:
        status, _, page = get(server, f"/segments/{q(name)}/customers?limit=40&offset={offset}")
        assert status == 200
        models.SegmentPage.model_validate(page)
        assert page["total"] == len(expected) and page["kind"] == "rfm"
        pages += [c["customer_id"] for c in page["customers"]]
        offset = page["next_offset"]
    assert pages == expected
    ml_name = ml[0]["segment_name"]
    status, _, page = get(server, f"/segments/{q(ml_name)}/customers?kind=ml&limit=5")
    assert status == 200 and page["kind"] == "ml" and page["total"] == ml[0]["n"]
    assert all(c["ml_segment_name"] == ml_name for c in page["customers"])


def test_answers_from_memory_equal_answers_from_queries(built, monkeypatch):
    """The server answers by queries until it has read the lookups into memory (or, for
    a lookup too large for that, into an indexed in-memory table); all give the same
    answers."""
    by_queries = answers_of(built["db"], index=False)
    assert answers_of(built["db"], index=True) == by_queries
    monkeypatch.setattr(queries, "MAX_INDEX_ROWS", 0)  # every lookup too large
    assert answers_of(built["db"], index=True, copies=True) == by_queries


def answers_of(db: Path, *, index: bool, copies: bool = False) -> list:
    warehouse = Warehouse(db)
    try:
        answers = warehouse.answers()
        customers = [r[0] for r in warehouse.cursor().execute(
            "select customer_id from marts.dim_customers order by 1 limit 25").fetchall()]
        products = [r[0] for r in warehouse.cursor().execute(
            "select product_id from marts.dim_products order by 1").fetchall()]

        def everything():
            found = [answers.segments(), answers.health()]
            for customer_id in [*customers, "NOBODY"]:
                for ask in (answers.customer, lambda c: answers.recommendations(c, 7)):
                    try:
                        found.append(ask(customer_id))
                    except NotFound as missing:
                        found.append(str(missing))
            for product_id in products:
                found += [answers.bundles(product_id, 5), answers.similar(product_id, 4)]
            for segment in answers.segments()["rfm"] + answers.segments()["ml"]:
                found.append(answers.segment_customers(segment["name"], None, 30, 5))
            return found

        if index:
            warehouse.build_index()
            assert warehouse.index_ready
            assert warehouse.in_memory(["customer", "recommendations"]) is not copies
        else:
            assert not warehouse.index_ready
        return everything()
    finally:
        warehouse.close()


# --------------------------------------------------------------------------- errors


def test_unknown_ids_are_404_and_bad_parameters_422(built, server):
    customer = sample_customers(built["db"])[0]
    product = one(built["db"], "select product_id from marts.fct_product_affinity limit 1")[
        "product_id"]
    for path in ["/customers/NOBODY", "/customers/NOBODY/recommendations",
                 "/products/NOTHING/bundles", "/products/NOTHING/similar",
                 "/segments/No%20Such%20Segment/customers"]:
        status, headers, body = get(server, path)
        assert status == 404, path
        assert "No " in body["detail"] and "x-xsell-run-id" in headers
        models.Error.model_validate(body)
    long_id = "C" * 201
    for path in [f"/customers/{customer}/recommendations?limit=0",
                 f"/customers/{customer}/recommendations?limit=101",
                 f"/customers/{customer}/recommendations?limit=ten",
                 f"/customers/{customer}/recommendations?limit=1.5",
                 f"/products/{product}/bundles?limit=-1",
                 f"/products/{product}/similar?limit=1000",
                 "/segments/Champions/customers?offset=-1",
                 "/segments/Champions/customers?limit=1001",
                 "/segments/Champions/customers?kind=everything",
                 f"/customers/{long_id}"]:
        status, _, body = get(server, path)
        assert status == 422, path
        assert body["detail"][0]["msg"], path  # says what is wrong with which parameter


def test_injection_attempts_in_every_parameter_are_inert(built, server):
    customer = sample_customers(built["db"])[0]
    product = one(built["db"], "select product_id from marts.fct_product_affinity limit 1")[
        "product_id"]
    for payload in INJECTIONS:
        text = q(payload)
        for path in [f"/customers/{text}", f"/customers/{text}/recommendations",
                     f"/products/{text}/bundles", f"/products/{text}/similar",
                     f"/segments/{text}/customers", f"/customers/{customer}{text}",
                     f"/products/{product}{text}/similar"]:
            status, _, body = get(server, path)
            assert status == 404, (path, body)
        for path in [f"/customers/{customer}/recommendations?limit={text}",
                     f"/products/{product}/bundles?limit={text}",
                     f"/products/{product}/similar?limit={text}",
                     f"/segments/Champions/customers?limit={text}",
                     f"/segments/Champions/customers?offset={text}",
                     f"/segments/Champions/customers?kind={text}"]:
            status, _, body = get(server, path)
            assert status == 422, (path, body)
    status, _, body = get(server, f"/customers/{q(customer)}")
    assert status == 200 and body["customer_id"] == customer
    assert one(built["db"], "select count(*) as n from marts.dim_customers")["n"] > 0


# --------------------------------------------------------------------------- not run


def test_analyses_that_did_not_run_answer_with_their_reason(built, tmp_path):
    """A copy of the published file in which some analyses did not run (their coverage
    rows say why, their tables are empty or missing): answers carry the reason, never a
    5xx; a known customer without a list gets the cold-start list."""
    db = tmp_path / "published.duckdb"
    shutil.copy(built["db"], db)
    reason = "the data has no restaurant orders"
    with duckdb.connect(str(db)) as con:
        for analysis, table in [("restaurant_propensity", "ml.ml_restaurant_propensity"),
                                ("product_affinity", "marts.fct_product_affinity")]:
            con.execute("update marts.fct_analysis_coverage set status = 'not_applicable', "
                        "is_applicable = false, row_count = 0, reason = ? where analysis = ?",
                        [reason + f" ({analysis})", analysis])
            con.execute(f"delete from {table}")
        con.execute("drop table ml.ml_recommendations_by_anchor")
        con.execute("drop table marts.dim_products")  # published before it existed
        no_list, cold = [r[0] for r in con.execute(
            "select distinct customer_id from ml.ml_recommendations order by 1 limit 2"
        ).fetchall()]
        con.execute("delete from ml.ml_recommendations where customer_id = ?", [no_list])
        con.execute("update ml.ml_recommendations set is_cold_start = true "
                    "where customer_id = ?", [cold])
        cold_list = [r[0] for r in con.execute(
            "select product_id from ml.ml_recommendations where customer_id = ? "
            "order by recommendation_rank", [cold]).fetchall()]
        product, product_name = con.execute(
            "select product_id, product_name from ml.ml_recommendations "
            "order by product_id limit 1").fetchone()
    with running_server(db, tmp_path) as url:
        status, _, body = get(url, f"/customers/{q(no_list)}")
        assert status == 200
        assert body["restaurant_propensity"] is None
        assert body["not_available"]["restaurant_propensity"]["reason"] == \
            reason + " (restaurant_propensity)"
        status, _, body = get(url, f"/customers/{q(no_list)}/recommendations")
        assert status == 200 and body["fallback"] == "cold_start"
        assert [i["product_id"] for i in body["items"]] == cold_list
        assert body["is_cold_start"] is True
        status, _, body = get(url, f"/products/{q(product)}/similar")
        assert status == 200 and body["similar"] == [] and body["upsell"] == []
        assert body["not_available"] == {"analysis": "product_affinity",
                                         "status": "not_applicable",
                                         "reason": reason + " (product_affinity)"}
        status, _, body = get(url, f"/products/{q(product)}/bundles")
        assert status == 200
        assert body["not_available"]["complete_the_room"]["status"] == "not_built"
        assert body["product"]["product_name"] == product_name  # from the recommendations
        status, _, health = get(url, "/health")
        assert status == 200 and health["identified_by"] == "file"  # a copy: hashed
        assert health["run_id"] == hashlib.sha256(db.read_bytes()).hexdigest()[:12]
        assert "marts.fct_product_affinity" in health["products_from"]


# --------------------------------------------------------------------------- republish


def test_serving_survives_a_publish(built, tmp_path):
    """A full `xsell run` publishes a different store onto the file being served while
    clients keep asking: no error, every answer wholly from one build, and from the new
    build once a second has passed since the rename."""
    work, db = built["work"], built["db"]
    raw2 = tmp_path / "raw"
    generate_store(raw2, seed=8, **STORE)
    customers = sample_customers(db)
    product = one(db, "select product_id from ml.ml_recommendations_by_anchor limit 1")[
        "product_id"]
    paths = [f"/customers/{q(c)}" for c in customers] + [
        f"/customers/{q(customers[0])}/recommendations", f"/products/{q(product)}/bundles",
        f"/products/{q(product)}/similar", "/segments", "/segments/Champions/customers",
        "/customers/NOBODY", "/health",
    ]
    with running_server(db, work) as url:
        old = {path: get(url, path) for path in paths}
        old_run = old["/health"][2]["run_id"]
        assert {h["x-xsell-run-id"] for _, h, _ in old.values()} == {old_run}

        seen: list[tuple[float, str, int, str | None, object]] = []
        errors: list[str] = []
        stop = threading.Event()
        published_at: list[float] = []
        identity = os.stat(db).st_ino

        def watch():
            while not stop.is_set():
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(db).st_ino != identity:
                        published_at.append(time.monotonic())
                        return
                time.sleep(0.005)

        def load(offset: int):
            n = offset
            while not stop.is_set() and len(seen) < 20_000:
                path = paths[n % len(paths)]
                n += 1
                started = time.monotonic()
                try:
                    status, headers, body = get(url, path, timeout=20)
                except Exception as error:  # a refused or broken connection is a failure
                    errors.append(f"{path}: {error!r}")
                    continue
                seen.append((started, path, status, headers.get("x-xsell-run-id"), body))
                time.sleep(0.01)

        threads = [threading.Thread(target=watch)] + [
            threading.Thread(target=load, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        try:
            done = run_xsell(["run", "--raw-dir", str(raw2), "--build-db",
                              str(built["build"]), "--no-generate"], work)
            time.sleep(2.0)  # answers after the run, still from the loop
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        new = {path: get(url, path) for path in paths}
    new_run = new["/health"][2]["run_id"]
    assert new_run != old_run
    assert new_run == hashlib.sha256(db.read_bytes()).hexdigest()[:12]
    assert not errors, errors[:5]
    assert published_at, "the published file was never replaced"
    rename = published_at[0]
    assert len(seen) > 100 and max(s[0] for s in seen) > rename + 1.5
    for started, path, status, run_id, body in seen:
        assert status < 500, (path, status, body)
        assert run_id in (old_run, new_run), (path, run_id)
        expected = old if run_id == old_run else new
        assert (status, body) == (expected[path][0], expected[path][2]), path
        if started > rename + 1.0:
            assert run_id == new_run, (path, started - rename)
    assert sum(run_id == old_run for _, _, _, run_id, _ in seen) > 0
