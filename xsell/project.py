"""Where things are: the dbt project root and its default input and output paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RAW_FORMATS = ("parquet", "csv")
# Files holding customer data (raw tables, build and published files, model artifacts,
# exports) are readable by their owner only, unless XSELL_FILE_MODE says otherwise (an
# octal mode such as 0640 to let a BI tool's group read them).
DEFAULT_FILE_MODE = 0o600


def find_project_dir(start: Path | None = None) -> Path:
    """The xsell dbt project: $XSELL_PROJECT_DIR, else the nearest folder (from the current
    directory upwards) holding dbt_project.yml, else the checkout this package lives in."""
    env = os.environ.get("XSELL_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dbt_project.yml").is_file():
            return folder
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "dbt_project.yml").is_file():
        return checkout
    raise FileNotFoundError(
        f"No dbt_project.yml in {here} or above; run from the xsell project or set "
        "XSELL_PROJECT_DIR."
    )


@dataclass(frozen=True)
class Paths:
    project_dir: Path
    raw_dir: Path
    build_db: Path
    published_db: Path
    reports_dir: Path
    # True when raw_dir is the project's data/raw because neither --raw-dir nor
    # XSELL_RAW_DIR named a folder: only there may `xsell run` generate on its own.
    raw_dir_is_default: bool = False

    @classmethod
    def resolve(
        cls,
        project_dir: Path | None = None,
        raw_dir: Path | None = None,
        build_db: Path | None = None,
    ) -> Paths:
        project = (project_dir or find_project_dir()).resolve()
        raw = raw_dir or Path(os.environ.get("XSELL_RAW_DIR", project / "data" / "raw"))
        build = build_db or Path(
            os.environ.get("XSELL_BUILD_DB", project / "warehouse" / "xsell_build.duckdb")
        )
        published = Path(
            os.environ.get("XSELL_PUBLISHED_DB", project / "warehouse" / "xsell.duckdb")
        )
        reports = Path(os.environ.get("XSELL_REPORTS_DIR", project / "reports" / "out"))
        return cls(
            project_dir=project,
            raw_dir=_absolute(raw, project),
            build_db=_absolute(build, project),
            published_db=_absolute(published, project),
            reports_dir=_absolute(reports, project),
            raw_dir_is_default=raw_dir is None and not os.environ.get("XSELL_RAW_DIR"),
        )


def _absolute(path: Path, project: Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else (project / path)


def detect_raw_format(raw_dir: Path) -> str | None:
    """The format of the raw contract in raw_dir, from its transactions file; None if absent."""
    found = [fmt for fmt in RAW_FORMATS if (raw_dir / f"transactions.{fmt}").is_file()]
    if len(found) > 1:
        raise ValueError(
            f"{raw_dir} holds both transactions.parquet and transactions.csv; keep one."
        )
    return found[0] if found else None


def file_mode() -> int:
    """The mode of files holding customer data: XSELL_FILE_MODE (octal), default 0600."""
    text = os.environ.get("XSELL_FILE_MODE", "").strip()
    if not text:
        return DEFAULT_FILE_MODE
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o666 or not mode & 0o600 == 0o600:
        raise ValueError(
            f"XSELL_FILE_MODE={text!r} is not a file mode xsell can use: give an octal mode "
            "the owner can read and write, e.g. 0600 (the default) or 0640."
        )
    return mode


def apply_file_mode() -> int:
    """Set this process's umask so that every file it (and the dbt it starts) creates
    gets at most file_mode(), and folders the same with search (x) where reading is
    allowed. Returns the mode."""
    mode = file_mode()
    folder_mode = mode | ((mode & 0o444) >> 2)
    os.umask(0o777 & ~folder_mode)
    return mode
