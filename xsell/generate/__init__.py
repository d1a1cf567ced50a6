"""Synthetic IKEA-like store data with planted, recoverable cross-sell behaviour.

``generate_store`` writes the raw contract (xsell.contract) into a folder;
``load_config`` reads the planted parameters (store.yml) that tests compare
the marts against.
"""

from xsell.generate.config import ConfigError, StoreConfig, load_config
from xsell.generate.store import GenerationSummary, generate_store

__all__ = ["ConfigError", "GenerationSummary", "StoreConfig", "generate_store", "load_config"]
