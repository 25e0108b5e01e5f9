"""Test-session setup shared by every suite: an isolated Airflow home and the project's import root.

Airflow reads its configuration when first imported, so the environment is set here, before any test
module imports it. Each session gets its own AIRFLOW_HOME, so tests never touch (or depend on) a
developer's local Airflow state; the DAGs folder is the project's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Import roots: the project (`import include.…`, as on the Astro image's PYTHONPATH) and `local/`, the
# code that only runs on your machine (`import dbt_cloud_local`, `import localdev`). Subprocesses that
# tests start inherit them through PYTHONPATH.
IMPORT_ROOTS = [str(PROJECT_ROOT), str(PROJECT_ROOT / "local")]
sys.path[:0] = [root for root in IMPORT_ROOTS if root not in sys.path]
os.environ["PYTHONPATH"] = os.pathsep.join(
    dict.fromkeys([*IMPORT_ROOTS, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
)

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-tests-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# A fresh home would otherwise point the metadata DB at the Makefile's or the image's database.
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB in the session's AIRFLOW_HOME (for dag.test() and seeding)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}"
    return Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"


#: The slow lanes, by where their tests live (markers declared in pyproject.toml). `make test` runs
#: everything; `make test-fast` deselects these.
SLOW_LANES = {
    "tests/e2e/": "e2e",
    "tests/browser/": "browser",
    "tests/localdev/test_stack.py": "stack",
    "tests/rerun_parser/test_rerun_parity_with_dbt_retry.py": "parity",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.relative_to(PROJECT_ROOT).as_posix()
        for prefix, marker in SLOW_LANES.items():
            if path.startswith(prefix):
                item.add_marker(marker)
