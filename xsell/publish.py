"""Publish the build file for BI tools: fold the WAL in, copy, fsync, rename.

dbt-duckdb holds the build file's write lock for a whole build, and a reader's lock
would make the build fail, so BI tools never open the build file. They open the
published copy (`warehouse/xsell.duckdb`), which is only ever replaced whole, by a
rename: a reader that has the old file open keeps reading it (on Linux the old inode
lives until the last reader closes it), a new reader sees the new one, and nobody sees
a half-written file. A build that fails or is killed never reaches this step, so the
last good published file stays as it was.

Only a build that passed dbt and the quality gate is published: `xsell run` writes a
record beside the build file once both passed (`<build file>.passed.json`: the build
file's size and sha256), and publishing compares the bytes it copies with it, so a
build whose dbt or gate failed, one an interrupted dbt left behind, or one changed
since, is refused (`xsell publish --force` overrides, and says so). Publishes are
serialised by a lock beside the published file; a temp file an interrupted publish
left behind is removed by the next one. The copy gets XSELL_FILE_MODE (default 0600).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from xsell.files import sha256_of, write_json_atomically
from xsell.project import file_mode

PUBLISHED_SCHEMAS = ("marts", "ml")
# What the published file keeps: the marts, the models' outputs and the reference seeds
# they join. staging and intermediate stay in the build file (they are dbt's working
# tables, not an interface, and staging's views read raw files by their paths).
KEPT_SCHEMAS = (*PUBLISHED_SCHEMAS, "seeds")
PASSED_SUFFIX = ".passed.json"


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


def passed_record_path(build_db: Path) -> Path:
    """Where `xsell run` records that build_db passed dbt and the quality gate."""
    build_db = Path(build_db)
    return build_db.with_name(build_db.name + PASSED_SUFFIX)


def forget_passed(build_db: Path) -> None:
    """Drop the record (a new build is about to change the file)."""
    passed_record_path(build_db).unlink(missing_ok=True)


def record_passed(build_db: Path, details: dict | None = None) -> Path:
    """Record that build_db, as it is now, passed dbt and the quality gate: its size and
    sha256, taken after a CHECKPOINT so that the bytes are the ones publish copies."""
    build_db = Path(build_db).resolve()
    with duckdb.connect(str(build_db)) as con:
        con.execute("checkpoint")
    content = {
        "build_file": str(build_db),
        "size_bytes": build_db.stat().st_size,
        "sha256": sha256_of(build_db),
        "dbt_build": "passed",
        "quality_gate": "passed",
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(details or {}),
    }
    return write_json_atomically(passed_record_path(build_db), content)


def passed_sha256(build_db: Path) -> str | None:
    """The sha256 recorded for a passing build_db, or None (no record, or unreadable)."""
    try:
        content = json.loads(passed_record_path(build_db).read_text(encoding="utf-8"))
        return str(content["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def publish(
    build_db: Path, published_db: Path, *, expected_sha256: str | None = None
) -> Published:
    """Copy build_db atomically to published_db, once its WAL is folded into the file.

    Refuses (PublishError) when the build file is missing or another process has it open
    (a dbt build still running, or a client), when a process has the published file
    open read-write, and, given expected_sha256, when the copied bytes differ from it
    (the file changed since it passed). Call it from a process that does not itself hold
    the published file open: POSIX locks belong to the process, and checking them would
    release its own.
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
    with _publish_lock(published_db):
        _remove_stale_temps(published_db)
        _refuse_if_written(published_db)
        return _publish(build_db, published_db, expected_sha256)


def _publish(build_db: Path, published_db: Path, expected_sha256: str | None) -> Published:
    started = time.perf_counter()
    temp, sha256 = _consistent_copy(build_db, published_db.parent, published_db.name)
    try:
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise PublishError(
                f"The build file {build_db} is not the one that passed dbt and the quality "
                "gate (its content changed since; a dbt build run by hand?). Build it again "
                "with `xsell run`, or publish it anyway with `xsell publish --force`."
            )
        _keep_published_schemas(temp)
        tables = _check_copy(temp)
        # A WAL left beside the published file by a crashed read-write client belongs
        # to the old file; DuckDB refuses to open a file whose WAL does not match it.
        Path(f"{published_db}.wal").unlink(missing_ok=True)
        # The copy's run id (sha256) and publish time, for xsell serve and xsell audience.
        from xsell.serve.published import write_record

        write_record(temp, published_db, build_db, build_sha256=sha256)
        os.replace(temp, published_db)
        _fsync_dir(published_db.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        Path(f"{temp}.wal").unlink(missing_ok=True)
        raise
    return Published(
        path=published_db,
        size_bytes=published_db.stat().st_size,
        seconds=time.perf_counter() - started,
        tables=tables,
    )


def _consistent_copy(build_db: Path, folder: Path, name: str) -> tuple[Path, str]:
    """A temp copy of build_db in folder and the sha256 of the bytes copied, taken while
    we hold its write lock after a CHECKPOINT: the file then holds every committed
    change and nobody can change it while it is copied."""
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
        digest = hashlib.sha256()
        try:
            with os.fdopen(handle, "wb") as target, open(build_db, "rb") as source:
                for block in iter(lambda: source.read(8 * 1024 * 1024), b""):
                    digest.update(block)
                    target.write(block)
                target.flush()
                os.fsync(target.fileno())
            os.chmod(temp, file_mode())  # customer data: XSELL_FILE_MODE, default 0600
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    finally:
        con.close()
    return temp, digest.hexdigest()


def _keep_published_schemas(path: Path) -> None:
    """Drop from the copy every schema a BI tool should not see (see KEPT_SCHEMAS)."""
    try:
        with duckdb.connect(str(path)) as con:
            con.execute("set threads = 1")  # the same build gives the same bytes
            schemas = [row[0] for row in con.execute(
                "select schema_name from duckdb_schemas() "
                "where database_name = current_database() and not internal"
            ).fetchall()]
            for schema in schemas:
                if schema not in KEPT_SCHEMAS and schema != "main":
                    con.execute(f'drop schema "{schema}" cascade')
            con.execute("checkpoint")
    except duckdb.Error as error:
        raise PublishError(f"Cannot prepare the copy of the build file: {error}") from error


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


@contextlib.contextmanager
def _publish_lock(published_db: Path):
    """One publish at a time into published_db (a blocking flock beside it)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = published_db.with_name(f".{published_db.name}-publish.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_stale_temps(published_db: Path) -> list[Path]:
    """Temp copies (.<name>.<random>.tmp) an interrupted publish left: under the publish
    lock no other publish is writing one."""
    removed = []
    for temp in published_db.parent.glob(f".{published_db.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
            removed.append(temp)
    return removed
