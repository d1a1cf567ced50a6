"""The report pages: which marts each reads, and its charts, tables and takeaways.

Every chart has a title, axes with units, and a one-line takeaway computed from the
data it shows. A chart whose tables are absent or empty becomes a notice that says
so (render.NoData), and the rest of the page still renders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from xsell.reports.render import (
    MONEY,
    Block,
    Chart,
    Data,
    NoData,
    Page,
    Table,
    build_blocks,
)

STREAM_ORDER = ["ANCHOR", "ADDON", "OTHER", "RESTAURANT", "RETURNS"]
STREAM_LABELS = {
    "ANCHOR": "Anchors", "ADDON": "Add-ons", "OTHER": "Other goods",
    "RESTAURANT": "Restaurant", "RETURNS": "Returns",
}
WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
SCATTER_SAMPLE = 3000
# Receipts (or baskets) a rate must rest on before a takeaway names it: a rate from a
# handful of receipts (100 % of 2) is noise, not a finding. The charts and tables still
# show every figure.
MIN_EVIDENCE = 30


def pct(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value * 100:.{digits}f}%"


def money(value: float) -> str:
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:,.2f} M {MONEY}"
    if size >= 1e4:
        return f"{value / 1e3:,.0f} k {MONEY}"
    return f"{value:,.2f} {MONEY}"


def num(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _axes(fig: go.Figure, x: str, y: str) -> go.Figure:
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def _list(values) -> list:
    """Plain Python values (no numpy typed arrays), None for missing."""
    return [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in values]


# --------------------------------------------------------------------------- 1 revenue


def revenue_by_stream(data: Data) -> Block:
    frame = data.frame(
        """
        select revenue_stream, sum(revenue) as revenue, sum(margin) as margin,
            sum(sum(case when revenue_stream <> 'RETURNS' then revenue end)) over () as gross
        from marts.fct_revenue_mix group by revenue_stream
        """,
        "marts.fct_revenue_mix",
    )
    frame["order"] = frame.revenue_stream.map({s: i for i, s in enumerate(STREAM_ORDER)})
    frame = frame.sort_values("order", na_position="last")
    labels = [STREAM_LABELS.get(s, s) for s in frame.revenue_stream]
    fig = go.Figure([
        go.Bar(name="Revenue", x=labels, y=_list(frame.revenue)),
        go.Bar(name="Margin (where cost is known)", x=labels, y=_list(frame.margin)),
    ])
    fig.update_layout(barmode="group")
    _axes(fig, "Revenue stream", f"Amount ({MONEY})")
    shares = dict(zip(frame.revenue_stream, frame.revenue / frame.gross, strict=True))
    parts = [
        f"{STREAM_LABELS[s]} bring {pct(shares[s])} of gross revenue"
        for s in ("ANCHOR", "ADDON") if s in shares
    ]
    if "RETURNS" in shares:
        parts.append(f"returns take back {pct(-shares['RETURNS'], 1)}")
    return Chart(
        "revenue-by-stream", "Revenue and margin by stream", fig,
        ("; ".join(parts) or "Revenue by stream") + ".",
        note="Gross revenue is every stream except returns; returns are negative.",
    )


def revenue_daily(data: Data) -> Block:
    frame = data.frame(
        """
        select sold_date, revenue_stream, sum(revenue) as revenue
        from marts.fct_revenue_mix group by all order by sold_date
        """,
        "marts.fct_revenue_mix",
    )
    fig = go.Figure()
    streams = [s for s in STREAM_ORDER if s in set(frame.revenue_stream)]
    streams += sorted(set(frame.revenue_stream) - set(streams))
    for stream in streams:
        part = frame[frame.revenue_stream == stream]
        fig.add_trace(go.Scatter(
            name=STREAM_LABELS.get(stream, stream), mode="lines",
            x=[d.isoformat() for d in pd.to_datetime(part.sold_date).dt.date],
            y=_list(part.revenue),
        ))
    _axes(fig, "Day", f"Revenue per day ({MONEY})")
    daily = frame.groupby("sold_date").revenue.sum()
    best = daily.idxmax()
    takeaway = (
        f"Net revenue averaged {money(daily.mean())} a day over {len(daily)} days; "
        f"the best day was {pd.Timestamp(best).date().isoformat()} with {money(daily.max())}."
    )
    return Chart("revenue-daily", "Daily revenue by stream", fig, takeaway)


def margin_rate(data: Data) -> Block:
    frame = data.frame(
        """
        select revenue_stream,
            sum(margin) / nullif(sum(revenue * cost_coverage), 0) as margin_rate,
            sum(revenue * cost_coverage) / nullif(sum(revenue), 0) as cost_coverage
        from marts.fct_revenue_mix
        where revenue_stream <> 'RETURNS'
        group by revenue_stream
        having sum(margin) is not null and sum(revenue * cost_coverage) <> 0
        """,
        "marts.fct_revenue_mix",
        empty="No data: no revenue stream has known unit costs (products.unit_cost), so "
        "there is no margin to show.",
    )
    frame = frame.sort_values("margin_rate", ascending=False)
    labels = [STREAM_LABELS.get(s, s) for s in frame.revenue_stream]
    fig = go.Figure(go.Bar(
        x=labels, y=_list(frame.margin_rate * 100),
        customdata=_list(frame.cost_coverage * 100),
        hovertemplate="%{x}: %{y:.1f}% margin (cost known for %{customdata:.0f}% of revenue)"
        "<extra></extra>",
    ))
    _axes(fig, "Revenue stream", "Margin (% of revenue with a known cost)")
    top = frame.iloc[0]
    others = ", ".join(
        f"{STREAM_LABELS.get(s, s).lower()} {pct(r)}"
        for s, r in zip(frame.revenue_stream[1:], frame.margin_rate[1:], strict=True)
    )
    return Chart(
        "margin-rate", "Margin rate by stream", fig,
        f"{STREAM_LABELS.get(top.revenue_stream, top.revenue_stream)} earn the highest margin: "
        f"{pct(top.margin_rate)} of revenue" + (f" ({others})." if others else "."),
    )


# --------------------------------------------------------------------------- 2 cross-sell


def lift_heatmap(data: Data) -> Block:
    frame = data.frame(
        # over all stores: the lift of the summed counts (a lift is not additive)
        """
        select anchor_family, addon_category,
            (cast(sum(joint_receipts) as double) / sum(anchor_receipts))
                / (cast(sum(addon_receipts) as double) / sum(all_receipts)) as lift,
            sum(joint_receipts) as joint_receipts,
            bool_and(is_significant) as is_significant
        from marts.fct_addon_lift group by anchor_family, addon_category
        """,
        "marts.fct_addon_lift",
    )
    every_pair = frame
    frame, note = _largest_cells(data, frame)
    anchors = sorted(frame.anchor_family.unique())
    addons = sorted(frame.addon_category.unique())
    grid = frame.pivot(index="anchor_family", columns="addon_category", values="lift")
    grid = grid.reindex(index=anchors, columns=addons)
    counts = frame.pivot(index="anchor_family", columns="addon_category", values="joint_receipts")
    counts = counts.reindex(index=anchors, columns=addons)
    fig = go.Figure(go.Heatmap(
        z=[_list(row) for row in grid.to_numpy()],
        x=addons, y=anchors,
        customdata=[_list(row) for row in counts.to_numpy()],
        colorscale="RdBu", zmid=1, colorbar={"title": {"text": "lift (×)"}},
        hovertemplate="%{y} → %{x}: lift %{z:.2f}× (%{customdata} joint receipts)<extra></extra>",
    ))
    _axes(fig, "Add-on category", "Anchor family")
    significant = every_pair[every_pair.is_significant.fillna(False).astype(bool)]
    stores = data.con.execute(
        "select count(distinct store_id) from marts.fct_addon_lift").fetchone()[0]
    where = "" if stores == 1 else f" in each of the {stores} stores"
    if significant.empty:
        # no pull is established: naming the largest observed lift would state noise
        takeaway = (f"No anchor × add-on pair is significant{where} on this data (at least "
                    "lift_min_count joint receipts and a 95 % interval that excludes 1).")
    else:
        best = significant.sort_values("lift").iloc[-1]
        takeaway = (
            f"{best.anchor_family} buyers take {best.addon_category} {best.lift:.1f}× as "
            f"often as the average shopper; {len(significant)} of {len(every_pair)} pairs are "
            f"significant{where}."
        )
    return Chart("lift-heatmap", "Add-on lift by anchor family and add-on category (×)", fig,
                 takeaway, note="Lift = P(add-on | anchor) / P(add-on) over all purchase "
                 "receipts; 1 = no pull." + note)


HEATMAP_FAMILIES, HEATMAP_CATEGORIES = 20, 30


def _largest_cells(data: Data, frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The pairs of the largest anchor families and add-on categories (by receipts), so a
    catalogue of thousands of categories still gives a readable heatmap; the note says
    how many were left out (the mart holds them all)."""
    sizes = data.con.execute(
        "select 'family' as kind, anchor_family as name, sum(anchor_receipts) as receipts "
        "from (select distinct store_id, anchor_family, anchor_receipts "
        "from marts.fct_addon_lift) group by anchor_family "
        "union all select 'category', addon_category, sum(addon_receipts) "
        "from (select distinct store_id, addon_category, addon_receipts "
        "from marts.fct_addon_lift) group by addon_category "
        "order by kind, receipts desc, name"
    ).df()
    families = sizes[sizes.kind == "family"].name.head(HEATMAP_FAMILIES)
    categories = sizes[sizes.kind == "category"].name.head(HEATMAP_CATEGORIES)
    total_families = (sizes.kind == "family").sum()
    total_categories = (sizes.kind == "category").sum()
    if total_families <= HEATMAP_FAMILIES and total_categories <= HEATMAP_CATEGORIES:
        return frame, ""
    kept = frame[frame.anchor_family.isin(families) & frame.addon_category.isin(categories)]
    return kept, (f" Shown: the {len(families)} largest of {total_families} anchor families and "
                  f"the {len(categories)} largest of {total_categories} add-on categories "
                  "(marts.fct_addon_lift holds every pair).")


