"""The quality gate: Great Expectations suites (in gx/) run on the build before publishing.

    from xsell.quality import validate
    report = validate(build_db, gx_dir=project / "gx", docs_dir=project / "reports/out/data_docs")
    if not report.ok:
        raise SystemExit(str(report))

Importing this package is cheap (Great Expectations is imported when `validate` runs) and
turns GE's usage statistics off for the process (GX_ANALYTICS_ENABLED=false, DESIGN.md).
"""

from xsell.quality.gate import QualityError, _quiet_gx, preload, validate
from xsell.quality.report import Failure, ValidationReport

_quiet_gx()

__all__ = ["Failure", "QualityError", "ValidationReport", "preload", "validate"]
