"""The star schema in marts (fct_sales_lines, fct_receipts, dim_products, dim_stores,
dim_dates, dim_customers) against independent readings of the raw files and against the
revenue and cross-sell marts.

conftest.store_build (`xsell run` of a clean two-store synthetic store: dbt build with
every relationships test, the quality gate, publish) is only read here; one more dbt
invocation compiles the holiday macro, run over seven centuries against the revenue
forecast's rule. What the receipt fact leaves empty without prices or restaurant data is
a dbt unit test (models/marts/sales/_sales__unit_tests.yml).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from support import PROJECT_DIR

from xsell.dbt_runner import dbt_env
from xsell.ml.forecast import holiday_calendar

pytestmark = pytest.mark.dbt

HORIZON_DAYS = 30  # dbt var forecast_horizon_days (default)
DBT = str(Path(sys.executable).parent / "dbt")

# What a BI user writes: the line fact and one join per dimension.
STAR_QUERY = """
    select
        lines.store_id,
        lines.sold_date,
        products.category,
        customers.rfm_segment,
        dates.iso_week,
        lines.quantity > 0 as is_bought,
        sum(lines.revenue) as revenue,
        sum(lines.margin) as margin,
        sum(lines.quantity) as quantity,
        count(*) as lines
    from marts.fct_sales_lines as lines
    inner join marts.dim_products as products on lines.product_id = products.product_id
    inner join marts.dim_stores as stores on lines.store_id = stores.store_id
    inner join marts.dim_dates as dates on lines.sold_date = dates.date_day
    left join marts.dim_customers as customers on lines.customer_id = customers.customer_id
    group by all
