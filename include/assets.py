"""Assets of the demo warehouse, shared by the DAGs that produce and consume them.

The eltml DAG's load task updates ``RAW_JAFFLE_SHOP``; a DAG scheduled on it runs dbt right after
ingestion (the guide's "after Fivetran" pattern) without knowing which DAG loaded the data.
"""

from __future__ import annotations

from airflow.sdk import Asset

RAW_JAFFLE_SHOP = Asset(name="jaffle_shop_raw", uri="duckdb://jaffle_shop/raw")
JAFFLE_SHOP_MARTS = Asset(name="jaffle_shop_marts", uri="duckdb://jaffle_shop/marts")