def attach_by_family(data: Data) -> Block:
    family = data.frame(
        # over all stores: the rates of the summed counts
        """
        select anchor_family,
            cast(sum(attached_receipts) as double) / sum(anchor_receipts) as attach_rate,
            cast(sum(two_plus_addon_receipts) as double) / sum(anchor_receipts)
                as two_plus_addon_rate,
            sum(anchor_receipts) as anchor_receipts
        from marts.fct_attach_rates group by anchor_family
        order by attach_rate desc, anchor_family
        """,
        "marts.fct_attach_rates",
    )
    overall = data.con.execute(
        "select cast(sum(attached_receipts) as double) / sum(anchor_receipts) "
        "from marts.fct_attach_rates_overall"
    ).fetchone()[0]
    fig = go.Figure([
        go.Bar(name="Attach rate", x=list(family.anchor_family), y=_list(family.attach_rate * 100)),
        go.Bar(name="Two or more add-ons", x=list(family.anchor_family),
               y=_list(family.two_plus_addon_rate * 100)),
    ])
    fig.update_layout(barmode="group")
    _axes(fig, "Anchor family", "Anchor receipts with add-ons (%)")
    supported = family[family.anchor_receipts >= MIN_EVIDENCE]
    anchor_receipts = int(family.anchor_receipts.sum())
    if supported.empty:
        takeaway = (f"Too few anchor receipts to state an attach rate: {anchor_receipts} in "
                    f"all, the largest family has {int(family.anchor_receipts.max())} (a rate "
                    f"needs at least {MIN_EVIDENCE}).")
    else:
        top = supported.iloc[0]
        tail = (f"; overall {pct(overall)}"
                if overall is not None and anchor_receipts >= MIN_EVIDENCE else "")
        left_out = len(family) - len(supported)
        takeaway = (f"{top.anchor_family} anchors pull an add-on on {pct(top.attach_rate)} of "
                    f"receipts{tail}" + (f" ({left_out} famil{'y' if left_out == 1 else 'ies'} "
                    f"with fewer than {MIN_EVIDENCE} anchor receipts not ranked)."
                    if left_out else "."))
    return Chart("attach-by-family", "Attach rate by anchor family", fig, takeaway)


