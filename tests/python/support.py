"""Shared test helpers: project paths, shared datasets, and running the xsell CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
DATASETS_DIR = PROJECT_DIR.parent / "shared" / "datasets"
XSELL = str(Path(sys.executable).parent / "xsell")
CHROMIUM = Path("/usr/bin/chromium")
_FIGURE = re.compile(r'<script type="application/json" id="([\w-]+)-figure">', re.DOTALL)


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


# --------------------------------------------------------------------------- browser

# Injected at the top of <head> of a copy of each page: records every JavaScript error
# and any alert() call (the XSS payload) as attributes --dump-dom shows.
PROBE = """<script>
window.addEventListener("error", function (e) {
  var root = document.documentElement, seen = root.getAttribute("data-js-errors") || "";
  root.setAttribute("data-js-errors", seen + e.message + ";");
});
window.alert = function () { document.documentElement.setAttribute("data-xss", "fired"); };
</script>"""


def dump_dom(page: Path, profile: Path, *args: str) -> tuple[str, str]:
    """The DOM headless Chromium made of a copy of page with the probe, and its log;
    args go to Chromium (e.g. a proxy that refuses everything, for a page offline)."""
    probe = page.with_name(f"_probe_{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                     encoding="utf-8")
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--window-size=1280,1000", *args, "--dump-dom",
         probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def check_pages_in_browser(out: Path, tmp_path: Path) -> dict[str, str]:
    pages = sorted(p for p in out.glob("*.html") if not p.name.startswith("_probe_"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        dumps = list(pool.map(
            lambda item: dump_dom(item[1], tmp_path / f"profile{item[0]}"), enumerate(pages)
        ))
    doms = {}
    for page, (dom, log) in zip(pages, dumps, strict=True):
        root = re.search(r"<html[^>]*>", dom).group(0)  # where the probe writes
        assert "data-js-errors" not in root, (page.name, root)
        assert "Uncaught" not in log, (page.name, [x for x in log.splitlines() if "Uncaught" in x])
        assert "data-xss" not in root, page.name
        for chart_id in _FIGURE.findall(page.read_text(encoding="utf-8")):
            drawn = re.search(rf'id="{chart_id}-chart".*?</section>', dom, re.DOTALL)
            assert drawn and "main-svg" in drawn.group(0), (page.name, chart_id)
        doms[page.stem] = dom
    return doms
