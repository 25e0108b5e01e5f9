"""Defaults shared by every DAG that talks to dbt Cloud.

Kept in one place so that pointing the project at another dbt Cloud connection, or tuning how
patiently the provider retries the API, is one edit.
"""

from __future__ import annotations

#: The Airflow connection seeded from airflow_settings.yaml (or AIRFLOW_CONN_DBT_CLOUD in .env).
DBT_CLOUD_CONN_ID = "dbt_cloud"

#: Passed to DbtCloudHook: retry transient API errors (429/5xx, connection resets) with backoff.
HOOK_PARAMS = {"retry_limit": 5, "retry_delay": 2.0, "timeout_seconds": 30}
