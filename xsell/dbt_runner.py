"""Run dbt in a subprocess and explain a failure by naming the failing nodes.

A subprocess (not dbt's in-process runner) so that the DuckDB file is closed when
dbt returns, and tests can open it.

The dbt child never outlives xsell: on Linux it is started with PR_SET_PDEATHSIG, so
the kernel kills it when xsell dies (kill -9 included) and no orphan keeps the build
file's lock; it runs in its own process group, and SIGTERM or SIGINT (Ctrl-C) sent to
xsell while dbt runs end dbt (its whole group) before xsell reports the interruption.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FAILED_STATUSES = {"error", "fail", "runtime error"}
# Seconds dbt gets to stop after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 20

# Started as `python -c CHILD <parent pid> <program> <args...>`: asks the kernel to kill
# this process when its parent dies, checks the parent did not die already, then becomes
# the program (exec keeps the request).
CHILD = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


class Interrupted(RuntimeError):
    """xsell received SIGTERM or SIGINT while a child ran; the child was stopped."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


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
    # dbt's own error when it stopped outside any node (e.g. out of memory while it read
    # the catalogue, a broken connection): the text after "Encountered an error:"
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def summary(self) -> str:
        if self.ok:
            return "dbt succeeded"
        if not self.failures:
            if self.error:
                return f"dbt stopped with an error: {self.error}"
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
    log = Path(env.get("DBT_LOG_PATH") or project_dir / "logs") / "dbt.log"
    log_start = log.stat().st_size if log.is_file() else 0
    result = DbtResult(returncode=run_child(command, cwd=project_dir, env=env))
    if not result.ok:
        result.error = run_error(log, log_start)
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


_LOG_LINE = re.compile(r"^(?:\x1b\[[0-9;]*m)*\d\d:\d\d:\d\d\.\d+ \[")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_error(log: Path, start: int = 0) -> str:
    """dbt's run-level error in the part of its log file written from byte `start`: the
    lines after the last "Encountered an error:", up to the next log line; "" if none."""
    try:
        with log.open("rb") as handle:
            if handle.seek(0, os.SEEK_END) < start:  # the log rotated meanwhile
                start = 0
            handle.seek(start)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    marker = text.rfind("Encountered an error:")
    if marker == -1:
        return ""
    lines = []
    for line in text[marker:].splitlines()[1:]:
        if _LOG_LINE.match(line):
            break
        line = _ANSI.sub("", line).strip()
        if line.startswith("Possible solutions:"):
            break
        if line:
            lines.append(line)
    return " ".join(lines)


def run_child(command: list[str], *, cwd: Path, env: dict[str, str]) -> int:
    """Run command to its end and return its exit code; the child dies with this process
    (Linux) and is stopped, its process group with it, on SIGTERM or SIGINT, which then
    raise Interrupted here."""
    linux = sys.platform.startswith("linux")
    argv = [sys.executable, "-c", CHILD, str(os.getpid()), *command] if linux else command
    received: list[int] = []
    proc = subprocess.Popen(argv, cwd=cwd, env=env, process_group=0)

    def stop(signum, _frame):
        if not received:
            received.append(signum)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)

    with _handling((signal.SIGTERM, signal.SIGINT), stop):
        try:
            code = proc.wait()
        except BaseException:
            _stop_now(proc)
            raise
        if received:
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _stop_now(proc)
    if received:
        raise Interrupted(received[0])
    return code


def _stop_now(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def _handling(signals, handler):
    """Install handler for signals in this block (main thread only; else no change)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
