"""Which build a reader of the published file has open: its run id and publish time.

The publish step writes a record beside the published file (`<published>.publish.json`)
just before it renames the new copy onto it: the sha256 of the copy, when it was
published, and the copy's file identity (device, inode, size, modification time; a
rename keeps them all). The run id is the first 12 hex digits of the sha256: the same
build gives the same id, and with `xsell run` the sha256 is the one recorded when the
build passed dbt and the quality gate.

A reader (`xsell serve`, `xsell audience`) compares the record's identity with the file
it opened. Equal: the record describes that file. Different (a file copied by hand or
published by an older xsell, or a reader that opened the file in the instant between the
record and the rename): the reader hashes the file itself, which gives the same sha256
and so the same run id, and takes the file's modification time as the publish time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from xsell.files import sha256_of, write_json_atomically

RECORD_SUFFIX = ".publish.json"
RUN_ID_LENGTH = 12
# What the record repeats from the record of a build that passed dbt and the gate.
PASSED_DETAILS = ("dbt_build", "quality_gate", "recorded_at")


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int
    size_bytes: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        stat = os.stat(path)
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def as_dict(self) -> dict:
        return {
            "device": self.device,
            "inode": self.inode,
            "size_bytes": self.size_bytes,
            "mtime_ns": self.mtime_ns,
        }


@dataclass(frozen=True)
class BuildInfo:
    """The build a published file holds."""

    path: Path
    run_id: str
    sha256: str
    published_at: str  # ISO 8601, UTC, seconds
    identity: FileIdentity
    source: str  # "publish record" or "file" (hashed by the reader)
    build: dict = field(default_factory=dict)  # the passed record's details, when known

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "sha256": self.sha256,
            "published_at": self.published_at,
            "published_file": str(self.path),
            "size_bytes": self.identity.size_bytes,
            "identified_by": self.source,
            "build": dict(self.build),
        }


def record_path(published_db: Path) -> Path:
    published_db = Path(published_db)
    return published_db.with_name(published_db.name + RECORD_SUFFIX)


def run_id_of(sha256: str) -> str:
    return sha256[:RUN_ID_LENGTH]


def write_record(
    copy: Path, published_db: Path, build_db: Path | None = None, sha256: str | None = None,
    build_sha256: str | None = None,
) -> Path:
    """Record what `copy` is, before the publish step renames it onto published_db.

    sha256: of the copy's bytes when the caller already has it (else it is computed).
    build_sha256: of the build file the copy was made from, when it differs from the copy
    (the publish step drops dbt's working schemas): the build's details (dbt, gate) come
    from the record of the build that passed with these bytes."""
    copy, published_db = Path(copy), Path(published_db)
    sha256 = sha256 or sha256_of(copy)
    content = {
        "run_id": run_id_of(sha256),
        "sha256": sha256,
        "published_at": _iso(dt.datetime.now(dt.UTC)),
        "file": FileIdentity.of(copy).as_dict(),
        "build": _passed_details(build_db, build_sha256 or sha256) if build_db else {},
    }
    path = record_path(published_db)
    return write_json_atomically(path, content, path.with_name(f".{path.name}.{os.getpid()}.tmp"))


def read_record(published_db: Path) -> dict | None:
    try:
        content = json.loads(record_path(published_db).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def build_info(published_db: Path, identity: FileIdentity | None = None) -> BuildInfo:
    """The build published_db holds. identity: of the file the caller opened (taken before
    and after opening it); by default the file at the path now."""
    published_db = Path(published_db)
    identity = identity or FileIdentity.of(published_db)
    record = read_record(published_db)
    if record is not None and _identity_in(record) == identity:
        try:
            return BuildInfo(
                path=published_db,
                run_id=run_id_of(str(record["sha256"])),
                sha256=str(record["sha256"]),
                published_at=str(record["published_at"]),
                identity=identity,
                source="publish record",
                build=dict(record.get("build") or {}),
            )
        except (KeyError, TypeError):
            pass
    sha256 = sha256_of(published_db)
    if FileIdentity.of(published_db) != identity:
        raise FileChangedError(f"{published_db} was replaced while it was being identified")
    return BuildInfo(
        path=published_db,
        run_id=run_id_of(sha256),
        sha256=sha256,
        published_at=_iso(dt.datetime.fromtimestamp(identity.mtime_ns / 1e9, dt.UTC)),
        identity=identity,
        source="file",
    )


class FileChangedError(RuntimeError):
    """The published file was replaced while a reader was opening it: open it again."""


def _identity_in(record: dict) -> FileIdentity | None:
    try:
        found = record["file"]
        return FileIdentity(
            int(found["device"]), int(found["inode"]), int(found["size_bytes"]),
            int(found["mtime_ns"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _passed_details(build_db: Path, sha256: str) -> dict:
    """From the record `xsell run` writes when the build passed dbt and the gate, when it
    describes these bytes (xsell.publish.passed_record_path)."""
    from xsell import publish

    locate = getattr(publish, "passed_record_path", None)
    if locate is None:
        return {}
    try:
        passed = json.loads(locate(build_db).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(passed, dict) or passed.get("sha256") != sha256:
        return {}
    return {key: passed[key] for key in PASSED_DETAILS if key in passed}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
