"""xsell: retail cross-sell and customer-value analytics, built with dbt on DuckDB."""

__version__ = "0.1.0"
