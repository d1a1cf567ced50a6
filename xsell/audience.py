"""`xsell audience`: campaign-ready files for CRM and e-mail tools, from the published file.

An audience is the customers that pass every filter given (an RFM segment, a KMeans
segment, an RFM rule on the 1-5 scores, a restaurant-propensity threshold, a product's
likely buyers), one row per customer with their segment, lifetime value, why they are in
the audience and their top-N next best offers with product names and the reason for
each. It is written as CSV (UTF-8, header) and Parquet, with a manifest (the build's run
id, the filter, the row count, the files' sha256).

The folder it writes into is its own: a new or empty folder, or one holding only what an
earlier `xsell audience` wrote there (its manifest lists the files). Anything else is
refused, never overwritten. Files are written under temporary names and renamed into
place, the manifest last.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from xsell.serve.queries import Warehouse

__all__ = ["Audience", "AudienceError", "AudienceFilter", "parse_rfm_rule", "write_audience"]

WRITTEN_BY = "xsell audience"
MANIFEST = "manifest.json"
FILES = {"csv": "audience.csv", "parquet": "audience.parquet"}
SCORES = {"r": "recency_score", "f": "frequency_score", "m": "monetary_score"}
_OWN_TEMP = re.compile(r"^\.(audience\.csv|audience\.parquet|manifest\.json)\.\d+\.tmp$")
_RFM_PART = re.compile(r"^\s*([rfm])\s*=\s*([1-5])(?:\s*-\s*([1-5]))?\s*$", re.IGNORECASE)

# Columns before the offers: name, Arrow type.
BASE_COLUMNS = (
    ("customer_id", pa.string()),
    ("rfm_segment", pa.string()),
    ("rfm_cell", pa.string()),
    ("ml_segment", pa.string()),
    ("lifetime_value", pa.float64()),
    ("expected_purchases", pa.float64()),
    ("probability_alive", pa.float64()),
    ("restaurant_propensity", pa.float64()),
    ("selected_because", pa.string()),
)
OFFER_FIELDS = ("product_id", "product_name", "reason")


class AudienceError(RuntimeError):
    """The audience cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class AudienceFilter:
    segment: str | None = None
    ml_segment: str | None = None
    rfm: dict[str, tuple[int, int]] = field(default_factory=dict)  # "r"/"f"/"m" -> bounds
    min_restaurant_propensity: float | None = None
    likely_buyers: str | None = None
    top: int | None = None
    everyone: bool = False

    def is_empty(self) -> bool:
        return not (self.segment or self.ml_segment or self.rfm or self.likely_buyers
                    or self.min_restaurant_propensity is not None)

    def as_dict(self) -> dict:
        found = {
            "segment": self.segment,
            "ml_segment": self.ml_segment,
            "rfm": {k.upper(): list(v) for k, v in sorted(self.rfm.items())} or None,
            "min_restaurant_propensity": self.min_restaurant_propensity,
            "likely_buyers": self.likely_buyers,
            "top": self.top,
        }
        return {key: value for key, value in found.items() if value is not None} or {
            "all_customers": True}

    def describe(self) -> str:
        parts = []
        if self.segment:
            parts.append(f"RFM segment {self.segment}")
        if self.ml_segment:
            parts.append(f"KMeans segment {self.ml_segment}")
        for key, (low, high) in sorted(self.rfm.items()):
            parts.append(f"{key.upper()} {low}" if low == high else f"{key.upper()} {low}-{high}")
        if self.min_restaurant_propensity is not None:
            parts.append(f"restaurant propensity >= {self.min_restaurant_propensity:g}")
        if self.likely_buyers:
            parts.append(f"likely buyers of {self.likely_buyers}")
        text = ", ".join(parts) or "all customers"
        return text + (f", top {self.top}" if self.top else "")


