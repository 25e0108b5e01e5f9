"""
A local stand-in for dbt Cloud.

It serves the part of the dbt Cloud API v2/v3 that ``apache-airflow-providers-dbt-cloud`` calls, over
HTTPS, and executes jobs with real dbt Core (on DuckDB) so that DAGs written for dbt Cloud run
unchanged on a laptop, in CI and next to ``astro dev start``.

Entry point: ``python -m dbt_cloud_local serve --data-dir .state/dbt-cloud-local``.
"""

from __future__ import annotations

__version__ = "1.0.0"

#: The dbt Cloud API host the provider would use without a connection host; only used in messages.
DBT_CLOUD_DEFAULT_HOST = "cloud.getdbt.com"
