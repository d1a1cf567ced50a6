"""File helpers shared by the commands that record what they wrote: a file's sha256, and
a JSON record written atomically (a temp file beside it, then a rename)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (build files run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomically(path: Path, content: dict, temp: Path | None = None) -> Path:
    """Write content as indented JSON to path: readers see the old file or the whole new
    one. temp: the temporary name beside it (default .<name>.tmp)."""
    path = Path(path)
    temp = temp or path.with_name(f".{path.name}.tmp")
    try:
        temp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
