"""The local test suites: everything that needs what only runs on your machine.

The local dbt Cloud, dbt Core on DuckDB, the no-Docker stack, the container rehearsal's compose
files, a browser. The Astro image never holds these (``tests/`` is what it runs). Both trees share one
Airflow test environment (``tests/airflow_test_env.py``); ``make test`` runs both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.airflow_test_env import airflow_db  # noqa: F401  (session fixture; importing sets up Airflow)

LOCAL_TESTS = Path(__file__).resolve().parent

#: The slow lanes, by where their tests live (markers declared in pyproject.toml). `make test` runs
#: everything; `make test-fast` deselects these.
SLOW_LANES = {
    "e2e/": "e2e",
    "browser/": "browser",
    "localdev/test_stack.py": "stack",
    "demo_dbt_project/test_rerun_parity_with_dbt_retry.py": "parity",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(LOCAL_TESTS):
            continue
        path = item.path.relative_to(LOCAL_TESTS).as_posix()
        for prefix, marker in SLOW_LANES.items():
            if path.startswith(prefix):
                item.add_marker(marker)
