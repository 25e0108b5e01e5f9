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


#: The order test files start in, longest first (then collection order): the xdist workers of
#: `make test` take files in this order (`--no-loadscope-reorder`), so the few long end-to-end files do
#: not start last and leave one worker running them alone while the other waits.
LONGEST_FIRST = (*SLOW_LANES, "dbt_cloud_local/", "demo_dbt_project/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(LOCAL_TESTS):
            continue
        path = item.path.relative_to(LOCAL_TESTS).as_posix()
        for prefix, marker in SLOW_LANES.items():
            if path.startswith(prefix):
                item.add_marker(marker)
    items.sort(key=_start_rank)


def _start_rank(item: pytest.Item) -> int:
    if item.path.is_relative_to(LOCAL_TESTS):
        path = item.path.relative_to(LOCAL_TESTS).as_posix()
        for rank, prefix in enumerate(LONGEST_FIRST):
            if path.startswith(prefix):
                return rank
    return len(LONGEST_FIRST)
