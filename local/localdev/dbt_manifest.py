"""``make dbt-manifest``: refresh a job's stored manifest (include/dbt_manifests/) from its latest
successful run, against the local dbt Cloud by default, or any dbt Cloud with DBT_BASE_URL/DBT_API_KEY.

The refresh itself is ``include.dbt_cloud.manifest_refresh`` (plain API v2 GETs: it runs in CI or the
Astro image as it is). This wrapper only adds the local conveniences: the local token and CA bundle,
and, when no local dbt Cloud answers (``make up`` is not running), the state folder's local dbt Cloud
started for the refresh and stopped afterwards, the way ``make demo`` starts it.
"""

from __future__ import annotations

import os
import sys

import httpx

from dbt_cloud_local.client import client_access, host_port
from dbt_cloud_local.testing import run_local_dbt_cloud
from include.dbt_cloud import manifest_refresh
from localdev.airflow_env import data_environment
from localdev.stack_settings import StackSettings
from localdev.state import state_dir


def main(argv: list[str]) -> int:
    port = host_port()
    local_url = f"https://localhost:{port}"
    base_url = (os.environ.get("DBT_BASE_URL") or local_url).rstrip("/")
    if base_url != local_url:
        print(f"Refreshing from {base_url} (DBT_BASE_URL)")
        return manifest_refresh.main([*argv, "--base-url", base_url])

    state = StackSettings(state_dir=state_dir())
    access = client_access(state.dbt_cloud_dir, port)
    os.environ.setdefault("DBT_API_KEY", access.token)
    if _answers(local_url, access):
        print(f"Refreshing from the local dbt Cloud at {local_url}")
        os.environ["REQUESTS_CA_BUNDLE"] = str(access.ca_bundle)
        return manifest_refresh.main([*argv, "--base-url", base_url])
    print(f"No local dbt Cloud answers at {local_url}: starting {state.dbt_cloud_dir}'s for the refresh")
    with run_local_dbt_cloud(state.dbt_cloud_dir, port=port, env=data_environment(state.data_dir)) as server:
        os.environ["REQUESTS_CA_BUNDLE"] = str(server.client_bundle)
        return manifest_refresh.main([*argv, "--base-url", server.base_url])


def _answers(url: str, access) -> bool:
    if not access.ca_cert.exists():
        return False
    try:
        return httpx.get(f"{url}/_local/health", verify=access.trust(), timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
