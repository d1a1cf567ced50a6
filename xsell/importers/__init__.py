"""Importers: turn real transaction files into the raw contract (``xsell.contract``).

``import_online_retail`` reads the UCI Online Retail file; ``import_mapped``
reads any CSV/Parquet/XLSX through a ``mapping.yml``. Both write every contract
table as ``<out_dir>/<table>.parquet`` plus ``<out_dir>/_import.json``, and
raise ``DataImportError`` (a ``ValueError``) only when the file cannot be
mapped at all. Defective rows are never dropped here: staging quarantines them.
"""

from xsell.importers._base import DataImportError
from xsell.importers._write import ImportSummary
from xsell.importers.mapped import import_mapped
from xsell.importers.online_retail import import_online_retail

__all__ = [
    "DataImportError",
    "ImportSummary",
    "import_mapped",
    "import_online_retail",
]
