"""Publish the build file for BI tools: fold the WAL in, copy, fsync, rename.

dbt-duckdb holds the build file's write lock for a whole build, and a reader's lock
would make the build fail, so BI tools never open the build file. They open the
published copy (`warehouse/xsell.duckdb`), which is only ever replaced whole, by a
rename: a reader that has the old file open keeps reading it (on Linux the old inode
lives until the last reader closes it), a new reader sees the new one, and nobody sees
a half-written file. A build that fails or is killed never reaches this step, so the
last good published file stays as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("marts", "ml")


class PublishError(RuntimeError):
    """The build file cannot be published; the message says why and what to do."""


@dataclass(frozen=True)
class Published:
    path: Path
    size_bytes: int
    seconds: float
    tables: dict[str, int] = field(default_factory=dict)  # schema -> tables, for marts and ml

    def describe(self) -> str:
        schemas = ", ".join(f"{schema} ({n} tables)" for schema, n in self.tables.items())
        return (
            f"Published for BI tools: {self.path} ({self.size_bytes / 1e6:.1f} MB, "
            f"{self.seconds:.2f} s; {schemas or 'no marts or ml schema'}). "
            f"Open it read-only, e.g. duckdb -readonly {self.path}"
        )


def publish(build_db: Path, published_db: Path) -> Published:
    """Copy build_db atomically to published_db, once its WAL is folded into the file.

    Refuses (PublishError) when the build file is missing or another process has it open
    (a dbt build still running, or a client), and when a process has the published file
    open read-write. Call it from a process that does not itself hold the published file
    open: POSIX locks belong to the process, and checking them would release its own.
    """
    build_db = Path(build_db).resolve()
    published_db = Path(published_db).resolve()
    if not build_db.is_file():
        raise PublishError(
            f"No build file at {build_db}: run `xsell run` (or `dbt build`) first."
        )
    if build_db == published_db:
        raise PublishError(
            f"The build file and the published file are the same ({build_db}); BI tools "
            "must never read the file dbt builds into. Set XSELL_BUILD_DB or "
            "XSELL_PUBLISHED_DB so that they differ."
        )
    published_db.parent.mkdir(parents=True, exist_ok=True)
    _refuse_if_written(published_db)

    started = time.perf_counter()
    temp = _consistent_copy(build_db, published_db.parent, published_db.name)
    try:
        tables = _check_copy(temp)
        # A WAL left beside the published file by a crashed read-write client belongs
        # to the old file; DuckDB refuses to open a file whose WAL does not match it.
        Path(f"{published_db}.wal").unlink(missing_ok=True)
        # The copy's run id (sha256) and publish time, for xsell serve and xsell audience.
        from xsell.serve.published import write_record

        write_record(temp, published_db, build_db)
        os.replace(temp, published_db)
        _fsync_dir(published_db.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return Published(
        path=published_db,
        size_bytes=published_db.stat().st_size,
        seconds=time.perf_counter() - started,
        tables=tables,
    )


def _consistent_copy(build_db: Path, folder: Path, name: str) -> Path:
    """A temp copy of build_db in folder, taken while we hold its write lock after a
    CHECKPOINT: the file then holds every committed change and nobody can change it
    while it is copied."""
    try:
        con = duckdb.connect(str(build_db))
    except duckdb.Error as error:
        if "lock" in str(error).lower():
            raise PublishError(
                f"Another process has the build file {build_db} open (a dbt build still "
                "running, or a client reading it): wait for it or close it, then publish "
                f"again.\n{error}"
            ) from error
        raise PublishError(f"Cannot open the build file {build_db}: {error}") from error
    try:
        con.execute("checkpoint")
        handle, temp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        temp = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as target, open(build_db, "rb") as source:
                shutil.copyfileobj(source, target, length=8 * 1024 * 1024)
                target.flush()
                os.fsync(target.fileno())
            os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; readers may be other users
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    finally:
        con.close()
    return temp


def _check_copy(path: Path) -> dict[str, int]:
    """Open the copy read-only, as a BI tool would; the tables per published schema."""
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute(
                "select schema_name, count(*) from duckdb_tables() "
                "where database_name = current_database() group by 1"
            ).fetchall()
    except duckdb.Error as error:
        raise PublishError(f"The copy of the build file does not open: {error}") from error
    found = dict(rows)
    return {schema: found[schema] for schema in PUBLISHED_SCHEMAS if schema in found}


def _refuse_if_written(published_db: Path) -> None:
    """Refuse when some process holds the published file's write lock: BI tools must
    open it read-only, and a writer's WAL would not match the file that replaces it."""
    if not published_db.is_file():
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: DuckDB's locks there are not fcntl locks
        return
    fd = os.open(published_db, os.O_RDONLY)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails only under a write lock
        except OSError as error:
            raise PublishError(
                f"A process has the published file {published_db} open read-write; BI tools "
                "and clients must open it read-only (duckdb -readonly, read_only=True, "
                "access_mode=read_only). Close it, then publish again."
            ) from error
        fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
