"""HTML reports rendered from the published DuckDB file (`xsell report`)."""

from xsell.reports.render import ReportError, ReportSummary, render_reports

__all__ = ["ReportError", "ReportSummary", "render_reports"]
