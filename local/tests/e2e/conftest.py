"""The end-to-end suites' fixture: a real local dbt Cloud and the environment DAG runs execute with.

The harness itself (``Pipeline``: start DAG runs in a subprocess, read task states and XComs back) is
``pipeline_harness.py``.
"""

from __future__ import annotations

import pytest
from pipeline_harness import Pipeline

from dbt_cloud_local.testing import run_local_dbt_cloud
from localdev.airflow_env import project_environment


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, airflow_db) -> Pipeline:
    root = tmp_path_factory.mktemp("e2e")
    paths = {
        "JAFFLE_SHOP_WAREHOUSE": str(root / "warehouse.duckdb"),
        "ELTML_LANDING_DIR": str(root / "landing"),
        "ELTML_MODELS_DIR": str(root / "ml_models"),
    }
    with run_local_dbt_cloud(root / "dbt-cloud", env=paths) as server:
        # The session's AIRFLOW_HOME (tests/airflow_test_env.py), the project's settings, this module's files.
        env = {**project_environment(), **paths, **server.client_env("dbt_cloud")}
        yield Pipeline(server=server, root=root, env=env)
