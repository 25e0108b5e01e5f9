"""
Durable state: runs, run steps, jobs, environment variables and webhook subscriptions in SQLite
(``<data-dir>/state.sqlite3``; how it is reached: ``sqlite``). One store holds every table's rows.
"""

from __future__ import annotations

from dbt_cloud_local.store.env_var_rows import EnvVarRows
from dbt_cloud_local.store.job_rows import JobRows
from dbt_cloud_local.store.run_rows import RunRows
from dbt_cloud_local.store.subscription_rows import SubscriptionRows


class Store(RunRows, JobRows, EnvVarRows, SubscriptionRows):
    """Thread-safe access to the state database: every table's reads and writes."""