def parse_rfm_rule(text: str) -> dict[str, tuple[int, int]]:
    """'R=1-2,F=4-5,M=5' -> {"r": (1, 2), "f": (4, 5), "m": (5, 5)} (scores 1 to 5)."""
    rule: dict[str, tuple[int, int]] = {}
    for part in text.split(","):
        match = _RFM_PART.match(part)
        if not match:
            raise AudienceError(
                f"--rfm {text!r}: each part is R, F or M = a score 1-5 or a range, "
                "e.g. 'R=1-2,F=4-5,M=3-5'"
            )
        key = match.group(1).lower()
        low, high = int(match.group(2)), int(match.group(3) or match.group(2))
        if low > high or key in rule:
            raise AudienceError(f"--rfm {text!r}: {part.strip()!r} is an empty or repeated range")
        rule[key] = (low, high)
    return rule


@dataclass(frozen=True)
class Audience:
    out_dir: Path
    rows: int
    files: dict[str, Path]
    manifest: dict

    def describe(self) -> str:
        lines = [f"Audience ({self.manifest['description']}): {self.rows:,} customers, "
                 f"build run {self.manifest['build']['run_id']}"]
        lines += [f"  {path}" for path in [*self.files.values(), self.out_dir / MANIFEST]]
        for name, reason in self.manifest["not_available"].items():
            lines.append(f"  not available: {name}: {reason}")
        return "\n".join(lines)


def write_audience(
    published_db: Path, out_dir: Path, audience: AudienceFilter, *, offers: int = 3,
    formats: tuple[str, ...] = ("csv", "parquet"),
) -> Audience:
    published_db, out_dir = Path(published_db), Path(out_dir)
    if not published_db.is_file():
        raise AudienceError(f"No published file at {published_db}: run `xsell run` first.")
    if audience.is_empty() and not audience.everyone:
        raise AudienceError(
            "Say who: --segment, --ml-segment, --rfm, --min-restaurant-propensity or "
            "--likely-buyers (or --all for every customer)."
        )
    previous = _check_out_dir(out_dir)
    warehouse = Warehouse(published_db)
    try:
        rows, not_available = _select(warehouse, audience, offers)
    finally:
        warehouse.close()
    columns = [*BASE_COLUMNS, *(
        (f"offer_{n}_{name}", pa.string()) for n in range(1, offers + 1) for name in OFFER_FIELDS
    )]
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    temps: dict[Path, Path] = {}  # temp -> target
    try:
        for fmt in formats:
            target = out_dir / FILES[fmt]
            temp = out_dir / f".{target.name}.{os.getpid()}.tmp"
            temps[temp] = target
            (_write_csv if fmt == "csv" else _write_parquet)(temp, columns, rows)
            written[fmt] = target
        manifest = {
            "written_by": WRITTEN_BY,
            "description": audience.describe(),
            "filter": audience.as_dict(),
            "offers_per_customer": offers,
            "row_count": len(rows),
            "columns": [name for name, _ in columns],
            "build": {
                key: value for key, value in warehouse.info.as_dict().items()
                if key in ("run_id", "sha256", "published_at", "published_file")
            },
            "not_available": not_available,
            "files": {
                target.name: {"sha256": _sha256(temp), "bytes": temp.stat().st_size}
                for temp, target in temps.items()
            },
        }
        manifest_temp = out_dir / f".{MANIFEST}.{os.getpid()}.tmp"
        temps[manifest_temp] = out_dir / MANIFEST
        manifest_temp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
        for temp, target in temps.items():  # the manifest last
            os.replace(temp, target)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    for stale in previous - {path.name for path in written.values()} - {MANIFEST}:
        (out_dir / stale).unlink(missing_ok=True)  # ours (listed in our manifest), now stale
    return Audience(out_dir=out_dir, rows=len(rows), files=written, manifest=manifest)


