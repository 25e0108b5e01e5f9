"""
### Run when one dbt model is rebuilt: per-model assets from dbt Cloud

This DAG has no clock: it runs each time a dbt Cloud run rebuilds the `customer_features` mart
(`duckdb://jaffle_shop/main/customer_features`). The eltml DAG's `record_dbt_model_assets` task
records one asset event per model, seed and snapshot its dbt Cloud run built successfully (through
the `dbt_cloud_models` asset alias), so a run where this model failed or was skipped does not
trigger it, even if the rest of the job succeeded.

On your warehouse the asset's URI names your table (e.g. `snowflake://<account>/<db>/<schema>/<table>`):
see the run's `record_dbt_model_assets` log for the URIs, and `include/assets.py`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from include.assets import CUSTOMER_FEATURES
from include.dag_defaults import START_DATE, default_args


@dag(
    schedule=[CUSTOMER_FEATURES],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # a demo: runs after the eltml DAG's first good run, no click needed
    default_args=default_args(),
    tags=["dbt-cloud", "asset-driven"],
    doc_md=__doc__,
)
def dbt_cloud_model_consumer():
    @task
    def report_rebuilt_features(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Name the dbt Cloud run(s) that rebuilt the table: what a real consumer would act on."""
        from include.dbt_cloud.assets import describe_model_events

        return describe_model_events(triggering_asset_events, CUSTOMER_FEATURES)

    report_rebuilt_features()


dbt_cloud_model_consumer()
