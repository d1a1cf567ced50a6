"""The documentation says only what is true of the project: the README stays a front door,
every link resolves, and every model, var, command, make target, environment variable
and file the pages name exists. (`make docs-site` builds the pages with MkDocs in strict
mode, which also fails on a broken link or anchor between them.)"""

from __future__ import annotations

import re

import yaml
from support import PROJECT_DIR

from xsell.cli import main as cli

DOCS = sorted((PROJECT_DIR / "docs").glob("*.md"))
PAGES = [PROJECT_DIR / "README.md", *DOCS]
TEXT = {page: page.read_text(encoding="utf-8") for page in PAGES}


def _names(pattern: str, flags=0) -> set[tuple[str, str]]:
    return {(page.name, match) for page, text in TEXT.items()
            for match in re.findall(pattern, text, flags)}


def test_readme_is_a_front_door():
    lines = TEXT[PROJECT_DIR / "README.md"].count("\n")
    assert lines <= 200, f"README.md has {lines} lines: reference material belongs in docs/"
    assert len(DOCS) >= 10


def test_links_resolve():
    broken = []
    for page, text in TEXT.items():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                broken.append((page.name, target, "external"))  # the docs work offline
            elif not (page.parent / target).exists():
                broken.append((page.name, target, "missing"))
    assert broken == []


def test_models_and_seeds_named_exist():
    project = {p.stem for folder in ("models", "python_models", "seeds")
               for p in (PROJECT_DIR / folder).rglob("*") if p.suffix in (".sql", ".py", ".csv")}
    # vars share the prefixes (ml_holdout_days, quarantine_share_error)
    project |= set(yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"])
    named = _names(r"`(?:(?:marts|ml|staging|intermediate|seeds)\.)?"
                   r"((?:fct|dim|int|stg|ml|base|quarantine)_[a-z0-9_]+)`")
    unknown = sorted({(page, name) for page, name in named if name not in project
                      and not name.endswith("_")})
    assert unknown == []
    assert len(named) > 50


def test_vars_named_are_declared():
    declared = set(yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"])
    declared |= {"python_models"}
    named = _names(r"\bvars? `([a-z_]+)`") | _names(r"\(vars? ([a-z_]+)[,)]")
    named |= {(page, var) for page, text in TEXT.items()
              for group in re.findall(r"\(vars ([a-z_, ]+)\)", text)
              for var in re.split(r",\s*", group)}
    unknown = sorted({(page, var) for page, var in named if var not in declared})
    assert unknown == []
    assert len(named) > 3


def test_commands_targets_and_environment_named_exist():
    commands = set(cli.commands)
    for group in ("import",):
        commands |= {f"{group} {name}" for name in cli.commands[group].commands}
    named = _names(r"`xsell ([a-z][a-z-]*(?: [a-z][a-z-]*)?)")
    unknown = sorted({(page, command) for page, command in named
                      if command not in commands and command.split()[0] not in commands})
    assert unknown == []

    makefile = (PROJECT_DIR / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = _names(r"`make ([a-z][a-z-]*)")
    assert sorted({(p, t) for p, t in named if t not in targets}) == []

    code = "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for folder in ("xsell", "macros", "models", "tests")
        for p in (PROJECT_DIR / folder).rglob("*") if p.suffix in (".py", ".sql", ".yml")
    ) + (PROJECT_DIR / "profiles.yml").read_text() + makefile
    named = _names(r"\b(XSELL_[A-Z_]+)\b")
    assert sorted({(p, v) for p, v in named if v not in code}) == []


def test_files_named_exist():
    folders = ("xsell/", "models/", "python_models/", "macros/", "tests/", "bench/", "seeds/",
               "gx/", "examples/", "docs/", "analyses/")
    named = _names(r"`((?:" + "|".join(re.escape(f) for f in folders) + r")[\w./-]+)`")
    generated = ("bench/results",)  # written by the benchmarks, not in git
    missing = sorted({(page, path) for page, path in named
                      if not any(ch in path for ch in "<>*")
                      and not path.startswith(generated)
                      and not (PROJECT_DIR / path.rstrip("/")).exists()})
    assert missing == []
    assert len(named) > 20
