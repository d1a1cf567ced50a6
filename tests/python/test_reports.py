"""`xsell report`: the HTML pages rendered from the built store.

The pages are checked for the figures they show (heatmap cells equal the mart's lift,
takeaways carry figures recomputed here), for saying "No data" instead of breaking
when a mart is absent or empty, for escaping every data value (a product named
<script>alert(1)</script>), and in headless Chromium for charts that plotly really
drew without a JavaScript error.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
from plotly.offline import get_plotlyjs
from support import CHROMIUM, check_pages_in_browser, dump_dom

from xsell.reports import render_reports
from xsell.reports.pages import PAGES

XSS = "<script>alert(1)</script>"
XSS_HTML = html.escape(XSS, quote=False)  # &lt;script&gt;alert(1)&lt;/script&gt;
XSS_JSON = "\\u003cscript\\u003ealert(1)\\u003c"  # plotly also writes / as \\u002f

# Charts the default store fills on every page (the ML pages' optional tables aside).
EXPECTED_CHARTS = {
    "revenue": ["revenue-by-stream", "revenue-daily", "margin-rate"],
    "cross_sell": ["lift-heatmap", "attach-by-family", "attach-over-time"],
    "impulse": ["impulse-heatmap", "impulse-by-hour"],
    "restaurant": ["restaurant-conversion", "restaurant-timing"],
    "customers": ["rfm-segments", "cohort-retention", "clv-distribution", "revenue-at-risk",
                  "segment-scatter"],
    "basket": ["rules-scatter"],
    "models": ["clv-metrics", "segment-selection"],
}

_FIGURE = re.compile(
    r'<script type="application/json" id="([\w-]+)-figure">(.*?)</script>', re.DOTALL
)
_TAKEAWAY = re.compile(r'<section class="block" id="([\w-]+)">\s*<h2>.*?</h2>\s*'
                       r'<p class="takeaway">(.*?)</p>', re.DOTALL)


def figures(page: str) -> dict[str, dict]:
    return {chart_id: json.loads(text) for chart_id, text in _FIGURE.findall(page)}


def takeaways(page: str) -> dict[str, str]:
    return {block_id: html.unescape(text) for block_id, text in _TAKEAWAY.findall(page)}


def values(array) -> np.ndarray:
    """A plotly data array: a list, or a typed array {"dtype", "bdata", "shape"}."""
    if isinstance(array, dict) and "bdata" in array:
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = array.get("shape")
        if isinstance(shape, str):
            shape = [int(s) for s in shape.split(",")]
        return flat.reshape(shape) if shape else flat
    return np.array(array, dtype=object)


@pytest.fixture(scope="module")
def rendered(store_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    summary = render_reports(store_build["db"], out)
    pages = {p.slug: (out / f"{p.slug}.html").read_text(encoding="utf-8") for p in PAGES}
    return {"summary": summary, "out": out, "pages": pages, "db": store_build["db"]}


def _copy_db(store_build, tmp_path: Path, statements: list[str]) -> Path:
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(store_build["db"], copy)
    with duckdb.connect(str(copy)) as con:
        for statement in statements:
            con.execute(statement)
    return copy


def test_every_page_and_chart_is_rendered_with_data(rendered):
    out, summary = rendered["out"], rendered["summary"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert [p.slug for p in summary.pages] == list(EXPECTED_CHARTS)
    for slug, expected in EXPECTED_CHARTS.items():
        page = rendered["pages"][slug]
        assert f'href="{slug}.html"' in index
        charts = figures(page)
        assert set(expected) <= set(charts), (slug, sorted(charts))
        for chart_id, figure in charts.items():
            assert figure["data"], chart_id
            assert any(
                len(values(trace.get("z", trace.get("y", [])))) for trace in figure["data"]
            ), chart_id
            layout = figure["layout"]
            assert layout["title"]["text"], chart_id
            assert layout["xaxis"]["title"]["text"], chart_id
            assert layout["yaxis"]["title"]["text"], chart_id
        found = takeaways(page)
        assert all(found.get(chart_id, "").strip() for chart_id in charts), (slug, found)
    # plotly.js is shipped once, locally, and referenced relatively: the pages work offline
    assert (out / "assets" / "plotly.min.js").read_text(encoding="utf-8") == get_plotlyjs()
    for page in rendered["pages"].values():
        assert "cdn.plot.ly" not in page and "https://" not in page
        if "xsell-chart" in page:
            assert '<script src="assets/plotly.min.js"></script>' in page
    # the basket page's tables hold rows
    assert rendered["pages"]["basket"].count("<tr>") > 20


def test_lift_heatmap_equals_the_mart_and_the_takeaway_names_the_strongest_pair(rendered):
    heatmap = figures(rendered["pages"]["cross_sell"])["lift-heatmap"]["data"][0]
    z, x, y = values(heatmap["z"]), list(heatmap["x"]), list(heatmap["y"])
    with duckdb.connect(str(rendered["db"]), read_only=True) as con:
        # over both stores: the lift of the summed counts, significant in each store
        over_stores = (
            "select anchor_family, addon_category, (sum(joint_receipts) / sum(anchor_receipts))"
            " / (sum(addon_receipts) / sum(all_receipts)) as lift, "
            "bool_and(is_significant) as significant from marts.fct_addon_lift group by 1, 2")
        lifts = con.execute(f"select anchor_family, addon_category, lift from ({over_stores})"
                            ).fetchall()
        best = con.execute(
            f"select anchor_family, addon_category, lift from ({over_stores}) "
            "where significant order by lift desc limit 1"
        ).fetchone()
    assert len(lifts) == len(x) * len(y)
    for anchor, addon, lift in lifts:
        assert float(z[y.index(anchor)][x.index(addon)]) == pytest.approx(lift, rel=1e-12)
    assert takeaways(rendered["pages"]["cross_sell"])["lift-heatmap"].startswith(
        f"{best[0]} buyers take {best[1]} {best[2]:.1f}× as often as the average shopper"
    )


def test_takeaways_carry_figures_recomputed_from_the_marts(rendered):
    with duckdb.connect(str(rendered["db"]), read_only=True) as con:
        anchor_share = con.execute(
            "select sum(revenue) filter (revenue_stream = 'ANCHOR') "
            "/ sum(revenue) filter (revenue_stream <> 'RETURNS') from marts.fct_revenue_mix"
        ).fetchone()[0]
        family, attach = con.execute(
            "select anchor_family, sum(attached_receipts) / sum(anchor_receipts) as rate "
            "from marts.fct_attach_rates group by 1 having sum(anchor_receipts) >= 30 "
            "order by rate desc, 1 limit 1"
        ).fetchone()
        segment, customer_share, revenue_share = con.execute(
            "select rfm_segment, count(*) / sum(count(*)) over (), "
            "sum(monetary) / sum(sum(monetary)) over () "
            "from marts.fct_customer_rfm group by 1 order by sum(monetary) desc limit 1"
        ).fetchone()
        any_anchor, no_anchor = con.execute(
            "select sum(converted_receipts) filter (shopper_group = 'ANY_ANCHOR') "
            "/ sum(receipts) filter (shopper_group = 'ANY_ANCHOR'), "
            "sum(converted_receipts) filter (shopper_group = 'NO_ANCHOR') "
            "/ sum(receipts) filter (shopper_group = 'NO_ANCHOR') "
            "from marts.fct_restaurant_conversion_by_group"
        ).fetchone()
    pages = rendered["pages"]
    assert f"Anchors bring {anchor_share:.0%} of gross revenue" in \
        takeaways(pages["revenue"])["revenue-by-stream"]
    assert f"{family} anchors pull an add-on on {attach:.0%}" in \
        takeaways(pages["cross_sell"])["attach-by-family"]
    assert (f"{segment} are {customer_share:.0%} of customers but bring {revenue_share:.0%}"
            in takeaways(pages["customers"])["rfm-segments"])
    assert (f"{any_anchor:.0%} of the time, against {no_anchor:.0%}"
            in takeaways(pages["restaurant"])["restaurant-conversion"])


def test_takeaways_name_no_finding_on_a_handful_of_receipts(store_build, tmp_path):
    """Rates from fewer than MIN_EVIDENCE receipts are shown, never named as findings;
    an unnamed product is named by its id, and a pair of mutual best neighbours is one row."""
    db = _copy_db(store_build, tmp_path, [
        "update marts.fct_attach_rates set anchor_receipts = 2, attached_receipts = 2, "
        "two_plus_addon_receipts = 0",
        "delete from marts.fct_attach_rates_daily where sold_date > "
        "(select min(sold_date) from marts.fct_attach_rates_daily)",
        "update marts.fct_attach_rates_daily set anchor_receipts = 1, attached_receipts = 1",
        "update marts.fct_association_rules set rule_basket_count = 5",
        "update marts.fct_product_affinity set product_name = null, "
        "related_product_name = null",
    ])
    render_reports(db, tmp_path / "out")
    page = (tmp_path / "out" / "cross_sell.html").read_text(encoding="utf-8")
    cross_sell = takeaways(page)
    assert cross_sell["attach-by-family"].startswith("Too few anchor receipts to state an "
                                                     "attach rate")
    assert "pull an add-on" not in cross_sell["attach-by-family"]
    assert cross_sell["attach-over-time"].startswith("No week has 30 anchor receipts or more")
    basket_page = (tmp_path / "out" / "basket.html").read_text(encoding="utf-8")
    basket = takeaways(basket_page)
    assert basket["rules-table"] == ("No rule shown holds on 30 baskets or more (the most is "
                                     "5): read them as leads to check, not findings.")
    with duckdb.connect(str(db), read_only=True) as con:
        product, related, together = con.execute(
            "select product_id, related_product_id, together_count "
            "from marts.fct_product_affinity where relation = 'co_purchase' "
            "and affinity_rank = 1 order by together_count desc, cosine_similarity desc, "
            "product_id limit 1"
        ).fetchone()
        mutual = con.execute(
            "select count(*) from marts.fct_product_affinity a join marts.fct_product_affinity "
            "b on a.relation = b.relation and a.product_id = b.related_product_id "
            "and a.related_product_id = b.product_id and b.affinity_rank = 1 "
            "where a.relation = 'co_purchase' and a.affinity_rank = 1"
        ).fetchone()[0]
    assert together >= 30 and mutual > 0  # the store has pairs that are each other's best
    assert basket["affinity-co-purchase"].startswith(
        f"{product} goes best with {related}: bought together on {together} receipts")
    rows = re.findall(r"<tr>(.*?)</tr>", basket_page.split('id="affinity-co-purchase"')[1]
                      .split("</table>")[0], re.DOTALL)[1:]
    pairs = [frozenset(re.findall(r"<td>(.*?)</td>", row)[i] for i in (0, 2)) for row in rows]
    assert len(pairs) == len(set(pairs)) > 0


def test_absent_or_empty_marts_say_no_data_and_the_rest_renders(store_build, tmp_path):
    db = _copy_db(store_build, tmp_path, [
        "drop table marts.fct_addon_lift",
        "delete from marts.fct_restaurant_conversion",
        "drop table ml.ml_customer_segments",
    ])
    summary = render_reports(db, tmp_path / "out")
    pages = {p.slug: p for p in summary.pages}
    cross_sell = pages["cross_sell"].path.read_text(encoding="utf-8")
    assert "No data: marts.fct_addon_lift is absent from this build." in cross_sell
    assert {"attach-by-family", "attach-over-time"} <= set(figures(cross_sell))
    restaurant = pages["restaurant"].path.read_text(encoding="utf-8")
    assert "No data: marts.fct_restaurant_conversion is empty in this build." in restaurant
    assert "restaurant-timing" in figures(restaurant)
    customers = pages["customers"].path.read_text(encoding="utf-8")
    assert "No data: ml.ml_customer_segments is absent from this build." in customers
    assert "segment-scatter" not in figures(customers)

    # a file with no marts at all: every page renders and says why it is empty
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    bare = render_reports(empty, tmp_path / "bare")
    assert bare.charts == 0
    for page in bare.pages:
        text = page.path.read_text(encoding="utf-8")
        assert page.notices and "No data:" in text
        assert "plotly.min.js" not in text


def _xss_build(store_build, tmp_path: Path) -> Path:
    quoted = XSS.replace("'", "''")
    return _copy_db(store_build, tmp_path, [
        f"update marts.fct_product_affinity set product_name = '{quoted}', "
        f"related_product_name = '{quoted}'",
        f"update marts.fct_addon_lift set anchor_family = '{quoted}' "
        "where anchor_family = (select min(anchor_family) from marts.fct_addon_lift)",
        f"update marts.fct_attach_rates set anchor_family = '{quoted}' "
        "where anchor_family = (select min(anchor_family) from marts.fct_attach_rates)",
        f"update marts.fct_association_rules set consequent_name = '{quoted}', "
        f"rule_label = '{quoted}'",
        f"update marts.fct_customer_rfm set rfm_segment = '{quoted}' "
        "where rfm_segment = (select min(rfm_segment) from marts.fct_customer_rfm)",
        f"update ml.ml_customer_segments set segment_name = '{quoted}'",
    ])


def test_data_values_are_escaped_everywhere(store_build, tmp_path):
    summary = render_reports(_xss_build(store_build, tmp_path), tmp_path / "out")
    pages = {p.slug: p.path.read_text(encoding="utf-8") for p in summary.pages}
    for slug, page in pages.items():
        assert XSS not in page, slug
        assert "alert(1)</script" not in page, slug
    # escaped as text in tables and takeaways, as \u003c in the embedded figure JSON
    assert XSS_HTML in pages["basket"]
    assert XSS_JSON in pages["basket"]  # rule labels in the scatter
    assert XSS_JSON in pages["cross_sell"]  # heatmap row and bar labels
    assert XSS_JSON in pages["customers"]  # RFM and ML segment names
    # and the escaped JSON still decodes to the original name
    heatmap = figures(pages["cross_sell"])["lift-heatmap"]["data"][0]
    assert XSS in heatmap["y"]


# --------------------------------------------------------------------------- browser


@pytest.fixture
def chromium():
    if not CHROMIUM.is_file():
        pytest.skip(f"headless browser test needs Chromium at {CHROMIUM} (Debian package "
                    "`chromium`; `make setup` installs it when run as root with apt)")
    return CHROMIUM


def test_the_browser_probe_sees_errors_and_alerts(chromium, tmp_path):
    """Control: the probe does catch a script that runs alert() and a failing script."""
    page = tmp_path / "control.html"
    page.write_text("<html><head></head><body><script>alert(1)</script>"
                    "<script>no_such_function()</script></body></html>", encoding="utf-8")
    dom, log = dump_dom(page, tmp_path / "profile")
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-xss="fired"' in root and "no_such_function" in root
    assert "Uncaught" in log


def test_pages_draw_every_chart_in_a_browser_without_errors(chromium, rendered, tmp_path):
    doms = check_pages_in_browser(rendered["out"], tmp_path)
    assert set(doms) == {"index", *EXPECTED_CHARTS}


def test_injected_script_never_runs_in_a_browser(chromium, store_build, tmp_path):
    out = tmp_path / "out"
    render_reports(_xss_build(store_build, tmp_path), out)
    doms = check_pages_in_browser(out, tmp_path)
    # the name reached the page as text: in the table cells and plotly's axis labels
    assert XSS_HTML in doms["basket"]
    assert "alert(1)" in doms["cross_sell"].split('id="lift-heatmap-chart"')[1]


def test_the_index_links_to_the_data_docs_when_the_gate_wrote_them(store_build, tmp_path):
    out = tmp_path / "out"
    render_reports(store_build["db"], out)
    assert "data_docs" not in (out / "index.html").read_text(encoding="utf-8")
    docs = out / "data_docs" / "index.html"
    docs.parent.mkdir()
    docs.write_text("<html></html>", encoding="utf-8")
    render_reports(store_build["db"], out)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="data_docs/index.html">Great Expectations Data Docs</a>' in index


def test_each_page_is_a_dbt_exposure_on_the_tables_it_reads(store_build):
    """dbt docs shows raw -> report lineage: one dashboard exposure per page, depending on
    the page's tables that are dbt models (all table-materialised)."""
    manifest = json.loads((store_build["work"] / "target" / "manifest.json").read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == {f"report_{page.slug}" for page in PAGES}
    for page in PAGES:
        exposure = exposures[f"report_{page.slug}"]
        assert exposure["type"] == "dashboard" and exposure["owner"]["name"]
        assert exposure["url"].endswith(f"/{page.slug}.html")
        models = {f"model.xsell.{source.split('.')[1]}" for source in page.sources}
        depends = set(exposure["depends_on"]["nodes"])
        # exactly the models the page reads
        assert depends == models & set(manifest["nodes"]), page.slug
        for node in exposure["depends_on"]["nodes"]:
            assert manifest["nodes"][node]["config"]["materialized"] == "table", node


def test_calibration_curves_show_the_test_split_only(rendered):
    """Each curve is one variant's test-split deciles of ml_restaurant_calibration, equal to
    the table's, in order of predicted probability; the takeaway weighs bins by receipts."""
    with duckdb.connect(str(rendered["db"]), read_only=True) as con:
        table = con.execute(
            "select variant, mean_predicted, observed_rate from ml.ml_restaurant_calibration "
            "where split = 'test' order by variant, mean_predicted"
        ).df()
        gap = con.execute(
            "select sum(receipts * abs(observed_rate - mean_predicted)) / sum(receipts) "
            "from ml.ml_restaurant_calibration where split = 'test'"
        ).fetchone()[0]
    assert table.variant.nunique() == 2
    for page, chart in (("restaurant", "restaurant-calibration"), ("models", "model-calibration")):
        curves = [t for t in figures(rendered["pages"][page])[chart]["data"]
                  if t["name"] != "Perfect calibration"]
        assert sorted(t["name"] for t in curves) == sorted(table.variant.unique())
        for trace in curves:
            want = table[table.variant == trace["name"]]
            np.testing.assert_allclose(values(trace["x"]).astype(float),
                                       want.mean_predicted * 100, rtol=1e-12)
            np.testing.assert_allclose(values(trace["y"]).astype(float),
                                       want.observed_rate * 100, rtol=1e-12)
        assert takeaways(rendered["pages"][page])[chart].startswith(
            f"Predictions are off by {gap * 100:.1f} percentage points on average on the test "
            "split"
        )