def attach_over_time(data: Data) -> Block:
    frame = data.frame(
        """
        select date_trunc('week', sold_date) as week, anchor_family,
            sum(attached_receipts) / sum(anchor_receipts) as attach_rate,
            sum(anchor_receipts) as anchor_receipts
        from marts.fct_attach_rates_daily
        group by all having sum(anchor_receipts) > 0 order by week
        """,
        "marts.fct_attach_rates_daily",
    )
    fig = go.Figure()
    for family in sorted(frame.anchor_family.unique()):
        part = frame[frame.anchor_family == family]
        fig.add_trace(go.Scatter(
            name=family, mode="lines+markers",
            x=[d.isoformat() for d in pd.to_datetime(part.week).dt.date],
            y=_list(part.attach_rate * 100),
        ))
    _axes(fig, "Week (starting Monday)", "Attach rate (% of anchor receipts)")
    weeks = (frame.assign(attached=frame.attach_rate * frame.anchor_receipts)
             .groupby("week")[["attached", "anchor_receipts"]].sum())
    supported = weeks[weeks.anchor_receipts >= MIN_EVIDENCE]
    weekly = supported.attached / supported.anchor_receipts
    if weekly.empty:
        takeaway = (f"No week has {MIN_EVIDENCE} anchor receipts or more (the busiest has "
                    f"{int(weeks.anchor_receipts.max())}): too few to compare weeks.")
    else:
        left_out = len(weeks) - len(supported)
        takeaway = (f"Across all families the weekly attach rate ranged from {pct(weekly.min())} "
                    f"to {pct(weekly.max())} over {len(weekly)} weeks"
                    + (f" with at least {MIN_EVIDENCE} anchor receipts ({left_out} quieter "
                       f"week{'s' if left_out != 1 else ''} left out)." if left_out else "."))
    return Chart("attach-over-time", "Weekly attach rate by anchor family", fig, takeaway)


# --------------------------------------------------------------------------- 3 impulse


def impulse_heatmap(data: Data) -> Block:
    frame = data.frame(
        "select sold_weekday, sold_hour, impulse_rate, receipts, impulse_receipts "
        "from marts.fct_impulse_by_hour",
        "marts.fct_impulse_by_hour",
    )
    hours = sorted(frame.sold_hour.unique())
    days = sorted(frame.sold_weekday.unique())
    grid = frame.pivot(index="sold_weekday", columns="sold_hour", values="impulse_rate")
    grid = grid.reindex(index=days, columns=hours) * 100
    fig = go.Figure(go.Heatmap(
        z=[_list(row) for row in grid.to_numpy()],
        x=[f"{h:02d}:00" for h in hours], y=[WEEKDAYS[d % 7] for d in days],
        colorscale="YlOrRd", colorbar={"title": {"text": "% of receipts"}},
        hovertemplate="%{y} %{x}: %{z:.1f}% of receipts<extra></extra>",
    ))
    _axes(fig, "Hour of day (store time)", "Weekday")
    busy = frame[frame.receipts >= max(30, frame.receipts.quantile(0.1))]
    peak = (busy if not busy.empty else frame).sort_values("impulse_rate").iloc[-1]
    if busy.empty or busy.impulse_rate.max() == busy.impulse_rate.min():
        # one hour, too few receipts per hour or the same rate everywhere: no peak to name
        takeaway = (f"{pct(frame.impulse_receipts.sum() / frame.receipts.sum())} of receipts "
                    "carry an impulse item; no hour stands out on this data.")
    else:
        takeaway = (f"Impulse buying peaks on {WEEKDAYS[int(peak.sold_weekday) % 7]}s at "
                    f"{int(peak.sold_hour):02d}:00: {pct(peak.impulse_rate)} of receipts "
                    "carry an impulse item.")
    return Chart(
        "impulse-heatmap", "Share of receipts with an impulse item by weekday and hour", fig,
        takeaway,
        note="Impulse categories are flagged in seeds/category_attributes.csv. Weekday 0 = "
        "Sunday.",
    )


def impulse_anchor(data: Data) -> Block:
    frame = data.frame(
        """
        select sold_hour, sum(receipts) as receipts,
            sum(impulse_receipts) / sum(receipts) as impulse_rate,
            sum(anchor_impulse_receipts) / nullif(sum(anchor_receipts), 0) as with_anchor,
            sum(impulse_receipts - anchor_impulse_receipts)
                / nullif(sum(receipts - anchor_receipts), 0) as without_anchor
        from marts.fct_impulse_by_hour group by sold_hour order by sold_hour
        """,
        "marts.fct_impulse_by_hour",
    )
    hours = [f"{int(h):02d}:00" for h in frame.sold_hour]
    fig = go.Figure([
        go.Scatter(name="All receipts", x=hours, y=_list(frame.impulse_rate * 100)),
        go.Scatter(name="With an anchor", x=hours, y=_list(frame.with_anchor * 100)),
        go.Scatter(name="Without an anchor", x=hours, y=_list(frame.without_anchor * 100)),
    ])
    _axes(fig, "Hour of day (store time)", "Receipts with an impulse item (%)")
    with_anchor, without_anchor = data.con.execute(
        """
        select sum(anchor_impulse_receipts) / nullif(sum(anchor_receipts), 0),
            sum(impulse_receipts - anchor_impulse_receipts)
                / nullif(sum(receipts - anchor_receipts), 0)
        from marts.fct_impulse_by_hour
        """
    ).fetchone()
    if with_anchor is None or without_anchor is None:
        group = "with" if without_anchor is None else "without"
        takeaway = (f"Every receipt is {group} an anchor: there is nothing to compare "
                    "with and without one.")
    else:
        takeaway = (f"Receipts with an anchor carry an impulse item {pct(with_anchor)} of "
                    f"the time, against {pct(without_anchor)} without one.")
    return Chart(
        "impulse-by-hour", "Impulse share by hour, with and without an anchor", fig, takeaway,
    )


