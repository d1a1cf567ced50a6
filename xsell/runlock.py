"""One `xsell run` (or `xsell publish`) at a time per build file and per published file.

The lock is an exclusive `flock` on a small file beside each of the two files
(`.<name>-run.lock`), taken before anything is built. The kernel releases it when the
holder exits, however it exits (kill -9 included), and it is never inherited by the dbt
child (Python opens files close-on-exec), so a killed run never leaves a stale lock.
The lock file holds who took it (pid, command, start time), which a second run prints
when it refuses to start. Lock files are left in place: removing one while another
process waits on it would let two runs in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path


class RunLockError(RuntimeError):
    """Another xsell run holds the lock; the message says who."""


def lock_path(target: Path) -> Path:
    target = Path(target)
    return target.with_name(f".{target.name}-run.lock")


@contextlib.contextmanager
def run_lock(*targets: Path, command: str | None = None) -> Iterator[None]:
    """Hold the run lock of every target file (build file, published file) for the block.

    RunLockError, before anything else happens, when another process holds one."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented)
        yield
        return
    paths = sorted({lock_path(Path(t).resolve()) for t in targets})
    held: list[int] = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunLockError(
                    f"Another xsell run is using {path.name[1:-len('-run.lock')]} "
                    f"({holder}; lock {path}). Wait for it to finish, then run again; "
                    "nothing was built."
                ) from None
            held.append(fd)
            _write_holder(fd, command)
        yield
    finally:
        for fd in held:
            os.close(fd)  # releases the flock


def _write_holder(fd: int, command: str | None) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "holder unknown"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, `{holder.get('command')}`, "
        f"started {holder.get('started_at')}"
    )