"""


def query(build, sql: str, params=None) -> pd.DataFrame:
    with duckdb.connect(str(build["db"]), read_only=True) as con:
        return con.execute(sql, params or []).df()


@pytest.fixture(scope="module")
def raw(store_build) -> dict[str, pd.DataFrame]:
    lines = pd.read_parquet(store_build["raw"] / "transactions.parquet")
    lines["revenue"] = lines["quantity"] * lines["unit_price"]
    lines["sold_date"] = pd.to_datetime(lines["sold_at"]).dt.normalize()
    products = pd.read_parquet(store_build["raw"] / "products.parquet")
    orders = pd.read_parquet(store_build["raw"] / "restaurant_orders.parquet")
    return {"lines": lines, "products": products, "orders": orders}


@pytest.fixture(scope="module")
def star(store_build) -> pd.DataFrame:
    return query(store_build, STAR_QUERY)


def _close(a, b) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-9, atol=1e-6))


# --------------------------------------------------------------------------- grain and keys


def test_facts_and_dimensions_hold_every_line_receipt_product_store_and_day(store_build, raw):
    lines, products = raw["lines"], raw["products"]
    counts = query(store_build, """
        select
            (select count(*) from marts.fct_sales_lines) as sales_lines,
            (select count(*) from marts.fct_receipts) as receipts,
            (select count(distinct receipt_key) from marts.fct_sales_lines) as line_receipts,
            (select count(*) from marts.dim_products) as products,
            (select count(*) from marts.dim_stores) as stores,
            (select count(*) from marts.dim_dates) as dates,
            (select count(*) from staging.stg_pos__transactions) as staged_lines
    """).iloc[0]
    print(f"\nstar schema of the test store: {counts.to_dict()}")
    # the clean store stages every raw line
    assert counts["sales_lines"] == counts["staged_lines"] == len(lines)
    receipts = lines[["store_id", "receipt_id"]].drop_duplicates()
    assert counts["receipts"] == counts["line_receipts"] == len(receipts)
    assert counts["products"] == len(products)
    assert counts["stores"] == len(set(lines["store_id"]) | set(raw["orders"]["store_id"])) == 2
    first, last = lines["sold_date"].min(), lines["sold_date"].max()
    assert counts["dates"] == (last - first).days + 1 + HORIZON_DAYS

    # every foreign key finds its row (dbt's relationships tests say the same)
    orphans = query(store_build, """
        select
            count(*) filter (where receipts.receipt_key is null) as no_receipt,
            count(*) filter (where receipts.store_id is distinct from lines.store_id
                             or receipts.receipt_id is distinct from lines.receipt_id)
                as key_mismatch,
            count(*) filter (where lines.customer_id is not null
                             and customers.customer_id is null) as no_customer
        from marts.fct_sales_lines as lines
        left join marts.fct_receipts as receipts on lines.receipt_key = receipts.receipt_key
        left join marts.dim_customers as customers on lines.customer_id = customers.customer_id
    """).iloc[0]
    assert orphans.to_dict() == {"no_receipt": 0, "key_mismatch": 0, "no_customer": 0}


def test_line_fact_carries_each_raw_line_with_its_money(store_build, raw):
    fact = query(store_build, """
        select store_id, receipt_id, line_number, product_id, customer_id, quantity,
               unit_price, revenue, cost, margin, sold_date
        from marts.fct_sales_lines
    """)
    lines = raw["lines"]
    merged = fact.merge(lines, on=["store_id", "receipt_id", "line_number"], how="outer",
                        suffixes=("", "_raw"), indicator=True, validate="one_to_one")
    assert (merged["_merge"] == "both").all()
    assert (merged["product_id"] == merged["product_id_raw"]).all()
    assert (merged["quantity"] == merged["quantity_raw"]).all()
    assert _close(merged["revenue"], merged["revenue_raw"])
    assert (pd.to_datetime(merged["sold_date"]) == merged["sold_date_raw"]).all()
    costs = raw["products"].set_index("product_id")["unit_cost"]
    expected_cost = merged["quantity"] * merged["product_id"].map(costs)
    assert _close(merged["cost"].fillna(-1), expected_cost.fillna(-1))
    assert _close(merged["margin"].fillna(-1), (merged["revenue"] - expected_cost).fillna(-1))


# --------------------------------------------------------------------------- revenue


def test_revenue_by_store_and_day_equals_the_revenue_mix(store_build, star):
    by_day = star.groupby(["store_id", "sold_date"], as_index=False)[["revenue", "margin"]].sum()
    mix = query(store_build, """
        select store_id, sold_date, sum(revenue) as revenue, sum(margin) as margin
        from marts.fct_revenue_mix where revenue_stream != 'RESTAURANT'
        group by all
    """)
    for frame in (by_day, mix):
        frame["sold_date"] = pd.to_datetime(frame["sold_date"])
    merged = by_day.merge(mix, on=["store_id", "sold_date"], how="outer", indicator=True,
                          suffixes=("", "_mix"))
    assert (merged["_merge"] == "both").all()
    assert len(merged) == 2 * 180
    assert _close(merged["revenue"], merged["revenue_mix"])
    assert _close(merged["margin"], merged["margin_mix"])


def test_revenue_by_category_equals_the_raw_lines(star, raw):
    lines = raw["lines"].merge(raw["products"][["product_id", "category"]], on="product_id")
    expected = lines.groupby("category")["revenue"].sum().sort_index()
    actual = star.groupby("category")["revenue"].sum().sort_index()
    assert list(actual.index) == list(expected.index)
    assert len(actual) > 10
    assert _close(actual, expected)


def test_revenue_by_customer_segment_equals_the_customer_marts(store_build, star):
    """Members' purchases (positive lines) by RFM segment = fct_revenue_at_risk.revenue
    (every purchase is up to the as-of date, the last day, by default)."""
    bought = star[star["is_bought"] & star["rfm_segment"].notna()]
    actual = bought.groupby("rfm_segment")["revenue"].sum().sort_index()
    expected = query(store_build, """
        select rfm_segment, revenue from marts.fct_revenue_at_risk where customers > 0
    """).set_index("rfm_segment")["revenue"].sort_index()
    assert list(actual.index) == list(expected.index)
    assert len(actual) >= 5
    assert _close(actual, expected)
    # anonymous lines have no segment; every member line has one
    without_segment = star[star["rfm_segment"].isna()]
    assert without_segment["lines"].sum() == query(store_build, """
        select count(*) as n from marts.fct_sales_lines where customer_id is null
    """)["n"].iloc[0]


# --------------------------------------------------------------------------- receipts


def test_receipt_fact_equals_the_cross_sell_and_coverage_marts_per_store(store_build):
    receipts = query(store_build, """
        select
            store_id,
            count(*) filter (where is_purchase) as purchase_receipts,
            sum(revenue) filter (where is_purchase) as revenue,
            count(*) filter (where has_anchor) as anchor_receipts,
            count(*) filter (where has_anchor and has_addon_attached) as attached_receipts,
            count(has_restaurant_visit) as restaurant_receipts,
            count(*) filter (where has_restaurant_visit) as converted_receipts,
            sum(restaurant_amount) as restaurant_revenue
        from marts.fct_receipts
        group by store_id
    """).set_index("store_id").sort_index()
    coverage = query(store_build, """
        select store_id, purchase_receipts, revenue from marts.fct_customer_coverage
        where store_id != 'ALL'
    """).set_index("store_id").sort_index()
    attach = query(store_build, """
        select store_id, anchor_receipts, attached_receipts from marts.fct_attach_rates_overall
    """).set_index("store_id").sort_index()
    restaurant = query(store_build, """
        select store_id, sum(receipts) as receipts, sum(converted_receipts) as converted,
               sum(restaurant_revenue) as revenue
        from marts.fct_restaurant_conversion_by_group group by store_id
    """).set_index("store_id").sort_index()
    lift = query(store_build, """
        select distinct store_id, all_receipts from marts.fct_addon_lift
    """).set_index("store_id").sort_index()

    assert list(receipts.index) == ["S01", "S02"]
    assert (receipts["purchase_receipts"] == coverage["purchase_receipts"]).all()
    assert (receipts["purchase_receipts"] == lift["all_receipts"]).all()
    assert _close(receipts["revenue"], coverage["revenue"])
    assert (receipts["anchor_receipts"] == attach["anchor_receipts"]).all()
    assert (receipts["attached_receipts"] == attach["attached_receipts"]).all()
    assert (receipts["restaurant_receipts"] == restaurant["receipts"]).all()
    assert (receipts["converted_receipts"] == restaurant["converted"]).all()
    assert _close(receipts["restaurant_revenue"], restaurant["revenue"])
    assert (receipts["converted_receipts"] > 100).all()


def test_restaurant_visit_is_unknown_where_it_cannot_be_linked(store_build):
    flags = query(store_build, """
        select is_member and is_purchase as linkable, has_restaurant_visit, count(*) as n
        from marts.fct_receipts group by all
    """)
    unknown = flags[flags["has_restaurant_visit"].isna()]
    assert not unknown["linkable"].any()
    assert flags[~flags["linkable"]]["has_restaurant_visit"].isna().all()
    assert flags[flags["linkable"]]["has_restaurant_visit"].notna().all()


# --------------------------------------------------------------------------- dimensions


def test_dim_dates_is_the_iso_calendar_of_the_data_and_the_forecast_horizon(store_build, raw):
    dates = query(store_build, "select * from marts.dim_dates order by date_day")
    days = pd.to_datetime(dates["date_day"]).dt.date
    first, last = raw["lines"]["sold_date"].min().date(), raw["lines"]["sold_date"].max().date()
    assert days.iloc[0] == first
    assert days.iloc[-1] == last + dt.timedelta(days=HORIZON_DAYS)
    assert (np.diff(pd.to_datetime(dates["date_day"]).to_numpy()) == np.timedelta64(1, "D")).all()
    iso = [day.isocalendar() for day in days]
    assert dates["iso_year"].tolist() == [i.year for i in iso]
    assert dates["iso_week"].tolist() == [i.week for i in iso]
    assert dates["iso_weekday"].tolist() == [i.weekday for i in iso]
    assert dates["weekday_name"].tolist() == [day.strftime("%A") for day in days]
    assert dates["month"].tolist() == [day.month for day in days]
    assert dates["month_name"].tolist() == [day.strftime("%B") for day in days]
    assert dates["quarter"].tolist() == [(day.month - 1) // 3 + 1 for day in days]
    assert (pd.to_datetime(dates["month_start_date"]).dt.day == 1).all()
    assert (pd.to_datetime(dates["week_start_date"]).dt.day_of_week == 0).all()
    assert dates["is_weekend"].tolist() == [i.weekday >= 6 for i in iso]
    assert dates["is_forecast_horizon"].tolist() == [day > last for day in days]

    holidays = holiday_calendar(days.iloc[0], days.iloc[-1])
    names = dict(zip(holidays["date"].dt.date, holidays["holiday_name"], strict=True))
    assert dates["holiday_name"].fillna("").tolist() == [names.get(day, "") for day in days]
    assert dates["is_holiday"].tolist() == [day in names for day in days]
    # 2025: New Year's Day, Good Friday (18 April) and Easter Monday (21 April)
    assert sorted(names.values()) == ["Easter Monday", "Good Friday", "New Year's Day"]


def test_dim_dates_flags_the_holidays_the_forecast_used(store_build):
    """ml_revenue_forecast names the holiday of each forecast day; dim_dates names the same."""
    joined = query(store_build, """
        select forecast.forecast_date, forecast.holiday_name as forecast_holiday,
               dates.holiday_name, dates.is_forecast_horizon
        from ml.ml_revenue_forecast as forecast
        left join marts.dim_dates as dates on forecast.forecast_date = dates.date_day
    """)
    assert len(joined) == 2 * HORIZON_DAYS
    assert joined["is_forecast_horizon"].eq(True).all()  # every forecast day has its row
    assert (joined["forecast_holiday"].fillna("") == joined["holiday_name"].fillna("")).all()


def test_holiday_macro_equals_the_forecast_rule_from_1583_to_2299(tmp_path):
    """The one rule, twice written: macro holiday_dates (SQL, every engine) and
    xsell.ml.forecast.holiday_calendar (the forecast). Compiled by dbt, run on DuckDB."""
    inline = (
        "with years as (select cast(range as integer) as year from range(1583, 2300)) "
        "{{ xsell.holiday_dates('years') }}"
    )
    env = dbt_env(tmp_path / "raw", "parquet", tmp_path / "compile.duckdb")
    env.update({"DBT_LOG_PATH": str(tmp_path / "logs")})
    done = subprocess.run(
        [DBT, "compile", "--quiet", "--output", "json", "--inline", inline,
         "--target-path", str(tmp_path / "target")],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sql = json.loads(done.stdout)["compiled"]
    with duckdb.connect() as con:
        got = con.execute(f"select * from ({sql}) order by holiday_date").df()
    expected = holiday_calendar("1583-01-01", "2299-12-31")
    assert len(got) == len(expected) == 717 * 7
    assert (pd.to_datetime(got["holiday_date"]) == expected["date"]).all()
    assert (got["holiday_name"] == expected["holiday_name"]).all()


def test_dim_products_price_bands_are_fifths_of_the_median_prices(store_build, raw):
    products = query(store_build, "select * from marts.dim_products")
    lines = raw["lines"]
    medians = lines[lines["quantity"] > 0].groupby("product_id")["unit_price"].median()
    products["expected_median"] = products["product_id"].map(medians)
    assert _close(products["median_unit_price"].fillna(-1), products["expected_median"].fillna(-1))
    edges = np.quantile(medians.to_numpy(), [0.2, 0.4, 0.6, 0.8])  # linear = quantile_cont
    expected = products["expected_median"].map(
        lambda price: np.nan if pd.isna(price) else 1 + int(np.sum(price > edges))
    )
    assert (products["price_band"].fillna(0) == expected.fillna(0)).all()
    shares = products["price_band"].value_counts(normalize=True)
    assert set(shares.index) == {1, 2, 3, 4, 5}
    assert shares.between(0.15, 0.25).all()
    # the role flags are the classification's
    assert (products["is_anchor"] == (products["is_merchandise"]
                                      & (products["size_class"] == "LARGE"))).all()
    assert (products["is_addon"] == (products["is_merchandise"]
                                     & (products["size_class"] == "SMALL"))).all()
