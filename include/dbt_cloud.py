"""How every DAG here talks to dbt Cloud: one connection, one account, one set of hook settings.

Kept in one place so that pointing the project at another dbt Cloud connection, or tuning how
patiently the provider retries the API, is one edit. Operators and sensors get these through
``default_args`` (see ``include.dag_defaults``); Python tasks call :func:`dbt_cloud_hook`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

#: The Airflow connection seeded from airflow_settings.yaml (or AIRFLOW_CONN_DBT_CLOUD in .env).
DBT_CLOUD_CONN_ID = "dbt_cloud"

#: Passed to DbtCloudHook: retry transient API errors (429/5xx, connection resets) with backoff.
HOOK_PARAMS = {"retry_limit": 5, "retry_delay": 2.0, "timeout_seconds": 30}


def dbt_cloud_args(account_id: int | None = None) -> dict[str, Any]:
    """``default_args`` that every dbt Cloud operator and sensor accepts. Without ``account_id`` the
    provider uses the connection's login, which is the account id."""
    args: dict[str, Any] = {"dbt_cloud_conn_id": DBT_CLOUD_CONN_ID, "hook_params": HOOK_PARAMS}
    if account_id is not None:
        args["account_id"] = account_id
    return args


def dbt_cloud_hook() -> DbtCloudHook:
    """The hook for Python tasks, with the same connection and retry settings as the operators."""
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

    return DbtCloudHook(DBT_CLOUD_CONN_ID, **HOOK_PARAMS)
