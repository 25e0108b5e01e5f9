"""Mount the dbt Cloud webhook receiver on Airflow's api-server at ``/dbt-cloud-webhooks``.

An Airflow 3 plugin, so the receiver deploys with the project and runs unchanged under ``make up``,
``astro dev start`` and on Astro: dbt Cloud posts to ``<airflow url>/dbt-cloud-webhooks/events``. The
logic lives in ``include/dbt_cloud/webhooks.py``; this file only wires it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.dbt_cloud.webhooks import URL_PREFIX, create_app


class DbtCloudWebhooksPlugin(AirflowPlugin):
    name = "dbt_cloud_webhooks"
    fastapi_apps = [  # noqa: RUF012 - the attribute Airflow's plugin manager reads
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "dbt Cloud webhooks"},
    ]
