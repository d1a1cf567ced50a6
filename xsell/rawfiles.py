"""The raw files are the ones xsell wrote: a record of each file's size and sha256.

`xsell generate` and `xsell import` write `_raw_files.json` beside the raw tables (and
beside `_import.json`): who wrote the folder, and the size and sha256 of every
raw-contract file in it. `xsell run` compares the files with it before it builds and
refuses files that changed since (a disk that corrupted a Parquet page, a partial copy,
an edit nobody meant); the dbt test `raw_file_matches_record` does the same for a plain
`dbt build`. A file changed on purpose is accepted with `xsell run --accept-raw-changes`
(or `accept`), which records the files as they are now and says which changed.

The record is also the mark of a folder xsell wrote: `xsell generate` writes only into
an empty folder or one whose raw-contract files are all recorded as its own, so it
never overwrites or deletes a user's file.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from xsell.contract import RAW_TABLES
from xsell.files import sha256_of, write_json_atomically

RECORD = "_raw_files.json"
FORMATS = ("parquet", "csv")
# Written by `xsell generate` before the record existed: its folders count as xsell's.
LEGACY_GENERATOR_MARK = "_generator.json"
# Files xsell writes beside the tables (never user data).
OWN_FILES = (RECORD, LEGACY_GENERATOR_MARK, "_dirty_ledger.json", "_import.json")


class RawFilesError(RuntimeError):
    """The raw folder is not as xsell wrote it, or may not be written; says what to do."""


@dataclass(frozen=True)
class Change:
    name: str
    problem: str  # "changed", "added" or "missing"
    detail: str

    def describe(self) -> str:
        return f"{self.name}: {self.detail}"


def contract_files(folder: Path) -> list[Path]:
    """The raw-contract table files present in folder (both formats), sorted."""
    folder = Path(folder)
    return sorted(
        folder / f"{table}.{fmt}"
        for table in RAW_TABLES
        for fmt in FORMATS
        if (folder / f"{table}.{fmt}").is_file()
    )


def describe_file(path: Path) -> dict:
    return {"name": path.name, "size_bytes": path.stat().st_size, "sha256": sha256_of(path)}


def record(folder: Path, writer: str) -> Path:
    """Record the size and sha256 of every raw-contract file in folder; returns the record.

    Call it after the files are complete. Written atomically (temp file, rename), and
    nothing time-dependent: the same files give the same record."""
    from xsell import __version__

    folder = Path(folder)
    content = {
        "written_by": writer,
        "xsell_version": __version__,
        "files": [describe_file(path) for path in contract_files(folder)],
    }
    return write_json_atomically(folder / RECORD, content)


def read_record(folder: Path) -> dict | None:
    """The record of folder, or None when there is none. RawFilesError when unreadable."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        files = {entry["name"]: entry for entry in content["files"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RawFilesError(
            f"{path} is not a record xsell can read ({error}). Write the raw files again "
            "(`xsell import`, `xsell generate`), or accept them as they are with "
            "`xsell run --accept-raw-changes`."
        ) from error
    return {**content, "files": files}


def changes(folder: Path, fmt: str | None = None) -> list[Change] | None:
    """How the raw-contract files of folder (of format fmt, or both) differ from the
    record; None when the folder has no record."""
    folder = Path(folder)
    content = read_record(folder)
    if content is None:
        return None
    recorded = content["files"]
    present = {p.name: p for p in contract_files(folder) if fmt is None or p.suffix == f".{fmt}"}
    found: list[Change] = []
    for name, path in present.items():
        entry = recorded.get(name)
        if entry is None:
            found.append(Change(name, "added", "not in the record (added since)"))
            continue
        size = path.stat().st_size
        if size != entry["size_bytes"]:
            found.append(Change(
                name, "changed", f"{entry['size_bytes']:,} bytes recorded, {size:,} now"
            ))
        elif sha256_of(path) != entry["sha256"]:
            found.append(Change(name, "changed", f"same size ({size:,} bytes), other content"))
    for name in sorted(recorded):
        if name not in present and (fmt is None or name.endswith(f".{fmt}")):
            found.append(Change(name, "missing", "recorded, no longer there"))
    return found


def verify(folder: Path, fmt: str) -> list[str]:
    """Refuse (RawFilesError) raw files of format fmt that changed since they were recorded.

    Returns notes for the log: no record (nothing to check), or a recorded file that
    was removed (an optional table now read as empty; a missing required one stops dbt).
    """
    folder = Path(folder)
    found = changes(folder, fmt)
    if found is None:
        return [
            f"{folder} has no {RECORD} (not written by `xsell generate` or `xsell import`): "
            "the raw files' integrity is not checked."
        ]
    changed = [c for c in found if c.problem != "missing"]
    if changed:
        content = read_record(folder) or {}
        written = dt.datetime.fromtimestamp((folder / RECORD).stat().st_mtime, dt.UTC)
        listed = "\n".join(f"  - {c.describe()}" for c in changed)
        raise RawFilesError(
            f"Raw files in {folder} changed since {content.get('written_by', 'xsell')} "
            f"recorded them ({written:%Y-%m-%d %H:%M} UTC, {folder / RECORD}):\n{listed}\n"
            "Nothing was built. If you changed them on purpose, accept them with "
            "`xsell run --accept-raw-changes` (records them as they are now). Otherwise "
            "write them again with `xsell import` or `xsell generate`: a file that changed "
            "by itself (a failing disk, an interrupted copy) may hold wrong values."
        )
    return [f"{folder / c.name} was recorded but is gone: {c.detail}" for c in found]


def accept(folder: Path) -> list[str]:
    """Record the raw files as they are now; returns the changes accepted, in words."""
    folder = Path(folder)
    try:
        found = changes(folder) or []
    except RawFilesError:
        found = []
    record(folder, "accepted by `xsell run --accept-raw-changes`")
    return [c.describe() for c in found]


def foreign_files(folder: Path) -> list[Path]:
    """Raw-contract files in folder that xsell did not write (not recorded as they are).

    A folder written by an xsell from before the record (it has `_generator.json` and
    no record) counts as xsell's."""
    folder = Path(folder)
    present = contract_files(folder)
    if not present:
        return []
    found = changes(folder)
    if found is None:
        return [] if (folder / LEGACY_GENERATOR_MARK).is_file() else present
    different = {c.name for c in found if c.problem in ("added", "changed")}
    return [p for p in present if p.name in different]


def refuse_foreign_files(folder: Path, action: str = "generate the synthetic store") -> None:
    """RawFilesError when folder holds raw-contract files xsell did not write: writing
    there would overwrite or delete them."""
    foreign = foreign_files(folder)
    if foreign:
        names = ", ".join(p.name for p in foreign)
        raise RawFilesError(
            f"{folder} holds {names}, which xsell did not write (they are not in its "
            f"{RECORD} as they are now). xsell will not {action} there: it would "
            "overwrite or delete them. Choose an empty folder, or move those files away."
        )
