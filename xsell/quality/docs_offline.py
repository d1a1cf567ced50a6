"""Great Expectations Data Docs that work with no network and load nothing from outside.

GE's pages load Bootstrap, jQuery, bootstrap-table, Vega and Font Awesome from CDNs, and
its index builds its lists in the browser with bootstrap-table: offline, the index is an
empty page. Vendoring those libraries is not an option that fits: the installed GE ships
none of them, PyPI has no bootstrap-table and only Bootstrap 5 (GE's markup is
Bootstrap 4), and the project would carry megabytes of third-party JavaScript to show a
few tables. So the pages are made so that they need none of it:

- every page GE writes keeps its HTML (the tables and results are rendered in the page)
  and loses its external scripts and stylesheets and its inline scripts (all of them
  call jQuery, bootstrap-table or Vega); the GE logo, which GE loads from S3, comes from
  the site's own static/images; links to GE's web site become plain text, and GE's
  newsletter footer goes;
- the look comes from a stylesheet of ours that GE already inlines in every page
  (gx/plugins/custom_data_docs/styles/data_docs_custom_styles.css), and the few things
  to click (collapsed blocks, "Failed Only") from a short script of ours
  (gx/plugins/custom_data_docs/scripts/xsell_offline.js), inlined in each page;
- the index is rendered here, as plain HTML tables, from the links GE's index builder
  collects (templates/data_docs_index.html.j2).

A chart GE would draw with Vega (none of the xsell suites has one) is replaced by a note.
Rewriting a page twice changes nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jinja2

# Part of the inputs of the suite pages (gate._SuitePages): change it when the rewriting
# changes, so that pages rewritten by an earlier version are rendered again.
VERSION = "1"

SCRIPT_FILE = Path("custom_data_docs") / "scripts" / "xsell_offline.js"
STYLES_FILE = Path("custom_data_docs") / "styles" / "data_docs_custom_styles.css"
LOGO = "static/images/logo-long.png"  # shipped by GE in the site's static assets
_MARK = "data-xsell-offline"

_EXTERNAL = r"""["']?\s*(?:https?:)?//"""
_EXTERNAL_TAG = re.compile(
    rf"<script\b[^>]*\bsrc\s*=\s*{_EXTERNAL}[^>]*>\s*</script>|<link\b[^>]*\bhref\s*=\s*{_EXTERNAL}[^>]*>",
    re.IGNORECASE,
)
_INLINE_SCRIPT = re.compile(rf"<script\b(?![^>]*{_MARK})[^>]*>(.*?)</script>",
                            re.IGNORECASE | re.DOTALL)
_IMG_SRC = re.compile(r"(<img\b[^>]*?\bsrc\s*=\s*)(['\"])\s*(?:https?:)?//[^'\"]*\2",
                      re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)\s*(?:https?:)?//[^)]*?\1\s*\)", re.IGNORECASE)
_FOOTER = re.compile(r"<footer\b[^>]*>(?:(?!</footer>).)*?(?:https?:)?//.*?</footer>",
                     re.IGNORECASE | re.DOTALL)
_ANCHOR = re.compile(rf"<a\b[^>]*\bhref\s*=\s*{_EXTERNAL}[^>]*>(.*?)</a>",
                     re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)

VEGA_NOTE = ('<p class="xsell-offline-note">This chart is drawn with the Vega library, '
             "which these pages do not load so that they work offline.</p>")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("xsell.quality", "templates"),
    autoescape=True,
    keep_trailing_newline=True,
)


