"""Render the HTML reports from a built or published DuckDB file.

Pages are jinja2 templates with autoescape on. Charts are plotly figures embedded as
JSON in ``<script type="application/json">`` blocks, with ``<``, ``>`` and ``&``
written as ``\\u003c`` etc. so no data value (a product named ``</script>`` included)
can end the block; plotly.js is written once to ``assets/plotly.min.js`` from the
installed plotly package, so the pages work offline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import jinja2
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from xsell.coverage import Coverage, read_coverage

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("xsell.reports", "templates"),
    autoescape=True,  # every data value lands in the page escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

PLOTLY_ASSET = "assets/plotly.min.js"
DATA_DOCS_INDEX = "data_docs/index.html"  # the quality gate's Great Expectations Data Docs
# The money unit: marts hold amounts in the store's own currency, whatever it is.
MONEY = "currency units"

_JSON_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class ReportError(RuntimeError):
    """The reports cannot be rendered at all (no database file)."""


class NoData(Exception):
    """A chart or table has nothing to show; the message says why, for the reader."""


def script_json(value) -> Markup:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' survives."""
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
    return Markup(text.translate(_JSON_ESCAPES))


# --------------------------------------------------------------------------- blocks


@dataclass
class Chart:
    id: str
    title: str
    figure: go.Figure
    takeaway: str
    note: str = ""
    kind = "chart"

    def figure_json(self) -> Markup:
        self.figure.update_layout(
            title={"text": self.title}, margin={"t": 60, "l": 70, "r": 30, "b": 60},
            template="plotly_white",
        )
        return script_json(pio.to_json(self.figure, validate=False))


@dataclass
class Table:
    id: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    takeaway: str
    note: str = ""
    kind = "table"


@dataclass
class Notice:
    id: str
    title: str
    message: str
    kind = "notice"


Block = Chart | Table | Notice


@dataclass
class Page:
    slug: str
    title: str
    question: str
    sources: list[str]
    blocks: list[Block] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return f"{self.slug}.html"

    @property
    def charts(self) -> list[Chart]:
        return [b for b in self.blocks if isinstance(b, Chart)]

    @property
    def notices(self) -> list[Notice]:
        return [b for b in self.blocks if isinstance(b, Notice)]


# --------------------------------------------------------------------------- data


class Data:
    """Read-only access to the marts and ml tables of one DuckDB file."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._tables = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('marts', 'ml')"
            ).fetchall()
        }
        self._rows: dict[str, int] = {}
        # which analyses ran on this data, and why the others did not
        self.coverage: Coverage | None = read_coverage(con)

    def tables(self, prefix: str = "") -> list[str]:
        return sorted(t for t in self._tables if t.startswith(prefix))

    def exists(self, table: str) -> bool:
        return table in self._tables

    def rows(self, table: str) -> int:
        if table not in self._rows:
            self._rows[table] = (
                self.con.execute(f"select count(*) from {table}").fetchone()[0]
                if self.exists(table) else 0
            )
        return self._rows[table]

    def columns(self, table: str) -> list[str]:
        schema, name = table.split(".")
        return [
            row[0]
            for row in self.con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
        ]

    def require(self, *tables: str) -> None:
        for table in tables:
            reason = self.coverage.table_reason(table) if self.coverage is not None else None
            if reason:
                raise NoData(f"Not available for this data: {reason}.")
            if not self.exists(table):
                raise NoData(f"No data: {table} is absent from this build.")
            if self.rows(table) == 0:
                raise NoData(f"No data: {table} is empty in this build.")

    def frame(
        self, sql: str, *tables: str, params: Sequence | None = None, empty: str | None = None
    ) -> pd.DataFrame:
        """The result of sql, after checking its tables exist and have rows; NoData (with
        the message empty, if given) when the query returns nothing."""
        self.require(*tables)
        frame = self.con.execute(sql, params or []).df()
        if frame.empty:
            raise NoData(empty or f"No data: {', '.join(tables)} has no rows for this chart.")
        return frame


ChartBuilder = Callable[[Data], "Block | list[Block]"]


def build_blocks(data: Data, builders: Iterable[tuple[str, str, ChartBuilder]]) -> list[Block]:
    """Each builder's block, or a Notice saying why it has nothing to show."""
    blocks: list[Block] = []
    for block_id, title, builder in builders:
        try:
            built = builder(data)
            blocks.extend(built if isinstance(built, list) else [built])
        except NoData as missing:
            blocks.append(Notice(block_id, title, str(missing)))
        except (duckdb.Error, KeyError) as error:
            # a table whose columns changed: say so on the page, keep the other charts
            blocks.append(Notice(block_id, title, f"Could not be drawn from this build: {error}"))
    return blocks


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class PageSummary:
    slug: str
    title: str
    path: Path
    charts: int
    tables: int
    notices: list[str]
    bytes: int


@dataclass(frozen=True)
class ReportSummary:
    db: Path
    out_dir: Path
    index: Path
    pages: list[PageSummary]
    seconds: float

    @property
    def charts(self) -> int:
        return sum(p.charts for p in self.pages)

    def describe(self) -> str:
        lines = [
            f"Reports written to {self.index} in {self.seconds:.1f} s "
            f"({len(self.pages)} pages, {self.charts} charts):"
        ]
        for page in self.pages:
            missing = f", {len(page.notices)} without data" if page.notices else ""
            lines.append(
                f"  {page.path.name:<22} {page.charts:>2} charts, {page.tables} tables"
                f"{missing} ({page.bytes / 1024:,.0f} KB)"
            )
        return "\n".join(lines)


def render_reports(db: Path, out_dir: Path) -> ReportSummary:
    """Render every report page and the index from the DuckDB file db into out_dir."""
    from xsell.reports.pages import PAGES

    db, out_dir = Path(db), Path(out_dir)
    if not db.is_file():
        raise ReportError(f"No DuckDB file at {db}: build and publish first (xsell run).")
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_plotly(out_dir / PLOTLY_ASSET)

    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        data = Data(con)
        pages = [spec.build(data) for spec in PAGES]
        coverage = data.coverage

    generated = time.strftime("%Y-%m-%d %H:%M")
    summaries = []
    for page in pages:
        html = TEMPLATES.get_template("page.html.j2").render(
            page=page, pages=pages, plotly=PLOTLY_ASSET, generated=generated, db=db.name
        )
        path = out_dir / page.filename
        _write_text(path, html)
        summaries.append(
            PageSummary(
                slug=page.slug, title=page.title, path=path, charts=len(page.charts),
                tables=sum(isinstance(b, Table) for b in page.blocks),
                notices=[n.message for n in page.notices], bytes=path.stat().st_size,
            )
        )
    index = out_dir / "index.html"
    # the quality gate writes its Data Docs beside the reports (xsell run)
    data_docs = out_dir / DATA_DOCS_INDEX
    _write_text(
        index,
        TEMPLATES.get_template("index.html.j2").render(
            pages=pages, generated=generated, db=db.name,
            coverage=list(coverage) if coverage is not None else None,
            data_docs=DATA_DOCS_INDEX if data_docs.is_file() else None,
        ),
    )
    return ReportSummary(
        db=db, out_dir=out_dir, index=index, pages=summaries,
        seconds=time.perf_counter() - started,
    )


def _write_plotly(path: Path) -> None:
    """plotly.js from the installed package, written once per plotly version."""
    from plotly.offline import get_plotlyjs

    script = get_plotlyjs()
    if path.is_file() and path.stat().st_size == len(script.encode()):
        return
    _write_text(path, script)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
