"""`python -m xsell.quality write-gx [GX_DIR]`: write the suites into gx/ (maintainers)."""

from __future__ import annotations

import sys
from pathlib import Path

from xsell.project import find_project_dir


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "write-gx":
        print(__doc__.strip())
        return 2
    from xsell.quality.authoring import write_gx

    gx_dir = Path(argv[1]) if len(argv) > 1 else find_project_dir() / "gx"
    changes = write_gx(gx_dir)
    print("\n".join(changes) if changes else f"{gx_dir} is up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