class OfflineSite:
    """The Data Docs site in `root`, with the custom Data Docs files of the GE context's
    plugins directory `plugins` (None: no script, GE's styles only)."""

    def __init__(self, root: Path, plugins: Path | None):
        self.root = Path(root)
        script = Path(plugins) / SCRIPT_FILE if plugins else None
        styles = Path(plugins) / STYLES_FILE if plugins else None
        self.script = script.read_text(encoding="utf-8") if script and script.is_file() else ""
        self.styles = styles.read_text(encoding="utf-8") if styles and styles.is_file() else ""

    def page(self, path: Path) -> bool:
        """Rewrite one page for offline use; True when it changed."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return False
        prefix = Path(os.path.relpath(self.root, path.parent)).as_posix() + "/"
        done = offline_page(text, prefix, self.script)
        if done == text:
            return False
        _write(path, done)
        return True

    def pages(self) -> int:
        """Rewrite every page of the site (those rendered before too); returns how many
        changed."""
        return sum(self.page(p) for p in sorted(self.root.rglob("*.html")))

    def static_styles(self) -> None:
        """The stylesheets GE copies into static/styles (no page links them; they are
        rewritten so that the site holds no external URL)."""
        for path in sorted((self.root / "static").rglob("*.css")):
            text = path.read_text(encoding="utf-8")
            prefix = Path(os.path.relpath(self.root, path.parent)).as_posix() + "/"
            done = _CSS_URL.sub(f"url('{prefix}{LOGO}')", text)
            if done != text:
                _write(path, done)

    def index(self, links: dict | None, site_name: str) -> Path:
        """index.html: the validation results, newest first, and the expectation suites,
        from the links GE's index builder collected."""
        links = links or {}
        results = []
        for link in links.get("validations_links", []):
            run_id = link.get("run_id")
            run_time = getattr(run_id, "run_time", None) or link.get("run_time")
            results.append({
                "suite": link["expectation_suite_name"],
                "success": link.get("validation_success"),
                "run_time": run_time,
                "run_time_text": (run_time.strftime("%Y-%m-%d %H:%M:%S UTC")
                                  if hasattr(run_time, "strftime") else str(run_time or "")),
                "run_name": getattr(run_id, "run_name", None) or link.get("run_name") or "",
                "batch": link.get("batch_identifier") or "",
                "href": link["filepath"],
                "suite_href": (link.get("expectation_suite_filepath") or "").replace(os.sep, "/"),
            })
        results.sort(key=lambda r: (-_timestamp(r["run_time"]), r["suite"], r["batch"]))
        suites = sorted(
            ({"suite": link["expectation_suite_name"], "href": link["filepath"]}
             for link in links.get("expectations_links", [])),
            key=lambda s: s["suite"],
        )
        page = _TEMPLATES.get_template("data_docs_index.html.j2").render(
            site_name=site_name, results=results, suites=suites,
            failed=sum(r["success"] is False for r in results),
            styles=self.styles, script=self.script, mark=_MARK, logo=LOGO,
        )
        path = self.root / "index.html"
        _write(path, page)
        return path


def offline_page(text: str, prefix: str, script: str = "") -> str:
    """A GE page without anything loaded from outside; `prefix` leads from the page's
    folder to the site's root ("../../" for expectations/marts/x.html)."""
    text = _EXTERNAL_TAG.sub("", text)
    text = _INLINE_SCRIPT.sub(
        lambda m: VEGA_NOTE if "vegaEmbed" in m.group(1) else "", text)
    text = _IMG_SRC.sub(lambda m: f"{m.group(1)}{m.group(2)}{prefix}{LOGO}{m.group(2)}", text)
    text = _CSS_URL.sub(f"url('{prefix}{LOGO}')", text)
    text = _FOOTER.sub("", text)
    text = _ANCHOR.sub(lambda m: f"<span>{m.group(1)}</span>", text)
    if script and _MARK not in text:
        tag = f"<script {_MARK}>\n{script}</script>\n"
        text, found = _BODY_END.subn(lambda m: tag + m.group(0), text, count=1)
        if not found:
            text += tag
    return text


def external_urls(text: str) -> list[str]:
    """The http(s) or protocol-relative URLs a page would load (scripts, stylesheets,
    images, CSS url()) or link to; for tests and checks."""
    loads = re.findall(r"""\b(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)""", text,
                       re.IGNORECASE)
    loads += re.findall(r"url\(\s*['\"]?\s*((?:https?:)?//[^)'\"]+)", text, re.IGNORECASE)
    return loads


def _timestamp(value) -> float:
    try:
        return value.timestamp()
    except (AttributeError, OSError, OverflowError, ValueError):
        return 0.0


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)