# --------------------------------------------------------------------------- 4 restaurant


def restaurant_conversion(data: Data) -> Block:
    frame = data.frame(
        # over all stores: the rates of the summed counts
        """
        select anchor_family,
            cast(sum(converted_receipts) as double) / sum(receipts) as conversion_rate,
            sum(receipts) as receipts
        from marts.fct_restaurant_conversion group by anchor_family
        order by anchor_family = 'NO_ANCHOR', conversion_rate desc, anchor_family
        """,
        "marts.fct_restaurant_conversion",
    )
    fig = go.Figure(go.Bar(
        x=list(frame.anchor_family), y=_list(frame.conversion_rate * 100),
        customdata=_list(frame.receipts),
        hovertemplate="%{x}: %{y:.1f}% of %{customdata} member receipts<extra></extra>",
    ))
    _axes(fig, "Anchor family (NO_ANCHOR = receipts without one)",
          "Same-day restaurant visits (% of member receipts)")
    groups = data.con.execute(
        "select shopper_group, cast(sum(converted_receipts) as double) / sum(receipts) "
        "from marts.fct_restaurant_conversion_by_group group by shopper_group"
    ).fetchall()
    rates = dict(groups)
    top = frame[frame.anchor_family != "NO_ANCHOR"]
    if "ANY_ANCHOR" in rates and "NO_ANCHOR" in rates:
        takeaway = (
            f"Anchor shoppers eat at the restaurant the same day {pct(rates['ANY_ANCHOR'])} "
            f"of the time, against {pct(rates['NO_ANCHOR'])} for other members"
        )
        if not top.empty:
            takeaway += f"; {top.anchor_family.iloc[0]} buyers most often " \
                f"({pct(top.conversion_rate.iloc[0])})"
    else:
        row = frame.iloc[0]
        takeaway = f"{row.anchor_family} receipts convert best ({pct(row.conversion_rate)})"
    return Chart("restaurant-conversion", "Same-day restaurant conversion by anchor family",
                 fig, takeaway + ".")


def restaurant_timing(data: Data) -> Block:
    frame = data.frame(
        """
        select shopper_group, bucket_order, timing_bucket, visits, visit_share
        from marts.fct_restaurant_timing order by bucket_order
        """,
        "marts.fct_restaurant_timing",
    )
    buckets = (frame.drop_duplicates("bucket_order").sort_values("bucket_order").timing_bucket)
    fig = go.Figure()
    for group in sorted(frame.shopper_group.unique()):
        part = frame[frame.shopper_group == group].set_index("timing_bucket")
        part = part.reindex(list(buckets))
        fig.add_trace(go.Bar(name=group, x=list(buckets), y=_list(part.visit_share * 100)))
    fig.update_layout(barmode="group")
    _axes(fig, "Restaurant visit relative to checkout", "Visits (% of the group's visits)")
    anchor = frame[frame.shopper_group == "ANY_ANCHOR"]
    focus = anchor if not anchor.empty else frame
    after = focus[focus.timing_bucket.str.contains("after")].visit_share.sum()
    top = focus.sort_values("visit_share").iloc[-1]
    return Chart(
        "restaurant-timing", "When the restaurant visit happens", fig,
        f"{pct(after)} of {focus.shopper_group.iloc[0]} restaurant visits come after checkout; "
        f"the most common slot is '{top.timing_bucket}' ({pct(top.visit_share)}).",
    )


def restaurant_calibration(data: Data) -> Block:
    table = "ml.ml_restaurant_calibration"
    data.require(table)
    return calibration_chart(data, table, "restaurant-calibration",
                             "Restaurant propensity model: calibration")


def calibration_chart(data: Data, table: str, block_id: str, title: str) -> Block:
    columns = set(data.columns(table))
    if not {"mean_predicted", "observed_rate"} <= columns:
        raise NoData(f"No data: {table} has no mean_predicted / observed_rate columns.")
    group = next((c for c in ("variant", "model", "segment") if c in columns), None)
    frame = data.frame(f"select * from {table}", table)
    split_note = ""
    if "split" in columns and frame["split"].nunique() == 1:
        split_note = f" on the {frame['split'].iloc[0]} split"
    elif "split" in columns:  # one curve per variant on the holdout, never splits mixed
        frame = frame[frame["split"] == "test"]
        split_note = " on the test split"
    fig = go.Figure(go.Scatter(
        name="Perfect calibration", x=[0, 100], y=[0, 100], mode="lines",
        line={"dash": "dot", "color": "grey"},
    ))
    parts = [(str(k), g) for k, g in frame.groupby(group)] if group else [("model", frame)]
    for name, part in parts:
        part = part.sort_values("mean_predicted")
        fig.add_trace(go.Scatter(
            name=name, mode="lines+markers", x=_list(part.mean_predicted * 100),
            y=_list(part.observed_rate * 100),
        ))
    _axes(fig, "Mean predicted probability (%)", "Observed rate (%)")
    size = next((c for c in ("receipts", "rows") if c in frame), None)
    weights = frame[size] if size else pd.Series(1.0, index=frame.index)
    gap = (weights * (frame.observed_rate - frame.mean_predicted).abs()).sum() / weights.sum()
    return Chart(block_id, title, fig,
                 f"Predictions are off by {gap * 100:.1f} percentage points on average"
                 f"{split_note} (weighted by bin size).")


# --------------------------------------------------------------------------- 5 customers


def rfm_segments(data: Data) -> Block:
    frame = data.frame(
        """
        select rfm_segment, count(*) as customers, sum(monetary) as revenue
        from marts.fct_customer_rfm group by rfm_segment order by revenue desc
        """,
        "marts.fct_customer_rfm",
    )
    frame["customer_share"] = frame.customers / frame.customers.sum()
    frame["revenue_share"] = frame.revenue / frame.revenue.sum()
    fig = go.Figure([
        go.Bar(name="Customers", x=list(frame.rfm_segment), y=_list(frame.customer_share * 100)),
        go.Bar(name="Revenue", x=list(frame.rfm_segment), y=_list(frame.revenue_share * 100)),
    ])
    fig.update_layout(barmode="group")
    _axes(fig, "RFM segment", "Share of members (%)")
    top = frame.iloc[0]
    return Chart(
        "rfm-segments", "RFM segments: customers and revenue", fig,
        f"{top.rfm_segment} are {pct(top.customer_share)} of customers but bring "
        f"{pct(top.revenue_share)} of member revenue.",
    )