def _check_out_dir(out_dir: Path) -> set[str]:
    """The files an earlier audience wrote in out_dir; AudienceError if it holds others."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AudienceError(f"{out_dir} is a file, not a folder: choose a folder for the audience.")
    if not out_dir.exists():
        return set()
    present = {entry.name for entry in out_dir.iterdir()}
    ours: set[str] = set()
    manifest = out_dir / MANIFEST
    if manifest.is_file():
        try:
            content = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            content = {}
        if isinstance(content, dict) and content.get("written_by") == WRITTEN_BY:
            ours = {MANIFEST} | {name for name in content.get("files", {})
                                 if name in FILES.values()}
    ours |= {name for name in present if _OWN_TEMP.match(name)}  # left by an interrupted run
    others = sorted(present - ours)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise AudienceError(
            f"{out_dir} holds files xsell audience did not write ({shown}); it never "
            "overwrites or deletes those. Choose a new or empty folder with --out."
        )
    return ours


def _select(warehouse: Warehouse, audience: AudienceFilter, offers: int):
    """The audience's rows (dicts in column order) and the analyses it could not use."""
    cur = warehouse.cursor()
    not_available: dict[str, str] = {}
    for key, wanted in (
        ("customer", True),
        ("rfm", bool(audience.segment or audience.rfm)),
        ("ml_segment", bool(audience.ml_segment)),
        ("restaurant_propensity", True),
        ("recommendations", True),
    ):
        missing = warehouse.unavailable(key) if wanted else None
        if missing:
            not_available[missing["analysis"]] = missing["reason"] or missing["status"]
    if "customer_profiles" in not_available:
        return [], not_available
    _check_names(warehouse, audience)

    if audience.likely_buyers and "recommendations" in not_available:
        return [], not_available  # no recommendations: nobody is a likely buyer
    joins, where, params = [], [], []
    order = ["c.lifetime_value desc nulls last", "c.customer_id"]
    if "restaurant_propensity" in not_available:
        propensity = "null::double"
    else:
        propensity = "p.probability"
        joins.append(
            "left join (select customer_id, restaurant_probability as probability "
            "from ml.ml_restaurant_propensity qualify row_number() over (partition by "
            "customer_id order by sold_date desc, store_id desc, receipt_id desc) = 1) p "
            "using (customer_id)"
        )
    buyer_rank = "null::bigint"
    if audience.likely_buyers:
        buyer_rank = "b.recommendation_rank"
        joins.append(
            "join (select customer_id, recommendation_rank, score from ml.ml_recommendations "
            "where product_id = ?) b using (customer_id)"
        )
        params.append(audience.likely_buyers)
        order = ["b.recommendation_rank", "b.score desc", *order]
    if audience.segment:
        where.append("c.rfm_segment = ?")
        params.append(audience.segment)
    if audience.ml_segment:
        where.append("c.ml_segment_name = ?")
        params.append(audience.ml_segment)
    for key, (low, high) in sorted(audience.rfm.items()):
        where.append(f"c.{SCORES[key]} between ? and ?")  # a column of SCORES, never input
        params += [low, high]
    if audience.min_restaurant_propensity is not None:
        where.append(f"{propensity} >= ?")
        params.append(audience.min_restaurant_propensity)
    if audience.top:
        params.append(audience.top)
    sql = (
        "select c.customer_id, c.rfm_segment, c.rfm_cell, c.ml_segment_name as ml_segment, "
        "c.lifetime_value, c.expected_purchases, c.probability_alive, "
        f"{propensity} as restaurant_propensity, {buyer_rank} as buyer_rank "
        "from marts.dim_customers c " + " ".join(joins)
        + (" where " + " and ".join(where) if where else "")
        + " order by " + ", ".join(order) + (" limit ?" if audience.top else "")
    )
    result = cur.execute(sql, params)
    names = [column[0] for column in result.description]
    customers = [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    offers_by_customer = (
        {} if "recommendations" in not_available
        else _offers(warehouse, [c["customer_id"] for c in customers], offers)
    )
    rows = []
    for customer in customers:
        row = {name: customer.get(name) for name, _ in BASE_COLUMNS}
        row["selected_because"] = _because(audience, customer)
        for n, offer in enumerate(offers_by_customer.get(customer["customer_id"], []), 1):
            for name in OFFER_FIELDS:
                row[f"offer_{n}_{name}"] = offer[name]
        rows.append(row)
    return rows, not_available


def _check_names(warehouse: Warehouse, audience: AudienceFilter) -> None:
    """Refuse a segment or product the build does not know (a typo), naming the known."""
    cur = warehouse.cursor()
    if audience.segment and not warehouse.unavailable("segments"):
        known = [r[0] for r in cur.execute(
            "select rfm_segment from marts.fct_revenue_at_risk where rfm_segment is not null "
            "order by segment_priority nulls last, rfm_segment").fetchall()]
        if audience.segment not in known:
            raise AudienceError(f"--segment {audience.segment!r} is not an RFM segment of this "
                                f"build: {', '.join(known)}")
    if audience.ml_segment and not warehouse.unavailable("ml_segment"):
        known = [r[0] for r in cur.execute(
            "select distinct segment_name from ml.ml_customer_segments order by 1").fetchall()]
        if audience.ml_segment not in known:
            raise AudienceError(f"--ml-segment {audience.ml_segment!r} is not a KMeans segment "
                                f"of this build: {', '.join(map(str, known))}")
    if audience.likely_buyers:
        found = cur.execute(
            "select count(*) from memory.main.products where product_id = ?",
            [audience.likely_buyers],
        ).fetchone()[0]
        if not found:
            raise AudienceError(f"--likely-buyers {audience.likely_buyers!r}: no product with "
                                "that id in this build (use the product id, e.g. from GET "
                                "/products/{id}/similar or marts.dim_products).")


def _offers(warehouse: Warehouse, customer_ids: list[str], top_n: int) -> dict[str, list]:
    """Top-n recommendations per customer; the cold-start list for one without a list."""
    if not customer_ids:
        return {}
    cur = warehouse.cursor()
    found: dict[str, list] = {}
    for customer_id, product_id, product_name, reason in cur.execute(
        "select r.customer_id, r.product_id, r.product_name, r.reason "
        "from ml.ml_recommendations r join (select unnest(?) as customer_id) ids "
        "using (customer_id) where r.recommendation_rank <= ? "
        "order by r.customer_id, r.recommendation_rank",
        [customer_ids, top_n],
    ).fetchall():
        found.setdefault(customer_id, []).append(
            {"product_id": product_id, "product_name": product_name, "reason": reason})
    if len(found) < len(customer_ids):
        fallback = [
            {"product_id": r[0], "product_name": r[1], "reason": r[2]}
            for r in cur.execute(
                "select product_id, product_name, reason from ml.ml_recommendations "
                "where customer_id = (select min(customer_id) from ml.ml_recommendations "
                "where is_cold_start) and recommendation_rank <= ? order by recommendation_rank",
                [top_n],
            ).fetchall()
        ]
        for customer_id in customer_ids:
            found.setdefault(customer_id, fallback)
    return found


def _because(audience: AudienceFilter, customer: dict) -> str:
    parts = []
    if audience.segment:
        parts.append(f"RFM segment {customer['rfm_segment']} (cell {customer['rfm_cell']})")
    if audience.ml_segment:
        parts.append(f"KMeans segment {customer['ml_segment']}")
    if audience.rfm and not audience.segment:
        parts.append(f"RFM cell {customer['rfm_cell']}")
    if audience.min_restaurant_propensity is not None:
        parts.append(f"restaurant propensity {customer['restaurant_propensity']:.2f} >= "
                     f"{audience.min_restaurant_propensity:g}")
    if audience.likely_buyers:
        parts.append(f"{audience.likely_buyers} is offer {customer['buyer_rank']} of their "
                     "recommendations")
    return "; ".join(parts) or "all customers"


def _write_csv(path: Path, columns, rows: list[dict]) -> None:
    names = [name for name, _ in columns]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if row.get(n) is None else _text(row.get(n)) for n in names])


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _write_parquet(path: Path, columns, rows: list[dict]) -> None:
    schema = pa.schema([pa.field(name, kind) for name, kind in columns])
    table = pa.table(
        {name: pa.array([_number(row.get(name), kind) for row in rows], type=kind)
         for name, kind in columns},
        schema=schema,
    )
    pq.write_table(table, path)


def _number(value, kind):
    if value is None or kind != pa.float64():
        return value
    return float(value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
