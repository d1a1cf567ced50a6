"""Running the xsell CLI of the project's .venv for the BI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
XSELL = str(Path(sys.executable).parent / "xsell")


def run_xsell(args: list[str], work: Path, published: Path) -> subprocess.CompletedProcess:
    """The xsell CLI from the project root, publishing to `published`, with dbt's target,
    logs and the reports kept in `work`."""
    env = dict(os.environ)
    env.update({
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "DO_NOT_TRACK": "1",
        "XSELL_PUBLISHED_DB": str(published),
        "XSELL_REPORTS_DIR": str(work / "reports"),
    })
    return subprocess.run([XSELL, *args], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, check=False)
