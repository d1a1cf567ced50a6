"""Shared test helpers: project paths, shared datasets, and running the xsell CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
DATASETS_DIR = PROJECT_DIR.parent / "shared" / "datasets"
XSELL = str(Path(sys.executable).parent / "xsell")


def dataset_path(*parts: str) -> Path:
    """A file under ../shared/datasets, or a skip when the folder is absent."""
    path = DATASETS_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset not found at {path} (the folder sits beside the repo)")
    return path


def run_xsell(args: list[str], workdir: Path, **env_overrides: str) -> subprocess.CompletedProcess:
    """Run the xsell CLI from the project root, with dbt's target and logs, and the file
    `xsell run` publishes, kept in workdir (never the project's warehouse/xsell.duckdb)."""
    env = dict(os.environ)
    env.update(
        {
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
            "DO_NOT_TRACK": "1",
            "XSELL_PUBLISHED_DB": str(workdir / "published.duckdb"),
            "XSELL_REPORTS_DIR": str(workdir / "reports"),
        }
    )
    env.update(env_overrides)
    return subprocess.run(
        [XSELL, *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
