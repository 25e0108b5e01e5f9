"""Assets of the demo warehouse, shared by the DAGs that produce and consume them.

The eltml DAG's load task updates ``RAW_JAFFLE_SHOP``; a DAG scheduled on it runs dbt right after
ingestion (the guide's "after Fivetran" pattern) without knowing which DAG loaded the data.
"""

from __future__ import annotations

from airflow.sdk import Asset

RAW_JAFFLE_SHOP = Asset(name="jaffle_shop_raw", uri="duckdb://jaffle_shop/raw")
#: Updated by the eltml DAG's dbt Cloud job (its only producer).
JAFFLE_SHOP_MARTS = Asset(name="jaffle_shop_marts", uri="duckdb://jaffle_shop/marts")
#: Updated by the after-ingestion DAG's *Daily Run* job (the models tagged `daily`).
JAFFLE_SHOP_DAILY_MODELS = Asset(name="jaffle_shop_daily_models", uri="duckdb://jaffle_shop/daily_models")
