"""Model and mining logic called by the dbt Python models; tested without dbt."""
