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
#: One table the dbt Cloud run builds, as include.dbt_cloud.assets names it (its URI, also its name):
#: the customer_features mart the ML step reads. A DAG scheduled on it runs after a dbt Cloud run that
#: rebuilt it, and not after one where it failed or was skipped.
CUSTOMER_FEATURES = Asset(
    name="duckdb://jaffle_shop/main/customer_features", uri="duckdb://jaffle_shop/main/customer_features"
)
