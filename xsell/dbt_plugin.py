"""dbt-duckdb plugin: import what the dbt Python models import, once, before any model runs.

dbt runs Python models in threads of one process (dbt-duckdb's local environment). When
two of them import a package with internal circular imports (scikit-learn, pandas) for
the first time at the same moment, Python's per-module import locks hand one thread a
partially initialised module ("cannot import name 'clone' from partially initialized
module 'sklearn.base'"), and the model fails at random.

dbt-duckdb creates its environment, and with it the plugins listed in profiles.yml, under
its connection manager's lock, before it hands any thread a connection. Importing every
module the Python models use here, in that one thread, means no model thread ever
initialises one of them. About 1.5 s once per dbt command that connects to DuckDB.
"""

from __future__ import annotations

import importlib
import pkgutil

from dbt.adapters.duckdb.plugins import BasePlugin

import xsell.ml

# The modules the Python models import (python_models/), and through them numpy, pandas,
# pyarrow, scipy, scikit-learn, joblib and threadpoolctl.
PRELOADED = ("xsell.frames", *sorted(
    f"xsell.ml.{info.name}" for info in pkgutil.iter_modules(xsell.ml.__path__)
))


def preload() -> None:
    """Import PRELOADED in this thread."""
    for name in PRELOADED:
        importlib.import_module(name)


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        preload()
