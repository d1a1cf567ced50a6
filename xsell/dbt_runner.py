"""Run dbt in a subprocess and explain a failure by naming the failing nodes.

A subprocess (not dbt's in-process runner) so that the DuckDB file is closed when
dbt returns, and tests can open it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FAILED_STATUSES = {"error", "fail", "runtime error"}


@dataclass
class NodeFailure:
    unique_id: str
    status: str
    message: str

    def describe(self) -> str:
        kind, _, name = self.unique_id.partition(".")
        name = name.split(".", 1)[-1]
        return f"{kind} {name}: {self.status}: {self.message}".strip()


@dataclass
class DbtResult:
    returncode: int
    failures: list[NodeFailure] = field(default_factory=list)
    skipped: int = 0
    warnings: list[NodeFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def summary(self) -> str:
        if self.ok:
            return "dbt succeeded"
        if not self.failures:
            return f"dbt exited with code {self.returncode} (see the output above)"
        lines = [f"dbt failed: {len(self.failures)} node(s) failed, {self.skipped} skipped"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)


def dbt_env(raw_dir: Path, raw_format: str, build_db: Path) -> dict[str, str]:
    """The environment of a dbt build into the DuckDB file build_db. The target is duckdb
    whatever XSELL_TARGET says: the quality gate, publish and reports read that file."""
    env = dict(os.environ)
    env.update(
        {
            "XSELL_TARGET": "duckdb",
            "XSELL_RAW_DIR": str(raw_dir),
            "XSELL_RAW_FORMAT": raw_format,
            "XSELL_BUILD_DB": str(build_db),
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    return env


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    args: list[str],
    project_dir: Path,
    env: dict[str, str],
    *,
    target_path: Path | None = None,
    quiet: bool = False,
) -> DbtResult:
    """Run `dbt <args>` in project_dir; return its exit code and the failing nodes."""
    target = Path(target_path or env.get("DBT_TARGET_PATH") or project_dir / "target")
    command = [dbt_executable(), *args, "--target-path", str(target)]
    if quiet:
        command.append("--quiet")
    run_results = target / "run_results.json"
    run_results.unlink(missing_ok=True)
    completed = subprocess.run(command, cwd=project_dir, env=env, check=False)
    result = DbtResult(returncode=completed.returncode)
    if run_results.is_file():
        for node in json.loads(run_results.read_text())["results"]:
            status = str(node.get("status", "")).lower()
            failure = NodeFailure(node["unique_id"], status, (node.get("message") or "").strip())
            if status in FAILED_STATUSES:
                result.failures.append(failure)
            elif status == "warn":
                result.warnings.append(failure)
            elif status == "skipped":
                result.skipped += 1
    return result