def cohort_heatmap(data: Data) -> Block:
    frame = data.frame(
        """
        select cohort_month, months_since_first_purchase as month, retention_rate,
            cohort_customers, is_partial_month
        from marts.fct_cohort_retention order by cohort_month, month
        """,
        "marts.fct_cohort_retention",
    )
    frame["cohort"] = [d.strftime("%Y-%m") for d in pd.to_datetime(frame.cohort_month)]
    cohorts = sorted(frame.cohort.unique())
    months = sorted(frame.month.unique())
    grid = frame.pivot(index="cohort", columns="month", values="retention_rate")
    grid = grid.reindex(index=cohorts, columns=months) * 100
    fig = go.Figure(go.Heatmap(
        z=[_list(row) for row in grid.to_numpy()], x=[int(m) for m in months], y=cohorts,
        colorscale="Blues", colorbar={"title": {"text": "% active"}},
        hovertemplate="cohort %{y}, month %{x}: %{z:.1f}% active<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    _axes(fig, "Months since first purchase", "Cohort (month of first purchase)")
    first = frame[(frame.month == 1) & ~frame.is_partial_month.fillna(False).astype(bool)]
    if first.empty:
        takeaway = f"{len(cohorts)} monthly cohorts; none has a complete month 1 yet."
    else:
        rate = (first.retention_rate * first.cohort_customers).sum() / first.cohort_customers.sum()
        takeaway = (
            f"{pct(rate)} of a cohort buys again in the month after its first purchase "
            f"(customer-weighted over {len(first)} cohorts)."
        )
    return Chart("cohort-retention", "Cohort retention by month since first purchase", fig,
                 takeaway, note="Month 0 is the month of first purchase (100%); the as-of "
                 "month may be partial.")


def clv_distribution(data: Data) -> Block:
    values = data.frame(
        "select expected_discounted_value as value, horizon_days "
        "from ml.ml_customer_lifetime_value where expected_discounted_value is not null",
        "ml.ml_customer_lifetime_value",
        empty="No value in money: the spend model (Gamma-Gamma) could not be fitted on this "
        "data (no prices, or too little repeat spend), so ml_customer_lifetime_value holds "
        "expected purchases only.",
    )
    horizon = int(values.horizon_days.iloc[0])
    value = values.value.to_numpy(dtype=float)
    cap = float(np.quantile(value, 0.99))
    counts, edges = np.histogram(np.clip(value, None, cap), bins=40)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(
        x=_list(centres), y=_list(counts), width=float(edges[1] - edges[0]),
        hovertemplate="around %{x:,.0f}: %{y} customers<extra></extra>",
    ))
    _axes(fig, f"Expected {horizon}-day value, discounted ({MONEY}; top 1% in the last bar)",
          "Customers")
    ordered = np.sort(value)[::-1]
    top = ordered[: max(1, len(ordered) // 10)].sum() / ordered.sum() if ordered.sum() else 0
    return Chart(
        "clv-distribution", f"Customer lifetime value over the next {horizon} days", fig,
        f"The top 10% of {len(value):,} customers hold {pct(top)} of the expected value of "
        f"{money(ordered.sum())}; the median customer is worth {money(float(np.median(value)))}.",
    )


def revenue_at_risk(data: Data) -> Block:
    frame = data.frame(
        """
        select rfm_segment, is_lapsing, revenue, revenue_at_risk, opportunity_gap,
            expected_discounted_value
        from marts.fct_revenue_at_risk order by revenue_at_risk desc, opportunity_gap desc
        """,
        "marts.fct_revenue_at_risk",
    )
    fig = go.Figure([
        go.Bar(name="Revenue at risk (lapsing segments)", x=list(frame.rfm_segment),
               y=_list(frame.revenue_at_risk)),
        go.Bar(name="Opportunity gap", x=list(frame.rfm_segment),
               y=_list(frame.opportunity_gap)),
    ])
    fig.update_layout(barmode="group")
    _axes(fig, "RFM segment", f"Amount ({MONEY})")
    at_risk = frame.revenue_at_risk.sum()
    share = at_risk / frame.revenue.sum() if frame.revenue.sum() else 0
    top = frame.iloc[0]
    return Chart(
        "revenue-at-risk", "Revenue at risk and opportunity gap by segment", fig,
        f"Lapsing segments hold {money(at_risk)} of past revenue ({pct(share)} of member "
        f"revenue); the largest is {top.rfm_segment} with {money(top.revenue_at_risk)}.",
    )


def segment_scatter(data: Data) -> Block:
    frame = data.frame(
        "select customer_id, segment_id, segment_name, pca_1, pca_2 "
        "from ml.ml_customer_segments where pca_1 is not null order by customer_id",
        "ml.ml_customer_segments",
    )
    total = len(frame)
    sample = frame.sample(n=SCATTER_SAMPLE, random_state=0) if total > SCATTER_SAMPLE else frame
    fig = go.Figure()
    for (segment_id, name), part in sample.groupby(["segment_id", "segment_name"]):
        fig.add_trace(go.Scatter(
            name=f"{segment_id}: {name}", mode="markers", x=_list(part.pca_1),
            y=_list(part.pca_2), text=list(part.customer_id), marker={"size": 5, "opacity": 0.6},
            hovertemplate="%{text}<extra>%{fullData.name}</extra>",
        ))
    _axes(fig, "Principal component 1 (standardised units)",
          "Principal component 2 (standardised units)")
    sizes = frame.groupby("segment_name").size().sort_values(ascending=False)
    note = (f"A fixed random sample of {len(sample):,} of {total:,} customers."
            if total > len(sample) else "")
    return Chart(
        "segment-scatter", "Behavioural segments on the first two principal components", fig,
        f"{sizes.size} segments; the largest, {sizes.index[0]}, holds {sizes.iloc[0]:,} "
        f"customers ({pct(sizes.iloc[0] / total)}).", note=note,
    )


# --------------------------------------------------------------------------- 6 basket


def _named(items, names) -> str:
    """Items of a rule by their names (fct_association_rules), an unnamed one by its id."""
    return " + ".join(str(n) if n is not None else str(i) for i, n in zip(items, names,
                                                                           strict=True))


def rules_table(data: Data) -> Block:
    frame = data.frame(
        """
        select item_level, antecedent, antecedent_names, consequent, consequent_name,
            support, confidence, lift, rule_basket_count
        from marts.fct_association_rules
        where antecedent_length <= 2  -- short rules read best in a table
        order by lift desc, support desc, item_level, consequent, antecedent limit 25
        """,
        "marts.fct_association_rules",
    )
    rows = []
    for r in frame.itertuples():
        rows.append([
            r.item_level,
            _named(r.antecedent, r.antecedent_names),
            _named([r.consequent], [r.consequent_name]),
            num(int(r.rule_basket_count)), pct(r.support, 2), pct(r.confidence, 1),
            f"{r.lift:.2f}×",
        ])
    supported = frame[frame.rule_basket_count >= MIN_EVIDENCE]
    if supported.empty:
        takeaway = (f"No rule shown holds on {MIN_EVIDENCE} baskets or more (the most is "
                    f"{int(frame.rule_basket_count.max())}): read them as leads to check, not "
                    "findings.")
    else:
        best = supported.iloc[0]
        takeaway = (f"Strongest rule on at least {MIN_EVIDENCE} baskets: "
                    f"{_named(best.antecedent, best.antecedent_names)} → "
                    f"{_named([best.consequent], [best.consequent_name])} "
                    f"with lift {best.lift:.2f}× and confidence {pct(best.confidence)} "
                    f"({int(best.rule_basket_count)} baskets).")
    return Table(
        "rules-table", "Top association rules by lift (one or two items imply a third)",
        ["level", "if the basket holds", "it also holds", "baskets", "support", "confidence",
         "lift"],
        rows,
        takeaway,
        note="marts.fct_association_rules holds the best rules per consequent, longer "
        "antecedents included (pruning: the rules_* vars in dbt_project.yml).",
    )


def rules_scatter(data: Data) -> Block:
    frame = data.frame(
        """
        select item_level, rule_label, support, confidence, lift
        from marts.fct_association_rules
        order by lift desc, support desc, item_level, consequent, antecedent limit 500
        """,
        "marts.fct_association_rules",
    )
    fig = go.Figure()
    for level, part in frame.groupby("item_level"):
        fig.add_trace(go.Scatter(
            name=f"{level} rules", mode="markers", x=_list(part.support * 100),
            y=_list(part.confidence * 100), text=_list(part.rule_label),
            marker={"size": 7, "color": _list(part.lift), "colorscale": "Viridis",
                    "showscale": True, "colorbar": {"title": {"text": "lift (×)"}}},
            hovertemplate="%{text}<br>support %{x:.2f}%, confidence %{y:.1f}%"
            "<extra></extra>",
        ))
    _axes(fig, "Support (% of baskets)", "Confidence (%)")
    strong = frame[frame.lift > 1]
    return Chart(
        "rules-scatter", "Support and confidence of the top rules by lift", fig,
        f"{len(strong)} of the {len(frame)} rules shown have lift above 1; their median "
        f"confidence is {pct(strong.confidence.median() if len(strong) else 0)}.",
    )


def affinity_table(data: Data, relation: str) -> Block:
    frame = data.frame(
        """
        select coalesce(product_name, product_id) as product_name,
            coalesce(related_product_name, related_product_id) as related_product_name,
            category, related_category, cosine_similarity, together_count,
            median_unit_price, related_median_unit_price
        from marts.fct_product_affinity
        where relation = ? and affinity_rank = 1
        -- two products that are each other's best co-purchase neighbour: one row
        qualify relation != 'co_purchase' or row_number() over (
            partition by least(product_id, related_product_id),
                greatest(product_id, related_product_id)
            order by product_id
        ) = 1
        order by together_count desc, cosine_similarity desc, product_id limit 20
        """,
        "marts.fct_product_affinity",
        params=[relation],
    )
    rows = [
        [r.product_name, r.category, r.related_product_name, r.related_category,
         num(r.cosine_similarity, 3), num(int(r.together_count)), num(r.median_unit_price),
         num(r.related_median_unit_price)]
        for r in frame.itertuples()
    ]
    top = frame.iloc[0]
    unit = "receipts" if relation == "co_purchase" else "shared members"
    if relation == "co_purchase":
        title = "Best co-purchase neighbour of the most paired products"
        takeaway = (f"{top.product_name} goes best with {top.related_product_name}: bought "
                    f"together on {int(top.together_count)} receipts (cosine "
                    f"{top.cosine_similarity:.3f}).")
    else:
        title = "Up-sell: a pricier product of the same category bought by the same members"
        ratio = (top.related_median_unit_price / top.median_unit_price
                 if top.median_unit_price else float("nan"))
        takeaway = (f"Buyers of {top.product_name} can be offered {top.related_product_name} "
                    f"at {ratio:.1f}× the price ({int(top.together_count)} shared members).")
    if top.together_count < MIN_EVIDENCE:
        takeaway = (f"The closest pair shares {int(top.together_count)} {unit} at most: too "
                    f"few to name a best neighbour (at least {MIN_EVIDENCE} needed).")
    return Table(
        f"affinity-{relation.replace('_', '-')}", title,
        ["product", "category", "related product", "related category", "cosine",
         "together", f"price ({MONEY})", f"related price ({MONEY})"],
        rows, takeaway,
    )


# --------------------------------------------------------------------------- 7 models


def clv_metrics(data: Data) -> Block:
    frame = data.frame(
        "select model, target, mae, total_ratio, correlation, actual_mean "
        "from ml.ml_clv_metrics order by target, mae",
        "ml.ml_clv_metrics",
    )
    fig = go.Figure()
    for model, part in frame.groupby("model", sort=False):
        fig.add_trace(go.Bar(
            name=model, x=list(part.target),
            y=_list(part.mae / part.actual_mean.replace(0, np.nan) * 100),
            customdata=_list(part.mae),
            hovertemplate="%{x}: MAE %{customdata:,.2f} (%{y:.0f}% of the mean)<extra>"
            "%{fullData.name}</extra>",
        ))
    fig.update_layout(barmode="group")
    _axes(fig, "Holdout target", "Mean absolute error (% of the mean actual value)")
    parts = []
    for target, part in frame.groupby("target"):
        best = part.iloc[0]
        naive = part[part.model == "naive_rate"]
        if not naive.empty and best.model != "naive_rate":
            gain = 1 - best.mae / naive.mae.iloc[0]
            parts.append(f"{target}: {best.model} has {pct(gain)} lower MAE than the naive rate")
        else:
            parts.append(f"{target}: {best.model} has the lowest MAE ({best.mae:,.2f})")
    return Chart("clv-metrics", "Lifetime value models on the holdout: error by model", fig,
                 "; ".join(parts) + ".",
                 note="naive_rate is the baseline: each customer's past rate carried forward.")


def segment_selection(data: Data) -> Block:
    frame = data.frame(
        "select k, silhouette, is_chosen from ml.ml_segment_selection order by k",
        "ml.ml_segment_selection",
    )
    fig = go.Figure(go.Scatter(x=_list(frame.k), y=_list(frame.silhouette), mode="lines+markers"))
    _axes(fig, "Number of segments k", "Mean silhouette (−1 to 1, higher is better)")
    chosen = frame[frame.is_chosen.astype(bool)]
    row = chosen.iloc[0] if not chosen.empty else frame.sort_values("silhouette").iloc[-1]
    return Chart("segment-selection", "Choosing the number of customer segments", fig,
                 f"k = {int(row.k)} has the best silhouette ({row.silhouette:.3f}) of "
                 f"{len(frame)} values tried.")


def model_calibration(data: Data) -> Block:
    table = "ml.ml_restaurant_calibration"
    data.require(table)
    return calibration_chart(data, table, "model-calibration",
                             "Calibration of the restaurant propensity model")


def forecast_vs_actual(data: Data) -> Block:
    """A backtest (or forecast) table with a day, an actual and a forecast column."""
    candidates = [t for t in data.tables("ml.") if "backtest" in t]
    candidates += [t for t in data.tables("ml.") if "forecast" in t and t not in candidates]
    for table in candidates:
        columns = data.columns(table)
        date = "forecast_date" if "forecast_date" in columns else next(
            (c for c in columns if c.endswith("_date") or c == "date"), None)
        actual = next((c for c in columns if c.startswith("actual")), None)
        forecast = next((c for c in columns if c not in (date, "forecast_date") and (
            c in ("forecast", "predicted", "yhat") or c.startswith("forecast_"))), None)
        if date and actual and forecast:
            break
    else:
        raise NoData("No data: no ml forecast or backtest table with a date, an actual and a "
                     "forecast column in this build.")
    baseline = next((c for c in columns if "naive" in c), None)
    keys = [c for c in ("store_id",) if c in columns]
    inner = ", ".join([date, *keys])
    extra = f", avg({baseline}) as baseline" if baseline else ""
    outer = ", sum(baseline) as baseline" if baseline else ""
    # several forecast origins can predict the same day: average them per day (and store)
    frame = data.frame(
        f"""
        select day, sum(actual) as actual, sum(forecast) as forecast{outer}
        from (
            select {date} as day, avg({actual}) as actual, avg({forecast}) as forecast{extra}
            from {table} group by {inner}
        ) group by day order by day
        """,
        table,
    )
    days = [d.isoformat() for d in pd.to_datetime(frame.day).dt.date]
    traces = [
        go.Scatter(name="Actual", x=days, y=_list(frame.actual), mode="lines"),
        go.Scatter(name="Forecast", x=days, y=_list(frame.forecast), mode="lines"),
    ]
    if baseline:
        traces.append(go.Scatter(name=f"Baseline ({baseline})", x=days,
                                 y=_list(frame.baseline), mode="lines",
                                 line={"dash": "dot"}))
    fig = go.Figure(traces)
    _axes(fig, "Day", f"{actual.replace('_', ' ')} ({MONEY} where it is revenue)")
    both = frame.dropna(subset=["actual", "forecast"])
    both = both[both.actual > 0]
    if both.empty:
        raise NoData(f"No data: {table} has no day with both an actual and a forecast.")
    mape = ((both.forecast - both.actual).abs() / both.actual).mean()
    takeaway = f"Forecast error {pct(mape, 1)} (MAPE over {len(both)} days)"
    if baseline:
        base = ((both.baseline - both.actual).abs() / both.actual).mean()
        takeaway += f" against {pct(base, 1)} for the baseline"
    return Chart("forecast-vs-actual", f"Forecast against actual ({table})", fig,
                 takeaway + ".")


METRIC_PREFERENCE = ("mape", "smape", "log_loss", "brier", "auc", "ndcg", "recall", "mae")


def _metric_frames(data: Data) -> list[tuple[str, pd.DataFrame]]:
    """(table, frame) of every long-format metrics table: ml_model_metrics if it exists,
    else each ml.*_metrics table with model, variant, metric and value columns."""
    tables = (["ml.ml_model_metrics"] if data.exists("ml.ml_model_metrics")
              else [t for t in data.tables("ml.") if t.endswith("_metrics")])
    found = []
    for table in tables:
        if {"model", "variant", "metric", "value"} <= set(data.columns(table)) and \
                data.rows(table):
            found.append((table, data.con.execute(f"select * from {table}").df()))
    return found


def metrics_tables(data: Data) -> list[Block]:
    frames = _metric_frames(data)
    if not frames:
        raise NoData("No data: no model metrics table (ml.ml_model_metrics or ml.*_metrics "
                     "with model, variant, metric, value) in this build.")
    blocks: list[Block] = []
    for table, frame in frames:
        frame = frame.dropna(subset=["value"])
        if "split" in frame and frame.split.nunique() > 1:
            frame = frame[frame.split == frame.split.value_counts().index[0]]
        weight = frame["n"].fillna(1) if "n" in frame else pd.Series(1, index=frame.index)
        frame = frame.assign(weighted=frame.value * weight, weight=weight)
        for model, part in frame.groupby("model"):
            summary = part.groupby(["metric", "variant"]).agg(
                weighted=("weighted", "sum"), weight=("weight", "sum"))
            summary = (summary.weighted / summary.weight).unstack("variant")
            variants = list(summary.columns)
            baselines = set(part.variant[part.is_baseline.astype(bool)]) \
                if "is_baseline" in part else set()
            rows = [[metric, *(num(summary.loc[metric, v], 4) for v in variants)]
                    for metric in summary.index]
            metric = next((m for p in METRIC_PREFERENCE for m in summary.index
                           if m.startswith(p)), summary.index[0])
            own = [v for v in variants if v not in baselines]
            takeaway = f"{model}: {metric} " + ", ".join(
                f"{summary.loc[metric, v]:.4g} for {v}" for v in own + sorted(baselines)
                if pd.notna(summary.loc[metric, v])) + "."
            blocks.append(Table(
                f"metrics-{model}".replace("_", "-"), f"{model}: metrics against baselines",
                ["metric", *(f"{v} (baseline)" if v in baselines else v for v in variants)],
                rows, takeaway,
                note=f"From {table}; segments averaged weighted by n"
                + (f", split {part.split.iloc[0]}." if "split" in part else "."),
            ))
    return blocks


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class PageSpec:
    slug: str
    title: str
    question: str
    sources: tuple[str, ...]
    charts: tuple[tuple[str, str, Callable[[Data], Block]], ...]

    def build(self, data: Data) -> Page:
        blocks = build_blocks(data, self.charts)
        return Page(self.slug, self.title, self.question, list(self.sources), blocks)


PAGES = (
    PageSpec(
        "revenue", "Revenue breakdown",
        "Where does the money come from: anchors, add-ons, the restaurant, other goods, "
        "and how much goes back as returns?",
        ("marts.fct_revenue_mix",),
        (
            ("revenue-by-stream", "Revenue and margin by stream", revenue_by_stream),
            ("revenue-daily", "Daily revenue by stream", revenue_daily),
            ("margin-rate", "Margin rate by stream", margin_rate),
        ),
    ),
    PageSpec(
        "cross_sell", "Cross-sell matrix",
        "Which add-on categories does each anchor family pull along, and how often?",
        ("marts.fct_addon_lift", "marts.fct_attach_rates", "marts.fct_attach_rates_overall",
         "marts.fct_attach_rates_daily"),
        (
            ("lift-heatmap", "Add-on lift by anchor family and add-on category", lift_heatmap),
            ("attach-by-family", "Attach rate by anchor family", attach_by_family),
            ("attach-over-time", "Weekly attach rate by anchor family", attach_over_time),
        ),
    ),
    PageSpec(
        "impulse", "Impulse by hour",
        "When do people buy on impulse, and does an anchor purchase make it likelier?",
        ("marts.fct_impulse_by_hour",),
        (
            ("impulse-heatmap", "Impulse share by weekday and hour", impulse_heatmap),
            ("impulse-by-hour", "Impulse share by hour, with and without an anchor",
             impulse_anchor),
        ),
    ),
    PageSpec(
        "restaurant", "Restaurant conversion",
        "Do anchor shoppers eat at the restaurant, and when?",
        ("marts.fct_restaurant_conversion", "marts.fct_restaurant_conversion_by_group",
         "marts.fct_restaurant_timing", "ml.ml_restaurant_calibration"),
        (
            ("restaurant-conversion", "Same-day restaurant conversion by anchor family",
             restaurant_conversion),
            ("restaurant-timing", "When the restaurant visit happens", restaurant_timing),
            ("restaurant-calibration", "Restaurant propensity model: calibration",
             restaurant_calibration),
        ),
    ),
    PageSpec(
        "customers", "Customers",
        "Who are the customers, who is drifting away, and what are they worth?",
        ("marts.fct_customer_rfm", "marts.fct_cohort_retention",
         "ml.ml_customer_lifetime_value", "marts.fct_revenue_at_risk",
         "ml.ml_customer_segments"),
        (
            ("rfm-segments", "RFM segments", rfm_segments),
            ("cohort-retention", "Cohort retention", cohort_heatmap),
            ("clv-distribution", "Customer lifetime value", clv_distribution),
            ("revenue-at-risk", "Revenue at risk", revenue_at_risk),
            ("segment-scatter", "Behavioural segments", segment_scatter),
        ),
    ),
    PageSpec(
        "basket", "Market basket",
        "Which products and categories sell together, and what goes with what?",
        ("marts.fct_association_rules", "marts.fct_product_affinity"),
        (
            ("rules-table", "Top association rules", rules_table),
            ("rules-scatter", "Support and confidence of the top rules", rules_scatter),
            ("affinity-co-purchase", "Co-purchase neighbours",
             lambda data: affinity_table(data, "co_purchase")),
            ("affinity-upsell", "Up-sell candidates", lambda data: affinity_table(data, "upsell")),
        ),
    ),
    PageSpec(
        "models", "Model performance",
        "How well do the models predict data they have not seen, against simple baselines?",
        ("ml.ml_clv_metrics", "ml.ml_segment_selection", "ml.ml_model_metrics",
         "ml.ml_restaurant_calibration", "ml.*_metrics", "ml.*_backtest"),
        (
            ("clv-metrics", "Lifetime value models on the holdout", clv_metrics),
            ("segment-selection", "Choosing the number of customer segments",
             segment_selection),
            ("model-metrics", "Model metrics against baselines", metrics_tables),
            ("model-calibration", "Calibration of the restaurant propensity model",
             model_calibration),
            ("forecast-vs-actual", "Forecast against actual", forecast_vs_actual),
        ),
    ),
)
